//! Schedules as stored, and the claim of an occurrence.
//!
//! The arithmetic is [`crate::schedules`]; this module keeps rows and makes
//! "exactly one daemon handles an occurrence" a database fact: [`claim`]
//! moves the schedule's `next_run_at` from the value the ticker read
//! (compare-and-set) and inserts the firing row under the unique key
//! `(schedule_id, occurrence)`, both in one write transaction. A daemon
//! that loses either step rolls back and does nothing.

use diesel::prelude::*;
use serde::Serialize;

use super::edit::{conflict_on_unique, invalid};
use super::schema::{schedule_after, schedule_firings, schedules};
use super::{DbConn, StoreError};
use crate::schedules::CatchUp;
use crate::windows::{Recurrence, WindowError, WindowKind};

/// Longest schedule name.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest expression, as for windows.
pub const MAX_EXPRESSION_CHARS: usize = 4096;
/// Longest stored template (a POST /v1/runs body).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Longest recorded submit error.
const MAX_ERROR_CHARS: usize = 4000;

/// A schedule as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    /// The run template: a JSON object, exactly a `POST /v1/runs` body.
    pub template: String,
    pub kind: String,
    pub expression: String,
    pub time_zone: String,
    pub enabled: bool,
    pub catch_up: String,
    /// The first occurrence not yet handled (ms); `None` when disabled or
    /// the rule has no further occurrence.
    pub next_run_at: Option<i64>,
    pub created_by: String,
    pub creator: Creator,
    pub created_at: i64,
    pub updated_at: i64,
    /// Schedules whose latest run this one's runs come after.
    pub after_schedules: Vec<i64>,
}

impl ScheduleRecord {
    /// The parsed recurrence (rows were checked when written).
    pub fn recurrence(&self) -> Result<Recurrence, WindowError> {
        Recurrence::parse(self.kind.parse()?, &self.expression, Some(&self.time_zone))
    }

    pub fn catch_up(&self) -> CatchUp {
        self.catch_up.parse().unwrap_or_default()
    }
}

/// Whose authority the schedule's runs have.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Creator {
    /// `token`, `keystone` or `local`.
    pub kind: String,
    pub token_id: Option<i64>,
    /// The role at creation (a token's is read again at fire time).
    pub role: String,
}

/// What a new schedule needs.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub name: String,
    /// JSON text of the template object (checked by the caller).
    pub template: String,
    pub kind: WindowKind,
    pub expression: String,
    pub time_zone: Option<String>,
    pub enabled: bool,
    pub catch_up: CatchUp,
    pub created_by: String,
    pub creator: Creator,
    pub after_schedules: Vec<i64>,
}

/// A change of a schedule; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct SchedulePatch {
    pub template: Option<String>,
    /// kind, expression, time zone: a new rule is given whole.
    pub rule: Option<(WindowKind, String, Option<String>)>,
    pub enabled: Option<bool>,
    pub catch_up: Option<CatchUp>,
    pub after_schedules: Option<Vec<i64>>,
}

fn rule_error(e: WindowError) -> StoreError {
    invalid(e.field, e.message)
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    bool,
    String,
    Option<i64>,
    String,
    String,
    Option<i64>,
    String,
    i64,
    i64,
);

fn record(r: Row) -> ScheduleRecord {
    ScheduleRecord {
        id: r.0,
        project_id: r.1,
        name: r.2,
        template: r.3,
        kind: r.4,
        expression: r.5,
        time_zone: r.6,
        enabled: r.7,
        catch_up: r.8,
        next_run_at: r.9,
        created_by: r.10,
        creator: Creator { kind: r.11, token_id: r.12, role: r.13 },
        created_at: r.14,
        updated_at: r.15,
        after_schedules: Vec::new(),
    }
}

