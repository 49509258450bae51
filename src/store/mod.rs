//! PostgreSQL: the system of record. Full history, supervision records, audit.
//!
//! Every function here takes the pool (or a transaction) and returns domain rows; nothing above
//! this module writes SQL. Migrations live in `migrations/` and are embedded in the binary;
//! [`migrate`] applies them (idempotent, safe from several nodes at once: sqlx takes an
//! advisory lock). Conflicts that callers must tell apart (a taken username, an overlapping
//! order) come back as [`StoreError::Conflict`]; an unreachable database as
//! [`StoreError::Unavailable`].

pub mod alerts;
pub mod audit;
pub mod devices;
pub mod fixes;
pub mod officers;
pub mod orders;
pub mod rules;
pub mod supervisees;
pub mod zones;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::DatabaseConfig;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("PostgreSQL is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("PostgreSQL query failed")]
    Query(#[source] sqlx::Error),
    #[error("stored row is malformed: {0}")]
    Malformed(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err),
            other => StoreError::Query(other),
        }
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to a conflict with `message`; other errors as usual.
    pub(crate) fn unique_as_conflict(err: sqlx::Error, message: &str) -> StoreError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(message.to_owned())
            }
            _ => StoreError::from(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the pool lazily (start-up does not fail while PostgreSQL is still starting; readiness
/// and the first query tell).
pub fn connect(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = config.url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options.application_name("geoward")))
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// A cheap round trip, for readiness.
pub async fn ping(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("select 1").execute(pool).await?;
    Ok(())
}
