//! `cratond run` and `cratond runs ...`: starting a playbook run from a
//! shell and following it to its end. `run` submits to a running cratond
//! over HTTP (`CRATON_URL`, `CRATON_TOKEN`) and follows its SSE stream,
//! resuming with `Last-Event-ID` when the connection drops; `--local` runs
//! it in this process through the same code path as `POST /v1/runs`. The
//! exit code is ansible-playbook's, so scripts and CI read it as they would
//! ansible's. `runs list|show|cancel|approve|deny|prune` work on the database, as the
//! other administrative commands do (a cancel reaches the daemon running
//! the run at its next lease renewal); `runs resume` asks the daemon at
//! CRATON_URL, which runs the new run.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use craton::runs::{EventHead, RunStatus};
use craton::store::gates::{self, Answered, Decision};
use craton::store::{self, DbConn, DbUrl};
use serde_json::{json, Map, Value};

/// `cratond run`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The playbook, a path inside the repository.
    pub playbook: String,
    /// Repository of the playbook: https://, ssh://, file:// or a path.
    #[arg(long, conflicts_with = "config_ref")]
    pub repo: Option<String>,
    /// Branch, tag or commit of --repo (required with --repo).
    #[arg(long = "ref", requires = "repo")]
    pub git_ref: Option<String>,
    /// Take the playbook from this config ref's repository and commit.
    #[arg(long)]
    pub config_ref: Option<i64>,
    /// The target group (its subtree).
    #[arg(long)]
    pub group: Option<String>,
    /// key=value filter terms (JSON values), as craton-inventory --filter.
    #[arg(long)]
    pub filter: Vec<String>,
    /// An Ansible host pattern for --limit.
    #[arg(long)]
    pub limit: Option<String>,
    #[arg(long)]
    pub check: bool,
    #[arg(long)]
    pub diff: bool,
    /// Comma-separated tags.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// A JSON object of extra variables.
    #[arg(long)]
    pub extra_vars: Option<String>,
    #[arg(long)]
    pub forks: Option<u32>,
    /// Seconds the run may take; then it is killed and ends `error`.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// A rolling run: batch sizes as Ansible's serial, comma-separated
    /// (`1,10%,50%`; the last repeats). Each batch is one ansible-playbook.
    #[arg(long, value_delimiter = ',')]
    pub batch: Vec<String>,
    /// Stop the rollout when more than this percentage of a batch fails.
    #[arg(long, requires = "batch")]
    pub max_fail_percentage: Option<f64>,
    /// Seconds between batches.
    #[arg(long, requires = "batch")]
    pub pause: Option<u64>,
    /// Batch order: inventory, sorted, reverse or shuffle.
    #[arg(long, requires = "batch")]
    pub order: Option<String>,
    /// Follow the run to its end and exit with ansible-playbook's code.
    #[arg(long)]
    pub follow: bool,
    /// Run in this process against the database instead of submitting to
    /// CRATON_URL (always follows).
    #[arg(long)]
    pub local: bool,
    /// Project (root tokens and --local; default: the token's, or "default").
    #[arg(long, env = "CRATON_PROJECT")]
    pub project: Option<String>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum RunsAction {
    /// Runs of a project, newest first.
    List {
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
        /// queued, running, successful, failed, canceled, error, lost or skipped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run as JSON, with its hosts.
    Show { id: i64 },
    /// Cancel a run: graceful (SIGINT, Ansible stops after the current
    /// task) unless --immediate (SIGKILL of everything it started).
    Cancel {
        id: i64,
        #[arg(long)]
        immediate: bool,
    },
    /// Approve a run waiting for approval, as the OS user of this shell
    /// (who may not be the run's submitter).
    Approve {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a run waiting for approval: it ends canceled.
    Deny {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Resume a stopped rollout through the daemon at CRATON_URL (with
    /// CRATON_TOKEN): a new run of the batches that did not finish, on the
    /// same bundle and commit. Prints the new run's id.
    Resume {
        id: i64,
        /// Follow the new run and exit with ansible-playbook's code.
        #[arg(long)]
        follow: bool,
        #[arg(long, env = "CRATON_PROJECT")]
        project: Option<String>,
    },
    /// Delete finished runs older than a duration (30d, 12h, 90m, 3600s).
    Prune {
        #[arg(long)]
        older_than: String,
    },
}

/// The `POST /v1/runs` body of `args`.
pub fn request_body(a: &RunArgs) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    m.insert("playbook".into(), json!(a.playbook));
    if let Some(r) = &a.repo {
        m.insert("repo".into(), json!(r));
    }
    if let Some(r) = &a.git_ref {
        m.insert("ref".into(), json!(r));
    }
    if let Some(c) = a.config_ref {
        m.insert("config_ref".into(), json!(c));
    }
    if let Some(g) = &a.group {
        m.insert("group".into(), json!(g));
    }
    if !a.filter.is_empty() {
        m.insert("filter".into(), json!(a.filter));
    }
    if let Some(l) = &a.limit {
        m.insert("limit".into(), json!(l));
    }
    if a.check {
        m.insert("check".into(), json!(true));
    }
    if a.diff {
        m.insert("diff".into(), json!(true));
    }
    if !a.tags.is_empty() {
        m.insert("tags".into(), json!(a.tags));
    }
    if !a.skip_tags.is_empty() {
        m.insert("skip_tags".into(), json!(a.skip_tags));
    }
    if let Some(e) = &a.extra_vars {
        let v: Value = serde_json::from_str(e).context("--extra-vars is not JSON")?;
        if !v.is_object() {
            bail!("--extra-vars must be a JSON object");
        }
        m.insert("extra_vars".into(), v);
    }
    if let Some(f) = a.forks {
        m.insert("forks".into(), json!(f));
    }
    if let Some(t) = a.timeout {
        m.insert("timeout_s".into(), json!(t));
    }
    if !a.batch.is_empty() {
        // "2" is the count 2, as the API reads it; "10%" stays a string.
        let sizes: Vec<Value> =
            a.batch.iter().map(|b| b.trim().parse::<u64>().map_or_else(|_| json!(b.trim()), |n| json!(n))).collect();
        m.insert("batch".into(), Value::Array(sizes));
    }
    if let Some(p) = a.max_fail_percentage {
        m.insert("max_fail_percentage".into(), json!(p));
    }
    if let Some(p) = a.pause {
        m.insert("pause_s".into(), json!(p));
    }
    if let Some(o) = &a.order {
        m.insert("order".into(), json!(o));
    }
    Ok(m)
}

/// The exit code of a finished run: ansible-playbook's, or 1 when it has
/// none (error before it ran, lost, killed).
pub fn exit_code(run: &Value) -> i32 {
    match run["rc"].as_i64() {
        Some(rc) => rc.clamp(0, 255) as i32,
        None if run["status"] == "successful" => 0,
        None => 1,
    }
}

/// Shows a run's progress: a bar on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    task: String,
}

impl Progress {
    pub fn new(id: i64, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template("run {prefix} [{bar:30}] {pos}/{len} hosts done  {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b.set_prefix(id.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, task: String::new() }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{s}");
            }
        }
    }

    /// One event of the run.
    pub fn event(&mut self, e: &Value) {
        let head: EventHead = serde_json::from_value(e.clone()).unwrap_or_default();
        let host = head.host.as_deref().unwrap_or("");
        match head.event.as_str() {
            "playbook_on_task_start" | "playbook_on_handler_task_start" => {
                self.task = head.task.clone().unwrap_or_default();
                if self.bar.is_none() {
                    self.line(&format!("TASK [{}]", self.task));
                }
            }
            "runner_on_failed" if head.ignore_errors != Some(true) => {
                let msg = e["res"]["msg"].as_str().unwrap_or("");
                self.line(&format!("failed: [{host}] {}: {msg}", head.task.as_deref().unwrap_or("")));
            }
            "runner_on_unreachable" => {
                let msg = e["res"]["msg"].as_str().unwrap_or("");
                self.line(&format!("unreachable: [{host}]: {msg}"));
            }
            _ => {}
        }
    }

    /// The run's JSON (a status event): counts and status.
    pub fn status(&mut self, run: &Value) {
        let c = &run["counts"];
        let n = |k: &str| c[k].as_i64().unwrap_or(0);
        let finished = run["status"].as_str().and_then(RunStatus::parse).is_some_and(RunStatus::is_final);
        let done = if finished { n("hosts") } else { n("failed") + n("unreachable") };
        let msg = format!(
            "ok {} changed {} failed {} unreachable {}  {}",
            n("ok"),
            n("changed"),
            n("failed"),
            n("unreachable"),
            if finished { run["status"].as_str().unwrap_or("").to_string() } else { self.task.clone() }
        );
        match &self.bar {
            Some(b) => {
                b.set_length(n("hosts").max(0) as u64);
                b.set_position(done.max(0) as u64);
                b.set_message(msg);
            }
            None => {}
        }
    }

    /// The end: the bar goes, one summary line stays.
    pub fn end(&mut self, run: &Value) {
        self.status(run);
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let c = &run["counts"];
        let mut s = format!(
            "run {} {}: hosts {} ok {} changed {} failed {} unreachable {}",
            run["id"],
            run["status"].as_str().unwrap_or("?"),
            c["hosts"],
            c["ok"],
            c["changed"],
            c["failed"],
            c["unreachable"]
        );
        if let Some(rc) = run["rc"].as_i64() {
            s.push_str(&format!(" rc {rc}"));
        }
        if let Some(r) = run["reason"].as_str() {
            s.push_str(&format!(" ({r})"));
        }
        if run["events"]["lost"] == true {
            s.push_str(" [events were lost]");
        }
        self.line(&s);
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// Reads events off an SSE body (the text/event-stream format: fields up
/// to a blank line, `:` comments).
pub struct SseReader<R> {
    r: BufReader<R>,
}

impl<R: Read> SseReader<R> {
    pub fn new(r: R) -> Self {
        SseReader { r: BufReader::new(r) }
    }

    /// The next event; None at the end of the stream; Err when the
    /// connection broke.
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        let mut ev = SseEvent { event: "message".into(), ..Default::default() };
        let mut data: Vec<String> = Vec::new();
        let mut any = false;
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let l = line.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                if any {
                    ev.data = data.join("\n");
                    return Ok(Some(ev));
                }
                continue;
            }
            if l.starts_with(':') {
                continue;
            }
            let (k, v) = match l.split_once(':') {
                Some((k, v)) => (k, v.strip_prefix(' ').unwrap_or(v)),
                None => (l, ""),
            };
            any = true;
            match k {
                "id" => ev.id = Some(v.to_string()),
                "event" => ev.event = v.to_string(),
                "data" => data.push(v.to_string()),
                _ => {}
            }
        }
    }
}

