//! Webhook rules as stored, the record of every GitHub delivery, and what
//! each matching rule did with it.
//!
//! The matching is [`crate::webhook_rules`]; this module keeps rows and
//! makes "a delivery is handled once" a database fact: [`record_delivery`]
//! inserts the delivery under the unique key of its `X-GitHub-Delivery` id,
//! and the one insert that succeeds (of however many replays, at however
//! many daemons over one database) is the one that handles it. The rows of
//! `webhook_rule_matches` link a delivery to each rule it matched and to the
//! run that rule submitted, or say why none was.

use diesel::prelude::*;
use serde::Serialize;

use super::edit::{conflict_on_unique, invalid};
use super::schedules::Creator;
use super::schema::{webhook_deliveries, webhook_rule_matches, webhook_rules};
use super::{DbConn, StoreError};
use crate::webhook_rules::{Matcher, RuleSpec};

/// Longest rule name.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest stored template (a POST /v1/runs body).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Longest `X-GitHub-Delivery` id (GitHub's are UUIDs; 191 is what a
/// unique index of utf8mb4 text may hold on MySQL).
pub const MAX_DELIVERY_CHARS: usize = 191;
/// Longest recorded error.
const MAX_ERROR_CHARS: usize = 4000;

/// A rule as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleRecord {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub event: String,
    pub repository: String,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub matchers: Vec<Matcher>,
    /// Sync the project's config refs the push concerns before submitting.
    pub sync: bool,
    /// The run template: a JSON object, a `POST /v1/runs` body without `ref`.
    pub template: String,
    pub enabled: bool,
    pub created_by: String,
    pub creator: Creator,
    pub created_at: i64,
    pub updated_at: i64,
    /// Report the rule's runs to GitHub as commit statuses.
    pub commit_status: bool,
    /// Their context; `None`: `craton/<name>`.
    pub status_context: Option<String>,
}

impl RuleRecord {
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            event: self.event.clone(),
            repository: self.repository.clone(),
            branches: self.branches.clone(),
            tags: self.tags.clone(),
            matchers: self.matchers.clone(),
        }
    }

    /// The context of the rule's commit statuses.
    pub fn context(&self) -> String {
        self.status_context.clone().unwrap_or_else(|| crate::commit_status::default_context(&self.name))
    }
}

/// What a new rule needs (its fields checked by the caller).
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub spec: RuleSpec,
    pub sync: bool,
    pub template: String,
    pub enabled: bool,
    pub created_by: String,
    pub creator: Creator,
    pub commit_status: bool,
    pub status_context: Option<String>,
}

/// A change of a rule; `None` keeps a field. The match fields are given
/// whole (the API merges a partial change into the old ones and checks
/// the result).
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub spec: Option<RuleSpec>,
    pub sync: Option<bool>,
    pub template: Option<String>,
    pub enabled: Option<bool>,
    pub commit_status: Option<bool>,
    /// `Some(None)` goes back to the default context.
    pub status_context: Option<Option<String>>,
}

type Row = (
    (i64, i64, String, String, String, String, String, String, bool),
    (String, bool, String, String, Option<i64>, String, i64, i64, bool, Option<String>),
);

macro_rules! columns {
    () => {
        (
            (
                webhook_rules::id,
                webhook_rules::project_id,
                webhook_rules::name,
                webhook_rules::event,
                webhook_rules::repository,
                webhook_rules::branches,
                webhook_rules::tags,
                webhook_rules::matchers,
                webhook_rules::sync_first,
            ),
            (
                webhook_rules::template,
                webhook_rules::enabled,
                webhook_rules::created_by,
                webhook_rules::creator_kind,
                webhook_rules::creator_token_id,
                webhook_rules::creator_role,
                webhook_rules::created_at,
                webhook_rules::updated_at,
                webhook_rules::commit_status,
                webhook_rules::status_context,
            ),
        )
    };
}

