//! Which repository URLs a project may use, and with which git credentials.
//!
//! Why it exists: git credentials are daemon-wide and the daemon can reach
//! internal networks, so a project editor who may name any URL could read
//! another project's private repository or probe internal services (SSRF).
//! One rule, [`RepoPolicy::check_repo_url`], decides for config refs (at
//! creation and again before every fetch, so a policy change reaches
//! existing refs) and is meant to decide for every other repository the
//! daemon fetches on a caller's behalf (playbook repositories of runs).
//!
//! The rule, in order:
//! 1. a URL matching the project's `[projects.NAME] git_url_allow` is
//!    allowed for everyone in the project (local paths and internal hosts
//!    included: naming them is how an operator opens them);
//! 2. root (root tokens, the cratond CLI) may use any URL;
//! 3. a project with an allow-list refuses every other URL;
//! 4. without an allow-list, non-root callers may use network URLs whose
//!    host resolves only to public addresses: never local paths or
//!    `file://`, never loopback, private, link-local, CGNAT, unspecified,
//!    multicast, ULA or IPv4-mapped/embedded forms of those.
//!
//! Credentials ([`RepoPolicy::credentials_for`]): a project's own
//! credentials, when it has some, for all of its refs; else the
//! daemon-wide ones, but only for URLs the project's allow-list names or
//! root chose; else none (not even the ssh agent).
//!
//! The decision is pure apart from [`Lookup`] (DNS and path
//! canonicalization), which tests replace.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::sync::settings::Credentials;

/// Who asks for a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A root token or the cratond CLI.
    Root,
    /// A project token (any role).
    Project,
}

impl Actor {
    pub fn root_if(is_root: bool) -> Actor {
        if is_root {
            Actor::Root
        } else {
            Actor::Project
        }
    }
}

/// A refusal: the URL, the rule that refused it and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository URL {url:?} refused by {rule}: {reason}")]
pub struct PolicyError {
    pub url: String,
    /// The rule, as the operator finds it: `projects."web".git_url_allow`,
    /// `local repositories are root-only`, `public addresses only`.
    pub rule: String,
    pub reason: String,
}

/// DNS and the file system, as far as the policy needs them.
pub trait Lookup {
    /// Every address `host` resolves to.
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;
    /// The path with symbolic links resolved, when it exists.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;
}

/// The system resolver and file system.
pub struct System;

impl Lookup for System {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
}

/// One project's rules.
#[derive(Debug, Clone, Default)]
pub struct ProjectPolicy {
    pub allow: Vec<String>,
    /// The project's own credentials, if it has any.
    pub credentials: Option<Credentials>,
}

/// The rules of every project (from the config file).
#[derive(Debug, Clone, Default)]
pub struct RepoPolicy {
    pub projects: BTreeMap<String, ProjectPolicy>,
}

/// A repository URL taken apart for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    /// `https`, `http`, `ssh`, `git`, `file`, or `scp` for `user@host:path`.
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        "ssh" | "scp" => Some(22),
        "git" => Some(9418),
        _ => None,
    }
}

/// Takes a URL (or pattern) apart. Refuses what could name one repository
/// while looking like another: `.`/`..` segments, encoded dots, slashes or
/// backslashes, queries and fragments.
fn parse(url: &str) -> Result<Parsed, String> {
    let url = url.trim();
    let (scheme, host, port, path) = if url.starts_with('/') {
        ("file".to_string(), String::new(), None, url.to_string())
    } else if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err("a file:// URL needs an absolute path".into());
        }
        ("file".to_string(), String::new(), None, rest.to_string())
    } else if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "https" | "http" | "ssh" | "git") {
            return Err(format!("unsupported scheme {scheme:?}"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_port(hostport)?;
        (scheme, host, port, path.to_string())
    } else if let Some((authority, path)) = url.split_once(':') {
        // scp-like `user@host:path`
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        ("scp".to_string(), host.to_string(), None, path.to_string())
    } else {
        return Err("not a repository URL (use https://, ssh://, user@host:path, file:// or an absolute path)".into());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if scheme != "file" && host.is_empty() {
        return Err("the URL names no host".into());
    }
    let lower = path.to_ascii_lowercase();
    if path.contains(['?', '#', '\\']) || lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return Err("the path must not carry a query, a fragment, backslashes or encoded dots and slashes".into());
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("the path must not contain . or .. segments".into());
    }
    Ok(Parsed { scheme, host, port, path })
}

fn split_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed [ in the host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None if after.is_empty() => None,
            None => return Err("junk after the IPv6 address".into()),
        };
        return Ok((h.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), Some(p.parse().map_err(|_| format!("bad port {p:?}"))?))),
        None => Ok((hostport.to_string(), None)),
    }
}

