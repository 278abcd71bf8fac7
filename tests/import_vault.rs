//! `cratond import ansible --vault-password-file/--vault-id` against files
//! the real ansible-vault encrypted, on every backend: vaulted vars files and
//! inline `!vault` values become secrets of the owner Ansible gives the
//! value to (checked against `ansible-inventory --list --export`), with the
//! exact plaintext; refusals name the file (and line); nothing is written
//! on failure; a re-import writes no new version; `--replace` removes what
//! the files no longer hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{backends, cratond, ok, run, stderr, stdout, TestDb};
use craton::import::vaulted::{VaultIdSpec, VaultIds};
use craton::import::ImportOptions;
use craton::secrets::pem::SecretKind;
use craton::secrets::{FileKeyProvider, OwnerKind, Secret};
use craton::store::secrets::{self as ss, Owner, Secrets};
use craton::store::{self, schema, DbConn};
use diesel::prelude::*;
use serde_json::Value;

fn write(dir: &Path, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    p
}

fn vault_cmd(home: &Path) -> Command {
    let mut c = Command::new(common::ansible("ansible-vault"));
    common::ansible_env(&mut c, home);
    c
}

/// `ansible-vault encrypt --vault-id ID FILE`.
fn encrypt_file(home: &Path, id: &str, file: &Path) {
    ok(vault_cmd(home).args(["encrypt", "--vault-id", id]).arg(file));
    assert!(std::fs::read_to_string(file).unwrap().starts_with("$ANSIBLE_VAULT;"));
}

/// `ansible-vault encrypt_string` of `plain`, as a YAML value whose
/// continuation lines are indented by `indent` spaces.
fn encrypt_string(home: &Path, id: &str, plain: &str, indent: usize) -> String {
    let out = ok(vault_cmd(home).args(["encrypt_string", "--vault-id", id, plain]));
    let mut lines = out.lines();
    assert_eq!(lines.next().map(str::trim), Some("!vault |"), "{out}");
    let pad = " ".repeat(indent);
    let body: Vec<String> = lines.map(|l| format!("{pad}{}", l.trim())).collect();
    format!("!vault |\n{}", body.join("\n"))
}

/// The plaintext of an inline value as printed by ansible-inventory.
fn ciphertext_of(yaml_value: &str) -> String {
    let mut s: String = yaml_value.lines().skip(1).map(|l| format!("{}\n", l.trim())).collect();
    if s.is_empty() {
        s.push('\n');
    }
    s
}

/// An EC private key from openssl (a `pem` secret).
fn private_key(dir: &Path) -> String {
    let k = dir.join("k.pem");
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&k));
    std::fs::read_to_string(k).unwrap()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    inv: PathBuf,
    /// The same inventory with `group_vars/web.yml` in clear and no other
    /// vaulted file (inline values stay).
    plain_inv: PathBuf,
    pw_default: PathBuf,
    pw_lab: PathBuf,
    wrong: PathBuf,
    key_pem: String,
    /// ciphertext (as --list prints it) -> plaintext of each inline value.
    inline: BTreeMap<String, String>,
}

