//! Secrets all the way into Ansible, checked with real ansible-core on each
//! backend: `craton-inventory` (database and REST) and `/v1/inventory` with
//! a vault password give vault values that `ansible` decrypts to the stored
//! plaintexts, with Craton's precedence (secrets in the vars-file tier);
//! a bundle downloaded with a password, unpacked, runs a playbook that
//! copies a PEM with `decrypt: true`; a client-mode bundle gets its
//! password from cratond through `craton-vault-client`; `ansible-vault view`
//! opens the bundle's `secrets.yml`; without a password nothing secret is
//! in any output, and `--verbose` says how many were left out.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ansible, ansible_env, backends, bin, cratond, inventory, ok, run, stderr, stdout, Server, TestDb};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

/// Copies h1's PEM out of the bundle's `files/`, decrypted by Ansible.
const SITE: &str = "- hosts: all
  gather_facts: false
  tasks:
    - copy:
        src: \"{{ inventory_hostname }}/tls_key.pem\"
        dest: \"{{ out }}/{{ inventory_hostname }}.pem\"
        decrypt: true
        mode: \"0600\"
      when: inventory_hostname == 'h1'
";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    send(base, token, "POST", path, body)
}

fn send(base: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let url = format!("{base}{path}");
    let auth = format!("Bearer {token}");
    let mut r = match method {
        "PUT" => agent().put(&url).header("Authorization", &auth).send_json(&body),
        _ => agent().post(&url).header("Authorization", &auth).send_json(&body),
    }
    .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(status == 201 || status == 200, "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// GET with optional vault password: (status, headers of interest, body).
fn get(base: &str, token: &str, path: &str, password: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = agent().get(&format!("{base}{path}")).header("Authorization", &format!("Bearer {token}"));
    if let Some(p) = password {
        req = req.header("X-Craton-Vault-Password", p);
    }
    let mut r = req.call().unwrap();
    let omitted = r.headers().get("x-craton-secrets-omitted").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), omitted, r.body_mut().with_config().limit(1 << 28).read_to_vec().unwrap())
}

fn pem_key(dir: &Path) -> String {
    let key = dir.join("tls.key");
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&key));
    std::fs::read_to_string(key).unwrap()
}

/// `ansible HOST -m debug -a var=NAME` over an inventory: what a play sees.
fn seen(inv: &Path, host: &str, var: &str, env: &[(&str, &str)], vault_args: &[&str]) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(ansible("ansible"));
    ansible_env(&mut c, home.path()).arg("-i").arg(inv).args([host, "-c", "local", "-m", "debug", "-a"]);
    c.arg(format!("var={var}")).args(vault_args).env("ANSIBLE_INVENTORY_ENABLED", "script,yaml,ini");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = ok(&mut c);
    let json_start = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
    let v: Value = serde_json::from_str(&out[json_start..]).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[var].clone()
}

