//! Bundles against real ansible-core: each bundle is unpacked (GNU tar,
//! Info-ZIP unzip) into an empty directory and `ansible-inventory --list` /
//! `ansible-playbook` run there with only its `ansible.cfg` in charge; what
//! they see must equal what they see through `craton-inventory` (with the
//! same `--group`) for the same data.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ansible, ansible_env, bin, cratond, ok, Backend, TestDb};
use craton::bundle::{self, Bundle, Format};
use craton::model::{raw_from_value, GroupNode, HostNode, OwnVars, Project, Snapshot, Tier, Var};
use craton::render::{self, Options, Selection};
use serde_json::{json, Value};
use tempfile::TempDir;

const FORMATS: [Format; 2] = [Format::Tgz, Format::Zip];

fn snapshot_of(db: &TestDb) -> Snapshot {
    let mut c = db.conn();
    craton::store::load::load_snapshot(&mut c, "default").unwrap()
}

fn selection(group: Option<&str>) -> Selection {
    Selection { group: group.map(str::to_string), ..Selection::default() }
}

/// Unpacks with the system tools into a fresh, empty directory.
fn unpack(b: &Bundle, format: Format) -> TempDir {
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join(format!("bundle.{}", format.extension()));
    std::fs::write(&archive, &b.bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    match format {
        Format::Tgz => ok(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(dir.path())),
        Format::Zip => ok(Command::new("unzip").arg("-q").arg(&archive).arg("-d").arg(dir.path())),
    };
    dir
}

fn build_unpacked(snap: &Snapshot, group: Option<&str>, format: Format) -> TempDir {
    let b = bundle::build(snap, &selection(group), format).unwrap_or_else(|e| panic!("{group:?} {format:?}: {e}"));
    unpack(&b, format)
}

/// Like `common::ok`, but shows stdout too: ansible-playbook reports task
/// failures there.
fn ok_all(cmd: &mut Command) -> String {
    let o = common::run(cmd);
    assert!(o.status.success(), "{cmd:?} failed: {}\n{}\n{}", o.status, common::stdout(&o), common::stderr(&o));
    common::stdout(&o)
}

fn parse(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("ansible printed no JSON ({e}): {out}"))
}

/// An ansible command run inside an unpacked bundle: no ANSIBLE_CONFIG, so
/// `./ansible.cfg` (and its `inventory = ./hosts`) applies; every plugin
/// enabled as by default, and any unparsed source fatal.
fn in_bundle(tool: &str, dir: &Path, home: &Path) -> Command {
    let mut c = Command::new(ansible(tool));
    ansible_env(&mut c, home)
        .env_remove("ANSIBLE_CONFIG")
        .env_remove("ANSIBLE_INVENTORY_ENABLED")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .current_dir(dir);
    c
}

/// `ansible-inventory --list` in an unpacked bundle.
fn bundle_list(dir: &Path) -> Value {
    let home = tempfile::tempdir().unwrap();
    parse(&ok(in_bundle("ansible-inventory", dir, home.path()).arg("--list")))
}

/// An inventory script source: `craton-inventory [--group G]` over `db`
/// (Ansible passes no arguments, so a wrapper adds the flag).
struct Script {
    _dir: TempDir,
    path: PathBuf,
    env: Vec<(String, String)>,
}

