//! geoward: GPS location supervision for community corrections.
//!
//! # Layout
//! A fix travels down this list; each stage is a folder or file of its own.
//!
//! | stage | module | role |
//! |---|---|---|
//! | wire protocol | [`wire`] | device WebSocket frames, parsed at the edge (pure) |
//! | ingest | [`ingest`] | device connections, group commit of reports, acks |
//! | evaluation | [`eval`] | the pure geofence and rule engine: fix + zones + time → rule events |
//! | live state | [`live`] | Redis: live positions, deadlines, throttles |
//! | storage | [`store`] | PostgreSQL: records, history, audit |
//! | alerts | [`alerts`] | evaluation stage, alert lifecycle, lost contact, the officers' feed |
//! | officer API | [`api`] | HTTP routes, access control, OpenAPI |
//! | officer console | [`console`] | the web page at `/console` (embedded static assets) |
//!
//! Around them: [`domain`] (types parsed once at the edge: roles, zones, datums, schedules),
//! [`config`] (layered, validated configuration), [`app`] (build and run, shutdown), [`clock`],
//! [`credentials`] (passwords and tokens), [`upkeep`] (partitions, retention, live-state
//! rebuild), [`metrics`] and [`telemetry`].

pub mod alerts;
pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod console;
pub mod credentials;
pub mod domain;
pub mod eval;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod upkeep;
pub mod wire;
pub mod zone_cache;
