//! `cratond serve --auth keystone` against a real Keystone (the PyPI
//! package `keystone` in .venv-keystone, which tests/run.sh installs): its
//! WSGI app on a free loopback port over a SQLite database in a temp dir,
//! bootstrapped by `keystone-manage bootstrap`, started once per test
//! binary and stopped when the binary exits. Projects, users and role
//! assignments are made through Keystone's own API with the bootstrap
//! admin's token, and users get their tokens from Keystone as any client
//! would. Only the SQLite backend: the authentication path does the same
//! database work on every backend (one project lookup per new token).
//!
//! Token validations are counted in the access log `tests/keystone/serve.py`
//! writes (one `GET /v3/auth/tokens 200` line per validation).

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fixtures::{ansible, cratond, ok, repo_root, Backend, Server, TestDb};
use serde_json::{json, Value};
use upstream::Upstream;

const ADMIN_PASSWORD: &str = "admin-pw";
const SERVICE_PASSWORD: &str = "service-pw";
const USER_PASSWORD: &str = "user-pw";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn venv() -> PathBuf {
    let bin = repo_root().join(".venv-keystone/bin");
    assert!(
        bin.join("keystone-manage").exists(),
        "{} is missing: tests/run.sh installs keystone into .venv-keystone \
         (python3 -m venv .venv-keystone && .venv-keystone/bin/pip install keystone==30.0.0)",
        bin.join("keystone-manage").display()
    );
    bin
}

/// One Keystone WSGI server process (`tests/keystone/serve.py`).
struct KeystoneServer {
    child: Child,
    base: String,
    access_log: PathBuf,
}

impl Drop for KeystoneServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl KeystoneServer {
    /// Serves `conf` on a free port; returns once `/v3` answers.
    fn start(dir: &Path, conf: &Path) -> KeystoneServer {
        let port = free_port();
        let access_log = dir.join(format!("access-{port}.log"));
        let child = Command::new(venv().join("python"))
            .arg(repo_root().join("tests/keystone/serve.py"))
            .arg(port.to_string())
            .arg(conf)
            .arg(&access_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("keystone-{port}.err"))).unwrap())
            .spawn()
            .unwrap();
        let mut server = KeystoneServer { child, base: format!("http://127.0.0.1:{port}/v3"), access_log };
        let started = Instant::now();
        loop {
            if let Ok(r) = agent().get(&server.base).call() {
                if r.status() == 200 {
                    break;
                }
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                let err = std::fs::read_to_string(dir.join(format!("keystone-{port}.err"))).unwrap_or_default();
                panic!("keystone exited ({status}) before serving:\n{err}");
            }
            assert!(started.elapsed() < Duration::from_secs(90), "keystone did not answer within 90 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("keystone on {} ready in {:.1} s", server.base, started.elapsed().as_secs_f64());
        server
    }

    /// Token validations this server answered so far.
    fn validations(&self) -> usize {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "GET /v3/auth/tokens 200")
            .count()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bootstrapped Keystone shared by the tests of this binary.
struct Keystone {
    server: Mutex<KeystoneServer>,
    base: String,
    dir: tempfile::TempDir,
    conf: PathBuf,
}

static KEYSTONE: OnceLock<Keystone> = OnceLock::new();

/// At exit of the test binary: statics are never dropped.
extern "C" fn stop_keystone() {
    if let Some(k) = KEYSTONE.get() {
        if let Ok(mut s) = k.server.lock() {
            s.stop();
        }
    }
}

fn keystone() -> &'static Keystone {
    KEYSTONE.get_or_init(|| {
        let bin = venv();
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let conf = d.join("keystone.conf");
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nuse_stderr = true\n[database]\nconnection = sqlite:///{}\n\
                 [fernet_tokens]\nkey_repository = {}\n[credential]\nkey_repository = {}\n\
                 [token]\nprovider = fernet\nexpiration = 3600\n",
                d.join("keystone.db").display(),
                d.join("fernet-keys").display(),
                d.join("credential-keys").display()
            ),
        )
        .unwrap();
        let (uid, gid) = (unsafe { libc::getuid() }.to_string(), unsafe { libc::getgid() }.to_string());
        let manage = |args: &[&str]| {
            ok(Command::new(bin.join("keystone-manage")).arg("--config-file").arg(&conf).args(args));
        };
        manage(&["db_sync"]);
        manage(&["fernet_setup", "--keystone-user", &uid, "--keystone-group", &gid]);
        manage(&["credential_setup", "--keystone-user", &uid, "--keystone-group", &gid]);
        manage(&["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-region-id", "RegionOne"]);
        eprintln!("keystone bootstrapped in {:.1} s", started.elapsed().as_secs_f64());
        let server = KeystoneServer::start(d, &conf);
        let base = server.base.clone();
        let k = Keystone { server: Mutex::new(server), base, dir, conf };
        unsafe { libc::atexit(stop_keystone) };
        k.populate();
        k
    })
}

