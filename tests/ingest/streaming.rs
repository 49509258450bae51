//! Acks, deduplication, batches, live state, revocation and replacement.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::support::device::{
    batch_json, fix_json, now_ts, status_json, ConnectError, Device, ServerMessage,
};
use crate::support::{spawn_app, TestApp};

const WAIT: Duration = Duration::from_secs(10);

pub struct Registered {
    pub id: String,
    pub token: String,
}

pub async fn register(app: &TestApp, admin: &str) -> Registered {
    let serial = format!("TAG-{}", uuid::Uuid::new_v4().simple());
    let reply = app
        .post("/v1/devices", admin, json!({ "serial": serial }))
        .await
        .expect(201);
    Registered {
        id: reply.id(),
        token: reply.body["token"].as_str().unwrap().to_owned(),
    }
}

/// Puts `tag` on `supervisee` (as the admin).
pub async fn assign(app: &TestApp, admin: &str, supervisee: &str, tag: &Registered) {
    app.put(
        &format!("/v1/supervisees/{supervisee}/device"),
        admin,
        Some(json!({ "device_id": tag.id })),
    )
    .await
    .expect(200);
}

pub fn ws(app: &TestApp) -> String {
    format!("ws://{}", app.addr)
}

pub fn seqs(range: std::ops::RangeInclusive<u64>) -> BTreeSet<u64> {
    range.collect()
}

pub async fn stored(app: &TestApp, device: &str) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "select seq, count(*) from fixes where device_id = $1::uuid group by seq order by seq",
    )
    .bind(device)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unknown_token_is_refused_with_401_before_any_upgrade() {
    let app = spawn_app().await;
    let refused = Device::connect(&ws(&app), "gwd_not-a-token").await.err();
    assert_eq!(refused, Some(ConnectError::Http(401)));
}

#[tokio::test]
async fn a_fix_is_acknowledged_only_once_its_transaction_has_committed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    // Hold a lock that blocks every insert into the history.
    let mut blocker = sqlx::PgConnection::connect(&app.config.database.url)
        .await
        .unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("lock table fixes in exclusive mode")
        .execute(&mut *tx)
        .await
        .unwrap();
    device
        .send_fix(1, &now_ts(), 33.62, 114.65, 8.0)
        .await
        .unwrap();
    assert_eq!(
        device.next_message(Duration::from_secs(1)).await,
        None,
        "no ack before the commit"
    );
    tx.rollback().await.unwrap();
    let acked = device.wait_acks(&seqs(1..=1), WAIT).await;
    assert_eq!(acked, seqs(1..=1));
    assert_eq!(stored(&app, &tag.id).await, vec![(1, 1)]);
}

#[tokio::test]
async fn a_resent_seq_is_acknowledged_again_and_stored_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let ts = now_ts();
    for _ in 0..3 {
        device.send_fix(7, &ts, 33.62, 114.65, 8.0).await.unwrap();
        assert_eq!(device.wait_acks(&seqs(7..=7), WAIT).await, seqs(7..=7));
    }
    // Also within one batch.
    device
        .send_batch(vec![
            fix_json(8, &ts, 33.62, 114.65, 8.0),
            fix_json(8, &ts, 33.62, 114.65, 8.0),
        ])
        .await
        .unwrap();
    device.wait_acks(&seqs(8..=8), WAIT).await;
    assert_eq!(stored(&app, &tag.id).await, vec![(7, 1), (8, 1)]);
    let metrics = app.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert!(
        metrics.text.contains("geoward_reports_duplicate_total 3"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn a_batch_of_a_thousand_buffered_fixes_is_stored_in_order() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &officer_id).await;
    let tag = register(&app, &admin).await;
    assign(&app, &admin, &supervisee, &tag).await;
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let items: Vec<_> = (1..=1000u64)
        .map(|i| {
            let ts = (start + chrono::Duration::seconds(i as i64 * 5)).to_rfc3339();
            fix_json(i, &ts, 33.62 + i as f64 * 1e-5, 114.65, 10.0)
        })
        .collect();
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    device.send_batch(items).await.unwrap();
    assert_eq!(
        device.wait_acks(&seqs(1..=1000), WAIT).await,
        seqs(1..=1000)
    );
    let rows: Vec<(i64,)> =
        sqlx::query_as("select seq from fixes where device_id = $1::uuid order by ts")
            .bind(&tag.id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=1000).collect::<Vec<i64>>()
    );
    let track = app
        .get(
            &format!(
                "/v1/supervisees/{supervisee}/track?from={}&limit=10000",
                urlencode(&start.to_rfc3339())
            ),
            &officer,
        )
        .await
        .expect(200);
    let features = track.body["features"].as_array().unwrap();
    assert_eq!(features.len(), 1000);
    assert_eq!(features[0]["properties"]["seq"], 1);
    assert_eq!(features[999]["properties"]["seq"], 1000);
}

