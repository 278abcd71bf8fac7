//! The resource API (projects, groups, hosts, variables) through the real
//! router on every backend: CRUD, 400s that name each bad field, 409 on
//! duplicates and cycles, 404 on missing ids, list filters including
//! type-strict `vars` terms on resolved values, paging that terminates with
//! links that echo the query, and resolved variables with their blame.

mod common;

use common::{backends, Harness};
use craton::store::tokens::Role;
use serde_json::{json, Value};

#[tokio::test]
async fn projects_crud() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);

        let r = h.expect(201, "POST", "/v1/projects", &root, Some(json!({"name": "lab"}))).await;
        let id = r.body["id"].as_i64().unwrap();
        assert_eq!(r.headers["location"], format!("/v1/projects/{id}"));
        assert_eq!(r.body["name"], "lab");
        assert_eq!(r.body["variables"], json!({}));
        for f in ["revision", "created_at", "updated_at"] {
            assert!(r.body[f].is_i64(), "{f} in {}", r.text);
        }

        h.expect(409, "POST", "/v1/projects", &root, Some(json!({"name": "lab"}))).await;
        let r = h
            .expect(400, "POST", "/v1/projects", &root, Some(json!({"name": "x", "id": 3, "revision": 1, "color": 1})))
            .await;
        assert_eq!(r.detail_fields(), ["id", "revision", "color"]);
        let r = h.expect(400, "POST", "/v1/projects", &root, Some(json!({}))).await;
        assert_eq!(r.detail_fields(), ["name"]);
        let r = h.expect(400, "POST", "/v1/projects", &root, Some(json!({"name": " padded"}))).await;
        assert_eq!(r.detail_fields(), ["name"]);

        let r = h.expect(200, "GET", &format!("/v1/projects/{id}"), &root, None).await;
        assert_eq!(r.body["name"], "lab");
        let r = h.get("/v1/projects", &root).await;
        assert_eq!(r.names(), ["default", "lab"]);

        let r = h.expect(200, "PATCH", &format!("/v1/projects/{id}"), &root, Some(json!({"name": "lab2"}))).await;
        assert_eq!(r.body["name"], "lab2");
        h.expect(409, "PATCH", &format!("/v1/projects/{id}"), &root, Some(json!({"name": "default"}))).await;
        let r = h.expect(400, "PUT", &format!("/v1/projects/{id}"), &root, Some(json!({}))).await;
        assert_eq!(r.detail_fields(), ["name"]);
        h.expect(200, "PUT", &format!("/v1/projects/{id}"), &root, Some(json!({"name": "lab3"}))).await;

        // Project variables, and a project full of things deletes whole.
        h.expect(200, "PUT", &format!("/v1/projects/{id}/variables"), &root, Some(json!({"env": "lab"}))).await;
        let q = "?project=lab3";
        let r = h.expect(201, "POST", &format!("/v1/groups{q}"), &root, Some(json!({"name": "g"}))).await;
        let g = r.body["id"].as_i64().unwrap();
        // Root reads it back where the Location says, in that project.
        assert_eq!(r.headers["location"], format!("/v1/groups/{g}?project=lab3"));
        h.expect(200, "GET", r.headers["location"].to_str().unwrap(), &root, None).await;
        let p = h.create(&format!("/v1/hosts{q}"), &root, json!({"name": "p", "groups": [g]})).await;
        h.create(&format!("/v1/hosts{q}"), &root, json!({"name": "c", "parent": p, "labels": ["x"]})).await;
        let tok = h.token(Some("lab3"), Role::Reader);
        h.expect(200, "GET", "/v1/hosts", &tok, None).await;
        let r = h.expect(200, "GET", &format!("/v1/projects/{id}"), &root, None).await;
        assert_eq!(r.body["variables"], json!({"env": "lab"}));

        h.expect(204, "DELETE", &format!("/v1/projects/{id}"), &root, None).await;
        h.expect(404, "GET", &format!("/v1/projects/{id}"), &root, None).await;
        h.expect(404, "DELETE", &format!("/v1/projects/{id}"), &root, None).await;
        h.expect(404, "PATCH", &format!("/v1/projects/{id}"), &root, Some(json!({"name": "z"}))).await;
        h.expect(404, "GET", &format!("/v1/projects/{id}/variables"), &root, None).await;
        // Its tokens went with it.
        let r = h.get("/v1/hosts", &tok).await;
        assert_eq!(r.status, 401, "{}", r.text);
        h.expect(404, "GET", "/v1/projects/nope", &root, None).await;

        // The default project is where requests without ?project= go.
        let def = h.get("/v1/projects?name=default", &root).await.body["items"][0]["id"].as_i64().unwrap();
        h.expect(409, "DELETE", &format!("/v1/projects/{def}"), &root, None).await;
        h.expect(409, "PATCH", &format!("/v1/projects/{def}"), &root, Some(json!({"name": "other"}))).await;
    }
}

