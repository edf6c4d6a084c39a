//! The event store in a SQLite file, one file per service.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::sqlite::{is_busy, open_sqlite};
use campusg_runtime::bus::OutgoingRecord;
use campusg_runtime::store::{EventStore, StateQuery, StoreError, StoredEvent, UnitOfWork};

use crate::sql_commit::{commit_units, CommitStatements, SqlDialect};

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
    pool: SqlitePool,
    outbox_signal: Arc<Notify>,
}

fn storage_error(error: sqlx::Error) -> StoreError {
    if is_busy(&error) {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Other(error.to_string())
    }
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
    pub async fn open(path: &Path) -> Result<SqliteEventStore, StoreError> {
        // One process writes it, through its consumer, its relay and its
        // routes, one transaction at a time anyway.
        let pool = open_sqlite(path, 1).await.map_err(storage_error)?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(storage_error)?;
        Ok(SqliteEventStore {
            pool,
            outbox_signal: Arc::new(Notify::new()),
        })
    }
}

const SELECT_EVENTS: &str = "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, correlation_id, causation_id, recorded_at FROM events";

/// The read model, only if no event is newer: the events' unique index
/// answers the maximum at once.
const SELECT_SNAPSHOT: &str = "SELECT s.version, s.state FROM aggregate_states s
     WHERE s.aggregate_type = ?1 AND s.aggregate_id = ?2
       AND s.version = (SELECT MAX(e.sequence) FROM events e WHERE e.aggregate_type = ?1 AND e.aggregate_id = ?2)";

fn stored_event(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    let payload: String = row.get(6);
    let recorded_at: String = row.get(9);
    Ok(StoredEvent {
        global_position: row.get(0),
        aggregate_type: row.get(1),
        aggregate_id: row.get(2),
        sequence: row.get(3),
        event_type: row.get(4),
        event_version: row.get(5),
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Other(e.to_string()))?,
        correlation_id: row.get(7),
        causation_id: row.get(8),
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Other(e.to_string()))?,
    })
}

#[async_trait]
impl SqlDialect for SqliteEventStore {
    type Transaction = sqlx::Transaction<'static, sqlx::Sqlite>;

    // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    const STATEMENTS: CommitStatements = CommitStatements {
        insert_handled: "INSERT INTO handled_messages (consumer, message_id, handled_at)
             SELECT value ->> 'consumer', value ->> 'message_id', value ->> 'at'
             FROM json_each(?) WHERE true
             ON CONFLICT DO NOTHING",
        append_events: "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, correlation_id, causation_id, recorded_at)
             SELECT value ->> 'aggregate_type', value ->> 'aggregate_id', value ->> 'sequence',
                    value ->> 'event_type', value ->> 'event_version', value -> 'payload',
                    value ->> 'correlation_id', value ->> 'causation_id', value ->> 'at'
             FROM json_each(?) ORDER BY key",
        upsert_states: "INSERT INTO aggregate_states (aggregate_type, aggregate_id, version, state, updated_at)
             SELECT value ->> 'aggregate_type', value ->> 'aggregate_id', value ->> 'version',
                    value -> 'state', value ->> 'at'
             FROM json_each(?) WHERE true
             ON CONFLICT (aggregate_type, aggregate_id)
             DO UPDATE SET version = excluded.version, state = excluded.state, updated_at = excluded.updated_at
             WHERE aggregate_states.version <= excluded.version",
        // One process writes a SQLite store, one transaction at a time.
        lock_outbox: None,
        insert_outbox: "INSERT INTO outbox (topic, key, value, headers)
             SELECT item.value ->> 'topic', item.value ->> 'key', item.value ->> 'value', item.value -> 'headers'
             FROM json_each(?) AS item ORDER BY item.key",
    };

    /// IMMEDIATE takes the write lock at once: a transaction that read first
    /// and wrote later could fail on another's write instead of waiting.
    async fn begin(&self) -> Result<Self::Transaction, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn storage_error(error: sqlx::Error) -> StoreError {
        storage_error(error)
    }

    fn outbox_ready(&self) -> &Notify {
        &self.outbox_signal
    }
}

