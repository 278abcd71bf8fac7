//! Schedules: a run template fired on a recurrence (issue 10).
//!
//! This module is the arithmetic only: which occurrence of a schedule is
//! due at "now", given the first occurrence not yet handled, under its
//! `catch_up` policy. The recurrence (RRULE with `DTSTART;TZID=`, or a cron
//! line in a time zone) is [`crate::windows::Recurrence`], the same parser
//! and DST behaviour as maintenance windows. The daemon owns the ticker,
//! the database claim of an occurrence and the submit of the run.
//!
//! An occurrence is *on time* when "now" is less than [`GRACE`] past it (a
//! daemon ticks every few seconds, so a live one always sees it on time).
//! Older due occurrences were missed: no daemon ran when they fell due.
//! `catch_up: "once"` runs once, for the latest missed occurrence;
//! `"skip"` (the default: a deployment never starts at an hour nobody
//! chose) runs none of them and waits for the next future occurrence.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use crate::windows::{Recurrence, WindowError};

/// How late an occurrence may be seen and still count as on time.
pub const GRACE: Duration = Duration::seconds(120);

/// What to do with occurrences missed while no daemon ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run once, for the latest missed occurrence.
    Once,
    /// Run none; wait for the next occurrence.
    #[default]
    Skip,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Once => "once",
            CatchUp::Skip => "skip",
        }
    }
}

impl FromStr for CatchUp {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Self, WindowError> {
        match s {
            "once" => Ok(CatchUp::Once),
            "skip" => Ok(CatchUp::Skip),
            other => {
                Err(WindowError { field: "catch_up", message: format!("must be \"once\" or \"skip\", not {other:?}") })
            }
        }
    }
}

/// The first occurrence strictly after `t` (within the search bound of
/// [`crate::windows::SEARCH_DAYS`]); `None` when the rule has ended.
pub fn next_after(rec: &Recurrence, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    rec.next_at_or_after(t + Duration::milliseconds(1))
}

/// What a tick does with one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The occurrence to claim: the latest one at or before "now". `None`
    /// when nothing is due yet.
    pub occurrence: Option<DateTime<Utc>>,
    /// Whether to run it (false: it is claimed only to record the skip).
    pub fire: bool,
    /// Due occurrences not run (counted from `next_due`, capped by the
    /// search bound).
    pub missed: usize,
    /// The next occurrence after "now": the schedule's new `next_run`.
    pub next: Option<DateTime<Utc>>,
}

/// The plan at `now` for a schedule whose first unhandled occurrence is
/// `next_due`.
pub fn plan(rec: &Recurrence, next_due: DateTime<Utc>, now: DateTime<Utc>, catch_up: CatchUp) -> Plan {
    if now < next_due {
        return Plan { occurrence: None, fire: false, missed: 0, next: Some(next_due) };
    }
    let until = now + Duration::milliseconds(1);
    let (due, _) = rec.starts(next_due, until);
    let next = next_after(rec, now);
    let Some(&latest) = due.last() else {
        // `next_due` was no occurrence (the rule changed under it).
        return Plan { occurrence: None, fire: false, missed: 0, next };
    };
    let on_time = now - latest < GRACE;
    let fire = on_time || catch_up == CatchUp::Once;
    let missed = due.len() - usize::from(fire);
    Plan { occurrence: Some(latest), fire, missed, next }
}

/// Most schedules one schedule may come after.
pub const MAX_AFTER_SCHEDULES: usize = 20;

