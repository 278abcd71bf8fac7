//! The run queue in the database: which queued run of a project may start
//! now, and the host locks that keep two runs off one host. Everything a
//! decision reads and writes happens in one write transaction that first
//! locks the project's row (an `UPDATE` of it: a row lock on PostgreSQL
//! and InnoDB, SQLite's single writer), so claims of several `cratond`
//! processes on one database are serialized per project; the primary key
//! of `run_locks` (project, host) is the last line should two ever race.
//!
//! Policy ([`plan`], pure): queued runs in order (priority descending,
//! then id); a run starts when its hosts are free, no earlier waiting run
//! wants any of them (a run is never overtaken by later runs that overlap
//! it), and the project's `max_concurrent_runs` allows one more. Runs on
//! disjoint hosts backfill past a blocked one. A run waiting for a gate
//! (the runs it comes after, its approval: [`super::gates`]) or for its
//! maintenance window takes part in nothing (it holds and reserves no
//! host). Locks go with the run's end ([`super::runs::finish`]) or with its
//! lease ([`super::runs::sweep_lost`]), in the same transaction.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde_json::{json, Value};

use super::edit::chunked;
use super::gates::Gate;
use super::schema::{projects, run_hosts, run_locks, runs};
use super::{now_ms, DbConn, StoreError};
use crate::runs::{Options, RunStatus};

/// The most concurrent runs a project may allow.
pub const MAX_CONCURRENT: i64 = 1000;

/// One queued run as the planner sees it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub priority: i32,
    pub hosts: Vec<String>,
    /// Waiting for a gate or its maintenance window: it takes no part now.
    pub inert: bool,
}

/// What [`plan`] decided for one queued run.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// May claim its hosts now.
    Start,
    /// Waits; the `waiting_for` JSON says for what.
    Wait(Value),
}

/// Decides, for queued runs of one project, which may start now.
/// `locked`: host → the run that holds it; `active`: runs holding a slot;
/// `max`: the project's cap. Runs are taken in order (priority descending,
/// then id); see the module doc for the rule.
pub fn plan(queued: &[Queued], locked: &HashMap<String, i64>, active: &[i64], max: i64) -> Vec<(i64, Decision)> {
    let mut order: Vec<&Queued> = queued.iter().collect();
    order.sort_by_key(|q| (-i64::from(q.priority), q.id));
    let mut locked = locked.clone();
    // Hosts wanted by earlier runs that wait: later overlapping runs queue
    // behind them instead of overtaking.
    let mut reserved: HashMap<&str, i64> = HashMap::new();
    let mut running: Vec<i64> = active.to_vec();
    let mut out = Vec::new();
    for q in order {
        if q.inert {
            continue;
        }
        let held = q.hosts.iter().find_map(|h| locked.get(h).copied());
        let ahead = q.hosts.iter().find_map(|h| reserved.get(h.as_str()).copied());
        let decision = match (held, ahead) {
            (Some(r), _) | (None, Some(r)) => Decision::Wait(json!({"run": r})),
            (None, None) if (running.len() as i64) >= max => {
                Decision::Wait(json!({"concurrency": {"max": max, "running": running.clone()}}))
            }
            (None, None) => Decision::Start,
        };
        match &decision {
            Decision::Start => {
                running.push(q.id);
                for h in &q.hosts {
                    locked.insert(h.clone(), q.id);
                }
            }
            Decision::Wait(_) => {
                for h in &q.hosts {
                    reserved.entry(h.as_str()).or_insert(q.id);
                }
            }
        }
        out.push((q.id, decision));
    }
    out
}

/// The project's `max_concurrent_runs`.
pub fn max_concurrent(conn: &mut DbConn, pid: i64) -> Result<i64, StoreError> {
    Ok(projects::table.find(pid).select(projects::max_concurrent_runs).first::<i32>(conn).map(i64::from)?)
}

