//! A real `cratond serve` process on a free loopback port, for the tests
//! that need the daemon as operators run it (sockets, timeouts, several
//! processes on one database). Killed on drop.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{cratond, TestDb};

pub struct Server {
    pub child: Child,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// `cratond serve --listen 127.0.0.1:PORT ARGS` with `envs` set; returns
    /// once it logged that it is serving, and keeps draining its stderr.
    pub fn start(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = cratond(db);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("CRATON_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines.next().expect("cratond exited before serving").unwrap();
            if line.contains("cratond serving") {
                break;
            }
            assert!(Instant::now() < deadline, "cratond did not start");
        }
        std::thread::spawn(move || for _ in lines {});
        Server { child, port, base: format!("http://127.0.0.1:{port}") }
    }

    /// A raw TCP connection to the daemon, with a read timeout.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Resident memory of the daemon, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
