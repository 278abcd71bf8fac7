//! Secrets in the database: metadata rows, one envelope per kept version,
//! per-project data keys stored only wrapped, and the access record. Every
//! function that writes a value or returns a plaintext records who did it.
//!
//! The key provider is called outside write transactions where it can be
//! (a transit round trip must not hold SQLite's write lock): a new data key
//! is wrapped first and then inserted, and a concurrent creator's key wins.

pub mod imported;

use diesel::prelude::*;

use super::schema::{secret_access, secret_data_keys, secret_versions, secrets};
use super::{now_ms, DbConn, StoreError};
use crate::secrets::envelope::{self, Binding, DataKey, OwnerKind, Secret};
use crate::secrets::keys::{KeyError, KeyProvider, WrappedKey};
use crate::secrets::pem::{self, SecretKind};

/// Versions kept per secret unless configured otherwise.
pub const DEFAULT_KEEP_VERSIONS: usize = 5;

/// A secret's metadata: never the value.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = secrets)]
pub struct SecretMeta {
    pub id: i64,
    pub project_id: i64,
    pub owner_kind: String,
    pub owner_id: i64,
    pub name: String,
    pub kind: String,
    pub current_version: i64,
    pub fingerprint: String,
    /// A certificate's expiry, Unix milliseconds.
    pub not_after: Option<i64>,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// `model::Tier` as stored: 1 vars file (the default), 0 inline.
    pub tier: i32,
}

/// One access record.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = secret_access)]
pub struct Access {
    pub id: i64,
    pub project_id: i64,
    pub secret_id: Option<i64>,
    pub owner_kind: String,
    pub owner_id: i64,
    pub name: String,
    /// `create`, `update`, `delete`, `read`, `open_all`, `reencrypt`.
    pub action: String,
    pub version: Option<i64>,
    pub actor: String,
    pub at: i64,
}

/// Who owns a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub project_id: i64,
    pub kind: OwnerKind,
    /// The host's or group's id; the project's own id for project secrets.
    pub id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("secret {name:?}: {source}")]
    Value { name: String, source: pem::CheckError },
    #[error("secret {name:?} version {version}: {source}")]
    Envelope { name: String, version: i64, source: envelope::EnvelopeError },
    #[error("{0}")]
    Invalid(String),
}

impl From<diesel::result::Error> for SecretsError {
    fn from(e: diesel::result::Error) -> Self {
        SecretsError::Store(StoreError::Query(e))
    }
}

impl super::tx::TxError for SecretsError {
    fn is_transient(&self) -> bool {
        matches!(self, SecretsError::Store(e) if e.is_transient())
    }
    fn from_store(e: StoreError) -> Self {
        SecretsError::Store(e)
    }
}

/// The secrets of a database, sealed under data keys that `provider` wraps.
pub struct Secrets<'p> {
    provider: &'p dyn KeyProvider,
    keep_versions: usize,
}

impl<'p> Secrets<'p> {
    pub fn new(provider: &'p dyn KeyProvider) -> Self {
        Secrets { provider, keep_versions: DEFAULT_KEEP_VERSIONS }
    }

    /// Keeps the newest `n` versions of each secret (at least 1).
    pub fn keep_versions(mut self, n: usize) -> Self {
        self.keep_versions = n.max(1);
        self
    }

