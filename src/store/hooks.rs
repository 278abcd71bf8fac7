//! Outbound webhooks as stored: a project's hooks, the deliveries queued
//! for them and each attempt of a delivery (the delivery log).
//!
//! Deliveries live in the database from the moment an event happens, so a
//! daemon that stops resumes them when it (or another) starts. A daemon
//! sends a delivery only after claiming it ([`claim`]: an UPDATE that
//! succeeds for one process, with an expiry so a dead claimer's deliveries
//! come back), and the claim is dropped when the attempt is recorded
//! ([`record_attempt`]). Deliveries of one hook and one subject (a run) are
//! claimed strictly in order: the next waits until the one before it is
//! delivered or has failed for good.
//!
//! The hook secret is write-only: [`HookRecord`] has none, and the only type
//! that carries it ([`HookTarget`]) keeps it out of `Debug`.

use diesel::prelude::*;
use serde::Serialize;

use super::edit::invalid;
use super::schema::{hook_attempts, hook_deliveries, hooks};
use super::{now_ms, DbConn, StoreError};
use crate::hooks::{check_events, parse_url, wants, MAX_SECRET_BYTES, MIN_SECRET_BYTES};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// A hook as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HookRecord {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    /// Whether root chose the URL (then it may name internal addresses).
    pub created_by_root: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where and how a delivery is sent. The secret never reaches `Debug`.
#[derive(Clone)]
pub struct HookTarget {
    pub url: String,
    pub secret: String,
    pub created_by_root: bool,
}

impl std::fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("created_by_root", &self.created_by_root)
            .finish()
    }
}

/// What `POST /v1/hooks` stores.
pub struct NewHook {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created_by_root: bool,
}

/// What `PATCH /v1/hooks/{id}` changes (None: unchanged).
#[derive(Default)]
pub struct HookPatch {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
    /// Set with `url`: whether root chose the new URL.
    pub created_by_root: Option<bool>,
}

type HookRow = (i64, String, String, bool, bool, i64, i64);

macro_rules! hook_columns {
    () => {
        (
            hooks::id,
            hooks::url,
            hooks::events,
            hooks::active,
            hooks::created_by_root,
            hooks::created_at,
            hooks::updated_at,
        )
    };
}

fn hook_record((id, url, events, active, created_by_root, created_at, updated_at): HookRow) -> HookRecord {
    let events = serde_json::from_str(&events).unwrap_or_default();
    HookRecord { id, url, events, active, created_by_root, created_at, updated_at }
}

/// The field checks shared by create and update.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    parse_url(url).map(|_| ()).map_err(|m| invalid("url", m))
}

pub fn check_secret(secret: &str) -> Result<(), StoreError> {
    if secret.len() < MIN_SECRET_BYTES || secret.len() > MAX_SECRET_BYTES {
        return Err(invalid("secret", format!("must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long")));
    }
    if secret.contains('\0') {
        return Err(invalid("secret", "contains a NUL character"));
    }
    Ok(())
}

fn events_json(events: &[String]) -> Result<String, StoreError> {
    check_events(events).map_err(|m| invalid("events", m))?;
    Ok(serde_json::to_string(events).expect("strings serialize"))
}

/// Adds a hook to project `pid`.
pub fn create(conn: &mut DbConn, pid: i64, new: &NewHook) -> Result<HookRecord, StoreError> {
    check_url(&new.url)?;
    check_secret(&new.secret)?;
    let events = events_json(&new.events)?;
    super::tx::write(conn, |conn| {
        let now = now_ms();
        diesel::insert_into(hooks::table)
            .values((
                hooks::project_id.eq(pid),
                hooks::url.eq(&new.url),
                hooks::secret.eq(&new.secret),
                hooks::events.eq(&events),
                hooks::active.eq(new.active),
                hooks::created_by_root.eq(new.created_by_root),
                hooks::created_at.eq(now),
                hooks::updated_at.eq(now),
            ))
            .execute(conn)?;
        let row: HookRow = hooks::table
            .filter(hooks::project_id.eq(pid))
            .order(hooks::id.desc())
            .select(hook_columns!())
            .first(conn)?;
        let h = hook_record(row);
        super::audit::note(pid, "hook", &format!("#{}", h.id), None, Some(&audit_json(&h, false)));
        Ok(h)
    })
}

