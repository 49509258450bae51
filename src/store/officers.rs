//! Officer accounts and their sessions (bearer tokens, stored as SHA-256 hashes only).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::officer::Roles;

#[derive(Debug, Clone)]
pub struct Officer {
    pub id: Uuid,
    pub username: String,
    pub name: String,
    pub roles: Roles,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// An officer with the stored password hash, for login only.
pub struct Credentials {
    pub officer: Officer,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
struct OfficerRow {
    id: Uuid,
    username: String,
    name: String,
    roles: Vec<String>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<OfficerRow> for Officer {
    fn from(row: OfficerRow) -> Self {
        Officer {
            id: row.id,
            username: row.username,
            name: row.name,
            roles: Roles::from_strings(&row.roles),
            active: row.active,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str = "id, username, name, roles, active, created_at";

pub struct NewOfficer<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub roles: Roles,
    pub password_hash: &'a str,
}

pub async fn create(pool: &PgPool, new: NewOfficer<'_>) -> StoreResult<Officer> {
    let sql = format!(
        "insert into officers (id, username, name, roles, password_hash)
         values ($1, $2, $3, $4, $5) returning {COLUMNS}"
    );
    sqlx::query_as::<_, OfficerRow>(&sql)
        .bind(Uuid::new_v4())
        .bind(new.username)
        .bind(new.name)
        .bind(new.roles.to_strings())
        .bind(new.password_hash)
        .fetch_one(pool)
        .await
        .map(Officer::from)
        .map_err(|e| StoreError::unique_as_conflict(e, "username is taken"))
}

/// Creates the first account only while none exists (serialised by an advisory lock, so two
/// nodes starting together create one admin). Returns whether it was created.
pub async fn create_if_none(pool: &PgPool, new: NewOfficer<'_>) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(7461001)")
        .execute(&mut *tx)
        .await?;
    let (count,): (i64,) = sqlx::query_as("select count(*) from officers")
        .fetch_one(&mut *tx)
        .await?;
    if count > 0 {
        return Ok(false);
    }
    sqlx::query(
        "insert into officers (id, username, name, roles, password_hash)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(new.username)
    .bind(new.name)
    .bind(new.roles.to_strings())
    .bind(new.password_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn credentials(pool: &PgPool, username: &str) -> StoreResult<Option<Credentials>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        officer: OfficerRow,
        password_hash: String,
    }
    let sql =
        format!("select {COLUMNS}, password_hash from officers where lower(username) = lower($1)");
    let row = sqlx::query_as::<_, Row>(&sql)
        .bind(username)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| Credentials {
        officer: r.officer.into(),
        password_hash: r.password_hash,
    }))
}

pub async fn get(pool: &PgPool, id: Uuid) -> StoreResult<Option<Officer>> {
    let sql = format!("select {COLUMNS} from officers where id = $1");
    let row = sqlx::query_as::<_, OfficerRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Officer::from))
}

pub async fn list(pool: &PgPool) -> StoreResult<Vec<Officer>> {
    let sql = format!("select {COLUMNS} from officers order by username limit 10000");
    let rows = sqlx::query_as::<_, OfficerRow>(&sql)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Officer::from).collect())
}

pub async fn create_session(
    pool: &PgPool,
    officer_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into officer_sessions (token_hash, officer_id, expires_at) values ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(officer_id)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The active officer holding an unexpired, unrevoked session with this token hash.
pub async fn session_officer(
    pool: &PgPool,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<Option<Officer>> {
    let sql = format!(
        "select {} from officer_sessions s join officers o on o.id = s.officer_id
         where s.token_hash = $1 and s.revoked_at is null and s.expires_at > $2 and o.active",
        COLUMNS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row = sqlx::query_as::<_, OfficerRow>(&sql)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Officer::from))
}

pub async fn revoke_session(pool: &PgPool, token_hash: &[u8]) -> StoreResult<()> {
    sqlx::query(
        "update officer_sessions set revoked_at = now()
         where token_hash = $1 and revoked_at is null",
    )
    .bind(token_hash)
    .execute(pool)
    .await?;
    Ok(())
}
