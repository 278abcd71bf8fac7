//! Webhook rules (issue 10, "Choreography"): which GitHub events submit a
//! run, and the run body they submit.
//!
//! This module is pure: it reads a delivery's payload into the few facts a
//! rule looks at ([`Facts`]: repository, branch or tag, commit, pull
//! request action), checks a rule's fields when it is written
//! ([`RuleSpec::parse`]), decides whether a rule matches ([`matches`]) and
//! turns the rule's template into the `POST /v1/runs` body of the event
//! ([`run_body`]: the template's `ref` is the event's commit, so the run
//! runs exactly that commit; a pull request's run is `check` + `diff`).
//! The daemon owns the HTTP route, the de-duplication row, the sync and
//! the submit.
//!
//! Globs (`branches`, `tags`, the `glob` matcher) know `*` (any run of
//! characters, `/` included: `release/*` matches `release/2026/12`) and `?`
//! (one character); everything else is literal. A glob list matches when
//! any of its globs does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runs::FieldProblem;

/// Events a rule can follow.
pub const EVENTS: [&str; 2] = ["push", "pull_request"];
/// Pull request actions that start a simulation: a new head commit to check.
pub const PR_ACTIONS: [&str; 3] = ["opened", "synchronize", "reopened"];
/// Most globs in `branches` or `tags`, most matchers.
pub const MAX_LIST: usize = 64;
/// Longest glob, dotted path or matcher value.
pub const MAX_ITEM_CHARS: usize = 1024;

/// How a matcher compares the payload's value with its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The value (a string, or a number or boolean as JSON text) is `value`.
    Equals,
    /// A string contains `value`; an array has an element equal to it.
    Contains,
    /// The value matches the glob `value`.
    Glob,
}

/// One condition on the payload: all of a rule's must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// A dotted path into the payload (`pull_request.user.login`; a
    /// number is an array index: `commits.0.message`).
    pub field: String,
    pub op: Op,
    pub value: String,
}

/// What a rule matches on, as checked when written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSpec {
    pub event: String,
    /// GitHub `owner/name`, compared without regard to case (GitHub's).
    pub repository: String,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub matchers: Vec<Matcher>,
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem { field: field.into(), message: message.into() }
}

/// `owner/name` as GitHub spells repositories. The name becomes a path of
/// the GitHub API the daemon calls with its token (commit statuses), so a
/// part of dots only (`..`), which would climb out of `/repos/`, is refused.
pub fn check_repository(r: &str) -> Result<(), String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !s.bytes().all(|b| b == b'.')
    };
    match r.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(()),
        _ => Err(format!("must be a GitHub repository as owner/name, not {r:?}")),
    }
}

fn globs(body: &Map<String, Value>, field: &str, out: &mut Vec<FieldProblem>) -> Vec<String> {
    match body.get(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_LIST => {
            let mut v = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !s.is_empty() && s.chars().count() <= MAX_ITEM_CHARS && !s.contains('\0') => {
                        v.push(s.to_string())
                    }
                    _ => out.push(problem(
                        &format!("{field}[{i}]"),
                        format!("must be a non-empty glob of at most {MAX_ITEM_CHARS} characters"),
                    )),
                }
            }
            v
        }
        Some(_) => {
            out.push(problem(field, format!("must be a list of at most {MAX_LIST} globs")));
            Vec::new()
        }
    }
}

fn matchers(body: &Map<String, Value>, out: &mut Vec<FieldProblem>) -> Vec<Matcher> {
    let items = match body.get("matchers") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_LIST => items,
        Some(_) => {
            out.push(problem("matchers", format!("must be a list of at most {MAX_LIST} {{field, op, value}}")));
            return Vec::new();
        }
    };
    let mut v = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("matchers[{i}].{f}");
        let Some(m) = item.as_object() else {
            out.push(problem(&format!("matchers[{i}]"), "must be an object {field, op, value}"));
            continue;
        };
        for k in m.keys().filter(|k| !["field", "op", "value"].contains(&k.as_str())) {
            out.push(problem(&at(k), "unknown field (expected field, op, value)"));
        }
        let text = |f: &str, out: &mut Vec<FieldProblem>| match m.get(f).and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_ITEM_CHARS && !s.contains('\0') => Some(s.to_string()),
            _ => {
                out.push(problem(
                    &at(f),
                    format!("is required: a non-empty string of at most {MAX_ITEM_CHARS} characters"),
                ));
                None
            }
        };
        let field = text("field", out);
        if field.as_deref().is_some_and(|f| f.split('.').any(str::is_empty)) {
            out.push(problem(&at("field"), "must be a dotted path (pull_request.user.login)"));
        }
        let op = match m.get("op").and_then(Value::as_str) {
            Some("equals") => Some(Op::Equals),
            Some("contains") => Some(Op::Contains),
            Some("glob") => Some(Op::Glob),
            _ => {
                out.push(problem(&at("op"), "must be \"equals\", \"contains\" or \"glob\""));
                None
            }
        };
        let value = text("value", out);
        if let (Some(field), Some(op), Some(value)) = (field, op, value) {
            v.push(Matcher { field, op, value });
        }
    }
    v
}

