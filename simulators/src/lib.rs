//! geoward-sim: drives many simulated ankle tags against a running geoward, injects scenarios
//! with known consequences, watches officers' feeds and checks that every expected alert, and
//! no other, arrived (issue 5/6).
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | [`geo`] | metres on the ground around a point: offsets, distances (pure) |
//! | [`movement`] | a supervisee's day: home, commutes, work, GPS noise with honest accuracy (pure, seeded) |
//! | [`ledger`] | the alerts each scenario must cause, and the verdict against what officers received (pure) |
//! | [`plan`] | the run plan: people, zones, orders, leave, scenarios and their expectation windows (pure) |
//! | [`script`] | what one tag sends, buffers or holds back at each tick (pure) |
//! | [`api`] | a small typed client for geoward's HTTP API: retries with backoff, typed errors (I/O) |
//! | [`provision`] | turns the plan into accounts, devices, supervisees, zones, leave and orders through the API (I/O) |
//! | [`officer`] | officers' live feeds: every alert delivery recorded, some acknowledged, resumed after drops (I/O, reads the clock) |
//! | [`stats`] | fix→ack latency histograms (log-linear, mergeable, shipped by workers) and percentiles |
//! | [`device`] | one simulated tag on the wire: ticks its script, sends, reads acks, reconnects and resends |
//! | [`fleet`] | many devices on one schedule, in this process or spread over worker processes |
//! | [`run`] | a run from plan to verdict: provision, watch, drive, settle, verify (I/O) |
//! | [`ramp`] | rising rates until p99 fix→ack or errors give out: the sustainable maximum (I/O) |
//! | [`report`] | the report's figures, its table and its JSON field names |
//!
//! The pure modules are deterministic for a given seed and never read a clock (time is passed
//! in); the I/O modules read the clock where a real device or officer would.

pub mod api;
pub mod device;
pub mod fleet;
pub mod geo;
pub mod ledger;
pub mod movement;
pub mod officer;
pub mod plan;
pub mod provision;
pub mod ramp;
pub mod report;
pub mod run;
pub mod script;
pub mod stats;
