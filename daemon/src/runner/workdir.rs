//! A run's work directory: the checked-out playbook tree, the unpacked
//! inventory bundle, the callback plugin, the extra-vars file and the
//! event socket. Created fresh per run (mode 0700) and removed after it.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The callback plugin, as committed under `ansible/callback/`.
pub const CALLBACK: &str = include_str!("../../../ansible/callback/craton_events.py");
pub const CALLBACK_NAME: &str = "craton_events";

/// Unix socket paths are limited to 107 bytes.
const MAX_SOCKET_PATH: usize = 100;

pub struct WorkDir {
    pub root: PathBuf,
    /// Kept when the run asks it (debugging); removed on drop otherwise.
    pub keep: bool,
    /// A short directory for the socket when `root` is too deep for one.
    socket_dir: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn create(parent: &Path, run_id: i64, keep: bool) -> std::io::Result<WorkDir> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        let root = tempfile::Builder::new().prefix(&format!("{run_id}-")).tempdir_in(parent)?.keep();
        for d in ["project", "inventory", "callback"] {
            std::fs::DirBuilder::new().mode(0o700).create(root.join(d))?;
        }
        std::fs::write(root.join("callback").join(format!("{CALLBACK_NAME}.py")), CALLBACK)?;
        let socket_dir = if root.join("events.sock").as_os_str().len() > MAX_SOCKET_PATH {
            Some(tempfile::Builder::new().prefix("craton-ev-").tempdir()?)
        } else {
            None
        };
        Ok(WorkDir { root, keep, socket_dir })
    }

    pub fn project(&self) -> PathBuf {
        self.root.join("project")
    }
    pub fn inventory(&self) -> PathBuf {
        self.root.join("inventory")
    }
    pub fn callback_dir(&self) -> PathBuf {
        self.root.join("callback")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("events.summary.json")
    }
    pub fn socket(&self) -> PathBuf {
        match &self.socket_dir {
            Some(d) => d.path().join("events.sock"),
            None => self.root.join("events.sock"),
        }
    }

    /// Writes the run's extra vars (readable by the run's user only).
    pub fn vault_password(&self) -> PathBuf {
        self.root.join("vault-password")
    }

    /// The bundle's vault password, mode 0600 in the 0700 work directory.
    pub fn write_vault_password(&self, pw: &craton::secrets::VaultPassword) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(self.vault_password())?;
        f.write_all(pw.expose())
    }

    pub fn write_extra_vars(&self, vars: &serde_json::Map<String, serde_json::Value>) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let p = self.root.join("extra_vars.json");
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p)?;
        f.write_all(serde_json::to_string(vars).expect("json").as_bytes())?;
        Ok(p)
    }

    /// The `--limit @FILE` of a rolling run's batch `seq`: one host name
    /// per line, as Ansible reads a limit file.
    pub fn write_batch(&self, seq: i32, hosts: &[String]) -> std::io::Result<PathBuf> {
        let p = self.root.join(format!("batch-{seq}.limit"));
        let text = craton::rollout::limit_file(hosts).map_err(std::io::Error::other)?;
        std::fs::write(&p, text)?;
        Ok(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