fn craton_script(db: &TestDb, group: Option<&str>) -> Script {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("craton");
    let flag = group.map(|g| format!(" --group '{g}'")).unwrap_or_default();
    std::fs::write(&path, format!("#!/bin/sh\nexec '{}'{flag} \"$@\"\n", bin("craton-inventory").display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Script { _dir: dir, path, env: vec![("CRATON_DATABASE_URL".into(), db.url.clone())] }
}

/// A script printing `render::write_list` of an in-memory snapshot: what
/// `craton-inventory` would print for it.
fn rendered_script(snap: &Snapshot, group: Option<&str>) -> Script {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let e = render::emit(snap, &selection(group), Options::default()).unwrap();
    let json = dir.path().join("list.json");
    let mut out = Vec::new();
    render::write_list(&e, Options::default(), &mut out).unwrap();
    std::fs::write(&json, out).unwrap();
    let path = dir.path().join("rendered");
    std::fs::write(&path, format!("#!/bin/sh\nexec cat '{}'\n", json.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Script { _dir: dir, path, env: Vec::new() }
}

fn via_script(tool: &str, script: &Script, home: &Path) -> Command {
    let mut c = Command::new(ansible(tool));
    ansible_env(&mut c, home).env("ANSIBLE_INVENTORY_ENABLED", "script").arg("-i").arg(&script.path);
    c.env("CRATON_CONFIG", "/dev/null").env_remove("CRATON_URL").env_remove("CRATON_PROJECT");
    for (k, v) in &script.env {
        c.env(k, v);
    }
    c
}

/// `ansible-inventory -i SCRIPT --list`.
fn script_list(script: &Script) -> Value {
    let home = tempfile::tempdir().unwrap();
    parse(&ok(via_script("ansible-inventory", script, home.path()).arg("--list")))
}

/// A play that writes, per host, the values of `probe_keys` as Ansible
/// templates them (`__undefined__` for a key the host lacks). Files are
/// named by a hash: host names may be paths.
const PLAY: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname | hash('sha256') }}.json"
        content: "{{ {'host': inventory_hostname, 'vars': dict(probe_keys | zip(q('ansible.builtin.vars', *probe_keys, default='__undefined__')))} | to_json }}"
"#;

/// Runs PLAY over `cmd` (an ansible-playbook command with its inventory),
/// returning host -> {key: value}.
fn run_play(mut cmd: Command, play_dir: &Path, keys: &[String]) -> BTreeMap<String, Value> {
    let out = tempfile::tempdir().unwrap();
    let play = play_dir.join("play.yml");
    std::fs::write(&play, PLAY).unwrap();
    let extra = json!({"probe_keys": keys, "out_dir": out.path()});
    cmd.arg(&play)
        .arg("-c")
        .arg("local")
        .arg("-e")
        .arg(extra.to_string())
        .env("ANSIBLE_PYTHON_INTERPRETER", ansible("python"));
    ok_all(&mut cmd);
    std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| {
            let mut v: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            (v["host"].as_str().unwrap().to_string(), v["vars"].take())
        })
        .collect()
}

fn bundle_play(dir: &Path, keys: &[String]) -> BTreeMap<String, Value> {
    let home = tempfile::tempdir().unwrap();
    run_play(in_bundle("ansible-playbook", dir, home.path()), dir, keys)
}

fn script_play(script: &Script, keys: &[String]) -> BTreeMap<String, Value> {
    let home = tempfile::tempdir().unwrap();
    let play_dir = tempfile::tempdir().unwrap();
    run_play(via_script("ansible-playbook", script, home.path()), play_dir.path(), keys)
}

/// Every key of every host in a `--list` document.
fn all_keys(list: &Value) -> Vec<String> {
    let mut keys: Vec<String> = list["_meta"]["hostvars"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_object().unwrap().keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn import(db: &TestDb, path: &Path) {
    ok(cratond(db).args(["import", "ansible"]).arg(path));
}

/// A cat script over a fixed file, next to which `group_vars/` and
/// `host_vars/` apply: the original inventory as Ansible reads it.
fn original_list(dir: &Path, json_file: &Path) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let s = dir.join("original.sh");
    std::fs::write(&s, format!("#!/bin/sh\nexec cat '{}'\n", json_file.display())).unwrap();
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(ansible("ansible-inventory"));
    ansible_env(&mut c, home.path()).env("ANSIBLE_INVENTORY_ENABLED", "script").arg("-i").arg(&s).arg("--list");
    parse(&ok(&mut c))
}

fn precedence_db() -> (TestDb, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.json");
    std::fs::write(&f, include_str!("data/precedence.json")).unwrap();
    let db = TestDb::new(Backend::Sqlite);
    import(&db, &f);
    (db, dir)
}

#[test]
fn precedence_bundles_list_like_craton_inventory() {
    let (db, _dir) = precedence_db();
    let snap = snapshot_of(&db);
    for group in [None, Some("cell_a"), Some("cell_b"), Some("racks"), Some("region_a"), Some("region_b")] {
        let want = script_list(&craton_script(&db, group));
        assert!(!want["_meta"]["hostvars"].as_object().unwrap().is_empty(), "{group:?}");
        for format in FORMATS {
            let dir = build_unpacked(&snap, group, format);
            assert_eq!(bundle_list(dir.path()), want, "{group:?} {format:?}");
        }
    }
    // With only the yaml plugin enabled (no other plugin reads the file).
    let dir = build_unpacked(&snap, None, Format::Tgz);
    let home = tempfile::tempdir().unwrap();
    let mut c = in_bundle("ansible-inventory", dir.path(), home.path());
    c.env("ANSIBLE_INVENTORY_ENABLED", "yaml").arg("--list");
    assert_eq!(parse(&ok(&mut c)), script_list(&craton_script(&db, None)));
}

#[test]
fn precedence_bundle_runs_a_playbook() {
    let (db, _dir) = precedence_db();
    let snap = snapshot_of(&db);
    let script = craton_script(&db, None);
    let want_list = script_list(&script);
    let keys = all_keys(&want_list);
    let want = script_play(&script, &keys);
    assert_eq!(want.len(), 6);
    // Absolute values, from Ansible's own precedence on the original.
    assert_eq!(want["h1"]["k2"], json!("host"));
    assert_eq!(want["h3"]["k1"], json!("role_web"));
    assert_eq!(want["h5"]["unicode"], json!("ünï ✓ 𝄞"));
    assert_eq!(want["h6"]["k4"], json!("__undefined__"));
    for format in FORMATS {
        let dir = build_unpacked(&snap, None, format);
        assert_eq!(bundle_play(dir.path(), &keys), want, "{format:?}");
    }
    // A subtree bundle runs its hosts only, with their whole-inventory values.
    let dir = build_unpacked(&snap, Some("region_b"), Format::Tgz);
    let got = bundle_play(dir.path(), &keys);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["h3", "h4", "h5"]);
    for (h, v) in &got {
        assert_eq!(v, &want[h], "{h}");
    }
}

/// A script JSON inventory with group_vars/ and host_vars/ beside it.
fn write_vars_inventory(dir: &Path) -> PathBuf {
    let inv = json!({
        "all": {"vars": {"tier": "all-inline", "a_only": 1}},
        "region": {"children": ["web", "db"], "vars": {"tier": "region-inline", "rv": "region-inline"}},
        "web": {"hosts": ["w1", "w2"], "vars": {"tier": "web-inline", "wv": "web-inline"}},
        "db": {"hosts": ["d1", "w2"], "vars": {"dv": "db-inline"}},
        "aaa": {"hosts": ["w2", "d1"]},
        "zzz": {"hosts": ["w2", "d1"]},
        "edge.json": {"hosts": ["e1"]},
        "_meta": {"hostvars": {"w1": {"hv": "w1-inline", "ansible_host": "192.0.2.10"}, "e1": {"ev": "e1-inline"}}}
    });
    let f = dir.join("inv.json");
    std::fs::write(&f, serde_json::to_vec_pretty(&inv).unwrap()).unwrap();
    let gv = dir.join("group_vars");
    let hv = dir.join("host_vars");
    std::fs::create_dir_all(&gv).unwrap();
    std::fs::create_dir_all(&hv).unwrap();
    let write = |p: PathBuf, v: Value| std::fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap();
    // A group_vars/all file value beats every inline group value.
    write(gv.join("all.json"), json!({"tier": "all-file", "from_all_file": [1, {"x": null}]}));
    write(gv.join("region.json"), json!({"rv": "region-file", "rf": "region-file"}));
    write(gv.join("web.json"), json!({"wv": "web-file"}));
    // Priority in a vars file does not reorder groups: zzz still beats aaa.
    write(gv.join("aaa.json"), json!({"ansible_group_priority": 50, "probe": "aaa-file"}));
    write(gv.join("zzz.json"), json!({"probe": "zzz-file"}));
    // A name that cannot be a vars file name in a bundle.
    write(gv.join("edge.json"), json!({"edge_file": "edge-file"}));
    write(hv.join("w1.json"), json!({"hv": "w1-file", "hf": true}));
    f
}

#[test]
fn vars_file_tiers_survive_in_bundles() {
    let src = tempfile::tempdir().unwrap();
    let f = write_vars_inventory(src.path());
    let original = original_list(src.path(), &f);
    let db = TestDb::new(Backend::Sqlite);
    import(&db, &f);
    let snap = snapshot_of(&db);
    let whole = script_list(&craton_script(&db, None));
    assert_eq!(whole, original, "craton-inventory differs from the original");
    let hv = &original["_meta"]["hostvars"];
    assert_eq!(hv["w1"]["tier"], json!("all-file"), "group_vars/all beats the inline child group");
    assert_eq!(hv["w2"]["probe"], json!("zzz-file"));
    assert_eq!(hv["w1"]["hv"], json!("w1-file"));

    for group in [None, Some("web"), Some("db"), Some("region"), Some("zzz"), Some("edge.json")] {
        let want = if group.is_none() { whole.clone() } else { script_list(&craton_script(&db, group)) };
        for format in FORMATS {
            let dir = build_unpacked(&snap, group, format);
            assert_eq!(bundle_list(dir.path()), want, "{group:?} {format:?}");
        }
    }

    // The tiers are Ansible's doing inside the bundle, not lifted copies:
    // group_vars/all holds the value and the child group keeps its inline one.
    let dir = build_unpacked(&snap, None, Format::Zip);
    let read = |p: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.path().join(p)).unwrap()).unwrap() };
    assert_eq!(read("hosts/group_vars/all")["tier"], json!("all-file"));
    assert_eq!(read("hosts/group_vars/region")["rv"], json!("region-file"));
    assert_eq!(read("hosts/host_vars/w1"), json!({"hv": "w1-file", "hf": true}));
    assert!(!dir.path().join("hosts/group_vars/edge.json").exists());
    let inv = read("hosts/inventory.json");
    assert_eq!(inv["web"]["vars"]["tier"], json!("web-inline"));
    assert_eq!(inv["edge.json"]["vars"]["edge_file"], json!("edge-file"));
    for (g, body) in inv.as_object().unwrap() {
        for (h, vars) in body["hosts"].as_object().into_iter().flatten() {
            assert!(vars.get("tier").is_none(), "{g}/{h}: tier was lifted onto the host");
        }
    }
    // Ansible runs with the same values.
    let keys = all_keys(&whole);
    let want = script_play(&craton_script(&db, None), &keys);
    assert_eq!(want["w1"]["tier"], json!("all-file"));
    assert_eq!(bundle_play(dir.path(), &keys), want);

    // A subtree without `region`: its file values reach the hosts anyway
    // (lifted onto their top tier, host_vars files).
    let dir = build_unpacked(&snap, Some("web"), Format::Tgz);
    let w2: Value = serde_json::from_slice(&std::fs::read(dir.path().join("hosts/host_vars/w2")).unwrap()).unwrap();
    assert_eq!(w2["rf"], json!("region-file"));
    assert_eq!(bundle_list(dir.path())["_meta"]["hostvars"]["w2"]["rv"], json!("region-file"));
}