fn web_vars(key_pem: &str) -> String {
    let indented: String = key_pem.lines().map(|l| format!("  {l}\n")).collect();
    format!("db_pass: s3cr3t\nliteral: !unsafe \"{{{{ not templated }}}}\"\ntls_key: |\n{indented}")
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pw_default = write(tmp.path(), "pw-default", "first password\n");
    let pw_lab = write(tmp.path(), "pw-lab", "  lab password \n");
    let wrong = write(tmp.path(), "pw-wrong", "not it\n");
    let d = format!("default@{}", pw_default.display());
    let l = format!("lab@{}", pw_lab.display());
    let key_pem = private_key(tmp.path());

    let mut inline = BTreeMap::new();
    let mut enc = |plain: &str, indent: usize| {
        let v = encrypt_string(&home, &d, plain, indent);
        inline.insert(ciphertext_of(&v), plain.to_string());
        v
    };
    let group_inline = enc("group inline pw", 10);
    let host_inline = enc("host inline pw", 14);
    let nested = enc("nested pw", 16);
    let hosts = format!(
        "all:\n  vars:\n    plain_all: p\n  children:\n    web:\n      vars:\n        group_inline: {group_inline}\n      \
         hosts:\n        w1:\n          inline_secret: {host_inline}\n          plain_var: x\n          shadowed: \
         inline\n          nested:\n            a: {nested}\n        w2:\n"
    );
    let inv = tmp.path().join("inv");
    write(&inv, "hosts.yml", &hosts);
    let web = write(&inv, "group_vars/web.yml", web_vars(&key_pem));
    encrypt_file(&home, &l, &web);
    let all = write(&inv, "group_vars/all.yml", "all_pw: topsecret\n");
    encrypt_file(&home, &d, &all);
    let w1 = write(&inv, "host_vars/w1.yml", "shadowed: fromfile\nmulti: \"line1\\nline2\\n\"\n");
    encrypt_file(&home, &d, &w1);
    write(&inv, "host_vars/w2.yml", "w2_plain: 1\n");

    let plain_inv = tmp.path().join("plain");
    write(&plain_inv, "hosts.yml", &hosts);
    write(&plain_inv, "group_vars/web.yml", web_vars(&key_pem));
    Fixture { _tmp: tmp, home, inv, plain_inv, pw_default, pw_lab, wrong, key_pem, inline }
}

impl Fixture {
    fn ids(&self) -> Vec<String> {
        vec![
            "--vault-password-file".into(),
            self.pw_default.display().to_string(),
            "--vault-id".into(),
            format!("lab@{}", self.pw_lab.display()),
        ]
    }
}

/// `cratond` with the master key of `db`'s test.
fn cratond_keyed(db: &TestDb, key: &Path) -> Command {
    let mut c = cratond(db);
    c.env("CRATON_MASTER_KEY_FILE", key).env_remove("CRATON_KEY_PROVIDER");
    c
}

fn owner_label(kind: &str, name: &str) -> String {
    if kind == "project" {
        "all".into()
    } else {
        format!("{kind}:{name}")
    }
}

/// (owner, name) -> (kind, created_by) of every secret, owners by name.
fn secrets_of(c: &mut DbConn) -> BTreeMap<(String, String), (String, String)> {
    let groups: BTreeMap<i64, String> = schema::inventory_groups::table
        .select((schema::inventory_groups::id, schema::inventory_groups::name))
        .load::<(i64, String)>(c)
        .unwrap()
        .into_iter()
        .collect();
    let hosts: BTreeMap<i64, String> = schema::hosts::table
        .select((schema::hosts::id, schema::hosts::name))
        .load::<(i64, String)>(c)
        .unwrap()
        .into_iter()
        .collect();
    let rows: Vec<(String, i64, String, String, String)> = schema::secrets::table
        .select((
            schema::secrets::owner_kind,
            schema::secrets::owner_id,
            schema::secrets::name,
            schema::secrets::kind,
            schema::secrets::created_by,
        ))
        .load(c)
        .unwrap();
    rows.into_iter()
        .map(|(k, id, name, kind, by)| {
            let owner = match k.as_str() {
                "group" => owner_label("group", &groups[&id]),
                "host" => owner_label("host", &hosts[&id]),
                _ => owner_label("project", ""),
            };
            ((owner, name), (kind, by))
        })
        .collect()
}

/// (owner, key) -> value of every plain variable.
fn plain_vars(c: &mut DbConn) -> BTreeMap<(String, String), Value> {
    let groups: BTreeMap<i64, String> = schema::inventory_groups::table
        .select((schema::inventory_groups::id, schema::inventory_groups::name))
        .load::<(i64, String)>(c)
        .unwrap()
        .into_iter()
        .collect();
    let hosts: BTreeMap<i64, String> = schema::hosts::table
        .select((schema::hosts::id, schema::hosts::name))
        .load::<(i64, String)>(c)
        .unwrap()
        .into_iter()
        .collect();
    let rows: Vec<(i32, i64, String, String)> = schema::variables::table
        .select((
            schema::variables::owner_kind,
            schema::variables::owner_id,
            schema::variables::var_key,
            schema::variables::var_value,
        ))
        .load(c)
        .unwrap();
    rows.into_iter()
        .map(|(k, id, key, v)| {
            let owner = match k {
                1 => owner_label("group", &groups[&id]),
                2 => owner_label("host", &hosts[&id]),
                _ => owner_label("project", ""),
            };
            ((owner, key), serde_json::from_str(&v).unwrap())
        })
        .collect()
}

