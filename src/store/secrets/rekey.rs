//! Renewing what protects the stored secrets while the daemon serves them:
//! `cratond secrets rotate` and `cratond secrets reencrypt`.
//!
//! * [`Secrets::rotate`] rewraps each data key under the key provider's
//!   newest key version (transit `rewrap`: the data key never leaves the
//!   server). Data keys and sealed values stay the same, so readers do not
//!   notice; one key per transaction.
//! * [`Secrets::reencrypt`] gives a project a new data key and reseals every
//!   kept version under it, then deletes the old key. A reader finds a
//!   version's key by its `data_key_id`, so old and new keys both stay
//!   readable until no version names the old one, and each small batch of
//!   versions is its own transaction: a killed run leaves a consistent mix
//!   that the next run finishes.
//!
//! An old key is deleted only a grace period after the last version left
//! it: a reader that loaded a version row just before its reseal still finds
//! the key, and a write that took the old key as active just before the
//! switch lands (its version is resealed in another round). The foreign key
//! from versions to keys is the backstop: a key still named is never deleted.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;

use super::super::schema::{projects, secret_data_keys, secret_versions, secrets};
use super::super::{now_ms, DbConn, StoreError};
use super::{active_key, binding, record, Owner, Secrets, SecretsError};
use crate::secrets::envelope::{self, DataKey, OwnerKind};
use crate::secrets::keys::WrappedKey;

/// Rounds of "reseal what landed late, wait, try to delete" before a run
/// gives up on a project whose old key keeps being written with.
const FINISH_ROUNDS: usize = 5;

/// One data key as [`Secrets::rotate`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKey {
    pub project_id: i64,
    pub project: String,
    pub key_id: i64,
    pub provider: String,
    /// The provider key version that wrapped it before...
    pub from_version: i64,
    /// ...and now; the same when it was current already.
    pub to_version: i64,
}

impl RotatedKey {
    pub fn rewrapped(&self) -> bool {
        self.to_version != self.from_version
    }
}

/// What [`Secrets::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateSummary {
    pub provider: String,
    /// The provider's newest key version when the run started.
    pub key_version: i64,
    pub rewrapped: usize,
    pub current: usize,
}

/// How [`Secrets::reencrypt`] runs.
#[derive(Debug, Clone)]
pub struct ReencryptOptions {
    /// Only this project (default: every project that has a data key).
    pub project_id: Option<i64>,
    /// Replace active keys created before this (Unix ms). A project with an
    /// older, inactive key is an interrupted replacement and is finished
    /// whatever this says; a run repeated with the same value is a no-op.
    pub before: i64,
    /// Reseal at most this many versions, then stop (the next call goes on).
    pub max_versions: Option<usize>,
    /// Versions resealed per transaction.
    pub batch: usize,
    /// How long an old key outlives the last version that left it.
    pub grace: Duration,
    /// Recorded in `secret_access` (one `reencrypt` row per project).
    pub actor: String,
}

