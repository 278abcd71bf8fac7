//! What a secret value must look like for its kind, checked on write, and
//! its fingerprint: a `pem` value must be PEM blocks of keys or certificates
//! whose DER parses, a `certificate` must hold an X.509 certificate (its
//! SHA-256 fingerprint and expiry are shown and filterable). Messages name
//! the block, never its contents.

use sha2::{Digest, Sha256};
use x509_cert::der::{Any, Decode};
use x509_cert::Certificate;

/// The kinds a secret can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Pem,
    Certificate,
    Password,
    Opaque,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Pem => "pem",
            SecretKind::Certificate => "certificate",
            SecretKind::Password => "password",
            SecretKind::Opaque => "opaque",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pem" => SecretKind::Pem,
            "certificate" => SecretKind::Certificate,
            "password" => SecretKind::Password,
            "opaque" => SecretKind::Opaque,
            _ => return None,
        })
    }
}

/// What the check learned about a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `sha256:<hex>`: of the first certificate's DER when there is one,
    /// else of the plaintext.
    pub fingerprint: String,
    /// The first certificate's notAfter, Unix milliseconds.
    pub not_after: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("value is not PEM: {0}")]
    NotPem(String),
    #[error("PEM block {index} ({tag}) does not parse: {detail}")]
    Block { index: usize, tag: String, detail: String },
    #[error("PEM block {index} has label {tag:?}: expected a private or public key or a certificate")]
    Label { index: usize, tag: String },
    #[error("a certificate value holds no CERTIFICATE block")]
    NoCertificate,
    #[error("value is empty")]
    Empty,
}

const KEY_TAGS: &[&str] = &[
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "EC PARAMETERS",
    "DH PARAMETERS",
    "X509 CRL",
    "CERTIFICATE REQUEST",
];

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Checks `value` for `kind` and returns its fingerprint (and expiry).
pub fn check(kind: SecretKind, value: &[u8]) -> Result<Checked, CheckError> {
    if value.is_empty() {
        return Err(CheckError::Empty);
    }
    if matches!(kind, SecretKind::Password | SecretKind::Opaque) {
        return Ok(Checked { fingerprint: sha256_hex(value), not_after: None });
    }
    let blocks = pem::parse_many(value).map_err(|e| CheckError::NotPem(e.to_string()))?;
    if blocks.is_empty() {
        return Err(CheckError::NotPem("no -----BEGIN ...----- block".into()));
    }
    let mut first_cert: Option<(String, i64)> = None;
    for (i, b) in blocks.iter().enumerate() {
        let index = i + 1;
        let tag = b.tag().to_string();
        let bad = |detail: String| CheckError::Block { index, tag: tag.clone(), detail };
        if tag == "CERTIFICATE" || tag == "TRUSTED CERTIFICATE" {
            let c = Certificate::from_der(b.contents()).map_err(|e| bad(e.to_string()))?;
            if first_cert.is_none() {
                let na = c.tbs_certificate.validity.not_after.to_unix_duration().as_millis() as i64;
                first_cert = Some((sha256_hex(b.contents()), na));
            }
        } else if tag == "OPENSSH PRIVATE KEY" {
            // Not DER: its own binary format, starting with this magic.
            if !b.contents().starts_with(b"openssh-key-v1\0") {
                return Err(bad("not an openssh-key-v1 key".into()));
            }
        } else if KEY_TAGS.contains(&tag.as_str()) {
            Any::from_der(b.contents()).map_err(|e| bad(e.to_string()))?;
        } else {
            return Err(CheckError::Label { index, tag });
        }
    }
    match (kind, first_cert) {
        (_, Some((fingerprint, na))) => Ok(Checked { fingerprint, not_after: Some(na) }),
        (SecretKind::Certificate, None) => Err(CheckError::NoCertificate),
        _ => Ok(Checked { fingerprint: sha256_hex(value), not_after: None }),
    }
}
