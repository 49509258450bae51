//! A supervisee's track: their stored fixes as a GeoJSON FeatureCollection of Points in
//! device-time order, paginated with an opaque cursor. Caseload-scoped and audited.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{audit, supervisee_in_reach, Audit, Purpose};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, ClientAddr, Principal};
use super::AppState;
use crate::store::fixes::{self, TrackCursor};

/// Default and largest number of points per page.
pub const DEFAULT_POINTS: i64 = 1000;
pub const MAX_POINTS: i64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// Start of the period (inclusive, RFC 3339); default 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Track {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Point features; properties: `seq`, `ts`, `acc`, `src`, `bat`, `strap`, `speed`, `device_id`.
    #[schema(value_type = Vec<Object>)]
    pub features: Vec<serde_json::Value>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

fn bad_query(message: &str) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: message.to_owned(),
    }
}

fn encode_cursor((ts, device, seq): TrackCursor) -> String {
    format!("{}.{}.{}", ts.timestamp_micros(), device.simple(), seq)
}

fn decode_cursor(raw: &str) -> Result<TrackCursor, ApiError> {
    let invalid = || bad_query("after: not a cursor returned by this API");
    let mut parts = raw.split('.');
    let (Some(ts), Some(device), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let ts = ts
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let device = Uuid::parse_str(device).map_err(|_| invalid())?;
    let seq = seq.parse::<i64>().map_err(|_| invalid())?;
    Ok((ts, device, seq))
}

pub async fn track(
    State(state): State<AppState>,
    principal: Principal,
    from_addr: ClientAddr,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<TrackQuery>,
) -> ApiResult<Json<Track>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let limit = query.limit.unwrap_or(DEFAULT_POINTS);
    if !(1..=MAX_POINTS).contains(&limit) {
        return Err(bad_query(&format!(
            "limit must be between 1 and {MAX_POINTS}"
        )));
    }
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(bad_query("from must be before to"));
    }
    let cursor = query.after.as_deref().map(decode_cursor).transpose()?;
    let mut points = fixes::track(&state.db, id, from, to, cursor, limit + 1).await?;
    let next = if points.len() as i64 > limit {
        points.truncate(limit as usize);
        points
            .last()
            .map(|p| encode_cursor((p.ts, p.device_id, p.seq)))
    } else {
        None
    };
    audit(
        &state,
        Some(&principal),
        &from_addr,
        Audit::supervisee(
            "supervisee.track_read",
            id,
            serde_json::json!({ "from": from, "to": to, "points": points.len() }),
        ),
    )
    .await?;
    let features = points
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [p.lon, p.lat] },
                "properties": {
                    "seq": p.seq, "ts": p.ts, "acc": p.acc, "src": p.src, "bat": p.bat,
                    "strap": p.strap, "speed": p.speed, "device_id": p.device_id,
                },
            })
        })
        .collect();
    Ok(Json(Track {
        kind: "FeatureCollection",
        features,
        next,
    }))
}

/// A supervisee's live position, from Redis.
#[derive(Serialize, ToSchema)]
pub struct PositionView {
    pub supervisee_id: Uuid,
    pub device_id: Option<Uuid>,
    /// When the device was last heard from (any report, server time).
    pub last_report_at: Option<DateTime<Utc>>,
    /// The newest fix (`seq`, `ts`, `lat`, `lon`, `acc`, `src`, `speed`); null before the first.
    #[schema(value_type = Option<Object>)]
    pub fix: Option<serde_json::Value>,
    pub bat: Option<i16>,
    pub strap: Option<String>,
}

pub async fn position(
    State(state): State<AppState>,
    principal: Principal,
    from_addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<PositionView>> {
    let id = supervisee_in_reach(&state, &principal, &id, Purpose::Location).await?;
    let live = state.live_state.supervisee(id).await?;
    audit(
        &state,
        Some(&principal),
        &from_addr,
        Audit::supervisee("supervisee.position_read", id, serde_json::json!({})),
    )
    .await?;
    let live = live.unwrap_or_default();
    let fix = match (live.ts, live.lat, live.lon) {
        (Some(ts), Some(lat), Some(lon)) => Some(serde_json::json!({
            "seq": live.seq, "ts": ts, "lat": lat, "lon": lon, "acc": live.acc,
            "src": live.src, "speed": live.speed,
        })),
        _ => None,
    };
    Ok(Json(PositionView {
        supervisee_id: id,
        device_id: live.device_id,
        last_report_at: live.last_report,
        fix,
        bat: live.bat,
        strap: live.strap,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = (Utc::now(), Uuid::new_v4(), 42);
        let decoded = decode_cursor(&encode_cursor(cursor)).unwrap();
        assert_eq!(decoded.1, cursor.1);
        assert_eq!(decoded.2, 42);
        assert_eq!(decoded.0.timestamp_micros(), cursor.0.timestamp_micros());
        assert!(decode_cursor("1.2").is_err());
        assert!(decode_cursor("x.y.z").is_err());
    }
}
