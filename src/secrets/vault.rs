//! The ansible-vault format (ansible-core `parsing/vault`, `VaultAES256`),
//! written here on maintained RustCrypto crates because the `ansible-vault`
//! crate reads only 1.1 and pulls in deprecated ones.
//!
//! Format: a header `$ANSIBLE_VAULT;1.1;AES256` (or `;1.2;AES256;<vault-id>`
//! when the vault id is not `default`), then hex lines of 80 characters of
//! `hex(salt) "\n" hex(hmac) "\n" hex(ciphertext)`. The keys come from
//! PBKDF2-HMAC-SHA256 (10,000 rounds, 80 bytes: AES key | HMAC key | CTR IV);
//! the plaintext is PKCS#7-padded and AES-256-CTR encrypted; the MAC is
//! HMAC-SHA256 over the ciphertext and is checked before anything is decrypted.
//!
//! The cost is the key derivation (10,000 PBKDF2 rounds, milliseconds per
//! value): [`VaultKey`] derives once for a salt and encrypts many values with
//! it. Values sealed under one `VaultKey` share key AND IV (Ansible derives the
//! IV from the salt), so their CTR keystreams are identical: whoever holds two
//! of them, without the password, learns the XOR of the two plaintexts, and a
//! known prefix (a PEM header) reveals the same prefix of the others. Ansible
//! itself does exactly this when `VAULT_ENCRYPT_SALT` is set. Use one shared
//! key only where that is accepted; otherwise give each value its own salt
//! (derived deterministically from what makes it unique) and keep the derived
//! keys in a [`KeyCache`] so that repeated outputs do not pay again.

use std::collections::HashMap;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// PBKDF2 rounds of `VaultAES256`.
pub const ITERATIONS: u32 = 10_000;
/// Salt length ansible-core uses (`os.urandom(32)`).
pub const SALT_LEN: usize = 32;
/// The vault id Ansible writes as a 1.1 header.
pub const DEFAULT_VAULT_ID: &str = "default";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("not an ansible-vault text: {0}")]
    Format(String),
    #[error("unsupported vault format: {0}")]
    Unsupported(String),
    /// Wrong password or tampered text: Ansible cannot tell them apart either.
    #[error("vault text does not open with this password (HMAC mismatch: wrong password or tampered text)")]
    Mac,
    #[error("vault text decrypted to invalid padding (tampered text)")]
    Padding,
    #[error("invalid vault id {0:?}: it must be non-empty and hold no ';', whitespace or control characters")]
    VaultId(String),
    #[error("no random source: {0}")]
    Random(String),
}

/// A vault password. Its bytes are wiped on drop and never printed.
#[derive(Clone)]
pub struct VaultPassword(Zeroizing<Vec<u8>>);

impl VaultPassword {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        VaultPassword(Zeroizing::new(bytes.into()))
    }

    /// As Ansible reads a password file: surrounding whitespace stripped.
    pub fn from_file_contents(contents: &[u8]) -> Self {
        let start = contents.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(contents.len());
        let end = contents.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
        VaultPassword::new(&contents[start..end])
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for VaultPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultPassword(***)")
    }
}

/// The three keys PBKDF2 derives from a password and a salt.
pub struct VaultKey {
    salt: [u8; SALT_LEN],
    // aes key | hmac key | iv, wiped on drop.
    derived: Zeroizing<[u8; 80]>,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKey").field("salt", &hex(&self.salt)).field("keys", &"***").finish()
    }
}

impl VaultKey {
    /// Derives the keys for `salt` (the costly step: 10,000 PBKDF2 rounds).
    pub fn derive(password: &VaultPassword, salt: [u8; SALT_LEN]) -> Self {
        VaultKey { salt, derived: derive_raw(password.expose(), &salt) }
    }

    /// Derives the keys for a fresh random salt.
    pub fn random(password: &VaultPassword) -> Result<Self, VaultError> {
        Ok(VaultKey::derive(password, random_salt()?))
    }

    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// Encrypts one value. `vault_id` `default` gives a 1.1 header, any
    /// other label a 1.2 header naming it. See the module doc on sharing one
    /// key between values.
    pub fn encrypt(&self, plaintext: &[u8], vault_id: &str) -> Result<String, VaultError> {
        let header = header(vault_id)?;
        let (aes_key, rest) = self.derived.split_at(32);
        let (hmac_key, iv) = rest.split_at(32);
        let pad = 16 - plaintext.len() % 16;
        let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
        buf.extend_from_slice(plaintext);
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        Aes256Ctr::new(aes_key.into(), iv.into()).apply_keystream(&mut buf);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(hmac_key).expect("HMAC takes any key length");
        mac.update(&buf);
        let tag = mac.finalize().into_bytes();

        let mut inner = String::with_capacity(2 * SALT_LEN + 66 + 2 * buf.len());
        inner.push_str(&hex(&self.salt));
        inner.push('\n');
        inner.push_str(&hex(&tag));
        inner.push('\n');
        inner.push_str(&hex(&buf));
        let outer = hex(inner.as_bytes());

        let mut out = String::with_capacity(header.len() + outer.len() + outer.len() / 80 + 2);
        out.push_str(&header);
        for line in outer.as_bytes().chunks(80) {
            out.push('\n');
            out.push_str(std::str::from_utf8(line).expect("hex is ASCII"));
        }
        out.push('\n');
        Ok(out)
    }

