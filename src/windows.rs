//! Maintenance windows: when a group's hosts may be touched.
//!
//! A window is a recurrence (an RFC 5545 `RRULE` with its `DTSTART;TZID=`, via
//! the `rrule` crate, or a cron line in an IANA time zone, via `croner`) plus a
//! duration. This module is pure arithmetic over instants: it turns windows
//! into UTC intervals, merges a host's windows (from all its groups and their
//! ancestors) into one union, and intersects hosts to find when all of them
//! are inside a window at once. The daemon owns storage, timers and "now".
//! The recurrence part ([`Recurrence`]: parsing, zones, bounded iteration)
//! is shared with schedules (`crate::schedules`).
//!
//! Every search is bounded: it looks at most [`SEARCH_DAYS`] ahead and at most
//! [`MAX_OCCURRENCES`] occurrences of one window, so a rule that never (or very
//! often) matches cannot make a request spin.
//!
//! DST: occurrences are what the crates compute. A local start time that does
//! not exist (spring forward) is moved past the gap: `rrule` adds the time of
//! day to local midnight (02:30 on a 02:00→03:00 day becomes 03:30), `croner`
//! takes the first valid minute after the gap (03:00). A local start time that
//! occurs twice (fall back) starts once, at its first (daylight) pass, in both.
//! The duration is real elapsed time, not wall-clock time.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

/// How far ahead any search looks.
pub const SEARCH_DAYS: i64 = 400;
/// How many occurrences of one window a search looks at, at most.
pub const MAX_OCCURRENCES: usize = 20_000;
/// Longest window accepted (31 days).
pub const MAX_DURATION_S: i64 = 31 * 86_400;

/// A bad window: `field` is the request field to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError { field, message: message.into() }
}

/// Which language the expression is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Rrule,
    Cron,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Rrule => "rrule",
            WindowKind::Cron => "cron",
        }
    }
}

impl FromStr for WindowKind {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Self, WindowError> {
        match s {
            "rrule" => Ok(WindowKind::Rrule),
            "cron" => Ok(WindowKind::Cron),
            other => Err(bad("kind", format!("must be \"rrule\" or \"cron\", not {other:?}"))),
        }
    }
}

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone)]
enum Schedule {
    Rrule(Box<rrule::RRuleSet>),
    Cron(Box<croner::Cron>, Tz),
}

/// When something recurs: the start instants of a window, or the
/// occurrences of a schedule (`crate::schedules`). Parsed and bounded in
/// one place so that both mean the same by an expression, DST included.
#[derive(Debug, Clone)]
pub struct Recurrence {
    schedule: Schedule,
    time_zone: String,
}

impl Recurrence {
    /// Parses and checks a recurrence. For `rrule` the zone is the `TZID`
    /// of `DTSTART` (or UTC for a `Z` time); `time_zone`, when given, must
    /// name the same zone. For `cron` `time_zone` is required.
    /// `FREQ=SECONDLY` is refused: nothing here recurs that often.
    pub fn parse(kind: WindowKind, expression: &str, time_zone: Option<&str>) -> Result<Recurrence, WindowError> {
        let given_zone = match time_zone.map(str::trim).filter(|z| !z.is_empty()) {
            Some(z) => Some(z.parse::<Tz>().map_err(|_| bad("time_zone", format!("unknown IANA time zone {z:?}")))?),
            None => None,
        };
        match kind {
            WindowKind::Rrule => {
                let text = expression.trim().replace("\r\n", "\n");
                let set: rrule::RRuleSet =
                    text.parse().map_err(|e: rrule::RRuleError| bad("expression", e.to_string()))?;
                if set.get_rrule().is_empty() && set.get_rdate().is_empty() {
                    return Err(bad("expression", "needs an RRULE (or RDATE) line"));
                }
                if set.get_rrule().iter().any(|r| matches!(r.get_freq(), rrule::Frequency::Secondly)) {
                    return Err(bad("expression", "FREQ=SECONDLY is not supported"));
                }
                let zone = match set.get_dt_start().timezone() {
                    rrule::Tz::Tz(tz) => tz,
                    rrule::Tz::Local(_) => {
                        return Err(bad(
                            "expression",
                            "DTSTART needs a time zone (DTSTART;TZID=Area/City:... or a UTC time ending in Z)",
                        ))
                    }
                };
                if let Some(given) = given_zone {
                    if given != zone {
                        return Err(bad(
                            "time_zone",
                            format!("{} differs from the DTSTART time zone {}", given.name(), zone.name()),
                        ));
                    }
                }
                Ok(Recurrence { schedule: Schedule::Rrule(Box::new(set)), time_zone: zone.name().to_string() })
            }
            WindowKind::Cron => {
                let zone = given_zone.ok_or_else(|| bad("time_zone", "required for a cron line"))?;
                let cron = croner::Cron::from_str(expression.trim())
                    .map_err(|e| bad("expression", format!("bad cron line: {e}")))?;
                Ok(Recurrence { schedule: Schedule::Cron(Box::new(cron), zone), time_zone: zone.name().to_string() })
            }
        }
    }

