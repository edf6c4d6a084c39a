//! The event store in a SQLite file, one file per service.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, TransactionBehavior};
use serde_json::Value;
use tokio::sync::Notify;

use crate::sql_commit::{settle, steps, CommitStatements, NotWritten, TableRows};
use crate::sqlite::{is_busy, is_unique_violation, on_connection, open_sqlite, Connection, PageCache};
use campusg_runtime::bus::OutgoingRecord;
use campusg_runtime::service::StoreReads;
use campusg_runtime::store::{BatchRows, EventOfType, EventStore, StateQuery, StoreError, StoredEvent, UnitOfWork};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_version TEXT NOT NULL,
    payload TEXT NOT NULL,
    correlation_id TEXT,
    causation_id TEXT,
    recorded_at TEXT NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE IF NOT EXISTS aggregate_states (
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT,
    value TEXT NOT NULL,
    headers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handled_messages (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS handled_messages_by_time ON handled_messages (handled_at);
"#;

pub struct SqliteEventStore {
    db: Connection,
    outbox_signal: Arc<Notify>,
}

fn storage_error(error: tokio_rusqlite::Error) -> StoreError {
    if is_busy(&error) {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Other(error.to_string())
    }
}

fn sqlite_error(error: rusqlite::Error) -> StoreError {
    storage_error(error.into())
}

/// A field name safe to splice into a JSON path: letters, digits and `_` only.
/// The JSON path of a state field; `a.b` is field `b` of object `a`.
fn json_field(field: &str) -> Result<String, StoreError> {
    if campusg_runtime::store::is_field_path(field) {
        Ok(format!("$.{field}"))
    } else {
        Err(StoreError::Other(format!("`{field}` is not a state field name")))
    }
}

impl SqliteEventStore {
    /// Opens (or creates) the store in `path`, for a caller that reads it often.
    pub async fn open(path: &Path) -> Result<SqliteEventStore, StoreError> {
        SqliteEventStore::open_read(path, StoreReads::Often).await
    }

    /// Opens (or creates) the store in `path`, keeping as much of it in
    /// memory as `reads` calls for.
    pub async fn open_read(path: &Path, reads: StoreReads) -> Result<SqliteEventStore, StoreError> {
        let cache = match reads {
            StoreReads::Often => PageCache::DEFAULT,
            StoreReads::Seldom => PageCache::SMALL,
        };
        let db = open_sqlite(path, cache).await.map_err(storage_error)?;
        let store = SqliteEventStore {
            db,
            outbox_signal: Arc::new(Notify::new()),
        };
        store
            .on_connection(|db| db.execute_batch(SCHEMA).map_err(sqlite_error))
            .await?;
        Ok(store)
    }

    /// Runs `work` on the store's connection, on its thread: the statements
    /// and the decoding of their rows in one hop.
    async fn on_connection<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        on_connection(&self.db, work, storage_error).await
    }

    /// The rows `sql` selects with `binds`, each decoded by `decode`.
    async fn select<R: Send + 'static>(
        &self,
        sql: String,
        binds: Vec<rusqlite::types::Value>,
        decode: fn(&rusqlite::Row) -> Result<R, StoreError>,
    ) -> Result<Vec<R>, StoreError> {
        self.on_connection(move |db| {
            let mut statement = db.prepare_cached(&sql).map_err(sqlite_error)?;
            let mut rows = statement.query(params_from_iter(binds)).map_err(sqlite_error)?;
            let mut decoded = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                decoded.push(decode(row)?);
            }
            Ok(decoded)
        })
        .await
    }
}

const SELECT_EVENTS: &str = "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, correlation_id, causation_id, recorded_at FROM events";

const SELECT_TYPE_EVENTS: &str = "SELECT aggregate_id, sequence, payload, recorded_at FROM events";

/// The read model, only if no event is newer: the events' unique index
/// answers the maximum at once.
const SELECT_SNAPSHOT: &str = "SELECT s.version, s.state FROM aggregate_states s
     WHERE s.aggregate_type = ?1 AND s.aggregate_id = ?2
       AND s.version = (SELECT MAX(e.sequence) FROM events e WHERE e.aggregate_type = ?1 AND e.aggregate_id = ?2)";

/// Column `index` of `row`, as text, without copying it out of SQLite.
fn text<'row>(row: &'row rusqlite::Row, index: usize) -> Result<&'row str, StoreError> {
    row.get_ref(index)
        .and_then(|value| value.as_str().map_err(Into::into))
        .map_err(sqlite_error)
}