    /// The project's active data key, created (and wrapped) on first use.
    fn data_key(&self, conn: &mut DbConn, project_id: i64) -> Result<(i64, DataKey), SecretsError> {
        if let Some((id, w)) = active_key(conn, project_id)? {
            return Ok((id, self.provider.unwrap(&w)?));
        }
        let key = DataKey::generate().map_err(|e| SecretsError::Invalid(e.to_string()))?;
        let w = self.provider.wrap(&key)?;
        // Two first writes at once may both get here; the unique index on the
        // active key refuses the second insert, whose writer then takes the
        // winner's key like any other.
        let inserted = match super::tx::write(conn, |conn| -> Result<bool, SecretsError> {
            if active_key(conn, project_id)?.is_some() {
                return Ok(false);
            }
            let now = now_ms();
            insert_active_key(conn, project_id, &w, now)?;
            Ok(true)
        }) {
            Ok(inserted) => inserted,
            Err(SecretsError::Store(e)) if e.is_unique_violation() => false,
            Err(e) => return Err(e),
        };
        let (id, stored) = active_key(conn, project_id)?
            .ok_or_else(|| SecretsError::Invalid(format!("project {project_id}: data key vanished")))?;
        if inserted && stored == w {
            Ok((id, key))
        } else {
            Ok((id, self.provider.unwrap(&stored)?))
        }
    }

    /// Creates a secret (version 1); a duplicate name is a conflict.
    pub fn create(
        &self,
        conn: &mut DbConn,
        owner: Owner,
        name: &str,
        kind: SecretKind,
        value: &Secret,
        actor: &str,
    ) -> Result<SecretMeta, SecretsError> {
        self.put(conn, owner, name, kind, value, actor, Some(false))
    }

    /// Stores a new version of an existing secret (its kind may change).
    pub fn update(
        &self,
        conn: &mut DbConn,
        owner: Owner,
        name: &str,
        kind: SecretKind,
        value: &Secret,
        actor: &str,
    ) -> Result<SecretMeta, SecretsError> {
        self.put(conn, owner, name, kind, value, actor, Some(true))
    }

