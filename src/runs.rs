//! Runs of `ansible-playbook`, the pure part: what a run request is and how
//! it is checked, the run's status machine, and the per-host tally the
//! callback's events add up to. The daemon owns processes, sockets and
//! timers; everything here is plain data so it is tested without them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a run's status can be; all but the first two are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    Running,
    Successful,
    Failed,
    Canceled,
    Error,
    /// The process that held the run stopped (its lease expired).
    Lost,
    /// Never started: a run it depends on (`after`, `require: success`)
    /// did not succeed.
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Successful,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Error,
        RunStatus::Lost,
        RunStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Successful => "successful",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
            RunStatus::Error => "error",
            RunStatus::Lost => "lost",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// Whether a run may move from `self` to `to`: forward only, and a
    /// final status never changes again (a late "lost" sweep cannot undo
    /// a recorded result, nor a slow runner a "lost").
    pub fn can_become(self, to: RunStatus) -> bool {
        match self {
            RunStatus::Queued => to != RunStatus::Queued,
            RunStatus::Running => to.is_final(),
            _ => false,
        }
    }
}

/// The outcome of an `ansible-playbook` process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Why a run ended the way it did, as the runner saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The process ended on its own.
    Exited(Exit),
    /// Someone canceled the run; the process then ended with `Exit`.
    Canceled(Exit),
    /// `timeout_s` passed; the process group was killed.
    TimedOut,
}

/// The final status and the reason shown with it. ansible-playbook's exit
/// codes: 0 ok; 2, 4 and 8 (and their sums) are bits for failed hosts,
/// unreachable hosts and a play broken by failures; anything else (1, 3 for
/// a parser error on older versions, 5 bad options, 99 interrupted, 250
/// unexpected) is an error of the run itself. The bits are only believed
/// when the play got to its recap (`recap_seen`): ansible-core exits 4 for
/// a playbook it cannot parse too, before any host ran.
pub fn final_status(ending: Ending, recap_seen: bool) -> (RunStatus, Option<i32>, Option<String>) {
    match ending {
        Ending::Exited(Exit::Code(0)) => (RunStatus::Successful, Some(0), None),
        Ending::Exited(Exit::Code(rc)) if is_host_failure_code(rc) && recap_seen => {
            (RunStatus::Failed, Some(rc), Some(host_failure_reason(rc)))
        }
        Ending::Exited(Exit::Code(rc)) => {
            (RunStatus::Error, Some(rc), Some(format!("ansible-playbook exited with code {rc}")))
        }
        Ending::Exited(Exit::Signal(s)) => {
            (RunStatus::Error, None, Some(format!("ansible-playbook was killed by signal {s}")))
        }
        Ending::Canceled(exit) => {
            let rc = match exit {
                Exit::Code(c) => Some(c),
                Exit::Signal(_) => None,
            };
            (RunStatus::Canceled, rc, Some("canceled".into()))
        }
        Ending::TimedOut => (RunStatus::Error, None, Some("timed out: the process group was killed".into())),
    }
}

fn is_host_failure_code(rc: i32) -> bool {
    rc > 0 && rc < 16 && rc & !(2 | 4 | 8) == 0
}

fn host_failure_reason(rc: i32) -> String {
    let mut parts = Vec::new();
    if rc & 2 != 0 {
        parts.push("hosts failed");
    }
    if rc & 4 != 0 {
        parts.push("hosts unreachable");
    }
    if rc & 8 != 0 {
        parts.push("a play stopped on failures");
    }
    parts.join(", ")
}

/// Where the playbook comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Source {
    Repo {
        repo: String,
        #[serde(rename = "ref")]
        git_ref: String,
    },
    ConfigRef {
        config_ref: i64,
    },
}

/// Which hosts the run is for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Target {
    pub group: Option<String>,
    /// `key=value` terms, as `craton-inventory --filter`.
    pub filter: Vec<String>,
    /// An Ansible host pattern passed to `--limit`.
    pub limit: Option<String>,
}

