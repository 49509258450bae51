//! The route table: every HTTP route with its access rule, its OpenAPI description and its
//! handler, in one list.
//!
//! A route cannot be added without an [`Access`] rule (it is a required argument), the router
//! and `/openapi.json` are both built from this list, and the access test walks it as every
//! role: a new route without a deliberate rule fails the build.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::access::{Access, ADMIN, ADMIN_OR_SUPERVISOR, LOCATION, RECORDS};
use super::{
    alerts, audit, auth, devices, feed, officers, ops, orders, supervisees, track, zones, AppState,
};

/// Collects a schema and the schemas it refers to.
pub type SchemaCollector = fn(&mut Vec<(String, RefOr<Schema>)>);

/// What a route is, independent of its handler.
#[derive(Clone)]
pub struct RouteSpec {
    pub method: Method,
    /// axum path syntax: `/v1/supervisees/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Name and collector of the JSON request body's schema.
    pub request: Option<(String, SchemaCollector)>,
    /// Success status and, when the body is JSON, its schema.
    pub response: (u16, Option<(String, SchemaCollector)>),
    /// Content type of a non-JSON success body (metrics, plain text).
    pub response_type: Option<&'static str>,
}

pub struct Route {
    pub spec: RouteSpec,
    pub handler: MethodRouter<AppState>,
}

fn collector<T: ToSchema>() -> (String, SchemaCollector) {
    fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
    (T::name().into_owned(), collect::<T>)
}

/// Starts a route description.
fn at(
    method: Method,
    path: &'static str,
    access: Access,
    tag: &'static str,
    summary: &'static str,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        tag,
        summary,
        request: None,
        response: (200, None),
        response_type: None,
    }
}

impl RouteSpec {
    fn body<T: ToSchema>(mut self) -> Self {
        self.request = Some(collector::<T>());
        self
    }

    fn returns<T: ToSchema>(mut self, status: u16) -> Self {
        self.response = (status, Some(collector::<T>()));
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.response = (status, None);
        self
    }

    fn text(mut self, content_type: &'static str) -> Self {
        self.response_type = Some(content_type);
        self
    }

    fn to<H, T>(self, handler: H) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(self.method.clone())
            .unwrap_or_else(|_| panic!("unsupported method {} in the route table", self.method));
        Route {
            spec: self,
            handler: on(filter, handler),
        }
    }
}

use Method as M;

