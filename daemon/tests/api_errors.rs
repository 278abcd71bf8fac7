//! Every refusal answers the one JSON error body, and the OpenAPI document
//! describes what the router really does: its bodies, query parameters,
//! statuses, content types and security. (schemathesis.rs drives a live
//! daemon with generated requests; these are the findings pinned down.)

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{backends, Harness, Resp};
use craton::store::tokens::Role;
use cratond::api::ROUTES;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A request with any method, headers and body bytes.
async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = h.app.clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

/// The JSON error body with `status`.
fn assert_error(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(ct, "application/json", "{what}: content type of {}", r.text);
    assert_eq!(r.body["error"]["status"], status, "{what}: {}", r.text);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", r.text);
}

fn sqlite() -> Harness {
    Harness::new(common::Backend::Sqlite)
}

#[tokio::test]
async fn method_not_allowed_answers_json_with_allow() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    for (method, uri) in
        [("PATCH", "/v1/tokens"), ("OPTIONS", "/v1/groups"), ("POST", "/healthz"), ("PUT", "/v1/tokens/1")]
    {
        let r = send(&h, method, uri, Some(&root), &[], b"").await;
        assert_error(&r, 405, &format!("{method} {uri}"));
        assert!(r.headers.get("allow").is_some(), "{method} {uri}: no Allow header");
    }
}

#[tokio::test]
async fn unknown_route_answers_json_404() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    for uri in ["/v2/groups", "/v1/nothing", "/"] {
        assert_error(&send(&h, "GET", uri, Some(&root), &[], b"").await, 404, uri);
    }
}

#[tokio::test]
async fn non_utf8_path_segment_answers_json_400() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    for (method, uri) in [
        ("GET", "/v1/groups/%FF"),
        ("GET", "/v1/inventory/hosts/%C3%28"),
        ("GET", "/v1/inventory/%FF.tgz"),
        ("DELETE", "/v1/tokens/%FF"),
        ("PUT", "/v1/hosts/%FE/variables"),
    ] {
        let r = send(&h, method, uri, Some(&root), &[], b"").await;
        assert_error(&r, 400, &format!("{method} {uri}"));
        assert!(!r.detail_fields().is_empty(), "{method} {uri}: the parameter is not named: {}", r.text);
    }
}

#[tokio::test]
async fn non_integer_token_id_answers_json_404() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    // Like every other id route: nothing has such an id.
    assert_error(&send(&h, "DELETE", "/v1/tokens/abc", Some(&root), &[], b"").await, 404, "tokens/abc");
    assert_error(&send(&h, "DELETE", "/v1/groups/abc", Some(&root), &[], b"").await, 404, "groups/abc");
}

#[tokio::test]
async fn token_routes_reject_query_parameters() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    let before = h.get("/v1/tokens", &root).await.body["tokens"].as_array().unwrap().len();
    let body = serde_json::to_vec(&json!({"role": "reader", "project": "default"})).unwrap();
    let r =
        send(&h, "POST", "/v1/tokens?project=bravo", Some(&root), &[("content-type", "application/json")], &body).await;
    assert_error(&r, 400, "POST /v1/tokens?project=");
    assert_eq!(r.detail_fields(), ["project"], "{}", r.text);
    let after = h.get("/v1/tokens", &root).await.body["tokens"].as_array().unwrap().len();
    assert_eq!(before, after, "a token was created despite the 400");

    let (id, reader) = h.token_with_id(Some("default"), Role::Reader);
    let r = send(&h, "DELETE", &format!("/v1/tokens/{id}?force=true&x=1"), Some(&root), &[], b"").await;
    assert_error(&r, 400, "DELETE /v1/tokens/{id}?force");
    assert_eq!(r.detail_fields(), ["force", "x"], "{}", r.text);
    assert_eq!(h.get("/v1/groups", &reader).await.status, 200, "the token was revoked despite the 400");
}

