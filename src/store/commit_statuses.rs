//! GitHub commit statuses queued for sending (issue 10, "Choreography"):
//! a webhook rule with `commit_status` reports its run as `pending` when
//! queued and as the result when final (`crate::commit_status` says what
//! is sent).
//!
//! The queue works as the outbound hooks' (`super::hooks`): rows live in
//! the database from the moment they are queued, a daemon sends one only
//! after claiming it ([`claim`]: a conditional UPDATE one process wins,
//! with an expiry), and the claim is dropped when the attempt is recorded
//! ([`record_attempt`], with the hooks' [`Next`]). The statuses of one run
//! are claimed strictly in order (the final one waits until the pending
//! one was delivered or failed for good), so GitHub never ends up showing
//! `pending` over a result.
//!
//! Each run has at most one status per event (`run.queued`,
//! `run.finished`): the unique key makes [`enqueue`] of a second one a
//! no-op, so the submitter and the finisher may both queue the final
//! status of a run that ended before its match was recorded.

use diesel::prelude::*;
use serde::Serialize;

use super::hooks::{Attempt, Next};
use super::schema::commit_statuses;
use super::{DbConn, StoreError};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Longest recorded error.
const MAX_ERROR_CHARS: usize = 4000;
/// Most pending rows looked at per claim round.
const CLAIM_SCAN: i64 = 1000;