#[test]
fn unsafe_and_vault_values_keep_their_meaning() {
    let src = tempfile::tempdir().unwrap();
    let vault = "$ANSIBLE_VAULT;1.1;AES256\n61626364\n";
    let inv = json!({
        "all": {"vars": {"u_all": {"__ansible_unsafe": "{{ lookup('env', 'HOME') }}"}, "templated": "{{ 1 + 1 }}"}},
        "g": {"hosts": ["h1", "h2"], "vars": {"v_group": {"__ansible_vault": vault},
                                              "nested": [{"__ansible_unsafe": "{{ nope }}"}]}},
        "_meta": {"hostvars": {"h1": {"u_host": {"__ansible_unsafe": "{% raw %}x"}}}}
    });
    let f = src.path().join("inv.json");
    std::fs::write(&f, inv.to_string()).unwrap();
    std::fs::create_dir_all(src.path().join("group_vars")).unwrap();
    std::fs::create_dir_all(src.path().join("host_vars")).unwrap();
    std::fs::write(src.path().join("group_vars/all.json"), r#"{"u_file": {"__ansible_unsafe": "{{ z }}"}}"#).unwrap();
    std::fs::write(
        src.path().join("host_vars/h2.json"),
        format!(r#"{{"v_file": {{"__ansible_vault": {}}}}}"#, json!(vault)),
    )
    .unwrap();
    let db = TestDb::new(Backend::Sqlite);
    import(&db, &f);
    let snap = snapshot_of(&db);
    let script = craton_script(&db, None);
    let want = script_list(&script);
    assert_eq!(want["_meta"]["hostvars"]["h2"]["v_file"], json!({"__ansible_vault": vault}));
    for format in FORMATS {
        let dir = build_unpacked(&snap, None, format);
        assert!(dir.path().join("hosts/inventory.json").exists());
        assert!(dir.path().join("hosts/host_vars/h2").exists());
        assert_eq!(bundle_list(dir.path()), want, "{format:?}");
    }

    // Playbook: unsafe strings stay literal, vaulted ones stay vaulted,
    // trusted ones are templated.
    const CHECK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        content: "{{ {'u_all': u_all, 'u_file': u_file, 'u_host': u_host | default('-'), 'nested': nested[0], 'templated': templated, 'v_group': v_group is vault_encrypted, 'v_file': (v_file is vault_encrypted) if inventory_hostname == 'h2' else none} | to_json }}"
"#;
    let play = |mut cmd: Command, play_dir: &Path| -> BTreeMap<String, Value> {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(play_dir.join("play.yml"), CHECK).unwrap();
        cmd.arg(play_dir.join("play.yml"))
            .args(["-c", "local", "-e"])
            .arg(json!({"out_dir": out.path()}).to_string())
            .env("ANSIBLE_PYTHON_INTERPRETER", ansible("python"));
        ok_all(&mut cmd);
        ["h1", "h2"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    serde_json::from_slice(&std::fs::read(out.path().join(format!("{h}.json"))).unwrap()).unwrap(),
                )
            })
            .collect()
    };
    let home = tempfile::tempdir().unwrap();
    let dir = build_unpacked(&snap, None, Format::Tgz);
    let got = play(in_bundle("ansible-playbook", dir.path(), home.path()), dir.path());
    assert_eq!(
        got["h1"],
        json!({"u_all": "{{ lookup('env', 'HOME') }}", "u_file": "{{ z }}", "u_host": "{% raw %}x",
               "nested": "{{ nope }}", "templated": 2, "v_group": true, "v_file": null})
    );
    assert_eq!(got["h2"]["v_file"], json!(true));
    // Through craton-inventory the file-tier values are lifted inline: same result.
    let play_dir = tempfile::tempdir().unwrap();
    assert_eq!(play(via_script("ansible-playbook", &script, home.path()), play_dir.path()), got);
}