#[tokio::test]
async fn groups_crud_duplicates_and_cycles() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);

        let r = h
            .expect(
                201,
                "POST",
                "/v1/groups",
                &ed,
                Some(json!({"name": "web", "kind": "role", "description": "front", "priority": 5})),
            )
            .await;
        let web = r.body["id"].as_i64().unwrap();
        assert_eq!(r.headers["location"], format!("/v1/groups/{web}"));
        assert_eq!(
            r.body,
            json!({"id": web, "name": "web", "kind": "role", "description": "front", "priority": 5,
                   "parents": [], "children": [], "variables": {}})
        );
        let app = h.create("/v1/groups", &ed, json!({"name": "app", "parents": ["web"]})).await;
        let db = h.create("/v1/groups", &ed, json!({"name": "db", "parents": [app]})).await;
        let r = h.expect(200, "GET", &format!("/v1/groups/{web}"), &ed, None).await;
        assert_eq!(r.body["children"], json!(["app"]));
        assert_eq!(r.body["priority"], 5);

        // Duplicates, reserved names, and each bad field named.
        h.expect(409, "POST", "/v1/groups", &ed, Some(json!({"name": "web"}))).await;
        h.expect(409, "PATCH", &format!("/v1/groups/{db}"), &ed, Some(json!({"name": "web"}))).await;
        for reserved in ["all", "_meta"] {
            let r = h.expect(400, "POST", "/v1/groups", &ed, Some(json!({"name": reserved}))).await;
            assert_eq!(r.detail_fields(), ["name"], "{}", r.text);
        }
        let r = h
            .expect(
                400,
                "POST",
                "/v1/groups",
                &ed,
                Some(json!({"name": 5, "priority": "x", "parents": "web", "description": 1, "kind": "k".repeat(65)})),
            )
            .await;
        assert_eq!(r.detail_fields(), ["name", "kind", "description", "priority", "parents"], "{}", r.text);
        let r = h.expect(400, "POST", "/v1/groups", &ed, Some(json!({"name": "x", "hosts": [], "id": 1}))).await;
        assert_eq!(r.detail_fields(), ["hosts", "id"]);
        let r = h.expect(400, "POST", "/v1/groups", &ed, Some(json!({"name": "x", "priority": 1i64 << 40}))).await;
        assert_eq!(r.detail_fields(), ["priority"]);
        let r = h.expect(400, "POST", "/v1/groups", &ed, Some(json!({"name": "x", "parents": ["nope"]}))).await;
        assert_eq!(r.detail_fields(), ["parents"]);
        let r = h.expect(400, "PATCH", &format!("/v1/groups/{web}"), &ed, Some(json!({"children": [999999]}))).await;
        assert_eq!(r.detail_fields(), ["children"]);
        let r = h.raw("POST", "/v1/groups", Some(&ed), b"{not json".to_vec()).await;
        assert_eq!(r.status, 400);
        let r = h.raw("POST", "/v1/groups", Some(&ed), b"[1]".to_vec()).await;
        assert_eq!(r.status, 400);

        // Cycles: self, two-step, three-step; nothing changes.
        for parents in [json!([web]), json!(["app"]), json!(["db"])] {
            let r = h.expect(409, "PATCH", &format!("/v1/groups/{web}"), &ed, Some(json!({"parents": parents}))).await;
            assert!(r.body["error"]["message"].as_str().unwrap().contains("web"), "{}", r.text);
        }
        h.expect(409, "PATCH", &format!("/v1/groups/{db}"), &ed, Some(json!({"children": ["web"]}))).await;
        h.expect(409, "PATCH", &format!("/v1/groups/{db}"), &ed, Some(json!({"children": ["db"]}))).await;
        h.expect(409, "POST", "/v1/groups", &ed, Some(json!({"name": "loop", "parents": ["loop"]}))).await;
        let r = h.expect(200, "GET", &format!("/v1/groups/{web}"), &ed, None).await;
        assert_eq!(r.body["parents"], json!([]));
        assert_eq!(h.expect(200, "GET", "/v1/groups?name=loop", &ed, None).await.names(), Vec::<String>::new());

        // A diamond is not a cycle.
        h.expect(200, "PATCH", &format!("/v1/groups/{db}"), &ed, Some(json!({"parents": ["app", "web"]}))).await;

        // Children keep the order given.
        let a = h.create("/v1/groups", &ed, json!({"name": "a"})).await;
        let z = h.create("/v1/groups", &ed, json!({"name": "z"})).await;
        let r =
            h.expect(200, "PATCH", &format!("/v1/groups/{web}"), &ed, Some(json!({"children": [z, "app", a]}))).await;
        assert_eq!(r.body["children"], json!(["z", "app", "a"]));

        // PATCH changes only what it names; null clears; PUT replaces all.
        let r = h
            .expect(200, "PATCH", &format!("/v1/groups/{web}"), &ed, Some(json!({"description": null, "kind": "k2"})))
            .await;
        assert_eq!(
            (r.body["description"].clone(), r.body["kind"].clone(), r.body["priority"].clone()),
            (Value::Null, json!("k2"), json!(5))
        );
        let r = h.expect(200, "PUT", &format!("/v1/groups/{db}"), &ed, Some(json!({"name": "db2"}))).await;
        assert_eq!(
            r.body,
            json!({"id": db, "name": "db2", "kind": "", "description": null, "priority": null,
                   "parents": [], "children": [], "variables": {}})
        );
        let r = h.expect(400, "PUT", &format!("/v1/groups/{db}"), &ed, Some(json!({"kind": "x"}))).await;
        assert_eq!(r.detail_fields(), ["name"]);

        // Delete: 204 once, then 404 for every verb.
        h.expect(204, "DELETE", &format!("/v1/groups/{app}"), &ed, None).await;
        for (m, body) in
            [("GET", None), ("DELETE", None), ("PATCH", Some(json!({}))), ("PUT", Some(json!({"name": "q"})))]
        {
            h.expect(404, m, &format!("/v1/groups/{app}"), &ed, body).await;
        }
        h.expect(404, "GET", "/v1/groups/999999", &ed, None).await;
        h.expect(404, "GET", "/v1/groups/abc", &ed, None).await;
        let r = h.expect(200, "GET", &format!("/v1/groups/{web}"), &ed, None).await;
        assert_eq!(r.body["children"], json!(["z", "a"]));
    }
}

