//! The command-line side of config refs: `cratond sync` (one pass without a
//! server) and `cratond config-ref add|list|remove`.

use anyhow::{anyhow, Result};
use craton::store::config_refs::{self, NewRef};
use craton::store::edit::{group_id, Ref};
use craton::store::{self, DbConn};

use super::runner::{summary_line, Syncer};
use super::settings::SyncSettings;

/// Syncs every ref (or only `only`) once, printing one line per ref.
/// Returns how many failed.
pub fn sync_once(conn: &mut DbConn, only: Option<i64>, force: bool) -> Result<usize> {
    let settings = SyncSettings::from_env().map_err(|e| anyhow!(e))?;
    let syncer = Syncer::new(settings);
    let refs = match only {
        Some(id) => vec![config_refs::get(conn, None, id)?.ok_or_else(|| anyhow!("config ref {id} not found"))?],
        None => config_refs::list(conn, None)?,
    };
    let mut failed = 0;
    for r in &refs {
        let outcome = syncer.sync(conn, r.id, force)?;
        if let super::Outcome::Applied { warnings, .. } = &outcome {
            for w in warnings {
                eprintln!("warning: ref {}: {w}", r.id);
            }
        }
        if outcome.is_failure() {
            failed += 1;
        }
        println!("{}", summary_line(r, &outcome));
    }
    Ok(failed)
}

/// `cratond config-ref add`: prints the new ref's id.
pub fn add(
    conn: &mut DbConn,
    project: &str,
    url: &str,
    git_ref: &str,
    path: &str,
    group: Option<&str>,
    poll_interval: Option<i64>,
) -> Result<i64> {
    let p = store::find_project(conn, project)?.ok_or_else(|| anyhow!("project {project:?} not found"))?;
    let gid = match group {
        Some(g) => {
            let r = g.parse::<i64>().map(Ref::Id).unwrap_or_else(|_| Ref::Name(g.to_string()));
            Some(group_id(conn, p.id, "group", &r)?)
        }
        None => None,
    };
    let new = NewRef {
        url: url.to_string(),
        git_ref: git_ref.to_string(),
        path: path.to_string(),
        group_id: gid,
        poll_interval_secs: poll_interval,
        // The CLI runs with the database's credentials: root-equivalent.
        created_by_root: true,
    };
    Ok(config_refs::create(conn, p.id, &new)?.id)
}

/// `cratond config-ref list`: one tab-separated line per ref.
pub fn list(conn: &mut DbConn, project: Option<&str>) -> Result<()> {
    let pid = match project {
        Some(name) => Some(store::find_project(conn, name)?.ok_or_else(|| anyhow!("project {name:?} not found"))?.id),
        None => None,
    };
    let refs = config_refs::list(conn, pid)?;
    let ids: Vec<i64> = refs.iter().filter_map(|r| r.group_id).collect();
    let groups = config_refs::group_names(conn, &ids)?;
    let mut projects = std::collections::HashMap::new();
    for r in &refs {
        if let std::collections::hash_map::Entry::Vacant(e) = projects.entry(r.project_id) {
            e.insert(store::project_by_id(conn, r.project_id)?.map(|p| p.name).unwrap_or_default());
        }
        let status = match (r.last_result.as_deref(), &r.last_error) {
            (Some("error"), Some(e)) => format!("error: {e}"),
            (Some(s), _) => s.to_string(),
            (None, _) => "never synced".to_string(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}s\t{}\t{}",
            r.id,
            projects[&r.project_id],
            r.url,
            r.git_ref,
            if r.path.is_empty() { "." } else { &r.path },
            r.group_id.and_then(|g| groups.get(&g)).map(String::as_str).unwrap_or("*"),
            r.poll_interval_secs,
            r.last_commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("-"),
            status
        );
    }
    Ok(())
}

/// `cratond config-ref remove`: deletes the ref and the variables it owns.
pub fn remove(conn: &mut DbConn, id: i64) -> Result<()> {
    let r = config_refs::get(conn, None, id)?.ok_or_else(|| anyhow!("config ref {id} not found"))?;
    config_refs::delete(conn, r.project_id, id)?;
    println!("removed config ref {id} and the variables it owned");
    Ok(())
}