fn column<T: rusqlite::types::FromSql>(row: &rusqlite::Row, index: usize) -> Result<T, StoreError> {
    row.get(index).map_err(sqlite_error)
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(e.to_string()))
}

fn stored_event(row: &rusqlite::Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        global_position: column(row, 0)?,
        aggregate_type: column(row, 1)?,
        aggregate_id: column(row, 2)?,
        sequence: column(row, 3)?,
        event_type: column(row, 4)?,
        event_version: column(row, 5)?,
        payload: json(text(row, 6)?)?,
        correlation_id: column(row, 7)?,
        causation_id: column(row, 8)?,
        recorded_at: time(text(row, 9)?)?,
    })
}

fn event_of_type(row: &rusqlite::Row) -> Result<EventOfType, StoreError> {
    Ok(EventOfType {
        aggregate_id: column(row, 0)?,
        sequence: column(row, 1)?,
        payload: column(row, 2)?,
        recorded_at: time(text(row, 3)?)?,
    })
}

fn time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Other(e.to_string()))
}

fn version_and_state(row: &rusqlite::Row) -> Result<(i64, Value), StoreError> {
    Ok((column(row, 0)?, json(text(row, 1)?)?))
}

/// SQLite's statements of the commit protocol, each run once per row.
const STATEMENTS: CommitStatements<'static> = CommitStatements {
    insert_handled: "INSERT INTO handled_messages (consumer, message_id, handled_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    append_events: "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, correlation_id, causation_id, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    upsert_states: "INSERT INTO aggregate_states (aggregate_type, aggregate_id, version, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (aggregate_type, aggregate_id)
         DO UPDATE SET version = excluded.version, state = excluded.state, updated_at = excluded.updated_at
         WHERE aggregate_states.version <= excluded.version",
    // One process writes a SQLite store, one transaction at a time.
    lock_outbox: None,
    insert_outbox: "INSERT INTO outbox (topic, key, value, headers) VALUES (?1, ?2, ?3, ?4)",
};

/// Runs the commit protocol's steps in one transaction. IMMEDIATE takes the
/// write lock at once: a transaction that read first and wrote later could
/// fail on another's write instead of waiting. Dropped unfinished, the
/// transaction rolls back; so it is when `caller_waits` says the caller gave
/// up, as a future dropped mid-transaction rolled back with sqlx.
fn write(
    db: &mut rusqlite::Connection,
    rows: &BatchRows<'_>,
    caller_waits: impl Fn() -> bool,
) -> Result<(), NotWritten<rusqlite::Error>> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(NotWritten::Database)?;
    for step in steps(&STATEMENTS, rows) {
        let outcome = match step.rows {
            Some(rows) => insert_each(&tx, step.statement, rows),
            None => tx.execute(step.statement, []),
        };
        step.judge(outcome.map(|changed| changed as u64), is_unique_violation)?;
    }
    if !caller_waits() {
        return Err(NotWritten::CallerGone);
    }
    tx.commit().map_err(NotWritten::Database)
}

/// Runs `statement` once for each of `rows`, bound column by column, and
/// answers how many rows it changed; the first error stops it.
fn insert_each(tx: &rusqlite::Transaction, statement: &str, rows: TableRows) -> rusqlite::Result<usize> {
    let mut insert = tx.prepare_cached(statement)?;
    let mut changed = 0;
    match rows {
        TableRows::Handled(rows) => {
            for row in rows {
                changed += insert.execute(params![row.consumer, row.message_id, row.at])?;
            }
        }
        TableRows::Events(rows) => {
            for row in rows {
                changed += insert.execute(params![
                    row.aggregate_type,
                    row.aggregate_id,
                    row.sequence,
                    row.event_type,
                    row.event_version,
                    row.payload.get(),
                    row.correlation_id,
                    row.causation_id,
                    row.at,
                ])?;
            }
        }
        TableRows::States(rows) => {
            for row in rows {
                changed += insert.execute(params![
                    row.aggregate_type,
                    row.aggregate_id,
                    row.version,
                    row.state.get(),
                    row.at,
                ])?;
            }
        }
        TableRows::Outbox(rows) => {
            for row in rows {
                let headers = serde_json::to_string(row.headers).expect("pairs of strings serialize");
                changed += insert.execute(params![row.topic, row.key, row.value, headers])?;
            }
        }
    }
    Ok(changed)
}

