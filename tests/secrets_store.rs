//! The secrets store on every backend: versions kept, PEM checks and
//! certificate expiry, the access record, ciphertexts bound to their row,
//! a wrong master key, and transit rewrap against a real OpenBao.

mod common;

use std::process::Command;

use common::{backends, TestDb};
use craton::secrets::pem::SecretKind;
use craton::secrets::{
    FileKeyProvider, KeyError, OwnerKind, Secret, TransitAuth, TransitConfig, TransitKeyProvider, Zeroizing,
};
use craton::store::secrets::{self as ss, Owner, Secrets, SecretsError};
use craton::store::{self, schema};
use diesel::prelude::*;

/// A key and a self-signed certificate valid for 10 days, from openssl.
fn key_and_cert(dir: &std::path::Path) -> (String, String, String) {
    let key = dir.join("k.pem");
    let crt = dir.join("c.pem");
    common::ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "10",
                "-subj",
                "/CN=craton-test",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&crt),
    );
    let fp = common::ok(Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&crt));
    let fp = fp.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    (std::fs::read_to_string(key).unwrap(), std::fs::read_to_string(crt).unwrap(), format!("sha256:{fp}"))
}

#[test]
fn secrets_round_trip_versions_checks_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let (key_pem, cert_pem, cert_fp) = key_and_cert(tmp.path());
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let p = store::ensure_project(&mut c, "p1").unwrap();
        let fp = FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap();
        let s = Secrets::new(&fp).keep_versions(2);
        let host = Owner { project_id: p.id, kind: OwnerKind::Host, id: 42 };
        let group = Owner { project_id: p.id, kind: OwnerKind::Group, id: 42 };

        let m = s.create(&mut c, host, "db_password", SecretKind::Password, &Secret::new("pw-1"), "alice").unwrap();
        assert_eq!((m.current_version, m.kind.as_str(), m.created_by.as_str()), (1, "password", "alice"));
        assert!(m.fingerprint.starts_with("sha256:") && m.fingerprint.len() == 71);
        let e = s.create(&mut c, host, "db_password", SecretKind::Password, &Secret::new("x"), "alice").unwrap_err();
        assert!(matches!(e, SecretsError::Store(store::StoreError::Conflict(_))), "{b:?}: {e}");
        let e = s.update(&mut c, host, "nope", SecretKind::Password, &Secret::new("x"), "alice").unwrap_err();
        assert!(matches!(e, SecretsError::Store(store::StoreError::NotFound(_))), "{b:?}: {e}");
        assert!(matches!(
            s.create(&mut c, host, "not-a-var", SecretKind::Password, &Secret::new("x"), "a"),
            Err(SecretsError::Invalid(_))
        ));
        for v in 2..=4 {
            let m = s
                .update(&mut c, host, "db_password", SecretKind::Password, &Secret::new(format!("pw-{v}")), "bob")
                .unwrap();
            assert_eq!((m.current_version, m.updated_by.as_str()), (v, "bob"));
        }
        assert_eq!(ss::versions(&mut c, m.id).unwrap(), vec![4, 3], "{b:?}: keep 2 versions");
        assert_eq!(s.reveal(&mut c, host, "db_password", None, "carol").unwrap().1.expose(), b"pw-4");
        assert_eq!(s.reveal(&mut c, host, "db_password", Some(3), "carol").unwrap().1.expose(), b"pw-3");
        assert!(s.reveal(&mut c, host, "db_password", Some(1), "carol").is_err());

        // PEM: a key and a certificate; expiry shown and filterable.
        s.create(&mut c, host, "tls_key", SecretKind::Pem, &Secret::new(key_pem.clone()), "alice").unwrap();
        let cm = s
            .create(&mut c, host, "tls_cert", SecretKind::Certificate, &Secret::new(cert_pem.clone()), "alice")
            .unwrap();
        assert_eq!(cm.fingerprint, cert_fp, "{b:?}: certificate fingerprint as openssl prints it");
        let na = cm.not_after.expect("not_after");
        let in_days = (na - store::now_ms()) as f64 / 86_400_000.0;
        assert!((9.9..10.1).contains(&in_days), "{b:?}: expiry in {in_days} days");
        let names = |l: Vec<ss::SecretMeta>| l.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(ss::list(&mut c, host, Some(store::now_ms() + 30 * 86_400_000)).unwrap()), ["tls_cert"]);
        assert!(ss::list(&mut c, host, Some(store::now_ms() + 5 * 86_400_000)).unwrap().is_empty());
        assert_eq!(names(ss::list(&mut c, host, None).unwrap()), ["db_password", "tls_cert", "tls_key"]);
        let broken = key_pem.replacen("A", "*", 3);
        let e = s.create(&mut c, host, "bad", SecretKind::Pem, &Secret::new(broken.clone()), "a").unwrap_err();
        assert!(matches!(e, SecretsError::Value { .. }), "{b:?}: {e}");
        let e = s.create(&mut c, host, "bad", SecretKind::Certificate, &Secret::new(key_pem.clone()), "a").unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{b:?}: {e}");
        assert!(!e.to_string().contains("BEGIN"), "{b:?}: the error shows the value: {e}");

        // A ciphertext copied to another row does not open there.
        s.create(&mut c, group, "db_password", SecretKind::Password, &Secret::new("group-pw"), "alice").unwrap();
        let gid = ss::get(&mut c, group, "db_password").unwrap().id;
        let hid = ss::get(&mut c, host, "db_password").unwrap().id;
        let host_ct: Vec<u8> = schema::secret_versions::table
            .filter(schema::secret_versions::secret_id.eq(hid))
            .filter(schema::secret_versions::version.eq(4i64))
            .select(schema::secret_versions::ciphertext)
            .first(&mut c)
            .unwrap();
        diesel::update(schema::secret_versions::table.filter(schema::secret_versions::secret_id.eq(gid)))
            .set((schema::secret_versions::ciphertext.eq(&host_ct), schema::secret_versions::version.eq(4i64)))
            .execute(&mut c)
            .unwrap();
        diesel::update(schema::secrets::table.find(gid))
            .set(schema::secrets::current_version.eq(4i64))
            .execute(&mut c)
            .unwrap();
        let e = s.reveal(&mut c, group, "db_password", None, "mallory").unwrap_err();
        assert!(matches!(e, SecretsError::Envelope { .. }), "{b:?}: {e}");
        // Tampered: one bit flipped.
        let mut t = host_ct.clone();
        let n = t.len() - 3;
        t[n] ^= 0x20;
        diesel::update(schema::secret_versions::table.filter(schema::secret_versions::secret_id.eq(gid)))
            .set(schema::secret_versions::ciphertext.eq(&t))
            .execute(&mut c)
            .unwrap();
        assert!(matches!(s.reveal(&mut c, group, "db_password", None, "m"), Err(SecretsError::Envelope { .. })));

        // Wrong master key: a clear error, nothing rewritten.
        let before: Vec<String> =
            schema::secret_data_keys::table.select(schema::secret_data_keys::wrapped).load(&mut c).unwrap();
        let other = FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}-other.key"))).unwrap();
        let e = Secrets::new(&other).reveal(&mut c, host, "db_password", None, "x").unwrap_err();
        assert!(matches!(e, SecretsError::Key(KeyError::WrongKey { .. })), "{b:?}: {e}");
        let e = Secrets::new(&other)
            .update(&mut c, host, "db_password", SecretKind::Password, &Secret::new("zz"), "x")
            .unwrap_err();
        assert!(matches!(e, SecretsError::Key(KeyError::WrongKey { .. })), "{b:?}: {e}");
        let after: Vec<String> =
            schema::secret_data_keys::table.select(schema::secret_data_keys::wrapped).load(&mut c).unwrap();
        assert_eq!(before, after);
        assert_eq!(s.reveal(&mut c, host, "db_password", None, "carol").unwrap().1.expose(), b"pw-4");

        // open_all: every current plaintext but the broken group row fails loudly.
        assert!(s.open_all(&mut c, p.id, "render").is_err());
        ss::delete(&mut c, group, "db_password", "alice").unwrap();
        let all = s.open_all(&mut c, p.id, "render").unwrap();
        let got: Vec<(&str, &[u8])> = all.iter().map(|(m, v)| (m.name.as_str(), v.expose())).collect();
        assert_eq!(
            got,
            [("db_password", &b"pw-4"[..]), ("tls_cert", cert_pem.as_bytes()), ("tls_key", key_pem.as_bytes())]
        );
        assert_eq!(format!("{:?}", all[0].1), "***");

        // Another project sees none of it.
        let p2 = store::ensure_project(&mut c, "p2").unwrap();
        assert!(s.open_all(&mut c, p2.id, "render").unwrap().is_empty());

        let log = ss::access_log(&mut c, p.id, 100).unwrap();
        let acts: Vec<(&str, &str, &str)> =
            log.iter().rev().map(|a| (a.action.as_str(), a.name.as_str(), a.actor.as_str())).collect();
        assert_eq!(
            acts[..5],
            [
                ("create", "db_password", "alice"),
                ("update", "db_password", "bob"),
                ("update", "db_password", "bob"),
                ("update", "db_password", "bob"),
                ("read", "db_password", "carol")
            ],
            "{b:?}"
        );
        assert!(acts.contains(&("delete", "db_password", "alice")) && acts.contains(&("open_all", "*", "render")));
        assert!(!acts.iter().any(|a| a.2 == "mallory"), "{b:?}: a failed read is not a read");
        assert_eq!(ss::delete_owner(&mut c, host).unwrap(), 3);
    }
}