fn record(r: Row) -> RuleRecord {
    let (a, b) = r;
    RuleRecord {
        id: a.0,
        project_id: a.1,
        name: a.2,
        event: a.3,
        repository: a.4,
        // Written by this module from checked values.
        branches: serde_json::from_str(&a.5).unwrap_or_default(),
        tags: serde_json::from_str(&a.6).unwrap_or_default(),
        matchers: serde_json::from_str(&a.7).unwrap_or_default(),
        sync: a.8,
        template: b.0,
        enabled: b.1,
        created_by: b.2,
        creator: Creator { kind: b.3, token_id: b.4, role: b.5 },
        created_at: b.6,
        updated_at: b.7,
        commit_status: b.8,
        status_context: b.9,
    }
}

/// A rule's settings for the audit trail (its times left out: they are
/// the change set's own).
fn audit_json(r: &RuleRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("created_at");
        m.remove("updated_at");
    }
    v
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn check_template(template: &str) -> Result<(), StoreError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(invalid("template", format!("is longer than {MAX_TEMPLATE_BYTES} bytes")));
    }
    Ok(())
}

fn check_context(c: Option<&str>) -> Result<(), StoreError> {
    match c {
        Some(c) => crate::commit_status::check_context(c).map_err(|m| invalid("status_context", m)),
        None => Ok(()),
    }
}

