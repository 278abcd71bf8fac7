//! Schedules over the REST API on every backend: field errors (the template
//! checked as a `POST /v1/runs` body), `next_run` from the clock the test
//! sets, enable/disable and rule changes, paging, delete, and the firing
//! log: ticks (`cratond::schedules::tick`, called directly: no ticker, no
//! sleeping) claim each occurrence once, record a refused submit, refuse
//! a revoked creator, and apply `catch_up` after a downtime (a clock jump).
//! The templates here are refused at submit time (an unknown config ref),
//! so no playbook runs; `schedules_fire` runs real ones.

mod common;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use common::{backends, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use serde_json::{json, Value};

fn t0() -> chrono::DateTime<Utc> {
    // Monday 2026-11-02 09:30 UTC.
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap()
}

/// Valid for parse_request, refused by submit (no such config ref).
fn template() -> Value {
    json!({"playbook": "site.yml", "config_ref": 999})
}

fn hourly(name: &str) -> Value {
    json!({"name": name, "template": template(), "kind": "cron", "expression": "0 * * * *", "time_zone": "UTC"})
}

async fn firings(h: &Harness, tok: &str, id: i64) -> Vec<Value> {
    h.expect(200, "GET", &format!("/v1/schedules/{id}/firings"), tok, None).await.body["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn bad_schedules_name_the_field() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(t0()));
        let h = Harness::with_clock(b, clock.clone());
        let ed = h.token(Some("default"), Role::Editor);
        let rd = h.token(Some("default"), Role::Reader);
        let cases = [
            ("template.playbook", json!({"template": {"group": "cell"}})),
            ("template.bogus", json!({"template": {"playbook": "a.yml", "bogus": 1}})),
            // Checked when written: a typo is caught now, not at night.
            ("template.group", json!({"template": {"playbook": "a.yml", "config_ref": 9, "group": "nope"}})),
            // The repository as at submit: well-formed URL and ref.
            (
                "template.ref",
                json!({"template": {"playbook": "a.yml", "repo": "https://example.com/r.git", "ref": "a..b"}}),
            ),
            ("template.repo", json!({"template": {"playbook": "a.yml", "repo": "ftp://example.com/r", "ref": "main"}})),
            ("template", json!({"template": "site.yml"})),
            ("expression", json!({"expression": "0 99 * * *"})),
            ("expression", json!({"kind": "rrule", "expression": "DTSTART:20261102T100000\nRRULE:FREQ=DAILY"})),
            ("time_zone", json!({"time_zone": "Mars/Olympus"})),
            ("time_zone", json!({"time_zone": null})),
            ("kind", json!({"kind": "weekly"})),
            ("catch_up", json!({"catch_up": "always"})),
            ("name", json!({"name": ""})),
        ];
        for (field, change) in cases {
            let mut body = hourly("s");
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let r = h.expect(400, "POST", "/v1/schedules", &ed, Some(body.clone())).await;
            assert!(r.detail_fields().contains(&field.to_string()), "{b:?} {body}: {}", r.text);
        }
        let mut missing = hourly("s");
        missing.as_object_mut().unwrap().remove("template");
        let r = h.expect(400, "POST", "/v1/schedules", &ed, Some(missing)).await;
        assert_eq!(r.detail_fields(), vec!["template"], "{}", r.text);
        h.expect(400, "POST", "/v1/schedules", &ed, Some(json!({"name": "s", "wat": 1}))).await;
        h.expect(403, "POST", "/v1/schedules", &rd, Some(hourly("s"))).await;
        // ... and one the repository policy lets this caller use: a local
        // repository is root's (docs/runs.md), refused now rather than at
        // every firing; the same for a PATCH of the template.
        let local = json!({"playbook": "a.yml", "repo": "file:///srv/playbooks.git", "ref": "main"});
        let mut body = hourly("local");
        body["template"] = local.clone();
        let r = h.expect(403, "POST", "/v1/schedules", &ed, Some(body.clone())).await;
        assert!(r.text.contains("file:///srv/playbooks.git") || r.text.contains("local"), "{b:?}: {}", r.text);
        let root = h.token(None, Role::Root);
        let id = h.create("/v1/schedules?project=default", &root, body).await;
        h.expect(403, "PATCH", &format!("/v1/schedules/{id}"), &ed, Some(json!({"template": local}))).await;
        h.expect(204, "DELETE", &format!("/v1/schedules/{id}"), &ed, None).await;
        h.create("/v1/schedules", &ed, hourly("s")).await;
        h.expect(409, "POST", "/v1/schedules", &ed, Some(hourly("s"))).await;
        assert_eq!(h.get("/v1/schedules", &rd).await.names(), vec!["s"]);
    }
}

#[tokio::test]
async fn next_run_follows_the_clock_enable_and_rule() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(t0()));
        let h = Harness::with_clock(b, clock.clone());
        let ed = h.token(Some("default"), Role::Editor);
        let r = h.expect(201, "POST", "/v1/schedules", &ed, Some(hourly("hourly"))).await;
        let id = r.body["id"].as_i64().unwrap();
        assert_eq!(r.body["next_run"], "2026-11-02T10:00:00Z", "{b:?}: {}", r.text);
        assert_eq!(r.body["catch_up"], "skip", "the default");
        assert_eq!(r.body["enabled"], true);
        assert_eq!(r.body["template"], template());
        let creator = r.body["created_by"].as_str().unwrap().to_string();
        assert!(creator.starts_with("token ") && creator.ends_with("(editor)"), "{creator}");
        assert_eq!(r.headers["location"], format!("/v1/schedules/{id}"));
        // An RRULE in Berlin: 02:30 local daily, CET in November = 01:30 UTC.
        let rr = h
            .expect(
                201,
                "POST",
                "/v1/schedules",
                &ed,
                Some(json!({"name": "berlin", "template": template(), "kind": "rrule",
                    "expression": "DTSTART;TZID=Europe/Berlin:20261101T023000\nRRULE:FREQ=DAILY", "catch_up": "once"})),
            )
            .await;
        assert_eq!(rr.body["next_run"], "2026-11-03T01:30:00Z", "{}", rr.text);
        assert_eq!(rr.body["time_zone"], "Europe/Berlin");
        let path = format!("/v1/schedules/{id}");
        let off = h.expect(200, "PATCH", &path, &ed, Some(json!({"enabled": false}))).await;
        assert_eq!((off.body["enabled"].clone(), off.body["next_run"].clone()), (json!(false), Value::Null));
        // Enabled again later: the next occurrence after then, no catch-up.
        clock.set(t0() + Duration::hours(5));
        let on = h.expect(200, "PATCH", &path, &ed, Some(json!({"enabled": true}))).await;
        assert_eq!(on.body["next_run"], "2026-11-02T15:00:00Z", "{}", on.text);
        let rule = h.expect(200, "PATCH", &path, &ed, Some(json!({"expression": "30 2 * * *"}))).await;
        assert_eq!(rule.body["next_run"], "2026-11-03T02:30:00Z", "{}", rule.text);
        assert_eq!(rule.body["time_zone"], "UTC", "the cron zone is kept");
        let tz = h.expect(200, "PATCH", &path, &ed, Some(json!({"time_zone": "Asia/Tokyo"}))).await;
        // 02:30 Tokyo (UTC+9) = 17:30 UTC the day before.
        assert_eq!(tz.body["next_run"], "2026-11-02T17:30:00Z", "{}", tz.text);
        let r = h.expect(400, "PATCH", &path, &ed, Some(json!({"template": {"playbook": 5, "config_ref": 999}}))).await;
        let fields = r.detail_fields();
        assert!(!fields.is_empty() && fields.iter().all(|f| f == "template.playbook"), "{}", r.text);
        h.expect(400, "PATCH", &path, &ed, Some(json!({"name": "renamed"}))).await;
        let t = h
            .expect(200, "PATCH", &path, &ed, Some(json!({"template": {"playbook": "other.yml", "config_ref": 999}})))
            .await;
        assert_eq!(t.body["template"]["playbook"], "other.yml");
        assert_eq!(h.expect(200, "GET", &path, &ed, None).await.body["template"]["playbook"], "other.yml");
        // Paging: by id, limit + marker.
        let p1 = h.expect(200, "GET", "/v1/schedules?limit=1", &ed, None).await;
        assert_eq!(p1.names(), vec!["hourly"]);
        let next = p1.body["links"]["next"].as_str().unwrap().to_string();
        assert_eq!(h.expect(200, "GET", &next, &ed, None).await.names(), vec!["berlin"]);
        h.expect(204, "DELETE", &path, &ed, None).await;
        h.expect(404, "GET", &path, &ed, None).await;
        h.expect(404, "GET", &format!("{path}/firings"), &ed, None).await;
        assert_eq!(h.get("/v1/schedules", &ed).await.names(), vec!["berlin"]);
    }
}

