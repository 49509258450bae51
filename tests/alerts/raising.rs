//! Raising alerts from fixes: the right officer, once, never from jitter, late data flagged.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::support::device::{batch_json, fix_json};
use crate::{enter, kinds, leave, ts, Rig, AWAY, QUIET, SOON, ZONE_LAT, ZONE_LON};

#[tokio::test]
async fn an_exclusion_zone_entry_reaches_the_right_officer_and_not_another() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut other = rig.feed(&rig.officer_b.1).await;
    let mut supervisor = rig.feed(&rig.supervisor).await;

    let mut device = person.device(&rig.app.ws_base()).await;
    // Fixes 30 s apart: a walk (or a drive) in, not a jump.
    enter(&mut device, 1).await;

    let alert = own
        .expect_alert(
            SOON,
            "the entry alert on the caseload officer's feed",
            |f| f["alert"]["kind"] == "exclusion_zone_entered",
        )
        .await;
    assert_eq!(alert["change"], "opened");
    let a = &alert["alert"];
    assert_eq!(a["supervisee_id"], json!(person.supervisee_id));
    assert_eq!(a["zone_id"], json!(person.zone_ids[0]));
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["status"], "open");
    assert_eq!(a["late"], false);
    assert_eq!(a["cleared_at"], json!(null));
    assert_eq!(a["seq"], 3, "decided by the second confirming fix");
    assert!((a["position"]["lat"].as_f64().unwrap() - ZONE_LAT).abs() < 1e-9);
    for field in [
        "id",
        "event_at",
        "opened_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
    ] {
        assert!(a.get(field).is_some(), "alert JSON lacks {field}: {a}");
    }
    supervisor
        .expect_alert(SOON, "the entry alert on a supervisor's feed", |f| {
            f["alert"]["id"] == a["id"]
        })
        .await;
    let foreign = other.alerts_for(QUIET).await;
    assert!(
        foreign.is_empty(),
        "another caseload's officer was told: {foreign:?}"
    );

    // Stored before it was sent, and listed only for those who may see it.
    let listed = rig
        .app
        .get("/v1/alerts", &rig.officer_a.1)
        .await
        .expect(200);
    assert_eq!(listed.body["alerts"][0]["id"], a["id"]);
    let hidden = rig
        .app
        .get("/v1/alerts", &rig.officer_b.1)
        .await
        .expect(200);
    assert_eq!(hidden.body["alerts"], json!([]));
    let detail = rig
        .app
        .get(
            &format!("/v1/alerts/{}", a["id"].as_str().unwrap()),
            &rig.officer_a.1,
        )
        .await
        .expect(200);
    assert_eq!(detail.body["events"][0]["action"], "opened");

    // Staying inside is the same condition: no second alert. Leaving clears it.
    leave(&mut device, 4).await;
    let cleared = own
        .expect_alert(SOON, "the alert cleared after leaving", |f| {
            f["change"] == "cleared"
        })
        .await;
    assert_eq!(cleared["alert"]["id"], a["id"]);
    assert!(cleared["alert"]["cleared_at"].is_string());
    assert_eq!(
        cleared["alert"]["status"], "open",
        "cleared is not resolved"
    );
    let rest = own.alerts_for(QUIET).await;
    assert!(
        rest.is_empty(),
        "more than one alert for one condition: {:?}",
        kinds(&rest)
    );
}

#[tokio::test]
async fn jitter_at_a_zone_border_raises_nothing() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut device = person.device(&rig.app.ws_base()).await;
    // A person standing 10 m outside the 200 m circle: fixes scattered around them with an
    // honest 25 m accuracy straddle the border, and so are uncertain, never "inside".
    let metres_per_deg_lon = 111_320.0 * (crate::ZONE_LAT.to_radians()).cos();
    let standing = ZONE_LON + (crate::ZONE_RADIUS_M + 10.0) / metres_per_deg_lon;
    let mut seqs = BTreeSet::new();
    for i in 0..30u64 {
        let wobble = ((i * 7919) % 11) as f64 - 5.0; // -5..5 m, deterministic
        let lon = standing + (wobble * 3.0) / metres_per_deg_lon;
        device
            .send_fix(i + 1, &ts(-60.0 + i as f64), ZONE_LAT, lon, 25.0)
            .await
            .unwrap();
        seqs.insert(i + 1);
    }
    assert_eq!(device.wait_acks(&seqs, SOON).await, seqs);
    let raised = own.alerts_for(QUIET).await;
    assert!(
        raised.is_empty(),
        "border jitter raised {:?}",
        kinds(&raised)
    );
    let listed = rig
        .app
        .get("/v1/alerts", &rig.officer_a.1)
        .await
        .expect(200);
    assert_eq!(listed.body["alerts"], json!([]));
}