/// Adds a rule to project `pid`.
pub fn create(conn: &mut DbConn, pid: i64, new: &NewRule, now_ms: i64) -> Result<RuleRecord, StoreError> {
    crate::names::check_name("webhook rule", &new.name).map_err(|m| invalid("name", m))?;
    super::text_field("name", &new.name, MAX_NAME_CHARS)?;
    check_template(&new.template)?;
    check_context(new.status_context.as_deref())?;
    super::tx::write(conn, |conn| {
        let taken = || format!("project already has a webhook rule {:?}", new.name);
        diesel::insert_into(webhook_rules::table)
            .values((
                webhook_rules::project_id.eq(pid),
                webhook_rules::name.eq(&new.name),
                webhook_rules::event.eq(&new.spec.event),
                webhook_rules::repository.eq(&new.spec.repository),
                webhook_rules::branches.eq(json_text(&new.spec.branches)),
                webhook_rules::tags.eq(json_text(&new.spec.tags)),
                webhook_rules::matchers.eq(json_text(&new.spec.matchers)),
                webhook_rules::sync_first.eq(new.sync),
                webhook_rules::template.eq(&new.template),
                webhook_rules::enabled.eq(new.enabled),
                webhook_rules::created_by.eq(&new.created_by),
                webhook_rules::creator_kind.eq(&new.creator.kind),
                webhook_rules::creator_token_id.eq(new.creator.token_id),
                webhook_rules::creator_role.eq(&new.creator.role),
                webhook_rules::created_at.eq(now_ms),
                webhook_rules::updated_at.eq(now_ms),
                webhook_rules::commit_status.eq(new.commit_status),
                webhook_rules::status_context.eq(&new.status_context),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        let row: Row = webhook_rules::table
            .filter(webhook_rules::project_id.eq(pid))
            .filter(webhook_rules::name.eq(&new.name))
            .select(columns!())
            .first(conn)?;
        let r = record(row);
        super::audit::note(pid, "webhook_rule", &r.name, None, Some(&audit_json(&r)));
        Ok(r)
    })
}

/// Every rule of project `pid`, by id.
pub fn list(conn: &mut DbConn, pid: i64) -> Result<Vec<RuleRecord>, StoreError> {
    let rows: Vec<Row> = webhook_rules::table
        .filter(webhook_rules::project_id.eq(pid))
        .order(webhook_rules::id)
        .select(columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(record).collect())
}

/// Rule `id` of project `pid` (any project with `None`); a rule of another
/// project is not found.
pub fn get(conn: &mut DbConn, pid: Option<i64>, id: i64) -> Result<RuleRecord, StoreError> {
    let mut q = webhook_rules::table.filter(webhook_rules::id.eq(id)).select(columns!()).into_boxed();
    if let Some(pid) = pid {
        q = q.filter(webhook_rules::project_id.eq(pid));
    }
    let row: Option<Row> = q.first(conn).optional()?;
    row.map(record).ok_or_else(|| StoreError::NotFound(format!("webhook rule {id}")))
}

/// Changes rule `id` of project `pid`.
pub fn update(conn: &mut DbConn, pid: i64, id: i64, patch: &RulePatch, now_ms: i64) -> Result<RuleRecord, StoreError> {
    if let Some(t) = &patch.template {
        check_template(t)?;
    }
    if let Some(c) = &patch.status_context {
        check_context(c.as_deref())?;
    }
    super::tx::write(conn, |conn| {
        let old = get(conn, Some(pid), id)?;
        let spec = patch.spec.clone().unwrap_or_else(|| old.spec());
        diesel::update(webhook_rules::table.filter(webhook_rules::id.eq(id)).filter(webhook_rules::project_id.eq(pid)))
            .set((
                webhook_rules::event.eq(&spec.event),
                webhook_rules::repository.eq(&spec.repository),
                webhook_rules::branches.eq(json_text(&spec.branches)),
                webhook_rules::tags.eq(json_text(&spec.tags)),
                webhook_rules::matchers.eq(json_text(&spec.matchers)),
                webhook_rules::sync_first.eq(patch.sync.unwrap_or(old.sync)),
                webhook_rules::template.eq(patch.template.as_ref().unwrap_or(&old.template)),
                webhook_rules::enabled.eq(patch.enabled.unwrap_or(old.enabled)),
                webhook_rules::updated_at.eq(now_ms),
                webhook_rules::commit_status.eq(patch.commit_status.unwrap_or(old.commit_status)),
                webhook_rules::status_context.eq(patch.status_context.clone().unwrap_or(old.status_context.clone())),
            ))
            .execute(conn)?;
        let new = get(conn, Some(pid), id)?;
        super::audit::note(pid, "webhook_rule", &new.name, Some(&audit_json(&old)), Some(&audit_json(&new)));
        Ok(new)
    })
}

/// Deletes rule `id` of project `pid` and its match log (the deliveries
/// stay, their outcome still naming the rule).
pub fn delete(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let old = get(conn, Some(pid), id)?;
        super::audit::note(pid, "webhook_rule", &old.name, Some(&audit_json(&old)), None);
        // MySQL and SQLite cascade too; spelled out so no backend differs.
        diesel::delete(webhook_rule_matches::table.filter(webhook_rule_matches::rule_id.eq(id))).execute(conn)?;
        diesel::delete(webhook_rules::table.filter(webhook_rules::id.eq(id)).filter(webhook_rules::project_id.eq(pid)))
            .execute(conn)?;
        Ok(())
    })
}

/// Enabled rules of every project following `event` on `repository`
/// (GitHub's names compare without regard to case).
pub fn candidates(conn: &mut DbConn, event: &str, repository: &str) -> Result<Vec<RuleRecord>, StoreError> {
    let rows: Vec<Row> = webhook_rules::table
        .filter(webhook_rules::enabled.eq(true))
        .filter(webhook_rules::event.eq(event))
        .order(webhook_rules::id)
        .select(columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(record).filter(|r| r.repository.eq_ignore_ascii_case(repository)).collect())
}

/// A verified delivery, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    /// `X-GitHub-Delivery`.
    pub delivery: String,
    pub event: String,
    pub repository: Option<String>,
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub received_at: i64,
    /// The daemon that handled it.
    pub holder: String,
    /// JSON: what came of it.
    pub outcome: String,
}

type DeliveryRow = (i64, String, String, Option<String>, Option<String>, Option<String>, i64, String, String);

