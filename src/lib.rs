//! Craton core: the inventory model, Ansible's variable precedence, the store
//! over SQLite/PostgreSQL/MySQL, the importers and the inventory renderer.
//! The binaries (`craton-inventory`, `cratond`) are thin layers over this.

#[cfg(feature = "bundle")]
pub mod bundle;
/// The one source of "now" (tests move a manual clock instead of sleeping).
#[cfg(feature = "windows")]
pub mod clock;
/// GitHub commit statuses of webhook-rule runs: states, bodies, URLs.
pub mod commit_status;
pub mod config;
pub mod desired;
pub mod hooks;
#[cfg(any(feature = "rest-client", feature = "secrets"))]
pub mod http_client;
pub mod model;
pub mod render;
pub mod resolve;
pub mod rollout;
pub mod runs;
/// Schedules: run templates fired on a recurrence, with catch-up policies.
#[cfg(feature = "windows")]
pub mod schedules;
/// Secrets: ansible-vault format, envelope encryption, key providers.
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod source;
pub mod typed;
/// Webhook rules: which GitHub events submit which run.
pub mod webhook_rules;
/// Maintenance windows: recurrence arithmetic, unions and intersections.
#[cfg(feature = "windows")]
pub mod windows;

#[cfg(feature = "import")]
pub mod import;
#[cfg(not(feature = "import"))]
pub mod import {
    //! Name checks shared with the store when the parsers are not built.
    pub use crate::names::check_name;
}
/// What a config ref provides, read from its tree with the importer's parsers.
#[cfg(all(feature = "db", feature = "import"))]
pub mod ref_reader;
#[cfg(feature = "db")]
pub mod store;

mod names;

/// The project used when none is named.
pub const DEFAULT_PROJECT: &str = "default";