    /// Decrypts a vault text that was sealed under this key (same salt);
    /// any other text is a [`VaultError::Mac`], as a wrong password is.
    /// No key derivation: the cheap way to read back what this key wrote.
    pub fn decrypt(&self, vaulttext: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (_, body) = parse(vaulttext)?;
        if body.salt != self.salt {
            return Err(VaultError::Mac);
        }
        self.open(&body)
    }

    /// Decrypts a body whose salt is this key's (after [`parse`]).
    fn open(&self, body: &Body) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (aes_key, rest) = self.derived.split_at(32);
        let (hmac_key, iv) = rest.split_at(32);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(hmac_key).expect("HMAC takes any key length");
        mac.update(&body.ciphertext);
        mac.verify_slice(&body.mac).map_err(|_| VaultError::Mac)?;
        let mut buf = Zeroizing::new(body.ciphertext.clone());
        Aes256Ctr::new(aes_key.into(), iv.into()).apply_keystream(&mut buf);
        let pad = *buf.last().ok_or(VaultError::Padding)? as usize;
        if pad == 0 || pad > 16 || pad > buf.len() || buf[buf.len() - pad..].iter().any(|&b| b as usize != pad) {
            return Err(VaultError::Padding);
        }
        let n = buf.len() - pad;
        buf.truncate(n);
        Ok(buf)
    }
}

fn derive_raw(password: &[u8], salt: &[u8]) -> Zeroizing<[u8; 80]> {
    let mut out = Zeroizing::new([0u8; 80]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out[..]);
    out
}

/// A random 32-byte salt from the operating system.
pub fn random_salt() -> Result<[u8; SALT_LEN], VaultError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(salt)
}

/// A salt derived from a label (e.g. `"<revision>/<owner>/<name>/<version>"`),
/// so that an output is byte-identical for the same inputs and password.
/// SHA-256 of a domain tag and the label: not secret, only unique.
pub fn salt_for(label: &[u8]) -> [u8; SALT_LEN] {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"craton ansible-vault salt v1\0");
    h.update(label);
    h.finalize().into()
}

/// Encrypts one value with its own salt (random when `salt` is `None`).
pub fn encrypt(
    password: &VaultPassword,
    plaintext: &[u8],
    vault_id: &str,
    salt: Option<[u8; SALT_LEN]>,
) -> Result<String, VaultError> {
    header(vault_id)?;
    let key = match salt {
        Some(s) => VaultKey::derive(password, s),
        None => VaultKey::random(password)?,
    };
    key.encrypt(plaintext, vault_id)
}

/// Decrypts a 1.1 or 1.2 vault text (as from `ansible-vault encrypt` or
/// `encrypt_string`, leading indentation allowed).
pub fn decrypt(password: &VaultPassword, vaulttext: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let (_, body) = parse(vaulttext)?;
    let salt: [u8; SALT_LEN] = body.salt.as_slice().try_into().unwrap_or([0; SALT_LEN]);
    if body.salt.len() == SALT_LEN {
        VaultKey::derive(password, salt).open(&body)
    } else {
        // Ansible accepts any salt length (VAULT_ENCRYPT_SALT); derive directly.
        let derived = derive_raw(password.expose(), &body.salt);
        VaultKey { salt, derived }.open(&body)
    }
}

/// Derived keys kept per (salt), for one password: decrypting or encrypting
/// many values that share salts derives each salt once.
pub struct KeyCache {
    password: VaultPassword,
    keys: HashMap<Vec<u8>, VaultKey>,
}

impl KeyCache {
    pub fn new(password: VaultPassword) -> Self {
        KeyCache { password, keys: HashMap::new() }
    }

    pub fn key(&mut self, salt: [u8; SALT_LEN]) -> &VaultKey {
        let pw = &self.password;
        self.keys.entry(salt.to_vec()).or_insert_with(|| VaultKey::derive(pw, salt))
    }

    pub fn encrypt(&mut self, plaintext: &[u8], vault_id: &str, salt: [u8; SALT_LEN]) -> Result<String, VaultError> {
        self.key(salt).encrypt(plaintext, vault_id)
    }

    pub fn decrypt(&mut self, vaulttext: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (_, body) = parse(vaulttext)?;
        match <[u8; SALT_LEN]>::try_from(body.salt.as_slice()) {
            Ok(salt) => self.key(salt).open(&body),
            Err(_) => decrypt(&self.password, vaulttext),
        }
    }

    pub fn derivations(&self) -> usize {
        self.keys.len()
    }
}

/// What a vault header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `1.1` or `1.2`.
    pub version: String,
    /// `default` for 1.1.
    pub vault_id: String,
}

