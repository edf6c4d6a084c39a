//! The commit protocol both SQL event stores follow, written once; each
//! dialect supplies its statements ([`CommitStatements`]).
//!
//! A batch of units of work is written table by table, one set-based statement
//! per table taking the whole batch's rows as one JSON array
//! ([`BatchRows`]), in one transaction:
//!
//! 1. the handled-message marks: if one was already there, the cause was
//!    handled before and nothing is written ([`StoreError::AlreadyHandled`]);
//! 2. the events: a taken (aggregate, sequence) means an aggregate moved past
//!    its expected version, named by [`conflict_among`] once the transaction
//!    is rolled back ([`StoreError::Conflict`]);
//! 3. the read models, the last of each aggregate, never older than the one
//!    stored;
//! 4. the outbox, under the dialect's outbox lock if it has one, so that
//!    outbox ids follow commit order.
//!
//! After the commit, the outbox relay is woken if anything was queued.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use tokio::sync::Notify;

use campusg_runtime::store::{conflict_among, BatchRows, EventStore, StoreError, UnitOfWork};

/// The statements one dialect writes a batch with. Each `insert` and `upsert`
/// takes the rows of its table as its one parameter, a JSON array of the
/// objects [`BatchRows`] describes.
pub struct CommitStatements {
    pub insert_handled: &'static str,
    pub append_events: &'static str,
    pub upsert_states: &'static str,
    /// Taken before the outbox rows and held until the commit, where several
    /// processes write one store.
    pub lock_outbox: Option<&'static str>,
    pub insert_outbox: &'static str,
}

/// An open transaction of either database: all the protocol needs of one.
#[async_trait]
pub trait SqlTransaction: Send {
    /// Runs `statement` with `rows` bound as its one parameter; how many rows
    /// it changed.
    async fn execute_rows(&mut self, statement: &str, rows: &[Value]) -> Result<u64, sqlx::Error>;

    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error>;

    async fn commit(self) -> Result<(), sqlx::Error>;
}

/// One implementation per database, from the same lines: sqlx has no trait
/// for a query result's row count, so the impl cannot be generic.
macro_rules! sql_transaction {
    ($database:ty) => {
        #[async_trait]
        impl SqlTransaction for sqlx::Transaction<'static, $database> {
            async fn execute_rows(&mut self, statement: &str, rows: &[Value]) -> Result<u64, sqlx::Error> {
                let done = sqlx::query(statement)
                    .bind(Json(rows))
                    .execute(&mut **self)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
                sqlx::query(statement).execute(&mut **self).await?;
                Ok(())
            }

            async fn commit(self) -> Result<(), sqlx::Error> {
                sqlx::Transaction::commit(self).await
            }
        }
    };
}

sql_transaction!(sqlx::Sqlite);
sql_transaction!(sqlx::Postgres);

/// Why a batch was not written.
enum NotWritten {
    AlreadyHandled,
    SequenceTaken,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for NotWritten {
    fn from(error: sqlx::Error) -> NotWritten {
        NotWritten::Database(error)
    }
}

/// A SQL event store, as the protocol sees it: its dialect's statements, how
/// it opens a transaction, how its database's errors read as the store's.
#[async_trait]
pub trait SqlDialect: EventStore {
    type Transaction: SqlTransaction;

    const STATEMENTS: CommitStatements;

    async fn begin(&self) -> Result<Self::Transaction, sqlx::Error>;

    fn storage_error(error: sqlx::Error) -> StoreError;

