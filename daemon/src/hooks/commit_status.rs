//! GitHub commit statuses of webhook-rule runs (issue 10, "Choreography"):
//! a rule with `commit_status` makes its run show on the commit it runs,
//! `pending` when the run is queued and `success` / `failure` / `error`
//! when it ends (`craton::commit_status` maps the states and builds the
//! body; `craton::store::commit_statuses` is the queue).
//!
//! This is a submodule of the outbound hooks because it is the same
//! delivery machinery, not a second one: statuses are rows in the
//! database from the moment they are queued, drained by the hooks'
//! deliverer task ([`super::HookHub`]: one claim per row, the hooks'
//! retry policy and backoff on the daemon's clock, the same HTTP agent).
//! Only a daemon with a token configured claims them.
//!
//! Who queues what, and why it cannot miss the final status: the webhook
//! rule's submitter queues `pending` once the run exists ([`submitted`]),
//! then looks at the run; the runner's `run.finished` ([`run_finished`],
//! from `super::emit_run`) queues the result when the run has a `pending`
//! row. A run that ends before its `pending` row is written is seen final
//! by the submitter; one that ends after is seen by the finisher; both
//! may queue it, and the unique key (run, event) keeps one.
//!
//! The token never leaves [`GitHubSettings`]: its `Debug` redacts it,
//! it is only ever put in the `Authorization` header, and errors carry the
//! URL and GitHub's answer, never the request's headers.

use std::sync::Arc;
use std::time::Instant;

use craton::commit_status as cs;
use craton::runs::RunStatus;
use craton::store::commit_statuses::{self as store_cs, CommitStatus, NewStatus};
use craton::store::hooks::{Attempt, Next};
use craton::store::runs::Run;
use craton::store::webhook_rules::RuleRecord;

use super::HookHub;
use crate::state::AppState;

/// Where and as whom statuses are sent (`CRATON_GITHUB_TOKEN`,
/// `CRATON_GITHUB_API_BASE`, `CRATON_PUBLIC_URL`).
#[derive(Clone)]
pub struct GitHubSettings {
    /// `Authorization: Bearer <token>`; None: this daemon sends no status.
    pub token: Option<String>,
    /// `https://api.github.com`, or GitHub Enterprise's
    /// `https://HOST/api/v3`.
    pub api_base: String,
    /// Where users reach this Craton: statuses link to the run's page
    /// under it; None: no `target_url`.
    pub public_url: Option<String>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        GitHubSettings { token: None, api_base: cs::DEFAULT_API_BASE.into(), public_url: None }
    }
}

impl std::fmt::Debug for GitHubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSettings")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("api_base", &self.api_base)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl GitHubSettings {
    pub fn from_env() -> Result<GitHubSettings, String> {
        let env = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let d = GitHubSettings::default();
        let api_base = env("CRATON_GITHUB_API_BASE").unwrap_or(d.api_base);
        craton::hooks::parse_url(&api_base).map_err(|e| format!("CRATON_GITHUB_API_BASE={api_base:?}: {e}"))?;
        let public_url = env("CRATON_PUBLIC_URL");
        if let Some(u) = &public_url {
            craton::hooks::parse_url(u).map_err(|e| format!("CRATON_PUBLIC_URL={u:?}: {e}"))?;
        }
        let token = env("CRATON_GITHUB_TOKEN");
        if token.as_deref().is_some_and(|t| t.chars().any(|c| c.is_control() || c == ' ')) {
            return Err("CRATON_GITHUB_TOKEN contains spaces or control characters".into());
        }
        Ok(GitHubSettings { token, api_base, public_url })
    }
}

/// What a match row says when a rule wants statuses this daemon cannot send.
pub const NO_TOKEN: &str = "commit_status: no CRATON_GITHUB_TOKEN is configured on the daemon that submitted the run; no commit status was sent";

fn run_status(run: &Run) -> Option<RunStatus> {
    RunStatus::parse(&run.status)
}

