//! Monitoring orders and approved leave, per supervisee.
//!
//! Both are periods that must not overlap others of their kind for the same supervisee. The
//! check and the insert run in one transaction holding the supervisee's row lock, so two
//! concurrent requests cannot both pass the check.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::supervision::{OrderBasis, Period};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub supervisee_id: Uuid,
    pub basis: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub approved_by: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Leave {
    pub id: Uuid,
    pub supervisee_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub destination: Option<serde_json::Value>,
    pub source_destination: Option<serde_json::Value>,
    pub source_datum: Option<String>,
    pub reason: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

async fn lock_supervisee(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> StoreResult<()> {
    sqlx::query("select 1 from supervisees where id = $1 for update")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn create_order(
    pool: &PgPool,
    supervisee_id: Uuid,
    basis: OrderBasis,
    period: Period,
    approved_by: &str,
    created_by: Uuid,
) -> StoreResult<Order> {
    let mut tx = pool.begin().await?;
    lock_supervisee(&mut tx, supervisee_id).await?;
    let overlapping: Option<(Uuid,)> = sqlx::query_as(
        "select id from monitoring_orders
         where supervisee_id = $1 and starts_at < $3 and ends_at > $2 limit 1",
    )
    .bind(supervisee_id)
    .bind(period.starts_at)
    .bind(period.ends_at)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((other,)) = overlapping {
        return Err(StoreError::Conflict(format!(
            "the period overlaps monitoring order {other}; a renewal starts when the previous order ends"
        )));
    }
    let order = sqlx::query_as::<_, Order>(
        "insert into monitoring_orders (id, supervisee_id, basis, starts_at, ends_at, approved_by, created_by)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning id, supervisee_id, basis, starts_at, ends_at, approved_by, created_by, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(supervisee_id)
    .bind(basis.as_str())
    .bind(period.starts_at)
    .bind(period.ends_at)
    .bind(approved_by)
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(order)
}

pub async fn orders_of(pool: &PgPool, supervisee_id: Uuid) -> StoreResult<Vec<Order>> {
    Ok(sqlx::query_as::<_, Order>(
        "select id, supervisee_id, basis, starts_at, ends_at, approved_by, created_by, created_at
         from monitoring_orders where supervisee_id = $1 order by starts_at",
    )
    .bind(supervisee_id)
    .fetch_all(pool)
    .await?)
}

pub struct NewLeave<'a> {
    pub period: Period,
    pub destination: Option<serde_json::Value>,
    pub source_destination: Option<&'a serde_json::Value>,
    pub source_datum: Option<&'a str>,
    pub reason: &'a str,
    pub created_by: Uuid,
}

const LEAVE_COLUMNS: &str =
    "id, supervisee_id, starts_at, ends_at, destination, source_destination,
    source_datum, reason, created_by, created_at, cancelled_at";

pub async fn create_leave(
    pool: &PgPool,
    supervisee_id: Uuid,
    new: NewLeave<'_>,
) -> StoreResult<Leave> {
    let mut tx = pool.begin().await?;
    lock_supervisee(&mut tx, supervisee_id).await?;
    let overlapping: Option<(Uuid,)> = sqlx::query_as(
        "select id from leaves
         where supervisee_id = $1 and cancelled_at is null and starts_at < $3 and ends_at > $2
         limit 1",
    )
    .bind(supervisee_id)
    .bind(new.period.starts_at)
    .bind(new.period.ends_at)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((other,)) = overlapping {
        return Err(StoreError::Conflict(format!(
            "the leave overlaps approved leave {other}"
        )));
    }
    let sql = format!(
        "insert into leaves (id, supervisee_id, starts_at, ends_at, destination, source_destination,
                             source_datum, reason, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {LEAVE_COLUMNS}"
    );
    let leave = sqlx::query_as::<_, Leave>(&sql)
        .bind(Uuid::new_v4())
        .bind(supervisee_id)
        .bind(new.period.starts_at)
        .bind(new.period.ends_at)
        .bind(new.destination)
        .bind(new.source_destination)
        .bind(new.source_datum)
        .bind(new.reason)
        .bind(new.created_by)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(leave)
}

pub async fn leaves_of(pool: &PgPool, supervisee_id: Uuid) -> StoreResult<Vec<Leave>> {
    let sql =
        format!("select {LEAVE_COLUMNS} from leaves where supervisee_id = $1 order by starts_at");
    Ok(sqlx::query_as::<_, Leave>(&sql)
        .bind(supervisee_id)
        .fetch_all(pool)
        .await?)
}

/// Cancels a leave of this supervisee; returns the leave, or None when there is no such leave.
pub async fn cancel_leave(
    pool: &PgPool,
    supervisee_id: Uuid,
    leave_id: Uuid,
    by: Uuid,
) -> StoreResult<Option<Leave>> {
    let sql = format!(
        "update leaves set cancelled_at = coalesce(cancelled_at, now()),
                           cancelled_by = coalesce(cancelled_by, $3)
         where id = $2 and supervisee_id = $1 returning {LEAVE_COLUMNS}"
    );
    Ok(sqlx::query_as::<_, Leave>(&sql)
        .bind(supervisee_id)
        .bind(leave_id)
        .bind(by)
        .fetch_optional(pool)
        .await?)
}