#[tokio::test]
async fn service_routes_reject_query_parameters() {
    let h = sqlite();
    for uri in ["/healthz?verbose=1", "/metrics?x=", "/v1/openapi.json?format=yaml"] {
        let r = send(&h, "GET", uri, None, &[], b"").await;
        assert_error(&r, 400, uri);
        assert_eq!(r.detail_fields().len(), 1, "{uri}: {}", r.text);
    }
}

#[tokio::test]
async fn wrong_content_type_answers_415() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    let body = br#"{"name": "web"}"#;
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
        let r = send(&h, "POST", "/v1/groups", Some(&root), &[("content-type", ct)], body).await;
        assert_error(&r, 415, ct);
    }
    let r =
        send(&h, "POST", "/v1/tokens", Some(&root), &[("content-type", "text/plain")], br#"{"role":"reader"}"#).await;
    assert_error(&r, 415, "tokens");
    assert_eq!(h.get("/v1/groups?name=web", &root).await.names(), Vec::<String>::new(), "a group was created");
    // JSON with parameters, and a body sent without any Content-Type, are read.
    let json_ct = [("content-type", "application/json; charset=utf-8")];
    assert_eq!(send(&h, "POST", "/v1/groups", Some(&root), &json_ct, body).await.status, 201);
    let r = send(&h, "POST", "/v1/groups", Some(&root), &[], br#"{"name": "db"}"#).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // An empty body is no body, whatever its declared type.
    let gid = h.get("/v1/groups?name=db", &root).await.body["items"][0]["id"].as_i64().unwrap();
    let r = send(&h, "POST", "/v1/config-refs/999/sync", Some(&root), &[("content-type", "text/plain")], b"").await;
    assert_error(&r, 404, "sync with an empty body");
    let r = send(&h, "DELETE", &format!("/v1/groups/{gid}"), Some(&root), &[("content-type", "text/plain")], b"").await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// PostgreSQL text cannot hold NUL: such names and keys were 500s there.
#[tokio::test]
async fn nul_in_names_and_keys_answers_400() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let hid = h.create("/v1/hosts", &root, json!({"name": "web1"})).await;
        let ct = [("content-type", "application/json")];
        for (method, uri, body, field) in [
            ("GET", "/v1/groups?project=a%00b".to_string(), json!(null), "project"),
            ("GET", "/v1/tokens?project=a%00b".to_string(), json!(null), "project"),
            ("GET", "/v1/inventory?project=a%00b".to_string(), json!(null), "project"),
            ("DELETE", format!("/v1/hosts/{hid}/variables?key=a%00b"), json!(null), "key"),
            ("DELETE", format!("/v1/hosts/{hid}/variables"), json!({"keys": ["a\u{0}b"]}), "keys"),
            ("POST", "/v1/tokens".to_string(), json!({"role": "reader", "description": "a\u{0}"}), "description"),
            ("POST", "/v1/tokens".to_string(), json!({"role": "reader", "project": "a\u{0}"}), "project"),
            ("POST", "/v1/groups".to_string(), json!({"name": "g", "parents": ["a\u{0}"]}), "parents"),
            ("POST", "/v1/hosts".to_string(), json!({"name": "h", "groups": ["a\u{0}"]}), "groups"),
        ] {
            let bytes = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
            let r = send(&h, method, &uri, Some(&root), &ct, &bytes).await;
            assert_error(&r, 400, &format!("{b:?} {method} {uri} {body}"));
            assert_eq!(r.detail_fields(), [field], "{b:?} {method} {uri}: {}", r.text);
        }
        // A variable's value may hold NUL (it is stored as JSON text).
        let r = h.expect(200, "PUT", &format!("/v1/hosts/{hid}/variables"), &root, Some(json!({"k": "a\u{0}b"}))).await;
        assert_eq!(r.body["variables"]["k"], "a\u{0}b", "{b:?}");
    }
}

fn doc() -> Value {
    cratond::api::meta::openapi_document()
}