fn owner(c: &mut DbConn, label: &str) -> Owner {
    let p = store::find_project(c, "default").unwrap().unwrap();
    let (kind, id) = match label.split_once(':') {
        None => (OwnerKind::Project, p.id),
        Some(("group", n)) => (
            OwnerKind::Group,
            schema::inventory_groups::table
                .filter(schema::inventory_groups::name.eq(n))
                .select(schema::inventory_groups::id)
                .first(c)
                .unwrap(),
        ),
        Some((_, n)) => (
            OwnerKind::Host,
            schema::hosts::table.filter(schema::hosts::name.eq(n)).select(schema::hosts::id).first(c).unwrap(),
        ),
    };
    Owner { project_id: p.id, kind, id }
}

fn reveal(c: &mut DbConn, keys: &FileKeyProvider, label: &str, name: &str) -> (i64, Vec<u8>) {
    let o = owner(c, label);
    let (m, v) = Secrets::new(keys).reveal(c, o, name, None, "test").unwrap();
    (m.current_version, v.expose().to_vec())
}

/// What Ansible gives each owner, from `ansible-inventory --list --export`
/// with the fixture's passwords: (owner, key) -> value.
fn ansible_export(f: &Fixture, inv: &Path) -> BTreeMap<(String, String), Value> {
    let mut c = Command::new(common::ansible("ansible-inventory"));
    common::ansible_env(&mut c, &f.home).arg("-i").arg(inv).args(["--list", "--export"]).args(f.ids());
    let list: Value = serde_json::from_str(&ok(&mut c)).unwrap();
    let mut out = BTreeMap::new();
    for (g, body) in list.as_object().unwrap() {
        if g == "_meta" {
            for (h, vars) in body["hostvars"].as_object().unwrap() {
                for (k, v) in vars.as_object().unwrap() {
                    out.insert((owner_label("host", h), k.clone()), v.clone());
                }
            }
            continue;
        }
        for (k, v) in body.get("vars").and_then(Value::as_object).into_iter().flatten() {
            let o = if g == "all" { owner_label("project", "") } else { owner_label("group", g) };
            out.insert((o, k.clone()), v.clone());
        }
    }
    out
}

fn secret_names(s: &BTreeMap<(String, String), (String, String)>) -> BTreeSet<(String, String)> {
    s.keys().cloned().collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items.iter().map(|(o, k)| (o.to_string(), k.to_string())).collect()
}

const EXPECTED: [(&str, &str, &str); 8] = [
    ("all", "all_pw", "password"),
    ("group:web", "db_pass", "password"),
    ("group:web", "group_inline", "password"),
    ("group:web", "literal", "password"),
    ("group:web", "tls_key", "pem"),
    ("host:w1", "inline_secret", "password"),
    ("host:w1", "multi", "opaque"),
    ("host:w1", "shadowed", "password"),
];

