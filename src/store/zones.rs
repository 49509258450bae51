//! Zones and their attachment to supervisees. One zone may serve many supervisees (all the
//! schools of a city). Geometry is stored as WGS-84 GeoJSON, beside the geometry as drawn.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::datum::Datum;
use crate::domain::schedule::Schedule;
use crate::domain::zone_geometry::{GeometryLimits, ZoneGeometry};
use crate::eval::{PreparedZone, ZoneKind};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Zone {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub geometry: serde_json::Value,
    pub source_geometry: serde_json::Value,
    pub source_datum: String,
    pub schedule: serde_json::Value,
    pub buffer_m: f64,
    pub confirm_fixes: i32,
    pub shared: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Zone {
    /// The zone as the rule engine uses it: geometry re-read (it was validated and converted
    /// on input), edges indexed. Fails only if a stored row is corrupt.
    pub fn prepare(&self) -> Result<PreparedZone, StoreError> {
        let malformed = |what: String| StoreError::Malformed(format!("zone {}: {what}", self.id));
        let limits = GeometryLimits {
            max_vertices: usize::MAX,
            max_extent_m: f64::INFINITY,
            max_radius_m: f64::INFINITY,
        };
        let geometry = ZoneGeometry::parse(&self.geometry, Datum::Wgs84, &limits)
            .map_err(|e| malformed(e.to_string()))?;
        let schedule = Schedule::parse(&self.schedule).map_err(|e| malformed(e.to_string()))?;
        let kind = match self.kind.as_str() {
            "inclusion" => ZoneKind::Inclusion,
            "exclusion" => ZoneKind::Exclusion,
            other => return Err(malformed(format!("unknown kind {other:?}"))),
        };
        Ok(PreparedZone::prepare(
            self.id,
            kind,
            &geometry,
            schedule,
            self.buffer_m,
            u32::try_from(self.confirm_fixes).unwrap_or(1).max(1),
        ))
    }
}

pub(crate) const COLUMNS: &str =
    "z.id, z.name, z.kind, z.geometry, z.source_geometry, z.source_datum,
    z.schedule, z.buffer_m, z.confirm_fixes, z.shared, z.created_by, z.created_at, z.updated_at";

pub struct NewZone<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub geometry: serde_json::Value,
    pub source_geometry: &'a serde_json::Value,
    pub source_datum: &'a str,
    pub schedule: serde_json::Value,
    pub buffer_m: f64,
    pub confirm_fixes: i32,
    pub shared: bool,
    pub created_by: Uuid,
}

pub async fn create(pool: &PgPool, new: NewZone<'_>) -> StoreResult<Zone> {
    let sql = format!(
        "insert into zones as z (id, name, kind, geometry, source_geometry, source_datum,
                                 schedule, buffer_m, confirm_fixes, shared, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning {COLUMNS}"
    );
    Ok(sqlx::query_as::<_, Zone>(&sql)
        .bind(Uuid::new_v4())
        .bind(new.name)
        .bind(new.kind)
        .bind(new.geometry)
        .bind(new.source_geometry)
        .bind(new.source_datum)
        .bind(new.schedule)
        .bind(new.buffer_m)
        .bind(new.confirm_fixes)
        .bind(new.shared)
        .bind(new.created_by)
        .fetch_one(pool)
        .await?)
}

/// The condition under which officer `$1` may see zone `z`: it is shared, they drew it, or it
/// is attached to someone in their caseload. `$1` null means every zone (supervisors).
const VISIBLE: &str = "($1::uuid is null or z.shared or z.created_by = $1 or exists (
        select 1 from supervisee_zones sz join supervisees s on s.id = sz.supervisee_id
        where sz.zone_id = z.id and s.officer_id = $1))";

/// A zone visible to `viewer` (None: every zone).
pub async fn get_visible(
    pool: &PgPool,
    viewer: Option<Uuid>,
    id: Uuid,
) -> StoreResult<Option<Zone>> {
    let sql = format!("select {COLUMNS} from zones z where {VISIBLE} and z.id = $2");
    Ok(sqlx::query_as::<_, Zone>(&sql)
        .bind(viewer)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

pub async fn list_visible(
    pool: &PgPool,
    viewer: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<Zone>> {
    let sql = format!(
        "select {COLUMNS} from zones z where {VISIBLE} and ($2::uuid is null or z.id > $2)
         order by z.id limit $3"
    );
    Ok(sqlx::query_as::<_, Zone>(&sql)
        .bind(viewer)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The zones attached to a supervisee.
pub async fn of_supervisee(pool: &PgPool, supervisee_id: Uuid) -> StoreResult<Vec<Zone>> {
    let sql = format!(
        "select {COLUMNS} from zones z join supervisee_zones sz on sz.zone_id = z.id
         where sz.supervisee_id = $1 order by z.id"
    );
    Ok(sqlx::query_as::<_, Zone>(&sql)
        .bind(supervisee_id)
        .fetch_all(pool)
        .await?)
}

/// Attaches a zone; attaching twice is a no-op. Returns whether a new attachment was made.
pub async fn attach(
    pool: &PgPool,
    supervisee_id: Uuid,
    zone_id: Uuid,
    by: Uuid,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "insert into supervisee_zones (supervisee_id, zone_id, attached_by) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(supervisee_id)
    .bind(zone_id)
    .bind(by)
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict("zone or supervisee does not exist".into())
        }
        _ => StoreError::from(e),
    })?;
    Ok(done.rows_affected() == 1)
}

/// Detaches a zone; returns whether it was attached.
pub async fn detach(pool: &PgPool, supervisee_id: Uuid, zone_id: Uuid) -> StoreResult<bool> {
    let done =
        sqlx::query("delete from supervisee_zones where supervisee_id = $1 and zone_id = $2")
            .bind(supervisee_id)
            .bind(zone_id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}
