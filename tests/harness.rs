//! Self-test of the fault-test harness: private PostgreSQL and Redis that stop and start again,
//! the real geoward binary killed and restarted, and the device client against a small
//! in-process WebSocket server standing in for geoward's device endpoint.
//!
//! These tests need the PostgreSQL server binaries and redis-server installed; without them
//! they fail with a message saying what to install (they never skip).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use support::device::{
    fix_json, now_ts, ConnectError, Device, ServerMessage, StreamConfig, StreamingDevice,
};
use support::private_stores::{port_open, PrivatePostgres, PrivateRedis};
use support::server_process::ServerProcess;

async fn select_one(url: &str) -> anyhow::Result<i32> {
    let mut conn =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url)).await??;
    let (one,): (i32,) = sqlx::query_as("select 1").fetch_one(&mut conn).await?;
    let _ = conn.close().await;
    Ok(one)
}

async fn ping(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await??;
    Ok(redis::cmd("PING").query_async(&mut conn).await?)
}

#[tokio::test]
async fn a_private_postgres_stops_and_starts_again_on_the_same_port_with_its_data() {
    let mut pg = PrivatePostgres::start().await.expect("private PostgreSQL");
    let port = pg.port();
    let url = pg
        .create_database("harness")
        .await
        .expect("create database");
    assert_eq!(select_one(&url).await.expect("select 1"), 1);
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("create table kept (v int); insert into kept values (7)")
        .execute(&mut conn)
        .await
        .expect("write");

    pg.stop().await.expect("fast shutdown");
    assert!(
        select_one(&url).await.is_err(),
        "stopped PostgreSQL still answers"
    );
    assert!(
        sqlx::query("select 1").execute(&mut conn).await.is_err(),
        "an open connection survived the shutdown"
    );

    pg.start_again().await.expect("start again");
    assert_eq!(pg.port(), port);
    assert_eq!(select_one(&url).await.expect("select 1 after restart"), 1);

    // A crash-like stop: recovery at the next start keeps committed rows.
    pg.kill().await.expect("immediate shutdown");
    assert!(
        select_one(&url).await.is_err(),
        "killed PostgreSQL still answers"
    );
    pg.start_again().await.expect("start again after kill");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("reconnect");
    let (v,): (i32,) = sqlx::query_as("select v from kept")
        .fetch_one(&mut conn)
        .await
        .expect("row kept");
    assert_eq!(v, 7);
}

#[tokio::test]
async fn a_private_redis_stops_and_starts_again_on_the_same_port() {
    let mut redis = PrivateRedis::start().await.expect("private Redis");
    let port = redis.port();
    assert_eq!(ping(&redis.url()).await.expect("PING"), "PONG");

    redis.stop().await.expect("stop");
    assert!(!port_open(port).await, "port {port} still open after stop");
    assert!(
        ping(&redis.url()).await.is_err(),
        "stopped Redis still answers"
    );

    redis.start_again().await.expect("start again");
    assert_eq!(redis.port(), port);
    assert_eq!(
        ping(&redis.url()).await.expect("PING after restart"),
        "PONG"
    );

    redis.kill().await.expect("kill");
    assert!(
        ping(&redis.url()).await.is_err(),
        "killed Redis still answers"
    );
    redis.start_again().await.expect("start again after kill");
    assert_eq!(ping(&redis.url()).await.expect("PING after kill"), "PONG");
}

#[tokio::test]
async fn a_geoward_process_is_healthy_again_after_sigkill_and_restart() {
    let (pg, redis) = tokio::join!(PrivatePostgres::start(), PrivateRedis::start());
    let (pg, redis) = (
        pg.expect("private PostgreSQL"),
        redis.expect("private Redis"),
    );
    let database = pg.create_database("geoward").await.expect("database");
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", database.as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("GEOWARD_REDIS__KEY_PREFIX", "gwharness"),
        ("GEOWARD_BOOTSTRAP_ADMIN", "admin:admin-password-1"),
        ("GEOWARD_LOG__LEVEL", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let mut server = ServerProcess::spawn(&env).await.expect("geoward serves");
    let port = server.port();
    let first_pid = server.pid().expect("pid");
    assert!(server.healthy().await);
    assert!(server.ws_url().ends_with(&port.to_string()));

    server.sigkill().await.expect("sigkill");
    assert!(!server.healthy().await, "killed geoward still answers");
    assert!(
        !port_open(port).await,
        "port {port} still open after SIGKILL"
    );

    server.restart().await.expect("restart");
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), Some(first_pid));
    assert!(server.healthy().await);

    let status = server
        .sigterm(Duration::from_secs(20))
        .await
        .expect("drains on SIGTERM");
    assert!(
        status.success(),
        "geoward exited with {status} on SIGTERM; log:\n{}",
        server.log_tail(30)
    );
}

// ---------------------------------------------------------------------------------------------
// The device client against a stand-in for geoward's device endpoint.
// ---------------------------------------------------------------------------------------------

