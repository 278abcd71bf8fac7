//! Runs in the database: the run record and its lease, the bundle it ran
//! on, per-host results, events, stdout, and each host's reachability from
//! its last run. The runner writes a run's progress in batches through
//! [`flush`], one transaction per batch, so a reader never sees events
//! without the host results they add up to.
//!
//! A run is held by one process through its lease (as config refs are):
//! a process that stops leaves an expired lease, and [`sweep_lost`] turns
//! such runs into `lost` instead of `running` forever.

use std::collections::HashMap;

use diesel::prelude::*;

use super::edit::chunked;
use super::schema::{host_run_state, hosts, run_bundles, run_events, run_hosts, run_stdout, runs};
use super::{now_ms, DbConn, StoreError};
use crate::runs::{Counts, HostState, HostStatus, RunSpec, RunStatus};

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = runs)]
pub struct Run {
    pub id: i64,
    pub project_id: i64,
    pub status: String,
    pub playbook: String,
    /// JSON of [`crate::runs::Source`].
    pub source: String,
    pub git_commit: Option<String>,
    /// JSON of [`crate::runs::Target`].
    pub target: String,
    pub target_group: Option<String>,
    /// JSON of [`crate::runs::Options`].
    pub options: String,
    pub created_by: String,
    pub rc: Option<i32>,
    pub reason: Option<String>,
    pub bundle_etag: Option<String>,
    pub hosts_total: i32,
    pub hosts_ok: i32,
    pub hosts_changed: i32,
    pub hosts_failed: i32,
    pub hosts_unreachable: i32,
    pub hosts_skipped: i32,
    pub events_received: i64,
    pub events_lost: bool,
    pub stdout_bytes: i64,
    pub stdout_truncated: bool,
    pub cancel_requested: Option<String>,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    /// When the run claimed its hosts (see [`super::queue`]).
    pub claimed_at: Option<i64>,
    /// JSON of why a queued run waits.
    pub waiting_for: Option<String>,
}

impl Run {
    pub fn status(&self) -> RunStatus {
        RunStatus::parse(&self.status).unwrap_or(RunStatus::Error)
    }

    pub fn spec(&self) -> Result<RunSpec, StoreError> {
        let bad =
            |what: &str, e: serde_json::Error| StoreError::Invalid(format!("run {}: stored {what}: {e}", self.id));
        Ok(RunSpec {
            playbook: self.playbook.clone(),
            source: serde_json::from_str(&self.source).map_err(|e| bad("source", e))?,
            target: serde_json::from_str(&self.target).map_err(|e| bad("target", e))?,
            options: serde_json::from_str(&self.options).map_err(|e| bad("options", e))?,
        })
    }
}

/// One host's row of a run.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = run_hosts)]
pub struct RunHost {
    pub run_id: i64,
    pub host: String,
    pub status: String,
    pub ok: i32,
    pub changed: i32,
    pub failures: i32,
    pub unreachable: i32,
    pub skipped: i32,
    pub rescued: i32,
    pub ignored: i32,
    pub last_task: Option<String>,
    pub updated_at: i64,
}

/// A host's reachability from the last run that targeted it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = host_run_state)]
pub struct HostRunState {
    pub host_id: i64,
    pub project_id: i64,
    pub last_run_id: i64,
    pub last_run_status: String,
    pub last_run_at: i64,
    pub last_reachable_at: Option<i64>,
    pub last_unreachable_at: Option<i64>,
}

/// A run to create, already checked.
pub struct NewRun<'a> {
    pub project_id: i64,
    pub spec: &'a RunSpec,
    pub created_by: &'a str,
    pub bundle: &'a [u8],
    pub bundle_etag: &'a str,
    /// The target's hosts (they start as `pending`).
    pub hosts: &'a [String],
    /// The project revision of the inventory in `bundle`.
    pub inventory_revision: Option<i64>,
    pub holder: &'a str,
    pub lease_ttl_ms: i64,
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("run fields serialize")
}

