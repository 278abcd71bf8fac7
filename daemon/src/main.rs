//! `cratond`: the Craton daemon and its administrative commands. A thin
//! layer: parsing flags, picking the database, printing; the work lives in
//! the `craton` library.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use craton::store::{self, DbUrl};

#[derive(Parser)]
#[command(name = "cratond", version, about = "Craton fleet inventory daemon")]
struct Cli {
    /// Database URL: sqlite://PATH, postgres://..., mysql://...
    /// (default: the embedded SQLite file, see README).
    #[arg(long, global = true, env = "CRATON_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations (idempotent).
    Migrate,
    /// Import an existing inventory.
    Import {
        #[command(subcommand)]
        kind: ImportKind,
    },
}

#[derive(Subcommand)]
enum ImportKind {
    /// An Ansible inventory: YAML, INI, script/`ansible-inventory --list`
    /// JSON (`-` reads stdin), or a directory of those with group_vars/ and host_vars/.
    Ansible {
        path: String,
        /// Project to import into (created if missing).
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
        /// Make the project match the input exactly (remove what it lacks).
        #[arg(long)]
        replace: bool,
    },
}

fn database_url(flag: Option<String>) -> Result<DbUrl> {
    let file = craton::config::load_file_config().map_err(|e| anyhow!(e))?;
    match flag.or(file.database_url) {
        Some(u) => Ok(DbUrl::parse(&u)?),
        None => Ok(DbUrl::sqlite(&craton::config::default_sqlite_path())),
    }
}

/// Connects and brings the schema up to date: every cratond command may
/// write, so it migrates first (a no-op when current).
fn connect_migrated(url: &DbUrl) -> Result<store::DbConn> {
    let mut conn = store::connect(url)?;
    store::migrate(&mut conn)?;
    Ok(conn)
}

fn import_ansible(url: &DbUrl, path: &str, project: &str, replace: bool) -> Result<()> {
    let imported = craton::import::import_path(path)?;
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let mut conn = connect_migrated(url)?;
    let hosts = imported.desired.hosts.len();
    let bar = (std::io::stderr().is_terminal() && hosts >= 1000).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len}")
                .expect("static template")
                .progress_chars("=> "),
        );
        b
    });
    let progress = |stage: &str, done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_message(stage.to_string());
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let summary = store::apply::apply(&mut conn, project, &imported.desired, replace, &progress)
        .with_context(|| format!("importing {path} (nothing was written)"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let c = |n: &store::apply::Counts| {
        format!(
            "{} created, {} updated, {} removed",
            n.created, n.updated, n.removed
        )
    };
    println!(
        "project {:?}: groups {}; hosts {}; variables {}; relations {} added, {} reordered, {} removed{}",
        summary.project,
        c(&summary.groups),
        c(&summary.hosts),
        c(&summary.variables),
        summary.relations.created,
        summary.relations.updated,
        summary.relations.removed,
        if summary.is_noop() { " (no changes)" } else { "" }
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let url = database_url(cli.database_url)?;
    match cli.command {
        Command::Migrate => {
            let mut conn = store::connect(&url)?;
            let applied = store::migrate(&mut conn)?;
            if applied.is_empty() {
                println!("{url}: up to date");
            } else {
                println!("{url}: applied {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Import {
            kind:
                ImportKind::Ansible {
                    path,
                    project,
                    replace,
                },
        } => import_ansible(&url, &path, &project, replace),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("cratond: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
