//! Outbound webhooks, the pure part: which events exist, what a hook's
//! event list may say, the retry schedule, and the URL shape a hook may
//! have. The daemon queues, signs and sends (`cratond::hooks`); the store
//! keeps hooks and deliveries (`crate::store::hooks`).
//!
//! Event names are `<subject>.<what>` so that later events (a batch
//! finished, a run waiting for approval, a schedule fired) are new names
//! beside these, never a change of these.

/// A run was stored and waits to start.
pub const RUN_QUEUED: &str = "run.queued";
/// A run's ansible-playbook started.
pub const RUN_STARTED: &str = "run.started";
/// A run reached a final status (successful, failed, canceled, error, lost,
/// skipped).
pub const RUN_FINISHED: &str = "run.finished";
/// A run submitted with `"approval": "required"` waits for an admin.
pub const RUN_WAITING_FOR_APPROVAL: &str = "run.waiting_for_approval";
/// A batch of a rolling run ended (its `batch` says which and how).
pub const RUN_BATCH_FINISHED: &str = "run.batch_finished";
/// A schedule handled an occurrence: the run it submitted, or why none.
pub const SCHEDULE_FIRED: &str = "schedule.fired";

/// Every event a hook may ask for today. `*` in a hook's list means all of
/// them, and those added later.
pub const EVENTS: &[&str] =
    &[RUN_QUEUED, RUN_STARTED, RUN_FINISHED, RUN_WAITING_FOR_APPROVAL, RUN_BATCH_FINISHED, SCHEDULE_FIRED];

/// Longest hook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Bounds of a hook secret's length (bytes).
pub const MIN_SECRET_BYTES: usize = 8;
pub const MAX_SECRET_BYTES: usize = 512;

/// Checks a hook's event list: non-empty, known names or `*`, no repeats.
pub fn check_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err(format!("must name at least one event ({} or \"*\")", EVENTS.join(", ")));
    }
    for (i, e) in events.iter().enumerate() {
        if e != "*" && !EVENTS.contains(&e.as_str()) {
            return Err(format!("{e:?} is not an event (one of {}, or \"*\" for all)", EVENTS.join(", ")));
        }
        if events[..i].contains(e) {
            return Err(format!("{e:?} is listed twice"));
        }
    }
    Ok(())
}

/// Whether a hook with `events` wants `event`.
pub fn wants(events: &[String], event: &str) -> bool {
    events.iter().any(|e| e == "*" || e == event)
}

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included); then the delivery is `failed`.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub base_ms: i64,
    /// Longest wait between two attempts.
    pub max_ms: i64,
}

impl Default for RetryPolicy {
    /// 8 attempts over about 21 minutes: 10 s, 20 s, 40 s, ... capped at 1 h.
    fn default() -> Self {
        RetryPolicy { max_attempts: 8, base_ms: 10_000, max_ms: 3_600_000 }
    }
}

impl RetryPolicy {
    /// When to try again after failed attempt number `attempt` (1-based),
    /// as a delay from it; None when that was the last attempt.
    pub fn delay_after(&self, attempt: u32) -> Option<i64> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(40);
        Some(self.base_ms.max(0).saturating_mul(1i64 << doublings).min(self.max_ms.max(0)))
    }
}

/// The scheme, host and port of an `http(s)://` URL; refuses anything else
/// (no other scheme, no credentials in the URL, a host present).
pub fn parse_url(url: &str) -> Result<(String, String, u16), String> {
    if url.len() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let (scheme, rest) = url.split_once("://").ok_or("must be an http:// or https:// URL")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err("must be an http:// or https:// URL".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not carry credentials (user:password@); sign with the secret instead".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("has an unclosed [ in its host")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| format!("has a bad port {p:?}"))?,
    };
    Ok((scheme, host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_events(&v(&["run.queued", "run.finished"])).is_ok());
        assert!(check_events(&v(&["*"])).is_ok());
        assert!(check_events(&v(&[])).is_err());
        assert!(check_events(&v(&["run.done"])).unwrap_err().contains("run.done"));
        assert!(check_events(&v(&["run.queued", "run.queued"])).unwrap_err().contains("twice"));
        assert!(wants(&v(&["*"]), "schedule.fired"));
        assert!(wants(&v(&["run.started"]), RUN_STARTED));
        assert!(!wants(&v(&["run.started"]), RUN_FINISHED));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops() {
        let p = RetryPolicy { max_attempts: 5, base_ms: 1000, max_ms: 5000 };
        let d: Vec<Option<i64>> = (1..=5).map(|a| p.delay_after(a)).collect();
        assert_eq!(d, [Some(1000), Some(2000), Some(4000), Some(5000), None]);
        let one = RetryPolicy { max_attempts: 1, ..p };
        assert_eq!(one.delay_after(1), None);
        let big = RetryPolicy { max_attempts: 100, base_ms: 1000, max_ms: i64::MAX };
        assert!(big.delay_after(90).unwrap() > 0, "no overflow");
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://Hooks.Example.com/x?y").unwrap(),
            ("https".into(), "hooks.example.com".into(), 443)
        );
        assert_eq!(parse_url("http://127.0.0.1:8080/h").unwrap(), ("http".into(), "127.0.0.1".into(), 8080));
        assert_eq!(parse_url("http://[::1]:9/h").unwrap(), ("http".into(), "::1".into(), 9));
        for bad in
            ["ftp://x/", "file:///etc/passwd", "x", "https://", "https://u:p@h/", "http://h:99999/", "http://h /"]
        {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
