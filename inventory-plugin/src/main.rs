//! `craton-inventory`: Ansible's script inventory contract over a Craton
//! database or daemon. Ansible runs it with `--list` (and `--host NAME` only
//! when `_meta` is missing); everything else comes from the environment or
//! the config file, since Ansible and AWX pass no other arguments.
//!
//! Contract kept here: stdout holds one complete JSON document or nothing;
//! any failure exits 1 with one line on stderr; success writes nothing on
//! stderr (Ansible reports any stderr as an error); a closed pipe is not a crash.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use craton::config::Settings;
use craton::render::{parse_filter, Options, Selection};
use craton::source::InventorySource;

const USAGE: &str = "usage: craton-inventory (--list | --host NAME) [--project NAME] [--group G] \
[--filter KEY=JSON]... [--resolved] [--include-inactive] [--pretty] [--at RFC3339|REVISION] [--database-url URL] [--verbose]";

/// A file holding the vault password: with it the project's secrets are in
/// the output as vault values (`--vault-id craton@FILE` opens them).
const VAULT_PASSWORD_FILE: &str = "CRATON_VAULT_PASSWORD_FILE";

#[derive(Default)]
struct Args {
    list: bool,
    host: Option<String>,
    project: Option<String>,
    database_url: Option<String>,
    selection: Selection,
    options: Options,
    /// `--at`: the inventory as of a past instant (RFC 3339) or revision.
    at: Option<String>,
    /// Say on stderr how many secrets were left out (Ansible reports any
    /// stderr of an inventory script, so only when asked).
    verbose: bool,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| anyhow!("{name} needs a value"))
        };
        match flag.as_str() {
            "--list" => args.list = true,
            "--host" => args.host = Some(value("--host")?),
            "--project" => args.project = Some(value("--project")?),
            "--database-url" => args.database_url = Some(value("--database-url")?),
            "--group" => args.selection.group = Some(value("--group")?),
            "--filter" => args.selection.filters.push(parse_filter(&value("--filter")?).map_err(|e| anyhow!(e))?),
            "--resolved" => args.options.resolved = true,
            "--include-inactive" => args.selection.include_inactive = true,
            "--pretty" => args.options.pretty = true,
            "--at" => args.at = Some(value("--at")?),
            "--verbose" | "-v" => args.verbose = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--version" | "-V" => {
                println!("craton-inventory {}", env!("CRATON_BUILD_VERSION"));
                return Ok(None);
            }
            other => bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    if args.list == args.host.is_some() {
        bail!("give exactly one of --list or --host NAME");
    }
    Ok(Some(args))
}

/// What `main` does after parsing: writes the document to `out`.
fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let settings = Settings::resolve(args.database_url.clone(), args.project.clone()).map_err(|e| anyhow!(e))?;
    let vault = vault_password()?;
    let has_vault = vault.is_some();
    let mut source = pick_source(&settings, vault, args.at.as_deref())?;
    match &args.host {
        Some(h) => source.host(h, &args.selection, args.options, out)?,
        None => source.list(&args.selection, args.options, out)?,
    }
    out.write_all(b"\n")?;
    out.flush()?;
    if args.verbose && !has_vault {
        match source.omitted_secrets() {
            Some(0) => {}
            Some(n) => eprintln!("craton-inventory: left out the project's {n} secret(s): set {VAULT_PASSWORD_FILE}"),
            None => eprintln!("craton-inventory: secrets, if any, were left out: set {VAULT_PASSWORD_FILE}"),
        }
    }
    // The loaded inventory is not freed one allocation at a time: the
    // process ends here and the OS takes it back.
    std::mem::forget(source);
    Ok(())
}

/// The daemon when `CRATON_URL` is set and no database URL is, else the
/// database (the embedded SQLite default when nothing is configured).
/// Features decide which of the two this build has: a REST-only build
/// carries no database drivers at all.
fn pick_source(settings: &Settings, vault: Option<Vault>, at: Option<&str>) -> Result<Box<dyn InventorySource>> {
    #[cfg(feature = "rest")]
    if let (Some(url), None) = (&settings.url, &settings.database_url) {
        let project = settings.project_explicit.then(|| settings.project.clone());
        let mut src = craton::source::RestSource::new(url, settings.token.clone(), project)?;
        src.vault_password = vault;
        src.at = at.map(str::to_string);
        return Ok(Box::new(src));
    }
    #[cfg(feature = "db")]
    {
        use craton::store::DbUrl;
        let url = match &settings.database_url {
            Some(db) => DbUrl::parse(db)?,
            None => DbUrl::sqlite(&craton::config::default_sqlite_path()),
        };
        let mut src = craton::source::DbSource::new(url, settings.project.clone());
        src.vault = vault.map(|pw| craton::secrets::VaultPassword::new(pw.as_bytes()));
        src.at = at.map(craton::store::history::At::parse).transpose().map_err(|e| anyhow!("--at: {e}"))?;
        Ok(Box::new(src))
    }
    #[cfg(not(feature = "db"))]
    Err(anyhow!("this build reads only from a Craton daemon: set CRATON_URL (and CRATON_TOKEN)"))
}

type Vault = zeroize::Zeroizing<String>;

/// The password in `CRATON_VAULT_PASSWORD_FILE`, stripped as Ansible strips
/// a password file.
fn vault_password() -> Result<Option<Vault>> {
    let Some(path) = std::env::var_os(VAULT_PASSWORD_FILE).filter(|p| !p.is_empty()) else { return Ok(None) };
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(&path).map_err(|e| anyhow!("{VAULT_PASSWORD_FILE} {:?}: {e}", path))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| anyhow!("{VAULT_PASSWORD_FILE} {:?}: not UTF-8", path))?;
    let pw = text.trim();
    if pw.is_empty() {
        bail!("{VAULT_PASSWORD_FILE} {:?} is empty", path);
    }
    Ok(Some(zeroize::Zeroizing::new(pw.to_string())))
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // One line, whatever the driver's message looked like.
    let msg = format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("craton-inventory: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => return fail(&e),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match run(args, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing left to do.
        Err(e) if e.chain().any(is_broken_pipe) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let io = e.downcast_ref::<std::io::Error>().or_else(|| match e.downcast_ref::<craton::render::RenderError>() {
        Some(craton::render::RenderError::Io(io)) => Some(io),
        _ => None,
    });
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