/// Every route of the officer API and operations.
pub fn table() -> Vec<Route> {
    vec![
        // Operations.
        at(
            M::GET,
            "/healthz",
            Access::Public,
            "operations",
            "The process is up",
        )
        .returns::<ops::Health>(200)
        .to(ops::healthz),
        at(
            M::GET,
            "/readyz",
            Access::Public,
            "operations",
            "PostgreSQL and Redis are reachable",
        )
        .returns::<ops::Readiness>(200)
        .to(ops::readyz),
        at(
            M::GET,
            "/metrics",
            Access::Public,
            "operations",
            "Prometheus metrics",
        )
        .text("text/plain; version=0.0.4")
        .to(ops::metrics),
        at(
            M::GET,
            "/openapi.json",
            Access::Public,
            "operations",
            "This API description",
        )
        .text("application/json")
        .to(ops::openapi),
        // Authentication.
        at(
            M::POST,
            "/v1/auth/login",
            Access::Public,
            "auth",
            "Log in; returns a bearer token",
        )
        .body::<auth::LoginRequest>()
        .returns::<auth::LoginResponse>(201)
        .to(auth::login),
        at(
            M::POST,
            "/v1/auth/logout",
            Access::Authenticated,
            "auth",
            "Revoke the token used",
        )
        .status(204)
        .to(auth::logout),
        at(
            M::GET,
            "/v1/auth/me",
            Access::Authenticated,
            "auth",
            "The logged-in account",
        )
        .returns::<officers::OfficerView>(200)
        .to(auth::me),
        at(
            M::POST,
            "/v1/auth/ws-ticket",
            LOCATION,
            "auth",
            "A single-use ticket for the officer feed (browsers)",
        )
        .returns::<feed::TicketResponse>(201)
        .to(feed::ticket),
        // Officer accounts.
        at(
            M::POST,
            "/v1/officers",
            ADMIN,
            "officers",
            "Create an officer account",
        )
        .body::<officers::CreateOfficer>()
        .returns::<officers::OfficerView>(201)
        .to(officers::create),
        at(
            M::GET,
            "/v1/officers",
            ADMIN,
            "officers",
            "List officer accounts",
        )
        .returns::<officers::OfficerList>(200)
        .to(officers::list),
        at(
            M::GET,
            "/v1/officers/{id}",
            ADMIN,
            "officers",
            "One officer account",
        )
        .returns::<officers::OfficerView>(200)
        .to(officers::get),
        // Devices.
        at(
            M::POST,
            "/v1/devices",
            ADMIN,
            "devices",
            "Register a device; its token is shown once",
        )
        .body::<devices::CreateDevice>()
        .returns::<devices::RegisteredDevice>(201)
        .to(devices::create),
        at(M::GET, "/v1/devices", ADMIN, "devices", "List devices")
            .returns::<devices::DeviceList>(200)
            .to(devices::list),
        at(M::GET, "/v1/devices/{id}", ADMIN, "devices", "One device")
            .returns::<devices::DeviceView>(200)
            .to(devices::get),
        at(
            M::POST,
            "/v1/devices/{id}/revoke",
            ADMIN,
            "devices",
            "Revoke a device's token",
        )
        .returns::<devices::DeviceView>(200)
        .to(devices::revoke),
        // Supervisees.
        at(
            M::POST,
            "/v1/supervisees",
            ADMIN_OR_SUPERVISOR,
            "supervisees",
            "Create a supervisee",
        )
        .body::<supervisees::CreateSupervisee>()
        .returns::<supervisees::SuperviseeView>(201)
        .to(supervisees::create),
        at(
            M::GET,
            "/v1/supervisees",
            RECORDS,
            "supervisees",
            "The caller's caseload",
        )
        .returns::<supervisees::SuperviseeList>(200)
        .to(supervisees::list),
        at(
            M::GET,
            "/v1/supervisees/{id}",
            RECORDS,
            "supervisees",
            "One supervisee",
        )
        .returns::<supervisees::SuperviseeView>(200)
        .to(supervisees::get),
        at(
            M::PATCH,
            "/v1/supervisees/{id}",
            ADMIN_OR_SUPERVISOR,
            "supervisees",
            "Change or reassign a supervisee",
        )
        .body::<supervisees::UpdateSupervisee>()
        .returns::<supervisees::SuperviseeView>(200)
        .to(supervisees::update),
        at(
            M::PUT,
            "/v1/supervisees/{id}/device",
            ADMIN_OR_SUPERVISOR,
            "supervisees",
            "Assign a device",
        )
        .body::<supervisees::AssignDevice>()
        .returns::<supervisees::SuperviseeView>(200)
        .to(supervisees::assign_device),
        at(
            M::DELETE,
            "/v1/supervisees/{id}/device",
            ADMIN_OR_SUPERVISOR,
            "supervisees",
            "Unassign the device",
        )
        .status(204)
        .to(supervisees::unassign_device),
        // Zones.
        at(M::POST, "/v1/zones", LOCATION, "zones", "Draw a zone")
            .body::<zones::CreateZone>()
            .returns::<zones::ZoneView>(201)
            .to(zones::create),
        at(
            M::GET,
            "/v1/zones",
            LOCATION,
            "zones",
            "Zones the caller may see",
        )
        .returns::<zones::ZoneList>(200)
        .to(zones::list),
        at(M::GET, "/v1/zones/{id}", LOCATION, "zones", "One zone")
            .returns::<zones::ZoneView>(200)
            .to(zones::get),
        at(
            M::POST,
            "/v1/zones/{id}/classify",
            LOCATION,
            "zones",
            "Classify a point against a zone (inside, outside, uncertain)",
        )
        .body::<zones::ClassifyRequest>()
        .returns::<zones::ClassifyResponse>(200)
        .to(zones::classify),
        at(
            M::GET,
            "/v1/supervisees/{id}/zones",
            LOCATION,
            "zones",
            "A supervisee's zones",
        )
        .returns::<zones::ZoneList>(200)
        .to(zones::of_supervisee),
        at(
            M::PUT,
            "/v1/supervisees/{id}/zones/{zone_id}",
            LOCATION,
            "zones",
            "Attach a zone",
        )
        .status(204)
        .to(zones::attach),
        at(
            M::DELETE,
            "/v1/supervisees/{id}/zones/{zone_id}",
            LOCATION,
            "zones",
            "Detach a zone",
        )
        .status(204)
        .to(zones::detach),
        // Monitoring orders and leave.
        at(
            M::POST,
            "/v1/supervisees/{id}/orders",
            LOCATION,
            "orders",
            "Record a monitoring order",
        )
        .body::<orders::CreateOrder>()
        .returns::<orders::OrderView>(201)
        .to(orders::create_order),
        at(
            M::GET,
            "/v1/supervisees/{id}/orders",
            LOCATION,
            "orders",
            "A supervisee's monitoring orders",
        )
        .returns::<orders::OrderList>(200)
        .to(orders::list_orders),
        at(
            M::POST,
            "/v1/supervisees/{id}/leaves",
            LOCATION,
            "orders",
            "Record approved leave",
        )
        .body::<orders::CreateLeave>()
        .returns::<orders::LeaveView>(201)
        .to(orders::create_leave),
        at(
            M::GET,
            "/v1/supervisees/{id}/leaves",
            LOCATION,
            "orders",
            "A supervisee's leave",
        )
        .returns::<orders::LeaveList>(200)
        .to(orders::list_leaves),
        at(
            M::DELETE,
            "/v1/supervisees/{id}/leaves/{leave_id}",
            LOCATION,
            "orders",
            "Cancel leave",
        )
        .returns::<orders::LeaveView>(200)
        .to(orders::cancel_leave),
        // Devices streaming (protocol v1, docs/device-protocol.md).
        at(
            M::GET,
            "/v1/device/ws",
            Access::Device,
            "devices",
            "Device WebSocket: stream fixes, receive acks",
        )
        .status(101)
        .to(crate::ingest::connection::upgrade),
        // History.
        at(
            M::GET,
            "/v1/supervisees/{id}/track",
            LOCATION,
            "history",
            "A supervisee's track as GeoJSON",
        )
        .returns::<track::Track>(200)
        .to(track::track),
        at(
            M::GET,
            "/v1/supervisees/{id}/position",
            LOCATION,
            "history",
            "A supervisee's live position",
        )
        .returns::<track::PositionView>(200)
        .to(track::position),
        // Alerts and the officers' live feed (docs/alerts.md).
        at(
            M::GET,
            "/v1/alerts",
            LOCATION,
            "alerts",
            "Alerts in the caller's caseload",
        )
        .returns::<alerts::AlertList>(200)
        .to(alerts::list),
        at(
            M::GET,
            "/v1/alerts/{id}",
            LOCATION,
            "alerts",
            "One alert with its events",
        )
        .returns::<alerts::AlertDetail>(200)
        .to(alerts::get),
        at(
            M::POST,
            "/v1/alerts/{id}/acknowledge",
            LOCATION,
            "alerts",
            "Acknowledge an alert",
        )
        .body::<alerts::StepRequest>()
        .returns::<crate::alerts::view::AlertView>(200)
        .to(alerts::acknowledge),
        at(
            M::POST,
            "/v1/alerts/{id}/resolve",
            LOCATION,
            "alerts",
            "Resolve an alert (a note is required for a critical one)",
        )
        .body::<alerts::StepRequest>()
        .returns::<crate::alerts::view::AlertView>(200)
        .to(alerts::resolve),
        at(
            M::GET,
            "/v1/officer/ws",
            Access::Public,
            "alerts",
            "Officer live feed (WebSocket; bearer header or ?ticket=, optional ?after=)",
        )
        .status(101)
        .to(feed::officer_ws),
        // Audit.
        at(M::GET, "/v1/audit", ADMIN, "audit", "Read the audit log")
            .returns::<audit::AuditList>(200)
            .to(audit::list),
    ]
}

/// The route specs alone (for the OpenAPI document and the access test).
pub fn specs() -> Vec<RouteSpec> {
    table().into_iter().map(|r| r.spec).collect()
}
