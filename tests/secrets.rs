//! The secrets library against the real tools: ansible-vault (ansible-core
//! from .venv) both ways, 1.1 and 1.2, and the transit key provider against a
//! real OpenBao dev server.

mod common;

use std::process::Command;

use craton::secrets::vault::{self, VaultKey, VaultPassword};
use craton::secrets::Zeroizing;
use craton::secrets::{DataKey, KeyError, KeyProvider, TransitAuth, TransitConfig, TransitKeyProvider};

fn vault_cmd(home: &std::path::Path) -> Command {
    let mut c = Command::new(common::ansible("ansible-vault"));
    common::ansible_env(&mut c, home);
    c
}

/// Craton's output opens with `ansible-vault view` and `decrypt`, as 1.1
/// (`default`) and 1.2 (`--vault-id craton@file`).
#[test]
fn craton_vault_opens_in_ansible_vault() {
    let d = tempfile::tempdir().unwrap();
    let pwf = d.path().join("pw");
    std::fs::write(&pwf, "s3cret pass\n").unwrap();
    let pw = VaultPassword::from_file_contents(b"s3cret pass\n");
    let plain = "-----BEGIN PRIVATE KEY-----\nline ü\n-----END PRIVATE KEY-----\n".repeat(3);
    for (id, arg) in [("default", format!("{}", pwf.display())), ("craton", format!("craton@{}", pwf.display()))] {
        let text = vault::encrypt(&pw, plain.as_bytes(), id, None).unwrap();
        let f = d.path().join(format!("{id}.yml"));
        std::fs::write(&f, &text).unwrap();
        let viewed = common::ok(vault_cmd(d.path()).args(["view", "--vault-id", &arg]).arg(&f));
        assert_eq!(viewed, plain, "ansible-vault view of a {id} vault");
        common::ok(vault_cmd(d.path()).args(["decrypt", "--vault-id", &arg]).arg(&f));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), plain);
        // Wrong password: Ansible refuses it too.
        let bad = d.path().join("bad");
        std::fs::write(&bad, "nope").unwrap();
        std::fs::write(&f, &text).unwrap();
        let o = common::run(vault_cmd(d.path()).args(["view", "--vault-password-file"]).arg(&bad).arg(&f));
        assert!(!o.status.success());
    }
    // Many values under one derivation (the shared-salt mode) still open one by one in Ansible.
    let key = VaultKey::derive(&pw, vault::salt_for(b"rev 7"));
    // (ansible-vault view ends its output with a newline, so the values do.)
    for v in ["a\n", "bb\n", "0123456789abcde\n"] {
        let f = d.path().join("shared.yml");
        std::fs::write(&f, key.encrypt(v.as_bytes(), "craton").unwrap()).unwrap();
        let arg = format!("craton@{}", pwf.display());
        assert_eq!(common::ok(vault_cmd(d.path()).args(["view", "--vault-id", &arg]).arg(&f)), v);
    }
}

