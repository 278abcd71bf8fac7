//! Secrets that come from an input (`cratond import` of vaulted values, a
//! config ref sync), written in the same transaction as the inventory they
//! came with, so that a failure leaves neither.
//!
//! The key provider (a transit round trip) is called before that
//! transaction: the project's data key is unwrapped, or a new one generated
//! and wrapped, first ([`Secrets::prepare_key`]); inside, [`Warm`] hands the
//! already unwrapped key to the ordinary [`Secrets::put`].
//!
//! Rules:
//! - a value equal to the stored one writes nothing (no new version):
//!   compared by fingerprint where the fingerprint is of the plaintext, and
//!   by opening the stored version where it is a certificate's;
//! - a secret and a plain variable never share owner and name: the secret
//!   wins (an imported secret replaces the plain variable; a plain input
//!   value under an existing secret's name is not stored, with a warning);
//! - which secrets an input owns is recorded in `created_by`: `cli:import`
//!   for `cratond import` (so `--replace` deletes those the input no longer
//!   holds, never one created through the API), `config-ref:ID` for a ref
//!   (an import leaves those, and keys whose variable a ref owns, to it).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::{active_key, binding, find, Owner, SecretMeta, Secrets, SecretsError};
use crate::desired::{Desired, DesiredSecret, SecretOwner};
use crate::model::{OwnVars, OwnerKind as VarOwner};
use crate::secrets::envelope::{self, DataKey, OwnerKind};
use crate::secrets::keys::{KeyError, KeyProvider, WrappedKey};
use crate::secrets::pem;
use crate::store::apply::{self, Progress, Summary};
use crate::store::schema::{hosts, inventory_groups, secret_versions, secrets, variables};
use crate::store::{ensure_project, find_project, now_ms, DbConn, StoreError, CHUNK};

/// `created_by` of the secrets `cratond import` writes.
pub const IMPORT_ACTOR: &str = "cli:import";

/// `created_by` of the secrets config ref `id` writes.
pub fn ref_actor(id: i64) -> String {
    format!("config-ref:{id}")
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SecretCounts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
}

impl SecretCounts {
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.removed > 0
    }
}

/// The project's data key, unwrapped (or generated and wrapped) before the
/// write transaction.
pub struct PreparedKey {
    wrapped: WrappedKey,
    key: DataKey,
}

/// A provider that answers `unwrap` of the prepared key from memory and
/// passes everything else on.
pub struct Warm<'a> {
    inner: &'a dyn KeyProvider,
    prepared: &'a PreparedKey,
}

impl KeyProvider for Warm<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn key_version(&self) -> Result<i64, KeyError> {
        self.inner.key_version()
    }
    fn wrap(&self, key: &DataKey) -> Result<WrappedKey, KeyError> {
        self.inner.wrap(key)
    }
    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, KeyError> {
        if *wrapped == self.prepared.wrapped {
            return Ok(self.prepared.key.clone());
        }
        self.inner.unwrap(wrapped)
    }
    fn rewrap(&self, wrapped: &WrappedKey) -> Result<WrappedKey, KeyError> {
        self.inner.rewrap(wrapped)
    }
    fn rotate(&self) -> Result<i64, KeyError> {
        self.inner.rotate()
    }
}

impl<'p> Secrets<'p> {
    /// The data key of project `project_id` (None: not created yet), for
    /// writes in a later transaction: the provider is called here, outside.
    pub fn prepare_key(&self, conn: &mut DbConn, project_id: Option<i64>) -> Result<PreparedKey, SecretsError> {
        if let Some(pid) = project_id {
            if let Some((_, wrapped)) = active_key(conn, pid)? {
                let key = self.provider.unwrap(&wrapped)?;
                return Ok(PreparedKey { wrapped, key });
            }
        }
        let key = DataKey::generate().map_err(|e| SecretsError::Invalid(e.to_string()))?;
        let wrapped = self.provider.wrap(&key)?;
        Ok(PreparedKey { wrapped, key })
    }

    /// Inside the write transaction: makes the prepared key the project's
    /// active one if it has none, and returns a provider that is not called
    /// for it any more (unless another writer installed a key meanwhile).
    pub fn warm<'a>(
        &'a self,
        conn: &mut DbConn,
        pid: i64,
        prepared: &'a PreparedKey,
    ) -> Result<Warm<'a>, SecretsError> {
        if active_key(conn, pid)?.is_none() {
            let now = now_ms();
            let w = &prepared.wrapped;
            super::insert_active_key(conn, pid, w, now)?;
        }
        Ok(Warm { inner: self.provider, prepared })
    }
}

/// The prepared key as a provider, without installing it (for reads).
pub fn warm_only<'a>(store: &'a Secrets<'_>, prepared: &'a PreparedKey) -> Warm<'a> {
    Warm { inner: store.provider, prepared }
}