/// `select` over the read models of `aggregate_type` whose fields equal
/// `equals`, and the values to bind in order.
fn states_where(
    select: &str,
    aggregate_type: &str,
    equals: &[(String, String)],
) -> Result<(String, Vec<rusqlite::types::Value>), StoreError> {
    let mut sql = format!("{select} FROM aggregate_states WHERE aggregate_type = ?");
    let mut binds = vec![text_value(aggregate_type)];
    for (field, value) in equals {
        sql.push_str(&format!(" AND json_extract(state, '{}') = ?", json_field(field)?));
        binds.push(text_value(value));
    }
    Ok((sql, binds))
}

fn text_value(text: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(text.to_string())
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.select(
            format!("{SELECT_EVENTS} WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence"),
            vec![text_value(aggregate_type), text_value(aggregate_id)],
            stored_event,
        )
        .await
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<EventOfType>, StoreError> {
        // The type's rows found by the unique index, then read in the order
        // they lie in the file (SQLite seeks an IN list's rowids in ascending
        // order), each page once, and sorted here. Read in the index's order
        // it was a page read per event, most of them past SQLite's cache, and
        // two thirds of a replay's time.
        let mut events = self
            .select(
                format!(
                    "{SELECT_TYPE_EVENTS} WHERE global_position IN \
                     (SELECT global_position FROM events WHERE aggregate_type = ?)"
                ),
                vec![text_value(aggregate_type)],
                event_of_type,
            )
            .await?;
        events.sort_unstable_by(|a, b| (&a.aggregate_id, a.sequence).cmp(&(&b.aggregate_id, b.sequence)));
        Ok(events)
    }

    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
        let queued = units.iter().any(|unit| !unit.outbox.is_empty());
        // Dropped with this future if the caller stops waiting.
        let waiting = Arc::new(());
        let caller = Arc::downgrade(&waiting);
        let caller_waits = move || caller.strong_count() > 0;
        // The rows borrow from the units, so the units go to the connection's
        // thread and come back for `settle`.
        let (written, units) = on_connection(
            &self.db,
            move |db| {
                let written = write(db, &BatchRows::of(&units), caller_waits);
                Ok((written, units))
            },
            storage_error,
        )
        .await?;
        drop(waiting);
        settle(self, &units, queued, written, sqlite_error, &self.outbox_signal).await
    }

    async fn prune_handled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Marks are RFC 3339 text in UTC, which sorts as the times do (to the second).
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.on_connection(move |db| {
            let pruned = db
                .execute("DELETE FROM handled_messages WHERE handled_at < ?", [before])
                .map_err(sqlite_error)?;
            Ok(pruned as u64)
        })
        .await
    }

    async fn prune_aggregates(
        &self,
        aggregate_type: &str,
        before: DateTime<Utc>,
        status: Option<&str>,
    ) -> Result<u64, StoreError> {
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (aggregate_type, status) = (aggregate_type.to_string(), status.map(str::to_string));
        self.on_connection(move |db| {
            let doomed =
                "aggregate_type = ?1 AND updated_at < ?2 AND (?3 IS NULL OR json_extract(state, '$.status') = ?3)";
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let binds = rusqlite::params![aggregate_type, before, status];
            tx.execute(
                &format!(
                    "DELETE FROM events WHERE aggregate_type = ?1 AND aggregate_id IN
                         (SELECT aggregate_id FROM aggregate_states WHERE {doomed})"
                ),
                binds,
            )
            .map_err(sqlite_error)?;
            let pruned = tx
                .execute(&format!("DELETE FROM aggregate_states WHERE {doomed}"), binds)
                .map_err(sqlite_error)?;
            tx.commit().map_err(sqlite_error)?;
            Ok(pruned as u64)
        })
        .await
    }

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        let found = self
            .select(
                "SELECT 1 FROM handled_messages WHERE consumer = ? AND message_id = ?".into(),
                vec![text_value(consumer), text_value(message_id)],
                |_| Ok(()),
            )
            .await?;
        Ok(!found.is_empty())
    }

    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let found = self
            .select(
                SELECT_SNAPSHOT.into(),
                vec![text_value(aggregate_type), text_value(aggregate_id)],
                version_and_state,
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let found = self
            .select(
                "SELECT version, state FROM aggregate_states WHERE aggregate_type = ? AND aggregate_id = ?".into(),
                vec![text_value(aggregate_type), text_value(aggregate_id)],
                version_and_state,
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn query_states(&self, aggregate_type: &str, query: &StateQuery) -> Result<Vec<Value>, StoreError> {
        let (mut sql, binds) = states_where("SELECT state", aggregate_type, &query.equals)?;
        match &query.order_by {
            Some(field) => sql.push_str(&format!(" ORDER BY json_extract(state, '{}')", json_field(field)?)),
            None => sql.push_str(" ORDER BY rowid"),
        }
        if query.descending {
            sql.push_str(" DESC");
        }
        sql.push_str(&format!(
            " LIMIT {} OFFSET {}",
            query.limit.unwrap_or(-1),
            query.offset.max(0)
        ));
        self.select(sql, binds, |row| json(text(row, 0)?)).await
    }

    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError> {
        let (sql, binds) = states_where("SELECT COUNT(*)", aggregate_type, equals)?;
        let counted = self.select(sql, binds, |row| column(row, 0)).await?;
        Ok(counted.into_iter().next().unwrap_or(0))
    }

    async fn outbox_batch(&self, limit: i64) -> Result<Vec<(i64, OutgoingRecord)>, StoreError> {
        self.select(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?".into(),
            vec![rusqlite::types::Value::Integer(limit)],
            |row| {
                Ok((
                    column(row, 0)?,
                    OutgoingRecord {
                        topic: column(row, 1)?,
                        key: column(row, 2)?,
                        value: column(row, 3)?,
                        headers: serde_json::from_str(text(row, 4)?).unwrap_or_default(),
                    },
                ))
            },
        )
        .await
    }

    async fn outbox_delete(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = serde_json::to_string(ids).expect("integers serialize");
        self.on_connection(move |db| {
            db.prepare_cached("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))")
                .and_then(|mut statement| statement.execute([ids]))
                .map_err(sqlite_error)?;
            Ok(())
        })
        .await
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        self.on_connection(|db| {
            db.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))
                .map_err(sqlite_error)
        })
        .await
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// A SQLite store belongs to one process.
    async fn claim_outbox(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use campusg_runtime::bus::OutgoingRecord;
    use campusg_runtime::store::{AggregateChange, Cause, HandledMessage, NewEvent};

    /// A store read seldom keeps a quarter of SQLite's page cache; the
    /// others, and every store a command opens, keep SQLite's default.
    #[rstest::rstest]
    #[case::often(StoreReads::Often, -2000)]
    #[case::seldom(StoreReads::Seldom, -512)]
    #[tokio::test]
    async fn a_store_keeps_as_much_of_its_file_in_memory_as_it_is_read(
        #[case] reads: StoreReads,
        #[case] kib_negated: i64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open_read(&dir.path().join("store.db"), reads)
            .await
            .unwrap();
        let cache_size = store
            .on_connection(|db| {
                db.pragma_query_value(None, "cache_size", |row| row.get::<_, i64>(0))
                    .map_err(sqlite_error)
            })
            .await
            .unwrap();
        assert_eq!(cache_size, kib_negated);
    }

    fn one_event(id: &str) -> UnitOfWork {
        let mut unit = UnitOfWork::new(Cause::request("test".into(), "test", Utc::now()));
        unit.changes.push(AggregateChange {
            aggregate_type: "thing".into(),
            aggregate_id: id.into(),
            expected_version: 0,
            events: vec![NewEvent {
                event_type: "thing.made".into(),
                event_version: "1".into(),
                payload: json!({}).into(),
            }],
            state: json!({}).into(),
        });
        unit
    }

    /// A replay folds each aggregate's events in a run, in order: the read of
    /// a whole type gives them so whatever order they were committed in,
    /// and only that type's.
    #[tokio::test]
    async fn a_type_reads_back_by_aggregate_then_sequence_whatever_the_commit_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("store.db")).await.unwrap();
        let commit = |aggregate_type: &str, id: &str, sequence: i64| {
            let mut unit = one_event(id);
            unit.changes[0].aggregate_type = aggregate_type.into();
            unit.changes[0].expected_version = sequence - 1;
            unit.changes[0].events[0].payload = json!({"id": id, "n": sequence}).into();
            unit
        };
        for (aggregate_type, id, sequence) in [
            ("thing", "b", 1),
            ("thing", "a", 1),
            ("other", "a", 1),
            ("thing", "b", 2),
            ("thing", "a", 2),
            ("thing", "b", 3),
        ] {
            store.commit(commit(aggregate_type, id, sequence)).await.unwrap();
        }

        let read: Vec<(String, i64, Value)> = store
            .load_type("thing")
            .await
            .unwrap()
            .into_iter()
            .map(|event| {
                (
                    event.aggregate_id,
                    event.sequence,
                    serde_json::from_str(&event.payload).unwrap(),
                )
            })
            .collect();

        let expected: Vec<(String, i64, Value)> = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("b", 3)]
            .into_iter()
            .map(|(id, n)| (id.to_string(), n, json!({"id": id, "n": n})))
            .collect();
        assert_eq!(read, expected);
    }

    /// Each column holds what the readers (the store's own, `scripts/chaos`,
    /// which opens the files directly) expect, in the type they expect: the
    /// rows are bound by position, and neighbouring columns share a type.
    #[tokio::test]
    async fn each_column_of_a_batch_holds_its_own_value_in_its_own_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteEventStore::open(&path).await.unwrap();
        let at = Utc::now();
        let mut handled = one_event("handled");
        handled.cause = Cause {
            correlation_id: "saga-1".into(),
            causation_id: Some("message-1".into()),
            source: "test",
            at,
            handled: Some(HandledMessage {
                consumer: "group-1".into(),
                message_id: "message-1".into(),
            }),
        };
        // Fields out of alphabetical order: the text is kept as the type wrote it.
        #[derive(serde::Serialize)]
        struct Priced<'a> {
            price: f64,
            name: &'a str,
        }
        handled.changes[0].events[0].payload = campusg_runtime::store::JsonText::of(&Priced {
            price: 12.99,
            name: "caf\u{e9} \"x\"",
        })
        .unwrap();
        handled.changes[0].state = json!({"status": "MADE", "n": 1}).into();
        let mut requested = one_event("requested");
        requested.outbox.push(OutgoingRecord {
            topic: "thing_events".into(),
            key: None,
            value: r#"{"id":"m"}"#.into(),
            headers: vec![("type".into(), "thing.made".into())],
        });
        store.commit_batch(vec![handled, requested]).await.unwrap();

        let db = rusqlite::Connection::open(&path).unwrap();
        let event: (
            String,
            String,
            String,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
        ) = db
            .query_row(
                "SELECT aggregate_type, aggregate_id, typeof(sequence), sequence, event_type, event_version,
                        payload, correlation_id, causation_id, recorded_at
                 FROM events WHERE aggregate_id = 'handled'",
                [],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                        row.get(7)?,
                        row.get(8)?,
                        row.get(9)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            event,
            (
                "thing".into(),
                "handled".into(),
                "integer".into(),
                1,
                "thing.made".into(),
                "1".into(),
                r#"{"price":12.99,"name":"café \"x\""}"#.into(),
                "saga-1".into(),
                Some("message-1".into()),
                at.to_rfc3339(),
            )
        );
        let causation: Option<String> = db
            .query_row(
                "SELECT causation_id FROM events WHERE aggregate_id = 'requested'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(causation, None);
        let state: (String, i64, String, String) = db
            .query_row(
                "SELECT typeof(version), version, state, updated_at FROM aggregate_states WHERE aggregate_id = 'handled'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            state,
            (
                "integer".into(),
                1,
                json!({"status": "MADE", "n": 1}).to_string(),
                at.to_rfc3339()
            )
        );
        let mark: (String, String, String) = db
            .query_row(
                "SELECT consumer, message_id, handled_at FROM handled_messages",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(mark, ("group-1".into(), "message-1".into(), at.to_rfc3339()));
        let outbox: (String, Option<String>, String, String) = db
            .query_row("SELECT topic, key, value, headers FROM outbox", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap();
        assert_eq!(
            outbox,
            (
                "thing_events".into(),
                None,
                r#"{"id":"m"}"#.into(),
                r#"[["type","thing.made"]]"#.into()
            )
        );
    }

    /// A request answered "retry" at its deadline must leave nothing done:
    /// its commit, queued behind other work on the connection's thread, rolls
    /// back when it finds its caller gone.
    #[tokio::test]
    async fn a_commit_whose_caller_stopped_waiting_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("store.db")).await.unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let db = store.db.clone();
        let busy = tokio::spawn(async move {
            db.call(move |_| {
                started.send(()).ok();
                held.recv().ok();
                Ok(())
            })
            .await
        });
        running.await.unwrap();

        let gave_up = tokio::time::timeout(Duration::from_millis(50), store.commit(one_event("a"))).await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();

        assert!(gave_up.is_err(), "the commit should still have been queued");
        assert!(store.load("thing", "a").await.unwrap().is_empty());
        store.commit(one_event("b")).await.unwrap();
        assert_eq!(store.load("thing", "b").await.unwrap().len(), 1);
    }
}
