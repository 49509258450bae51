//! Alerts and their events in PostgreSQL: raising and clearing conditions, the officers'
//! lifecycle steps, escalation, and reading changes after a feed cursor.
//!
//! Invariants (backed by the indexes of `migrations/*_alerts.sql`):
//! - at most one alert per uncleared condition (supervisee, kind, zone);
//! - raising is idempotent per deciding report (same kind, zone, device time and seq);
//! - every change writes one `alert_events` row, inside a transaction that first takes
//!   [`FEED_LOCK`], so event ids (feed cursors) become visible in increasing order.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::StoreResult;

/// The advisory lock serialising alert-event writers.
const FEED_LOCK: i64 = 0x6765_6f77_6172_6401;

/// One alert as stored, with the officer whose caseload holds it now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub supervisee_id: Uuid,
    pub officer_id: Uuid,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub zone_id: Option<Uuid>,
    pub event_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub late: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub acc: Option<f32>,
    pub device_id: Option<Uuid>,
    pub seq: Option<i64>,
    pub fix_received_at: Option<DateTime<Utc>>,
}

const ALERT_COLUMNS: &str = "a.id, a.supervisee_id, s.officer_id, a.kind, a.severity, a.status,
    a.zone_id, a.event_at, a.opened_at, a.cleared_at, a.acknowledged_at, a.acknowledged_by,
    a.resolved_at, a.resolved_by, a.escalated_at, a.late, a.lat, a.lon, a.acc, a.device_id,
    a.seq, a.fix_received_at";

/// One step in an alert's life.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertEvent {
    pub id: i64,
    pub alert_id: i64,
    pub action: String,
    pub at: DateTime<Utc>,
    pub officer_id: Option<Uuid>,
    pub note: Option<String>,
}

/// A condition starting.
#[derive(Debug, Clone)]
pub struct Raise {
    pub supervisee_id: Uuid,
    pub kind: &'static str,
    pub severity: &'static str,
    pub zone_id: Option<Uuid>,
    pub event_at: DateTime<Utc>,
    pub late: bool,
    pub position: Option<(f64, f64, f32)>,
    pub device_id: Option<Uuid>,
    pub seq: Option<i64>,
    /// Over at once (a pass-through, a jump): stored already cleared.
    pub instantaneous: bool,
    pub escalate_at: Option<DateTime<Utc>>,
    pub fix_received_at: Option<DateTime<Utc>>,
}

