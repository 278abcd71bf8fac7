//! Where settings come from. Ansible and AWX run `craton-inventory` with no
//! arguments, so every setting has an environment variable and may also come
//! from a config file; flags win over the environment, which wins over the file.

use std::path::PathBuf;

use serde::Deserialize;

/// The optional config file (TOML). Found at `$CRATON_CONFIG`, else
/// `$XDG_CONFIG_HOME/craton/craton.toml` (`~/.config/...`), else `/etc/craton/craton.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub project: Option<String>,
    /// Base URL of a Craton daemon (REST backend of craton-inventory).
    pub url: Option<String>,
    pub token: Option<String>,
    /// Git sync (cratond): GitHub webhook secret, https token and user name,
    /// ssh key path, clone cache directory. The environment wins over these.
    pub webhook_secret: Option<String>,
    pub git_token: Option<String>,
    pub git_username: Option<String>,
    pub git_ssh_key: Option<String>,
    pub git_cache_dir: Option<String>,
    /// `cratond serve` connection limits (seconds, count); flags and their
    /// environment variables win.
    pub header_read_timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub max_connections: Option<usize>,
    /// Per-project rules for repository URLs (`[projects.NAME]`), see
    /// [`ProjectConfig`]. Keyed by project name.
    #[serde(default)]
    pub projects: std::collections::BTreeMap<String, ProjectConfig>,
    /// `[keystone]`: Keystone authentication of `cratond serve --auth
    /// keystone` (docs/keystone.md).
    pub keystone: Option<KeystoneConfig>,
}

/// `[keystone]`: where Keystone is, the service credentials cratond
/// validates tokens with, and how Keystone projects and roles map to
/// Craton's. Read by `cratond serve --auth keystone` only.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Keystone's identity endpoint, with or without the trailing `/v3`.
    pub url: String,
    /// The service user (password auth, scoped to `project_name`).
    pub username: String,
    /// `CRATON_KEYSTONE_PASSWORD` wins over this.
    pub password: Option<String>,
    #[serde(default = "default_domain")]
    pub user_domain_name: String,
    /// The service user's project (usually `service`).
    pub project_name: String,
    #[serde(default = "default_domain")]
    pub project_domain_name: String,
    /// Seconds a validated token is believed without asking Keystone
    /// again (so a revoked token works that long), as keystonemiddleware's
    /// `token_cache_time`. 0 asks on every request.
    #[serde(default = "default_cache_s")]
    pub cache_s: u64,
    /// Seconds one request to Keystone may take.
    #[serde(default = "default_keystone_timeout_s")]
    pub timeout_s: u64,
    /// For an `https://` url: trust only this CA file's PEM certificates.
    pub cacert: Option<String>,
    /// Only tokens scoped to projects of this Keystone domain are accepted
    /// (project names are unique only within a domain).
    #[serde(default = "default_domain")]
    pub token_project_domain_name: String,
    /// Keystone project name -> Craton project name; a project not named
    /// here maps to the Craton project of the same name.
    #[serde(default)]
    pub projects: std::collections::BTreeMap<String, String>,
    /// Keystone role name -> `reader`, `editor` or `admin`; the highest
    /// mapped role of a token wins. When given, it replaces the default
    /// (`reader`→reader, `member`→editor, `admin`→admin).
    pub roles: Option<std::collections::BTreeMap<String, String>>,
}

fn default_domain() -> String {
    "Default".into()
}

fn default_cache_s() -> u64 {
    300
}

fn default_keystone_timeout_s() -> u64 {
    10
}

/// Never prints the password.
impl std::fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("user_domain_name", &self.user_domain_name)
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("cache_s", &self.cache_s)
            .field("timeout_s", &self.timeout_s)
            .field("cacert", &self.cacert)
            .field("token_project_domain_name", &self.token_project_domain_name)
            .field("projects", &self.projects)
            .field("roles", &self.roles)
            .finish()
    }
}

/// `[projects.NAME]`: which repositories the project's refs may use, and
/// optionally its own git credentials (used instead of the daemon-wide ones
/// for every ref of the project).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// URL patterns (`*` within one path segment, `**` across segments,
    /// `*.` as the first label of a host). Naming local paths, `file://` or
    /// internal hosts here lets the project's editors use them.
    #[serde(default)]
    pub git_url_allow: Vec<String>,
    pub git_token: Option<String>,
    pub git_username: Option<String>,
    pub git_ssh_key: Option<String>,
    pub git_ssh_key_passphrase: Option<String>,
    /// Environment variables every run of the project gets (proxies,
    /// `ANSIBLE_*` settings); they cannot replace the callback's own.
    #[serde(default)]
    pub run_env: std::collections::BTreeMap<String, String>,
    /// Config ref syncs of the project decrypt vault-encrypted vars files
    /// and inline `!vault` values with these passwords, as `cratond import
    /// --vault-password-file` / `--vault-id` do: the path of a password file
    /// (or script) for the `default` vault id, and `LABEL@PATH` entries,
    /// tried first. Their variables become the refs' secrets.
    pub vault_password_file: Option<String>,
    #[serde(default)]
    pub vault_ids: Vec<String>,
}