#[tokio::test]
async fn ticks_claim_each_occurrence_once_and_record_refusals() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(t0()));
        let h = Harness::with_clock(b, clock.clone());
        let (tid, ed) = h.token_with_id(Some("default"), Role::Editor);
        let id = h.create("/v1/schedules", &ed, hourly("hourly")).await;
        // Before the occurrence: nothing.
        assert_eq!(cratond::schedules::tick(&h.state).await.unwrap(), 0);
        assert!(firings(&h, &ed, id).await.is_empty());
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 5).unwrap());
        cratond::schedules::tick(&h.state).await.unwrap();
        // The same instant again (a second daemon, or the next tick): no second firing.
        cratond::schedules::tick(&h.state).await.unwrap();
        let f = firings(&h, &ed, id).await;
        assert_eq!(f.len(), 1, "{b:?}: {f:?}");
        assert_eq!(f[0]["occurrence"], "2026-11-02T10:00:00Z");
        assert_eq!(f[0]["status"], "error", "{f:?}");
        assert!(f[0]["error"].as_str().unwrap().contains("config_ref"), "{f:?}");
        assert_eq!(f[0]["run_id"], Value::Null);
        let s = h.expect(200, "GET", &format!("/v1/schedules/{id}"), &ed, None).await;
        assert_eq!(s.body["next_run"], "2026-11-02T11:00:00Z");
        // The creator's token revoked: the next firing is refused as such.
        h.expect(204, "DELETE", &format!("/v1/tokens/{tid}"), &h.token(None, Role::Root), None).await;
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 11, 0, 0).unwrap());
        cratond::schedules::tick(&h.state).await.unwrap();
        let root = h.token(None, Role::Root);
        let f = firings(&h, &root, id).await;
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0]["occurrence"], "2026-11-02T11:00:00Z", "newest first");
        let err = f[0]["error"].as_str().unwrap();
        assert!(err.contains(&format!("token {tid}")) && err.contains("revoked"), "{err}");
        // A disabled schedule does not fire.
        h.expect(200, "PATCH", &format!("/v1/schedules/{id}"), &root, Some(json!({"enabled": false}))).await;
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap());
        cratond::schedules::tick(&h.state).await.unwrap();
        assert_eq!(firings(&h, &root, id).await.len(), 2);
    }
}

