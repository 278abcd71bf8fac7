//! How this process runs playbooks: where work directories go, which
//! `ansible-playbook`, how much output is kept, what environment a run
//! gets. From the environment (`CRATON_RUN*`, `CRATON_ANSIBLE_PLAYBOOK`,
//! `CRATON_REDIS_URL`).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Parent of the runs' work directories.
    pub runs_dir: PathBuf,
    /// `ansible-playbook` as given (a path, or a name looked up on PATH).
    pub ansible_playbook: String,
    /// Bytes of stdout kept per run; beyond, the head and a tail are kept
    /// and the run says it was truncated.
    pub stdout_max_bytes: usize,
    /// Bytes of one module result an event may carry.
    pub result_max_bytes: usize,
    /// A run's lease; renewed every third of it.
    pub lease_ttl_ms: i64,
    /// Environment variables passed from the daemon to every run, by name
    /// (`CRATON_RUN_PASS_ENV`, comma-separated), e.g. proxies. Never the
    /// daemon's own secrets.
    pub pass_env: Vec<String>,
    /// Keep work directories after a run (debugging).
    pub keep_dirs: bool,
    /// Redis for live progress across processes.
    pub redis_url: Option<String>,
    /// This process's name in leases.
    pub holder: String,
    /// Have the callback send `runner_on_start` events
    /// (`CRATON_RUN_RUNNER_START_EVENTS=1`): off by default, they double a
    /// play's events for a "running" mark the page derives from task starts.
    pub runner_start_events: bool,
    /// `[projects.NAME] run_env` of the config file, by project name.
    pub project_env: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

/// Variables a run never inherits, whatever `CRATON_RUN_PASS_ENV` says:
/// the daemon's credentials.
const NEVER_PASSED: [&str; 6] = [
    "CRATON_TOKEN",
    "CRATON_GIT_TOKEN",
    "CRATON_WEBHOOK_SECRET",
    "CRATON_DATABASE_URL",
    "CRATON_GIT_SSH_KEY_PASSPHRASE",
    "CRATON_REDIS_URL",
];

impl RunSettings {
    pub fn from_env(holder: String) -> Result<RunSettings, String> {
        let pass_env = env("CRATON_RUN_PASS_ENV")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default();
        if let Some(bad) = pass_env.iter().find(|n| NEVER_PASSED.contains(&n.as_str()) || n.ends_with("_FILE")) {
            return Err(format!(
                "CRATON_RUN_PASS_ENV: {bad} is one of the daemon's own secrets and is never passed to runs"
            ));
        }
        let file = craton::config::load_file_config()?;
        let project_env = file.projects.into_iter().map(|(name, p)| (name, p.run_env)).collect();
        Ok(RunSettings {
            project_env,
            runs_dir: env("CRATON_RUNS_DIR").map(PathBuf::from).unwrap_or_else(default_runs_dir),
            ansible_playbook: env("CRATON_ANSIBLE_PLAYBOOK").unwrap_or_else(|| "ansible-playbook".into()),
            stdout_max_bytes: number("CRATON_RUN_STDOUT_MAX_BYTES", 16usize << 20)?.max(4096),
            result_max_bytes: number("CRATON_RUN_RESULT_MAX_BYTES", 64usize << 10)?.max(256),
            lease_ttl_ms: number::<i64>("CRATON_RUN_LEASE_SECS", 30)?.max(1) * 1000,
            pass_env,
            keep_dirs: env("CRATON_RUNS_KEEP_DIRS").is_some_and(|v| v == "1"),
            runner_start_events: env("CRATON_RUN_RUNNER_START_EVENTS").is_some_and(|v| v == "1"),
            redis_url: env("CRATON_REDIS_URL"),
            holder,
        })
    }

    /// Settings for tests and embedders: work directories under
    /// `runs_dir`, this `ansible-playbook`, no Redis, nothing passed.
    pub fn with(runs_dir: PathBuf, ansible_playbook: String, holder: String) -> RunSettings {
        RunSettings {
            runs_dir,
            ansible_playbook,
            stdout_max_bytes: 16 << 20,
            result_max_bytes: 64 << 10,
            lease_ttl_ms: 30_000,
            pass_env: Vec::new(),
            keep_dirs: false,
            runner_start_events: false,
            redis_url: None,
            holder,
            project_env: Default::default(),
        }
    }

    /// The executable a run will start, if it exists: a path as given, a
    /// bare name looked up on PATH.
    pub fn resolve_playbook_binary(&self) -> Result<PathBuf, String> {
        let p = Path::new(&self.ansible_playbook);
        let missing = || {
            format!(
                "ansible-playbook not found ({:?}): install ansible-core or set CRATON_ANSIBLE_PLAYBOOK",
                self.ansible_playbook
            )
        };
        if p.components().count() > 1 {
            return is_executable(p).then(|| p.to_path_buf()).ok_or_else(missing);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).map(|d| d.join(p)).find(|c| is_executable(c)).ok_or_else(missing)
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `runs/` beside the default SQLite database.
pub fn default_runs_dir() -> PathBuf {
    let db = craton::config::default_sqlite_path();
    db.parent().map(|d| d.join("runs")).unwrap_or_else(|| PathBuf::from("runs"))
}