/// Whether `s` equals the stored current version of `meta`.
pub fn unchanged(
    conn: &mut DbConn,
    owner: Owner,
    meta: &SecretMeta,
    s: &DesiredSecret,
    warm: &Warm<'_>,
) -> Result<bool, SecretsError> {
    if meta.kind != s.kind.as_str() {
        return Ok(false);
    }
    let checked =
        pem::check(s.kind, s.value.expose()).map_err(|source| SecretsError::Value { name: s.name.clone(), source })?;
    if checked.fingerprint != meta.fingerprint {
        return Ok(false);
    }
    if checked.fingerprint == pem::sha256_hex(s.value.expose()) {
        return Ok(true);
    }
    // A certificate's fingerprint covers its DER only (not a key beside it).
    let Some((key_id, wrapped)) = active_key(conn, owner.project_id)? else {
        return Ok(false);
    };
    let row: Option<(i64, Vec<u8>)> = secret_versions::table
        .filter(secret_versions::secret_id.eq(meta.id))
        .filter(secret_versions::version.eq(meta.current_version))
        .select((secret_versions::data_key_id, secret_versions::ciphertext))
        .first(conn)
        .optional()?;
    match row {
        Some((id, sealed)) if id == key_id && wrapped == warm.prepared.wrapped => {
            let key = &warm.prepared.key;
            Ok(envelope::open(key, &binding(owner, &meta.name, meta.current_version), &sealed)
                .is_ok_and(|plain| plain.expose() == s.value.expose()))
        }
        _ => Ok(false),
    }
}

/// Writes `s` for `owner` unless the stored value is the same; counts it.
pub fn write_one(
    conn: &mut DbConn,
    store: &Secrets<'_>,
    warm: &Warm<'_>,
    owner: Owner,
    s: &DesiredSecret,
    actor: &str,
    counts: &mut SecretCounts,
) -> Result<(), SecretsError> {
    let existing = find(conn, owner, &s.name)?;
    if let Some(m) = &existing {
        if unchanged(conn, owner, m, s, warm)? {
            if m.tier != s.tier as i32 {
                // The same value, moved between tiers in the input.
                super::super::edit::begin_write(conn, owner.project_id)?;
                diesel::update(secrets::table.find(m.id)).set(secrets::tier.eq(s.tier as i32)).execute(conn)?;
            }
            counts.unchanged += 1;
            return Ok(());
        }
    }
    let writer = Secrets { provider: warm, keep_versions: store.keep_versions };
    writer.put_tiered(conn, owner, &s.name, s.kind, &s.value, actor, None, Some(s.tier))?;
    if existing.is_some() {
        counts.updated += 1;
    } else {
        counts.created += 1;
    }
    Ok(())
}

/// Deletes every secret of the given owners (groups or hosts being
/// deleted): owner ids have no foreign key to cascade.
pub fn delete_owners(conn: &mut DbConn, project_id: i64, kind: OwnerKind, ids: &[i64]) -> Result<usize, StoreError> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        let sids: Vec<i64> = secrets::table
            .filter(secrets::project_id.eq(project_id))
            .filter(secrets::owner_kind.eq(kind.as_str()))
            .filter(secrets::owner_id.eq_any(chunk))
            .select(secrets::id)
            .load(conn)?;
        if sids.is_empty() {
            continue;
        }
        diesel::delete(secret_versions::table.filter(secret_versions::secret_id.eq_any(&sids))).execute(conn)?;
        n += diesel::delete(secrets::table.filter(secrets::id.eq_any(&sids))).execute(conn)?;
    }
    Ok(n)
}

/// Deletes the secrets `actor` created in a project (a config ref being
/// removed takes its secrets with it), recording each deletion.
pub fn delete_created_by(conn: &mut DbConn, project_id: i64, actor: &str) -> Result<usize, StoreError> {
    let rows: Vec<(String, i64, String)> = secrets::table
        .filter(secrets::project_id.eq(project_id))
        .filter(secrets::created_by.eq(actor))
        .select((secrets::owner_kind, secrets::owner_id, secrets::name))
        .load(conn)?;
    for (kind, id, name) in &rows {
        let kind = OwnerKind::parse(kind).ok_or_else(|| StoreError::Invalid(format!("secret owner kind {kind:?}")))?;
        super::delete(conn, Owner { project_id, kind, id: *id }, name, actor)?;
    }
    Ok(rows.len())
}

/// Group and host names by id and ids by name, of one project.
pub struct OwnerNames {
    pub pid: i64,
    groups: HashMap<i64, String>,
    hosts: HashMap<i64, String>,
    group_ids: HashMap<String, i64>,
    host_ids: HashMap<String, i64>,
}

