//! Key providers: who wraps the per-project data keys. A data key is stored
//! only wrapped; unwrapping it needs the provider (a master key file on this
//! machine, or a Vault/OpenBao transit key that never leaves the server).
//!
//! Barbican (OpenStack) would be a third implementation of [`KeyProvider`]:
//! its "secret store" keeps opaque secrets rather than wrapping them, so it
//! would wrap with a master key fetched once from Barbican; not built yet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::envelope::DataKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The provider cannot be reached or is sealed: try again later (503).
    #[error("key provider {provider} is unavailable: {detail}")]
    Unavailable { provider: String, detail: String },
    #[error("key provider {provider} refused: {detail}")]
    Denied { provider: String, detail: String },
    /// The wrapped key does not open: another master key, or corrupt.
    #[error("key provider {provider} cannot unwrap the data key: {detail}")]
    WrongKey { provider: String, detail: String },
    #[error("key provider {provider}: {detail}")]
    Config { provider: String, detail: String },
    #[error("key provider {provider} does not support {what}")]
    Unsupported { provider: String, what: &'static str },
}

impl KeyError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyError::Unavailable { .. })
    }
}

/// A data key as stored: which provider wrapped it, under which of its key
/// versions, and the wrapped text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub provider: String,
    pub key_version: i64,
    pub wrapped: String,
}

/// Wraps and unwraps data keys. Blocking: the daemon calls it from
/// `spawn_blocking`.
pub trait KeyProvider: Send + Sync {
    /// `file` or `transit`, stored beside each wrapped key.
    fn name(&self) -> &str;
    /// The version new wraps use.
    fn key_version(&self) -> Result<i64, KeyError>;
    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError>;
    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, KeyError>;
    /// Re-wraps under the newest key version without exposing the data key
    /// where the provider can do that (transit); others unwrap and wrap.
    fn rewrap(&self, wrapped: &WrappedKey) -> Result<WrappedKey, KeyError> {
        let key = self.unwrap(wrapped)?;
        self.wrap(&key)
    }
    /// Makes a new key version the current one (transit `rotate`).
    fn rotate(&self) -> Result<i64, KeyError> {
        Err(KeyError::Unsupported { provider: self.name().to_string(), what: "rotation" })
    }
}

/// A 256-bit master key in a local file (the default provider).
pub struct FileKeyProvider {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyProvider").field("path", &self.path).field("key", &"***").finish()
    }
}

const FILE: &str = "file";
const FILE_AAD: &[u8] = b"craton data key v1";

impl FileKeyProvider {
    /// `$CRATON_MASTER_KEY_FILE`, else `master.key` next to the embedded database.
    pub fn default_path() -> PathBuf {
        match std::env::var("CRATON_MASTER_KEY_FILE") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => crate::config::default_sqlite_path().with_file_name("master.key"),
        }
    }

    /// Opens the key file, creating it (mode 0600, 32 random bytes as hex)
    /// when it does not exist. Refuses a file that group or others can read.
    pub fn open_or_create(path: &Path) -> Result<Self, KeyError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cfg = |detail: String| KeyError::Config { provider: FILE.into(), detail };
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| cfg(format!("creating {}: {e}", dir.display())))?;
            }
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut key[..]).map_err(|e| cfg(format!("no random source: {e}")))?;
            let text = Zeroizing::new(format!("{}\n", hex(&key[..])));
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                Ok(mut f) => {
                    f.write_all(text.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| cfg(format!("writing {}: {e}", path.display())))?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cfg(format!("creating {}: {e}", path.display()))),
            }
        }
        let meta = std::fs::metadata(path).map_err(|e| cfg(format!("reading {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(cfg(format!(
                "master key file {} has mode {mode:04o}: group or others may read it; `chmod 600 {}` (and consider the key exposed)",
                path.display(),
                path.display()
            )));
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| cfg(format!("reading {}: {e}", path.display())))?);
        let bytes = unhex(text.trim()).filter(|b| b.len() == 32).ok_or_else(|| {
            cfg(format!("master key file {}: line 1 is not 64 hex digits (a 256-bit key)", path.display()))
        })?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(FileKeyProvider { path: path.to_path_buf(), key })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyProvider for FileKeyProvider {
    fn name(&self) -> &str {
        FILE
    }

    fn key_version(&self) -> Result<i64, KeyError> {
        Ok(1)
    }

    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| KeyError::Config { provider: FILE.into(), detail: format!("no random source: {e}") })?;
        let ct = Aes256Gcm::new(self.key.as_ref().into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: FILE_AAD })
            .map_err(|_| KeyError::Config { provider: FILE.into(), detail: "AES-GCM failed".into() })?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ct);
        Ok(WrappedKey { provider: FILE.into(), key_version: 1, wrapped: format!("file:v1:{}", B64.encode(raw)) })
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, KeyError> {
        let wrong = |detail: String| KeyError::WrongKey { provider: FILE.into(), detail };
        if wrapped.provider != FILE {
            return Err(wrong(format!("the data key was wrapped by provider {:?}", wrapped.provider)));
        }
        let raw = wrapped
            .wrapped
            .strip_prefix("file:v1:")
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() == 12 + 32 + 16)
            .ok_or_else(|| wrong("the wrapped key is not a file:v1: value".into()))?;
        let pt = Zeroizing::new(
            Aes256Gcm::new(self.key.as_ref().into())
                .decrypt(Nonce::from_slice(&raw[..12]), Payload { msg: &raw[12..], aad: FILE_AAD })
                .map_err(|_| {
                    wrong(format!(
                        "the master key in {} does not open it (another key file than the one that wrapped it?)",
                        self.path.display()
                    ))
                })?,
        );
        DataKey::from_slice(&pt).ok_or_else(|| wrong("the unwrapped key is not 32 bytes".into()))
    }
}

