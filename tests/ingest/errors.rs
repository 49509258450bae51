//! Every documented error code, produced by the input that should produce it; and the close
//! codes for oversized frames, flooding and garbage. Other devices are unaffected.

use std::time::Duration;

use serde_json::json;

use crate::streaming::{register, seqs, ws};
use crate::support::device::{batch_json, fix_json, now_ts, Device, ServerMessage};
use crate::support::{spawn_app, spawn_app_with, test_config};

const WAIT: Duration = Duration::from_secs(10);

async fn next_error(device: &mut Device) -> (Option<u64>, String, String) {
    loop {
        match device.next_message(WAIT).await {
            Some(ServerMessage::Error { seq, code, message }) => return (seq, code, message),
            Some(ServerMessage::Ack(_)) => continue,
            other => panic!("expected an error frame, got {other:?}"),
        }
    }
}

async fn close_code(device: &mut Device) -> Option<u16> {
    loop {
        match device.next_message(WAIT).await {
            Some(ServerMessage::Closed { code, .. }) => return code,
            Some(_) => continue,
            None => panic!("the connection stayed open"),
        }
    }
}

#[tokio::test]
async fn each_bad_report_gets_its_documented_error_code_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let now = now_ts();
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let ancient = (chrono::Utc::now() - chrono::Duration::days(60)).to_rfc3339();
    let mut too_big: Vec<_> = (1..=1001u64)
        .map(|i| fix_json(i, &now, 33.62, 114.65, 5.0))
        .collect();
    let cases = vec![
        ("not json".to_owned(), None, "malformed_json"),
        (
            json!({"type": "selfie", "seq": 1}).to_string(),
            Some(1),
            "unknown_type",
        ),
        (
            json!({"type": "fix", "seq": 2, "ts": now, "lon": 114.65}).to_string(),
            Some(2),
            "missing_field",
        ),
        (
            json!({"type": "fix", "seq": 3, "ts": now, "lat": 33.6, "lon": 114.6, "bat": 150})
                .to_string(),
            Some(3),
            "invalid_field",
        ),
        (
            json!({"type": "fix", "seq": 4, "ts": now, "lat": 91.2, "lon": 114.6}).to_string(),
            Some(4),
            "invalid_fix",
        ),
        (
            json!({"type": "fix", "seq": 5, "ts": future, "lat": 33.6, "lon": 114.6}).to_string(),
            Some(5),
            "invalid_ts",
        ),
        (
            json!({"type": "fix", "seq": 6, "ts": ancient, "lat": 33.6, "lon": 114.6}).to_string(),
            Some(6),
            "invalid_ts",
        ),
        (
            json!({"type": "fix", "seq": -1, "ts": now, "lat": 33.6, "lon": 114.6}).to_string(),
            None,
            "invalid_seq",
        ),
        (
            batch_json(std::mem::take(&mut too_big)).to_string(),
            None,
            "batch_too_large",
        ),
        (
            json!({"type": "batch", "items": []}).to_string(),
            None,
            "empty_batch",
        ),
        (
            json!({"type": "batch", "items": [{"type": "batch", "items": []}]}).to_string(),
            None,
            "unknown_type",
        ),
    ];
    for (frame, seq, code) in cases {
        device.send_text(&frame).await.unwrap();
        let (got_seq, got_code, message) = next_error(&mut device).await;
        assert_eq!(
            (got_seq, got_code.as_str()),
            (seq, code),
            "frame {}",
            &frame[..frame.len().min(120)]
        );
        assert!(!message.is_empty());
    }
    device.send_binary(vec![1, 2, 3]).await.unwrap();
    assert_eq!(next_error(&mut device).await.1, "binary_frame");
    // The connection still works, and the error frame names the field for lat.
    device.send_fix(10, &now, 33.62, 114.65, 5.0).await.unwrap();
    assert_eq!(device.wait_acks(&seqs(10..=10), WAIT).await, seqs(10..=10));
    let metrics = app.call(reqwest::Method::GET, "/metrics", None, None).await;
    for code in [
        "malformed_json",
        "invalid_fix",
        "invalid_ts",
        "batch_too_large",
        "binary_frame",
    ] {
        assert!(
            metrics.text.contains(&format!(
                "geoward_reports_rejected_total{{code=\"{code}\"}}"
            )),
            "no counter for {code}"
        );
    }
    let (rows,): (i64,) = sqlx::query_as("select count(*) from fixes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1, "nothing rejected was stored");
}

#[tokio::test]
async fn a_batch_with_some_bad_items_stores_the_good_ones_and_rejects_each_bad_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let now = now_ts();
    device
        .send_batch(vec![
            fix_json(1, &now, 33.62, 114.65, 5.0),
            fix_json(2, &now, 95.0, 114.65, 5.0),
            fix_json(3, &now, 33.62, 114.65, 5.0),
        ])
        .await
        .unwrap();
    let acked = device
        .wait_acks(&seqs(1..=3).into_iter().filter(|s| *s != 2).collect(), WAIT)
        .await;
    assert!(acked.contains(&1) && acked.contains(&3) && !acked.contains(&2));
    assert!(device.other_messages.iter().any(
        |m| matches!(m, ServerMessage::Error { seq: Some(2), code, .. } if code == "invalid_fix")
    ));
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_with_1009_and_others_are_unaffected() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let bystander_tag = register(&app, &admin).await;
    let mut bystander = Device::connect(&ws(&app), &bystander_tag.token)
        .await
        .unwrap();
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    let huge = format!(
        "{{\"type\":\"fix\",\"pad\":\"{}\"}}",
        "x".repeat(app.config.ingest.max_frame_bytes + 10)
    );
    let _ = device.send_text(&huge).await;
    let (_, code, _) = next_error(&mut device).await;
    assert_eq!(code, "frame_too_large");
    assert_eq!(close_code(&mut device).await, Some(1009));
    bystander
        .send_fix(1, &now_ts(), 33.62, 114.65, 5.0)
        .await
        .unwrap();
    assert_eq!(bystander.wait_acks(&seqs(1..=1), WAIT).await, seqs(1..=1));
}

#[tokio::test]
async fn a_device_that_keeps_sending_garbage_is_closed_with_1008() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    for _ in 0..app.config.ingest.garbage_limit {
        let _ = device.send_text("%%%%").await;
    }
    assert_eq!(close_code(&mut device).await, Some(1008));
}

#[tokio::test]
async fn a_flooding_device_is_closed_with_1008() {
    let (mut config, database) = test_config().await;
    config.ingest.flood_burst = 5;
    config.ingest.flood_frames_per_s = 1;
    let app = spawn_app_with(config, database).await;
    let admin = app.admin_token().await;
    let tag = register(&app, &admin).await;
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    for seq in 1..=20u64 {
        if device
            .send_fix(seq, &now_ts(), 33.62, 114.65, 5.0)
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut device).await, Some(1008));
}