macro_rules! delivery_columns {
    () => {
        (
            webhook_deliveries::id,
            webhook_deliveries::delivery,
            webhook_deliveries::event,
            webhook_deliveries::repository,
            webhook_deliveries::git_ref,
            webhook_deliveries::sha,
            webhook_deliveries::received_at,
            webhook_deliveries::holder,
            webhook_deliveries::outcome,
        )
    };
}

fn delivery(r: DeliveryRow) -> Delivery {
    Delivery {
        id: r.0,
        delivery: r.1,
        event: r.2,
        repository: r.3,
        git_ref: r.4,
        sha: r.5,
        received_at: r.6,
        holder: r.7,
        outcome: r.8,
    }
}

/// What a delivery's row starts with.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub delivery: &'a str,
    pub event: &'a str,
    pub repository: Option<&'a str>,
    pub git_ref: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub received_at: i64,
    pub holder: &'a str,
    pub outcome: &'a str,
}

/// Records a delivery: `Some(id)` for the first time its id is seen,
/// `None` for a replay (the unique key decides, so two daemons agree).
pub fn record_delivery(conn: &mut DbConn, d: &NewDelivery) -> Result<Option<i64>, StoreError> {
    if d.delivery.is_empty() || d.delivery.chars().count() > MAX_DELIVERY_CHARS {
        return Err(invalid("X-GitHub-Delivery", format!("must be 1 to {MAX_DELIVERY_CHARS} characters")));
    }
    super::text_field("X-GitHub-Delivery", d.delivery, MAX_DELIVERY_CHARS)?;
    let cut = |s: Option<&str>, n: usize| s.map(|s| s.chars().filter(|c| *c != '\0').take(n).collect::<String>());
    let r = super::tx::write(conn, |conn| {
        diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::delivery.eq(d.delivery),
                webhook_deliveries::event.eq(cut(Some(d.event), 64).unwrap_or_default()),
                webhook_deliveries::repository.eq(cut(d.repository, 255)),
                webhook_deliveries::git_ref.eq(cut(d.git_ref, 1024)),
                webhook_deliveries::sha.eq(cut(d.sha, 64)),
                webhook_deliveries::received_at.eq(d.received_at),
                webhook_deliveries::holder.eq(d.holder),
                webhook_deliveries::outcome.eq(d.outcome),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, || "duplicate".into()))?;
        let id: i64 = webhook_deliveries::table
            .filter(webhook_deliveries::delivery.eq(d.delivery))
            .select(webhook_deliveries::id)
            .first(conn)?;
        Ok(id)
    });
    match r {
        Ok(id) => Ok(Some(id)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The delivery whose `X-GitHub-Delivery` is `guid`.
pub fn delivery_by_guid(conn: &mut DbConn, guid: &str) -> Result<Option<Delivery>, StoreError> {
    let row: Option<DeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::delivery.eq(guid))
        .select(delivery_columns!())
        .first(conn)
        .optional()?;
    Ok(row.map(delivery))
}

/// Every delivery, newest first, below id `before_id` when given (tests
/// and operators: deliveries belong to no project).
pub fn deliveries(conn: &mut DbConn, before_id: Option<i64>, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut q = webhook_deliveries::table
        .select(delivery_columns!())
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before_id {
        q = q.filter(webhook_deliveries::id.lt(b));
    }
    let rows: Vec<DeliveryRow> = q.load(conn)?;
    Ok(rows.into_iter().map(delivery).collect())
}

/// Replaces what a delivery says came of it.
pub fn set_outcome(conn: &mut DbConn, delivery_id: i64, outcome: &str) -> Result<(), StoreError> {
    diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq(delivery_id)))
        .set(webhook_deliveries::outcome.eq(outcome))
        .execute(conn)?;
    Ok(())
}

/// What one rule did with one delivery.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleMatch {
    pub id: i64,
    pub delivery_id: i64,
    pub rule_id: i64,
    pub project_id: i64,
    /// `pending`, `syncing`, `submitted`, `refused` or `sync_failed`.
    pub status: String,
    /// A pull request's check + diff run.
    pub simulation: bool,
    /// The commit the run runs.
    pub sha: Option<String>,
    pub run_id: Option<i64>,
    pub error: Option<String>,
    pub updated_at: i64,
}

