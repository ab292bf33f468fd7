//! Integration tests of `lightsout-memory`: one binary, one module per topic.
//!
//! The tests of the store's behaviour run against both backends: [`both!`] turns each test
//! function `name(fx: Fixture)` into `name::sqlite` (a real database file in a temporary
//! folder) and `name::postgres` (a fresh schema on the server of `LIGHTSOUT_TEST_PG_URL`;
//! without it those tests fail, saying how to start one).

mod guards;
mod import_export;
mod lessons;
mod retrieval;
mod store;

use lightsout_memory::{AnyStore, Memory, NewRecord, parse_time};

/// Which backend a [`Fixture`] opens.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty memory on one backend, and a temporary folder for the test's other files.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) mem: Memory<AnyStore>,
    location: String,
}

impl Fixture {
    pub(crate) fn new(backend: Backend, label: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = match backend {
            Backend::Sqlite => dir
                .path()
                .join(".lightsout/memory.db")
                .to_str()
                .expect("a UTF-8 temporary path")
                .to_owned(),
            Backend::Postgres => lightsout_memory::testing::fresh_schema_url(label),
        };
        let mem = Memory::open_location(&location).expect("open the memory");
        Fixture { dir, mem, location }
    }

    /// Another handle on the same store, with connections of its own (as another process
    /// would open it).
    pub(crate) fn reopen(&self) -> Memory<AnyStore> {
        Memory::open_location(&self.location).expect("reopen the memory")
    }

    /// Opens the same store again.
    pub(crate) fn try_reopen(&self) -> Result<Memory<AnyStore>, lightsout_memory::Error> {
        Memory::open_location(&self.location)
    }

    /// Marks the store's schema as written by a newer Lightsout (version `version`), as a
    /// newer build sharing the file or the server would leave it.
    pub(crate) fn set_schema_version(&self, version: i64) {
        if let AnyStore::Sqlite(_) = self.mem.store() {
            let conn = rusqlite::Connection::open(&self.location).expect("open the file");
            conn.pragma_update(None, "user_version", version)
                .expect("set user_version");
        } else {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&self.location, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                let driver = tokio::spawn(conn);
                let v = i32::try_from(version).expect("a small version");
                client
                    .execute(
                        "UPDATE lightsout_schema SET version = $1 WHERE name = 'memory'",
                        &[&v],
                    )
                    .await
                    .expect("set the version");
                drop(client);
                let _ = driver.await;
            });
        }
    }
}

/// `both!(name, ...)`: for each test function `fn name(fx: Fixture)`, the tests
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::Fixture::new($crate::Backend::Sqlite, stringify!($name)));
            }
            #[test]
            fn postgres() {
                super::$name($crate::Fixture::new($crate::Backend::Postgres, stringify!($name)));
            }
        }
    )+};
}

/// A decision valid from `date` (YYYY-MM-DD).
pub(crate) fn decision_at(title: &str, text: &str, date: &str) -> NewRecord {
    let mut d = NewRecord::decision(title, text);
    d.valid_from = Some(parse_time(date).expect("date"));
    d
}
