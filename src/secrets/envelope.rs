//! Envelope encryption of one secret value: AES-256-GCM under the project's
//! data key, with associated data that binds the ciphertext to the row it
//! belongs to (project, owner, name, version). A ciphertext copied to another
//! row, another owner or another version fails to open instead of yielding a
//! value that belongs elsewhere.
//!
//! Sealed layout: `[format = 1][nonce: 12][ciphertext | tag: 16]`. The format
//! byte lets a later layout (another AEAD, a longer nonce) live beside this one.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// The layout written today.
pub const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("sealed value is {0} bytes: too short to be a sealed value")]
    Short(usize),
    #[error("sealed value has format {0}, this build reads format 1")]
    Format(u8),
    /// The data key is not this project's, or the bytes or their row changed.
    #[error("sealed value does not open (wrong data key, tampered, or copied from another row)")]
    Open,
    #[error("no random source: {0}")]
    Random(String),
}

/// A plaintext secret value: wiped on drop, printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, when it is UTF-8 (PEM, passwords usually are).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl From<Zeroizing<Vec<u8>>> for Secret {
    fn from(v: Zeroizing<Vec<u8>>) -> Self {
        Secret(v)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A project's 256-bit data key in clear: wiped on drop, printed as `***`.
/// Only ever stored wrapped by a [`super::keys::KeyProvider`].
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Result<Self, EnvelopeError> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut k[..]).map_err(|e| EnvelopeError::Random(e.to_string()))?;
        Ok(DataKey(k))
    }

    /// `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(arr)))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

/// Who owns a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Project,
    Group,
    Host,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Project => "project",
            OwnerKind::Group => "group",
            OwnerKind::Host => "host",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "project" => Some(OwnerKind::Project),
            "group" => Some(OwnerKind::Group),
            "host" => Some(OwnerKind::Host),
            _ => None,
        }
    }
}

/// The row a sealed value belongs to: the associated data of its AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub project_id: i64,
    pub owner_kind: OwnerKind,
    pub owner_id: i64,
    pub name: &'a str,
    pub version: i64,
}

impl Binding<'_> {
    /// Fixed-width integers and a length-prefixed name: no two bindings
    /// encode to the same bytes.
    fn aad(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(48 + self.name.len());
        a.extend_from_slice(b"craton-secret\0");
        a.push(FORMAT_V1);
        a.extend_from_slice(&self.project_id.to_be_bytes());
        a.extend_from_slice(self.owner_kind.as_str().as_bytes());
        a.push(0);
        a.extend_from_slice(&self.owner_id.to_be_bytes());
        a.extend_from_slice(&(self.name.len() as u64).to_be_bytes());
        a.extend_from_slice(self.name.as_bytes());
        a.extend_from_slice(&self.version.to_be_bytes());
        a
    }
}

/// Seals `plaintext` for the row `binding` under `key`.
pub fn seal(key: &DataKey, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| EnvelopeError::Random(e.to_string()))?;
    let cipher = Aes256Gcm::new(key.expose().into());
    let aad = binding.aad();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
        .map_err(|_| EnvelopeError::Open)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a value sealed by [`seal`] for the same row and key.
pub fn open(key: &DataKey, binding: &Binding<'_>, sealed: &[u8]) -> Result<Secret, EnvelopeError> {
    if sealed.len() < 1 + NONCE_LEN + 16 {
        return Err(EnvelopeError::Short(sealed.len()));
    }
    if sealed[0] != FORMAT_V1 {
        return Err(EnvelopeError::Format(sealed[0]));
    }
    let cipher = Aes256Gcm::new(key.expose().into());
    let aad = binding.aad();
    let pt = cipher
        .decrypt(Nonce::from_slice(&sealed[1..1 + NONCE_LEN]), Payload { msg: &sealed[1 + NONCE_LEN..], aad: &aad })
        .map_err(|_| EnvelopeError::Open)?;
    Ok(Secret(Zeroizing::new(pt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, version: i64) -> Binding<'_> {
        Binding { project_id: 1, owner_kind: OwnerKind::Host, owner_id: 7, name, version }
    }

    #[test]
    fn binds_to_row_and_key() {
        let k = DataKey::generate().unwrap();
        let s = seal(&k, &b("db_password", 1), b"hunter2").unwrap();
        assert_eq!(open(&k, &b("db_password", 1), &s).unwrap().expose(), b"hunter2");
        assert_eq!(open(&k, &b("db_password", 2), &s), Err(EnvelopeError::Open));
        assert_eq!(open(&k, &b("other", 1), &s), Err(EnvelopeError::Open));
        let g = Binding { owner_kind: OwnerKind::Group, ..b("db_password", 1) };
        assert_eq!(open(&k, &g, &s), Err(EnvelopeError::Open));
        let p = Binding { project_id: 2, ..b("db_password", 1) };
        assert_eq!(open(&k, &p, &s), Err(EnvelopeError::Open));
        assert_eq!(open(&DataKey::generate().unwrap(), &b("db_password", 1), &s), Err(EnvelopeError::Open));
        for i in 1..s.len() {
            let mut t = s.clone();
            t[i] ^= 1;
            assert_eq!(open(&k, &b("db_password", 1), &t), Err(EnvelopeError::Open), "byte {i}");
        }
        let mut t = s.clone();
        t[0] = 9;
        assert_eq!(open(&k, &b("db_password", 1), &t), Err(EnvelopeError::Format(9)));
        assert_eq!(format!("{:?} {:?}", Secret::new("hunter2"), k), "*** DataKey(***)");
    }
}