#[test]
fn vaulted_values_become_secrets_where_ansible_sees_them() {
    let f = fixture();
    let want_ansible = ansible_export(&f, &f.inv);
    // The library's view: no vaulted key is left among the plain variables.
    let ids = VaultIds::load(
        &[
            VaultIdSpec::parse(&format!("lab@{}", f.pw_lab.display())).unwrap(),
            VaultIdSpec::password_file(&f.pw_default),
        ],
        &Default::default(),
    )
    .unwrap();
    let opts = ImportOptions { vault: ids, ..ImportOptions::default() };
    let imported = craton::import::import_with(f.inv.to_str().unwrap(), &opts).unwrap();
    let w1: BTreeSet<&str> = imported.desired.hosts["w1"].vars.keys().map(String::as_str).collect();
    assert_eq!(w1, BTreeSet::from(["plain_var", "nested"]));
    assert!(imported.desired.groups["web"].vars.is_empty() && imported.desired.all_vars.len() == 1);
    assert_eq!(imported.secrets.len(), EXPECTED.len());
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let key = tempfile::tempdir().unwrap();
        let key_file = key.path().join("master.key");
        let import = |args: &[String], inv: &Path| {
            let mut cmd = cratond_keyed(&db, &key_file);
            cmd.args(["import", "ansible"]).args(args).arg(inv);
            run(&mut cmd)
        };

        // Without a password: refused, naming the first vaulted file.
        let o = import(&[], &f.inv);
        let err = stderr(&o);
        assert!(!o.status.success(), "{b:?}");
        assert!(
            err.contains(&format!("{}: this file is vault-encrypted", f.inv.join("group_vars/all.yml").display())),
            "{err}"
        );
        // A wrong password for an inline value: its file and line.
        let o = import(&["--vault-password-file".into(), f.wrong.display().to_string()], &f.inv);
        let err = stderr(&o);
        let hosts_yml = f.inv.join("hosts.yml");
        let line =
            std::fs::read_to_string(&hosts_yml).unwrap().lines().position(|l| l.contains("group_inline:")).unwrap() + 1;
        let needle = format!("{}:{line}: !vault value: Decryption failed", hosts_yml.display());
        assert!(!o.status.success() && err.contains(&needle), "{b:?}: {err}");
        // The right default password, a wrong one for the `lab` file.
        let o = import(
            &[
                "--vault-password-file".into(),
                f.pw_default.display().to_string(),
                "--vault-id".into(),
                format!("lab@{}", f.wrong.display()),
            ],
            &f.inv,
        );
        let err = stderr(&o);
        assert!(!o.status.success(), "{b:?}");
        assert!(
            err.contains(&format!(
                "{}: vault-encrypted file: Decryption failed",
                f.inv.join("group_vars/web.yml").display()
            )),
            "{err}"
        );
        assert!(err.contains("\"lab\"") && !err.contains("lab password"), "{err}");
        assert!(nothing_written(&mut c), "{b:?}: nothing was written");

        // A plain import first: inline values stay vaulted variables, and
        // db_pass is a plain variable.
        let o = ok(cratond_keyed(&db, &key_file).args(["import", "ansible"]).arg(&f.plain_inv));
        assert!(!o.contains("secrets"), "{o}");
        let plain = plain_vars(&mut c);
        assert!(plain[&("group:web".into(), "db_pass".into())] == "s3cr3t", "{plain:?}");
        assert!(plain[&("host:w1".into(), "inline_secret".into())]["__ansible_vault"].is_string(), "{plain:?}");
        assert!(secrets_of(&mut c).is_empty());
        assert!(!key_file.exists(), "{b:?}: no key provider is needed without secrets");

        // With both passwords (two labels).
        let o = ok(cratond_keyed(&db, &key_file).args(["import", "ansible"]).args(f.ids()).arg(&f.inv));
        assert!(o.contains("secrets 8 created, 0 updated, 0 unchanged, 0 removed"), "{b:?}: {o}");
        let secrets = secrets_of(&mut c);
        let want: BTreeMap<(String, String), (String, String)> = EXPECTED
            .iter()
            .map(|(o, n, k)| ((o.to_string(), n.to_string()), (k.to_string(), "cli:import".to_string())))
            .collect();
        assert_eq!(secrets, want, "{b:?}");
        // The plain variables no longer carry them (db_pass and the inline
        // values were plain before: the secret replaced them).
        let plain = plain_vars(&mut c);
        let plain_keys: BTreeSet<(String, String)> = plain.keys().cloned().collect();
        assert_eq!(
            plain_keys,
            set(&[("all", "plain_all"), ("host:w1", "plain_var"), ("host:w1", "nested"), ("host:w2", "w2_plain")]),
            "{b:?}"
        );
        assert!(
            plain[&("host:w1".into(), "nested".into())]["a"]["__ansible_vault"].is_string(),
            "nested stays vaulted"
        );

        // Each value where Ansible puts it, with Ansible's plaintext.
        let keys = FileKeyProvider::open_or_create(&key_file).unwrap();
        let ansible_keys: BTreeSet<(String, String)> = want_ansible.keys().cloned().collect();
        let ours: BTreeSet<(String, String)> = secret_names(&secrets).union(&plain_keys).cloned().collect();
        assert_eq!(ours, ansible_keys, "{b:?}: same owners and keys as ansible-inventory --export");
        for (o, name) in secrets.keys() {
            let (version, value) = reveal(&mut c, &keys, o, name);
            assert_eq!(version, 1);
            let seen = &want_ansible[&(o.clone(), name.clone())];
            let expected = match seen {
                Value::String(s) => s.clone(),
                Value::Object(m) if m.contains_key("__ansible_unsafe") => {
                    m["__ansible_unsafe"].as_str().unwrap().into()
                }
                Value::Object(m) => f.inline[m["__ansible_vault"].as_str().unwrap()].clone(),
                other => panic!("{other}"),
            };
            assert_eq!(String::from_utf8(value).unwrap(), expected, "{b:?}: {o} {name}");
        }
        assert_eq!(reveal(&mut c, &keys, "group:web", "tls_key").1, f.key_pem.as_bytes());
        assert_eq!(reveal(&mut c, &keys, "group:web", "literal").1, b"{{ not templated }}");
        assert_eq!(reveal(&mut c, &keys, "host:w1", "shadowed").1, b"fromfile", "the file beats the inline value");

        // Again: nothing new, not even a version.
        let o = ok(cratond_keyed(&db, &key_file).args(["import", "ansible"]).args(f.ids()).arg(&f.inv));
        assert!(
            o.contains("secrets 0 created, 0 updated, 8 unchanged, 0 removed") && o.contains("(no changes)"),
            "{b:?}: {o}"
        );
        for (o, name) in secrets.keys() {
            let who = owner(&mut c, o);
            let m = ss::get(&mut c, who, name).unwrap();
            assert_eq!(ss::versions(&mut c, m.id).unwrap(), vec![1], "{b:?}: {o} {name}");
        }

        // A secret of the API, and one for a host the next input drops.
        let s = Secrets::new(&keys);
        let w1 = owner(&mut c, "host:w1");
        s.create(&mut c, w1, "api_made", SecretKind::Password, &Secret::new("a"), "token:1:admin").unwrap();
        let w2 = owner(&mut c, "host:w2");
        s.create(&mut c, w2, "w2_plain", SecretKind::Password, &Secret::new("b"), "token:1:admin").unwrap();

        // Change one value, drop one key and host w2; a failing key
        // provider first: nothing of it is written.
        let next = tempfile::tempdir().unwrap();
        copy_dir(&f.inv, next.path());
        let hv = write(next.path(), "host_vars/w1.yml", "shadowed: changed\n");
        encrypt_file(&f.home, &format!("default@{}", f.pw_default.display()), &hv);
        let hosts =
            std::fs::read_to_string(next.path().join("hosts.yml")).unwrap().replace("        w2:\n", "        w3:\n");
        write(next.path(), "hosts.yml", hosts);
        std::fs::remove_file(next.path().join("host_vars/w2.yml")).unwrap();
        let other_key = key.path().join("other.key");
        let o = run(cratond_keyed(&db, &other_key).args(["import", "ansible"]).args(f.ids()).arg(next.path()));
        assert!(!o.status.success(), "{b:?}: a wrong master key must fail");
        assert!(stderr(&o).contains("nothing was written"), "{}", stderr(&o));
        let hosts_now: Vec<String> = schema::hosts::table.select(schema::hosts::name).load(&mut c).unwrap();
        assert!(!hosts_now.contains(&"w3".to_string()), "{b:?}: {hosts_now:?}");

        // Merge: the changed value is a new version, the dropped key stays.
        let o = ok(cratond_keyed(&db, &key_file).args(["import", "ansible"]).args(f.ids()).arg(next.path()));
        assert!(o.contains("secrets 0 created, 1 updated, 6 unchanged, 0 removed"), "{b:?}: {o}");
        assert_eq!(reveal(&mut c, &keys, "host:w1", "shadowed"), (2, b"changed".to_vec()));
        assert!(secrets_of(&mut c).contains_key(&("host:w1".into(), "multi".into())));

        // Replace: the dropped key and w2 (with its secret) go; the API's
        // secret on w1 stays.
        let o =
            ok(cratond_keyed(&db, &key_file).args(["import", "ansible", "--replace"]).args(f.ids()).arg(next.path()));
        assert!(o.contains("secrets 0 created, 0 updated, 7 unchanged, 2 removed"), "{b:?}: {o}");
        let after = secret_names(&secrets_of(&mut c));
        assert!(!after.contains(&("host:w1".into(), "multi".into())), "{after:?}");
        assert!(after.contains(&("host:w1".into(), "api_made".into())), "{after:?}");
        assert!(!after.iter().any(|(o, _)| o == "host:w2"), "{after:?}");
        let left: i64 = schema::secrets::table.count().get_result(&mut c).unwrap();
        assert_eq!(left, 8, "{b:?}: no orphan rows");
        let versions: i64 = schema::secret_versions::table.count().get_result(&mut c).unwrap();
        assert_eq!(versions, 9, "{b:?}: {after:?}");
    }
}