/// How the transit provider logs in.
#[derive(Clone)]
pub enum TransitAuth {
    Token(Zeroizing<String>),
    /// AppRole login at `auth/<mount>/login`.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Zeroizing<String>,
    },
}

impl std::fmt::Debug for TransitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransitAuth::Token(_) => f.write_str("Token(***)"),
            TransitAuth::AppRole { mount, role_id, .. } => {
                write!(f, "AppRole {{ mount: {mount:?}, role_id: {role_id:?}, secret_id: *** }}")
            }
        }
    }
}

/// Where the transit engine is and which key wraps.
#[derive(Debug, Clone)]
pub struct TransitConfig {
    /// `http://127.0.0.1:8200`
    pub addr: String,
    /// The engine's mount path, `transit` by default.
    pub mount: String,
    pub key: String,
    pub auth: TransitAuth,
    pub timeout: Duration,
    /// Trust only this CA file's certificates for `https://` (else the
    /// system's roots).
    pub ca_file: Option<PathBuf>,
}

impl TransitConfig {
    /// From `CRATON_VAULT_ADDR`, `CRATON_VAULT_TOKEN` or `CRATON_VAULT_TOKEN_FILE`
    /// (or `CRATON_VAULT_ROLE_ID` + `CRATON_VAULT_SECRET_ID[_FILE]`,
    /// `CRATON_VAULT_APPROLE_MOUNT`), `CRATON_VAULT_TRANSIT_KEY`
    /// (default `craton`), `CRATON_VAULT_TRANSIT_MOUNT` (default `transit`),
    /// `CRATON_VAULT_CACERT` (a CA file for `https://`).
    pub fn from_env() -> Result<Self, KeyError> {
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let cfg = |detail: String| KeyError::Config { provider: TRANSIT.into(), detail };
        let read = |var: &str, path: String| {
            std::fs::read_to_string(&path)
                .map(|s| Zeroizing::new(s.trim().to_string()))
                .map_err(|e| cfg(format!("{var} {path}: {e}")))
        };
        let addr = env("CRATON_VAULT_ADDR").ok_or_else(|| cfg("CRATON_VAULT_ADDR is not set".into()))?;
        let auth = if let Some(role_id) = env("CRATON_VAULT_ROLE_ID") {
            let secret_id = match (env("CRATON_VAULT_SECRET_ID"), env("CRATON_VAULT_SECRET_ID_FILE")) {
                (Some(s), _) => Zeroizing::new(s),
                (None, Some(p)) => read("CRATON_VAULT_SECRET_ID_FILE", p)?,
                (None, None) => return Err(cfg("CRATON_VAULT_ROLE_ID is set without CRATON_VAULT_SECRET_ID".into())),
            };
            TransitAuth::AppRole {
                mount: env("CRATON_VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into()),
                role_id,
                secret_id,
            }
        } else {
            match (env("CRATON_VAULT_TOKEN"), env("CRATON_VAULT_TOKEN_FILE")) {
                (Some(t), _) => TransitAuth::Token(Zeroizing::new(t)),
                (None, Some(p)) => TransitAuth::Token(read("CRATON_VAULT_TOKEN_FILE", p)?),
                (None, None) => {
                    return Err(cfg(
                        "neither CRATON_VAULT_TOKEN, CRATON_VAULT_TOKEN_FILE nor CRATON_VAULT_ROLE_ID is set".into(),
                    ));
                }
            }
        };
        Ok(TransitConfig {
            addr,
            mount: env("CRATON_VAULT_TRANSIT_MOUNT").unwrap_or_else(|| "transit".into()),
            key: env("CRATON_VAULT_TRANSIT_KEY").unwrap_or_else(|| "craton".into()),
            auth,
            timeout: Duration::from_secs(10),
            ca_file: env("CRATON_VAULT_CACERT").map(PathBuf::from),
        })
    }
}

const TRANSIT: &str = "transit";

/// HashiCorp Vault / OpenBao transit: the wrapping key never leaves the server.
pub struct TransitKeyProvider {
    cfg: TransitConfig,
    agent: ureq::Agent,
    /// The token in use: the configured one, or AppRole's client token.
    token: Mutex<Option<Zeroizing<String>>>,
}

impl std::fmt::Debug for TransitKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitKeyProvider").field("cfg", &self.cfg).finish()
    }
}