impl ReencryptOptions {
    /// Every project's keys made before now; batches of 16; 10 s grace
    /// (the transit provider's request timeout: a write that unwrapped the
    /// old key just before the switch has finished by then).
    pub fn new(actor: &str) -> Self {
        ReencryptOptions {
            project_id: None,
            before: now_ms(),
            max_versions: None,
            batch: 16,
            grace: Duration::from_secs(10),
            actor: actor.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReencryptOutcome {
    /// Every version is under the new key; the old keys are deleted.
    Done,
    /// The active key is newer than `before` and no replacement was pending.
    Unchanged,
    /// `max_versions` was reached with this many versions left.
    Stopped { left: usize },
}

/// One project as [`Secrets::reencrypt`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectReencrypt {
    pub project_id: i64,
    pub project: String,
    /// The active data key.
    pub key_id: i64,
    /// Whether this call made it (false: nothing to do, or an interrupted
    /// call made it and this one finished the job).
    pub created: bool,
    /// The keys it replaces.
    pub old_keys: Vec<i64>,
    pub resealed: usize,
    pub deleted: Vec<i64>,
    pub outcome: ReencryptOutcome,
}

/// A data key row as the rekeying code needs it.
struct KeyRow {
    id: i64,
    active: bool,
    created_at: i64,
}

impl<'p> Secrets<'p> {
    /// Rewraps every data key (of `project_id`, or of all projects) that is
    /// older than the provider's newest key version, one key per
    /// transaction, calling `on_key` for each key in scope (rewrapped or
    /// current). Resumable: a key is rewrapped only while its stored
    /// version is older, and only if nobody changed it meanwhile. A key
    /// wrapped by another provider than this one is an error before anything
    /// is rewrapped: this provider could neither rewrap nor unwrap it.
    pub fn rotate(
        &self,
        conn: &mut DbConn,
        project_id: Option<i64>,
        on_key: &mut dyn FnMut(&RotatedKey),
    ) -> Result<RotateSummary, SecretsError> {
        let name = self.provider.name().to_string();
        let current = self.provider.key_version()?;
        let mut q = secret_data_keys::table
            .select((
                secret_data_keys::id,
                secret_data_keys::project_id,
                secret_data_keys::provider,
                secret_data_keys::key_version,
                secret_data_keys::wrapped,
            ))
            .order((secret_data_keys::project_id, secret_data_keys::id))
            .into_boxed();
        if let Some(p) = project_id {
            q = q.filter(secret_data_keys::project_id.eq(p));
        }
        let rows: Vec<(i64, i64, String, i64, String)> = q.load(conn)?;
        let names = project_names(conn, rows.iter().map(|r| r.1))?;
        if let Some((id, p, other, ..)) = rows.iter().find(|r| r.2 != name) {
            return Err(SecretsError::Invalid(format!(
                "data key {id} of project {:?} is wrapped by key provider {other:?}, not by the configured {name:?}: \
                 nothing was rewrapped (configure the provider that wrapped it)",
                names[p]
            )));
        }
        let mut summary = RotateSummary { provider: name.clone(), key_version: current, rewrapped: 0, current: 0 };
        for (id, pid, provider, key_version, wrapped) in rows {
            let mut line = RotatedKey {
                project_id: pid,
                project: names[&pid].clone(),
                key_id: id,
                provider,
                from_version: key_version,
                to_version: key_version,
            };
            if key_version >= current {
                summary.current += 1;
                on_key(&line);
                continue;
            }
            let old = WrappedKey { provider: name.clone(), key_version, wrapped };
            let new = self.provider.rewrap(&old)?;
            let changed = super::super::tx::write(conn, |conn| -> Result<usize, SecretsError> {
                // Only if nobody rewrapped, or reencrypt deleted, it meanwhile.
                Ok(diesel::update(
                    secret_data_keys::table
                        .filter(secret_data_keys::id.eq(id))
                        .filter(secret_data_keys::wrapped.eq(&old.wrapped)),
                )
                .set((
                    secret_data_keys::key_version.eq(new.key_version),
                    secret_data_keys::wrapped.eq(&new.wrapped),
                    secret_data_keys::updated_at.eq(now_ms()),
                ))
                .execute(conn)?)
            })?;
            if changed == 1 {
                line.to_version = new.key_version;
                summary.rewrapped += 1;
                on_key(&line);
                continue;
            }
            // Someone else got there first: report what is stored now.
            let now: Option<i64> =
                secret_data_keys::table.find(id).select(secret_data_keys::key_version).first(conn).optional()?;
            if let Some(v) = now {
                line.to_version = v;
                summary.current += 1;
                on_key(&line);
            }
        }
        Ok(summary)
    }

    /// Replaces the data keys (see [`ReencryptOptions`]): per project, a
    /// new active key (new writes use it at once), every kept version
    /// resealed under it with the same binding, batch by batch, then the
    /// old keys deleted once no version names them and the grace period
    /// has passed. Calls `on_project` as each project is settled. Stops at
    /// the first error (a provider down, a version that does not open):
    /// what was done stays done and the next call goes on from there.
    pub fn reencrypt(
        &self,
        conn: &mut DbConn,
        opts: &ReencryptOptions,
        on_project: &mut dyn FnMut(&ProjectReencrypt),
    ) -> Result<Vec<ProjectReencrypt>, SecretsError> {
        let started = now_ms();
        let batch = opts.batch.max(1);
        let mut budget = opts.max_versions;
        let mut q = secret_data_keys::table.select(secret_data_keys::project_id).distinct().into_boxed();
        if let Some(p) = opts.project_id {
            q = q.filter(secret_data_keys::project_id.eq(p));
        }
        let mut pids: Vec<i64> = q.load(conn)?;
        pids.sort_unstable();
        let names = project_names(conn, pids.iter().copied())?;
        let mut out = Vec::new();
        // Projects whose versions are all resealed: their old keys go after one shared wait.
        let mut settling: Vec<(ProjectReencrypt, DataKey, i64)> = Vec::new();
        for pid in pids {
            let (mut r, key) = self.begin_project(conn, pid, &names[&pid], opts.before)?;
            let Some(key) = key else {
                on_project(&r);
                out.push(r);
                continue;
            };
            let (n, left) = self.reseal(conn, pid, r.key_id, &key, batch, &mut budget)?;
            r.resealed += n;
            let owner = Owner { project_id: pid, kind: OwnerKind::Project, id: pid };
            super::super::tx::write(conn, |conn| {
                record(conn, owner, None, "*", "reencrypt", None, &opts.actor, now_ms())
            })?;
            if left > 0 {
                r.outcome = ReencryptOutcome::Stopped { left };
                on_project(&r);
                out.push(r);
                continue;
            }
            settling.push((r, key, now_ms()));
        }
        // A reader of a version resealed a moment ago (or before an earlier
        // run was killed) may still be about to load its old key.
        if let Some(last) = settling.iter().map(|s| s.2).max() {
            sleep_until(last.max(started), opts.grace);
        }
        for (mut r, key, _) in settling {
            self.finish_project(conn, &mut r, &key, batch, opts.grace)?;
            on_project(&r);
            out.push(r);
        }
        Ok(out)
    }

    /// The project's key to reseal under: the active one when a replacement
    /// is pending (older keys exist), a new one when the active key is older
    /// than `before`, none when there is nothing to do.
    fn begin_project(
        &self,
        conn: &mut DbConn,
        pid: i64,
        name: &str,
        before: i64,
    ) -> Result<(ProjectReencrypt, Option<DataKey>), SecretsError> {
        // A few attempts: a concurrent run's switch makes ours stand down and
        // finish theirs.
        for _ in 0..3 {
            let keys = key_rows(conn, pid)?;
            let active = keys.iter().find(|k| k.active);
            let pending = keys.len() > 1 || active.is_none();
            let mut r = ProjectReencrypt {
                project_id: pid,
                project: name.to_string(),
                key_id: active.map_or(0, |a| a.id),
                created: false,
                old_keys: keys.iter().filter(|k| !k.active).map(|k| k.id).collect(),
                resealed: 0,
                deleted: vec![],
                outcome: ReencryptOutcome::Unchanged,
            };
            match active {
                Some(a) if pending => return Ok((r, Some(self.key_by_id(conn, pid, a.id)?))),
                Some(a) if a.created_at >= before => return Ok((r, None)),
                // The provider must open the key it replaces before a new one
                // is made active: a wrong master key file would otherwise
                // leave the project with an active key the daemon cannot use.
                Some(a) => drop(self.key_by_id(conn, pid, a.id)?),
                None => {}
            }
            let Some((id, key)) = self.switch(conn, pid, active.map(|a| a.id))? else { continue };
            r.old_keys = keys.iter().map(|k| k.id).filter(|&k| k != id).collect();
            r.key_id = id;
            r.created = true;
            return Ok((r, Some(key)));
        }
        Err(SecretsError::Invalid(format!("project {name:?}: its active data key keeps changing (another reencrypt?)")))
    }

    /// Makes a new data key the project's active one, in one transaction
    /// with retiring `expected` (the active key seen before); `None` when
    /// another writer changed the active key meanwhile.
    fn switch(
        &self,
        conn: &mut DbConn,
        pid: i64,
        expected: Option<i64>,
    ) -> Result<Option<(i64, DataKey)>, SecretsError> {
        // Wrapped before the transaction: a transit round trip must not
        // hold SQLite's write lock.
        let key = DataKey::generate().map_err(|e| SecretsError::Invalid(e.to_string()))?;
        let w = self.provider.wrap(&key)?;
        let r = super::super::tx::write(conn, |conn| -> Result<Option<i64>, SecretsError> {
            if active_key(conn, pid)?.map(|(id, _)| id) != expected {
                return Ok(None);
            }
            let now = now_ms();
            diesel::update(
                secret_data_keys::table
                    .filter(secret_data_keys::project_id.eq(pid))
                    .filter(secret_data_keys::active.eq(true)),
            )
            .set((secret_data_keys::active.eq(false), secret_data_keys::updated_at.eq(now)))
            .execute(conn)?;
            super::insert_active_key(conn, pid, &w, now)?;
            match active_key(conn, pid)? {
                Some((id, stored)) if stored == w => Ok(Some(id)),
                _ => Ok(None),
            }
        });
        match r {
            Ok(id) => Ok(id.map(|id| (id, key))),
            // A concurrent switch (or first write) made another key active.
            Err(SecretsError::Store(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reseals the project's versions that are not under `key_id`, at most
    /// `budget` of them; returns (resealed, left unvisited).
    fn reseal(
        &self,
        conn: &mut DbConn,
        pid: i64,
        key_id: i64,
        key: &DataKey,
        batch: usize,
        budget: &mut Option<usize>,
    ) -> Result<(usize, usize), SecretsError> {
        let todo: Vec<(i64, i64, i64)> = secret_versions::table
            .inner_join(secrets::table.on(secrets::id.eq(secret_versions::secret_id)))
            .filter(secrets::project_id.eq(pid))
            .filter(secret_versions::data_key_id.ne(key_id))
            .order((secret_versions::secret_id, secret_versions::version))
            .select((secret_versions::secret_id, secret_versions::version, secret_versions::data_key_id))
            .load(conn)?;
        let take = budget.map_or(todo.len(), |b| b.min(todo.len()));
        if let Some(b) = budget.as_mut() {
            *b -= take;
        }
        let mut old: HashMap<i64, DataKey> = HashMap::new();
        let mut resealed = 0;
        for chunk in todo[..take].chunks(batch) {
            // Old keys unwrapped outside the transaction, as in `switch`.
            for &(_, _, k) in chunk {
                if let std::collections::hash_map::Entry::Vacant(slot) = old.entry(k) {
                    slot.insert(self.key_by_id(conn, pid, k)?);
                }
            }
            resealed += super::super::tx::write(conn, |conn| reseal_batch(conn, pid, chunk, &old, key_id, key))?;
        }
        Ok((resealed, todo.len() - take))
    }

    /// Reseals what landed under an old key late, waits, and deletes the
    /// old keys nothing names any more.
    fn finish_project(
        &self,
        conn: &mut DbConn,
        r: &mut ProjectReencrypt,
        key: &DataKey,
        batch: usize,
        grace: Duration,
    ) -> Result<(), SecretsError> {
        for _ in 0..FINISH_ROUNDS {
            let (n, _) = self.reseal(conn, r.project_id, r.key_id, key, batch, &mut None)?;
            if n > 0 {
                r.resealed += n;
                sleep_until(now_ms(), grace);
                continue;
            }
            let (deleted, kept) = delete_unused_keys(conn, r.project_id, r.key_id)?;
            r.deleted.extend(deleted);
            if kept.is_empty() {
                r.outcome = ReencryptOutcome::Done;
                return Ok(());
            }
        }
        Err(SecretsError::Invalid(format!(
            "project {:?}: versions keep arriving under old data keys after {FINISH_ROUNDS} rounds; \
             is a writer holding on to an old key? Run reencrypt again",
            r.project
        )))
    }
}

/// One transaction's worth of reseals: each version read again inside it
/// and rewritten only if it is still under the key it was found under (a
/// concurrent run, a prune or a delete may have got there first).
fn reseal_batch(
    conn: &mut DbConn,
    pid: i64,
    chunk: &[(i64, i64, i64)],
    old: &HashMap<i64, DataKey>,
    key_id: i64,
    key: &DataKey,
) -> Result<usize, SecretsError> {
    let mut n = 0;
    for &(sid, version, from) in chunk {
        let row: Option<(i64, Vec<u8>, String, i64, String)> = secret_versions::table
            .inner_join(secrets::table.on(secrets::id.eq(secret_versions::secret_id)))
            .filter(secret_versions::secret_id.eq(sid))
            .filter(secret_versions::version.eq(version))
            .select((
                secret_versions::data_key_id,
                secret_versions::ciphertext,
                secrets::owner_kind,
                secrets::owner_id,
                secrets::name,
            ))
            .first(conn)
            .optional()?;
        let Some((now_under, sealed, kind, owner_id, name)) = row else { continue };
        if now_under != from {
            continue;
        }
        let kind = OwnerKind::parse(&kind)
            .ok_or_else(|| SecretsError::Invalid(format!("secret {sid}: owner kind {kind:?}")))?;
        let b = binding(Owner { project_id: pid, kind, id: owner_id }, &name, version);
        let plain = envelope::open(&old[&from], &b, &sealed).map_err(|e| {
            SecretsError::Invalid(format!(
                "{} {owner_id} secret {name:?} version {version} does not open under its data key {from} ({e}); \
                 it is left as is and keeps data key {from} alive: delete that version or secret, then run again",
                kind.as_str()
            ))
        })?;
        let resealed = envelope::seal(key, &b, plain.expose()).map_err(|source| SecretsError::Envelope {
            name: name.clone(),
            version,
            source,
        })?;
        n += diesel::update(
            secret_versions::table
                .filter(secret_versions::secret_id.eq(sid))
                .filter(secret_versions::version.eq(version))
                .filter(secret_versions::data_key_id.eq(from)),
        )
        .set((secret_versions::ciphertext.eq(&resealed), secret_versions::data_key_id.eq(key_id)))
        .execute(conn)?;
    }
    Ok(n)
}

/// Deletes the project's inactive keys that no version names; returns
/// (deleted, kept because a version still names them).
fn delete_unused_keys(conn: &mut DbConn, pid: i64, active: i64) -> Result<(Vec<i64>, Vec<i64>), SecretsError> {
    let olds: Vec<i64> = secret_data_keys::table
        .filter(secret_data_keys::project_id.eq(pid))
        .filter(secret_data_keys::id.ne(active))
        .select(secret_data_keys::id)
        .order(secret_data_keys::id)
        .load(conn)?;
    let (mut deleted, mut kept) = (vec![], vec![]);
    for k in olds {
        let r = super::super::tx::write(conn, |conn| -> Result<usize, SecretsError> {
            let unused = diesel::dsl::not(diesel::dsl::exists(
                secret_versions::table.filter(secret_versions::data_key_id.eq(k)),
            ));
            Ok(diesel::delete(
                secret_data_keys::table
                    .filter(secret_data_keys::id.eq(k))
                    .filter(secret_data_keys::active.eq(false))
                    .filter(unused),
            )
            .execute(conn)?)
        });
        match r {
            Ok(1) => deleted.push(k),
            Ok(_) => kept.push(k),
            // A version that names it was inserted between the check and the delete.
            Err(SecretsError::Store(StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )))) => kept.push(k),
            Err(e) => return Err(e),
        }
    }
    Ok((deleted, kept))
}

/// How many data keys there are (of `project_id`, or in all): none means no
/// secret was ever stored there, and neither operation needs a provider.
pub fn data_key_count(conn: &mut DbConn, project_id: Option<i64>) -> Result<i64, StoreError> {
    let mut q = secret_data_keys::table.count().into_boxed();
    if let Some(p) = project_id {
        q = q.filter(secret_data_keys::project_id.eq(p));
    }
    Ok(q.get_result(conn)?)
}

fn key_rows(conn: &mut DbConn, pid: i64) -> Result<Vec<KeyRow>, SecretsError> {
    let rows: Vec<(i64, bool, i64)> = secret_data_keys::table
        .filter(secret_data_keys::project_id.eq(pid))
        .select((secret_data_keys::id, secret_data_keys::active, secret_data_keys::created_at))
        .order(secret_data_keys::id)
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, active, created_at)| KeyRow { id, active, created_at }).collect())
}

fn project_names(conn: &mut DbConn, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, String>, SecretsError> {
    let mut ids: Vec<i64> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(i64, String)> =
        projects::table.filter(projects::id.eq_any(&ids)).select((projects::id, projects::name)).load(conn)?;
    let mut names: HashMap<i64, String> = rows.into_iter().collect();
    for id in ids {
        names.entry(id).or_insert_with(|| format!("#{id}"));
    }
    Ok(names)
}

/// Sleeps until `grace` after `since` (Unix ms).
fn sleep_until(since: i64, grace: Duration) {
    let until = since.saturating_add(grace.as_millis() as i64);
    let left = until - now_ms();
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64));
    }
}