/// A user's token for `project` (or unscoped), from Keystone.
fn issue(base: &str, user: &str, password: &str, project: Option<&str>) -> String {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}});
    if let Some(p) = project {
        auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
    }
    let r = agent().post(format!("{base}/auth/tokens")).send_json(json!({ "auth": auth })).unwrap();
    assert_eq!(r.status(), 201, "token for {user} on {project:?}");
    r.headers()["x-subject-token"].to_str().unwrap().to_string()
}

impl Keystone {
    fn admin(&self) -> String {
        issue(&self.base, "admin", ADMIN_PASSWORD, Some("admin"))
    }

    fn post(&self, admin: &str, path: &str, body: Value) -> Value {
        let r = agent().post(format!("{}{path}", self.base)).header("X-Auth-Token", admin).send_json(body).unwrap();
        assert_eq!(r.status(), 201, "POST {path}");
        r.into_body().read_json().unwrap()
    }

    fn role_id(&self, admin: &str, name: &str) -> String {
        let r = agent().get(format!("{}/roles?name={name}", self.base)).header("X-Auth-Token", admin).call().unwrap();
        let doc: Value = r.into_body().read_json().unwrap();
        doc["roles"][0]["id"].as_str().unwrap_or_else(|| panic!("no role {name}")).to_string()
    }

    /// Projects `service`, `web`, `ops` and `lab` (no Craton project of
    /// that name); the service user `craton` (role `service`), and users
    /// `web-reader`, `web-member`, `web-admin`, `web-observer` (a role no
    /// table maps), `ops-member`, `lab-member`.
    fn populate(&self) {
        let admin = self.admin();
        let mut projects = std::collections::HashMap::new();
        for p in ["service", "web", "ops", "lab"] {
            let doc = self.post(&admin, "/projects", json!({"project": {"name": p, "domain_id": "default"}}));
            projects.insert(p, doc["project"]["id"].as_str().unwrap().to_string());
        }
        self.post(&admin, "/roles", json!({"role": {"name": "observer"}}));
        let users = [
            ("craton", SERVICE_PASSWORD, "service", "service"),
            ("web-reader", USER_PASSWORD, "web", "reader"),
            ("web-member", USER_PASSWORD, "web", "member"),
            ("web-admin", USER_PASSWORD, "web", "admin"),
            ("web-observer", USER_PASSWORD, "web", "observer"),
            ("ops-member", USER_PASSWORD, "ops", "member"),
            ("lab-member", USER_PASSWORD, "lab", "member"),
        ];
        for (name, password, project, role) in users {
            let doc = self.post(
                &admin,
                "/users",
                json!({"user": {"name": name, "password": password, "domain_id": "default"}}),
            );
            let user = doc["user"]["id"].as_str().unwrap();
            let role = self.role_id(&admin, role);
            let r = agent()
                .put(format!("{}/projects/{}/users/{user}/roles/{role}", self.base, projects[project]))
                .header("X-Auth-Token", &admin)
                .send_empty()
                .unwrap();
            assert_eq!(r.status(), 204, "role for {name}");
        }
    }

    fn token(&self, user: &str, project: &str) -> String {
        issue(&self.base, user, USER_PASSWORD, Some(project))
    }

    fn revoke(&self, token: &str) {
        let r = agent()
            .delete(format!("{}/auth/tokens", self.base))
            .header("X-Auth-Token", &self.admin())
            .header("X-Subject-Token", token)
            .call()
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    /// A Keystone process of its own for one test, over the shared
    /// database and keys: its access log counts only that test's
    /// validations, and stopping it leaves the shared one to the others.
    fn own_server(&self) -> KeystoneServer {
        KeystoneServer::start(self.dir.path(), &self.conf)
    }
}

/// A Craton database with projects `web` and `ops` (a group each) and a
/// root token.
struct Craton {
    db: TestDb,
    root: String,
    scratch: tempfile::TempDir,
    /// A playbook repository project `web` may run from.
    repo: Upstream,
}

impl Craton {
    fn new() -> Craton {
        let db = TestDb::new(Backend::Sqlite);
        ok(cratond(&db).arg("migrate"));
        let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
        let repo = Upstream::new();
        repo.write("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - ping:\n");
        repo.commit_push("site");
        Craton { db, root, scratch: tempfile::tempdir().unwrap(), repo }
    }