/// Creates a queued run, held by `holder`, with its bundle and hosts.
pub fn create(conn: &mut DbConn, new: &NewRun) -> Result<Run, StoreError> {
    super::tx::write(conn, |conn| {
        let now = now_ms();
        diesel::insert_into(runs::table)
            .values((
                runs::project_id.eq(new.project_id),
                runs::status.eq(RunStatus::Queued.as_str()),
                runs::playbook.eq(&new.spec.playbook),
                runs::source.eq(json(&new.spec.source)),
                runs::target.eq(json(&new.spec.target)),
                runs::target_group.eq(new.spec.target.group.as_deref()),
                runs::options.eq(json(&new.spec.options)),
                runs::created_by.eq(new.created_by),
                runs::bundle_etag.eq(new.bundle_etag),
                runs::hosts_total.eq(new.hosts.len() as i32),
                runs::lease_holder.eq(new.holder),
                runs::lease_expires_at.eq(now + new.lease_ttl_ms),
                runs::created_at.eq(now),
                runs::updated_at.eq(now),
            ))
            .execute(conn)?;
        let id = runs::table
            .filter(runs::project_id.eq(new.project_id))
            .filter(runs::lease_holder.eq(new.holder))
            .order(runs::id.desc())
            .select(runs::id)
            .first::<i64>(conn)?;
        diesel::insert_into(run_bundles::table)
            .values((
                run_bundles::run_id.eq(id),
                run_bundles::bytes.eq(new.bundle),
                run_bundles::inventory_revision.eq(new.inventory_revision),
            ))
            .execute(conn)?;
        for chunk in chunked(new.hosts) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|h| {
                    (
                        run_hosts::run_id.eq(id),
                        run_hosts::host.eq(h.as_str()),
                        run_hosts::status.eq(HostStatus::Pending.as_str()),
                        run_hosts::updated_at.eq(now),
                    )
                })
                .collect();
            batch_insert!(conn, run_hosts::table, &rows)?;
        }
        get(conn, None, id)?.ok_or_else(|| StoreError::NotFound(format!("run {id}")))
    })
}

/// Run `id`, within project `pid` when given (another project's run is
/// exactly as absent as one never made).
pub fn get(conn: &mut DbConn, pid: Option<i64>, id: i64) -> Result<Option<Run>, StoreError> {
    let mut q = runs::table.filter(runs::id.eq(id)).into_boxed();
    if let Some(pid) = pid {
        q = q.filter(runs::project_id.eq(pid));
    }
    Ok(q.select(Run::as_select()).first(conn).optional()?)
}

/// `waiting_for` of the runs `ids` that are queued, by id.
pub fn waiting_of(
    conn: &mut DbConn,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Option<String>>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in chunked(ids) {
        out.extend(
            runs::table
                .filter(runs::id.eq_any(chunk))
                .filter(runs::status.eq(RunStatus::Queued.as_str()))
                .select((runs::id, runs::waiting_for))
                .load::<(i64, Option<String>)>(conn)?,
        );
    }
    Ok(out)
}

/// What `GET /v1/runs` filters on.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<RunStatus>,
    pub group: Option<String>,
    /// Created at or after (ms).
    pub since: Option<i64>,
    /// Only runs with a smaller id (paging newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Runs of project `pid`, newest first.
pub fn list(conn: &mut DbConn, pid: i64, f: &ListFilter) -> Result<Vec<Run>, StoreError> {
    let mut q = runs::table.filter(runs::project_id.eq(pid)).into_boxed();
    if let Some(s) = f.status {
        q = q.filter(runs::status.eq(s.as_str()));
    }
    if let Some(g) = &f.group {
        q = q.filter(runs::target_group.eq(g.clone()));
    }
    if let Some(t) = f.since {
        q = q.filter(runs::created_at.ge(t));
    }
    if let Some(b) = f.before_id {
        q = q.filter(runs::id.lt(b));
    }
    Ok(q.order(runs::id.desc()).limit(f.limit.max(1)).select(Run::as_select()).load(conn)?)
}

/// Marks run `id` running (from queued and claimed) under `holder`'s
/// lease, with the commit it checked out. False when the run is no longer
/// queued, is unclaimed, or another process holds it.
pub fn start(conn: &mut DbConn, id: i64, holder: &str, commit: Option<&str>) -> Result<bool, StoreError> {
    let now = now_ms();
    let n = super::tx::write(conn, |conn| {
        diesel::update(
            runs::table
                .filter(runs::id.eq(id))
                .filter(runs::status.eq(RunStatus::Queued.as_str()))
                .filter(runs::claimed_at.is_not_null())
                .filter(runs::lease_holder.eq(holder)),
        )
        .set((
            runs::status.eq(RunStatus::Running.as_str()),
            runs::git_commit.eq(commit),
            runs::started_at.eq(now),
            runs::updated_at.eq(now),
        ))
        .execute(conn)
    })?;
    Ok(n == 1)
}

