//! Load driver for geoward's device ingest (`examples/ingest_load/`; see `docs/benchmarks.md`).
//!
//! Registers `--devices` devices through the admin API, opens one WebSocket per device and
//! then either streams fixes at `--rate` fixes/s in total (load mode) or holds the connections
//! open without sending anything (`--idle`). Reports sustained acked fixes/s, fix→ack latency
//! percentiles, errors and close codes, and (with `--pid`) the server's RSS and CPU.
//!
//! `--supervised` (load mode) also puts every device under supervision with an exclusion zone,
//! walks `--violators` of them in and out of it, watches the officers' feed and reports
//! fix→officer-feed latency and the alerts seen (`supervised.rs`, `feed.rs`).
//!
//! ```sh
//! cargo run --release --example ingest_load -- --url http://127.0.0.1:8080 \
//!     --admin admin:PASSWORD --devices 2000 --rate 20000 --duration-s 30 --pid $(pidof geoward)
//! cargo run --release --example ingest_load -- --url http://127.0.0.1:8080 \
//!     --admin admin:PASSWORD --supervised --devices 2000 --rate 20000 --duration-s 30
//! cargo run --release --example ingest_load -- --url http://127.0.0.1:8080 \
//!     --admin admin:PASSWORD --idle --devices 10000 --duration-s 40 --pid $(pidof geoward)
//! ```
//!
//! One task per device: it waits for the common start, then sends on its own interval (the
//! devices' phases are spread evenly over one interval) and reads acks in the same loop, so
//! pings are answered as long as the run lasts. Nothing here panics on a bad response: error
//! frames, closes and socket errors are counted and printed.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use chrono::SecondsFormat;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod feed;
mod supervised;

use geoward_sim::report::rss_kib;

use supervised::Motion;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Parser, Debug, Clone)]
#[command(about = "Device-ingest load driver for geoward")]
struct Args {
    /// Base URL of the geoward server (http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin credentials, `user:password`.
    #[arg(long)]
    admin: String,
    /// Devices to register and connect (one WebSocket each).
    #[arg(long, default_value_t = 2000)]
    devices: usize,
    /// Total fixes per second over all devices (load mode).
    #[arg(long, default_value_t = 20000.0)]
    rate: f64,
    /// Measured window in seconds (load mode), or how long to hold the connections (idle).
    #[arg(long, default_value_t = 30)]
    duration_s: u64,
    /// Warm-up before the measured window, seconds (load mode; not counted).
    #[arg(long, default_value_t = 5)]
    warmup_s: u64,
    /// Fixes per frame; above 1 devices send `batch` frames.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Open the connections and send nothing; report the server's memory per connection.
    #[arg(long)]
    idle: bool,
    /// The server's process id, for its RSS (VmRSS) and CPU time from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Seed for the position noise (and part of the device serials).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Concurrent device registrations.
    #[arg(long, default_value_t = 32)]
    register_concurrency: usize,
    /// Concurrent WebSocket handshakes while connecting.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// After the window, how long to wait for outstanding acks, seconds.
    #[arg(long, default_value_t = 10)]
    drain_s: u64,
    /// Also print p50/p99/max fix→ack for each second of the window (by send time).
    #[arg(long)]
    timeline: bool,
    /// Tokio worker threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Put every device under supervision (order + exclusion zone), walk the violators through
    /// the zone and measure fix→officer-feed latency on `GET /v1/officer/ws` (load mode).
    #[arg(long, conflicts_with = "idle")]
    supervised: bool,
    /// Devices that walk in and out of the exclusion zone (default: 5% of --devices).
    #[arg(long, requires = "supervised")]
    violators: Option<usize>,
    /// Period of a violator's walk, seconds: two passes through the zone (alerts) per period.
    #[arg(long, default_value_t = 20.0, requires = "supervised")]
    violation_period_s: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.devices == 0 || args.batch == 0 || args.batch > 1000 {
        bail!("--devices must be > 0 and --batch in 1..=1000");
    }
    if !args.idle && args.rate <= 0.0 {
        bail!("--rate must be > 0");
    }
    if args.supervised && args.batch != 1 {
        bail!("--supervised needs --batch 1 (back-dated fixes would not measure the feed)");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    builder.build()?.block_on(run(args))
}

/// Counters shared by every device task, for progress lines and the idle report.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    acked: AtomicU64,
    pings: AtomicU64,
    open: AtomicU64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.register_concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = login(&http, &base, &args.admin).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let devices = register(&http, &base, &admin, &args, &run_id[..8]).await?;
    let setup = if args.supervised {
        let run_id = &run_id[..8];
        Some(supervised::provision(&http, &base, &admin, &args, run_id, &devices).await?)
    } else {
        None
    };
    let motions = setup
        .as_ref()
        .map_or_else(|| vec![Motion::Load; devices.len()], |s| s.motions.clone());
    let tokens: Vec<(String, Motion)> = devices.into_iter().map(|d| d.token).zip(motions).collect();