/// `select` over the read models of `aggregate_type` whose fields equal
/// `equals`, and the values to bind in order.
fn states_where(
    select: &str,
    aggregate_type: &str,
    equals: &[(String, String)],
) -> Result<(String, Vec<String>), StoreError> {
    let mut sql = format!("{select} FROM aggregate_states WHERE aggregate_type = ?");
    let mut binds: Vec<String> = vec![aggregate_type.to_string()];
    for (field, value) in equals {
        sql.push_str(&format!(" AND json_extract(state, '{}') = ?", json_field(field)?));
        binds.push(value.clone());
    }
    Ok((sql, binds))
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter().map(stored_event).collect()
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = ? ORDER BY aggregate_id, sequence"
        ))
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter().map(stored_event).collect()
    }

    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
        commit_units(self, units).await
    }

    async fn prune_handled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Marks are RFC 3339 text in UTC, which sorts as the times do (to the second).
        let pruned = sqlx::query("DELETE FROM handled_messages WHERE handled_at < ?")
            .bind(before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(pruned.rows_affected())
    }

    async fn prune_aggregates(
        &self,
        aggregate_type: &str,
        before: DateTime<Utc>,
        status: Option<&str>,
    ) -> Result<u64, StoreError> {
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let doomed = "aggregate_type = ? AND updated_at < ? AND (? IS NULL OR json_extract(state, '$.status') = ?)";
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage_error)?;
        sqlx::query(&format!(
            "DELETE FROM events WHERE aggregate_type = ? AND aggregate_id IN
                 (SELECT aggregate_id FROM aggregate_states WHERE {doomed})"
        ))
        .bind(aggregate_type)
        .bind(aggregate_type)
        .bind(&before)
        .bind(status)
        .bind(status)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        let pruned = sqlx::query(&format!("DELETE FROM aggregate_states WHERE {doomed}"))
            .bind(aggregate_type)
            .bind(&before)
            .bind(status)
            .bind(status)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        Ok(pruned.rows_affected())
    }

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM handled_messages WHERE consumer = ? AND message_id = ?")
            .bind(consumer)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(row.is_some())
    }

    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let row = sqlx::query(SELECT_SNAPSHOT)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.map(|row| {
            let state: &str = row.get(1);
            Ok((
                row.get(0),
                serde_json::from_str(state).map_err(|e| StoreError::Other(e.to_string()))?,
            ))
        })
        .transpose()
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let row =
            sqlx::query("SELECT version, state FROM aggregate_states WHERE aggregate_type = ? AND aggregate_id = ?")
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?;
        row.map(|row| {
            let state: String = row.get(1);
            Ok((
                row.get(0),
                serde_json::from_str(&state).map_err(|e| StoreError::Other(e.to_string()))?,
            ))
        })
        .transpose()
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
        let mut statement = sqlx::query(&sql);
        for bind in &binds {
            statement = statement.bind(bind);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(storage_error)?;
        rows.iter()
            .map(|row| serde_json::from_str(row.get::<&str, _>(0)).map_err(|e| StoreError::Other(e.to_string())))
            .collect()
    }

    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError> {
        let (sql, binds) = states_where("SELECT COUNT(*)", aggregate_type, equals)?;
        let mut statement = sqlx::query_scalar(&sql);
        for bind in &binds {
            statement = statement.bind(bind);
        }
        statement.fetch_one(&self.pool).await.map_err(storage_error)
    }

    async fn outbox_batch(&self, limit: i64) -> Result<Vec<(i64, OutgoingRecord)>, StoreError> {
        let rows = sqlx::query("SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                let headers: String = row.get(4);
                (
                    row.get(0),
                    OutgoingRecord {
                        topic: row.get(1),
                        key: row.get(2),
                        value: row.get(3),
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                    },
                )
            })
            .collect())
    }

    async fn outbox_delete(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!("DELETE FROM outbox WHERE id IN ({placeholders})");
        let mut statement = sqlx::query(&sql);
        for id in ids {
            statement = statement.bind(id);
        }
        statement.execute(&self.pool).await.map_err(storage_error)?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(storage_error)
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// A SQLite store belongs to one process.
    async fn claim_outbox(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}
