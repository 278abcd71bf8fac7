//! The daemon as a library, so the router can be tested without a socket
//! and `main.rs` stays a thin command-line layer.

pub mod api;
pub mod audit_cli;
pub mod hooks;
pub mod keystone;
pub mod metrics;
pub mod on_behalf;
pub mod packaging_cli;
pub mod repo_policy;
pub mod runner;
pub mod runs_cli;
pub mod schedule_cli;
pub mod schedules;
pub mod secrets_cli;
pub mod server;
pub mod state;
pub mod sync;
pub mod ui;
pub mod webhook_rules;
