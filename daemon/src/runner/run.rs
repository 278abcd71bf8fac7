//! One run from start to end: check out the playbook tree, unpack the
//! bundle, start `ansible-playbook` in its own process group with an
//! explicit environment, take the callback's events from a Unix socket and
//! the process's output from pipes, and write both in batches.
//!
//! Nothing the run's process does waits for the database or Redis: the
//! socket and pipes are drained into memory at once, a writer task stores
//! batches in order (retrying while the database is away), and publishing
//! is fire-and-forget. The run's lease is renewed by its own task, which
//! also brings cancel requests made through other processes.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use craton::rollout::BatchStatus;
use craton::runs::{self, Counts, Ending, EventHead, Exit, RunSpec, RunStatus, Source, Tally};
use craton::store::config_refs::ConfigRef;
use craton::store::pool::DbPool;
use craton::store::rollouts::{BatchRow, BatchUpdate};
use craton::store::runs::{self as store_runs, Batch, Finish, Run};
use craton::store::{now_ms, StoreError};
use craton::windows::Common;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

use super::feed::Feed;
use super::workdir::{WorkDir, CALLBACK_NAME};
use super::{publish, CancelMode, RunHub};
use crate::api::windows::ts;
use crate::repo_policy::Actor;
use crate::sync::git::Access;

/// What `POST /v1/runs` hands the runner.
pub struct Launch {
    pub run: Run,
    pub spec: RunSpec,
    pub project: String,
    /// Who asked: root may use local repositories (the policy's rule).
    pub actor: Actor,
    pub config_ref: Option<ConfigRef>,
    pub bundle: Arc<craton::bundle::Bundle>,
    /// The bundle's client-mode vault password, when it carries secrets.
    pub vault_password: Option<craton::secrets::VaultPassword>,
    /// The commit to check out instead of the source's ref (a resumed
    /// rollout runs the tree its first batches ran).
    pub pin_commit: Option<String>,
}

/// Flush a batch this often, or sooner when it holds this many events.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
const FLUSH_EVENTS: usize = 5000;
/// Most events a writer that fell behind stores in one transaction.
const COALESCE_EVENTS: usize = 50_000;
/// Longest event line read from the socket; longer ones are dropped.
const MAX_LINE: usize = 4 << 20;
/// How long after ansible-playbook exits its events may still arrive.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);
/// Of the kept stdout, this much is the tail (the recap is at the end).
const STDOUT_TAIL: usize = 64 << 10;
/// A timed-out run gets SIGTERM, then SIGKILL after this.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The run as the API shows it.
pub fn run_json(r: &Run, project: &str) -> Value {
    let source: Value = serde_json::from_str(&r.source).unwrap_or(Value::Null);
    let mut source = source;
    if let Value::Object(m) = &mut source {
        m.insert("commit".into(), json!(r.git_commit));
    }
    let running = matches!(r.status(), RunStatus::Running | RunStatus::Queued);
    // Only on a queued run that waits, or a running one whose next batch
    // waits for approval (absent otherwise).
    let waiting_for = match (r.status(), &r.waiting_for) {
        (RunStatus::Queued | RunStatus::Running, Some(w)) => serde_json::from_str::<Value>(w).ok(),
        _ => None,
    };
    let mut out = json!({
        "id": r.id,
        "project": project,
        "status": r.status,
        "rc": r.rc,
        "reason": r.reason,
        "playbook": r.playbook,
        "source": source,
        "target": serde_json::from_str::<Value>(&r.target).unwrap_or(Value::Null),
        "options": serde_json::from_str::<Value>(&r.options).unwrap_or(Value::Null),
        "bundle_etag": r.bundle_etag,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "cancel_requested": r.cancel_requested,
        "counts": {
            "hosts": r.hosts_total,
            "ok": r.hosts_ok,
            "changed": r.hosts_changed,
            "failed": r.hosts_failed,
            "unreachable": r.hosts_unreachable,
            "skipped": r.hosts_skipped,
            "running": if running { (r.hosts_total - r.hosts_failed - r.hosts_unreachable).max(0) } else { 0 },
        },
        "events": {"received": r.events_received, "lost": r.events_lost},
        "stdout": {"bytes": r.stdout_bytes, "truncated": r.stdout_truncated},
    });
    if let Some(w) = waiting_for {
        out["waiting_for"] = w;
    }
    out
}

fn set_counts(r: &mut Run, c: &Counts) {
    r.hosts_total = c.hosts;
    r.hosts_ok = c.ok;
    r.hosts_changed = c.changed;
    r.hosts_failed = c.failed;
    r.hosts_unreachable = c.unreachable;
    r.hosts_skipped = c.skipped;
}

enum Write {
    Batch(Batch),
    Finish(Finish, oneshot::Sender<Result<bool, String>>),
}

