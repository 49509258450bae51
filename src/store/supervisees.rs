//! Supervisees: the people under supervision, each in exactly one officer's caseload.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{StoreError, StoreResult};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Supervisee {
    pub id: Uuid,
    pub name: String,
    pub officer_id: Uuid,
    pub timezone: String,
    pub lost_contact_after_s: i32,
    pub device_id: Option<Uuid>,
    /// Whether a monitoring order is active at the time the row was read.
    pub under_supervision: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "
    select s.id, s.name, s.officer_id, s.timezone, s.lost_contact_after_s,
           a.device_id,
           exists (select 1 from monitoring_orders o
                   where o.supervisee_id = s.id and o.starts_at <= $1 and o.ends_at > $1)
               as under_supervision,
           s.created_at, s.updated_at
    from supervisees s
    left join device_assignments a on a.supervisee_id = s.id and a.ended_at is null";

pub struct NewSupervisee<'a> {
    pub name: &'a str,
    pub officer_id: Uuid,
    pub timezone: &'a str,
    pub lost_contact_after_s: i32,
}

pub async fn create(pool: &PgPool, new: NewSupervisee<'_>) -> StoreResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into supervisees (id, name, officer_id, timezone, lost_contact_after_s)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(new.name)
    .bind(new.officer_id)
    .bind(new.timezone)
    .bind(new.lost_contact_after_s)
    .execute(pool)
    .await?;
    Ok(id)
}

pub async fn get(pool: &PgPool, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<Supervisee>> {
    let sql = format!("{SELECT} where s.id = $2");
    Ok(sqlx::query_as::<_, Supervisee>(&sql)
        .bind(now)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// A page of supervisees ordered by id, optionally only one officer's caseload.
pub async fn list(
    pool: &PgPool,
    officer: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Supervisee>> {
    let sql = format!(
        "{SELECT} where ($2::uuid is null or s.officer_id = $2)
                    and ($3::uuid is null or s.id > $3)
         order by s.id limit $4"
    );
    Ok(sqlx::query_as::<_, Supervisee>(&sql)
        .bind(now)
        .bind(officer)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// Fields an update may change; `None` leaves a field as it is.
#[derive(Default)]
pub struct SuperviseeChanges<'a> {
    pub name: Option<&'a str>,
    pub officer_id: Option<Uuid>,
    pub timezone: Option<&'a str>,
    pub lost_contact_after_s: Option<i32>,
}

pub async fn update(pool: &PgPool, id: Uuid, changes: SuperviseeChanges<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "update supervisees set
            name = coalesce($2, name),
            officer_id = coalesce($3, officer_id),
            timezone = coalesce($4, timezone),
            lost_contact_after_s = coalesce($5, lost_contact_after_s),
            updated_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(changes.name)
    .bind(changes.officer_id)
    .bind(changes.timezone)
    .bind(changes.lost_contact_after_s)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The officer whose caseload holds this supervisee, if the supervisee exists.
pub async fn officer_of(pool: &PgPool, id: Uuid) -> StoreResult<Option<Uuid>> {
    let row: Option<(Uuid,)> = sqlx::query_as("select officer_id from supervisees where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(officer,)| officer))
}

/// Assigns a device, ending the supervisee's previous assignment. Fails with a conflict when the
/// device is revoked, unknown, or worn by someone else.
pub async fn assign_device(
    pool: &PgPool,
    supervisee_id: Uuid,
    device_id: Uuid,
    by: Uuid,
) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let device: Option<(Option<DateTime<Utc>>,)> =
        sqlx::query_as("select revoked_at from devices where id = $1 for update")
            .bind(device_id)
            .fetch_optional(&mut *tx)
            .await?;
    match device {
        None => return Err(StoreError::Conflict("device_id names no device".into())),
        Some((Some(_),)) => return Err(StoreError::Conflict("the device is revoked".into())),
        Some((None,)) => {}
    }
    let current: Option<(Uuid,)> = sqlx::query_as(
        "select supervisee_id from device_assignments where device_id = $1 and ended_at is null",
    )
    .bind(device_id)
    .fetch_optional(&mut *tx)
    .await?;
    match current {
        Some((wearer,)) if wearer == supervisee_id => return Ok(()),
        Some(_) => {
            return Err(StoreError::Conflict(
                "the device is assigned to another supervisee".into(),
            ))
        }
        None => {}
    }
    sqlx::query(
        "update device_assignments set ended_at = now()
         where supervisee_id = $1 and ended_at is null",
    )
    .bind(supervisee_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into device_assignments (device_id, supervisee_id, assigned_by)
         values ($1, $2, $3)",
    )
    .bind(device_id)
    .bind(supervisee_id)
    .bind(by)
    .execute(&mut *tx)
    .await
    .map_err(|e| StoreError::unique_as_conflict(e, "the device was assigned concurrently"))?;
    tx.commit().await?;
    Ok(())
}

/// Ends the supervisee's device assignment; returns whether there was one.
pub async fn unassign_device(pool: &PgPool, supervisee_id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query(
        "update device_assignments set ended_at = now()
         where supervisee_id = $1 and ended_at is null",
    )
    .bind(supervisee_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
