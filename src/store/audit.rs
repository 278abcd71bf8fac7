//! The audit trail (issue 12): one change set per write transaction, written
//! by [`super::tx::write`] just before it commits, so a change without its
//! entry (or an entry without its change) cannot happen.
//!
//! Writes do not describe themselves. The first [`track`] of a project in a
//! transaction (every inventory write starts with
//! [`super::edit::begin_write`], an import hands over the snapshot it loads
//! anyway) keeps a flat [`View`] of the project; at commit the view is taken
//! again and the two are diffed. So every write path is covered by one
//! mechanism, and each change row holds the before and after of one field,
//! variable key, membership, label or secret: enough to invert it.
//!
//! Who and through what comes from a thread-local [`Actor`] that the caller
//! sets around its blocking database work ([`with_actor`]: the API per
//! request, `cratond import` with its path, a sync with ref and commit);
//! without one the writer is `cli` with the OS user.
//!
//! Secret values never enter the trail: a secret is its version and the
//! SHA-256 prefix of its ciphertext.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{api_tokens, audit_changes, audit_changesets, secret_versions, secrets};
use super::{now_ms, project_by_id, DbConn, StoreError, CHUNK};
use crate::model::{OwnVars, Snapshot, Tier};

/// A change set with more changes than this keeps them as one JSON document
/// instead of rows (an import of thousands of hosts; see BENCHMARKS.md).
pub const BULK_CHANGES: usize = 1000;
/// Changes per stored piece of a bulk change set (a few hundred KB).
const BULK_PIECE: usize = 2000;

/// Who wrote, and through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// token | keystone | local | import | sync | cli
    pub kind: String,
    /// Token id, Keystone user id, import path, ref name, OS user.
    pub id: String,
    /// The token's note, the Keystone user's name, the sync's commit.
    pub note: Option<String>,
    /// api | import | sync | cli
    pub source: String,
    /// The route (`PUT /v1/hosts/web1/variables`), import path or ref@commit.
    pub via: String,
}

impl Actor {
    pub fn api(kind: &str, id: impl Into<String>, note: Option<String>, via: impl Into<String>) -> Actor {
        Actor { kind: kind.into(), id: id.into(), note, source: "api".into(), via: via.into() }
    }

    pub fn import(path: &str) -> Actor {
        Actor { kind: "import".into(), id: os_user(), note: None, source: "import".into(), via: path.into() }
    }

    pub fn sync(git_ref: &str, url: &str, commit: &str) -> Actor {
        Actor {
            kind: "sync".into(),
            id: format!("{url}#{git_ref}"),
            note: Some(commit.into()),
            source: "sync".into(),
            via: format!("{url}#{git_ref}@{commit}"),
        }
    }

    pub fn cli(command: &str) -> Actor {
        Actor { kind: "cli".into(), id: os_user(), note: None, source: "cli".into(), via: command.into() }
    }
}

fn os_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

/// One changed attribute. `before`/`after` are JSON text; None is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Change {
    /// project | group | host
    pub object_kind: String,
    pub object_name: String,
    /// object (exists) | field | var | file_var | child | group (membership)
    /// | label | secret
    pub attr_kind: String,
    pub attr: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A project flattened to (object) -> (attribute) -> JSON text.
pub type View = BTreeMap<(String, String), BTreeMap<(String, String), String>>;

struct Pending {
    pid: i64,
    rev_before: Option<i64>,
    before: View,
}

thread_local! {
    static ACTOR: RefCell<Option<Actor>> = const { RefCell::new(None) };
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
    static NOTES: RefCell<Vec<(i64, Change)>> = const { RefCell::new(Vec::new()) };
}

/// What a change may be about: the inventory's objects, then what
/// [`note`] records.
pub const OBJECT_KINDS: [&str; 10] =
    ["project", "group", "host", "token", "window", "schedule", "config_ref", "run", "hook", "webhook_rule"];