/// A hook as the audit trail keeps it: never its secret, only that it was
/// replaced.
fn audit_json(h: &HookRecord, secret_replaced: bool) -> serde_json::Value {
    let mut v = serde_json::json!({"url": h.url, "events": h.events, "active": h.active});
    if secret_replaced {
        v["secret"] = serde_json::json!("replaced");
    }
    v
}

/// Hooks of project `pid`, by id, after `after` (paging), at most `limit`.
pub fn list(conn: &mut DbConn, pid: i64, after: Option<i64>, limit: i64) -> Result<Vec<HookRecord>, StoreError> {
    let rows: Vec<HookRow> = hooks::table
        .filter(hooks::project_id.eq(pid))
        .filter(hooks::id.gt(after.unwrap_or(0)))
        .order(hooks::id)
        .limit(limit.max(1))
        .select(hook_columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(hook_record).collect())
}

/// Hook `id` of project `pid`; another project's hook is not found.
pub fn get(conn: &mut DbConn, pid: i64, id: i64) -> Result<HookRecord, StoreError> {
    let row: Option<HookRow> = hooks::table
        .filter(hooks::project_id.eq(pid))
        .filter(hooks::id.eq(id))
        .select(hook_columns!())
        .first(conn)
        .optional()?;
    row.map(hook_record).ok_or_else(|| StoreError::NotFound(format!("hook {id}")))
}

/// Changes the fields `patch` names.
pub fn update(conn: &mut DbConn, pid: i64, id: i64, patch: &HookPatch) -> Result<HookRecord, StoreError> {
    if let Some(u) = &patch.url {
        check_url(u)?;
    }
    if let Some(s) = &patch.secret {
        check_secret(s)?;
    }
    let events = patch.events.as_deref().map(events_json).transpose()?;
    super::tx::write(conn, |conn| {
        let old = get(conn, pid, id)?;
        let target = hooks::table.filter(hooks::project_id.eq(pid)).filter(hooks::id.eq(id));
        let now = now_ms();
        diesel::update(target).set(hooks::updated_at.eq(now)).execute(conn)?;
        if let Some(u) = &patch.url {
            diesel::update(target)
                .set((hooks::url.eq(u), hooks::created_by_root.eq(patch.created_by_root.unwrap_or(false))))
                .execute(conn)?;
        }
        if let Some(s) = &patch.secret {
            diesel::update(target).set(hooks::secret.eq(s)).execute(conn)?;
        }
        if let Some(e) = &events {
            diesel::update(target).set(hooks::events.eq(e)).execute(conn)?;
        }
        if let Some(a) = patch.active {
            diesel::update(target).set(hooks::active.eq(a)).execute(conn)?;
        }
        let new = get(conn, pid, id)?;
        let (before, after) = (audit_json(&old, false), audit_json(&new, patch.secret.is_some()));
        super::audit::note(pid, "hook", &format!("#{id}"), Some(&before), Some(&after));
        Ok(new)
    })
}

/// Deletes hook `id` of project `pid` with its deliveries and their log.
pub fn delete(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let old = get(conn, pid, id)?;
        super::audit::note(pid, "hook", &format!("#{id}"), Some(&audit_json(&old, false)), None);
        let deliveries: Vec<i64> =
            hook_deliveries::table.filter(hook_deliveries::hook_id.eq(id)).select(hook_deliveries::id).load(conn)?;
        for chunk in super::edit::chunked(&deliveries) {
            diesel::delete(hook_attempts::table.filter(hook_attempts::delivery_id.eq_any(chunk))).execute(conn)?;
        }
        diesel::delete(hook_deliveries::table.filter(hook_deliveries::hook_id.eq(id))).execute(conn)?;
        diesel::delete(hooks::table.filter(hooks::project_id.eq(pid)).filter(hooks::id.eq(id))).execute(conn)?;
        Ok(())
    })
}

