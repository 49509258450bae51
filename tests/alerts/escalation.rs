//! Escalation: an alert nobody acknowledged goes to the supervisors when its severity's
//! `alerts.escalate_after` has passed (critical: 5 min), on time, once; an acknowledged one
//! never does. The node's clock is moved forward instead of waiting.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::support::device::{status_json, Device};
use crate::support::monitored::Monitored;
use crate::support::officer::OfficerFeed;
use crate::{enter, kinds, ts, Rig, AWAY, QUIET, SOON};

/// A silence far longer than any clock advance here: no lost contact gets in the way.
const NEVER_LOST_S: u32 = 86_400;
/// The default escalation time of a critical alert.
const CRITICAL_AFTER: chrono::Duration = chrono::Duration::minutes(5);

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp: {value}: {e}"))
}

/// Moves the node's clock forward until it reads at least `target`.
fn advance_to(rig: &Rig, target: DateTime<Utc>) {
    let by = target - rig.app.clock.now();
    if let Ok(by) = by.to_std() {
        rig.app.clock.advance(by);
    }
}

/// Walks `person`'s device into the exclusion zone and returns the `opened` frame of the
/// critical entry alert, as `feed` saw it.
async fn raise(rig: &Rig, person: &Monitored, feed: &mut OfficerFeed) -> (Device, Value) {
    let mut device = person.device(&rig.app.ws_base()).await;
    enter(&mut device, 1).await;
    let supervisee = json!(person.supervisee_id);
    let opened = feed
        .expect_alert(SOON, "the entry alert opened", |f| {
            f["change"] == "opened"
                && f["alert"]["supervisee_id"] == supervisee
                && f["alert"]["kind"] == "exclusion_zone_entered"
        })
        .await;
    assert_eq!(opened["alert"]["severity"], "critical");
    assert_eq!(opened["alert"]["escalated_at"], json!(null));
    (device, opened)
}

/// `escalated` changes of alert `id` among the alert frames `feed` hands out within `period`
/// (other frames are consumed too).
async fn escalations_of(feed: &mut OfficerFeed, period: Duration, id: &Value) -> Vec<Value> {
    feed.alerts_for(period)
        .await
        .into_iter()
        .filter(|f| f["alert"]["id"] == *id && f["change"] == "escalated")
        .collect()
}

/// Fails with `what` when any escalation was found.
fn assert_none(what: &str, found: &[Value]) {
    assert!(
        found.is_empty(),
        "{what}: escalated early: {:?}",
        kinds(found)
    );
}

