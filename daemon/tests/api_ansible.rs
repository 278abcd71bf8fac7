//! Inventories built through the REST API, compared with what real
//! ansible-core computes from the same inventory written as files. The
//! importer tests cover inventories that start as files; these cover the
//! shapes only the API produces, where Craton's own reading of Ansible is
//! the only thing standing between the operator and a wrong value.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{backends, Harness};
use craton::store::tokens::Role;
use serde_json::{json, Value};

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|p| p.join("Cargo.lock").exists()).unwrap().to_path_buf()
}

/// `ansible-inventory ARGS -i SOURCE` with only `plugins` enabled, as JSON.
fn ansible_inventory(source: &std::path::Path, plugins: &str, args: &[&str], db_url: Option<&str>) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(repo_root().join(".venv/bin/ansible-inventory"));
    c.env("ANSIBLE_HOME", home.path().join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.path().join(".ansible/tmp"))
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ENABLED", plugins)
        .env("ANSIBLE_CONFIG", home.path().join("no-ansible.cfg"))
        .env("CRATON_CONFIG", "/dev/null")
        .env_remove("CRATON_URL")
        .env_remove("CRATON_PROJECT")
        .arg("-i")
        .arg(source)
        .args(args);
    if let Some(u) = db_url {
        c.env("CRATON_DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn craton_inventory() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let profile = std::env::var("CRATON_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    let p = target.join(profile).join("craton-inventory");
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` first", p.display());
    p
}

/// A host the API puts in `ungrouped` *and* in another group. Ansible's
/// `reconcile_inventory` takes such a host out of `ungrouped`, so it sees
/// neither the membership nor `ungrouped`'s variables; a host in no other
/// group stays there and sees them.
#[tokio::test]
async fn api_host_in_ungrouped_and_another_group_is_reconciled_as_ansible_does() {
    let original = r#"
all:
  vars: {site: lab}
  children:
    ungrouped:
      vars: {from_ungrouped: yes, where: ungrouped}
      hosts:
        both: {}
        lone: {}
    web:
      vars: {where: web}
      hosts:
        both: {}
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.yml");
    std::fs::write(&file, original).unwrap();
    let want_list = ansible_inventory(&file, "yaml", &["--list"], None);
    let want_both = ansible_inventory(&file, "yaml", &["--host", "both"], None);
    // What Ansible itself says, so the comparison below cannot pass vacuously.
    assert_eq!(want_both, json!({"site": "lab", "where": "web"}));
    assert_eq!(want_list["ungrouped"]["hosts"], json!(["lone"]));

    for b in backends() {
        let h = Harness::new(b);
        let t = h.token(Some("default"), Role::Editor);
        let pid = h.get("/v1/projects?name=default", &h.token(None, Role::Root)).await.body["items"][0]["id"]
            .as_i64()
            .unwrap();
        h.expect(200, "PUT", &format!("/v1/projects/{pid}/variables"), &t, Some(json!({"site": "lab"}))).await;
        let ungrouped = h.create("/v1/groups", &t, json!({"name": "ungrouped"})).await;
        let web = h.create("/v1/groups", &t, json!({"name": "web"})).await;
        h.expect(
            200,
            "PUT",
            &format!("/v1/groups/{ungrouped}/variables"),
            &t,
            Some(json!({"from_ungrouped": true, "where": "ungrouped"})),
        )
        .await;
        h.expect(200, "PUT", &format!("/v1/groups/{web}/variables"), &t, Some(json!({"where": "web"}))).await;
        h.create("/v1/hosts", &t, json!({"name": "both", "groups": ["ungrouped", "web"]})).await;
        h.create("/v1/hosts", &t, json!({"name": "lone", "groups": ["ungrouped"]})).await;

        let inv = craton_inventory();
        let got_list = ansible_inventory(&inv, "script", &["--list"], Some(&h.db.url));
        assert_eq!(got_list, want_list, "{b:?}: ansible-inventory --list over Craton differs from Ansible");
        let got_both = ansible_inventory(&inv, "script", &["--host", "both"], Some(&h.db.url));
        assert_eq!(got_both, want_both, "{b:?}: host `both` must not see ungrouped's variables");

        // The API's own resolution agrees with Ansible too.
        let both = h.get("/v1/hosts?name=both", &t).await.body["items"][0]["id"].as_i64().unwrap();
        let r = h.expect(200, "GET", &format!("/v1/hosts/{both}/variables?resolved=true"), &t, None).await;
        let resolved = &r.body["variables"];
        assert_eq!(resolved["where"], "web", "{b:?}: {}", r.text);
        assert!(resolved.get("from_ungrouped").is_none(), "{b:?}: {}", r.text);
    }
}
