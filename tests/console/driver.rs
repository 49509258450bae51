//! The browser driver itself, on a page of its own: what the console tests rely on (filling,
//! clicking, reading, waiting, and above all seeing the page's errors, without which "the page
//! logged no error" would prove nothing).

use std::time::Duration;

use crate::screenshot_dir;
use crate::support::browser::{Browser, BrowserError};

const PAGE: &str = "data:text/html,<!doctype html><title>driver</title>\
    <input id=name><button id=go>Go</button><p id=out></p>\
    <script>document.getElementById('go').onclick = () => {\
      document.getElementById('out').textContent = 'Hello ' + document.getElementById('name').value;\
    };</script>";

#[tokio::test]
async fn the_driver_fills_clicks_waits_and_sees_every_error_the_page_logs() {
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(PAGE).await.expect("page loads");

    page.fill("#name", "Li").await.expect("filled");
    page.click("#go").await.expect("clicked");
    page.wait_for(
        "document.querySelector('#out').innerText === 'Hello Li'",
        Duration::from_secs(2),
        "the greeting",
    )
    .await
    .expect("the click ran the page's handler");
    assert_eq!(page.text("#out").await.unwrap(), "Hello Li");
    assert_eq!(page.eval("6 * 7").await.unwrap(), 42);
    assert_eq!(
        page.eval("Promise.resolve('later')").await.unwrap(),
        "later"
    );
    page.assert_no_errors("before any error");

    let thrown = page.eval("(() => { throw new Error('boom'); })()").await;
    assert!(
        matches!(&thrown, Err(BrowserError::Script(m)) if m.contains("boom")),
        "{thrown:?}"
    );
    let timeout = page
        .wait_for(
            "false",
            Duration::from_millis(200),
            "something that never comes",
        )
        .await
        .expect_err("a false condition times out");
    let message = timeout.to_string();
    assert!(message.contains("something that never comes"), "{message}");
    assert!(
        message.contains("Hello Li"),
        "shows the page text: {message}"
    );

    page.eval("console.error('logged on purpose'); setTimeout(() => { throw new Error('uncaught on purpose'); }, 0); true")
        .await
        .unwrap();
    page.wait_for(
        "new Promise(r => setTimeout(() => r(true), 100))",
        Duration::from_secs(2),
        "a moment",
    )
    .await
    .unwrap();
    let errors = page.take_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.source == "console" && e.text.contains("logged on purpose")),
        "console.error is seen: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.source == "exception" && e.text.contains("uncaught on purpose")),
        "an uncaught exception is seen: {errors:?}"
    );
    page.assert_no_errors("after taking them");

    let path = screenshot_dir().join("driver-self-test.png");
    page.screenshot(&path).await.expect("screenshot");
    let png = std::fs::read(&path).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let _ = std::fs::remove_file(&path);
}