/// Never prints a secret.
impl std::fmt::Debug for ProjectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("ProjectConfig")
            .field("git_url_allow", &self.git_url_allow)
            .field("git_token", &masked(&self.git_token))
            .field("git_username", &self.git_username)
            .field("git_ssh_key", &self.git_ssh_key)
            .field("git_ssh_key_passphrase", &masked(&self.git_ssh_key_passphrase))
            .field("run_env", &self.run_env.keys().collect::<Vec<_>>())
            .field("vault_password_file", &self.vault_password_file)
            .field("vault_ids", &self.vault_ids)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

fn config_path() -> Option<(PathBuf, bool)> {
    if let Some(p) = env("CRATON_CONFIG") {
        return Some((PathBuf::from(p), true));
    }
    let user = env("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| home().map(|h| h.join(".config")));
    if let Some(p) = user.map(|d| d.join("craton/craton.toml")).filter(|p| p.exists()) {
        return Some((p, false));
    }
    Some((PathBuf::from("/etc/craton/craton.toml"), false))
}

/// Reads the config file; a missing default file is fine, a missing
/// `$CRATON_CONFIG` or a malformed file is an error naming it.
pub fn load_file_config() -> Result<FileConfig, String> {
    let Some((path, explicit)) = config_path() else {
        return Ok(FileConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(FileConfig::default()),
        Err(e) => return Err(format!("reading config file {}: {e}", path.display())),
    };
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_string();
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        match line {
            Some(l) => format!("{}:{l}: {msg}", path.display()),
            None => format!("{}: {msg}", path.display()),
        }
    })
}

/// The embedded SQLite database used when no database URL is configured:
/// `$CRATON_DATA_DIR/craton.sqlite3`, else `$XDG_DATA_HOME/craton/craton.sqlite3`,
/// else `~/.local/share/craton/craton.sqlite3`.
pub fn default_sqlite_path() -> PathBuf {
    if let Some(d) = env("CRATON_DATA_DIR") {
        return PathBuf::from(d).join("craton.sqlite3");
    }
    let data = env("XDG_DATA_HOME").map(PathBuf::from).or_else(|| home().map(|h| h.join(".local/share")));
    data.unwrap_or_else(|| PathBuf::from(".")).join("craton/craton.sqlite3")
}

/// The settings after flags, environment and file are combined.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` means the embedded SQLite default.
    pub database_url: Option<String>,
    pub project: String,
    /// True when the project was named (flag, environment or file) rather
    /// than defaulted; a daemon then infers it from the token.
    pub project_explicit: bool,
    pub url: Option<String>,
    pub token: Option<String>,
}

impl Settings {
    pub fn resolve(flag_db: Option<String>, flag_project: Option<String>) -> Result<Settings, String> {
        let file = load_file_config()?;
        let project = flag_project.or_else(|| env("CRATON_PROJECT")).or(file.project);
        Ok(Settings {
            database_url: flag_db.or_else(|| env("CRATON_DATABASE_URL")).or(file.database_url),
            project_explicit: project.is_some(),
            project: project.unwrap_or_else(|| crate::DEFAULT_PROJECT.to_string()),
            url: env("CRATON_URL").or(file.url),
            token: env("CRATON_TOKEN").or(file.token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_vault_passwords_are_read_and_never_mistyped() {
        let c: FileConfig =
            toml::from_str("[projects.web]\nvault_password_file = \"/run/pw\"\nvault_ids = [\"lab@/run/lab\"]\n")
                .unwrap();
        let web = &c.projects["web"];
        assert_eq!(
            (web.vault_password_file.as_deref(), &web.vault_ids[..]),
            (Some("/run/pw"), &["lab@/run/lab".to_string()][..])
        );
        let e = toml::from_str::<FileConfig>("[projects.web]\nvault_password = \"x\"\n").unwrap_err();
        assert!(e.message().contains("unknown field `vault_password`"), "{e}");
    }

    #[test]
    fn keystone_section_has_defaults_and_hides_its_password() {
        let c: FileConfig = toml::from_str(
            "[keystone]\nurl = \"http://ks:5000/v3\"\nusername = \"craton\"\npassword = \"hunter2\"\nproject_name = \"service\"\n[keystone.projects]\nweb = \"webfleet\"\n",
        )
        .unwrap();
        let k = c.keystone.unwrap();
        assert_eq!((k.cache_s, k.timeout_s, k.user_domain_name.as_str()), (300, 10, "Default"));
        assert_eq!(k.projects["web"], "webfleet");
        assert!(k.roles.is_none());
        let shown = format!("{k:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
        let e = toml::from_str::<FileConfig>(
            "[keystone]\nurl = \"u\"\nusername = \"c\"\nproject_name = \"s\"\ncache = 1\n",
        )
        .unwrap_err();
        assert!(e.message().contains("unknown field `cache`"), "{e}");
    }
}
