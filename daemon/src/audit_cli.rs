//! `cratond audit` (read the trail on the database) and `cratond audit
//! prune --older-than` (retention), like `cratond runs`: the operator's
//! view without a running server or a token.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use craton::store::{self, audit, DbConn};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Default)]
pub struct ListArgs {
    /// Only this project (default: every project).
    #[arg(long)]
    pub project: Option<String>,
    /// Only changes of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only changes of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only changes of this variable key or secret name.
    #[arg(long)]
    pub key: Option<String>,
    /// The actor: token, keystone, local, import, sync, cli, an id, or KIND:ID.
    #[arg(long)]
    pub actor: Option<String>,
    /// api, import, sync or cli.
    #[arg(long)]
    pub source: Option<String>,
    /// From this instant: RFC 3339, ms since the epoch, or an age (7d, 12h, 90m).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this instant (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// One JSON document per change set (with its changes) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Delete change sets older than a duration (30d, 12h, 90m, 3600s).
    Prune {
        #[arg(long)]
        older_than: String,
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
    },
}

/// RFC 3339, ms, or an age before now.
fn instant(flag: &str, s: &str) -> Result<i64> {
    if let Ok(t) = crate::api::audit::parse_instant(s) {
        return Ok(t);
    }
    let age = crate::runs_cli::parse_age(s).map_err(|_| {
        anyhow!("--{flag} {s:?}: expected RFC 3339 (2026-11-30T12:00:00Z), ms since the epoch, or an age (7d, 12h)")
    })?;
    Ok(store::now_ms() - age.as_millis() as i64)
}

fn project_id(conn: &mut DbConn, name: &Option<String>) -> Result<Option<i64>> {
    name.as_ref()
        .map(|n| Ok(store::find_project(conn, n)?.ok_or_else(|| anyhow!("project {n:?} not found"))?.id))
        .transpose()
}

pub fn audit(conn: &mut DbConn, args: AuditArgs) -> Result<()> {
    if let Some(AuditAction::Prune { older_than, project }) = args.action {
        let age = crate::runs_cli::parse_age(&older_than)?;
        let pid = project_id(conn, &project)?;
        let n = audit::prune(conn, store::now_ms() - age.as_millis() as i64, pid)?;
        println!("pruned {n} change sets");
        return Ok(());
    }
    let a = args.list;
    let mut f = audit::Filter {
        project_id: project_id(conn, &a.project)?,
        key: a.key.clone(),
        actor: a.actor.clone(),
        source: a.source.clone(),
        since: a.since.as_deref().map(|s| instant("since", s)).transpose()?,
        until: a.until.as_deref().map(|s| instant("until", s)).transpose()?,
        limit: a.limit.max(1),
        ..Default::default()
    };
    if let Some(h) = &a.host {
        (f.object_kind, f.object_name) = (Some("host".into()), Some(h.clone()));
    }
    if let Some(g) = &a.group {
        (f.object_kind, f.object_name) = (Some("group".into()), Some(g.clone()));
    }
    let filtered = f.key.is_some() || f.object_name.is_some();
    for mut cs in audit::list(conn, &f)? {
        if !filtered {
            cs.changes = audit::get(conn, cs.id, None)?.map(|c| c.changes).unwrap_or_default();
        }
        if a.json {
            println!("{}", serde_json::to_string(&crate::api::audit::changeset_json(&cs, true))?);
            continue;
        }
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(cs.at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let note = cs.actor.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        println!(
            "{}\t{at}\t{}\t{}:{}{note}\t{}\t{} changes",
            cs.id, cs.project, cs.actor.kind, cs.actor.id, cs.actor.via, cs.n_changes
        );
        for c in &cs.changes {
            println!(
                "\t{} {}\t{} {}\t{} -> {}",
                c.object_kind,
                c.object_name,
                c.attr_kind,
                c.attr,
                c.before.as_deref().unwrap_or("-"),
                c.after.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

/// `cratond diff`: what changed in a project's inventory between two points.
#[derive(Args)]
pub struct DiffArgs {
    /// The earlier point: an RFC 3339 instant, a project revision, or
    /// run:ID (the revision that run's inventory was built from).
    #[arg(long)]
    pub from: String,
    /// The later point (same forms; default: now).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
    pub project: String,
    /// The diff as one JSON document (as GET /v1/inventory/diff answers).
    #[arg(long)]
    pub json: bool,
}

/// Prints the diff: one line per change, `+`/`-`/`~`, blame in brackets.
pub fn diff(conn: &mut DbConn, args: DiffArgs) -> Result<()> {
    use craton::store::history::{self, Since};
    let from = Since::parse(&args.from).map_err(|e| anyhow!("--from: {e}"))?;
    let to = args.to.as_deref().map(Since::parse).transpose().map_err(|e| anyhow!("--to: {e}"))?;
    let pid = craton::store::find_project(conn, &args.project)?
        .ok_or_else(|| anyhow!("project {:?} not found", args.project))?
        .id;
    let from = from.resolve(conn, pid).map_err(|e| anyhow!("--from: {e}"))?;
    let to = to.map(|t| t.resolve(conn, pid)).transpose().map_err(|e| anyhow!("--to: {e}"))?;
    let d = history::diff(conn, &args.project, from, to)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    println!(
        "project {}: {} (revision {}) -> {} (revision {}), {} change set(s)",
        d.project,
        d.from.asked,
        d.from.revision,
        d.to.asked,
        d.to.revision,
        d.changesets.len()
    );
    for (what, delta) in [("group", &d.groups), ("host", &d.hosts)] {
        for n in &delta.added {
            println!("+ {what} {n}");
        }
        for n in &delta.removed {
            println!("- {what} {n}");
        }
    }
    for (what, delta) in [("member", &d.memberships), ("child", &d.children)] {
        for e in &delta.added {
            println!("+ {what} {} -> {}", e.from, e.to);
        }
        for e in &delta.removed {
            println!("- {what} {} -> {}", e.from, e.to);
        }
    }
    let show = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(unset)".into());
    for (host, vars) in &d.variables {
        for (k, v) in vars {
            let blame: Vec<String> = v.blame.iter().map(|b| format!("#{b}")).collect();
            println!("~ {host} {k}: {} -> {} [{}]", show(&v.before), show(&v.after), blame.join(" "));
        }
    }
    for cs in &d.changesets {
        println!("  #{} {} {}:{} {}", cs.id, cs.at, cs.actor.kind, cs.actor.id, cs.actor.via);
    }
    Ok(())
}