    /// Creates or updates. `must_exist`: `Some(false)` create only,
    /// `Some(true)` update only, `None` either.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        conn: &mut DbConn,
        owner: Owner,
        name: &str,
        kind: SecretKind,
        value: &Secret,
        actor: &str,
        must_exist: Option<bool>,
    ) -> Result<SecretMeta, SecretsError> {
        self.put_tiered(conn, owner, name, kind, value, actor, must_exist, None)
    }

    /// [`Secrets::put`] that also sets the secret's tier (`None`: a new
    /// secret gets the vars-file tier, an existing one keeps its own).
    #[allow(clippy::too_many_arguments)]
    pub fn put_tiered(
        &self,
        conn: &mut DbConn,
        owner: Owner,
        name: &str,
        kind: SecretKind,
        value: &Secret,
        actor: &str,
        must_exist: Option<bool>,
        tier: Option<crate::model::Tier>,
    ) -> Result<SecretMeta, SecretsError> {
        crate::names::check_name("secret", name).map_err(SecretsError::Invalid)?;
        // The secret becomes an Ansible variable of that name.
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SecretsError::Invalid(format!(
                "secret name {name:?} is not an Ansible variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let checked =
            pem::check(kind, value.expose()).map_err(|source| SecretsError::Value { name: name.into(), source })?;
        let keep = self.keep_versions as i64;
        // A `cratond secrets reencrypt` may delete the key read here before
        // the write lands (the versions' foreign key refuses it then): once,
        // read the new active key and write again.
        let mut retried = false;
        loop {
            let (key_id, key) = self.data_key(conn, owner.project_id)?;
            let written = super::tx::write(conn, |conn| -> Result<SecretMeta, SecretsError> {
                // A secret is part of what the inventory renders: a new revision
                // moves every cache and ETag keyed by it.
                super::edit::begin_write(conn, owner.project_id)?;
                let now = now_ms();
                let existing = find(conn, owner, name)?;
                let (id, version, action) = match (existing, must_exist) {
                    (Some(_), Some(false)) => {
                        return Err(StoreError::Conflict(format!("secret {name:?} already exists")).into());
                    }
                    (None, Some(true)) => return Err(StoreError::NotFound(format!("secret {name:?}")).into()),
                    (Some(m), _) => {
                        let v = m.current_version + 1;
                        diesel::update(secrets::table.find(m.id))
                            .set((
                                secrets::tier.eq(tier.map_or(m.tier, |t| t as i32)),
                                secrets::kind.eq(kind.as_str()),
                                secrets::current_version.eq(v),
                                secrets::fingerprint.eq(&checked.fingerprint),
                                secrets::not_after.eq(checked.not_after),
                                secrets::updated_by.eq(actor),
                                secrets::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        (m.id, v, "update")
                    }
                    (None, _) => {
                        diesel::insert_into(secrets::table)
                            .values((
                                secrets::project_id.eq(owner.project_id),
                                secrets::owner_kind.eq(owner.kind.as_str()),
                                secrets::owner_id.eq(owner.id),
                                secrets::name.eq(name),
                                secrets::tier.eq(tier.unwrap_or(crate::model::Tier::VarsFile) as i32),
                                secrets::kind.eq(kind.as_str()),
                                secrets::current_version.eq(1i64),
                                secrets::fingerprint.eq(&checked.fingerprint),
                                secrets::not_after.eq(checked.not_after),
                                secrets::created_by.eq(actor),
                                secrets::updated_by.eq(actor),
                                secrets::created_at.eq(now),
                                secrets::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        let m = find(conn, owner, name)?.ok_or(diesel::result::Error::NotFound)?;
                        (m.id, 1, "create")
                    }
                };
                let binding = binding(owner, name, version);
                let sealed = envelope::seal(&key, &binding, value.expose())
                    .map_err(|source| SecretsError::Envelope { name: name.into(), version, source })?;
                diesel::insert_into(secret_versions::table)
                    .values((
                        secret_versions::secret_id.eq(id),
                        secret_versions::version.eq(version),
                        secret_versions::data_key_id.eq(key_id),
                        secret_versions::ciphertext.eq(&sealed),
                        secret_versions::fingerprint.eq(&checked.fingerprint),
                        secret_versions::created_by.eq(actor),
                        secret_versions::created_at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::delete(
                    secret_versions::table
                        .filter(secret_versions::secret_id.eq(id))
                        .filter(secret_versions::version.le(version - keep)),
                )
                .execute(conn)?;
                record(conn, owner, Some(id), name, action, Some(version), actor, now)?;
                Ok(find(conn, owner, name)?.ok_or(diesel::result::Error::NotFound)?)
            });
            match written {
                Err(SecretsError::Store(StoreError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    _,
                )))) if !retried => retried = true,
                other => return other,
            }
        }
    }

    /// The plaintext of a secret's current version (or of `version`, while
    /// it is kept); records the read.
    pub fn reveal(
        &self,
        conn: &mut DbConn,
        owner: Owner,
        name: &str,
        version: Option<i64>,
        actor: &str,
    ) -> Result<(SecretMeta, Secret), SecretsError> {
        let meta = find(conn, owner, name)?.ok_or_else(|| StoreError::NotFound(format!("secret {name:?}")))?;
        let v = version.unwrap_or(meta.current_version);
        let (key_id, sealed): (i64, Vec<u8>) = secret_versions::table
            .filter(secret_versions::secret_id.eq(meta.id))
            .filter(secret_versions::version.eq(v))
            .select((secret_versions::data_key_id, secret_versions::ciphertext))
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("secret {name:?} version {v}")))?;
        let key = self.key_by_id(conn, owner.project_id, key_id)?;
        let plain = envelope::open(&key, &binding(owner, name, v), &sealed)
            .map_err(|source| SecretsError::Envelope { name: name.into(), version: v, source })?;
        super::tx::write(conn, |conn| record(conn, owner, Some(meta.id), name, "read", Some(v), actor, now_ms()))?;
        Ok((meta, plain))
    }

    fn key_by_id(&self, conn: &mut DbConn, project_id: i64, key_id: i64) -> Result<DataKey, SecretsError> {
        let (provider, key_version, wrapped): (String, i64, String) = secret_data_keys::table
            .filter(secret_data_keys::id.eq(key_id))
            .filter(secret_data_keys::project_id.eq(project_id))
            .select((secret_data_keys::provider, secret_data_keys::key_version, secret_data_keys::wrapped))
            .first(conn)?;
        Ok(self.provider.unwrap(&WrappedKey { provider, key_version, wrapped })?)
    }

    /// Every current plaintext of a project, for rendering an inventory or
    /// a bundle: each data key unwrapped once. Records one `open_all` for
    /// the project (one row per output, not per value).
    pub fn open_all(
        &self,
        conn: &mut DbConn,
        project_id: i64,
        actor: &str,
    ) -> Result<Vec<(SecretMeta, Secret)>, SecretsError> {
        let rows: Vec<(SecretMeta, i64, Vec<u8>)> = secrets::table
            .inner_join(secret_versions::table.on(
                secret_versions::secret_id.eq(secrets::id).and(secret_versions::version.eq(secrets::current_version)),
            ))
            .filter(secrets::project_id.eq(project_id))
            .order((secrets::owner_kind, secrets::owner_id, secrets::name))
            .select((SecretMeta::as_select(), secret_versions::data_key_id, secret_versions::ciphertext))
            .load(conn)?;
        let mut keys: std::collections::HashMap<i64, DataKey> = Default::default();
        let mut out = Vec::with_capacity(rows.len());
        for (meta, key_id, sealed) in rows {
            if !keys.contains_key(&key_id) {
                keys.insert(key_id, self.key_by_id(conn, project_id, key_id)?);
            }
            let kind = OwnerKind::parse(&meta.owner_kind).ok_or_else(|| {
                SecretsError::Invalid(format!("secret {}: owner kind {:?}", meta.id, meta.owner_kind))
            })?;
            let owner = Owner { project_id, kind, id: meta.owner_id };
            let plain =
                envelope::open(&keys[&key_id], &binding(owner, &meta.name, meta.current_version), &sealed).map_err(
                    |source| SecretsError::Envelope { name: meta.name.clone(), version: meta.current_version, source },
                )?;
            out.push((meta, plain));
        }
        let owner = Owner { project_id, kind: OwnerKind::Project, id: project_id };
        super::tx::write(conn, |conn| record(conn, owner, None, "*", "open_all", None, actor, now_ms()))?;
        Ok(out)
    }

    /// [`Secrets::open_all`] together with the project revision the values
    /// belong to (secret writes bump it), so an output built from them can be
    /// labelled, cached and salted by that revision. Retries while writers
    /// move the revision under it.
    pub fn open_at_revision(
        &self,
        conn: &mut DbConn,
        project_id: i64,
        actor: &str,
    ) -> Result<(i64, Vec<(SecretMeta, Secret)>), SecretsError> {
        use super::schema::projects;
        let revision = |conn: &mut DbConn| -> Result<i64, SecretsError> {
            Ok(projects::table.find(project_id).select(projects::revision).first(conn)?)
        };
        let mut before = revision(conn)?;
        for _ in 0..8 {
            let opened = self.open_all(conn, project_id, actor)?;
            let after = revision(conn)?;
            if after == before {
                return Ok((after, opened));
            }
            before = after;
        }
        Err(StoreError::Conflict(format!("project {project_id} kept changing while its secrets were read")).into())
    }

    /// The vault password of the project's outputs at `revision` in
    /// client mode (what `craton-vault-client` asks for): an HMAC of the
    /// revision under a data key of the project (`data_key`, or the active
    /// one), so cratond stores no password and a bundle's password dies
    /// with its data key (`cratond secrets reencrypt`). `None` when the
    /// project has no data key yet (it has no secrets either).
    pub fn client_password(
        &self,
        conn: &mut DbConn,
        project_id: i64,
        revision: i64,
        data_key: Option<i64>,
    ) -> Result<Option<(i64, crate::secrets::VaultPassword)>, SecretsError> {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let key_id = match data_key {
            Some(k) => k,
            None => match active_key(conn, project_id)? {
                Some((id, _)) => id,
                None => return Ok(None),
            },
        };
        let key = match self.key_by_id(conn, project_id, key_id) {
            Err(SecretsError::Store(StoreError::Query(diesel::result::Error::NotFound))) => {
                return Err(StoreError::NotFound(format!(
                    "data key {key_id} of project {project_id} (replaced by `cratond secrets reencrypt`?)"
                ))
                .into())
            }
            other => other?,
        };
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC takes any key length");
        mac.update(format!("craton client vault password v1\0{project_id}\0{revision}").as_bytes());
        let tag: crate::secrets::Zeroizing<[u8; 32]> =
            crate::secrets::Zeroizing::new(mac.finalize().into_bytes().into());
        let pw =
            crate::secrets::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_slice()));
        Ok(Some((key_id, crate::secrets::VaultPassword::new(pw.as_bytes()))))
    }

    /// Rewraps every data key (of `project_id`, or of all projects) that
    /// is older than the provider's current key version, one row per
    /// transaction: resumable, and readers keep working meanwhile (the data
    /// key itself does not change). Returns how many were rewrapped.
    pub fn rewrap_all(&self, conn: &mut DbConn, project_id: Option<i64>) -> Result<usize, SecretsError> {
        // `rotate` (rekey.rs) does the work and reports each key.
        Ok(self.rotate(conn, project_id, &mut |_| {})?.rewrapped)
    }
}

fn binding(owner: Owner, name: &str, version: i64) -> Binding<'_> {
    Binding { project_id: owner.project_id, owner_kind: owner.kind, owner_id: owner.id, name, version }
}