fn var(v: Value, tier: Tier) -> Var {
    Var { value: raw_from_value(&v), tier }
}

fn own(pairs: &[(&str, Value, Tier)]) -> OwnVars {
    pairs.iter().map(|(k, v, t)| (k.to_string(), var(v.clone(), *t))).collect()
}

/// Names and shapes the importers do not produce but the store or API may
/// hold: hosts in no group, a group named `plugin` (a key the YAML plugin
/// reserves), path-like, control-character and case-colliding names with
/// file-tier vars.
fn edge_snapshot() -> Snapshot {
    let (i, f) = (Tier::Inventory, Tier::VarsFile);
    let g = |id: i64, name: &str, vars: OwnVars| GroupNode {
        id,
        name: name.into(),
        kind: "group".into(),
        description: None,
        priority: None,
        all_position: None,
        parents: vec![],
        children: vec![],
        hosts: vec![],
        vars,
    };
    let h = |id: i64, name: &str, vars: OwnVars| HostNode {
        id,
        name: name.into(),
        ip_address: None,
        active: true,
        parent: None,
        labels: vec![],
        groups: vec![],
        vars,
    };
    let mut s = Snapshot {
        project: Project { id: 1, name: "edge".into(), revision: 0, created_at: 0, updated_at: 0 },
        all_vars: own(&[("k", json!("all-inline"), i), ("kf", json!("all-file"), f)]),
        groups: vec![
            g(1, "top", own(&[("k", json!("top-inline"), i), ("kf", json!("top-file"), f)])),
            g(2, "plugin", own(&[("k", json!("plugin-inline"), i), ("pf", json!("plugin-file"), f)])),
            g(3, "../../etc/x", own(&[("kf", json!("dots-file"), f), ("k", json!("dots-inline"), i)])),
            g(4, "/abs", own(&[("k", json!("abs-inline"), i)])),
            g(5, "other", own(&[("kf", json!("other-file"), f)])),
        ],
        hosts: vec![
            h(1, "n1", own(&[("hk", json!("n1"), f)])),
            h(2, "../../etc/passwd", own(&[("hk", json!("dots"), f), ("hi", json!(1), i)])),
            h(3, "a\u{1}b", own(&[("hk", json!("ctl"), f)])),
            h(4, "lonely", own(&[("hk", json!("lonely"), i), ("hf", json!("lonely-file"), f)])),
            h(5, "/abs-host", own(&[("hk", json!("abs"), f)])),
            // One file on a case-insensitive file system: both inline.
            h(6, "Case", own(&[("hk", json!("Case"), f)])),
            h(7, "case", own(&[("hk", json!("case"), f)])),
        ],
        depth_memo: Default::default(),
    };
    s.groups[0].priority = Some(3);
    let link = |s: &mut Snapshot, p: usize, c: usize| {
        s.groups[p].children.push(c);
        s.groups[c].parents.push(p);
    };
    let member = |s: &mut Snapshot, g: usize, h: usize| {
        s.groups[g].hosts.push(h);
        s.hosts[h].groups.push(g);
        s.hosts[h].groups.sort();
    };
    // plugin under top and other; the dotted group under top.
    link(&mut s, 0, 1);
    link(&mut s, 0, 2);
    link(&mut s, 4, 1);
    member(&mut s, 1, 0);
    member(&mut s, 1, 1);
    member(&mut s, 2, 1);
    member(&mut s, 2, 2);
    member(&mut s, 3, 4);
    member(&mut s, 4, 0);
    member(&mut s, 4, 5);
    member(&mut s, 4, 6);
    s
}

