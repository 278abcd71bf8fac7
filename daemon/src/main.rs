//! `cratond`: the Craton daemon and its administrative commands. A thin
//! layer: parsing flags, picking the database, printing; the work lives in
//! the `craton` library.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use craton::store::{self, DbUrl};

#[derive(Parser)]
#[command(name = "cratond", version = env!("CRATON_BUILD_VERSION"), about = "Craton fleet inventory daemon")]
struct Cli {
    /// Database URL: sqlite://PATH, postgres://..., mysql://...
    /// (default: the embedded SQLite file, see README).
    #[arg(long, global = true, env = "CRATON_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations (idempotent).
    Migrate,
    /// Import an existing inventory.
    Import {
        #[command(subcommand)]
        kind: ImportKind,
    },
    /// Serve the REST API v1 and inventory bundles.
    Serve(ServeArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Sync git config refs once, without a server: one line per ref; exits
    /// non-zero if any failed.
    Sync {
        /// Only this ref (default: every ref of every project).
        #[arg(long = "ref")]
        ref_id: Option<i64>,
        /// Apply the commit again even when it was synced already.
        #[arg(long)]
        force: bool,
    },
    /// Manage git config refs.
    ConfigRef {
        #[command(subcommand)]
        action: ConfigRefAction,
    },
    /// Run a playbook on a group: submit to CRATON_URL (or --local), and
    /// with --follow show progress and exit with ansible-playbook's code.
    Run(cratond::runs_cli::RunArgs),
    /// List, show, cancel and prune runs (on the database).
    Runs {
        #[command(subcommand)]
        action: cratond::runs_cli::RunsAction,
    },
    /// Add, list and remove schedules: run templates fired on a recurrence
    /// by the serving daemons (on the database).
    Schedule {
        #[command(subcommand)]
        action: cratond::schedule_cli::ScheduleAction,
    },
    /// The audit trail: change sets newest first (filters --host, --group,
    /// --key, --actor, --source, --since, --until), and `audit prune`.
    Audit(cratond::audit_cli::AuditArgs),
    /// What changed in a project's inventory between two points (RFC 3339
    /// or revision): groups, hosts, memberships, children and resolved
    /// variables per host, with the change sets in between as blame.
    Diff(cratond::audit_cli::DiffArgs),
    /// Renew the keys that protect stored secrets (online, resumable):
    /// rotate rewraps the data keys, reencrypt replaces them.
    Secrets {
        #[command(subcommand)]
        action: cratond::secrets_cli::SecretsAction,
    },
    /// Print a shell completion script on stdout.
    Completions(cratond::packaging_cli::CompletionsArgs),
    /// Write man pages (cratond.1, cratond-SUBCOMMAND.1...) into a directory.
    Man(cratond::packaging_cli::ManArgs),
}

#[derive(Subcommand)]
enum ConfigRefAction {
    /// Add a ref and print its id.
    Add {
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
        /// Repository: https://, ssh://, user@host:path, file:// or an absolute path.
        #[arg(long)]
        url: String,
        /// Branch, tag or commit.
        #[arg(long = "ref")]
        git_ref: String,
        /// The inventory directory inside the repository (default: its root).
        #[arg(long, default_value = "")]
        path: String,
        /// Limit the ref to this group's subtree (name or id).
        #[arg(long)]
        group: Option<String>,
        /// Seconds between polls (default 60).
        #[arg(long)]
        poll_interval: Option<i64>,
    },
    /// List refs with their last sync.
    List {
        #[arg(long)]
        project: Option<String>,
    },
    /// Remove a ref and the variables it owns.
    Remove { id: i64 },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7780", env = "CRATON_LISTEN")]
    listen: std::net::SocketAddr,
    /// Serve without authentication (every caller is root). Loopback only;
    /// for local development.
    #[arg(long, conflicts_with = "auth")]
    insecure_no_auth: bool,
    /// How callers authenticate: Craton tokens only, or Keystone tokens
    /// beside them (the config file's `[keystone]`, docs/keystone.md).
    #[arg(long, value_enum, default_value = "tokens", env = "CRATON_AUTH")]
    auth: AuthArg,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "CRATON_LOG_FORMAT")]
    log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// Never compress responses (gzip/zstd of JSON and text is on by
    /// default; turn it off behind a proxy that compresses).
    #[arg(long, env = "CRATON_NO_COMPRESSION")]
    no_compression: bool,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Seconds a client has to send a complete request head; slower
    /// connections (slowloris, half-sent requests) are closed. Default 10
    /// (config file: `header_read_timeout`).
    #[arg(long, env = "CRATON_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// Seconds a keep-alive connection may sit without a request before it
    /// is closed. Default 60 (config file: `idle_timeout`).
    #[arg(long, env = "CRATON_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Open connections at most; further ones wait in the listen backlog
    /// until one closes. Default 512 (config file: `max_connections`).
    #[arg(long, env = "CRATON_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Do not run the config ref sync workers (poller, file watcher) in
    /// this process; webhooks still record their requests.
    #[arg(long)]
    no_sync: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthArg {
    Tokens,
    Keystone,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it (alone, once) on stdout.
    Create {
        /// The project the token works on.
        #[arg(long, required_unless_present = "root", conflicts_with = "root")]
        project: Option<String>,
        /// reader, editor or admin.
        #[arg(long, required_unless_present = "root", conflicts_with = "root")]
        role: Option<String>,
        /// A root token: manages projects and every token.
        #[arg(long)]
        root: bool,
        /// A note shown in listings.
        #[arg(long, default_value = "")]
        description: String,
        /// The `secrets` scope: this token may read secret plaintexts
        /// (`GET .../secrets/NAME/value`) although its role is below admin.
        #[arg(long)]
        secrets_scope: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        project: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum ImportKind {
    /// An Ansible inventory: YAML, INI, TOML, an executable inventory script,
    /// script/`ansible-inventory --list` JSON (`-` reads stdin), or a
    /// directory of those with group_vars/ and host_vars/.
    Ansible {
        path: String,
        /// Project to import into (created if missing).
        #[arg(long, env = "CRATON_PROJECT", default_value = craton::DEFAULT_PROJECT)]
        project: String,
        /// Make the project match the input exactly (remove what it lacks).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        how: ImportHow,
    },
}

#[derive(clap::Args)]
struct ImportHow {
    /// Read PATH through the installed `ansible-inventory -i PATH --list
    /// --export` (CRATON_ANSIBLE_INVENTORY names it): inventory plugins,
    /// vault; loses what that output cannot show (see README).
    #[arg(long)]
    via_ansible: bool,
    /// A vault password file for the `default` vault id (repeatable), as
    /// Ansible reads it (an executable file is run). Vault-encrypted
    /// group_vars/host_vars files and inline `!vault` values are decrypted
    /// and their variables stored as secrets (see README). With
    /// --via-ansible: passed on to ansible-inventory.
    #[arg(long, value_name = "FILE")]
    vault_password_file: Vec<std::path::PathBuf>,
    /// A labelled vault password, `LABEL@FILE` (or `FILE` for `default`),
    /// repeatable, as Ansible's --vault-id; a `*-client` script is run with
    /// `--vault-id LABEL`. Tried before the --vault-password-file ones.
    #[arg(long = "vault-id", value_name = "LABEL@FILE")]
    vault_id: Vec<String>,
    /// Seconds an inventory script or ansible-inventory may run.
    #[arg(long, env = "CRATON_IMPORT_TIMEOUT", default_value_t = 600)]
    timeout: u64,
}

fn read_import(path: &str, how: ImportHow) -> Result<craton::import::Imported> {
    use craton::import::vaulted::{VaultIdSpec, VaultIds};
    use craton::import::{command::Limits, ImportOptions, ViaAnsible};
    let limits = Limits { timeout: std::time::Duration::from_secs(how.timeout), ..Limits::default() };
    if !how.via_ansible {
        let mut specs = Vec::new();
        for id in &how.vault_id {
            specs.push(VaultIdSpec::parse(id).map_err(|e| anyhow!("--vault-id: {e}"))?);
        }
        specs.extend(how.vault_password_file.iter().map(VaultIdSpec::password_file));
        let vault = VaultIds::load(&specs, &limits).map_err(|e| anyhow!(e))?;
        return Ok(craton::import::import_with(path, &ImportOptions { run_scripts: true, limits, vault })?);
    }
    if path == "-" {
        return Err(anyhow!("--via-ansible needs an inventory path, not stdin"));
    }
    let program = std::env::var_os("CRATON_ANSIBLE_INVENTORY").unwrap_or_else(|| "ansible-inventory".into());
    let via = ViaAnsible {
        program: program.into(),
        vault_ids: how.vault_id,
        vault_password_files: how.vault_password_file,
        limits,
    };
    Ok(craton::import::via_ansible(path, &via)?)
}

fn database_url(flag: Option<String>) -> Result<DbUrl> {
    let file = craton::config::load_file_config().map_err(|e| anyhow!(e))?;
    match flag.or(file.database_url) {
        Some(u) => Ok(DbUrl::parse(&u)?),
        None => Ok(DbUrl::sqlite(&craton::config::default_sqlite_path())),
    }
}

/// Connects and brings the schema up to date: every cratond command may
/// write, so it migrates first (a no-op when current).
fn connect_migrated(url: &DbUrl) -> Result<store::DbConn> {
    let mut conn = store::connect(url)?;
    store::migrate(&mut conn)?;
    Ok(conn)
}

fn import_ansible(url: &DbUrl, path: &str, project: &str, replace: bool, how: ImportHow) -> Result<()> {
    let imported = read_import(path, how)?;
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let mut conn = connect_migrated(url)?;
    let hosts = imported.desired.hosts.len();
    let bar = (std::io::stderr().is_terminal() && hosts >= 1000).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len}")
                .expect("static template")
                .progress_chars("=> "),
        );
        b
    });
    let progress = |stage: &str, done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_message(stage.to_string());
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    // Vaulted values become secrets: the key provider is needed only then.
    let provider = if imported.secrets.is_empty() {
        None
    } else {
        Some(craton::secrets::keys::provider_from_env().context("the secrets key provider")?)
    };
    let secrets = provider.as_deref().map(craton::store::secrets::Secrets::new);
    // Keys that config refs own stay theirs: the import skips them.
    // The audit trail names the import and what it read.
    let shown = std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
    let outcome = craton::store::audit::with_actor(craton::store::audit::Actor::import(&shown), || {
        craton::store::secrets::imported::import(
            &mut conn,
            secrets.as_ref(),
            project,
            &imported.desired,
            &imported.secrets,
            replace,
            &progress,
            craton::store::secrets::imported::IMPORT_ACTOR,
        )
    })
    .with_context(|| format!("importing {path} (nothing was written)"))?;
    let (summary, kept) = (outcome.summary, outcome.kept_by_refs);
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if kept > 0 {
        eprintln!("warning: {kept} variables are owned by config refs and were left to them (change them in git)");
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let rows =
        summary.hosts.created + summary.variables.created + summary.variables.removed + summary.relations.created;
    if rows >= 1000 {
        store::refresh_statistics(&mut conn)?;
    }
    let c = |n: &store::apply::Counts| format!("{} created, {} updated, {} removed", n.created, n.updated, n.removed);
    let s = &outcome.secrets;
    let secrets_line = if s.created + s.updated + s.unchanged + s.removed > 0 {
        format!(
            "; secrets {} created, {} updated, {} unchanged, {} removed",
            s.created, s.updated, s.unchanged, s.removed
        )
    } else {
        String::new()
    };
    println!(
        "project {:?}: groups {}; hosts {}; variables {}; relations {} added, {} reordered, {} removed{secrets_line}{}",
        summary.project,
        c(&summary.groups),
        c(&summary.hosts),
        c(&summary.variables),
        summary.relations.created,
        summary.relations.updated,
        summary.relations.removed,
        if summary.is_noop() && !s.changed() { " (no changes)" } else { "" }
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    // Packaging output needs neither the config file nor a database.
    match &cli.command {
        Command::Completions(args) => {
            cratond::packaging_cli::completions(Cli::command(), args, &mut std::io::stdout());
            return Ok(());
        }
        Command::Man(args) => return cratond::packaging_cli::man(Cli::command(), args),
        _ => {}
    }
    if let Command::Runs { action: cratond::runs_cli::RunsAction::Resume { id, follow, project } } = &cli.command {
        let code = cratond::runs_cli::resume(*id, *follow, project.as_deref())?;
        if code != 0 {
            std::process::exit(code);
        }
        return Ok(());
    }
    let url = database_url(cli.database_url)?;
    if let Command::Run(args) = cli.command {
        // ansible-playbook's exit code, as the process's own.
        let code = cratond::runs_cli::run(&url, args)?;
        if code != 0 {
            std::process::exit(code);
        }
        return Ok(());
    }
    match cli.command {
        Command::Migrate => {
            let mut conn = store::connect(&url)?;
            let applied = store::migrate(&mut conn)?;
            if applied.is_empty() {
                println!("{url}: up to date");
            } else {
                println!("{url}: applied {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Import { kind: ImportKind::Ansible { path, project, replace, how } } => {
            import_ansible(&url, &path, &project, replace, how)
        }
        Command::Serve(args) => serve(&url, args),
        Command::Token { action } => token(&url, action),
        Command::Sync { ref_id, force } => {
            let mut conn = connect_migrated(&url)?;
            let failed = cratond::sync::cli::sync_once(&mut conn, ref_id, force)?;
            if failed > 0 {
                return Err(anyhow!("{failed} config ref(s) failed to sync"));
            }
            Ok(())
        }
        Command::Run(_) | Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
        Command::Runs { action } => cratond::runs_cli::runs(&mut connect_migrated(&url)?, action),
        Command::Schedule { action } => cratond::schedule_cli::schedule(&mut connect_migrated(&url)?, action),
        Command::Secrets { action } => cratond::secrets_cli::secrets(&mut connect_migrated(&url)?, action),
        Command::Audit(args) => cratond::audit_cli::audit(&mut connect_migrated(&url)?, args),
        Command::Diff(args) => cratond::audit_cli::diff(&mut connect_migrated(&url)?, args),
        Command::ConfigRef { action } => {
            let mut conn = connect_migrated(&url)?;
            match action {
                ConfigRefAction::Add { project, url, git_ref, path, group, poll_interval } => {
                    let id = cratond::sync::cli::add(
                        &mut conn,
                        &project,
                        &url,
                        &git_ref,
                        &path,
                        group.as_deref(),
                        poll_interval,
                    )?;
                    println!("{id}");
                    Ok(())
                }
                ConfigRefAction::List { project } => cratond::sync::cli::list(&mut conn, project.as_deref()),
                ConfigRefAction::Remove { id } => cratond::sync::cli::remove(&mut conn, id),
            }
        }
    }
}

fn token(url: &DbUrl, action: TokenAction) -> Result<()> {
    use craton::store::tokens::{self, Role};
    let mut conn = connect_migrated(url)?;
    let project_id = |conn: &mut store::DbConn, name: &str| -> Result<i64> {
        Ok(store::find_project(conn, name)?.ok_or_else(|| anyhow!("project {name:?} not found"))?.id)
    };
    match action {
        TokenAction::Create { project, role, root, description, secrets_scope } => {
            let (pid, role) = if root {
                (None, Role::Root)
            } else {
                let role = Role::parse(role.as_deref().unwrap_or_default())?;
                if role == Role::Root {
                    return Err(anyhow!("use --root for root tokens"));
                }
                (Some(project_id(&mut conn, project.as_deref().unwrap_or_default())?), role)
            };
            let (_, secret) = tokens::create_scoped(&mut conn, pid, role, &description, secrets_scope)?;
            println!("{secret}");
        }
        TokenAction::List { project } => {
            let scope = project.map(|p| project_id(&mut conn, &p)).transpose()?;
            for t in tokens::list(&mut conn, scope)? {
                println!(
                    "{}\t{}\t{}\t{}...\t{}\t{}",
                    t.id,
                    t.project.as_deref().unwrap_or("*"),
                    t.role.as_str(),
                    t.prefix,
                    if t.revoked_at.is_some() { "revoked" } else { "active" },
                    t.description
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !tokens::revoke(&mut conn, id, None)? {
                return Err(anyhow!("token {id} not found or already revoked"));
            }
            println!("revoked token {id}");
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,notify=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(url: &DbUrl, args: ServeArgs) -> Result<()> {
    if args.insecure_no_auth && !args.listen.ip().is_loopback() {
        return Err(anyhow!("--insecure-no-auth is only allowed on a loopback address, not {}", args.listen));
    }
    init_logging(args.log_format);
    drop(connect_migrated(url)?);
    let pool = store::pool::build(url, args.pool_size)?;
    let auth =
        if args.insecure_no_auth { cratond::state::AuthMode::InsecureNoAuth } else { cratond::state::AuthMode::Tokens };
    let keystone = if args.auth == AuthArg::Keystone { Some(keystone()?) } else { None };
    let sync_settings = cratond::sync::SyncSettings::from_env().map_err(|e| anyhow!(e))?;
    let hub = cratond::sync::SyncHub::new(sync_settings);
    let run_settings = cratond::runner::RunSettings::from_env(hub.settings().holder.clone()).map_err(|e| anyhow!(e))?;
    let hook_settings =
        cratond::hooks::HookSettings::from_env(hub.settings().holder.clone()).map_err(|e| anyhow!(e))?;
    let limits = cratond::api::Limits {
        body_bytes: args.body_limit,
        timeout: std::time::Duration::from_secs(args.timeout),
        compress: !args.no_compression,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let runs = cratond::runner::RunHub::new(run_settings, hub.clone()).map_err(|e| anyhow!(e))?;
        runs.start_sweeper(pool.clone());
        let hooks = cratond::hooks::HookHub::new(pool.clone(), hook_settings);
        let deliverer = hooks.start();
        let mut state = cratond::state::AppState::new(pool.clone(), auth)
            .with_sync(hub.clone())
            .with_runs(runs)
            .with_hooks(hooks.clone());
        if let Some(ks) = keystone {
            tracing::info!(url = ks.settings().url(), cache_s = ks.settings().cache_s(), "keystone tokens accepted");
            state = state.with_keystone(ks);
        }
        // Secrets: an existing master key file is checked now (a key file
        // others can read refuses the start); a missing one is created on
        // first use, and a transit server is not needed to start.
        if std::env::var("CRATON_KEY_PROVIDER").map_or(true, |p| p.is_empty() || p == "file") {
            let path = craton::secrets::FileKeyProvider::default_path();
            if path.exists() {
                let keys = craton::secrets::FileKeyProvider::open_or_create(&path).map_err(|e| anyhow!(e))?;
                state = state.with_key_provider(std::sync::Arc::new(keys));
            }
        }
        // Every daemon ticks; the database claim makes each occurrence fire once.
        cratond::schedules::start(state.clone(), cratond::schedules::TICK);
        let app = cratond::api::app(state, limits);
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, database = %url, insecure_no_auth = args.insecure_no_auth, "cratond serving");
        if !args.no_sync {
            cratond::sync::worker::start(hub, pool);
        }
        let conn_limits = conn_limits(&args)?;
        cratond::server::serve(listener, app, conn_limits, shutdown_signal()).await?;
        // Pending deliveries stay in the database; dropping the claims lets
        // another daemon (or the next start) take them at once.
        hooks.flush(std::time::Duration::from_secs(5)).await;
        deliverer.abort();
        hooks.release_claims().await;
        tracing::info!("cratond stopped");
        Ok::<_, anyhow::Error>(())
    })
}

/// The Keystone validator from the config file's `[keystone]` (the
/// password from `CRATON_KEYSTONE_PASSWORD` when set).
fn keystone() -> Result<std::sync::Arc<cratond::keystone::Keystone>> {
    let file = craton::config::load_file_config().map_err(|e| anyhow!(e))?;
    let config =
        file.keystone.ok_or_else(|| anyhow!("--auth keystone needs a [keystone] section in the config file"))?;
    let password = std::env::var("CRATON_KEYSTONE_PASSWORD").ok().filter(|p| !p.is_empty());
    let settings = cratond::keystone::Settings::from_config(&config, password).map_err(|e| anyhow!(e))?;
    Ok(std::sync::Arc::new(cratond::keystone::Keystone::new(settings).map_err(|e| anyhow!(e))?))
}

/// Connection limits: flag (or its environment variable), else the config
/// file, else the defaults of `cratond::server::ConnLimits`.
fn conn_limits(args: &ServeArgs) -> Result<cratond::server::ConnLimits> {
    let file = craton::config::load_file_config().map_err(|e| anyhow!(e))?;
    let d = cratond::server::ConnLimits::default();
    let secs = |flag: Option<u64>, file: Option<u64>, default: std::time::Duration| {
        flag.or(file).map(|s| std::time::Duration::from_secs(s.max(1))).unwrap_or(default)
    };
    Ok(cratond::server::ConnLimits {
        header_read_timeout: secs(args.header_read_timeout, file.header_read_timeout, d.header_read_timeout),
        idle_timeout: secs(args.idle_timeout, file.idle_timeout, d.idle_timeout),
        max_connections: args.max_connections.or(file.max_connections).unwrap_or(d.max_connections).max(1),
        ..d
    })
}

/// Resolves on SIGTERM or Ctrl-C; axum then stops accepting and lets
/// in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("cratond: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
