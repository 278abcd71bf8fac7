//! The sync workers of `cratond serve`: a poller that syncs every ref at
//! its own interval (backing off after failures) and as soon as someone
//! asks (the API, a webhook, a change on disk), and a file watcher for
//! refs whose repository is local. Git and database work run on blocking
//! threads; the async side only schedules.
//!
//! Several processes may poll one database: each keeps its own schedule,
//! the ref's lease decides who syncs, and "sync now" requests are stored
//! on the ref so that whichever process polls next honours them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use craton::store::config_refs::{self, backoff_secs, ConfigRef};
use craton::store::now_ms;
use craton::store::pool::DbPool;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::runner::{summary_line, Outcome, Syncer};
use super::settings::SyncSettings;

/// What the API, the webhook and the watcher use to reach the workers.
pub struct SyncHub {
    pub syncer: Syncer,
    /// Bounds on webhook bodies (read before any signature can be checked).
    pub webhook_gate: super::webhook::WebhookGate,
    requests: Mutex<HashMap<i64, bool>>,
    wake: Notify,
}

impl SyncHub {
    pub fn new(settings: SyncSettings) -> Arc<SyncHub> {
        let webhook_gate = super::webhook::WebhookGate::new(settings.webhook_limits);
        Arc::new(SyncHub {
            syncer: Syncer::new(settings),
            webhook_gate,
            requests: Mutex::default(),
            wake: Notify::new(),
        })
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.syncer.settings
    }

    /// Asks this process's poller to sync ref `id` now.
    pub fn request(&self, id: i64, force: bool) {
        let mut r = self.requests.lock().expect("sync requests poisoned");
        let f = r.entry(id).or_insert(false);
        *f |= force;
        drop(r);
        self.wake.notify_one();
    }

    fn take_requests(&self) -> HashMap<i64, bool> {
        std::mem::take(&mut *self.requests.lock().expect("sync requests poisoned"))
    }
}

#[derive(Default)]
struct Schedule {
    /// When this process next polls each ref (ms).
    next: HashMap<i64, i64>,
    /// When this process last started a sync of each ref (ms).
    started: HashMap<i64, i64>,
    running: HashSet<i64>,
}

/// Starts the poller and the file watcher on the current tokio runtime.
pub fn start(hub: Arc<SyncHub>, pool: DbPool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(poll_loop(hub, pool))
}

async fn poll_loop(hub: Arc<SyncHub>, pool: DbPool) {
    let schedule = Arc::new(Mutex::new(Schedule::default()));
    let mut watch = LocalWatch::new(hub.clone());
    let tick = Duration::from_millis(hub.settings().tick_ms);
    tracing::info!(holder = %hub.settings().holder, cache = %hub.settings().cache_dir.display(), "sync workers started");
    loop {
        let p = pool.clone();
        let refs = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            config_refs::list(&mut conn, None).map_err(|e| e.to_string())
        })
        .await;
        let refs = match refs {
            Ok(Ok(refs)) => refs,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "sync poller cannot list config refs");
                tokio::time::sleep(tick).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "sync poller task failed");
                tokio::time::sleep(tick).await;
                continue;
            }
        };
        if let Some(w) = watch.as_mut() {
            w.update(&refs);
        }
        let requested = hub.take_requests();
        let now = now_ms();
        {
            let mut s = schedule.lock().expect("schedule poisoned");
            let live: HashSet<i64> = refs.iter().map(|r| r.id).collect();
            s.next.retain(|id, _| live.contains(id));
            s.started.retain(|id, _| live.contains(id));
        }
        for r in refs {
            let force = requested.get(&r.id).copied();
            let mut s = schedule.lock().expect("schedule poisoned");
            if s.running.contains(&r.id) {
                // Asked again while running: once more after this one.
                if let Some(f) = force {
                    hub.requests.lock().expect("sync requests poisoned").insert(r.id, f);
                }
                continue;
            }
            let last_start = s.started.get(&r.id).copied().unwrap_or(i64::MIN);
            let local_next = s.next.get(&r.id).copied().unwrap_or(0);
            let due = force.is_some()
                || r.sync_requested_at.is_some_and(|t| t > last_start)
                || now >= local_next.max(r.next_poll_at);
            if !due {
                continue;
            }
            if s.running.len() >= hub.settings().parallel {
                if let Some(f) = force {
                    hub.requests.lock().expect("sync requests poisoned").insert(r.id, f);
                }
                continue;
            }
            s.running.insert(r.id);
            s.started.insert(r.id, now);
            drop(s);
            spawn_sync(hub.clone(), pool.clone(), schedule.clone(), r, force.unwrap_or(false));
        }
        tokio::select! {
            _ = hub.wake.notified() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

fn spawn_sync(hub: Arc<SyncHub>, pool: DbPool, schedule: Arc<Mutex<Schedule>>, r: ConfigRef, force: bool) {
    tokio::spawn(async move {
        let id = r.id;
        let h = hub.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            h.syncer.sync(&mut conn, id, force).map_err(|e| e.to_string())
        })
        .await;
        let interval = i64::from(r.poll_interval_secs.max(1)) * 1000;
        let now = now_ms();
        let next = match &result {
            Ok(Ok(outcome)) => {
                match outcome {
                    Outcome::Unchanged { .. } | Outcome::Gone => {
                        tracing::debug!(config_ref = id, "{}", summary_line(&r, outcome))
                    }
                    Outcome::Applied { warnings, .. } => {
                        for w in warnings {
                            tracing::warn!(config_ref = id, warning = %w, "config ref warning");
                        }
                        tracing::info!(config_ref = id, "{}", summary_line(&r, outcome));
                    }
                    Outcome::Failed(_) => tracing::warn!(config_ref = id, "{}", summary_line(&r, outcome)),
                    Outcome::Busy => tracing::debug!(config_ref = id, "{}", summary_line(&r, outcome)),
                }
                match outcome {
                    Outcome::Failed(_) => now + backoff_secs(r.poll_interval_secs, r.failures + 1) * 1000,
                    // The holder is on it; look again soon in case a
                    // request came after it started.
                    Outcome::Busy => now + interval.min(2000),
                    _ => now + interval,
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(config_ref = id, error = %e, "sync failed on the database side");
                now + backoff_secs(r.poll_interval_secs, r.failures + 1) * 1000
            }
            Err(e) => {
                tracing::error!(config_ref = id, error = %e, "sync task failed");
                now + backoff_secs(r.poll_interval_secs, r.failures + 1) * 1000
            }
        };
        let mut s = schedule.lock().expect("schedule poisoned");
        s.running.remove(&id);
        s.next.insert(id, next);
        drop(s);
        hub.wake.notify_one();
    });
}

