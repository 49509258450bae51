//! Fleets against a small in-test WebSocket server (real sockets, no mocks), and the worker
//! protocol as pure functions (a test binary cannot be its own worker).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

use super::worker::{split_jobs, worker_config, FromWorker, ToWorker, WorkerStart};
use super::*;
use crate::ledger::Window;
use crate::movement::{Area, Person};
use crate::script::DevicePlan;

/// What the test server does besides acking every report.
#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Answer this seq with an `invalid_fix` error frame instead of an ack.
    error_seq: Option<u64>,
    /// The first time this seq arrives, drop the connection without acking it.
    drop_at_seq: Option<u64>,
    /// Send a non-JSON text frame and a binary frame when a device connects.
    garbage: bool,
}

/// What the server saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Connect,
    /// A `fix` or `status` frame.
    Report {
        seq: u64,
        ts: DateTime<Utc>,
    },
    Batch {
        seqs: Vec<u64>,
    },
    Close,
}

#[derive(Default)]
struct Log {
    events: Vec<(String, Seen)>,
    dropped: bool,
}

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Server {
    async fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let (l, b) = (log.clone(), Arc::new(behaviour));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, l.clone(), b.clone()));
            }
        });
        Server { addr, log }
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/device/ws", self.addr)
    }

    fn events(&self, token: &str) -> Vec<Seen> {
        let log = self.log.lock().unwrap();
        log.events
            .iter()
            .filter(|(t, _)| t == token)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every seq the server received from `token`, in arrival order, resends included.
    fn seqs(&self, token: &str) -> Vec<u64> {
        self.events(token)
            .into_iter()
            .flat_map(|e| match e {
                Seen::Report { seq, .. } => vec![seq],
                Seen::Batch { seqs } => seqs,
                _ => vec![],
            })
            .collect()
    }
}

