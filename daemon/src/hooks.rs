//! Outbound webhooks of `cratond`: events (a run queued, started,
//! finished) become deliveries in the database, and a background task per
//! daemon sends them, signed, with retries.
//!
//! Nothing here may slow a run: [`emit`] only hands the event to a channel;
//! one task per process stores it (in order, so a run's events queue in the
//! order they happened) and wakes the deliverer. The deliverer claims due
//! deliveries in the database (one daemon wins each: see
//! `craton::store::hooks`), POSTs them from blocking threads with the
//! project's ureq/rustls client (timeout set, no redirects followed) and
//! records each attempt. A failed attempt is retried after an exponential
//! backoff on the AppState's clock, so tests move time instead of waiting.
//!
//! The body is the envelope `{"event","delivery","timestamp","run"}` (the
//! run exactly as `GET /v1/runs/{id}` shows it), built the same way on every
//! attempt; `X-Craton-Signature-256: sha256=<hex>` is its HMAC-SHA256 with the
//! hook's secret, as GitHub's `X-Hub-Signature-256`.

use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use craton::clock::Clock;
use craton::hooks::RetryPolicy;
use craton::store::hooks::{self as store_hooks, Attempt, Claimed, Next};
use craton::store::pool::DbPool;
use craton::store::runs::Run;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

pub mod commit_status;

pub use craton::hooks::{RUN_BATCH_FINISHED, RUN_FINISHED, RUN_QUEUED, RUN_STARTED};

/// The signature header of every delivery.
pub const SIGNATURE_HEADER: &str = "X-Craton-Signature-256";

/// How the deliverer behaves (`CRATON_HOOK_*`).
#[derive(Debug, Clone)]
pub struct HookSettings {
    pub retry: RetryPolicy,
    /// Whole-request timeout of one attempt.
    pub timeout: Duration,
    /// How often the deliverer looks for due deliveries when nothing woke it
    /// (retries come due, other daemons queue).
    pub poll: Duration,
    /// Attempts in flight at once, per daemon.
    pub concurrency: usize,
    /// This daemon's name on its claims.
    pub holder: String,
    /// GitHub commit statuses of webhook-rule runs, sent by the same
    /// deliverer (`CRATON_GITHUB_*`, `CRATON_PUBLIC_URL`).
    pub github: commit_status::GitHubSettings,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

/// A name for this process's claims, unique per daemon.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut id = format!("{host}:{}:{:x}", std::process::id(), nanos & 0xffff_ffff);
    id.truncate(180);
    id
}

impl HookSettings {
    /// The defaults: 8 attempts, 10 s doubling to at most 1 h, 10 s
    /// timeout, a look every second, 8 at once.
    pub fn with(holder: String) -> HookSettings {
        HookSettings {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            concurrency: 8,
            holder,
            github: commit_status::GitHubSettings::default(),
        }
    }

    /// `CRATON_HOOK_MAX_ATTEMPTS`, `CRATON_HOOK_BACKOFF_MS`,
    /// `CRATON_HOOK_BACKOFF_MAX_MS`, `CRATON_HOOK_TIMEOUT_S`,
    /// `CRATON_HOOK_POLL_MS`, `CRATON_HOOK_CONCURRENCY`.
    pub fn from_env(holder: String) -> Result<HookSettings, String> {
        let d = HookSettings::with(holder);
        Ok(HookSettings {
            retry: RetryPolicy {
                max_attempts: number("CRATON_HOOK_MAX_ATTEMPTS", d.retry.max_attempts)?.max(1),
                base_ms: number("CRATON_HOOK_BACKOFF_MS", d.retry.base_ms)?.max(1),
                max_ms: number("CRATON_HOOK_BACKOFF_MAX_MS", d.retry.max_ms)?.max(1),
            },
            timeout: Duration::from_secs(number("CRATON_HOOK_TIMEOUT_S", 10u64)?.max(1)),
            poll: Duration::from_millis(number("CRATON_HOOK_POLL_MS", 1000u64)?.max(10)),
            concurrency: number("CRATON_HOOK_CONCURRENCY", d.concurrency)?.max(1),
            github: commit_status::GitHubSettings::from_env()?,
            ..d
        })
    }