#[tokio::test]
async fn a_backfilled_batch_raises_a_late_alert() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut device = person.device(&rig.app.ws_base()).await;
    // Out of coverage for half an hour, the device was inside the zone; it uploads its buffer
    // (oldest first) when it gets signal back, already outside again.
    let items = vec![
        fix_json(1, &ts(-1800.0), AWAY.0, AWAY.1, 10.0),
        fix_json(2, &ts(-1740.0), ZONE_LAT, ZONE_LON, 10.0),
        fix_json(3, &ts(-1680.0), ZONE_LAT, ZONE_LON, 10.0),
        fix_json(4, &ts(-1620.0), AWAY.0, AWAY.1, 10.0),
        fix_json(5, &ts(-1560.0), AWAY.0, AWAY.1, 10.0),
    ];
    device.send_json(&batch_json(items)).await.unwrap();
    let all: BTreeSet<u64> = (1..=5).collect();
    assert_eq!(device.wait_acks(&all, SOON).await, all);
    let opened = own
        .expect_alert(SOON, "a late entry alert", |f| {
            f["change"] == "opened" && f["alert"]["kind"] == "exclusion_zone_entered"
        })
        .await;
    assert_eq!(opened["alert"]["late"], true, "{opened}");
    assert_eq!(opened["alert"]["seq"], 3);
    let event_at: chrono::DateTime<chrono::Utc> = opened["alert"]["event_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        chrono::Utc::now() - event_at > chrono::Duration::minutes(25),
        "event_at is the device time of the deciding fix, not the upload: {event_at}"
    );
    // The condition ended inside the buffer too: the alert is already cleared.
    let cleared = own
        .expect_alert(SOON, "the late alert cleared", |f| f["change"] == "cleared")
        .await;
    assert_eq!(cleared["alert"]["id"], opened["alert"]["id"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_strap_opened_in_a_status_report_raises_a_tamper_alert_and_the_live_position_is_served() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut device = person.device(&rig.app.ws_base()).await;
    device
        .send_fix(1, &ts(-5.0), AWAY.0, AWAY.1, 12.0)
        .await
        .unwrap();
    device
        .send_json(&crate::support::device::status_json(
            2,
            &ts(-1.0),
            64,
            "open",
        ))
        .await
        .unwrap();
    let all = BTreeSet::from([1, 2]);
    assert_eq!(device.wait_acks(&all, SOON).await, all);
    let tamper = own
        .expect_alert(SOON, "a strap tamper alert", |f| {
            f["alert"]["kind"] == "strap_tamper"
        })
        .await;
    assert_eq!(tamper["change"], "opened");
    assert_eq!(tamper["alert"]["severity"], "critical");
    assert_eq!(tamper["alert"]["seq"], 2);

    let path = format!("/v1/supervisees/{}/position", person.supervisee_id);
    let position = rig.app.get(&path, &rig.officer_a.1).await.expect(200);
    assert_eq!(position.body["supervisee_id"], json!(person.supervisee_id));
    assert_eq!(position.body["device_id"], json!(person.device_id));
    assert_eq!(position.body["fix"]["seq"], 1);
    assert!((position.body["fix"]["lat"].as_f64().unwrap() - AWAY.0).abs() < 1e-9);
    assert_eq!(position.body["strap"], "open");
    assert!(position.body["last_report_at"].is_string());
    rig.app.get(&path, &rig.officer_b.1).await.expect(404);
    let audit = rig.app.audit_rows("supervisee.position_read").await;
    assert_eq!(
        audit.len(),
        1,
        "one audited read (the refused one is not a read)"
    );
}