/// Queues `event` about `subject` for every active hook of project `pid`
/// that wants it; `at` (ms) is when it happened, from the daemon's clock,
/// and when the first attempt is due. Returns the new deliveries' ids.
pub fn enqueue(
    conn: &mut DbConn,
    pid: i64,
    event: &str,
    subject: &str,
    payload: &str,
    at: i64,
) -> Result<Vec<i64>, StoreError> {
    super::tx::write(conn, |conn| {
        let candidates: Vec<(i64, String)> = hooks::table
            .filter(hooks::project_id.eq(pid))
            .filter(hooks::active.eq(true))
            .order(hooks::id)
            .select((hooks::id, hooks::events))
            .load(conn)?;
        let mut ids = Vec::new();
        for (hook, events) in candidates {
            let events: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
            if !wants(&events, event) {
                continue;
            }
            diesel::insert_into(hook_deliveries::table)
                .values((
                    hook_deliveries::hook_id.eq(hook),
                    hook_deliveries::project_id.eq(pid),
                    hook_deliveries::event.eq(event),
                    hook_deliveries::subject.eq(subject),
                    hook_deliveries::payload.eq(payload),
                    hook_deliveries::state.eq(PENDING),
                    hook_deliveries::attempts.eq(0),
                    hook_deliveries::next_attempt_at.eq(at),
                    hook_deliveries::created_at.eq(at),
                ))
                .execute(conn)?;
            ids.push(
                hook_deliveries::table
                    .filter(hook_deliveries::hook_id.eq(hook))
                    .order(hook_deliveries::id.desc())
                    .select(hook_deliveries::id)
                    .first::<i64>(conn)?,
            );
        }
        Ok(ids)
    })
}

/// One delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = hook_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub hook_id: i64,
    pub project_id: i64,
    pub event: String,
    pub subject: String,
    #[serde(skip)]
    pub payload: String,
    pub state: String,
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

/// A delivery this process claimed, with where to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub target: HookTarget,
}

/// Most pending deliveries looked at per claim round.
const CLAIM_SCAN: i64 = 1000;