/// Renews `holder`'s lease of run `id`. Returns the cancel request, if
/// any; `Err(Conflict)` when the lease is gone (the run was swept lost).
pub fn renew(conn: &mut DbConn, id: i64, holder: &str, ttl_ms: i64) -> Result<Option<String>, StoreError> {
    let now = now_ms();
    super::tx::write(conn, |conn| {
        let n = diesel::update(runs::table.filter(runs::id.eq(id)).filter(runs::lease_holder.eq(holder)))
            .set(runs::lease_expires_at.eq(now + ttl_ms))
            .execute(conn)?;
        if n != 1 {
            return Err(StoreError::Conflict(format!("run {id}: the lease was lost")));
        }
        Ok(runs::table.find(id).select(runs::cancel_requested).first::<Option<String>>(conn)?)
    })
}

/// Asks for run `id` of project `pid` to be canceled (`graceful` or
/// `immediate`; an immediate request replaces a graceful one, never the
/// other way round). A queued run no process has claimed yet is canceled
/// at once (final). None when there is no such run.
pub fn request_cancel(conn: &mut DbConn, pid: i64, id: i64, mode: &str) -> Result<Option<Run>, StoreError> {
    super::tx::write(conn, |conn| {
        if let Some(run) = super::queue::cancel_queued(conn, pid, id, "canceled while queued")? {
            return Ok(Some(run));
        }
        let Some(run) = get(conn, Some(pid), id)? else { return Ok(None) };
        if run.status().is_final() || run.cancel_requested.as_deref() == Some("immediate") {
            return Ok(Some(run));
        }
        diesel::update(runs::table.find(id))
            .set((runs::cancel_requested.eq(mode), runs::updated_at.eq(now_ms())))
            .execute(conn)?;
        get(conn, Some(pid), id)
    })
}

/// One batch of a run's progress.
#[derive(Debug, Default)]
pub struct Batch {
    /// (counter, event name, host, created ms, the event's JSON)
    pub events: Vec<(i64, String, Option<String>, i64, String)>,
    pub hosts: Vec<(String, HostState)>,
    /// (seq, text)
    pub stdout: Vec<(i32, String)>,
    pub counts: Counts,
    pub events_received: i64,
    pub stdout_bytes: i64,
    pub stdout_truncated: bool,
    /// A rolling run's batch changes, in order.
    pub rollout: Vec<super::rollouts::BatchUpdate>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.hosts.is_empty() && self.stdout.is_empty() && self.rollout.is_empty()
    }

    /// Takes in the batch that followed this one, so that a writer that
    /// fell behind stores both in one transaction: events and output
    /// appended, each host's row written once with its later state, the
    /// counters the later batch's.
    pub fn absorb(&mut self, later: Batch) {
        self.events.extend(later.events);
        self.stdout.extend(later.stdout);
        self.rollout.extend(later.rollout);
        let mut at: HashMap<String, usize> = self.hosts.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        for (name, state) in later.hosts {
            match at.get(&name) {
                Some(&i) => self.hosts[i].1 = state,
                None => {
                    at.insert(name.clone(), self.hosts.len());
                    self.hosts.push((name, state));
                }
            }
        }
        self.counts = later.counts;
        self.events_received = later.events_received;
        self.stdout_bytes = later.stdout_bytes;
        self.stdout_truncated = later.stdout_truncated;
    }
}

