//! Maintenance windows for runs: whether a run's hosts are inside a
//! common window now, and waiting on the clock of [`super::RunHub`] (a
//! test's manual clock moves it; the wait re-reads it instead of trusting
//! one long sleep, so a clock moved forward is noticed within a poll).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use craton::clock::Clock;
use craton::store::pool::DbPool;
use craton::windows::{common, Common};

/// How often a wait re-reads the clock.
const POLL: Duration = Duration::from_millis(200);

/// Returns once `clock` reads `t` or later.
pub async fn sleep_until(clock: std::sync::Arc<dyn Clock>, t: DateTime<Utc>) {
    loop {
        let left = t - clock.now();
        if left <= chrono::Duration::zero() {
            return;
        }
        let left = left.to_std().unwrap_or(POLL);
        tokio::time::sleep(left.min(POLL)).await;
    }
}

/// The common window of `hosts` (names) of `project` at `now` (blocking).
pub fn common_for(pool: &DbPool, project: &str, hosts: &[String], now: DateTime<Utc>) -> Result<Common, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let proj = craton::store::find_project(&mut conn, project)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("project {project:?} not found"))?;
    let records = craton::store::windows::project_windows(&mut conn, proj.id).map_err(|e| e.to_string())?;
    if records.is_empty() {
        return Ok(Common::NoWindows);
    }
    let snap = craton::store::load::load_project(&mut conn, proj).map_err(|e| e.to_string())?;
    let by_group = crate::api::windows::windows_by_group(&snap, &records).map_err(|e| format!("{e:?}"))?;
    let index: HashMap<&str, usize> = snap.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
    let idx: Vec<usize> = hosts.iter().filter_map(|h| index.get(h.as_str()).copied()).collect();
    let sets = crate::api::windows::host_window_sets(&snap, &by_group, &idx);
    Ok(common(&sets, now))
}
