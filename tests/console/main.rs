//! The officer console (`/console`) end to end, in headless Chromium against a real geoward
//! (real PostgreSQL and Redis, a fresh database per test) and real devices: an officer logs in
//! through the form, sees an alert appear within a second of the device's ack of the deciding
//! fix, acknowledges and resolves it, sees the zone and the position on the map and replays the
//! track; and an officer never sees another caseload's alert, live or after logging in.
//!
//! The page must log no error (beyond the refused login the test provokes); `driver` checks
//! that the browser driver does see fills, clicks and every kind of error a page logs. Screenshots go to
//! `target/console-screenshots/` (`$CARGO_TARGET_DIR` when set); `console.png` is the one the
//! README shows. Chromium comes from Debian's `chromium` package (scripts/test installs it);
//! without it these tests fail and say how to install it.

#[path = "../support/mod.rs"]
mod support;

mod driver;
mod isolation;
mod workflow;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use support::browser::{js_string, visible_js, Browser, Page};
use support::device::Device;
use support::monitored::{circle, confirm_fixes, exclusion_zone, Monitored};

use support::{spawn_app, TestApp, PASSWORD};

/// Centre of each test exclusion zone (Zhoukou), its radius, and a point well outside it.
const ZONE_LON: f64 = 114.66;
const ZONE_LAT: f64 = 33.63;
const ZONE_RADIUS_M: f64 = 200.0;
const AWAY: (f64, f64) = (33.63, 114.675);

/// The bound: an alert is on screen within this long of the deciding fix's ack.
const ALERT_WITHIN: Duration = Duration::from_secs(1);
/// How long a test waits for something that should happen well under a second.
const SOON: Duration = Duration::from_secs(5);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(1500);
/// The officers' time zone, which the pages run in (the track's period is local time).
const TIME_ZONE: &str = "Asia/Shanghai";

/// Where screenshots go.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("console-screenshots")
}

async fn screenshot(page: &Page, name: &str) {
    let path = screenshot_dir().join(name);
    page.screenshot(&path).await.expect("screenshot saved");
    println!("screenshot: {}", path.display());
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0
}