#[allow(clippy::result_large_err)] // tungstenite's handshake callback type
async fn serve(stream: TcpStream, log: Arc<Mutex<Log>>, behaviour: Arc<Behaviour>) {
    let mut token = String::new();
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let bearer = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match bearer {
            Some(t) if t.starts_with("tok-") => {
                token = t.to_owned();
                Ok(response)
            }
            _ => {
                let mut refused = ErrorResponse::new(Some("unknown token".into()));
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                Err(refused)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    let record = |seen: Seen| log.lock().unwrap().events.push((token.clone(), seen));
    record(Seen::Connect);
    if behaviour.garbage {
        let _ = ws.send(Message::text("not json")).await;
        let _ = ws.send(Message::binary(vec![1, 2, 3])).await;
    }
    while let Some(Ok(message)) = ws.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => {
                record(Seen::Close);
                continue;
            }
            _ => continue,
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let report = |item: &serde_json::Value| item["seq"].as_u64().unwrap();
        let seqs: Vec<u64> = if v["type"] == "batch" {
            let seqs: Vec<u64> = v["items"].as_array().unwrap().iter().map(report).collect();
            record(Seen::Batch { seqs: seqs.clone() });
            seqs
        } else {
            let ts = v["ts"].as_str().unwrap().parse().unwrap();
            record(Seen::Report {
                seq: report(&v),
                ts,
            });
            vec![report(&v)]
        };
        if behaviour.drop_at_seq.is_some_and(|s| seqs.contains(&s)) {
            let mut log = log.lock().unwrap();
            if !log.dropped {
                log.dropped = true;
                return; // drops the socket: no ack, no close frame
            }
        }
        let mut acks = Vec::new();
        for seq in seqs {
            if Some(seq) == behaviour.error_seq {
                let error = format!(
                    r#"{{"type":"error","seq":{seq},"code":"invalid_fix","message":"lat out of range"}}"#
                );
                let _ = ws.send(Message::text(error)).await;
            } else {
                acks.push(seq.to_string());
            }
        }
        let ack = format!(r#"{{"type":"ack","seqs":[{}]}}"#, acks.join(","));
        let _ = ws.send(Message::text(ack)).await;
    }
}

fn token(i: usize) -> String {
    format!("tok-{i}")
}

fn jobs(n: usize, plan: impl Fn(usize) -> DevicePlan) -> Vec<DeviceJob> {
    (0..n)
        .map(|i| DeviceJob {
            index: i,
            token: token(i),
            person: Person::generate(i as u64, &Area::default()),
            device: plan(i),
        })
        .collect()
}

fn ordinary(i: usize) -> DevicePlan {
    DevicePlan::ordinary(i as u64, 90)
}

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

/// A fleet of `devices` starting 100 ms from now and ticking every `interval_ms` for `run_ms`.
fn config(server: &Server, devices: usize, interval_ms: u64, run_ms: i64) -> FleetConfig {
    let start = Utc::now() + ms(100);
    FleetConfig {
        ws_url: server.url(),
        start,
        end: start + ms(run_ms),
        interval: Duration::from_millis(interval_ms),
        devices_total: devices,
        workers: 0,
        source_ips: Vec::new(),
        connect_concurrency: 8,
    }
}

fn assert_each_seq_once_from_one(seqs: &[u64]) {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn every_report_is_acked_and_counted_once() {
    let server = Server::start(Behaviour::default()).await;
    let config = config(&server, 4, 20, 300);
    let fleet = Fleet::start(config, jobs(4, ordinary)).await.unwrap();
    let stats = fleet.finish(Duration::from_secs(2)).await;
    let mut total = 0;
    for i in 0..4 {
        let seqs = server.seqs(&token(i));
        assert!(seqs.len() >= 5, "device {i} sent {seqs:?}");
        assert_each_seq_once_from_one(&seqs);
        assert_eq!(server.events(&token(i)).last(), Some(&Seen::Close));
        total += seqs.len() as u64;
    }
    assert_eq!((stats.sent, stats.acked, stats.unacked), (total, total, 0));
    assert_eq!(stats.ack_latency.count(), total);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert_eq!((stats.max_connected, stats.connect_failures), (4, 0));
    assert_eq!(stats.reconnects, 0);
}

#[tokio::test]
async fn a_dropped_connection_is_reconnected_and_unacked_reports_are_resent() {
    let server = Server::start(Behaviour {
        drop_at_seq: Some(5),
        ..Behaviour::default()
    })
    .await;
    let fleet = Fleet::start(config(&server, 1, 20, 400), jobs(1, ordinary))
        .await
        .unwrap();
    let stats = fleet.finish(Duration::from_secs(3)).await;
    let seqs = server.seqs(&token(0));
    assert!(seqs.iter().filter(|&&s| s == 5).count() >= 2, "{seqs:?}");
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_each_seq_once_from_one(&unique);
    let n = unique.len() as u64;
    assert!(n > 5);
    assert_eq!((stats.sent, stats.acked, stats.unacked), (n, n, 0));
    assert_eq!(stats.reconnects, 1);
    let connects = server
        .events(&token(0))
        .iter()
        .filter(|e| **e == Seen::Connect)
        .count();
    assert_eq!(connects, 2);
    let socket_errors: u64 = stats
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("socket_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(socket_errors, 1, "{:?}", stats.errors);
}

#[tokio::test]
async fn an_error_frame_drops_its_seq_and_garbage_counts_as_bad_frames() {
    let server = Server::start(Behaviour {
        error_seq: Some(3),
        garbage: true,
        ..Behaviour::default()
    })
    .await;
    let fleet = Fleet::start(config(&server, 1, 20, 200), jobs(1, ordinary))
        .await
        .unwrap();
    let stats = fleet.finish(Duration::from_secs(2)).await;
    let n = server.seqs(&token(0)).len() as u64;
    assert!(n >= 4);
    assert_eq!((stats.sent, stats.acked, stats.unacked), (n, n - 1, 0));
    let want = BTreeMap::from([("bad_frame".to_owned(), 2), ("invalid_fix".to_owned(), 1)]);
    assert_eq!(stats.errors, want);
    assert_eq!(fleet_errors_total(&stats), 3);
}

fn fleet_errors_total(stats: &FleetStats) -> u64 {
    stats.errors.values().sum()
}

#[tokio::test]
async fn buffered_reports_are_flushed_as_one_batch_oldest_first() {
    let server = Server::start(Behaviour::default()).await;
    let config = config(&server, 1, 20, 400);
    let offline = Window::new(config.start + ms(60), config.start + ms(200));
    let plan = move |i| DevicePlan {
        offline: Some(offline),
        ..ordinary(i)
    };
    let fleet = Fleet::start(config, jobs(1, plan)).await.unwrap();
    let stats = fleet.finish(Duration::from_secs(2)).await;
    let events = server.events(&token(0));
    let batches: Vec<(usize, &Vec<u64>)> = events
        .iter()
        .enumerate()
        .filter_map(|(at, e)| match e {
            Seen::Batch { seqs } => Some((at, seqs)),
            _ => None,
        })
        .collect();
    assert_eq!(batches.len(), 1, "{events:?}");
    let (at, batch) = batches[0];
    assert!(batch.len() >= 3, "{batch:?}");
    assert!(batch.windows(2).all(|w| w[1] == w[0] + 1), "{batch:?}");
    let before: Vec<u64> = server
        .seqs(&token(0))
        .into_iter()
        .take_while(|s| s < &batch[0])
        .collect();
    assert_eq!(
        before,
        (1..batch[0]).collect::<Vec<_>>(),
        "sent before going offline"
    );
    let last = batch[batch.len() - 1];
    assert!(
        matches!(events.get(at + 1), Some(Seen::Report { seq, .. }) if *seq == last + 1),
        "the batch goes first, then the tick's own report: {events:?}"
    );
    let n = server.seqs(&token(0)).len() as u64;
    assert_eq!((stats.sent, stats.acked, stats.unacked), (n, n, 0));
    assert_eq!(stats.ack_latency.count(), n);
}

#[tokio::test]
async fn going_silent_closes_the_connection_and_sends_nothing_more() {
    let server = Server::start(Behaviour::default()).await;
    let config = config(&server, 1, 20, 400);
    let silent_from = config.start + ms(100);
    let plan = move |i| DevicePlan {
        silent_from: Some(silent_from),
        ..ordinary(i)
    };
    let fleet = Fleet::start(config, jobs(1, plan)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let at_silence = server.events(&token(0));
    let stats = fleet.finish(Duration::from_secs(2)).await;
    let events = server.events(&token(0));
    assert_eq!(events, at_silence, "nothing after going silent");
    assert_eq!(events.first(), Some(&Seen::Connect));
    assert_eq!(events.last(), Some(&Seen::Close));
    let reports: Vec<DateTime<Utc>> = events
        .iter()
        .filter_map(|e| match e {
            Seen::Report { ts, .. } => Some(*ts),
            _ => None,
        })
        .collect();
    assert!(!reports.is_empty());
    assert!(reports.iter().all(|ts| *ts < silent_from));
    assert_eq!(events.iter().filter(|e| **e == Seen::Connect).count(), 1);
    let n = reports.len() as u64;
    assert_eq!((stats.sent, stats.acked, stats.unacked), (n, n, 0));
    assert_eq!((stats.reconnects, stats.errors.len()), (0, 0));
}

#[tokio::test]
async fn set_interval_changes_the_rate() {
    let server = Server::start(Behaviour::default()).await;
    let config = config(&server, 2, 100, 1000);
    let start = instant_at(config.start);
    let fleet = Fleet::start(config, jobs(2, ordinary)).await.unwrap();
    tokio::time::sleep_until(start + Duration::from_millis(450)).await;
    let slow = fleet.snapshot().sent;
    fleet.set_interval(Duration::from_millis(10));
    tokio::time::sleep_until(start + Duration::from_millis(900)).await;
    let fast = fleet.snapshot().sent - slow;
    let window = fleet.take_window();
    let stats = fleet.finish(Duration::from_secs(2)).await;
    // 100 ms: about 5 ticks per device in 450 ms; 10 ms: about 45.
    assert!(slow <= 14 && fast >= 3 * slow, "slow {slow}, fast {fast}");
    assert_eq!(stats.sent, stats.acked);
    assert!(window.count() > 0 && window.count() <= stats.ack_latency.count());
}

#[tokio::test]
async fn a_refused_token_is_given_up_at_once_and_counted() {
    let server = Server::start(Behaviour::default()).await;
    let mut jobs = jobs(2, ordinary);
    jobs[1].token = "revoked".into();
    let fleet = Fleet::start(config(&server, 2, 20, 100), jobs)
        .await
        .unwrap();
    let stats = fleet.finish(Duration::from_secs(1)).await;
    assert_eq!((stats.connect_failures, stats.max_connected), (1, 1));
    assert_eq!(
        stats.errors,
        BTreeMap::from([("connect_http_401".to_owned(), 1)])
    );
    assert!(stats.sent > 0 && stats.sent == stats.acked);
}

#[test]
fn first_ticks_spread_evenly_over_one_interval() {
    let start = Utc::now();
    let interval = Duration::from_millis(100);
    assert_eq!(first_tick(start, 0, 4, interval), start);
    assert_eq!(first_tick(start, 1, 4, interval), start + ms(25));
    assert_eq!(first_tick(start, 3, 4, interval), start + ms(75));
    assert_eq!(
        first_tick(start, 1, 3, interval),
        start + chrono::Duration::nanoseconds(33_333_333)
    );
}

#[test]
fn jobs_are_split_into_contiguous_even_index_ranges() {
    let mut all = jobs(10, ordinary);
    all.reverse();
    let shares = split_jobs(all, 3);
    let indices: Vec<Vec<usize>> = shares
        .iter()
        .map(|s| s.iter().map(|j| j.index).collect())
        .collect();
    assert_eq!(
        indices,
        vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]
    );
    assert_eq!(split_jobs(jobs(3, ordinary), 8).len(), 3);
    assert!(split_jobs(Vec::new(), 2).is_empty());
}

#[test]
fn worker_w_runs_in_process_from_source_ip_w_mod_len() {
    let server_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let server = Server {
        addr: server_addr,
        log: Arc::default(),
    };
    let mut config = config(&server, 100, 20, 100);
    config.workers = 3;
    assert!(worker_config(&config, 1).source_ips.is_empty());
    config.source_ips = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
    for (w, ip) in [(0, "10.0.0.1"), (1, "10.0.0.2"), (2, "10.0.0.1")] {
        let c = worker_config(&config, w);
        assert_eq!(c.workers, 0);
        assert_eq!(c.source_ips, vec![ip.parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(
            (c.devices_total, c.start, c.interval),
            (100, config.start, config.interval)
        );
    }
}

#[test]
fn worker_protocol_lines_have_the_documented_shapes() {
    assert_eq!(
        serde_json::to_string(&ToWorker::IntervalMs(66.5)).unwrap(),
        r#"{"interval_ms":66.5}"#
    );
    assert_eq!(
        serde_json::to_string(&ToWorker::Finish { drain_ms: 5000 }).unwrap(),
        r#"{"finish":{"drain_ms":5000}}"#
    );
    assert_eq!(
        serde_json::from_str::<ToWorker>(r#"{"interval_ms": 50}"#).unwrap(),
        ToWorker::IntervalMs(50.0)
    );
    let mut window = Histogram::new();
    window.record(1500);
    let progress = FromWorker {
        snapshot: Some(Snapshot {
            connected: 3,
            sent: 10,
            ..Snapshot::default()
        }),
        window: Some(window.clone()),
        stats: None,
    };
    let text = serde_json::to_string(&progress).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["snapshot", "window"]);
    assert_eq!(serde_json::from_str::<FromWorker>(&text).unwrap(), progress);
    let stats = FleetStats {
        sent: 10,
        acked: 9,
        unacked: 1,
        errors: BTreeMap::from([("socket_eof".to_owned(), 1)]),
        closes: BTreeMap::from([(1001, 2)]),
        ack_latency: window,
        ..FleetStats::default()
    };
    let done = FromWorker {
        stats: Some(stats),
        ..FromWorker::default()
    };
    let text = super::worker::line(&done);
    assert!(
        text.starts_with(r#"{"stats":{"#) && text.ends_with("}\n"),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<FromWorker>(&text).unwrap(), done);
}

#[test]
fn the_start_line_carries_config_and_jobs_and_reads_back_equal() {
    let server = Server {
        addr: "127.0.0.1:1".parse().unwrap(),
        log: Arc::default(),
    };
    let start = WorkerStart {
        config: worker_config(&config(&server, 2, 20, 100), 0),
        jobs: jobs(2, ordinary),
    };
    let text = super::worker::line(&start);
    assert_eq!(text.matches('\n').count(), 1, "one line");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("config").is_some() && v["jobs"].as_array().unwrap().len() == 2);
    let back: WorkerStart = serde_json::from_str(&text).unwrap();
    assert_eq!(back.config, start.config);
    for (b, j) in back.jobs.iter().zip(&start.jobs) {
        assert_eq!(
            (b.index, &b.token, &b.device),
            (j.index, &j.token, &j.device)
        );
        // serde_json (without `float_roundtrip`) may read a coordinate back 1 ulp off.
        let (bh, jh) = (b.person.home(), j.person.home());
        assert!((bh.0 - jh.0).abs() < 1e-12 && (bh.1 - jh.1).abs() < 1e-12);
        assert_eq!(b.person.route().len(), j.person.route().len());
    }
}

#[test]
fn fleet_stats_merge_adds_everything() {
    let mut a = FleetStats {
        sent: 1,
        errors: BTreeMap::from([("x".to_owned(), 1)]),
        closes: BTreeMap::from([(1000, 1)]),
        max_connected: 2,
        ..FleetStats::default()
    };
    let b = FleetStats {
        sent: 2,
        errors: BTreeMap::from([("x".to_owned(), 2), ("y".to_owned(), 1)]),
        closes: BTreeMap::from([(1000, 1)]),
        max_connected: 3,
        reconnects: 4,
        ..FleetStats::default()
    };
    a.merge(&b);
    assert_eq!((a.sent, a.max_connected, a.reconnects), (3, 5, 4));
    assert_eq!(
        a.errors,
        BTreeMap::from([("x".to_owned(), 3), ("y".to_owned(), 1)])
    );
    assert_eq!(a.closes, BTreeMap::from([(1000, 2)]));
}