/// A client of a running cratond.
struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Remote {
    fn from_env() -> Result<Remote> {
        let base = std::env::var("CRATON_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| anyhow!("CRATON_URL is not set: point it at a cratond (or use --local)"))?;
        let token = std::env::var("CRATON_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("CRATON_TOKEN is not set"))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Remote { base: base.trim_end_matches('/').to_string(), token, agent })
    }

    fn url(&self, path: &str, project: Option<&str>) -> String {
        match project {
            Some(p) => {
                let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("project", p).finish();
                format!("{}{path}?{q}", self.base)
            }
            None => format!("{}{path}", self.base),
        }
    }

    fn answer(mut resp: ureq::http::Response<ureq::Body>, what: &str) -> Result<Value> {
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().with_context(|| format!("{what}: reading the answer"))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            let details: Vec<String> = v["error"]["details"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|e| {
                            format!("{}: {}", e["field"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or(""))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if details.is_empty() {
                bail!("{what}: {status} {msg}");
            }
            bail!("{what}: {status} {msg} ({})", details.join("; "));
        }
        Ok(v)
    }

    fn post(&self, path: &str, body: &Map<String, Value>, project: Option<&str>) -> Result<Value> {
        let resp = self
            .agent
            .post(self.url(path, project))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("POST {}{path}", self.base))?;
        Self::answer(resp, &format!("POST {path}"))
    }

    /// Follows run `id` over SSE to its end, reconnecting with
    /// Last-Event-ID; returns the final run.
    fn follow(&self, id: i64, project: Option<&str>, progress: &mut Progress) -> Result<Value> {
        let mut last: Option<String> = None;
        let mut failures = 0u32;
        loop {
            let mut req = self
                .agent
                .get(self.url(&format!("/v1/runs/{id}/events"), project))
                .header("Authorization", &format!("Bearer {}", self.token))
                .header("Accept", "text/event-stream");
            if let Some(l) = &last {
                req = req.header("Last-Event-ID", l);
            }
            let broke = match req.call() {
                Ok(resp) if resp.status().is_success() => {
                    let mut sse = SseReader::new(resp.into_body().into_reader());
                    loop {
                        match sse.next_event() {
                            Ok(Some(e)) => {
                                failures = 0;
                                match e.event.as_str() {
                                    "run_event" => {
                                        if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
                                            progress.event(&v);
                                        }
                                        last = e.id.clone().or(last);
                                    }
                                    "status" => {
                                        if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
                                            progress.status(&v);
                                        }
                                    }
                                    "end" => return Ok(serde_json::from_str(&e.data)?),
                                    _ => {}
                                }
                            }
                            Ok(None) => break "the stream ended before the run did".to_string(),
                            Err(e) => break e.to_string(),
                        }
                    }
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status < 500 {
                        return Self::answer(resp, &format!("GET /v1/runs/{id}/events"));
                    }
                    format!("{status}")
                }
                Err(e) => e.to_string(),
            };
            failures += 1;
            if failures > 30 {
                bail!("following run {id}: {broke} (gave up after {failures} attempts)");
            }
            std::thread::sleep(Duration::from_millis(500 * u64::from(failures.min(6))));
        }
    }
}

/// `cratond run`: returns the process's exit code.
pub fn run(url: &DbUrl, args: RunArgs) -> Result<i32> {
    let body = request_body(&args)?;
    let terminal = std::io::stderr().is_terminal();
    if args.local {
        return run_local(url, &args, body, terminal);
    }
    let remote = Remote::from_env()?;
    let run = remote.post("/v1/runs", &body, args.project.as_deref())?;
    submitted(&remote, &run, args.follow, args.project.as_deref(), terminal)
}

/// Prints a run the daemon just queued and, with `follow`, follows it to
/// its end: the exit code of the command.
fn submitted(remote: &Remote, run: &Value, follow: bool, project: Option<&str>, terminal: bool) -> Result<i32> {
    let id = run["id"].as_i64().ok_or_else(|| anyhow!("the daemon answered no run id: {run}"))?;
    println!("{id}");
    if !follow {
        return Ok(0);
    }
    let mut progress = Progress::new(id, terminal);
    let end = remote.follow(id, project, &mut progress)?;
    progress.end(&end);
    Ok(exit_code(&end))
}

/// `cratond runs resume`: through the daemon, which runs the new run.
pub fn resume(id: i64, follow: bool, project: Option<&str>) -> Result<i32> {
    let remote = Remote::from_env()?;
    let run = remote.post(&format!("/v1/runs/{id}/resume"), &Map::new(), project)?;
    submitted(&remote, &run, follow, project, std::io::stderr().is_terminal())
}

fn run_local(url: &DbUrl, args: &RunArgs, body: Map<String, Value>, terminal: bool) -> Result<i32> {
    use crate::state::{AppState, AuthMode};
    {
        let mut conn = store::connect(url)?;
        store::migrate(&mut conn)?;
    }
    let pool = store::pool::build(url, 4)?;
    let sync = crate::sync::SyncHub::new(crate::sync::SyncSettings::from_env().map_err(|e| anyhow!(e))?);
    let settings = crate::runner::RunSettings::from_env(sync.settings().holder.clone()).map_err(|e| anyhow!(e))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let hub = crate::runner::RunHub::new(settings, sync.clone()).map_err(|e| anyhow!(e))?;
        let state = AppState::new(pool, AuthMode::InsecureNoAuth).with_sync(sync).with_runs(hub.clone());
        // The shell user is the operator of this database: root, as with
        // the other administrative commands.
        let caller = crate::api::auth::Caller::local();
        let who = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "?".into()));
        let project = args.project.clone().or_else(|| Some(craton::DEFAULT_PROJECT.to_string()));
        let (run, _) = crate::api::runs::submit(&state, caller, project, &body, who)
            .await
            .map_err(api_error)?;
        let id = run.id;
        println!("{id}");
        let feed = hub.feed(id).ok_or_else(|| anyhow!("run {id} was not launched"))?;
        let mut progress = Progress::new(id, terminal);
        let mut wake = feed.subscribe();
        let mut last = 0i64;
        let mut interrupts = 0;
        loop {
            let u = feed.since(last, usize::MAX);
            for (c, data) in &u.events {
                if let Ok(v) = serde_json::from_str::<Value>(data) {
                    progress.event(&v);
                }
                last = *c;
            }
            if let Some(r) = &u.run {
                let finished = r["status"].as_str().and_then(RunStatus::parse).is_some_and(RunStatus::is_final);
                if finished {
                    progress.end(r);
                    // The run's hook events are stored before we exit (a
                    // serving cratond delivers them).
                    if !state.hooks.flush(Duration::from_secs(10)).await {
                        progress.line("warning: hook events of this run could not be stored");
                    }
                    return Ok(exit_code(r));
                }
                progress.status(r);
            }
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => {
                    // First Ctrl-C: Ansible stops after the current task;
                    // the second kills everything.
                    interrupts += 1;
                    let mode = if interrupts == 1 { crate::runner::CancelMode::Graceful } else { crate::runner::CancelMode::Immediate };
                    progress.line(&format!("canceling run {id} ({})", mode.as_str()));
                    hub.cancel_local(id, mode);
                }
            }
        }
    })
}