#[test]
fn edge_names_and_shapes_list_like_the_renderer() {
    let snap = edge_snapshot();
    for group in [None, Some("top"), Some("plugin"), Some("other")] {
        let want = script_list(&rendered_script(&snap, group));
        for format in FORMATS {
            let dir = build_unpacked(&snap, group, format);
            assert_eq!(bundle_list(dir.path()), want, "{group:?} {format:?}");
            // Nothing escaped the directory or got a hostile name.
            let mut found = Vec::new();
            let mut stack = vec![dir.path().to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    found.push(p.strip_prefix(dir.path()).unwrap().display().to_string());
                    if p.is_dir() {
                        stack.push(p);
                    }
                }
            }
            found.sort();
            let allowed = |p: &str| {
                ["ansible.cfg", "hosts", "hosts/inventory.json", "hosts/group_vars", "hosts/host_vars"].contains(&p)
                    || ["all", "top", "plugin", "other"].iter().any(|n| p == format!("hosts/group_vars/{n}"))
                    || ["n1", "lonely"].iter().any(|n| p == format!("hosts/host_vars/{n}"))
            };
            assert!(found.iter().all(|p| allowed(p)), "{group:?} {format:?}: {found:?}");
        }
    }
    let want = script_list(&rendered_script(&snap, None));
    assert_eq!(want["ungrouped"]["hosts"], json!(["lonely"]));
    assert_eq!(want["_meta"]["hostvars"]["n1"]["kf"], json!("top-file"));
    assert_eq!(want["_meta"]["hostvars"]["lonely"]["kf"], json!("all-file"));
    let dir = build_unpacked(&snap, None, Format::Zip);
    let keys = all_keys(&want);
    assert_eq!(bundle_play(dir.path(), &keys), script_play(&rendered_script(&snap, None), &keys));
}