/// Records a change of something outside the inventory view (a token, a
/// maintenance window, a schedule, a config ref, a run's approval) with
/// the change set of the transaction it is made in: `object_kind` names
/// the kind, `object_name` the object, and `before`/`after` its settings
/// as JSON (`None`: absent; never a secret). Must be called inside
/// [`super::tx::write`], whose commit writes it.
pub fn note(
    pid: i64,
    object_kind: &str,
    object_name: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) {
    if MODE.load(Ordering::Relaxed) == MODE_OFF || before == after {
        return;
    }
    let change = Change {
        object_kind: object_kind.into(),
        object_name: object_name.into(),
        attr_kind: "object".into(),
        attr: String::new(),
        before: before.map(|v| v.to_string()),
        after: after.map(|v| v.to_string()),
    };
    NOTES.with(|n| n.borrow_mut().push((pid, change)));
}

const MODE_AUTO: u8 = 0;
const MODE_ROWS: u8 = 1;
const MODE_OFF: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(MODE_AUTO);

/// Benchmarks only: `"off"` records nothing (the baseline the audit's cost
/// is measured against), `"rows"` never uses the bulk document. Not reachable
/// from any command or setting.
#[doc(hidden)]
pub fn bench_mode(mode: &str) {
    let m = match mode {
        "off" => MODE_OFF,
        "rows" => MODE_ROWS,
        _ => MODE_AUTO,
    };
    MODE.store(m, Ordering::SeqCst);
}

/// Runs `f` with `actor` as the writer of every change set it commits.
pub fn with_actor<T>(actor: Actor, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Actor>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ACTOR.with(|a| *a.borrow_mut() = prev);
        }
    }
    let prev = ACTOR.with(|a| a.borrow_mut().replace(actor));
    let _restore = Restore(prev);
    f()
}

fn current_actor() -> Actor {
    ACTOR.with(|a| a.borrow().clone()).unwrap_or_else(|| Actor::cli("cratond"))
}

fn is_tracked(pid: i64) -> bool {
    PENDING.with(|p| p.borrow().iter().any(|x| x.pid == pid))
}

/// Notes the state of project `pid` before this transaction changes it (once
/// per project and transaction).
pub(crate) fn track(conn: &mut DbConn, pid: i64) -> Result<(), StoreError> {
    if MODE.load(Ordering::Relaxed) == MODE_OFF || is_tracked(pid) {
        return Ok(());
    }
    let Some(project) = project_by_id(conn, pid)? else { return Ok(()) };
    let snap = super::load::load_project(conn, project)?;
    // Called after the revision bump that takes the project's lock: the
    // snapshot (read under the lock) already carries the bump.
    let rev_before = snap.project.revision - 1;
    track_snapshot(conn, &snap, rev_before)
}

/// [`track`] with a snapshot the writer loaded in this transaction anyway.
pub(crate) fn track_snapshot(conn: &mut DbConn, snap: &Snapshot, rev_before: i64) -> Result<(), StoreError> {
    let pid = snap.project.id;
    if MODE.load(Ordering::Relaxed) == MODE_OFF || is_tracked(pid) {
        return Ok(());
    }
    let before = view(conn, snap)?;
    PENDING.with(|p| p.borrow_mut().push(Pending { pid, rev_before: Some(rev_before), before }));
    Ok(())
}

/// Notes a project this transaction creates: everything in it is new.
pub(crate) fn track_new(pid: i64) {
    if MODE.load(Ordering::Relaxed) == MODE_OFF || is_tracked(pid) {
        return;
    }
    PENDING.with(|p| p.borrow_mut().push(Pending { pid, rev_before: None, before: View::new() }));
}

/// Forgets what [`track`] and [`note`] noted (the transaction rolled back
/// or starts over).
pub(crate) fn discard() {
    PENDING.with(|p| p.borrow_mut().clear());
    NOTES.with(|n| n.borrow_mut().clear());
}

