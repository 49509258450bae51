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
    #[error("cannot bind {addr}")]
    Bind {
        addr: SocketAddr,
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
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let openapi = api::openapi::document(&api::routes::specs()).to_string();
        let metrics = Arc::new(Metrics::new()?);
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
        let app = api::router(self.state);
        tracing::info!(addr = %self.listener.local_addr()?, "geoward listening");
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
    use super::redact;

    #[test]
    fn passwords_are_redacted_from_store_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
