//! The database: one diesel code path over SQLite, PostgreSQL and
//! MySQL/MariaDB. The backend is chosen from the URL scheme (an unknown
//! scheme is refused, never taken for a SQLite file name); migrations are
//! embedded per backend and kept in step under `migrations/`.

/// Multi-row INSERT on the concrete connection: diesel's `MultiBackend`
/// cannot express batch inserts, each backend can. Defined before the
/// modules that use it.
macro_rules! batch_insert {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::store::DbConn::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c),
            $crate::store::DbConn::Postgres(c) => diesel::insert_into($table).values($rows).execute(c),
            $crate::store::DbConn::Mysql(c) => diesel::insert_into($table).values($rows).execute(c),
        }
    };
}

/// Rows per multi-row INSERT: well under SQLite's and MySQL's placeholder limits.
pub(crate) const CHUNK: usize = 500;

pub mod apply;
pub mod audit;
pub mod commit_statuses;
pub mod config_refs;
pub mod edit;
pub mod gates;
pub mod groups;
pub mod history;
pub mod hooks;
pub mod hosts;
pub mod load;
#[cfg(feature = "pool")]
pub mod pool;
pub mod project_admin;
pub mod queue;
pub mod ref_apply;
pub mod rollouts;
pub mod runs;
#[cfg(feature = "windows")]
pub mod schedules;
pub mod schema;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod tokens;
pub mod tx;
pub mod variables;
#[cfg(feature = "windows")]
pub mod webhook_rules;
#[cfg(feature = "windows")]
pub mod windows;

use std::fmt;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::model::Project;
use schema::projects;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// One connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MysqlConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrating the database: {0}")]
    Migration(String),
    #[error("the database at {0} has pending migrations: run `cratond migrate`")]
    NotMigrated(String),
    #[error("project {0:?} not found")]
    UnknownProject(String),
    #[error("{0}")]
    Invalid(String),
    /// The request contradicts what is stored (a duplicate, a cycle).
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The database cannot serve the request now (a pool timeout, retries
    /// exhausted); the API answers 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A unique constraint refused the write (a duplicate name).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// A lookup found no row.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Query(diesel::result::Error::NotFound))
    }

    /// True when the error means "the database is not reachable right now"
    /// rather than "the request was wrong" (the API answers 503 for these).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Unavailable(_) => true,
            StoreError::Query(e) => is_connection_error(e),
            _ => false,
        }
    }

    /// True for a deadlock, a serialization failure or a busy database: the
    /// same transaction may succeed when run again ([`tx::write`] does).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Query(e) if is_transient_error(e))
    }
}

/// The driver's message of a database error, lower-cased, looking through
/// the wrappers diesel puts around a failed commit or rollback.
fn db_message(e: &diesel::result::Error) -> Option<(diesel::result::DatabaseErrorKind, String)> {
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(kind, info) => Some((*kind, info.message().to_ascii_lowercase())),
        E::RollbackErrorOnCommit { commit_error, .. } => db_message(commit_error),
        _ => None,
    }
}

/// Driver messages of connection-class failures. MySQL's error numbers and
/// PostgreSQL's SQLSTATEs do not reach us through diesel (only a few kinds
/// do), so the stable texts of the client libraries are matched:
/// MySQL 2002/2003/2006/2013, PostgreSQL 08xxx/57P01-57P03 and libpq's own,
/// SQLite CANTOPEN/IOERR, and a schema that is gone (a dropped database).
const CONNECTION_MESSAGES: &[&str] = &[
    "server has gone away",
    "lost connection",
    "can't connect",
    "no connection to the server",
    "server closed the connection",
    "terminating connection",
    "connection to server",
    "could not connect",
    "connection refused",
    "connection reset",
    "broken pipe",
    "the database system is",
    "unable to open database file",
    "disk i/o error",
    "doesn't exist",
    "does not exist",
    "unknown database",
];