    /// The IANA zone the recurrence's local times are in.
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }

    fn is_rrule_with(&self, freq: rrule::Frequency) -> bool {
        match &self.schedule {
            Schedule::Rrule(set) => set.get_rrule().iter().any(|r| r.get_freq() == freq),
            Schedule::Cron(..) => false,
        }
    }

    /// Occurrences `s` with `from <= s < until`, at most [`MAX_OCCURRENCES`];
    /// the second value is where the list stops being complete when the cap
    /// was hit.
    pub fn starts(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let mut out = Vec::new();
        let mut push = |s: DateTime<Utc>| -> bool {
            if s >= until {
                return false;
            }
            if s >= from {
                if out.len() == MAX_OCCURRENCES {
                    return false;
                }
                out.push(s);
            }
            true
        };
        match &self.schedule {
            Schedule::Rrule(set) => {
                // The iterator always starts at DTSTART; skipped occurrences
                // count against the cap too, so an old HOURLY rule stays cheap.
                let mut seen = 0usize;
                for occ in set.as_ref() {
                    seen += 1;
                    if seen > MAX_OCCURRENCES * 20 || !push(occ.with_timezone(&Utc)) {
                        break;
                    }
                }
            }
            Schedule::Cron(cron, tz) => {
                let start = from.with_timezone(tz);
                for occ in cron.iter_from(start, croner::Direction::Forward) {
                    if !push(occ.with_timezone(&Utc)) {
                        break;
                    }
                }
            }
        }
        let capped = (out.len() == MAX_OCCURRENCES).then(|| *out.last().expect("capped"));
        (out, capped)
    }

    /// The first occurrence at or after `t`, looking [`SEARCH_DAYS`] ahead.
    pub fn next_at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (starts, _) = self.starts(t, t + Duration::days(SEARCH_DAYS));
        starts.first().copied()
    }
}

/// One parsed, valid window.
#[derive(Debug, Clone)]
pub struct Window {
    recurrence: Recurrence,
    duration: Duration,
}

impl Window {
    /// Parses and checks a window: a [`Recurrence`] (minutely ones are not
    /// maintenance windows) and a duration.
    pub fn parse(
        kind: WindowKind,
        expression: &str,
        time_zone: Option<&str>,
        duration_s: i64,
    ) -> Result<Window, WindowError> {
        if duration_s <= 0 || duration_s > MAX_DURATION_S {
            return Err(bad("duration_s", format!("must be between 1 and {MAX_DURATION_S} seconds, not {duration_s}")));
        }
        let recurrence = Recurrence::parse(kind, expression, time_zone)?;
        if recurrence.is_rrule_with(rrule::Frequency::Minutely) {
            return Err(bad("expression", "FREQ=SECONDLY and FREQ=MINUTELY are not maintenance windows"));
        }
        Ok(Window { recurrence, duration: Duration::seconds(duration_s) })
    }

