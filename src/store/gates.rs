//! The gates a queued run passes before the queue considers its hosts:
//! the runs it waits for (`after`, `require`) and its approval
//! (`"approval": "required"`). Both live in the database (a run's options,
//! `run_approvals`), so any `cratond` on the database reads the same
//! answer and an approval given through one process releases a run held
//! by another. [`super::queue::dispatch`] asks [`evaluate`] in its
//! transaction; a run whose gate failed (a required run did not succeed,
//! the approval was not given in time) is ended there, and the process
//! holding it sees it gone at its next dispatch.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{json, Value};

use super::edit::chunked;
use super::schema::{run_approvals, runs};
use super::{now_ms, DbConn, StoreError};
use crate::runs::{dependencies, Approval, Dependencies, Options, RunStatus};

/// A run's approval record.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = run_approvals)]
pub struct ApprovalRow {
    pub run_id: i64,
    pub requested_by: String,
    pub expires_at: Option<i64>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
}

impl ApprovalRow {
    pub fn to_json(&self) -> Value {
        json!({
            "requested_by": self.requested_by,
            "expires_at": self.expires_at,
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "comment": self.comment,
        })
    }
}

/// Longest approval comment (characters).
pub const MAX_COMMENT_CHARS: usize = 1024;

/// The first entry of `after` that is not a run of project `pid`:
/// (its index, the id).
pub fn missing_after(conn: &mut DbConn, pid: i64, after: &[i64]) -> Result<Option<(usize, i64)>, StoreError> {
    let found: Vec<i64> =
        runs::table.filter(runs::project_id.eq(pid)).filter(runs::id.eq_any(after)).select(runs::id).load(conn)?;
    Ok(after.iter().enumerate().find(|(_, id)| !found.contains(id)).map(|(i, id)| (i, *id)))
}