/// Inserts `w` as the project's active data key (the unique index refuses
/// a second active one).
fn insert_active_key(
    conn: &mut DbConn,
    project_id: i64,
    w: &WrappedKey,
    now: i64,
) -> Result<usize, diesel::result::Error> {
    diesel::insert_into(secret_data_keys::table)
        .values((
            secret_data_keys::project_id.eq(project_id),
            secret_data_keys::provider.eq(&w.provider),
            secret_data_keys::key_version.eq(w.key_version),
            secret_data_keys::wrapped.eq(&w.wrapped),
            secret_data_keys::active.eq(true),
            secret_data_keys::created_at.eq(now),
            secret_data_keys::updated_at.eq(now),
        ))
        .execute(conn)
}

fn active_key(conn: &mut DbConn, project_id: i64) -> Result<Option<(i64, WrappedKey)>, SecretsError> {
    let row: Option<(i64, String, i64, String)> = secret_data_keys::table
        .filter(secret_data_keys::project_id.eq(project_id))
        .filter(secret_data_keys::active.eq(true))
        .order(secret_data_keys::id.asc())
        .select((
            secret_data_keys::id,
            secret_data_keys::provider,
            secret_data_keys::key_version,
            secret_data_keys::wrapped,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, provider, key_version, wrapped)| (id, WrappedKey { provider, key_version, wrapped })))
}