/// Messages of contention failures: MySQL 1213/1205, PostgreSQL
/// 40001/40P01/55P03, SQLite BUSY/LOCKED.
const TRANSIENT_MESSAGES: &[&str] = &[
    "deadlock",
    "lock wait timeout",
    "could not serialize access",
    "could not obtain lock",
    "database is locked",
    "database table is locked",
    "database schema is locked",
];

/// True when `e` says the connection (or the database behind it) is gone:
/// the pool must not hand that connection out again.
pub fn is_connection_error(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::BrokenTransactionManager => true,
        _ => match db_message(e) {
            Some((K::ClosedConnection, _)) => true,
            Some((K::UnableToSendCommand, _)) => true,
            Some((_, m)) => CONNECTION_MESSAGES.iter().any(|p| m.contains(p)),
            None => false,
        },
    }
}

/// True when `e` is a deadlock, serialization failure or busy database.
pub fn is_transient_error(e: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind as K;
    match db_message(e) {
        Some((K::SerializationFailure, _)) => true,
        Some((_, m)) => TRANSIENT_MESSAGES.iter().any(|p| m.contains(p)),
        None => false,
    }
}

/// Text the store is given to keep: no NUL (PostgreSQL refuses it in text
/// columns, the others would store it) and at most `max` characters (the
/// column's size in `migrations/*`, so every backend refuses at the same
/// length instead of one truncating, one failing and one storing it).
/// The error names the request field.
pub fn text_field(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(edit::invalid(field, "contains a NUL character"));
    }
    if value.chars().count() > max {
        return Err(edit::invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

/// A name the store keeps or looks up (project, group, host, label,
/// variable key): [`crate::names::check_name`], reported under `field`.
pub fn name_field(field: &str, what: &str, value: &str) -> Result<(), StoreError> {
    crate::names::check_name(what, value).map_err(|m| edit::invalid(field, m))
}

/// A parsed `CRATON_DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
    Mysql(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, StoreError> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(StoreError::BadUrl(
                    "sqlite:// URL without a path (use sqlite:///abs/path or sqlite://relative/path)".into(),
                ));
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        if url.starts_with("mysql://") {
            return Ok(DbUrl::Mysql(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("mariadb://") {
            return Ok(DbUrl::Mysql(format!("mysql://{rest}")));
        }
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or(url);
        Err(StoreError::BadUrl(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite://PATH, postgres://... or mysql://..."
        )))
    }

    pub fn sqlite(path: &Path) -> DbUrl {
        DbUrl::Sqlite(path.to_path_buf())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DbUrl::Sqlite(_) => "sqlite",
            DbUrl::Postgres(_) => "postgres",
            DbUrl::Mysql(_) => "mysql",
        }
    }
}

/// Shown in messages and logs: never the password.
impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DbUrl::Postgres(u) | DbUrl::Mysql(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    match auth {
        Some(a) => match a.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{a}@{host}"),
        },
        None => url.to_string(),
    }
}

/// Collapses a driver's multi-line message (libpq's are) into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Foreign keys are off by default in SQLite; WAL and a busy timeout keep
/// readers and a writer from failing on each other.
pub(crate) const SQLITE_PRAGMAS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 1073741824;";

/// Opens a connection and applies per-connection settings.
pub fn connect(url: &DbUrl) -> Result<DbConn, StoreError> {
    let err = |e: ConnectionError| StoreError::Connect { url: url.to_string(), message: one_line(&e.to_string()) };
    match url {
        DbUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Connect {
                    url: url.to_string(),
                    message: format!("creating {}: {e}", dir.display()),
                })?;
            }
            let path_str = path.to_str().ok_or_else(|| StoreError::BadUrl("SQLite path is not UTF-8".into()))?;
            let mut c = SqliteConnection::establish(path_str).map_err(err)?;
            c.batch_execute(SQLITE_PRAGMAS)?;
            Ok(DbConn::Sqlite(c))
        }
        DbUrl::Postgres(u) => Ok(DbConn::Postgres(PgConnection::establish(u).map_err(err)?)),
        DbUrl::Mysql(u) => Ok(DbConn::Mysql(MysqlConnection::establish(u).map_err(err)?)),
    }
}