#[tokio::test]
async fn hosts_crud_duplicates_and_parent_cycles() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        let g1 = h.create("/v1/groups", &ed, json!({"name": "g1"})).await;
        h.create("/v1/groups", &ed, json!({"name": "g2"})).await;

        let r = h
            .expect(
                201,
                "POST",
                "/v1/hosts",
                &ed,
                Some(json!({"name": "h1", "ip_address": "10.0.0.1", "labels": ["b", "a", "a"], "groups": ["g2", g1]})),
            )
            .await;
        let h1 = r.body["id"].as_i64().unwrap();
        assert_eq!(r.headers["location"], format!("/v1/hosts/{h1}"));
        assert_eq!(
            r.body,
            json!({"id": h1, "name": "h1", "ip_address": "10.0.0.1", "active": true, "parent": null,
                   "labels": ["a", "b"], "groups": ["g1", "g2"], "variables": {}})
        );
        let h2 = h.create("/v1/hosts", &ed, json!({"name": "h2", "parent": "h1", "active": false})).await;
        let h3 = h.create("/v1/hosts", &ed, json!({"name": "h3", "parent": h2, "ip_address": "::FFFF:1.2.3.4"})).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{h3}"), &ed, None).await;
        assert_eq!((r.body["parent"].clone(), r.body["ip_address"].clone()), (json!("h2"), json!("::ffff:1.2.3.4")));
        let r = h.expect(200, "GET", &format!("/v1/hosts/{h2}"), &ed, None).await;
        assert_eq!(r.body["active"], false);

        // A host cannot be its own parent or its descendant's child.
        let r = h.expect(409, "PATCH", &format!("/v1/hosts/{h1}"), &ed, Some(json!({"parent": h1}))).await;
        assert!(r.body["error"]["message"].as_str().unwrap().contains("own parent"), "{}", r.text);
        h.expect(409, "PATCH", &format!("/v1/hosts/{h1}"), &ed, Some(json!({"parent": "h3"}))).await;
        h.expect(409, "PATCH", &format!("/v1/hosts/{h1}"), &ed, Some(json!({"parent": "h2"}))).await;
        h.expect(409, "POST", "/v1/hosts", &ed, Some(json!({"name": "self", "parent": "self"}))).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{h1}"), &ed, None).await;
        assert_eq!(r.body["parent"], Value::Null);

        // Duplicates and bad fields, each named.
        h.expect(409, "POST", "/v1/hosts", &ed, Some(json!({"name": "h1"}))).await;
        h.expect(409, "PATCH", &format!("/v1/hosts/{h2}"), &ed, Some(json!({"name": "h1"}))).await;
        let r = h
            .expect(
                400,
                "POST",
                "/v1/hosts",
                &ed,
                Some(json!({"name": "", "ip_address": "300.1.1.1", "active": "yes", "parent": {}, "labels": [1], "groups": "g1"})),
            )
            .await;
        assert_eq!(r.detail_fields(), ["name", "ip_address", "active", "parent", "labels", "groups"], "{}", r.text);
        let r = h
            .expect(
                400,
                "POST",
                "/v1/hosts",
                &ed,
                Some(json!({"name": "x", "created_at": 1, "updated_at": 2, "note": ""})),
            )
            .await;
        assert_eq!(r.detail_fields(), ["created_at", "updated_at", "note"]);
        let r = h.expect(400, "POST", "/v1/hosts", &ed, Some(json!({"name": "x", "groups": ["nope"]}))).await;
        assert_eq!(r.detail_fields(), ["groups"]);
        let r = h.expect(400, "POST", "/v1/hosts", &ed, Some(json!({"name": "x", "parent": 999999}))).await;
        assert_eq!(r.detail_fields(), ["parent"]);
        let r = h.expect(400, "POST", "/v1/hosts", &ed, Some(json!({"name": "x", "labels": ["ok", " bad"]}))).await;
        assert_eq!(r.detail_fields(), ["labels"]);

        // PATCH touches what it names; PUT resets the rest.
        let r = h.expect(200, "PATCH", &format!("/v1/hosts/{h1}"), &ed, Some(json!({"groups": ["g2"]}))).await;
        assert_eq!((r.body["groups"].clone(), r.body["labels"].clone()), (json!(["g2"]), json!(["a", "b"])));
        let r = h.expect(200, "PUT", &format!("/v1/hosts/{h2}"), &ed, Some(json!({"name": "h2b"}))).await;
        assert_eq!(
            r.body,
            json!({"id": h2, "name": "h2b", "ip_address": null, "active": true, "parent": null,
                   "labels": [], "groups": [], "variables": {}})
        );
        h.expect(200, "PATCH", &format!("/v1/hosts/{h2}"), &ed, Some(json!({"parent": "h1"}))).await;

        // Deleting a parent orphans its children; a deleted host is 404.
        h.expect(204, "DELETE", &format!("/v1/hosts/{h2}"), &ed, None).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{h3}"), &ed, None).await;
        assert_eq!(r.body["parent"], Value::Null);
        for (m, body) in
            [("GET", None), ("DELETE", None), ("PATCH", Some(json!({}))), ("PUT", Some(json!({"name": "q"})))]
        {
            h.expect(404, m, &format!("/v1/hosts/{h2}"), &ed, body).await;
        }
        h.expect(404, "DELETE", "/v1/hosts/-1", &ed, None).await;
        // Deleting a group leaves its hosts.
        h.expect(204, "DELETE", &format!("/v1/groups/{g1}"), &ed, None).await;
        h.expect(200, "GET", &format!("/v1/hosts/{h1}"), &ed, None).await;
    }
}

