//! The batches of rolling runs ([`crate::rollout`]): planned at submit in
//! the run's own transaction, moved by the runner through the run's
//! progress writes ([`super::runs::Batch::rollout`], so in order with its
//! events and retried with them), and closed with the run: whatever did
//! not run is `skipped` (or `stopped` if it was running), which is what a
//! resume picks up.

use diesel::prelude::*;

use super::edit::chunked;
use super::schema::{run_batches, run_rollouts, runs};
use super::{now_ms, DbConn, StoreError};
use crate::rollout::BatchStatus;
use crate::runs::RunStatus;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = run_batches)]
pub struct BatchRow {
    pub run_id: i64,
    pub seq: i32,
    pub hosts: String,
    pub status: String,
    pub rc: Option<i32>,
    pub failed: i32,
    pub reason: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// approve_each_batch: waiting, approved or denied.
    pub approval: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
}

impl BatchRow {
    pub fn host_names(&self) -> Vec<String> {
        serde_json::from_str(&self.hosts).unwrap_or_default()
    }

    pub fn status(&self) -> BatchStatus {
        BatchStatus::parse(&self.status).unwrap_or(BatchStatus::Skipped)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "hosts": self.host_names(),
            "status": self.status,
            "rc": self.rc,
            "failed": self.failed,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "approval": self.approval.as_ref().map(|a| serde_json::json!({
                "status": a, "decided_by": self.decided_by, "decided_at": self.decided_at, "comment": self.comment,
            })),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = run_rollouts)]
pub struct RolloutRow {
    pub run_id: i64,
    /// Who submitted (or resumed) it: the one who may not approve its batches.
    pub requested_by: String,
    pub resumed_from: Option<i64>,
    pub resumed_by: Option<i64>,
}

/// A change of one batch, written with the run's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchUpdate {
    Started { seq: i32, at: i64 },
    Ended { seq: i32, status: BatchStatus, rc: Option<i32>, failed: i32, reason: Option<String>, at: i64 },
}

/// Stores the plan of rolling run `run_id`: `batches` numbered from
/// `first_seq`. Inside the transaction that creates the run.
pub fn create(
    conn: &mut DbConn,
    run_id: i64,
    first_seq: i32,
    batches: &[Vec<String>],
    requested_by: &str,
    resumed_from: Option<i64>,
) -> Result<(), StoreError> {
    diesel::insert_into(run_rollouts::table)
        .values((
            run_rollouts::run_id.eq(run_id),
            run_rollouts::requested_by.eq(requested_by),
            run_rollouts::resumed_from.eq(resumed_from),
            run_rollouts::resumed_by.eq(None::<i64>),
        ))
        .execute(conn)?;
    let rows: Vec<(i32, String)> = batches
        .iter()
        .enumerate()
        .map(|(i, hosts)| (first_seq + i as i32, serde_json::to_string(hosts).expect("names serialize")))
        .collect();
    for chunk in chunked(&rows) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(seq, hosts)| {
                (
                    run_batches::run_id.eq(run_id),
                    run_batches::seq.eq(*seq),
                    run_batches::hosts.eq(hosts.as_str()),
                    run_batches::status.eq(BatchStatus::Pending.as_str()),
                    run_batches::failed.eq(0),
                )
            })
            .collect();
        batch_insert!(conn, run_batches::table, &values)?;
    }
    Ok(())
}

/// The batches of run `id` in order (none: not a rolling run).
pub fn of_run(conn: &mut DbConn, id: i64) -> Result<Vec<BatchRow>, StoreError> {
    Ok(run_batches::table
        .filter(run_batches::run_id.eq(id))
        .order(run_batches::seq.asc())
        .select(BatchRow::as_select())
        .load(conn)?)
}

pub fn rollout(conn: &mut DbConn, id: i64) -> Result<Option<RolloutRow>, StoreError> {
    Ok(run_rollouts::table.find(id).select(RolloutRow::as_select()).first(conn).optional()?)
}