/// Stores batches in order on a blocking thread; a database that is away
/// is retried (the batch stays queued, nothing is lost while the process
/// lives). A lost lease stops the run.
fn writer(
    pool: DbPool,
    id: i64,
    holder: String,
    lost: watch::Sender<Option<CancelMode>>,
    metrics: crate::metrics::RunMetrics,
) -> mpsc::UnboundedSender<Write> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
    tokio::spawn(async move {
        let mut lease_lost = false;
        let mut next: Option<Write> = None;
        loop {
            let w = match next.take() {
                Some(w) => w,
                None => match rx.recv().await {
                    Some(w) => w,
                    None => break,
                },
            };
            // Behind? Everything queued after this batch goes with it
            // (up to a Finish, which must come after every batch).
            let w = match w {
                Write::Batch(mut b) => {
                    while b.events.len() < COALESCE_EVENTS {
                        match rx.try_recv() {
                            Ok(Write::Batch(more)) => b.absorb(more),
                            Ok(fin) => {
                                next = Some(fin);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    Write::Batch(b)
                }
                fin => fin,
            };
            let mut attempt = 0u32;
            let mut w = Some(w);
            loop {
                let item = w.take().expect("write");
                let (p, h) = (pool.clone(), holder.clone());
                let m = metrics.clone();
                let (item, r) = tokio::task::spawn_blocking(move || {
                    let r = (|| {
                        let mut conn = p.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
                        match &item {
                            Write::Batch(b) => {
                                let start = std::time::Instant::now();
                                store_runs::flush(&mut conn, id, &h, b)?;
                                m.batch_stored(b.events.len(), start.elapsed());
                                Ok(true)
                            }
                            Write::Finish(f, _) => store_runs::finish(&mut conn, id, &h, f),
                        }
                    })();
                    (item, r)
                })
                .await
                .expect("writer task");
                match r {
                    Ok(done) => {
                        if let Write::Finish(_, reply) = item {
                            let _ = reply.send(Ok(done));
                        }
                        break;
                    }
                    Err(StoreError::Conflict(m)) => {
                        if !lease_lost {
                            tracing::error!(run = id, error = %m, "run lease lost: stopping the run");
                            lost.send_replace(Some(CancelMode::Immediate));
                            lease_lost = true;
                        }
                        if let Write::Finish(_, reply) = item {
                            let _ = reply.send(Err(m));
                        }
                        break;
                    }
                    Err(e) => {
                        attempt += 1;
                        if attempt % 10 == 1 {
                            tracing::warn!(run = id, error = %e, attempt, "storing run progress failed; retrying");
                        }
                        w = Some(item);
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
                    }
                }
            }
        }
    });
    tx
}

/// Renews the lease every third of it and brings cancel requests from the
/// database (made through any process).
fn lease_keeper(
    hub: &Arc<RunHub>,
    pool: DbPool,
    id: i64,
    cancel: watch::Sender<Option<CancelMode>>,
) -> tokio::task::JoinHandle<()> {
    let ttl = hub.settings.lease_ttl_ms;
    let holder = hub.settings.holder.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis((ttl / 3).max(100) as u64)).await;
            let (p, h) = (pool.clone(), holder.clone());
            let r = tokio::task::spawn_blocking(move || {
                let mut conn = p.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
                store_runs::renew(&mut conn, id, &h, ttl)
            })
            .await;
            match r {
                Ok(Ok(Some(mode))) => {
                    if let Some(m) = CancelMode::parse(&mode) {
                        cancel.send_if_modified(|c| {
                            let upgrade = *c != Some(m) && *c != Some(CancelMode::Immediate);
                            if upgrade {
                                *c = Some(m);
                            }
                            upgrade
                        });
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(StoreError::Conflict(_))) => {
                    tracing::error!(run = id, "run lease lost: stopping the run");
                    cancel.send_replace(Some(CancelMode::Immediate));
                    return;
                }
                Ok(Err(e)) => tracing::warn!(run = id, error = %e, "renewing the run lease failed"),
                Err(e) => tracing::error!(run = id, error = %e, "lease task failed"),
            }
        }
    })
}

/// Checks out the tree, unpacks the bundle, writes the callback.
fn prepare(hub: &RunHub, l: &Launch) -> Result<(WorkDir, PathBuf, String, Option<PathBuf>), String> {
    let wd = WorkDir::create(&hub.settings.runs_dir, l.run.id, hub.settings.keep_dirs)
        .map_err(|e| format!("creating the run's work directory under {}: {e}", hub.settings.runs_dir.display()))?;
    let sync = hub.sync.settings();
    let (url, git_ref, path, actor) = match (&l.spec.source, &l.config_ref) {
        (Source::Repo { repo, git_ref }, _) => (repo.clone(), git_ref.clone(), String::new(), l.actor),
        (Source::ConfigRef { .. }, Some(r)) => {
            (r.url.clone(), r.git_ref.clone(), r.path.clone(), Actor::root_if(r.created_by_root))
        }
        (Source::ConfigRef { config_ref }, None) => return Err(format!("config ref {config_ref} is gone")),
    };
    let git_ref = l.pin_commit.clone().unwrap_or(git_ref);
    sync.policy.check_repo_url(&l.project, &url, actor).map_err(|e| e.to_string())?;
    let access = Access {
        credentials: sync.policy.credentials_for(&l.project, &url, actor, &sync.credentials),
        follow_redirects: actor == Actor::Root,
    };
    let cache = &hub.sync.syncer.cache;
    let fetched = cache.fetch(&url, &git_ref, &access).map_err(|f| f.to_string())?;
    cache.materialize(&fetched, &path, &wd.project()).map_err(|f| f.to_string())?;
    let cwd = if path.is_empty() { wd.project() } else { wd.project().join(&path) };
    let playbook = cwd.join(&l.spec.playbook);
    let inside = playbook.canonicalize().ok().zip(cwd.canonicalize().ok()).is_some_and(|(p, c)| p.starts_with(c));
    if !playbook.is_file() || !inside {
        return Err(format!(
            "playbook {:?} does not exist at commit {} of {url}",
            l.spec.playbook,
            &fetched.commit[..12.min(fetched.commit.len())]
        ));
    }
    craton::bundle::unpack_tgz(&l.bundle.bytes, &wd.inventory()).map_err(|e| format!("unpacking the bundle: {e}"))?;
    let extra = if l.spec.options.extra_vars.is_empty() {
        None
    } else {
        Some(wd.write_extra_vars(&l.spec.options.extra_vars).map_err(|e| format!("writing extra vars: {e}"))?)
    };
    if let Some(pw) = &l.vault_password {
        wd.write_vault_password(pw).map_err(|e| format!("writing the vault password file: {e}"))?;
    }
    Ok((wd, cwd, fetched.commit, extra))
}