fn nothing_written(c: &mut DbConn) -> bool {
    let hosts: i64 = schema::hosts::table.count().get_result(c).unwrap();
    let groups: i64 = schema::inventory_groups::table.count().get_result(c).unwrap();
    let secrets: i64 = schema::secrets::table.count().get_result(c).unwrap();
    let keys: i64 = schema::secret_data_keys::table.count().get_result(c).unwrap();
    hosts + groups + secrets + keys == 0
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A plain input value under an existing secret's name is not stored, with
/// a warning; a password script named `*-client` gets `--vault-id LABEL`.
#[test]
fn a_secret_wins_and_password_client_scripts_get_their_label() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pw = write(tmp.path(), "pw", "pw-of-lab\n");
    let inv = tmp.path().join("inv");
    write(&inv, "hosts.yml", "web:\n  hosts:\n    w1:\n      token: plain-token\n");
    let gv = write(&inv, "group_vars/web.yml", "db_pass: from-file\n");
    encrypt_file(&home, &format!("lab@{}", pw.display()), &gv);
    let client = write(
        tmp.path(),
        "craton-client",
        format!("#!/bin/sh\n[ \"$1 $2\" = \"--vault-id lab\" ] || exit 2\ncat '{}'\n", pw.display()),
    );
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o700)).unwrap();
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let key_file = tmp.path().join(format!("{b:?}.key"));
        // Unknown label: the client exits 2.
        let o = run(cratond_keyed(&db, &key_file)
            .args(["import", "ansible", "--vault-id", &format!("other@{}", client.display())])
            .arg(&inv));
        assert!(
            !o.status.success() && stderr(&o).contains("did not find a secret for vault-id=other"),
            "{}",
            stderr(&o)
        );
        let arg = format!("lab@{}", client.display());
        ok(cratond_keyed(&db, &key_file).args(["import", "ansible", "--vault-id", &arg]).arg(&inv));
        let keys = FileKeyProvider::open_or_create(&key_file).unwrap();
        assert_eq!(reveal(&mut c, &keys, "group:web", "db_pass").1, b"from-file");
        let w1 = owner(&mut c, "host:w1");
        Secrets::new(&keys)
            .create(&mut c, w1, "token", SecretKind::Password, &Secret::new("t"), "token:1:admin")
            .unwrap();
        let o = run(cratond_keyed(&db, &key_file).args(["import", "ansible", "--vault-id", &arg]).arg(&inv));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("variable \"token\" of host \"w1\": a secret of that name exists"),
            "{}",
            stderr(&o)
        );
        assert!(!plain_vars(&mut c).contains_key(&("host:w1".into(), "token".into())), "{b:?}");
        assert!(stdout(&o).contains("1 unchanged"), "{}", stdout(&o));
    }
}