#[test]
fn bundles_are_byte_deterministic() {
    let src = tempfile::tempdir().unwrap();
    let f = write_vars_inventory(src.path());
    let db = TestDb::new(Backend::Sqlite);
    import(&db, &f);
    for format in FORMATS {
        for group in [None, Some("web")] {
            // Two loads from the database: same data, same bytes.
            let a = bundle::build(&snapshot_of(&db), &selection(group), format).unwrap();
            let b = bundle::build(&snapshot_of(&db), &selection(group), format).unwrap();
            assert_eq!(a.bytes, b.bytes, "{group:?} {format:?}");
            assert_eq!(a.etag, b.etag);
            assert!(a.etag.len() == 66 && a.etag.starts_with('"') && a.etag.ends_with('"'), "{}", a.etag);
        }
    }
    let before: Vec<String> =
        FORMATS.iter().map(|&fm| bundle::build(&snapshot_of(&db), &Selection::default(), fm).unwrap().etag).collect();
    // One value changed through an import: a new ETag.
    let text = std::fs::read_to_string(&f).unwrap();
    let changed = src.path().join("changed.json");
    std::fs::write(&changed, text.replace("\"db-inline\"", "\"db-changed\"")).unwrap();
    import(&db, &changed);
    let snap = snapshot_of(&db);
    for (fm, old) in FORMATS.iter().zip(&before) {
        assert_ne!(&bundle::build(&snap, &Selection::default(), *fm).unwrap().etag, old, "{fm:?}");
    }
    // A file-tier value too.
    let mut snap2 = snap.clone();
    let w1 = snap2.host_index("w1").unwrap();
    snap2.hosts[w1].vars["hf"] = var(json!(false), Tier::VarsFile);
    assert_ne!(
        bundle::build(&snap2, &Selection::default(), Format::Tgz).unwrap().etag,
        bundle::build(&snap, &Selection::default(), Format::Tgz).unwrap().etag
    );
}

