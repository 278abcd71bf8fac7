//! Secrets: values that must never be stored or shipped in clear. The
//! ansible-vault format (what Ansible reads), envelope encryption of stored
//! values under per-project data keys, and the providers that wrap those keys.
//! The store (`store::secrets`) and the daemon build on these; nothing here
//! does I/O except the key providers.

pub mod envelope;
pub mod inject;
pub mod keys;
pub mod pem;
pub mod vault;

pub use envelope::{Binding, DataKey, EnvelopeError, OwnerKind, Secret};
pub use keys::{FileKeyProvider, KeyError, KeyProvider, TransitAuth, TransitConfig, TransitKeyProvider, WrappedKey};
pub use vault::{VaultError, VaultKey, VaultPassword};
/// Re-exported so callers wrap plaintexts without naming the crate.
pub use zeroize::Zeroizing;
