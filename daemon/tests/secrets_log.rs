//! A planted secret value never reaches the daemon's log, whatever the
//! routes do with it (create, update, read, failed checks, 4xx answers),
//! with the log at debug; and a master key file others can read stops
//! `cratond serve` with a clear error.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fixtures::{backends, cratond, ok, TestDb};
use serde_json::{json, Value};

fn db_conn(db: &TestDb) -> craton::store::DbConn {
    craton::store::connect(&craton::store::DbUrl::parse(&db.url).unwrap()).unwrap()
}

use diesel::RunQueryDsl;

const PLANTED: &str = "PLANTED-d41d8cd98f00b204";

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{base}{path}");
    let auth = format!("Bearer {token}");
    let r = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("DELETE", _) => agent.delete(&url).header("Authorization", &auth).call(),
        ("POST", Some(b)) => agent.post(&url).header("Authorization", &auth).send_json(&b),
        ("PUT", Some(b)) => agent.put(&url).header("Authorization", &auth).send_json(&b),
        _ => unreachable!(),
    };
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn planted_value_never_in_the_log() {
    for b in backends() {
        let db = TestDb::new(b);
        ok(cratond(&db).arg("migrate"));
        let admin =
            ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "admin"])).trim().to_string();
        let reader =
            ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "reader"])).trim().to_string();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        let log = dir.path().join("cratond.log");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = cratond(&db)
            .args(["serve", "--no-sync", "--listen", &format!("127.0.0.1:{port}")])
            .env("CRATON_LOG", "debug")
            .env("CRATON_MASTER_KEY_FILE", &key)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&log).map_or(true, |l| !l.contains("cratond serving")) {
            assert!(
                Instant::now() < deadline,
                "cratond did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (s, body) = call(&base, &admin, "POST", "/v1/hosts", Some(json!({"name": "h1"})));
        assert_eq!(s, 201, "{body}");
        let host: Value = serde_json::from_str(&body).unwrap();
        let p = format!("/v1/hosts/{}/secrets", host["id"]);
        let steps: Vec<(&str, String, Option<Value>, u16)> = vec![
            ("POST", p.clone(), Some(json!({"name": "db_password", "kind": "password", "value": PLANTED})), 201),
            ("POST", p.clone(), Some(json!({"name": "db_password", "kind": "password", "value": PLANTED})), 409),
            (
                "POST",
                p.clone(),
                Some(
                    json!({"name": "bad_pem", "kind": "pem", "value": format!("-----BEGIN PRIVATE KEY-----\n{PLANTED}\n-----END PRIVATE KEY-----\n")}),
                ),
                400,
            ),
            ("POST", p.clone(), Some(json!({"name": "bad_pem", "kind": "certificate", "value": PLANTED})), 400),
            ("POST", p.clone(), Some(json!({"name": "x", "kind": "nope", "value": PLANTED, "extra": PLANTED})), 400),
            ("PUT", format!("{p}/db_password"), Some(json!({"value": format!("{PLANTED}-2")})), 200),
            ("GET", format!("{p}/db_password"), None, 200),
            ("GET", p.clone(), None, 200),
            ("GET", format!("{p}/db_password/value"), None, 200),
        ];
        for (m, path, body, want) in steps {
            let (s, text) = call(&base, &admin, m, &path, body);
            assert_eq!(s, want, "{b:?} {m} {path}: {text}");
            if !path.ends_with("/value") {
                assert!(!text.contains(PLANTED), "{b:?} {m} {path} answers with the value: {text}");
            } else {
                assert!(text.contains(&format!("{PLANTED}-2")), "{text}");
            }
        }
        let (s, text) = call(&base, &reader, "GET", &format!("{p}/db_password/value"), None);
        assert_eq!(s, 403, "{text}");
        let (s, _) = call(&base, &admin, "DELETE", &format!("{p}/db_password"), None);
        assert_eq!(s, 204);
        // Deleting the host deletes its secrets (owner_id has no foreign key).
        let (s, _) = call(&base, &admin, "POST", &p, Some(json!({"name": "left", "kind": "opaque", "value": "v"})));
        assert_eq!(s, 201);
        let (s, _) = call(&base, &admin, "DELETE", &format!("/v1/hosts/{}", host["id"]), None);
        assert_eq!(s, 204);
        let mut c = db_conn(&db);
        let left: i64 = diesel::QueryDsl::count(craton::store::schema::secrets::table).get_result(&mut c).unwrap();
        assert_eq!(left, 0, "{b:?}: the deleted host's secrets are left");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        child.kill().unwrap();
        child.wait().unwrap();
        let mut text = String::new();
        std::fs::File::open(&log).unwrap().read_to_string(&mut text).unwrap();
        assert!(text.contains("request"), "{b:?}: the debug log has no request lines: {text}");
        assert!(!text.contains(PLANTED), "{b:?}: the planted value is in the daemon's log:\n{text}");

        // A key file the group can read: serve refuses to start, naming it.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let o = fixtures::run(
            cratond(&db).args(["serve", "--no-sync", "--listen", "127.0.0.1:0"]).env("CRATON_MASTER_KEY_FILE", &key),
        );
        assert!(!o.status.success());
        let err = fixtures::stderr(&o);
        assert!(err.contains("master.key") && err.contains("chmod 600"), "{err}");
    }
}

