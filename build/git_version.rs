//! Build script shared by `cratond` and `craton-inventory`: sets
//! `CRATON_BUILD_VERSION` to the package version and the git commit it was
//! built from, e.g. `0.1.0 (commit 96206f9e1a2b, 2026-12-02)`, so that an
//! operator can tell which build a binary is. Where there is no commit to
//! read (a source tarball, a container build without `.git`, no git
//! installed) `CRATON_GIT_COMMIT` names it, or the version says
//! `commit unknown`: the build never fails for want of git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!("cargo:rerun-if-env-changed=CRATON_GIT_COMMIT");
    let given = std::env::var("CRATON_GIT_COMMIT").ok().filter(|c| !c.trim().is_empty());
    let commit = match given {
        Some(c) => Some(c.trim().to_string()),
        None => {
            // Rebuild when HEAD moves: HEAD itself (a checkout), the branch
            // it points at (a commit) and packed-refs (a gc).
            if let Some(git_dir) = git(&manifest, &["rev-parse", "--absolute-git-dir"]) {
                let git_dir = PathBuf::from(git_dir);
                println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
                let common = git(&manifest, &["rev-parse", "--git-common-dir"])
                    .map(|c| if Path::new(&c).is_absolute() { PathBuf::from(c) } else { manifest.join(c) })
                    .unwrap_or_else(|| git_dir.clone());
                println!("cargo:rerun-if-changed={}", common.join("packed-refs").display());
                if let Some(branch) = git(&manifest, &["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={}", common.join(branch).display());
                }
            }
            git(&manifest, &["log", "-1", "--format=%h, %cs", "--abbrev=12"])
        }
    };
    let commit = commit.unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CRATON_BUILD_VERSION={version} (commit {commit})");
}