/// ansible-playbook's options a run may set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Options {
    pub extra_vars: Map<String, Value>,
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub forks: Option<u32>,
    pub timeout_s: Option<u64>,
    /// Maintenance windows: `None` is "respect" (which matters only when
    /// the target's hosts have windows). Defaults keep older rows readable.
    #[serde(default)]
    pub window: Option<WindowPolicy>,
    /// How a run that reaches its window's end is stopped.
    #[serde(default)]
    pub shutdown: Shutdown,
    /// Queue order: higher first, FIFO within a priority (docs/run-queue.md).
    #[serde(default)]
    pub priority: i32,
    /// What a submit does when the run's hosts are held by another run.
    #[serde(default)]
    pub if_busy: IfBusy,
    /// `"required"`: the run waits until an admin other than its submitter
    /// approves it (docs/run-gates.md).
    #[serde(default)]
    pub approval: Approval,
    /// How long an unanswered approval waits; then the run is canceled.
    #[serde(default)]
    pub approval_timeout_s: Option<u64>,
    /// Runs (of the same project) this one waits for.
    #[serde(default)]
    pub after: Vec<i64>,
    /// What `after` asks of those runs.
    #[serde(default)]
    pub require: Require,
    /// A rolling run: batch sizes, as `serial` (docs/rollouts.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Vec<crate::rollout::BatchSize>>,
    /// Stop the rollout when more than this percentage of a batch fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fail_percentage: Option<f64>,
    /// Seconds between batches (on the daemon's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_s: Option<u64>,
    /// Which hosts go first.
    #[serde(default)]
    pub order: crate::rollout::Order,
    /// Each batch after the first waits for an admin's approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve_each_batch: bool,
}

/// `approval` of a run request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    #[default]
    None,
    Required,
}

/// `require` of a run request: how the runs named in `after` must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// Each must end `successful`; otherwise this run is `skipped`.
    #[default]
    Success,
    /// Each must end, however it ends.
    Finished,
}

impl Require {
    pub fn as_str(self) -> &'static str {
        match self {
            Require::Success => "success",
            Require::Finished => "finished",
        }
    }
}

/// Most runs one run may wait for.
pub const MAX_AFTER: usize = 100;

/// Where a run stands with the runs it waits for (`after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependencies {
    /// All ended as `require` asks: the run may go on.
    Met,
    /// These have not ended yet.
    Waiting(Vec<i64>),
    /// One ended otherwise than `require: success` asks (or is gone): the
    /// run is skipped, for this reason.
    Failed(String),
}

/// Decides [`Dependencies`] from the current status of each run in
/// `after` (`None`: no such run any more, pruned).
pub fn dependencies(require: Require, after: &[(i64, Option<RunStatus>)]) -> Dependencies {
    let mut waiting = Vec::new();
    for (id, status) in after {
        match status {
            Some(s) if !s.is_final() => waiting.push(*id),
            Some(RunStatus::Successful) => {}
            Some(s) if require == Require::Success => {
                return Dependencies::Failed(format!("run {id} ended {} (require: success)", s.as_str()))
            }
            None if require == Require::Success => {
                return Dependencies::Failed(format!("run {id} is gone (require: success)"))
            }
            _ => {}
        }
    }
    if waiting.is_empty() {
        Dependencies::Met
    } else {
        Dependencies::Waiting(waiting)
    }
}

/// `if_busy` of a run request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IfBusy {
    /// Queue behind the runs that hold its hosts.
    #[default]
    Wait,
    /// Refuse the submit (409) when a running or claimed run holds one of
    /// its hosts.
    Refuse,
}

/// Bounds of a run's `priority`.
pub const MAX_PRIORITY: i64 = 1000;

/// Whether a run waits for (and stops at the end of) its hosts' windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowPolicy {
    Respect,
    Ignore,
}

/// How a run is stopped when its maintenance window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shutdown {
    /// SIGINT, as a graceful cancel: Ansible stops after the current task.
    #[default]
    Graceful,
    /// At once, as an immediate cancel.
    Immediate,
}

/// A checked run request.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub playbook: String,
    pub source: Source,
    pub target: Target,
    pub options: Options,
}

/// The fields `POST /v1/runs` takes.
pub const FIELDS: [&str; 27] = [
    "playbook",
    "repo",
    "ref",
    "config_ref",
    "group",
    "filter",
    "limit",
    "extra_vars",
    "check",
    "diff",
    "tags",
    "skip_tags",
    "forks",
    "timeout_s",
    "window",
    "shutdown",
    "priority",
    "if_busy",
    "approval",
    "approval_timeout_s",
    "after",
    "require",
    "batch",
    "max_fail_percentage",
    "pause_s",
    "order",
    "approve_each_batch",
];

/// Most forks a run may ask for.
pub const MAX_FORKS: u64 = 1000;
/// Longest `timeout_s`: a week.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

/// One refused field of a run request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem { field: field.into(), message: message.into() }
}

/// Checks a playbook path: relative, inside the tree, no `..`, a YAML file.
pub fn check_playbook(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if path.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    if path.starts_with('/') {
        return Err("must be a path relative to the repository root".into());
    }
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("must not contain \"..\"".into()),
            p if p.chars().any(|c| c.is_control() || c == '\\') => {
                return Err("must not contain control characters or backslashes".into())
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("must name a file".into());
    }
    Ok(parts.join("/"))
}