/// Writes the change set of every tracked project, in the transaction that
/// is about to commit.
pub(crate) fn flush(conn: &mut DbConn) -> Result<(), StoreError> {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let mut notes = NOTES.with(|n| std::mem::take(&mut *n.borrow_mut()));
    if pending.is_empty() && notes.is_empty() {
        return Ok(());
    }
    let actor = current_actor();
    fn noted(notes: &mut Vec<(i64, Change)>, pid: i64) -> Vec<Change> {
        let (ours, rest): (Vec<_>, Vec<_>) = std::mem::take(notes).into_iter().partition(|(p, _)| *p == pid);
        *notes = rest;
        ours.into_iter().map(|(_, c)| c).collect()
    }
    let mut done = Vec::new();
    for p in pending {
        let (name, rev_after, after) = match project_by_id(conn, p.pid)? {
            Some(project) => {
                let name = project.name.clone();
                let snap = super::load::load_project(conn, project)?;
                (name, Some(snap.project.revision), view(conn, &snap)?)
            }
            None => (project_name_of(&p.before), None, View::new()),
        };
        let mut changes = diff(&p.before, &after);
        changes.extend(noted(&mut notes, p.pid));
        done.push(p.pid);
        if changes.is_empty() {
            continue;
        }
        write_changeset(conn, p.pid, &name, &actor, p.rev_before, rev_after, &changes)?;
    }
    // Projects whose inventory this transaction did not touch.
    let mut pids: Vec<i64> = notes.iter().map(|(p, _)| *p).filter(|p| !done.contains(p)).collect();
    pids.dedup();
    for pid in pids {
        let changes = noted(&mut notes, pid);
        if changes.is_empty() {
            continue;
        }
        let Some(project) = project_by_id(conn, pid)? else { continue };
        let rev = Some(project.revision);
        write_changeset(conn, pid, &project.name, &actor, rev, rev, &changes)?;
    }
    Ok(())
}

fn project_name_of(v: &View) -> String {
    v.keys().find(|(k, _)| k == "project").map(|(_, n)| n.clone()).unwrap_or_default()
}