/// One status as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = commit_statuses)]
pub struct CommitStatus {
    pub id: i64,
    pub project_id: i64,
    pub run_id: i64,
    pub rule_id: i64,
    /// `run.queued` or `run.finished`.
    pub event: String,
    /// GitHub `owner/name`.
    pub repository: String,
    pub sha: String,
    pub context: String,
    /// GitHub's state: `pending`, `success`, `failure`, `error`.
    pub state: String,
    pub description: String,
    pub target_url: Option<String>,
    /// `pending`, `delivered`, `failed`.
    pub delivery: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    #[serde(skip)]
    pub claimed_by: Option<String>,
    #[serde(skip)]
    pub claim_expires_at: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// What a queued status says (checked by the caller).
#[derive(Debug, Clone)]
pub struct NewStatus {
    pub project_id: i64,
    pub run_id: i64,
    pub rule_id: i64,
    pub event: String,
    pub repository: String,
    pub sha: String,
    pub context: String,
    pub state: String,
    pub description: String,
    pub target_url: Option<String>,
    /// When it is queued and first due (the daemon's clock, ms).
    pub at: i64,
}

/// Queues a status; `None` when the run already has one for this event.
pub fn enqueue(conn: &mut DbConn, s: &NewStatus) -> Result<Option<i64>, StoreError> {
    let r = super::tx::write(conn, |conn| {
        diesel::insert_into(commit_statuses::table)
            .values((
                commit_statuses::project_id.eq(s.project_id),
                commit_statuses::run_id.eq(s.run_id),
                commit_statuses::rule_id.eq(s.rule_id),
                commit_statuses::event.eq(&s.event),
                commit_statuses::repository.eq(&s.repository),
                commit_statuses::sha.eq(&s.sha),
                commit_statuses::context.eq(&s.context),
                commit_statuses::state.eq(&s.state),
                commit_statuses::description.eq(&s.description),
                commit_statuses::target_url.eq(&s.target_url),
                commit_statuses::delivery.eq(PENDING),
                commit_statuses::attempts.eq(0),
                commit_statuses::next_attempt_at.eq(s.at),
                commit_statuses::created_at.eq(s.at),
            ))
            .execute(conn)
            .map_err(|e| super::edit::conflict_on_unique(e, || "duplicate".into()))?;
        let id: i64 = commit_statuses::table
            .filter(commit_statuses::run_id.eq(s.run_id))
            .filter(commit_statuses::event.eq(&s.event))
            .select(commit_statuses::id)
            .first(conn)?;
        Ok(id)
    });
    match r {
        Ok(id) => Ok(Some(id)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The statuses of run `run_id`, oldest first.
pub fn of_run(conn: &mut DbConn, run_id: i64) -> Result<Vec<CommitStatus>, StoreError> {
    Ok(commit_statuses::table
        .filter(commit_statuses::run_id.eq(run_id))
        .order(commit_statuses::id)
        .select(CommitStatus::as_select())
        .load(conn)?)
}

/// Claims up to `limit` statuses due at `now` (the daemon's clock) for
/// `holder`, for `ttl_ms` of wall time (`wall`): only the oldest pending
/// status of each run, not claimed by a live claim.
pub fn claim(
    conn: &mut DbConn,
    holder: &str,
    now: i64,
    wall: i64,
    ttl_ms: i64,
    limit: usize,
) -> Result<Vec<CommitStatus>, StoreError> {
    let pending: Vec<CommitStatus> = commit_statuses::table
        .filter(commit_statuses::delivery.eq(PENDING))
        .order(commit_statuses::id)
        .limit(CLAIM_SCAN)
        .select(CommitStatus::as_select())
        .load(conn)?;
    let mut heads = std::collections::HashSet::new();
    let mut out = Vec::new();
    for s in pending {
        if out.len() >= limit {
            break;
        }
        if !heads.insert(s.run_id) {
            continue;
        }
        if s.next_attempt_at > now || s.claim_expires_at.is_some_and(|t| t >= wall) {
            continue;
        }
        let n = super::tx::write(conn, |conn| {
            diesel::update(
                commit_statuses::table
                    .filter(commit_statuses::id.eq(s.id))
                    .filter(commit_statuses::delivery.eq(PENDING))
                    .filter(commit_statuses::claim_expires_at.is_null().or(commit_statuses::claim_expires_at.lt(wall))),
            )
            .set((commit_statuses::claimed_by.eq(holder), commit_statuses::claim_expires_at.eq(wall + ttl_ms)))
            .execute(conn)
        })?;
        if n == 1 {
            out.push(s);
        }
    }
    Ok(out)
}

/// Records attempt `a` of status `id` claimed by `holder` (the hooks'
/// [`Attempt`]: its number, when, the answer's code or what went wrong)
/// and moves the status on; false when the claim was lost.
pub fn record_attempt(conn: &mut DbConn, id: i64, holder: &str, a: &Attempt, next: Next) -> Result<bool, StoreError> {
    let (attempt, at, status_code) = (a.attempt, a.at, a.status_code);
    let error = a.error.as_deref().map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
    let (delivery, next_at, finished) = match next {
        Next::Delivered => (DELIVERED, at, Some(at)),
        Next::RetryAt(t) => (PENDING, t, None),
        Next::GiveUp => (FAILED, at, Some(at)),
    };
    let n = super::tx::write(conn, |conn| {
        diesel::update(
            commit_statuses::table
                .filter(commit_statuses::id.eq(id))
                .filter(commit_statuses::delivery.eq(PENDING))
                .filter(commit_statuses::claimed_by.eq(holder)),
        )
        .set((
            commit_statuses::delivery.eq(delivery),
            commit_statuses::attempts.eq(attempt),
            commit_statuses::next_attempt_at.eq(next_at),
            commit_statuses::last_status.eq(status_code),
            commit_statuses::last_error.eq(error.as_deref()),
            commit_statuses::finished_at.eq(finished),
            commit_statuses::claimed_by.eq(None::<String>),
            commit_statuses::claim_expires_at.eq(None::<i64>),
        ))
        .execute(conn)
    })?;
    Ok(n == 1)
}

/// Drops `holder`'s claims (a clean shutdown).
pub fn release(conn: &mut DbConn, holder: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(commit_statuses::table.filter(commit_statuses::claimed_by.eq(holder)))
        .set((commit_statuses::claimed_by.eq(None::<String>), commit_statuses::claim_expires_at.eq(None::<i64>)))
        .execute(conn)?)
}
