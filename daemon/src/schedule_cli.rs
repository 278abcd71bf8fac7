//! `cratond schedule add|list|remove`: schedules from a shell, on the
//! database as the other administrative commands are. A schedule added
//! here is the operator's (`created_by` "local (root)"): its runs act as
//! root of its project, as `cratond run --local` does. The serving
//! daemons' tickers fire it; nothing here starts a run.

use anyhow::{anyhow, bail, Result};
use craton::schedules::CatchUp;
use craton::store::schedules::{self as ss, Creator, NewSchedule};
use craton::store::{self, DbConn};
use craton::windows::WindowKind;
use serde_json::{Map, Value};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ScheduleAction {
    /// Add a schedule: a run template (a POST /v1/runs body) and a rule.
    Add {
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
        #[arg(long)]
        name: String,
        /// The run template as JSON, e.g.
        /// '{"playbook":"site.yml","repo":"https://...","ref":"main","group":"cell1"}'.
        #[arg(long)]
        template: String,
        /// A cron line (needs --time-zone), e.g. "30 2 * * *".
        #[arg(long, conflicts_with = "rrule", required_unless_present = "rrule")]
        cron: Option<String>,
        /// An RFC 5545 block: "DTSTART;TZID=Europe/Berlin:20261207T023000\nRRULE:FREQ=DAILY"
        /// (a literal \n separates the lines).
        #[arg(long)]
        rrule: Option<String>,
        /// IANA time zone (required for --cron).
        #[arg(long)]
        time_zone: Option<String>,
        /// Missed occurrences while no daemon ran: once or skip.
        #[arg(long, default_value = "skip")]
        catch_up: String,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
        /// A schedule (id) whose latest run this one's runs come after;
        /// repeatable.
        #[arg(long = "after")]
        after: Vec<i64>,
    },
    /// Schedules of a project with their next run.
    List {
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
    },
    /// Delete a schedule (its runs stay).
    Remove {
        id: i64,
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
    },
}

fn line(s: &ss::ScheduleRecord) -> String {
    let next = s
        .next_run_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".to_string(), crate::api::windows::ts);
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\tnext {}\t{}",
        s.id,
        s.name,
        if s.enabled { "enabled" } else { "disabled" },
        s.kind,
        s.expression.replace('\n', "\\n"),
        s.time_zone,
        next,
        s.catch_up
    )
}

pub fn schedule(conn: &mut DbConn, action: ScheduleAction) -> Result<()> {
    match action {
        ScheduleAction::Add { project, name, template, cron, rrule, time_zone, catch_up, disabled, after } => {
            let p = store::find_project(conn, &project)?.ok_or_else(|| anyhow!("project {project:?} not found"))?;
            let obj: Map<String, Value> = match serde_json::from_str(&template) {
                Ok(Value::Object(m)) => m,
                _ => bail!("--template must be a JSON object (a POST /v1/runs body)"),
            };
            if let Err(ps) = craton::runs::parse_request(&obj) {
                let d: Vec<String> = ps.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
                bail!("--template: {}", d.join("; "));
            }
            let (kind, expression) = match (cron, rrule) {
                (Some(c), None) => (WindowKind::Cron, c),
                (None, Some(r)) => (WindowKind::Rrule, r.replace("\\n", "\n")),
                _ => bail!("give one of --cron and --rrule"),
            };
            let catch_up: CatchUp = catch_up.parse().map_err(|e| anyhow!("--{e}"))?;
            let local = crate::api::auth::Caller::local();
            let new = NewSchedule {
                name,
                template: Value::Object(obj).to_string(),
                kind,
                expression,
                time_zone,
                enabled: !disabled,
                catch_up,
                created_by: crate::api::runs::created_by(&local),
                creator: Creator { kind: "local".into(), token_id: None, role: local.grant.role.as_str().into() },
                after_schedules: after,
            };
            let s = ss::create(conn, p.id, &new, store::now_ms())?;
            println!("{}", line(&s));
        }
        ScheduleAction::List { project } => {
            let p = store::find_project(conn, &project)?.ok_or_else(|| anyhow!("project {project:?} not found"))?;
            for s in ss::list(conn, p.id)? {
                println!("{}", line(&s));
            }
        }
        ScheduleAction::Remove { id, project } => {
            let p = store::find_project(conn, &project)?.ok_or_else(|| anyhow!("project {project:?} not found"))?;
            ss::delete(conn, p.id, id)?;
            println!("removed schedule {id}");
        }
    }
    Ok(())
}