    /// `cratond serve --auth keystone` with `[keystone]` pointing at
    /// `url`, caching `cache_s` seconds.
    fn serve(&self, url: &str, cache_s: u64) -> Server {
        let conf = self.scratch.path().join(format!("craton-{cache_s}-{}.toml", free_port()));
        std::fs::write(
            &conf,
            format!(
                "[keystone]\nurl = \"{url}\"\nusername = \"craton\"\nproject_name = \"service\"\ncache_s = {cache_s}\n\
                 [projects.web]\ngit_url_allow = [\"{}/**\"]\n",
                self.repo.dir.path().display()
            ),
        )
        .unwrap();
        let dir = |name: &str| {
            let d = self.scratch.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            d.to_str().unwrap().to_string()
        };
        let playbook = ansible("ansible-playbook");
        Server::start(
            &self.db,
            &["--auth", "keystone", "--no-sync"],
            &[
                ("CRATON_CONFIG", conf.to_str().unwrap()),
                ("CRATON_KEYSTONE_PASSWORD", SERVICE_PASSWORD),
                ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap()),
                ("CRATON_RUNS_DIR", &dir("runs")),
                ("CRATON_GIT_CACHE_DIR", &dir("git")),
                ("HOME", &dir("home")),
            ],
        )
    }
}

/// `(status, body)` of a request with `X-Auth-Token: token`.
fn call(server: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", server.base);
    let a = agent();
    let r = match (method, body) {
        ("GET", _) => a.get(&url).header("X-Auth-Token", token).call(),
        ("POST", Some(b)) => a.post(&url).header("X-Auth-Token", token).send_json(b),
        ("DELETE", _) => a.delete(&url).header("X-Auth-Token", token).call(),
        (m, _) => panic!("{m}"),
    }
    .unwrap();
    let status = r.status().as_u16();
    let text = r.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn setup_projects(server: &Server, root: &str) {
    for (p, g) in [("web", "webservers"), ("ops", "monitoring")] {
        assert_eq!(call(server, "POST", "/v1/projects", root, Some(json!({"name": p}))).0, 201, "project {p}");
        let path = format!("/v1/groups?project={p}");
        assert_eq!(call(server, "POST", &path, root, Some(json!({"name": g}))).0, 201, "group {g}");
    }
}

fn group_names(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_string()).collect()
}

/// One test at a time: their Keystone processes share one SQLite file, and
/// concurrent writers there made a token issue fail now and then.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn keystone_roles_and_projects_map_to_craton_grants_beside_craton_tokens() {
    let _serial = serial();
    let ks = keystone();
    let own = ks.own_server();
    let craton = Craton::new();
    let server = craton.serve(&own.base, 300);
    setup_projects(&server, &craton.root);

    // reader: reads its project, cannot write.
    let reader = ks.token("web-reader", "web");
    let (s, body) = call(&server, "GET", "/v1/groups", &reader, None);
    assert_eq!((s, group_names(&body)), (200, vec!["webservers".to_string()]), "{body}");
    let (s, body) = call(&server, "POST", "/v1/groups", &reader, Some(json!({"name": "nope"})));
    assert_eq!(s, 403, "{body}");

    // member -> editor: writes groups, cannot manage tokens.
    let member = ks.token("web-member", "web");
    assert_eq!(call(&server, "POST", "/v1/groups", &member, Some(json!({"name": "app"}))).0, 201);
    let (s, body) = call(&server, "POST", "/v1/tokens", &member, Some(json!({"role": "reader"})));
    assert_eq!(s, 403, "{body}");
    // A run records the Keystone user and project as its starter.
    let host = json!({"name": "h1", "groups": ["webservers"]});
    assert_eq!(call(&server, "POST", "/v1/hosts", &member, Some(host)).0, 201);
    let run = json!({"playbook": "site.yml", "repo": craton.repo.url(), "ref": "main", "group": "webservers"});
    let (s, body) = call(&server, "POST", "/v1/runs", &member, Some(run));
    assert_eq!(s, 201, "{body}");
    let by = body["created_by"].as_str().unwrap();
    assert!(
        by.starts_with("keystone user web-member (") && by.contains("project web (") && by.ends_with("(editor)"),
        "{by}"
    );

    // admin: makes a Craton token of its project, which then works too.
    let admin = ks.token("web-admin", "web");
    let (s, body) = call(&server, "POST", "/v1/tokens", &admin, Some(json!({"role": "reader"})));
    assert_eq!(s, 201, "{body}");
    let craton_reader = body["token"].as_str().unwrap().to_string();
    let (s, body) = call(&server, "GET", "/v1/groups", &craton_reader, None);
    assert_eq!((s, group_names(&body).len()), (200, 2), "{body}");

    // A web user sees nothing of ops, exactly as with Craton tokens.
    let (s, body) = call(&server, "GET", "/v1/groups?project=ops", &admin, None);
    assert_eq!(s, 404, "{body}");
    let (s, _) = call(&server, "GET", "/v1/groups?project=ops", &craton_reader, None);
    assert_eq!(s, 404);
    let ops = ks.token("ops-member", "ops");
    let (s, body) = call(&server, "GET", "/v1/groups", &ops, None);
    assert_eq!((s, group_names(&body)), (200, vec!["monitoring".to_string()]), "{body}");

    // Refusals, each naming why.
    let (s, body) = call(&server, "GET", "/v1/groups", "gAAAAABnot-a-real-token", None);
    assert_eq!(s, 401, "{body}");
    let observer = ks.token("web-observer", "web");
    let (s, body) = call(&server, "GET", "/v1/groups", &observer, None);
    assert!(s == 403 && message(&body).contains("observer"), "{s} {body}");
    let lab = ks.token("lab-member", "lab");
    let (s, body) = call(&server, "GET", "/v1/groups", &lab, None);
    assert!(s == 403 && message(&body).contains("\"lab\""), "{s} {body}");
    let unscoped = issue(&ks.base, "web-member", USER_PASSWORD, None);
    let (s, body) = call(&server, "GET", "/v1/groups", &unscoped, None);
    assert!(s == 403 && message(&body).contains("unscoped"), "{s} {body}");

    // craton_ tokens never reach Keystone: a bad one is a 401 without a
    // validation.
    let before = own.validations();
    let (s, _) = call(&server, "GET", "/v1/groups?project=web", &craton.root, None);
    assert_eq!(s, 200);
    let (s, _) = call(&server, "GET", "/v1/groups", "craton_0000", None);
    assert_eq!(s, 401);
    assert_eq!(own.validations(), before, "craton_ tokens are not sent to Keystone");
}