fn find(conn: &mut DbConn, owner: Owner, name: &str) -> Result<Option<SecretMeta>, diesel::result::Error> {
    secrets::table
        .filter(secrets::project_id.eq(owner.project_id))
        .filter(secrets::owner_kind.eq(owner.kind.as_str()))
        .filter(secrets::owner_id.eq(owner.id))
        .filter(secrets::name.eq(name))
        .select(SecretMeta::as_select())
        .first(conn)
        .optional()
}

#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut DbConn,
    owner: Owner,
    secret_id: Option<i64>,
    name: &str,
    action: &str,
    version: Option<i64>,
    actor: &str,
    at: i64,
) -> Result<(), SecretsError> {
    diesel::insert_into(secret_access::table)
        .values((
            secret_access::project_id.eq(owner.project_id),
            secret_access::secret_id.eq(secret_id),
            secret_access::owner_kind.eq(owner.kind.as_str()),
            secret_access::owner_id.eq(owner.id),
            secret_access::name.eq(name),
            secret_access::action.eq(action),
            secret_access::version.eq(version),
            secret_access::actor.eq(actor),
            secret_access::at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// One secret's metadata.
pub fn get(conn: &mut DbConn, owner: Owner, name: &str) -> Result<SecretMeta, StoreError> {
    find(conn, owner, name)?.ok_or_else(|| StoreError::NotFound(format!("secret {name:?}")))
}

/// An owner's secrets by name; with `expiring_before` (Unix ms) only those
/// whose certificate expires before it.
pub fn list(conn: &mut DbConn, owner: Owner, expiring_before: Option<i64>) -> Result<Vec<SecretMeta>, StoreError> {
    let mut q = secrets::table
        .filter(secrets::project_id.eq(owner.project_id))
        .filter(secrets::owner_kind.eq(owner.kind.as_str()))
        .filter(secrets::owner_id.eq(owner.id))
        .select(SecretMeta::as_select())
        .order(secrets::name)
        .into_boxed();
    if let Some(t) = expiring_before {
        q = q.filter(secrets::not_after.lt(t));
    }
    Ok(q.load(conn)?)
}

/// The versions kept of a secret, newest first.
pub fn versions(conn: &mut DbConn, secret_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(secret_versions::table
        .filter(secret_versions::secret_id.eq(secret_id))
        .select(secret_versions::version)
        .order(secret_versions::version.desc())
        .load(conn)?)
}

/// Deletes a secret and its versions; records who did it.
pub fn delete(conn: &mut DbConn, owner: Owner, name: &str, actor: &str) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        let m = find(conn, owner, name)?.ok_or_else(|| StoreError::NotFound(format!("secret {name:?}")))?;
        super::edit::begin_write(conn, owner.project_id)?;
        diesel::delete(secret_versions::table.filter(secret_versions::secret_id.eq(m.id))).execute(conn)?;
        diesel::delete(secrets::table.find(m.id)).execute(conn)?;
        record(conn, owner, Some(m.id), name, "delete", Some(m.current_version), actor, now_ms()).map_err(|e| match e {
            SecretsError::Store(s) => s,
            other => StoreError::Invalid(other.to_string()),
        })
    })
}

