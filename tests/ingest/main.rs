//! Device ingest over real WebSockets, PostgreSQL and Redis.

#[path = "../support/mod.rs"]
mod support;

mod errors;
mod history;
mod streaming;
