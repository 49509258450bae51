//! Everything the rule engine needs about many supervisees at once, in four queries: the
//! supervisee (officer, time zone, lost-contact interval), their zones, their monitoring orders
//! and their approved leave. Orders and leave that ended more than a day ago are left out.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::zones::{Zone, COLUMNS};
use super::StoreResult;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuperviseeBasics {
    pub id: Uuid,
    pub officer_id: Uuid,
    pub timezone: String,
    pub lost_contact_after_s: i32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachedZone {
    pub supervisee_id: Uuid,
    #[sqlx(flatten)]
    pub zone: Zone,
}

/// A period of an order or a leave; `destination` only for leave.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeriodRow {
    pub id: Uuid,
    pub supervisee_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub destination: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct RuleRows {
    pub supervisees: Vec<SuperviseeBasics>,
    pub zones: Vec<AttachedZone>,
    pub orders: Vec<PeriodRow>,
    pub leaves: Vec<PeriodRow>,
}

pub async fn load(pool: &PgPool, ids: &[Uuid], now: DateTime<Utc>) -> StoreResult<RuleRows> {
    let since = now - chrono::Duration::days(1);
    let supervisees = sqlx::query_as::<_, SuperviseeBasics>(
        "select id, officer_id, timezone, lost_contact_after_s from supervisees
         where id = any($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let zones = sqlx::query_as::<_, AttachedZone>(&format!(
        "select sz.supervisee_id, {COLUMNS} from zones z
         join supervisee_zones sz on sz.zone_id = z.id
         where sz.supervisee_id = any($1) order by sz.supervisee_id, z.id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let orders = sqlx::query_as::<_, PeriodRow>(
        "select id, supervisee_id, starts_at, ends_at, null::jsonb as destination
         from monitoring_orders where supervisee_id = any($1) and ends_at > $2
         order by starts_at",
    )
    .bind(ids)
    .bind(since)
    .fetch_all(pool)
    .await?;
    let leaves = sqlx::query_as::<_, PeriodRow>(
        "select id, supervisee_id, starts_at, ends_at, destination
         from leaves where supervisee_id = any($1) and ends_at > $2 and cancelled_at is null
         order by starts_at",
    )
    .bind(ids)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(RuleRows {
        supervisees,
        zones,
        orders,
        leaves,
    })
}

/// Supervisees under a monitoring order at `now`, with their lost-contact interval.
pub async fn under_order(pool: &PgPool, now: DateTime<Utc>) -> StoreResult<Vec<(Uuid, i32)>> {
    Ok(sqlx::query_as(
        "select s.id, s.lost_contact_after_s from supervisees s
         where exists (select 1 from monitoring_orders o where o.supervisee_id = s.id
                       and o.starts_at <= $1 and o.ends_at > $1)",
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}