#[tokio::test]
async fn variables_merge_delete_and_resolve_with_blame() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        let pid = h.get("/v1/projects", &ed).await.body["items"][0]["id"].as_i64().unwrap();
        let region = h.create("/v1/groups", &ed, json!({"name": "region"})).await;
        let cell = h.create("/v1/groups", &ed, json!({"name": "cell", "parents": ["region"]})).await;
        let host = h.create("/v1/hosts", &ed, json!({"name": "n1", "groups": ["cell"]})).await;

        let values = json!({"x": {"a": [1, 2.5, null, true]}, "big": 18446744073709551615u64, "s": "ü\"\n", "neg": -7});
        let r = h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &ed, Some(values.clone())).await;
        assert_eq!(r.body["variables"], values);
        h.expect(200, "PUT", &format!("/v1/projects/{pid}/variables"), &ed, Some(json!({"env": "lab", "n": 1}))).await;
        h.expect(200, "PUT", &format!("/v1/groups/{region}/variables"), &ed, Some(json!({"ntp": "r", "n": 2}))).await;
        h.expect(200, "PUT", &format!("/v1/groups/{cell}/variables"), &ed, Some(json!({"ntp": "c"}))).await;

        let r = h.expect(200, "GET", &format!("/v1/hosts/{host}/variables"), &ed, None).await;
        assert_eq!(r.body, json!({"variables": values}));
        let r = h.expect(200, "GET", &format!("/v1/groups/{region}/variables"), &ed, None).await;
        assert_eq!(r.body, json!({"variables": {"ntp": "r", "n": 2}}));
        let r = h.expect(200, "GET", &format!("/v1/projects/{pid}/variables"), &ed, None).await;
        assert_eq!(r.body, json!({"variables": {"env": "lab", "n": 1}}));

        // Resolved, with who supplied each key.
        let r = h.expect(200, "GET", &format!("/v1/hosts/{host}/variables?resolved=true"), &ed, None).await;
        let mut want = json!({"env": "lab", "n": 2, "ntp": "c"});
        want.as_object_mut().unwrap().extend(values.as_object().unwrap().clone());
        assert_eq!(r.body["variables"], want);
        let blame = &r.body["blame"];
        assert_eq!(blame["env"], json!({"owner_type": "all", "owner": "all", "tier": "inventory"}));
        assert_eq!(blame["n"], json!({"owner_type": "group", "owner": "region", "tier": "inventory"}));
        assert_eq!(blame["ntp"], json!({"owner_type": "group", "owner": "cell", "tier": "inventory"}));
        assert_eq!(blame["big"], json!({"owner_type": "host", "owner": "n1", "tier": "inventory"}));
        // The same values as the inventory's --host document, and GET one.
        let inv = h.expect(200, "GET", "/v1/inventory/hosts/n1?resolved=true", &ed, None).await;
        assert_eq!(inv.body, r.body["variables"]);
        let one = h.expect(200, "GET", &format!("/v1/hosts/{host}?resolved=true"), &ed, None).await;
        assert_eq!(one.body["variables"], r.body["variables"]);
        let one = h.expect(200, "GET", &format!("/v1/hosts/{host}"), &ed, None).await;
        assert_eq!(one.body["variables"], values);
        // `resolved` is for hosts only.
        let r = h.expect(400, "GET", &format!("/v1/groups/{cell}/variables?resolved=true"), &ed, None).await;
        assert_eq!(r.detail_fields(), ["resolved"]);

        // Merge keeps other keys; DELETE by body or query; missing keys are fine.
        let r =
            h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!({"neg": 0, "new": []}))).await;
        assert_eq!(r.body["variables"]["neg"], 0);
        assert_eq!(r.body["variables"]["new"], json!([]));
        assert_eq!(r.body["variables"]["s"], "ü\"\n");
        h.expect(204, "DELETE", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!({"keys": ["new", "missing"]})))
            .await;
        h.expect(204, "DELETE", &format!("/v1/hosts/{host}/variables?key=neg&key=s"), &ed, None).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{host}/variables"), &ed, None).await;
        assert_eq!(r.body["variables"], json!({"x": values["x"], "big": values["big"]}));
        h.expect(204, "DELETE", &format!("/v1/groups/{cell}/variables?key=ntp"), &ed, None).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts/{host}/variables?resolved=true"), &ed, None).await;
        assert_eq!(r.body["variables"]["ntp"], "r");
        assert_eq!(r.body["blame"]["ntp"]["owner"], "region");
        let r = h.expect(400, "DELETE", &format!("/v1/hosts/{host}/variables"), &ed, None).await;
        assert_eq!(r.detail_fields(), ["keys"]);
        let r = h.expect(400, "DELETE", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!({"keys": "x"}))).await;
        assert_eq!(r.detail_fields(), ["keys"]);

        // Bad bodies and keys, each named.
        let r = h
            .expect(
                400,
                "PUT",
                &format!("/v1/groups/{cell}/variables"),
                &ed,
                Some(json!({"ansible_group_priority": 3, "": 1, "ok": 1})),
            )
            .await;
        assert_eq!(r.detail_fields(), ["ansible_group_priority", ""]);
        h.expect(400, "PUT", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!([1]))).await;
        // A host may have a variable of that name: it is only special on groups.
        h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!({"ansible_group_priority": 3})))
            .await;

        // Missing owners are 404 for every verb.
        for path in ["/v1/hosts/999999/variables", "/v1/groups/999999/variables", "/v1/projects/999999/variables"] {
            h.expect(404, "GET", path, &ed, None).await;
            h.expect(404, "PUT", path, &ed, Some(json!({"a": 1}))).await;
            h.expect(404, "DELETE", &format!("{path}?key=a"), &ed, None).await;
        }
        h.expect(204, "DELETE", &format!("/v1/hosts/{host}"), &ed, None).await;
        h.expect(404, "GET", &format!("/v1/hosts/{host}/variables"), &ed, None).await;
        h.expect(404, "PUT", &format!("/v1/hosts/{host}/variables"), &ed, Some(json!({"a": 1}))).await;
    }
}

