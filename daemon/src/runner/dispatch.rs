//! The dispatcher of one `cratond`: the process side of
//! `craton::store::queue`. A submitted run waits here (its launch, with
//! the bundle and any vault password, stays in this process's memory)
//! until a dispatch of its project claims it in the database; then it
//! runs through [`super::run::execute`]. One loop per process, woken by a
//! local submit, finish or cancel and by a short tick (runs of other
//! processes end without telling us). Each tick also renews the leases of
//! the runs waiting here, so a queued run outlives no dead process: its
//! lease expires and the sweeper turns it `lost`.
//!
//! Maintenance windows are decided here, before the claim: a run whose
//! window is not open waits with `waiting_for: {"window": ...}` and holds
//! no host.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use craton::runs::{RunStatus, WindowPolicy};
use craton::store::pool::DbPool;
use craton::store::runs as store_runs;
use craton::store::StoreError;
use craton::windows::Common;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::feed::Feed;
use super::run::{run_json, Launch};
use super::{CancelMode, RunHub};
use crate::api::windows::ts;

/// Longest pause between two dispatches.
const TICK: Duration = Duration::from_millis(500);
/// How long a run's window answer is reused (it loads the project's
/// inventory); a window edited meanwhile is seen after this.
const WINDOW_RECHECK: Duration = Duration::from_secs(5);

/// A run's last window answer: its `waiting_for` (None: not waiting),
/// valid until the clock reads `until` (the window's opening or end).
#[derive(Clone)]
pub(crate) struct WindowAnswer {
    wait: Option<Value>,
    until: DateTime<Utc>,
    at: Instant,
}

/// A run accepted by this process, not claimed yet.
pub(crate) struct Pending {
    pub launch: Launch,
    pub feed: Arc<Feed>,
    pub cancel_rx: watch::Receiver<Option<CancelMode>>,
    pub cancel_tx: watch::Sender<Option<CancelMode>>,
    pub window: Option<WindowAnswer>,
    /// The `waiting_for` its feed (SSE, Redis) last showed.
    pub waiting: Option<String>,
}

/// How often the loop runs: the tick, and at least three times a lease.
fn every(hub: &RunHub) -> Duration {
    TICK.min(Duration::from_millis((hub.settings.lease_ttl_ms / 3).max(50) as u64))
}

/// The dispatcher loop (started once per process, on the first launch).
pub(crate) async fn run_loop(hub: Arc<RunHub>, pool: DbPool) {
    loop {
        tokio::select! {
            _ = hub.wake.notified() => {}
            _ = tokio::time::sleep(every(&hub)) => {}
        }
        if let Err(e) = once(&hub, &pool).await {
            tracing::warn!(error = %e, "dispatching queued runs failed; retrying");
        }
    }
}

/// What one pending run is, for the blocking side.
struct Ask {
    id: i64,
    project_id: i64,
    project: String,
    windows: bool,
    /// Canceled through this process (`cancel_local`, the CLI's Ctrl-C).
    canceled: bool,
    window: Option<WindowAnswer>,
    waiting: Option<String>,
}

