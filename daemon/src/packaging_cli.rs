//! `cratond completions SHELL` and `cratond man DIR`: shell completion
//! scripts and man pages for packagers, generated from the very clap
//! definitions `cratond` parses with, so they list the real subcommands and
//! flags of this build and cannot drift from them.

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for (on stdout).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Directory to write `cratond.1` and one `cratond-SUBCOMMAND.1` per
    /// subcommand into (created if missing).
    pub dir: PathBuf,
}

/// Writes the completion script for `args.shell` to `out`.
pub fn completions(mut cmd: clap::Command, args: &CompletionsArgs, out: &mut dyn std::io::Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, out);
}

/// Writes the man pages into `args.dir`.
pub fn man(cmd: clap::Command, args: &ManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    clap_mangen::generate_to(cmd, &args.dir).with_context(|| format!("writing man pages into {}", args.dir.display()))
}