    /// Woken after a commit that queued messages.
    fn outbox_ready(&self) -> &Notify;
}

/// Commits `units` to `store`, all or none (see the module's documentation
/// for the steps).
pub async fn commit_units<S: SqlDialect>(store: &S, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
    let rows = BatchRows::of(&units);
    let mut tx = store.begin().await.map_err(S::storage_error)?;
    match write(&mut tx, &S::STATEMENTS, &rows).await {
        Ok(()) => {}
        Err(NotWritten::AlreadyHandled) => return Err(StoreError::AlreadyHandled),
        Err(NotWritten::SequenceTaken) => {
            // Rolled back before the store is read again: SQLite allows one writer.
            drop(tx);
            return Err(conflict_among(store, &units).await);
        }
        Err(NotWritten::Database(error)) => return Err(S::storage_error(error)),
    }
    tx.commit().await.map_err(S::storage_error)?;
    if !rows.outbox.is_empty() {
        store.outbox_ready().notify_one();
    }
    Ok(())
}

async fn write(
    tx: &mut impl SqlTransaction,
    statements: &CommitStatements,
    rows: &BatchRows,
) -> Result<(), NotWritten> {
    if !rows.handled.is_empty() {
        let inserted = tx.execute_rows(statements.insert_handled, &rows.handled).await?;
        if inserted < rows.handled.len() as u64 {
            return Err(NotWritten::AlreadyHandled);
        }
    }
    if !rows.events.is_empty() {
        // A taken (aggregate, sequence): an aggregate moved past its expected version.
        tx.execute_rows(statements.append_events, &rows.events)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_unique_violation() => NotWritten::SequenceTaken,
                _ => NotWritten::Database(error),
            })?;
    }
    if !rows.states.is_empty() {
        tx.execute_rows(statements.upsert_states, &rows.states).await?;
    }
    if !rows.outbox.is_empty() {
        if let Some(lock) = statements.lock_outbox {
            tx.execute(lock).await?;
        }
        tx.execute_rows(statements.insert_outbox, &rows.outbox).await?;
    }
    Ok(())
}