pub fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_late_fix_is_stored_but_does_not_overwrite_newer_live_state() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let now = chrono::Utc::now();
    let newer = (now - chrono::Duration::seconds(10)).to_rfc3339();
    let older = (now - chrono::Duration::seconds(600)).to_rfc3339();
    device
        .send_fix(2, &newer, 33.6300, 114.6600, 5.0)
        .await
        .unwrap();
    device.wait_acks(&seqs(2..=2), WAIT).await;
    device
        .send_fix(1, &older, 33.5000, 114.5000, 5.0)
        .await
        .unwrap();
    device.wait_acks(&seqs(1..=1), WAIT).await;
    device
        .send_json(&status_json(3, &older, 40, "closed"))
        .await
        .unwrap();
    device.wait_acks(&seqs(3..=3), WAIT).await;
    assert_eq!(stored(&app, &tag.id).await, vec![(1, 1), (2, 1), (3, 1)]);
    let live = live_state(&app).await;
    let id: uuid::Uuid = tag.id.parse().unwrap();
    // The writer updates live state just after acking: allow it a moment.
    let mut position = None;
    for _ in 0..50 {
        position = live.device(id).await.unwrap();
        if position
            .as_ref()
            .is_some_and(|p| p.bat.is_some() && p.last_report.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let position = position.expect("live state");
    assert_eq!(position.seq, Some(2));
    assert_eq!(position.lat, Some(33.63));
    // The battery from the newer fix (87) stands; the late status (40) does not overwrite it.
    assert_eq!(position.bat, Some(87));
}

pub async fn live_state(app: &TestApp) -> geoward::live::devices::LiveState {
    let live = geoward::live::Live::connect(&app.config.redis, Duration::from_secs(5))
        .await
        .unwrap();
    geoward::live::devices::LiveState::new(live, Duration::from_secs(3600))
}

#[tokio::test]
async fn a_revoked_device_is_cut_off_and_cannot_reconnect() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    device
        .send_fix(1, &now_ts(), 33.62, 114.65, 8.0)
        .await
        .unwrap();
    device.wait_acks(&seqs(1..=1), WAIT).await;
    app.post(&format!("/v1/devices/{}/revoke", tag.id), &admin, json!({}))
        .await
        .expect(200);
    let closed = loop {
        match device.next_message(WAIT).await {
            Some(ServerMessage::Closed { code, .. }) => break code,
            Some(_) => continue,
            None => panic!("the revoked connection stayed open"),
        }
    };
    assert_eq!(closed, Some(1008));
    assert_eq!(
        Device::connect(&ws(&app), &tag.token).await.err(),
        Some(ConnectError::Http(401))
    );
}

