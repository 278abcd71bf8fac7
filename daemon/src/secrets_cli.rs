//! `cratond secrets rotate|reencrypt`: renewing the keys that protect the
//! stored secrets, from a shell, while `cratond serve` keeps serving them.
//! The work (and why it is safe online and resumable) is in
//! `craton::store::secrets` (rekey.rs); this prints one line per data key or
//! project and a summary, and fails with one line naming what went wrong.

use anyhow::{anyhow, bail, Context, Result};
use craton::secrets::keys::{provider_from_env, KeyProvider};
use craton::secrets::FileKeyProvider;
use craton::store::secrets::{data_key_count, ProjectReencrypt, ReencryptOptions, ReencryptOutcome, Secrets};
use craton::store::{self, DbConn};

/// Recorded as the actor of the `reencrypt` rows in `secret_access`.
const ACTOR: &str = "cratond-cli";

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SecretsAction {
    /// Rewrap every data key under the key provider's newest key version
    /// (transit `rewrap`: the data keys never leave OpenBao/Vault). Online
    /// and resumable. The file provider has one key version: nothing to do.
    Rotate {
        /// Only this project's keys.
        #[arg(long)]
        project: Option<String>,
        /// First make a new key version in the provider (transit
        /// `keys/KEY/rotate`; the token needs that permission).
        #[arg(long)]
        new_key_version: bool,
    },
    /// Give each project a new data key and reseal every kept secret version
    /// under it, then delete the old keys. Online and resumable.
    Reencrypt {
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Replace the data keys created before this time, Unix milliseconds
        /// (default: now). Give the value an interrupted run printed to
        /// finish it without replacing the keys it made.
        #[arg(long)]
        before: Option<i64>,
        /// Reseal at most N versions, then stop; run again to go on.
        #[arg(long)]
        max: Option<usize>,
        /// Versions resealed per transaction.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Seconds an old key is kept after the last version left it, for
        /// the daemon's requests in flight.
        #[arg(long, default_value_t = 10)]
        grace: u64,
    },
}

pub fn secrets(conn: &mut DbConn, action: SecretsAction) -> Result<()> {
    match action {
        SecretsAction::Rotate { project, new_key_version } => rotate(conn, project.as_deref(), new_key_version),
        SecretsAction::Reencrypt { project, before, max, batch, grace } => {
            let before = before.unwrap_or_else(store::now_ms);
            let opts = ReencryptOptions {
                project_id: project_id(conn, project.as_deref())?,
                before,
                max_versions: max,
                batch: batch.max(1),
                grace: std::time::Duration::from_secs(grace),
                actor: ACTOR.into(),
            };
            reencrypt(conn, &opts)
                .with_context(|| format!("reencrypt stopped (run it again with --before {before} to go on)"))
        }
    }
}

fn project_id(conn: &mut DbConn, name: Option<&str>) -> Result<Option<i64>> {
    name.map(|n| Ok(store::find_project(conn, n)?.ok_or_else(|| anyhow!("project {n:?} not found"))?.id)).transpose()
}

/// The daemon's provider, from the same environment. A missing master key
/// file is an error here, not a new key: one made now would open nothing.
fn provider() -> Result<Box<dyn KeyProvider>> {
    let file = std::env::var("CRATON_KEY_PROVIDER").map_or(true, |p| p.is_empty() || p == "file");
    if file {
        let path = FileKeyProvider::default_path();
        if !path.exists() {
            bail!(
                "master key file {} does not exist: set CRATON_MASTER_KEY_FILE to the key file cratond serve uses",
                path.display()
            );
        }
    }
    Ok(provider_from_env()?)
}

fn rotate(conn: &mut DbConn, project: Option<&str>, new_key_version: bool) -> Result<()> {
    let pid = project_id(conn, project)?;
    if !new_key_version && data_key_count(conn, pid)? == 0 {
        println!("rotate: no data keys (no secret stored yet): nothing to do");
        return Ok(());
    }
    let provider = provider()?;
    if new_key_version {
        let v = provider.rotate()?;
        println!("rotate: {} key version {v} is now the newest", provider.name());
    }
    let s = Secrets::new(provider.as_ref());
    let summary = s.rotate(conn, pid, &mut |k| {
        if k.rewrapped() {
            println!(
                "project {}: data key {}: {} key version {} -> {}",
                k.project, k.key_id, k.provider, k.from_version, k.to_version
            );
        } else {
            println!(
                "project {}: data key {}: {} key version {}, current",
                k.project, k.key_id, k.provider, k.to_version
            );
        }
    })?;
    let note = if summary.provider == "file" {
        " (the file provider has a single key version, so there is never anything to rewrap; \
         `cratond secrets reencrypt` replaces the data keys themselves)"
    } else {
        ""
    };
    println!(
        "rotate: {} key version {}: {} data key{} rewrapped, {} already current{note}",
        summary.provider,
        summary.key_version,
        summary.rewrapped,
        plural(summary.rewrapped),
        summary.current
    );
    Ok(())
}

fn reencrypt(conn: &mut DbConn, opts: &ReencryptOptions) -> Result<()> {
    if data_key_count(conn, opts.project_id)? == 0 {
        println!("reencrypt: no data keys (no secret stored yet): nothing to do");
        return Ok(());
    }
    let provider = provider()?;
    println!("reencrypt: replacing the data keys created before {} (Unix ms)", opts.before);
    let s = Secrets::new(provider.as_ref());
    let done = s.reencrypt(conn, opts, &mut |r| println!("{}", line(r, opts.before)))?;
    let count = |o: fn(&ReencryptOutcome) -> bool| done.iter().filter(|r| o(&r.outcome)).count();
    let rekeyed = count(|o| *o == ReencryptOutcome::Done);
    let unchanged = count(|o| *o == ReencryptOutcome::Unchanged);
    let left: usize =
        done.iter().map(|r| if let ReencryptOutcome::Stopped { left } = r.outcome { left } else { 0 }).sum();
    let resealed: usize = done.iter().map(|r| r.resealed).sum();
    let deleted: usize = done.iter().map(|r| r.deleted.len()).sum();
    let tail = if left > 0 {
        format!("; stopped at --max with {left} versions left: run it again with --before {} to go on", opts.before)
    } else {
        String::new()
    };
    println!(
        "reencrypt: {rekeyed} project{} rekeyed, {unchanged} unchanged; {resealed} version{} resealed, \
         {deleted} old data key{} deleted{tail}",
        plural(rekeyed),
        plural(resealed),
        plural(deleted)
    );
    Ok(())
}

fn line(r: &ProjectReencrypt, before: i64) -> String {
    let keys = |ks: &[i64]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    let head = format!(
        "project {}: {}data key {}{}",
        r.project,
        if r.created { "new " } else { "" },
        r.key_id,
        if r.old_keys.is_empty() { String::new() } else { format!(" replaces {}", keys(&r.old_keys)) }
    );
    match r.outcome {
        ReencryptOutcome::Unchanged => format!("{head}: created after {before}, unchanged"),
        ReencryptOutcome::Stopped { left } => {
            format!("{head}: {} version{} resealed, {left} left (--max)", r.resealed, plural(r.resealed))
        }
        ReencryptOutcome::Done if r.deleted.is_empty() => {
            format!("{head}: {} version{} resealed", r.resealed, plural(r.resealed))
        }
        ReencryptOutcome::Done => format!(
            "{head}: {} version{} resealed, data key{} {} deleted",
            r.resealed,
            plural(r.resealed),
            plural(r.deleted.len()),
            keys(&r.deleted)
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