    /// How long a claim lasts: longer than any attempt can take.
    fn claim_ttl_ms(&self) -> i64 {
        self.timeout.as_millis() as i64 + 30_000
    }
}

struct Emitted {
    project_id: i64,
    event: &'static str,
    subject: String,
    payload: String,
    at: i64,
}

/// The hooks of one daemon: the queue events go through and the deliverer.
pub struct HookHub {
    pool: DbPool,
    pub settings: HookSettings,
    clock: RwLock<Arc<dyn Clock>>,
    wake: Notify,
    queue: Mutex<Option<mpsc::UnboundedSender<Emitted>>>,
    /// Events emitted and not stored yet ([`Self::flush`] waits for 0).
    unstored: std::sync::atomic::AtomicUsize,
    stored: Notify,
    agent: ureq::Agent,
}

impl HookHub {
    pub fn new(pool: DbPool, settings: HookSettings) -> Arc<HookHub> {
        let agent = craton::http_client::agent_with(settings.timeout, None, false)
            .expect("an agent without a CA file always builds");
        Arc::new(HookHub {
            pool,
            settings,
            clock: RwLock::new(Arc::new(craton::clock::SystemClock)),
            wake: Notify::new(),
            queue: Mutex::default(),
            unstored: Default::default(),
            stored: Notify::new(),
            agent,
        })
    }

    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.clock.write().expect("clock poisoned") = clock;
    }

    fn now_ms(&self) -> i64 {
        self.clock.read().expect("clock poisoned").now().timestamp_millis()
    }

    /// Queues `event` about `subject` for project `project_id`'s hooks.
    /// Returns at once (never waits for the database); must be called
    /// inside the tokio runtime.
    pub fn emit(self: &Arc<Self>, project_id: i64, event: &'static str, subject: String, payload: &Value) {
        let e = Emitted { project_id, event, subject, payload: payload.to_string(), at: self.now_ms() };
        let mut q = self.queue.lock().expect("hook queue poisoned");
        let tx = q.get_or_insert_with(|| self.start_enqueuer());
        self.unstored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Err(mpsc::error::SendError(e)) = tx.send(e) {
            self.unstored.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            tracing::error!(event = e.event, subject = %e.subject, "hook queue closed: event not queued");
        }
    }

    /// Waits (at most `within`) until every event emitted so far is stored:
    /// for a process about to exit (`cratond run --local`, a shutdown).
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let stored = self.stored.notified();
            if self.unstored.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return true;
            }
            tokio::select! {
                _ = stored => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// The one task that stores emitted events, in order; a database that
    /// is away is retried (the events wait in memory meanwhile).
    fn start_enqueuer(self: &Arc<Self>) -> mpsc::UnboundedSender<Emitted> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Emitted>();
        let hub = self.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let e = Arc::new(e);
                let mut attempt = 0u32;
                loop {
                    let (p, ev) = (hub.pool.clone(), e.clone());
                    let r = tokio::task::spawn_blocking(move || {
                        let mut conn = p.get().map_err(|e| e.to_string())?;
                        store_hooks::enqueue(&mut conn, ev.project_id, ev.event, &ev.subject, &ev.payload, ev.at)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    match r {
                        Ok(ids) => {
                            hub.unstored.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                            hub.stored.notify_waiters();
                            if !ids.is_empty() {
                                tracing::debug!(event = e.event, subject = %e.subject, deliveries = ?ids, "hook deliveries queued");
                                hub.wake.notify_one();
                            }
                            break;
                        }
                        Err(err) => {
                            attempt += 1;
                            if attempt % 10 == 1 {
                                tracing::warn!(event = e.event, subject = %e.subject, error = %err, attempt, "queueing hook deliveries failed; retrying");
                            }
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))).await;
                        }
                    }
                }
            }
        });
        tx
    }

    /// Starts this daemon's deliverer; it runs until the handle is
    /// aborted or the runtime stops.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move { hub.deliver_loop().await })
    }

    async fn deliver_loop(self: Arc<Self>) {
        let limit = self.settings.concurrency;
        loop {
            let (p, holder, now, ttl) =
                (self.pool.clone(), self.settings.holder.clone(), self.now_ms(), self.settings.claim_ttl_ms());
            let claimed = tokio::task::spawn_blocking(move || {
                let mut conn = p.get().map_err(|e| e.to_string())?;
                store_hooks::claim(&mut conn, &holder, now, craton::store::now_ms(), ttl, limit)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming hook deliveries failed");
                    Vec::new()
                }
            };
            let statuses = self.claim_statuses().await;
            if claimed.is_empty() && statuses.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
                continue;
            }
            let mut set = tokio::task::JoinSet::new();
            for c in claimed {
                let hub = self.clone();
                set.spawn(async move { hub.attempt(c).await });
            }
            for s in statuses {
                set.spawn(self.clone().attempt_status(s));
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// One attempt of a claimed delivery, recorded.
    async fn attempt(self: Arc<Self>, c: Claimed) {
        let d = &c.delivery;
        let number = d.attempts + 1;
        let body = match envelope(d.event.as_str(), d.id, d.created_at, &d.payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(delivery = d.id, error = %e, "stored hook payload is not JSON");
                Vec::new()
            }
        };
        let at = self.now_ms();
        let (agent, target) = (self.agent.clone(), c.target.clone());
        let headers = vec![
            ("X-Craton-Event", d.event.clone()),
            ("X-Craton-Delivery", d.id.to_string()),
            ("X-Craton-Attempt", number.to_string()),
        ];
        let started = Instant::now();
        let (status, error) = tokio::task::spawn_blocking(move || post(&agent, &target, &headers, &body))
            .await
            .unwrap_or_else(|e| (None, Some(format!("delivery task failed: {e}"))));
        let duration_ms = started.elapsed().as_millis() as i64;
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let next = if ok {
            Next::Delivered
        } else {
            match self.settings.retry.delay_after(number as u32) {
                Some(delay) => Next::RetryAt(at + delay),
                None => Next::GiveUp,
            }
        };
        let a = Attempt { attempt: number, at, status_code: status, error: error.clone(), duration_ms };
        match next {
            Next::Delivered => {
                tracing::info!(delivery = d.id, event = %d.event, attempt = number, status = ?status, "hook delivered")
            }
            _ => {
                tracing::warn!(delivery = d.id, event = %d.event, attempt = number, status = ?status, error = ?error, next = ?next, "hook delivery failed")
            }
        }
        let (p, holder, id) = (self.pool.clone(), self.settings.holder.clone(), d.id);
        let mut tries = 0;
        loop {
            let (p, holder, a) = (p.clone(), holder.clone(), a.clone());
            let r = tokio::task::spawn_blocking(move || {
                let mut conn = p.get().map_err(|e| e.to_string())?;
                store_hooks::record_attempt(&mut conn, id, &holder, &a, next).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match r {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(delivery = id, "hook delivery claim was lost before its attempt was recorded");
                    return;
                }
                Err(e) => {
                    tries += 1;
                    if tries >= 10 {
                        // The claim expires and the delivery is tried again.
                        tracing::error!(delivery = id, error = %e, "recording a hook attempt failed");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
            }
        }
    }

    /// Drops this daemon's claims (at a clean shutdown).
    pub async fn release_claims(&self) {
        let (p, holder) = (self.pool.clone(), self.settings.holder.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            craton::store::commit_statuses::release(&mut conn, &holder).map_err(|e| e.to_string())?;
            store_hooks::release(&mut conn, &holder).map_err(|e| e.to_string())
        })
        .await;
    }
}

/// Queues a run event for the hooks of the run's project, if this process
/// has hooks. `json` is the run as the REST API shows it. The one function
/// the runner and the API call.
pub fn emit_run(hooks: Option<&Arc<HookHub>>, event: &'static str, run: &Run, json: &Value) {
    if let Some(h) = hooks {
        h.emit(run.project_id, event, format!("run:{}", run.id), json);
        if event == RUN_FINISHED {
            commit_status::run_finished(h, run);
        }
    }
}

/// The body of delivery `id`: the same bytes on every attempt.
pub fn envelope(event: &str, id: i64, created_at_ms: i64, payload: &str) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        event: &'a str,
        delivery: i64,
        timestamp: String,
        #[serde(flatten)]
        object: std::collections::BTreeMap<&'a str, &'a serde_json::value::RawValue>,
    }
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(payload)?;
    let kind = event.split('.').next().unwrap_or("object");
    let timestamp = DateTime::<Utc>::from_timestamp_millis(created_at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut object = std::collections::BTreeMap::new();
    object.insert(kind, &*raw);
    serde_json::to_vec(&Envelope { event, delivery: id, timestamp, object })
}

/// Whether a hook chosen by a project token may reach `url`'s host: only
/// when every address it resolves to is public (the repository policy's
/// rule for non-root URLs). Root's hooks may reach anything.
pub fn url_allowed(url: &str, created_by_root: bool) -> Result<(), String> {
    if created_by_root {
        return Ok(());
    }
    let (_, host, port) = craton::hooks::parse_url(url)?;
    let addrs: Vec<std::net::IpAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("host {host:?} does not resolve: {e}"))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(format!("host {host:?} does not resolve"));
    }
    if let Some(bad) = addrs.iter().find(|ip| !crate::repo_policy::is_public(**ip)) {
        return Err(format!(
            "host {host:?} resolves to {bad}, which is not a public address (only root may point hooks at internal addresses)"
        ));
    }
    Ok(())
}