/// Sets the project's `max_concurrent_runs` (1 to [`MAX_CONCURRENT`]).
pub fn set_max_concurrent(conn: &mut DbConn, pid: i64, max: i64) -> Result<(), StoreError> {
    if !(1..=MAX_CONCURRENT).contains(&max) {
        return Err(StoreError::Invalid(format!("max_concurrent_runs must be from 1 to {MAX_CONCURRENT}")));
    }
    super::tx::write(conn, |conn| {
        diesel::update(projects::table.find(pid)).set(projects::max_concurrent_runs.eq(max as i32)).execute(conn)
    })?;
    Ok(())
}

/// Runs that hold (claimed, not ended) any of `hosts` of project `pid`:
/// (run id, host), by run then host.
pub fn holders(conn: &mut DbConn, pid: i64, hosts: &[String]) -> Result<Vec<(i64, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in chunked(hosts) {
        out.extend(
            run_locks::table
                .filter(run_locks::project_id.eq(pid))
                .filter(run_locks::host.eq_any(chunk))
                .select((run_locks::run_id, run_locks::host))
                .load::<(i64, String)>(conn)?,
        );
    }
    out.sort();
    Ok(out)
}

/// Which of `ids` are queued and held by `holder`; renews their leases
/// (a queued run is held by the process that accepted it, which keeps its
/// launch in memory until it starts).
pub fn renew_queued(conn: &mut DbConn, ids: &[i64], holder: &str, ttl_ms: i64) -> Result<HashSet<i64>, StoreError> {
    let now = now_ms();
    let mut kept = HashSet::new();
    for chunk in chunked(ids) {
        super::tx::write(conn, |conn| {
            diesel::update(
                runs::table
                    .filter(runs::id.eq_any(chunk))
                    .filter(runs::status.eq(RunStatus::Queued.as_str()))
                    .filter(runs::lease_holder.eq(holder)),
            )
            .set(runs::lease_expires_at.eq(now + ttl_ms))
            .execute(conn)
        })?;
        kept.extend(
            runs::table
                .filter(runs::id.eq_any(chunk))
                .filter(runs::status.eq(RunStatus::Queued.as_str()))
                .filter(runs::lease_holder.eq(holder))
                .select(runs::id)
                .load::<i64>(conn)?,
        );
    }
    Ok(kept)
}

