//! The application: built from a configuration (stores connected, migrations applied, the
//! listener bound), then run until the shutdown token is cancelled.
//!
//! Drain order on shutdown: stop accepting connections; let in-flight HTTP requests finish
//! (bounded by `http.request_timeout`); device connections stop reading, receive the acks of
//! what they sent and a 1001 close (bounded by `ingest.drain_timeout`); the writer commits what
//! is queued; background upkeep stops; the PostgreSQL pool closes; exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts;
use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials;
use crate::domain::officer::{Role, Roles};
use crate::ingest::Ingest;
use crate::live::devices::LiveState;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::store;
use crate::upkeep;
use crate::zone_cache::ZoneCache;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot bind {addr}{}", bind_hint(.source, *.reuse_port))]
    Bind {
        addr: SocketAddr,
        /// Whether the socket asked to share the address (`listen_reuse_port`).
        reuse_port: bool,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach PostgreSQL at {url} (is it running? scripts/run starts one)")]
    Postgres {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot reach Redis at {url} (is it running? scripts/run starts one)")]
    Redis {
        url: String,
        #[source]
        source: crate::live::LiveError,
    },
    #[error("cannot create the bootstrap admin")]
    Bootstrap(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot prepare the fix history partitions")]
    History(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot register metrics")]
    Metrics(#[from] prometheus::Error),
}

/// What to add to a bind error when the address is taken.
fn bind_hint(source: &std::io::Error, reuse_port: bool) -> &'static str {
    match (source.kind(), reuse_port) {
        (std::io::ErrorKind::AddrInUse, true) => {
            " (held by a process without listen_reuse_port, or by another user: every process \
             sharing an address must set it)"
        }
        (std::io::ErrorKind::AddrInUse, false) => {
            " (in use; several nodes on one machine share an address when each sets \
             listen_reuse_port = true)"
        }
        _ => "",
    }
}

/// A bound, ready-to-run geoward.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    background: TaskTracker,
}

/// Prepared zones kept per process (a shared layer of all a city's schools fits).
const ZONE_CACHE_CAPACITY: usize = 50_000;

/// Live hashes of devices not heard from for this long expire from Redis.
const LIVE_STATE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long start-up waits for the stores to become reachable.
const STORE_PATIENCE: Duration = Duration::from_secs(30);

impl Application {
    /// Connects the stores, applies migrations, creates the bootstrap admin and binds.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        config.validate()?;
        let db = connect_postgres(&config).await?;
        store::migrate(&db).await?;
        let live = Live::connect(&config.redis, STORE_PATIENCE)
            .await
            .map_err(|source| StartError::Redis {
                url: redact(&config.redis.url),
                source,
            })?;
        bootstrap_admin(&db, &config).await?;
        upkeep::history_round(&db, &config.history)
            .await
            .map_err(|e| StartError::History(Box::new(e)))?;
        let addr = config.listen_addr()?;
        let reuse_port = config.listen_reuse_port;
        let listener = bind(addr, reuse_port)
            .await
            .map_err(|source| StartError::Bind {
                addr,
                reuse_port,
                source,
            })?;
        let openapi = api::openapi::document(&api::routes::specs()).to_string();
        let metrics = Arc::new(Metrics::new()?);
        let live = live.with_metrics(metrics.clone());
        let shutdown = CancellationToken::new();
        let background = TaskTracker::new();
        let live_state = LiveState::new(live.clone(), LIVE_STATE_TTL);
        let clock = Clock::system();
        let zones = Arc::new(ZoneCache::new(ZONE_CACHE_CAPACITY));
        let (alerts, evaluate) = alerts::start(
            db.clone(),
            live.clone(),
            live_state.clone(),
            zones.clone(),
            &config,
            metrics.clone(),
            clock.clone(),
            shutdown.clone(),
            &background,
        );
        let ingest = Ingest::start(
            db.clone(),
            evaluate,
            live.clone(),
            live_state.clone(),
            &config.ingest,
            metrics.clone(),
            shutdown.child_token(),
        );
        upkeep::spawn(
            db.clone(),
            live_state.clone(),
            config.history.clone(),
            metrics.clone(),
            shutdown.clone(),
            &background,
        );
        let state = AppState {
            db,
            live,
            live_state,
            ingest,
            config: Arc::new(config),
            metrics,
            zones,
            openapi: Arc::new(openapi),
            clock,
            alerts,
        };
        Ok(Application {
            listener,
            state,
            shutdown,
            background,
        })
    }

    /// The address actually bound (port 0 in the configuration picks a free one).
    /// The node's clock (tests advance it to show time-driven behaviour on time).
    pub fn clock(&self) -> Clock {
        self.state.clock.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then drains: HTTP requests and device
    /// connections finish (devices get their last acks and a 1001 close), the writer commits
    /// what is queued, background upkeep stops, the pool closes.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let db = self.state.db.clone();
        let ingest = self.state.ingest.clone();
        let reuse_port = self.state.config.listen_reuse_port;
        let app = api::router(self.state);
        tracing::info!(
            addr = %self.listener.local_addr()?,
            reuse_port,
            "geoward listening"
        );
        let node = self.shutdown.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            node.cancel();
        });
        // Acks and alerts are small frames that must not wait for Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
        tracing::info!("HTTP drained; draining device connections");
        self.shutdown.cancel();
        ingest.drain().await;
        self.background.close();
        self.background.wait().await;
        db.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Pending connections the kernel queues for a listener shared with SO_REUSEPORT (it caps
/// this at `net.core.somaxconn`). Several nodes on one machine exist to hold many device
/// connections, which reconnect in bursts after a restart.
const SHARED_LISTEN_BACKLOG: u32 = 4096;

/// Binds the HTTP listener. Without `reuse_port` this is `TcpListener::bind` (SO_REUSEADDR,
/// the standard library's backlog). With it the socket also gets SO_REUSEPORT before it is
/// bound, so several geoward processes (every one of them setting it) share `addr` and the
/// kernel spreads accepted connections over them.
async fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    if !reuse_port {
        return TcpListener::bind(addr).await;
    }
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(SHARED_LISTEN_BACKLOG)
    }
    #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "listen_reuse_port needs SO_REUSEPORT, which this platform lacks",
        ))
    }
}

