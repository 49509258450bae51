//! The rule engine: given a supervisee's zones, schedules, leave and orders, and the newest
//! report from their device, decide which rules start or stop being broken.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | `metric` | metres on the WGS-84 ellipsoid: local frames and distances |
//! | `area` | a polygonal zone's index: edge R-tree, point-in-polygon slabs |
//! | `nearest` | a quadtree of nearest-edge candidates (border distance in a few segment tests) |
//! | `zone` | [`PreparedZone`] and its accuracy-aware [`PreparedZone::classify`]; [`ZoneLayer`] |
//! | `types` | [`Rules`], [`Input`], [`RuleEvent`], [`EvalState`], [`Settings`] |
//! | `step` | zone rules for one accepted fix |
//! | `engine` | [`evaluate`] and [`evaluate_tick`]: order, lateness, devices, jumps |
//!
//! Invariants: pure (no I/O, no clock: time is an argument), deterministic, never panics.
//! The semantics, with pictures, are in `docs/rules.md`.

mod area;
mod engine;
mod metric;
mod nearest;
mod step;
mod types;
mod zone;

#[cfg(test)]
mod tests_classify;
#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_time;

pub use engine::{evaluate, evaluate_tick};
pub use metric::distance_m;
pub use types::{
    EvalState, EventKind, EventPosition, Input, KnownFix, Leave, Outcome, RuleEvent, Rules,
    Settings, Transition, ZoneState,
};
pub use zone::{Class, Classification, PreparedZone, ZoneKind, ZoneLayer};