/// Applies the runner's batch changes (inside the progress transaction).
pub fn apply(conn: &mut DbConn, id: i64, updates: &[BatchUpdate]) -> Result<(), StoreError> {
    for u in updates {
        match u {
            BatchUpdate::Started { seq, at } => {
                diesel::update(run_batches::table.find((id, *seq)))
                    .set((run_batches::status.eq(BatchStatus::Running.as_str()), run_batches::started_at.eq(*at)))
                    .execute(conn)?;
            }
            BatchUpdate::Ended { seq, status, rc, failed, reason, at } => {
                diesel::update(run_batches::table.find((id, *seq)))
                    .set((
                        run_batches::status.eq(status.as_str()),
                        run_batches::rc.eq(*rc),
                        run_batches::failed.eq(*failed),
                        run_batches::reason.eq(reason.as_deref()),
                        run_batches::finished_at.eq(*at),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// Closes the batches of runs that ended: pending ones are `skipped`,
/// a running one `stopped` (inside the transaction that ends them).
pub fn close(conn: &mut DbConn, ids: &[i64], reason: &str) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in chunked(ids) {
        for (from, to) in [(BatchStatus::Pending, BatchStatus::Skipped), (BatchStatus::Running, BatchStatus::Stopped)] {
            diesel::update(
                run_batches::table
                    .filter(run_batches::run_id.eq_any(chunk))
                    .filter(run_batches::status.eq(from.as_str())),
            )
            .set((
                run_batches::status.eq(to.as_str()),
                run_batches::reason.eq(reason),
                run_batches::finished_at.eq(now),
            ))
            .execute(conn)?;
        }
    }
    Ok(())
}

/// Marks run `old` as resumed by `new` (inside the transaction creating
/// `new`); a Conflict naming the run that already resumed it.
pub fn mark_resumed(conn: &mut DbConn, old: i64, new: i64) -> Result<(), StoreError> {
    let n = diesel::update(run_rollouts::table.find(old).filter(run_rollouts::resumed_by.is_null()))
        .set(run_rollouts::resumed_by.eq(new))
        .execute(conn)?;
    if n == 1 {
        return Ok(());
    }
    match rollout(conn, old)?.and_then(|r| r.resumed_by) {
        Some(by) => Err(StoreError::Conflict(format!("run {old} was already resumed by run {by}"))),
        None => Err(StoreError::Conflict(format!("run {old} is not a rolling run"))),
    }
}

/// Asks for the approval of batch `seq` of running run `id`
/// (approve_each_batch): the batch waits and the run says so in its
/// `waiting_for`. False when the run is no longer running.
pub fn request_batch_approval(conn: &mut DbConn, id: i64, seq: i32) -> Result<bool, StoreError> {
    super::tx::write(conn, |conn| {
        let Some(run) = super::runs::get(conn, None, id)? else { return Ok(false) };
        if run.status() != RunStatus::Running {
            return Ok(false);
        }
        let by = rollout(conn, id)?.map(|r| r.requested_by).unwrap_or_default();
        diesel::update(run_batches::table.find((id, seq)))
            .set(run_batches::approval.eq(BatchApproval::Waiting.as_str()))
            .execute(conn)?;
        let waiting = serde_json::json!({"batch_approval": {"seq": seq, "requested_by": by}});
        diesel::update(runs::table.find(id))
            .set((runs::waiting_for.eq(waiting.to_string()), runs::updated_at.eq(now_ms())))
            .execute(conn)?;
        Ok(true)
    })
}

/// A batch's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchApproval {
    Waiting,
    Approved,
    Denied,
}

impl BatchApproval {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchApproval::Waiting => "waiting",
            BatchApproval::Approved => "approved",
            BatchApproval::Denied => "denied",
        }
    }
}

/// The answer to batch `seq`'s approval so far: None while it waits, else
/// whether it was approved and why not (`denied by ...[: comment]`).
pub fn batch_answer(conn: &mut DbConn, id: i64, seq: i32) -> Result<Option<Result<(), String>>, StoreError> {
    let b: Option<BatchRow> =
        run_batches::table.find((id, seq)).select(BatchRow::as_select()).first(conn).optional()?;
    Ok(b.and_then(|b| match b.approval.as_deref() {
        Some("approved") => Some(Ok(())),
        Some("denied") => {
            let by = b.decided_by.unwrap_or_default();
            Some(Err(match b.comment {
                Some(c) => format!("batch {seq} denied by {by}: {c}"),
                None => format!("batch {seq} denied by {by}"),
            }))
        }
        _ => None,
    }))
}

/// Answers the waiting batch approval of running run `id` (inside the
/// caller's transaction): None when it has none waiting (the caller says
/// why), else as [`super::gates::decide`] answers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide_batch(
    conn: &mut DbConn,
    pid: i64,
    run: &super::runs::Run,
    decision: super::gates::Decision,
    by: &str,
    label: &str,
    comment: Option<&str>,
    clock_ms: i64,
) -> Result<Option<super::gates::Answered>, StoreError> {
    use super::gates::{Answered, ApprovalRow, Decision};
    let id = run.id;
    let waiting: Option<BatchRow> = run_batches::table
        .filter(run_batches::run_id.eq(id))
        .filter(run_batches::approval.eq(BatchApproval::Waiting.as_str()))
        .select(BatchRow::as_select())
        .first(conn)
        .optional()?;
    let Some(b) = waiting else { return Ok(None) };
    let requested_by = rollout(conn, id)?.map(|r| r.requested_by).unwrap_or_default();
    if requested_by == by {
        return Ok(Some(Answered::OwnRun));
    }
    let word = match decision {
        Decision::Approve => BatchApproval::Approved,
        Decision::Deny => BatchApproval::Denied,
    };
    diesel::update(run_batches::table.find((id, b.seq)))
        .set((
            run_batches::approval.eq(word.as_str()),
            run_batches::decided_by.eq(label),
            run_batches::decided_at.eq(clock_ms),
            run_batches::comment.eq(comment),
        ))
        .execute(conn)?;
    diesel::update(runs::table.find(id))
        .set((runs::waiting_for.eq(None::<String>), runs::updated_at.eq(now_ms())))
        .execute(conn)?;
    let row = ApprovalRow {
        run_id: id,
        requested_by,
        expires_at: None,
        decision: Some(word.as_str().into()),
        decided_by: Some(label.into()),
        decided_at: Some(clock_ms),
        comment: comment.map(str::to_string),
    };
    let noted = serde_json::json!({"batch": b.seq, "approval": row.to_json()});
    super::audit::note(pid, "run", &format!("#{id}"), None, Some(&noted));
    let run = super::runs::get(conn, Some(pid), id)?.ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
    Ok(Some(Answered::Done(Box::new(run), row)))
}

/// Deletes the batches and rollout rows of pruned runs.
pub fn prune(conn: &mut DbConn, ids: &[i64]) -> Result<(), StoreError> {
    diesel::delete(run_batches::table.filter(run_batches::run_id.eq_any(ids))).execute(conn)?;
    diesel::delete(run_rollouts::table.filter(run_rollouts::run_id.eq_any(ids))).execute(conn)?;
    Ok(())
}