fn write_changeset(
    conn: &mut DbConn,
    pid: i64,
    project_name: &str,
    actor: &Actor,
    rev_before: Option<i64>,
    rev_after: Option<i64>,
    changes: &[Change],
) -> Result<i64, StoreError> {
    let note = match (actor.kind.as_str(), &actor.note) {
        ("token", None) => match actor.id.parse::<i64>() {
            Ok(id) => api_tokens::table.find(id).select(api_tokens::description).first::<String>(conn).optional()?,
            Err(_) => None,
        },
        _ => actor.note.clone(),
    };
    let bulk = MODE.load(Ordering::Relaxed) != MODE_ROWS && changes.len() > BULK_CHANGES;
    // A bulk set's changes go as JSON pieces of BULK_PIECE changes (rows of
    // attr_kind "bulk"): one document of a 10,000-host import is tens of MB,
    // over MariaDB's max_allowed_packet. `document` marks the set as bulk.
    let document = bulk.then(|| format!("{{\"pieces\":{}}}", changes.len().div_ceil(BULK_PIECE)));
    diesel::insert_into(audit_changesets::table)
        .values((
            audit_changesets::project_id.eq(pid),
            audit_changesets::project_name.eq(project_name),
            audit_changesets::at.eq(now_ms()),
            audit_changesets::actor_kind.eq(&actor.kind),
            audit_changesets::actor.eq(truncate(&actor.id, 255)),
            audit_changesets::actor_note.eq(note),
            audit_changesets::source.eq(&actor.source),
            audit_changesets::via.eq(&actor.via),
            audit_changesets::rev_before.eq(rev_before),
            audit_changesets::rev_after.eq(rev_after),
            audit_changesets::n_changes.eq(changes.len() as i64),
            audit_changesets::document.eq(document),
        ))
        .execute(conn)?;
    // The row just inserted: the project's newest (its writers are
    // serialized by the project lock the write holds).
    let id: i64 = audit_changesets::table
        .filter(audit_changesets::project_id.eq(pid))
        .select(audit_changesets::id)
        .order(audit_changesets::id.desc())
        .first(conn)?;
    if bulk {
        let pieces: Vec<String> = changes
            .chunks(BULK_PIECE)
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Invalid(format!("audit document: {e}")))?;
        for (n, group) in pieces.chunks(4).enumerate() {
            let rows: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(i, piece)| {
                    (
                        audit_changes::changeset_id.eq(id),
                        audit_changes::project_id.eq(pid),
                        audit_changes::object_kind.eq(""),
                        audit_changes::object_name.eq(""),
                        audit_changes::attr_kind.eq("bulk"),
                        audit_changes::attr.eq(format!("{:06}", n * 4 + i)),
                        audit_changes::old_value.eq(None::<&str>),
                        audit_changes::new_value.eq(Some(piece.as_str())),
                    )
                })
                .collect();
            batch_insert!(conn, audit_changes::table, &rows)?;
        }
    } else {
        for chunk in changes.chunks(CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|c| {
                    (
                        audit_changes::changeset_id.eq(id),
                        audit_changes::project_id.eq(pid),
                        audit_changes::object_kind.eq(c.object_kind.as_str()),
                        audit_changes::object_name.eq(c.object_name.as_str()),
                        audit_changes::attr_kind.eq(c.attr_kind.as_str()),
                        audit_changes::attr.eq(c.attr.as_str()),
                        audit_changes::old_value.eq(c.before.as_deref()),
                        audit_changes::new_value.eq(c.after.as_deref()),
                    )
                })
                .collect();
            batch_insert!(conn, audit_changes::table, &rows)?;
        }
    }
    Ok(id)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn put_vars(attrs: &mut BTreeMap<(String, String), String>, vars: &OwnVars) {
    for (k, v) in vars {
        let kind = if v.tier == Tier::VarsFile { "file_var" } else { "var" };
        attrs.insert((kind.into(), k.clone()), v.value.get().to_string());
    }
}

/// Membership and child order as "after which neighbour", so that removing
/// one host from a long group changes one neighbour's row, not every
/// position behind it.
fn after_json(prev: Option<&str>) -> String {
    match prev {
        Some(p) => format!("{{\"after\":{}}}", js(p)),
        None => "{\"after\":null}".into(),
    }
}

/// The project as [`View`]: the snapshot plus its secrets (as fingerprints).
pub fn view(conn: &mut DbConn, snap: &Snapshot) -> Result<View, StoreError> {
    let (mut proj, mut groups, mut hosts) = inventory_view(snap);
    add_secrets(conn, snap, &mut proj, &mut groups, &mut hosts)?;
    Ok(assemble(snap, proj, groups, hosts))
}

/// The project as [`View`] without its secrets: everything rendering reads
/// (no database needed; [`super::history`] turns it back into a snapshot).
pub fn view_of(snap: &Snapshot) -> View {
    let (proj, groups, hosts) = inventory_view(snap);
    assemble(snap, proj, groups, hosts)
}

type Attrs = BTreeMap<(String, String), String>;

fn assemble(snap: &Snapshot, proj: Attrs, groups: Vec<Attrs>, hosts: Vec<Attrs>) -> View {
    let mut v = View::new();
    v.insert(("project".into(), snap.project.name.clone()), proj);
    for (g, a) in snap.groups.iter().zip(groups) {
        v.insert(("group".into(), g.name.clone()), a);
    }
    for (h, a) in snap.hosts.iter().zip(hosts) {
        v.insert(("host".into(), h.name.clone()), a);
    }
    v
}

