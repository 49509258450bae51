//! Domain types parsed once at the edge ("parse, don't validate"): code past the API and the
//! device protocol only ever sees valid values. Everything here is pure: no I/O, no clock.

pub mod datum;
pub mod json;
pub mod officer;
pub mod schedule;
pub mod supervision;
pub mod zone_geometry;
