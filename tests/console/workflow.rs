//! One officer's working session: a refused then accepted login, an alert on screen within a
//! second of the deciding fix's ack, acknowledged and resolved from the list, the zone and the
//! position on the map, and the track replayed.

use serde_json::json;

use crate::support::browser::{js_string, visible_js, Browser, Page};
use crate::support::monitored::Monitored;
use crate::{
    alert_selector, enter_zone, expect_only_refused_login, local_input, log_in, open_console,
    screenshot, submit_login, wait_first_alert, watch_alerts, Officer, System, ALERT_WITHIN, SOON,
};

#[tokio::test]
async fn an_officer_sees_an_alert_within_a_second_then_acknowledges_resolves_and_replays_it() {
    let system = System::start().await;
    let officer = system.officer("Officer Li").await;
    let person = system.supervisee(&officer).await;
    let browser = Browser::start().await;
    let page = open_console(&browser, &system.console_url()).await;

    refused_then_accepted_login(&page, &officer).await;
    watch_alerts(&page).await;

    // The alert is on screen within a second of the deciding fix's ack.
    let mut device = person.device(&system.app.ws_base()).await;
    let acked_at = enter_zone(&mut device).await;
    let (id, shown_at) = wait_first_alert(&page, "the entry alert in #alerts").await;
    let latency = (shown_at - acked_at) / 1000.0;
    println!("alert on screen {:.0} ms after the ack", latency * 1000.0);
    assert!(
        latency <= ALERT_WITHIN.as_secs_f64(),
        "the alert took {latency:.3} s after the ack to appear (at most {ALERT_WITHIN:?})"
    );
    assert_eq!(
        system.alert_ids(&officer).await,
        vec![id.clone()],
        "the API lists it"
    );
    let alert = alert_selector(&id);
    for (name, value) in [
        ("data-kind", "exclusion_zone_entered"),
        ("data-severity", "critical"),
        ("data-status", "open"),
    ] {
        assert_eq!(
            page.attribute(&alert, name).await.unwrap().as_deref(),
            Some(value),
            "{name} of the alert"
        );
    }
    let text = page.text(&alert).await.unwrap();
    assert!(
        text.contains("Zhang San"),
        "the alert names the supervisee: {text}"
    );

    zone_and_position_on_the_map(&page, &person).await;
    screenshot(&page, "console.png").await;

    acknowledge(&system, &page, &officer, &id).await;
    resolve(&system, &page, &officer, &id).await;
    replay_track(&page, &person).await;
    screenshot(&page, "console-track.png").await;

    page.assert_no_errors("during the test");
}

/// A wrong password shows `#login-error` and keeps the form; the right one opens the console.
async fn refused_then_accepted_login(page: &Page, officer: &Officer) {
    submit_login(page, &officer.username, "not-the-password").await;
    let refused = page
        .wait_for(
            &format!(
                "{} && document.querySelector('#login-error').innerText.trim()",
                visible_js("#login-error")
            ),
            SOON,
            "#login-error after a wrong password",
        )
        .await
        .expect("login error shown");
    println!("refused login says: {refused}");
    assert!(!page.is_visible("#console").await.unwrap());
    expect_only_refused_login(page);
    log_in(page, officer).await;
}

async fn zone_and_position_on_the_map(page: &Page, person: &Monitored) {
    let zone = format!(
        "svg#map path.zone[data-zone-id={}]",
        js_string(&person.zone_ids[0])
    );
    let position = format!(
        "svg#map circle.position[data-supervisee-id={}]",
        js_string(&person.supervisee_id)
    );
    page.wait_for(&visible_js(&zone), SOON, "the zone on the map")
        .await
        .expect("zone drawn");
    page.wait_for(&visible_js(&position), SOON, "the position on the map")
        .await
        .expect("position drawn");
    assert_eq!(
        page.attribute(&zone, "data-zone-kind")
            .await
            .unwrap()
            .as_deref(),
        Some("exclusion")
    );
}

