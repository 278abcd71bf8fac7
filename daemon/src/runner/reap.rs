//! Killing everything a run started. A signal to ansible-playbook's process
//! group is not enough: ansible-core's workers call `setsid()` (each is its
//! own session and group, and so are the commands they run), so a SIGKILL
//! of the group leaves workers and their `sleep`s, shells and ssh clients
//! running. Every process of a run inherits its `CRATON_EVENTS_SOCKET`
//! (the callback needs it), a value unique to the run: the processes whose
//! environment carries it are the run's, whatever their session or parent.
//! They are stopped first (so none forks past the scan), then killed.

use std::collections::HashSet;

/// Rounds of scanning for processes started while the last round stopped
/// others.
const ROUNDS: usize = 10;

/// Pids of live processes whose environment holds `entry` (`NAME=value`).
fn carrying(entry: &[u8]) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own = std::process::id() as i32;
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == own {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.split(|b| *b == 0).any(|kv| kv == entry) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs every process whose environment holds `name=value`; returns
/// how many it found.
pub fn kill_marked(name: &str, value: &str) -> usize {
    let entry = format!("{name}={value}").into_bytes();
    let mut stopped: HashSet<i32> = HashSet::new();
    for _ in 0..ROUNDS {
        let new: Vec<i32> = carrying(&entry).into_iter().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        for p in new {
            // SAFETY: kill(2) with a pid read from /proc; no memory involved.
            unsafe {
                libc::kill(p, libc::SIGSTOP);
            }
            stopped.insert(p);
        }
    }
    for p in &stopped {
        // SAFETY: as above.
        unsafe {
            libc::kill(*p, libc::SIGKILL);
        }
    }
    stopped.len()
}