const TOKEN: &str = "device-token-1";

/// A stand-in device endpoint: 401 for a wrong token; acks fixes, statuses and batch items;
/// answers a fix with lat > 90 with `invalid_fix`; closes with 1008 on the text "policy".
/// The first connection is dropped (no close frame, last frame unacked) after
/// `drop_first_after` frames, when that is non-zero. Returns the ws base URL and a counter of
/// accepted connections.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback type
async fn stand_in_server(drop_first_after: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("ws://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let check = |request: &Request, response: Response| {
                    let authorised = request.uri().path() == "/v1/device/ws"
                        && request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            == Some(&format!("Bearer {TOKEN}"));
                    if authorised {
                        Ok(response)
                    } else {
                        let refused: ErrorResponse = http::Response::builder()
                            .status(401)
                            .body(Some("unauthorized".into()))
                            .expect("response");
                        Err(refused)
                    }
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
                    return;
                };
                let nth = counter.fetch_add(1, Ordering::SeqCst);
                let mut frames = 0;
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    frames += 1;
                    if nth == 0 && drop_first_after > 0 && frames >= drop_first_after {
                        return; // dropped: TCP closes without a close frame
                    }
                    if text.as_str() == "policy" {
                        let frame = CloseFrame {
                            code: CloseCode::Policy,
                            reason: "policy".into(),
                        };
                        let _ = ws.close(Some(frame)).await;
                        return;
                    }
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let items = match value["type"].as_str() {
                        Some("batch") => value["items"].as_array().cloned().unwrap_or_default(),
                        _ => vec![value],
                    };
                    let mut acks = Vec::new();
                    for item in items {
                        let seq = item["seq"].as_u64().unwrap_or_default();
                        if item["lat"].as_f64().is_some_and(|lat| lat > 90.0) {
                            let error = json!({"type": "error", "seq": seq, "code": "invalid_fix", "message": "lat out of range"});
                            let _ = ws.send(Message::text(error.to_string())).await;
                        } else {
                            acks.push(seq);
                        }
                    }
                    if !acks.is_empty() {
                        let ack = json!({"type": "ack", "seqs": acks});
                        let _ = ws.send(Message::text(ack.to_string())).await;
                    }
                }
            });
        }
    });
    (base, connections)
}

#[tokio::test]
async fn a_device_reads_acks_errors_refusals_and_close_codes() {
    let (base, _) = stand_in_server(0).await;

    let refused = Device::connect(&base, "wrong-token").await.err();
    assert_eq!(refused, Some(ConnectError::Http(401)));

    let mut device = Device::connect(&base, TOKEN).await.expect("connect");
    let ts = now_ts();
    device
        .send_fix(1, &ts, 33.6251, 114.6512, 6.5)
        .await
        .expect("send");
    device
        .send_batch(vec![
            fix_json(2, &ts, 33.6252, 114.6513, 6.5),
            fix_json(3, &ts, 33.6253, 114.6514, 6.5),
        ])
        .await
        .expect("send batch");
    let expected: BTreeSet<u64> = [1, 2, 3].into();
    let acked = device.wait_acks(&expected, Duration::from_secs(5)).await;
    assert_eq!(acked, expected);

    device
        .send_json(&fix_json(4, &ts, 91.0, 114.6512, 6.5))
        .await
        .expect("send");
    match device.next_message(Duration::from_secs(5)).await {
        Some(ServerMessage::Error { seq, code, .. }) => {
            assert_eq!((seq, code.as_str()), (Some(4), "invalid_fix"))
        }
        other => panic!("expected an error, got {other:?}"),
    }

    device.send_text("policy").await.expect("send");
    match device.next_message(Duration::from_secs(5)).await {
        Some(ServerMessage::Closed { code, .. }) => assert_eq!(code, Some(1008)),
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(device.is_closed());
    assert!(device
        .next_message(Duration::from_millis(10))
        .await
        .is_some());
}

#[tokio::test]
async fn a_streaming_device_resends_everything_unacked_after_losing_its_connection() {
    for resend_batch in [0, 50] {
        let (base, connections) = stand_in_server(15).await;
        let mut config = StreamConfig::new(&base, TOKEN);
        config.fixes_per_second = 100.0;
        config.resend_batch = resend_batch;
        let mut device = StreamingDevice::start(config);

        let reconnected = device
            .wait_until(Duration::from_secs(10), |s| {
                s.connects >= 2 && s.acked.len() >= 40
            })
            .await;
        assert!(reconnected, "no reconnection: {:?}", device.stats());
        assert!(device.drain(Duration::from_secs(10)).await, "unacked left");
        let stats = device.stop().await;
        assert_eq!(stats.acked, stats.sent, "every sampled fix acked");
        assert!(stats.resent >= 1, "the dropped frame was resent: {stats:?}");
        assert!(stats.closes.contains(&None));
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert!(stats.rejected.is_empty());
    }
}