/// Records that run `run_id` waits for an approval (inside the
/// transaction that stores the run).
pub fn request_approval(
    conn: &mut DbConn,
    run_id: i64,
    requested_by: &str,
    expires_at: Option<i64>,
) -> Result<(), StoreError> {
    diesel::insert_into(run_approvals::table)
        .values((
            run_approvals::run_id.eq(run_id),
            run_approvals::requested_by.eq(requested_by),
            run_approvals::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Run `run_id`'s approval record, if it asked for one.
pub fn approval(conn: &mut DbConn, run_id: i64) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(run_approvals::table.find(run_id).select(ApprovalRow::as_select()).first(conn).optional()?)
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// What [`decide`] did.
#[derive(Debug)]
pub enum Answered {
    Done(Box<super::runs::Run>, ApprovalRow),
    /// No such run in the project.
    NoSuchRun,
    /// `by` submitted the run: it may not answer for it.
    OwnRun,
}

/// Approves or denies run `id` of project `pid` as `by` (identity key, as
/// `requested_by`) labelled `label`. Refused (Conflict) unless the run is
/// queued, unclaimed and waiting for an undecided approval. A denied run
/// ends `canceled` at once.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    conn: &mut DbConn,
    pid: i64,
    id: i64,
    decision: Decision,
    by: &str,
    label: &str,
    comment: Option<&str>,
    clock_ms: i64,
) -> Result<Answered, StoreError> {
    super::tx::write(conn, |conn| {
        let Some(run) = super::runs::get(conn, Some(pid), id)? else { return Ok(Answered::NoSuchRun) };
        // A rolling run's batch (approve_each_batch) waits while it runs.
        if run.status() == RunStatus::Running {
            return super::rollouts::decide_batch(conn, pid, &run, decision, by, label, comment, clock_ms)?
                .ok_or_else(|| StoreError::Conflict(format!("run {id} is running, not waiting for approval")));
        }
        let Some(row) = approval(conn, id)? else {
            return Err(StoreError::Conflict(format!("run {id} was not submitted with \"approval\": \"required\"")));
        };
        if let Some(d) = &row.decision {
            return Err(StoreError::Conflict(format!("run {id}'s approval was already decided: {d}")));
        }
        if run.status() != RunStatus::Queued || run.claimed_at.is_some() {
            return Err(StoreError::Conflict(format!("run {id} is {}, not waiting for approval", run.status)));
        }
        if row.requested_by == by {
            return Ok(Answered::OwnRun);
        }
        let word = match decision {
            Decision::Approve => "approved",
            Decision::Deny => "denied",
        };
        diesel::update(run_approvals::table.find(id))
            .set((
                run_approvals::decision.eq(word),
                run_approvals::decided_by.eq(label),
                run_approvals::decided_at.eq(clock_ms),
                run_approvals::comment.eq(comment),
            ))
            .execute(conn)?;
        let run = match decision {
            Decision::Approve => {
                // It no longer waits for this; its next dispatch says what
                // it waits for next, if anything.
                diesel::update(runs::table.find(id))
                    .set((runs::waiting_for.eq(None::<String>), runs::updated_at.eq(now_ms())))
                    .execute(conn)?;
                super::runs::get(conn, Some(pid), id)?
            }
            Decision::Deny => {
                let why = match comment {
                    Some(c) => format!("denied by {label}: {c}"),
                    None => format!("denied by {label}"),
                };
                super::queue::cancel_queued(conn, pid, id, &why)?
            }
        };
        let row = approval(conn, id)?.expect("the approval row was just written");
        super::audit::note(pid, "run", &format!("#{id}"), None, Some(&serde_json::json!({"approval": row.to_json()})));
        let run = run.ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        Ok(Answered::Done(Box::new(run), row))
    })
}

/// What a queued run's gates say now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Both passed (or it has none): the queue decides on its hosts.
    Open,
    /// It waits; the `waiting_for` JSON says for what.
    Wait(Value),
    /// It ends now with this status and reason.
    End(RunStatus, String),
}

/// Evaluates the gates of queued runs `ids` (with their options) at
/// `clock_ms`. Runs without gates are absent from the answer. Dependencies
/// come first: a run whose required run failed is skipped without waiting
/// for an approval nobody needs any more.
pub fn evaluate(
    conn: &mut DbConn,
    runs_opts: &[(i64, &Options)],
    clock_ms: i64,
) -> Result<HashMap<i64, Gate>, StoreError> {
    let mut dep_ids: Vec<i64> = runs_opts.iter().flat_map(|(_, o)| o.after.iter().copied()).collect();
    dep_ids.sort_unstable();
    dep_ids.dedup();
    let mut status: HashMap<i64, RunStatus> = HashMap::new();
    for chunk in chunked(&dep_ids) {
        for (id, s) in
            runs::table.filter(runs::id.eq_any(chunk)).select((runs::id, runs::status)).load::<(i64, String)>(conn)?
        {
            status.insert(id, RunStatus::parse(&s).unwrap_or(RunStatus::Error));
        }
    }
    let gated: Vec<i64> =
        runs_opts.iter().filter(|(_, o)| o.approval == Approval::Required).map(|(id, _)| *id).collect();
    let mut approvals: HashMap<i64, ApprovalRow> = HashMap::new();
    for chunk in chunked(&gated) {
        for a in run_approvals::table
            .filter(run_approvals::run_id.eq_any(chunk))
            .select(ApprovalRow::as_select())
            .load(conn)?
        {
            approvals.insert(a.run_id, a);
        }
    }
    let mut out = HashMap::new();
    for (id, o) in runs_opts {
        if !o.after.is_empty() {
            let after: Vec<(i64, Option<RunStatus>)> = o.after.iter().map(|d| (*d, status.get(d).copied())).collect();
            match dependencies(o.require, &after) {
                Dependencies::Met => {}
                Dependencies::Waiting(w) => {
                    out.insert(*id, Gate::Wait(json!({"after": {"runs": w, "require": o.require.as_str()}})));
                    continue;
                }
                Dependencies::Failed(why) => {
                    out.insert(*id, Gate::End(RunStatus::Skipped, why));
                    continue;
                }
            }
        }
        if o.approval != Approval::Required {
            continue;
        }
        let gate = match approvals.get(id) {
            // Stored without its row (cannot happen through submit): it
            // waits, visibly, rather than start unapproved.
            None => Gate::Wait(json!({"approval": {"requested_by": null, "expires_at": null}})),
            Some(a) if a.decision.as_deref() == Some("approved") => Gate::Open,
            Some(a) if a.decision.is_none() && a.expires_at.is_some_and(|e| clock_ms >= e) => {
                Gate::End(RunStatus::Canceled, "approval timed out".into())
            }
            Some(a) => Gate::Wait(json!({"approval": {"requested_by": a.requested_by, "expires_at": a.expires_at}})),
        };
        if gate != Gate::Open {
            out.insert(*id, gate);
        }
    }
    Ok(out)
}

/// Ends queued run `id` because a gate failed (inside dispatch's
/// transaction); a run claimed or ended meanwhile is left alone.
pub(crate) fn end(
    conn: &mut DbConn,
    id: i64,
    status: RunStatus,
    reason: &str,
    clock_ms: i64,
) -> Result<(), StoreError> {
    let n = super::queue::end_queued(conn, None, id, status, reason, None)?;
    if n == 1 && status == RunStatus::Canceled {
        diesel::update(run_approvals::table.find(id).filter(run_approvals::decision.is_null()))
            .set((run_approvals::decision.eq("expired"), run_approvals::decided_at.eq(clock_ms)))
            .execute(conn)?;
    }
    Ok(())
}
