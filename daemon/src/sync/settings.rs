//! Where the sync takes its settings: the environment (secrets may also come
//! from a file named by `NAME_FILE`, as container secrets do), else the
//! config file (see `craton::config::FileConfig`).
//! Nothing here is ever stored in the database or logged.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `CRATON_GIT_CACHE_DIR` | clone cache (default: `git/` in the data directory) |
//! | `CRATON_GIT_TOKEN`, `CRATON_GIT_TOKEN_FILE` | https password/token |
//! | `CRATON_GIT_USERNAME` | https user name for the token (default `x-access-token`) |
//! | `CRATON_GIT_SSH_KEY` | path of an ssh private key (default: the ssh agent) |
//! | `CRATON_GIT_SSH_KEY_PASSPHRASE`, `..._FILE` | its passphrase |
//! | `CRATON_WEBHOOK_SECRET`, `CRATON_WEBHOOK_SECRET_FILE` | GitHub webhook secret; without it webhooks are refused |
//! | `CRATON_WEBHOOK_MAX_CONCURRENT` | webhook bodies read at once (default 4; more get 503) |
//! | `CRATON_WEBHOOK_MAX_BUFFERED_BYTES` | bytes those bodies may hold together (default 64 MiB) |
//! | `CRATON_WEBHOOK_MAX_BODY_BYTES` | largest webhook body (default 25 MiB; larger get 413) |
//! | `CRATON_SYNC_LEASE_SECS` | how long a sync lease lasts unless renewed (default 120) |
//! | `CRATON_SYNC_TICK_MS` | how often the poller looks at the refs (default 1000) |
//! | `CRATON_SYNC_PARALLEL` | syncs at once per process (default 2) |
//!
//! Per-project repository rules and credentials (`[projects.NAME]`
//! `git_url_allow`, `git_token`, ...) come from the config file only; see
//! `crate::repo_policy`. So do the vault passwords a project's refs decrypt
//! vaulted values with (`vault_password_file`, `vault_ids`): the paths are
//! kept, and the files are read (or scripts run) at each sync.

use std::fmt;
use std::path::PathBuf;

use craton::import::vaulted::VaultIdSpec;

/// Credentials for private repositories.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub token: Option<String>,
    pub ssh_key: Option<PathBuf>,
    pub ssh_passphrase: Option<String>,
}

/// Never prints a secret.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ssh_key", &self.ssh_key)
            .field("ssh_passphrase", &self.ssh_passphrase.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone)]
pub struct SyncSettings {
    pub cache_dir: PathBuf,
    pub credentials: Credentials,
    pub webhook_secret: Option<Vec<u8>>,
    pub webhook_limits: super::webhook::WebhookLimits,
    pub lease_ttl_ms: i64,
    pub tick_ms: u64,
    pub parallel: usize,
    /// Which repository URLs each project may use, with which credentials
    /// (`[projects.NAME]` in the config file).
    pub policy: crate::repo_policy::RepoPolicy,
    /// This process's name in leases: host, pid and a random part.
    pub holder: String,
    /// Per project: the vault passwords its refs open vaulted values with
    /// (`[projects.NAME] vault_ids`, then `vault_password_file`).
    pub vault: std::collections::BTreeMap<String, Vec<VaultIdSpec>>,
}