/// Follows `next` links from `first`; returns every page.
/// Typed envelopes (int map keys, timestamps) are stored and shown as sent,
/// so GET then PUT round-trips them; the inventory documents show them as
/// `ansible-inventory --list` would; a malformed one is a 400 naming the key.
#[tokio::test]
async fn typed_envelopes_round_trip_and_are_validated() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        let host = h.create("/v1/hosts", &ed, json!({"name": "n1"})).await;
        let path = format!("/v1/hosts/{host}/variables");
        let values = json!({
            "m": {"__craton_map": [[1, ["foo"]], [null, {"__craton_timestamp": "2001-12-14 21:59:43.10 -5"}]]},
            "d": {"__craton_timestamp": "2017-03-07T10:20:49Z"},
        });
        h.expect(200, "PUT", &path, &ed, Some(values.clone())).await;
        let got = h.expect(200, "GET", &path, &ed, None).await.body;
        assert_eq!(got["variables"], values);
        h.expect(200, "PUT", &path, &ed, Some(got["variables"].clone())).await;
        let r = h.expect(200, "GET", &format!("{path}?resolved=true"), &ed, None).await;
        assert_eq!(r.body["variables"], values);
        let inv = h.expect(200, "GET", "/v1/inventory/hosts/n1", &ed, None).await;
        assert_eq!(
            inv.body,
            json!({"m": {"1": ["foo"], "null": "2001-12-14T21:59:43.100000-05:00"}, "d": "2017-03-07T10:20:49+00:00"})
        );
        let list = h.expect(200, "GET", "/v1/inventory", &ed, None).await;
        assert_eq!(list.body["_meta"]["hostvars"]["n1"], inv.body);

        for bad in [
            json!({"__craton_timestamp": "soon"}),
            json!({"__craton_timestamp": "2017-03-07", "extra": 1}),
            json!([{"__craton_map": [[1, "a"], [true, "b"]]}]),
            json!({"__craton_map": [[[1], "list key"]]}),
            json!({"__craton_tuple": [1, 2]}),
        ] {
            let r = h.expect(400, "PUT", &path, &ed, Some(json!({"ok": 1, "bad": bad}))).await;
            assert_eq!(r.detail_fields(), ["bad"], "{bad}: {}", r.body);
        }
        let r = h.expect(400, "PUT", &path, &ed, Some(json!({"bad": {"a": {"__craton_timestamp": "soon"}}}))).await;
        let message = r.body["error"]["details"][0]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains(".a") && message.contains("not a timestamp"), "{}", r.body);
        // Nothing of the refused bodies was stored.
        assert_eq!(h.expect(200, "GET", &path, &ed, None).await.body["variables"], values);
    }
}