/// `ansible-inventory --graph --vars`: prints every value with Python's
/// `str`/`repr`, so an int key (`{1: ...}` vs `{'1': ...}`) and a timestamp
/// (`datetime.date(2001, 12, 14)` vs `'2001-12-14'`) show their type.
fn graph_vars(mut cmd: Command) -> String {
    ok(cmd.args(["--graph", "--vars"]))
}

/// Issue 7 item 19: int/bool/null/float mapping keys and YAML timestamps
/// (inline on all, a group and hosts; in group_vars and host_vars files;
/// nested in lists and maps; next to `!unsafe`; a plain map whose key looks
/// like an envelope) keep their Python type through import and a bundle, as
/// real ansible-playbook and `--graph --vars` see them, while `--list`
/// through craton-inventory stays what the original prints.
#[test]
fn non_string_keys_and_timestamps_keep_their_type() {
    let src = tempfile::tempdir().unwrap();
    let inv = src.path().join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  vars:\n    a_ts: 2017-03-07T10:20:49Z\n    a_plain: {k: v}\n  children:\n    g:\n      vars:\n        \
         g_map: {1: [foo], 2: bar}\n      hosts:\n        h1:\n          h_map: {true: yes, null: n, 1.5: f, -3: m}\n          \
         h_date: 2001-12-14\n          h_nested: [{7: x}, 2001-12-14 21:59:43.10 -5]\n          \
         h_unsafe: {1: !unsafe '{{ nope }}'}\n        h2:\n  hosts:\n    lonely:\n      \
         l_ts: 2001-12-14t21:59:43.10-05:00\n      l_big: {1.0e+20: big}\n",
    )
    .unwrap();
    std::fs::create_dir_all(src.path().join("group_vars")).unwrap();
    std::fs::create_dir_all(src.path().join("host_vars")).unwrap();
    std::fs::write(src.path().join("group_vars/g.yml"), "gf_map: {10: ten}\ngf_ts: 2017-03-07\ngf_str: plain\n")
        .unwrap();
    std::fs::write(
        src.path().join("host_vars/h2.yml"),
        "hf: {1: one, __craton_timestamp: sneaky}\nhf_lookalike: {__craton_timestamp: '2017-03-07'}\n",
    )
    .unwrap();
    let keys: Vec<String> = ["a_ts", "a_plain", "g_map", "h_map", "h_date", "h_nested", "h_unsafe", "l_ts", "l_big"]
        .iter()
        .chain(&["gf_map", "gf_ts", "gf_str", "hf", "hf_lookalike"])
        .map(|s| s.to_string())
        .collect();
    // Per host and key: the type, the types of a mapping's keys, of a list's items.
    const TYPES: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        content: >-
          {% set out = {} %}{% for k in probe_keys if k in vars %}{% set v = vars[k] %}{%
          set _ = out.update({k: [v | type_debug,
            (v.keys() | map('type_debug') | list) if v is mapping else none,
            (v | map('type_debug') | list) if (v is iterable and v is not string and v is not mapping) else none,
            (v[0].keys() | map('type_debug') | list) if k == 'h_nested' else none,
            (v[1] | type_debug) if (v is mapping and 1 in v) else none]}) %}{% endfor %}{{ out | to_json }}
