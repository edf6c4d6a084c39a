//! Opening SQLite files the way every embedded store wants them: WAL, so readers
//! never block the writer; `synchronous=FULL`, so that a commit that returned
//! is on disk even after a power cut (see ADR 05: the log and each store are
//! separate files, and the later of two writes must never survive the earlier);
//! and a busy timeout, because `campusg publish` may write the same log file
//! from another process.
//!
//! A file is one rusqlite connection on a thread of its own
//! ([`tokio_rusqlite`]): a caller hands it a whole piece of work (a batch's
//! transaction, a read and the decoding of its rows) and awaits the answer,
//! one hop between threads. One connection, because SQLite drops a
//! connection's whole page cache when it finds the file written by another:
//! a file written far more than it is read concurrently is best served by the
//! one connection whose cache its own commits keep warm.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Duration;

use rusqlite::ErrorCode;
pub use tokio_rusqlite::Connection;

/// How many prepared statements a connection keeps: every statement the log
/// or a store runs, with room for the queries built from filters.
const STATEMENT_CACHE: usize = 64;

/// How much of a file SQLite keeps in memory, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct PageCache(u32);

impl PageCache {
    /// SQLite's own default: for the log, and stores read back often.
    pub const DEFAULT: PageCache = PageCache(2000);
    /// For a store read back seldom. Measured at 10,000 orders: a quarter of
    /// the default for four of the eleven files takes 8 MiB off the peak.
    pub const SMALL: PageCache = PageCache(512);
}

/// Opens (or creates) `path` and sets it up, with a page cache of at most `cache`.
pub async fn open_sqlite(path: &Path, cache: PageCache) -> Result<Connection, tokio_rusqlite::Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| tokio_rusqlite::Error::Other(Box::new(error)))?;
    }
    let connection = Connection::open(path).await?;
    connection
        .call(move |db| {
            db.busy_timeout(Duration::from_secs(10))?;
            let journal: String = db.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !journal.eq_ignore_ascii_case("wal") {
                return Err(tokio_rusqlite::Error::Other(
                    format!("the file cannot use a write-ahead log (journal mode {journal})").into(),
                ));
            }
            db.pragma_update(None, "synchronous", "FULL")?;
            db.pragma_update(None, "foreign_keys", "ON")?;
            // Negative: in KiB rather than pages.
            db.pragma_update(None, "cache_size", -i64::from(cache.0))?;
            db.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(())
        })
        .await?;
    Ok(connection)
}

/// Runs `work` on the connection's thread and hands back its answer; `lost`
/// says what the caller's error is when the connection itself failed. Work
/// that panics fails alone, as a task would: its transaction rolls back as it
/// unwinds, and the thread goes on serving the file.
pub async fn on_connection<R, E>(
    db: &Connection,
    work: impl FnOnce(&mut rusqlite::Connection) -> Result<R, E> + Send + 'static,
    lost: fn(tokio_rusqlite::Error) -> E,
) -> Result<R, E>
where
    R: Send + 'static,
    E: Send + 'static,
{
    db.call(move |db| {
        std::panic::catch_unwind(AssertUnwindSafe(|| work(db)))
            .map_err(|_| tokio_rusqlite::Error::Other("work on a SQLite connection panicked".into()))
    })
    .await
    .map_err(lost)?
}

/// Whether an error is SQLite saying another writer holds the lock, which a
/// retry resolves. A connection whose thread is gone never comes back: that
/// is not for retrying.
pub fn is_busy(error: &tokio_rusqlite::Error) -> bool {
    matches!(error, tokio_rusqlite::Error::Rusqlite(error) if is_locked(error))
}

fn is_locked(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Whether an insert broke a unique key.
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == ErrorCode::ConstraintViolation
                && matches!(
                    failure.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FULL is 2: every commit is synced before it returns (ADR 05).
    #[tokio::test]
    async fn every_commit_is_on_disk_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_sqlite(&dir.path().join("store.db"), PageCache::DEFAULT)
            .await
            .unwrap();
        let (synchronous, journal) = db
            .call(|db| {
                let synchronous: i64 = db.pragma_query_value(None, "synchronous", |row| row.get(0))?;
                let journal: String = db.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
                Ok((synchronous, journal))
            })
            .await
            .unwrap();
        assert_eq!(synchronous, 2);
        assert_eq!(journal, "wal");
    }

    /// A panic in one piece of work fails that piece only: the connection
    /// serves the next caller, and the panicking transaction left nothing.
    #[tokio::test]
    async fn work_that_panics_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_sqlite(&dir.path().join("store.db"), PageCache::DEFAULT)
            .await
            .unwrap();
        on_connection(
            &db,
            |db| db.execute_batch("CREATE TABLE t (n INTEGER)"),
            |e| panic!("{e}"),
        )
        .await
        .unwrap();

        let panicked = on_connection(
            &db,
            |db| -> Result<(), String> {
                let tx = db.transaction().map_err(|e| e.to_string())?;
                tx.execute("INSERT INTO t VALUES (1)", []).map_err(|e| e.to_string())?;
                panic!("a bug in the middle of a transaction")
            },
            |error| error.to_string(),
        )
        .await;

        assert!(panicked.unwrap_err().contains("panicked"));
        let rows: i64 = on_connection(
            &db,
            |db| db.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0)),
            |e| panic!("{e}"),
        )
        .await
        .unwrap();
        assert_eq!(rows, 0);
    }
}