/// An API refusal as one line naming its fields.
fn api_error(e: crate::api::error::ApiError) -> anyhow::Error {
    match e {
        crate::api::error::ApiError::BadRequest { message, details } if !details.is_empty() => {
            let d: Vec<String> = details.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
            anyhow!("{message} ({})", d.join("; "))
        }
        e => anyhow!("{e}"),
    }
}

/// "30d", "12h", "90m", "3600s" (a bare number is days).
pub fn parse_age(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "d"),
    };
    let n: u64 = n.parse().map_err(|_| anyhow!("--older-than {s:?}: expected a number with d, h, m or s"))?;
    let secs = match unit {
        "d" => 86400,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => bail!("--older-than {s:?}: the unit must be d, h, m or s"),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

fn run_line(r: &store::runs::Run) -> String {
    let target = serde_json::from_str::<Value>(&r.target).unwrap_or(Value::Null);
    format!(
        "{}\t{}\t{}\t{}\t{}\thosts {} ok {} changed {} failed {} unreachable {}\t{}",
        r.id,
        r.status,
        r.rc.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        r.playbook,
        target["group"].as_str().unwrap_or("-"),
        r.hosts_total,
        r.hosts_ok,
        r.hosts_changed,
        r.hosts_failed,
        r.hosts_unreachable,
        r.reason.as_deref().unwrap_or("")
    )
}

/// `cratond runs ...` over the database.
pub fn runs(conn: &mut DbConn, action: RunsAction) -> Result<()> {
    match action {
        RunsAction::List { project, status, limit } => {
            let p = store::find_project(conn, &project)?.ok_or_else(|| anyhow!("project {project:?} not found"))?;
            let status = status
                .map(|s| RunStatus::parse(&s).ok_or_else(|| anyhow!("--status {s:?} is not a run status")))
                .transpose()?;
            let f = store::runs::ListFilter { status, limit: limit.max(1), ..Default::default() };
            for r in store::runs::list(conn, p.id, &f)? {
                println!("{}", run_line(&r));
            }
        }
        RunsAction::Show { id } => {
            let r = store::runs::get(conn, None, id)?.ok_or_else(|| anyhow!("run {id} not found"))?;
            let project = store::project_by_id(conn, r.project_id)?.map(|p| p.name).unwrap_or_default();
            let mut v = crate::runner::run::run_json(&r, &project);
            let hosts: Vec<Value> = store::runs::hosts_of(conn, id)?
                .iter()
                .map(|h| {
                    json!({"host": h.host, "status": h.status, "ok": h.ok, "changed": h.changed,
                        "failures": h.failures, "unreachable": h.unreachable, "skipped": h.skipped,
                        "rescued": h.rescued, "ignored": h.ignored, "task": h.last_task})
                })
                .collect();
            v["hosts"] = Value::Array(hosts);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        RunsAction::Cancel { id, immediate } => {
            let r = store::runs::get(conn, None, id)?.ok_or_else(|| anyhow!("run {id} not found"))?;
            if r.status().is_final() {
                bail!("run {id} has already ended ({})", r.status);
            }
            let mode = if immediate { "immediate" } else { "graceful" };
            store::runs::request_cancel(conn, r.project_id, id, mode)?;
            println!("asked run {id} to stop ({mode}); the daemon running it acts at its next lease renewal");
        }
        RunsAction::Resume { .. } => unreachable!("cratond runs resume goes through the daemon (main)"),
        RunsAction::Approve { id, comment } => decide(conn, id, Decision::Approve, comment)?,
        RunsAction::Deny { id, comment } => decide(conn, id, Decision::Deny, comment)?,
        RunsAction::Prune { older_than } => {
            let age = parse_age(&older_than)?;
            let before = store::now_ms() - age.as_millis() as i64;
            let n = store::runs::prune(conn, before)?;
            println!("pruned {n} runs");
        }
    }
    Ok(())
}

/// `runs approve|deny`: answers as `cli user <USER>`.
fn decide(conn: &mut DbConn, id: i64, decision: Decision, comment: Option<String>) -> Result<()> {
    let r = store::runs::get(conn, None, id)?.ok_or_else(|| anyhow!("run {id} not found"))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "?".into());
    let (by, label) = (format!("cli user {user}"), format!("cli:{user}"));
    let now = store::now_ms();
    match gates::decide(conn, r.project_id, id, decision, &by, &label, comment.as_deref(), now)? {
        Answered::Done(run, _) => println!("{}", run_line(&run)),
        Answered::NoSuchRun => bail!("run {id} not found"),
        Answered::OwnRun => bail!("run {id} was submitted by {by}: another admin must approve or deny it"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_reader_splits_events_and_skips_comments() {
        let text = ": keep-alive\n\nid: 3\nevent: run_event\ndata: {\"a\":1}\n\nevent: end\ndata: x\ndata: y\n\n";
        let mut r = SseReader::new(text.as_bytes());
        let e = r.next_event().unwrap().unwrap();
        assert_eq!((e.id.as_deref(), e.event.as_str(), e.data.as_str()), (Some("3"), "run_event", "{\"a\":1}"));
        let e = r.next_event().unwrap().unwrap();
        assert_eq!((e.event.as_str(), e.data.as_str()), ("end", "x\ny"));
        assert!(r.next_event().unwrap().is_none());
    }

    #[test]
    fn ages_and_exit_codes() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("7").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_age("3w").is_err());
        assert_eq!(exit_code(&json!({"status": "failed", "rc": 2})), 2);
        assert_eq!(exit_code(&json!({"status": "lost", "rc": null})), 1);
        assert_eq!(exit_code(&json!({"status": "canceled", "rc": 99})), 99);
    }
}