    let rss_before_connect = args.pid.and_then(rss_kib);
    let ws_url = format!(
        "{}/v1/device/ws",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let live = Arc::new(Live::default());
    let (start_tx, start_rx) = watch::channel::<Option<Plan>>(None);
    let connected_at = Instant::now();
    let (tasks, connect_failures) =
        connect_all(&ws_url, tokens, &args, &live, start_rx.clone()).await;
    let connected = tasks.len();
    eprintln!(
        "connected {connected} of {} in {:.1} s ({} failed)",
        args.devices,
        connected_at.elapsed().as_secs_f64(),
        connect_failures.values().sum::<u64>()
    );
    // Let the server settle (its per-connection tasks, buffers) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = args.pid.and_then(rss_kib);
    let watcher = match &setup {
        Some(s) => Some(feed::Watcher::open(&base, &s.supervisor_token).await?),
        None => None,
    };

    if args.idle {
        return idle(
            &args,
            live,
            start_tx,
            tasks,
            connected,
            connect_failures,
            rss_before_connect,
            rss_connected,
        )
        .await;
    }

    let t0 = Instant::now() + Duration::from_millis(200);
    let plan = Plan {
        t0,
        measure_from: t0 + Duration::from_secs(args.warmup_s),
        measure_to: t0 + Duration::from_secs(args.warmup_s + args.duration_s),
        drain_until: t0 + Duration::from_secs(args.warmup_s + args.duration_s + args.drain_s),
        interval: Duration::from_secs_f64(args.devices as f64 * args.batch as f64 / args.rate),
        batch: args.batch,
        devices: args.devices,
    };
    let per_device_fps = args.rate / args.devices as f64 / args.batch as f64;
    eprintln!(
        "sending {} fixes/s: {} devices, {:.2} frames/s each of {} fix(es), interval {:.1} ms; warm-up {} s, measuring {} s",
        args.rate,
        connected,
        per_device_fps,
        args.batch,
        plan.interval.as_secs_f64() * 1e3,
        args.warmup_s,
        args.duration_s
    );
    if per_device_fps > 100.0 {
        eprintln!("warning: above the protocol's 100 frames/s per device; expect close 1008");
    }
    let _ = start_tx.send(Some(plan));
    let wall = |at: Instant| chrono::Utc::now() + (at - Instant::now());
    let wall_window = (wall(plan.measure_from), wall(plan.measure_to));

    // Snapshots at the window's edges: the server's metrics and CPU, our own CPU.
    let metrics_url = format!("{base}/metrics");
    tokio::time::sleep_until(plan.measure_from.into()).await;
    let m0 = scrape(&http, &metrics_url).await;
    let cpu0 = (cpu_ticks(None), args.pid.and_then(|p| cpu_ticks(Some(p))));
    let w0 = Instant::now();
    let progress = spawn_progress(live.clone(), plan);
    let depth = watcher
        .as_ref()
        .map(|_| feed::sample_queue_depth(http.clone(), metrics_url.clone(), plan.measure_to));
    let mut rss_peak = rss_connected.unwrap_or(0);
    while Instant::now() < plan.measure_to {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(rss) = args.pid.and_then(rss_kib) {
            rss_peak = rss_peak.max(rss);
        }
    }
    let m1 = scrape(&http, &metrics_url).await;
    let cpu1 = (cpu_ticks(None), args.pid.and_then(|p| cpu_ticks(Some(p))));
    let window_s = w0.elapsed().as_secs_f64();

    let mut total = DeviceStats::default();
    for task in tasks {
        match task.await {
            Ok(stats) => total.merge(stats),
            Err(err) => {
                *total
                    .closes
                    .entry(format!("task panicked: {err}"))
                    .or_default() += 1;
            }
        }
    }
    progress.abort();
    let supervised = match (watcher, &setup) {
        (Some(watcher), Some(setup)) => {
            feed::settle(&http, &metrics_url, Duration::from_secs(args.drain_s)).await;
            let log = watcher.finish().await;
            let depth_max = match depth {
                Some(task) => task.await.ok().flatten(),
                None => None,
            };
            Some(feed::report(setup, &log, wall_window, &m0, &m1, depth_max))
        }
        _ => None,
    };
    let rss_end = args.pid.and_then(rss_kib);
    let driver_cpu = cpu_share(cpu0.0, cpu1.0, window_s);
    let server_cpu = match (cpu0.1, cpu1.1) {
        (Some(a), Some(b)) => cpu_share(Some(a), Some(b), window_s),
        _ => None,
    };
    report_load(
        &args,
        connected,
        &connect_failures,
        &mut total,
        Snapshot {
            rss_before_connect,
            rss_connected,
            rss_peak: args.pid.map(|_| rss_peak),
            rss_end,
            driver_cpu,
            server_cpu,
        },
        &diff_metrics(&m0, &m1),
        supervised.as_ref(),
    )
}

/// When and how the devices send; the same for every device task.
#[derive(Debug, Clone, Copy)]
struct Plan {
    t0: Instant,
    measure_from: Instant,
    measure_to: Instant,
    drain_until: Instant,
    interval: Duration,
    batch: usize,
    devices: usize,
}

async fn login(http: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<String> {
    let (username, password) = admin
        .split_once(':')
        .ok_or_else(|| anyhow!("--admin must be user:password"))?;
    let response = http
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .context("login request")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("login failed: {status} {body}");
    }
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("login answer has no token: {body}"))
}

