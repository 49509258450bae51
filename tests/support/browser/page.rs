//! A page driven like a user would: navigate, click with the mouse, fill fields, wait for
//! what should appear; plus JavaScript evaluation, screenshots and the errors it logged.
//!
//! Invariants: every wait is bounded (actions wait at most [`ACTION_TIMEOUT`] for their
//! element); a timeout names what was awaited and shows the page's URL, text and errors.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::cdp::{describe_exception, Cdp, LogEntry, PageLog};
use super::{js_string, visible_js, BrowserError, Result};

/// How long a navigation may take to fire its load event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `click`, `fill` and `text` wait for their element to be usable.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(50);
/// Most characters of page text shown in a failure.
const PAGE_TEXT_CHARS: usize = 3000;

/// One page (tab), in its own browser context.
pub struct Page {
    cdp: Arc<Cdp>,
    session: String,
    log: Arc<Mutex<PageLog>>,
}

impl Page {
    /// A page attached as `session`, logging into `log`.
    pub(super) fn new(cdp: Arc<Cdp>, session: String, log: Arc<Mutex<PageLog>>) -> Page {
        Page { cdp, session, log }
    }

    fn loads(&self) -> u64 {
        self.log.lock().unwrap().loads
    }

    pub(super) async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.cdp.call(Some(&self.session), method, params).await
    }

    /// Navigates to `url` and waits for its load event.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let loads = self.loads();
        let reply = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = reply["errorText"].as_str() {
            return Err(BrowserError::Protocol(format!(
                "navigating to {url}: {error}"
            )));
        }
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while self.loads() == loads {
            if Instant::now() >= deadline {
                return Err(self
                    .timeout(&format!("{url} to load"), LOAD_TIMEOUT, None)
                    .await);
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Evaluates `js` (an expression; a promise is awaited) and returns its value as JSON
    /// (`null` for undefined; DOM nodes are not serialisable: return what you need from them).
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "awaitPromise": true, "returnByValue": true, "userGesture": true }),
            )
            .await?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(BrowserError::Script(describe_exception(details)));
        }
        Ok(reply["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Polls the JavaScript expression `condition` every 50 ms until it is truthy and returns
    /// its value (`true` for a DOM node). A throwing condition counts as not yet.
    pub async fn wait_for(&self, condition: &str, timeout: Duration, what: &str) -> Result<Value> {
        let probe = format!(
            "(async () => {{ const v = await ({condition}); \
             return v ? {{ ok: true, v: (v instanceof Node) ? true : v }} : {{ ok: false }}; }})()"
        );
        let deadline = Instant::now() + timeout;
        loop {
            let last_error = match self.eval(&probe).await {
                Ok(reply) if reply["ok"] == true => return Ok(reply["v"].clone()),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            if Instant::now() >= deadline {
                return Err(self.timeout(what, timeout, last_error).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the centre of the first element matching `selector` with the mouse, once it is
    /// visible, enabled and not covered by another element (waiting up to 5 s for that).
    pub async fn click(&self, selector: &str) -> Result<()> {
        let probe = format!(
            "(() => {{
                const el = document.querySelector({sel});
                if (!el) return {{ state: 'missing' }};
                el.scrollIntoView({{ block: 'center', inline: 'center', behavior: 'instant' }});
                const r = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                if (r.width <= 0 || r.height <= 0 || style.visibility === 'hidden') return {{ state: 'hidden' }};
                if (el.disabled) return {{ state: 'disabled' }};
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                if (!hit || !(hit === el || el.contains(hit))) {{
                    const who = hit ? hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '')
                        + (hit.getAttribute('class') ? '.' + hit.getAttribute('class').trim().split(/\\s+/).join('.') : '') : 'nothing';
                    return {{ state: 'covered by ' + who }};
                }}
                return {{ state: 'ready', x, y }};
            }})()",
            sel = js_string(selector)
        );
        let deadline = Instant::now() + ACTION_TIMEOUT;
        let (x, y) = loop {
            let reply = self.eval(&probe).await?;
            if reply["state"] == "ready" {
                break (
                    reply["x"].as_f64().unwrap_or(0.0),
                    reply["y"].as_f64().unwrap_or(0.0),
                );
            }
            if Instant::now() >= deadline {
                let state = reply["state"].as_str().unwrap_or("?").to_owned();
                return Err(self
                    .timeout(
                        &format!("`{selector}` to be clickable (it is {state})"),
                        ACTION_TIMEOUT,
                        None,
                    )
                    .await);
            }
            tokio::time::sleep(POLL).await;
        };
        for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
            let mut event = json!({ "type": kind, "x": x, "y": y, "buttons": buttons });
            if kind != "mouseMoved" {
                event["button"] = json!("left");
                event["clickCount"] = json!(1);
            }
            self.call("Input.dispatchMouseEvent", event).await?;
        }
        Ok(())
    }

    /// Sets the value of the input, textarea or select matching `selector` and fires `input`
    /// and `change`, as typing or picking would (waiting up to 5 s for it to be enabled).
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let script = format!(
            "(() => {{
                const el = document.querySelector({sel});
                if (!el) return 'missing';
                if (el.disabled || el.readOnly) return 'disabled';
                const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype
                    : el instanceof HTMLSelectElement ? HTMLSelectElement.prototype
                    : HTMLInputElement.prototype;
                el.focus();
                Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, {value});
                el.dispatchEvent(new Event('input', {{ bubbles: true }}));
                el.dispatchEvent(new Event('change', {{ bubbles: true }}));
                if (el.value === {value}) return 'filled';
                const options = el.options ? ' (options: ' + [...el.options].map(o => o.value).join(', ') + ')' : '';
                return 'not accepted: its value is ' + JSON.stringify(el.value) + options;
            }})()",
            sel = js_string(selector),
            value = js_string(value)
        );
        let deadline = Instant::now() + ACTION_TIMEOUT;
        loop {
            let state = self.eval(&script).await?;
            match state.as_str() {
                Some("filled") => return Ok(()),
                Some(refused) if refused.starts_with("not accepted") => {
                    return Err(BrowserError::Script(format!(
                        "filling `{selector}` with {value:?}: {refused}"
                    )))
                }
                _ if Instant::now() >= deadline => {
                    return Err(self
                        .timeout(
                            &format!("`{selector}` to be fillable ({state})"),
                            ACTION_TIMEOUT,
                            None,
                        )
                        .await)
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The rendered text of the first element matching `selector` (waiting up to 5 s for it).
    pub async fn text(&self, selector: &str) -> Result<String> {
        let sel = js_string(selector);
        let found = self
            .wait_for(
                &format!("(() => {{ const el = document.querySelector({sel}); return el ? {{ t: el.innerText }} : null; }})()"),
                ACTION_TIMEOUT,
                &format!("`{selector}` to exist"),
            )
            .await?;
        Ok(found["t"].as_str().unwrap_or_default().to_owned())
    }

    /// How many elements match `selector` now.
    pub async fn count(&self, selector: &str) -> Result<usize> {
        let n = self
            .eval(&format!(
                "document.querySelectorAll({}).length",
                js_string(selector)
            ))
            .await?;
        Ok(n.as_u64().unwrap_or(0) as usize)
    }

    /// An attribute of the first element matching `selector` now (None: no element or no
    /// such attribute).
    pub async fn attribute(&self, selector: &str, name: &str) -> Result<Option<String>> {
        let value = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); return el ? el.getAttribute({}) : null; }})()",
                js_string(selector),
                js_string(name)
            ))
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Whether the first element matching `selector` is rendered (see [`visible_js`]).
    pub async fn is_visible(&self, selector: &str) -> Result<bool> {
        Ok(self.eval(&visible_js(selector)).await? == true)
    }

    /// Saves a PNG of the viewport to `path` (creating its folder).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Protocol(format!("screenshot is not base64: {e}")))?;
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, &png));
        written.map_err(|e| BrowserError::Protocol(format!("writing {}: {e}", path.display())))
    }

    /// Runs the page as if in this IANA time zone (e.g. `Asia/Shanghai`).
    pub async fn set_timezone(&self, zone: &str) -> Result<()> {
        self.call(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": zone }),
        )
        .await
        .map(|_| ())
    }

    /// Every error the page logged so far.
    pub fn errors(&self) -> Vec<LogEntry> {
        self.log.lock().unwrap().errors.clone()
    }

    /// Every error the page logged so far, forgetting them.
    pub fn take_errors(&self) -> Vec<LogEntry> {
        std::mem::take(&mut self.log.lock().unwrap().errors)
    }

    /// Panics when the page logged any error; `when` says at which point of the test.
    pub fn assert_no_errors(&self, when: &str) {
        let errors = self.errors();
        assert!(
            errors.is_empty(),
            "the page logged errors {when}: {errors:#?}"
        );
    }

    /// The page's URL, its text and its errors, for a failure message.
    pub async fn describe(&self) -> String {
        let text = self
            .eval("location.href + '\\n' + (document.body ? document.body.innerText : '(no body)')")
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| format!("(page text unavailable: {e})"));
        let mut text: String = text.chars().take(PAGE_TEXT_CHARS).collect();
        if text.chars().count() == PAGE_TEXT_CHARS {
            text.push_str(" [...]");
        }
        let errors = self.errors();
        format!(
            "--- page ---\n{text}\n--- errors logged: {} ---\n{errors:#?}",
            errors.len()
        )
    }

    async fn timeout(
        &self,
        what: &str,
        timeout: Duration,
        last_error: Option<String>,
    ) -> BrowserError {
        let mut page = self.describe().await;
        if let Some(error) = last_error {
            page = format!("(last attempt threw: {error})\n{page}");
        }
        BrowserError::Timeout {
            what: what.to_owned(),
            timeout,
            page,
        }
    }
}