/// No frame about a lost contact anywhere in what `feed` received.
fn assert_no_lost_contact(feed: &OfficerFeed, who: &str) {
    let lost: Vec<&Value> = feed
        .received()
        .iter()
        .filter(|f| f["alert"]["kind"] == "lost_contact")
        .collect();
    assert!(lost.is_empty(), "{who}: lost contact raised: {lost:?}");
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_on_time() {
    let rig = Rig::start().await;
    let acted_on = rig.person(Some(NEVER_LOST_S)).await;
    let ignored = rig.person(Some(NEVER_LOST_S)).await;
    let mut supervisor = rig.feed(&rig.supervisor).await;
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut other = rig.feed(&rig.officer_b.1).await;

    // One alert is acknowledged at once; the other, opened later, is left alone.
    let (_d1, first) = raise(&rig, &acted_on, &mut own).await;
    let first_id = first["alert"]["id"].clone();
    rig.app
        .post(
            &format!("/v1/alerts/{}/acknowledge", first_id.as_str().unwrap()),
            &rig.officer_a.1,
            json!({ "note": "on it" }),
        )
        .await
        .expect(200);
    let (_d2, opened) = raise(&rig, &ignored, &mut own).await;
    let id = opened["alert"]["id"].clone();
    let opened_at = time(&opened["alert"]["opened_at"]);
    let first_opened_at = time(&first["alert"]["opened_at"]);
    assert!(first_opened_at <= opened_at);
    let due = opened_at + CRITICAL_AFTER;

    // Just before its time (with room for the real seconds the quiet watch takes): nothing.
    advance_to(&rig, due - chrono::Duration::seconds(3));
    let (early, early_own) = tokio::join!(
        escalations_of(&mut supervisor, QUIET, &id),
        escalations_of(&mut own, QUIET, &id),
    );
    assert!(
        early.is_empty() && early_own.is_empty(),
        "escalated early: {:?} {:?} (due {due})",
        kinds(&early),
        kinds(&early_own)
    );
    assert!(
        rig.app.clock.now() < due,
        "the quiet watch outlasted its margin"
    );
    let detail = rig
        .app
        .get(
            &format!("/v1/alerts/{}", id.as_str().unwrap()),
            &rig.supervisor,
        )
        .await
        .expect(200);
    assert_eq!(detail.body["escalated_at"], json!(null));

    // Its time passes: escalated, to the supervisor and to the caseload's officer.
    advance_to(&rig, due + chrono::Duration::seconds(1));
    let escalation = Duration::from_secs(2) + Duration::from_millis(500);
    let to_supervisor = supervisor
        .expect_alert(escalation, "the escalation on the supervisor's feed", |f| {
            f["alert"]["id"] == id && f["change"] == "escalated"
        })
        .await;
    let to_officer = own
        .expect_alert(escalation, "the escalation on officer A's feed", |f| {
            f["alert"]["id"] == id && f["change"] == "escalated"
        })
        .await;
    assert_eq!(to_supervisor["cursor"], to_officer["cursor"]);
    let alert = &to_supervisor["alert"];
    assert_eq!(
        alert["status"], "open",
        "escalation is not a step of an officer"
    );
    let escalated_at = time(&alert["escalated_at"]);
    assert!(
        escalated_at >= due,
        "escalated at {escalated_at}, before opened_at + 5 min = {due}"
    );
    assert!(
        escalated_at <= rig.app.clock.now(),
        "escalated_at {escalated_at} is in the node's future"
    );
    assert_eq!(to_officer["alert"]["escalated_at"], alert["escalated_at"]);

    let detail = rig
        .app
        .get(
            &format!("/v1/alerts/{}", id.as_str().unwrap()),
            &rig.officer_a.1,
        )
        .await
        .expect(200);
    assert_eq!(detail.body["escalated_at"], alert["escalated_at"]);
    let actions: Vec<&str> = detail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(actions, vec!["opened", "escalated"], "{}", detail.text);
    assert_eq!(detail.body["events"][1]["officer_id"], json!(null));
    assert_eq!(detail.body["events"][1]["cursor"], to_supervisor["cursor"]);

    // Once: later checks (and much later ones) add nothing; the acknowledged alert, long past
    // its own time, never escalates.
    rig.app.clock.advance(Duration::from_secs(3600));
    let (again, _, foreign) = tokio::join!(
        escalations_of(&mut supervisor, QUIET, &id),
        own.settle(QUIET),
        other.alerts_for(QUIET),
    );
    assert!(again.is_empty(), "escalated twice: {:?}", kinds(&again));
    let acknowledged_escalations: Vec<&Value> = supervisor
        .received()
        .iter()
        .chain(own.received())
        .filter(|f| f["alert"]["id"] == first_id && f["change"] == "escalated")
        .collect();
    assert!(
        acknowledged_escalations.is_empty(),
        "an acknowledged alert escalated: {acknowledged_escalations:?}"
    );
    let first_detail = rig
        .app
        .get(
            &format!("/v1/alerts/{}", first_id.as_str().unwrap()),
            &rig.officer_a.1,
        )
        .await
        .expect(200);
    assert_eq!(first_detail.body["status"], "acknowledged");
    assert_eq!(
        first_detail.body["escalated_at"],
        json!(null),
        "{}",
        first_detail.text
    );
    let actions: Vec<&str> = first_detail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        actions,
        vec!["opened", "acknowledged"],
        "{}",
        first_detail.text
    );

    assert!(
        foreign.is_empty(),
        "another caseload's officer was told: {:?}",
        kinds(&foreign)
    );
    assert_no_lost_contact(&supervisor, "supervisor");
    assert_no_lost_contact(&own, "officer A");
}

