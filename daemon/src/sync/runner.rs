//! One sync of one ref, blocking (call it from a blocking thread):
//!
//! 1. check the ref's URL against the repository policy (with the
//!    privilege of whoever created the ref, so a policy change reaches
//!    existing refs), then fetch and resolve the ref (no database work);
//! 2. the commit already synced with success: done, with no database write
//!    (a pending "sync now" request is cleared, the only exception);
//! 3. take the ref's lease (another process holding it: done, it is on it);
//! 4. write the commit's files under the ref's path to a scratch directory,
//!    read them with the importer's parsers (vaulted values opened with the
//!    project's vault passwords from the config file), apply in one
//!    transaction that also records the success and gives the lease back;
//! 5. any failure: the error (file, line, what) goes on the ref's status in
//!    a separate small write, the inventory is untouched.

use std::sync::Arc;

use craton::import::command::Limits;
use craton::import::vaulted::VaultIds;
use craton::ref_reader::{read_ref, ProjectNames};
use craton::secrets::KeyProvider;
use craton::store::config_refs::{self, ConfigRef, SyncFailure};
use craton::store::ref_apply::{apply_ref, Applied, RefApplyError};
use craton::store::secrets::Secrets;
use craton::store::{now_ms, DbConn, StoreError};

use super::git::{Access, GitCache};
use super::settings::SyncSettings;
use crate::repo_policy::Actor;

/// What one sync did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The ref's commit was already synced.
    Unchanged { commit: String },
    /// A new commit was applied (possibly changing nothing stored).
    Applied { commit: String, applied: Applied, warnings: Vec<String> },
    /// The sync failed; the error is on the ref's status.
    Failed(SyncFailure),
    /// Another process holds the ref's lease.
    Busy,
    /// The ref no longer exists.
    Gone,
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// The `outcome` label of `craton_syncs_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Applied { .. } => "applied",
            Outcome::Failed(_) => "failed",
            Outcome::Busy => "busy",
            Outcome::Gone => "gone",
        }
    }
}

/// The sync engine of one process: its settings and clone cache.
pub struct Syncer {
    pub settings: SyncSettings,
    pub cache: GitCache,
    /// Every sync, by outcome (served at /metrics by `cratond serve`).
    pub metrics: crate::metrics::SyncMetrics,
    /// The secrets key provider, from the environment on first need.
    keys: std::sync::OnceLock<Result<Arc<dyn KeyProvider>, String>>,
}

fn project_names(conn: &mut DbConn, pid: i64) -> Result<ProjectNames, StoreError> {
    let (groups, hosts) = config_refs::project_names(conn, pid)?;
    Ok(ProjectNames { groups, hosts })
}

impl Syncer {
    pub fn new(settings: SyncSettings) -> Syncer {
        let cache = GitCache::new(settings.cache_dir.clone());
        Syncer { settings, cache, metrics: Default::default(), keys: Default::default() }
    }

    /// Syncs ref `id` (any project). `force` applies the commit again even
    /// when it was already synced. Err only for database trouble.
    pub fn sync(&self, conn: &mut DbConn, id: i64, force: bool) -> Result<Outcome, StoreError> {
        let start = std::time::Instant::now();
        let result = self.sync_once(conn, id, force);
        self.metrics.record(result.as_ref().map_or("error", Outcome::label), start.elapsed());
        result
    }

    fn sync_once(&self, conn: &mut DbConn, id: i64, force: bool) -> Result<Outcome, StoreError> {
        let started = now_ms();
        let holder = self.settings.holder.as_str();
        let Some(r) = config_refs::get(conn, None, id)? else {
            return Ok(Outcome::Gone);
        };
        let access = match self.access(conn, &r)? {
            Ok(a) => a,
            Err(f) => {
                config_refs::record_failure(conn, &r, holder, started, &f)?;
                return Ok(Outcome::Failed(f));
            }
        };
        let fetched = match self.cache.fetch(&r.url, &r.git_ref, &access) {
            Ok(f) => f,
            Err(f) => {
                config_refs::record_failure(conn, &r, holder, started, &f)?;
                return Ok(Outcome::Failed(f));
            }
        };
        if r.is_current(&fetched.commit) && !force {
            if r.sync_requested_at.is_some() {
                config_refs::clear_request(conn, id, started)?;
            }
            return Ok(Outcome::Unchanged { commit: fetched.commit });
        }
        if !config_refs::try_lease(conn, id, holder, self.settings.lease_ttl_ms)? {
            return Ok(Outcome::Busy);
        }
        // Under the lease: another process may have synced it meanwhile.
        let Some(r) = config_refs::get(conn, None, id)? else {
            return Ok(Outcome::Gone);
        };
        if r.is_current(&fetched.commit) && !force {
            config_refs::release_lease(conn, id, holder)?;
            config_refs::clear_request(conn, id, started)?;
            return Ok(Outcome::Unchanged { commit: fetched.commit });
        }
        match self.read_and_apply(conn, &r, &fetched, started) {
            Ok((applied, warnings)) => Ok(Outcome::Applied { commit: fetched.commit, applied, warnings }),
            Err(RefApplyError::Failed(f)) => {
                config_refs::record_failure(conn, &r, holder, started, &f)?;
                Ok(Outcome::Failed(f))
            }
            // The lease expired under us and another process took over.
            Err(RefApplyError::Store(StoreError::Conflict(m))) if m.contains("lease was lost") => Ok(Outcome::Busy),
            Err(RefApplyError::Store(e)) => {
                // A refusal from the store (a cycle, a bad value) is the
                // ref's fault; anything else is the database's.
                if matches!(e, StoreError::Invalid(_) | StoreError::Conflict(_)) {
                    let f = SyncFailure::msg(e.to_string());
                    config_refs::record_failure(conn, &r, holder, started, &f)?;
                    return Ok(Outcome::Failed(f));
                }
                let _ = config_refs::release_lease(conn, id, holder);
                Err(e)
            }
        }
    }