/// After a rule's run `run_id` was submitted: queues its `pending` status
/// (and its result, if it already ended). Returns what the match row
/// should say when no status will be sent (no token, a database error).
pub async fn submitted(
    state: &AppState,
    rule: &RuleRecord,
    run_id: i64,
    sha: &str,
    simulation: bool,
) -> Option<String> {
    if !rule.commit_status {
        return None;
    }
    let settings = &state.hooks.settings.github;
    if settings.token.is_none() {
        tracing::warn!(
            rule = rule.id,
            run = run_id,
            "webhook rule wants commit statuses, but CRATON_GITHUB_TOKEN is not set: none sent"
        );
        return Some(NO_TOKEN.into());
    }
    let new = NewStatus {
        project_id: rule.project_id,
        run_id,
        rule_id: rule.id,
        event: cs::QUEUED.into(),
        repository: rule.repository.clone(),
        sha: sha.to_string(),
        context: rule.context(),
        state: cs::github_state(RunStatus::Queued).into(),
        description: cs::description(run_id, RunStatus::Queued, simulation, None),
        target_url: settings.public_url.as_deref().map(|u| cs::target_url(u, run_id)),
        at: state.clock.now().timestamp_millis(),
    };
    let hub = state.hooks.clone();
    let r = state
        .db(move |conn| {
            store_cs::enqueue(conn, &new)?;
            // Written after the pending row is committed: a run that ended
            // before is final here; one that ends after finds the row.
            let run = craton::store::runs::get(conn, None, run_id)?;
            if let Some(run) = run.filter(|r| run_status(r).is_some_and(RunStatus::is_final)) {
                store_cs::enqueue(conn, &final_status(&new, &run))?;
            }
            Ok(())
        })
        .await;
    hub.wake.notify_one();
    match r {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(rule = rule.id, run = run_id, error = %e, "queueing a commit status failed");
            Some(format!("commit_status: not queued: {e}"))
        }
    }
}

/// The final status of `run`, from its `pending` one.
fn final_status(pending: &NewStatus, run: &Run) -> NewStatus {
    let status = run_status(run).unwrap_or(RunStatus::Error);
    // A pull request's run is a check (+ diff) run: say so.
    let simulation =
        serde_json::from_str::<serde_json::Value>(&run.options).is_ok_and(|o| o["check"].as_bool() == Some(true));
    NewStatus {
        event: cs::FINISHED.into(),
        state: cs::github_state(status).into(),
        description: cs::description(run.id, status, simulation, run.reason.as_deref()),
        ..pending.clone()
    }
}

fn as_new(s: &CommitStatus) -> NewStatus {
    NewStatus {
        project_id: s.project_id,
        run_id: s.run_id,
        rule_id: s.rule_id,
        event: s.event.clone(),
        repository: s.repository.clone(),
        sha: s.sha.clone(),
        context: s.context.clone(),
        state: s.state.clone(),
        description: s.description.clone(),
        target_url: s.target_url.clone(),
        at: s.created_at,
    }
}

/// A run reached a final status: if a rule queued its `pending` status,
/// queue the result. Returns at once (the database work is a task); must
/// be called inside the runtime.
pub fn run_finished(hub: &Arc<HookHub>, run: &Run) {
    // Only rule runs can have statuses: spare every other run the lookup.
    if !run.created_by.starts_with("webhook-rule:") || !run_status(run).is_some_and(RunStatus::is_final) {
        return;
    }
    let (hub, run, at) = (hub.clone(), run.clone(), hub.now_ms());
    tokio::spawn(async move {
        let p = hub.pool.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            let queued = store_cs::of_run(&mut conn, run.id).map_err(|e| e.to_string())?;
            let Some(pending) = queued.iter().find(|s| s.event == cs::QUEUED) else { return Ok(None) };
            let new = NewStatus { at, ..final_status(&as_new(pending), &run) };
            store_cs::enqueue(&mut conn, &new).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match r {
            Ok(Some(_)) => hub.wake.notify_one(),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "queueing a run's final commit status failed"),
        }
    });
}