impl OwnerNames {
    pub fn load(conn: &mut DbConn, pid: i64) -> Result<OwnerNames, StoreError> {
        let g: Vec<(i64, String)> = inventory_groups::table
            .filter(inventory_groups::project_id.eq(pid))
            .select((inventory_groups::id, inventory_groups::name))
            .load(conn)?;
        let h: Vec<(i64, String)> =
            hosts::table.filter(hosts::project_id.eq(pid)).select((hosts::id, hosts::name)).load(conn)?;
        Ok(OwnerNames {
            pid,
            group_ids: g.iter().map(|(i, n)| (n.clone(), *i)).collect(),
            host_ids: h.iter().map(|(i, n)| (n.clone(), *i)).collect(),
            groups: g.into_iter().collect(),
            hosts: h.into_iter().collect(),
        })
    }

    /// The owner of a secret row by its kind and id (None: it is gone).
    fn by_secret_row(&self, kind: &str, id: i64) -> Option<SecretOwner> {
        match OwnerKind::parse(kind)? {
            OwnerKind::Project => (id == self.pid).then_some(SecretOwner::Project),
            OwnerKind::Group => self.groups.get(&id).cloned().map(SecretOwner::Group),
            OwnerKind::Host => self.hosts.get(&id).cloned().map(SecretOwner::Host),
        }
    }

    /// The owner of a variable row.
    fn by_var_row(&self, kind: i32, id: i64) -> Option<SecretOwner> {
        match VarOwner::from_i32(kind)? {
            VarOwner::Project => (id == self.pid).then_some(SecretOwner::Project),
            VarOwner::Group => self.groups.get(&id).cloned().map(SecretOwner::Group),
            VarOwner::Host => self.hosts.get(&id).cloned().map(SecretOwner::Host),
        }
    }

    /// The secrets-store owner and the variables owner (kind, id) of a name.
    pub fn resolve(&self, o: &SecretOwner) -> Option<(Owner, VarOwner, i64)> {
        let (kind, vk, id) = match o {
            SecretOwner::Project => (OwnerKind::Project, VarOwner::Project, self.pid),
            SecretOwner::Group(n) => (OwnerKind::Group, VarOwner::Group, *self.group_ids.get(n)?),
            SecretOwner::Host(n) => (OwnerKind::Host, VarOwner::Host, *self.host_ids.get(n)?),
        };
        Some((Owner { project_id: self.pid, kind, id }, vk, id))
    }
}

/// Every secret of a project whose owner still exists, with its owner.
pub fn project_secrets(conn: &mut DbConn, names: &OwnerNames) -> Result<Vec<(SecretOwner, SecretMeta)>, StoreError> {
    let rows: Vec<SecretMeta> = secrets::table
        .filter(secrets::project_id.eq(names.pid))
        .order(secrets::id)
        .select(SecretMeta::as_select())
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|m| names.by_secret_row(&m.owner_kind, m.owner_id).map(|o| (o, m))).collect())
}

/// Deletes the plain variable `name` of an owner that no config ref owns
/// (a secret of that name replaces it); 1 when there was one.
pub fn drop_plain(conn: &mut DbConn, pid: i64, kind: VarOwner, id: i64, name: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        variables::table
            .filter(variables::project_id.eq(pid))
            .filter(variables::owner_kind.eq(kind as i32))
            .filter(variables::owner_id.eq(id))
            .filter(variables::var_key.eq(name))
            .filter(variables::source_id.is_null()),
    )
    .execute(conn)?)
}

fn vars_of<'a>(d: &'a mut Desired, o: &SecretOwner) -> Option<&'a mut OwnVars> {
    match o {
        SecretOwner::Project => Some(&mut d.all_vars),
        SecretOwner::Group(n) => d.groups.get_mut(n).map(|g| &mut g.vars),
        SecretOwner::Host(n) => d.hosts.get_mut(n).map(|h| &mut h.vars),
    }
}

/// What [`import`] did.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    pub summary: Summary,
    pub secrets: SecretCounts,
    /// Keys of the input left to the config refs that own them.
    pub kept_by_refs: usize,
    pub warnings: Vec<String>,
}

