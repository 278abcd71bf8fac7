//! What every request handler shares: the connection pool, the snapshot
//! cache and metrics (tokens are looked up per request, never cached). Database work runs on tokio's
//! blocking threads, never on the async workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use craton::model::{Project, Snapshot};
use craton::store::pool::DbPool;
use craton::store::tokens::Grant;
use craton::store::{self, DbConn};

use crate::api::error::ApiError;
use crate::metrics::Metrics;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer tokens (the default).
    Tokens,
    /// Bearer tokens, and Keystone tokens beside them (`--auth keystone`):
    /// `craton_…` tokens are Craton's, anything else is asked of Keystone.
    Keystone,
    /// No authentication: every request is root. Only for local development,
    /// only on loopback (`--insecure-no-auth`).
    InsecureNoAuth,
}

/// How long a cached grant spares the hash lookup; it is confirmed on
/// every request regardless, so this only bounds the cache's memory.
const GRANT_HINT_TTL: Duration = Duration::from_secs(60);

type SnapshotCache = HashMap<i64, (i64, Arc<Snapshot>)>;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    /// One permit per pooled connection: requests beyond that wait here,
    /// as cheap tasks, instead of as parked blocking threads.
    db_permits: Arc<tokio::sync::Semaphore>,
    pub auth: AuthMode,
    pub metrics: Arc<Metrics>,
    /// project id -> (revision, snapshot)
    snapshots: Arc<Mutex<SnapshotCache>>,
    /// token hash -> grant: a hint that spares the hash lookup, always
    /// confirmed against the database within the request (`api::auth`).
    grants: Arc<Mutex<HashMap<String, (Grant, Instant)>>>,
    bundles: Arc<Mutex<HashMap<String, Arc<craton::bundle::Bundle>>>>,
    /// The config ref sync of this process (workers, webhook secret); None
    /// when it does not sync (then webhooks are refused).
    pub sync: Option<Arc<crate::sync::SyncHub>>,
    /// The playbook runner of this process; None when it runs none (then
    /// `POST /v1/runs` is a 503).
    pub runs: Option<Arc<crate::runner::RunHub>>,
    /// The key provider of the secrets API, made on first use from the
    /// environment (`craton::secrets::keys::provider_from_env`) unless set.
    pub keys: Arc<std::sync::OnceLock<Result<Arc<dyn craton::secrets::KeyProvider>, String>>>,
    /// The Keystone validator of `--auth keystone`.
    pub keystone: Option<Arc<crate::keystone::Keystone>>,
    /// "Now" for maintenance windows: the system clock, or a test's
    /// [`craton::clock::ManualClock`] ([`Self::with_clock`]).
    pub clock: Arc<dyn craton::clock::Clock>,
    /// Outbound webhooks: events are always queued in the database; this
    /// process delivers them only when its deliverer was started
    /// ([`crate::hooks::HookHub::start`], as `cratond serve` does).
    pub hooks: Arc<crate::hooks::HookHub>,
}

impl AppState {
    pub fn new(pool: DbPool, auth: AuthMode) -> Self {
        let permits = pool.max_size() as usize;
        let metrics = Arc::new(Metrics::new(pool.clone()));
        let hooks =
            crate::hooks::HookHub::new(pool.clone(), crate::hooks::HookSettings::with(crate::hooks::default_holder()));
        AppState {
            hooks,
            pool,
            db_permits: Arc::new(tokio::sync::Semaphore::new(permits.max(1))),
            auth,
            metrics,
            snapshots: Arc::default(),
            grants: Arc::default(),
            bundles: Arc::default(),
            sync: None,
            runs: None,
            keys: Arc::default(),
            keystone: None,
            clock: Arc::new(craton::clock::SystemClock),
        }
    }