/// Checks an Ansible pattern, a tag: no control characters, bounded.
fn check_word(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.len() > 4096 {
        return Err(format!("{what} is longer than 4096 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    if s.starts_with('-') {
        // It would become another option of ansible-playbook.
        return Err(format!("{what} must not start with '-'"));
    }
    Ok(())
}

fn strings(field: &str, v: &Value, out: &mut Vec<FieldProblem>) -> Vec<String> {
    let items: Vec<&Value> = match v {
        Value::Null => return Vec::new(),
        Value::String(_) => vec![v],
        Value::Array(a) => a.iter().collect(),
        _ => {
            out.push(problem(field, "must be a string or a list of strings"));
            return Vec::new();
        }
    };
    let mut r = Vec::new();
    for i in items {
        match i.as_str() {
            Some(s) => match check_word(s, "each entry") {
                Ok(()) => r.push(s.to_string()),
                Err(m) => out.push(problem(field, m)),
            },
            None => out.push(problem(field, "must be a string or a list of strings")),
        }
    }
    r
}

fn flag(field: &str, v: Option<&Value>, out: &mut Vec<FieldProblem>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            out.push(problem(field, "must be true or false"));
            false
        }
    }
}

fn bounded(field: &str, v: Option<&Value>, max: u64, out: &mut Vec<FieldProblem>) -> Option<u64> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(x) if (1..=max).contains(&x) => Some(x),
            _ => {
                out.push(problem(field, format!("must be an integer from 1 to {max}")));
                None
            }
        },
        Some(_) => {
            out.push(problem(field, format!("must be an integer from 1 to {max}")));
            None
        }
    }
}

/// `after`: a list of distinct run ids (at most [`MAX_AFTER`]).
fn run_ids(field: &str, v: Option<&Value>, out: &mut Vec<FieldProblem>) -> Vec<i64> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            out.push(problem(field, "must be a list of run ids"));
            return Vec::new();
        }
    };
    if items.len() > MAX_AFTER {
        out.push(problem(field, format!("names more than {MAX_AFTER} runs")));
        return Vec::new();
    }
    let mut ids = Vec::new();
    for (i, v) in items.iter().enumerate() {
        match v.as_i64().filter(|i| *i > 0) {
            Some(id) if ids.contains(&id) => {
                out.push(problem(&format!("{field}[{i}]"), format!("run {id} is listed twice")))
            }
            Some(id) => ids.push(id),
            None => out.push(problem(&format!("{field}[{i}]"), "must be a run id")),
        }
    }
    ids
}