/// Writes a batch in one transaction, if `holder` still holds run `id`.
pub fn flush(conn: &mut DbConn, id: i64, holder: &str, b: &Batch) -> Result<(), StoreError> {
    let now = now_ms();
    super::tx::write(conn, |conn| {
        let n = diesel::update(runs::table.filter(runs::id.eq(id)).filter(runs::lease_holder.eq(holder)))
            .set((
                runs::hosts_total.eq(b.counts.hosts),
                runs::hosts_ok.eq(b.counts.ok),
                runs::hosts_changed.eq(b.counts.changed),
                runs::hosts_failed.eq(b.counts.failed),
                runs::hosts_unreachable.eq(b.counts.unreachable),
                runs::hosts_skipped.eq(b.counts.skipped),
                runs::events_received.eq(b.events_received),
                runs::stdout_bytes.eq(b.stdout_bytes),
                runs::stdout_truncated.eq(b.stdout_truncated),
                runs::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n != 1 {
            return Err(StoreError::Conflict(format!("run {id}: the lease was lost")));
        }
        for chunk in chunked(&b.events) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(c, e, h, t, d)| {
                    (
                        run_events::run_id.eq(id),
                        run_events::counter.eq(*c),
                        run_events::event.eq(e.as_str()),
                        run_events::host.eq(h.as_deref()),
                        run_events::created.eq(*t),
                        run_events::data.eq(d.as_str()),
                    )
                })
                .collect();
            batch_insert!(conn, run_events::table, &rows)?;
        }
        for chunk in b.hosts.chunks(super::CHUNK) {
            let names: Vec<&str> = chunk.iter().map(|(n, _)| n.as_str()).collect();
            diesel::delete(run_hosts::table.filter(run_hosts::run_id.eq(id)).filter(run_hosts::host.eq_any(&names)))
                .execute(conn)?;
            let rows: Vec<_> = chunk
                .iter()
                .map(|(n, h)| {
                    (
                        run_hosts::run_id.eq(id),
                        run_hosts::host.eq(n.as_str()),
                        run_hosts::status.eq(h.status.as_str()),
                        run_hosts::ok.eq(h.recap.ok),
                        run_hosts::changed.eq(h.recap.changed),
                        run_hosts::failures.eq(h.recap.failures),
                        run_hosts::unreachable.eq(h.recap.unreachable),
                        run_hosts::skipped.eq(h.recap.skipped),
                        run_hosts::rescued.eq(h.recap.rescued),
                        run_hosts::ignored.eq(h.recap.ignored),
                        run_hosts::last_task.eq(h.last_task.as_deref()),
                        run_hosts::updated_at.eq(now),
                    )
                })
                .collect();
            batch_insert!(conn, run_hosts::table, &rows)?;
        }
        for (seq, text) in &b.stdout {
            diesel::insert_into(run_stdout::table)
                .values((run_stdout::run_id.eq(id), run_stdout::seq.eq(*seq), run_stdout::chunk.eq(text)))
                .execute(conn)?;
        }
        super::rollouts::apply(conn, id, &b.rollout)
    })
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: RunStatus,
    pub rc: Option<i32>,
    pub reason: Option<String>,
    pub events_lost: bool,
}

/// Ends run `id` (held by `holder`), releases its host locks and records
/// every reported host's reachability. False when the run had already ended (a final status
/// never changes).
pub fn finish(conn: &mut DbConn, id: i64, holder: &str, f: &Finish) -> Result<bool, StoreError> {
    let now = now_ms();
    super::tx::write(conn, |conn| {
        let Some(run) = get(conn, None, id)? else { return Ok(false) };
        if !run.status().can_become(f.status) || run.lease_holder.as_deref() != Some(holder) {
            return Ok(false);
        }
        diesel::update(runs::table.find(id))
            .set((
                runs::status.eq(f.status.as_str()),
                runs::rc.eq(f.rc),
                runs::reason.eq(f.reason.as_deref()),
                runs::events_lost.eq(f.events_lost),
                runs::finished_at.eq(now),
                runs::updated_at.eq(now),
                runs::lease_holder.eq(None::<String>),
                runs::lease_expires_at.eq(None::<i64>),
                runs::waiting_for.eq(None::<String>),
            ))
            .execute(conn)?;
        super::queue::release(conn, &[id])?;
        super::rollouts::close(conn, &[id], &format!("the run ended {}", f.status.as_str()))?;
        record_reachability(conn, &run, now)?;
        Ok(true)
    })
}