/// Fills `after_schedules` of `recs` from `schedule_after`.
fn with_after(conn: &mut DbConn, mut recs: Vec<ScheduleRecord>) -> Result<Vec<ScheduleRecord>, StoreError> {
    let ids: Vec<i64> = recs.iter().map(|r| r.id).collect();
    let mut by: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    for chunk in super::edit::chunked(&ids) {
        for (s, a) in schedule_after::table
            .filter(schedule_after::schedule_id.eq_any(chunk))
            .order((schedule_after::schedule_id, schedule_after::after_id))
            .select((schedule_after::schedule_id, schedule_after::after_id))
            .load::<(i64, i64)>(conn)?
        {
            by.entry(s).or_default().push(a);
        }
    }
    for r in &mut recs {
        r.after_schedules = by.remove(&r.id).unwrap_or_default();
    }
    Ok(recs)
}

/// Sets the schedules that schedule `id` of project `pid` comes after:
/// each a schedule of the project, not itself, and no cycle (Conflict
/// naming it).
fn set_after(conn: &mut DbConn, pid: i64, id: i64, after: &[i64]) -> Result<(), StoreError> {
    if after.len() > crate::schedules::MAX_AFTER_SCHEDULES {
        return Err(invalid(
            "after_schedules",
            format!("names more than {} schedules", crate::schedules::MAX_AFTER_SCHEDULES),
        ));
    }
    let ours: Vec<i64> = schedules::table.filter(schedules::project_id.eq(pid)).select(schedules::id).load(conn)?;
    for (i, a) in after.iter().enumerate() {
        if !ours.contains(a) {
            return Err(invalid("after_schedules", format!("entry {i}: no schedule {a} in this project")));
        }
        if after[..i].contains(a) {
            return Err(invalid("after_schedules", format!("entry {i}: schedule {a} is listed twice")));
        }
    }
    let edges: Vec<(i64, i64)> = schedule_after::table
        .filter(schedule_after::schedule_id.eq_any(&ours))
        .select((schedule_after::schedule_id, schedule_after::after_id))
        .load(conn)?;
    if let Some(cycle) = crate::schedules::cycle_through(&edges, id, after) {
        let path: Vec<String> = cycle.iter().map(i64::to_string).collect();
        return Err(StoreError::Conflict(format!(
            "after_schedules would make a cycle of schedules: {} (each comes after the next)",
            path.join(" -> ")
        )));
    }
    diesel::delete(schedule_after::table.filter(schedule_after::schedule_id.eq(id))).execute(conn)?;
    for a in after {
        diesel::insert_into(schedule_after::table)
            .values((schedule_after::schedule_id.eq(id), schedule_after::after_id.eq(*a)))
            .execute(conn)?;
    }
    Ok(())
}

/// The latest run fired by each of `schedules` (those that fired one).
pub fn latest_runs(conn: &mut DbConn, schedules: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    for s in schedules {
        let run: Option<Option<i64>> = schedule_firings::table
            .filter(schedule_firings::schedule_id.eq(*s))
            .filter(schedule_firings::run_id.is_not_null())
            .order(schedule_firings::id.desc())
            .select(schedule_firings::run_id)
            .first(conn)
            .optional()?;
        out.extend(run.flatten());
    }
    Ok(out)
}

macro_rules! columns {
    () => {
        (
            schedules::id,
            schedules::project_id,
            schedules::name,
            schedules::template,
            schedules::kind,
            schedules::expression,
            schedules::time_zone,
            schedules::enabled,
            schedules::catch_up,
            schedules::next_run_at,
            schedules::created_by,
            schedules::creator_kind,
            schedules::creator_token_id,
            schedules::creator_role,
            schedules::created_at,
            schedules::updated_at,
        )
    };
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The `next_run_at` of a rule enabled at `now_ms`: its first occurrence
/// after now (a schedule never fires for a time before it existed).
fn next_from(rec: &Recurrence, enabled: bool, now_ms: i64) -> Option<i64> {
    if !enabled {
        return None;
    }
    let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
    crate::schedules::next_after(rec, now).map(ms)
}

fn check_template(template: &str) -> Result<(), StoreError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(invalid("template", format!("is longer than {MAX_TEMPLATE_BYTES} bytes")));
    }
    Ok(())
}

