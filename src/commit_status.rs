//! GitHub commit statuses of webhook-rule runs (issue 10, "Choreography"),
//! the pure part: which GitHub state a run's status is, the description
//! (GitHub refuses more than 140 characters), the status URL of a
//! repository and commit under an API base (github.com or a GitHub
//! Enterprise `https://HOST/api/v3`), the link back to the run in the web
//! UI, and the checks of a rule's `status_context`.
//!
//! The daemon queues, claims and sends (`cratond::commit_status`); the
//! store keeps the queue (`crate::store::commit_statuses`).

use serde_json::{json, Value};

use crate::runs::RunStatus;

/// GitHub's longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 140;
/// Longest `status_context` a rule may name.
pub const MAX_CONTEXT_CHARS: usize = 255;
/// The API base when none is configured.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";

/// The status sent when a rule's run is queued.
pub const QUEUED: &str = "run.queued";
/// The status sent when it reached a final status.
pub const FINISHED: &str = "run.finished";

/// The context a rule's statuses carry when it names none.
pub fn default_context(rule_name: &str) -> String {
    format!("craton/{rule_name}")
}

/// A rule's `status_context`: 1 to 255 characters, no control characters.
pub fn check_context(c: &str) -> Result<(), String> {
    if c.trim().is_empty() || c.chars().count() > MAX_CONTEXT_CHARS {
        return Err(format!("must be 1 to {MAX_CONTEXT_CHARS} characters (default craton/<rule name>)"));
    }
    if c.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// The GitHub state of a run status: `pending` while it waits or runs,
/// `success`, `failure` (the playbook failed), `error` (it could not run to
/// its end: error, lost, canceled, skipped).
pub fn github_state(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued | RunStatus::Running => "pending",
        RunStatus::Successful => "success",
        RunStatus::Failed => "failure",
        RunStatus::Error | RunStatus::Lost | RunStatus::Canceled | RunStatus::Skipped => "error",
    }
}

/// At most `max` characters of `s`, an ellipsis marking a cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What the status says: the run, what it is doing or how it ended, and
/// (for a final status) the reason the run records, all within GitHub's
/// 140 characters.
pub fn description(run_id: i64, status: RunStatus, simulation: bool, reason: Option<&str>) -> String {
    let what = if simulation { "check run" } else { "run" };
    let text = match status {
        RunStatus::Queued => format!("Craton {what} {run_id} queued"),
        RunStatus::Running => format!("Craton {what} {run_id} running"),
        s => match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => format!("Craton {what} {run_id} {}: {r}", s.as_str()),
            None => format!("Craton {what} {run_id} {}", s.as_str()),
        },
    };
    clip(&text.replace(['\n', '\r', '\t'], " "), MAX_DESCRIPTION_CHARS)
}

/// `{api_base}/repos/{owner}/{repo}/statuses/{sha}`; a trailing `/` of the
/// base is dropped, so `https://ghe.example/api/v3/` works as well.
pub fn status_url(api_base: &str, repository: &str, sha: &str) -> String {
    format!("{}/repos/{repository}/statuses/{sha}", api_base.trim_end_matches('/'))
}

/// The run's page in the web UI (`#/runs/ID`) under the public URL.
pub fn target_url(public_url: &str, run_id: i64) -> String {
    format!("{}/ui/#/runs/{run_id}", public_url.trim_end_matches('/'))
}

/// The body GitHub's "create a commit status" takes; no `target_url` when
/// none is known.
pub fn body(state: &str, context: &str, description: &str, target_url: Option<&str>) -> Value {
    let mut v = json!({"state": state, "context": context, "description": description});
    if let Some(t) = target_url {
        v["target_url"] = json!(t);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_run() {
        let s = |r| github_state(r);
        assert_eq!(
            [RunStatus::Queued, RunStatus::Running, RunStatus::Successful, RunStatus::Failed].map(s),
            ["pending", "pending", "success", "failure"]
        );
        for r in [RunStatus::Error, RunStatus::Lost, RunStatus::Canceled, RunStatus::Skipped] {
            assert_eq!(s(r), "error", "{r:?}");
        }
    }

    #[test]
    fn descriptions_fit_githubs_limit() {
        assert_eq!(description(7, RunStatus::Queued, false, None), "Craton run 7 queued");
        assert_eq!(description(7, RunStatus::Successful, true, None), "Craton check run 7 successful");
        assert_eq!(description(7, RunStatus::Failed, false, Some("rc 2")), "Craton run 7 failed: rc 2");
        let long = "x".repeat(500);
        let d = description(7, RunStatus::Error, false, Some(&long));
        assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(d.ends_with('…'));
        let multibyte = "é".repeat(300);
        assert_eq!(description(1, RunStatus::Lost, false, Some(&multibyte)).chars().count(), 140);
        assert!(!description(1, RunStatus::Lost, false, Some("a\nb")).contains('\n'));
    }

    #[test]
    fn urls() {
        assert_eq!(
            status_url("https://api.github.com", "acme/deploy", "abc"),
            "https://api.github.com/repos/acme/deploy/statuses/abc"
        );
        assert_eq!(
            status_url("https://ghe.example/api/v3/", "acme/deploy", "abc"),
            "https://ghe.example/api/v3/repos/acme/deploy/statuses/abc"
        );
        assert_eq!(target_url("https://craton.example/", 12), "https://craton.example/ui/#/runs/12");
        let b = body("pending", "craton/x", "d", None);
        assert!(b.get("target_url").is_none());
        assert_eq!(body("success", "c", "d", Some("u"))["target_url"], "u");
    }

    #[test]
    fn contexts() {
        assert_eq!(default_context("deploy-main"), "craton/deploy-main");
        assert!(check_context("ci/craton").is_ok());
        assert!(check_context("").is_err());
        assert!(check_context("  ").is_err());
        assert!(check_context("a\nb").is_err());
        assert!(check_context(&"x".repeat(256)).is_err());
    }
}