/// A condition ending.
#[derive(Debug, Clone)]
pub struct Clear {
    pub supervisee_id: Uuid,
    pub kind: &'static str,
    pub zone_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum Transition {
    Raise(Raise),
    Clear(Clear),
}

/// A stored change: the feed cursor, the alert and what happened to it.
#[derive(Debug, Clone)]
pub struct Change {
    pub cursor: i64,
    pub alert_id: i64,
    pub action: &'static str,
    /// For a newly raised alert: its kind and severity.
    pub raised: Option<(&'static str, &'static str)>,
}

async fn lock_feed(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(FEED_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn event(
    tx: &mut Transaction<'_, Postgres>,
    alert_id: i64,
    action: &'static str,
    at: DateTime<Utc>,
    officer: Option<Uuid>,
    note: Option<&str>,
) -> StoreResult<Change> {
    let (cursor,): (i64,) = sqlx::query_as(
        "insert into alert_events (alert_id, action, at, officer_id, note)
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(alert_id)
    .bind(action)
    .bind(at)
    .bind(officer)
    .bind(note)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Change {
        cursor,
        alert_id,
        action,
        raised: None,
    })
}

/// Applies condition transitions in one transaction; returns the changes made (a raise of a
/// condition already open, or a clear of one not open, changes nothing).
pub async fn apply(
    pool: &PgPool,
    transitions: &[Transition],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Change>> {
    if transitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    lock_feed(&mut tx).await?;
    let mut changes = Vec::new();
    for t in transitions {
        match t {
            Transition::Raise(r) => {
                if let Some(change) = raise(&mut tx, r, now).await? {
                    changes.push(change);
                }
            }
            Transition::Clear(c) => {
                let cleared: Option<(i64,)> = sqlx::query_as(
                    "update alerts set cleared_at = greatest($4, event_at)
                     where supervisee_id = $1 and kind = $2 and zone_id is not distinct from $3
                       and cleared_at is null
                     returning id",
                )
                .bind(c.supervisee_id)
                .bind(c.kind)
                .bind(c.zone_id)
                .bind(c.at)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((id,)) = cleared {
                    changes.push(event(&mut tx, id, "cleared", now, None, None).await?);
                }
            }
        }
    }
    tx.commit().await?;
    Ok(changes)
}

async fn raise(
    tx: &mut Transaction<'_, Postgres>,
    r: &Raise,
    now: DateTime<Utc>,
) -> StoreResult<Option<Change>> {
    if r.instantaneous {
        // A repeat of a momentary condition nobody has looked at yet adds to that alert
        // instead of raising another: one thing for the officer to look at.
        let pending: Option<(i64,)> = sqlx::query_as(
            "select id from alerts
             where supervisee_id = $1 and kind = $2 and zone_id is not distinct from $3
               and status = 'open' and not (event_at = $4 and seq is not distinct from $5)
             order by id desc limit 1",
        )
        .bind(r.supervisee_id)
        .bind(r.kind)
        .bind(r.zone_id)
        .bind(r.event_at)
        .bind(r.seq)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((id,)) = pending {
            let seen: Option<(i32,)> = sqlx::query_as(
                "select 1 from alert_events where alert_id = $1 and action = 'repeated'
                   and note = $2",
            )
            .bind(id)
            .bind(repeat_note(r))
            .fetch_optional(&mut **tx)
            .await?;
            if seen.is_some() {
                return Ok(None);
            }
            let note = repeat_note(r);
            return Ok(Some(
                event(tx, id, "repeated", now, None, Some(&note)).await?,
            ));
        }
    }
    let (lat, lon, acc) = match r.position {
        Some((lat, lon, acc)) => (Some(lat), Some(lon), Some(acc)),
        None => (None, None, None),
    };
    let inserted: Option<(i64,)> = sqlx::query_as(
        "insert into alerts (supervisee_id, kind, severity, zone_id, event_at, opened_at,
             cleared_at, escalate_at, late, lat, lon, acc, device_id, seq, fix_received_at)
         values ($1, $2, $3, $4, $5, $6, case when $7 then $5 end, $8, $9, $10, $11, $12, $13,
                 $14, $15)
         on conflict do nothing
         returning id",
    )
    .bind(r.supervisee_id)
    .bind(r.kind)
    .bind(r.severity)
    .bind(r.zone_id)
    .bind(r.event_at)
    .bind(now)
    .bind(r.instantaneous)
    .bind(r.escalate_at)
    .bind(r.late)
    .bind(lat)
    .bind(lon)
    .bind(acc)
    .bind(r.device_id)
    .bind(r.seq)
    .bind(r.fix_received_at)
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some((id,)) => {
            let change = event(tx, id, "opened", now, None, None).await?;
            Ok(Some(Change {
                raised: Some((r.kind, r.severity)),
                ..change
            }))
        }
        None => Ok(None),
    }
}

/// What identifies a repeat (so re-evaluating the same report adds it once).
fn repeat_note(r: &Raise) -> String {
    format!(
        "repeated at {} (seq {})",
        r.event_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        r.seq.map_or("-".to_owned(), |s| s.to_string())
    )
}

/// Why an officer's step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRefused {
    NotFound,
    /// The alert is already resolved (or acknowledged, for acknowledge).
    WrongStatus,
    /// The step needs a note (`needs_note` said so).
    NoteRequired,
}

/// An officer acknowledges (`resolve == false`) or resolves an alert. Checked in this order:
/// `visible` (the caller's caseload; otherwise NotFound), the status, then `needs_note` when
/// no note is given. Returns the alert after the step and the change.
/// One officer's step on one alert.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub alert_id: i64,
    pub officer: Uuid,
    /// Resolve (true) or acknowledge (false).
    pub resolve: bool,
    pub note: Option<&'a str>,
    pub now: DateTime<Utc>,
}

pub async fn step(
    pool: &PgPool,
    step: Step<'_>,
    visible: impl FnOnce(&Alert) -> bool,
    needs_note: impl FnOnce(&Alert) -> bool,
) -> StoreResult<Result<(Alert, Change), StepRefused>> {
    let Step {
        alert_id: id,
        officer,
        resolve,
        note,
        now,
    } = step;
    let mut tx = pool.begin().await?;
    lock_feed(&mut tx).await?;
    let sql = format!(
        "select {ALERT_COLUMNS} from alerts a join supervisees s on s.id = a.supervisee_id
         where a.id = $1 for update of a"
    );
    let Some(alert) = sqlx::query_as::<_, Alert>(&sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(Err(StepRefused::NotFound));
    };
    if !visible(&alert) {
        return Ok(Err(StepRefused::NotFound));
    }
    let allowed = !matches!(
        (resolve, alert.status.as_str()),
        (_, "resolved") | (false, "acknowledged")
    );
    if !allowed {
        return Ok(Err(StepRefused::WrongStatus));
    }
    if note.is_none() && needs_note(&alert) {
        return Ok(Err(StepRefused::NoteRequired));
    }
    let (sql, action) = if resolve {
        (
            "update alerts set status = 'resolved', resolved_at = $2, resolved_by = $3,
                 acknowledged_at = coalesce(acknowledged_at, $2),
                 acknowledged_by = coalesce(acknowledged_by, $3)
             where id = $1",
            "resolved",
        )
    } else {
        (
            "update alerts set status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3
             where id = $1",
            "acknowledged",
        )
    };
    sqlx::query(sql)
        .bind(id)
        .bind(now)
        .bind(officer)
        .execute(&mut *tx)
        .await?;
    let change = event(&mut tx, id, action, now, Some(officer), note).await?;
    let sql = format!(
        "select {ALERT_COLUMNS} from alerts a join supervisees s on s.id = a.supervisee_id
         where a.id = $1"
    );
    let alert = sqlx::query_as::<_, Alert>(&sql)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok((alert, change)))
}