fn inventory_view(snap: &Snapshot) -> (Attrs, Vec<Attrs>, Vec<Attrs>) {
    let mut proj = BTreeMap::new();
    proj.insert(("object".into(), String::new()), format!("{{\"id\":{}}}", snap.project.id));
    put_vars(&mut proj, &snap.all_vars);
    let mut groups: Vec<BTreeMap<(String, String), String>> = Vec::with_capacity(snap.groups.len());
    for g in &snap.groups {
        let mut a = BTreeMap::new();
        a.insert(("object".into(), String::new()), format!("{{\"id\":{}}}", g.id));
        if !g.kind.is_empty() {
            a.insert(("field".into(), "kind".into()), js(&g.kind));
        }
        if let Some(d) = &g.description {
            a.insert(("field".into(), "description".into()), js(d));
        }
        if let Some(p) = g.priority {
            a.insert(("field".into(), "priority".into()), p.to_string());
        }
        if let Some(p) = g.all_position {
            a.insert(("field".into(), "all_position".into()), p.to_string());
        }
        let mut prev: Option<&str> = None;
        for &c in &g.children {
            let name = snap.groups[c].name.as_str();
            a.insert(("child".into(), name.into()), after_json(prev));
            prev = Some(name);
        }
        put_vars(&mut a, &g.vars);
        groups.push(a);
    }
    let mut hosts: Vec<BTreeMap<(String, String), String>> = Vec::with_capacity(snap.hosts.len());
    for h in &snap.hosts {
        let mut a = BTreeMap::new();
        a.insert(("object".into(), String::new()), format!("{{\"id\":{}}}", h.id));
        if let Some(ip) = &h.ip_address {
            a.insert(("field".into(), "ip_address".into()), js(ip));
        }
        if !h.active {
            a.insert(("field".into(), "active".into()), "false".into());
        }
        if let Some(p) = h.parent {
            a.insert(("field".into(), "parent".into()), js(&snap.hosts[p].name));
        }
        for l in &h.labels {
            a.insert(("label".into(), l.clone()), "true".into());
        }
        put_vars(&mut a, &h.vars);
        hosts.push(a);
    }
    for g in &snap.groups {
        let mut prev: Option<&str> = None;
        for &h in &g.hosts {
            hosts[h].insert(("group".into(), g.name.clone()), after_json(prev));
            prev = Some(snap.hosts[h].name.as_str());
        }
    }
    (proj, groups, hosts)
}

fn add_secrets(
    conn: &mut DbConn,
    snap: &Snapshot,
    proj: &mut Attrs,
    groups: &mut [Attrs],
    hosts: &mut [Attrs],
) -> Result<(), StoreError> {
    // Secrets: version and ciphertext fingerprint, never the value.
    let rows: Vec<(String, i64, String, i64, Vec<u8>)> =
        secrets::table
            .inner_join(secret_versions::table.on(
                secret_versions::secret_id.eq(secrets::id).and(secret_versions::version.eq(secrets::current_version)),
            ))
            .filter(secrets::project_id.eq(snap.project.id))
            .select((
                secrets::owner_kind,
                secrets::owner_id,
                secrets::name,
                secrets::current_version,
                secret_versions::ciphertext,
            ))
            .load(conn)?;
    for (kind, owner, name, version, ciphertext) in rows {
        let fp = hex(&Sha256::digest(&ciphertext)[..8]);
        let value = format!("{{\"version\":{version},\"sha256\":\"{fp}\"}}");
        let attrs = match kind.as_str() {
            "host" => snap.hosts.binary_search_by_key(&owner, |h| h.id).ok().map(|i| &mut hosts[i]),
            "group" => snap.groups.binary_search_by_key(&owner, |g| g.id).ok().map(|i| &mut groups[i]),
            _ => Some(&mut *proj),
        };
        if let Some(a) = attrs {
            a.insert(("secret".into(), name), value);
        }
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every attribute that differs between `before` and `after`, object by
/// object (an object created or deleted lists all of its attributes).
pub fn diff(before: &View, after: &View) -> Vec<Change> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    let mut objects: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
    objects.sort();
    objects.dedup();
    for obj in objects {
        let b = before.get(obj).unwrap_or(&empty);
        let a = after.get(obj).unwrap_or(&empty);
        if b == a {
            continue;
        }
        let mut attrs: Vec<&(String, String)> = b.keys().chain(a.keys()).collect();
        attrs.sort();
        attrs.dedup();
        for attr in attrs {
            let (bv, av) = (b.get(attr), a.get(attr));
            if bv != av {
                out.push(Change {
                    object_kind: obj.0.clone(),
                    object_name: obj.1.clone(),
                    attr_kind: attr.0.clone(),
                    attr: attr.1.clone(),
                    before: bv.cloned(),
                    after: av.cloned(),
                });
            }
        }
    }
    out
}

/// A stored change set.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSet {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    pub at: i64,
    pub actor: Actor,
    pub rev_before: Option<i64>,
    pub rev_after: Option<i64>,
    pub n_changes: i64,
    /// Filled by [`get`] (and by [`list`] when asked).
    pub changes: Vec<Change>,
}