/// The run's environment: nothing of the daemon's but these, then the
/// project's `run_env`, then the callback's settings (last, so they win).
fn environment(hub: &RunHub, wd: &WorkDir, project: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for k in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME"]
        .iter()
        .map(|s| s.to_string())
        .chain(hub.settings.pass_env.iter().cloned())
    {
        if let Ok(v) = std::env::var(&k) {
            env.push((k, v));
        }
    }
    let own = hub.settings.project_env.get(project);
    if let Some(own) = own {
        env.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    // A project's own callbacks stay enabled beside ours.
    let joined = |key: &str, ours: String, sep: &str| match own.and_then(|o| o.get(key)).filter(|v| !v.is_empty()) {
        Some(theirs) => format!("{ours}{sep}{theirs}"),
        None => ours,
    };
    env.extend([
        ("ANSIBLE_CALLBACK_PLUGINS".into(), joined("ANSIBLE_CALLBACK_PLUGINS", path(wd.callback_dir()), ":")),
        ("ANSIBLE_CALLBACKS_ENABLED".into(), joined("ANSIBLE_CALLBACKS_ENABLED", CALLBACK_NAME.into(), ",")),
        ("CRATON_EVENTS_SOCKET".into(), path(wd.socket())),
        ("CRATON_EVENTS_SUMMARY".into(), path(wd.summary())),
        ("CRATON_EVENTS_MAX_RESULT_BYTES".into(), hub.settings.result_max_bytes.to_string()),
        ("CRATON_EVENTS_RUNNER_START".into(), if hub.settings.runner_start_events { "1" } else { "0" }.into()),
        ("ANSIBLE_FORCE_COLOR".into(), "0".into()),
        ("ANSIBLE_NOCOLOR".into(), "1".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ]);
    // The bundle's client script reads the password from the run's own
    // file: never on a command line, never in an environment.
    let client = wd.inventory().join("craton-vault-client");
    if wd.vault_password().exists() && client.exists() {
        env.push(("ANSIBLE_VAULT_IDENTITY_LIST".into(), format!("craton@{}", path(client))));
        env.push(("CRATON_VAULT_PASSWORD_FILE".into(), path(wd.vault_password())));
    }
    env
}

/// stdout kept within the cap: the head as it comes, then only a tail.
struct Output {
    max: usize,
    total: i64,
    head_left: usize,
    tail: std::collections::VecDeque<u8>,
    pending: Vec<u8>,
    seq: i32,
    omitted: bool,
}

impl Output {
    fn new(max: usize) -> Output {
        Output {
            max,
            total: 0,
            head_left: max.saturating_sub(STDOUT_TAIL),
            tail: Default::default(),
            pending: Vec::new(),
            seq: 0,
            omitted: false,
        }
    }

    fn add(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as i64;
        let n = bytes.len().min(self.head_left);
        self.pending.extend_from_slice(&bytes[..n]);
        self.head_left -= n;
        if n < bytes.len() {
            self.omitted = true;
            self.tail.extend(&bytes[n..]);
            let tail_cap = self.max.min(STDOUT_TAIL);
            while self.tail.len() > tail_cap {
                self.tail.pop_front();
            }
        }
    }

    /// The text to store now: whole UTF-8 characters (an incomplete one
    /// waits for its next bytes; invalid bytes become U+FFFD).
    fn take(&mut self, last: bool) -> Option<(i32, String)> {
        if last && self.omitted {
            let dropped = self.total - (self.max.saturating_sub(STDOUT_TAIL) + self.tail.len()) as i64;
            self.pending.extend_from_slice(format!("\n[craton: {dropped} bytes of output omitted]\n").as_bytes());
            self.pending.extend(self.tail.drain(..));
        }
        if self.pending.is_empty() {
            return None;
        }
        let keep = if last {
            self.pending.len()
        } else {
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => self.pending.len(),
            }
        };
        if keep == 0 {
            return None;
        }
        let rest = self.pending.split_off(keep);
        let text = String::from_utf8_lossy(&std::mem::replace(&mut self.pending, rest)).into_owned();
        self.seq += 1;
        Some((self.seq, text))
    }
}

fn signal_group(pid: u32, sig: i32) {
    // The child leads its own group (process_group(0)): -pid names all of it.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

/// SIGKILL of the group and of every process of the run in other groups
/// (ansible's workers make their own sessions; see [`super::reap`]).
fn kill_all(pid: u32, marker: &str) {
    signal_group(pid, libc::SIGKILL);
    super::reap::kill_marked("CRATON_EVENTS_SOCKET", marker);
}

fn signal_one(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Reads event lines from the first connection; ends at EOF (or when
/// aborted), closing the channel after the lines it read.
fn socket_reader(listener: tokio::net::UnixListener, tx: mpsc::UnboundedSender<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else { return };
        let mut r = BufReader::with_capacity(1 << 16, stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() != Some(&b'\n') && line.len() >= MAX_LINE {
                        // Over-long: skip to its end.
                        let mut skip = Vec::new();
                        let _ = r.read_until(b'\n', &mut skip).await;
                        tracing::warn!("dropped an over-long event line");
                        continue;
                    }
                    let s = String::from_utf8_lossy(&line).trim_end().to_string();
                    if !s.is_empty() && tx.send(s).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    })
}

fn pipe_reader(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: mpsc::UnboundedSender<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Runs a launched run to its end; every path ends with a final status.
pub async fn execute(
    hub: Arc<RunHub>,
    pool: DbPool,
    launch: Launch,
    feed: Arc<Feed>,
    cancel_rx: watch::Receiver<Option<CancelMode>>,
    cancel_tx: watch::Sender<Option<CancelMode>>,
) {
    let id = launch.run.id;
    let mut row = launch.run.clone();
    let project = launch.project.clone();
    let writes = writer(pool.clone(), id, hub.settings.holder.clone(), cancel_tx.clone(), hub.metrics.clone());
    let keeper = lease_keeper(&hub, pool.clone(), id, cancel_tx);
    feed.set_run(run_json(&row, &project));
    let outcome = drive(&hub, &pool, launch, &feed, &mut row, cancel_rx, &writes).await;
    let was = if row.status == RunStatus::Running.as_str() { RunStatus::Running } else { RunStatus::Queued };
    let (status, rc, reason, events_lost) = match outcome {
        Ok(done) => done,
        Err(reason) => {
            tracing::warn!(run = id, %reason, "run failed before ansible-playbook ran");
            (RunStatus::Error, None, Some(reason), false)
        }
    };
    let (reply, answer) = oneshot::channel();
    let fin = Finish { status, rc, reason: reason.clone(), events_lost };
    let _ = writes.send(Write::Finish(fin, reply));
    let recorded = answer.await.unwrap_or_else(|_| Err("writer stopped".into()));
    keeper.abort();
    if let Some(r) = stored_run(&pool, id).await {
        row = r;
    } else {
        row.status = status.as_str().into();
        row.rc = rc;
        row.reason = reason;
        row.events_lost = events_lost;
        row.finished_at = Some(now_ms());
    }
    let json = run_json(&row, &project);
    hub.metrics.finish(Some(was.as_str()), RunStatus::parse(&row.status).unwrap_or(status).as_str());
    tracing::info!(run = id, status = %row.status, rc = ?row.rc, recorded = ?recorded, "run finished");
    // Before the feed shows the end, so that whoever waits for the end
    // (`cratond run --local`) can flush the hook queue after it.
    hub.emit_hook(crate::hooks::RUN_FINISHED, &row, &json);
    feed.set_run(json.clone());
    hub.publish_status(id, &project, &json, true);
}

type Done = (RunStatus, Option<i32>, Option<String>, bool);

/// Run `id` as the database has it now (None: the database is away).
async fn stored_run(pool: &DbPool, id: i64) -> Option<Run> {
    let p = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = p.get().ok()?;
        store_runs::get(&mut conn, None, id).ok().flatten()
    })
    .await
    .ok()
    .flatten()
}

async fn drive(
    hub: &Arc<RunHub>,
    pool: &DbPool,
    launch: Launch,
    feed: &Arc<Feed>,
    row: &mut Run,
    mut cancel_rx: watch::Receiver<Option<CancelMode>>,
    writes: &mpsc::UnboundedSender<Write>,
) -> Result<Done, String> {
    let id = row.id;
    let project = launch.project.clone();
    let binary = hub.settings.resolve_playbook_binary()?;
    let spec = launch.spec.clone();
    let host_names: Vec<String> = {
        let p = pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            store_runs::hosts_of(&mut conn, id).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??
        .into_iter()
        .map(|h| h.host)
        .collect()
    };
    let h = hub.clone();
    let (wd, cwd, commit, extra) = tokio::task::spawn_blocking(move || prepare(&h, &launch))
        .await
        .map_err(|e| format!("preparing the run: {e}"))??;
    if cancel_rx.borrow().is_some() {
        return Ok((RunStatus::Canceled, None, Some("canceled before it started".into()), false));
    }
    // Maintenance windows: start only when every host is inside one, and
    // remember when the common window ends.
    let mut window_end = None;
    if spec.options.window != Some(runs::WindowPolicy::Ignore) {
        let now = hub.clock().now();
        let (p, proj, names) = (pool.clone(), project.clone(), host_names.clone());
        let c = tokio::task::spawn_blocking(move || super::window::common_for(&p, &proj, &names, now))
            .await
            .map_err(|e| e.to_string())??;
        match c {
            Common::NoWindows => {}
            Common::Open(i) => window_end = Some(i.end),
            Common::Never { searched_until } => {
                return Err(format!(
                    "its hosts are not all inside a maintenance window at once before {}",
                    ts(searched_until)
                ));
            }
            // The dispatcher claimed it inside its window, which closed
            // while the run was being prepared: waiting here would hold its
            // hosts until the next one.
            Common::Opens(i) => {
                return Err(format!(
                    "its maintenance window closed before it could start (the next opens at {})",
                    ts(i.start)
                ));
            }
        }
    }
    {
        let (p, holder, c) = (pool.clone(), hub.settings.holder.clone(), commit.clone());
        let started = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            store_runs::start(&mut conn, id, &holder, Some(&c)).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        if !started {
            return Err("the run was no longer queued when it was to start".into());
        }
    }
    row.status = RunStatus::Running.as_str().into();
    hub.metrics.enter(Some(RunStatus::Queued.as_str()), RunStatus::Running.as_str());
    row.git_commit = Some(commit);
    row.started_at = Some(now_ms());
    let json = run_json(row, &project);
    feed.set_run(json.clone());
    hub.publish_status(id, &project, &json, false);
    hub.emit_hook(crate::hooks::RUN_STARTED, row, &json);

    // A rolling run's batches (none: one ansible-playbook for all).
    let plan: Vec<BatchRow> = {
        let p = pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            craton::store::rollouts::of_run(&mut conn, id).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let plays: Vec<Option<&BatchRow>> = if plan.is_empty() { vec![None] } else { plan.iter().map(Some).collect() };
    let extra_s = extra.as_ref().map(|p| p.to_string_lossy().into_owned());
    let mut live = Live {
        tally: Tally::with_hosts(host_names.iter().map(String::as_str)),
        output: Output::new(hub.settings.stdout_max_bytes),
        batch: Batch::default(),
        bad_lines: 0,
    };
    let deadline = spec.options.timeout_s.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut ends: Vec<(PlayEnd, RunStatus, Option<i32>, Option<String>)> = Vec::new();
    let mut stop: Option<(RunStatus, String)> = None;
    let mut counter = 0i64;
    let mut window_closed = None;
    let n = plays.len();
    for (k, b) in plays.iter().enumerate() {
        if k > 0 {
            let next = b.map_or(0, |b| b.seq);
            let gap = Gap { spec: &spec, deadline, window_end, seq: next, project: &project };
            if let Some(why) = gap.wait(hub, pool, row, feed, &mut cancel_rx).await {
                stop = Some(why);
                break;
            }
        }
        let batch_file = match b {
            Some(b) => {
                let hosts = b.host_names();
                live.output.add(
                    format!(
                        "\n[craton: batch {} ({} of {n}): {} hosts: {}]\n",
                        b.seq,
                        k + 1,
                        hosts.len(),
                        hosts.join(", ")
                    )
                    .as_bytes(),
                );
                live.batch.rollout.push(BatchUpdate::Started { seq: b.seq, at: now_ms() });
                Some(wd.write_batch(b.seq, &hosts).map_err(|e| format!("writing the batch's limit file: {e}"))?)
            }
            None => None,
        };
        let batch_s = batch_file.as_ref().map(|p| p.to_string_lossy().into_owned());
        let play = Play {
            binary: &binary,
            wd: &wd,
            cwd: &cwd,
            args: spec.playbook_args(extra_s.as_deref(), batch_s.as_deref()),
            counter_start: counter,
            deadline,
            window_end,
            shutdown: spec.options.shutdown,
            // A rollout stops at its next batch boundary (the last batch's
            // boundary is its end: it finishes).
            stop_at_boundary: b.is_some(),
        };
        let end = match play.run(hub, &project, row, &mut live, feed, &mut cancel_rx, writes).await {
            Ok(end) => end,
            // A later batch that cannot start: the rollout stops there, with
            // what the earlier batches did kept (this batch is closed as
            // stopped with the run).
            Err(why) if k > 0 => {
                stop = Some((RunStatus::Error, why));
                break;
            }
            Err(why) => return Err(why),
        };
        counter = end.last_counter;
        window_closed = window_closed.or(end.window_closed);
        let (status, rc, reason) = runs::final_status(end.ending, end.recap_seen);
        if let Some(b) = b {
            let hosts = b.host_names();
            let failed = hosts
                .iter()
                .filter(|h| {
                    live.tally
                        .hosts
                        .get(*h)
                        .is_some_and(|s| matches!(s.status, runs::HostStatus::Failed | runs::HostStatus::Unreachable))
                })
                .count();
            let bstatus = if matches!(status, RunStatus::Successful | RunStatus::Failed) {
                BatchStatus::Done
            } else {
                BatchStatus::Stopped
            };
            let brow = BatchRow {
                status: bstatus.as_str().into(),
                rc,
                failed: failed as i32,
                reason: reason.clone(),
                finished_at: Some(now_ms()),
                ..(*b).clone()
            };
            live.batch.rollout.push(BatchUpdate::Ended {
                seq: b.seq,
                status: bstatus,
                rc,
                failed: failed as i32,
                reason: reason.clone(),
                at: now_ms(),
            });
            flush(&mut live, writes, row, feed, hub, &project, false);
            let mut json = run_json(row, &project);
            json["batch"] = brow.json();
            hub.emit_hook(crate::hooks::RUN_BATCH_FINISHED, row, &json);
            if let Some(p) = &hub.publisher {
                p.send(publish::run_channel(id), json!({"type": "batch", "batch": brow.json()}).to_string());
            }
            let more = k + 1 < n;
            if bstatus == BatchStatus::Stopped {
                ends.push((end, status, rc, reason));
                break;
            }
            if more {
                if let Some(why) = craton::rollout::stops(hosts.len(), failed, spec.options.max_fail_percentage) {
                    stop = Some((RunStatus::Failed, format!("batch {} {why}", b.seq)));
                    ends.push((end, status, rc, reason));
                    break;
                }
                if let Some(at) = end.window_closed {
                    stop = Some((RunStatus::Canceled, format!("maintenance window ended at {}", ts(at))));
                    ends.push((end, status, rc, reason));
                    break;
                }
            }
        }
        ends.push((end, status, rc, reason));
    }
    tally_end(&mut live, writes, row, feed, hub, &project);
    let events_lost = ends.iter().any(|(e, ..)| e.events_lost);
    let lost_notes: Vec<String> = ends.iter().filter_map(|(e, ..)| e.lost_note.clone()).collect();
    let (mut status, rc, mut reason) = combine(&ends, &live.tally);
    if ends.len() < plan.len() {
        let left: Vec<i32> = plan.iter().skip(ends.len()).map(|b| b.seq).collect();
        let rest = match (left.first(), left.last()) {
            (Some(a), Some(z)) if a == z => format!("batch {a} was not run"),
            (Some(a), Some(z)) => format!("batches {a}-{z} were not run"),
            _ => unreachable!("ends.len() < plan.len()"),
        };
        let why = match stop {
            Some((s, why)) => {
                // A stop never hides an error or a cancel of a batch.
                if !matches!(status, RunStatus::Error | RunStatus::Canceled) {
                    status = s;
                }
                format!("rollout stopped: {why}; {rest}")
            }
            None => format!("rollout stopped; {rest}"),
        };
        let why = format!("{why} (POST /v1/runs/{id}/resume runs them)");
        reason = Some(match reason {
            Some(r) => format!("{why}; {r}"),
            None => why,
        });
    }
    if events_lost {
        let note = lost_notes.join("; ");
        reason = Some(match reason {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    if let Some(end) = window_closed.filter(|_| status == RunStatus::Canceled) {
        let why = format!("maintenance window ended at {}", ts(end));
        if !reason.as_deref().is_some_and(|r| r.contains(&why)) {
            reason = Some(match reason {
                Some(r) => format!("{why}; {r}"),
                None => why,
            });
        }
    }
    drop(wd);
    Ok((status, rc, reason, events_lost))
}

/// The time between two batches of a rolling run.
struct Gap<'a> {
    spec: &'a RunSpec,
    deadline: Option<tokio::time::Instant>,
    window_end: Option<DateTime<Utc>>,
    /// The batch that comes next.
    seq: i32,
    project: &'a str,
}

impl Gap<'_> {
    /// Waits `pause_s` on the daemon's clock, then (approve_each_batch) for
    /// an admin's answer; a cancel, the timeout, the window's end or a
    /// denial meanwhile stops the rollout there. None: go on.
    async fn wait(
        &self,
        hub: &Arc<RunHub>,
        pool: &DbPool,
        row: &mut Run,
        feed: &Feed,
        cancel_rx: &mut watch::Receiver<Option<CancelMode>>,
    ) -> Option<(RunStatus, String)> {
        let clock = hub.clock();
        let resume_at = clock.now() + chrono::Duration::seconds(self.spec.options.pause_s.unwrap_or(0) as i64);
        let mut asked = false;
        let id = row.id;
        loop {
            if cancel_rx.borrow().is_some() {
                return Some((RunStatus::Canceled, "canceled between batches".into()));
            }
            if self.deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Some((RunStatus::Error, "timed out between batches".into()));
            }
            let now = clock.now();
            if let Some(end) = self.window_end.filter(|e| now >= *e) {
                return Some((RunStatus::Canceled, format!("maintenance window ended at {}", ts(end))));
            }
            if now >= resume_at {
                if !self.spec.options.approve_each_batch {
                    return None;
                }
                let (p, seq) = (pool.clone(), self.seq);
                let r = tokio::task::spawn_blocking(move || {
                    let mut conn = p.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    if !asked && !craton::store::rollouts::request_batch_approval(&mut conn, id, seq)? {
                        return Ok(Some(Err("the run was no longer running".to_string())));
                    }
                    craton::store::rollouts::batch_answer(&mut conn, id, seq)
                })
                .await
                .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
                match r {
                    Ok(answer) => {
                        if !asked {
                            asked = true;
                            row.waiting_for =
                                Some(json!({"batch_approval": {"seq": self.seq, "requested_by": null}}).to_string());
                            self.announce(hub, pool, row, feed, true).await;
                        }
                        match answer {
                            Some(Ok(())) => {
                                self.announce(hub, pool, row, feed, false).await;
                                return None;
                            }
                            Some(Err(why)) => return Some((RunStatus::Canceled, why)),
                            None => {}
                        }
                    }
                    // The database is away: ask again at the next poll.
                    Err(e) => tracing::warn!(run = id, error = %e, "reading the batch approval failed; retrying"),
                }
            }
            tokio::select! {
                _ = cancel_rx.changed() => {}
                _ = super::window::sleep_until(clock.clone(), resume_at) => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Shows the run as stored (its `waiting_for`) on the feed and Redis;
    /// on the first ask also to the hooks.
    async fn announce(&self, hub: &Arc<RunHub>, pool: &DbPool, row: &mut Run, feed: &Feed, asked: bool) {
        let id = row.id;
        if let Some(r) = stored_run(pool, id).await {
            row.waiting_for = r.waiting_for;
        } else if !asked {
            row.waiting_for = None;
        }
        let json = run_json(row, self.project);
        feed.set_run(json.clone());
        hub.publish_status(id, self.project, &json, false);
        if asked {
            hub.emit_hook(craton::hooks::RUN_WAITING_FOR_APPROVAL, row, &json);
        }
    }
}

/// The run's status from its plays' (one per batch): the first error or
/// cancel decides; else failed (host failures' exit bits together) if a
/// batch failed; else successful.
fn combine(
    ends: &[(PlayEnd, RunStatus, Option<i32>, Option<String>)],
    tally: &Tally,
) -> (RunStatus, Option<i32>, Option<String>) {
    if let Some((_, s, rc, r)) = ends.iter().find(|(_, s, ..)| !matches!(s, RunStatus::Successful | RunStatus::Failed))
    {
        return (*s, *rc, r.clone());
    }
    let failed: Vec<_> = ends.iter().filter(|(_, s, ..)| *s == RunStatus::Failed).collect();
    if failed.is_empty() {
        return (RunStatus::Successful, Some(0), None);
    }
    let rc = failed.iter().fold(0, |acc, (_, _, rc, _)| acc | rc.unwrap_or(0));
    // The exit code tells only the worst kind; the tally tells all.
    let c = tally.counts(false);
    let mut parts = Vec::new();
    if c.failed > 0 {
        parts.push(format!("{} failed", c.failed));
    }
    if c.unreachable > 0 {
        parts.push(format!("{} unreachable", c.unreachable));
    }
    let reason = if parts.is_empty() { failed[0].3.clone() } else { Some(format!("hosts {}", parts.join(", "))) };
    (RunStatus::Failed, Some(rc), reason)
}

/// A run's progress between flushes, shared by its plays.
struct Live {
    tally: Tally,
    output: Output,
    batch: Batch,
    bad_lines: i64,
}

/// What one ansible-playbook process left.
struct PlayEnd {
    ending: Ending,
    /// Whether its exit bits are about hosts (see [`runs::final_status`]).
    recap_seen: bool,
    events_lost: bool,
    lost_note: Option<String>,
    /// The window ended while it ran (and it was stopped, or, in a
    /// rollout, the rollout stops after it).
    window_closed: Option<DateTime<Utc>>,
    /// The highest counter it numbered: the next play counts on from here.
    last_counter: i64,
}

/// One ansible-playbook process of a run.
struct Play<'a> {
    binary: &'a std::path::Path,
    wd: &'a WorkDir,
    cwd: &'a std::path::Path,
    args: Vec<String>,
    counter_start: i64,
    deadline: Option<tokio::time::Instant>,
    window_end: Option<DateTime<Utc>>,
    shutdown: runs::Shutdown,
    /// At the window's end a graceful shutdown lets the process finish
    /// (the rollout stops after it) instead of interrupting it.
    stop_at_boundary: bool,
}

impl Play<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        hub: &Arc<RunHub>,
        project: &str,
        row: &mut Run,
        live: &mut Live,
        feed: &Arc<Feed>,
        cancel_rx: &mut watch::Receiver<Option<CancelMode>>,
        writes: &mpsc::UnboundedSender<Write>,
    ) -> Result<PlayEnd, String> {
        let id = row.id;
        let wd = self.wd;
        // Each play has its own socket and summary.
        let _ = std::fs::remove_file(wd.socket());
        let _ = std::fs::remove_file(wd.summary());
        let listener = tokio::net::UnixListener::bind(wd.socket()).map_err(|e| format!("event socket: {e}"))?;
        let mut env = environment(hub, wd, project);
        env.push(("CRATON_EVENTS_COUNTER_START".into(), self.counter_start.to_string()));
        let mut cmd = tokio::process::Command::new(self.binary);
        cmd.arg("-i")
            .arg(wd.inventory().join("hosts"))
            .args(&self.args)
            .current_dir(self.cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let pid = child.id().unwrap_or(0);
        let marker = wd.socket().to_string_lossy().into_owned();
        tracing::info!(run = id, pid, "ansible-playbook started");

        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<String>();
        // Aborted when their peer outlives ansible-playbook by too long; what
        // they had read is still processed.
        let mut readers = vec![socket_reader(listener, ev_tx)];
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        readers.push(pipe_reader(child.stdout.take().expect("stdout piped"), out_tx.clone()));
        readers.push(pipe_reader(child.stderr.take().expect("stderr piped"), out_tx));

        let received_before = live.tally.received;
        let bad_before = live.bad_lines;
        let stats_before = std::mem::replace(&mut live.tally.stats_seen, false);
        let mut canceled: Option<CancelMode> = None;
        let mut timed_out = false;
        let mut exit: Option<Exit> = None;
        let mut exited_at: Option<tokio::time::Instant> = None;
        let mut events_open = true;
        let mut output_open = true;
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut window_closed: Option<DateTime<Utc>> = None;
        let deadline = self.deadline;
        let window_end = self.window_end;

        let publisher = hub.publisher.clone();
        let on_event = |line: String, live: &mut Live| {
            hub.metrics.event_received();
            let head: EventHead = match serde_json::from_str(&line) {
                Ok(h) => h,
                Err(_) => {
                    live.bad_lines += 1;
                    return;
                }
            };
            live.tally.apply(&head);
            let json: Arc<str> = Arc::from(line.as_str());
            feed.push(head.counter, json.clone());
            if let Some(p) = &publisher {
                p.send(publish::run_channel(id), format!("{{\"type\":\"event\",\"event\":{json}}}"));
            }
            let created = if head.created > 0 { head.created } else { now_ms() };
            live.batch.events.push((head.counter, head.event, head.host, created, line));
        };

        loop {
            let drain_deadline = exited_at.map(|t| t + DRAIN_AFTER_EXIT);
            tokio::select! {
                line = ev_rx.recv(), if events_open => match line {
                    Some(l) => {
                        on_event(l, live);
                        if live.batch.events.len() >= FLUSH_EVENTS {
                            flush(live, writes, row, feed, hub, project, false);
                        }
                    }
                    None => events_open = false,
                },
                chunk = out_rx.recv(), if output_open => match chunk {
                    Some(c) => live.output.add(&c),
                    None => output_open = false,
                },
                status = child.wait(), if exit.is_none() => {
                    let s = status.map_err(|e| format!("waiting for ansible-playbook: {e}"))?;
                    exit = Some(match (s.code(), s.signal()) {
                        (Some(c), _) => Exit::Code(c),
                        (None, Some(sig)) => Exit::Signal(sig),
                        _ => Exit::Code(-1),
                    });
                    // Whatever is left (workers, ssh masters) goes too.
                    kill_all(pid, &marker);
                    exited_at = Some(tokio::time::Instant::now());
                },
                _ = cancel_rx.changed(), if exit.is_none() => {
                    let mode = *cancel_rx.borrow();
                    if let Some(m) = mode {
                        if canceled != Some(CancelMode::Immediate) {
                            tracing::info!(run = id, mode = m.as_str(), "canceling run");
                            canceled = Some(m);
                            match m {
                                CancelMode::Graceful => signal_one(pid, libc::SIGINT),
                                CancelMode::Immediate => kill_all(pid, &marker),
                            }
                        }
                    }
                },
                _ = super::window::sleep_until(hub.clock(), window_end.unwrap_or_default()), if window_end.is_some() && exit.is_none() && window_closed.is_none() => {
                    window_closed = window_end;
                    let m = match self.shutdown {
                        runs::Shutdown::Graceful if self.stop_at_boundary => None,
                        runs::Shutdown::Graceful => Some(CancelMode::Graceful),
                        runs::Shutdown::Immediate => Some(CancelMode::Immediate),
                    };
                    match m {
                        None => tracing::info!(run = id, "maintenance window ended; the rollout stops after this batch"),
                        Some(m) => {
                            tracing::info!(run = id, mode = m.as_str(), "maintenance window ended; stopping the run");
                            if canceled != Some(CancelMode::Immediate) {
                                canceled = Some(m);
                                match m {
                                    CancelMode::Graceful => signal_one(pid, libc::SIGINT),
                                    CancelMode::Immediate => kill_all(pid, &marker),
                                }
                            }
                        }
                    }
                },
                _ = async { tokio::time::sleep_until(deadline.expect("deadline")).await }, if deadline.is_some() && exit.is_none() && !timed_out => {
                    tracing::warn!(run = id, "run timed out; terminating its process group");
                    timed_out = true;
                    signal_group(pid, libc::SIGTERM);
                    kill_at = Some(tokio::time::Instant::now() + KILL_GRACE);
                },
                _ = async { tokio::time::sleep_until(kill_at.expect("kill_at")).await }, if kill_at.is_some() && exit.is_none() => {
                    kill_all(pid, &marker);
                    kill_at = None;
                },
                _ = async { tokio::time::sleep_until(drain_deadline.expect("drain")).await }, if drain_deadline.is_some() && !readers.is_empty() => {
                    if readers.iter().any(|r| !r.is_finished()) {
                        tracing::warn!(run = id, "event socket or output still open after ansible-playbook exited; closing");
                    }
                    for r in readers.drain(..) {
                        r.abort();
                    }
                },
                _ = tick.tick() => {
                    flush(live, writes, row, feed, hub, project, false);
                },
            }
            if exit.is_some() && !events_open && !output_open {
                break;
            }
        }
        let stats_seen = live.tally.stats_seen;
        live.tally.stats_seen = stats_before || stats_seen;
        let received = live.tally.received - received_before;
        let bad_lines = live.bad_lines - bad_before;
        let summary: Option<Value> = std::fs::read(wd.summary()).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let emitted = summary.as_ref().and_then(|s| s.get("emitted")).and_then(Value::as_i64);
        let dropped = summary.as_ref().and_then(|s| s.get("dropped")).and_then(Value::as_i64).unwrap_or(0);
        let exit = exit.expect("exited");
        let ending = if timed_out {
            Ending::TimedOut
        } else if canceled.is_some() {
            Ending::Canceled(exit)
        } else {
            Ending::Exited(exit)
        };
        let lost = match emitted {
            Some(e) => (e - received).max(bad_lines),
            None => bad_lines + dropped,
        };
        hub.metrics.events_lost(lost.max(0) as u64);
        let events_lost = dropped > 0
            || bad_lines > 0
            || emitted.is_some_and(|e| e > received)
            // No summary although events came: the callback stopped mid-play.
            // None at all: it never ran (a playbook Ansible could not parse).
            || (emitted.is_none() && received > 0 && matches!(ending, Ending::Exited(_)) && !stats_seen);
        // Without the recap, ansible's exit bits are not about hosts (a parse
        // error exits 4), unless the callback lost events it sent.
        let recap_seen = stats_seen || dropped > 0 || emitted.is_some_and(|e| e > received);
        let lost_note = events_lost.then(|| {
            format!(
                "events were lost (received {received}, the callback emitted {}, dropped {dropped})",
                emitted.map_or("an unknown number".into(), |e| e.to_string())
            )
        });
        let last_counter = live.tally.last_counter.max(self.counter_start + emitted.unwrap_or(0));
        Ok(PlayEnd { ending, recap_seen, events_lost, lost_note, window_closed, last_counter })
    }
}

/// Ends the tally (hosts never reported on become `not_run`) and stores
/// the last of the run's progress.
fn tally_end(
    live: &mut Live,
    writes: &mpsc::UnboundedSender<Write>,
    row: &mut Run,
    feed: &Feed,
    hub: &RunHub,
    project: &str,
) {
    live.tally.finish();
    flush(live, writes, row, feed, hub, project, true);
}

fn flush(
    live: &mut Live,
    writes: &mpsc::UnboundedSender<Write>,
    row: &mut Run,
    feed: &Feed,
    hub: &RunHub,
    project: &str,
    last: bool,
) {
    let Live { tally, output, batch, .. } = live;
    if let Some(chunk) = output.take(last) {
        batch.stdout.push(chunk);
    }
    let dirty = tally.take_dirty();
    if dirty.is_empty() && batch.is_empty() && !last {
        return;
    }
    batch.hosts = dirty.iter().filter_map(|n| tally.hosts.get(n).map(|h| (n.clone(), h.clone()))).collect();
    batch.counts = tally.counts(!last);
    batch.events_received = tally.received;
    batch.stdout_bytes = output.total;
    batch.stdout_truncated = output.omitted;
    let changed =
        (row.hosts_total, row.hosts_ok, row.hosts_changed, row.hosts_failed, row.hosts_unreachable, row.hosts_skipped)
            != (
                batch.counts.hosts,
                batch.counts.ok,
                batch.counts.changed,
                batch.counts.failed,
                batch.counts.unreachable,
                batch.counts.skipped,
            );
    set_counts(row, &batch.counts);
    row.events_received = batch.events_received;
    row.stdout_bytes = batch.stdout_bytes;
    row.stdout_truncated = batch.stdout_truncated;
    let _ = writes.send(Write::Batch(std::mem::take(batch)));
    if changed {
        let json = run_json(row, project);
        feed.set_run(json.clone());
        hub.publish_status(row.id, project, &json, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_head_and_tail_within_the_cap() {
        let mut o = Output::new(STDOUT_TAIL + 10);
        o.add(b"0123456789abc");
        let (_, head) = o.take(false).unwrap();
        assert_eq!(head, "0123456789");
        o.add(&vec![b'x'; STDOUT_TAIL + 5]);
        o.add(b"RECAP");
        let (_, rest) = o.take(true).unwrap();
        assert!(rest.contains("bytes of output omitted"), "{rest:.80}");
        assert!(rest.ends_with("RECAP"));
        assert!(o.omitted);
    }

    #[test]
    fn output_never_splits_a_character() {
        let mut o = Output::new(1 << 20);
        let s = "é".as_bytes();
        o.add(&s[..1]);
        assert!(o.take(false).is_none());
        o.add(&s[1..]);
        assert_eq!(o.take(false).unwrap().1, "é");
    }
}
