//! The audit log: who did or saw what, when, from where. Append-only; every change and every
//! read of a supervisee's data writes one row before the response is sent.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::StoreResult;

/// One audit entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_username: Option<&'a str>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub supervisee_id: Option<Uuid>,
    pub remote_addr: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub supervisee_id: Option<Uuid>,
    pub remote_addr: Option<String>,
    pub detail: serde_json::Value,
}

pub async fn write(pool: &PgPool, entry: Entry<'_>) -> StoreResult<()> {
    sqlx::query(
        "insert into audit_log (actor_id, actor_username, action, target_type, target_id,
                                supervisee_id, remote_addr, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.actor_id)
    .bind(entry.actor_username)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.supervisee_id)
    .bind(entry.remote_addr)
    .bind(entry.detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// Filters for reading the log back; every field optional.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub actor_id: Option<Uuid>,
    pub supervisee_id: Option<Uuid>,
    pub action: Option<String>,
    pub after_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A page of entries in id order (oldest first), after `after_id`.
pub async fn list(pool: &PgPool, filter: &Filter, limit: i64) -> StoreResult<Vec<Record>> {
    Ok(sqlx::query_as::<_, Record>(
        "select id, at, actor_id, actor_username, action, target_type, target_id, supervisee_id,
                remote_addr, detail
         from audit_log
         where ($1::uuid is null or actor_id = $1)
           and ($2::uuid is null or supervisee_id = $2)
           and ($3::text is null or action = $3)
           and ($4::bigint is null or id > $4)
           and ($5::timestamptz is null or at >= $5)
           and ($6::timestamptz is null or at < $6)
         order by id limit $7",
    )
    .bind(filter.actor_id)
    .bind(filter.supervisee_id)
    .bind(filter.action.as_deref())
    .bind(filter.after_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
