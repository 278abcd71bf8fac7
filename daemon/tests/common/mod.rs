//! Router tests without a socket: a fresh database per test on each backend,
//! the real `app()` over it, and requests sent with `oneshot`.
//!
//! Backends come from `CRATON_TEST_BACKENDS` (default `sqlite,postgres,mysql`),
//! as in the workspace's own tests; one that is listed but unreachable fails
//! the test rather than skipping it.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use craton::store::tokens::{self, Role};
use craton::store::{self, DbConn, DbUrl};
use cratond::api::{app, Limits};
use cratond::state::{AppState, AuthMode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[path = "../../../tests/common/db.rs"]
mod db;
pub use db::*;

/// A response, its body parsed as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The `field`s of a 400's details, in order.
    pub fn detail_fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|d| d.iter().map(|e| e["field"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }

    /// The `name`s of a list's items.
    pub fn names(&self) -> Vec<String> {
        self.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {}", self.text))
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The router over a fresh, migrated database. Fields drop in order, so
/// the pool goes before the database.
pub struct Harness {
    pub app: Router,
    pub state: AppState,
    pub url: DbUrl,
    pub db: TestDb,
    /// The runner's work directories and git cache.
    pub scratch: tempfile::TempDir,
}

/// The workspace venv's ansible-playbook (tests/run.sh installs it).
pub fn ansible_playbook() -> String {
    format!("{}/../.venv/bin/ansible-playbook", env!("CARGO_MANIFEST_DIR"))
}

impl Harness {
    pub fn new(backend: Backend) -> Harness {
        Harness::with_clock(backend, std::sync::Arc::new(craton::clock::SystemClock))
    }

    /// A harness whose API (and runner) read time from `clock`.
    pub fn with_clock(backend: Backend, clock: std::sync::Arc<dyn craton::clock::Clock>) -> Harness {
        let db = TestDb::new(backend);
        let url = DbUrl::parse(&db.url).unwrap();
        store::migrate(&mut store::connect(&url).unwrap()).unwrap();
        let pool = store::pool::build(&url, 4).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        // A runner, so that run routes answer as in `cratond serve`; the
        // sync hub only lends it the git cache and the repository policy.
        let sync = cratond::sync::SyncHub::new(cratond::sync::SyncSettings::with_cache(scratch.path().join("git")));
        let settings = cratond::runner::RunSettings::with(
            scratch.path().join("runs"),
            ansible_playbook(),
            sync.settings().holder.clone(),
        );
        let runs = cratond::runner::RunHub::new(settings, sync).unwrap();
        // Secrets: a master key of this harness's own, not one under $HOME.
        let keys = craton::secrets::FileKeyProvider::open_or_create(&scratch.path().join("master.key")).unwrap();
        let state = AppState::new(pool, AuthMode::Tokens)
            .with_runs(runs)
            .with_key_provider(std::sync::Arc::new(keys))
            .with_clock(clock);
        Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch }
    }

    pub fn conn(&self) -> DbConn {
        store::connect(&self.url).unwrap()
    }

    /// A new token: of `project` (created if missing) with `role`, or root.
    pub fn token(&self, project: Option<&str>, role: Role) -> String {
        self.token_with_id(project, role).1
    }

    pub fn token_with_id(&self, project: Option<&str>, role: Role) -> (i64, String) {
        let mut c = self.conn();
        let pid = project.map(|p| store::ensure_project(&mut c, p).unwrap().id);
        tokens::create(&mut c, pid, role, "test").unwrap()
    }

    pub async fn raw(&self, method: &str, uri: &str, token: Option<&str>, body: Vec<u8>) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let resp = self.app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let is_json = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
        let body = if !is_json {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {text}"))
        };
        Resp { status, headers, body, text }
    }

    pub async fn call(&self, method: &str, uri: &str, token: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        self.raw(method, uri, Some(token), bytes).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call("GET", uri, token, None).await
    }

    /// A call that must answer `status`; returns the response.
    pub async fn expect(&self, status: u16, method: &str, uri: &str, token: &str, body: Option<Value>) -> Resp {
        let r = self.call(method, uri, token, body).await;
        assert_eq!(r.status.as_u16(), status, "{:?}: {method} {uri}: {}", self.db.backend, r.text);
        if status >= 400 {
            assert_eq!(r.body["error"]["status"], status, "error shape: {}", r.text);
            assert!(r.body["error"]["message"].is_string(), "error shape: {}", r.text);
        }
        r
    }

    /// Creates an object (201) and returns its id.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> i64 {
        let r = self.expect(201, "POST", path, token, Some(body)).await;
        r.body["id"].as_i64().unwrap()
    }
}
