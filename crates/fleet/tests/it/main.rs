//! The fleet's stores, each suite run against both backends: `SQLite` in a temporary
//! directory, and Postgres on the real server `scripts/pg-start` started
//! (`LIGHTSOUT_TEST_PG_URL`; without it the Postgres tests fail, they never skip).

/// Runs each named suite function twice, as `sqlite::NAME` and `postgres::NAME`: the calling
/// module provides `sqlite() -> (TempDir, opener)` and `postgres() -> opener`, and each
/// function takes `&opener`. Defined before the `mod` lines so every suite sees it.
macro_rules! both {
    ($($name:ident),+) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let (_dir, open) = super::sqlite();
                    super::$name(&open);
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let _server = crate::server();
                    super::$name(&super::postgres());
                }
            )+
        }
    };
}

mod budget;
mod claims;
mod faults;
mod journal;
mod queue;

use std::sync::RwLock;

/// Held for reading by every Postgres test, and for writing by the one that restarts the
/// server, so a restart never cuts another test's connection mid-way.
static SERVER: RwLock<()> = RwLock::new(());

/// A shared hold on the test server (see [`SERVER`]).
fn server() -> std::sync::RwLockReadGuard<'static, ()> {
    SERVER
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sole hold on the test server, to restart it.
fn server_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    SERVER
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