/// Adds a schedule to project `pid`; `now_ms` is the clock's "now".
pub fn create(conn: &mut DbConn, pid: i64, new: &NewSchedule, now_ms: i64) -> Result<ScheduleRecord, StoreError> {
    crate::names::check_name("schedule", &new.name).map_err(|m| invalid("name", m))?;
    super::text_field("name", &new.name, MAX_NAME_CHARS)?;
    super::text_field("expression", &new.expression, MAX_EXPRESSION_CHARS)?;
    check_template(&new.template)?;
    let rec = Recurrence::parse(new.kind, &new.expression, new.time_zone.as_deref()).map_err(rule_error)?;
    let next = next_from(&rec, new.enabled, now_ms);
    super::tx::write(conn, |conn| {
        let taken = || format!("project already has a schedule {:?}", new.name);
        diesel::insert_into(schedules::table)
            .values((
                schedules::project_id.eq(pid),
                schedules::name.eq(&new.name),
                schedules::template.eq(&new.template),
                schedules::kind.eq(new.kind.as_str()),
                schedules::expression.eq(new.expression.trim()),
                schedules::time_zone.eq(rec.time_zone()),
                schedules::enabled.eq(new.enabled),
                schedules::catch_up.eq(new.catch_up.as_str()),
                schedules::next_run_at.eq(next),
                schedules::created_by.eq(&new.created_by),
                schedules::creator_kind.eq(&new.creator.kind),
                schedules::creator_token_id.eq(new.creator.token_id),
                schedules::creator_role.eq(&new.creator.role),
                schedules::created_at.eq(now_ms),
                schedules::updated_at.eq(now_ms),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        let row: Row = schedules::table
            .filter(schedules::project_id.eq(pid))
            .filter(schedules::name.eq(&new.name))
            .select(columns!())
            .first(conn)?;
        set_after(conn, pid, row.0, &new.after_schedules)?;
        let rec = get(conn, Some(pid), row.0)?;
        super::audit::note(pid, "schedule", &rec.name, None, Some(&audit_json(&rec)));
        Ok(rec)
    })
}

/// A schedule's settings as the audit trail keeps them (not its moving
/// `next_run_at`).
fn audit_json(s: &ScheduleRecord) -> serde_json::Value {
    let template: serde_json::Value = serde_json::from_str(&s.template).unwrap_or_default();
    serde_json::json!({"id": s.id, "template": template, "kind": s.kind, "expression": s.expression,
        "time_zone": s.time_zone, "enabled": s.enabled, "catch_up": s.catch_up, "after_schedules": s.after_schedules})
}

/// Every schedule of project `pid`, by id.
pub fn list(conn: &mut DbConn, pid: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
    let rows: Vec<Row> =
        schedules::table.filter(schedules::project_id.eq(pid)).order(schedules::id).select(columns!()).load(conn)?;
    with_after(conn, rows.into_iter().map(record).collect())
}

/// Schedule `id` of project `pid` (any project with `None`); a schedule
/// of another project is not found.
pub fn get(conn: &mut DbConn, pid: Option<i64>, id: i64) -> Result<ScheduleRecord, StoreError> {
    let mut q = schedules::table.filter(schedules::id.eq(id)).select(columns!()).into_boxed();
    if let Some(pid) = pid {
        q = q.filter(schedules::project_id.eq(pid));
    }
    let row: Option<Row> = q.first(conn).optional()?;
    let rec = row.map(record).ok_or_else(|| StoreError::NotFound(format!("schedule {id}")))?;
    Ok(with_after(conn, vec![rec])?.remove(0))
}

/// Changes schedule `id` of project `pid`. A new rule, or enabling,
/// moves `next_run_at` to the first occurrence after `now_ms` (no catch-up
/// for the time it was disabled); disabling clears it.
pub fn update(
    conn: &mut DbConn,
    pid: i64,
    id: i64,
    patch: &SchedulePatch,
    now_ms: i64,
) -> Result<ScheduleRecord, StoreError> {
    if let Some(t) = &patch.template {
        check_template(t)?;
    }
    if let Some((_, expression, _)) = &patch.rule {
        super::text_field("expression", expression, MAX_EXPRESSION_CHARS)?;
    }
    super::tx::write(conn, |conn| {
        let old = get(conn, Some(pid), id)?;
        let (kind, expression, time_zone) = match &patch.rule {
            Some((k, e, z)) => (*k, e.trim().to_string(), z.clone()),
            None => (old.kind.parse().map_err(rule_error)?, old.expression.clone(), Some(old.time_zone.clone())),
        };
        let rec = Recurrence::parse(kind, &expression, time_zone.as_deref()).map_err(rule_error)?;
        let enabled = patch.enabled.unwrap_or(old.enabled);
        let catch_up = patch.catch_up.map_or(old.catch_up.clone(), |c| c.as_str().to_string());
        let next = if patch.rule.is_some() || !enabled || !old.enabled {
            next_from(&rec, enabled, now_ms)
        } else {
            old.next_run_at
        };
        diesel::update(schedules::table.filter(schedules::id.eq(id)).filter(schedules::project_id.eq(pid)))
            .set((
                schedules::template.eq(patch.template.as_ref().unwrap_or(&old.template)),
                schedules::kind.eq(kind.as_str()),
                schedules::expression.eq(&expression),
                schedules::time_zone.eq(rec.time_zone()),
                schedules::enabled.eq(enabled),
                schedules::catch_up.eq(catch_up),
                schedules::next_run_at.eq(next),
                schedules::updated_at.eq(now_ms),
            ))
            .execute(conn)?;
        if let Some(after) = &patch.after_schedules {
            set_after(conn, pid, id, after)?;
        }
        let new = get(conn, Some(pid), id)?;
        super::audit::note(pid, "schedule", &new.name, Some(&audit_json(&old)), Some(&audit_json(&new)));
        Ok(new)
    })
}

/// Deletes schedule `id` of project `pid` (and its firings).
pub fn delete(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let old = get(conn, Some(pid), id)?;
        super::audit::note(pid, "schedule", &old.name, Some(&audit_json(&old)), None);
        // MySQL and SQLite cascade too; spelled out so no backend differs.
        diesel::delete(schedule_firings::table.filter(schedule_firings::schedule_id.eq(id))).execute(conn)?;
        diesel::delete(
            schedule_after::table.filter(schedule_after::schedule_id.eq(id).or(schedule_after::after_id.eq(id))),
        )
        .execute(conn)?;
        diesel::delete(schedules::table.filter(schedules::id.eq(id)).filter(schedules::project_id.eq(pid)))
            .execute(conn)?;
        Ok(())
    })
}