/// What a vaulted string cannot say is refused, naming file, line and key;
/// nothing is written.
#[test]
fn refusals_name_the_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pw = write(tmp.path(), "pw", "pw\n");
    let id = format!("default@{}", pw.display());
    let db = TestDb::new(common::Backend::Sqlite);
    let mut c = db.conn();
    let key_file = tmp.path().join("master.key");
    for (name, body, needle) in [
        ("int", "a: ok\nport: 8080\n", "group_vars/web.yml:2: variable \"port\" of this vault-encrypted file"),
        ("dict", "creds:\n  user: u\n", "variable \"creds\" of this vault-encrypted file (line of its decrypted text) cannot become a Craton secret: it is a dict"),
        ("jinja", "url: \"https://{{ host }}/\"\n", "group_vars/web.yml:1: variable \"url\""),
        ("name", "\"not-a-var\": x\n", "variable \"not-a-var\" holds a vaulted value"),
        ("empty", "e: \"\"\n", "variable \"e\": its vaulted value is empty"),
    ] {
        let inv = tmp.path().join(name);
        write(&inv, "hosts.yml", "web:\n  hosts:\n    w1:\n");
        let gv = write(&inv, "group_vars/web.yml", body);
        encrypt_file(&home, &id, &gv);
        let o = run(cratond_keyed(&db, &key_file).args(["import", "ansible", "--vault-id", &id]).arg(&inv));
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(needle), "{name}: {err}");
        if name == "jinja" {
            assert!(err.contains("Jinja") && err.contains("!unsafe"), "{err}");
        }
        assert!(!err.contains("8080") && !err.contains("https://"), "values never in messages: {err}");
    }
    // A vaulted inventory file: refused even with the password.
    let inv = tmp.path().join("vaulted-inventory");
    let h = write(&inv, "hosts.yml", "web:\n  hosts:\n    w1:\n");
    encrypt_file(&home, &id, &h);
    let o = run(cratond_keyed(&db, &key_file).args(["import", "ansible", "--vault-id", &id]).arg(&inv));
    assert!(stderr(&o).contains("hosts.yml: this inventory file is vault-encrypted"), "{}", stderr(&o));
    // A missing password file fails before anything is read.
    let o = run(cratond_keyed(&db, &key_file)
        .args(["import", "ansible", "--vault-password-file", "/nonexistent/pw"])
        .arg(&inv));
    assert!(stderr(&o).contains("vault password file /nonexistent/pw"), "{}", stderr(&o));
    assert!(nothing_written(&mut c), "nothing was written");
    assert!(!key_file.exists());
}

