//! Officer accounts (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{audit, Audit};
use super::error::{ApiError, ApiResult};
use super::extract::{self, parse_id, ApiJson, ClientAddr, Principal};
use super::AppState;
use crate::credentials;
use crate::domain::officer::{check_password, parse_username, Role, Roles};
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct OfficerView {
    pub id: String,
    pub username: String,
    pub name: String,
    /// The account's main role: supervisor, officer or admin.
    pub role: String,
    /// Every role the account holds.
    pub roles: Vec<String>,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<store::officers::Officer> for OfficerView {
    fn from(o: store::officers::Officer) -> Self {
        OfficerView {
            id: o.id.to_string(),
            username: o.username,
            name: o.name,
            role: o.roles.primary().as_str().to_owned(),
            roles: o.roles.to_strings(),
            active: o.active,
            created_at: o.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOfficer {
    pub username: String,
    pub password: String,
    /// `officer`, `supervisor` or `admin`.
    pub role: String,
    /// Further roles held besides `role` (e.g. an admin who is also a supervisor).
    #[serde(default)]
    pub extra_roles: Vec<String>,
    pub name: String,
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    from: ClientAddr,
    ApiJson(req): ApiJson<CreateOfficer>,
) -> ApiResult<(StatusCode, Json<OfficerView>)> {
    let username =
        parse_username(&req.username).map_err(|m| ApiError::invalid("invalid_username", m))?;
    check_password(&req.password).map_err(|m| ApiError::invalid("weak_password", m))?;
    let mut roles = vec![req
        .role
        .parse::<Role>()
        .map_err(|m| ApiError::invalid("invalid_role", m))?];
    for extra in &req.extra_roles {
        roles.push(
            extra
                .parse::<Role>()
                .map_err(|m| ApiError::invalid("invalid_role", m))?,
        );
    }
    let name = extract::name(&req.name)?;
    let password_hash = credentials::hash_password(req.password)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let officer = store::officers::create(
        &state.db,
        store::officers::NewOfficer {
            username: &username,
            name,
            roles: Roles::of(&roles),
            password_hash: &password_hash,
        },
    )
    .await?;
    audit(
        &state,
        Some(&principal),
        &from,
        Audit {
            action: "officer.create",
            target_type: "officer",
            target_id: Some(officer.id.to_string()),
            supervisee_id: None,
            detail: serde_json::json!({ "username": officer.username, "roles": officer.roles.to_strings() }),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(OfficerView::from(officer))))
}

#[derive(Serialize, ToSchema)]
pub struct OfficerList {
    pub items: Vec<OfficerView>,
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<OfficerList>> {
    let officers = store::officers::list(&state.db).await?;
    Ok(Json(OfficerList {
        items: officers.into_iter().map(OfficerView::from).collect(),
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OfficerView>> {
    let officer = store::officers::get(&state.db, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(OfficerView::from(officer)))
}
