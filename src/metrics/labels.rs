//! Label values known at start-up: every labelled series is created with them (at zero), so a
//! fresh node lists every family and dashboards see zeros instead of gaps. Values that come from
//! a type of their own (`EventKind`, `ErrorCode`, store operations) are taken from it.

/// Alert severities (`alerts.severity` in the configuration; the `alerts.severity` column).
pub const SEVERITIES: [&str; 3] = ["critical", "serious", "info"];
/// Alert kinds besides the rule engine's (`EventKind`).
pub const OTHER_ALERT_KINDS: [&str; 1] = ["lost_contact"];
/// Actions of stored alert changes (`alert_events.action`).
pub const ALERT_ACTIONS: [&str; 6] = [
    "opened",
    "cleared",
    "repeated",
    "acknowledged",
    "resolved",
    "escalated",
];
/// Why device connections close (`ingest::connection`).
pub const CLOSE_REASONS: [&str; 9] = [
    "peer_closed",
    "idle",
    "broken",
    "replaced",
    "revoked",
    "shutdown",
    "oversized",
    "flooding",
    "garbage",
];
/// Rejections that are not a protocol error code: a connection sending too fast.
pub const OTHER_REJECTIONS: [&str; 1] = ["flooding"];
/// Redis degradations that are not one call (the writer's live-state updates).
pub const REDIS_DEGRADATIONS: [&str; 2] = ["live_state_deferred", "live_state_skipped"];
/// Connection kinds.
pub const CONNECTION_KINDS: [&str; 2] = ["device", "officer"];
/// Officer login outcomes.
pub const LOGIN_OUTCOMES: [&str; 3] = ["succeeded", "failed", "throttled"];