impl RuleSpec {
    /// The match fields of a rule body (`event`, `repository`, `branches`,
    /// `tags`, `matchers`); every problem, each naming its field. A push
    /// rule names the branches or tags it follows (`["*"]` for all); a
    /// pull request rule may name base branches and has no tags.
    pub fn parse(body: &Map<String, Value>) -> Result<RuleSpec, Vec<FieldProblem>> {
        let mut out = Vec::new();
        let event = match body.get("event").and_then(Value::as_str) {
            Some(e) if EVENTS.contains(&e) => e.to_string(),
            _ => {
                out.push(problem("event", "is required: \"push\" or \"pull_request\""));
                String::new()
            }
        };
        let repository = match body.get("repository").and_then(Value::as_str) {
            Some(r) => match check_repository(r) {
                Ok(()) => r.to_string(),
                Err(m) => {
                    out.push(problem("repository", m));
                    String::new()
                }
            },
            None => {
                out.push(problem("repository", "is required: the GitHub repository as owner/name"));
                String::new()
            }
        };
        let branches = globs(body, "branches", &mut out);
        let tags = globs(body, "tags", &mut out);
        let matchers = matchers(body, &mut out);
        if event == "push" && branches.is_empty() && tags.is_empty() && !body.contains_key("branches") {
            out.push(problem("branches", "a push rule names the branches or tags it follows ([\"*\"] for all)"));
        }
        if event == "pull_request" && !tags.is_empty() {
            out.push(problem("tags", "a pull_request rule has no tags (branches are the base branches)"));
        }
        if out.is_empty() {
            Ok(RuleSpec { event, repository, branches, tags, matchers })
        } else {
            Err(out)
        }
    }
}

/// `*` any run of characters, `?` one; the rest literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and what it had matched up to: the classic
    // backtracking of one star, linear in practice.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The value at a dotted path of the payload.
pub fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(payload, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A scalar as the text a matcher compares (strings as they are, numbers
/// and booleans as JSON); null, arrays and objects have none.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

impl Matcher {
    pub fn holds(&self, payload: &Value) -> bool {
        let Some(v) = lookup(payload, &self.field) else { return false };
        match self.op {
            Op::Equals => scalar_text(v).is_some_and(|s| s == self.value),
            Op::Glob => scalar_text(v).is_some_and(|s| glob_match(&self.value, &s)),
            Op::Contains => match v {
                Value::String(s) => s.contains(&self.value),
                Value::Array(a) => a.iter().any(|x| scalar_text(x).is_some_and(|s| s == self.value)),
                _ => false,
            },
        }
    }
}

/// What a delivery is about, read from its payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub event: String,
    /// `repository.full_name`.
    pub repository: Option<String>,
    /// The full ref: pushed (`refs/heads/main`), or a pull request's base
    /// branch (`refs/heads/main`).
    pub git_ref: Option<String>,
    /// A push's branch, a pull request's base branch.
    pub branch: Option<String>,
    /// A push's tag.
    pub tag: Option<String>,
    /// The commit to run: a push's `after`, a pull request's head.
    pub sha: Option<String>,
    /// A pull request's action (`opened`, ...).
    pub action: Option<String>,
    /// A pull request's number.
    pub number: Option<i64>,
    /// A push that deleted its ref (nothing to run).
    pub deleted: bool,
}

fn full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Facts {
    pub fn read(event: &str, payload: &Value) -> Facts {
        let s = |v: &Value| v.as_str().map(str::to_string);
        let mut f =
            Facts { event: event.to_string(), repository: s(&payload["repository"]["full_name"]), ..Facts::default() };
        match event {
            "push" => {
                f.git_ref = s(&payload["ref"]);
                if let Some(r) = &f.git_ref {
                    f.branch = r.strip_prefix("refs/heads/").map(str::to_string);
                    f.tag = r.strip_prefix("refs/tags/").map(str::to_string);
                }
                f.sha = s(&payload["after"]).filter(|x| full_sha(x));
                f.deleted = payload["deleted"].as_bool() == Some(true)
                    || f.sha.as_deref().is_some_and(|x| x.bytes().all(|b| b == b'0'));
            }
            "pull_request" => {
                let pr = &payload["pull_request"];
                f.action = s(&payload["action"]);
                f.number = payload["number"].as_i64().or_else(|| pr["number"].as_i64());
                f.branch = s(&pr["base"]["ref"]);
                f.git_ref = f.branch.as_ref().map(|b| format!("refs/heads/{b}"));
                f.sha = s(&pr["head"]["sha"]).filter(|x| full_sha(x));
            }
            _ => {}
        }
        f
    }

    /// Whether this event asks for a run at all (before any rule): a push
    /// of a commit, a pull request with a new head.
    pub fn actionable(&self) -> bool {
        match self.event.as_str() {
            "push" => self.sha.is_some() && !self.deleted,
            "pull_request" => self.sha.is_some() && self.action.as_deref().is_some_and(|a| PR_ACTIONS.contains(&a)),
            _ => false,
        }
    }

    pub fn simulation(&self) -> bool {
        self.event == "pull_request"
    }
}

fn any_glob(globs: &[String], text: Option<&str>) -> bool {
    text.is_some_and(|t| globs.iter().any(|g| glob_match(g, t)))
}

/// Whether `rule` fires for the event `facts` read from `payload`.
pub fn matches(rule: &RuleSpec, facts: &Facts, payload: &Value) -> bool {
    if rule.event != facts.event || !facts.actionable() {
        return false;
    }
    if !facts.repository.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(&rule.repository)) {
        return false;
    }
    let refs_ok = match facts.event.as_str() {
        "push" => any_glob(&rule.branches, facts.branch.as_deref()) || any_glob(&rule.tags, facts.tag.as_deref()),
        // No branches: any base branch.
        _ => rule.branches.is_empty() || any_glob(&rule.branches, facts.branch.as_deref()),
    };
    refs_ok && rule.matchers.iter().all(|m| m.holds(payload))
}

