//! What a recorded GitHub delivery does to webhook rules (issue 10,
//! "Choreography"). `POST /v1/webhooks/github` records the delivery once
//! (the unique `X-GitHub-Delivery` key, see
//! `craton::store::webhook_rules`), then calls [`dispatch`]: the enabled
//! rules of every project that follow the event's repository and match it
//! (`craton::webhook_rules::matches`) each get a `pending` match row, the
//! delivery's outcome names them (or says "no rule matched"), and a
//! background task handles them one after the other:
//!
//! 1. a push rule with `sync` syncs the project's config refs that follow
//!    the pushed repository and ref first, on this process (the ref's
//!    lease still decides who syncs; another holder's sync is waited for
//!    until the ref reports the outcome). A failed sync is recorded on the
//!    match (`sync_failed`) and nothing is submitted;
//! 2. the template is submitted as the rule's creator
//!    (`crate::on_behalf::submit_as_creator`, as schedules do) with `ref`
//!    set to the event's commit; a pull request's run is `check` + `diff`
//!    on the head commit (a simulation: `created_by` says so, and the match
//!    row links rule, delivery and run);
//! 3. the match gets the run id or the refusal, and the delivery's outcome
//!    is written again from its matches; a rule with `commit_status` has
//!    its run's `pending` status queued for GitHub
//!    (`crate::hooks::commit_status`; without a token the match's `error`
//!    says no status is sent).
//!
//! At most once, as schedules: a daemon that dies after recording leaves
//! the matches `pending`; a replay of the delivery is a duplicate and does
//! not retry them (a deployment run twice is worse than one missed, and
//! the rows say so).

use std::sync::Arc;
use std::time::{Duration, Instant};

use craton::store::config_refs;
use craton::store::webhook_rules::{self as wr, RuleMatch, RuleRecord};
use craton::webhook_rules::{matches, run_body, Facts};
use serde_json::{json, Map, Value};

use crate::api::error::ApiError;
use crate::on_behalf::{submit_as_creator, Owner};
use crate::state::AppState;
use crate::sync::runner::Outcome;
use crate::sync::webhook::matching_refs;

/// How long a rule waits for another holder's sync of a ref to finish.
pub const SYNC_WAIT: Duration = Duration::from_secs(300);

/// A delivery's outcome from its matches and the config refs a push asked
/// to sync.
pub fn outcome_json(refs: &[i64], ms: &[RuleMatch]) -> Value {
    if ms.is_empty() {
        return json!({"status": "no rule matched", "refs": refs});
    }
    let rules: Vec<Value> = ms
        .iter()
        .map(|m| {
            json!({"rule_id": m.rule_id, "project_id": m.project_id, "status": m.status,
                "simulation": m.simulation, "sha": m.sha, "run_id": m.run_id, "error": m.error})
        })
        .collect();
    json!({"status": "matched", "refs": refs, "rules": rules})
}

async fn write_outcome(state: &AppState, delivery_id: i64, refs: &[i64]) -> Result<(), ApiError> {
    let refs = refs.to_vec();
    state
        .db(move |conn| {
            let ms = wr::matches_of(conn, delivery_id)?;
            Ok(wr::set_outcome(conn, delivery_id, &outcome_json(&refs, &ms).to_string())?)
        })
        .await
}

/// Matches a recorded delivery against the rules, records the matches and
/// starts handling them in the background; returns the ids of the rules
/// that matched. `refs`: the config refs the push asked to sync (kept in
/// the outcome).
pub async fn dispatch(
    state: &AppState,
    delivery_id: i64,
    guid: String,
    facts: Facts,
    payload: Arc<Value>,
    refs: Vec<i64>,
) -> Result<Vec<i64>, ApiError> {
    let mut rules: Vec<RuleRecord> = Vec::new();
    if let (true, Some(repo)) = (facts.actionable(), facts.repository.clone()) {
        let event = facts.event.clone();
        let all = state.db(move |conn| Ok(wr::candidates(conn, &event, &repo)?)).await?;
        rules = all.into_iter().filter(|r| matches(&r.spec(), &facts, &payload)).collect();
    }
    let ids: Vec<i64> = rules.iter().map(|r| r.id).collect();
    if !rules.is_empty() {
        let pairs: Vec<(i64, i64)> = rules.iter().map(|r| (r.id, r.project_id)).collect();
        let (sim, sha) = (facts.simulation(), facts.sha.clone());
        let now = state.clock.now().timestamp_millis();
        state.db(move |conn| Ok(wr::add_matches(conn, delivery_id, &pairs, sim, sha.as_deref(), now)?)).await?;
    }
    write_outcome(state, delivery_id, &refs).await?;
    if !rules.is_empty() {
        let st = state.clone();
        tokio::spawn(async move {
            for rule in rules {
                if let Err(e) = handle(&st, delivery_id, &guid, &rule, &facts, &payload).await {
                    tracing::warn!(rule = rule.id, delivery = %guid, error = %e, "webhook rule not handled");
                }
                if let Err(e) = write_outcome(&st, delivery_id, &refs).await {
                    tracing::warn!(delivery = %guid, error = %e, "webhook delivery outcome not written");
                }
            }
        });
    }
    Ok(ids)
}