impl fmt::Debug for SyncSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSettings")
            .field("cache_dir", &self.cache_dir)
            .field("credentials", &self.credentials)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .field("webhook_limits", &self.webhook_limits)
            .field("lease_ttl_ms", &self.lease_ttl_ms)
            .field("policy", &self.policy)
            .field("holder", &self.holder)
            .field("vault", &self.vault)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `NAME`, else the contents of the file `NAME_FILE` names (one trailing
/// newline dropped).
fn secret(name: &str) -> Result<Option<String>, String> {
    if let Some(v) = env(name) {
        return Ok(Some(v));
    }
    let file_var = format!("{name}_FILE");
    match env(&file_var) {
        None => Ok(None),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{file_var}: reading {path}: {e}"))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

/// The default clone cache: `git/` beside the default SQLite database
/// (`$CRATON_DATA_DIR/git`, else `~/.local/share/craton/git`).
pub fn default_cache_dir() -> PathBuf {
    let db = craton::config::default_sqlite_path();
    db.parent().map(|d| d.join("git")).unwrap_or_else(|| PathBuf::from("git"))
}

fn holder_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "localhost".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut id = format!("{host}:{}:{:x}", std::process::id(), nanos & 0xffff_ffff);
    id.truncate(180);
    id
}

/// `[projects.NAME] vault_ids` and `vault_password_file`, checked now.
fn vault_ids(
    projects: &std::collections::BTreeMap<String, craton::config::ProjectConfig>,
) -> Result<std::collections::BTreeMap<String, Vec<VaultIdSpec>>, String> {
    let mut out = std::collections::BTreeMap::new();
    for (name, p) in projects {
        let mut specs = Vec::new();
        for id in &p.vault_ids {
            specs.push(VaultIdSpec::parse(id).map_err(|e| format!("config file: projects.{name:?}.vault_ids: {e}"))?);
        }
        specs.extend(p.vault_password_file.iter().map(VaultIdSpec::password_file));
        if !specs.is_empty() {
            out.insert(name.clone(), specs);
        }
    }
    Ok(out)
}

impl SyncSettings {
    /// From the environment, falling back to the config file's
    /// `webhook_secret`, `git_token`, `git_username`, `git_ssh_key`,
    /// `git_cache_dir`.
    pub fn from_env() -> Result<SyncSettings, String> {
        let file = craton::config::load_file_config()?;
        Ok(SyncSettings {
            cache_dir: env("CRATON_GIT_CACHE_DIR")
                .or(file.git_cache_dir)
                .map(PathBuf::from)
                .unwrap_or_else(default_cache_dir),
            credentials: Credentials {
                username: env("CRATON_GIT_USERNAME").or(file.git_username),
                token: secret("CRATON_GIT_TOKEN")?.or(file.git_token),
                ssh_key: env("CRATON_GIT_SSH_KEY").or(file.git_ssh_key).map(PathBuf::from),
                ssh_passphrase: secret("CRATON_GIT_SSH_KEY_PASSPHRASE")?,
            },
            webhook_secret: secret("CRATON_WEBHOOK_SECRET")?.or(file.webhook_secret).map(String::into_bytes),
            webhook_limits: {
                let d = super::webhook::WebhookLimits::default();
                super::webhook::WebhookLimits {
                    concurrent: number("CRATON_WEBHOOK_MAX_CONCURRENT", d.concurrent)?,
                    buffered_bytes: number("CRATON_WEBHOOK_MAX_BUFFERED_BYTES", d.buffered_bytes)?,
                    body_bytes: number("CRATON_WEBHOOK_MAX_BODY_BYTES", d.body_bytes)?,
                }
            },
            lease_ttl_ms: number::<i64>("CRATON_SYNC_LEASE_SECS", 120)?.max(1) * 1000,
            tick_ms: number::<u64>("CRATON_SYNC_TICK_MS", 1000)?.max(10),
            parallel: number::<usize>("CRATON_SYNC_PARALLEL", 2)?.max(1),
            policy: crate::repo_policy::RepoPolicy::from_config(&file.projects)?,
            holder: holder_id(),
            vault: vault_ids(&file.projects)?,
        })
    }

    /// Settings for tests and embedders: a cache directory, no credentials.
    pub fn with_cache(cache_dir: PathBuf) -> SyncSettings {
        SyncSettings {
            cache_dir,
            credentials: Credentials::default(),
            webhook_secret: None,
            webhook_limits: Default::default(),
            lease_ttl_ms: 120_000,
            tick_ms: 1000,
            parallel: 2,
            policy: Default::default(),
            holder: holder_id(),
            vault: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_passwords_per_project_from_the_config_file() {
        use craton::config::ProjectConfig;
        let web = ProjectConfig {
            vault_password_file: Some("/run/pw".into()),
            vault_ids: vec!["lab@/run/lab-client".into()],
            ..ProjectConfig::default()
        };
        let projects = [("web".to_string(), web), ("other".to_string(), ProjectConfig::default())].into();
        let v = vault_ids(&projects).unwrap();
        let labels: Vec<(&str, &str)> =
            v["web"].iter().map(|s| (s.label.as_str(), s.source.to_str().unwrap())).collect();
        assert_eq!(labels, [("lab", "/run/lab-client"), ("default", "/run/pw")], "vault ids first, as Ansible");
        assert!(!v.contains_key("other"));
        let bad = ProjectConfig { vault_ids: vec!["x@prompt".into()], ..ProjectConfig::default() };
        let e = vault_ids(&[("web".to_string(), bad)].into()).unwrap_err();
        assert!(e.contains("projects.\"web\".vault_ids") && e.contains("does not prompt"), "{e}");
    }
}
