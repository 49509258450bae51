//! The `fixes` history: group-committed inserts, monthly partitions and their retention, and
//! reading a supervisee's track back.
//!
//! Inserts are one statement per batch (`unnest` of column arrays) with `on conflict do
//! nothing`, so a resent report is stored once; the statement returns which rows were new.
//! Partitions are named `fixes_yYYYYmMM` and cover one calendar month of device time (UTC).

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::StoreResult;

/// One report as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub device_id: Uuid,
    pub supervisee_id: Option<Uuid>,
    pub seq: i64,
    pub ts: DateTime<Utc>,
    /// `(lat, lon, acc, src, speed)` for a fix; None for a status report.
    pub position: Option<(f64, f64, f32, &'static str, Option<f32>)>,
    pub bat: Option<i16>,
    pub strap: Option<&'static str>,
}

/// Stores a batch in one statement; returns the `(device_id, seq, ts)` of rows that were new
/// (the rest were already stored).
pub async fn insert_batch(
    pool: &PgPool,
    batch: &[StoredReport],
) -> StoreResult<Vec<(Uuid, i64, DateTime<Utc>)>> {
    let n = batch.len();
    let mut device = Vec::with_capacity(n);
    let mut supervisee = Vec::with_capacity(n);
    let mut seq = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    let mut lon = Vec::with_capacity(n);
    let mut acc = Vec::with_capacity(n);
    let mut src = Vec::with_capacity(n);
    let mut speed = Vec::with_capacity(n);
    let mut bat = Vec::with_capacity(n);
    let mut strap = Vec::with_capacity(n);
    for r in batch {
        device.push(r.device_id);
        supervisee.push(r.supervisee_id);
        seq.push(r.seq);
        ts.push(r.ts);
        kind.push(if r.position.is_some() {
            "fix"
        } else {
            "status"
        });
        lat.push(r.position.map(|p| p.0));
        lon.push(r.position.map(|p| p.1));
        acc.push(r.position.map(|p| p.2));
        src.push(r.position.map(|p| p.3));
        speed.push(r.position.and_then(|p| p.4));
        bat.push(r.bat);
        strap.push(r.strap);
    }
    let rows: Vec<(Uuid, i64, DateTime<Utc>)> = sqlx::query_as(
        "insert into fixes (device_id, supervisee_id, seq, ts, kind, lat, lon, acc, src, speed, bat, strap)
         select * from unnest($1::uuid[], $2::uuid[], $3::int8[], $4::timestamptz[], $5::text[],
                              $6::float8[], $7::float8[], $8::float4[], $9::text[], $10::float4[],
                              $11::int2[], $12::text[])
         on conflict do nothing
         returning device_id, seq, ts",
    )
    .bind(device)
    .bind(supervisee)
    .bind(seq)
    .bind(ts)
    .bind(kind)
    .bind(lat)
    .bind(lon)
    .bind(acc)
    .bind(src)
    .bind(speed)
    .bind(bat)
    .bind(strap)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn partition_name(month: NaiveDate) -> String {
    format!("fixes_y{:04}m{:02}", month.year(), month.month())
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Creates the monthly partitions from `months_back` months before `now` to `months_ahead`
/// after it, where missing. Returns how many were created.
pub async fn ensure_partitions(
    pool: &PgPool,
    now: DateTime<Utc>,
    months_back: u32,
    months_ahead: u32,
) -> StoreResult<usize> {
    let this_month = month_start(now.date_naive());
    let first = this_month - Months::new(months_back);
    let mut created = 0;
    for i in 0..=(months_back + months_ahead) {
        let month = first + Months::new(i);
        let name = partition_name(month);
        let exists: Option<(i32,)> =
            sqlx::query_as("select 1 from pg_class where relname = $1 and relkind = 'r'")
                .bind(&name)
                .fetch_optional(pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        let from = midnight(month);
        let to = midnight(month + Months::new(1));
        // Bounds are generated here, never taken from input.
        let ddl = format!(
            "create table if not exists {name} partition of fixes for values from ('{}') to ('{}')",
            from.to_rfc3339(),
            to.to_rfc3339()
        );
        sqlx::query(&ddl).execute(pool).await?;
        created += 1;
    }
    Ok(created)
}

/// Drops the monthly partitions wholly older than `keep_since`. Returns the names dropped.
pub async fn drop_partitions_before(
    pool: &PgPool,
    keep_since: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let names: Vec<(String,)> = sqlx::query_as(
        "select c.relname from pg_inherits i
         join pg_class c on c.oid = i.inhrelid
         join pg_class p on p.oid = i.inhparent
         where p.relname = 'fixes' and c.relname ~ '^fixes_y[0-9]{4}m[0-9]{2}$'",
    )
    .fetch_all(pool)
    .await?;
    let mut dropped = Vec::new();
    for (name,) in names {
        let (Ok(year), Ok(month)) = (name[7..11].parse::<i32>(), name[12..14].parse::<u32>())
        else {
            continue;
        };
        let Some(start) = NaiveDate::from_ymd_opt(year, month, 1) else {
            continue;
        };
        if midnight(start + Months::new(1)) <= keep_since {
            sqlx::query(&format!("drop table if exists {name}"))
                .execute(pool)
                .await?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

/// One point of a track.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrackPoint {
    pub device_id: Uuid,
    pub seq: i64,
    pub ts: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub acc: f32,
    pub src: String,
    pub speed: Option<f32>,
    pub bat: Option<i16>,
    pub strap: Option<String>,
}

/// Where a track page resumes: strictly after this (ts, device, seq).
pub type TrackCursor = (DateTime<Utc>, Uuid, i64);

/// A supervisee's fixes with `from <= ts < to`, in device-time order, after `cursor`.
pub async fn track(
    pool: &PgPool,
    supervisee_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cursor: Option<TrackCursor>,
    limit: i64,
) -> StoreResult<Vec<TrackPoint>> {
    let (after_ts, after_device, after_seq) = match cursor {
        Some((ts, device, seq)) => (Some(ts), Some(device), Some(seq)),
        None => (None, None, None),
    };
    Ok(sqlx::query_as::<_, TrackPoint>(
        "select device_id, seq, ts, lat, lon, acc, src, speed, bat, strap from fixes
         where supervisee_id = $1 and kind = 'fix' and ts >= $2 and ts < $3
           and ($4::timestamptz is null or (ts, device_id, seq) > ($4, $5::uuid, $6::int8))
         order by ts, device_id, seq
         limit $7",
    )
    .bind(supervisee_id)
    .bind(from)
    .bind(to)
    .bind(after_ts)
    .bind(after_device)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The newest fix and the newest status fields of each device heard from since `since`, for
/// rebuilding live state after Redis lost it.
pub async fn latest_per_device(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> StoreResult<Vec<(TrackPoint, Option<Uuid>, DateTime<Utc>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        point: TrackPoint,
        supervisee_id: Option<Uuid>,
        received_at: DateTime<Utc>,
    }
    let rows = sqlx::query_as::<_, Row>(
        "select distinct on (device_id)
                device_id, seq, ts, lat, lon, acc, src, speed, bat, strap, supervisee_id, received_at
         from fixes where kind = 'fix' and ts >= $1
         order by device_id, ts desc, seq desc",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.point, r.supervisee_id, r.received_at))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_month() {
        let month = NaiveDate::from_ymd_opt(2026, 3, 17)
            .map(month_start)
            .unwrap();
        assert_eq!(partition_name(month), "fixes_y2026m03");
    }
}