/// Escalates every open, unacknowledged alert whose escalation time has come.
pub async fn escalate_due(pool: &PgPool, now: DateTime<Utc>) -> StoreResult<Vec<Change>> {
    let mut tx = pool.begin().await?;
    lock_feed(&mut tx).await?;
    let due: Vec<(i64,)> = sqlx::query_as(
        "update alerts set escalated_at = $1
         where status = 'open' and escalated_at is null and escalate_at <= $1
         returning id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut changes = Vec::with_capacity(due.len());
    for (id,) in due {
        changes.push(event(&mut tx, id, "escalated", now, None, None).await?);
    }
    tx.commit().await?;
    Ok(changes)
}

pub async fn get(pool: &PgPool, id: i64) -> StoreResult<Option<Alert>> {
    let sql = format!(
        "select {ALERT_COLUMNS} from alerts a join supervisees s on s.id = a.supervisee_id
         where a.id = $1"
    );
    Ok(sqlx::query_as::<_, Alert>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

pub async fn events_of(pool: &PgPool, alert_id: i64) -> StoreResult<Vec<AlertEvent>> {
    Ok(sqlx::query_as::<_, AlertEvent>(
        "select id, alert_id, action, at, officer_id, note from alert_events
         where alert_id = $1 order by id",
    )
    .bind(alert_id)
    .fetch_all(pool)
    .await?)
}

/// Filters of an alert listing; `officer` limits it to that officer's caseload.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    pub officer: Option<Uuid>,
    pub status: Option<&'a str>,
    pub supervisee_id: Option<Uuid>,
    pub kind: Option<&'a str>,
    /// Newest first; continue below this id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, f: &ListFilter<'_>) -> StoreResult<Vec<Alert>> {
    let sql = format!(
        "select {ALERT_COLUMNS} from alerts a join supervisees s on s.id = a.supervisee_id
         where ($1::uuid is null or s.officer_id = $1)
           and ($2::text is null or a.status = $2)
           and ($3::uuid is null or a.supervisee_id = $3)
           and ($4::text is null or a.kind = $4)
           and ($5::int8 is null or a.id < $5)
         order by a.id desc limit $6"
    );
    Ok(sqlx::query_as::<_, Alert>(&sql)
        .bind(f.officer)
        .bind(f.status)
        .bind(f.supervisee_id)
        .bind(f.kind)
        .bind(f.before_id)
        .bind(f.limit)
        .fetch_all(pool)
        .await?)
}

/// One change for the feed: cursor, action and the alert as it is now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedChange {
    pub cursor: i64,
    pub action: String,
    #[sqlx(flatten)]
    pub alert: Alert,
}

/// Changes after `cursor` in cursor order, for one caseload (`officer`) or all.
pub async fn changes_after(
    pool: &PgPool,
    cursor: i64,
    officer: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<FeedChange>> {
    let sql = format!(
        "select e.id as cursor, e.action, {ALERT_COLUMNS}
         from alert_events e join alerts a on a.id = e.alert_id
              join supervisees s on s.id = a.supervisee_id
         where e.id > $1 and ($2::uuid is null or s.officer_id = $2)
         order by e.id limit $3"
    );
    Ok(sqlx::query_as::<_, FeedChange>(&sql)
        .bind(cursor)
        .bind(officer)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The newest feed cursor (0 when nothing happened yet).
pub async fn newest_cursor(pool: &PgPool) -> StoreResult<i64> {
    let (cursor,): (i64,) = sqlx::query_as("select coalesce(max(id), 0) from alert_events")
        .fetch_one(pool)
        .await?;
    Ok(cursor)
}

/// Uncleared conditions of these supervisees: `(supervisee, kind, zone, event_at)`.
pub async fn open_conditions(
    pool: &PgPool,
    supervisees: &[Uuid],
) -> StoreResult<Vec<(Uuid, String, Option<Uuid>, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        "select supervisee_id, kind, zone_id, event_at from alerts
         where supervisee_id = any($1) and cleared_at is null",
    )
    .bind(supervisees)
    .fetch_all(pool)
    .await?)
}

/// Unresolved alerts of one severity, agency-wide (the supervision gauges).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeverityCounts {
    pub severity: String,
    /// Not yet resolved (open or acknowledged; the condition may have ended).
    pub unresolved: i64,
    /// Still `open`: nobody has acknowledged them.
    pub unacknowledged: i64,
    pub oldest_unacknowledged: Option<DateTime<Utc>>,
}

/// Unresolved alerts by severity, in one grouped query over the unresolved index; severities
/// without any are absent.
pub async fn unresolved_by_severity(pool: &PgPool) -> StoreResult<Vec<SeverityCounts>> {
    Ok(sqlx::query_as::<_, SeverityCounts>(
        "select severity, count(*) as unresolved,
                count(*) filter (where status = 'open') as unacknowledged,
                min(opened_at) filter (where status = 'open') as oldest_unacknowledged
         from alerts where status <> 'resolved' group by severity",
    )
    .fetch_all(pool)
    .await?)
}
