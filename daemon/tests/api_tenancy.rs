//! Tenant isolation over every route of the table: project B's tokens, of
//! every role, cannot tell project A's objects from objects that do not
//! exist (404 on the resource routes), lists never show them, and nothing of
//! A changes whatever B sends. Also: readers cannot write, only root
//! manages projects, a revoked token is refused at once, and the route
//! table, the router and the OpenAPI document agree.

mod common;

use common::{backends, Harness, Resp};
use craton::store::tokens::Role;
use cratond::api::{Route, ROUTES};
use serde_json::{json, Value};

const A: &str = "alpha-secret";
/// Same length as [`A`], so error texts compare after substitution.
const MISSING: &str = "zzzzz-secret";

/// The objects a request can name.
#[derive(Debug, Clone)]
struct Target {
    project: String,
    pid: i64,
    group: i64,
    group_name: String,
    host: i64,
    host_name: String,
    token_id: i64,
    run: i64,
    /// The name of the secret each owner (project, group, host) holds.
    secret: String,
    /// A maintenance window of the group (issue 10).
    window: i64,
    /// A schedule of the project (issue 10).
    schedule: i64,
    /// An outbound webhook of the project (issue 10).
    hook: i64,
    /// A webhook rule of the project (issue 10), with a delivery it matched.
    rule: i64,
    /// The project's newest audit change set (issue 12).
    audit: i64,
}

struct Tenant {
    target: Target,
    tokens: Vec<(Role, String)>,
}

