//! The Python client (`clients/python`, issue 11) against a real `cratond
//! serve` over loopback on every backend: `clients/python/tests/test_live.py`
//! (unittest, the venv's Python) exercises every resource, paging across
//! pages, error details, a config ref's sync, bundles and their safe
//! unpacking, and a run's SSE stream (cut once by a proxy and resumed with
//! Last-Event-ID). The daemon runs with a master key (secrets), the runner
//! (real ansible-playbook) and the sync workers, and the playbooks and the
//! config ref's inventory live in a local bare git repository.

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::process::Command;
use std::time::Instant;

use fixtures::{ansible, backends, cratond, ok, repo_root, run, stderr, stdout, Server, TestDb};
use upstream::Upstream;

/// One debug task per host: a run of a few seconds with a handful of events.
const SITE: &str = "- name: site\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: greet\n      debug:\n        msg: \"{{ greeting | default('hello') }}\"\n";

/// Long enough to be canceled while it runs.
const SLOW: &str =
    "- name: slow\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: wait\n      raw: sleep 30\n";

fn repo() -> Upstream {
    let up = Upstream::new();
    up.write("site.yml", SITE);
    up.write("slow.yml", SLOW);
    up.write("inv/group_vars/all.yml", "synced_var: from_git\n");
    up.commit_push("playbooks and inventory");
    up
}

#[test]
fn python_client_against_a_live_daemon() {
    let tests = repo_root().join("clients/python/tests");
    let python = ansible("python");
    for b in backends() {
        let started = Instant::now();
        let db = TestDb::new(b);
        ok(cratond(&db).arg("migrate"));
        let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
        let repo = repo();
        let scratch = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = scratch.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            d.to_str().unwrap().to_string()
        };
        let (runs, cache, home) = (dir("runs"), dir("git"), dir("home"));
        let key = scratch.path().join("master.key");
        let playbook = ansible("ansible-playbook");
        let server = Server::start(
            &db,
            &[],
            &[
                ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap()),
                ("CRATON_RUNS_DIR", &runs),
                ("CRATON_GIT_CACHE_DIR", &cache),
                ("CRATON_MASTER_KEY_FILE", key.to_str().unwrap()),
                ("HOME", &home),
            ],
        );
        let out = run(Command::new(&python)
            .args(["-m", "unittest", "-v", "test_live"])
            .current_dir(&tests)
            .env("PYTHONPATH", repo_root().join("clients/python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("CRATON_TEST_URL", &server.base)
            .env("CRATON_TEST_TOKEN", &root)
            .env("CRATON_TEST_REPO", repo.url())
            .env("CRATON_TEST_PYTHON", &python)
            .env("HOME", &home));
        let report = stderr(&out);
        assert!(out.status.success(), "{b:?}: test_live.py failed:\n{}{report}", stdout(&out));
        // unittest prints "Ran N tests" and "OK"; a file that found no tests
        // would pass too, so the count is checked.
        let ran: usize = report
            .lines()
            .find_map(|l| l.strip_prefix("Ran ")?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no test count in:\n{report}"));
        assert!(ran >= 12, "{b:?}: only {ran} tests ran:\n{report}");
        eprintln!("{b:?}: {ran} Python tests in {:.1} s", started.elapsed().as_secs_f64());
    }
}
