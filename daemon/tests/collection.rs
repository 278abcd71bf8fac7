//! The Ansible collection `craton.craton` as operators get it: built with
//! `ansible-galaxy collection build`, installed into a fresh collections
//! path, documented by `ansible-doc`, and its inventory plugin and lookup run
//! by real ansible-core against a real `cratond serve` over loopback.
//!
//! The inventory plugin must give Ansible exactly what the script contract
//! gives (`-i craton-inventory`), over REST and over `database_url`, on
//! every backend; a cached reload costs one conditional request; the
//! `constructed` options work; the lookup returns what the API resolves;
//! `ansible-test sanity` passes on it.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use fixtures::{
    ansible, ansible_env, ansible_list, backends, bin, cratond, ok, repo_root, run, stderr, Server, TestDb,
};
use serde_json::{json, Value};

const VAULT_PASSWORD: &str = "collection test vault password";

/// The collection's source in the repository.
fn collection_src() -> PathBuf {
    repo_root().join("ansible/ansible_collections/craton/craton")
}

/// The collection built into a tarball and installed from it, as
/// `ansible-galaxy` does for operators.
struct Installed {
    dir: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let built = dir.path().join("built");
        ok(ansible_env(&mut Command::new(ansible("ansible-galaxy")), &home)
            .args(["collection", "build", "--output-path"])
            .arg(&built)
            .arg(collection_src()));
        let tarball = std::fs::read_dir(&built)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .expect("ansible-galaxy built no tarball");
        assert!(tarball.file_name().unwrap().to_string_lossy().starts_with("craton-craton-"), "{tarball:?}");
        ok(ansible_env(&mut Command::new(ansible("ansible-galaxy")), &home)
            .args(["collection", "install", "-p"])
            .arg(dir.path().join("collections"))
            .arg(&tarball));
        let c = Installed { dir };
        assert!(c.root().join("ansible_collections/craton/craton/plugins/inventory/craton.py").exists());
        c
    }

    /// ANSIBLE_COLLECTIONS_PATH
    fn root(&self) -> PathBuf {
        self.dir.path().join("collections")
    }

    fn env(&self) -> (&'static str, String) {
        ("ANSIBLE_COLLECTIONS_PATH", self.root().to_string_lossy().into_owned())
    }

    /// `ansible-inventory --list [--export] -i FILE` with only the plugin enabled.
    fn list(&self, file: &Path, export: bool, env: &[(&str, &str)]) -> Value {
        let (k, v) = self.env();
        let mut all = vec![(k, v.as_str())];
        all.extend_from_slice(env);
        ansible_list(file, "craton.craton.craton", export, &all)
    }

    /// A tool of ansible-core with the collection on its path.
    fn command(&self, tool: &str, home: &Path) -> Command {
        let mut c = Command::new(ansible(tool));
        ansible_env(&mut c, home).env(self.env().0, self.env().1);
        c.env("CRATON_CONFIG", "/dev/null").env_remove("CRATON_URL").env_remove("CRATON_TOKEN");
        c
    }
}

/// `ansible-inventory --list` over `craton-inventory ARGS`: Ansible passes no
/// arguments of its own choosing, so the arguments come through a wrapper.
fn script_list(dir: &Path, args: &[&str], export: bool, env: &[(&str, &str)]) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let w = dir.join(format!("craton-inventory-{}", args.join("_").replace(['"', '=', '/'], "")));
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("#!/bin/sh\nexec '{}' {} \"$@\"\n", bin("craton-inventory").display(), quoted.join(" "));
    std::fs::write(&w, script).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    ansible_list(&w, "script", export, env)
}

/// Writes `NAME.craton.yml`.
fn plugin_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let f = dir.join(format!("{name}.craton.yml"));
    std::fs::write(&f, format!("plugin: craton.craton.craton\n{yaml}")).unwrap();
    f
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{base}{path}");
    let auth = format!("Bearer {token}");
    let mut r = match (method, body) {
        ("GET", _) => agent().get(&url).header("Authorization", &auth).call(),
        ("PUT", Some(b)) => agent().put(&url).header("Authorization", &auth).send_json(&b),
        (_, Some(b)) => agent().post(&url).header("Authorization", &auth).send_json(&b),
        _ => unreachable!(),
    }
    .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    assert!((200..300).contains(&status), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

fn token(db: &TestDb, project: &str, role: &str) -> String {
    ok(cratond(db).args(["token", "create", "--project", project, "--role", role])).trim().to_string()
}

fn id_of(base: &str, token: &str, what: &str, name: &str) -> i64 {
    let page = call(base, token, "GET", &format!("/v1/{what}?name={name}"), None);
    page["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no {what} {name}: {page}"))
}

