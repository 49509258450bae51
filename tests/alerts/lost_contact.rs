//! Lost contact: a silent device raises one critical alert, once, cleared by its next report;
//! a geoward outage is not an escape, so it does not fire lost contact for everyone at once.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::device::Device;
use crate::support::monitored::Monitored;
use crate::support::officer::OfficerFeed;
use crate::{kinds, ts, Rig, AWAY, SOON};

/// The lost_contact_after_s of every supervisee here; lost contact is decided 1 s (the test
/// grace) after it, at the next 200 ms sweep.
const AFTER_S: u32 = 2;
/// How long a test waits for a lost contact it expects (2 s + 1 s grace + sweeps, generously).
const LOST_WAIT: Duration = Duration::from_secs(15);

fn seqs(items: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
    items.into_iter().collect()
}

fn time_of(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp: {value}: {e}"))
}

fn is_lost_contact(frame: &Value) -> bool {
    frame["alert"]["kind"] == "lost_contact"
}

/// Sends a fix (now, well outside the zone) and waits for its ack.
async fn report(device: &mut Device, seq: u64) {
    device
        .send_fix(seq, &ts(0.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    assert_eq!(
        device.wait_acks(&seqs([seq]), SOON).await,
        seqs([seq]),
        "fix {seq} acked; other messages: {:?}",
        device.other_messages
    );
}

#[tokio::test]
async fn lost_contact_fires_once_and_clears_on_the_next_report() {
    let rig = Rig::start().await;
    let person = rig.person(Some(AFTER_S)).await;
    let mut feed = rig.feed(&rig.officer_a.1).await;
    let mut device = person.device(&rig.app.ws_base()).await;

    let sent_at = Utc::now();
    report(&mut device, 1).await;
    let acked_at = Utc::now();

    // Then silence: one lost contact after 2 s + 1 s grace.
    let opened = feed
        .expect_alert(
            LOST_WAIT,
            "a lost contact after the device fell silent",
            is_lost_contact,
        )
        .await;
    let raised_at = Utc::now();
    assert_eq!(opened["change"], "opened", "{opened}");
    let a = &opened["alert"];
    assert_eq!(a["supervisee_id"], json!(person.supervisee_id));
    assert_eq!(a["kind"], "lost_contact");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["status"], "open");
    assert_eq!(a["cleared_at"], json!(null));
    assert_eq!(a["zone_id"], json!(null));
    assert!(
        raised_at - sent_at >= chrono::Duration::milliseconds(2900),
        "raised {} ms after the report, before its deadline (2 s + 1 s grace): {a}",
        (raised_at - sent_at).num_milliseconds()
    );
    // The last known live position, and when contact was lost: the report + 2 s.
    let position = &a["position"];
    assert!(
        (position["lat"].as_f64().unwrap_or(f64::NAN) - AWAY.0).abs() < 1e-6
            && (position["lon"].as_f64().unwrap_or(f64::NAN) - AWAY.1).abs() < 1e-6,
        "the alert position is not the last fix: {a}"
    );
    let event_at = time_of(&a["event_at"]);
    let after = chrono::Duration::seconds(AFTER_S as i64);
    let slack = chrono::Duration::milliseconds(200);
    assert!(
        event_at >= sent_at + after - slack && event_at <= acked_at + after + slack,
        "event_at {event_at} is not the last report ({sent_at}..{acked_at}) + {AFTER_S} s"
    );
    let id = a["id"].clone();

    // Continued silence is the same condition: nothing more.
    let more = feed.alerts_for(Duration::from_secs(4)).await;
    assert!(
        more.is_empty(),
        "continued silence raised more: {:?} {more:?}",
        kinds(&more)
    );

    // The next report clears it.
    report(&mut device, 2).await;
    let cleared = feed
        .expect_alert(SOON, "the lost contact cleared by the next report", |f| {
            f["change"] == "cleared"
        })
        .await;
    assert_eq!(cleared["alert"]["id"], id, "{cleared}");
    assert_eq!(cleared["alert"]["kind"], "lost_contact");
    assert!(cleared["alert"]["cleared_at"].is_string(), "{cleared}");
    assert_eq!(
        cleared["alert"]["status"], "open",
        "cleared is not resolved"
    );

    let listed = rig
        .app
        .get(
            &format!("/v1/alerts?supervisee_id={}", person.supervisee_id),
            &rig.officer_a.1,
        )
        .await
        .expect(200);
    let alerts = listed.body["alerts"].as_array().expect("alerts array");
    assert_eq!(alerts.len(), 1, "one alert for one silence: {alerts:?}");
    assert_eq!(alerts[0]["id"], id);
    assert_eq!(alerts[0]["kind"], "lost_contact");
    assert!(alerts[0]["cleared_at"].is_string(), "{}", alerts[0]);
}

#[tokio::test]
async fn an_outage_does_not_fire_lost_contact_en_masse() {
    const PEOPLE: usize = 5;
    let mut rig = Rig::start().await;
    let mut people: Vec<Monitored> = Vec::new();
    for _ in 0..PEOPLE {
        people.push(rig.person(Some(AFTER_S)).await);
    }
    let silent = people[PEOPLE - 1].supervisee_id.clone();

    // Everyone reports to node 1; positions on the feed tell when each report was evaluated
    // (its deadline set), and when it was received.
    let mut feed = rig.feed(&rig.officer_a.1).await;
    feed.subscribe_positions().await;
    let mut devices = Vec::new();
    for person in &people {
        let mut device = person.device(&rig.app.ws_base()).await;
        report(&mut device, 1).await;
        devices.push(device);
    }
    let mut received: HashMap<String, DateTime<Utc>> = HashMap::new();
    while received.len() < PEOPLE {
        let frame = feed.next_position(SOON).await.unwrap_or_else(|| {
            panic!(
                "no position for every report within {SOON:?}; got {received:?}; {}",
                feed.describe()
            )
        });
        received.insert(
            frame["supervisee_id"].as_str().unwrap().to_owned(),
            time_of(&frame["fix"]["received_at"]),
        );
    }

    // geoward goes down for longer than everyone's deadline and than outage_after.
    rig.app.stop().await;
    drop(devices);
    drop(feed);
    tokio::time::sleep(Duration::from_secs(5)).await;

    let node = rig.app.second_node().await;
    let started = Instant::now();
    let mut feed: OfficerFeed = node.officer_feed(&rig.officer_a.1, None).await;
    feed.wait_ready(SOON).await;

    // Four devices reconnect to the new node within the outage grace and keep reporting
    // every second; the fifth stays silent.
    let mut devices = Vec::new();
    for person in &people[..PEOPLE - 1] {
        let mut device = person.device(&node.ws_base()).await;
        report(&mut device, 2).await;
        devices.push(device);
    }
    let mut alerts: Vec<(Duration, Value)> = Vec::new();
    let mut seq = 3;
    let watch_until = started + Duration::from_secs(15);
    while Instant::now() < watch_until {
        for frame in feed.alerts_for(Duration::from_secs(1)).await {
            alerts.push((started.elapsed(), frame));
        }
        for device in devices.iter_mut() {
            report(device, seq).await;
        }
        seq += 1;
    }
    let watched = started.elapsed();

    let lost: Vec<&(Duration, Value)> = alerts.iter().filter(|(_, f)| is_lost_contact(f)).collect();
    let summary: Vec<String> = lost
        .iter()
        .map(|(at, f)| {
            format!(
                "{}:{} at {:?}",
                f["change"], f["alert"]["supervisee_id"], at
            )
        })
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "exactly one lost contact (the silent device's) over {watched:?}: {summary:?}"
    );
    let (arrived, frame) = lost[0];
    assert_eq!(frame["change"], "opened", "{frame}");
    assert_eq!(
        frame["alert"]["supervisee_id"],
        json!(silent),
        "the lost contact is not the silent device's: {summary:?}"
    );
    assert!(
        *arrived >= Duration::from_secs(4),
        "the silent device's lost contact fired {arrived:?} after recovery, inside the outage grace"
    );
    assert!(
        *arrived <= Duration::from_secs(12),
        "the silent device's lost contact came {arrived:?} after recovery, long after the 6 s grace"
    );
    let others: Vec<String> = alerts
        .iter()
        .filter(|(_, f)| !is_lost_contact(f))
        .map(|(_, f)| kinds(std::slice::from_ref(f)).join(""))
        .collect();
    assert!(others.is_empty(), "unexpected alerts: {others:?}");

    // Stored: one lost contact in the whole system, before and after the outage.
    let listed = node
        .get("/v1/alerts?kind=lost_contact", &rig.officer_a.1)
        .await
        .expect(200);
    let stored = listed.body["alerts"].as_array().expect("alerts array");
    assert_eq!(stored.len(), 1, "stored lost contacts: {stored:?}");
    assert_eq!(stored[0]["supervisee_id"], json!(silent));
    assert_eq!(stored[0]["id"], frame["alert"]["id"]);

    // Contact was lost before the outage: the last report + 2 s (docs/alerts.md), not when
    // the postponed deadline ran out.
    let event_at = time_of(&frame["alert"]["event_at"]);
    let expected = received[&silent] + chrono::Duration::seconds(AFTER_S as i64);
    assert!(
        (event_at - expected).num_milliseconds().abs() <= 1000,
        "event_at {event_at} is not when contact was lost ({expected}: the last report {} + {AFTER_S} s)",
        received[&silent]
    );
}