#[test]
fn secrets_reach_ansible_as_vault_values() {
    for b in backends() {
        let db = TestDb::new(b);
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let key_env = key_file.to_str().unwrap();
        ok(cratond(&db).arg("migrate"));
        let admin =
            ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "admin"])).trim().to_string();
        let editor =
            ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "editor"])).trim().to_string();
        let server = Server::start(&db, &["--no-sync"], &[("CRATON_MASTER_KEY_FILE", key_env)]);
        let base = server.base.clone();

        // region > cell > h1; h2 directly in region.
        let region = post(&base, &admin, "/v1/groups", json!({"name": "region"}))["id"].clone();
        let cell = post(&base, &admin, "/v1/groups", json!({"name": "cell", "parents": [region]}))["id"].clone();
        let h1 = post(&base, &admin, "/v1/hosts", json!({"name": "h1", "groups": [cell]}))["id"].clone();
        let h2 = post(&base, &admin, "/v1/hosts", json!({"name": "h2", "groups": [region]}))["id"].clone();
        let projects: Value = serde_json::from_slice(&get(&base, &admin, "/v1/projects", None).2).unwrap();
        let pid = projects["items"][0]["id"].clone();
        // Inline vars the secrets compete with.
        send(&base, &admin, "PUT", &format!("/v1/groups/{cell}/variables"), json!({"db_password": "cell-inline"}));
        send(&base, &admin, "PUT", &format!("/v1/hosts/{h1}/variables"), json!({"api_token": "h1-inline"}));
        let pem = pem_key(dir.path());
        let secret = |owner: &str, name: &str, kind: &str, value: &str| {
            post(&base, &admin, &format!("{owner}/secrets"), json!({"name": name, "kind": kind, "value": value}));
        };
        secret(&format!("/v1/groups/{region}"), "db_password", "password", "region-pw");
        secret(&format!("/v1/hosts/{h1}"), "tls_key", "pem", &pem);
        secret(&format!("/v1/hosts/{h2}"), "h2_only", "opaque", "line one\nline \"two\"\n");
        secret(&format!("/v1/projects/{pid}"), "api_token", "password", "project-token");

        // Without a password: nothing secret anywhere, and the count.
        let (s, omitted, body) = get(&base, &admin, "/v1/inventory", None);
        assert_eq!(s, 200);
        assert_eq!(omitted.as_deref(), Some("4"), "{b:?}: omitted header");
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("__ansible_vault") && !text.contains("region-pw"), "{b:?}: {text}");
        let o = run(inventory(&db).args(["--list", "--verbose"]).env("CRATON_MASTER_KEY_FILE", key_env));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("left out the project's 4 secret(s)"), "{b:?}: {}", stderr(&o));
        let o = run(inventory(&db).arg("--list").env("CRATON_MASTER_KEY_FILE", key_env));
        assert_eq!(stderr(&o), "", "{b:?}: stderr without --verbose");

        // An editor may not ask for secrets.
        let (s, _, body) = get(&base, &editor, "/v1/inventory", Some(PASSWORD));
        assert_eq!(s, 403, "{b:?}: {}", String::from_utf8_lossy(&body));

        // With the password: vault values, opened by real ansible.
        let (s, omitted, body) = get(&base, &admin, "/v1/inventory", Some(PASSWORD));
        assert_eq!((s, omitted), (200, None));
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let vt = doc["_meta"]["hostvars"]["h1"]["tls_key"]["__ansible_vault"].as_str().unwrap();
        assert!(vt.starts_with("$ANSIBLE_VAULT;1.2;AES256;craton\n"), "{vt}");
        assert!(!String::from_utf8_lossy(&body).contains("region-pw"));

        let pw_file = dir.path().join("vault-pass");
        std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
        let pw_arg = format!("craton@{}", pw_file.display());
        let vault_args = ["--vault-id", pw_arg.as_str()];
        let expect = [
            ("h1", "db_password", json!("region-pw")),
            ("h2", "db_password", json!("region-pw")),
            ("h1", "api_token", json!("h1-inline")),
            ("h2", "api_token", json!("project-token")),
            ("h1", "tls_key", json!(pem)),
            ("h2", "h2_only", json!("line one\nline \"two\"\n")),
        ];
        // The database source and the REST source.
        let script = bin("craton-inventory");
        let pw_env = pw_file.to_str().unwrap();
        let db_env = [
            ("CRATON_DATABASE_URL", db.url.as_str()),
            ("CRATON_MASTER_KEY_FILE", key_env),
            ("CRATON_VAULT_PASSWORD_FILE", pw_env),
            ("CRATON_CONFIG", "/dev/null"),
        ];
        let rest_env = [
            ("CRATON_URL", base.as_str()),
            ("CRATON_TOKEN", admin.as_str()),
            ("CRATON_VAULT_PASSWORD_FILE", pw_env),
            ("CRATON_CONFIG", "/dev/null"),
        ];
        for env in [&db_env[..], &rest_env[..]] {
            for (host, var, want) in &expect {
                assert_eq!(&seen(&script, host, var, env, &vault_args), want, "{b:?}: {host} {var} via {:?}", env[0].0);
            }
        }
        // The same bytes from both sources, and from the REST route.
        let o = ok(Command::new(&script).arg("--list").envs(db_env.iter().copied()).env_remove("CRATON_URL"));
        assert_eq!(o.trim_end().as_bytes(), &body[..], "{b:?}: craton-inventory (database) vs /v1/inventory");

        // A bundle downloaded with the password, unpacked, run.
        let (s, _, tgz) = get(&base, &admin, "/v1/inventory/region.tgz", Some(PASSWORD));
        assert_eq!(s, 200);
        let (_, _, again) = get(&base, &admin, "/v1/inventory/region.tgz", Some(PASSWORD));
        assert_eq!(tgz, again, "{b:?}: bundle bytes are deterministic for a revision and password");
        let unpacked = dir.path().join(format!("bundle-{b:?}"));
        std::fs::create_dir_all(&unpacked).unwrap();
        craton::bundle::unpack_tgz(&tgz, &unpacked).unwrap();
        assert!(unpacked.join("hosts/group_vars/region/secrets.yml").exists());
        assert!(unpacked.join("hosts/host_vars/h1/secrets.yml").exists());
        let pem_file = std::fs::read_to_string(unpacked.join("files/h1/tls_key.pem")).unwrap();
        assert!(pem_file.starts_with("$ANSIBLE_VAULT;1.2;AES256;craton"), "{pem_file}");
        let cfg = std::fs::read_to_string(unpacked.join("ansible.cfg")).unwrap();
        assert!(!cfg.contains("vault_identity_list"), "a password bundle names no client: {cfg}");
        // ansible-vault view opens the whole-file vaulted secrets.yml.
        let home = tempfile::tempdir().unwrap();
        let view = ok(ansible_env(&mut Command::new(ansible("ansible-vault")), home.path())
            .args(["view", "--vault-id", &pw_arg])
            .arg(unpacked.join("hosts/group_vars/region/secrets.yml")));
        assert_eq!(view, "\"db_password\": \"region-pw\"\n", "{b:?}");
        for (host, var, want) in &expect {
            assert_eq!(&seen(&unpacked.join("hosts"), host, var, &[], &vault_args), want, "{b:?}: bundle {host} {var}");
        }
        let out = dir.path().join(format!("out-{b:?}"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(unpacked.join("site.yml"), SITE).unwrap();
        let play = |env: &[(&str, &str)], args: &[&str]| {
            let home = tempfile::tempdir().unwrap();
            let mut c = Command::new(ansible("ansible-playbook"));
            ansible_env(&mut c, home.path())
                .env_remove("ANSIBLE_CONFIG")
                .current_dir(&unpacked)
                .args(["site.yml", "-c", "local", "-e"])
                .arg(format!("out={} ansible_python_interpreter={}", out.display(), ansible("python3").display()))
                .args(args);
            for (k, v) in env {
                c.env(k, v);
            }
            run(&mut c)
        };
        let o = play(&[], &vault_args);
        assert!(o.status.success(), "{b:?}: {}\n{}", stdout(&o), stderr(&o));
        assert_eq!(std::fs::read_to_string(out.join("h1.pem")).unwrap(), pem, "{b:?}: the copied PEM");

        // Client mode: the bundle asks cratond for its password.
        std::fs::remove_file(out.join("h1.pem")).unwrap();
        let (s, _, tgz) = get(&base, &admin, "/v1/inventory/region.tgz?vault=client", None);
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&tgz));
        std::fs::remove_dir_all(&unpacked).unwrap();
        std::fs::create_dir_all(&unpacked).unwrap();
        craton::bundle::unpack_tgz(&tgz, &unpacked).unwrap();
        std::fs::write(unpacked.join("site.yml"), SITE).unwrap();
        let cfg = std::fs::read_to_string(unpacked.join("ansible.cfg")).unwrap();
        assert!(cfg.contains("vault_identity_list = craton@./craton-vault-client"), "{cfg}");
        let o = play(&[("CRATON_URL", &base), ("CRATON_TOKEN", &admin)], &[]);
        assert!(o.status.success(), "{b:?}: {}\n{}", stdout(&o), stderr(&o));
        assert_eq!(std::fs::read_to_string(out.join("h1.pem")).unwrap(), pem, "{b:?}: client mode PEM");
        // An editor's token gets no password: the play fails, saying why.
        let o = play(&[("CRATON_URL", &base), ("CRATON_TOKEN", &editor)], &[]);
        assert!(!o.status.success());
        assert!(format!("{}{}", stdout(&o), stderr(&o)).contains("HTTP 403"), "{b:?}: {}", stderr(&o));

        // A secret write moves the revision: a new bundle, other bytes.
        secret(&format!("/v1/hosts/{h2}"), "late", "password", "late-pw");
        let (_, _, newer) = get(&base, &admin, "/v1/inventory/region.tgz", Some(PASSWORD));
        assert_ne!(newer, again, "{b:?}: a secret write changes the bundle");
        drop(server);
    }
}
