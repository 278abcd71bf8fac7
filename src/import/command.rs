//! Running the programs an import may need (an executable inventory script,
//! `ansible-inventory` for `--via-ansible`) without trusting them: no shell,
//! explicit arguments, stdin closed, a process group of their own so a
//! timeout kills every process they started, and stdout bounded so a runaway
//! program cannot exhaust memory.
//!
//! Only `cratond import` runs programs: config ref syncs read repositories
//! that project editors control and never execute anything from them.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bounds for one program run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time before the whole process group is killed.
    pub timeout: Duration,
    /// Largest stdout accepted, in bytes.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(600), max_output: 256 << 20 }
    }
}

/// What a finished program left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// Its first [`STDERR_KEPT`] bytes (the rest is read and dropped).
    pub stderr: Vec<u8>,
}

/// How much of stderr is kept for messages.
pub const STDERR_KEPT: usize = 64 << 10;

enum Stream {
    Out(std::io::Result<(Vec<u8>, bool)>),
    Err(std::io::Result<(Vec<u8>, bool)>),
}

/// Reads `r` to the end, keeping at most `keep` bytes; true when more came.
/// With `stop_early` it returns at the first byte over the bound.
fn read_bounded(mut r: impl Read, keep: usize, stop_early: bool) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 << 10];
    let mut over = false;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok((kept, over)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        if n > room {
            over = true;
            if stop_early {
                return Ok((kept, over));
            }
        }
    }
}

fn kill_group(child: &mut Child) {
    // The child leads its own group (process_group(0)): -pid names all of it.
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}

/// Runs `cmd` (already holding program, arguments and environment) to its
/// end within `limits`. The error says what went wrong in words meant to
/// follow the program's name.
pub fn run(cmd: &mut Command, limits: &Limits) -> Result<Finished, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot be executed: {e}"))?;
    let deadline = Instant::now() + limits.timeout;
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let max = limits.max_output;
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Stream::Out(read_bounded(out, max, true)));
    });
    std::thread::spawn(move || {
        let _ = tx2.send(Stream::Err(read_bounded(err, STDERR_KEPT, false)));
    });
    let timed_out = |child: &mut Child| {
        kill_group(child);
        format!("did not finish within {} s and was killed", limits.timeout.as_secs())
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Stream::Out(r)) => {
                let (bytes, over) = r.map_err(|e| format!("output could not be read: {e}"))?;
                if over {
                    kill_group(&mut child);
                    return Err(format!("printed more than {} bytes and was killed", limits.max_output));
                }
                stdout = Some(bytes);
            }
            Ok(Stream::Err(r)) => stderr = Some(r.map(|(b, _)| b).unwrap_or_default()),
            Err(_) => return Err(timed_out(&mut child)),
        }
    }
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("could not be waited for: {e}"))? {
            return Ok(Finished { status, stdout: stdout.unwrap_or_default(), stderr: stderr.unwrap_or_default() });
        }
        if Instant::now() >= deadline {
            return Err(timed_out(&mut child));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The tail of a program's stderr for an error message: at most `max`
/// characters, on one line.
pub fn stderr_tail(stderr: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(stderr);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = flat.chars().collect();
    if chars.len() <= max {
        flat
    } else {
        format!("...{}", chars[chars.len() - max..].iter().collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_time_and_output_and_kills_the_group() {
        let limits = Limits { timeout: Duration::from_millis(300), max_output: 1000 };
        let started = Instant::now();
        // The grandchild holds stdout open; the timeout must still win.
        let e = run(Command::new("/bin/sh").args(["-c", "sleep 30 & sleep 30"]), &limits).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = run(Command::new("/bin/sh").args(["-c", "yes"]), &limits).unwrap_err();
        assert!(e.contains("more than 1000 bytes"), "{e}");
        let ok = run(Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]), &limits).unwrap();
        assert_eq!((ok.status.code(), &ok.stdout[..], &ok.stderr[..]), (Some(3), &b"out\n"[..], &b"err\n"[..]));
        let e = run(&mut Command::new("/nonexistent/prog"), &limits).unwrap_err();
        assert!(e.contains("cannot be executed"), "{e}");
    }
}