#[tokio::test]
async fn catch_up_once_runs_the_latest_missed_and_skip_none() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(t0()));
        let h = Harness::with_clock(b, clock.clone());
        let ed = h.token(Some("default"), Role::Editor);
        let mut once = hourly("once");
        once["catch_up"] = json!("once");
        let once = h.create("/v1/schedules", &ed, once).await;
        let skip = h.create("/v1/schedules", &ed, hourly("skip")).await;
        // Every daemon down from 09:30 to 13:20: 10, 11, 12 and 13 o'clock missed.
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 13, 20, 0).unwrap());
        cratond::schedules::tick(&h.state).await.unwrap();
        cratond::schedules::tick(&h.state).await.unwrap();
        let f = firings(&h, &ed, once).await;
        assert_eq!(f.len(), 1, "{b:?}: {f:?}");
        assert_eq!(f[0]["occurrence"], "2026-11-02T13:00:00Z");
        assert_eq!(f[0]["missed"], 3);
        // Submitted (and refused by submit: the template's config ref).
        assert_eq!(f[0]["status"], "error", "{f:?}");
        let f = firings(&h, &ed, skip).await;
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0]["status"].clone(), f[0]["missed"].clone()), (json!("skipped"), json!(4)), "{f:?}");
        assert_eq!(f[0]["occurrence"], "2026-11-02T13:00:00Z");
        for id in [once, skip] {
            let s = h.expect(200, "GET", &format!("/v1/schedules/{id}"), &ed, None).await;
            assert_eq!(s.body["next_run"], "2026-11-02T14:00:00Z", "{}", s.text);
        }
        // Back to normal: the next on-time occurrence fires under skip too.
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 14, 0, 1).unwrap());
        cratond::schedules::tick(&h.state).await.unwrap();
        let f = firings(&h, &ed, skip).await;
        assert_eq!(f.len(), 2);
        assert_eq!((f[0]["status"].clone(), f[0]["missed"].clone()), (json!("error"), json!(0)), "{f:?}");
    }
}

