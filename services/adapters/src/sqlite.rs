//! Opening SQLite files the way every embedded store wants them: WAL, so readers
//! never block the writer; `synchronous=FULL`, so that a commit that returned
//! is on disk even after a power cut (see ADR 05: the log and each store are
//! separate files, and the later of two writes must never survive the earlier);
//! and a busy timeout, because `campusg publish` may write the same log file
//! from another process.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Opens `path` with at most `connections` connections. Each keeps its own
/// page cache, and a connection that finds the file changed by another one
/// drops all of it: a file written far more than it is read concurrently (an
/// event store) is best served by one connection, whose cache its own commits
/// keep warm.
pub async fn open_sqlite(path: &Path, connections: u32) -> Result<SqlitePool, sqlx::Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    // A connection is a file handle on this machine, not a socket that can
    // drop: sqlx's check before each use would only cost a round trip to the
    // connection's thread on every statement.
    SqlitePoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// Whether an error is SQLite saying another writer holds the lock, which a
/// retry resolves.
pub fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            let message = db.message();
            message.contains("database is locked") || message.contains("busy")
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FULL is 2: every commit is synced before it returns (ADR 05).
    #[tokio::test]
    async fn every_commit_is_on_disk_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open_sqlite(&dir.path().join("store.db"), 1).await.unwrap();
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&pool).await.unwrap();
        assert_eq!(synchronous, 2);
        let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
        assert_eq!(journal, "wal");
    }
}