/// A database with two real inventories (OpenStack-Ansible's test config as
/// project `default`, kolla-ansible's multinode as `kolla`), a templated, an
/// unsafe and a secret value, and the daemon serving it.
struct Fleet {
    db: TestDb,
    dir: tempfile::TempDir,
    server: Server,
    /// Admin of `default` (may ask for secrets).
    admin: String,
    /// Reader of `kolla`.
    kolla: String,
}

impl Fleet {
    fn new(b: fixtures::Backend) -> Fleet {
        let db = TestDb::new(b);
        let dir = tempfile::tempdir().unwrap();
        ok(cratond(&db).args(["import", "ansible"]).arg(repo_root().join("tests/data/openstack_inventory.json")));
        let kolla = repo_root().join("tests/data/realworld/kolla-ansible-multinode/multinode");
        ok(cratond(&db).args(["import", "ansible", "--project", "kolla"]).arg(kolla));
        let admin = token(&db, "default", "admin");
        let kolla = token(&db, "kolla", "reader");
        std::fs::write(dir.path().join("vault-pass"), format!("{VAULT_PASSWORD}\n")).unwrap();
        let key = dir.path().join("master.key");
        let server = Server::start(&db, &["--no-sync"], &[("CRATON_MASTER_KEY_FILE", key.to_str().unwrap())]);
        let f = Fleet { db, dir, server, admin, kolla };
        let base = f.server.base.clone();
        let compute = id_of(&base, &f.admin, "groups", "compute_hosts");
        call(
            &base,
            &f.admin,
            "PUT",
            &format!("/v1/groups/{compute}/variables"),
            Some(json!({"templated": "{{ 40 + 2 }}", "literal": {"__ansible_unsafe": "{{ 40 + 2 }}"}})),
        );
        let pid = call(&base, &f.admin, "GET", "/v1/projects?name=default", None)["items"][0]["id"].as_i64().unwrap();
        call(
            &base,
            &f.admin,
            "POST",
            &format!("/v1/projects/{pid}/secrets"),
            Some(json!({"name": "db_password", "kind": "password", "value": "s3cret"})),
        );
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn key_env(&self) -> String {
        self.path("master.key").to_string_lossy().into_owned()
    }

    /// The environment `craton-inventory` reads the database with (the
    /// project comes as `--project`: `ansible_list` clears CRATON_PROJECT).
    fn script_env(&self, vault: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![("CRATON_DATABASE_URL", self.db.url.clone()), ("CRATON_MASTER_KEY_FILE", self.key_env())];
        if vault {
            env.push(("CRATON_VAULT_PASSWORD_FILE", self.path("vault-pass").to_string_lossy().into_owned()));
        }
        env
    }

    /// Plugin options for the daemon (`rest`) or the database.
    fn source_yaml(&self, rest: bool, token: &str) -> String {
        if rest {
            format!("url: {}\ntoken: {token}\n", self.server.base)
        } else {
            format!("database_url: {}\npath: {}\n", self.db.url, bin("craton-inventory").display())
        }
    }
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn collection_builds_installs_and_documents_its_plugins() {
    let c = Installed::new();
    let home = tempfile::tempdir().unwrap();
    let doc = |kind: &str, name: &str| -> Value {
        let out = ok(c.command("ansible-doc", home.path()).args(["-t", kind, "--json", name]));
        let v: Value = serde_json::from_str(&out).unwrap();
        v[name]["doc"].clone()
    };
    let inv = doc("inventory", "craton.craton.craton");
    let options = inv["options"].as_object().unwrap_or_else(|| panic!("no options: {inv}"));
    for o in [
        "url",
        "token",
        "project",
        "group",
        "filters",
        "validate_certs",
        "timeout",
        "database_url",
        "path",
        "vault_password_file",
        // constructed
        "compose",
        "groups",
        "keyed_groups",
        "strict",
        "leading_separator",
        // inventory_cache
        "cache",
        "cache_plugin",
        "cache_timeout",
        "cache_connection",
    ] {
        assert!(options.contains_key(o), "ansible-doc lacks option {o}");
    }
    assert_eq!(options["url"]["env"][0]["name"], "CRATON_URL");
    assert_eq!(options["token"]["env"][0]["name"], "CRATON_TOKEN");
    let lookup = doc("lookup", "craton.craton.resolved");
    assert!(lookup["options"]["_terms"].is_object(), "{lookup}");
    assert!(lookup["options"]["url"].is_object(), "{lookup}");
    let text = ok(c.command("ansible-doc", home.path()).args(["-t", "lookup", "craton.craton.resolved"]));
    assert!(text.contains("blame"), "{text}");
}

/// The differential test: on every backend, over REST and over
/// `database_url`, for a whole project, a group and a filter.
#[test]
fn plugin_equals_the_script_contract_over_rest_and_database() {
    let c = Installed::new();
    for b in backends() {
        let f = Fleet::new(b);
        let vault = format!("vault_password_file: {}\n", f.path("vault-pass").display());
        struct Case<'a> {
            label: &'a str,
            token: &'a str,
            yaml: String,
            args: Vec<&'a str>,
            vault: bool,
        }
        let cases = [
            Case { label: "osa", token: &f.admin, yaml: vault.clone(), args: vec![], vault: true },
            Case {
                label: "kolla-group",
                token: &f.kolla,
                yaml: "project: kolla\ngroup: control\n".into(),
                args: vec!["--project", "kolla", "--group", "control"],
                vault: false,
            },
            Case {
                label: "osa-filter",
                token: &f.admin,
                yaml: "filters:\n  is_metal: true\n".into(),
                args: vec!["--filter", "is_metal=true"],
                vault: false,
            },
        ];
        for case in &cases {
            let env = f.script_env(case.vault);
            let want = script_list(f.dir.path(), &case.args, false, &pairs(&env));
            let hosts = want["_meta"]["hostvars"].as_object().unwrap().len();
            let expected = match case.label {
                "osa" => 16,
                "kolla-group" => 3,
                _ => 3,
            };
            assert_eq!(hosts, expected, "{b:?} {}: the script's host count", case.label);
            for rest in [true, false] {
                let file = plugin_file(
                    f.dir.path(),
                    &format!("{}-{rest}", case.label),
                    &format!("{}{}", f.source_yaml(rest, case.token), case.yaml),
                );
                let got = c.list(&file, false, &[("CRATON_MASTER_KEY_FILE", &f.key_env())]);
                assert_eq!(got, want, "{b:?} {} (rest: {rest}): the plugin differs from the script", case.label);
                if case.label == "osa" {
                    let vaulted = &got["_meta"]["hostvars"]["compute1"]["db_password"]["__ansible_vault"];
                    assert!(vaulted.as_str().is_some_and(|v| v.starts_with("$ANSIBLE_VAULT")), "{b:?}: {vaulted}");
                    let want = script_list(f.dir.path(), &[], true, &pairs(&env));
                    let got = c.list(&file, true, &[("CRATON_MASTER_KEY_FILE", &f.key_env())]);
                    assert_eq!(got, want, "{b:?} (rest: {rest}): --export differs");
                }
            }
        }
        if b == fixtures::Backend::Sqlite {
            values_reach_a_play_as_from_the_script(&c, &f);
        }
    }
}

/// What a play sees: templated strings templated, unsafe ones literal,
/// vault values opened, from the script and from the plugin alike.
fn values_reach_a_play_as_from_the_script(c: &Installed, f: &Fleet) {
    let vault_id = format!("craton@{}", f.path("vault-pass").display());
    let seen = |source: &Path, plugins: &str, env: &[(&str, &str)]| -> Value {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = c.command("ansible", home.path());
        cmd.env("ANSIBLE_INVENTORY_ENABLED", plugins)
            .arg("-i")
            .arg(source)
            .args(["compute1", "-c", "local", "-m", "debug", "-a", "msg={{ [templated, literal, db_password] }}"])
            .args(["--vault-id", &vault_id])
            .env("CRATON_MASTER_KEY_FILE", f.key_env());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = ok(&mut cmd);
        let start = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
        serde_json::from_str::<Value>(&out[start..]).unwrap()["msg"].clone()
    };
    let want = json!([42, "{{ 40 + 2 }}", "s3cret"]);
    let env = f.script_env(true);
    assert_eq!(seen(&bin("craton-inventory"), "script", &pairs(&env)), want, "the script");
    for rest in [true, false] {
        let yaml =
            format!("{}vault_password_file: {}\n", f.source_yaml(rest, &f.admin), f.path("vault-pass").display());
        let file = plugin_file(f.dir.path(), &format!("play-{rest}"), &yaml);
        assert_eq!(seen(&file, "craton.craton.craton", &[]), want, "the plugin (rest: {rest})");
    }
}

/// One HTTP exchange seen by [`CountingProxy`].
#[derive(Debug, Clone)]
struct Exchange {
    request: String,
    request_headers: Vec<(String, String)>,
    status: u16,
    response_headers: Vec<(String, String)>,
}

impl Exchange {
    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 proxy in front of the daemon that records every
/// request it relays (one per connection: it asks both sides to close).
struct CountingProxy {
    base: String,
    seen: Arc<Mutex<Vec<Exchange>>>,
}

fn read_head(r: &mut impl BufRead) -> (String, Vec<(String, String)>) {
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    (first.trim_end().to_string(), headers)
}

fn write_head(w: &mut impl Write, first: &str, headers: &[(String, String)]) {
    let mut out = format!("{first}\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("connection")) {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    w.write_all(out.as_bytes()).unwrap();
}

impl CountingProxy {
    fn start(upstream: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let (request, request_headers) = read_head(&mut reader);
                // GETs only: no request body to relay.
                let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                write_head(&mut up, &request, &request_headers);
                let mut up_reader = BufReader::new(up);
                let (status_line, response_headers) = read_head(&mut up_reader);
                let mut body = Vec::new();
                up_reader.read_to_end(&mut body).unwrap();
                let mut client = client;
                write_head(&mut client, &status_line, &response_headers);
                client.write_all(&body).unwrap();
                let status = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
                log.lock().unwrap().push(Exchange { request, request_headers, status, response_headers });
            }
        });
        CountingProxy { base, seen }
    }

