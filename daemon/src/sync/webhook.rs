//! GitHub push webhooks: the `X-Hub-Signature-256` check (HMAC-SHA256 of
//! the raw body with the shared secret, compared in constant time) and the
//! match of a push (repository URLs, ref) against the config refs, and the
//! gate that bounds what unauthenticated senders can make the daemon
//! buffer ([`WebhookGate`]).

use craton::store::config_refs::ConfigRef;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds on webhook bodies, which anyone can send: how many are read at
/// once, how many bytes they may hold together, how large one may be.
/// `CRATON_WEBHOOK_MAX_CONCURRENT` (default 4),
/// `CRATON_WEBHOOK_MAX_BUFFERED_BYTES` (default 64 MiB),
/// `CRATON_WEBHOOK_MAX_BODY_BYTES` (default 25 MiB, GitHub's largest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimits {
    pub concurrent: usize,
    pub buffered_bytes: usize,
    pub body_bytes: usize,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        WebhookLimits { concurrent: 4, buffered_bytes: 64 << 20, body_bytes: 25 << 20 }
    }
}

/// Semaphores for [`WebhookLimits`]: a body is read only with a slot and
/// its size (the Content-Length, else the per-body maximum) reserved from
/// the byte budget; without them the sender gets 503 at once.
pub struct WebhookGate {
    pub limits: WebhookLimits,
    slots: std::sync::Arc<Semaphore>,
    bytes: std::sync::Arc<Semaphore>,
}

/// A reservation; dropping it frees the slot and the bytes.
pub struct WebhookPass {
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl WebhookGate {
    pub fn new(mut limits: WebhookLimits) -> WebhookGate {
        limits.buffered_bytes = limits.buffered_bytes.clamp(1, u32::MAX as usize);
        limits.concurrent = limits.concurrent.max(1);
        WebhookGate {
            limits,
            slots: std::sync::Arc::new(Semaphore::new(limits.concurrent)),
            bytes: std::sync::Arc::new(Semaphore::new(limits.buffered_bytes)),
        }
    }

    /// A slot and `len` bytes of budget (the per-body maximum when the
    /// length is unknown), or None when either is exhausted.
    pub fn try_enter(&self, len: Option<usize>) -> Option<WebhookPass> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let want = len.unwrap_or(self.limits.body_bytes).clamp(1, self.limits.buffered_bytes);
        let bytes = self.bytes.clone().try_acquire_many_owned(u32::try_from(want).ok()?).ok()?;
        Some(WebhookPass { _slot: slot, _bytes: bytes })
    }
}

/// Whether a signature header is well-formed (`sha256=` and 64 hex
/// digits), checked before the body is read.
pub fn signature_well_formed(header: &str) -> bool {
    header.trim().strip_prefix("sha256=").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// True when `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with
/// `secret`. The comparison takes the same time whatever the bytes.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(sig) = header.trim().strip_prefix("sha256=").and_then(hex_decode) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// `sha256=<hex>` for `body`: what GitHub sends (used by tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A repository URL reduced to `host/path`, lower case, without scheme,
/// user, port, trailing `/` or `.git`, so that the https, ssh and scp-like
/// forms of one repository compare equal. Local paths stay as they are.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    if url.starts_with('/') {
        return url.trim_end_matches('/').to_string();
    }
    if let Some(rest) = url.strip_prefix("file://") {
        return rest.trim_end_matches('/').to_string();
    }
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_string(),
        // scp-like user@host:path
        None => match url.split_once(':') {
            Some((host, path)) => format!("{host}/{path}"),
            None => url.to_string(),
        },
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split_once(':').map_or(host, |(h, _)| h);
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{host}/{path}").to_lowercase()
}

/// The URLs a push event gives for its repository.
fn push_urls(payload: &Value) -> Vec<String> {
    let repo = &payload["repository"];
    ["clone_url", "ssh_url", "git_url", "html_url", "svn_url", "url"]
        .iter()
        .filter_map(|k| repo[*k].as_str())
        .map(normalize_url)
        .collect()
}

/// Whether config ref `r` follows the ref a push updated (`refs/heads/x`
/// or `refs/tags/x`).
fn ref_matches(r: &ConfigRef, pushed: &str) -> bool {
    r.git_ref == pushed || format!("refs/heads/{}", r.git_ref) == pushed || format!("refs/tags/{}", r.git_ref) == pushed
}

/// The refs a push event concerns.
pub fn matching_refs<'a>(payload: &Value, refs: &'a [ConfigRef]) -> Vec<&'a ConfigRef> {
    let Some(pushed) = payload["ref"].as_str() else {
        return Vec::new();
    };
    let urls = push_urls(payload);
    refs.iter().filter(|r| ref_matches(r, pushed) && urls.contains(&normalize_url(&r.url))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        // GitHub's documented example.
        let s = sign(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(s, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        assert!(signature_ok(b"It's a Secret to Everybody", b"Hello, World!", &s));
        assert!(!signature_ok(b"other", b"Hello, World!", &s));
        assert!(!signature_ok(b"It's a Secret to Everybody", b"Hello, World?", &s));
        assert!(!signature_ok(b"k", b"x", "sha1=00"));
        assert!(!signature_ok(b"k", b"x", "sha256=zz"));
        assert!(!signature_ok(b"k", b"x", ""));
    }

    #[test]
    fn urls_compare_across_forms() {
        let want = "github.com/acme/config";
        for u in [
            "https://github.com/acme/config.git",
            "https://github.com/Acme/Config",
            "git@github.com:acme/config.git",
            "ssh://git@github.com:22/acme/config.git",
            "git://github.com/acme/config.git",
            "https://github.com/acme/config/",
        ] {
            assert_eq!(normalize_url(u), want, "{u}");
        }
        assert_eq!(normalize_url("file:///srv/repo/"), "/srv/repo");
    }
}
