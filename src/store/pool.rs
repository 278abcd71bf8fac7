//! A connection pool for the daemon (r2d2), with the same per-connection
//! settings as [`super::connect`]. Blocking: use it from `spawn_blocking`.
//!
//! Why a manager of our own: diesel's r2d2 manager calls a connection broken
//! only when its transaction manager is, so a MySQL connection whose socket
//! died ("Server has gone away") went back into the pool and was handed out
//! forever. Here every connection carries a [`Watch`] (a diesel
//! instrumentation, so it sees every query of every code path, including
//! errors a caller swallows):
//!
//! * a connection-class error ([`super::is_connection_error`]) marks the
//!   connection broken, and r2d2 drops it instead of returning it;
//! * on checkout, a connection that has not completed a query for
//!   [`IDLE_CHECK_AFTER`] is pinged first (a stale idle connection after a
//!   database restart), one that has is handed out without a round trip.
//!
//! Pinging on every checkout (`test_on_check_out` alone) costs one round
//! trip per request; the error-driven mark alone lets every idle connection
//! fail one request after an outage. Together: no extra round trip under
//! load, and no failed request for an idle connection.

use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool};
use diesel::Connection;

use super::{is_connection_error, DbConn, DbUrl, StoreError, SQLITE_PRAGMAS};

pub type DbPool = Pool<Manager>;
pub type PooledConn = diesel::r2d2::PooledConnection<Manager>;
pub use diesel::r2d2::PoolError;

/// A connection idle this long is pinged before it is handed out.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// What the pool knows about one connection, fed by diesel's instrumentation.
#[derive(Debug)]
pub struct Watch {
    broken: bool,
    last_ok: Instant,
}

impl Instrumentation for Watch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error, .. } = event {
            match error {
                Some(e) if is_connection_error(e) => self.broken = true,
                Some(_) => {}
                None => self.last_ok = Instant::now(),
            }
        }
    }
}

fn watch(conn: &mut DbConn) -> Option<&Watch> {
    conn.instrumentation().downcast_ref::<Watch>()
}

/// Builds connections as diesel's manager does, each with a [`Watch`].
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<DbConn>,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(Watch { broken: false, last_ok: Instant::now() });
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        if watch(conn).is_some_and(|w| !w.broken && w.last_ok.elapsed() < IDLE_CHECK_AFTER) {
            return Ok(());
        }
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        self.inner.has_broken(conn) || watch(conn).is_some_and(|w| w.broken)
    }
}

#[derive(Debug)]
struct Setup;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(SQLITE_PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Builds a pool; the database must exist and be reachable (checked once).
pub fn build(url: &DbUrl, max_size: u32) -> Result<DbPool, StoreError> {
    // MultiConnection::establish picks the backend from the URL prefix and
    // takes anything else for a SQLite path, so give it exactly that.
    let target = match url {
        DbUrl::Sqlite(p) => {
            p.to_str().ok_or_else(|| StoreError::BadUrl("SQLite path is not UTF-8".into()))?.to_string()
        }
        DbUrl::Postgres(u) | DbUrl::Mysql(u) => u.clone(),
    };
    let manager = Manager { inner: ConnectionManager::<DbConn>::new(target) };
    Pool::builder()
        .max_size(max_size)
        .connection_timeout(std::time::Duration::from_secs(5))
        .test_on_check_out(true)
        .connection_customizer(Box::new(Setup))
        .build(manager)
        .map_err(|e| StoreError::Connect { url: url.to_string(), message: e.to_string() })
}