/// Script output (a saved `--list`, here a `.json` file) carries vaulted
/// values as `{"__ansible_vault": ...}`: a whole variable becomes a secret,
/// a wrong password names the file.
#[test]
fn vaulted_values_in_script_output() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pw = write(tmp.path(), "pw", "json pw\n");
    let id = format!("default@{}", pw.display());
    let text = ciphertext_of(&encrypt_string(&home, &id, "from-json", 2));
    let list = serde_json::json!({
        "web": {"hosts": ["w1"], "vars": {"g": {"__ansible_vault": text}}},
        "_meta": {"hostvars": {"w1": {"h": {"__ansible_vault": text}, "keep": {"list": [{"__ansible_vault": text}]}}}}
    });
    let f = write(tmp.path(), "inv.json", list.to_string());
    let open = |pw: &Path| {
        let ids = VaultIds::load(&[VaultIdSpec::password_file(pw)], &Default::default()).unwrap();
        craton::import::import_with(f.to_str().unwrap(), &ImportOptions { vault: ids, ..ImportOptions::default() })
    };
    let imported = open(&pw).unwrap();
    let got: BTreeSet<(String, String, Vec<u8>)> =
        imported.secrets.iter().map(|s| (s.owner.to_string(), s.name.clone(), s.value.expose().to_vec())).collect();
    let want: BTreeSet<(String, String, Vec<u8>)> = [
        ("group \"web\"".to_string(), "g".to_string(), b"from-json".to_vec()),
        ("host \"w1\"".to_string(), "h".to_string(), b"from-json".to_vec()),
    ]
    .into();
    assert_eq!(got, want);
    let w1: BTreeSet<&str> = imported.desired.hosts["w1"].vars.keys().map(String::as_str).collect();
    assert_eq!(w1, BTreeSet::from(["keep"]), "a nested vaulted value stays inside its variable");
    let wrong = write(tmp.path(), "wrong", "nope\n");
    let e = open(&wrong).unwrap_err();
    assert_eq!(e.file, f.display().to_string());
    assert!(e.message.contains("Decryption failed"), "{e}");
}