/// `*` matches within one `sep`-separated part, `**` across parts.
fn glob(pattern: &str, text: &str, sep: char) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char], sep: char) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..], sep)),
            Some('*') => {
                let mut i = 0;
                loop {
                    if go(&p[1..], &t[i..], sep) {
                        return true;
                    }
                    if i == t.len() || t[i] == sep {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..], sep),
        }
    }
    go(&p, &t, sep)
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.strip_suffix(suffix).is_some_and(|h| h.ends_with('.') && h.len() > 1),
        None => pattern == host,
    }
}

fn matches(pattern: &Parsed, url: &Parsed) -> bool {
    pattern.scheme == url.scheme
        && host_matches(&pattern.host, &url.host)
        && pattern.port.or(default_port(&pattern.scheme)) == url.port.or(default_port(&url.scheme))
        && glob(&pattern.path, &url.path, '/')
}

/// Whether connecting to `ip` reaches only the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach IPv4 hosts.
            let s = v6.segments();
            let mapped = s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0);
            let embedded = if mapped || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                Some(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
            } else if s[0] == 0x2002 {
                Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
            } else {
                None
            };
            if let Some(v4) = embedded {
                return v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST && is_public_v4(v4);
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || o[0] == 0 // "this network" 0/8
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] >= 240) // reserved and broadcast
}

impl RepoPolicy {
    /// From the config file's `[projects.NAME]` tables. A malformed
    /// pattern is an error naming the project and the pattern.
    pub fn from_config(projects: &BTreeMap<String, craton::config::ProjectConfig>) -> Result<RepoPolicy, String> {
        let mut out = BTreeMap::new();
        for (name, p) in projects {
            for pat in &p.git_url_allow {
                parse(pat).map_err(|e| format!("config file: projects.{name:?}.git_url_allow: {pat:?}: {e}"))?;
            }
            let has_creds = p.git_token.is_some() || p.git_ssh_key.is_some();
            let credentials = has_creds.then(|| Credentials {
                username: p.git_username.clone(),
                token: p.git_token.clone(),
                ssh_key: p.git_ssh_key.as_ref().map(PathBuf::from),
                ssh_passphrase: p.git_ssh_key_passphrase.clone(),
            });
            out.insert(name.clone(), ProjectPolicy { allow: p.git_url_allow.clone(), credentials });
        }
        Ok(RepoPolicy { projects: out })
    }

    fn allow_listed(&self, project: &str, url: &Parsed, lookup: &dyn Lookup) -> bool {
        let Some(p) = self.projects.get(project) else {
            return false;
        };
        // A local path is matched after its symbolic links are resolved,
        // so a link inside an allowed directory cannot lead out of it.
        let canonical = (url.scheme == "file")
            .then(|| lookup.canonicalize(Path::new(&url.path)))
            .flatten()
            .and_then(|c| c.to_str().map(|s| Parsed { path: s.to_string(), ..url.clone() }));
        p.allow.iter().filter_map(|pat| parse(pat).ok()).any(|pat| {
            let pat = match (&canonical, pat.scheme.as_str()) {
                // Allow-list paths are resolved too (e.g. /srv -> /data/srv).
                (Some(_), "file") => {
                    let (dir, tail) = split_glob_prefix(&pat.path);
                    match lookup.canonicalize(Path::new(dir)).and_then(|c| c.to_str().map(String::from)) {
                        Some(c) => Parsed { path: format!("{}{tail}", c.trim_end_matches('/')), ..pat },
                        None => pat,
                    }
                }
                _ => pat,
            };
            matches(&pat, canonical.as_ref().unwrap_or(url))
        })
    }