/// POSTs `body` to the hook; the response code or what went wrong.
fn post(
    agent: &ureq::Agent,
    target: &store_hooks::HookTarget,
    headers: &[(&str, String)],
    body: &[u8],
) -> (Option<i32>, Option<String>) {
    if let Err(e) = url_allowed(&target.url, target.created_by_root) {
        return (None, Some(format!("refused: {e}")));
    }
    let signature = crate::sync::webhook::sign(target.secret.as_bytes(), body);
    let mut req = agent
        .post(&target.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("craton-hooks/", env!("CARGO_PKG_VERSION")))
        .header(SIGNATURE_HEADER, &signature);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.send(body) {
        Ok(resp) => {
            let code = resp.status().as_u16() as i32;
            // Read (a little of) the answer so the connection can be reused;
            // what it says is not kept.
            let mut resp = resp;
            let _ = resp.body_mut().with_config().limit(64 << 10).read_to_vec();
            let error = (!(200..300).contains(&code)).then(|| format!("answered HTTP {code}"));
            (Some(code), error)
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_the_same_bytes_every_time_and_carries_the_run() {
        let a = envelope("run.finished", 7, 1_764_700_000_123, r#"{"id":3,"status":"successful"}"#).unwrap();
        let b = envelope("run.finished", 7, 1_764_700_000_123, r#"{"id":3,"status":"successful"}"#).unwrap();
        assert_eq!(a, b);
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["event"], "run.finished");
        assert_eq!(v["delivery"], 7);
        assert_eq!(v["run"]["status"], "successful");
        assert_eq!(v["timestamp"], "2025-12-02T18:26:40.123Z");
    }

    #[test]
    fn project_hooks_reach_public_addresses_only() {
        assert!(url_allowed("http://127.0.0.1:9/h", true).is_ok());
        assert!(url_allowed("http://127.0.0.1:9/h", false).unwrap_err().contains("not a public address"));
        assert!(url_allowed("http://10.1.2.3/h", false).is_err());
        assert!(url_allowed("http://[::1]/h", false).is_err());
        assert!(url_allowed("http://8.8.8.8/h", false).is_ok());
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        let t =
            store_hooks::HookTarget { url: "http://x/".into(), secret: "s3cr3t-value".into(), created_by_root: false };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
