//! Devices (ankle and wrist tags) and their credentials. A device token is shown once at
//! registration and stored only as a SHA-256 hash.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{StoreError, StoreResult};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub serial: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub supervisee_id: Option<Uuid>,
}

const SELECT: &str = "
    select d.id, d.serial, d.created_at, d.revoked_at, a.supervisee_id
    from devices d
    left join device_assignments a on a.device_id = d.id and a.ended_at is null";

pub async fn create(pool: &PgPool, serial: &str, token_hash: &[u8]) -> StoreResult<Device> {
    let id = Uuid::new_v4();
    sqlx::query("insert into devices (id, serial, token_hash) values ($1, $2, $3)")
        .bind(id)
        .bind(serial)
        .bind(token_hash)
        .execute(pool)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "a device with this serial exists"))?;
    get(pool, id)
        .await?
        .ok_or_else(|| StoreError::Malformed("device vanished after insert".into()))
}

pub async fn get(pool: &PgPool, id: Uuid) -> StoreResult<Option<Device>> {
    let sql = format!("{SELECT} where d.id = $1");
    Ok(sqlx::query_as::<_, Device>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

pub async fn list(pool: &PgPool, after: Option<Uuid>, limit: i64) -> StoreResult<Vec<Device>> {
    let sql = format!("{SELECT} where ($1::uuid is null or d.id > $1) order by d.id limit $2");
    Ok(sqlx::query_as::<_, Device>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// Revokes a device's token and ends its assignment. Returns false for an unknown device.
pub async fn revoke(pool: &PgPool, id: Uuid) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done =
        sqlx::query("update devices set revoked_at = coalesce(revoked_at, now()) where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "update device_assignments set ended_at = now() where device_id = $1 and ended_at is null",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A device as the ingest layer sees it: revoked or not, and its wearer. (Whether the wearer is
/// under an active monitoring order depends on the time of each fix, so the rule engine decides
/// that per fix from the orders, not the connection.)
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceAuth {
    pub id: Uuid,
    pub revoked: bool,
    pub supervisee_id: Option<Uuid>,
}

const AUTH_SELECT: &str = "
    select d.id, d.revoked_at is not null as revoked, a.supervisee_id
    from devices d
    left join device_assignments a on a.device_id = d.id and a.ended_at is null";

/// The device holding this token hash, if any (revoked ones included: the caller decides).
pub async fn by_token_hash(pool: &PgPool, token_hash: &[u8]) -> StoreResult<Option<DeviceAuth>> {
    let sql = format!("{AUTH_SELECT} where d.token_hash = $1");
    Ok(sqlx::query_as::<_, DeviceAuth>(&sql)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?)
}

/// Re-reads a device's status (revocation, wearer) for a live connection.
pub async fn auth_by_id(pool: &PgPool, id: Uuid) -> StoreResult<Option<DeviceAuth>> {
    let sql = format!("{AUTH_SELECT} where d.id = $1");
    Ok(sqlx::query_as::<_, DeviceAuth>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}