#[test]
fn a_revoked_keystone_token_works_until_its_cache_entry_expires() {
    let _serial = serial();
    let ks = keystone();
    let own = ks.own_server();
    let craton = Craton::new();
    let cached = craton.serve(&own.base, 300);
    let uncached = craton.serve(&own.base, 0);
    setup_projects(&cached, &craton.root);
    let member = ks.token("web-member", "web");
    assert_eq!(call(&cached, "GET", "/v1/groups", &member, None).0, 200);
    assert_eq!(call(&uncached, "GET", "/v1/groups", &member, None).0, 200);

    // Latency: cache_s=0 asks Keystone on every request.
    let time = |server: &Server| {
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            assert_eq!(call(server, "GET", "/v1/groups", &member, None).0, 200);
        }
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    };
    let before = own.validations();
    let (hit, miss) = (time(&cached), time(&uncached));
    assert_eq!(own.validations() - before, 20, "cache_s=0: one validation per request, cache_s=300: none");
    eprintln!("GET /v1/groups with a Keystone token: cached {hit:.2} ms, validated by Keystone {miss:.2} ms");

    ks.revoke(&member);
    let (s, body) = call(&uncached, "GET", "/v1/groups", &member, None);
    assert_eq!(s, 401, "cache_s=0 refuses a revoked token at once: {body}");
    let (s, body) = call(&cached, "GET", "/v1/groups", &member, None);
    assert_eq!(s, 200, "cache_s=300 believes its cached validation (documented): {body}");
}

#[test]
fn cached_tokens_survive_keystone_going_away_and_new_ones_get_503() {
    let _serial = serial();
    let ks = keystone();
    let mut own = ks.own_server();
    let craton = Craton::new();
    let server = craton.serve(&own.base, 300);
    setup_projects(&server, &craton.root);
    let reader = ks.token("web-reader", "web");
    for _ in 0..5 {
        let (s, body) = call(&server, "GET", "/v1/groups", &reader, None);
        assert_eq!(s, 200, "{body}");
    }
    assert_eq!(own.validations(), 1, "five requests, one validation");

    let fresh = ks.token("web-member", "web");
    own.stop();
    let (s, body) = call(&server, "GET", "/v1/groups", &reader, None);
    assert_eq!(s, 200, "cached: {body}");
    let (s, body) = call(&server, "GET", "/v1/groups", &fresh, None);
    assert!(s == 503 && message(&body).contains("unreachable"), "{s} {body}");
    assert!(!message(&body).contains(&fresh), "the token is not echoed");
}