/// Acknowledges with the alert's button: the list and the API agree, and the button goes.
async fn acknowledge(system: &System, page: &Page, officer: &Officer, id: &str) {
    let alert = alert_selector(id);
    let button = format!("{alert} button[data-action=acknowledge]");
    page.click(&button).await.expect("acknowledge clicked");
    page.wait_for(
        &format!(
            "document.querySelector({})?.dataset.status === 'acknowledged'",
            js_string(&alert)
        ),
        SOON,
        "the alert's data-status to become acknowledged",
    )
    .await
    .expect("acknowledged on screen");
    let stored = system.alert(officer, id).await;
    assert_eq!(stored["status"], "acknowledged");
    assert_eq!(stored["acknowledged_by"], json!(officer.id));
    page.wait_for(
        &format!("!document.querySelector({})", js_string(&button)),
        SOON,
        "the acknowledge button to go",
    )
    .await
    .expect("acknowledge button gone");
}

/// Resolves with a note in the dialog: the alert leaves the default (active) list and shows
/// as resolved under `all`; the API holds the note.
async fn resolve(system: &System, page: &Page, officer: &Officer, id: &str) {
    let alert = alert_selector(id);
    let note = "Called the supervisee; they left the area at once.";
    page.click(&format!("{alert} button[data-action=resolve]"))
        .await
        .expect("resolve clicked");
    page.wait_for(
        "document.querySelector('#resolve-dialog').open",
        SOON,
        "#resolve-dialog to open",
    )
    .await
    .expect("dialog open");
    page.fill("#resolve-dialog textarea[name=note]", note)
        .await
        .expect("note typed");
    page.click("#resolve-dialog button[data-action=confirm-resolve]")
        .await
        .expect("confirm clicked");
    page.wait_for(
        &format!(
            "!document.querySelector('#resolve-dialog').open && !document.querySelector({})",
            js_string(&alert)
        ),
        SOON,
        "the dialog to close and the resolved alert to leave the active list",
    )
    .await
    .expect("resolved alert gone from the active list");
    let stored = system.alert(officer, id).await;
    assert_eq!(stored["status"], "resolved");
    let events = stored["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "resolved" && e["note"] == note),
        "the note is stored with the resolution: {events:?}"
    );
    page.fill("select#alert-filter", "all")
        .await
        .expect("filter set to all");
    page.wait_for(
        &format!(
            "document.querySelector({})?.dataset.status === 'resolved'",
            js_string(&alert)
        ),
        SOON,
        "the resolved alert under the `all` filter",
    )
    .await
    .expect("resolved alert listed under all");
}

/// Replays the last hour: a `path.track` of the three fixes, and a cursor the slider moves.
async fn replay_track(page: &Page, person: &Monitored) {
    page.fill("select#track-supervisee", &person.supervisee_id)
        .await
        .expect("supervisee picked");
    page.fill("input#track-from", &local_input(-1))
        .await
        .expect("from set");
    page.fill("input#track-to", &local_input(1))
        .await
        .expect("to set");
    page.click("button#track-load").await.expect("load clicked");
    let status = page
        .wait_for(
            &format!(
                "{} && /\\b3 fixes\\b/.test(document.querySelector('#track-status').innerText) \
                 && document.querySelector('#track-status').innerText",
                visible_js("svg#map path.track")
            ),
            SOON,
            "svg#map path.track and #track-status saying 3 fixes",
        )
        .await
        .expect("track drawn");
    println!("track status: {status}");

    let cursor = "(() => { const c = document.querySelector('svg#map circle.track-cursor'); \
                  if (!c) return null; const r = c.getBoundingClientRect(); \
                  return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; })()";
    let last = page
        .attribute("input#track-slider", "max")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        !last.is_empty() && last != "0",
        "the slider spans the fixes (max {last:?})"
    );
    page.fill("input#track-slider", "0")
        .await
        .expect("slider at the start");
    let start = page
        .wait_for(cursor, SOON, "circle.track-cursor at the first fix")
        .await
        .expect("cursor shown");
    page.fill("input#track-slider", &last)
        .await
        .expect("slider at the end");
    let moved = format!(
        "(() => {{ const at = {cursor}; return at && JSON.stringify(at) !== {} && at; }})()",
        js_string(&start.to_string())
    );
    let end = page
        .wait_for(&moved, SOON, "circle.track-cursor to move to the last fix")
        .await
        .expect("cursor moved");
    println!("track cursor moved from {start} to {end}");
}