/// Enabled schedules of every project whose `next_run_at` is at or before
/// `now_ms`: what a tick looks at.
pub fn due(conn: &mut DbConn, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
    let rows: Vec<Row> = schedules::table
        .filter(schedules::enabled.eq(true))
        .filter(schedules::next_run_at.le(now_ms))
        .order(schedules::id)
        .select(columns!())
        .load(conn)?;
    with_after(conn, rows.into_iter().map(record).collect())
}

/// What a claim records.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub schedule_id: i64,
    /// The `next_run_at` the ticker read: the claim holds only if no one
    /// moved it since.
    pub expected_next: i64,
    pub occurrence: i64,
    /// Claimed to run it (`claimed`) or only to record the skip (`skipped`).
    pub fire: bool,
    pub missed: i64,
    pub new_next: Option<i64>,
    /// Which daemon claimed it.
    pub holder: &'a str,
    pub now_ms: i64,
}

/// Claims an occurrence; `Some(firing id)` for the one daemon that wins,
/// `None` for everyone else.
pub fn claim(conn: &mut DbConn, c: &Claim) -> Result<Option<i64>, StoreError> {
    let r = super::tx::write(conn, |conn| {
        let moved = diesel::update(
            schedules::table
                .filter(schedules::id.eq(c.schedule_id))
                .filter(schedules::enabled.eq(true))
                .filter(schedules::next_run_at.eq(c.expected_next)),
        )
        .set(schedules::next_run_at.eq(c.new_next))
        .execute(conn)?;
        if moved == 0 {
            return Err(StoreError::Conflict("lost".into()));
        }
        let (status, error) = if c.fire {
            ("claimed", None)
        } else {
            ("skipped", Some(format!("missed while no daemon ran ({} occurrence(s)); catch_up is skip", c.missed)))
        };
        diesel::insert_into(schedule_firings::table)
            .values((
                schedule_firings::schedule_id.eq(c.schedule_id),
                schedule_firings::occurrence.eq(c.occurrence),
                schedule_firings::status.eq(status),
                schedule_firings::missed.eq(c.missed),
                schedule_firings::error.eq(error),
                schedule_firings::holder.eq(c.holder),
                schedule_firings::fired_at.eq(c.now_ms),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, || "lost".into()))?;
        let id: i64 = schedule_firings::table
            .filter(schedule_firings::schedule_id.eq(c.schedule_id))
            .filter(schedule_firings::occurrence.eq(c.occurrence))
            .select(schedule_firings::id)
            .first(conn)?;
        Ok(id)
    });
    match r {
        Ok(id) => Ok(Some(id)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records what the submit of a claimed firing gave: a run or an error.
pub fn record_submit(conn: &mut DbConn, firing_id: i64, outcome: Result<i64, String>) -> Result<(), StoreError> {
    let (status, run_id, error) = match outcome {
        Ok(run) => ("submitted", Some(run), None),
        Err(e) => ("error", None, Some(e.chars().take(MAX_ERROR_CHARS).collect::<String>())),
    };
    diesel::update(schedule_firings::table.filter(schedule_firings::id.eq(firing_id)))
        .set((
            schedule_firings::status.eq(status),
            schedule_firings::run_id.eq(run_id),
            schedule_firings::error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// One handled occurrence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Firing {
    pub id: i64,
    pub schedule_id: i64,
    /// The occurrence (ms).
    pub occurrence: i64,
    /// `claimed`, `submitted`, `error` or `skipped`.
    pub status: String,
    pub missed: i64,
    pub run_id: Option<i64>,
    pub error: Option<String>,
    pub holder: String,
    pub fired_at: i64,
}

type FiringRow = (i64, i64, i64, String, i64, Option<i64>, Option<String>, String, i64);

/// Firings of schedule `sid`, newest occurrence first, below the firing id
/// `before_id` when given, at most `limit`.
pub fn firings(conn: &mut DbConn, sid: i64, before_id: Option<i64>, limit: i64) -> Result<Vec<Firing>, StoreError> {
    let mut q = schedule_firings::table
        .filter(schedule_firings::schedule_id.eq(sid))
        .select((
            schedule_firings::id,
            schedule_firings::schedule_id,
            schedule_firings::occurrence,
            schedule_firings::status,
            schedule_firings::missed,
            schedule_firings::run_id,
            schedule_firings::error,
            schedule_firings::holder,
            schedule_firings::fired_at,
        ))
        .order(schedule_firings::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before_id {
        q = q.filter(schedule_firings::id.lt(b));
    }
    let rows: Vec<FiringRow> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, schedule_id, occurrence, status, missed, run_id, error, holder, fired_at)| Firing {
            id,
            schedule_id,
            occurrence,
            status,
            missed,
            run_id,
            error,
            holder,
            fired_at,
        })
        .collect())
}

/// Moves `next_run_at` of schedule `id` from `expected` to `new_next`
/// without a firing (nothing was due after all: the rule changed under
/// the ticker). Losing the compare-and-set is fine: someone else moved it.
pub fn advance(conn: &mut DbConn, id: i64, expected: i64, new_next: Option<i64>) -> Result<(), StoreError> {
    diesel::update(schedules::table.filter(schedules::id.eq(id)).filter(schedules::next_run_at.eq(expected)))
        .set(schedules::next_run_at.eq(new_next))
        .execute(conn)?;
    Ok(())
}
