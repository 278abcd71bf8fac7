//! Secrets into an inventory: each opened secret becomes a variable of its
//! owner (host, group, or the project's `all`) whose value is an
//! ansible-vault text, `{"__ansible_vault": "$ANSIBLE_VAULT;1.2;AES256;craton\n…"}`,
//! which ansible-core's JSON decoder (script output, and the JSON-syntax
//! files of a bundle) turns into a vaulted string. From there the renderer
//! and the bundle writer treat it as any other value, so precedence and
//! `--group` lifting stay exactly Ansible's.
//!
//! Tier: a secret sits in the vars-file tier, because that is where a
//! bundle writes it (`group_vars/G/secrets.yml`), and `--list` must resolve
//! as the bundle does; one imported from an inline `!vault` value of an
//! inventory file keeps the inline tier its source had (a bundle writes it
//! inline, as a vault value). A secret replaces a plain variable of the
//! same owner and name: the secret is the newer, guarded truth.
//!
//! Key derivation: ansible-vault spends 10,000 PBKDF2 rounds per salt, about
//! 2.5 ms; 10,000 values with a salt each would cost 25 s per output. One
//! output therefore derives one key, from a salt that is a function of the
//! project and its revision ([`output_salt`]): the same revision and password
//! give the same bytes, a new revision a new key. The price, as with
//! Ansible's own `VAULT_ENCRYPT_SALT`: the values of one output share a CTR
//! keystream, so whoever holds an output but not its password can XOR two of
//! its values. Outputs must be kept as confidential as the values' owners
//! expect of ciphertext under a shared key (docs/secrets.md says so).

use serde_json::value::RawValue;

use super::envelope::{OwnerKind, Secret};
use super::vault::{self, VaultError, VaultKey, VaultPassword, SALT_LEN};
use crate::model::{Snapshot, Tier, Var};
use zeroize::Zeroizing;

/// The vault id every Craton output is labelled with (`--vault-id craton@…`).
pub const VAULT_ID: &str = "craton";

/// One secret, opened, ready to be injected.
pub struct Opened<'a> {
    pub owner_kind: OwnerKind,
    /// Host or group id, or the project id for project secrets.
    pub owner_id: i64,
    pub name: &'a str,
    pub value: &'a Secret,
    /// Where it ranks: the vars-file tier unless it came from an inline
    /// `!vault` value of an inventory file.
    pub tier: Tier,
}

/// The salt of every vault text in the output of `project_id` at `revision`.
pub fn output_salt(project_id: i64, revision: i64) -> [u8; SALT_LEN] {
    vault::salt_for(format!("output/{project_id}/{revision}").as_bytes())
}

/// The one key of an output (one PBKDF2 derivation).
pub fn output_key(password: &VaultPassword, project_id: i64, revision: i64) -> VaultKey {
    VaultKey::derive(password, output_salt(project_id, revision))
}

/// How [`inject`] went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    /// Secrets now in the snapshot.
    pub injected: usize,
    /// Secrets whose owner is not in the snapshot (deleted meanwhile).
    pub orphaned: usize,
}

/// Sets every secret of `secrets` as a vault-valued variable on its owner in
/// `snap` (a copy of the project's snapshot), encrypted under `key`.
pub fn inject(snap: &mut Snapshot, secrets: &[Opened<'_>], key: &VaultKey) -> Result<Injected, VaultError> {
    let hosts: std::collections::HashMap<i64, usize> = snap.hosts.iter().enumerate().map(|(i, h)| (h.id, i)).collect();
    let groups: std::collections::HashMap<i64, usize> =
        snap.groups.iter().enumerate().map(|(i, g)| (g.id, i)).collect();
    let mut out = Injected::default();
    for s in secrets {
        let vars = match s.owner_kind {
            OwnerKind::Project if s.owner_id == snap.project.id => &mut snap.all_vars,
            OwnerKind::Host => match hosts.get(&s.owner_id) {
                Some(&h) => &mut snap.hosts[h].vars,
                None => {
                    out.orphaned += 1;
                    continue;
                }
            },
            OwnerKind::Group => match groups.get(&s.owner_id) {
                Some(&g) => &mut snap.groups[g].vars,
                None => {
                    out.orphaned += 1;
                    continue;
                }
            },
            OwnerKind::Project => {
                out.orphaned += 1;
                continue;
            }
        };
        let text = key.encrypt(s.value.expose(), VAULT_ID)?;
        vars.shift_remove(s.name);
        vars.insert(s.name.to_string(), Var { value: vault_value(&text), tier: s.tier });
        out.injected += 1;
    }
    Ok(out)
}

/// `{"__ansible_vault": TEXT}` as a stored value.
pub fn vault_value(text: &str) -> Box<RawValue> {
    let json = serde_json::to_string(&serde_json::json!({ "__ansible_vault": text })).expect("serializing a string");
    RawValue::from_string(json).expect("valid JSON")
}

/// The plaintext of a value written by [`vault_value`] under `key`, if it
/// is one (our label, our salt, and its MAC checks): lets the bundle writer
/// recognise its own secrets among the emitted values without a side table,
/// and costs no key derivation.
pub fn own_plaintext(raw: &RawValue, key: &VaultKey) -> Option<Zeroizing<Vec<u8>>> {
    let text = raw.get();
    if !text.starts_with("{\"__ansible_vault\":") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object()?;
    let vt = obj.get("__ansible_vault")?.as_str()?;
    if obj.len() != 1 || vault::header_of(vt).ok()?.vault_id != VAULT_ID {
        return None;
    }
    key.decrypt(vt).ok()
}