    /// The rule itself (see the module doc), with the system resolver.
    pub fn check_repo_url(&self, project: &str, url: &str, actor: Actor) -> Result<(), PolicyError> {
        self.check_repo_url_with(project, url, actor, &System)
    }

    pub fn check_repo_url_with(
        &self,
        project: &str,
        url: &str,
        actor: Actor,
        lookup: &dyn Lookup,
    ) -> Result<(), PolicyError> {
        let refuse = |rule: String, reason: String| Err(PolicyError { url: url.to_string(), rule, reason });
        let allow_rule = format!("projects.{project:?}.git_url_allow");
        let parsed = match parse(url) {
            Ok(p) => p,
            Err(e) => return refuse("the repository URL syntax".into(), e),
        };
        if self.allow_listed(project, &parsed, lookup) || actor == Actor::Root {
            return Ok(());
        }
        if self.projects.get(project).is_some_and(|p| !p.allow.is_empty()) {
            return refuse(allow_rule, "the URL matches none of the project's patterns".into());
        }
        if parsed.scheme == "file" {
            return refuse(
                "the default rule: local repositories are root-only".into(),
                format!("local paths and file:// need a root token or an entry in {allow_rule}"),
            );
        }
        let port = parsed.port.or(default_port(&parsed.scheme)).unwrap_or(0);
        let public_rule = || format!("the default rule: public addresses only (or an entry in {allow_rule})");
        let addrs = match lookup.resolve(&parsed.host, port) {
            Ok(a) if !a.is_empty() => a,
            _ => return refuse(public_rule(), format!("host {:?} does not resolve", parsed.host)),
        };
        if let Some(bad) = addrs.iter().find(|a| !is_public(**a)) {
            return refuse(public_rule(), format!("host {:?} resolves to the non-public address {bad}", parsed.host));
        }
        Ok(())
    }

    /// The credentials a fetch of `url` for `project` may use: `None`
    /// means anonymous (not even the ssh agent). Call after
    /// [`Self::check_repo_url`] allowed it.
    pub fn credentials_for(
        &self,
        project: &str,
        url: &str,
        actor: Actor,
        daemon_wide: &Credentials,
    ) -> Option<Credentials> {
        let p = self.projects.get(project);
        if let Some(own) = p.and_then(|p| p.credentials.clone()) {
            return Some(own);
        }
        let listed = parse(url).is_ok_and(|u| self.allow_listed(project, &u, &System));
        (actor == Actor::Root || listed).then(|| daemon_wide.clone())
    }
}