#[test]
fn transit_rewrap_all_and_provider_down() {
    let Some(mut bao) = common::openbao::OpenBao::start() else { return };
    bao.ok(&["secrets", "enable", "transit"]);
    bao.ok(&["write", "-f", "transit/keys/craton"]);
    let tp = TransitKeyProvider::new(TransitConfig {
        addr: bao.addr.clone(),
        mount: "transit".into(),
        key: "craton".into(),
        auth: TransitAuth::Token(Zeroizing::new(bao.token.clone())),
        timeout: std::time::Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap();
    let dbs: Vec<TestDb> = backends().into_iter().map(TestDb::new).collect();
    let mut conns: Vec<_> = dbs.iter().map(|d| d.conn()).collect();
    let s = Secrets::new(&tp);
    let mut owners = vec![];
    for c in conns.iter_mut() {
        let p = store::ensure_project(c, "p").unwrap();
        let o = Owner { project_id: p.id, kind: OwnerKind::Project, id: p.id };
        s.create(c, o, "api_key", SecretKind::Opaque, &Secret::new("k-1"), "alice").unwrap();
        owners.push(o);
    }
    assert_eq!(tp_rotate(&tp), 2);
    for (c, o) in conns.iter_mut().zip(&owners) {
        assert_eq!(s.rewrap_all(c, None).unwrap(), 1);
        assert_eq!(s.rewrap_all(c, None).unwrap(), 0, "resumable: nothing left");
        let w: String = schema::secret_data_keys::table.select(schema::secret_data_keys::wrapped).first(c).unwrap();
        assert!(w.starts_with("vault:v2:"), "{w}");
        assert_eq!(s.reveal(c, *o, "api_key", None, "carol").unwrap().1.expose(), b"k-1");
    }
    bao.stop();
    for (c, o) in conns.iter_mut().zip(&owners) {
        let e = s.reveal(c, *o, "api_key", None, "carol").unwrap_err();
        assert!(matches!(e, SecretsError::Key(ref k) if k.is_unavailable()), "{e}");
        // Metadata is still served.
        assert_eq!(ss::list(c, *o, None).unwrap().len(), 1);
    }
}

fn tp_rotate(tp: &TransitKeyProvider) -> i64 {
    use craton::secrets::KeyProvider;
    tp.rotate().unwrap()
}