/// Sets `host_run_state` of every host the run reported on.
fn record_reachability(conn: &mut DbConn, run: &Run, now: i64) -> Result<(), StoreError> {
    let reported: Vec<(String, String)> = run_hosts::table
        .filter(run_hosts::run_id.eq(run.id))
        .filter(run_hosts::status.ne_all([HostStatus::Pending.as_str(), HostStatus::NotRun.as_str()]))
        .select((run_hosts::host, run_hosts::status))
        .load(conn)?;
    let status: HashMap<String, String> = reported.into_iter().collect();
    let names: Vec<&str> = status.keys().map(String::as_str).collect();
    for chunk in chunked(&names) {
        let ids: Vec<(i64, String)> = hosts::table
            .filter(hosts::project_id.eq(run.project_id))
            .filter(hosts::name.eq_any(chunk))
            .select((hosts::id, hosts::name))
            .load(conn)?;
        let hids: Vec<i64> = ids.iter().map(|(i, _)| *i).collect();
        let before: HashMap<i64, (Option<i64>, Option<i64>)> = host_run_state::table
            .filter(host_run_state::host_id.eq_any(&hids))
            .select((host_run_state::host_id, host_run_state::last_reachable_at, host_run_state::last_unreachable_at))
            .load::<(i64, Option<i64>, Option<i64>)>(conn)?
            .into_iter()
            .map(|(h, r, u)| (h, (r, u)))
            .collect();
        diesel::delete(host_run_state::table.filter(host_run_state::host_id.eq_any(&hids))).execute(conn)?;
        let rows: Vec<_> = ids
            .iter()
            .map(|(hid, name)| {
                let s = status[name].clone();
                let (mut reach, mut unreach) = before.get(hid).copied().unwrap_or((None, None));
                if s == HostStatus::Unreachable.as_str() {
                    unreach = Some(now);
                } else {
                    reach = Some(now);
                }
                (
                    host_run_state::host_id.eq(*hid),
                    host_run_state::project_id.eq(run.project_id),
                    host_run_state::last_run_id.eq(run.id),
                    host_run_state::last_run_status.eq(s),
                    host_run_state::last_run_at.eq(now),
                    host_run_state::last_reachable_at.eq(reach),
                    host_run_state::last_unreachable_at.eq(unreach),
                )
            })
            .collect();
        batch_insert!(conn, host_run_state::table, &rows)?;
    }
    Ok(())
}

/// Turns runs whose holder's lease expired before `now` into `lost` and
/// releases their host locks. Returns their ids.
pub fn sweep_lost(conn: &mut DbConn, now: i64) -> Result<Vec<i64>, StoreError> {
    super::tx::write(conn, |conn| {
        let ids: Vec<i64> = runs::table
            .filter(runs::status.eq_any([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]))
            .filter(runs::lease_expires_at.lt(now).or(runs::lease_expires_at.is_null()))
            .select(runs::id)
            .load(conn)?;
        if ids.is_empty() {
            return Ok(ids);
        }
        diesel::update(runs::table.filter(runs::id.eq_any(&ids)))
            .set((
                runs::status.eq(RunStatus::Lost.as_str()),
                runs::reason.eq("the cratond process running it stopped (its lease expired)"),
                runs::finished_at.eq(now),
                runs::updated_at.eq(now),
                runs::lease_holder.eq(None::<String>),
                runs::lease_expires_at.eq(None::<i64>),
                runs::waiting_for.eq(None::<String>),
            ))
            .execute(conn)?;
        super::queue::release(conn, &ids)?;
        super::rollouts::close(conn, &ids, "the run was lost")?;
        Ok(ids)
    })
}

/// Events of run `id` with a counter above `after`, in order.
pub fn events(conn: &mut DbConn, id: i64, after: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(run_events::table
        .filter(run_events::run_id.eq(id))
        .filter(run_events::counter.gt(after))
        .order(run_events::counter.asc())
        .limit(limit)
        .select((run_events::counter, run_events::data))
        .load(conn)?)
}

/// The run's per-host rows, by host name.
pub fn hosts_of(conn: &mut DbConn, id: i64) -> Result<Vec<RunHost>, StoreError> {
    Ok(run_hosts::table
        .filter(run_hosts::run_id.eq(id))
        .order(run_hosts::host.asc())
        .select(RunHost::as_select())
        .load(conn)?)
}

/// The run's stdout as stored.
pub fn stdout(conn: &mut DbConn, id: i64) -> Result<String, StoreError> {
    let chunks: Vec<String> = run_stdout::table
        .filter(run_stdout::run_id.eq(id))
        .order(run_stdout::seq.asc())
        .select(run_stdout::chunk)
        .load(conn)?;
    Ok(chunks.concat())
}

/// The bundle bytes the run read.
/// The project revision run `id`'s bundle was built from (None: a run
/// stored before revisions were recorded).
pub fn inventory_revision(conn: &mut DbConn, id: i64) -> Result<Option<i64>, StoreError> {
    Ok(run_bundles::table.find(id).select(run_bundles::inventory_revision).first(conn).optional()?.flatten())
}

