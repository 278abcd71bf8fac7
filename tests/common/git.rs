//! A local "upstream" git repository for sync tests: a bare repository
//! (served over file://, no network) and a work tree that commits and
//! pushes to it with the `git` command. Shared by the core and daemon tests
//! (`#[path = ".../common/git.rs"] mod upstream;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Upstream {
    pub dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
}

fn git_in(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=craton-test", "-c", "user.email=test@craton.invalid", "-c", "commit.gpgsign=false"])
        .args(["-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"])
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .output()
        .unwrap_or_else(|e| panic!("running git {args:?}: {e}"));
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Upstream {
    /// An empty bare repository with branch `main` and a clone of it.
    pub fn new() -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("upstream.git");
        let work = dir.path().join("work");
        git_in(dir.path(), dir.path(), &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
        // Other branches can be deleted; `main` too, for the deleted-ref test.
        git_in(&bare, dir.path(), &["config", "receive.denyDeleteCurrent", "ignore"]);
        git_in(dir.path(), dir.path(), &["init", "-q", "-b", "main", work.to_str().unwrap()]);
        git_in(&work, dir.path(), &["remote", "add", "origin", bare.to_str().unwrap()]);
        Upstream { dir, bare, work }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.work, self.dir.path(), args)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.work.join(rel)).unwrap();
    }

    /// Commits everything and pushes the current branch; returns the commit.
    pub fn commit_push(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        let branch = self.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
        self.git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Tags the current commit and pushes the tag.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", "-f", name]);
        self.git(&["push", "-q", "-f", "origin", &format!("refs/tags/{name}")]);
    }

    /// Drops the last commit and pushes `message`'s commit over it with
    /// --force: the old head is no longer reachable from the branch.
    pub fn force_push_replacing_head(&self, files: &[(&str, &str)], message: &str) -> String {
        self.git(&["reset", "-q", "--hard", "HEAD~1"]);
        for (rel, content) in files {
            self.write(rel, content);
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        let branch = self.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
        self.git(&["push", "-q", "--force", "origin", &format!("HEAD:refs/heads/{branch}")]);
        self.head()
    }

    pub fn checkout_new_branch(&self, name: &str) {
        self.git(&["checkout", "-q", "-b", name]);
    }

    pub fn checkout(&self, name: &str) {
        self.git(&["checkout", "-q", name]);
    }

    pub fn delete_remote_branch(&self, name: &str) {
        self.git(&["push", "-q", "origin", &format!(":refs/heads/{name}")]);
    }
}
