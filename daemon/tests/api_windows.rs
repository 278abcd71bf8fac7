//! Maintenance windows over the REST API: field errors, inheritance down
//! the group tree, deletion, and `windows/next` answered from a clock the
//! test sets (no sleeping), on every backend.

mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::{backends, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use serde_json::json;

fn harness(b: common::Backend, clock: &Arc<ManualClock>) -> Harness {
    Harness::with_clock(b, clock.clone())
}

#[tokio::test]
async fn bad_windows_name_the_field() {
    for b in backends() {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()));
        let h = harness(b, &clock);
        let ed = h.token(Some("default"), Role::Editor);
        let g = h.create("/v1/groups", &ed, json!({"name": "cell1"})).await;
        let path = format!("/v1/groups/{g}/windows");
        let ok =
            json!({"name": "w", "kind": "cron", "expression": "0 2 * * SAT", "time_zone": "UTC", "duration_s": 60});
        let cases = [
            ("expression", json!({"expression": "0 99 * * *"})),
            ("expression", json!({"kind": "rrule", "expression": "RRULE:FREQ=NOPE"})),
            ("time_zone", json!({"time_zone": "Mars/Olympus"})),
            ("time_zone", json!({"time_zone": null})),
            ("duration_s", json!({"duration_s": 0})),
            ("duration_s", json!({"duration_s": "1h"})),
            ("kind", json!({"kind": "weekly"})),
            ("name", json!({"name": ""})),
        ];
        for (field, change) in cases {
            let mut body = ok.clone();
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let r = h.expect(400, "POST", &path, &ed, Some(body.clone())).await;
            assert_eq!(r.detail_fields(), [field], "{b:?} {body}: {}", r.text);
        }
        h.expect(201, "POST", &path, &ed, Some(ok.clone())).await;
        // Unique per group.
        h.expect(409, "POST", &path, &ed, Some(ok.clone())).await;
        // Readers may not add one.
        let reader = h.token(Some("default"), Role::Reader);
        h.expect(403, "POST", &path, &reader, Some(ok)).await;
    }
}

#[tokio::test]
async fn windows_are_inherited_and_next_follows_the_clock() {
    for b in backends() {
        // Monday 2026-11-02 00:00 UTC.
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()));
        let h = harness(b, &clock);
        let ed = h.token(Some("default"), Role::Editor);
        // region > cell > rack1 (h1), rack2 (h2).
        let region = h.create("/v1/groups", &ed, json!({"name": "region"})).await;
        let cell = h.create("/v1/groups", &ed, json!({"name": "cell", "parents": [region]})).await;
        let rack1 = h.create("/v1/groups", &ed, json!({"name": "rack1", "parents": [cell]})).await;
        let rack2 = h.create("/v1/groups", &ed, json!({"name": "rack2", "parents": [cell]})).await;
        h.create("/v1/hosts", &ed, json!({"name": "h1", "groups": [rack1]})).await;
        h.create("/v1/hosts", &ed, json!({"name": "h2", "groups": [rack2]})).await;

        // No window yet.
        let r = h.expect(200, "GET", &format!("/v1/groups/{cell}/windows/next"), &ed, None).await;
        assert_eq!(
            (r.body["has_windows"].clone(), r.body["opens_at"].clone()),
            (json!(false), json!(null)),
            "{}",
            r.text
        );

        // region: every 1 January 12:00-13:00 UTC, inherited by both racks.
        // rack1: Saturdays 00:00-04:00 UTC (cron); rack2: Saturdays
        // 02:00-06:00 Berlin = 01:00-05:00 UTC (RRULE). Together: 01-04 UTC.
        let yearly = h
            .create(
                &format!("/v1/groups/{region}/windows"),
                &ed,
                json!({"name": "new-year", "kind": "cron", "expression": "0 12 1 1 *", "time_zone": "UTC", "duration_s": 3600}),
            )
            .await;
        let w1 = h
            .create(
                &format!("/v1/groups/{rack1}/windows"),
                &ed,
                json!({"name": "sat", "kind": "cron", "expression": "0 0 * * SAT", "time_zone": "UTC", "duration_s": 14400}),
            )
            .await;
        h.create(
            &format!("/v1/groups/{rack2}/windows"),
            &ed,
            json!({"name": "sat", "kind": "rrule",
                   "expression": "DTSTART;TZID=Europe/Berlin:20261107T020000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
                   "duration_s": 14400}),
        )
        .await;

        // rack1 lists its own window and the region's, marked inherited.
        let r = h.expect(200, "GET", &format!("/v1/groups/{rack1}/windows"), &ed, None).await;
        let ws = r.body["windows"].as_array().unwrap();
        assert_eq!(ws.len(), 2, "{}", r.text);
        assert_eq!((ws[0]["id"].clone(), ws[0]["inherited"].clone()), (json!(yearly), json!(true)));
        assert_eq!(ws[0]["group"], json!({"id": region, "name": "region"}));
        assert_eq!((ws[1]["id"].clone(), ws[1]["inherited"].clone()), (json!(w1), json!(false)));
        let r = h.expect(200, "GET", &format!("/v1/groups/{rack2}/windows"), &ed, None).await;
        assert_eq!(r.body["windows"][1]["time_zone"], "Europe/Berlin", "{}", r.text);

        let next = format!("/v1/groups/{cell}/windows/next");
        let r = h.expect(200, "GET", &next, &ed, None).await;
        assert_eq!(r.body["hosts"], 2);
        assert_eq!(r.body["open_now"], false, "{}", r.text);
        assert_eq!(r.body["opens_at"], "2026-11-07T01:00:00Z", "{}", r.text);
        assert_eq!(r.body["closes_at"], "2026-11-07T04:00:00Z");

        // The clock moves into the window: open now, with its interval.
        clock.set(Utc.with_ymd_and_hms(2026, 11, 7, 2, 30, 0).unwrap());
        let r = h.expect(200, "GET", &next, &ed, None).await;
        assert_eq!(r.body["open_now"], true, "{}", r.text);
        assert_eq!(r.body["now"], "2026-11-07T02:30:00Z");
        assert_eq!(
            (r.body["opens_at"].clone(), r.body["closes_at"].clone()),
            (json!("2026-11-07T01:00:00Z"), json!("2026-11-07T04:00:00Z"))
        );

        // A group without hosts answers for its own and inherited windows.
        let empty = h.create("/v1/groups", &ed, json!({"name": "empty", "parents": [region]})).await;
        let r = h.expect(200, "GET", &format!("/v1/groups/{empty}/windows/next"), &ed, None).await;
        assert_eq!(
            (r.body["hosts"].clone(), r.body["opens_at"].clone()),
            (json!(0), json!("2027-01-01T12:00:00Z")),
            "{}",
            r.text
        );

        // Without rack1's window, h1 is only inside the region's.
        h.expect(204, "DELETE", &format!("/v1/windows/{w1}"), &ed, None).await;
        h.expect(404, "DELETE", &format!("/v1/windows/{w1}"), &ed, None).await;
        let r = h.expect(200, "GET", &next, &ed, None).await;
        assert_eq!(
            (r.body["open_now"].clone(), r.body["opens_at"].clone(), r.body["closes_at"].clone()),
            (json!(false), json!("2027-01-01T12:00:00Z"), json!("2027-01-01T13:00:00Z")),
            "{}",
            r.text
        );

        // Windows go with their group.
        h.expect(204, "DELETE", &format!("/v1/groups/{rack2}"), &ed, None).await;
        let left: Vec<i64> = {
            use diesel::prelude::*;
            let mut c = h.conn();
            let t = craton::store::schema::maintenance_windows::table;
            t.select(craton::store::schema::maintenance_windows::id).load(&mut c).unwrap()
        };
        assert_eq!(left, [yearly]);
    }
}