#[tokio::test]
async fn cli_schedules_are_the_operators_and_fire_as_such() {
    use cratond::schedule_cli::{schedule, ScheduleAction};
    let clock = Arc::new(ManualClock::new(t0()));
    let h = Harness::with_clock(common::backends()[0], clock.clone());
    let ed = h.token(Some("default"), Role::Editor);
    let mut c = h.conn();
    let add = |name: &str, cron: Option<&str>, rrule: Option<&str>| ScheduleAction::Add {
        project: "default".into(),
        name: name.into(),
        template: template().to_string(),
        cron: cron.map(str::to_string),
        rrule: rrule.map(str::to_string),
        time_zone: cron.map(|_| "UTC".to_string()),
        catch_up: "once".into(),
        disabled: false,
        after: Vec::new(),
    };
    schedule(&mut c, add("cli", Some("0 * * * *"), None)).unwrap();
    schedule(&mut c, add("cli-rrule", None, Some("DTSTART:20261102T120000Z\\nRRULE:FREQ=DAILY"))).unwrap();
    let mut bad = add("bad", Some("0 * * * *"), None);
    if let ScheduleAction::Add { template, .. } = &mut bad {
        *template = "{\"playbook\": 1}".into();
    }
    assert!(schedule(&mut c, bad).unwrap_err().to_string().contains("playbook"));
    let r = h.expect(200, "GET", "/v1/schedules", &ed, None).await;
    assert_eq!(r.names(), vec!["cli", "cli-rrule"]);
    assert_eq!(r.body["items"][0]["created_by"], "local (root)");
    // The CLI has no test clock: "now" is the wall clock's.
    let daily = r.body["items"][1]["next_run"].as_str().unwrap();
    assert!(daily.ends_with("T12:00:00Z") && daily > "2026-12-01", "{}", r.text);
    let id = r.body["items"][0]["id"].as_i64().unwrap();
    let next: chrono::DateTime<Utc> = r.body["items"][0]["next_run"].as_str().unwrap().parse().unwrap();
    assert!(next > Utc::now() && next - Utc::now() <= Duration::hours(1), "{next}");
    clock.set(next + Duration::seconds(1));
    cratond::schedules::tick(&h.state).await.unwrap();
    let f = firings(&h, &ed, id).await;
    // Submitted as root of the project: refused only by the template's config ref.
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0]["error"].as_str().unwrap().contains("no config ref 999"), "{f:?}");
    schedule(&mut c, ScheduleAction::Remove { id, project: "default".into() }).unwrap();
    assert!(schedule(&mut c, ScheduleAction::Remove { id, project: "default".into() }).is_err());
    assert_eq!(h.get("/v1/schedules", &ed).await.names(), vec!["cli-rrule"]);
}

