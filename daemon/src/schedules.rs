//! The schedule ticker: every `cratond serve` process runs one. Each tick
//! reads "now" from the [`AppState`] clock (tests move a manual one), asks
//! the database for enabled schedules whose next run is due, and for each
//! computes the plan (`craton::schedules::plan`: the occurrence to handle,
//! whether to run it under `catch_up`, the next one), then:
//!
//! claim (`craton::store::schedules::claim`: one transaction moving
//! `next_run_at` and inserting the `(schedule, occurrence)` firing row) →
//! submit through `api::runs::submit`, as the creator → record the run id
//! or the error on the firing row. A daemon that loses the claim does
//! nothing, so an occurrence is handled once however many daemons tick.
//!
//! At most once: a daemon that dies between claim and submit leaves the
//! firing `claimed` without a run; the occurrence is not retried (a
//! deployment run twice is worse than one missed, and the row says so).

use std::sync::Arc;
use std::time::Duration;

use craton::schedules::plan;
use craton::store::schedules::{self as ss, Claim, ScheduleRecord};
use serde_json::{Map, Value};

use crate::api::error::ApiError;
use crate::on_behalf::{submit_as_creator, Owner};
use crate::state::AppState;

/// How often a production daemon looks for due schedules.
pub const TICK: Duration = Duration::from_secs(5);

/// Starts the ticker of this process, looking every `every` (wall time).
pub fn start(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = tick(&state).await {
                tracing::warn!(error = %e, "schedule tick failed");
            }
        }
    })
}

/// This process's name in firing rows (its runner's lease holder).
pub(crate) fn holder(state: &AppState) -> String {
    state.runs.as_ref().map_or_else(|| format!("pid {}", std::process::id()), |h| h.settings.holder.clone())
}

/// One tick: handles every due schedule; returns how many runs this
/// process submitted.
pub async fn tick(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let now_ms = now.timestamp_millis();
    let due = state.db(move |conn| Ok(ss::due(conn, now_ms)?)).await?;
    let holder = Arc::new(holder(state));
    let mut submitted = 0;
    for s in due {
        let Some(next_due) = s.next_run_at.and_then(chrono::DateTime::from_timestamp_millis) else { continue };
        let rec = match s.recurrence() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(schedule = s.id, error = %e, "stored schedule rule does not parse");
                continue;
            }
        };
        let p = plan(&rec, next_due, now, s.catch_up());
        let occurrence = p.occurrence.map(|o| o.timestamp_millis());
        let new_next = p.next.map(|n| n.timestamp_millis());
        let h = holder.clone();
        let (sid, expected) = (s.id, next_due.timestamp_millis());
        let fire = p.fire;
        let missed = p.missed as i64;
        let claimed = state
            .db(move |conn| match occurrence {
                Some(occurrence) => Ok(ss::claim(
                    conn,
                    &Claim {
                        schedule_id: sid,
                        expected_next: expected,
                        occurrence,
                        fire,
                        missed,
                        new_next,
                        holder: &h,
                        now_ms,
                    },
                )?),
                None => {
                    ss::advance(conn, sid, expected, new_next)?;
                    Ok(None)
                }
            })
            .await?;
        let Some(firing) = claimed else { continue };
        if !fire {
            tracing::info!(schedule = s.id, missed, "schedule occurrences missed while no daemon ran: skipped");
            continue;
        }
        let outcome = fire_one(state, &s).await;
        if outcome.is_ok() {
            submitted += 1;
        }
        match &outcome {
            Ok(run) => tracing::info!(schedule = s.id, run, occurrence = ?p.occurrence, "schedule fired"),
            Err(e) => tracing::warn!(schedule = s.id, error = %e, "schedule fired; its run was refused"),
        }
        let fired = outcome.clone();
        state.db(move |conn| Ok(ss::record_submit(conn, firing, outcome)?)).await?;
        // Told after the firing is recorded, so a receiver that reads the
        // firing log finds it.
        let mut payload = crate::api::schedules::schedule_json(&s);
        payload["firing"] = serde_json::json!({
            "id": firing,
            "occurrence": p.occurrence.map(crate::api::windows::ts),
            "run_id": fired.as_ref().ok(),
            "error": fired.as_ref().err(),
        });
        state.hooks.emit(s.project_id, craton::hooks::SCHEDULE_FIRED, format!("schedule:{}", s.id), &payload);
    }
    Ok(submitted)
}

/// Submits the schedule's template as its creator; the run id, or why not.
async fn fire_one(state: &AppState, s: &ScheduleRecord) -> Result<i64, String> {
    let mut obj: Map<String, Value> = match serde_json::from_str(&s.template) {
        Ok(Value::Object(m)) => m,
        _ => return Err("the stored template is not a JSON object".into()),
    };
    if !s.after_schedules.is_empty() {
        let after = s.after_schedules.clone();
        let latest = state.db(move |conn| Ok(ss::latest_runs(conn, &after)?)).await.map_err(|e| e.to_string())?;
        let mut ids: Vec<Value> = obj.get("after").and_then(Value::as_array).cloned().unwrap_or_default();
        for r in latest {
            if !ids.contains(&Value::from(r)) {
                ids.push(r.into());
            }
        }
        if !ids.is_empty() {
            obj.insert("after".into(), Value::Array(ids));
        }
    }
    let owner = Owner { what: "schedule", project_id: s.project_id, creator: &s.creator, created_by: &s.created_by };
    submit_as_creator(state, &owner, &obj, &format!("schedule:{}", s.id)).await
}
