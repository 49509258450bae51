//! Reading the audit log back (admins).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::{page_limit, AppState};
use crate::store;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor_id: Option<uuid::Uuid>,
    pub supervisee_id: Option<uuid::Uuid>,
    /// e.g. `supervisee.read`
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Cursor from a previous page's `next`.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub supervisee_id: Option<String>,
    /// The client address the request came from.
    pub remote_addr: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let limit = page_limit(query.limit)?;
    let after_id = query
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>().map_err(|_| ApiError::BadRequest {
                code: "invalid_query",
                message: "after: not a cursor returned by this API".into(),
            })
        })
        .transpose()?;
    let filter = store::audit::Filter {
        actor_id: query.actor_id,
        supervisee_id: query.supervisee_id,
        action: query.action,
        after_id,
        since: query.since,
        until: query.until,
    };
    let rows = store::audit::list(&state.db, &filter, limit + 1).await?;
    let (items, next) = super::paginate(rows, limit, |r| r.id.to_string());
    Ok(Json(AuditList {
        items: items
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id.to_string(),
                at: r.at,
                actor_id: r.actor_id.map(|id| id.to_string()),
                actor_username: r.actor_username,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                supervisee_id: r.supervisee_id.map(|id| id.to_string()),
                remote_addr: r.remote_addr,
                detail: r.detail,
            })
            .collect(),
        next,
    }))
}
