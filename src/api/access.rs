//! Access control: who may call a route (the gate), and whose records they may see (caseload).
//!
//! Every route in [`super::routes`] declares an [`Access`]; the gate runs before the handler,
//! authenticates the bearer token and checks the role. Record-level scoping is the caseload:
//! an officer sees the supervisees assigned to them, a supervisor every supervisee of the
//! agency, an admin every supervisee's *record* (to assign devices) but no location data.
//! A record outside the caller's reach is reported as 404, exactly like one that does not exist.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ClientAddr, Principal};
use super::AppState;
use crate::credentials::hash_token;
use crate::domain::officer::{Role, Roles};
use crate::store;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Any logged-in account.
    Authenticated,
    /// A device, authenticated by its own token inside the handler (officer tokens do not work).
    Device,
    /// Accounts holding at least one of these roles.
    AnyOf(&'static [Role]),
}

pub const ADMIN: Access = Access::AnyOf(&[Role::Admin]);
pub const ADMIN_OR_SUPERVISOR: Access = Access::AnyOf(&[Role::Admin, Role::Supervisor]);
/// Routes serving location data (zones, tracks, positions, alerts).
pub const LOCATION: Access = Access::AnyOf(&[Role::Officer, Role::Supervisor]);
/// Routes serving supervisees' records (not their locations).
pub const RECORDS: Access = Access::AnyOf(&[Role::Officer, Role::Supervisor, Role::Admin]);

impl Access {
    /// Whether an account with these roles passes.
    pub fn admits(self, roles: Roles) -> bool {
        match self {
            Access::Public | Access::Authenticated => true,
            Access::Device => false,
            Access::AnyOf(allowed) => roles.intersects(Roles::of(allowed)),
        }
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The gate: authenticates and checks the route's role rule, then hands over to the handler.
pub async fn gate(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    if access == Access::Public || access == Access::Device {
        return next.run(req).await;
    }
    let Some(token) = bearer_token(&req) else {
        return ApiError::Unauthenticated.into_response();
    };
    let token_hash = hash_token(token);
    let officer =
        match store::officers::session_officer(&state.db, &token_hash, chrono::Utc::now()).await {
            Ok(Some(officer)) => officer,
            Ok(None) => return ApiError::Unauthenticated.into_response(),
            Err(err) => return ApiError::from(err).into_response(),
        };
    if !access.admits(officer.roles) {
        return ApiError::Forbidden.into_response();
    }
    req.extensions_mut().insert(Principal {
        officer_id: officer.id,
        username: officer.username,
        roles: officer.roles,
        token_hash,
    });
    next.run(req).await
}

/// What the caller wants a supervisee for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The administrative record (name, officer, device).
    Record,
    /// Location data: zones, orders and leave, tracks, positions, alerts.
    Location,
}

impl Principal {
    /// Whether the caller may see supervisees of any caseload for this purpose.
    pub fn sees_all(&self, purpose: Purpose) -> bool {
        self.roles.contains(Role::Supervisor)
            || (purpose == Purpose::Record && self.roles.contains(Role::Admin))
    }

    /// The caseload filter for listings: None means every supervisee.
    pub fn caseload_filter(&self, purpose: Purpose) -> Option<Uuid> {
        (!self.sees_all(purpose)).then_some(self.officer_id)
    }

    /// Whether a supervisee in `officer_id`'s caseload is visible to the caller.
    pub fn may_see(&self, officer_id: Uuid, purpose: Purpose) -> bool {
        self.sees_all(purpose)
            || (officer_id == self.officer_id && self.roles.contains(Role::Officer))
    }
}

/// Checks that a supervisee exists and is within the caller's reach; 404 otherwise.
pub async fn supervisee_in_reach(
    state: &AppState,
    principal: &Principal,
    raw_id: &str,
    purpose: Purpose,
) -> Result<Uuid, ApiError> {
    let id = super::extract::parse_id(raw_id)?;
    match store::supervisees::officer_of(&state.db, id).await? {
        Some(officer) if principal.may_see(officer, purpose) => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

/// One audit entry about to be written for the caller.
pub struct Audit<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub supervisee_id: Option<Uuid>,
    pub detail: serde_json::Value,
}

impl<'a> Audit<'a> {
    /// An entry about one supervisee's data.
    pub fn supervisee(action: &'a str, id: Uuid, detail: serde_json::Value) -> Audit<'a> {
        Audit {
            action,
            target_type: "supervisee",
            target_id: Some(id.to_string()),
            supervisee_id: Some(id),
            detail,
        }
    }
}

/// Writes an audit entry for the caller. Data is only served once its read is audited: a
/// failure here fails the request.
pub async fn audit(
    state: &AppState,
    principal: Option<&Principal>,
    from: &ClientAddr,
    entry: Audit<'_>,
) -> Result<(), ApiError> {
    store::audit::write(
        &state.db,
        store::audit::Entry {
            actor_id: principal.map(|p| p.officer_id),
            actor_username: principal.map(|p| p.username.as_str()),
            action: entry.action,
            target_type: entry.target_type,
            target_id: entry.target_id,
            supervisee_id: entry.supervisee_id,
            remote_addr: Some(from.0.clone()),
            detail: entry.detail,
        },
    )
    .await?;
    Ok(())
}