/// One dispatch of project `pid` for `holder`: plans every queued run of
/// the project (whoever holds it), records each one's `waiting_for`, and
/// claims the runs `holder` holds that may start: their hosts locked,
/// `claimed_at` set. `window_waits`: runs of `holder` that wait for their
/// maintenance window, with their `waiting_for`. `clock_ms`: the daemon
/// clock's reading, for approval timeouts. Runs whose gate failed are
/// ended here (whoever holds them). Returns the claimed ids.
pub fn dispatch(
    conn: &mut DbConn,
    pid: i64,
    holder: &str,
    window_waits: &HashMap<i64, Value>,
    clock_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    super::tx::write(conn, |conn| {
        // The project's row lock: claims of one project are serial.
        diesel::update(projects::table.find(pid))
            .set(projects::max_concurrent_runs.eq(projects::max_concurrent_runs))
            .execute(conn)?;
        let max = max_concurrent(conn, pid)?;
        let active: Vec<i64> = runs::table
            .filter(runs::project_id.eq(pid))
            .filter(runs::status.eq_any([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]))
            .filter(runs::claimed_at.is_not_null())
            .order(runs::id.asc())
            .select(runs::id)
            .load(conn)?;
        let locked: HashMap<String, i64> = run_locks::table
            .filter(run_locks::project_id.eq(pid))
            .select((run_locks::host, run_locks::run_id))
            .load::<(String, i64)>(conn)?
            .into_iter()
            .collect();
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = runs::table
            .filter(runs::project_id.eq(pid))
            .filter(runs::status.eq(RunStatus::Queued.as_str()))
            .filter(runs::claimed_at.is_null())
            .select((runs::id, runs::options, runs::lease_holder, runs::waiting_for))
            .load(conn)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut hosts: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in chunked(&ids) {
            for (r, h) in run_hosts::table
                .filter(run_hosts::run_id.eq_any(chunk))
                .select((run_hosts::run_id, run_hosts::host))
                .load::<(i64, String)>(conn)?
            {
                hosts.entry(r).or_default().push(h);
            }
        }
        let options: HashMap<i64, Options> =
            rows.iter().map(|r| (r.0, serde_json::from_str::<Options>(&r.1).unwrap_or_default())).collect();
        let opts: Vec<(i64, &Options)> = options.iter().map(|(id, o)| (*id, o)).collect();
        let gates = super::gates::evaluate(conn, &opts, clock_ms)?;
        let mut mine = HashSet::new();
        let mut was: HashMap<i64, Option<String>> = HashMap::new();
        let mut gate_waits: Vec<(i64, Value)> = Vec::new();
        let mut queued: Vec<Queued> = Vec::new();
        for (id, _, lease_holder, waiting) in rows {
            let ours = lease_holder.as_deref() == Some(holder);
            if ours {
                mine.insert(id);
            }
            let inert = match gates.get(&id) {
                Some(Gate::End(status, why)) => {
                    super::gates::end(conn, id, *status, why, clock_ms)?;
                    continue;
                }
                Some(Gate::Wait(w)) => {
                    gate_waits.push((id, w.clone()));
                    true
                }
                // Another process's run in its window wait: that process
                // decides when the window opens.
                Some(Gate::Open) | None if ours => window_waits.contains_key(&id),
                Some(Gate::Open) | None => waiting.as_deref().is_some_and(|w| w.starts_with("{\"window\"")),
            };
            was.insert(id, waiting);
            let priority = options[&id].priority;
            queued.push(Queued { id, priority, hosts: hosts.remove(&id).unwrap_or_default(), inert });
        }
        let now = now_ms();
        let set_waiting = |conn: &mut DbConn, id: i64, w: Option<String>| -> Result<(), StoreError> {
            if was.get(&id).cloned().flatten() != w {
                diesel::update(runs::table.find(id)).set(runs::waiting_for.eq(w)).execute(conn)?;
            }
            Ok(())
        };
        for (id, w) in &gate_waits {
            set_waiting(conn, *id, Some(w.to_string()))?;
        }
        let gated: HashSet<i64> = gate_waits.iter().map(|(id, _)| *id).collect();
        for (id, w) in window_waits {
            if mine.contains(id) && !gated.contains(id) && was.contains_key(id) {
                set_waiting(conn, *id, Some(w.to_string()))?;
            }
        }
        let by_id: HashMap<i64, &Queued> = queued.iter().map(|q| (q.id, q)).collect();
        let mut claimed = Vec::new();
        for (id, d) in plan(&queued, &locked, &active, max) {
            match d {
                Decision::Wait(w) => set_waiting(conn, id, Some(w.to_string()))?,
                Decision::Start if mine.contains(&id) => {
                    let q = by_id[&id];
                    for chunk in chunked(&q.hosts) {
                        let rows: Vec<_> = chunk
                            .iter()
                            .map(|h| {
                                (
                                    run_locks::project_id.eq(pid),
                                    run_locks::host.eq(h.as_str()),
                                    run_locks::run_id.eq(id),
                                )
                            })
                            .collect();
                        batch_insert!(conn, run_locks::table, &rows)?;
                    }
                    diesel::update(runs::table.find(id))
                        .set((runs::claimed_at.eq(now), runs::waiting_for.eq(None::<String>), runs::updated_at.eq(now)))
                        .execute(conn)?;
                    claimed.push(id);
                }
                // Another process's run: it claims it at its next dispatch.
                Decision::Start => set_waiting(conn, id, None)?,
            }
        }
        Ok(claimed)
    })
}

/// Releases the host locks of runs `ids` (inside the transaction that
/// ends them).
pub(crate) fn release(conn: &mut DbConn, ids: &[i64]) -> Result<(), StoreError> {
    for chunk in chunked(ids) {
        diesel::delete(run_locks::table.filter(run_locks::run_id.eq_any(chunk))).execute(conn)?;
    }
    Ok(())
}

