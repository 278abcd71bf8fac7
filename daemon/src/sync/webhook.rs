//! GitHub push webhooks: the `X-Hub-Signature-256` check (HMAC-SHA256 of
//! the raw body with the shared secret, compared in constant time) and the
//! match of a push (repository URLs, ref) against the config refs.

use craton::store::config_refs::ConfigRef;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

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
