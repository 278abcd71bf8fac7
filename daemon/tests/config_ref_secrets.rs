//! Config refs with vaulted values, on every backend: the project's vault
//! passwords (`[projects.NAME] vault_password_file`, here set on the sync
//! settings) open a vault-encrypted vars file and an inline `!vault` value
//! that the real ansible-vault made; they become the ref's secrets (read
//! back through the API), an unchanged commit writes nothing, a key the ref
//! drops is removed with its secret, a key another source holds fails the
//! sync, a wrong or missing password fails it naming the file, and deleting
//! the ref deletes its secrets.

mod common;

#[path = "../../tests/common/git.rs"]
mod upstream;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{backends, Harness};
use craton::import::vaulted::VaultIdSpec;
use craton::secrets::pem::SecretKind;
use craton::secrets::{FileKeyProvider, OwnerKind, Secret};
use craton::store::secrets::{self as ss, Owner, Secrets};
use craton::store::tokens::Role;
use cratond::api::{app, Limits};
use cratond::sync::{Outcome, SyncHub, SyncSettings};
use serde_json::json;
use upstream::Upstream;

fn vault(args: &[&str], home: &Path) -> String {
    let bin = format!("{}/../.venv/bin/ansible-vault", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(bin)
        .args(args)
        .env("ANSIBLE_HOME", home.join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.join(".ansible/tmp"))
        .env("ANSIBLE_CONFIG", home.join("none.cfg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ansible-vault {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `ansible-vault encrypt_string`, as the value of a key indented by 10.
fn inline(home: &Path, id: &str, plain: &str) -> String {
    let out = vault(&["encrypt_string", "--vault-id", id, plain], home);
    let body: Vec<String> = out.lines().skip(1).map(|l| format!("            {}", l.trim())).collect();
    format!("!vault |\n{}", body.join("\n"))
}

fn encrypted(home: &Path, id: &str, plain: &str) -> String {
    let f = home.join("plain.yml");
    std::fs::write(&f, plain).unwrap();
    vault(&["encrypt", "--vault-id", id, f.to_str().unwrap()], home);
    std::fs::read_to_string(f).unwrap()
}

struct Env {
    h: Harness,
    hub: Arc<SyncHub>,
    _cache: tempfile::TempDir,
}

fn env(b: common::Backend, vault_ids: Vec<VaultIdSpec>) -> Env {
    let cache = tempfile::tempdir().unwrap();
    let mut settings = SyncSettings::with_cache(cache.path().to_path_buf());
    let tmp = std::env::temp_dir();
    let mut policy = cratond::repo_policy::RepoPolicy::default();
    policy.projects.insert(
        "default".into(),
        cratond::repo_policy::ProjectPolicy {
            allow: vec![format!("{}/**", tmp.to_str().unwrap().trim_end_matches('/'))],
            credentials: None,
        },
    );
    settings.policy = policy;
    settings.vault.insert("default".into(), vault_ids);
    let hub = SyncHub::new(settings);
    let Harness { app: _, state, url, db, scratch } = Harness::new(b);
    // The harness's master key, so that the API reads what the sync wrote.
    let keys = FileKeyProvider::open_or_create(&scratch.path().join("master.key")).unwrap();
    assert!(hub.syncer.set_key_provider(Arc::new(keys)));
    let state = state.with_sync(hub.clone());
    let h = Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch };
    Env { h, hub, _cache: cache }
}

impl Env {
    fn sync(&self, id: i64) -> Outcome {
        self.hub.syncer.sync(&mut self.h.conn(), id, false).unwrap()
    }

    fn keys(&self) -> FileKeyProvider {
        FileKeyProvider::open_or_create(&self.h.scratch.path().join("master.key")).unwrap()
    }

    /// name -> (owner kind, kind, version, created_by) of every secret.
    fn secrets(&self) -> std::collections::BTreeMap<String, (String, String, i64, String)> {
        use craton::store::schema::secrets as s;
        use diesel::prelude::*;
        s::table
            .select((s::name, s::owner_kind, s::kind, s::current_version, s::created_by))
            .load::<(String, String, String, i64, String)>(&mut self.h.conn())
            .unwrap()
            .into_iter()
            .map(|(n, o, k, v, by)| (n, (o, k, v, by)))
            .collect()
    }
}

fn applied(o: &Outcome) -> &craton::store::ref_apply::Applied {
    match o {
        Outcome::Applied { applied, .. } => applied,
        other => panic!("expected a successful sync, got {other:?}"),
    }
}

fn failed(o: &Outcome) -> craton::store::config_refs::SyncFailure {
    match o {
        Outcome::Failed(f) => f.clone(),
        other => panic!("expected a failed sync, got {other:?}"),
    }
}

async fn value(h: &Harness, token: &str, kind: &str, name: &str, secret: &str) -> String {
    let list = h.expect(200, "GET", &format!("/v1/{kind}s?name={name}"), token, None).await;
    let id = list.body["items"][0]["id"].as_i64().unwrap();
    let r = h.expect(200, "GET", &format!("/v1/{kind}s/{id}/secrets/{secret}/value"), token, None).await;
    r.body["value"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_string()
}

#[tokio::test]
async fn a_ref_opens_vaulted_values_with_the_projects_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let pw = home.join("pw");
    std::fs::write(&pw, "ref password\n").unwrap();
    let wrong = home.join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let id_arg = format!("default@{}", pw.display());
    let hosts = |api: Option<&str>| {
        let api = api.map(|v| format!("          api_key: {v}\n")).unwrap_or_default();
        format!("all:\n  children:\n    web:\n      hosts:\n        w1:\n{api}          plain: p\n")
    };
    let web = encrypted(home, &id_arg, "db_pass: s3cr3t\n");
    let api = inline(home, &id_arg, "api-key-1");

    for b in backends() {
        let e = env(b, vec![VaultIdSpec::password_file(&pw)]);
        let h = &e.h;
        let admin = h.token(Some("default"), Role::Admin);
        let up = Upstream::new();
        up.write("inv/hosts.yml", &hosts(Some(&api)));
        up.write("inv/group_vars/web.yml", &web);
        up.write("inv/host_vars/w1.yml", "rack: r1\n");
        up.commit_push("vaulted");
        let id = h.create("/v1/config-refs", &admin, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;

        let a = *applied(&e.sync(id));
        assert_eq!((a.secrets.created, a.counts.created), (2, 2), "{b:?}: {a:?}");
        let by = format!("config-ref:{id}");
        let s = e.secrets();
        assert_eq!(s["db_pass"], ("group".into(), "password".into(), 1, by.clone()), "{b:?}");
        assert_eq!(s["api_key"], ("host".into(), "password".into(), 1, by.clone()), "{b:?}");
        assert_eq!(value(h, &admin, "group", "web", "db_pass").await, "s3cr3t");
        assert_eq!(value(h, &admin, "host", "w1", "api_key").await, "api-key-1");
        let vars = h.expect(200, "GET", "/v1/hosts?name=w1", &admin, None).await;
        let w1 = vars.body["items"][0]["id"].as_i64().unwrap();
        let vars = h.expect(200, "GET", &format!("/v1/hosts/{w1}/variables"), &admin, None).await;
        assert_eq!(vars.body["variables"], json!({"plain": "p", "rack": "r1"}), "{b:?}: no secret among them");

        // A commit that changes nothing stored: no write, no revision bump.
        let rev = craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().revision;
        up.write("README.md", "x\n");
        up.commit_push("readme");
        let a = *applied(&e.sync(id));
        assert!(!a.secrets.changed() && a.secrets.unchanged == 0, "{b:?}: {a:?}");
        assert_eq!(craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().revision, rev, "{b:?}");

        // The inline value dropped: its secret goes, the other stays at v1.
        up.write("inv/hosts.yml", &hosts(None));
        up.commit_push("no api key");
        let a = *applied(&e.sync(id));
        assert_eq!((a.secrets.removed, a.secrets.unchanged), (1, 1), "{b:?}: {a:?}");
        assert!(!e.secrets().contains_key("api_key") && e.secrets()["db_pass"].2 == 1, "{b:?}");

        // A key another source holds as a secret fails the sync, naming the
        // file; the previous state stays.
        let keys = e.keys();
        let mut c = h.conn();
        let pid = craton::store::find_project(&mut c, "default").unwrap().unwrap().id;
        let w1_owner = Owner { project_id: pid, kind: OwnerKind::Host, id: w1 };
        Secrets::new(&keys)
            .create(&mut c, w1_owner, "rack", SecretKind::Password, &Secret::new("x"), "token:9:admin")
            .unwrap();
        up.write("inv/hosts.yml", &hosts(None));
        up.commit_push("same");
        let f = failed(&e.sync(id));
        assert!(
            f.file.as_deref() == Some("inv/host_vars/w1") && f.message.contains("a secret of that name exists"),
            "{b:?}: {f:?}"
        );
        ss::delete(&mut c, w1_owner, "rack", "token:9:admin").unwrap();
        let pushed = encrypted(home, &id_arg, "rack: r2\n");
        up.write("inv/host_vars/w1.yml", &pushed);
        up.commit_push("rack vaulted");
        let a = *applied(&e.sync(id));
        assert_eq!(
            (a.secrets.created, a.counts.removed),
            (1, 1),
            "{b:?}: the ref's plain rack became its secret: {a:?}"
        );
        assert_eq!(value(h, &admin, "host", "w1", "rack").await, "r2");

        // Deleting the ref deletes its secrets.
        h.expect(204, "DELETE", &format!("/v1/config-refs/{id}"), &admin, None).await;
        assert!(e.secrets().is_empty(), "{b:?}: {:?}", e.secrets());
    }

    // Wrong password, and none: the sync fails naming the file.
    for (ids, needle) in [
        (vec![VaultIdSpec::password_file(&wrong)], "vault-encrypted file: Decryption failed"),
        (vec![], "this file is vault-encrypted and no vault password was given"),
    ] {
        let e = env(common::Backend::Sqlite, ids);
        let admin = e.h.token(Some("default"), Role::Admin);
        let up = Upstream::new();
        up.write("inv/hosts.yml", &hosts(None));
        up.write("inv/group_vars/web.yml", &web);
        up.commit_push("vaulted");
        let id = e.h.create("/v1/config-refs", &admin, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;
        let f = failed(&e.sync(id));
        assert_eq!(f.file.as_deref(), Some("inv/group_vars/web.yml"), "{f:?}");
        assert!(f.message.contains(needle), "{f:?}");
        assert!(e.secrets().is_empty());
        let hosts: i64 = {
            use diesel::prelude::*;
            craton::store::schema::hosts::table.count().get_result(&mut e.h.conn()).unwrap()
        };
        assert_eq!(hosts, 0, "nothing applied");
    }
}