impl TransitKeyProvider {
    pub fn new(cfg: TransitConfig) -> Result<Self, KeyError> {
        if !(cfg.addr.starts_with("http://") || cfg.addr.starts_with("https://")) {
            return Err(KeyError::Config {
                provider: TRANSIT.into(),
                detail: format!("CRATON_VAULT_ADDR {:?} must start with http:// or https://", cfg.addr),
            });
        }
        let agent = crate::http_client::agent(cfg.timeout, cfg.ca_file.as_deref())
            .map_err(|detail| KeyError::Config { provider: TRANSIT.into(), detail })?;
        let token = match &cfg.auth {
            TransitAuth::Token(t) => Some(t.clone()),
            TransitAuth::AppRole { .. } => None,
        };
        Ok(TransitKeyProvider { cfg, agent, token: Mutex::new(token) })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.cfg.addr.trim_end_matches('/'), path)
    }

    fn login(&self) -> Result<Zeroizing<String>, KeyError> {
        let TransitAuth::AppRole { mount, role_id, secret_id } = &self.cfg.auth else {
            return Err(KeyError::Denied { provider: TRANSIT.into(), detail: "the token was refused".into() });
        };
        let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id.as_str()});
        let v = self.send(&format!("auth/{mount}/login"), Some(&body), None)?;
        let t = v.pointer("/auth/client_token").and_then(|t| t.as_str()).ok_or_else(|| KeyError::Denied {
            provider: TRANSIT.into(),
            detail: "AppRole login gave no token".into(),
        })?;
        Ok(Zeroizing::new(t.to_string()))
    }

    fn current_token(&self) -> Result<Zeroizing<String>, KeyError> {
        let mut guard = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = &*guard {
            return Ok(t.clone());
        }
        let t = self.login()?;
        *guard = Some(t.clone());
        Ok(t)
    }

    /// An authenticated call; with AppRole, one fresh login when the token
    /// has expired (403).
    fn call(&self, path: &str, body: Option<&serde_json::Value>) -> Result<serde_json::Value, KeyError> {
        let token = self.current_token()?;
        match self.send(path, body, Some(&token)) {
            Err(KeyError::Denied { .. }) if matches!(self.cfg.auth, TransitAuth::AppRole { .. }) => {
                let fresh = self.login()?;
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
                self.send(path, body, Some(&fresh))
            }
            r => r,
        }
    }

    /// One HTTP request. Errors name the path and the server's message, never
    /// the token or a payload.
    fn send(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
        token: Option<&str>,
    ) -> Result<serde_json::Value, KeyError> {
        let url = self.url(path);
        let unavailable = |detail: String| KeyError::Unavailable { provider: TRANSIT.into(), detail };
        let result = match body {
            Some(b) => {
                let mut req = self.agent.post(&url);
                if let Some(t) = token {
                    req = req.header("X-Vault-Token", t);
                }
                req.send_json(b)
            }
            None => {
                let mut req = self.agent.get(&url);
                if let Some(t) = token {
                    req = req.header("X-Vault-Token", t);
                }
                req.call()
            }
        };
        let mut resp = result.map_err(|e| unavailable(format!("{path}: {}", transport_error(&e))))?;
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp.body_mut().read_json().unwrap_or(serde_json::Value::Null);
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let msg = v
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join("; "))
            .unwrap_or_default();
        let detail = format!("{path}: HTTP {status}: {}", msg.chars().take(300).collect::<String>());
        Err(match status {
            // 503: sealed or in standby; 5xx: the server's trouble, not ours.
            500..=599 | 429 => unavailable(detail),
            401 | 403 => KeyError::Denied { provider: TRANSIT.into(), detail },
            400 if msg.contains("authentication failed") || msg.contains("invalid ciphertext") => {
                KeyError::WrongKey { provider: TRANSIT.into(), detail }
            }
            _ => KeyError::Config { provider: TRANSIT.into(), detail },
        })
    }

    /// Creates the transit key if it does not exist (aes256-gcm96).
    pub fn ensure_key(&self) -> Result<(), KeyError> {
        self.call(&format!("{}/keys/{}", self.cfg.mount, self.cfg.key), Some(&serde_json::json!({}))).map(|_| ())
    }
}