/// Applies pending migrations; returns the versions applied (empty when
/// the database was up to date).
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, StoreError> {
    let m = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(one_line(&e.to_string()));
    let applied = match conn {
        DbConn::Sqlite(c) => {
            c.run_pending_migrations(SQLITE_MIGRATIONS).map_err(m)?.iter().map(|v| v.to_string()).collect()
        }
        DbConn::Postgres(c) => {
            c.run_pending_migrations(POSTGRES_MIGRATIONS).map_err(m)?.iter().map(|v| v.to_string()).collect()
        }
        DbConn::Mysql(c) => {
            c.run_pending_migrations(MYSQL_MIGRATIONS).map_err(m)?.iter().map(|v| v.to_string()).collect()
        }
    };
    ensure_project(conn, crate::DEFAULT_PROJECT)?;
    Ok(applied)
}

/// True when the database has migrations that were not applied yet.
pub fn has_pending_migrations(conn: &mut DbConn) -> Result<bool, StoreError> {
    let m = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(one_line(&e.to_string()));
    match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS).map_err(m),
        DbConn::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS).map_err(m),
        DbConn::Mysql(c) => c.has_pending_migration(MYSQL_MIGRATIONS).map_err(m),
    }
}

/// Connects for a reader: a SQLite database is created and migrated on first
/// use (the embedded default must just work); a server database must have
/// been migrated with `cratond migrate`.
pub fn connect_ready(url: &DbUrl) -> Result<DbConn, StoreError> {
    let mut conn = connect(url)?;
    if has_pending_migrations(&mut conn)? {
        match url {
            DbUrl::Sqlite(_) => {
                migrate(&mut conn)?;
            }
            _ => return Err(StoreError::NotMigrated(url.to_string())),
        }
    }
    Ok(conn)
}

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The project named `name`; a name no project can have (NUL, too long)
/// is refused as an invalid `project` rather than sent to the database.
pub fn find_project(conn: &mut DbConn, name: &str) -> Result<Option<Project>, StoreError> {
    name_field("project", "project", name)?;
    Ok(projects::table
        .filter(projects::name.eq(name))
        .select((projects::id, projects::name, projects::revision, projects::created_at, projects::updated_at))
        .first::<(i64, String, i64, i64, i64)>(conn)
        .optional()?
        .map(|(id, name, revision, created_at, updated_at)| Project { id, name, revision, created_at, updated_at }))
}

pub fn project_by_id(conn: &mut DbConn, id: i64) -> Result<Option<Project>, StoreError> {
    Ok(projects::table
        .find(id)
        .select((projects::id, projects::name, projects::revision, projects::created_at, projects::updated_at))
        .first::<(i64, String, i64, i64, i64)>(conn)
        .optional()?
        .map(|(id, name, revision, created_at, updated_at)| Project { id, name, revision, created_at, updated_at }))
}

/// Refreshes the planner statistics of the inventory tables. After a bulk
/// import the server's statistics still describe the empty tables, and
/// PostgreSQL then plans `--list`'s range scans as bitmap scans plus sorts
/// (measured: 232 ms instead of 172 ms for 10,000 hosts).
pub fn refresh_statistics(conn: &mut DbConn) -> Result<(), StoreError> {
    const TABLES: &str = "inventory_groups, group_edges, hosts, memberships, host_labels, variables";
    let sql = match conn {
        DbConn::Sqlite(_) => "ANALYZE".to_string(),
        DbConn::Postgres(_) => format!("ANALYZE {TABLES}"),
        DbConn::Mysql(_) => format!("ANALYZE TABLE {TABLES}"),
    };
    // MySQL's ANALYZE TABLE returns a result set; run it as a query whose
    // rows are ignored on every backend.
    conn.batch_execute(&sql)?;
    Ok(())
}