/// A placeholder commit for checking a template when the rule is written
/// (the event gives the real one).
pub const PLACEHOLDER_SHA: &str = "0000000000000000000000000000000000000000";

/// The `POST /v1/runs` body of an event: the template with `ref` set to the
/// event's commit; a simulation (pull request) is `check` and `diff`.
pub fn run_body(template: &Map<String, Value>, sha: &str, simulation: bool) -> Map<String, Value> {
    let mut body = template.clone();
    body.insert("ref".into(), Value::String(sha.to_string()));
    if simulation {
        body.insert("check".into(), Value::Bool(true));
        body.insert("diff".into(), Value::Bool(true));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_cannot_climb_out_of_the_api_path() {
        assert!(check_repository("acme/deploy.git-x_1").is_ok());
        for bad in ["../..", "acme/..", "./deploy", "acme/.", "acme", "acme/de/ploy", "acme/de ploy", "/deploy"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn globs() {
        assert!(glob_match("main", "main"));
        assert!(!glob_match("main", "mainline"));
        assert!(glob_match("release/*", "release/2026/12"));
        assert!(!glob_match("release/*", "releases/1"));
        assert!(glob_match("v?.*", "v1.2.3"));
        assert!(!glob_match("v?.*", "v10.2"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-rc*", "v1-rc2"));
        assert!(!glob_match("a*b", "a-b-c"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
    }

    #[test]
    fn lookups() {
        let p = json!({"a": {"b": [{"c": 1}, {"c": "x"}]}});
        assert_eq!(lookup(&p, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(lookup(&p, "a.b.2.c"), None);
        assert_eq!(lookup(&p, "a.x"), None);
    }

    #[test]
    fn matcher_ops() {
        let p = json!({"pusher": {"name": "alice"}, "n": 3, "flag": true,
            "labels": ["deploy", "urgent"], "head_commit": {"message": "fix: deploy [ci]"}});
        let m = |field: &str, op, value: &str| Matcher { field: field.into(), op, value: value.into() };
        assert!(m("pusher.name", Op::Equals, "alice").holds(&p));
        assert!(!m("pusher.name", Op::Equals, "alic").holds(&p));
        assert!(m("n", Op::Equals, "3").holds(&p));
        assert!(m("flag", Op::Equals, "true").holds(&p));
        assert!(m("head_commit.message", Op::Contains, "[ci]").holds(&p));
        assert!(!m("head_commit.message", Op::Contains, "[skip]").holds(&p));
        assert!(m("labels", Op::Contains, "urgent").holds(&p));
        assert!(!m("labels", Op::Contains, "urg").holds(&p));
        assert!(m("pusher.name", Op::Glob, "al*").holds(&p));
        assert!(!m("pusher.name", Op::Glob, "bo*").holds(&p));
        assert!(!m("missing.path", Op::Glob, "*").holds(&p));
        assert!(!m("pusher", Op::Equals, "alice").holds(&p), "an object has no text");
    }

    fn push(r: &str, after: &str) -> Value {
        json!({"ref": r, "after": after, "repository": {"full_name": "Acme/Deploy"}, "pusher": {"name": "alice"}})
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn push_rules() {
        let rule = RuleSpec::parse(&obj(json!({"event": "push", "repository": "acme/deploy",
            "branches": ["main", "release/*"], "tags": ["v*"]})))
        .unwrap();
        let fire = |p: &Value| matches(&rule, &Facts::read("push", p), p);
        assert!(fire(&push("refs/heads/main", SHA)), "repository compared without case");
        assert!(fire(&push("refs/heads/release/1.2", SHA)));
        assert!(fire(&push("refs/tags/v1.0", SHA)));
        assert!(!fire(&push("refs/heads/feature", SHA)));
        assert!(!fire(&push("refs/tags/nightly", SHA)));
        assert!(!fire(&push("refs/heads/main", PLACEHOLDER_SHA)), "a deleted branch runs nothing");
        let mut other = push("refs/heads/main", SHA);
        other["repository"]["full_name"] = json!("acme/other");
        assert!(!fire(&other));
        let p = push("refs/heads/main", SHA);
        assert!(!matches(&rule, &Facts::read("pull_request", &p), &p));

        let with = RuleSpec {
            matchers: vec![Matcher { field: "pusher.name".into(), op: Op::Equals, value: "bob".into() }],
            ..rule.clone()
        };
        assert!(!matches(&with, &Facts::read("push", &p), &p), "every matcher must hold");
    }

    #[test]
    fn pull_request_rules() {
        let rule = RuleSpec::parse(&obj(json!({"event": "pull_request", "repository": "acme/deploy"}))).unwrap();
        let pr = |action: &str, base: &str| {
            json!({"action": action, "number": 7, "repository": {"full_name": "acme/deploy"},
                "pull_request": {"number": 7, "base": {"ref": base}, "head": {"sha": SHA, "ref": "feature"}}})
        };
        for a in PR_ACTIONS {
            let p = pr(a, "main");
            let f = Facts::read("pull_request", &p);
            assert_eq!((f.sha.as_deref(), f.number, f.branch.as_deref()), (Some(SHA), Some(7), Some("main")));
            assert!(matches(&rule, &f, &p), "{a}");
        }
        let p = pr("closed", "main");
        assert!(!matches(&rule, &Facts::read("pull_request", &p), &p));
        let only_main = RuleSpec { branches: vec!["main".into()], ..rule };
        let p = pr("opened", "develop");
        assert!(!matches(&only_main, &Facts::read("pull_request", &p), &p));
    }

    #[test]
    fn bad_rules_name_their_fields() {
        let fields =
            |v: Value| -> Vec<String> { RuleSpec::parse(&obj(v)).unwrap_err().into_iter().map(|p| p.field).collect() };
        assert_eq!(fields(json!({})), ["event", "repository"]);
        assert_eq!(fields(json!({"event": "issues", "repository": "a/b", "branches": ["*"]})), ["event"]);
        assert_eq!(
            fields(json!({"event": "push", "repository": "https://github.com/a/b", "branches": ["*"]})),
            ["repository"]
        );
        assert_eq!(fields(json!({"event": "push", "repository": "a/b"})), ["branches"]);
        assert_eq!(
            fields(json!({"event": "push", "repository": "a/b", "branches": ["", 3]})),
            ["branches[0]", "branches[1]"]
        );
        assert_eq!(fields(json!({"event": "push", "repository": "a/b", "branches": "main"})), ["branches"]);
        assert_eq!(fields(json!({"event": "pull_request", "repository": "a/b", "tags": ["v*"]})), ["tags"]);
        assert_eq!(
            fields(json!({"event": "push", "repository": "a/b", "branches": ["*"],
                "matchers": [{"field": "a..b", "op": "like", "value": "", "x": 1}, 5]})),
            ["matchers[0].x", "matchers[0].field", "matchers[0].op", "matchers[0].value", "matchers[1]"]
        );
    }

    #[test]
    fn run_bodies_run_the_event_commit() {
        let t = obj(json!({"playbook": "site.yml", "repo": "https://example.com/r.git", "group": "web"}));
        let b = run_body(&t, SHA, false);
        assert_eq!(
            Value::Object(b.clone()),
            json!({"playbook": "site.yml", "repo": "https://example.com/r.git",
            "group": "web", "ref": SHA})
        );
        assert!(crate::runs::parse_request(&b).is_ok());
        let s = run_body(&t, SHA, true);
        assert_eq!((s["check"].clone(), s["diff"].clone()), (json!(true), json!(true)));
    }
}