/// Raises this process's soft limit on open files to its hard limit (every device connection
/// is a file; root cannot raise the hard limit) and logs the result, warning when it cannot
/// hold `ingest_max_connections` (then several nodes on one port hold them: listen_reuse_port).
pub fn raise_open_files_limit(ingest_max_connections: usize) {
    match open_files_to_hard_limit() {
        Ok((soft, hard)) => {
            tracing::info!(open_files = soft, hard, "open files limit");
            // Room for the stores' connections, officers' HTTP and the process's own files.
            let needed = ingest_max_connections as u64 + 1000;
            if soft < needed {
                tracing::warn!(
                    open_files = soft,
                    ingest_max_connections,
                    "the open files limit is below ingest.max_connections plus 1000 for the \
                     stores and HTTP: connections beyond it cannot be accepted; lower \
                     ingest.max_connections or spread devices over several nodes on the port \
                     (listen_reuse_port)"
                );
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot raise the open files limit"),
    }
}

/// Sets RLIMIT_NOFILE's soft limit to its hard limit; returns (soft, hard) after.
fn open_files_to_hard_limit() -> std::io::Result<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                limit = raised;
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
        Ok((u64::from(limit.rlim_cur), u64::from(limit.rlim_max)))
    }
    #[cfg(not(unix))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no open files limit on this platform",
        ))
    }
}

/// Connects to PostgreSQL, retrying with backoff while it starts.
async fn connect_postgres(config: &Config) -> Result<PgPool, StartError> {
    let url = redact(&config.database.url);
    let db = store::connect(&config.database).map_err(|source| StartError::Postgres {
        url: url.clone(),
        source,
    })?;
    let deadline = tokio::time::Instant::now() + STORE_PATIENCE;
    let mut delay = Duration::from_millis(100);
    loop {
        match db.acquire().await {
            Ok(_) => return Ok(db),
            Err(source) if tokio::time::Instant::now() + delay > deadline => {
                return Err(StartError::Postgres { url, source })
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?delay, "PostgreSQL not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Creates the first admin from `bootstrap_admin` when no officer exists yet.
async fn bootstrap_admin(db: &PgPool, config: &Config) -> Result<(), StartError> {
    let Some((username, password)) = config.bootstrap_admin() else {
        return Ok(());
    };
    let hash = credentials::hash_password(password.to_owned())
        .await
        .map_err(|e| StartError::Bootstrap(Box::new(e)))?;
    let created = store::officers::create_if_none(
        db,
        store::officers::NewOfficer {
            username,
            name: "Bootstrap administrator",
            roles: Roles::of(&[Role::Admin]),
            password_hash: &hash,
        },
    )
    .await
    .map_err(|e| StartError::Bootstrap(Box::new(e)))?;
    if created {
        tracing::info!(username, "created the bootstrap admin");
    }
    Ok(())
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{open_files_to_hard_limit, redact};

    #[cfg(unix)]
    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = open_files_to_hard_limit().expect("rlimit");
        assert_eq!(soft, hard);
        assert_eq!(
            open_files_to_hard_limit().expect("rlimit again"),
            (soft, hard)
        );
    }

    #[test]
    fn passwords_are_redacted_from_store_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
