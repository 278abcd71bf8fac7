//! What packagers take from the binaries: `--version` with the git commit
//! (and the build script's fallbacks without git), shell completions and
//! man pages generated from clap that name the real subcommands and flags.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::path::Path;
use std::process::Command;

use fixtures::{bin, ok, repo_root, run, stderr, stdout};

/// The subcommands every completion script and the man pages must know.
const SUBCOMMANDS: &[&str] =
    &["migrate", "import", "serve", "token", "sync", "config-ref", "run", "runs", "secrets", "completions", "man"];

/// The commit `git` says the checkout is at, as the build script prints it;
/// `None` outside a git checkout (a source tarball).
fn head_commit() -> Option<String> {
    let o = Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(["log", "-1", "--format=%h, %cs", "--abbrev=12"])
        .output()
        .ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[test]
fn version_names_the_git_commit() {
    let want = match head_commit() {
        Some(c) => format!("(commit {c})"),
        None => "(commit unknown)".to_string(),
    };
    let pkg = env!("CARGO_PKG_VERSION");
    let d = ok(Command::new(bin("cratond")).arg("--version"));
    assert_eq!(d.trim(), format!("cratond {pkg} {want}"), "rebuild after committing: cargo build --workspace");
    let i = ok(Command::new(bin("craton-inventory")).arg("--version"));
    assert_eq!(i.trim(), format!("craton-inventory {pkg} {want}"));
}

/// The build script on its own (compiled with rustc, run as cargo runs it):
/// outside a git checkout and without git it still sets the version, and
/// `CRATON_GIT_COMMIT` names the commit for builds without `.git`.
#[test]
fn build_script_falls_back_without_git() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("git_version");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    ok(Command::new(rustc)
        .args(["--edition", "2021", "-o"])
        .arg(&script)
        .arg(repo_root().join("build/git_version.rs")));
    let not_a_checkout = dir.path().join("src");
    std::fs::create_dir(&not_a_checkout).unwrap();
    let version_line = |envs: &[(&str, &str)]| -> String {
        let mut c = Command::new(&script);
        c.env_clear().env("CARGO_MANIFEST_DIR", &not_a_checkout).env("CARGO_PKG_VERSION", "9.8.7");
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = ok(&mut c);
        out.lines()
            .find(|l| l.starts_with("cargo:rustc-env="))
            .unwrap_or_else(|| panic!("no rustc-env in {out}"))
            .to_string()
    };
    let unknown = "cargo:rustc-env=CRATON_BUILD_VERSION=9.8.7 (commit unknown)";
    // No git on PATH at all.
    assert_eq!(version_line(&[("PATH", "/nonexistent")]), unknown);
    // git present, but the directory is no checkout.
    assert_eq!(
        version_line(&[("PATH", "/usr/bin:/bin"), ("GIT_CEILING_DIRECTORIES", dir.path().to_str().unwrap())]),
        unknown
    );
    assert_eq!(
        version_line(&[("PATH", "/nonexistent"), ("CRATON_GIT_COMMIT", "0123456789ab")]),
        "cargo:rustc-env=CRATON_BUILD_VERSION=9.8.7 (commit 0123456789ab)"
    );
}

#[test]
fn completions_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(Command::new(bin("cratond")).args(["completions", shell]));
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        // Flags of nested subcommands too.
        for flag in ["insecure-no-auth", "secrets-scope", "via-ansible"] {
            assert!(script.contains(flag), "{shell} completions lack --{flag}");
        }
    }
    let bash = ok(Command::new(bin("cratond")).args(["completions", "bash"]));
    // bash accepts it as a script that defines the completion.
    let o = run(Command::new("bash").arg("-c").arg(format!("{bash}\ncomplete -p cratond")));
    assert!(o.status.success() && stdout(&o).contains("cratond"), "{}", stderr(&o));
    let bad = run(Command::new(bin("cratond")).args(["completions", "tcsh"]));
    assert!(!bad.status.success() && stderr(&bad).contains("tcsh"), "{}", stderr(&bad));
}

/// Renders a page with man(1), as a reader sees it.
fn render(page: &Path) -> String {
    ok(Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env_remove("MAN_KEEP_FORMATTING")
        .env("PAGER", "cat"))
}

#[test]
fn man_pages_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    ok(Command::new(bin("cratond")).arg("man").arg(&out));
    let main = render(&out.join("cratond.1"));
    for sub in SUBCOMMANDS {
        assert!(main.contains(sub), "cratond.1 lacks {sub}:\n{main}");
        assert!(out.join(format!("cratond-{sub}.1")).exists(), "no cratond-{sub}.1");
    }
    let serve = render(&out.join("cratond-serve.1"));
    assert!(serve.contains("--insecure-no-auth") && serve.contains("127.0.0.1:7780"), "{serve}");
    let create = render(&out.join("cratond-token-create.1"));
    assert!(create.contains("--secrets-scope"), "{create}");
}