"#;
    let types_play = |mut cmd: Command, play_dir: &Path| -> BTreeMap<String, Value> {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(play_dir.join("types.yml"), TYPES).unwrap();
        cmd.arg(play_dir.join("types.yml"))
            .args(["-c", "local", "-e"])
            .arg(json!({"out_dir": out.path(), "probe_keys": keys}).to_string())
            .env("ANSIBLE_PYTHON_INTERPRETER", ansible("python"));
        ok_all(&mut cmd);
        ["h1", "h2", "lonely"]
            .iter()
            .map(|h| {
                let text = std::fs::read(out.path().join(format!("{h}.json"))).unwrap();
                (h.to_string(), serde_json::from_slice(&text).unwrap())
            })
            .collect()
    };
    let home = tempfile::tempdir().unwrap();
    let original_cmd = |tool: &str| {
        let mut c = Command::new(ansible(tool));
        ansible_env(&mut c, home.path()).env("ANSIBLE_INVENTORY_ENABLED", "yaml").arg("-i").arg(&inv);
        c
    };
    let want_types = types_play(original_cmd("ansible-playbook"), src.path());
    // What the original really has, so the probe cannot pass vacuously.
    assert_eq!(want_types["h1"]["g_map"], json!(["dict", ["int", "int"], null, null, "list"]));
    assert_eq!(want_types["h1"]["a_ts"][0], json!("datetime"));
    assert_eq!(want_types["h1"]["h_date"][0], json!("date"));
    assert_eq!(want_types["h1"]["h_map"][1], json!(["bool", "NoneType", "float", "int"]));
    assert_eq!(want_types["h1"]["h_nested"], json!(["list", null, ["dict", "datetime"], ["int"], null]));
    // Reading it would fail (undefined `nope`) if it were templated.
    assert_eq!(want_types["h1"]["h_unsafe"][4], json!("str"));
    assert_eq!(want_types["h2"]["hf"][1], json!(["int", "str"]));
    assert_eq!(want_types["h2"]["hf_lookalike"][0], json!("dict"));
    let want_list = common::ansible_list(&inv, "yaml", false, &[]);
    let want_graph = graph_vars(original_cmd("ansible-inventory"));

    for b in common::backends() {
        let db = TestDb::new(b);
        import(&db, &inv);
        // Script output cannot carry the types: exactly what --list of the original prints.
        assert_eq!(common::ansible_via_craton(&db, false, &[]), want_list, "{b:?}");
        let snap = snapshot_of(&db);
        for format in FORMATS {
            let dir = build_unpacked(&snap, None, format);
            assert_eq!(bundle_list(dir.path()), want_list, "{b:?} {format:?}");
            let bhome = tempfile::tempdir().unwrap();
            assert_eq!(
                graph_vars(in_bundle("ansible-inventory", dir.path(), bhome.path())),
                want_graph,
                "{b:?} {format:?}"
            );
        }
        let dir = build_unpacked(&snap, None, Format::Tgz);
        let bhome = tempfile::tempdir().unwrap();
        assert_eq!(
            types_play(in_bundle("ansible-playbook", dir.path(), bhome.path()), dir.path()),
            want_types,
            "{b:?}"
        );
    }
}