/// `/srv/repos/*` -> (`/srv/repos`, `/*`): the literal directory before the
/// first glob character, and the rest.
fn split_glob_prefix(path: &str) -> (&str, &str) {
    let first = path.find('*').unwrap_or(path.len());
    let cut = path[..first].rfind('/').unwrap_or(0);
    if cut == 0 {
        ("/", &path[cut..])
    } else {
        (&path[..cut], &path[cut..])
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Actor::Root => "root",
            Actor::Project => "project token",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed DNS table; paths are their own canonical form.
    struct Fake(Vec<(&'static str, Vec<IpAddr>)>);

    impl Lookup for Fake {
        fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            self.0
                .iter()
                .find(|(h, _)| *h == host)
                .map(|(_, a)| a.clone())
                .ok_or_else(|| std::io::Error::other("no such host"))
        }
        fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
            Some(path.to_path_buf())
        }
    }

    fn dns() -> Fake {
        Fake(vec![
            ("github.com", vec!["140.82.121.4".parse().unwrap()]),
            ("git.example.net", vec!["10.1.2.3".parse().unwrap()]),
            ("rebind.example", vec!["93.184.216.34".parse().unwrap(), "127.0.0.1".parse().unwrap()]),
            ("v6only.example", vec!["fd00::1".parse().unwrap()]),
        ])
    }

    fn policy() -> RepoPolicy {
        let mut projects = BTreeMap::new();
        projects.insert(
            "ops".to_string(),
            ProjectPolicy {
                allow: vec!["https://git.example.net/ops/*".into(), "/srv/repos/ops/**".into()],
                credentials: None,
            },
        );
        RepoPolicy { projects }
    }

    fn check(project: &str, url: &str, actor: Actor) -> Result<(), PolicyError> {
        policy().check_repo_url_with(project, url, actor, &dns())
    }

    #[test]
    fn allow_list_names_internal_hosts_and_paths() {
        check("ops", "https://git.example.net/ops/fleet.git", Actor::Project).unwrap();
        check("ops", "https://GIT.example.net:443/ops/fleet", Actor::Project).unwrap();
        check("ops", "/srv/repos/ops/a/b", Actor::Project).unwrap();
        check("ops", "file:///srv/repos/ops/a", Actor::Project).unwrap();
        // `*` stays inside one segment; other ports, schemes, hosts miss.
        for url in [
            "https://git.example.net/ops/a/b",
            "https://git.example.net:8443/ops/a",
            "http://git.example.net/ops/a",
            "https://git.example.net/other/a",
            "https://git.example.net/ops/../other/a",
            "https://git.example.net/ops/%2e%2e/other",
            "https://github.com/acme/config",
            "/srv/repos/other",
        ] {
            let e = check("ops", url, Actor::Project).unwrap_err();
            assert!(e.rule.contains("projects.\"ops\".git_url_allow") || e.rule.contains("syntax"), "{url}: {e}");
        }
    }

    #[test]
    fn root_may_use_anything_wellformed() {
        for url in ["/etc", "file:///srv/x", "http://127.0.0.1:9/x", "https://git.example.net/a/b"] {
            check("ops", url, Actor::Root).unwrap();
            check("web", url, Actor::Root).unwrap();
        }
        assert!(check("web", "https://h/a/../b", Actor::Root).is_err());
    }

    #[test]
    fn default_rule_public_network_only() {
        check("web", "https://github.com/acme/config.git", Actor::Project).unwrap();
        check("web", "git@github.com:acme/config.git", Actor::Project).unwrap();
        for url in [
            "/srv/repos/x",
            "file:///etc",
            "http://127.0.0.1:5432/x",
            "http://2130706433/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://[64:ff9b::a9fe:a9fe]/x",
            "http://[2002:7f00:1::]/x",
            "http://169.254.169.254/latest",
            "http://[fe80::1]/x",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
            "http://224.0.0.1/x",
            "https://git.example.net/ops/x",
            "https://rebind.example/x",
            "https://v6only.example/x",
            "https://nowhere.invalid/x",
        ] {
            let e = check("web", url, Actor::Project).unwrap_err();
            assert!(e.rule.starts_with("the default rule"), "{url}: {e}");
        }
    }

    #[test]
    fn credentials_follow_the_allow_list() {
        let daemon = Credentials { token: Some("daemon".into()), ..Credentials::default() };
        let p = policy();
        let got = |proj: &str, url: &str, a: Actor| p.credentials_for(proj, url, a, &daemon).and_then(|c| c.token);
        assert_eq!(got("ops", "https://git.example.net/ops/a", Actor::Project).as_deref(), Some("daemon"));
        assert_eq!(got("web", "https://github.com/acme/config", Actor::Project), None);
        assert_eq!(got("web", "https://github.com/acme/config", Actor::Root).as_deref(), Some("daemon"));
        let mut own = policy();
        own.projects.get_mut("ops").unwrap().credentials =
            Some(Credentials { token: Some("ops".into()), ..Credentials::default() });
        assert_eq!(
            own.credentials_for("ops", "https://github.com/x/y", Actor::Root, &daemon).and_then(|c| c.token),
            Some("ops".into())
        );
    }

    #[test]
    fn globs() {
        assert!(glob("/a/*", "/a/b", '/'));
        assert!(!glob("/a/*", "/a/b/c", '/'));
        assert!(glob("/a/**", "/a/b/c", '/'));
        assert!(glob("/a/*.git", "/a/x.git", '/'));
        assert!(host_matches("*.example.net", "git.example.net"));
        assert!(!host_matches("*.example.net", "example.net"));
        assert!(!host_matches("*.example.net", "evilexample.net"));
        assert_eq!(split_glob_prefix("/srv/repos/*"), ("/srv/repos", "/*"));
    }
}