async fn set(
    state: &AppState,
    delivery_id: i64,
    rule: i64,
    status: &'static str,
    run: Option<i64>,
    error: Option<String>,
) -> Result<(), ApiError> {
    let now = state.clock.now().timestamp_millis();
    state.db(move |conn| Ok(wr::set_match(conn, delivery_id, rule, status, run, error.as_deref(), now)?)).await
}

/// One matched rule: sync if asked, submit, record.
async fn handle(
    state: &AppState,
    delivery_id: i64,
    guid: &str,
    rule: &RuleRecord,
    facts: &Facts,
    payload: &Value,
) -> Result<(), ApiError> {
    let Some(sha) = facts.sha.as_deref() else { return Ok(()) };
    // A pull request is not merged: there is nothing of it to sync.
    if rule.sync && facts.event == "push" {
        set(state, delivery_id, rule.id, "syncing", None, None).await?;
        if let Err(e) = sync_refs(state, rule.project_id, payload).await {
            tracing::warn!(rule = rule.id, delivery = %guid, error = %e, "webhook rule: sync failed, no run");
            return set(state, delivery_id, rule.id, "sync_failed", None, Some(e)).await;
        }
    }
    let template: Map<String, Value> = match serde_json::from_str(&rule.template) {
        Ok(Value::Object(m)) => m,
        _ => {
            let e = "the stored template is not a JSON object".to_string();
            return set(state, delivery_id, rule.id, "refused", None, Some(e)).await;
        }
    };
    let body = run_body(&template, sha, facts.simulation());
    let label = match (facts.simulation(), facts.number) {
        (true, Some(n)) => format!("webhook-rule:{} simulation pr#{n}", rule.id),
        (true, None) => format!("webhook-rule:{} simulation", rule.id),
        _ => format!("webhook-rule:{}", rule.id),
    };
    let owner = Owner {
        what: "webhook rule",
        project_id: rule.project_id,
        creator: &rule.creator,
        created_by: &rule.created_by,
    };
    match submit_as_creator(state, &owner, &body, &label).await {
        Ok(run) => {
            tracing::info!(rule = rule.id, delivery = %guid, run, sha, "webhook rule submitted a run");
            // A rule with commit_status: `pending` on the commit now, the
            // result when the run ends; the note when none will be sent.
            let note = crate::hooks::commit_status::submitted(state, rule, run, sha, facts.simulation()).await;
            set(state, delivery_id, rule.id, "submitted", Some(run), note).await
        }
        Err(e) => {
            tracing::warn!(rule = rule.id, delivery = %guid, error = %e, "webhook rule: run refused");
            set(state, delivery_id, rule.id, "refused", None, Some(e)).await
        }
    }
}

/// Syncs the config refs of project `pid` that follow the push, each to
/// its end; the first failure as text.
async fn sync_refs(state: &AppState, pid: i64, payload: &Value) -> Result<(), String> {
    let Some(hub) = state.sync.clone() else {
        return Err("this cratond process has no sync workers".into());
    };
    let p = payload.clone();
    let ids: Vec<i64> = state
        .db(move |conn| {
            let refs = config_refs::list(conn, Some(pid))?;
            Ok(matching_refs(&p, &refs).iter().map(|r| r.id).collect())
        })
        .await
        .map_err(|e| e.to_string())?;
    for id in ids {
        let start = Instant::now();
        loop {
            let (h, pool) = (hub.clone(), state.pool.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                h.syncer.sync(&mut conn, id, false).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("config ref {id}: sync task failed: {e}"))??;
            match outcome {
                Outcome::Applied { .. } | Outcome::Unchanged { .. } | Outcome::Gone => break,
                Outcome::Failed(f) => return Err(format!("config ref {id}: {f}")),
                // Another holder is syncing it: wait and look again (its
                // sync ends with the commit applied, the next one sees it
                // unchanged).
                Outcome::Busy => {
                    if start.elapsed() > SYNC_WAIT {
                        return Err(format!("config ref {id}: another daemon's sync did not end in {SYNC_WAIT:?}"));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    Ok(())
}