#[tokio::test]
async fn the_project_list_shows_each_windows_next_opening_soonest_first() {
    for b in backends() {
        // Monday 2026-11-02 00:30 UTC.
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 30, 0).unwrap()));
        let h = harness(b, &clock);
        let ed = h.token(Some("default"), Role::Editor);
        let cell = h.create("/v1/groups", &ed, json!({"name": "cell"})).await;
        let dc = h.create("/v1/groups", &ed, json!({"name": "dc"})).await;
        let w = |name: &str, expr: &str, tz: &str, d: i64| json!({"name": name, "kind": "cron", "expression": expr, "time_zone": tz, "duration_s": d});
        // Saturdays 02:00 in Berlin (01:00 UTC in November), and nightly at
        // 00:00 UTC for an hour: open now.
        h.create(&format!("/v1/groups/{cell}/windows"), &ed, w("sat", "0 2 * * SAT", "Europe/Berlin", 7200)).await;
        h.create(&format!("/v1/groups/{dc}/windows"), &ed, w("nightly", "0 0 * * *", "UTC", 3600)).await;
        let r = h.expect(200, "GET", "/v1/windows", &ed, None).await;
        let got: Vec<(String, String, bool, String, String)> = r.body["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["name"].as_str().unwrap().to_string(),
                    w["group"]["name"].as_str().unwrap().to_string(),
                    w["open_now"].as_bool().unwrap(),
                    w["opens_at"].as_str().unwrap().to_string(),
                    w["closes_at"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let row = |n: &str, g: &str, open: bool, a: &str, z: &str| (n.into(), g.into(), open, a.into(), z.into());
        assert_eq!(
            got,
            vec![
                row("nightly", "dc", true, "2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z"),
                row("sat", "cell", false, "2026-11-07T01:00:00Z", "2026-11-07T03:00:00Z"),
            ],
            "{b:?}: {}",
            r.text
        );
        assert_eq!(r.body["now"], "2026-11-02T00:30:00Z", "{b:?}");
        // The clock moves: the nightly one's next opening is tomorrow's.
        clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 1, 30, 0).unwrap());
        let r = h.expect(200, "GET", "/v1/windows", &ed, None).await;
        assert_eq!(r.body["windows"][0]["opens_at"], "2026-11-03T00:00:00Z", "{b:?}: {}", r.text);
        assert_eq!(r.body["windows"][0]["open_now"], false, "{b:?}");
        // Another project sees none of them.
        h.create("/v1/projects", &h.token(None, Role::Root), json!({"name": "other"})).await;
        let other = h.token(Some("other"), Role::Reader);
        assert_eq!(h.expect(200, "GET", "/v1/windows", &other, None).await.body["windows"], json!([]), "{b:?}");
    }
}