/// `ansible-vault encrypt` and `encrypt_string` output opens in Craton, 1.1 and 1.2.
#[test]
fn ansible_vault_opens_in_craton() {
    let d = tempfile::tempdir().unwrap();
    let pwf = d.path().join("pw");
    std::fs::write(&pwf, "hunter2\n").unwrap();
    let pw = VaultPassword::new("hunter2");
    let plain = "db_password: \"x;y\"\nkey: |\n  multi\n  line\n";
    for (vault_id, arg) in [("default", pwf.display().to_string()), ("craton", format!("craton@{}", pwf.display()))] {
        let f = d.path().join("v.yml");
        std::fs::write(&f, plain).unwrap();
        let mut c = vault_cmd(d.path());
        c.args(["encrypt", "--vault-id", &arg]);
        if vault_id != "default" {
            c.args(["--encrypt-vault-id", vault_id]);
        }
        common::ok(c.arg(&f));
        let text = std::fs::read_to_string(&f).unwrap();
        let h = vault::header_of(&text).unwrap();
        assert_eq!(
            (h.version.as_str(), h.vault_id.as_str()),
            (if vault_id == "default" { "1.1" } else { "1.2" }, vault_id)
        );
        assert_eq!(&vault::decrypt(&pw, &text).unwrap()[..], plain.as_bytes());
        assert_eq!(vault::decrypt(&VaultPassword::new("hunter3"), &text), Err(vault::VaultError::Mac));

        // encrypt_string: a YAML `!vault |` block, indented.
        let out =
            common::ok(vault_cmd(d.path()).args(["encrypt_string", "--vault-id", &arg, "--name", "pw", "p@ss w0rd"]));
        let block = out.split_once("!vault |").expect("a !vault block").1;
        assert_eq!(&vault::decrypt(&pw, block).unwrap()[..], b"p@ss w0rd");

        // Tampering: every byte of the ciphertext line changed once → error.
        let lines: Vec<&str> = text.lines().collect();
        let last = lines.len() - 1;
        let mut l = lines[last].as_bytes().to_vec();
        l[0] = if l[0] == b'3' { b'6' } else { b'3' };
        let tampered = [&lines[..last].join("\n"), std::str::from_utf8(&l).unwrap()].join("\n");
        assert!(vault::decrypt(&pw, &tampered).is_err(), "tampered text opened");
    }
}

/// 10,000 values: one derivation vs one per value (debug builds are slow;
/// the numbers in the report come from `--release`).
#[test]
fn vault_many_values_one_derivation() {
    let pw = VaultPassword::new("pw");
    let t = std::time::Instant::now();
    let key = VaultKey::derive(&pw, vault::salt_for(b"bench"));
    let derive = t.elapsed();
    let t = std::time::Instant::now();
    let texts: Vec<String> =
        (0..10_000).map(|i| key.encrypt(format!("secret value {i}").as_bytes(), "craton").unwrap()).collect();
    let enc = t.elapsed();
    eprintln!("vault: one derivation {derive:?}, 10,000 encryptions with it {enc:?}");
    let mut cache = vault::KeyCache::new(pw);
    for (i, t) in texts.iter().enumerate().step_by(997) {
        assert_eq!(&cache.decrypt(t).unwrap()[..], format!("secret value {i}").as_bytes());
    }
    assert_eq!(cache.derivations(), 1);
}

fn transit(b: &common::openbao::OpenBao, auth: TransitAuth) -> TransitKeyProvider {
    TransitKeyProvider::new(TransitConfig {
        addr: b.addr.clone(),
        mount: "transit".into(),
        key: "craton".into(),
        auth,
        timeout: std::time::Duration::from_secs(5),
        ca_file: b.ca_file.clone(),
    })
    .unwrap()
}

