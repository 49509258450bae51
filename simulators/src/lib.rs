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
//!
//! Everything here is deterministic for a given seed; nothing reads a clock (time is passed in).

pub mod geo;
pub mod ledger;
pub mod movement;
pub mod plan;
pub mod script;
