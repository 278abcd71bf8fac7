//! Runs of `ansible-playbook` in `cratond`: the process side of
//! `craton::runs` and `craton::store::runs`. [`RunHub`] is what the API
//! reaches: it queues a run until the database lets it claim its hosts
//! ([`dispatch`]), then runs it ([`run`]: work directory, subprocess, event
//! socket, batched writes), keeps the live feed SSE clients read
//! ([`feed`]), passes cancel requests, publishes to Redis ([`publish`])
//! and sweeps runs whose process died into `lost`.

pub mod dispatch;
pub mod feed;
pub mod publish;
pub mod reap;
pub mod run;
pub mod settings;
pub mod window;
pub mod workdir;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use craton::store::pool::DbPool;
use tokio::sync::watch;

pub use feed::Feed;
pub use settings::RunSettings;

/// How a cancel asks Ansible to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// SIGINT to ansible-playbook: it stops after the current task.
    Graceful,
    /// SIGKILL to the whole process group.
    Immediate,
}

impl CancelMode {
    pub fn parse(s: &str) -> Option<CancelMode> {
        match s {
            "graceful" => Some(CancelMode::Graceful),
            "immediate" => Some(CancelMode::Immediate),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CancelMode::Graceful => "graceful",
            CancelMode::Immediate => "immediate",
        }
    }
}

/// How long a finished run's feed stays in memory for late SSE readers
/// (after that they read the database).
const FEED_LINGER: Duration = Duration::from_secs(60);

pub struct RunHub {
    pub settings: RunSettings,
    pub sync: Arc<crate::sync::SyncHub>,
    pub publisher: Option<publish::Publisher>,
    /// Runs and event ingest of this process (served at /metrics).
    pub metrics: crate::metrics::RunMetrics,
    feeds: Mutex<HashMap<i64, Arc<Feed>>>,
    cancels: Mutex<HashMap<i64, watch::Sender<Option<CancelMode>>>>,
    /// "Now" for maintenance windows: the AppState's clock (set with it).
    clock: std::sync::RwLock<Arc<dyn craton::clock::Clock>>,
    /// Runs this process accepted that have not claimed their hosts yet.
    pending: Mutex<HashMap<i64, dispatch::Pending>>,
    /// Wakes the dispatcher (a submit, a finish, a cancel).
    wake: tokio::sync::Notify,
    dispatcher: std::sync::Once,
    /// Outbound webhooks run events go to (the AppState's, set with it).
    hooks: std::sync::RwLock<Option<Arc<crate::hooks::HookHub>>>,
}

impl RunHub {
    /// Must be called inside the tokio runtime when Redis is configured.
    pub fn new(settings: RunSettings, sync: Arc<crate::sync::SyncHub>) -> Result<Arc<RunHub>, String> {
        let publisher = settings.redis_url.as_deref().map(publish::Publisher::start).transpose()?;
        Ok(Arc::new(RunHub {
            settings,
            sync,
            publisher,
            metrics: Default::default(),
            feeds: Mutex::default(),
            cancels: Mutex::default(),
            clock: std::sync::RwLock::new(Arc::new(craton::clock::SystemClock)),
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            dispatcher: std::sync::Once::new(),
            hooks: Default::default(),
        }))
    }

    pub fn set_clock(&self, clock: Arc<dyn craton::clock::Clock>) {
        *self.clock.write().expect("clock poisoned") = clock;
    }

    pub fn clock(&self) -> Arc<dyn craton::clock::Clock> {
        self.clock.read().expect("clock poisoned").clone()
    }

    pub fn set_hooks(&self, hooks: Arc<crate::hooks::HookHub>) {
        *self.hooks.write().expect("hooks poisoned") = Some(hooks);
    }

    /// Queues a hook event about a run (see [`crate::hooks::emit_run`]).
    pub fn emit_hook(&self, event: &'static str, run: &craton::store::runs::Run, json: &serde_json::Value) {
        crate::hooks::emit_run(self.hooks.read().expect("hooks poisoned").as_ref(), event, run, json);
    }

    /// The live feed of a run this process is running (or just ran).
    pub fn feed(&self, id: i64) -> Option<Arc<Feed>> {
        self.feeds.lock().expect("feeds poisoned").get(&id).cloned()
    }