/// What [`list`] selects. Object, owner and key filters match changes;
/// the rest match change sets.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// None: every project (root).
    pub project_id: Option<i64>,
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    /// A variable key (var, file_var) or secret name.
    pub key: Option<String>,
    /// Matched against the actor's kind, id or `kind:id`.
    pub actor: Option<String>,
    pub source: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only change sets with an id below this (paging, newest first).
    pub before_id: Option<i64>,
    pub limit: usize,
}

impl Filter {
    fn wants_changes(&self) -> bool {
        self.object_kind.is_some() || self.object_name.is_some() || self.key.is_some()
    }

    fn matches(&self, c: &Change) -> bool {
        self.object_kind.as_ref().is_none_or(|k| *k == c.object_kind)
            && self.object_name.as_ref().is_none_or(|n| *n == c.object_name)
            && self
                .key
                .as_ref()
                .is_none_or(|k| *k == c.attr && matches!(c.attr_kind.as_str(), "var" | "file_var" | "secret"))
    }
}

type Db = <DbConn as diesel::Connection>::Backend;

/// object_kind, object_name, attr_kind, attr, old_value, new_value.
type ChangeRow = (String, String, String, String, Option<String>, Option<String>);

type SetRow = (
    i64,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
);

fn set_from_row(r: SetRow) -> (ChangeSet, Option<String>) {
    let (id, project_id, project, at, kind, actor, note, source, via, rev_before, rev_after, n_changes, doc) = r;
    let cs = ChangeSet {
        id,
        project_id,
        project,
        at,
        actor: Actor { kind, id: actor, note, source, via },
        rev_before,
        rev_after,
        n_changes,
        changes: Vec::new(),
    };
    (cs, doc)
}

macro_rules! set_columns {
    () => {
        (
            audit_changesets::id,
            audit_changesets::project_id,
            audit_changesets::project_name,
            audit_changesets::at,
            audit_changesets::actor_kind,
            audit_changesets::actor,
            audit_changesets::actor_note,
            audit_changesets::source,
            audit_changesets::via,
            audit_changesets::rev_before,
            audit_changesets::rev_after,
            audit_changesets::n_changes,
            audit_changesets::document,
        )
    };
}

fn parse_document(id: i64, doc: &str) -> Result<Vec<Change>, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Invalid(format!("audit change set {id}: bad document: {e}")))
}

pub(crate) fn changes_of(conn: &mut DbConn, id: i64, doc: Option<String>) -> Result<Vec<Change>, StoreError> {
    if doc.is_some() {
        let pieces: Vec<Option<String>> = audit_changes::table
            .filter(audit_changes::changeset_id.eq(id))
            .filter(audit_changes::attr_kind.eq("bulk"))
            .order(audit_changes::attr.asc())
            .select(audit_changes::new_value)
            .load(conn)?;
        let mut out = Vec::new();
        for p in pieces.into_iter().flatten() {
            out.extend(parse_document(id, &p)?);
        }
        return Ok(out);
    }
    let rows: Vec<ChangeRow> = audit_changes::table
        .filter(audit_changes::changeset_id.eq(id))
        .order(audit_changes::id.asc())
        .select((
            audit_changes::object_kind,
            audit_changes::object_name,
            audit_changes::attr_kind,
            audit_changes::attr,
            audit_changes::old_value,
            audit_changes::new_value,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(object_kind, object_name, attr_kind, attr, before, after)| Change {
            object_kind,
            object_name,
            attr_kind,
            attr,
            before,
            after,
        })
        .collect())
}