/// Claims up to `limit` deliveries due at `now` (the daemon's clock, ms)
/// for `holder`, for `ttl_ms` of wall time (`wall`): only the oldest
/// pending delivery of each hook and subject, of active hooks, not claimed
/// by a live claim. Each claim is its own conditional UPDATE, so two
/// daemons never both win one.
pub fn claim(
    conn: &mut DbConn,
    holder: &str,
    now: i64,
    wall: i64,
    ttl_ms: i64,
    limit: usize,
) -> Result<Vec<Claimed>, StoreError> {
    let pending: Vec<Delivery> = hook_deliveries::table
        .inner_join(hooks::table)
        .filter(hook_deliveries::state.eq(PENDING))
        .filter(hooks::active.eq(true))
        .order(hook_deliveries::id)
        .limit(CLAIM_SCAN)
        .select(Delivery::as_select())
        .load(conn)?;
    let mut heads = std::collections::HashSet::new();
    let mut out = Vec::new();
    for d in pending {
        if out.len() >= limit {
            break;
        }
        if !heads.insert((d.hook_id, d.subject.clone())) {
            continue;
        }
        if d.next_attempt_at > now || d.claim_expires_at.is_some_and(|t| t >= wall) {
            continue;
        }
        let n = super::tx::write(conn, |conn| {
            diesel::update(
                hook_deliveries::table
                    .filter(hook_deliveries::id.eq(d.id))
                    .filter(hook_deliveries::state.eq(PENDING))
                    .filter(hook_deliveries::claim_expires_at.is_null().or(hook_deliveries::claim_expires_at.lt(wall))),
            )
            .set((hook_deliveries::claimed_by.eq(holder), hook_deliveries::claim_expires_at.eq(wall + ttl_ms)))
            .execute(conn)
        })?;
        if n != 1 {
            continue;
        }
        let (url, secret, created_by_root): (String, String, bool) =
            hooks::table.find(d.hook_id).select((hooks::url, hooks::secret, hooks::created_by_root)).first(conn)?;
        out.push(Claimed { delivery: d, target: HookTarget { url, secret, created_by_root } });
    }
    Ok(out)
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based.
    pub attempt: i32,
    /// When it was made (the daemon's clock, ms).
    pub at: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this instant (the daemon's clock, ms).
    RetryAt(i64),
    /// No attempts left.
    GiveUp,
}

/// Logs an attempt of delivery `id` claimed by `holder` and moves the
/// delivery on; false when the claim was lost (another daemon took it
/// over after it expired), and then nothing is written.
pub fn record_attempt(conn: &mut DbConn, id: i64, holder: &str, a: &Attempt, next: Next) -> Result<bool, StoreError> {
    super::tx::write(conn, |conn| {
        let mine = hook_deliveries::table
            .filter(hook_deliveries::id.eq(id))
            .filter(hook_deliveries::state.eq(PENDING))
            .filter(hook_deliveries::claimed_by.eq(holder));
        let (state, next_at, finished) = match next {
            Next::Delivered => (DELIVERED, a.at, Some(a.at)),
            Next::RetryAt(t) => (PENDING, t, None),
            Next::GiveUp => (FAILED, a.at, Some(a.at)),
        };
        let n = diesel::update(mine)
            .set((
                hook_deliveries::state.eq(state),
                hook_deliveries::attempts.eq(a.attempt),
                hook_deliveries::next_attempt_at.eq(next_at),
                hook_deliveries::last_status.eq(a.status_code),
                hook_deliveries::last_error.eq(a.error.as_deref()),
                hook_deliveries::finished_at.eq(finished),
                hook_deliveries::claimed_by.eq(None::<String>),
                hook_deliveries::claim_expires_at.eq(None::<i64>),
            ))
            .execute(conn)?;
        if n != 1 {
            return Ok(false);
        }
        diesel::insert_into(hook_attempts::table)
            .values((
                hook_attempts::delivery_id.eq(id),
                hook_attempts::attempt.eq(a.attempt),
                hook_attempts::at.eq(a.at),
                hook_attempts::status_code.eq(a.status_code),
                hook_attempts::error.eq(a.error.as_deref()),
                hook_attempts::duration_ms.eq(a.duration_ms),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Drops `holder`'s claims (a clean shutdown), so another daemon need not
/// wait for them to expire.
pub fn release(conn: &mut DbConn, holder: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(hook_deliveries::table.filter(hook_deliveries::claimed_by.eq(holder)))
        .set((hook_deliveries::claimed_by.eq(None::<String>), hook_deliveries::claim_expires_at.eq(None::<i64>)))
        .execute(conn)?)
}

/// A delivery with its attempts, oldest attempt first.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryLog {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub log: Vec<AttemptRecord>,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub at: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// (delivery id, attempt, at, status code, error, duration ms)
type AttemptRow = (i64, i32, i64, Option<i32>, Option<String>, i64);

/// Deliveries of hook `hook` (of project `pid`), newest first, with ids
/// below `before` (paging), at most `limit`, each with its attempts.
pub fn deliveries(
    conn: &mut DbConn,
    pid: i64,
    hook: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryLog>, StoreError> {
    get(conn, pid, hook)?;
    let mut q = hook_deliveries::table
        .filter(hook_deliveries::hook_id.eq(hook))
        .filter(hook_deliveries::project_id.eq(pid))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(hook_deliveries::id.lt(b));
    }
    let rows: Vec<Delivery> =
        q.order(hook_deliveries::id.desc()).limit(limit.max(1)).select(Delivery::as_select()).load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let mut attempts: std::collections::HashMap<i64, Vec<AttemptRecord>> = Default::default();
    for chunk in super::edit::chunked(&ids) {
        let found: Vec<AttemptRow> = hook_attempts::table
            .filter(hook_attempts::delivery_id.eq_any(chunk))
            .order((hook_attempts::delivery_id, hook_attempts::attempt))
            .select((
                hook_attempts::delivery_id,
                hook_attempts::attempt,
                hook_attempts::at,
                hook_attempts::status_code,
                hook_attempts::error,
                hook_attempts::duration_ms,
            ))
            .load(conn)?;
        for (d, attempt, at, status_code, error, duration_ms) in found {
            attempts.entry(d).or_default().push(AttemptRecord { attempt, at, status_code, error, duration_ms });
        }
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let log = attempts.remove(&d.id).unwrap_or_default();
            DeliveryLog { delivery: d, log }
        })
        .collect())
}

/// Delivery `id` of project `pid` (for the daemon and tests).
pub fn delivery(conn: &mut DbConn, pid: i64, id: i64) -> Result<Option<Delivery>, StoreError> {
    Ok(hook_deliveries::table
        .filter(hook_deliveries::project_id.eq(pid))
        .filter(hook_deliveries::id.eq(id))
        .select(Delivery::as_select())
        .first(conn)
        .optional()?)
}