/// Checks a run request body (an object with [`FIELDS`]). Every problem is
/// reported, each naming its field; unknown fields are refused.
pub fn parse_request(body: &Map<String, Value>) -> Result<RunSpec, Vec<FieldProblem>> {
    let mut out = Vec::new();
    for k in body.keys() {
        if !FIELDS.contains(&k.as_str()) {
            out.push(problem(k, format!("unknown field (expected one of: {})", FIELDS.join(", "))));
        }
    }
    let text = |f: &str, out: &mut Vec<FieldProblem>| -> Option<String> {
        match body.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                out.push(problem(f, "must be a string"));
                None
            }
        }
    };
    let playbook = match text("playbook", &mut out) {
        None => {
            out.push(problem("playbook", "is required"));
            None
        }
        Some(p) => match check_playbook(&p) {
            Ok(p) => Some(p),
            Err(m) => {
                out.push(problem("playbook", m));
                None
            }
        },
    };
    let repo = text("repo", &mut out);
    let git_ref = text("ref", &mut out);
    let config_ref = match body.get("config_ref") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|i| *i > 0) {
            Some(i) => Some(i),
            None => {
                out.push(problem("config_ref", "must be a config ref id"));
                None
            }
        },
    };
    let source = match (repo, config_ref) {
        (Some(_), Some(_)) => {
            out.push(problem("config_ref", "give either repo (with ref) or config_ref, not both"));
            None
        }
        (None, None) => {
            out.push(problem("repo", "is required (or config_ref)"));
            None
        }
        (Some(repo), None) => match git_ref.clone() {
            Some(git_ref) => Some(Source::Repo { repo, git_ref }),
            None => {
                // No default: which branch HEAD names is the remote's to
                // change, and a run must say what it deploys.
                out.push(problem("ref", "is required with repo (a branch, tag or commit)"));
                None
            }
        },
        (None, Some(id)) => {
            if git_ref.is_some() {
                out.push(problem("ref", "a config_ref run uses the ref's own commit; leave ref out"));
            }
            Some(Source::ConfigRef { config_ref: id })
        }
    };
    let group = text("group", &mut out);
    let filter = strings("filter", body.get("filter").unwrap_or(&Value::Null), &mut out);
    for f in &filter {
        if let Err(m) = crate::render::parse_filter(f) {
            out.push(problem("filter", m));
        }
    }
    let limit = text("limit", &mut out);
    if let Some(l) = &limit {
        if let Err(m) = check_word(l, "limit") {
            out.push(problem("limit", m));
        }
    }
    let extra_vars = match body.get("extra_vars") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            out.push(problem("extra_vars", "must be an object"));
            Map::new()
        }
    };
    let options = Options {
        extra_vars,
        check: flag("check", body.get("check"), &mut out),
        diff: flag("diff", body.get("diff"), &mut out),
        tags: strings("tags", body.get("tags").unwrap_or(&Value::Null), &mut out),
        skip_tags: strings("skip_tags", body.get("skip_tags").unwrap_or(&Value::Null), &mut out),
        forks: bounded("forks", body.get("forks"), MAX_FORKS, &mut out).map(|f| f as u32),
        timeout_s: bounded("timeout_s", body.get("timeout_s"), MAX_TIMEOUT_S, &mut out),
        window: match text("window", &mut out).as_deref() {
            None => None,
            Some("respect") => Some(WindowPolicy::Respect),
            Some("ignore") => Some(WindowPolicy::Ignore),
            Some(_) => {
                out.push(problem("window", "must be \"respect\" or \"ignore\""));
                None
            }
        },
        shutdown: match text("shutdown", &mut out).as_deref() {
            None | Some("graceful") => Shutdown::Graceful,
            Some("immediate") => Shutdown::Immediate,
            Some(_) => {
                out.push(problem("shutdown", "must be \"graceful\" or \"immediate\""));
                Shutdown::Graceful
            }
        },
        priority: match body.get("priority") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64().filter(|p| p.abs() <= MAX_PRIORITY) {
                Some(p) => p as i32,
                None => {
                    out.push(problem("priority", format!("must be an integer from -{MAX_PRIORITY} to {MAX_PRIORITY}")));
                    0
                }
            },
        },
        if_busy: match text("if_busy", &mut out).as_deref() {
            None | Some("wait") => IfBusy::Wait,
            Some("refuse") => IfBusy::Refuse,
            Some(_) => {
                out.push(problem("if_busy", "must be \"wait\" or \"refuse\""));
                IfBusy::Wait
            }
        },
        approval: match text("approval", &mut out).as_deref() {
            None | Some("none") => Approval::None,
            Some("required") => Approval::Required,
            Some(_) => {
                out.push(problem("approval", "must be \"required\" or \"none\""));
                Approval::None
            }
        },
        approval_timeout_s: bounded("approval_timeout_s", body.get("approval_timeout_s"), MAX_TIMEOUT_S, &mut out),
        after: run_ids("after", body.get("after"), &mut out),
        require: match text("require", &mut out).as_deref() {
            None | Some("success") => Require::Success,
            Some("finished") => Require::Finished,
            Some(_) => {
                out.push(problem("require", "must be \"success\" or \"finished\""));
                Require::Success
            }
        },
        ..Options::default()
    };
    if options.approval_timeout_s.is_some() && options.approval != Approval::Required {
        out.push(problem("approval_timeout_s", "needs \"approval\": \"required\""));
    }
    let mut options = options;
    rollout_fields(body, &mut options, limit.is_some(), &mut out);
    match (playbook, source) {
        (Some(playbook), Some(source)) if out.is_empty() => {
            Ok(RunSpec { playbook, source, target: Target { group, filter, limit }, options })
        }
        _ => Err(out),
    }
}