impl HookHub {
    /// Claims due statuses, when this daemon has a token (else it leaves
    /// them to a daemon that has).
    pub(super) async fn claim_statuses(&self) -> Vec<CommitStatus> {
        if self.settings.github.token.is_none() {
            return Vec::new();
        }
        let (p, holder, now, ttl, limit) = (
            self.pool.clone(),
            self.settings.holder.clone(),
            self.now_ms(),
            self.settings.claim_ttl_ms(),
            self.settings.concurrency,
        );
        let r = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            store_cs::claim(&mut conn, &holder, now, craton::store::now_ms(), ttl, limit).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        r.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "claiming commit statuses failed");
            Vec::new()
        })
    }

    /// One attempt of a claimed status, recorded.
    pub(super) async fn attempt_status(self: Arc<Self>, s: CommitStatus) {
        let gh = self.settings.github.clone();
        let Some(token) = gh.token.clone() else { return };
        let number = s.attempts + 1;
        let url = cs::status_url(&gh.api_base, &s.repository, &s.sha);
        let body = cs::body(&s.state, &s.context, &s.description, s.target_url.as_deref()).to_string();
        let at = self.now_ms();
        let agent = self.agent.clone();
        let started = Instant::now();
        let u = url.clone();
        let (status, error) = tokio::task::spawn_blocking(move || post(&agent, &u, &token, body.as_bytes()))
            .await
            .unwrap_or_else(|e| (None, Some(format!("status task failed: {e}"))));
        let ok = status.is_some_and(|c| (200..300).contains(&c));
        let next = if ok {
            Next::Delivered
        } else {
            match self.settings.retry.delay_after(number as u32) {
                Some(d) => Next::RetryAt(at + d),
                None => Next::GiveUp,
            }
        };
        let ms = started.elapsed().as_millis() as u64;
        if ok {
            tracing::info!(run = s.run_id, state = %s.state, context = %s.context, attempt = number, ms, "commit status sent");
        } else {
            tracing::warn!(run = s.run_id, state = %s.state, url = %url, attempt = number, status = ?status, error = ?error, next = ?next, "commit status not sent");
        }
        let (p, holder) = (self.pool.clone(), self.settings.holder.clone());
        let r = tokio::task::spawn_blocking(move || {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            let a = Attempt { attempt: number, at, status_code: status, error, duration_ms: ms as i64 };
            store_cs::record_attempt(&mut conn, s.id, &holder, &a, next).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        // A failure to record leaves the claim to expire: the status is
        // sent again (GitHub keeps the latest per context, so no harm).
        if let Err(e) = r {
            tracing::error!(error = %e, "recording a commit status attempt failed");
        }
    }
}

/// POSTs a status; the response code or what went wrong (with at most a
/// little of GitHub's answer: its `message` says why).
fn post(agent: &ureq::Agent, url: &str, token: &str, body: &[u8]) -> (Option<i32>, Option<String>) {
    let req = agent
        .post(url)
        .header("Accept", "application/vnd.github+json")
        .header("Content-Type", "application/json")
        .header("User-Agent", "craton")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("Authorization", &format!("Bearer {token}"));
    match req.send(body) {
        Ok(mut resp) => {
            let code = resp.status().as_u16() as i32;
            let text = resp.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
            let error = (!(200..300).contains(&code)).then(|| {
                let said: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
                if said.is_empty() {
                    format!("answered HTTP {code}")
                } else {
                    format!("answered HTTP {code}: {said}")
                }
            });
            (Some(code), error)
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_out_of_debug() {
        let s = GitHubSettings { token: Some("ghp_s3cr3t".into()), ..GitHubSettings::default() };
        let d = format!("{s:?}");
        assert!(!d.contains("s3cr3t") && d.contains("redacted"), "{d}");
    }
}