#[tokio::test]
async fn each_severity_waits_its_own_time_and_info_never_escalates() {
    let rig = Rig::start().await;
    let person = rig.person(Some(NEVER_LOST_S)).await;
    let mut supervisor = rig.feed(&rig.supervisor).await;

    // A 9 km jump in 10 s (serious) and a flat battery (info), both left unacknowledged.
    let mut device = person.device(&rig.app.ws_base()).await;
    device
        .send_fix(1, &ts(-100.0), AWAY.0, AWAY.1, 10.0)
        .await
        .unwrap();
    device
        .send_fix(2, &ts(-90.0), AWAY.0, AWAY.1 + 0.1, 10.0)
        .await
        .unwrap();
    device
        .send_json(&status_json(3, &ts(-80.0), 10, "closed"))
        .await
        .unwrap();
    let seqs = BTreeSet::from([1, 2, 3]);
    assert_eq!(device.wait_acks(&seqs, SOON).await, seqs);
    let jump = supervisor
        .expect_alert(SOON, "the location jump", |f| {
            f["change"] == "opened" && f["alert"]["kind"] == "location_jump"
        })
        .await;
    assert_eq!(jump["alert"]["severity"], "serious");
    let battery = supervisor
        .expect_alert(SOON, "the low battery", |f| {
            f["change"] == "opened" && f["alert"]["kind"] == "low_battery"
        })
        .await;
    assert_eq!(battery["alert"]["severity"], "info");
    let (jump_id, battery_id) = (jump["alert"]["id"].clone(), battery["alert"]["id"].clone());
    let opened_at = time(&jump["alert"]["opened_at"]);
    let due = opened_at + chrono::Duration::minutes(15);

    // A critical alert's time is not a serious one's.
    advance_to(
        &rig,
        opened_at + CRITICAL_AFTER + chrono::Duration::seconds(2),
    );
    assert_none(
        "after 5 min",
        &escalations_of(&mut supervisor, QUIET, &jump_id).await,
    );
    // Nor is a second before its own.
    advance_to(&rig, due - chrono::Duration::seconds(3));
    assert_none(
        "before 15 min",
        &escalations_of(&mut supervisor, QUIET, &jump_id).await,
    );
    assert!(
        rig.app.clock.now() < due,
        "the quiet watch outlasted its margin"
    );

    advance_to(&rig, due + chrono::Duration::seconds(1));
    let escalated = supervisor
        .expect_alert(
            Duration::from_millis(2500),
            "the serious alert escalated",
            |f| f["alert"]["id"] == jump_id && f["change"] == "escalated",
        )
        .await;
    assert!(
        time(&escalated["alert"]["escalated_at"]) >= due,
        "{escalated}"
    );

    // Info alerts are never escalated ("0s"), however long they wait.
    rig.app.clock.advance(Duration::from_secs(2 * 3600));
    let _ = supervisor.alerts_for(QUIET).await;
    let info: Vec<&Value> = supervisor
        .received()
        .iter()
        .filter(|f| f["alert"]["id"] == battery_id && f["change"] == "escalated")
        .collect();
    assert!(info.is_empty(), "an info alert escalated: {info:?}");
    let detail = rig
        .app
        .get(
            &format!("/v1/alerts/{}", battery_id.as_str().unwrap()),
            &rig.supervisor,
        )
        .await
        .expect(200);
    assert_eq!(detail.body["status"], "open");
    assert_eq!(detail.body["escalated_at"], json!(null), "{}", detail.text);
    assert_no_lost_contact(&supervisor, "supervisor");
}
