//! A fresh database per test on each backend, shared by the workspace's
//! tests and the daemon's. Backends come from `CRATON_TEST_BACKENDS`
//! (default `sqlite,postgres,mysql`); one that is listed but unreachable
//! fails the test rather than skipping it.

use std::sync::atomic::{AtomicUsize, Ordering};

use craton::store::{self, DbConn, DbUrl};
use diesel::RunQueryDsl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

pub fn backends() -> Vec<Backend> {
    let list = std::env::var("CRATON_TEST_BACKENDS").unwrap_or_else(|_| "sqlite,postgres,mysql".into());
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::Mysql,
            other => panic!("unknown backend {other:?} in CRATON_TEST_BACKENDS"),
        })
        .collect()
}

/// `CRATON_TEST_HEAVY=1`: the long variants of a few tests (benches and
/// release checks run them); CI's default keeps the suite within its budget.
pub fn heavy() -> bool {
    std::env::var("CRATON_TEST_HEAVY").is_ok_and(|v| v == "1")
}

/// The backends of a test whose backend-specific part other tests already
/// cover: all of [`backends`] when heavy, else only the first.
pub fn backends_light() -> Vec<Backend> {
    let mut all = backends();
    if !heavy() {
        all.truncate(1);
    }
    all
}

fn pg_admin() -> String {
    std::env::var("CRATON_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn mysql_admin() -> String {
    std::env::var("CRATON_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A database of its own for one test; dropped afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn admin(backend: Backend) -> DbConn {
    let url = match backend {
        Backend::Postgres => format!("{}/postgres", pg_admin()),
        Backend::Mysql => format!("{}/mysql", mysql_admin()),
        Backend::Sqlite => unreachable!(),
    };
    store::connect(&DbUrl::parse(&url).unwrap()).unwrap_or_else(|e| {
        panic!("{backend:?} test server unreachable ({e}); start it or drop it from CRATON_TEST_BACKENDS")
    })
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("craton_t{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), nanos);
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("craton.sqlite3").display());
                TestDb { backend, url, name, _dir: Some(dir) }
            }
            Backend::Postgres => {
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin(backend)).unwrap();
                TestDb { backend, url: format!("{}/{name}", pg_admin()), name, _dir: None }
            }
            Backend::Mysql => {
                diesel::sql_query(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
                    .execute(&mut admin(backend))
                    .unwrap();
                TestDb { backend, url: format!("{}/{name}", mysql_admin()), name, _dir: None }
            }
        }
    }

    /// A connection with the schema migrated.
    pub fn conn(&self) -> DbConn {
        let mut c = store::connect(&DbUrl::parse(&self.url).unwrap()).unwrap();
        store::migrate(&mut c).unwrap();
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = match self.backend {
            Backend::Sqlite => return,
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Backend::Mysql => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let _ = diesel::sql_query(sql).execute(&mut admin(self.backend));
    }
}