/// RFC 3339 time `seconds` from now (negative: in the past).
fn ts(seconds: f64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `datetime-local` text for `hours` from now, in the pages' time zone.
fn local_input(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// An officer account the test can log in with through the form.
struct Officer {
    id: String,
    username: String,
    token: String,
}

/// A geoward with an admin, and the console's URL.
struct System {
    app: TestApp,
    admin: String,
}

impl System {
    async fn start() -> System {
        let app = spawn_app().await;
        let admin = app.admin_token().await;
        System { app, admin }
    }

    fn console_url(&self) -> String {
        format!("{}/console", self.app.base)
    }

    async fn officer(&self, name: &str) -> Officer {
        let username = format!(
            "officer-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let id = self
            .app
            .post(
                "/v1/officers",
                &self.admin,
                json!({ "username": username, "password": PASSWORD, "role": "officer", "name": name }),
            )
            .await
            .expect(201)
            .id();
        let token = self.app.token(&username, PASSWORD).await;
        Officer {
            id,
            username,
            token,
        }
    }

    /// A supervisee in `officer`'s caseload, wearing a device, with an exclusion zone that
    /// two fixes inside confirm.
    async fn supervisee(&self, officer: &Officer) -> Monitored {
        let zone = confirm_fixes(
            exclusion_zone("Victim home", circle(ZONE_LON, ZONE_LAT, ZONE_RADIUS_M)),
            2,
        );
        self.app
            .monitored_supervisee(&self.admin, &officer.token, &officer.id, vec![zone], None)
            .await
    }

    async fn alert(&self, officer: &Officer, id: &str) -> Value {
        self.app
            .get(&format!("/v1/alerts/{id}"), &officer.token)
            .await
            .expect(200)
            .body
    }

    /// The ids of the alerts `officer` may see, newest first.
    async fn alert_ids(&self, officer: &Officer) -> Vec<String> {
        let listed = self.app.get("/v1/alerts", &officer.token).await.expect(200);
        listed.body["alerts"]
            .as_array()
            .expect("alerts array")
            .iter()
            .map(|a| a["id"].as_str().expect("alert id").to_owned())
            .collect()
    }
}

/// A fresh page on the console's login form.
async fn open_console(browser: &Browser, url: &str) -> Page {
    let page = browser.page().await;
    page.set_timezone(TIME_ZONE).await.expect("time zone set");
    page.goto(url).await.expect("console loads");
    page.wait_for(&visible_js("form#login-form"), SOON, "the login form")
        .await
        .expect("login form shown");
    page
}

async fn submit_login(page: &Page, username: &str, password: &str) {
    page.fill("form#login-form input[name=username]", username)
        .await
        .expect("username typed");
    page.fill("form#login-form input[name=password]", password)
        .await
        .expect("password typed");
    page.click("form#login-form button[type=submit]")
        .await
        .expect("sign-in clicked");
}

/// Logs in through the form and waits until the console shows the officer and its feed is live.
async fn log_in(page: &Page, officer: &Officer) {
    submit_login(page, &officer.username, PASSWORD).await;
    page.wait_for(
        &visible_js("#console"),
        SOON,
        "the console after logging in",
    )
    .await
    .expect("console shown");
    let hidden = !page.is_visible("form#login-form").await.unwrap();
    assert!(hidden, "the login form is hidden once logged in");
    page.wait_for(
        &format!(
            "document.querySelector('#whoami').innerText.includes({})",
            js_string(&officer.username)
        ),
        SOON,
        "#whoami to show the officer's username",
    )
    .await
    .expect("whoami shown");
    page.wait_for(
        "document.querySelector('#feed-status').dataset.state === 'live'",
        SOON,
        "#feed-status[data-state=live]",
    )
    .await
    .expect("feed live");
}

/// Makes the page record, for each `.alert` that shows up in `#alerts`, when it was first
/// rendered (`Date.now()`), in `window.__seenAlerts`.
async fn watch_alerts(page: &Page) {
    page.eval(
        "(() => {
            window.__seenAlerts = {};
            const check = () => {
                for (const el of document.querySelectorAll('#alerts .alert')) {
                    const id = el.dataset.alertId;
                    if (id && !(id in window.__seenAlerts) && el.getClientRects().length > 0) {
                        window.__seenAlerts[id] = Date.now();
                    }
                }
            };
            new MutationObserver(check).observe(document.body,
                { childList: true, subtree: true, attributes: true });
            check();
            return true;
        })()",
    )
    .await
    .expect("alert watcher installed");
}

/// The alerts the page has rendered since `watch_alerts`: id → when (ms since the epoch).
async fn seen_alerts(page: &Page) -> serde_json::Map<String, Value> {
    match page.eval("window.__seenAlerts").await.expect("seen alerts") {
        Value::Object(seen) => seen,
        other => panic!("window.__seenAlerts is {other}"),
    }
}

/// The ids of the alerts listed in `#alerts` now, in order.
async fn listed_alerts(page: &Page) -> Vec<String> {
    let ids = page
        .eval("[...document.querySelectorAll('#alerts .alert')].map(el => el.dataset.alertId)")
        .await
        .expect("listed alerts");
    serde_json::from_value(ids).expect("alert ids are strings")
}

/// Walks the device into the exclusion zone: one fix outside, two inside (30 s apart, in the
/// past); the last decides the alert. Returns when its ack arrived (ms since the epoch).
async fn enter_zone(device: &mut Device) -> f64 {
    device
        .send_fix(1, &ts(-110.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    device
        .send_fix(2, &ts(-80.0), ZONE_LAT, ZONE_LON, 10.0)
        .await
        .unwrap();
    let first = BTreeSet::from([1, 2]);
    assert_eq!(device.wait_acks(&first, SOON).await, first, "fixes acked");
    device
        .send_fix(3, &ts(-50.0), ZONE_LAT, ZONE_LON + 0.0003, 10.0)
        .await
        .unwrap();
    let deciding = BTreeSet::from([3]);
    assert_eq!(
        device.wait_acks(&deciding, SOON).await,
        deciding,
        "deciding fix acked"
    );
    now_ms()
}

/// Waits until the page rendered its first alert since `watch_alerts`: (id, when it was
/// rendered in ms since the epoch).
async fn wait_first_alert(page: &Page, what: &str) -> (String, f64) {
    let seen = page
        .wait_for(
            "Object.keys(window.__seenAlerts).length > 0 && window.__seenAlerts",
            SOON,
            what,
        )
        .await
        .expect("an alert rendered");
    let seen = seen.as_object().expect("an object");
    assert_eq!(seen.len(), 1, "one alert rendered: {seen:?}");
    let (id, at) = seen.iter().next().expect("one entry");
    (id.clone(), at.as_f64().expect("a time"))
}

fn alert_selector(id: &str) -> String {
    format!("#alerts .alert[data-alert-id={}]", js_string(id))
}

/// Only the refused login's 401 may have been logged so far; forgets it.
fn expect_only_refused_login(page: &Page) {
    for entry in page.take_errors() {
        assert!(
            entry.source == "network" && entry.text.contains("401"),
            "the page logged an error besides the refused login: {entry:?}"
        );
    }
}