/// One change set with all its changes; None when it does not exist or
/// belongs to another project than `project_id` (when given).
pub fn get(conn: &mut DbConn, id: i64, project_id: Option<i64>) -> Result<Option<ChangeSet>, StoreError> {
    let mut q = audit_changesets::table.filter(audit_changesets::id.eq(id)).select(set_columns!()).into_boxed();
    if let Some(p) = project_id {
        q = q.filter(audit_changesets::project_id.eq(p));
    }
    let Some(row) = q.first::<SetRow>(conn).optional()? else { return Ok(None) };
    let (mut cs, doc) = set_from_row(row);
    cs.changes = changes_of(conn, cs.id, doc)?;
    Ok(Some(cs))
}

/// Change sets matching `f`, newest first, at most `f.limit`; with a change
/// filter each carries only its matching changes.
pub fn list(conn: &mut DbConn, f: &Filter) -> Result<Vec<ChangeSet>, StoreError> {
    let mut out = Vec::new();
    let mut before_id = f.before_id;
    // Bulk documents are filtered here rather than in SQL, so a batch may
    // yield fewer matches than it read: read on until the page is full.
    loop {
        let mut q = audit_changesets::table.select(set_columns!()).into_boxed::<Db>();
        if let Some(p) = f.project_id {
            q = q.filter(audit_changesets::project_id.eq(p));
        }
        if let Some(s) = &f.source {
            q = q.filter(audit_changesets::source.eq(s.clone()));
        }
        if let Some(a) = &f.actor {
            match a.split_once(':') {
                Some((k, id)) => {
                    q = q
                        .filter(audit_changesets::actor_kind.eq(k.to_string()))
                        .filter(audit_changesets::actor.eq(id.to_string()))
                }
                None => {
                    q = q.filter(audit_changesets::actor_kind.eq(a.clone()).or(audit_changesets::actor.eq(a.clone())))
                }
            }
        }
        if let Some(t) = f.since {
            q = q.filter(audit_changesets::at.ge(t));
        }
        if let Some(t) = f.until {
            q = q.filter(audit_changesets::at.lt(t));
        }
        if let Some(b) = before_id {
            q = q.filter(audit_changesets::id.lt(b));
        }
        let batch = (f.limit.max(1) * 2).min(500) as i64;
        // The change filter as two queries (MultiBackend cannot box a
        // subquery): the newest change set ids with a matching row, then the
        // sets among those or with a bulk document, down to the same floor.
        let mut floor = None;
        if f.wants_changes() {
            let mut sub = audit_changes::table.select(audit_changes::changeset_id).into_boxed::<Db>();
            if let Some(p) = f.project_id {
                sub = sub.filter(audit_changes::project_id.eq(p));
            }
            if let Some(k) = &f.object_kind {
                sub = sub.filter(audit_changes::object_kind.eq(k.clone()));
            }
            if let Some(n) = &f.object_name {
                sub = sub.filter(audit_changes::object_name.eq(n.clone()));
            }
            if let Some(k) = &f.key {
                sub = sub
                    .filter(audit_changes::attr.eq(k.clone()))
                    .filter(audit_changes::attr_kind.eq_any(["var", "file_var", "secret"]));
            }
            if let Some(b) = before_id {
                sub = sub.filter(audit_changes::changeset_id.lt(b));
            }
            let ids: Vec<i64> = sub.distinct().order(audit_changes::changeset_id.desc()).limit(batch).load(conn)?;
            if ids.len() as i64 == batch {
                floor = ids.last().copied();
            }
            q = q.filter(audit_changesets::id.eq_any(ids).or(audit_changesets::document.is_not_null()));
            if let Some(fl) = floor {
                q = q.filter(audit_changesets::id.ge(fl));
            }
        }
        let rows: Vec<SetRow> = q.order(audit_changesets::id.desc()).limit(batch).load(conn)?;
        let n = rows.len();
        for row in rows {
            let (mut cs, doc) = set_from_row(row);
            before_id = Some(cs.id);
            if f.wants_changes() {
                let changes: Vec<Change> = changes_of(conn, cs.id, doc)?.into_iter().filter(|c| f.matches(c)).collect();
                if changes.is_empty() {
                    continue;
                }
                cs.changes = changes;
            }
            out.push(cs);
            if out.len() >= f.limit {
                return Ok(out);
            }
        }
        if (n as i64) < batch {
            match floor {
                Some(fl) => before_id = Some(fl),
                None => return Ok(out),
            }
        }
    }
}