#[test]
fn openapi_documents_bodies_parameters_and_statuses() {
    let d = doc();
    let op = |m: &str, p: &str| d["paths"][p][m].clone();
    let statuses = |m: &str, p: &str| -> Vec<String> {
        op(m, p)["responses"].as_object().unwrap_or_else(|| panic!("{m} {p}")).keys().cloned().collect()
    };
    let body_ref = |m: &str, p: &str| op(m, p)["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone();
    let query = |m: &str, p: &str| -> Vec<String> {
        op(m, p)["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter().filter(|x| x["in"] == "query").map(|x| x["name"].as_str().unwrap().to_string()).collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(body_ref("post", "/v1/groups"), "#/components/schemas/GroupWrite");
    assert_eq!(body_ref("patch", "/v1/hosts/{id}"), "#/components/schemas/HostPatch");
    assert_eq!(body_ref("post", "/v1/tokens"), "#/components/schemas/NewToken");
    assert_eq!(
        query("get", "/v1/hosts"),
        [
            "project",
            "name",
            "group",
            "label",
            "parent",
            "active",
            "vars",
            "details",
            "resolved",
            "last_run_status",
            "limit",
            "marker"
        ]
    );
    assert_eq!(query("delete", "/v1/groups/{id}/variables"), ["project", "key"]);
    assert!(query("post", "/v1/tokens").is_empty());
    for s in ["201", "400", "401", "403", "404", "409", "413", "415", "503"] {
        assert!(statuses("post", "/v1/hosts").contains(&s.to_string()), "POST /v1/hosts lacks {s}");
    }
    assert!(statuses("get", "/v1/inventory.tgz").contains(&"304".to_string()));
    assert!(statuses("post", "/v1/config-refs/{id}/sync").contains(&"202".to_string()));
    assert!(statuses("post", "/v1/runs/{id}/cancel").contains(&"202".to_string()));
    assert_eq!(body_ref("post", "/v1/runs"), "#/components/schemas/NewRun");
    assert_eq!(statuses("delete", "/v1/tokens/{id}")[0], "204");
    let content = |p: &str| -> Vec<String> {
        d["paths"][p]["get"]["responses"]["200"]["content"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(content("/v1/inventory.tgz"), ["application/gzip"]);
    assert_eq!(content("/v1/inventory.zip"), ["application/zip"]);
    assert_eq!(content("/v1/inventory/{bundle}"), ["application/gzip", "application/zip"]);
    assert_eq!(content("/v1/inventory"), ["application/json"]);
    assert_eq!(content("/metrics"), ["text/plain"]);
    assert_eq!(d["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let err = &d["components"]["schemas"];
    assert_eq!(err["Error"]["properties"]["error"]["$ref"], "#/components/schemas/ErrorInner");
    let inner: Vec<&String> = err["ErrorInner"]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(inner, ["status", "message", "details"]);
    assert_eq!(err["FieldError"]["required"], json!(["field", "message"]));
    // Every operation: a unique id, and a token exactly where ROUTES says.
    let mut ids = std::collections::HashSet::new();
    for r in ROUTES {
        let o = op(&r.method.to_ascii_lowercase(), r.path);
        assert!(ids.insert(o["operationId"].as_str().unwrap().to_string()), "{} {}: duplicate id", r.method, r.path);
        assert_eq!(o["security"].is_array(), !r.public, "{} {}: security", r.method, r.path);
        let codes = statuses(&r.method.to_ascii_lowercase(), r.path);
        assert!(codes.contains(&"400".to_string()), "{} {}: no 400", r.method, r.path);
        assert_eq!(
            codes.contains(&"401".to_string()),
            !r.public || r.path.contains("webhooks"),
            "{} {}",
            r.method,
            r.path
        );
    }
}

/// A path with its parameters filled from the seeded objects.
fn fill(path: &str, ids: &Value) -> String {
    // Not a token id in use: revoking the caller's own would turn the rest into 401s.
    let id = if path.starts_with("/v1/tokens/") { "999".to_string() } else { ids["id"].to_string() };
    path.replace("{id}", &id).replace("{name}", ids["host"].as_str().unwrap()).replace("{bundle}", "web.tgz")
}

/// A value a documented query parameter accepts.
fn sample(name: &str, schema: &Value) -> String {
    let ty = schema.get("type").or_else(|| schema["items"].get("type"));
    match (name, ty.and_then(Value::as_str)) {
        ("project", _) => "default".into(),
        ("vars", _) => "k:1".into(),
        (_, Some("boolean")) => "true".into(),
        (_, Some("integer")) => "1".into(),
        _ => "x".into(),
    }
}

/// The documented query parameters are exactly those the handlers take:
/// each is accepted (whatever else the answer says), and one more is a 400
/// naming it, on every route.
#[tokio::test]
async fn documented_query_parameters_are_accepted_others_refused() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    let gid = h.create("/v1/groups", &root, json!({"name": "web"})).await;
    h.create("/v1/hosts", &root, json!({"name": "web1", "groups": ["web"]})).await;
    let ids = json!({"id": gid, "host": "web1"});
    let d = doc();
    let mut checked = 0;
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let uri = fill(path, &ids);
            let mut q = form_urlencoded::Serializer::new(String::new());
            for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                q.append_pair(name, &sample(name, &p["schema"]));
            }
            let q = q.finish();
            let m = method.to_ascii_uppercase();
            let with = if q.is_empty() { uri.clone() } else { format!("{uri}?{q}") };
            let r = send(&h, &m, &with, Some(&root), &[], b"").await;
            let unknown = r.body["error"]["details"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["message"].as_str().unwrap_or("").starts_with("unknown query parameter"));
            assert!(!unknown, "{m} {with}: a documented parameter is refused: {}", r.text);
            let sep = if q.is_empty() { "?" } else { "&" };
            let r = send(&h, &m, &format!("{with}{sep}undocumented=1"), Some(&root), &[], b"").await;
            assert_error(&r, 400, &format!("{m} {with} + undocumented"));
            assert!(r.detail_fields().contains(&"undocumented".to_string()), "{m} {path}: {}", r.text);
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len());
}

/// A request past `--timeout` gets the JSON error body too (tower-http's
/// timeout layer answered an empty 408).
#[tokio::test]
async fn timeout_answers_json_408() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    let limits = cratond::api::Limits { timeout: std::time::Duration::ZERO, ..cratond::api::Limits::default() };
    let app = cratond::api::app(h.state.clone(), limits);
    let req = Request::builder()
        .uri("/v1/groups")
        .header("authorization", format!("Bearer {root}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_error(&Resp { status, headers, body, text }, 408, "zero timeout");
}

/// JSON Schema counts `2.0` as an integer, so the document's integer
/// fields (ids, priority) take it; a fraction is still refused.
#[tokio::test]
async fn integral_float_ids_are_integers() {
    let h = sqlite();
    let root = h.token(None, Role::Root);
    let web = h.create("/v1/groups", &root, json!({"name": "web"})).await;
    let r = h
        .expect(
            201,
            "POST",
            "/v1/groups",
            &root,
            Some(json!({"name": "app", "priority": 3.0, "parents": [web as f64]})),
        )
        .await;
    assert_eq!((r.body["priority"].clone(), r.body["parents"].clone()), (json!(3), json!(["web"])), "{}", r.text);
    let r = h.expect(201, "POST", "/v1/hosts", &root, Some(json!({"name": "h1", "groups": [web as f64]}))).await;
    assert_eq!(r.body["groups"], json!(["web"]));
    let r = h.expect(400, "POST", "/v1/groups", &root, Some(json!({"name": "db", "priority": 2.5}))).await;
    assert_eq!(r.detail_fields(), ["priority"]);
}