#[tokio::test]
async fn a_reconnecting_device_replaces_its_old_connection() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut old = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let mut new = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let closed = old.next_message(WAIT).await;
    assert!(
        matches!(
            closed,
            Some(ServerMessage::Closed {
                code: Some(4000),
                ..
            })
        ),
        "{closed:?}"
    );
    new.send_fix(1, &now_ts(), 33.62, 114.65, 8.0)
        .await
        .unwrap();
    assert_eq!(new.wait_acks(&seqs(1..=1), WAIT).await, seqs(1..=1));
    // The old connection lingers at most briefly for the peer's answer to its close.
    let mut open = String::new();
    for _ in 0..50 {
        let metrics = app.call(reqwest::Method::GET, "/metrics", None, None).await;
        open = metrics
            .text
            .lines()
            .find(|l| l.starts_with("geoward_connections{kind=\"device\"}"))
            .unwrap_or_default()
            .to_owned();
        if open.ends_with(" 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open.ends_with(" 1"), "{open}");
}

#[tokio::test]
async fn reports_from_an_unassigned_device_are_stored_without_a_wearer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, _) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &officer_id).await;
    let loose = register(&app, &admin).await;
    let worn = register(&app, &admin).await;
    assign(&app, &admin, &supervisee, &worn).await;
    for tag in [&loose, &worn] {
        let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
        device
            .send_fix(1, &now_ts(), 33.62, 114.65, 8.0)
            .await
            .unwrap();
        device.wait_acks(&seqs(1..=1), WAIT).await;
    }
    let rows: Vec<(String, Option<uuid::Uuid>)> =
        sqlx::query_as("select device_id::text, supervisee_id from fixes order by device_id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    for (device, wearer) in rows {
        if device == loose.id {
            assert_eq!(wearer, None);
        } else {
            assert_eq!(wearer.map(|w| w.to_string()), Some(supervisee.clone()));
        }
    }
}

#[tokio::test]
async fn on_shutdown_a_device_gets_its_acks_then_a_1001_close() {
    let mut app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let items: Vec<_> = (1..=200u64)
        .map(|i| fix_json(i, &now_ts(), 33.62, 114.65, 8.0))
        .collect();
    device.send_json(&batch_json(items)).await.unwrap();
    // Give the frame a moment to be read, then shut down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop().await;
    let acked = device.wait_acks(&seqs(1..=200), WAIT).await;
    assert_eq!(acked, seqs(1..=200));
    let closed = loop {
        match device.next_message(WAIT).await {
            Some(ServerMessage::Closed { code, .. }) => break code,
            Some(_) => continue,
            None => panic!("no close frame"),
        }
    };
    assert_eq!(closed, Some(1001));
}

#[tokio::test]
async fn a_device_given_to_another_supervisee_mid_connection_reports_for_the_new_wearer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, _) = app.account(&admin, "officer").await;
    let first = app.supervisee(&admin, &officer_id).await;
    let second = app.supervisee(&admin, &officer_id).await;
    let tag = register(&app, &admin).await;
    assign(&app, &admin, &first, &tag).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    device
        .send_fix(1, &now_ts(), 33.62, 114.65, 8.0)
        .await
        .unwrap();
    device.wait_acks(&seqs(1..=1), WAIT).await;
    app.delete(&format!("/v1/supervisees/{first}/device"), &admin)
        .await
        .expect(204);
    assign(&app, &admin, &second, &tag).await;
    // The change is announced to the connection; give it a moment to re-read its record.
    tokio::time::sleep(Duration::from_millis(300)).await;
    device
        .send_fix(2, &now_ts(), 33.62, 114.65, 8.0)
        .await
        .unwrap();
    device.wait_acks(&seqs(2..=2), WAIT).await;
    let rows: Vec<(i64, Option<uuid::Uuid>)> =
        sqlx::query_as("select seq, supervisee_id from fixes order by seq")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let wearers: Vec<Option<String>> = rows.iter().map(|r| r.1.map(|w| w.to_string())).collect();
    assert_eq!(wearers, vec![Some(first), Some(second)]);
}
