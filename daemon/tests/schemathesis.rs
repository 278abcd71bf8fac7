//! schemathesis (property-based API testing, from PyPI; tests/run.sh
//! installs it into .venv) against a live `cratond serve` on loopback, on
//! SQLite and PostgreSQL, once with a project admin's token and once with
//! a reader's: any 5xx, or any answer whose status, content type, headers
//! or body the OpenAPI document does not describe, fails the test; so do a
//! method the document does not list that is not answered 405 with a
//! correct `Allow` header.
//!
//! Bounded: `--max-examples` per operation and `--max-time` per run keep
//! the whole test near a minute and a half on two cores
//! (`CRATON_TEST_HEAVY=1`: twice as long).
//!
//! Excluded: `DELETE /v1/tokens/{id}`, which can revoke the very token the
//! run uses and turn every later request into a 401. Its answers are
//! covered by api_tenancy.rs and api_errors.rs.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::process::Command;
use std::time::Instant;

use fixtures::{ansible, backends, cratond, ok, run, stderr, stdout, Backend, Server, TestDb};
use serde_json::{json, Value};

/// Checks that fail the run; all of schemathesis' conformance checks.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance";

fn token(db: &TestDb, role: &str) -> String {
    ok(cratond(db).args(["token", "create", "--project", "default", "--role", role])).trim().to_string()
}

/// The precedence fixture (groups, hosts, variables at every level) and a
/// config ref, so that ids the run guesses hit real objects.
fn seed(db: &TestDb, base: &str, admin: &str) {
    let f = fixtures::repo_root().join("tests/data/precedence.json");
    ok(cratond(db).args(["import", "ansible"]).arg(f));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent
        .post(format!("{base}/v1/config-refs"))
        .header("Authorization", format!("Bearer {admin}"))
        .send_json(json!({"url": "https://example.com/craton/vars.git", "ref": "main", "path": "vars"}))
        .unwrap();
    // Only coverage depends on it: a URL policy that refuses the host
    // leaves the ref routes answering 404, which the run still checks.
    if r.status() != 201 {
        eprintln!("seeding a config ref: {}", r.status());
    }
    let groups: Value = agent
        .get(format!("{base}/v1/groups"))
        .header("Authorization", format!("Bearer {admin}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert!(groups["items"].as_array().is_some_and(|g| g.len() > 2), "seeded groups: {groups}");
}

fn schemathesis(base: &str, token: &str, seconds: u32) -> std::process::Output {
    let mut c = Command::new(ansible("schemathesis"));
    c.args(["run", &format!("{base}/v1/openapi.json")])
        .args(["--checks", CHECKS])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--exclude-path", "/v1/tokens/{id}"])
        .args(["--max-examples", "25", "--max-time", &seconds.to_string(), "--workers", "1"])
        .args(["--request-timeout", "10", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "");
    // Its .hypothesis database and reports go to a scratch directory.
    let scratch = tempfile::tempdir().unwrap();
    c.current_dir(scratch.path());
    run(&mut c)
}

#[test]
fn schemathesis_finds_no_mismatch() {
    let chosen: Vec<Backend> =
        backends().into_iter().filter(|b| matches!(b, Backend::Sqlite | Backend::Postgres)).collect();
    assert!(!chosen.is_empty(), "CRATON_TEST_BACKENDS lists neither sqlite nor postgres");
    for b in chosen {
        let db = TestDb::new(b);
        ok(cratond(&db).arg("migrate"));
        let admin = token(&db, "admin");
        let reader = token(&db, "reader");
        let server = Server::start(&db, &["--no-sync"], &[]);
        seed(&db, &server.base, &admin);
        // CRATON_TEST_HEAVY=1 doubles the time budget of each run.
        let scale = if fixtures::heavy() { 2 } else { 1 };
        for (who, t, seconds) in [("admin", &admin, 25 * scale), ("reader", &reader, 12 * scale)] {
            let started = Instant::now();
            let out = schemathesis(&server.base, t, seconds);
            let text = stdout(&out);
            eprintln!("{b:?} {who}: schemathesis ran {:.0?}", started.elapsed());
            assert!(
                out.status.success(),
                "{b:?}, {who} token: schemathesis found mismatches:\n{text}\n{}",
                stderr(&out)
            );
            let summary = text.lines().filter(|l| l.contains("generated")).collect::<Vec<_>>().join("\n");
            assert!(summary.contains("passed"), "{b:?} {who}: no test case ran:\n{text}");
            eprintln!("{b:?} {who}: {summary}");
        }
    }
}