/// Marks a project's inventory as changed (cached snapshots become stale).
pub fn bump_revision(conn: &mut DbConn, project_id: i64) -> Result<(), StoreError> {
    tx::write(conn, |conn| {
        diesel::update(projects::table.find(project_id))
            .set((projects::revision.eq(projects::revision + 1), projects::updated_at.eq(now_ms())))
            .execute(conn)
    })?;
    Ok(())
}

/// The project's current revision, or None when it no longer exists.
pub fn project_revision(conn: &mut DbConn, project_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(projects::table.find(project_id).select(projects::revision).first::<i64>(conn).optional()?)
}

/// Returns the project, creating it when missing.
pub fn ensure_project(conn: &mut DbConn, name: &str) -> Result<Project, StoreError> {
    crate::names::check_name("project", name).map_err(StoreError::Invalid)?;
    if let Some(p) = find_project(conn, name)? {
        return Ok(p);
    }
    tx::write(conn, |conn| {
        let now = now_ms();
        diesel::insert_into(projects::table)
            .values((projects::name.eq(name), projects::created_at.eq(now), projects::updated_at.eq(now)))
            .execute(conn)?;
        find_project(conn, name)?.ok_or_else(|| StoreError::UnknownProject(name.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes() {
        assert_eq!(DbUrl::parse("sqlite:///tmp/x.db").unwrap(), DbUrl::Sqlite("/tmp/x.db".into()));
        assert_eq!(DbUrl::parse("sqlite://rel.db").unwrap(), DbUrl::Sqlite("rel.db".into()));
        assert!(matches!(DbUrl::parse("postgresql://u@h/db").unwrap(), DbUrl::Postgres(_)));
        assert_eq!(DbUrl::parse("mariadb://root@h/db").unwrap(), DbUrl::Mysql("mysql://root@h/db".into()));
        for bad in ["/tmp/x.db", "oracle://x", "sqlite://", "", "craton.db"] {
            let e = DbUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("unsupported") || e.contains("without a path"), "{bad}: {e}");
        }
    }

    fn db_error(kind: diesel::result::DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::Query(diesel::result::Error::DatabaseError(kind, Box::new(message.to_string())))
    }

    /// The texts the three client libraries give for a dead connection or a
    /// missing database, and for contention (findings 8 and 10).
    #[test]
    fn error_classes() {
        use diesel::result::DatabaseErrorKind::{ClosedConnection, SerializationFailure, Unknown};
        for m in [
            "MySQL server has gone away",
            "Lost connection to server during query",
            "Can't connect to server on '127.0.0.1' (111)",
            "no connection to the server",
            "terminating connection due to administrator command",
            "server closed the connection unexpectedly",
            "unable to open database file",
            "disk I/O error",
            "Table 'craton.projects' doesn't exist",
        ] {
            let e = db_error(Unknown, m);
            assert!(e.is_unavailable() && !e.is_transient(), "{m}");
        }
        assert!(db_error(ClosedConnection, "").is_unavailable());
        for m in [
            "Deadlock found when trying to get lock; try restarting transaction",
            "Lock wait timeout exceeded; try restarting transaction",
            "deadlock detected",
            "could not serialize access due to concurrent update",
            "database is locked",
            "database table is locked",
        ] {
            let e = db_error(Unknown, m);
            assert!(e.is_transient() && !e.is_unavailable(), "{m}");
        }
        assert!(db_error(SerializationFailure, "").is_transient());
        for m in ["duplicate key value violates unique constraint", "value too long for type character varying(191)"] {
            let e = db_error(Unknown, m);
            assert!(!e.is_transient() && !e.is_unavailable(), "{m}");
        }
    }

    #[test]
    fn passwords_never_shown() {
        let u = DbUrl::parse("postgres://craton:s3cret@db:5432/craton").unwrap();
        assert_eq!(u.to_string(), "postgres://craton:***@db:5432/craton");
        assert!(!format!("{u:?}").contains("s3cret"));
    }
}