/// A ureq transport error without a URL's userinfo or query (neither holds
/// a token here, but keep it short).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        other => other.to_string(),
    }
}

fn version_of(ciphertext: &str) -> Option<i64> {
    // vault:v3:...
    ciphertext.strip_prefix("vault:v")?.split(':').next()?.parse().ok()
}

impl KeyProvider for TransitKeyProvider {
    fn name(&self) -> &str {
        TRANSIT
    }

    fn key_version(&self) -> Result<i64, KeyError> {
        let v = self.call(&format!("{}/keys/{}", self.cfg.mount, self.cfg.key), None)?;
        v.pointer("/data/latest_version").and_then(|n| n.as_i64()).ok_or_else(|| KeyError::Config {
            provider: TRANSIT.into(),
            detail: "keys response has no data.latest_version".into(),
        })
    }

    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        let b64 = Zeroizing::new(B64.encode(key.expose()));
        let body = serde_json::json!({"plaintext": b64.as_str()});
        let v = self.call(&format!("{}/encrypt/{}", self.cfg.mount, self.cfg.key), Some(&body))?;
        drop(body);
        wrapped_from(&v)
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, KeyError> {
        if wrapped.provider != TRANSIT {
            return Err(KeyError::WrongKey {
                provider: TRANSIT.into(),
                detail: format!("the data key was wrapped by provider {:?}", wrapped.provider),
            });
        }
        let body = serde_json::json!({"ciphertext": wrapped.wrapped});
        let v = self.call(&format!("{}/decrypt/{}", self.cfg.mount, self.cfg.key), Some(&body))?;
        let pt =
            v.pointer("/data/plaintext").and_then(|p| p.as_str()).and_then(|p| B64.decode(p).ok()).map(Zeroizing::new);
        pt.and_then(|p| DataKey::from_slice(&p)).ok_or_else(|| KeyError::WrongKey {
            provider: TRANSIT.into(),
            detail: "decrypt gave no 32-byte key".into(),
        })
    }

    fn rewrap(&self, wrapped: &WrappedKey) -> Result<WrappedKey, KeyError> {
        let body = serde_json::json!({"ciphertext": wrapped.wrapped});
        let v = self.call(&format!("{}/rewrap/{}", self.cfg.mount, self.cfg.key), Some(&body))?;
        wrapped_from(&v)
    }

    fn rotate(&self) -> Result<i64, KeyError> {
        self.call(&format!("{}/keys/{}/rotate", self.cfg.mount, self.cfg.key), Some(&serde_json::json!({})))?;
        self.key_version()
    }
}

fn wrapped_from(v: &serde_json::Value) -> Result<WrappedKey, KeyError> {
    let ct = v.pointer("/data/ciphertext").and_then(|c| c.as_str()).ok_or_else(|| KeyError::Config {
        provider: TRANSIT.into(),
        detail: "response has no data.ciphertext".into(),
    })?;
    let key_version = version_of(ct).ok_or_else(|| KeyError::Config {
        provider: TRANSIT.into(),
        detail: "ciphertext does not start with vault:vN:".into(),
    })?;
    Ok(WrappedKey { provider: TRANSIT.into(), key_version, wrapped: ct.to_string() })
}

/// The provider the environment names: `CRATON_KEY_PROVIDER` = `file`
/// (default: [`FileKeyProvider::default_path`]) or `transit`
/// ([`TransitConfig::from_env`]).
pub fn provider_from_env() -> Result<Box<dyn KeyProvider>, KeyError> {
    match std::env::var("CRATON_KEY_PROVIDER").ok().filter(|v| !v.is_empty()).as_deref() {
        None | Some("file") => Ok(Box::new(FileKeyProvider::open_or_create(&FileKeyProvider::default_path())?)),
        Some("transit" | "vault" | "openbao") => Ok(Box::new(TransitKeyProvider::new(TransitConfig::from_env()?)?)),
        Some(other) => Err(KeyError::Config {
            provider: other.to_string(),
            detail: format!("CRATON_KEY_PROVIDER {other:?}: expected file or transit"),
        }),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_provider_creates_0600_refuses_readable_and_wrong_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/master.key");
        let fp = FileKeyProvider::open_or_create(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let k = DataKey::generate().unwrap();
        let w = fp.wrap(&k).unwrap();
        assert_eq!(FileKeyProvider::open_or_create(&p).unwrap().unwrap(&w).unwrap().expose(), k.expose());
        assert!(!format!("{fp:?}").contains(&hex(&fp.key[..])));

        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = FileKeyProvider::open_or_create(&p).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");

        let other = FileKeyProvider::open_or_create(&d.path().join("other.key")).unwrap();
        let e = other.unwrap(&w).unwrap_err();
        assert!(matches!(e, KeyError::WrongKey { .. }) && e.to_string().contains("other.key"), "{e}");
    }
}