/// Watches the directories of local (`file://` or path) repositories and
/// asks for a sync of their refs when something changes there, debounced.
struct LocalWatch {
    watcher: notify::RecommendedWatcher,
    /// Watched directory -> refs using it.
    roots: Arc<Mutex<HashMap<PathBuf, Vec<i64>>>>,
}

/// Quiet time after the last change before the refs are synced, and the
/// longest a burst of changes may delay it.
const DEBOUNCE: Duration = Duration::from_millis(150);
const DEBOUNCE_MAX: Duration = Duration::from_millis(600);

impl LocalWatch {
    fn new(hub: Arc<SyncHub>) -> Option<LocalWatch> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                // Reads (our own fetches open files) are not changes.
                if !matches!(ev.kind, EventKind::Access(_)) {
                    let _ = tx.send(ev.paths);
                }
            }
        });
        let watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; local refs are polled only");
                return None;
            }
        };
        let roots: Arc<Mutex<HashMap<PathBuf, Vec<i64>>>> = Arc::default();
        let r2 = roots.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut paths = first;
                let deadline = tokio::time::Instant::now() + DEBOUNCE_MAX;
                loop {
                    let wait = DEBOUNCE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    match tokio::time::timeout(wait, rx.recv()).await {
                        Ok(Some(more)) => paths.extend(more),
                        Ok(None) => return,
                        Err(_) => break,
                    }
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
                let ids: HashSet<i64> = {
                    let roots = r2.lock().expect("watch roots poisoned");
                    paths
                        .iter()
                        .flat_map(|p| {
                            roots.iter().filter(|(root, _)| p.starts_with(root)).flat_map(|(_, ids)| ids.clone())
                        })
                        .collect()
                };
                for id in ids {
                    tracing::debug!(config_ref = id, "local repository changed");
                    hub.request(id, false);
                }
            }
        });
        Some(LocalWatch { watcher, roots })
    }

    fn update(&mut self, refs: &[ConfigRef]) {
        let mut want: HashMap<PathBuf, Vec<i64>> = HashMap::new();
        for r in refs {
            if let Some(p) = r.local_path() {
                let p = std::fs::canonicalize(&p).unwrap_or(p);
                want.entry(p).or_default().push(r.id);
            }
        }
        let mut roots = self.roots.lock().expect("watch roots poisoned");
        let old: Vec<PathBuf> = roots.keys().cloned().collect();
        for p in old.iter().filter(|p| !want.contains_key(*p)) {
            let _ = self.watcher.unwatch(p);
            roots.remove(p);
        }
        for (p, ids) in want {
            if !roots.contains_key(&p) {
                if !p.is_dir() {
                    continue;
                }
                if let Err(e) = self.watcher.watch(&p, RecursiveMode::Recursive) {
                    tracing::warn!(path = %p.display(), error = %e, "cannot watch local repository");
                    continue;
                }
            }
            roots.insert(p, ids);
        }
    }
}