/// Whether giving schedule `from` the dependencies `to` (with `edges`, the
/// other `(schedule, comes after)` pairs of its project; `from`'s own old
/// ones are ignored) closes a cycle; the cycle as a path from `from` back
/// to it, when it does.
pub fn cycle_through(edges: &[(i64, i64)], from: i64, to: &[i64]) -> Option<Vec<i64>> {
    let mut next: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    for (s, a) in edges.iter().filter(|(s, _)| *s != from) {
        next.entry(*s).or_default().push(*a);
    }
    next.insert(from, to.to_vec());
    // Depth-first from `from`, keeping the path; a schedule seen before is
    // not walked twice (a diamond is not a cycle).
    let mut seen = std::collections::HashSet::new();
    let mut path = vec![from];
    fn walk(
        at: i64,
        from: i64,
        next: &std::collections::HashMap<i64, Vec<i64>>,
        seen: &mut std::collections::HashSet<i64>,
        path: &mut Vec<i64>,
    ) -> bool {
        for &n in next.get(&at).map(Vec::as_slice).unwrap_or(&[]) {
            if n == from {
                path.push(n);
                return true;
            }
            if seen.insert(n) {
                path.push(n);
                if walk(n, from, next, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(from, from, &next, &mut seen, &mut path).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_cycle_is_found_and_named_and_a_diamond_is_not_one() {
        // 2 after 1, 3 after 2.
        let edges = [(2, 1), (3, 2)];
        assert_eq!(cycle_through(&edges, 1, &[3]), Some(vec![1, 3, 2, 1]));
        assert_eq!(cycle_through(&edges, 1, &[1]), Some(vec![1, 1]));
        assert_eq!(cycle_through(&edges, 4, &[3, 2]), None);
        // 1's old edges do not count: re-pointing 2 is not a cycle with them.
        assert_eq!(cycle_through(&[(2, 1), (1, 5)], 1, &[5]), None);
        // A diamond: 4 after 2 and 3, both after 1.
        assert_eq!(cycle_through(&[(2, 1), (3, 1)], 4, &[2, 3]), None);
    }
    use crate::windows::WindowKind;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn cron(line: &str, zone: &str) -> Recurrence {
        Recurrence::parse(WindowKind::Cron, line, Some(zone)).unwrap()
    }

    /// Occurrences from `from`, by repeated `next_after`.
    fn walk(rec: &Recurrence, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = next_after(rec, t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn berlin_0230_cron_on_spring_forward_day() {
        // 2026-03-29 Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not
        // exist. croner runs it at the first minute after the gap, 03:00
        // CEST = 01:00 UTC, once; the days around keep 02:30 local.
        let c = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            walk(&c, utc(2026, 3, 27, 12, 0), 3),
            vec![utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
        );
    }

    #[test]
    fn berlin_0230_cron_on_fall_back_day_runs_once() {
        // 2026-10-25 Berlin: 03:00 CEST falls back to 02:00 CET; 02:30
        // happens at 00:30 UTC and again at 01:30 UTC. It fires once, at the
        // first pass.
        let c = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            walk(&c, utc(2026, 10, 23, 12, 0), 3),
            vec![utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
        );
    }

    #[test]
    fn berlin_0230_rrule_across_both_changes() {
        // rrule adds the time of day to local midnight: 03:30 CEST on the
        // spring-forward day; the first pass on the fall-back day.
        let r =
            Recurrence::parse(WindowKind::Rrule, "DTSTART;TZID=Europe/Berlin:20260301T023000\nRRULE:FREQ=DAILY", None)
                .unwrap();
        assert_eq!(r.time_zone(), "Europe/Berlin");
        assert_eq!(next_after(&r, utc(2026, 3, 28, 12, 0)), Some(utc(2026, 3, 29, 1, 30)));
        assert_eq!(next_after(&r, utc(2026, 10, 24, 12, 0)), Some(utc(2026, 10, 25, 0, 30)));
        assert_eq!(next_after(&r, utc(2026, 10, 25, 0, 30)), Some(utc(2026, 10, 26, 1, 30)));
    }

    #[test]
    fn next_after_is_strict() {
        let c = cron("0 * * * *", "UTC");
        assert_eq!(next_after(&c, utc(2026, 6, 1, 10, 0)), Some(utc(2026, 6, 1, 11, 0)));
        assert_eq!(next_after(&c, utc(2026, 6, 1, 9, 59)), Some(utc(2026, 6, 1, 10, 0)));
    }

    #[test]
    fn nothing_due_before_next_run() {
        let c = cron("0 * * * *", "UTC");
        let p = plan(&c, utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 9, 59), CatchUp::Once);
        assert_eq!(p, Plan { occurrence: None, fire: false, missed: 0, next: Some(utc(2026, 6, 1, 10, 0)) });
    }

    #[test]
    fn on_time_occurrence_fires_under_both_policies() {
        let c = cron("0 * * * *", "UTC");
        for policy in [CatchUp::Once, CatchUp::Skip] {
            let now = utc(2026, 6, 1, 10, 0) + Duration::seconds(3);
            let p = plan(&c, utc(2026, 6, 1, 10, 0), now, policy);
            assert_eq!(
                p,
                Plan {
                    occurrence: Some(utc(2026, 6, 1, 10, 0)),
                    fire: true,
                    missed: 0,
                    next: Some(utc(2026, 6, 1, 11, 0))
                },
                "{policy:?}"
            );
        }
    }

    #[test]
    fn after_downtime_once_runs_the_latest_and_skip_runs_none() {
        // Hourly; every daemon down from 09:30 to 13:20: 10, 11, 12, 13 missed.
        let c = cron("0 * * * *", "UTC");
        let (due, now) = (utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 13, 20));
        let once = plan(&c, due, now, CatchUp::Once);
        assert_eq!(
            once,
            Plan {
                occurrence: Some(utc(2026, 6, 1, 13, 0)),
                fire: true,
                missed: 3,
                next: Some(utc(2026, 6, 1, 14, 0))
            }
        );
        let skip = plan(&c, due, now, CatchUp::Skip);
        assert_eq!(
            skip,
            Plan {
                occurrence: Some(utc(2026, 6, 1, 13, 0)),
                fire: false,
                missed: 4,
                next: Some(utc(2026, 6, 1, 14, 0))
            }
        );
    }

    #[test]
    fn a_late_single_occurrence_is_missed_beyond_the_grace() {
        let c = cron("0 3 * * *", "UTC");
        let due = utc(2026, 6, 1, 3, 0);
        let just = plan(&c, due, due + GRACE - Duration::seconds(1), CatchUp::Skip);
        assert!(just.fire, "{just:?}");
        let late = plan(&c, due, due + GRACE, CatchUp::Skip);
        assert!(!late.fire && late.missed == 1, "{late:?}");
        assert!(plan(&c, due, due + GRACE, CatchUp::Once).fire);
    }

    #[test]
    fn an_ended_rule_has_no_next() {
        let r =
            Recurrence::parse(WindowKind::Rrule, "DTSTART:20260601T100000Z\nRRULE:FREQ=HOURLY;COUNT=2", None).unwrap();
        let p = plan(&r, utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 11, 0), CatchUp::Skip);
        assert_eq!(p, Plan { occurrence: Some(utc(2026, 6, 1, 11, 0)), fire: true, missed: 0, next: None });
    }

    #[test]
    fn catch_up_parses() {
        assert_eq!("once".parse::<CatchUp>().unwrap(), CatchUp::Once);
        assert_eq!("skip".parse::<CatchUp>().unwrap(), CatchUp::Skip);
        assert_eq!("always".parse::<CatchUp>().unwrap_err().field, "catch_up");
        assert_eq!(CatchUp::default(), CatchUp::Skip);
    }
}
