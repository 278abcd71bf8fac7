//! A connection pool for the daemon (r2d2), with the same per-connection
//! settings as [`super::connect`]. Blocking: use it from `spawn_blocking`.

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};

use super::{DbConn, DbUrl, StoreError, SQLITE_PRAGMAS};

pub type DbPool = Pool<ConnectionManager<DbConn>>;
pub type PooledConn = diesel::r2d2::PooledConnection<ConnectionManager<DbConn>>;
pub use diesel::r2d2::PoolError;

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
    let manager = ConnectionManager::<DbConn>::new(target);
    Pool::builder()
        .max_size(max_size)
        .connection_timeout(std::time::Duration::from_secs(5))
        .test_on_check_out(false)
        .connection_customizer(Box::new(Setup))
        .build(manager)
        .map_err(|e| StoreError::Connect { url: url.to_string(), message: e.to_string() })
}