/// Deletes change sets older than `before_ms` (all projects, or one);
/// returns how many. In batches, so a long trail does not hold one huge
/// transaction.
pub fn prune(conn: &mut DbConn, before_ms: i64, project_id: Option<i64>) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = super::tx::write(conn, |conn| -> Result<usize, StoreError> {
            let mut q = audit_changesets::table
                .filter(audit_changesets::at.lt(before_ms))
                .select(audit_changesets::id)
                .order(audit_changesets::id.asc())
                .limit(CHUNK as i64)
                .into_boxed();
            if let Some(p) = project_id {
                q = q.filter(audit_changesets::project_id.eq(p));
            }
            let ids: Vec<i64> = q.load(conn)?;
            if ids.is_empty() {
                return Ok(0);
            }
            // Children first: MariaDB and SQLite cascade too, but not
            // every deployment has SQLite foreign keys on.
            diesel::delete(audit_changes::table.filter(audit_changes::changeset_id.eq_any(&ids))).execute(conn)?;
            Ok(diesel::delete(audit_changesets::table.filter(audit_changesets::id.eq_any(&ids))).execute(conn)?)
        })?;
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(attrs: &[(&str, &str, &str)]) -> BTreeMap<(String, String), String> {
        attrs.iter().map(|(k, a, v)| ((k.to_string(), a.to_string()), v.to_string())).collect()
    }

    #[test]
    fn diff_lists_changed_attributes_only() {
        let mut b = View::new();
        b.insert(("host".into(), "web1".into()), obj(&[("object", "", "{}"), ("var", "a", "1"), ("var", "b", "2")]));
        b.insert(("host".into(), "gone".into()), obj(&[("object", "", "{}")]));
        let mut a = View::new();
        a.insert(("host".into(), "web1".into()), obj(&[("object", "", "{}"), ("var", "a", "1"), ("var", "b", "3")]));
        a.insert(("host".into(), "new".into()), obj(&[("object", "", "{}"), ("label", "x", "true")]));
        let d = diff(&b, &a);
        type Short<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let short: Vec<Short> = d
            .iter()
            .map(|c| {
                (c.object_name.as_str(), c.attr_kind.as_str(), c.attr.as_str(), c.before.as_deref(), c.after.as_deref())
            })
            .collect();
        assert_eq!(
            short,
            vec![
                ("gone", "object", "", Some("{}"), None),
                ("new", "label", "x", None, Some("true")),
                ("new", "object", "", None, Some("{}")),
                ("web1", "var", "b", Some("2"), Some("3")),
            ]
        );
    }

    #[test]
    fn actor_scope_restores() {
        let inner = with_actor(Actor::cli("x"), || {
            with_actor(Actor::import("/p"), current_actor);
            current_actor()
        });
        assert_eq!(inner.via, "x");
        assert_eq!(current_actor().via, "cratond");
    }
}
