//! The inventory as of a past instant or revision (issue 12, stage 2),
//! rebuilt from the current state and the audit trail ([`super::audit`]).
//!
//! Every change set holds, per attribute, the value before and after, and a
//! [`View`] of the project is everything rendering reads. So the project as
//! of T is: the current view, with every change set committed after T undone
//! newest first (each attribute set back to `before`), turned back into a
//! [`Snapshot`] ([`snapshot_from_view`]) that renders exactly as the
//! snapshot did then. No second copy of the inventory is kept.
//!
//! Each undo first checks that the attribute holds the change's `after`: a
//! write that reached the tables without its change set (none should) makes
//! the rebuild refuse instead of answering wrongly. Secrets are in the view
//! as fingerprints only, are not checked (a rekey re-encrypts without
//! changing the inventory) and are not part of the rebuilt snapshot.
//!
//! The trail can be pruned, and projects written before it existed have no
//! trail for that time: an instant the retained trail does not cover is
//! refused, naming it ([`StoreError::Invalid`] with an `at: ` prefix).

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use serde::Serialize;

use super::audit::{self, Change, View};
use super::schema::audit_changesets;
use super::{find_project, now_ms, DbConn, StoreError};
use crate::model::{raw_from_string, GroupNode, HostNode, OwnVars, Project, Snapshot, Tier, Var};

/// A point in a project's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Milliseconds since the epoch: the inventory as committed by then.
    Instant(i64),
    /// A project revision: the inventory once the write that produced it
    /// committed.
    Revision(i64),
}

impl At {
    /// `2026-11-30T12:00:00Z` (RFC 3339, any offset, optional fraction) or
    /// a revision (digits only).
    pub fn parse(s: &str) -> Result<At, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<i64>().map(At::Revision).map_err(|_| format!("revision {s:?} is out of range"));
        }
        parse_rfc3339(s)
            .map(At::Instant)
            .ok_or_else(|| format!("{s:?} is neither an RFC 3339 instant (2026-11-30T12:00:00Z) nor a revision number"))
    }

    /// As the errors name it.
    pub fn describe(&self) -> String {
        match self {
            At::Instant(ms) => format_rfc3339(*ms),
            At::Revision(r) => format!("revision {r}"),
        }
    }
}

/// A point of a diff: an instant or revision, or `run:ID`, the revision a
/// run's inventory was built from ("what changed since the last good run").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    At(At),
    Run(i64),
}

impl Since {
    pub fn parse(s: &str) -> Result<Since, String> {
        match s.trim().strip_prefix("run:") {
            Some(id) => id.parse::<i64>().map(Since::Run).map_err(|_| format!("{s:?}: run:ID takes a run id")),
            None => At::parse(s).map(Since::At),
        }
    }

