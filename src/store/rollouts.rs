//! The batches of rolling runs ([`crate::rollout`]): planned at submit in
//! the run's own transaction, moved by the runner through the run's
//! progress writes ([`super::runs::Batch::rollout`], so in order with its
//! events and retried with them), and closed with the run: whatever did
//! not run is `skipped` (or `stopped` if it was running), which is what a
//! resume picks up.

use diesel::prelude::*;

use super::edit::chunked;
use super::schema::{run_batches, run_rollouts};
use super::{now_ms, DbConn, StoreError};
use crate::rollout::BatchStatus;

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
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = run_rollouts)]
pub struct RolloutRow {
    pub run_id: i64,
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
    resumed_from: Option<i64>,
) -> Result<(), StoreError> {
    diesel::insert_into(run_rollouts::table)
        .values((
            run_rollouts::run_id.eq(run_id),
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

/// Deletes the batches and rollout rows of pruned runs.
pub fn prune(conn: &mut DbConn, ids: &[i64]) -> Result<(), StoreError> {
    diesel::delete(run_batches::table.filter(run_batches::run_id.eq_any(ids))).execute(conn)?;
    diesel::delete(run_rollouts::table.filter(run_rollouts::run_id.eq_any(ids))).execute(conn)?;
    Ok(())
}
