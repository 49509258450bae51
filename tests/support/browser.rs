//! A small Chrome DevTools Protocol driver for browser tests: launches Debian's headless
//! Chromium with a throwaway profile, opens pages and drives them (navigate, evaluate
//! JavaScript, wait for a condition, click, fill, read text, screenshot) while collecting what
//! each page logs as an error (exceptions, `console.error`, failed loads).
//!
//! Invariants:
//! - every wait is bounded; a timeout names what was awaited and shows the page's text and the
//!   errors it logged;
//! - each [`Page`] lives in its own browser context, so two pages never share cookies or
//!   storage (two officers can be logged in side by side);
//! - dropping the [`Browser`] kills Chromium's whole process group and removes its profile;
//! - a missing Chromium is an error that says how to install it: tests fail, never skip.
//!
//! Chromium is `GEOWARD_CHROMIUM` when set, else `/usr/bin/chromium`, else `chromium` or
//! `chromium-browser` on `PATH`.

mod cdp;
mod page;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use cdp::{Cdp, PageLog};
pub use page::Page;

/// The viewport of every page (CSS pixels).
pub const VIEWPORT: (u32, u32) = (1400, 900);
/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Stderr lines kept from Chromium for failure messages.
const STDERR_TAIL: usize = 40;
const INSTALL_HINT: &str = "install it with `sudo apt-get install chromium` (or run scripts/test, \
    which installs it), or point GEOWARD_CHROMIUM at a Chromium or Chrome binary";

/// Why the browser or a page could not do what a test asked.
#[derive(thiserror::Error)]
pub enum BrowserError {
    #[error("Chromium not found ({0}): {INSTALL_HINT}")]
    NotInstalled(String),
    #[error("cannot start Chromium: {0}")]
    Launch(String),
    #[error("DevTools protocol: {0}")]
    Protocol(String),
    #[error("JavaScript threw: {0}")]
    Script(String),
    #[error("timed out after {timeout:?} waiting for {what}\n{page}")]
    Timeout {
        what: String,
        timeout: Duration,
        page: String,
    },
}

/// Debug shows the message itself, so `unwrap()` and `expect()` print it readably.
impl std::fmt::Debug for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

pub type Result<T> = std::result::Result<T, BrowserError>;

/// Finds the Chromium binary (see the module doc).
pub fn find_chromium() -> Result<PathBuf> {
    fn executable(path: &Path) -> bool {
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    if let Some(named) = std::env::var_os("GEOWARD_CHROMIUM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(named);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(BrowserError::NotInstalled(format!(
                "GEOWARD_CHROMIUM={} is not an executable file",
                path.display()
            )))
        };
    }
    let default = PathBuf::from("/usr/bin/chromium");
    if executable(&default) {
        return Ok(default);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(BrowserError::NotInstalled(
        "GEOWARD_CHROMIUM is unset, and neither /usr/bin/chromium nor chromium or \
         chromium-browser on PATH exists"
            .into(),
    ))
}