    /// The same state reading time from `clock` (tests move a manual one).
    pub fn with_clock(mut self, clock: Arc<dyn craton::clock::Clock>) -> Self {
        if let Some(hub) = &self.runs {
            hub.set_clock(clock.clone());
        }
        self.hooks.set_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// The same state with config ref sync attached.
    pub fn with_sync(mut self, hub: Arc<crate::sync::SyncHub>) -> Self {
        self.metrics.register_sync(&hub.syncer.metrics);
        self.sync = Some(hub);
        self
    }

    /// The same state authenticating Keystone tokens too.
    pub fn with_keystone(mut self, keystone: Arc<crate::keystone::Keystone>) -> Self {
        self.auth = AuthMode::Keystone;
        self.keystone = Some(keystone);
        self
    }

    /// The same state with the playbook runner attached.
    pub fn with_runs(mut self, hub: Arc<crate::runner::RunHub>) -> Self {
        self.metrics.register_runs(&hub.metrics);
        hub.set_clock(self.clock.clone());
        hub.set_hooks(self.hooks.clone());
        self.runs = Some(hub);
        self
    }

    /// The same state with these outbound webhooks (their settings, their
    /// holder name); the runner emits to them too.
    pub fn with_hooks(mut self, hooks: Arc<crate::hooks::HookHub>) -> Self {
        hooks.set_clock(self.clock.clone());
        if let Some(hub) = &self.runs {
            hub.set_hooks(hooks.clone());
        }
        self.hooks = hooks;
        self
    }

    /// The same state with this key provider for secrets.
    pub fn with_key_provider(self, provider: Arc<dyn craton::secrets::KeyProvider>) -> Self {
        let _ = self.keys.set(Ok(provider));
        self
    }

    /// The secrets key provider (blocking on first use: call it inside
    /// [`Self::db`]). Its configuration error is the same on every call.
    pub fn key_provider(&self) -> Result<Arc<dyn craton::secrets::KeyProvider>, ApiError> {
        self.keys
            .get_or_init(|| craton::secrets::keys::provider_from_env().map(Arc::from).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| ApiError::Unavailable(format!("secrets are unavailable: {e}")))
    }

    /// Runs blocking database work on a pooled connection.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let waiting = self.metrics.db_wait();
        let _permit =
            self.db_permits.acquire().await.map_err(|e| ApiError::internal(format!("database permits: {e}")))?;
        let unconfirmed = crate::api::auth::take_unconfirmed();
        let actor = crate::api::auth::audit_actor();
        let result = tokio::task::spawn_blocking(move || {
            let conn = pool.get();
            waiting.finish(conn.is_ok());
            let mut conn = conn.map_err(|e| ApiError::Unavailable(format!("database pool: {e}")))?;
            if let Some(id) = unconfirmed {
                crate::api::auth::confirm(&mut conn, id)?;
            }
            match actor {
                Some(a) => craton::store::audit::with_actor(a, || f(&mut conn)),
                None => f(&mut conn),
            }
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?;
        if let (Some(id), Err(ApiError::Unauthorized(_))) = (unconfirmed, &result) {
            self.grants.lock().expect("grant cache poisoned").retain(|_, (g, _)| g.token_id != id);
        }
        result
    }

    /// A cached grant for a token hash, if recent (a hint: see `api::auth`).
    pub fn cached_grant(&self, hash: &str) -> Option<Grant> {
        let g = self.grants.lock().expect("grant cache poisoned");
        g.get(hash).filter(|(_, at)| at.elapsed() < GRANT_HINT_TTL).map(|(g, _)| g.clone())
    }

    pub fn cache_grant(&self, hash: String, grant: Grant) {
        let mut g = self.grants.lock().expect("grant cache poisoned");
        if g.len() > 10_000 {
            g.retain(|_, (_, at)| at.elapsed() < GRANT_HINT_TTL);
        }
        g.insert(hash, (grant, Instant::now()));
    }

    /// Drops every cached grant (after a revocation in this process).
    pub fn forget_grants(&self) {
        self.grants.lock().expect("grant cache poisoned").clear();
    }

    /// A bundle built earlier for the same project revision and query.
    pub fn cached_bundle(&self, key: &str) -> Option<Arc<craton::bundle::Bundle>> {
        self.bundles.lock().expect("bundle cache poisoned").get(key).cloned()
    }

    pub fn cache_bundle(&self, key: String, bundle: Arc<craton::bundle::Bundle>) {
        let mut b = self.bundles.lock().expect("bundle cache poisoned");
        // Keys carry the revision, so stale entries are only dead weight:
        // a small cap bounds them.
        if b.len() >= 32 {
            b.clear();
        }
        b.insert(key, bundle);
    }

    /// The project's snapshot at its current revision: loaded from the
    /// database only when the revision moved since the cached copy.
    pub fn snapshot(&self, conn: &mut DbConn, project: &Project) -> Result<Arc<Snapshot>, ApiError> {
        if let Some((rev, snap)) = self.snapshots.lock().expect("snapshot cache poisoned").get(&project.id) {
            if *rev == project.revision {
                return Ok(snap.clone());
            }
        }
        let snap = Arc::new(store::load::load_project(conn, project.clone())?);
        // Keyed by the revision read with the contents (it may be newer than
        // `project.revision`), so the cache never holds a mislabelled copy.
        self.snapshots
            .lock()
            .expect("snapshot cache poisoned")
            .insert(project.id, (snap.project.revision, snap.clone()));
        Ok(snap)
    }
}