/// One dispatch: renew, drop what ended elsewhere (canceled, swept),
/// decide windows, claim, launch.
async fn once(hub: &Arc<RunHub>, pool: &DbPool) -> Result<(), String> {
    let asks: Vec<Ask> = hub
        .pending
        .lock()
        .expect("pending poisoned")
        .values()
        .map(|p| Ask {
            id: p.launch.run.id,
            project_id: p.launch.run.project_id,
            project: p.launch.project.clone(),
            windows: p.launch.spec.options.window != Some(WindowPolicy::Ignore),
            canceled: p.cancel_rx.borrow().is_some(),
            window: p.window.clone().filter(|w| w.at.elapsed() < WINDOW_RECHECK),
            waiting: p.waiting.clone(),
        })
        .collect();
    if asks.is_empty() {
        return Ok(());
    }
    let (p, holder, ttl, clock) = (pool.clone(), hub.settings.holder.clone(), hub.settings.lease_ttl_ms, hub.clock());
    type Out = (Vec<store_runs::Run>, Vec<i64>, Vec<(i64, WindowAnswer)>, Vec<store_runs::Run>);
    let (gone, claimed, answers, moved) = tokio::task::spawn_blocking(move || -> Result<Out, String> {
        let ids: Vec<i64> = asks.iter().map(|a| a.id).collect();
        let kept = {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            for a in asks.iter().filter(|a| a.canceled) {
                craton::store::queue::cancel_queued(&mut conn, a.project_id, a.id, "canceled while queued")
                    .map_err(|e| e.to_string())?;
            }
            craton::store::queue::renew_queued(&mut conn, &ids, &holder, ttl).map_err(|e| e.to_string())?
        };
        let mut gone = Vec::new();
        let mut conn = p.get().map_err(|e| e.to_string())?;
        for a in asks.iter().filter(|a| !kept.contains(&a.id)) {
            if let Some(r) = store_runs::get(&mut conn, None, a.id).map_err(|e| e.to_string())? {
                gone.push(r);
            }
        }
        drop(conn);
        let now = clock.now();
        let mut by_project: HashMap<i64, HashMap<i64, Value>> = HashMap::new();
        let mut answers = Vec::new();
        for a in asks.iter().filter(|a| kept.contains(&a.id)) {
            let waits = by_project.entry(a.project_id).or_default();
            if !a.windows {
                continue;
            }
            let answer = match a.window.clone().filter(|w| now < w.until) {
                Some(w) => w,
                None => {
                    let hosts: Vec<String> = {
                        let mut conn = p.get().map_err(|e| e.to_string())?;
                        let rows = store_runs::hosts_of(&mut conn, a.id).map_err(|e| e.to_string())?;
                        rows.into_iter().map(|h| h.host).collect()
                    };
                    let at = Instant::now();
                    let later = now + chrono::Duration::from_std(WINDOW_RECHECK).expect("recheck");
                    // Never (no common window ahead) is the run's own error
                    // when it starts; only a window that opens later is
                    // waited for.
                    let w = match super::window::common_for(&p, &a.project, &hosts, now)? {
                        Common::Opens(i) => WindowAnswer {
                            wait: Some(json!({"window": {"opens_at": ts(i.start), "closes_at": ts(i.end)}})),
                            until: i.start,
                            at,
                        },
                        Common::Open(i) => WindowAnswer { wait: None, until: i.end.min(later), at },
                        Common::NoWindows | Common::Never { .. } => WindowAnswer { wait: None, until: later, at },
                    };
                    answers.push((a.id, w.clone()));
                    w
                }
            };
            if let Some(w) = answer.wait {
                waits.insert(a.id, w);
            }
        }
        let mut claimed = Vec::new();
        let mut conn = p.get().map_err(|e| e.to_string())?;
        for (pid, waits) in &by_project {
            match craton::store::queue::dispatch(&mut conn, *pid, &holder, waits, now.timestamp_millis()) {
                Ok(c) => claimed.extend(c),
                Err(StoreError::Unavailable(m)) => return Err(m),
                Err(e) => tracing::warn!(project = pid, error = %e, "dispatching a project's runs failed"),
            }
        }
        // What still waits and now waits for something else: its live
        // feed says so (the page, SSE and Redis readers see the queue move).
        let still: Vec<i64> =
            asks.iter().filter(|a| kept.contains(&a.id) && !claimed.contains(&a.id)).map(|a| a.id).collect();
        let now_waiting = store_runs::waiting_of(&mut conn, &still).map_err(|e| e.to_string())?;
        let mut moved = Vec::new();
        for a in asks.iter().filter(|a| now_waiting.get(&a.id).is_some_and(|w| *w != a.waiting)) {
            if let Some(r) = store_runs::get(&mut conn, None, a.id).map_err(|e| e.to_string())? {
                moved.push(r);
            }
        }
        Ok((gone, claimed, answers, moved))
    })
    .await
    .map_err(|e| e.to_string())??;
    {
        let mut pending = hub.pending.lock().expect("pending poisoned");
        for (id, w) in answers {
            if let Some(p) = pending.get_mut(&id) {
                p.window = Some(w);
            }
        }
    }
    for r in moved {
        let Some(project) = ({
            let mut pending = hub.pending.lock().expect("pending poisoned");
            pending.get_mut(&r.id).map(|p| {
                p.waiting = r.waiting_for.clone();
                p.launch.project.clone()
            })
        }) else {
            continue;
        };
        let json = run_json(&r, &project);
        if let Some(f) = hub.feed(r.id) {
            f.set_run(json.clone());
        }
        hub.publish_status(r.id, &project, &json, false);
    }
    for r in gone {
        let Some(p) = hub.pending.lock().expect("pending poisoned").remove(&r.id) else { continue };
        // Ended while queued: canceled in the database (also a denied or
        // timed-out approval), skipped by its dependencies, or swept lost.
        let json = run_json(&r, &p.launch.project);
        hub.metrics.finish(Some(RunStatus::Queued.as_str()), r.status().as_str());
        tracing::info!(run = r.id, status = %r.status, "queued run ended before it started");
        p.feed.set_run(json.clone());
        hub.publish_status(r.id, &p.launch.project, &json, true);
        // A lost run's hook event comes from the sweeper that marked it.
        if matches!(r.status(), RunStatus::Canceled | RunStatus::Skipped) {
            hub.emit_hook(crate::hooks::RUN_FINISHED, &r, &json);
        }
        hub.unregister(r.id);
    }
    let claimed: HashSet<i64> = claimed.into_iter().collect();
    for id in claimed {
        let Some(p) = hub.pending.lock().expect("pending poisoned").remove(&id) else { continue };
        tracing::info!(run = id, "run claimed its hosts");
        let hub2 = hub.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            super::run::execute(hub2.clone(), pool, p.launch, p.feed, p.cancel_rx, p.cancel_tx).await;
            hub2.unregister(id);
            hub2.wake.notify_one();
        });
    }
    Ok(())
}