struct Body {
    salt: Vec<u8>,
    mac: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Drop for Body {
    fn drop(&mut self) {
        self.ciphertext.zeroize();
    }
}

/// True when `text` starts like a vault text (as Ansible's `is_encrypted`).
pub fn is_vault(text: &str) -> bool {
    text.trim_start().starts_with("$ANSIBLE_VAULT;")
}

/// Reads the header of a vault text.
pub fn header_of(vaulttext: &str) -> Result<Header, VaultError> {
    parse(vaulttext).map(|(h, _)| h)
}

fn parse(vaulttext: &str) -> Result<(Header, Body), VaultError> {
    let mut lines = vaulttext.trim().lines().map(str::trim);
    let first = lines.next().unwrap_or("");
    let parts: Vec<&str> = first.split(';').collect();
    if parts.first() != Some(&"$ANSIBLE_VAULT") || parts.len() < 3 {
        return Err(VaultError::Format("the first line is not a $ANSIBLE_VAULT;VERSION;CIPHER header".into()));
    }
    let version = parts[1].to_string();
    let vault_id = match (version.as_str(), parts.len()) {
        ("1.1" | "1.0", 3) => DEFAULT_VAULT_ID.to_string(),
        ("1.2", 4) => parts[3].to_string(),
        _ => return Err(VaultError::Unsupported(format!("header version {version:?} with {} fields", parts.len()))),
    };
    if parts[2] != "AES256" {
        return Err(VaultError::Unsupported(format!("cipher {:?} (only AES256 exists)", parts[2])));
    }
    let outer: String = lines.collect();
    let inner = unhex(outer.as_bytes()).ok_or_else(|| VaultError::Format("the body is not hex".into()))?;
    let mut it = inner.split(|&b| b == b'\n');
    let (Some(s), Some(m), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(VaultError::Format("the body does not hold salt, HMAC and ciphertext lines".into()));
    };
    let bad = |what: &str| VaultError::Format(format!("the {what} is not hex"));
    let body = Body {
        salt: unhex(s).ok_or_else(|| bad("salt"))?,
        mac: unhex(m).ok_or_else(|| bad("HMAC"))?,
        ciphertext: unhex(c).ok_or_else(|| bad("ciphertext"))?,
    };
    if body.mac.len() != 32 {
        return Err(VaultError::Format("the HMAC is not 32 bytes".into()));
    }
    Ok((Header { version, vault_id }, body))
}

fn header(vault_id: &str) -> Result<String, VaultError> {
    if vault_id.is_empty() || vault_id.chars().any(|c| c == ';' || c.is_whitespace() || c.is_control()) {
        return Err(VaultError::VaultId(vault_id.to_string()));
    }
    Ok(if vault_id == DEFAULT_VAULT_ID {
        "$ANSIBLE_VAULT;1.1;AES256".to_string()
    } else {
        format!("$ANSIBLE_VAULT;1.2;AES256;{vault_id}")
    })
}

fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let v = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks(2).map(|p| Some(v(p[0])? << 4 | v(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let pw = VaultPassword::new("pw");
        let t = encrypt(&pw, b"hello", "craton", Some([7; 32])).unwrap();
        assert!(t.starts_with("$ANSIBLE_VAULT;1.2;AES256;craton\n"));
        assert!(t.lines().skip(1).all(|l| l.len() <= 80));
        assert_eq!(&decrypt(&pw, &t).unwrap()[..], b"hello");
        assert_eq!(header_of(&t).unwrap().vault_id, "craton");
        assert_eq!(decrypt(&VaultPassword::new("nope"), &t), Err(VaultError::Mac));
        // Flip one hex digit of every body line in turn: never garbage.
        let lines: Vec<&str> = t.lines().collect();
        for i in 1..lines.len() {
            let mut l: Vec<u8> = lines[i].bytes().collect();
            let j = l.len() / 2;
            l[j] = if l[j] == b'0' { b'1' } else { b'0' };
            let mut m = lines.clone();
            let s = String::from_utf8(l).unwrap();
            m[i] = &s;
            assert!(decrypt(&pw, &m.join("\n")).is_err(), "line {i} tampered still opened");
        }
        let d = encrypt(&pw, b"", "default", None).unwrap();
        assert!(d.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
        assert_eq!(&decrypt(&pw, &d).unwrap()[..], b"");
        assert!(matches!(encrypt(&pw, b"x", "a;b", None), Err(VaultError::VaultId(_))));
        assert_eq!(format!("{pw:?}"), "VaultPassword(***)");
    }

    #[test]
    fn salt_is_deterministic_and_cache_derives_once() {
        let pw = VaultPassword::new("pw");
        let a = encrypt(&pw, b"v", "craton", Some(salt_for(b"r1/h/x/1"))).unwrap();
        let b = encrypt(&pw, b"v", "craton", Some(salt_for(b"r1/h/x/1"))).unwrap();
        assert_eq!(a, b);
        let mut cache = KeyCache::new(pw.clone());
        for i in 0..5 {
            let t = cache.encrypt(format!("v{i}").as_bytes(), "craton", salt_for(b"one")).unwrap();
            assert_eq!(&cache.decrypt(&t).unwrap()[..], format!("v{i}").as_bytes());
        }
        assert_eq!(cache.derivations(), 1);
    }
}
