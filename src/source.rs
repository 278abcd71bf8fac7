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
}

/// Implementations write to `out` only once the document is known to be
/// complete, so a failure (database down, unknown project) leaves `out`
/// untouched; only an I/O error of `out` itself can interrupt a write.
pub trait InventorySource {
    /// Writes the `--list` document.
    fn list(&mut self, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError>;
    /// Writes the `--host NAME` document.
    fn host(&mut self, name: &str, sel: &Selection, opts: Options, out: &mut dyn Write) -> Result<(), SourceError>;
}

/// Reads a project straight from the database. The loaded snapshot is kept,
/// so a short-lived process can exit without spending time freeing it.
#[cfg(feature = "db")]
pub struct DbSource {
    pub url: crate::store::DbUrl,
    pub project: String,
    snapshot: Option<crate::model::Snapshot>,
}

#[cfg(feature = "db")]
impl DbSource {
    pub fn new(url: crate::store::DbUrl, project: String) -> Self {
        DbSource { url, project, snapshot: None }
    }

    fn snapshot(&mut self) -> Result<&crate::model::Snapshot, SourceError> {
        if self.snapshot.is_none() {
            let mut conn = crate::store::connect_ready(&self.url)?;
            self.snapshot = Some(crate::store::load::load_snapshot(&mut conn, &self.project)?);
        }
        Ok(self.snapshot.as_ref().expect("just loaded"))
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
}

/// Reads a project from a Craton daemon (`CRATON_URL`, `CRATON_TOKEN`).
#[cfg(feature = "rest-client")]
pub struct RestSource {
    base: String,
    token: Option<String>,
    project: Option<String>,
    agent: ureq::Agent,
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
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs_f64(timeout)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(RestSource { base: base.trim_end_matches('/').to_string(), token, project, agent })
    }

    fn get(&self, path: &str, sel: &Selection, opts: Options) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.agent.get(&url);
        if let Some(p) = &self.project {
            req = req.query("project", p);
        }
        if let Some(g) = &sel.group {
            req = req.query("group", g);
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
        let mut resp = req.call().map_err(|e| SourceError::Http(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
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

#[cfg(feature = "rest-client")]
impl InventorySource for RestSource {
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