/// The protocol's guarantees, checked once against each database.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use rstest::rstest;
    use serde_json::json;

    use campusg_runtime::bus::OutgoingRecord;
    use campusg_runtime::store::{AggregateChange, Cause, HandledMessage, NewEvent};

    use super::*;
    use crate::postgres_store::PostgresEventStore;
    use crate::sqlite_store::SqliteEventStore;

    #[derive(Clone, Copy, Debug)]
    enum Database {
        Sqlite,
        Postgres,
    }

    /// A fresh store, and what to drop to clean it up (a temporary directory,
    /// or a PostgreSQL schema dropped on a thread of its own, since `Drop`
    /// cannot wait on the test's runtime).
    struct Fresh {
        store: Arc<dyn EventStore>,
        _cleanup: Cleanup,
    }

    enum Cleanup {
        Directory(#[allow(dead_code)] tempfile::TempDir),
        Schema(String),
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Cleanup::Schema(schema) = self {
                let schema = schema.clone();
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime
                        .block_on(PostgresEventStore::drop_schema(&database_url(), &schema))
                        .map_err(std::io::Error::other)
                });
                if let Ok(Err(error)) = dropped.join() {
                    eprintln!("cannot drop the test schema: {error}");
                }
            }
        }
    }

    fn database_url() -> String {
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
    }

    async fn fresh(database: Database) -> Fresh {
        match database {
            Database::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteEventStore::open(&dir.path().join("store.db")).await.unwrap();
                Fresh {
                    store: Arc::new(store),
                    _cleanup: Cleanup::Directory(dir),
                }
            }
            Database::Postgres => {
                let schema = format!("commit_test_{}", uuid::Uuid::new_v4().simple());
                let store = PostgresEventStore::open(&database_url(), &schema).await.unwrap();
                Fresh {
                    store: Arc::new(store),
                    _cleanup: Cleanup::Schema(schema),
                }
            }
        }
    }

    /// A unit caused by `message` that appends `events` events to `id` after
    /// `expected_version` and queues one record per event.
    fn unit(message: &str, id: &str, expected_version: i64, events: usize) -> UnitOfWork {
        let mut unit = UnitOfWork::new(Cause {
            correlation_id: "saga-1".into(),
            causation_id: Some(message.into()),
            source: "test",
            at: Utc::now(),
            handled: Some(HandledMessage {
                consumer: "group".into(),
                message_id: message.into(),
            }),
        });
        if events > 0 {
            unit.changes.push(AggregateChange {
                aggregate_type: "thing".into(),
                aggregate_id: id.into(),
                expected_version,
                events: (0..events)
                    .map(|n| NewEvent {
                        event_type: "thing.changed".into(),
                        event_version: "1".into(),
                        payload: json!({"by": message, "n": n}),
                    })
                    .collect(),
                state: json!({"by": message, "version": expected_version + events as i64}),
            });
        }
        for n in 0..events {
            unit.outbox.push(OutgoingRecord {
                topic: "things".into(),
                key: Some(id.into()),
                value: format!("{message}/{n}"),
                headers: vec![("type".into(), "thing.changed".into())],
            });
        }
        unit
    }

    async fn outbox_values(store: &dyn EventStore) -> Vec<String> {
        let queued = store.outbox_batch(100).await.unwrap();
        queued.into_iter().map(|(_, record)| record.value).collect()
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn a_unit_is_written_whole(#[case] database: Database) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();

        store.commit(unit("m1", "a", 0, 2)).await.unwrap();

        let events = store.load("thing", "a").await.unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(events[1].payload, json!({"by": "m1", "n": 1}));
        assert_eq!(events[0].correlation_id.as_deref(), Some("saga-1"));
        assert_eq!(events[0].causation_id.as_deref(), Some("m1"));
        let (version, state) = store.state("thing", "a").await.unwrap().unwrap();
        assert_eq!((version, state["by"].as_str()), (2, Some("m1")));
        assert_eq!(outbox_values(store).await, ["m1/0", "m1/1"]);
        assert!(store.has_handled("group", "m1").await.unwrap());
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn a_cause_handled_before_writes_nothing(#[case] database: Database) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();
        store.commit(unit("m1", "a", 0, 1)).await.unwrap();

        let again = store.commit(unit("m1", "b", 0, 1)).await;

        assert!(matches!(again, Err(StoreError::AlreadyHandled)), "{again:?}");
        assert!(store.load("thing", "b").await.unwrap().is_empty());
        assert!(store.state("thing", "b").await.unwrap().is_none());
        assert_eq!(outbox_values(store).await, ["m1/0"]);
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn an_aggregate_moved_past_its_expected_version_is_named_and_the_batch_writes_nothing(
        #[case] database: Database,
    ) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();
        store.commit(unit("m1", "a", 0, 1)).await.unwrap();

        let stale = store
            .commit_batch(vec![unit("m2", "b", 0, 1), unit("m3", "a", 0, 1)])
            .await;

        assert!(
            matches!(&stale, Err(StoreError::Conflict { aggregate_id, .. }) if aggregate_id == "a"),
            "{stale:?}"
        );
        assert!(store.load("thing", "b").await.unwrap().is_empty());
        assert!(!store.has_handled("group", "m2").await.unwrap());
        assert_eq!(store.load("thing", "a").await.unwrap().len(), 1);
        assert_eq!(outbox_values(store).await, ["m1/0"]);
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn two_units_of_a_batch_appending_at_the_same_version_conflict(#[case] database: Database) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();

        let twice = store
            .commit_batch(vec![unit("m1", "a", 0, 1), unit("m2", "a", 0, 1)])
            .await;

        assert!(matches!(twice, Err(StoreError::Conflict { .. })), "{twice:?}");
        assert!(store.load("thing", "a").await.unwrap().is_empty());
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn a_batch_keeps_the_last_read_model_and_queues_in_commit_order(#[case] database: Database) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();

        store
            .commit_batch(vec![
                unit("m1", "a", 0, 1),
                unit("m2", "b", 0, 2),
                unit("m3", "a", 1, 1),
            ])
            .await
            .unwrap();

        let (version, state) = store.state("thing", "a").await.unwrap().unwrap();
        assert_eq!((version, state["by"].as_str()), (2, Some("m3")));
        assert_eq!(outbox_values(store).await, ["m1/0", "m2/0", "m2/1", "m3/0"]);
        let a = store.load("thing", "a").await.unwrap();
        assert_eq!(
            a.iter().map(|e| e.causation_id.clone().unwrap()).collect::<Vec<_>>(),
            ["m1", "m3"]
        );
    }

    #[rstest]
    #[case::sqlite(Database::Sqlite)]
    #[case::postgres(Database::Postgres)]
    #[tokio::test]
    async fn a_unit_that_changes_nothing_still_marks_its_cause_handled(#[case] database: Database) {
        let fresh = fresh(database).await;
        let store = fresh.store.as_ref();

        store.commit(unit("m1", "a", 0, 0)).await.unwrap();

        assert!(store.has_handled("group", "m1").await.unwrap());
        assert!(outbox_values(store).await.is_empty());
        let again = store.commit(unit("m1", "a", 0, 0)).await;
        assert!(matches!(again, Err(StoreError::AlreadyHandled)), "{again:?}");
    }
}