type MatchRow = (i64, i64, i64, i64, String, bool, Option<String>, Option<i64>, Option<String>, i64);

macro_rules! match_columns {
    () => {
        (
            webhook_rule_matches::id,
            webhook_rule_matches::delivery_id,
            webhook_rule_matches::rule_id,
            webhook_rule_matches::project_id,
            webhook_rule_matches::status,
            webhook_rule_matches::simulation,
            webhook_rule_matches::sha,
            webhook_rule_matches::run_id,
            webhook_rule_matches::error,
            webhook_rule_matches::updated_at,
        )
    };
}

fn rule_match(r: MatchRow) -> RuleMatch {
    RuleMatch {
        id: r.0,
        delivery_id: r.1,
        rule_id: r.2,
        project_id: r.3,
        status: r.4,
        simulation: r.5,
        sha: r.6,
        run_id: r.7,
        error: r.8,
        updated_at: r.9,
    }
}

/// Records that `rules` (`(rule, project)`) matched delivery `delivery_id`,
/// each `pending`.
pub fn add_matches(
    conn: &mut DbConn,
    delivery_id: i64,
    rules: &[(i64, i64)],
    simulation: bool,
    sha: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        for (rule, project) in rules {
            diesel::insert_into(webhook_rule_matches::table)
                .values((
                    webhook_rule_matches::delivery_id.eq(delivery_id),
                    webhook_rule_matches::rule_id.eq(rule),
                    webhook_rule_matches::project_id.eq(project),
                    webhook_rule_matches::status.eq("pending"),
                    webhook_rule_matches::simulation.eq(simulation),
                    webhook_rule_matches::sha.eq(sha),
                    webhook_rule_matches::updated_at.eq(now_ms),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Moves the match of `rule_id` and `delivery_id` to `status`, with the
/// run it submitted or why none.
pub fn set_match(
    conn: &mut DbConn,
    delivery_id: i64,
    rule_id: i64,
    status: &str,
    run_id: Option<i64>,
    error: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let error = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
    diesel::update(
        webhook_rule_matches::table
            .filter(webhook_rule_matches::delivery_id.eq(delivery_id))
            .filter(webhook_rule_matches::rule_id.eq(rule_id)),
    )
    .set((
        webhook_rule_matches::status.eq(status),
        webhook_rule_matches::run_id.eq(run_id),
        webhook_rule_matches::error.eq(error),
        webhook_rule_matches::updated_at.eq(now_ms),
    ))
    .execute(conn)?;
    Ok(())
}

/// The matches of delivery `delivery_id`, by rule.
pub fn matches_of(conn: &mut DbConn, delivery_id: i64) -> Result<Vec<RuleMatch>, StoreError> {
    let rows: Vec<MatchRow> = webhook_rule_matches::table
        .filter(webhook_rule_matches::delivery_id.eq(delivery_id))
        .order(webhook_rule_matches::rule_id)
        .select(match_columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(rule_match).collect())
}

/// Deliveries rule `rule_id` matched, newest first, below match id
/// `before_id` when given, at most `limit`, each with its delivery.
pub fn rule_deliveries(
    conn: &mut DbConn,
    rule_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<(RuleMatch, Delivery)>, StoreError> {
    let mut q = webhook_rule_matches::table
        .inner_join(webhook_deliveries::table)
        .filter(webhook_rule_matches::rule_id.eq(rule_id))
        .select((match_columns!(), delivery_columns!()))
        .order(webhook_rule_matches::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before_id {
        q = q.filter(webhook_rule_matches::id.lt(b));
    }
    let rows: Vec<(MatchRow, DeliveryRow)> = q.load(conn)?;
    Ok(rows.into_iter().map(|(m, d)| (rule_match(m), delivery(d))).collect())
}