/// A registered device: its id and its bearer token.
struct Registered {
    id: String,
    token: String,
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    args: &Args,
    run_id: &str,
) -> anyhow::Result<Vec<Registered>> {
    let started = Instant::now();
    let url = format!("{base}/v1/devices");
    let done = AtomicU64::new(0);
    let results: Vec<anyhow::Result<Registered>> = futures_util::stream::iter(0..args.devices)
        .map(|i| {
            let serial = format!("bench-{}-{run_id}-{i:06}", args.seed);
            let (url, done) = (&url, &done);
            async move {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let result = async {
                        let response = http
                            .post(url)
                            .bearer_auth(admin)
                            .json(&serde_json::json!({ "serial": serial }))
                            .send()
                            .await?;
                        let status = response.status();
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        if status != reqwest::StatusCode::CREATED {
                            bail!("registering {serial}: {status} {body}");
                        }
                        match (body["id"].as_str(), body["token"].as_str()) {
                            (Some(id), Some(token)) => Ok(Registered {
                                id: id.to_owned(),
                                token: token.to_owned(),
                            }),
                            _ => Err(anyhow!("no id or token in {body}")),
                        }
                    }
                    .await;
                    match result {
                        Ok(device) => {
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n % 1000 == 0 {
                                eprintln!("registered {n}/{}", args.devices);
                            }
                            return Ok(device);
                        }
                        Err(err) if attempt >= 3 => return Err(err),
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .buffer_unordered(args.register_concurrency.max(1))
        .collect()
        .await;
    let tokens = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!(
        "registered {} devices in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(tokens)
}

/// Opens one WebSocket per token (bounded concurrency) and starts its device task at once,
/// so every socket is read (and pings answered) from the moment it is open.
async fn connect_all(
    ws_url: &str,
    tokens: Vec<(String, Motion)>,
    args: &Args,
    live: &Arc<Live>,
    start: watch::Receiver<Option<Plan>>,
) -> (
    Vec<tokio::task::JoinHandle<DeviceStats>>,
    BTreeMap<String, u64>,
) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let idle = args.idle;
    let seed = args.seed;
    let total = tokens.len();
    let opened = AtomicU64::new(0);
    let results: Vec<Result<tokio::task::JoinHandle<DeviceStats>, String>> =
        futures_util::stream::iter(tokens.into_iter().enumerate())
            .map(|(i, (token, motion))| {
                let (start, live, opened) = (start.clone(), live.clone(), &opened);
                async move {
                    let mut last = String::new();
                    for attempt in 0..3u64 {
                        if attempt > 0 {
                            tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
                        }
                        let mut request = match ws_url.into_client_request() {
                            Ok(request) => request,
                            Err(err) => return Err(format!("bad url: {err}")),
                        };
                        let Ok(auth) = format!("Bearer {token}").parse() else {
                            return Err("bad token".into());
                        };
                        request.headers_mut().insert("authorization", auth);
                        match tokio_tungstenite::connect_async_with_config(
                            request,
                            Some(config),
                            true,
                        )
                        .await
                        {
                            Ok((ws, _)) => {
                                let n = opened.fetch_add(1, Ordering::Relaxed) + 1;
                                if n % 1000 == 0 || n as usize == total {
                                    eprintln!("connected {n}/{total}");
                                }
                                live.open.fetch_add(1, Ordering::Relaxed);
                                let rng = Rng::new(seed, i as u64);
                                let task = device(ws, i, rng, motion, idle, start, live);
                                return Ok(tokio::spawn(task));
                            }
                            Err(err) => last = connect_error_kind(&err),
                        }
                    }
                    Err(last)
                }
            })
            .buffer_unordered(args.connect_concurrency.max(1))
            .collect()
            .await;
    let mut tasks = Vec::with_capacity(results.len());
    let mut failures = BTreeMap::new();
    for result in results {
        match result {
            Ok(task) => tasks.push(task),
            Err(kind) => *failures.entry(kind).or_default() += 1,
        }
    }
    for (kind, n) in &failures {
        eprintln!("connect failures: {n} x {kind}");
    }
    (tasks, failures)
}

fn connect_error_kind(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => format!("http {}", response.status().as_u16()),
        Error::Io(io) => format!("io {:?}", io.kind()),
        other => other.to_string(),
    }
}

/// One device's results.
#[derive(Default)]
struct DeviceStats {
    /// Fixes sent during warm-up (not counted) and inside the measured window.
    sent_warmup: u64,
    sent_window: u64,
    /// Fixes sent inside the window that were acknowledged (at any time before the drain ended).
    acked_of_window: u64,
    /// Acks (fixes) that arrived inside the window, whatever their send time.
    acked_in_window: u64,
    acked_total: u64,
    /// Fix→ack latencies, µs, of the fixes sent inside the window.
    latencies_us: Vec<u32>,
    /// For each latency, the second of the window its fix was sent in.
    latency_second: Vec<u16>,
    /// Error frames by code.
    errors: BTreeMap<String, u64>,
    /// Close frames received, by code; socket errors and EOFs by kind.
    closes: BTreeMap<String, u64>,
    /// Fixes still unacknowledged when the device task ended.
    unacked_at_end: u64,
    /// Server frames that were neither ack nor error.
    unexpected: u64,
    pings: u64,
}

impl DeviceStats {
    fn merge(&mut self, other: DeviceStats) {
        self.sent_warmup += other.sent_warmup;
        self.sent_window += other.sent_window;
        self.acked_of_window += other.acked_of_window;
        self.acked_in_window += other.acked_in_window;
        self.acked_total += other.acked_total;
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.latency_second.extend_from_slice(&other.latency_second);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.closes {
            *self.closes.entry(k).or_default() += v;
        }
        self.unacked_at_end += other.unacked_at_end;
        self.unexpected += other.unexpected;
        self.pings += other.pings;
    }
}

/// A fix waiting for its ack: when it was sent, whether inside the window; None once acked.
type Slot = Option<(Instant, bool)>;

/// Unacknowledged fixes of one device, indexed by `seq - first`.
struct Outstanding {
    first: u64,
    slots: VecDeque<Slot>,
    open: usize,
}

impl Outstanding {
    fn push(&mut self, sent: Instant, in_window: bool) {
        self.slots.push_back(Some((sent, in_window)));
        self.open += 1;
    }

    /// Takes the fix with this seq, if it is outstanding.
    fn take(&mut self, seq: u64) -> Slot {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        let taken = self.slots.get_mut(index)?.take();
        if taken.is_some() {
            self.open -= 1;
        }
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
        taken
    }
}

/// xorshift64*: cheap, deterministic noise per device.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, device: u64) -> Rng {
        let mut state = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(device.wrapping_mul(0xD1B5_4A32_D192_ED03))
            | 1;
        state ^= state >> 31;
        Rng(state)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Appends one fix object to `out`, taken at `wall` (written as `ts` with ms precision).
fn write_fix(
    out: &mut String,
    seq: u64,
    wall: chrono::DateTime<chrono::Utc>,
    home: (f64, f64),
    motion: Motion,
    rng: &mut Rng,
) {
    let ts = wall.to_rfc3339_opts(SecondsFormat::Millis, true);
    let (lat, lon, acc) = motion.fix(home, wall.timestamp_millis(), rng);
    let _ = write!(
        out,
        r#"{{"type":"fix","seq":{seq},"ts":"{ts}","lat":{lat:.6},"lon":{lon:.6},"acc":{acc:.1},"src":"gps"}}"#
    );
}

/// Parses `{"type":"ack","seqs":[1,2,3]}` without allocating; None if it is not an ack.
fn parse_ack(text: &str) -> Option<impl Iterator<Item = u64> + '_> {
    let rest = text.strip_prefix(r#"{"type":"ack","seqs":["#)?;
    let list = &rest[..rest.find(']')?];
    Some(
        list.split(',')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.trim().parse().ok()),
    )
}

/// What to do after a message from the server.
enum Next {
    Continue,
    Stop,
}

async fn device(
    mut ws: Ws,
    index: usize,
    mut rng: Rng,
    motion: Motion,
    idle: bool,
    mut start: watch::Receiver<Option<Plan>>,
    live: Arc<Live>,
) -> DeviceStats {
    let mut stats = DeviceStats::default();
    let mut out = Outstanding {
        first: 1,
        slots: VecDeque::new(),
        open: 0,
    };
    // Wait for the start signal while reading (answering pings).
    let plan = loop {
        tokio::select! {
            changed = start.changed() => {
                match changed {
                    Ok(()) => if let Some(plan) = *start.borrow() { break plan; },
                    Err(_) => return stats,
                }
            }
            message = ws.next() => {
                if let Next::Stop = on_message(message, &mut stats, &mut out, None, &live) {
                    live.open.fetch_sub(1, Ordering::Relaxed);
                    return stats;
                }
            }
        }
    };
    if idle {
        // The idle plan's `measure_to` is the end of the hold.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(plan.measure_to.into()) => break,
                message = ws.next() => {
                    if let Next::Stop = on_message(message, &mut stats, &mut out, None, &live) {
                        live.open.fetch_sub(1, Ordering::Relaxed);
                        return stats;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        return stats;
    }

    let phase = plan.interval.mul_f64(index as f64 / plan.devices as f64);
    let mut ticks = tokio::time::interval_at((plan.t0 + phase).into(), plan.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let home = (
        33.62 + (rng.next() - 0.5) * 0.1,
        114.65 + (rng.next() - 0.5) * 0.1,
    );
    let mut seq = 1u64;
    let mut sending = true;
    let mut frame = String::with_capacity(160 * plan.batch + 32);
    loop {
        tokio::select! {
            biased;
            message = ws.next() => {
                if let Next::Stop = on_message(message, &mut stats, &mut out, Some(&plan), &live) {
                    live.open.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
            }
            _ = ticks.tick(), if sending => {
                let now = Instant::now();
                if now >= plan.measure_to {
                    sending = false;
                } else {
                    let in_window = now >= plan.measure_from;
                    let wall = chrono::Utc::now();
                    frame.clear();
                    if plan.batch == 1 {
                        write_fix(&mut frame, seq, wall, home, motion, &mut rng);
                    } else {
                        frame.push_str(r#"{"type":"batch","items":["#);
                        for k in 0..plan.batch {
                            if k > 0 {
                                frame.push(',');
                            }
                            // Buffered fixes: one a second, oldest first, the last one now.
                            let back = (plan.batch - 1 - k) as i64;
                            let at = wall - chrono::Duration::seconds(back);
                            write_fix(&mut frame, seq + k as u64, at, home, motion, &mut rng);
                        }
                        frame.push_str("]}");
                    }
                    for _ in 0..plan.batch {
                        out.push(now, in_window);
                    }
                    seq += plan.batch as u64;
                    let n = plan.batch as u64;
                    if in_window {
                        stats.sent_window += n;
                    } else {
                        stats.sent_warmup += n;
                    }
                    live.sent.fetch_add(n, Ordering::Relaxed);
                    if let Err(err) = ws.send(Message::text(frame.clone())).await {
                        *stats.closes.entry(format!("send error: {}", error_kind(&err))).or_default() += 1;
                        live.open.fetch_sub(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(plan.drain_until.into()), if !sending => break,
        }
        if !sending && out.open == 0 {
            break;
        }
    }
    stats.unacked_at_end = out.open as u64;
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    stats
}

fn error_kind(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Io(io) => format!("io {:?}", io.kind()),
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        Error::Protocol(p) => format!("protocol {p}"),
        other => other.to_string(),
    }
}

fn on_message(
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    stats: &mut DeviceStats,
    out: &mut Outstanding,
    plan: Option<&Plan>,
    live: &Live,
) -> Next {
    let message = match message {
        None => {
            *stats.closes.entry("eof".into()).or_default() += 1;
            return Next::Stop;
        }
        Some(Err(err)) => {
            *stats
                .closes
                .entry(format!("read error: {}", error_kind(&err)))
                .or_default() += 1;
            return Next::Stop;
        }
        Some(Ok(message)) => message,
    };
    match message {
        Message::Text(text) => {
            let text = text.as_str();
            if let Some(seqs) = parse_ack(text) {
                let now = Instant::now();
                let mut n = 0;
                for seq in seqs {
                    n += 1;
                    let Some((sent, in_window)) = out.take(seq) else {
                        stats.unexpected += 1;
                        continue;
                    };
                    if in_window {
                        stats.acked_of_window += 1;
                        let us = now.duration_since(sent).as_micros();
                        stats
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                        let second = plan.map_or(0, |p| {
                            sent.saturating_duration_since(p.measure_from).as_secs()
                        });
                        stats
                            .latency_second
                            .push(u16::try_from(second).unwrap_or(u16::MAX));
                    }
                }
                stats.acked_total += n;
                if let Some(plan) = plan {
                    if now >= plan.measure_from && now < plan.measure_to {
                        stats.acked_in_window += n;
                    }
                }
                live.acked.fetch_add(n, Ordering::Relaxed);
                return Next::Continue;
            }
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) if value["type"] == "error" => {
                    let code = value["code"].as_str().unwrap_or("?").to_owned();
                    if let Some(seq) = value["seq"].as_u64() {
                        // Rejected for good: never acknowledged, stop waiting for it.
                        out.take(seq);
                    }
                    *stats.errors.entry(code).or_default() += 1;
                }
                _ => stats.unexpected += 1,
            }
            Next::Continue
        }
        Message::Ping(_) => {
            stats.pings += 1;
            live.pings.fetch_add(1, Ordering::Relaxed);
            Next::Continue
        }
        Message::Close(frame) => {
            let code = frame.map_or(1005, |f| u16::from(f.code));
            *stats.closes.entry(format!("close {code}")).or_default() += 1;
            Next::Stop
        }
        Message::Pong(_) | Message::Frame(_) => Next::Continue,
        Message::Binary(_) => {
            stats.unexpected += 1;
            Next::Continue
        }
    }
}

fn spawn_progress(live: Arc<Live>, plan: Plan) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = (
            live.sent.load(Ordering::Relaxed),
            live.acked.load(Ordering::Relaxed),
        );
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = (
                live.sent.load(Ordering::Relaxed),
                live.acked.load(Ordering::Relaxed),
            );
            eprintln!(
                "t+{:>3.0}s  sent {:>8.0}/s  acked {:>8.0}/s  open {}",
                plan.measure_from.elapsed().as_secs_f64(),
                (now.0 - last.0) as f64 / 5.0,
                (now.1 - last.1) as f64 / 5.0,
                live.open.load(Ordering::Relaxed)
            );
            last = now;
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn idle(
    args: &Args,
    live: Arc<Live>,
    start: watch::Sender<Option<Plan>>,
    tasks: Vec<tokio::task::JoinHandle<DeviceStats>>,
    connected: usize,
    connect_failures: BTreeMap<String, u64>,
    rss_before_connect: Option<u64>,
    rss_connected: Option<u64>,
) -> anyhow::Result<()> {
    let now = Instant::now();
    let hold = Duration::from_secs(args.duration_s);
    let plan = Plan {
        t0: now,
        measure_from: now,
        measure_to: now + hold,
        drain_until: now + hold,
        interval: Duration::ZERO,
        batch: 0,
        devices: args.devices,
    };
    let _ = start.send(Some(plan));
    eprintln!(
        "holding {connected} idle connections for {} s",
        args.duration_s
    );
    let mut rss_peak = rss_connected.unwrap_or(0);
    let mut next_line = Instant::now() + Duration::from_secs(10);
    while Instant::now() < plan.measure_to {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = args.pid.and_then(rss_kib);
        if let Some(rss) = rss {
            rss_peak = rss_peak.max(rss);
        }
        if Instant::now() >= next_line {
            next_line += Duration::from_secs(10);
            eprintln!(
                "t+{:>3.0}s  open {}  pings {}  server RSS {}",
                now.elapsed().as_secs_f64(),
                live.open.load(Ordering::Relaxed),
                live.pings.load(Ordering::Relaxed),
                rss.map_or("-".into(), mib)
            );
        }
    }
    let rss_end_of_hold = args.pid.and_then(rss_kib);
    let open_at_end = live.open.load(Ordering::Relaxed);
    let mut total = DeviceStats::default();
    for task in tasks {
        if let Ok(stats) = task.await {
            total.merge(stats);
        }
    }
    let per_conn = |rss: Option<u64>| match (rss_before_connect, rss) {
        (Some(a), Some(b)) if connected > 0 => Some((b as f64 - a as f64) / connected as f64),
        _ => None,
    };
    let kib = |v: Option<u64>| v.map_or("-".to_owned(), mib);
    let per = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} KiB"));
    println!();
    println!(
        "idle connections          {connected} of {} requested",
        args.devices
    );
    println!("connect failures          {}", fmt_map(&connect_failures));
    println!("held                      {} s", args.duration_s);
    println!("still open at end of hold {open_at_end}");
    println!("pings received            {}", total.pings);
    println!("closes / socket ends      {}", fmt_map(&total.closes));
    println!("server RSS before         {}", kib(rss_before_connect));
    println!("server RSS connected      {}", kib(rss_connected));
    println!("server RSS end of hold    {}", kib(rss_end_of_hold));
    println!(
        "server RSS peak (1 s)     {}",
        kib(args.pid.map(|_| rss_peak))
    );
    println!("per connection (conn.)    {}", per(per_conn(rss_connected)));
    println!(
        "per connection (end)      {}",
        per(per_conn(rss_end_of_hold))
    );
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "mode": "idle",
            "devices": args.devices,
            "connected": connected,
            "connect_failures": connect_failures,
            "held_s": args.duration_s,
            "open_at_end_of_hold": open_at_end,
            "pings": total.pings,
            "closes": total.closes,
            "server_rss_kib": {
                "before_connect": rss_before_connect,
                "connected": rss_connected,
                "end_of_hold": rss_end_of_hold,
                "peak": args.pid.map(|_| rss_peak),
            },
            "per_connection_kib": {
                "connected": per_conn(rss_connected),
                "end_of_hold": per_conn(rss_end_of_hold),
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

struct Snapshot {
    rss_before_connect: Option<u64>,
    rss_connected: Option<u64>,
    rss_peak: Option<u64>,
    rss_end: Option<u64>,
    driver_cpu: Option<f64>,
    server_cpu: Option<f64>,
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0)
}

fn report_load(
    args: &Args,
    connected: usize,
    connect_failures: &BTreeMap<String, u64>,
    total: &mut DeviceStats,
    snap: Snapshot,
    server: &BTreeMap<String, f64>,
    supervised: Option<&feed::Report>,
) -> anyhow::Result<()> {
    let mut seconds: Vec<Vec<u32>> = Vec::new();
    for (&us, &second) in total.latencies_us.iter().zip(&total.latency_second) {
        let second = usize::from(second);
        if seconds.len() <= second {
            seconds.resize_with(second + 1, Vec::new);
        }
        seconds[second].push(us);
    }
    let timeline: Vec<serde_json::Value> = seconds
        .iter_mut()
        .enumerate()
        .map(|(second, lat)| {
            lat.sort_unstable();
            serde_json::json!({
                "second": second,
                "fixes": lat.len(),
                "p50_ms": percentile(lat, 50.0),
                "p99_ms": percentile(lat, 99.0),
                "max_ms": lat.last().map(|&v| f64::from(v) / 1000.0),
            })
        })
        .collect();
    total.latencies_us.sort_unstable();
    let lat = &total.latencies_us;
    let (p50, p95, p99) = (
        percentile(lat, 50.0),
        percentile(lat, 95.0),
        percentile(lat, 99.0),
    );
    let max = lat.last().map(|&v| f64::from(v) / 1000.0);
    let secs = args.duration_s as f64;
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let errors: u64 = total.errors.values().sum();
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0));
    let kib = |v: Option<u64>| v.map_or("-".to_owned(), mib);
    println!();
    println!("devices connected         {connected} of {}", args.devices);
    println!("connect failures          {}", fmt_map(connect_failures));
    println!(
        "offered rate              {} fixes/s (batch {})",
        args.rate, args.batch
    );
    println!(
        "measured window           {} s (after {} s warm-up)",
        args.duration_s, args.warmup_s
    );
    println!(
        "fixes sent (window)       {}  ({:.0}/s)",
        total.sent_window,
        total.sent_window as f64 / secs
    );
    println!("fixes acked (of those)    {}", total.acked_of_window);
    println!(
        "acked fixes/s (window)    {:.0}",
        total.acked_in_window as f64 / secs
    );
    println!(
        "fix->ack ms p50/p95/p99/max  {} / {} / {} / {}",
        ms(p50),
        ms(p95),
        ms(p99),
        ms(max)
    );
    println!(
        "error frames              {errors} {}",
        fmt_map(&total.errors)
    );
    println!("closes / socket ends      {}", fmt_map(&total.closes));
    println!("unacked after drain       {}", total.unacked_at_end);
    println!("unexpected frames         {}", total.unexpected);
    println!(
        "driver CPU (window)       {} of one core",
        pct(snap.driver_cpu)
    );
    if args.pid.is_some() {
        println!(
            "server CPU (window)       {} of one core",
            pct(snap.server_cpu)
        );
        println!("server RSS before conn.   {}", kib(snap.rss_before_connect));
        println!("server RSS start          {}", kib(snap.rss_connected));
        println!("server RSS peak           {}", kib(snap.rss_peak));
        println!("server RSS end            {}", kib(snap.rss_end));
    }
    if args.timeline {
        println!("per second of the window (by send time): fixes, fix->ack ms p50 / p99 / max");
        for (second, lat) in seconds.iter().enumerate() {
            println!(
                "  {second:>4}  {:>7}  {} / {} / {}",
                lat.len(),
                ms(percentile(lat, 50.0)),
                ms(percentile(lat, 99.0)),
                ms(lat.last().map(|&v| f64::from(v) / 1000.0))
            );
        }
    }
    if !server.is_empty() {
        println!("server /metrics over the window:");
        for (k, v) in server {
            println!("  {k:<34} {v:.3}");
        }
    }
    if let Some(report) = supervised {
        println!("supervised:");
        for line in &report.lines {
            println!("{line}");
        }
    }
    if let Some(path) = &args.json {
        let mut json = serde_json::json!({
            "mode": "load",
            "devices": args.devices,
            "connected": connected,
            "connect_failures": connect_failures,
            "rate": args.rate,
            "batch": args.batch,
            "duration_s": args.duration_s,
            "warmup_s": args.warmup_s,
            "fixes_sent": total.sent_window,
            "fixes_acked": total.acked_of_window,
            "acked_fixes_per_s": total.acked_in_window as f64 / secs,
            "latency_ms": { "p50": p50, "p95": p95, "p99": p99, "max": max },
            "errors": total.errors,
            "closes": total.closes,
            "unacked_after_drain": total.unacked_at_end,
            "unexpected_frames": total.unexpected,
            "driver_cpu": snap.driver_cpu,
            "server_cpu": snap.server_cpu,
            "server_rss_kib": {
                "before_connect": snap.rss_before_connect,
                "start": snap.rss_connected,
                "peak": snap.rss_peak,
                "end": snap.rss_end,
            },
            "server_metrics": server,
            "timeline": timeline,
        });
        if let Some(report) = supervised {
            json["mode"] = "supervised".into();
            json["supervised"] = report.json.clone();
        }
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn fmt_map(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// utime + stime of a process (None: this one), clock ticks.
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU used between two tick readings as a share of one core (100 ticks/s on Linux).
fn cpu_share(a: Option<u64>, b: Option<u64>, secs: f64) -> Option<f64> {
    Some((b? - a?) as f64 / 100.0 / secs)
}

/// Scrapes /metrics into `name{labels} -> value`; empty on any failure.
async fn scrape(http: &reqwest::Client, url: &str) -> BTreeMap<String, f64> {
    let Ok(response) = http.get(url).send().await else {
        return BTreeMap::new();
    };
    let Ok(text) = response.text().await else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Derived server-side figures over the window, from two scrapes.
fn diff_metrics(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let d =
        |name: &str| -> Option<f64> { Some(b.get(name)? - a.get(name).copied().unwrap_or(0.0)) };
    let mut out = BTreeMap::new();
    let (Some(commits), Some(commit_s)) = (
        d("geoward_ingest_commit_duration_seconds_count"),
        d("geoward_ingest_commit_duration_seconds_sum"),
    ) else {
        return out;
    };
    out.insert("commits".into(), commits);
    if commits > 0.0 {
        out.insert("commit mean ms".into(), commit_s / commits * 1e3);
        if let Some(reports) = d("geoward_ingest_batch_reports_sum") {
            out.insert("batch mean reports".into(), reports / commits);
        }
    }
    out.insert("commit busy s (sum of durations)".into(), commit_s);
    if let Some(v) = d("geoward_ingest_backpressure_seconds_total") {
        out.insert("backpressure s".into(), v);
    }
    if let (Some(n), Some(s)) = (
        d("geoward_fix_ack_duration_seconds_count"),
        d("geoward_fix_ack_duration_seconds_sum"),
    ) {
        out.insert("server fix->ack acks".into(), n);
        if n > 0.0 {
            out.insert("server fix->ack mean ms".into(), s / n * 1e3);
        }
    }
    for (name, label) in [
        ("geoward_ingest_commit_duration_seconds", "commit"),
        ("geoward_fix_ack_duration_seconds", "server fix->ack"),
    ] {
        for q in [0.5, 0.99] {
            if let Some(v) = bucket_quantile(a, b, name, q) {
                out.insert(format!("{label} p{} ms (<= bucket)", q * 100.0), v * 1e3);
            }
        }
    }
    if let Some(v) = b.get("geoward_ingest_queue_depth") {
        out.insert("queue depth at end".into(), *v);
    }
    out
}

/// The upper bound of the histogram bucket holding quantile `q` of the observations made
/// between the two scrapes.
fn bucket_quantile(
    a: &BTreeMap<String, f64>,
    b: &BTreeMap<String, f64>,
    name: &str,
    q: f64,
) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = b
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v - a.get(k).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .into_iter()
        .find(|(_, n)| *n >= q * total)
        .map(|(le, _)| le)
}