    /// The exchanges since the last call.
    fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// With the cache on, a reload of an unchanged inventory is one request
/// answered 304 when the daemon gave an ETag, and no request at all (the
/// cached document, until it expires) when it gave none; a changed
/// inventory is seen on the next load (ETag) or with `--flush-cache`.
#[test]
fn cached_reload_costs_one_conditional_request() {
    let c = Installed::new();
    let f = Fleet::new(fixtures::Backend::Sqlite);
    let proxy = CountingProxy::start(f.server.port);
    let cache = f.path("cache");
    let yaml = format!(
        "url: {}\ntoken: {}\ncache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {}\ncache_timeout: 3600\n",
        proxy.base,
        f.admin,
        cache.display()
    );
    let file = plugin_file(f.dir.path(), "cached", &yaml);
    let load = |flush: bool| -> Value {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = c.command("ansible-inventory", home.path());
        cmd.env("ANSIBLE_INVENTORY_ENABLED", "craton.craton.craton").arg("-i").arg(&file).arg("--list");
        if flush {
            cmd.arg("--flush-cache");
        }
        serde_json::from_str(&ok(&mut cmd)).unwrap()
    };

    let first = load(false);
    let hosts = first["_meta"]["hostvars"].as_object().unwrap().len();
    assert_eq!(hosts, 16);
    let ex = proxy.take();
    assert_eq!(ex.len(), 1, "one request for {hosts} hosts: {ex:#?}");
    assert!(ex[0].request.starts_with("GET /v1/inventory "), "{ex:#?}");
    assert_eq!(ex[0].status, 200);
    let asked = Exchange::header(&ex[0].request_headers, "accept-encoding").unwrap_or("");
    assert!(asked.contains("gzip"), "the plugin asks for gzip: {ex:#?}");
    assert!(Exchange::header(&ex[0].request_headers, "if-none-match").is_none(), "{ex:#?}");
    assert!(std::fs::read_dir(&cache).unwrap().count() > 0, "nothing cached");
    let etag = Exchange::header(&ex[0].response_headers, "etag").expect("an ETag on /v1/inventory").to_string();

    let second = load(false);
    assert_eq!(second, first, "the reload differs");
    let ex = proxy.take();
    assert_eq!(ex.len(), 1, "{ex:#?}");
    assert_eq!(Exchange::header(&ex[0].request_headers, "if-none-match"), Some(etag.as_str()), "{ex:#?}");
    assert_eq!(ex[0].status, 304, "{ex:#?}");

    // A change reaches the next load.
    let compute = id_of(&f.server.base, &f.admin, "groups", "compute_hosts");
    call(&f.server.base, &f.admin, "PUT", &format!("/v1/groups/{compute}/variables"), Some(json!({"changed": 1})));
    let third = load(false);
    let ex = proxy.take();
    assert_eq!(ex.len(), 1, "{ex:#?}");
    assert_eq!(ex[0].status, 200, "{ex:#?}");
    assert_eq!(third["_meta"]["hostvars"]["compute1"]["changed"], 1, "the change is not seen");
}

/// compose, groups, keyed_groups (with leading_separator) and strict, over
/// the group variables as well as the host's own.
#[test]
fn constructed_options_build_groups_and_vars() {
    let c = Installed::new();
    let f = Fleet::new(fixtures::Backend::Sqlite);
    let yaml = format!(
        "{}compose:\n  mgmt_cidr: management_address ~ '/22'\n  answer: templated | int\n\
groups:\n  metal: is_metal | default(false)\n\
keyed_groups:\n  - key: component\n    prefix: comp\n  - key: container_tech\n    prefix: ''\nleading_separator: false\n",
        f.source_yaml(true, &f.admin)
    );
    let got = c.list(&plugin_file(f.dir.path(), "constructed", &yaml), false, &[]);
    let hv = &got["_meta"]["hostvars"];
    // ansible-inventory prints composed strings as unsafe values.
    assert_eq!(
        hv["compute1"]["mgmt_cidr"]["__ansible_unsafe"],
        format!("{}/22", {
            let a = &hv["compute1"]["management_address"];
            a.as_str().or_else(|| a["__ansible_unsafe"].as_str()).unwrap_or_else(|| panic!("{a}")).to_string()
        })
    );
    // `templated` is a group variable of compute_hosts: compose sees it, templated.
    assert_eq!(hv["compute1"]["answer"], 42, "{}", hv["compute1"]);
    assert_eq!(got["comp_nova_compute"]["hosts"], json!(["compute1"]), "{got}");
    let metal = got["metal"]["hosts"].as_array().unwrap_or_else(|| panic!("no group metal: {got}"));
    assert_eq!(metal.len(), 3, "{got}");
    let lxc = got["lxc"]["hosts"].as_array().unwrap_or_else(|| panic!("no group lxc: {got}"));
    assert_eq!(lxc.len(), 16);

    // strict: an expression that fails is an error; without strict it is skipped.
    let bad = |strict: bool| {
        format!("{}strict: {strict}\ncompose:\n  broken: no_such_variable.attribute\n", f.source_yaml(true, &f.admin))
    };
    let lenient = c.list(&plugin_file(f.dir.path(), "lenient", &bad(false)), false, &[]);
    assert!(lenient["_meta"]["hostvars"]["compute1"].get("broken").is_none());
    let home = tempfile::tempdir().unwrap();
    let o = run(c
        .command("ansible-inventory", home.path())
        .env("ANSIBLE_INVENTORY_ENABLED", "craton.craton.craton")
        .arg("-i")
        .arg(plugin_file(f.dir.path(), "strict", &bad(true)))
        .arg("--list"));
    assert!(!o.status.success(), "strict compose of an undefined variable must fail");
    assert!(stderr(&o).contains("broken"), "{}", stderr(&o));
}

/// Failures name the cause and never the token.
#[test]
fn plugin_failures_are_clear_and_keep_the_token_out() {
    let c = Installed::new();
    let f = Fleet::new(fixtures::Backend::Sqlite);
    let fails = |name: &str, yaml: &str, needle: &str| {
        let home = tempfile::tempdir().unwrap();
        let o = run(c
            .command("ansible-inventory", home.path())
            .env("ANSIBLE_INVENTORY_ENABLED", "craton.craton.craton")
            .arg("-i")
            .arg(plugin_file(f.dir.path(), name, yaml))
            .arg("--list"));
        let err = stderr(&o);
        assert!(!o.status.success(), "{name} should fail");
        assert!(err.contains(needle), "{name}: {err:?} should mention {needle:?}");
        assert!(!err.contains("craton_"), "{name}: a token in the error: {err}");
    };
    let base = &f.server.base;
    fails("wrong-token", &format!("url: {base}\ntoken: craton_wrong\n"), "HTTP 401");
    fails("no-group", &format!("url: {base}\ntoken: {}\ngroup: nope\n", f.admin), "HTTP 404");
    fails("no-url", &format!("token: {}\n", f.admin), "url is required");
    let db = format!("database_url: {}\npath: {}\ngroup: nope\n", f.db.url, bin("craton-inventory").display());
    fails("db-no-group", &db, "craton-inventory: ");
    fails("no-binary", &format!("database_url: {}\npath: /nonexistent/craton-inventory\n", f.db.url), "No such file");
}

/// `lookup('craton.craton.resolved', ...)` in a template: the resolved
/// variables and blame the API gives, with url and token from the environment.
#[test]
fn resolved_lookup_in_a_playbook_template() {
    let c = Installed::new();
    let f = Fleet::new(fixtures::Backend::Sqlite);
    let out = f.path("resolved.json");
    std::fs::write(f.path("resolved.j2"), "{{ lookup('craton.craton.resolved', 'compute1') | to_json }}\n").unwrap();
    let play = format!(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.template:\n        src: {}\n        dest: {}\n",
        f.path("resolved.j2").display(),
        out.display()
    );
    std::fs::write(f.path("play.yml"), play).unwrap();
    let home = tempfile::tempdir().unwrap();
    let playbook = |file: &Path| {
        let mut cmd = c.command("ansible-playbook", home.path());
        cmd.args(["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"])
            .arg(file)
            .env("CRATON_URL", &f.server.base)
            .env("CRATON_TOKEN", &f.admin);
        run(&mut cmd)
    };
    let o = playbook(&f.path("play.yml"));
    assert!(o.status.success(), "{}\n{}", fixtures::stdout(&o), stderr(&o));
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let id = id_of(&f.server.base, &f.admin, "hosts", "compute1");
    let want = call(&f.server.base, &f.admin, "GET", &format!("/v1/hosts/{id}/variables?resolved=true"), None);
    assert_eq!(got, want);
    assert_eq!(got["blame"]["templated"]["owner"], "compute_hosts", "{got}");
    assert_eq!(got["blame"]["templated"]["owner_type"], "group", "{got}");

    std::fs::write(f.path("nope.j2"), "{{ lookup('craton.craton.resolved', 'nope') }}\n").unwrap();
    let play = std::fs::read_to_string(f.path("play.yml")).unwrap().replace("resolved.j2", "nope.j2");
    std::fs::write(f.path("nope.yml"), play).unwrap();
    let o = playbook(&f.path("nope.yml"));
    assert!(!o.status.success());
    let said = fixtures::stdout(&o) + &stderr(&o);
    assert!(said.contains("no host 'nope' in Craton"), "{said}");
}

/// Copies a directory tree (files and directories only; the collection has
/// no links), leaving out ansible-test's own `tests/output`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.ends_with("tests/output") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `ansible-test sanity` of the venv's ansible-core passes on the
/// collection (pep8, pylint, validate-modules against the DOCUMENTATION
/// blocks, import, yamllint, runtime metadata, changelog, ...), with only the
/// GPLv3-header ignores of tests/sanity/ignore-2.*.txt.
///
/// ansible-test bootstraps pip in its sanity venvs with a get-pip.py from
/// ci-files.testing.ansible.com, which this machine cannot reach; it takes
/// `~/.ansible/test/cache/get_pip_<version>.py` first, so the stand-in
/// `daemon/tests/collection/get_pip.py` goes there (pip from PyPI). The
/// venvs themselves are cached by ansible-test under `~/.ansible/test`.
#[test]
fn ansible_test_sanity_passes() {
    let python = ansible("python");
    let version = ok(Command::new(&python).args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]));
    let pip = ok(Command::new(&python).args([
        "-c",
        "from ansible_test._internal import python_requirements as p; import inspect, re; \
         print(re.search(r\"pip='([0-9.]+)'\", inspect.getsource(p)).group(1))",
    ]));
    let home = PathBuf::from(std::env::var("HOME").expect("HOME"));
    let cache = home.join(".ansible/test/cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(
        repo_root().join("daemon/tests/collection/get_pip.py"),
        cache.join(format!("get_pip_{}.py", pip.trim().replace('.', "_"))),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ansible_collections/craton/craton");
    copy_tree(&collection_src(), &root);
    let o = run(Command::new(ansible("ansible-test"))
        .args(["sanity", "--venv", "--color", "no", "--python", version.trim()])
        .current_dir(&root)
        .env("PATH", format!("{}:{}", python.parent().unwrap().display(), std::env::var("PATH").unwrap())));
    let out = format!("{}{}", fixtures::stdout(&o), stderr(&o));
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("ERROR:")).collect();
    assert!(
        o.status.success(),
        "ansible-test sanity failed ({}):\n{}\n\nfull output:\n{out}",
        o.status,
        errors.join("\n")
    );
    assert!(out.contains("Running sanity test \"validate-modules\""), "{out}");
}