pub fn bundle(conn: &mut DbConn, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(run_bundles::table.find(id).select(run_bundles::bytes).first(conn).optional()?)
}

/// Reachability of hosts by id.
pub fn host_states(conn: &mut DbConn, ids: &[i64]) -> Result<HashMap<i64, HostRunState>, StoreError> {
    let mut out = HashMap::new();
    for chunk in chunked(ids) {
        for s in host_run_state::table
            .filter(host_run_state::host_id.eq_any(chunk))
            .select(HostRunState::as_select())
            .load::<HostRunState>(conn)?
        {
            out.insert(s.host_id, s);
        }
    }
    Ok(out)
}

/// Ids of project `pid`'s hosts whose last run status is `status`.
pub fn hosts_with_status(conn: &mut DbConn, pid: i64, status: &str) -> Result<Vec<i64>, StoreError> {
    Ok(host_run_state::table
        .filter(host_run_state::project_id.eq(pid))
        .filter(host_run_state::last_run_status.eq(status))
        .select(host_run_state::host_id)
        .load(conn)?)
}

/// Deletes finished runs that ended before `before` (ms), with everything
/// they recorded; returns how many. Runs still going are never pruned.
pub fn prune(conn: &mut DbConn, before: i64) -> Result<usize, StoreError> {
    let ids: Vec<i64> = runs::table
        .filter(runs::finished_at.lt(before))
        .filter(runs::status.ne_all([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]))
        .select(runs::id)
        .load(conn)?;
    let mut n = 0;
    for chunk in chunked(&ids) {
        n += super::tx::write(conn, |conn| {
            diesel::delete(run_events::table.filter(run_events::run_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(run_stdout::table.filter(run_stdout::run_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(run_hosts::table.filter(run_hosts::run_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(run_bundles::table.filter(run_bundles::run_id.eq_any(chunk))).execute(conn)?;
            diesel::delete(
                super::schema::run_approvals::table.filter(super::schema::run_approvals::run_id.eq_any(chunk)),
            )
            .execute(conn)?;
            // A pruned run's commit statuses go with it (sent or not: the
            // run they would describe is gone).
            diesel::delete(
                super::schema::commit_statuses::table.filter(super::schema::commit_statuses::run_id.eq_any(chunk)),
            )
            .execute(conn)?;
            super::queue::release(conn, chunk)?;
            super::rollouts::prune(conn, chunk)?;
            diesel::delete(runs::table.filter(runs::id.eq_any(chunk))).execute(conn).map_err(StoreError::from)
        })?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::Recap;

    fn host(status: HostStatus, ok: i32) -> HostState {
        HostState { status, recap: Recap { ok, ..Default::default() }, last_task: None, from_recap: false }
    }

    #[test]
    fn absorbed_batches_write_each_host_once_with_its_latest_state() {
        let ev = |c: i64| (c, "runner_on_ok".to_string(), Some("a".to_string()), c, format!("{{\"counter\":{c}}}"));
        let mut a = Batch {
            events: vec![ev(1), ev(2)],
            hosts: vec![("a".into(), host(HostStatus::Ok, 1)), ("b".into(), host(HostStatus::Ok, 1))],
            stdout: vec![(1, "x".into())],
            events_received: 2,
            ..Default::default()
        };
        let b = Batch {
            events: vec![ev(3)],
            hosts: vec![("b".into(), host(HostStatus::Failed, 2)), ("c".into(), host(HostStatus::Skipped, 0))],
            stdout: vec![(2, "y".into())],
            events_received: 3,
            stdout_truncated: true,
            ..Default::default()
        };
        a.absorb(b);
        assert_eq!(a.events.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
        let hosts: Vec<(&str, HostStatus, i32)> =
            a.hosts.iter().map(|(n, h)| (n.as_str(), h.status, h.recap.ok)).collect();
        assert_eq!(hosts, [("a", HostStatus::Ok, 1), ("b", HostStatus::Failed, 2), ("c", HostStatus::Skipped, 0)]);
        assert_eq!(a.stdout, [(1, "x".to_string()), (2, "y".to_string())]);
        assert_eq!((a.events_received, a.stdout_truncated), (3, true));
    }
}