/// Cancels run `id` of project `pid` if it is queued and unclaimed (no
/// process runs it yet): final `canceled` at once, for `reason`. None when
/// the run is not such a run.
pub fn cancel_queued(
    conn: &mut DbConn,
    pid: i64,
    id: i64,
    reason: &str,
) -> Result<Option<super::runs::Run>, StoreError> {
    super::tx::write(conn, |conn| {
        if end_queued(conn, Some(pid), id, RunStatus::Canceled, reason, Some("immediate"))? == 0 {
            return Ok(None);
        }
        super::runs::get(conn, Some(pid), id)
    })
}

/// Ends run `id` (of project `pid` when given) with a final `status` if it
/// is still queued and unclaimed; how many rows that was (0 or 1).
pub(crate) fn end_queued(
    conn: &mut DbConn,
    pid: Option<i64>,
    id: i64,
    status: RunStatus,
    reason: &str,
    cancel: Option<&str>,
) -> Result<usize, StoreError> {
    let now = now_ms();
    let mut q = runs::table
        .filter(runs::id.eq(id))
        .filter(runs::status.eq(RunStatus::Queued.as_str()))
        .filter(runs::claimed_at.is_null())
        .into_boxed();
    if let Some(pid) = pid {
        q = q.filter(runs::project_id.eq(pid));
    }
    let ids: Vec<i64> = q.select(runs::id).load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::rollouts::close(conn, &ids, &format!("the run ended {} before it started", status.as_str()))?;
    Ok(diesel::update(runs::table.filter(runs::id.eq_any(ids)))
        .set((
            runs::status.eq(status.as_str()),
            runs::reason.eq(reason),
            runs::cancel_requested.eq(cancel),
            runs::waiting_for.eq(None::<String>),
            runs::finished_at.eq(now),
            runs::updated_at.eq(now),
            runs::lease_holder.eq(None::<String>),
            runs::lease_expires_at.eq(None::<i64>),
        ))
        .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: i64, priority: i32, hosts: &[&str]) -> Queued {
        Queued { id, priority, hosts: hosts.iter().map(|s| s.to_string()).collect(), inert: false }
    }

    fn starts(p: &[(i64, Decision)]) -> Vec<i64> {
        p.iter().filter(|(_, d)| *d == Decision::Start).map(|(i, _)| *i).collect()
    }

    #[test]
    fn overlapping_runs_wait_for_the_holder_and_disjoint_ones_backfill() {
        let locked: HashMap<String, i64> = [("a".to_string(), 1)].into();
        let p = plan(&[q(2, 0, &["a", "b"]), q(3, 0, &["c"])], &locked, &[1], 5);
        assert_eq!(p[0], (2, Decision::Wait(json!({"run": 1}))));
        assert_eq!(starts(&p), [3]);
    }

    #[test]
    fn a_waiting_run_is_not_overtaken_by_a_later_overlapping_one() {
        let locked: HashMap<String, i64> = [("a".to_string(), 1)].into();
        // 3 overlaps 2 on b only; b is free, but 2 came first.
        let p = plan(&[q(2, 0, &["a", "b"]), q(3, 0, &["b"])], &locked, &[1], 5);
        assert_eq!(p[1], (3, Decision::Wait(json!({"run": 2}))));
        assert!(starts(&p).is_empty());
    }

    #[test]
    fn priority_first_then_fifo_and_the_cap_holds() {
        let p = plan(&[q(1, 0, &["a"]), q(2, 5, &["b"]), q(3, 5, &["c"])], &HashMap::new(), &[], 2);
        assert_eq!(starts(&p), [2, 3]);
        assert_eq!(p[2], (1, Decision::Wait(json!({"concurrency": {"max": 2, "running": [2, 3]}}))));
        // Same hosts: the higher priority goes first even when submitted later.
        let p = plan(&[q(1, 0, &["a"]), q(2, 1, &["a"])], &HashMap::new(), &[], 5);
        assert_eq!(p, vec![(2, Decision::Start), (1, Decision::Wait(json!({"run": 2})))]);
    }

    #[test]
    fn a_run_waiting_for_its_window_reserves_nothing() {
        let mut w = q(1, 9, &["a"]);
        w.inert = true;
        let p = plan(&[w, q(2, 0, &["a"])], &HashMap::new(), &[], 1);
        assert_eq!(p, vec![(2, Decision::Start)]);
    }
}
