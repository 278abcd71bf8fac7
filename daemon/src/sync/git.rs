//! The git side of a sync, on blocking threads only: a local bare clone per
//! repository URL (kept across restarts under the cache directory, deleted
//! and cloned again when it is found corrupt), fetched with every branch and
//! tag (force-pushes and deleted refs follow), a ref resolved to a commit,
//! and the files of one path of that commit written to a scratch directory
//! for the importer's parsers.
//!
//! Credentials come from [`Credentials`] (the environment, the config
//! file, chosen per ref by `crate::repo_policy`) and are handed to libgit2
//! only when the server asks; they never appear in a URL, an error or a
//! log line. A fetch the policy gives no credentials refuses every
//! credential request, the ssh agent included.
//!
//! A failed fetch is reported on the ref's status as a class ("could not
//! connect", "remote answered with an error", ...), never with the peer's
//! own words: those would turn the status into a probe of whatever the URL
//! points at. The full libgit2 message goes to the daemon log only.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use craton::store::config_refs::SyncFailure;
use git2::{
    AutotagOption, Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions, FetchPrune, ObjectType, Oid,
    RemoteCallbacks, RemoteRedirect, Repository,
};
use sha2::{Digest, Sha256};

use super::settings::Credentials;

/// How deep in-tree symbolic links are followed.
const MAX_LINK_DEPTH: usize = 8;

pub struct GitCache {
    root: PathBuf,
    /// One lock per clone: fetches of one repository never overlap in
    /// this process.
    locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

/// A fetched repository and the commit a ref resolved to.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub dir: PathBuf,
    pub commit: String,
}

fn fail(what: &str, e: git2::Error) -> SyncFailure {
    SyncFailure::msg(format!("{what}: {}", e.message()))
}

/// What a fetch may use: the credentials the repository policy gives
/// this ref (`None`: anonymous) and whether off-site HTTP redirects are
/// followed (only for refs root chose: a redirect would bypass the address
/// check of the policy).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub credentials: Option<Credentials>,
    pub follow_redirects: bool,
}

/// The status text of a failed fetch: a class, not the peer's words.
fn fetch_failure(url: &str, e: &git2::Error) -> SyncFailure {
    tracing::warn!(%url, class = ?e.class(), code = ?e.code(), error = %e.message(), "git fetch failed");
    if e.class() == ErrorClass::Callback {
        // Our own credential callback's refusals: no peer text in them.
        return SyncFailure::msg(format!("fetching {url}: fetch failed: {}", e.message()));
    }
    let class = if e.code() == ErrorCode::Auth {
        "authentication failed or was refused"
    } else if e.code() == ErrorCode::Certificate || e.class() == ErrorClass::Ssl {
        "TLS failed (certificate or handshake)"
    } else if matches!(e.class(), ErrorClass::Net | ErrorClass::Os) && is_connect_error(e.message()) {
        "could not connect"
    } else if e.class() == ErrorClass::Os {
        "I/O error (network or local disk)"
    } else {
        "remote answered with an error"
    };
    SyncFailure::msg(format!("fetching {url}: fetch failed: {class}"))
}

/// libgit2's messages for a connection that never got to speak.
fn is_connect_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    ["failed to connect", "failed to resolve", "could not resolve", "connection refused", "timed out", "unreachable"]
        .iter()
        .any(|k| m.contains(k))
}

fn refuse(msg: &str) -> git2::Error {
    git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, msg)
}