    /// The point in project `pid`'s history.
    pub fn resolve(self, conn: &mut DbConn, pid: i64) -> Result<At, String> {
        match self {
            Since::At(a) => Ok(a),
            Since::Run(id) => {
                if super::runs::get(conn, Some(pid), id).map_err(|e| e.to_string())?.is_none() {
                    return Err(format!("no run {id} in this project"));
                }
                super::runs::inventory_revision(conn, id).map_err(|e| e.to_string())?.map(At::Revision).ok_or_else(
                    || format!("run {id} has no recorded inventory revision (it predates them, or was pruned)"),
                )
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as ms since the epoch. Kept here
/// rather than through chrono: the store builds without it.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i];
        let first3: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = first3.parse().ok()?;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some(secs * 1000 + ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ms since the epoch as `2026-11-30T12:00:00.000Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// The object kinds of the inventory view (change sets also carry tokens,
/// windows and the like, which are not part of it).
const INVENTORY_KINDS: [&str; 3] = ["project", "group", "host"];

/// A change that does not fit the view it is undone on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{object_kind} {object_name:?} {attr_kind} {attr:?}: the trail says {expected:?}, the inventory holds {found:?}"
)]
pub struct Mismatch {
    pub object_kind: String,
    pub object_name: String,
    pub attr_kind: String,
    pub attr: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

/// Undoes one change set on `view`: every inventory attribute it changed is
/// set back to its `before`, after checking that it holds the `after`
/// (secrets excepted, see the module doc).
pub fn undo(view: &mut View, changes: &[Change]) -> Result<(), Box<Mismatch>> {
    for c in changes.iter().filter(|c| INVENTORY_KINDS.contains(&c.object_kind.as_str())) {
        let key = (c.object_kind.clone(), c.object_name.clone());
        let attr = (c.attr_kind.clone(), c.attr.clone());
        let attrs = view.entry(key.clone()).or_default();
        if c.attr_kind != "secret" && attrs.get(&attr) != c.after.as_ref() {
            return Err(Box::new(Mismatch {
                object_kind: c.object_kind.clone(),
                object_name: c.object_name.clone(),
                attr_kind: c.attr_kind.clone(),
                attr: c.attr.clone(),
                expected: c.after.clone(),
                found: attrs.get(&attr).cloned(),
            }));
        }
        match &c.before {
            Some(b) => attrs.insert(attr, b.clone()),
            None => attrs.remove(&attr),
        };
        if attrs.is_empty() {
            view.remove(&key);
        }
    }
    Ok(())
}

fn bad(what: impl std::fmt::Display) -> String {
    format!("the audit view does not make an inventory: {what}")
}

fn object_id(attrs: &BTreeMap<(String, String), String>, kind: &str, name: &str) -> Result<i64, String> {
    let text = attrs
        .get(&("object".to_string(), String::new()))
        .ok_or_else(|| bad(format!("{kind} {name:?} has attributes but does not exist")))?;
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_i64()))
        .ok_or_else(|| bad(format!("{kind} {name:?}: object {text}")))
}

fn string_field(text: &str, what: &str) -> Result<String, String> {
    serde_json::from_str::<String>(text).map_err(|e| bad(format!("{what} {text}: {e}")))
}

/// "After which neighbour" entries of one list, in list order.
fn chain(owner: &str, entries: Vec<(String, Option<String>)>) -> Result<Vec<String>, String> {
    let n = entries.len();
    let mut next: HashMap<Option<String>, String> = HashMap::with_capacity(n);
    for (name, after) in entries {
        if let Some(other) = next.insert(after.clone(), name.clone()) {
            return Err(bad(format!("{owner}: {other:?} and {name:?} both come after {after:?}")));
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut cur: Option<String> = None;
    while let Some(name) = next.remove(&cur) {
        out.push(name.clone());
        cur = Some(name);
    }
    if out.len() != n {
        return Err(bad(format!("{owner}: the order of {n} entries is not one chain")));
    }
    Ok(out)
}

fn after_of(text: &str, what: &str) -> Result<Option<String>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("{what} {text}: {e}")))?;
    match v.get("after") {
        Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(bad(format!("{what} {text}"))),
    }
}

/// Turns a [`View`] (as [`audit::view_of`] makes it, or as rebuilt by
/// [`undo`]) back into the snapshot it was taken of: groups and hosts by
/// id, children and members in their stored order, variables on their
/// tiers in byte order of their keys (as the loader orders them), labels,
/// parent host. `project` gives the id, revision and times; the name is
/// the view's. Secrets are left out (the caller injects them, or not).
pub fn snapshot_from_view(view: &View, mut project: Project) -> Result<Snapshot, String> {
    fn vars_of(attrs: &BTreeMap<(String, String), String>, owner: &str) -> Result<OwnVars, String> {
        let mut vars: Vec<(&str, Var)> = Vec::new();
        for ((kind, key), text) in attrs {
            let tier = match kind.as_str() {
                "var" => Tier::Inventory,
                "file_var" => Tier::VarsFile,
                _ => continue,
            };
            let value = raw_from_string(text.clone()).map_err(|e| bad(format!("{owner} variable {key:?}: {e}")))?;
            vars.push((key.as_str(), Var { value, tier }));
        }
        vars.sort_by(|a, b| a.0.cmp(b.0));
        Ok(vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    let mut all_vars = OwnVars::default();
    let mut project_seen = false;
    // (id, name, attributes) of each object.
    type Object<'v> = (i64, &'v str, &'v BTreeMap<(String, String), String>);
    let mut groups: Vec<Object> = Vec::new();
    let mut hosts: Vec<Object> = Vec::new();
    for ((kind, name), attrs) in view {
        match kind.as_str() {
            "project" => {
                if project_seen {
                    return Err(bad("two projects"));
                }
                project_seen = true;
                object_id(attrs, kind, name)?;
                project.name = name.clone();
                all_vars = vars_of(attrs, "project")?;
            }
            "group" => groups.push((object_id(attrs, kind, name)?, name, attrs)),
            "host" => hosts.push((object_id(attrs, kind, name)?, name, attrs)),
            _ => {}
        }
    }
    if !project_seen {
        return Err(bad("no project"));
    }
    groups.sort_by_key(|g| g.0);
    hosts.sort_by_key(|h| h.0);
    let group_ix: HashMap<&str, usize> = groups.iter().enumerate().map(|(i, g)| (g.1, i)).collect();
    let host_ix: HashMap<&str, usize> = hosts.iter().enumerate().map(|(i, h)| (h.1, i)).collect();

    let mut out_groups = Vec::with_capacity(groups.len());
    for &(id, name, attrs) in &groups {
        let field = |f: &str| attrs.get(&("field".to_string(), f.to_string()));
        let int = |f: &str| -> Result<Option<i64>, String> {
            field(f).map(|t| t.parse::<i64>().map_err(|e| bad(format!("group {name:?} {f} {t}: {e}")))).transpose()
        };
        let all_position = match int("all_position")? {
            Some(p) => Some(i32::try_from(p).map_err(|e| bad(format!("group {name:?} all_position: {e}")))?),
            None => None,
        };
        out_groups.push(GroupNode {
            id,
            name: name.to_string(),
            kind: field("kind").map(|t| string_field(t, "kind")).transpose()?.unwrap_or_default(),
            description: field("description").map(|t| string_field(t, "description")).transpose()?,
            priority: int("priority")?,
            all_position,
            parents: Vec::new(),
            children: Vec::new(),
            hosts: Vec::new(),
            vars: vars_of(attrs, name)?,
        });
    }
    let mut out_hosts = Vec::with_capacity(hosts.len());
    for &(id, name, attrs) in &hosts {
        let field = |f: &str| attrs.get(&("field".to_string(), f.to_string()));
        let active = match field("active").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(t) => return Err(bad(format!("host {name:?} active {t}"))),
        };
        let parent = match field("parent") {
            Some(t) => {
                let p = string_field(t, "parent")?;
                Some(*host_ix.get(p.as_str()).ok_or_else(|| bad(format!("host {name:?}: parent {p:?} is no host")))?)
            }
            None => None,
        };
        out_hosts.push(HostNode {
            id,
            name: name.to_string(),
            ip_address: field("ip_address").map(|t| string_field(t, "ip_address")).transpose()?,
            active,
            parent,
            labels: attrs.keys().filter(|(k, _)| k == "label").map(|(_, l)| l.clone()).collect(),
            groups: Vec::new(),
            vars: vars_of(attrs, name)?,
        });
    }
    // Children: on the parent, "after" the previous child.
    for (p, &(_, name, attrs)) in groups.iter().enumerate() {
        let mut entries = Vec::new();
        for ((kind, child), text) in attrs.iter() {
            if kind == "child" {
                entries.push((child.clone(), after_of(text, "child")?));
            }
        }
        for child in chain(&format!("children of group {name:?}"), entries)? {
            let c = *group_ix.get(child.as_str()).ok_or_else(|| bad(format!("group {name:?}: child {child:?}")))?;
            out_groups[p].children.push(c);
            out_groups[c].parents.push(p);
        }
    }
    // Members: on the host, "after" the previous member of that group.
    let mut members: Vec<Vec<(String, Option<String>)>> = vec![Vec::new(); groups.len()];
    for &(_, name, attrs) in &hosts {
        for ((kind, group), text) in attrs.iter() {
            if kind == "group" {
                let g = *group_ix.get(group.as_str()).ok_or_else(|| bad(format!("host {name:?}: group {group:?}")))?;
                members[g].push((name.to_string(), after_of(text, "membership")?));
            }
        }
    }
    for (g, entries) in members.into_iter().enumerate() {
        for host in chain(&format!("members of group {:?}", groups[g].1), entries)? {
            let h = host_ix[host.as_str()];
            out_groups[g].hosts.push(h);
            out_hosts[h].groups.push(g);
        }
    }
    for g in &mut out_groups {
        g.parents.sort_unstable();
    }
    for h in &mut out_hosts {
        h.groups.sort_unstable();
    }
    Ok(Snapshot { project, all_vars, groups: out_groups, hosts: out_hosts, depth_memo: Default::default() })
}

/// A project as of a past point, rebuilt.
#[derive(Debug)]
pub struct AsOf {
    /// Without secrets; `project.revision` is the revision of that time.
    pub snapshot: Snapshot,
    /// The newest change set included (None: the project before its first).
    pub changeset: Option<i64>,
    /// How many change sets were undone.
    pub undone: usize,
    /// The project's secrets then (they are not in `snapshot`).
    pub secrets: usize,
}

/// id, at, rev_before, rev_after, document (bulk marker).
type Head = (i64, i64, Option<i64>, Option<i64>, Option<String>);

/// Project `project` as of `at`, in one read transaction. Refused
/// ([`StoreError::Invalid`], `at: ...`) when the retained trail does not
/// reach back to `at`, when `at` lies ahead, or when the project did not
/// exist then.
pub fn snapshot_at(conn: &mut DbConn, project: &str, at: At) -> Result<AsOf, StoreError> {
    super::tx::read(conn, |conn| {
        let project = find_project(conn, project)?.ok_or_else(|| StoreError::UnknownProject(project.to_string()))?;
        let current = super::load::load_project(conn, project)?;
        let project = current.project.clone();
        let refuse = |why: String| StoreError::Invalid(format!("at: {}: {why}", at.describe()));
        let heads: Vec<Head> = audit_changesets::table
            .filter(audit_changesets::project_id.eq(project.id))
            .order(audit_changesets::id.asc())
            .select((
                audit_changesets::id,
                audit_changesets::at,
                audit_changesets::rev_before,
                audit_changesets::rev_after,
                audit_changesets::document,
            ))
            .load(conn)?;
        // The project's first write is in the trail: nothing before it is
        // missing (created with it: no rev_before; created empty: 0).
        let complete = heads.first().is_some_and(|h| h.2.is_none_or(|r| r == 0));
        // Change sets are a prefix of the history up to `keep` (ids grow in
        // commit order: a project's writers hold its lock), the rest undone.
        let keep = match at {
            At::Instant(t) => {
                if t > now_ms() {
                    return Err(refuse("lies ahead".into()));
                }
                if t < project.created_at {
                    return Err(refuse(format!(
                        "project {:?} was created later ({})",
                        project.name,
                        format_rfc3339(project.created_at)
                    )));
                }
                let keep = heads.iter().take_while(|h| h.1 <= t).count();
                if keep == 0 {
                    match heads.first() {
                        Some(first) if !complete => {
                            return Err(refuse(format!(
                                "the audit trail of project {:?} starts at {} (older change sets were pruned, \
                                 or were written before the trail existed)",
                                project.name,
                                format_rfc3339(first.1)
                            )))
                        }
                        // No trail at all: the inventory is the current one
                        // since its last write, unknown before.
                        None if project.revision != 0 && t < project.updated_at => {
                            return Err(refuse(format!(
                                "project {:?} has no audit trail before its last write ({})",
                                project.name,
                                format_rfc3339(project.updated_at)
                            )))
                        }
                        _ => {}
                    }
                }
                keep
            }
            At::Revision(r) => {
                if r > project.revision {
                    return Err(refuse(format!(
                        "project {:?} is at revision {} (not reached yet)",
                        project.name, project.revision
                    )));
                }
                let keep = heads.iter().take_while(|h| h.3.is_some_and(|a| a <= r)).count();
                let oldest = heads.first().and_then(|h| h.2);
                match heads.first() {
                    None if r < project.revision => {
                        return Err(refuse(format!(
                            "project {:?} has no audit trail before revision {}",
                            project.name, project.revision
                        )))
                    }
                    Some(_) if keep == 0 && !complete && oldest.is_none_or(|o| r < o) => {
                        return Err(refuse(format!(
                            "the audit trail of project {:?} starts at revision {} (older change sets were \
                             pruned, or were written before the trail existed)",
                            project.name,
                            oldest.unwrap_or(0)
                        )))
                    }
                    _ => {}
                }
                keep
            }
        };
        let mut view = audit::view(conn, &current)?;
        drop(current);
        let undo_heads = &heads[keep..];
        for h in undo_heads.iter().rev() {
            let changes = audit::changes_of(conn, h.0, h.4.clone())?;
            undo(&mut view, &changes).map_err(|m| {
                StoreError::Invalid(format!(
                    "at: {}: the audit trail of project {:?} does not match its inventory at change set {}: {m}",
                    at.describe(),
                    project.name,
                    h.0
                ))
            })?;
        }
        if !view.keys().any(|(k, _)| k == "project") {
            return Err(refuse(format!("project {:?} did not exist yet", project.name)));
        }
        let secrets = view.values().map(|a| a.keys().filter(|(k, _)| k == "secret").count()).sum();
        let mut then = project.clone();
        let changeset = keep.checked_sub(1).map(|i| heads[i].0);
        if let Some(first_undone) = undo_heads.first() {
            then.revision = first_undone.2.unwrap_or(0);
            then.updated_at = keep.checked_sub(1).map(|i| heads[i].1).unwrap_or(project.created_at);
        }
        let snapshot = snapshot_from_view(&view, then).map_err(|e| StoreError::Invalid(format!("at: {e}")))?;
        Ok(AsOf { snapshot, changeset, undone: undo_heads.len(), secrets })
    })
}

/// One end of a [`diff`].
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// As asked (`2026-11-30T12:00:00.000Z`, `revision 42`, `now`).
    pub asked: String,
    pub revision: i64,
    /// The newest change set included (None: before the first).
    pub changeset: Option<i64>,
}

/// A direct membership or child edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// Added and removed names or edges.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta<T> {
    pub added: Vec<T>,
    pub removed: Vec<T>,
}

/// A resolved variable of one host that differs, with the change sets in
/// between that could have changed it (blame).
#[derive(Debug, Clone, Serialize)]
pub struct VarDiff {
    /// Absent (null) when the host did not have it (or did not exist).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub blame: Vec<i64>,
}

/// A change set in the range of a [`diff`].
#[derive(Debug, Clone, Serialize)]
pub struct Blame {
    pub id: i64,
    pub at: String,
    pub actor: audit::Actor,
}

/// What changed in a project's inventory between two points.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryDiff {
    pub project: String,
    pub from: Point,
    pub to: Point,
    pub groups: Delta<String>,
    pub hosts: Delta<String>,
    /// host -> group (direct memberships).
    pub memberships: Delta<Edge>,
    /// parent -> child.
    pub children: Delta<Edge>,
    /// host -> key -> before/after, of every host in either inventory,
    /// resolved as `--list --resolved --include-inactive` shows them
    /// (Ansible's precedence).
    pub variables: BTreeMap<String, BTreeMap<String, VarDiff>>,
    /// The change sets between the two points, oldest first.
    pub changesets: Vec<Blame>,
}

fn resolved_hostvars(snap: &Snapshot) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
    let sel = crate::render::Selection { include_inactive: true, ..Default::default() };
    let opts = crate::render::Options { resolved: true, ..Default::default() };
    let mut buf = Vec::new();
    // A reserved group name makes the inventory unrenderable at either
    // end; it then has no resolved variables to compare.
    let Ok(e) = crate::render::emit(snap, &sel, opts) else { return BTreeMap::new() };
    if crate::render::write_list(&e, opts, &mut buf).is_err() {
        return BTreeMap::new();
    }
    let doc: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
    let mut out = BTreeMap::new();
    if let Some(hv) = doc.pointer("/_meta/hostvars").and_then(|v| v.as_object()) {
        for (h, vars) in hv {
            let vars = vars.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
            out.insert(h.clone(), vars.unwrap_or_default());
        }
    }
    out
}

fn edges(snap: &Snapshot) -> (Vec<Edge>, Vec<Edge>) {
    let mut members = Vec::new();
    let mut children = Vec::new();
    for g in &snap.groups {
        for &h in &g.hosts {
            members.push(Edge { from: snap.hosts[h].name.clone(), to: g.name.clone() });
        }
        for &c in &g.children {
            children.push(Edge { from: g.name.clone(), to: snap.groups[c].name.clone() });
        }
    }
    members.sort();
    children.sort();
    (members, children)
}

fn delta<T: Ord + Clone>(before: &[T], after: &[T]) -> Delta<T> {
    let b: std::collections::BTreeSet<&T> = before.iter().collect();
    let a: std::collections::BTreeSet<&T> = after.iter().collect();
    Delta {
        added: a.difference(&b).map(|x| (*x).clone()).collect(),
        removed: b.difference(&a).map(|x| (*x).clone()).collect(),
    }
}

/// The groups host `name` is in (directly or through children) in `snap`.
fn groups_of(snap: &Snapshot, name: &str) -> Vec<String> {
    match snap.host_index(name) {
        Some(h) => snap.host_groups(h).into_iter().map(|g| snap.groups[g].name.clone()).collect(),
        None => Vec::new(),
    }
}

/// Whether change `c` can have changed resolved key `key` of host `host`,
/// whose groups (either end) are `groups`.
fn blames(c: &Change, host: &str, key: &str, groups: &[String]) -> bool {
    let on_host = c.object_kind == "host" && c.object_name == host;
    let on_group = c.object_kind == "group" && groups.contains(&c.object_name);
    match c.attr_kind.as_str() {
        "var" | "file_var" => c.attr == key && (on_host || on_group || c.object_kind == "project"),
        // Membership, existence and the structure above the host.
        "group" | "object" => on_host || on_group,
        "child" | "field" => on_group || (on_host && c.attr == "active"),
        _ => false,
    }
}

/// The pure part of [`diff`]: the two inventories and the change sets
/// between them (any order; each with its changes).
pub fn diff_snapshots(
    from: &Snapshot,
    to: &Snapshot,
    points: (Point, Point),
    sets: &[audit::ChangeSet],
) -> InventoryDiff {
    let names = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<_>>();
    let (fg, tg) =
        (names(from.groups.iter().map(|g| &g.name).collect()), names(to.groups.iter().map(|g| &g.name).collect()));
    let (fh, th) =
        (names(from.hosts.iter().map(|h| &h.name).collect()), names(to.hosts.iter().map(|h| &h.name).collect()));
    let ((fm, fc), (tm, tc)) = (edges(from), edges(to));
    let (fv, tv) = (resolved_hostvars(from), resolved_hostvars(to));
    let empty = BTreeMap::new();
    let mut variables = BTreeMap::new();
    let mut hosts: Vec<&String> = fv.keys().chain(tv.keys()).collect();
    hosts.sort();
    hosts.dedup();
    for h in hosts {
        let (b, a) = (fv.get(h).unwrap_or(&empty), tv.get(h).unwrap_or(&empty));
        let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut groups = groups_of(from, h);
        groups.extend(groups_of(to, h));
        let mut per_host = BTreeMap::new();
        for k in keys {
            if b.get(k) == a.get(k) {
                continue;
            }
            let blame =
                sets.iter().filter(|cs| cs.changes.iter().any(|c| blames(c, h, k, &groups))).map(|cs| cs.id).collect();
            per_host.insert(k.clone(), VarDiff { before: b.get(k).cloned(), after: a.get(k).cloned(), blame });
        }
        if !per_host.is_empty() {
            variables.insert(h.clone(), per_host);
        }
    }
    let mut changesets: Vec<Blame> =
        sets.iter().map(|cs| Blame { id: cs.id, at: format_rfc3339(cs.at), actor: cs.actor.clone() }).collect();
    changesets.sort_by_key(|b| b.id);
    InventoryDiff {
        project: to.project.name.clone(),
        from: points.0,
        to: points.1,
        groups: delta(&fg, &tg),
        hosts: delta(&fh, &th),
        memberships: delta(&fm, &tm),
        children: delta(&fc, &tc),
        variables,
        changesets,
    }
}

/// What changed in project `project` between `from` and `to` (None: its
/// current inventory). Either end is refused as [`snapshot_at`] refuses it.
pub fn diff(conn: &mut DbConn, project: &str, from: At, to: Option<At>) -> Result<InventoryDiff, StoreError> {
    super::tx::read(conn, |conn| {
        // Refusals name the end they are about (`from: `, `to: `).
        let end = |name: &'static str| {
            move |e: StoreError| match e {
                StoreError::Invalid(m) => {
                    StoreError::Invalid(format!("{name}: {}", m.strip_prefix("at: ").unwrap_or(&m)))
                }
                other => other,
            }
        };
        let a = snapshot_at(conn, project, from).map_err(end("from"))?;
        let (b, to_asked) = match to {
            Some(t) => (snapshot_at(conn, project, t).map_err(end("to"))?, t.describe()),
            None => {
                let current = find_project(conn, project)?
                    .ok_or_else(|| StoreError::UnknownProject(project.to_string()))?
                    .revision;
                (snapshot_at(conn, project, At::Revision(current))?, "now".to_string())
            }
        };
        let pid = b.snapshot.project.id;
        let (lo, hi) = {
            let (x, y) = (a.changeset.unwrap_or(0), b.changeset.unwrap_or(0));
            (x.min(y), x.max(y))
        };
        let ids: Vec<i64> = audit_changesets::table
            .filter(audit_changesets::project_id.eq(pid))
            .filter(audit_changesets::id.gt(lo))
            .filter(audit_changesets::id.le(hi))
            .order(audit_changesets::id.asc())
            .select(audit_changesets::id)
            .load(conn)?;
        let mut sets = Vec::with_capacity(ids.len());
        for id in ids {
            sets.extend(audit::get(conn, id, Some(pid))?);
        }
        let points = (
            Point { asked: from.describe(), revision: a.snapshot.project.revision, changeset: a.changeset },
            Point { asked: to_asked, revision: b.snapshot.project.revision, changeset: b.changeset },
        );
        Ok(diff_snapshots(&a.snapshot, &b.snapshot, points, &sets))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_chrono() {
        for s in [
            "2026-11-30T12:00:00Z",
            "2026-11-30T12:00:00.5Z",
            "2026-11-30T12:00:00.123456+02:00",
            "2024-02-29T23:59:59-05:30",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2000-03-01t00:00:00z",
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(parse_rfc3339(s), Some(want), "{s}");
            assert_eq!(parse_rfc3339(&format_rfc3339(want)), Some(want), "{s}");
        }
        assert_eq!(format_rfc3339(1_764_504_000_000), "2025-11-30T12:00:00.000Z");
        for s in ["2026-11-30", "2026-02-30T00:00:00Z", "2026-11-30T12:00:00", "2026-11-30T25:00:00Z", "yesterday"] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
        assert_eq!(At::parse("42"), Ok(At::Revision(42)));
        assert!(At::parse("4x2").unwrap_err().contains("neither"));
    }

    fn change(kind: &str, name: &str, ak: &str, a: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            object_kind: kind.into(),
            object_name: name.into(),
            attr_kind: ak.into(),
            attr: a.into(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        }
    }

    #[test]
    fn undo_checks_the_after_value() {
        let mut v = View::new();
        v.entry(("host".into(), "web1".into())).or_default().insert(("var".into(), "a".into()), "2".into());
        let wrong = change("host", "web1", "var", "a", Some("1"), Some("3"));
        assert!(undo(&mut v.clone(), &[wrong]).is_err());
        let right = change("host", "web1", "var", "a", Some("1"), Some("2"));
        undo(&mut v, &[right]).unwrap();
        assert_eq!(v[&("host".to_string(), "web1".to_string())][&("var".to_string(), "a".to_string())], "1");
        // Outside the inventory: ignored.
        undo(&mut v, &[change("token", "7", "object", "", None, Some("{}"))]).unwrap();
    }

    #[test]
    fn chain_orders_and_refuses_forks() {
        let e = |n: &str, a: Option<&str>| (n.to_string(), a.map(str::to_string));
        assert_eq!(chain("x", vec![e("b", Some("a")), e("a", None), e("c", Some("b"))]).unwrap(), ["a", "b", "c"]);
        assert!(chain("x", vec![e("b", Some("a")), e("a", None), e("c", Some("a"))]).is_err());
        assert!(chain("x", vec![e("b", Some("c")), e("c", Some("b"))]).is_err());
    }
}