/// `batch`, `max_fail_percentage`, `pause_s` and `order` into `o`.
fn rollout_fields(body: &Map<String, Value>, o: &mut Options, has_limit: bool, out: &mut Vec<FieldProblem>) {
    use crate::rollout;
    match body.get("batch") {
        None | Some(Value::Null) => {}
        Some(v) => match rollout::parse_sizes(v) {
            Ok(s) => o.batch = Some(s),
            Err((i, m)) => out.push(problem(&i.map_or("batch".into(), |i| format!("batch[{i}]")), m)),
        },
    }
    match body.get("max_fail_percentage") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_f64().filter(|p| (0.0..=100.0).contains(p)) {
            Some(p) => o.max_fail_percentage = Some(p),
            None => out.push(problem("max_fail_percentage", "must be a number from 0 to 100")),
        },
    }
    o.pause_s = match body.get("pause_s") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|p| *p <= rollout::MAX_PAUSE_S) {
            Some(p) => Some(p),
            None => {
                out.push(problem("pause_s", format!("must be an integer from 0 to {}", rollout::MAX_PAUSE_S)));
                None
            }
        },
    };
    match body.get("order") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if rollout::Order::parse(s).is_some() => {
            o.order = rollout::Order::parse(s).expect("checked");
        }
        Some(_) => out.push(problem("order", "must be \"inventory\", \"sorted\", \"reverse\" or \"shuffle\"")),
    }
    o.approve_each_batch = flag("approve_each_batch", body.get("approve_each_batch"), out);
    if o.batch.is_none() {
        for f in ["max_fail_percentage", "pause_s", "order", "approve_each_batch"] {
            if body.get(f).is_some_and(|v| !v.is_null()) {
                out.push(problem(f, "needs \"batch\""));
            }
        }
    } else if has_limit {
        // Batches are cut from the target's hosts, which Craton resolves;
        // an Ansible pattern only Ansible resolves cannot be cut.
        out.push(problem("limit", "a rolling run (batch) takes its hosts from group and filter, not limit"));
    }
}

impl RunSpec {
    /// ansible-playbook's arguments after `-i INVENTORY`, ending with the
    /// playbook. Extra vars go through a file (`-e @FILE`): nothing a
    /// caller sent is ever parsed as an option. A rolling run's batch is
    /// `--limit=@FILE` of its host names (a rolling run has no `limit`).
    pub fn playbook_args(&self, extra_vars_file: Option<&str>, batch_file: Option<&str>) -> Vec<String> {
        let mut a = Vec::new();
        let o = &self.options;
        if let Some(f) = batch_file {
            a.push(format!("--limit=@{f}"));
        } else if let Some(l) = &self.target.limit {
            a.push(format!("--limit={l}"));
        }
        if o.check {
            a.push("--check".into());
        }
        if o.diff {
            a.push("--diff".into());
        }
        if !o.tags.is_empty() {
            a.push(format!("--tags={}", o.tags.join(",")));
        }
        if !o.skip_tags.is_empty() {
            a.push(format!("--skip-tags={}", o.skip_tags.join(",")));
        }
        if let Some(f) = o.forks {
            a.push(format!("--forks={f}"));
        }
        if let Some(f) = extra_vars_file {
            a.push(format!("--extra-vars=@{f}"));
        }
        a.push("--".into());
        a.push(self.playbook.clone());
        a
    }
}

/// The recap counters of one host, as `playbook_on_stats` carries them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recap {
    pub ok: i32,
    pub changed: i32,
    pub failures: i32,
    pub unreachable: i32,
    pub skipped: i32,
    pub rescued: i32,
    pub ignored: i32,
}

/// A host's status in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostStatus {
    /// In the target; nothing reported yet.
    Pending,
    Skipped,
    Ok,
    Changed,
    Failed,
    Unreachable,
    /// In the target, but the run ended without Ansible reporting on it
    /// (a `limit` left it out, or no play matched it).
    NotRun,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Pending => "pending",
            HostStatus::Skipped => "skipped",
            HostStatus::Ok => "ok",
            HostStatus::Changed => "changed",
            HostStatus::Failed => "failed",
            HostStatus::Unreachable => "unreachable",
            HostStatus::NotRun => "not_run",
        }
    }

    pub fn parse(s: &str) -> Option<HostStatus> {
        [
            HostStatus::Pending,
            HostStatus::Skipped,
            HostStatus::Ok,
            HostStatus::Changed,
            HostStatus::Failed,
            HostStatus::Unreachable,
            HostStatus::NotRun,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }

    /// The status the final recap gives a host.
    pub fn from_recap(r: &Recap) -> HostStatus {
        if r.unreachable > 0 {
            HostStatus::Unreachable
        } else if r.failures > 0 {
            HostStatus::Failed
        } else if r.changed > 0 {
            HostStatus::Changed
        } else if r.ok > 0 || r.rescued > 0 || r.ignored > 0 {
            HostStatus::Ok
        } else {
            HostStatus::Skipped
        }
    }
}

/// The fields of a callback event the daemon reads; the rest is kept as
/// the event's JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventHead {
    pub counter: i64,
    pub event: String,
    pub created: i64,
    pub host: Option<String>,
    pub task: Option<String>,
    pub changed: Option<bool>,
    pub ignore_errors: Option<bool>,
    pub stats: Option<BTreeMap<String, Recap>>,
}

/// One host's state in the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub status: HostStatus,
    pub recap: Recap,
    pub last_task: Option<String>,
    /// True once the final recap set it: the counters are Ansible's own.
    pub from_recap: bool,
}