#[tokio::test]
async fn schedules_come_after_schedules_and_cycles_are_refused() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(t0()));
        let h = Harness::with_clock(b, clock.clone());
        // Root: the submit accepts the file:// repository (the run then
        // ends `error` in the runner, which is all this test needs).
        let root = h.token(None, Role::Root);
        h.create("/v1/hosts", &root, json!({"name": "h1"})).await;
        let with = |name: &str, after: Value| {
            let mut s = hourly(name);
            s["template"] = json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main"});
            s["after_schedules"] = after;
            s
        };
        let a = h.create("/v1/schedules", &root, with("a", json!([]))).await;
        let r = h.expect(201, "POST", "/v1/schedules", &root, Some(with("b", json!([a])))).await;
        assert_eq!(r.body["after_schedules"], json!([a]), "{b:?}: {}", r.text);
        let bid = r.body["id"].as_i64().unwrap();
        for bad in [json!([999]), json!(["x"]), json!([a, a]), json!(5)] {
            let r = h.call("POST", "/v1/schedules", &root, Some(with("c", bad.clone()))).await;
            assert_eq!(
                (r.status.as_u16(), r.detail_fields()),
                (400, vec!["after_schedules".into()]),
                "{b:?} {bad}: {}",
                r.text
            );
        }
        // a after b closes a -> b -> a; a after itself too. Nothing changes.
        let r = h.call("PATCH", &format!("/v1/schedules/{a}"), &root, Some(json!({"after_schedules": [bid]}))).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        assert!(r.text.contains(&format!("{a} -> {bid} -> {a}")), "{b:?}: {}", r.text);
        let r = h.call("PATCH", &format!("/v1/schedules/{a}"), &root, Some(json!({"after_schedules": [a]}))).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        assert_eq!(h.get(&format!("/v1/schedules/{a}"), &root).await.body["after_schedules"], json!([]), "{b:?}");
        // A diamond is no cycle.
        let c = h.create("/v1/schedules", &root, with("c", json!([a, bid]))).await;
        // Another project cannot name this project's schedules.
        h.expect(201, "POST", "/v1/projects", &root, Some(json!({"name": "other"}))).await;
        let r = h.call("POST", "/v1/schedules?project=other", &root, Some(with("x", json!([a])))).await;
        assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["after_schedules".into()]), "{b:?}: {}", r.text);
        // One tick fires all three in id order: b's and c's runs come after
        // the run a has just fired (and c's after b's too).
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 5).unwrap());
        assert_eq!(cratond::schedules::tick(&h.state).await.unwrap(), 3, "{b:?}");
        let run_of = |f: Vec<Value>| f[0]["run_id"].as_i64().unwrap_or_else(|| panic!("{b:?}: {f:?}"));
        let (ra, rb, rc) = (
            run_of(firings(&h, &root, a).await),
            run_of(firings(&h, &root, bid).await),
            run_of(firings(&h, &root, c).await),
        );
        let after = |run: i64| {
            let h = &h;
            let root = &root;
            async move { h.get(&format!("/v1/runs/{run}"), root).await.body["options"]["after"].clone() }
        };
        assert_eq!(after(ra).await, json!([]), "{b:?}");
        assert_eq!(after(rb).await, json!([ra]), "{b:?}");
        assert_eq!(after(rc).await, json!([ra, rb]), "{b:?}");
        // Deleting a schedule drops the edges to it.
        h.expect(204, "DELETE", &format!("/v1/schedules/{a}"), &root, None).await;
        assert_eq!(h.get(&format!("/v1/schedules/{c}"), &root).await.body["after_schedules"], json!([bid]), "{b:?}");
        let r = h.call("PATCH", &format!("/v1/schedules/{bid}"), &root, Some(json!({"after_schedules": [c]}))).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        let r =
            h.expect(200, "PATCH", &format!("/v1/schedules/{c}"), &root, Some(json!({"after_schedules": []}))).await;
        assert_eq!(r.body["after_schedules"], json!([]), "{b:?}: {}", r.text);
        let r =
            h.expect(200, "PATCH", &format!("/v1/schedules/{bid}"), &root, Some(json!({"after_schedules": [c]}))).await;
        assert_eq!(r.body["after_schedules"], json!([c]), "{b:?}: {}", r.text);
    }
}