async fn pages(h: &Harness, token: &str, first: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = Some(first.to_string());
    while let Some(u) = url {
        assert!(out.len() < 100, "paging does not terminate");
        let r = h.expect(200, "GET", &u, token, None).await;
        url = r.body["links"]["next"].as_str().map(str::to_string);
        out.push(r.body);
    }
    out
}

fn item_names(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn lists_filter_and_page() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        h.create("/v1/groups", &ed, json!({"name": "prod", "kind": "env"})).await;
        h.create("/v1/groups", &ed, json!({"name": "web", "kind": "role", "parents": ["prod"]})).await;
        h.create("/v1/groups", &ed, json!({"name": "other", "kind": "role"})).await;
        let prod = h.get("/v1/groups?name=prod", &ed).await.body["items"][0]["id"].as_i64().unwrap();
        h.expect(200, "PUT", &format!("/v1/groups/{prod}/variables"), &ed, Some(json!({"env": "prod", "port": 1})))
            .await;
        // h0..h6: h0-h3 in web (under prod), h4 in other; h5 child of h0.
        let mut ids = Vec::new();
        for i in 0..7 {
            let groups = match i {
                0..=3 => json!(["web"]),
                4 => json!(["other"]),
                _ => json!([]),
            };
            let labels = if i % 2 == 0 { json!(["even", "x"]) } else { json!(["x"]) };
            let body = json!({"name": format!("h{i}"), "groups": groups, "labels": labels, "active": i != 6});
            ids.push(h.create("/v1/hosts", &ed, body).await);
        }
        h.expect(200, "PATCH", &format!("/v1/hosts/{}", ids[5]), &ed, Some(json!({"parent": "h0"}))).await;
        // h1 overrides the inherited env; h2 has port as a string.
        h.expect(200, "PUT", &format!("/v1/hosts/{}/variables", ids[1]), &ed, Some(json!({"env": "dev"}))).await;
        h.expect(200, "PUT", &format!("/v1/hosts/{}/variables", ids[2]), &ed, Some(json!({"port": "1"}))).await;
        h.expect(200, "PUT", &format!("/v1/hosts/{}/variables", ids[4]), &ed, Some(json!({"env": "prod"}))).await;

        let names = |q: &str| {
            let h = &h;
            let ed = ed.clone();
            // Quotes of JSON strings are not URI characters.
            let q = q.replace('"', "%22");
            async move { h.expect(200, "GET", &format!("/v1/hosts?{q}"), &ed, None).await.names() }
        };
        assert_eq!(names("").await, ["h0", "h1", "h2", "h3", "h4", "h5", "h6"]);
        assert_eq!(names("name=h3").await, ["h3"]);
        assert_eq!(names("group=prod").await, ["h0", "h1", "h2", "h3"]);
        assert_eq!(names(&format!("group={prod}")).await, ["h0", "h1", "h2", "h3"]);
        assert_eq!(names("group=other").await, ["h4"]);
        assert_eq!(names("group=nope").await, Vec::<String>::new());
        assert_eq!(names("label=even").await, ["h0", "h2", "h4", "h6"]);
        assert_eq!(names("label=even&label=x&group=web").await, ["h0", "h2"]);
        assert_eq!(names("parent=h0").await, ["h5"]);
        assert_eq!(names(&format!("parent={}", ids[0])).await, ["h5"]);
        assert_eq!(names("parent=nope").await, Vec::<String>::new());
        assert_eq!(names("active=false").await, ["h6"]);
        assert_eq!(names("active=true&label=even").await, ["h0", "h2", "h4"]);
        // vars: resolved values, type-strict, ANDed; an override hides the inherited match.
        assert_eq!(names("vars=env:\"prod\"").await, ["h0", "h2", "h3", "h4"]);
        assert_eq!(names("vars=env:prod").await, ["h0", "h2", "h3", "h4"]);
        assert_eq!(names("vars=env:dev").await, ["h1"]);
        assert_eq!(names("vars=port:1").await, ["h0", "h1", "h3"]);
        assert_eq!(names("vars=port:\"1\"").await, ["h2"]);
        assert_eq!(names("vars=port:1.0").await, Vec::<String>::new());
        assert_eq!(names("vars=env:prod&vars=port:1").await, ["h0", "h3"]);
        assert_eq!(names("vars=nokey:1").await, Vec::<String>::new());
        let r = h.expect(400, "GET", "/v1/hosts?vars=novalue", &ed, None).await;
        assert_eq!(r.detail_fields(), ["vars"]);

        // Details and resolved variables in lists.
        let r = h.expect(200, "GET", "/v1/hosts?name=h1", &ed, None).await;
        assert!(r.body["items"][0].get("variables").is_none());
        let r = h.expect(200, "GET", "/v1/hosts?name=h1&details=true", &ed, None).await;
        assert_eq!(r.body["items"][0]["variables"], json!({"env": "dev"}));
        let r = h.expect(200, "GET", "/v1/hosts?name=h1&details=true&resolved=true", &ed, None).await;
        assert_eq!(r.body["items"][0]["variables"], json!({"env": "dev", "port": 1}));

        // Paging: terminates, covers everything once, links echo the filters.
        let all = pages(&h, &ed, "/v1/hosts?label=x&limit=3").await;
        let sizes: Vec<usize> = all.iter().map(|p| p["items"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let seen: Vec<String> = all.iter().flat_map(item_names).collect();
        assert_eq!(seen, ["h0", "h1", "h2", "h3", "h4", "h5", "h6"]);
        assert_eq!(all[0]["links"]["self"], "/v1/hosts?label=x&limit=3");
        assert_eq!(all[0]["links"]["next"], format!("/v1/hosts?label=x&limit=3&marker={}", ids[2]));
        assert!(all[0]["links"].get("prev").is_none());
        assert_eq!(all[1]["links"]["prev"], "/v1/hosts?label=x&limit=3");
        assert_eq!(all[2]["links"]["prev"], format!("/v1/hosts?label=x&limit=3&marker={}", ids[2]));
        assert!(all[2]["links"].get("next").is_none());
        // Filters that skip items page correctly too, and every parameter is echoed.
        let all = pages(&h, &ed, "/v1/hosts?vars=env%3Aprod&label=even&details=true&limit=2").await;
        let seen: Vec<String> = all.iter().flat_map(item_names).collect();
        assert_eq!(seen, ["h0", "h2", "h4"]);
        assert_eq!(
            all[0]["links"]["next"],
            format!("/v1/hosts?vars=env%3Aprod&label=even&details=true&limit=2&marker={}", ids[2])
        );
        // An exactly full last page has no next.
        let all = pages(&h, &ed, "/v1/hosts?limit=7").await;
        assert_eq!(all.len(), 1);
        // Limits are clamped, never refused; a bad marker is a 400.
        let r = h.expect(200, "GET", "/v1/hosts?limit=0", &ed, None).await;
        assert_eq!((r.names().len(), r.body["links"]["self"].clone()), (1, json!("/v1/hosts?limit=1")));
        let r = h.expect(200, "GET", "/v1/hosts?limit=-5", &ed, None).await;
        assert_eq!(r.names().len(), 1);
        let r = h.expect(200, "GET", "/v1/hosts?limit=100000", &ed, None).await;
        assert_eq!((r.names().len(), r.body["links"]["self"].clone()), (7, json!("/v1/hosts?limit=1000")));
        let r = h.expect(200, "GET", "/v1/hosts?limit=many", &ed, None).await;
        assert_eq!(r.body["links"]["self"], "/v1/hosts?limit=50");
        let r = h.expect(400, "GET", "/v1/hosts?marker=abc", &ed, None).await;
        assert_eq!(r.detail_fields(), ["marker"]);
        let r = h.expect(200, "GET", &format!("/v1/hosts?marker={}", ids[6]), &ed, None).await;
        assert_eq!(r.names().len(), 0);
        // A marker that was deleted still pages from where it was.
        h.expect(204, "DELETE", &format!("/v1/hosts/{}", ids[3]), &ed, None).await;
        let r = h.expect(200, "GET", &format!("/v1/hosts?limit=2&marker={}", ids[3]), &ed, None).await;
        assert_eq!(r.names(), ["h4", "h5"]);
        // Unknown parameters are named.
        let r = h.expect(400, "GET", "/v1/hosts?colour=red&kind=x", &ed, None).await;
        assert_eq!(r.detail_fields(), ["colour", "kind"]);

        // Groups and projects lists.
        let r = h.expect(200, "GET", "/v1/groups?kind=role", &ed, None).await;
        assert_eq!(r.names(), ["web", "other"]);
        let r = h.expect(200, "GET", "/v1/groups?kind=role&name=other&details=1", &ed, None).await;
        assert_eq!((r.names(), r.body["items"][0]["variables"].clone()), (vec!["other".to_string()], json!({})));
        let all = pages(&h, &ed, "/v1/groups?limit=1").await;
        assert_eq!(all.iter().flat_map(item_names).collect::<Vec<_>>(), ["prod", "web", "other"]);
        let root = h.token(None, Role::Root);
        for n in ["p1", "p2", "p3"] {
            h.create("/v1/projects", &root, json!({"name": n})).await;
        }
        let all = pages(&h, &root, "/v1/projects?limit=2").await;
        assert_eq!(all.iter().flat_map(item_names).collect::<Vec<_>>(), ["default", "p1", "p2", "p3"]);
        let r = h.expect(200, "GET", "/v1/projects?name=p2", &root, None).await;
        assert_eq!(r.names(), ["p2"]);
    }
}

#[tokio::test]
async fn oversize_bodies_are_413_and_errors_keep_their_shape() {
    for b in backends() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
        for (m, path) in [("POST", "/v1/hosts"), ("PUT", "/v1/hosts/1/variables"), ("POST", "/v1/groups")] {
            let r = h.raw(m, path, Some(&ed), big.clone().into_bytes()).await;
            assert_eq!(r.status, 413, "{m} {path}: {}", r.text);
            assert_eq!(r.body["error"]["status"], 413);
        }
        let r = h.raw("GET", "/v1/hosts", None, Vec::new()).await;
        assert_eq!((r.status.as_u16(), r.body["error"]["status"].clone()), (401, json!(401)));
        // A name longer than the schema holds is a 400, never a database error.
        let r = h.expect(400, "POST", "/v1/hosts", &ed, Some(json!({"name": "n".repeat(192)}))).await;
        assert_eq!(r.detail_fields(), ["name"]);
        let r = h.expect(400, "POST", "/v1/groups", &ed, Some(json!({"name": "g", "description": "a\u{0}b"}))).await;
        assert_eq!(r.detail_fields(), ["description"]);
        let pid = h.get("/v1/projects", &ed).await.body["items"][0]["id"].as_i64().unwrap();
        let r = h.expect(400, "PUT", &format!("/v1/projects/{pid}/variables"), &ed, Some(json!({"k\u{0}": 1}))).await;
        assert_eq!(r.detail_fields(), ["k\u{0}"]);
    }
}