/// With the transit provider: values round-trip through a real OpenBao; when
/// it stops, value reads and writes are a clear 503 without the token, and
/// metadata is still served.
#[test]
fn transit_down_is_a_503_and_metadata_still_served() {
    let Some(mut bao) = fixtures::openbao::OpenBao::start() else { return };
    bao.ok(&["secrets", "enable", "transit"]);
    bao.ok(&["write", "-f", "transit/keys/craton"]);
    let db = TestDb::new(backends()[0]);
    ok(cratond(&db).arg("migrate"));
    let admin =
        ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "admin"])).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cratond.log");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = cratond(&db)
        .args(["serve", "--no-sync", "--listen", &format!("127.0.0.1:{port}")])
        .env("CRATON_KEY_PROVIDER", "transit")
        .env("CRATON_VAULT_ADDR", &bao.addr)
        .env("CRATON_VAULT_TOKEN", &bao.token)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&log).map_or(true, |l| !l.contains("cratond serving")) {
        assert!(Instant::now() < deadline, "cratond did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = "/v1/projects/1/secrets";
    let (s, text) =
        call(&base, &admin, "POST", p, Some(json!({"name": "api_key", "kind": "opaque", "value": PLANTED})));
    assert_eq!(s, 201, "{text}");
    let (s, text) = call(&base, &admin, "GET", &format!("{p}/api_key/value"), None);
    assert_eq!((s, serde_json::from_str::<Value>(&text).unwrap()["value"].clone()), (200, json!(PLANTED)));
    let stored: String = diesel::QueryDsl::select(
        craton::store::schema::secret_data_keys::table,
        craton::store::schema::secret_data_keys::wrapped,
    )
    .first(&mut db_conn(&db))
    .unwrap();
    assert!(stored.starts_with("vault:v1:"), "{stored}");

    bao.stop();
    let (s, text) = call(&base, &admin, "GET", &format!("{p}/api_key/value"), None);
    assert_eq!(s, 503, "{text}");
    assert!(text.contains("unavailable") && !text.contains(&bao.token), "{text}");
    let (s, text) = call(&base, &admin, "PUT", &format!("{p}/api_key"), Some(json!({"value": "v2"})));
    assert_eq!(s, 503, "{text}");
    let (s, text) = call(&base, &admin, "GET", p, None);
    assert_eq!(s, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["secrets"][0]["version"], 1);
    // The inventory without secrets is still served; with them, a clear 503.
    let (s, text) = call(&base, &admin, "GET", "/v1/inventory", None);
    assert_eq!(s, 200, "{text}");
    let mut r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&format!("{base}/v1/inventory"))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("X-Craton-Vault-Password", "pw")
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 503, "{text}");
    assert!(text.contains("unavailable") && !text.contains(PLANTED), "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(PLANTED) && !text.contains(&bao.token), "the log holds the value or the token:\n{text}");
}