/// `ansible HOST -m debug -a var=NAME`: what a play sees of a variable.
fn play_sees(home: &Path, inv: &Path, host: &str, var: &str, pw: &Path, env: &[(&str, &str)]) -> Value {
    let mut c = Command::new(common::ansible("ansible"));
    common::ansible_env(&mut c, home)
        .env("ANSIBLE_INVENTORY_ENABLED", "script,yaml")
        .arg("-i")
        .arg(inv)
        .args([host, "-c", "local", "-m", "debug", "-a", &format!("var={var}"), "--vault-id"])
        .arg(format!("craton@{}", pw.display()));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = ok(&mut c);
    let v: Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    v[var].clone()
}

/// An inline `!vault` value keeps the inline tier it has in the inventory
/// file: a deeper group's inline plain value still beats it, as Ansible
/// has it, and a vaulted group_vars file value beats both. Checked with a
/// play over the original files and over craton-inventory.
#[test]
fn an_inline_vault_value_ranks_where_its_source_did() {
    for b in backends() {
        let db = TestDb::new(b);
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let pw = write(dir.path(), "pw", "hunter2\n");
        let id = format!("craton@{}", pw.display());
        let region_pw = encrypt_string(&home, &id, "region-inline-secret", 10);
        let other = encrypt_string(&home, &id, "region-inline-other", 10);
        let inv = write(
            dir.path(),
            "inv/hosts.yml",
            format!(
                "all:\n  children:\n    region:\n      vars:\n        db_password: {region_pw}\n        other: {other}\n      children:\n        cell:\n          vars:\n            db_password: cell-plain\n          hosts:\n            h1: {{}}\n"
            ),
        );
        let gv = write(dir.path(), "inv/group_vars/region.yml", "other: from-the-file\n");
        encrypt_file(&home, &id, &gv);
        let key = dir.path().join("master.key");
        ok(cratond_keyed(&db, &key).arg("migrate"));
        ok(cratond_keyed(&db, &key).args(["import", "ansible"]).arg(inv.parent().unwrap()).arg("--vault-id").arg(&id));
        let via = common::bin("craton-inventory");
        let env = [
            ("CRATON_DATABASE_URL", db.url.as_str()),
            ("CRATON_MASTER_KEY_FILE", key.to_str().unwrap()),
            ("CRATON_VAULT_PASSWORD_FILE", pw.to_str().unwrap()),
            ("CRATON_CONFIG", "/dev/null"),
        ];
        for var in ["db_password", "other"] {
            let want = play_sees(&home, inv.parent().unwrap(), "h1", var, &pw, &[]);
            let got = play_sees(&home, &via, "h1", var, &pw, &env);
            assert_eq!(got, want, "{b:?}: {var}");
        }
        assert_eq!(play_sees(&home, &via, "h1", "db_password", &pw, &env), "cell-plain");
        assert_eq!(play_sees(&home, &via, "h1", "other", &pw, &env), "from-the-file");
    }
}