impl HostState {
    fn new() -> Self {
        HostState { status: HostStatus::Pending, recap: Recap::default(), last_task: None, from_recap: false }
    }
}

/// Per-host results of a run, built from its events. Until the final
/// `playbook_on_stats` the counters are the events' own count; the stats
/// event replaces them with Ansible's recap (which alone knows `rescued`).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub hosts: BTreeMap<String, HostState>,
    /// Hosts changed since [`Tally::take_dirty`].
    dirty: std::collections::BTreeSet<String>,
    pub stats_seen: bool,
    /// Highest counter seen and how many events arrived.
    pub last_counter: i64,
    pub received: i64,
}

/// Host counts for a run's `counts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub hosts: i32,
    pub ok: i32,
    pub changed: i32,
    pub failed: i32,
    pub unreachable: i32,
    pub skipped: i32,
    /// Hosts with no final result yet (while the run runs).
    pub running: i32,
}

impl Tally {
    /// A tally whose hosts start as `pending`.
    pub fn with_hosts<'a>(names: impl IntoIterator<Item = &'a str>) -> Tally {
        let mut t = Tally::default();
        for n in names {
            t.hosts.insert(n.to_string(), HostState::new());
        }
        t
    }

    fn host(&mut self, name: &str) -> &mut HostState {
        self.dirty.insert(name.to_string());
        self.hosts.entry(name.to_string()).or_insert_with(HostState::new)
    }

    /// Adds one event.
    pub fn apply(&mut self, e: &EventHead) {
        self.received += 1;
        self.last_counter = self.last_counter.max(e.counter);
        if e.event == "playbook_on_stats" {
            if let Some(stats) = &e.stats {
                for (name, r) in stats {
                    let h = self.host(name);
                    h.recap = *r;
                    h.status = HostStatus::from_recap(r);
                    h.from_recap = true;
                }
                self.stats_seen = true;
            }
            return;
        }
        let Some(name) = e.host.as_deref() else { return };
        let task = e.task.clone();
        let h = self.host(name);
        if h.from_recap {
            return;
        }
        if task.is_some() {
            h.last_task = task;
        }
        let worst = |h: &mut HostState, s: HostStatus| {
            if h.status == HostStatus::Pending || s > h.status {
                h.status = s;
            }
        };
        // Item events are followed by the task's own result: only that one
        // counts, as in Ansible's stats.
        match e.event.as_str() {
            "runner_on_ok" => {
                h.recap.ok += 1;
                if e.changed == Some(true) {
                    h.recap.changed += 1;
                    worst(h, HostStatus::Changed);
                } else {
                    worst(h, HostStatus::Ok);
                }
            }
            "runner_on_failed" if e.ignore_errors == Some(true) => {
                h.recap.ignored += 1;
                worst(h, HostStatus::Ok);
            }
            "runner_on_failed" => {
                h.recap.failures += 1;
                worst(h, HostStatus::Failed);
            }
            "runner_on_unreachable" => {
                h.recap.unreachable += 1;
                worst(h, HostStatus::Unreachable);
            }
            "runner_on_skipped" => {
                h.recap.skipped += 1;
                worst(h, HostStatus::Skipped);
            }
            _ => {}
        }
    }

    /// Names of the hosts changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// Ends the tally: hosts Ansible never reported on become `not_run`.
    pub fn finish(&mut self) {
        let names: Vec<String> =
            self.hosts.iter().filter(|(_, h)| h.status == HostStatus::Pending).map(|(n, _)| n.clone()).collect();
        for n in names {
            self.host(&n).status = HostStatus::NotRun;
        }
    }

    pub fn counts(&self, running: bool) -> Counts {
        let mut c = Counts::default();
        for h in self.hosts.values() {
            if h.status == HostStatus::NotRun {
                continue;
            }
            c.hosts += 1;
            match h.status {
                HostStatus::Ok => c.ok += 1,
                HostStatus::Changed => c.changed += 1,
                HostStatus::Failed => c.failed += 1,
                HostStatus::Unreachable => c.unreachable += 1,
                HostStatus::Skipped => c.skipped += 1,
                HostStatus::Pending | HostStatus::NotRun => {}
            }
            if running && !matches!(h.status, HostStatus::Failed | HostStatus::Unreachable) {
                c.running += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn request_problems_name_their_fields() {
        let e = parse_request(&body(json!({"playbook": "../x.yml", "repo": "file:///r", "forks": 0, "bogus": 1})))
            .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["bogus", "playbook", "ref", "forks"]);
        let e = parse_request(&body(json!({"playbook": "/etc/x.yml", "repo": "r", "config_ref": 3}))).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["playbook", "config_ref"]);
        let e = parse_request(&body(json!({"playbook": "a.yml", "repo": "r", "ref": "main", "limit": "--become"})))
            .unwrap_err();
        assert_eq!(e[0].field, "limit");
    }

    #[test]
    fn gate_fields_are_checked_and_name_their_fields() {
        let base = json!({"playbook": "a.yml", "repo": "r", "ref": "main"});
        let with = |extra: Value| {
            let mut b = body(base.clone());
            b.extend(body(extra));
            parse_request(&b)
        };
        let s = with(json!({"approval": "required", "approval_timeout_s": 60, "after": [3, 1], "require": "finished"}))
            .unwrap();
        assert_eq!(
            (s.options.approval, s.options.approval_timeout_s, s.options.after.clone(), s.options.require),
            (Approval::Required, Some(60), vec![3, 1], Require::Finished)
        );
        let fields = |e: Vec<FieldProblem>| e.into_iter().map(|p| p.field).collect::<Vec<_>>();
        assert_eq!(fields(with(json!({"after": [1, "x", 1, 0]})).unwrap_err()), ["after[1]", "after[2]", "after[3]"]);
        assert_eq!(fields(with(json!({"after": 4})).unwrap_err()), ["after"]);
        assert_eq!(fields(with(json!({"after": (1..=101).collect::<Vec<_>>()})).unwrap_err()), ["after"]);
        // `require` alone is allowed: a schedule's `after_schedules` adds
        // the runs it applies to when it fires.
        assert!(with(json!({"require": "finished"})).is_ok());
        assert_eq!(fields(with(json!({"require": "always"})).unwrap_err()), ["require"]);
        assert_eq!(
            fields(with(json!({"approval": "yes", "approval_timeout_s": 5})).unwrap_err()),
            ["approval", "approval_timeout_s"]
        );
        // Rows stored before the gates existed read with none of them.
        let o: Options = serde_json::from_value(json!({"extra_vars": {}, "check": false, "diff": false,
            "tags": [], "skip_tags": [], "forks": null, "timeout_s": null}))
        .unwrap();
        assert_eq!((o.approval, o.after.len(), o.require), (Approval::None, 0, Require::Success));
    }

    #[test]
    fn rollout_fields_are_checked_and_name_their_fields() {
        use crate::rollout::{BatchSize, Order};
        let base = json!({"playbook": "a.yml", "repo": "r", "ref": "main"});
        let with = |extra: Value| {
            let mut b = body(base.clone());
            b.extend(body(extra));
            parse_request(&b)
        };
        let s =
            with(json!({"batch": [1, "50%"], "max_fail_percentage": 20, "pause_s": 0, "order": "reverse"})).unwrap();
        let o = &s.options;
        assert_eq!(o.batch, Some(vec![BatchSize::Count(1), BatchSize::Percent(50)]));
        assert_eq!((o.max_fail_percentage, o.pause_s, o.order), (Some(20.0), Some(0), Order::Reverse));
        // Stored and read back as submitted.
        let back: Options = serde_json::from_str(&serde_json::to_string(o).unwrap()).unwrap();
        assert_eq!(&back, o);
        let fields = |e: Vec<FieldProblem>| e.into_iter().map(|p| p.field).collect::<Vec<_>>();
        assert_eq!(fields(with(json!({"batch": [2, "0%"]})).unwrap_err()), ["batch[1]"]);
        assert_eq!(fields(with(json!({"batch": {}})).unwrap_err()), ["batch"]);
        assert_eq!(
            fields(with(json!({"max_fail_percentage": 10, "pause_s": 5, "order": "sorted"})).unwrap_err()),
            ["max_fail_percentage", "pause_s", "order"]
        );
        assert_eq!(fields(with(json!({"batch": 1, "limit": "web"})).unwrap_err()), ["limit"]);
        assert_eq!(
            fields(with(json!({"batch": 1, "max_fail_percentage": 101, "order": "random"})).unwrap_err()),
            ["max_fail_percentage", "order"]
        );
        assert!(with(json!({"batch": 1})).unwrap().options.max_fail_percentage.is_none());
        assert!(with(json!({"batch": 1, "approve_each_batch": true})).unwrap().options.approve_each_batch);
        assert_eq!(fields(with(json!({"approve_each_batch": true})).unwrap_err()), ["approve_each_batch"]);
    }

    #[test]
    fn dependencies_wait_then_go_on_or_skip() {
        use RunStatus::*;
        assert_eq!(dependencies(Require::Success, &[]), Dependencies::Met);
        assert_eq!(
            dependencies(Require::Success, &[(1, Some(Running)), (2, Some(Successful)), (3, Some(Queued))]),
            Dependencies::Waiting(vec![1, 3])
        );
        // A failed one decides at once, even while others still run.
        assert_eq!(
            dependencies(Require::Success, &[(1, Some(Running)), (2, Some(Failed))]),
            Dependencies::Failed("run 2 ended failed (require: success)".into())
        );
        assert_eq!(
            dependencies(Require::Success, &[(7, None)]),
            Dependencies::Failed("run 7 is gone (require: success)".into())
        );
        for s in [Failed, Canceled, Error, Lost, Skipped] {
            assert_eq!(dependencies(Require::Finished, &[(1, Some(s)), (2, None)]), Dependencies::Met, "{s:?}");
        }
        assert_eq!(dependencies(Require::Finished, &[(1, Some(Running))]), Dependencies::Waiting(vec![1]));
    }

    #[test]
    fn request_becomes_arguments_that_are_never_options() {
        let s = parse_request(&body(json!({
            "playbook": "./site/../site.yml".replace("../", ""), "repo": "file:///r", "ref": "main",
            "limit": "web:!w3", "check": true, "tags": ["a", "b"], "forks": 7
        })))
        .unwrap();
        assert_eq!(s.playbook, "site/site.yml");
        assert_eq!(
            s.playbook_args(Some("/w/extra.json"), None),
            [
                "--limit=web:!w3",
                "--check",
                "--tags=a,b",
                "--forks=7",
                "--extra-vars=@/w/extra.json",
                "--",
                "site/site.yml"
            ]
        );
    }

    #[test]
    fn exit_codes_map_to_statuses() {
        assert_eq!(final_status(Ending::Exited(Exit::Code(0)), true).0, RunStatus::Successful);
        assert_eq!(final_status(Ending::Exited(Exit::Code(2)), true).0, RunStatus::Failed);
        assert_eq!(final_status(Ending::Exited(Exit::Code(6)), true).0, RunStatus::Failed);
        assert_eq!(final_status(Ending::Exited(Exit::Code(4)), false).0, RunStatus::Error, "a parser error");
        assert_eq!(final_status(Ending::Exited(Exit::Code(1)), true).0, RunStatus::Error);
        assert_eq!(final_status(Ending::Exited(Exit::Code(250)), true).0, RunStatus::Error);
        assert_eq!(final_status(Ending::Exited(Exit::Signal(9)), true).0, RunStatus::Error);
        assert_eq!(final_status(Ending::Canceled(Exit::Signal(9)), true).0, RunStatus::Canceled);
        assert_eq!(final_status(Ending::TimedOut, true).0, RunStatus::Error);
    }

    #[test]
    fn final_statuses_never_change() {
        assert!(RunStatus::Queued.can_become(RunStatus::Running));
        assert!(RunStatus::Running.can_become(RunStatus::Lost));
        assert!(!RunStatus::Lost.can_become(RunStatus::Successful));
        assert!(!RunStatus::Successful.can_become(RunStatus::Lost));
        assert!(!RunStatus::Running.can_become(RunStatus::Queued));
    }

    fn ev(event: &str, host: &str, changed: bool) -> EventHead {
        EventHead {
            counter: 1,
            event: event.into(),
            host: Some(host.into()),
            changed: Some(changed),
            task: Some("t".into()),
            ..Default::default()
        }
    }

    #[test]
    fn tally_keeps_the_worst_and_the_recap_wins() {
        let mut t = Tally::with_hosts(["a", "b", "c"]);
        t.apply(&ev("runner_on_ok", "a", true));
        t.apply(&ev("runner_on_ok", "a", false));
        t.apply(&ev("runner_on_failed", "b", false));
        t.apply(&ev("runner_on_ok", "b", false));
        assert_eq!(t.hosts["a"].status, HostStatus::Changed);
        assert_eq!(t.hosts["b"].status, HostStatus::Failed);
        let c = t.counts(true);
        assert_eq!((c.hosts, c.changed, c.failed, c.running), (3, 1, 1, 2));
        let mut stats = BTreeMap::new();
        stats.insert("a".to_string(), Recap { ok: 2, changed: 1, ..Default::default() });
        stats.insert("b".to_string(), Recap { ok: 1, rescued: 1, ..Default::default() });
        t.apply(&EventHead { event: "playbook_on_stats".into(), stats: Some(stats), ..Default::default() });
        t.finish();
        assert_eq!(t.hosts["b"].status, HostStatus::Ok, "rescued: the recap knows better");
        assert_eq!(t.hosts["c"].status, HostStatus::NotRun);
        let c = t.counts(false);
        assert_eq!((c.hosts, c.ok, c.changed, c.failed, c.running), (2, 1, 1, 0, 0));
    }
}