    /// The IANA zone the window's times are in.
    pub fn time_zone(&self) -> &str {
        self.recurrence.time_zone()
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn starts(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
        self.recurrence.starts(from, until)
    }

    /// The interval of this window that contains `t` (overlapping
    /// occurrences of the window merged), if `t` is inside one.
    pub fn containing(&self, t: DateTime<Utc>) -> Option<Interval> {
        union(std::slice::from_ref(self), t, t + Duration::days(SEARCH_DAYS))
            .intervals
            .into_iter()
            .find(|i| i.contains(t))
    }

    /// The first start at or after `t`, looking [`SEARCH_DAYS`] ahead.
    pub fn next_opening(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.recurrence.next_at_or_after(t)
    }
}

/// A union or intersection of intervals, sorted and disjoint (touching
/// intervals are merged), complete for starts before `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub intervals: Vec<Interval>,
    pub until: DateTime<Utc>,
}

/// The union of `windows` over `[from, until)`: every interval that is open
/// at some instant `>= from` and starts before `until`.
pub fn union(windows: &[Window], from: DateTime<Utc>, until: DateTime<Utc>) -> Search {
    let mut limit = until;
    let mut all = Vec::new();
    for w in windows {
        let (starts, capped) = w.starts(from - w.duration, until);
        if let Some(c) = capped {
            limit = limit.min(c);
        }
        all.extend(starts.into_iter().map(|s| Interval { start: s, end: s + w.duration }));
    }
    all.retain(|i| i.end > from && i.start < limit);
    all.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(all.len());
    for i in all {
        match merged.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => merged.push(i),
        }
    }
    Search { intervals: merged, until: limit }
}

/// Where two sorted disjoint interval lists overlap.
pub fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(Interval { start, end });
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// When a set of hosts can be worked on together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Common {
    /// No host has any window: nothing restricts them.
    NoWindows,
    /// Every host is inside a window at `t`; `interval` is the current
    /// common interval (its start may lie before `t`).
    Open(Interval),
    /// All hosts are next inside a window together during `interval`.
    Opens(Interval),
    /// No common interval starts before `searched_until`.
    Never { searched_until: DateTime<Utc> },
}