/// Deletes every secret of an owner (the host or group is being deleted);
/// owner_id has no foreign key to cascade.
pub fn delete_owner(conn: &mut DbConn, owner: Owner) -> Result<usize, StoreError> {
    let ids: Vec<i64> = secrets::table
        .filter(secrets::project_id.eq(owner.project_id))
        .filter(secrets::owner_kind.eq(owner.kind.as_str()))
        .filter(secrets::owner_id.eq(owner.id))
        .select(secrets::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(secret_versions::table.filter(secret_versions::secret_id.eq_any(&ids))).execute(conn)?;
    Ok(diesel::delete(secrets::table.filter(secrets::id.eq_any(&ids))).execute(conn)?)
}

/// A project's snapshot with its secrets injected as vault values under
/// `password` ([`crate::secrets::inject`]), snapshot and secrets of one and
/// the same revision. `load` gives the project's snapshot at (at least) a
/// revision, from the database or a cache. Returns the injected copy, the
/// output key (for a bundle's files) and how many secrets went in.
pub fn inject_output(
    secrets: &Secrets<'_>,
    conn: &mut DbConn,
    project: &crate::model::Project,
    password: &crate::secrets::VaultPassword,
    actor: &str,
    load: impl FnMut(&mut DbConn, &crate::model::Project) -> Result<std::sync::Arc<crate::model::Snapshot>, SecretsError>,
) -> Result<(crate::model::Snapshot, crate::secrets::VaultKey, usize), SecretsError> {
    inject_output_with(secrets, conn, project, actor, load, |_, _| Ok(password.clone()))
}

/// [`inject_output`] with a password that depends on the revision the
/// output is of (the client mode's derived password).
pub fn inject_output_with(
    secrets: &Secrets<'_>,
    conn: &mut DbConn,
    project: &crate::model::Project,
    actor: &str,
    mut load: impl FnMut(
        &mut DbConn,
        &crate::model::Project,
    ) -> Result<std::sync::Arc<crate::model::Snapshot>, SecretsError>,
    mut password: impl FnMut(&mut DbConn, i64) -> Result<crate::secrets::VaultPassword, SecretsError>,
) -> Result<(crate::model::Snapshot, crate::secrets::VaultKey, usize), SecretsError> {
    use crate::secrets::inject;
    let mut project = project.clone();
    for _ in 0..8 {
        let snap = load(conn, &project)?;
        let (revision, opened) = secrets.open_at_revision(conn, project.id, actor)?;
        if revision != snap.project.revision {
            project.revision = revision.max(snap.project.revision);
            continue;
        }
        let key = inject::output_key(&password(conn, revision)?, project.id, revision);
        let list: Vec<inject::Opened<'_>> = opened
            .iter()
            .filter_map(|(m, v)| {
                Some(inject::Opened {
                    owner_kind: OwnerKind::parse(&m.owner_kind)?,
                    owner_id: m.owner_id,
                    tier: crate::model::Tier::from_i32(m.tier),
                    name: &m.name,
                    value: v,
                })
            })
            .collect();
        let mut copy = (*snap).clone();
        let done = inject::inject(&mut copy, &list, &key).map_err(|e| SecretsError::Invalid(e.to_string()))?;
        return Ok((copy, key, done.injected));
    }
    Err(StoreError::Conflict(format!("project {:?} kept changing while its secrets were read", project.name)).into())
}

/// Records an access that concerns the project's secrets as a whole (a
/// client-mode vault password handed out).
pub fn record_access(conn: &mut DbConn, project_id: i64, action: &str, actor: &str) -> Result<(), StoreError> {
    let owner = Owner { project_id, kind: OwnerKind::Project, id: project_id };
    super::tx::write(conn, |conn| record(conn, owner, None, "*", action, None, actor, now_ms())).map_err(|e| match e {
        SecretsError::Store(s) => s,
        other => StoreError::Invalid(other.to_string()),
    })
}

/// How many secrets the project holds: what an output without a vault
/// password leaves out. One COUNT, on every inventory request.
pub fn count(conn: &mut DbConn, project_id: i64) -> Result<usize, StoreError> {
    let n: i64 = secrets::table.filter(secrets::project_id.eq(project_id)).count().get_result(conn)?;
    Ok(n as usize)
}

/// The newest access records of a project, newest first.
pub fn access_log(conn: &mut DbConn, project_id: i64, limit: i64) -> Result<Vec<Access>, StoreError> {
    Ok(secret_access::table
        .filter(secret_access::project_id.eq(project_id))
        .order(secret_access::id.desc())
        .limit(limit)
        .select(Access::as_select())
        .load(conn)?)
}

/// Whether the owner exists in its project (a host or group id of another
/// project is as absent as one never used).
pub fn owner_exists(conn: &mut DbConn, owner: Owner) -> Result<bool, StoreError> {
    use super::schema::{hosts, inventory_groups, projects};
    let n: i64 = match owner.kind {
        OwnerKind::Project => projects::table.filter(projects::id.eq(owner.id)).count().get_result(conn)?,
        OwnerKind::Host => hosts::table
            .filter(hosts::id.eq(owner.id))
            .filter(hosts::project_id.eq(owner.project_id))
            .count()
            .get_result(conn)?,
        OwnerKind::Group => inventory_groups::table
            .filter(inventory_groups::id.eq(owner.id))
            .filter(inventory_groups::project_id.eq(owner.project_id))
            .count()
            .get_result(conn)?,
    };
    Ok(n > 0)
}

mod rekey;
pub use rekey::{data_key_count, ProjectReencrypt, ReencryptOptions, ReencryptOutcome, RotateSummary, RotatedKey};