    /// Asks the dispatcher to look at the queue now (an approval was
    /// answered) instead of at its next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Passes a cancel to the run if this process runs it (others learn
    /// it from the database at their next lease renewal); a queued run's
    /// cancel is already final in the database, and the dispatcher drops it.
    pub fn cancel_local(&self, id: i64, mode: CancelMode) {
        self.wake.notify_one();
        if let Some(tx) = self.cancels.lock().expect("cancels poisoned").get(&id) {
            tx.send_modify(|m| {
                if *m != Some(CancelMode::Immediate) {
                    *m = Some(mode);
                }
            });
        }
    }

    fn register(&self, id: i64) -> (Arc<Feed>, watch::Receiver<Option<CancelMode>>, watch::Sender<Option<CancelMode>>) {
        let feed = Feed::new();
        self.feeds.lock().expect("feeds poisoned").insert(id, feed.clone());
        let (tx, rx) = watch::channel(None);
        self.cancels.lock().expect("cancels poisoned").insert(id, tx.clone());
        (feed, rx, tx)
    }

    fn unregister(self: &Arc<Self>, id: i64) {
        self.cancels.lock().expect("cancels poisoned").remove(&id);
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FEED_LINGER).await;
            hub.feeds.lock().expect("feeds poisoned").remove(&id);
        });
    }

    /// Publishes a status change of a run (run JSON) to Redis.
    pub fn publish_status(&self, id: i64, project: &str, run: &serde_json::Value, end: bool) {
        if let Some(p) = &self.publisher {
            let kind = if end { "end" } else { "status" };
            p.send(publish::run_channel(id), serde_json::json!({"type": kind, "run": run}).to_string());
            p.send(publish::project_channel(project), run.to_string());
        }
    }

    /// Queues a created run: the dispatcher starts it once it may claim
    /// its hosts (see [`dispatch`]). Must be called inside the runtime.
    pub fn launch(self: &Arc<Self>, pool: DbPool, launch: run::Launch) {
        let id = launch.run.id;
        let (feed, cancel_rx, cancel_tx) = self.register(id);
        feed.set_run(run::run_json(&launch.run, &launch.project));
        self.metrics.enter(None, craton::runs::RunStatus::Queued.as_str());
        self.pending
            .lock()
            .expect("pending poisoned")
            .insert(id, dispatch::Pending { launch, feed, cancel_rx, cancel_tx, window: None, waiting: None });
        self.dispatcher.call_once(|| {
            tokio::spawn(dispatch::run_loop(self.clone(), pool));
        });
        self.wake.notify_one();
    }

    /// Runs of this process still waiting in the queue.
    pub fn pending_count(&self) -> usize {
        self.pending.lock().expect("pending poisoned").len()
    }

    /// Every half lease: runs whose process stopped become `lost`.
    pub fn start_sweeper(self: &Arc<Self>, pool: DbPool) {
        let hub = self.clone();
        let every = Duration::from_millis((self.settings.lease_ttl_ms / 2).max(500) as u64);
        tokio::spawn(async move {
            loop {
                let p = pool.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let mut conn = p.get().map_err(|e| e.to_string())?;
                    let ids = craton::store::runs::sweep_lost(&mut conn, craton::store::now_ms())
                        .map_err(|e| e.to_string())?;
                    // For the hooks' run.finished: each run as the API shows it.
                    let mut lost = Vec::new();
                    for id in &ids {
                        if let Ok(Some(run)) = craton::store::runs::get(&mut conn, None, *id) {
                            if let Ok(Some(p)) = craton::store::project_by_id(&mut conn, run.project_id) {
                                lost.push((run, p.name));
                            }
                        }
                    }
                    Ok::<_, String>((ids, lost))
                })
                .await;
                if let Ok(Ok((_, lost))) = &r {
                    for (run, project) in lost {
                        hub.emit_hook(crate::hooks::RUN_FINISHED, run, &run::run_json(run, project));
                    }
                }
                let r = r.map(|r| r.map(|(ids, _)| ids));
                match r {
                    Ok(Ok(ids)) if !ids.is_empty() => {
                        tracing::warn!(runs = ?ids, "runs whose process stopped are now lost");
                        for id in ids {
                            hub.metrics.finish(None, craton::runs::RunStatus::Lost.as_str());
                            if let Some(p) = &hub.publisher {
                                p.send(
                                    publish::run_channel(id),
                                    serde_json::json!({"type": "end", "run": {"id": id, "status": "lost"}}).to_string(),
                                );
                            }
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "sweeping lost runs failed"),
                    Err(e) => tracing::error!(error = %e, "lost-run sweeper task failed"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
}
