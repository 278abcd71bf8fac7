//! Where `craton-inventory` gets its JSON: the database directly, or a
//! Craton daemon over HTTP. Both end in the same renderer, so the two print
//! the same bytes for the same data.

use std::io::Write;

use crate::render::{self, Options, Selection};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[cfg(feature = "db")]
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("{0}")]
    Http(String),
    /// Secrets were asked for (a vault password was given) and could not
    /// be read; never carries a value.
    #[error("secrets: {0}")]
    Secrets(String),
}

/// Implementations write to `out` only once the document is known to be
/// complete, so a failure (database down, unknown project) leaves `out`
/// untouched; only an I/O error of `out` itself can interrupt a write.
pub trait InventorySource {
    /// Writes the `--list` document.
    fn list(&mut self, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError>;
    /// Writes the `--host NAME` document.
    fn host(&mut self, name: &str, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError>;
    /// After a document was written without a vault password: how many of
    /// the project's secrets it left out (`None`: unknown).
    fn omitted_secrets(&self) -> Option<usize> {
        None
    }
}

/// Reads a project straight from the database. The loaded snapshot is kept,
/// so a short-lived process can exit without spending time freeing it.
#[cfg(feature = "db")]
pub struct DbSource {
    pub url: crate::store::DbUrl,
    pub project: String,
    /// With a vault password, the project's secrets are in the output as
    /// vault values (opened through the key provider of the environment).
    #[cfg(feature = "secrets")]
    pub vault: Option<crate::secrets::VaultPassword>,
    /// `--at`: the inventory as of a past instant or revision, rebuilt
    /// from the audit trail (without secrets).
    pub at: Option<crate::store::history::At>,
    snapshot: Option<crate::model::Snapshot>,
    omitted: Option<usize>,
}

#[cfg(feature = "db")]
impl DbSource {
    pub fn new(url: crate::store::DbUrl, project: String) -> Self {
        DbSource {
            url,
            project,
            #[cfg(feature = "secrets")]
            vault: None,
            at: None,
            snapshot: None,
            omitted: None,
        }
    }

    fn snapshot(&mut self) -> Result<&crate::model::Snapshot, SourceError> {
        if self.snapshot.is_none() {
            let mut conn = crate::store::connect_ready(&self.url)?;
            if let Some(at) = self.at {
                #[cfg(feature = "secrets")]
                if self.vault.is_some() {
                    return Err(SourceError::Secrets(
                        "the inventory as of a past time is served without secrets: --at cannot be combined with a vault password".into(),
                    ));
                }
                let asof = crate::store::history::snapshot_at(&mut conn, &self.project, at)?;
                self.omitted = Some(asof.secrets);
                self.snapshot = Some(asof.snapshot);
                return Ok(self.snapshot.as_ref().expect("just loaded"));
            }
            let snap = crate::store::load::load_snapshot(&mut conn, &self.project)?;
            #[cfg(feature = "secrets")]
            let snap = self.with_secrets(&mut conn, snap)?;
            self.snapshot = Some(snap);
        }
        Ok(self.snapshot.as_ref().expect("just loaded"))
    }

    #[cfg(feature = "secrets")]
    fn with_secrets(
        &mut self,
        conn: &mut crate::store::DbConn,
        snap: crate::model::Snapshot,
    ) -> Result<crate::model::Snapshot, SourceError> {
        use crate::store::secrets::{self, Secrets};
        let Some(password) = &self.vault else {
            self.omitted = Some(secrets::count(conn, snap.project.id)?);
            return Ok(snap);
        };
        let provider = crate::secrets::keys::provider_from_env().map_err(|e| SourceError::Secrets(e.to_string()))?;
        let actor = format!("cli:craton-inventory:{}", std::env::var("USER").unwrap_or_else(|_| "?".into()));
        let project = snap.project.clone();
        let mut first = Some(std::sync::Arc::new(snap));
        let project_name = self.project.clone();
        let (injected, _, _) =
            secrets::inject_output(&Secrets::new(provider.as_ref()), conn, &project, password, &actor, |conn, _| {
                match first.take() {
                    Some(s) => Ok(s),
                    None => Ok(std::sync::Arc::new(crate::store::load::load_snapshot(conn, &project_name)?)),
                }
            })
            .map_err(|e| SourceError::Secrets(e.to_string()))?;
        self.omitted = Some(0);
        Ok(injected)
    }
}

#[cfg(feature = "db")]
impl InventorySource for DbSource {
    fn list(&mut self, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError> {
        let e = render::emit(self.snapshot()?, sel, opts)?;
        render::write_list(&e, opts, out)?;
        Ok(())
    }

    fn host(&mut self, name: &str, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError> {
        let e = render::emit(self.snapshot()?, sel, opts)?;
        // Rendered to memory first: an unknown host must leave `out` empty.
        let mut buf = Vec::new();
        render::write_host(&e, name, opts, &mut buf)?;
        out.write_all(&buf).map_err(render::RenderError::Io)?;
        Ok(())
    }

    fn omitted_secrets(&self) -> Option<usize> {
        self.omitted
    }
}

/// Reads a project from a Craton daemon (`CRATON_URL`, `CRATON_TOKEN`).
#[cfg(feature = "rest-client")]
pub struct RestSource {
    base: String,
    token: Option<String>,
    project: Option<String>,
    agent: ureq::Agent,
    /// Sent as `X-Craton-Vault-Password`: the daemon then includes the
    /// project's secrets, vault-encrypted under it.
    pub vault_password: Option<zeroize::Zeroizing<String>>,
    /// `--at`, passed on as `?at=` (the daemon checks it).
    pub at: Option<String>,
    omitted: Option<usize>,
}

/// Largest inventory document accepted from a daemon.
#[cfg(feature = "rest-client")]
const MAX_BODY: u64 = 1 << 30;

#[cfg(feature = "rest-client")]
impl RestSource {
    pub fn new(base: &str, token: Option<String>, project: Option<String>) -> Result<Self, SourceError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SourceError::Http(format!("CRATON_URL {base:?} must start with http:// or https://")));
        }
        let timeout = std::env::var("CRATON_TIMEOUT").ok().and_then(|t| t.parse::<f64>().ok()).unwrap_or(60.0);
        let ca = std::env::var_os("CRATON_CACERT").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let agent = crate::http_client::agent(std::time::Duration::from_secs_f64(timeout), ca.as_deref())
            .map_err(|e| SourceError::Http(format!("CRATON_CACERT: {e}")))?;
        Ok(RestSource {
            base: base.trim_end_matches('/').to_string(),
            token,
            project,
            agent,
            vault_password: None,
            at: None,
            omitted: None,
        })
    }

    fn get(&mut self, path: &str, sel: &Selection, opts: Options) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.agent.get(&url);
        if let Some(p) = &self.project {
            req = req.query("project", p);
        }
        if let Some(g) = &sel.group {
            req = req.query("group", g);
        }
        if let Some(at) = &self.at {
            req = req.query("at", at);
        }
        for (k, v) in &sel.filters {
            req = req.query("vars", format!("{k}:{v}"));
        }
        for (flag, on) in
            [("resolved", opts.resolved), ("pretty", opts.pretty), ("include_inactive", sel.include_inactive)]
        {
            if on {
                req = req.query(flag, "true");
            }
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(pw) = &self.vault_password {
            req = req.header(VAULT_PASSWORD_HEADER, pw.as_str());
        }
        let mut resp = req.call().map_err(|e| SourceError::Http(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
        self.omitted = resp
            .headers()
            .get(SECRETS_OMITTED_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or(self.vault_password.as_ref().map(|_| 0));
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| SourceError::Http(format!("GET {url}: reading the response: {e}")))?;
        if status != 200 {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(SourceError::Http(format!("GET {url}: HTTP {status}: {detail}")));
        }
        Ok(body)
    }
}

/// The request header that carries a vault password to the daemon.
pub const VAULT_PASSWORD_HEADER: &str = "X-Craton-Vault-Password";
/// The response header saying how many secrets an output left out.
pub const SECRETS_OMITTED_HEADER: &str = "X-Craton-Secrets-Omitted";

#[cfg(feature = "rest-client")]
impl InventorySource for RestSource {
    fn omitted_secrets(&self) -> Option<usize> {
        self.omitted
    }

    fn list(&mut self, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError> {
        let body = self.get("/v1/inventory", sel, opts)?;
        out.write_all(&body).map_err(render::RenderError::Io)?;
        Ok(())
    }

    fn host(&mut self, name: &str, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError> {
        let mut enc = String::new();
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        let body = self.get(&format!("/v1/inventory/hosts/{enc}"), sel, opts)?;
        out.write_all(&body).map_err(render::RenderError::Io)?;
        Ok(())
    }
}