/// Transit over https (`bao server -dev-tls`): the provider trusts the CA
/// file it is given; without it, the self-signed server is refused with an
/// error that says so.
#[test]
fn transit_over_tls() {
    let Some(b) = common::openbao::OpenBao::start_tls() else { return };
    assert!(b.addr.starts_with("https://"));
    b.ok(&["secrets", "enable", "transit"]);
    b.ok(&["write", "-f", "transit/keys/craton"]);
    let token = || TransitAuth::Token(Zeroizing::new(b.token.clone()));
    let p = transit(&b, token());
    let key = DataKey::generate().unwrap();
    let w = p.wrap(&key).unwrap();
    assert!(w.wrapped.starts_with("vault:v1:"), "{}", w.wrapped);
    assert_eq!(p.unwrap(&w).unwrap().expose(), key.expose());
    let untrusting = TransitKeyProvider::new(TransitConfig {
        addr: b.addr.clone(),
        mount: "transit".into(),
        key: "craton".into(),
        auth: token(),
        timeout: std::time::Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap();
    let e = untrusting.wrap(&key).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
}

/// Wrap, unwrap, rotate, rewrap, AppRole, and a stopped server.
#[test]
fn transit_against_real_openbao() {
    let Some(mut b) = common::openbao::OpenBao::start() else { return };
    b.ok(&["secrets", "enable", "transit"]);
    b.ok(&["write", "-f", "transit/keys/craton"]);
    let p = transit(&b, TransitAuth::Token(Zeroizing::new(b.token.clone())));
    assert_eq!(p.name(), "transit");
    assert_eq!(p.key_version().unwrap(), 1);
    let dk = DataKey::generate().unwrap();
    let w1 = p.wrap(&dk).unwrap();
    assert!(w1.wrapped.starts_with("vault:v1:") && w1.key_version == 1, "{w1:?}");
    assert_eq!(p.unwrap(&w1).unwrap().expose(), dk.expose());

    assert_eq!(p.rotate().unwrap(), 2);
    let w2 = p.rewrap(&w1).unwrap();
    assert!(w2.wrapped.starts_with("vault:v2:") && w2.key_version == 2, "{w2:?}");
    assert_eq!(p.unwrap(&w2).unwrap().expose(), dk.expose());
    // Retire v1: the old wrap no longer opens, the rewrapped one does.
    b.ok(&["write", "transit/keys/craton/config", "min_decryption_version=2"]);
    assert!(p.unwrap(&w1).is_err());
    assert_eq!(p.unwrap(&w2).unwrap().expose(), dk.expose());

    // A tampered wrap does not open.
    let mut bad = w2.clone();
    bad.wrapped = format!("vault:v2:{}", "A".repeat(60));
    assert!(p.unwrap(&bad).is_err());

    // A bad token is "denied", and the error does not carry the token.
    let wrong = transit(&b, TransitAuth::Token(Zeroizing::new("s.not-a-token-xyz".into())));
    let e = wrong.unwrap(&w2).unwrap_err();
    assert!(matches!(e, KeyError::Denied { .. }), "{e}");
    assert!(!e.to_string().contains("not-a-token-xyz"), "{e}");

    // AppRole: a policy that may use the key, a role, login, wrap/unwrap.
    let pol = std::env::temp_dir().join(format!("craton-policy-{}.hcl", std::process::id()));
    std::fs::write(
        &pol,
        "path \"transit/encrypt/craton\" { capabilities = [\"update\"] }\n\
         path \"transit/decrypt/craton\" { capabilities = [\"update\"] }\n\
         path \"transit/rewrap/craton\" { capabilities = [\"update\"] }\n\
         path \"transit/keys/craton\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    b.ok(&["policy", "write", "craton", pol.to_str().unwrap()]);
    std::fs::remove_file(&pol).ok();
    b.ok(&["auth", "enable", "approle"]);
    b.ok(&["write", "auth/approle/role/craton", "token_policies=craton", "token_ttl=1h"]);
    let role_id = b.ok(&["read", "-field=role_id", "auth/approle/role/craton/role-id"]);
    let secret_id = b.ok(&["write", "-f", "-field=secret_id", "auth/approle/role/craton/secret-id"]);
    let ar = transit(
        &b,
        TransitAuth::AppRole {
            mount: "approle".into(),
            role_id: role_id.clone(),
            secret_id: Zeroizing::new(secret_id.clone()),
        },
    );
    assert_eq!(ar.key_version().unwrap(), 2);
    let w3 = ar.wrap(&dk).unwrap();
    assert_eq!(ar.unwrap(&w3).unwrap().expose(), dk.expose());
    assert_eq!(p.unwrap(&w3).unwrap().expose(), dk.expose());
    // The role's policy does not allow rotation.
    assert!(matches!(ar.rotate(), Err(KeyError::Denied { .. })));
    let bad_ar = transit(
        &b,
        TransitAuth::AppRole {
            mount: "approle".into(),
            role_id,
            secret_id: Zeroizing::new("wrong-secret-id-123".into()),
        },
    );
    let e = bad_ar.wrap(&dk).unwrap_err();
    assert!(!matches!(e, KeyError::Unavailable { .. }) && !e.to_string().contains("wrong-secret-id-123"), "{e}");
    assert!(!format!("{ar:?}").contains(&secret_id));

    // The server stops: a distinct "unavailable" error, nothing else.
    b.stop();
    let e = p.unwrap(&w2).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(!e.to_string().contains(&b.token), "{e}");
    assert!(p.wrap(&dk).unwrap_err().is_unavailable());
}