/// Errors that say the remote (network, server, credentials) failed, as
/// opposed to the local clone being broken.
fn is_remote_error(e: &git2::Error) -> bool {
    matches!(e.class(), ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Callback)
        || e.code() == git2::ErrorCode::Auth
        || e.code() == git2::ErrorCode::Certificate
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

impl GitCache {
    pub fn new(root: PathBuf) -> GitCache {
        GitCache { root, locks: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The clone of `url`: a hash of the URL (unique) and its last part
    /// (readable).
    pub fn repo_dir(&self, url: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let tail: String = url
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(40)
            .collect();
        self.root.join(format!("{hex}-{tail}.git"))
    }

    fn lock(&self, dir: &Path) -> Arc<Mutex<()>> {
        self.locks.lock().expect("git lock table poisoned").entry(dir.to_path_buf()).or_default().clone()
    }

    /// Scratch directories for checkouts, under the cache.
    pub fn scratch(&self) -> Result<tempfile::TempDir, SyncFailure> {
        let dir = self.root.join("tmp");
        std::fs::create_dir_all(&dir).map_err(|e| SyncFailure::msg(format!("creating {}: {e}", dir.display())))?;
        tempfile::Builder::new()
            .prefix("checkout-")
            .tempdir_in(&dir)
            .map_err(|e| SyncFailure::msg(format!("creating a scratch directory in {}: {e}", dir.display())))
    }

    fn open_or_init(dir: &Path) -> Result<Repository, SyncFailure> {
        if dir.exists() {
            match Repository::open_bare(dir) {
                Ok(r) if r.is_bare() => return Ok(r),
                Ok(_) | Err(_) => {
                    tracing::warn!(cache = %dir.display(), "git cache is not a usable bare repository; cloning again");
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| SyncFailure::msg(format!("removing corrupt cache {}: {e}", dir.display())))?;
                }
            }
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| SyncFailure::msg(format!("creating {}: {e}", parent.display())))?;
        }
        Repository::init_bare(dir).map_err(|e| fail("creating the git cache", e))
    }

    fn fetch_into(repo: &Repository, url: &str, access: &Access) -> Result<(), git2::Error> {
        let mut remote = repo.remote_anonymous(url)?;
        let mut callbacks = RemoteCallbacks::new();
        let mut tries = 0;
        let https = url.starts_with("https://");
        callbacks.credentials(move |_url, user_from_url, allowed| {
            tries += 1;
            let Some(creds) = &access.credentials else {
                return Err(refuse(
                    "the server asks for credentials, and this project may not use the daemon's for this URL \
                     (see [projects.NAME] git_url_allow and git_token in the config file)",
                ));
            };
            if tries > 3 {
                return Err(refuse("authentication failed: check CRATON_GIT_TOKEN or CRATON_GIT_SSH_KEY"));
            }
            let user = user_from_url.unwrap_or("git");
            if allowed.contains(CredentialType::SSH_KEY) {
                return match &creds.ssh_key {
                    Some(key) => Cred::ssh_key(user, None, key, creds.ssh_passphrase.as_deref()),
                    None => Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return match (&creds.token, https) {
                    (Some(token), true) => Cred::userpass_plaintext(
                        creds.username.as_deref().or(user_from_url).unwrap_or("x-access-token"),
                        token,
                    ),
                    (Some(_), false) => Err(refuse("refusing to send CRATON_GIT_TOKEN over plain http")),
                    (None, _) => Err(refuse("the server asks for credentials: set CRATON_GIT_TOKEN")),
                };
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            Cred::default()
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        options.prune(FetchPrune::On);
        options.download_tags(AutotagOption::None);
        options.follow_redirects(if access.follow_redirects { RemoteRedirect::Initial } else { RemoteRedirect::None });
        remote.fetch(&["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], Some(&mut options), None)
    }

    /// Resolves a branch, tag, full ref name or commit id to a commit.
    fn resolve(repo: &Repository, url: &str, git_ref: &str) -> Result<Result<Oid, SyncFailure>, git2::Error> {
        let names = if git_ref.starts_with("refs/") {
            vec![git_ref.to_string()]
        } else {
            vec![format!("refs/heads/{git_ref}"), format!("refs/tags/{git_ref}")]
        };
        for name in names {
            match repo.find_reference(&name) {
                Ok(r) => return Ok(Ok(r.peel_to_commit()?.id())),
                Err(e) if e.code() == git2::ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let hex = (4..=40).contains(&git_ref.len()) && git_ref.chars().all(|c| c.is_ascii_hexdigit());
        if hex {
            if let Ok(obj) = repo.revparse_single(git_ref) {
                if let Ok(c) = obj.peel_to_commit() {
                    return Ok(Ok(c.id()));
                }
            }
        }
        Ok(Err(SyncFailure::msg(format!("ref {git_ref:?} not found in {url}: no such branch, tag or commit"))))
    }

    /// Fetches `url` into its clone and resolves `git_ref`. A broken clone
    /// is deleted and fetched again once; a remote failure is reported.
    pub fn fetch(&self, url: &str, git_ref: &str, access: &Access) -> Result<Fetched, SyncFailure> {
        let dir = self.repo_dir(url);
        let lock = self.lock(&dir);
        let _guard = lock.lock().expect("git lock poisoned");
        let mut last = None;
        for attempt in 0..2 {
            if attempt == 1 {
                tracing::warn!(cache = %dir.display(), error = ?last, "git cache looks corrupt; cloning again");
                let _ = std::fs::remove_dir_all(&dir);
            }
            let repo = Self::open_or_init(&dir)?;
            if let Err(e) = Self::fetch_into(&repo, url, access) {
                if is_remote_error(&e) || attempt == 1 {
                    return Err(fetch_failure(url, &e));
                }
                last = Some(e.message().to_string());
                continue;
            }
            match Self::resolve(&repo, url, git_ref) {
                Ok(Ok(oid)) => return Ok(Fetched { dir, commit: oid.to_string() }),
                Ok(Err(not_found)) => return Err(not_found),
                Err(e) if attempt == 1 => return Err(fail(&format!("resolving {git_ref:?}"), e)),
                Err(e) => last = Some(e.message().to_string()),
            }
        }
        tracing::warn!(%url, error = ?last, "git cache unusable after a fresh clone");
        Err(SyncFailure::msg(format!("fetching {url}: fetch failed: the local clone is unusable")))
    }

    /// Writes the files under `path` of `commit` into `dest` (at the same
    /// repository-relative place). Returns warnings (skipped entries).
    pub fn materialize(&self, fetched: &Fetched, path: &str, dest: &Path) -> Result<Vec<String>, SyncFailure> {
        let lock = self.lock(&fetched.dir);
        let _guard = lock.lock().expect("git lock poisoned");
        let repo = Repository::open_bare(&fetched.dir).map_err(|e| fail("opening the git cache", e))?;
        let oid = Oid::from_str(&fetched.commit).map_err(|e| fail("commit id", e))?;
        let commit = repo.find_commit(oid).map_err(|e| fail("reading the commit", e))?;
        let root = commit.tree().map_err(|e| fail("reading the commit's tree", e))?;
        let sub = if path.is_empty() {
            root.clone()
        } else {
            let entry = root.get_path(Path::new(path)).map_err(|_| {
                SyncFailure::msg(format!("path {path:?} does not exist at commit {}", short(&fetched.commit)))
            })?;
            entry.to_object(&repo).and_then(|o| o.peel_to_tree()).map_err(|_| {
                SyncFailure::msg(format!("path {path:?} is not a directory at commit {}", short(&fetched.commit)))
            })?
        };
        let mut w = Writer { repo: &repo, root: &root, warnings: Vec::new() };
        let out = if path.is_empty() { dest.to_path_buf() } else { dest.join(path) };
        w.tree(&sub, path, &out, 0)?;
        Ok(w.warnings)
    }
}

struct Writer<'a> {
    repo: &'a Repository,
    root: &'a git2::Tree<'a>,
    warnings: Vec<String>,
}

fn io(path: &Path, e: std::io::Error) -> SyncFailure {
    SyncFailure::msg(format!("writing {}: {e}", path.display()))
}

fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// `base/target` with `.` and `..` resolved, if it stays inside the
/// repository.
fn resolve_link(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for c in Path::new(target).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

impl Writer<'_> {
    fn tree(&mut self, tree: &git2::Tree, rel: &str, out: &Path, depth: usize) -> Result<(), SyncFailure> {
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        for entry in tree.iter() {
            let Some(name) = entry.name() else {
                self.warnings.push(format!("{rel}: skipped an entry whose name is not UTF-8"));
                continue;
            };
            let child_rel = join_rel(rel, name);
            let child_out = out.join(name);
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let t =
                        entry.to_object(self.repo).and_then(|o| o.peel_to_tree()).map_err(|e| fail(&child_rel, e))?;
                    self.tree(&t, &child_rel, &child_out, depth)?;
                }
                Some(ObjectType::Blob) if entry.filemode() == 0o120000 => {
                    self.link(&entry, rel, &child_rel, &child_out, depth)?;
                }
                Some(ObjectType::Blob) => {
                    let b =
                        entry.to_object(self.repo).and_then(|o| o.peel_to_blob()).map_err(|e| fail(&child_rel, e))?;
                    std::fs::write(&child_out, b.content()).map_err(|e| io(&child_out, e))?;
                }
                _ => self.warnings.push(format!("{child_rel}: submodule skipped")),
            }
        }
        Ok(())
    }

    /// An in-tree symbolic link is written as a copy of what it points to;
    /// one leaving the repository is skipped.
    fn link(
        &mut self,
        entry: &git2::TreeEntry,
        parent_rel: &str,
        rel: &str,
        out: &Path,
        depth: usize,
    ) -> Result<(), SyncFailure> {
        let blob = entry.to_object(self.repo).and_then(|o| o.peel_to_blob()).map_err(|e| fail(rel, e))?;
        let target = String::from_utf8_lossy(blob.content()).to_string();
        let resolved = match resolve_link(parent_rel, &target) {
            Some(r) if depth < MAX_LINK_DEPTH => r,
            _ => {
                self.warnings.push(format!("{rel}: symbolic link to {target:?} leaves the repository; skipped"));
                return Ok(());
            }
        };
        let found = if resolved.is_empty() { None } else { self.root.get_path(Path::new(&resolved)).ok() };
        let Some(found) = found else {
            self.warnings.push(format!("{rel}: symbolic link to {target:?} points to nothing; skipped"));
            return Ok(());
        };
        match found.kind() {
            Some(ObjectType::Tree) => {
                let t = found.to_object(self.repo).and_then(|o| o.peel_to_tree()).map_err(|e| fail(rel, e))?;
                self.tree(&t, &resolved, out, depth + 1)
            }
            Some(ObjectType::Blob) if found.filemode() == 0o120000 => {
                let parent = resolved.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                self.link(&found, &parent, rel, out, depth + 1)
            }
            Some(ObjectType::Blob) => {
                let b = found.to_object(self.repo).and_then(|o| o.peel_to_blob()).map_err(|e| fail(rel, e))?;
                std::fs::write(out, b.content()).map_err(|e| io(out, e))
            }
            _ => {
                self.warnings.push(format!("{rel}: symbolic link to a submodule; skipped"));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_link;

    #[test]
    fn links_stay_inside() {
        assert_eq!(resolve_link("inv/group_vars", "../shared/all.yml").as_deref(), Some("inv/shared/all.yml"));
        assert_eq!(resolve_link("", "a/./b").as_deref(), Some("a/b"));
        assert_eq!(resolve_link("inv", "../../etc/passwd"), None);
        assert_eq!(resolve_link("inv", "/etc/passwd"), None);
    }
}
