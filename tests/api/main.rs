//! The officer API over real HTTP, PostgreSQL and Redis.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod audit;
mod auth;
mod bad_input;
mod operations;
mod records;
mod zones;