    /// The policy's verdict on the ref's URL, right before the fetch (so a
    /// host's DNS answer is checked as late as possible), and what the fetch
    /// may use.
    fn access(&self, conn: &mut DbConn, r: &ConfigRef) -> Result<Result<Access, SyncFailure>, StoreError> {
        let Some(project) = craton::store::project_by_id(conn, r.project_id)? else {
            return Ok(Err(SyncFailure::msg("the ref's project no longer exists")));
        };
        let actor = Actor::root_if(r.created_by_root);
        let policy = &self.settings.policy;
        if let Err(e) = policy.check_repo_url(&project.name, &r.url, actor) {
            return Ok(Err(SyncFailure::msg(e.to_string())));
        }
        Ok(Ok(Access {
            credentials: policy.credentials_for(&project.name, &r.url, actor, &self.settings.credentials),
            follow_redirects: actor == Actor::Root,
        }))
    }

    fn read_and_apply(
        &self,
        conn: &mut DbConn,
        r: &ConfigRef,
        fetched: &super::git::Fetched,
        started: i64,
    ) -> Result<(Applied, Vec<String>), RefApplyError> {
        let scratch = self.cache.scratch().map_err(RefApplyError::Failed)?;
        let mut warnings = self.cache.materialize(fetched, &r.path, scratch.path()).map_err(RefApplyError::Failed)?;
        let names = project_names(conn, r.project_id)?;
        let vault = self.vault_ids(conn, r)?;
        let (plan, more) = read_ref(scratch.path(), &r.path, &names, &vault).map_err(RefApplyError::Failed)?;
        warnings.extend(more);
        drop(scratch);
        // Parsing may have taken a while: renew the lease before writing.
        if !config_refs::try_lease(conn, r.id, &self.settings.holder, self.settings.lease_ttl_ms)? {
            return Err(RefApplyError::Store(StoreError::Conflict(format!(
                "config ref {}: the sync lease was lost; another process took over",
                r.id
            ))));
        }
        let provider = if plan.secrets.is_empty() { None } else { Some(self.key_provider()?) };
        let secrets = provider.as_deref().map(Secrets::new);
        let applied = apply_ref(conn, r, &plan, &fetched.commit, &self.settings.holder, started, secrets.as_ref())?;
        Ok((applied, warnings))
    }

    /// The vault passwords of the ref's project, read now (a password file
    /// may have changed since the start).
    fn vault_ids(&self, conn: &mut DbConn, r: &ConfigRef) -> Result<VaultIds, RefApplyError> {
        let Some(project) = craton::store::project_by_id(conn, r.project_id)? else {
            return Ok(VaultIds::default());
        };
        let Some(specs) = self.settings.vault.get(&project.name) else {
            return Ok(VaultIds::default());
        };
        let limits = Limits { timeout: std::time::Duration::from_secs(60), ..Limits::default() };
        VaultIds::load(specs, &limits).map_err(|e| {
            RefApplyError::Failed(SyncFailure::msg(format!(
                "the vault passwords of project {:?} (config file): {e}",
                project.name
            )))
        })
    }

    /// Uses `provider` for secrets instead of the environment's (tests,
    /// embedders); false when one is already in use.
    pub fn set_key_provider(&self, provider: Arc<dyn KeyProvider>) -> bool {
        self.keys.set(Ok(provider)).is_ok()
    }

    fn key_provider(&self) -> Result<Arc<dyn KeyProvider>, RefApplyError> {
        self.keys
            .get_or_init(|| craton::secrets::keys::provider_from_env().map(Arc::from).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| RefApplyError::Failed(SyncFailure::msg(format!("the secrets key provider: {e}"))))
    }
}

/// One line about an outcome, for the CLI and the logs.
pub fn summary_line(r: &ConfigRef, outcome: &Outcome) -> String {
    let name = format!("ref {} ({})", r.id, r.describe());
    let short = |c: &str| c[..c.len().min(12)].to_string();
    match outcome {
        Outcome::Unchanged { commit } => format!("{name}: unchanged at {}", short(commit)),
        Outcome::Applied { commit, applied, .. } => {
            let s = &applied.secrets;
            format!(
                "{name}: synced {}: variables {} created, {} updated, {} removed{}{}",
                short(commit),
                applied.counts.created,
                applied.counts.updated,
                applied.counts.removed,
                if s.changed() {
                    format!("; secrets {} created, {} updated, {} removed", s.created, s.updated, s.removed)
                } else {
                    String::new()
                },
                if applied.structure { "; groups or hosts added" } else { "" }
            )
        }
        Outcome::Failed(f) => format!("{name}: error: {f}"),
        Outcome::Busy => format!("{name}: skipped: another cratond process is syncing it"),
        Outcome::Gone => format!("{name}: deleted meanwhile"),
    }
}