/// For hosts given by their window sets, the common interval at or after
/// `t`. A host with no windows is unrestricted and does not narrow the
/// result; looks [`SEARCH_DAYS`] ahead.
pub fn common<W: AsRef<[Window]>>(hosts: &[W], t: DateTime<Utc>) -> Common {
    let restricted: Vec<&[Window]> = hosts.iter().map(|h| h.as_ref()).filter(|h| !h.is_empty()).collect();
    if restricted.is_empty() {
        return Common::NoWindows;
    }
    let until = t + Duration::days(SEARCH_DAYS);
    let mut acc: Option<Vec<Interval>> = None;
    let mut searched_until = until;
    for host in restricted {
        let s = union(host, t, until);
        searched_until = searched_until.min(s.until);
        acc = Some(match acc {
            None => s.intervals,
            Some(prev) => intersect(&prev, &s.intervals),
        });
    }
    match acc.unwrap_or_default().into_iter().find(|i| i.end > t && i.start < searched_until) {
        Some(i) if i.start <= t => Common::Open(i),
        Some(i) => Common::Opens(i),
        None => Common::Never { searched_until },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn rrule(text: &str, duration_s: i64) -> Window {
        Window::parse(WindowKind::Rrule, text, None, duration_s).unwrap()
    }

    fn cron(line: &str, zone: &str, duration_s: i64) -> Window {
        Window::parse(WindowKind::Cron, line, Some(zone), duration_s).unwrap()
    }

    fn iv(start: DateTime<Utc>, end: DateTime<Utc>) -> Interval {
        Interval { start, end }
    }

    #[test]
    fn rrule_weekly_in_berlin_containing_and_next() {
        // Saturdays 02:00 Berlin (CET in November: UTC+1) for two hours.
        let w = rrule("DTSTART;TZID=Europe/Berlin:20261107T020000\nRRULE:FREQ=WEEKLY;BYDAY=SA", 7200);
        assert_eq!(w.time_zone(), "Europe/Berlin");
        let sat = utc(2026, 11, 7, 1, 0);
        assert_eq!(w.next_opening(utc(2026, 11, 2, 0, 0)), Some(sat));
        assert_eq!(w.containing(utc(2026, 11, 7, 2, 59)), Some(iv(sat, utc(2026, 11, 7, 3, 0))));
        assert_eq!(w.containing(utc(2026, 11, 7, 3, 0)), None, "end is exclusive");
        assert_eq!(w.next_opening(utc(2026, 11, 7, 1, 1)), Some(utc(2026, 11, 14, 1, 0)));
    }

    #[test]
    fn cron_daily_in_new_york() {
        // 22:00 New York, EST (UTC-5) in December, one hour.
        let w = cron("0 22 * * *", "America/New_York", 3600);
        assert_eq!(w.containing(utc(2026, 12, 3, 3, 30)), Some(iv(utc(2026, 12, 3, 3, 0), utc(2026, 12, 3, 4, 0))));
        assert_eq!(w.next_opening(utc(2026, 12, 3, 3, 30)), Some(utc(2026, 12, 4, 3, 0)));
    }

    #[test]
    fn spring_forward_rrule_moves_past_the_gap() {
        // 2026-03-08 New York: 02:00 EST jumps to 03:00 EDT; 02:30 does not
        // exist. rrule adds 2h30 to local midnight: 03:30 EDT = 07:30 UTC.
        let w = rrule("DTSTART;TZID=America/New_York:20260301T023000\nRRULE:FREQ=DAILY", 1800);
        assert_eq!(w.next_opening(utc(2026, 3, 7, 12, 0)), Some(utc(2026, 3, 8, 7, 30)));
        // The days around it keep 02:30 local: EST the day before, EDT after.
        assert_eq!(w.next_opening(utc(2026, 3, 7, 0, 0)), Some(utc(2026, 3, 7, 7, 30)));
        assert_eq!(w.next_opening(utc(2026, 3, 8, 12, 0)), Some(utc(2026, 3, 9, 6, 30)));
    }

    #[test]
    fn spring_forward_cron_takes_the_first_minute_after_the_gap() {
        // croner: a fixed time inside the gap fires at 03:00 EDT = 07:00 UTC.
        let w = cron("30 2 * * *", "America/New_York", 1800);
        assert_eq!(w.next_opening(utc(2026, 3, 7, 12, 0)), Some(utc(2026, 3, 8, 7, 0)));
        assert_eq!(w.next_opening(utc(2026, 3, 8, 12, 0)), Some(utc(2026, 3, 9, 6, 30)));
    }

    #[test]
    fn fall_back_starts_once_at_the_first_pass() {
        // 2026-11-01 New York: 02:00 EDT falls back to 01:00 EST; 01:30
        // happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        let r = rrule("DTSTART;TZID=America/New_York:20261025T013000\nRRULE:FREQ=DAILY", 1800);
        let c = cron("30 1 * * *", "America/New_York", 1800);
        for w in [&r, &c] {
            let from = utc(2026, 11, 1, 0, 0);
            let s = union(std::slice::from_ref(w), from, utc(2026, 11, 2, 12, 0));
            assert_eq!(
                s.intervals,
                vec![
                    iv(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)),
                    // The next day is EST: 01:30 = 06:30 UTC.
                    iv(utc(2026, 11, 2, 6, 30), utc(2026, 11, 2, 7, 0)),
                ],
                "{w:?}"
            );
            assert_eq!(w.containing(utc(2026, 11, 1, 6, 40)), None, "{w:?}");
        }
    }

    #[test]
    fn overlapping_windows_of_a_host_merge() {
        // Saturday 01:00–04:00 UTC and 03:00–06:00 UTC: one 01:00–06:00 window.
        let a = cron("0 1 * * 6", "UTC", 3 * 3600);
        let b = rrule("DTSTART:20261107T030000Z\nRRULE:FREQ=WEEKLY;BYDAY=SA", 3 * 3600);
        let s = union(&[a, b], utc(2026, 11, 6, 0, 0), utc(2026, 11, 9, 0, 0));
        assert_eq!(s.intervals, vec![iv(utc(2026, 11, 7, 1, 0), utc(2026, 11, 7, 6, 0))]);
    }

    #[test]
    fn adjacent_windows_merge_and_gaps_do_not() {
        let a = cron("0 1 * * *", "UTC", 3600); // 01–02
        let b = cron("0 2 * * *", "UTC", 3600); // 02–03, touches a
        let c = cron("1 3 * * *", "UTC", 3600); // 03:01–04:01, a gap of one minute
        let s = union(&[a, b, c], utc(2026, 6, 1, 0, 0), utc(2026, 6, 1, 23, 0));
        assert_eq!(
            s.intervals,
            vec![iv(utc(2026, 6, 1, 1, 0), utc(2026, 6, 1, 3, 0)), iv(utc(2026, 6, 1, 3, 1), utc(2026, 6, 1, 4, 1)),]
        );
    }

    #[test]
    fn a_window_that_began_before_from_is_included() {
        let w = cron("0 1 * * *", "UTC", 3 * 3600);
        let s = union(std::slice::from_ref(&w), utc(2026, 6, 1, 2, 0), utc(2026, 6, 1, 5, 0));
        assert_eq!(s.intervals, vec![iv(utc(2026, 6, 1, 1, 0), utc(2026, 6, 1, 4, 0))]);
    }

    #[test]
    fn two_hosts_meet_where_their_windows_overlap() {
        // Host 1: Saturdays 00:00–04:00 UTC. Host 2: Saturdays 02:00–06:00
        // Berlin (CET, UTC+1) = 01:00–05:00 UTC. Together: 01:00–04:00 UTC.
        let h1 = vec![cron("0 0 * * SAT", "UTC", 4 * 3600)];
        let h2 = vec![rrule("DTSTART;TZID=Europe/Berlin:20261107T020000\nRRULE:FREQ=WEEKLY;BYDAY=SA", 4 * 3600)];
        let unrestricted: Vec<Window> = Vec::new();
        let hosts = [h1.clone(), h2.clone(), unrestricted];
        let together = iv(utc(2026, 11, 7, 1, 0), utc(2026, 11, 7, 4, 0));
        assert_eq!(common(&hosts, utc(2026, 11, 4, 0, 0)), Common::Opens(together));
        // Inside host 1's window but before host 2's: not yet open.
        assert_eq!(common(&hosts, utc(2026, 11, 7, 0, 30)), Common::Opens(together));
        assert_eq!(common(&hosts, utc(2026, 11, 7, 2, 0)), Common::Open(together));
        // After 04:00 only host 2 is inside: next Saturday.
        assert_eq!(
            common(&hosts, utc(2026, 11, 7, 4, 0)),
            Common::Opens(iv(utc(2026, 11, 14, 1, 0), utc(2026, 11, 14, 4, 0)))
        );
        assert_eq!(common(&[h1], utc(2026, 11, 7, 4, 0)).clone(), {
            Common::Opens(iv(utc(2026, 11, 14, 0, 0), utc(2026, 11, 14, 4, 0)))
        });
    }

    #[test]
    fn hosts_without_windows_are_unrestricted() {
        let none: [Vec<Window>; 2] = [Vec::new(), Vec::new()];
        assert_eq!(common(&none, utc(2026, 1, 1, 0, 0)), Common::NoWindows);
    }

    #[test]
    fn disjoint_windows_never_meet_within_the_bound() {
        let h1 = vec![cron("0 1 * * *", "UTC", 3600)];
        let h2 = vec![cron("0 5 * * *", "UTC", 3600)];
        let t = utc(2026, 1, 1, 0, 0);
        assert_eq!(common(&[h1, h2], t), Common::Never { searched_until: t + Duration::days(SEARCH_DAYS) });
    }

    #[test]
    fn until_in_the_past_has_no_future_occurrence() {
        let w = rrule(
            "DTSTART;TZID=Europe/Berlin:20240106T020000\nRRULE:FREQ=WEEKLY;BYDAY=SA;UNTIL=20240301T000000Z",
            3600,
        );
        let t = utc(2026, 6, 1, 0, 0);
        assert_eq!(w.next_opening(t), None);
        assert_eq!(w.containing(t), None);
        assert!(matches!(common(&[vec![w]], t), Common::Never { .. }));
    }

    #[test]
    fn validation_names_the_field() {
        let field = |r: Result<Window, WindowError>| r.unwrap_err().field;
        let ok_rrule = "DTSTART;TZID=Europe/Berlin:20261107T020000\nRRULE:FREQ=WEEKLY";
        assert_eq!(field(Window::parse(WindowKind::Rrule, "RRULE:FREQ=BOGUS", None, 60)), "expression");
        assert_eq!(
            field(Window::parse(WindowKind::Rrule, "DTSTART:20261107T020000\nRRULE:FREQ=WEEKLY", None, 60)),
            "expression",
            "a floating DTSTART would use the server's zone"
        );
        assert_eq!(
            field(Window::parse(
                WindowKind::Rrule,
                "DTSTART;TZID=Europe/Berlin:20261107T020000\nRRULE:FREQ=MINUTELY",
                None,
                60
            )),
            "expression"
        );
        assert_eq!(field(Window::parse(WindowKind::Rrule, ok_rrule, Some("Asia/Tokyo"), 60)), "time_zone");
        assert!(Window::parse(WindowKind::Rrule, ok_rrule, Some("Europe/Berlin"), 60).is_ok());
        assert_eq!(field(Window::parse(WindowKind::Rrule, ok_rrule, None, 0)), "duration_s");
        assert_eq!(field(Window::parse(WindowKind::Rrule, ok_rrule, None, MAX_DURATION_S + 1)), "duration_s");
        assert_eq!(field(Window::parse(WindowKind::Cron, "61 * * * *", Some("UTC"), 60)), "expression");
        assert_eq!(field(Window::parse(WindowKind::Cron, "0 2 * * *", None, 60)), "time_zone");
        assert_eq!(field(Window::parse(WindowKind::Cron, "0 2 * * *", Some("Mars/Olympus"), 60)), "time_zone");
        assert_eq!("weekly".parse::<WindowKind>().unwrap_err().field, "kind");
        // A DTSTART that does not exist (spring forward) or occurs twice
        // (fall back) is refused: which instant it means is unclear.
        for dtstart in ["20260308T023000", "20261101T013000"] {
            let text = format!("DTSTART;TZID=America/New_York:{dtstart}\nRRULE:FREQ=DAILY");
            assert_eq!(field(Window::parse(WindowKind::Rrule, &text, None, 60)), "expression", "{dtstart}");
        }
    }

    #[test]
    fn intersect_of_lists() {
        let a = [iv(utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 2, 0)), iv(utc(2026, 1, 1, 3, 0), utc(2026, 1, 1, 5, 0))];
        let b = [iv(utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 4, 0))];
        assert_eq!(
            intersect(&a, &b),
            vec![iv(utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 2, 0)), iv(utc(2026, 1, 1, 3, 0), utc(2026, 1, 1, 4, 0)),]
        );
    }
}