impl Tenant {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

const ROLES: [Role; 3] = [Role::Reader, Role::Editor, Role::Admin];

async fn tenant(h: &Harness, root: &str, name: &str, prefix: &str) -> Tenant {
    let pid = h.create("/v1/projects", root, json!({"name": name})).await;
    let tokens: Vec<(Role, String)> = ROLES.iter().map(|&r| (r, h.token(Some(name), r))).collect();
    let (token_id, _) = h.token_with_id(Some(name), Role::Reader);
    let q = format!("?project={name}");
    let group_name = format!("{prefix}-group");
    let host_name = format!("{prefix}-host");
    let group = h.create(&format!("/v1/groups{q}"), root, json!({"name": group_name, "kind": prefix})).await;
    let host = h
        .create(&format!("/v1/hosts{q}"), root, json!({"name": host_name, "groups": [group], "labels": [prefix]}))
        .await;
    let secret = json!({format!("{prefix}_secret"): format!("{prefix}-s3cr3t")});
    let owners = [
        format!("/v1/projects/{pid}/variables"),
        format!("/v1/groups/{group}/variables{q}"),
        format!("/v1/hosts/{host}/variables{q}"),
    ];
    for path in owners {
        h.expect(200, "PUT", &path, root, Some(secret.clone())).await;
    }
    // A secret on each owner (issue 9).
    let secret_name = format!("{prefix}_token");
    for path in [
        format!("/v1/projects/{pid}/secrets"),
        format!("/v1/groups/{group}/secrets{q}"),
        format!("/v1/hosts/{host}/secrets{q}"),
    ] {
        let body = json!({"name": secret_name, "kind": "password", "value": format!("{prefix}-secret-value")});
        h.expect(201, "POST", &path, root, Some(body)).await;
    }
    // A maintenance window on the group (issue 10).
    let window = h
        .create(
            &format!("/v1/groups/{group}/windows{q}"),
            root,
            json!({"name": format!("{prefix}-window"), "kind": "cron", "expression": "0 2 * * SAT",
                   "time_zone": "Europe/Berlin", "duration_s": 7200}),
        )
        .await;
    // A schedule (issue 10), disabled: nothing fires here.
    let schedule = h
        .create(
            &format!("/v1/schedules{q}"),
            root,
            json!({"name": format!("{prefix}-schedule"), "kind": "cron", "expression": "0 2 * * SAT",
                   "time_zone": "UTC", "enabled": false,
                   "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main", "group": group_name}}),
        )
        .await;
    // An outbound webhook (issue 10), with a delivery in its log.
    let hook = h
        .create(
            &format!("/v1/hooks{q}"),
            root,
            json!({"url": format!("http://127.0.0.1:9/{prefix}-hook"), "secret": format!("{prefix}-hook-secret"),
                   "events": ["run.queued"]}),
        )
        .await;
    craton::store::hooks::enqueue(&mut h.conn(), pid, "run.queued", "run:0", &format!("{{\"{prefix}\":1}}"), 1)
        .unwrap();
    // A webhook rule (issue 10), disabled, with a delivery in its log.
    let rule = h
        .create(
            &format!("/v1/webhook-rules{q}"),
            root,
            json!({"name": format!("{prefix}-rule"), "event": "push", "repository": format!("acme/{prefix}"),
                   "branches": ["main"], "enabled": false,
                   "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "group": group_name}}),
        )
        .await;
    {
        use craton::store::webhook_rules as wr;
        let mut c = h.conn();
        let guid = format!("{prefix}-delivery");
        let d = wr::NewDelivery {
            delivery: &guid,
            event: "push",
            repository: Some("acme/x"),
            git_ref: Some("refs/heads/main"),
            sha: None,
            received_at: 1,
            holder: "tenancy-test",
            outcome: "{}",
        };
        let id = wr::record_delivery(&mut c, &d).unwrap().unwrap();
        wr::add_matches(&mut c, id, &[(rule, pid)], false, None, 1).unwrap();
    }
    // A run, stored as the runner stores one (it never starts: no runner
    // holds its lease here).
    let run = {
        let spec = craton::runs::parse_request(
            json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main", "group": group_name})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let mut c = h.conn();
        let new = craton::store::runs::NewRun {
            project_id: pid,
            spec: &spec,
            created_by: "test",
            bundle: b"not a bundle",
            bundle_etag: "\"e\"",
            hosts: &[host_name.clone()],
            inventory_revision: None,
            holder: "tenancy-test",
            lease_ttl_ms: 3_600_000,
        };
        craton::store::runs::create(&mut c, &new).unwrap().id
    };
    let audit = craton::store::audit::list(
        &mut h.conn(),
        &craton::store::audit::Filter { project_id: Some(pid), limit: 1, ..Default::default() },
    )
    .unwrap()[0]
        .id;
    Tenant {
        target: Target {
            project: name.into(),
            pid,
            group,
            group_name,
            host,
            host_name,
            token_id,
            run,
            secret: secret_name,
            window,
            schedule,
            hook,
            rule,
            audit,
        },
        tokens,
    }
}

/// Objects that do not exist, shaped like a tenant's.
fn missing() -> Target {
    Target {
        project: MISSING.into(),
        pid: 999_999,
        group: 999_998,
        group_name: "zzzzz-group".into(),
        host: 999_997,
        host_name: "zzzzz-host".into(),
        token_id: 999_996,
        run: 999_995,
        secret: "zzzzz_token".into(),
        window: 999_994,
        schedule: 999_993,
        hook: 999_993,
        rule: 999_992,
        audit: 999_993,
    }
}

/// The path of `route` naming `t`'s objects.
fn uri(route: &Route, t: &Target) -> String {
    let id = if route.path.starts_with("/v1/projects") {
        t.pid
    } else if route.path.starts_with("/v1/hosts") {
        t.host
    } else if route.path.starts_with("/v1/tokens") {
        t.token_id
    } else if route.path.starts_with("/v1/runs") {
        t.run
    } else if route.path.starts_with("/v1/windows") {
        t.window
    } else if route.path.starts_with("/v1/schedules") {
        t.schedule
    } else if route.path.starts_with("/v1/hooks") {
        t.hook
    } else if route.path.starts_with("/v1/webhook-rules") {
        t.rule
    } else if route.path.starts_with("/v1/audit") {
        t.audit
    } else {
        t.group
    };
    route
        .path
        .split('/')
        .map(|seg| match seg {
            "{id}" => id.to_string(),
            "{name}" if route.path.contains("/secrets/") => t.secret.clone(),
            "{name}" => t.host_name.clone(),
            // Any other placeholder (group names in bundle routes, ...).
            s if s.starts_with('{') => t.group_name.clone(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A plausible body for `route`, naming `t`'s objects where it can.
fn body(route: &Route, t: &Target) -> Option<Value> {
    let p = route.path;
    Some(match route.method {
        "GET" => return None,
        "POST" if p.ends_with("/secrets") => json!({"name": "new_secret", "kind": "password", "value": "v"}),
        "PUT" if p.contains("/secrets/") => json!({"value": "v2"}),
        "POST" if p.ends_with("/windows") => {
            json!({"name": "new-w", "kind": "cron", "expression": "0 3 * * *", "time_zone": "UTC", "duration_s": 60})
        }
        "POST" if p == "/v1/groups" => json!({"name": "new-g", "parents": [t.group], "children": [t.group_name]}),
        "POST" if p == "/v1/hosts" => json!({"name": "new-h", "groups": [t.group], "parent": t.host}),
        "POST" if p == "/v1/projects" => json!({"name": "new-p"}),
        "POST" if p == "/v1/tokens" => json!({"role": "reader", "project": t.project}),
        "POST" if p == "/v1/runs" => json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main",
            "group": t.group_name, "priority": 3, "if_busy": "refuse"}),
        "POST" if p == "/v1/schedules" => json!({"name": "new-s", "kind": "cron", "expression": "0 3 * * *",
            "time_zone": "UTC", "enabled": false,
            "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main", "group": t.group_name}}),
        "PATCH" if p.starts_with("/v1/schedules") => json!({"enabled": true, "expression": "0 4 * * *"}),
        "POST" if p == "/v1/hooks" => {
            json!({"url": "http://8.8.8.8/new-hook", "secret": "new-hook-secret", "events": ["run.finished"]})
        }
        "PATCH" if p.starts_with("/v1/hooks") => json!({"events": ["*"], "active": false}),
        "POST" if p == "/v1/webhook-rules" => json!({"name": "new-r", "event": "push", "repository": "acme/new",
            "branches": ["*"], "enabled": false,
            "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "group": t.group_name}}),
        "PATCH" if p.starts_with("/v1/webhook-rules") => json!({"enabled": true, "branches": ["*"]}),
        "PUT" if p.ends_with("/variables") => json!({"k": 1}),
        "DELETE" if p.ends_with("/variables") => json!({"keys": ["alpha_secret", "k"]}),
        "DELETE" => return None,
        "PUT" | "PATCH" if p.starts_with("/v1/projects") => json!({"name": "renamed", "max_concurrent_runs": 7}),
        "PUT" | "PATCH" if p.starts_with("/v1/groups") => json!({"name": "renamed-g", "parents": [t.group]}),
        "PUT" | "PATCH" if p.starts_with("/v1/hosts") => json!({"name": "renamed-h", "parent": t.host}),
        _ => json!({}),
    })
}

/// Whether the request for `route` names an object of the target at all.
fn names_an_object(route: &Route) -> bool {
    route.path.contains('{')
        || (route.method == "POST" && ["/v1/groups", "/v1/hosts", "/v1/runs"].contains(&route.path))
}

/// Routes of this crate's resources, which must answer exactly 404.
fn resource_route(route: &Route) -> bool {
    [
        "/v1/projects/",
        "/v1/groups/",
        "/v1/hosts/",
        "/v1/windows/",
        "/v1/schedules/",
        "/v1/hooks/",
        "/v1/audit/",
        "/v1/webhook-rules/",
    ]
    .iter()
    .any(|p| route.path.starts_with(p))
}

/// What is left of a response once the names we sent are taken out: must
/// say nothing of A.
fn assert_no_leak(r: &Resp, sent: &[&str], what: &str) {
    let mut text = r.text.clone();
    for s in sent {
        text = text.replace(s, "");
    }
    assert!(!text.contains("alpha"), "{what} leaks project A: {}", r.text);
}

async fn send(h: &Harness, route: &Route, token: &str, uri: &str, body: Option<Value>) -> Resp {
    h.call(route.method, uri, token, body).await
}

#[tokio::test]
async fn foreign_tokens_see_nothing_on_any_route() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let a = tenant(&h, &root, A, "alpha").await;
        let bt = tenant(&h, &root, "bravo", "bravo").await;
        let a_sent = [
            A,
            "alpha-group",
            "alpha-host",
            "alpha_secret",
            "alpha_token",
            "alpha-window",
            "alpha-schedule",
            "alpha-rule",
        ];
        let routes: Vec<&Route> = ROUTES.iter().filter(|r| !r.public).collect();
        assert!(routes.len() >= 30, "the route table lost routes");

        for route in &routes {
            for role in ROLES {
                let token = bt.token(role);
                let what = format!("{:?} {role:?}: {} {}", b, route.method, route.path);

                // A's objects are exactly as absent as objects never made.
                let ra = send(&h, route, token, &uri(route, &a.target), body(route, &a.target)).await;
                let rn = send(&h, route, token, &uri(route, &missing()), body(route, &missing())).await;
                assert_no_leak(&ra, &a_sent, &what);
                if names_an_object(route) {
                    assert_eq!(ra.status, rn.status, "{what}: A's object vs a missing one: {} / {}", ra.text, rn.text);
                    assert!(!ra.status.is_success(), "{what}: reached A's object: {}", ra.text);
                }
                if resource_route(route) {
                    assert_eq!(ra.status, 404, "{what}: {}", ra.text);
                }

                // Naming project A is naming a project that does not exist
                // (objects that exist nowhere, so that nothing of B changes).
                let path = uri(route, &missing());
                let (pa, pn) = (format!("{path}?project={A}"), format!("{path}?project={MISSING}"));
                let pa = send(&h, route, token, &pa, body(route, &missing())).await;
                let pn = send(&h, route, token, &pn, body(route, &missing())).await;
                assert_eq!(pa.status, pn.status, "{what} ?project=: {} / {}", pa.text, pn.text);
                assert_no_leak(&pa, &[A], &format!("{what} ?project="));
                if pa.status.as_u16() >= 400 {
                    assert_eq!(pa.text.replace(A, MISSING), pn.text, "{what} ?project= texts differ");
                }
            }
        }

        // Lists show B's things only.
        for role in ROLES {
            let token = bt.token(role);
            for path in [
                "/v1/projects",
                "/v1/groups",
                "/v1/hosts",
                "/v1/hosts?details=true&resolved=true",
                "/v1/inventory",
                "/v1/runs",
                "/v1/schedules",
                "/v1/webhook-rules",
            ] {
                let r = h.expect(200, "GET", path, token, None).await;
                assert_no_leak(&r, &[], path);
            }
            // The inventory as of now (rebuilt from B's trail) is B's too.
            let now = craton::store::history::format_rfc3339(craton::store::now_ms());
            let path = format!("/v1/inventory?at={}", now.replace(':', "%3A"));
            let r = h.expect(200, "GET", &path, token, None).await;
            assert_no_leak(&r, &[], &path);
            let r = h.expect(200, "GET", "/v1/projects", token, None).await;
            assert_eq!(r.names(), ["bravo"]);
            // The audit trail: admins only, and only B's change sets.
            if role == Role::Admin {
                let r = h.expect(200, "GET", "/v1/audit?changes=true", token, None).await;
                assert!(r.body["items"].as_array().unwrap().iter().all(|cs| cs["project"] == "bravo"), "{}", r.text);
                assert!(!r.body["items"].as_array().unwrap().is_empty(), "{}", r.text);
                assert_no_leak(&r, &[], "/v1/audit");
            } else {
                h.expect(403, "GET", "/v1/audit", token, None).await;
            }
            let r = h.expect(200, "GET", "/v1/hosts?vars=alpha_secret:alpha-s3cr3t", token, None).await;
            assert_eq!(r.names(), Vec::<String>::new());
        }

        // And A is untouched: names, memberships, variables, tokens.
        let ar = a.token(Role::Reader);
        let t = &a.target;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{}?resolved=true", t.host), ar, None).await;
        assert_eq!(r.body["name"], "alpha-host");
        assert_eq!(r.body["groups"], json!(["alpha-group"]));
        assert_eq!(r.body["parent"], Value::Null);
        assert_eq!(r.body["variables"]["alpha_secret"], "alpha-s3cr3t");
        assert!(r.body["variables"].get("k").is_none(), "{}", r.text);
        let r = h.expect(200, "GET", &format!("/v1/groups/{}", t.group), ar, None).await;
        assert_eq!((r.body["name"].clone(), r.body["parents"].clone()), (json!("alpha-group"), json!([])));
        assert_eq!(r.body["variables"], json!({"alpha_secret": "alpha-s3cr3t"}));
        let r = h.expect(200, "GET", &format!("/v1/projects/{}", t.pid), ar, None).await;
        assert_eq!(
            (r.body["name"].clone(), r.body["variables"].clone(), r.body["max_concurrent_runs"].clone()),
            (json!(A), json!({"alpha_secret": "alpha-s3cr3t"}), json!(1))
        );
        assert_eq!(h.expect(200, "GET", "/v1/hosts", ar, None).await.names(), ["alpha-host"]);
        assert_eq!(h.expect(200, "GET", "/v1/groups", ar, None).await.names(), ["alpha-group"]);
        let r = h.expect(200, "GET", &format!("/v1/runs/{}", t.run), ar, None).await;
        assert_eq!((r.body["status"].clone(), r.body["cancel_requested"].clone()), (json!("queued"), Value::Null));
        // A's secrets: still version 1 with A's value.
        for owner in
            [format!("/v1/hosts/{}", t.host), format!("/v1/groups/{}", t.group), format!("/v1/projects/{}", t.pid)]
        {
            let path = format!("{owner}/secrets/alpha_token/value");
            let r = h.expect(200, "GET", &path, a.token(Role::Admin), None).await;
            assert_eq!(
                (r.body["version"].clone(), r.body["value"].clone()),
                (json!(1), json!("alpha-secret-value")),
                "{path}"
            );
        }
        // A's window: still there, and the only one of its group.
        let r = h.expect(200, "GET", &format!("/v1/groups/{}/windows", t.group), ar, None).await;
        let names: Vec<&str> =
            r.body["windows"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["alpha-window"], "{}", r.text);
        assert_eq!(r.body["windows"][0]["id"], t.window);
        // A's schedule: unchanged (still disabled, its rule as made).
        let r = h.expect(200, "GET", &format!("/v1/schedules/{}", t.schedule), ar, None).await;
        assert_eq!((r.body["enabled"].clone(), r.body["expression"].clone()), (json!(false), json!("0 2 * * SAT")));
        assert_eq!(h.expect(200, "GET", "/v1/schedules", ar, None).await.names(), ["alpha-schedule"]);
        // A's webhook rule: unchanged (still disabled, main only), its
        // delivery still logged.
        let r = h.expect(200, "GET", &format!("/v1/webhook-rules/{}", t.rule), ar, None).await;
        assert_eq!((r.body["enabled"].clone(), r.body["branches"].clone()), (json!(false), json!(["main"])));
        let r = h.expect(200, "GET", &format!("/v1/webhook-rules/{}/deliveries", t.rule), ar, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
        assert_eq!(h.expect(200, "GET", "/v1/webhook-rules", ar, None).await.names(), ["alpha-rule"]);
        // A's hook: unchanged, its delivery still logged; B's list has none of it.
        let aa = a.token(Role::Admin);
        let r = h.expect(200, "GET", &format!("/v1/hooks/{}", t.hook), aa, None).await;
        assert_eq!((r.body["events"].clone(), r.body["active"].clone()), (json!(["run.queued"]), json!(true)));
        let r = h.expect(200, "GET", &format!("/v1/hooks/{}/deliveries", t.hook), aa, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
        let r = h.expect(200, "GET", "/v1/hooks", bt.token(Role::Admin), None).await;
        assert_no_leak(&r, &[], "GET /v1/hooks");
        let tokens = h.expect(200, "GET", "/v1/tokens", a.token(Role::Admin), None).await;
        let live = tokens.body["tokens"].as_array().unwrap().iter().filter(|t| t["revoked_at"].is_null()).count();
        assert_eq!(live, 4, "A's tokens: {}", tokens.text);
    }
}

/// Writes a role may not make in its own project: 403, and nothing changes.
#[tokio::test]
async fn roles_are_enforced_in_the_own_project() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let t = tenant(&h, &root, "bravo", "bravo").await;
        for route in ROUTES.iter().filter(|r| !r.public && r.method != "GET") {
            let project_admin = route.path.starts_with("/v1/projects")
                && !route.path.ends_with("/variables")
                && !route.path.contains("/secrets");
            // Tokens, and the answer to a run's approval gate.
            let token_admin = route.path.starts_with("/v1/tokens")
                || route.path.ends_with("/approve")
                || route.path.ends_with("/deny");
            for role in ROLES {
                let forbidden = role == Role::Reader
                    || (role == Role::Editor && (project_admin || token_admin))
                    || (role == Role::Admin && project_admin);
                if !forbidden {
                    continue;
                }
                let r = send(&h, route, t.token(role), &uri(route, &t.target), body(route, &t.target)).await;
                assert_eq!(r.status, 403, "{b:?} {role:?}: {} {}: {}", route.method, route.path, r.text);
            }
        }
        let reader = t.token(Role::Reader);
        let r = h.expect(200, "GET", &format!("/v1/hosts/{}", t.target.host), reader, None).await;
        assert_eq!(
            (r.body["name"].clone(), r.body["variables"].clone()),
            (json!("bravo-host"), json!({"bravo_secret": "bravo-s3cr3t"}))
        );
        assert_eq!(h.expect(200, "GET", "/v1/groups", reader, None).await.names(), ["bravo-group"]);
        let r = h.expect(200, "GET", "/v1/projects", &root, None).await;
        assert_eq!(r.names(), ["default", "bravo"]);

        // Secret values: admin, or the secrets scope; readers and editors 403; listings carry no value.
        let bravo = t.target.pid;
        let (_, scoped) =
            craton::store::tokens::create_scoped(&mut h.conn(), Some(bravo), Role::Reader, "scoped", true).unwrap();
        for owner in [
            format!("/v1/hosts/{}", t.target.host),
            format!("/v1/groups/{}", t.target.group),
            format!("/v1/projects/{}", t.target.pid),
        ] {
            let value = format!("{owner}/secrets/bravo_token/value");
            for role in [Role::Reader, Role::Editor] {
                h.expect(403, "GET", &value, t.token(role), None).await;
                let r = h.expect(200, "GET", &format!("{owner}/secrets"), t.token(role), None).await;
                assert_eq!(r.body["secrets"][0]["name"], "bravo_token");
                assert!(!r.text.contains("bravo-secret-value"), "{owner}: the list shows the value: {}", r.text);
                let r = h.expect(200, "GET", &format!("{owner}/secrets/bravo_token"), t.token(role), None).await;
                assert!(!r.text.contains("bravo-secret-value"), "{owner}: GET shows the value: {}", r.text);
            }
            let r = h.expect(200, "GET", &value, t.token(Role::Admin), None).await;
            assert_eq!(r.body["value"], "bravo-secret-value");
            let r = h.expect(200, "GET", &value, &scoped, None).await;
            assert_eq!(r.body["value"], "bravo-secret-value");
            // The scope reaches no other project.
            let other = value.replace(&format!("/{}/", t.target.host), "/999999/");
            let other = other
                .replace(&format!("/{}/", t.target.group), "/999999/")
                .replace(&format!("/{}/", t.target.pid), "/999999/");
            h.expect(404, "GET", &other, &scoped, None).await;
        }

        // Root reaches any project with ?project=, and only the default without.
        let host = t.target.host;
        h.expect(200, "GET", &format!("/v1/hosts/{host}?project=bravo"), &root, None).await;
        h.expect(404, "GET", &format!("/v1/hosts/{host}"), &root, None).await;
        h.expect(200, "PATCH", &format!("/v1/hosts/{host}?project=bravo"), &root, Some(json!({"active": false}))).await;
        // An editor writes inventory in its project.
        let ed = t.token(Role::Editor);
        h.expect(200, "PATCH", &format!("/v1/hosts/{host}"), ed, Some(json!({"active": true}))).await;
        h.expect(200, "PUT", &format!("/v1/projects/{}/variables", t.target.pid), ed, Some(json!({"z": 1}))).await;
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_at_once() {
    for b in backends() {
        let h = Harness::new(b);
        let admin = h.token(Some("default"), Role::Admin);
        let (id, editor) = h.token_with_id(Some("default"), Role::Editor);
        // Used once, so its grant is cached.
        h.expect(200, "GET", "/v1/hosts", &editor, None).await;
        h.expect(201, "POST", "/v1/hosts", &editor, Some(json!({"name": "h"}))).await;
        h.expect(204, "DELETE", &format!("/v1/tokens/{id}"), &admin, None).await;
        for (m, path, body) in [
            ("GET", "/v1/hosts", None),
            ("POST", "/v1/hosts", Some(json!({"name": "h2"}))),
            ("GET", "/v1/groups", None),
        ] {
            let r = h.call(m, path, &editor, body).await;
            assert_eq!(r.status, 401, "{b:?} {m} {path}: {}", r.text);
            assert_eq!(r.body["error"]["status"], 401);
        }
        let r = h.raw("GET", "/v1/hosts", Some("craton_not-a-token"), Vec::new()).await;
        assert_eq!(r.status, 401);
        assert_eq!(h.expect(200, "GET", "/v1/hosts", &admin, None).await.names(), ["h"]);
    }
}

/// The `.route("...")` paths of the router source.
fn router_paths() -> Vec<String> {
    let src = include_str!("../src/api/mod.rs");
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = rest[i + ".route(".len()..].trim_start();
        let lit = rest.strip_prefix('"').expect(".route( not followed by a string literal");
        let end = lit.find('"').unwrap();
        out.push(lit[..end].to_string());
        rest = &lit[end..];
    }
    out
}

#[test]
fn router_routes_table_and_openapi_agree() {
    let paths = router_paths();
    assert!(paths.len() >= 15, "found only {paths:?}");
    for p in ["/v1/projects/{id}/variables", "/v1/groups/{id}", "/v1/hosts"] {
        assert!(paths.iter().any(|x| x == p), "{p} not routed");
    }
    let doc = cratond::api::meta::openapi_document();
    for p in &paths {
        assert!(ROUTES.iter().any(|r| r.path == p), "{p} is routed but not in ROUTES");
        assert!(doc["paths"].get(p).is_some(), "{p} is routed but not in the OpenAPI document");
    }
    for r in ROUTES {
        assert!(paths.iter().any(|p| p == r.path), "{} {} is in ROUTES but not routed", r.method, r.path);
        assert!(
            doc["paths"][r.path][r.method.to_ascii_lowercase()].is_object(),
            "{} {} not in OpenAPI",
            r.method,
            r.path
        );
    }
    // And the document (generated from the handlers' annotations) lists no
    // operation the table lacks.
    let ops: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(ops, ROUTES.len(), "operations in the OpenAPI document");
}

/// Every method of the table is answered by its handler (not 405, not the
/// fallback).
#[tokio::test]
async fn every_route_in_the_table_is_routed() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let t = tenant(&h, &root, "bravo", "bravo").await;
        for route in ROUTES {
            let uri = format!("{}?project=bravo", uri(route, &t.target));
            let r = send(&h, route, &root, &uri, body(route, &t.target)).await;
            assert_ne!(r.status, 405, "{b:?} {} {}", route.method, route.path);
            assert!(!r.text.contains("no such route"), "{b:?} {} {}: {}", route.method, route.path, r.text);
        }
    }
}