/// The Chromium process and its profile folder: the whole process group is killed and the
/// folder removed on drop, also when the launch fails half-way.
struct ChromiumProcess {
    child: Child,
    profile: PathBuf,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ChromiumProcess {
    /// Starts Chromium; the receiver yields its DevTools address.
    fn spawn(exe: &Path) -> Result<(ChromiumProcess, oneshot::Receiver<String>)> {
        let profile = std::env::temp_dir().join(format!(
            "geoward-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile).map_err(|e| {
            BrowserError::Launch(format!("cannot create {}: {e}", profile.display()))
        })?;
        let mut command = Command::new(exe);
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-component-update",
                "--disable-default-apps",
                "--password-store=basic",
                "--mute-audio",
                "--hide-scrollbars",
                // A page that is not in front keeps its timers and sockets at full speed.
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
            ])
            .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: only async-signal-safe prctl(2) runs between fork and exec. Chromium is in
        // its own process group (so a test's Ctrl-C or a killed step does not reach it): it
        // is killed when the thread that started it ends, so an interrupted or killed test
        // run leaves no browser behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(BrowserError::Launch(format!("{}: {e}", exe.display())));
            }
        };

        // A thread drains stderr for the whole run (so Chromium never blocks on a full pipe),
        // hands over the DevTools address and keeps the last lines for failure messages.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = oneshot::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let tail = stderr.clone();
        std::thread::spawn(move || {
            const MARK: &str = "DevTools listening on ";
            let mut tx = Some(tx);
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                if let Some(at) = line.find(MARK) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line[at + MARK.len()..].trim().to_owned());
                    }
                }
                let mut tail = tail.lock().unwrap();
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok((
            ChromiumProcess {
                child,
                profile,
                stderr,
            },
            rx,
        ))
    }

    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap();
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!("--- Chromium stderr (last lines) ---\n{}", lines.join("\n"))
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals exactly the process group this
            // process leads (it was spawned with `process_group(0)`): Chromium and its helpers.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Helpers may take a moment to go: retry the removal briefly.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A headless Chromium, killed with its helpers (and its profile removed) when dropped.
pub struct Browser {
    // Fields drop in order: the connection first, then the process.
    cdp: Arc<Cdp>,
    process: ChromiumProcess,
}

impl Browser {
    /// Starts Chromium and connects to its DevTools endpoint.
    pub async fn launch() -> Result<Browser> {
        let exe = find_chromium()?;
        let (mut process, address) = ChromiumProcess::spawn(&exe)?;
        let url = match tokio::time::timeout(LAUNCH_TIMEOUT, address).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                let status = process.child.wait().ok();
                return Err(BrowserError::Launch(format!(
                    "{} ended (status {status:?}) before listening for DevTools\n{}",
                    exe.display(),
                    process.stderr_tail()
                )));
            }
            Err(_) => {
                return Err(BrowserError::Launch(format!(
                    "{} printed no DevTools address within {LAUNCH_TIMEOUT:?}\n{}",
                    exe.display(),
                    process.stderr_tail()
                )))
            }
        };
        let cdp = Arc::new(Cdp::connect(&url).await?);
        Ok(Browser { cdp, process })
    }

    /// Like [`Browser::launch`], panicking with the reason (and how to install Chromium).
    pub async fn start() -> Browser {
        Browser::launch().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Chromium's last stderr lines.
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }

    /// Opens a blank page in a fresh browser context (its own cookies and storage), with a
    /// 1400×900 viewport.
    pub async fn new_page(&self) -> Result<Page> {
        let cdp = &self.cdp;
        let context = cdp
            .call(None, "Target.createBrowserContext", json!({}))
            .await?["browserContextId"]
            .clone();
        let target = cdp
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context }),
            )
            .await?["targetId"]
            .clone();
        let attached = cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Protocol(format!("attachToTarget gave {attached}")))?
            .to_owned();
        let log = Arc::new(Mutex::new(PageLog::default()));
        cdp.shared
            .pages
            .lock()
            .unwrap()
            .insert(session.clone(), log.clone());
        let page = Page::new(cdp.clone(), session, log);
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Inspector.enable",
        ] {
            page.call(domain, json!({})).await?;
        }
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": VIEWPORT.0, "height": VIEWPORT.1, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
        Ok(page)
    }

    /// Like [`Browser::new_page`], panicking with the reason.
    pub async fn page(&self) -> Page {
        self.new_page()
            .await
            .unwrap_or_else(|e| panic!("cannot open a page: {e}\n{}", self.stderr_tail()))
    }
}

/// A JavaScript string literal for `text`.
pub fn js_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// A JavaScript expression: whether the first element matching `selector` is rendered (has a
/// box; a straight line of a track has no height, so one dimension suffices).
pub fn visible_js(selector: &str) -> String {
    format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; \
         const r = el.getBoundingClientRect(); \
         return (r.width > 0 || r.height > 0) && getComputedStyle(el).visibility !== 'hidden'; }})()",
        js_string(selector)
    )
}