/// `cratond import`: applies `desired` (as [`apply::apply`], leaving keys
/// config refs own to them) and `wanted` (the input's vaulted values) to
/// `project` in one transaction. `store` may be `None` when `wanted` is
/// empty. With `replace`, secrets of deleted groups and hosts go with them
/// and secrets an earlier import created (`created_by` = `actor`) that the
/// input no longer holds are deleted; secrets created otherwise are kept.
#[allow(clippy::too_many_arguments)]
pub fn import(
    conn: &mut DbConn,
    store: Option<&Secrets<'_>>,
    project: &str,
    desired: &Desired,
    wanted: &[DesiredSecret],
    replace: bool,
    progress: Progress,
    actor: &str,
) -> Result<ImportOutcome, SecretsError> {
    let prepared = match store {
        Some(s) if !wanted.is_empty() => {
            let pid = find_project(conn, project)?.map(|p| p.id);
            Some((s, s.prepare_key(conn, pid)?))
        }
        None if !wanted.is_empty() => {
            return Err(SecretsError::Invalid("the input holds vaulted values, and no key provider was given".into()))
        }
        _ => None,
    };
    crate::store::tx::write(conn, |conn| {
        let mut out = ImportOutcome::default();
        let mut desired = desired.clone();
        out.kept_by_refs = crate::store::ref_apply::keep_ref_owned(conn, project, &mut desired, replace)?;
        let pid = ensure_project(conn, project)?.id;
        let before = OwnerNames::load(conn, pid)?;
        let existing = project_secrets(conn, &before)?;
        let ref_owned: HashSet<(SecretOwner, String)> = variables::table
            .filter(variables::project_id.eq(pid))
            .filter(variables::source_id.is_not_null())
            .select((variables::owner_kind, variables::owner_id, variables::var_key))
            .load::<(i32, i64, String)>(conn)?
            .into_iter()
            .filter_map(|(k, id, key)| before.by_var_row(k, id).map(|o| (o, key)))
            .collect();

        let by_refs: HashSet<(&SecretOwner, &str)> = existing
            .iter()
            .filter(|(_, m)| m.created_by.starts_with("config-ref:"))
            .map(|(o, m)| (o, m.name.as_str()))
            .collect();
        let mut todo: Vec<&DesiredSecret> = Vec::new();
        for s in wanted {
            if ref_owned.contains(&(s.owner.clone(), s.name.clone())) || by_refs.contains(&(&s.owner, s.name.as_str()))
            {
                out.kept_by_refs += 1;
            } else {
                todo.push(s);
            }
        }
        let wanted_keys: HashSet<(&SecretOwner, &str)> = todo.iter().map(|s| (&s.owner, s.name.as_str())).collect();
        let gone: Vec<&(SecretOwner, SecretMeta)> = existing
            .iter()
            .filter(|(o, m)| replace && m.created_by == actor && !wanted_keys.contains(&(o, m.name.as_str())))
            .collect();
        let gone_keys: HashSet<(&SecretOwner, &str)> = gone.iter().map(|(o, m)| (o, m.name.as_str())).collect();
        // Plain input values under the name of a secret that stays: the
        // secret wins, and a stored plain value of that key goes too.
        let mut shadowed: Vec<(&SecretOwner, &str)> = Vec::new();
        for (o, m) in &existing {
            let key = (o.clone(), m.name.clone());
            if gone_keys.contains(&(o, m.name.as_str())) || ref_owned.contains(&key) {
                continue;
            }
            if vars_of(&mut desired, o).and_then(|v| v.shift_remove(&m.name)).is_some() {
                out.warnings.push(format!(
                    "variable {:?} of {o}: a secret of that name exists, and a secret wins over a plain variable: \
                     the input's value was not stored",
                    m.name
                ));
                shadowed.push((o, m.name.as_str()));
            }
        }

        out.summary = apply::apply(conn, project, &desired, replace, progress)?;
        let after = OwnerNames::load(conn, pid)?;
        // Secrets of groups and hosts the replace deleted went with them.
        out.secrets.removed += existing.iter().filter(|(o, _)| after.resolve(o).is_none()).count();
        let mut vars_removed = 0;
        for (o, name) in shadowed {
            if let Some((_, vk, id)) = after.resolve(o) {
                vars_removed += drop_plain(conn, pid, vk, id, name)?;
            }
        }
        if let Some((store, prepared)) = &prepared {
            let warm = store.warm(conn, pid, prepared)?;
            for s in &todo {
                let (owner, vk, id) = after.resolve(&s.owner).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "secret {:?} ({}): {} is not in the inventory",
                        s.name,
                        s.origin(),
                        s.owner
                    ))
                })?;
                write_one(conn, store, &warm, owner, s, actor, &mut out.secrets)?;
                vars_removed += drop_plain(conn, pid, vk, id, &s.name)?;
            }
        }
        for (o, m) in gone {
            if let Some((owner, _, _)) = after.resolve(o) {
                super::delete(conn, owner, &m.name, actor)?;
                out.secrets.removed += 1;
            }
        }
        // apply bumped the revision if it wrote anything.
        if out.summary.is_noop() && (out.secrets.changed() || vars_removed > 0) {
            crate::store::bump_revision(conn, pid)?;
        }
        out.summary.variables.removed += vars_removed;
        Ok(out)
    })
}
