//! The two kinds of transaction the store runs, so that no code path picks
//! its own isolation or retry policy.
//!
//! * [`read`]: one consistent snapshot for a multi-query read (the snapshot
//!   loader runs one query per table; without it a host committed between
//!   two of them shows up without its groups or labels).
//! * [`write`]: a write transaction that is run again, a bounded number of
//!   times with jittered backoff, when the database reports a deadlock, a
//!   serialization failure or a busy file; only when retries run out does
//!   the error reach the caller (the API answers 503 for it).
//!
//! Both join a transaction that is already open instead of nesting: a read
//! inside a write sees the write's own view, and a write inside a write is a
//! savepoint that is never retried on its own (a deadlock rolls back the
//! whole outer transaction, so only the outermost level can run it again).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error as DieselError;
use diesel::Connection;

use super::{DbConn, StoreError};

/// Attempts of one write transaction before its contention error is returned.
pub const WRITE_ATTEMPTS: u32 = 6;
/// First backoff; doubled after each failed attempt (10, 20, 40, 80, 160 ms,
/// each scaled by a random factor in [0.5, 1.5)).
const BACKOFF_BASE: Duration = Duration::from_millis(10);

/// Errors of a write transaction that may carry a database error.
pub trait TxError: From<DieselError> {
    /// A deadlock, serialization failure or busy database.
    fn is_transient(&self) -> bool;
    /// A store error (the audit trail's) as this error.
    fn from_store(e: StoreError) -> Self;
}

impl TxError for DieselError {
    fn is_transient(&self) -> bool {
        super::is_transient_error(self)
    }
    fn from_store(e: StoreError) -> Self {
        match e {
            StoreError::Query(e) => e,
            other => DieselError::QueryBuilderError(other.to_string().into()),
        }
    }
}

impl TxError for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
    fn from_store(e: StoreError) -> Self {
        e
    }
}

/// Opens a top-level transaction with `sql`; false when one is open already.
fn begin(conn: &mut DbConn, sqlite: &str, postgres: &str, mysql: &str) -> Result<bool, DieselError> {
    let r = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, sqlite),
        DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction_sql(c, postgres),
        DbConn::Mysql(c) => AnsiTransactionManager::begin_transaction_sql(c, mysql),
    };
    match r {
        Ok(()) => Ok(true),
        Err(DieselError::AlreadyInTransaction) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Commits on success, rolls back on failure (a failed rollback leaves the
/// connection marked broken, and the pool drops it).
fn finish<T, E: From<DieselError>>(conn: &mut DbConn, result: Result<T, E>) -> Result<T, E> {
    type Tm = <DbConn as Connection>::TransactionManager;
    match result {
        Ok(v) => {
            Tm::commit_transaction(conn)?;
            Ok(v)
        }
        Err(e) => {
            let _ = Tm::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// Runs `f` in one read transaction with a consistent snapshot:
/// PostgreSQL `REPEATABLE READ READ ONLY`, InnoDB `START TRANSACTION WITH
/// CONSISTENT SNAPSHOT` at REPEATABLE READ, SQLite one deferred
/// transaction (WAL readers see the database as of their first read).
pub fn read<T, E: From<DieselError>>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E> {
    let opened = begin(
        conn,
        "BEGIN DEFERRED",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        // SET TRANSACTION (without SESSION) governs the next transaction only.
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    )?;
    if !opened {
        return f(conn);
    }
    let result = f(conn);
    finish(conn, result)
}

/// Runs `f` in a write transaction, again on contention (see the module
/// doc). SQLite starts with `BEGIN IMMEDIATE`, so a writer waits for the
/// write lock (busy_timeout) instead of failing when it upgrades a read
/// lock. `f` must be repeatable: it runs from the start on every attempt.
pub fn write<T, E: TxError>(conn: &mut DbConn, mut f: impl FnMut(&mut DbConn) -> Result<T, E>) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let opened = match begin(conn, "BEGIN IMMEDIATE", "BEGIN", "BEGIN") {
            Ok(o) => o,
            Err(e) => {
                let e = E::from(e);
                if e.is_transient() && attempt < WRITE_ATTEMPTS {
                    backoff(attempt);
                    continue;
                }
                return Err(e);
            }
        };
        if !opened {
            return conn.transaction(&mut f);
        }
        // The audit trail's change sets are written last, inside the
        // transaction (super::audit): both commit or neither does.
        super::audit::discard();
        let result = f(conn).and_then(|v| super::audit::flush(conn).map(|()| v).map_err(E::from_store));
        if result.is_err() {
            super::audit::discard();
        }
        match finish(conn, result) {
            Err(e) if e.is_transient() && attempt < WRITE_ATTEMPTS => backoff(attempt),
            other => return other,
        }
    }
}

/// Sleeps before attempt `attempt + 1`: exponential, with jitter so that
/// two writers that deadlocked do not collide again in step.
fn backoff(attempt: u32) {
    let base = BACKOFF_BASE * 2u32.saturating_pow(attempt - 1);
    // RandomState is seeded per instance: a cheap random number without a
    // dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let factor = 0.5 + (h.finish() % 1000) as f64 / 1000.0;
    std::thread::sleep(base.mul_f64(factor));
}
