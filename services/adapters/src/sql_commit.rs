//! The commit protocol both SQL event stores follow, written once; each
//! dialect supplies its statements ([`CommitStatements`]) and each store runs
//! the steps on its own binding (sqlx for PostgreSQL, rusqlite on the
//! connection's thread for SQLite).
//!
//! A batch of units of work is written table by table ([`BatchRows`]), in one
//! transaction (PostgreSQL runs one set-based statement per table, taking its
//! rows as one JSON array; SQLite, where a statement costs no round trip, runs
//! the same insert once per row):
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
//! After the commit, the outbox relay is woken if anything was queued
//! ([`settle`]).

use tokio::sync::Notify;

use campusg_runtime::store::{
    conflict_among, BatchRows, EventRow, EventStore, HandledRow, OutboxRow, StateRow, StoreError, UnitOfWork,
};

/// The statements one dialect writes a batch with. How a statement takes its
/// rows ([`TableRows`]) is the dialect's: all at once as a JSON array, or
/// one row at a time.
pub struct CommitStatements<'s> {
    pub insert_handled: &'s str,
    pub append_events: &'s str,
    pub upsert_states: &'s str,
    /// Taken before the outbox rows and held until the commit, where several
    /// processes write one store.
    pub lock_outbox: Option<&'s str>,
    pub insert_outbox: &'s str,
}

/// One statement of the protocol, in the order the batch runs them.
pub struct Step<'a, 'u> {
    pub statement: &'a str,
    /// The rows the statement writes; `None` for the outbox lock.
    pub rows: Option<TableRows<'a, 'u>>,
    meaning: Meaning,
}

/// The rows of one table of a batch.
#[derive(Clone, Copy)]
pub enum TableRows<'a, 'u> {
    Handled(&'a [HandledRow<'u>]),
    Events(&'a [EventRow<'u>]),
    States(&'a [StateRow<'u>]),
    Outbox(&'a [OutboxRow<'u>]),
}

impl TableRows<'_, '_> {
    fn len(&self) -> usize {
        match self {
            TableRows::Handled(rows) => rows.len(),
            TableRows::Events(rows) => rows.len(),
            TableRows::States(rows) => rows.len(),
            TableRows::Outbox(rows) => rows.len(),
        }
    }
}

/// A table's rows as one JSON array, for a dialect whose statement takes them
/// all as its one parameter.
impl serde::Serialize for TableRows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TableRows::Handled(rows) => rows.serialize(serializer),
            TableRows::Events(rows) => rows.serialize(serializer),
            TableRows::States(rows) => rows.serialize(serializer),
            TableRows::Outbox(rows) => rows.serialize(serializer),
        }
    }
}

/// What a statement's outcome says about the batch.
#[derive(Clone, Copy)]
enum Meaning {
    /// Fewer rows inserted than given: one was there, so the cause was handled.
    EveryRowNew,
    /// A unique violation: an aggregate moved past its expected version.
    SequencesFree,
    Done,
}

/// Why a batch was not written.
pub enum NotWritten<E> {
    AlreadyHandled,
    SequenceTaken,
    /// Its caller stopped waiting before the commit (a request past its
    /// deadline was answered "retry"), so it was rolled back: a store whose
    /// work runs on after the caller is gone checks this last.
    CallerGone,
    Database(E),
}

/// The statements that write `rows`, in order; tables without rows are left
/// out.
pub fn steps<'a, 'u>(statements: &CommitStatements<'a>, rows: &'a BatchRows<'u>) -> Vec<Step<'a, 'u>> {
    let step = |statement, rows, meaning| Step {
        statement,
        rows: Some(rows),
        meaning,
    };
    let mut steps = Vec::with_capacity(5);
    if !rows.handled.is_empty() {
        steps.push(step(
            statements.insert_handled,
            TableRows::Handled(&rows.handled),
            Meaning::EveryRowNew,
        ));
    }
    if !rows.events.is_empty() {
        steps.push(step(
            statements.append_events,
            TableRows::Events(&rows.events),
            Meaning::SequencesFree,
        ));
    }
    if !rows.states.is_empty() {
        steps.push(step(
            statements.upsert_states,
            TableRows::States(&rows.states),
            Meaning::Done,
        ));
    }
    if !rows.outbox.is_empty() {
        if let Some(lock) = statements.lock_outbox {
            steps.push(Step {
                statement: lock,
                rows: None,
                meaning: Meaning::Done,
            });
        }
        steps.push(step(
            statements.insert_outbox,
            TableRows::Outbox(&rows.outbox),
            Meaning::Done,
        ));
    }
    steps
}

impl Step<'_, '_> {
    /// What the statement's outcome (the rows it changed, or the database's
    /// error) means for the batch: go on, or stop and roll back.
    pub fn judge<E>(
        &self,
        outcome: Result<u64, E>,
        is_unique_violation: impl Fn(&E) -> bool,
    ) -> Result<(), NotWritten<E>> {
        match (self.meaning, outcome) {
            (Meaning::EveryRowNew, Ok(inserted)) if inserted < self.rows.map_or(0, |rows| rows.len()) as u64 => {
                Err(NotWritten::AlreadyHandled)
            }
            (Meaning::SequencesFree, Err(error)) if is_unique_violation(&error) => Err(NotWritten::SequenceTaken),
            (_, Ok(_)) => Ok(()),
            (_, Err(error)) => Err(NotWritten::Database(error)),
        }
    }
}

/// The store's answer for a batch whose transaction ended in `written`
/// (committed, or rolled back already), and the relay woken if it queued
/// messages.
pub async fn settle<E>(
    store: &dyn EventStore,
    units: &[UnitOfWork],
    queued: bool,
    written: Result<(), NotWritten<E>>,
    storage_error: impl FnOnce(E) -> StoreError,
    outbox_ready: &Notify,
) -> Result<(), StoreError> {
    match written {
        Ok(()) => {
            if queued {
                outbox_ready.notify_one();
            }
            Ok(())
        }
        Err(NotWritten::AlreadyHandled) => Err(StoreError::AlreadyHandled),
        // Read after the rollback: SQLite allows one writer.
        Err(NotWritten::SequenceTaken) => Err(conflict_among(store, units).await),
        Err(NotWritten::CallerGone) => Err(StoreError::Unavailable("the caller stopped waiting".into())),
        Err(NotWritten::Database(error)) => Err(storage_error(error)),
    }
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
                        payload: json!({"by": message, "n": n}).into(),
                    })
                    .collect(),
                state: json!({"by": message, "version": expected_version + events as i64}).into(),
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
