//! Config ref sync: git fetch and checkout ([`git`]), one sync of one ref
//! ([`runner`]), the workers of `cratond serve` ([`worker`]: poller with
//! backoff, file watcher, "sync now" requests) and GitHub webhooks
//! ([`webhook`]). The store side (refs, leases, the one transaction that
//! applies a ref) is `craton::store::{config_refs, ref_apply}`; reading a
//! ref's files is `craton::ref_reader`, on the importer's parsers.

pub mod cli;
pub mod git;
pub mod runner;
pub mod settings;
pub mod webhook;
pub mod worker;

pub use runner::{Outcome, Syncer};
pub use settings::SyncSettings;
pub use worker::SyncHub;
