//! The event store in PostgreSQL: one schema per service, so a service never
//! reads another's tables. The schema and its tables are created on start.
//!
//! A process's stores share one pool ([`connect`]): its connections are
//! bounded by one setting, not by how many stores it opens. So no connection
//! is set to a schema; every statement names its tables with its store's
//! schema ([`PostgresEventStore::sql`]). (The tables are created under a
//! `SET LOCAL search_path`, which ends with its transaction.)
//!
//! Several replicas of a service share one schema. Appends stay safe through the
//! unique (aggregate, sequence) key; the outbox is relayed by one replica at a
//! time, the holder of a lease row with a deadline on the server's clock, so
//! messages leave in order: outbox ids are taken under a per-schema lock held
//! until commit, so they follow commit order. The holder renews it on every relay round; one that
//! dies, freezes or is cut off stops renewing, and another replica takes over
//! once the deadline passes ([`OUTBOX_LEASE`]), in seconds, not when the server
//! notices a dead session.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use sqlx::postgres::PgPool;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Connection, Executor, Row};
use tokio::sync::Notify;

use campusg_runtime::bus::OutgoingRecord;
use campusg_runtime::store::{BatchRows, EventOfType, EventStore, StateQuery, StoreError, StoredEvent, UnitOfWork};

use crate::sql_commit::{settle, steps, CommitStatements, NotWritten};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    global_position BIGSERIAL PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    event_version TEXT NOT NULL,
    payload JSONB NOT NULL,
    correlation_id TEXT,
    causation_id TEXT,
    recorded_at TIMESTAMPTZ NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE IF NOT EXISTS aggregate_states (
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    state JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    inserted BIGSERIAL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    key TEXT,
    value TEXT NOT NULL,
    headers JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS handled_messages (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    handled_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS handled_messages_by_time ON handled_messages (handled_at);
CREATE TABLE IF NOT EXISTS outbox_lease (
    id INT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#;

/// How long the outbox lease lasts unrenewed. The relay renews it at least
/// every second (its idle poll), so a live holder keeps it; a holder frozen or
/// cut off loses it this long after its last renewal.
pub const OUTBOX_LEASE: Duration = Duration::from_secs(10);

pub struct PostgresEventStore {
    pool: PgPool,
    schema: String,
    /// The commit protocol's statements, written once for this schema.
    commit: [String; 5],
    outbox_signal: Arc<Notify>,
    /// This store's name on the outbox lease: one per process and store.
    lease_holder: String,
    lease_term: Duration,
}

fn storage_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("40") || c.starts_with("08")) => {
            StoreError::Unavailable(error.to_string())
        }
        // Class 22, data exception: a value PostgreSQL will never store, such as
        // `\u0000` in JSON text or a number out of range.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            StoreError::Permanent(error.to_string())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

/// The text of a state field; `a.b` is field `b` of object `a`.
fn json_field(field: &str) -> Result<String, StoreError> {
    if campusg_runtime::store::is_field_path(field) {
        Ok(format!("state #>> '{{{}}}'", field.replace('.', ",")))
    } else {
        Err(StoreError::Other(format!("`{field}` is not a state field name")))
    }
}

/// The name of a store of its own (`open`) in `pg_stat_activity`, and of its
/// outbox lease holder.
fn application_name(schema: &str) -> String {
    format!("campusg-{schema}")
}

/// The name of a process's pool in `pg_stat_activity`: its schema prefix and
/// what the process runs (`campusg-campusg:payment-2`), so an operator sees
/// whose sessions they are.
pub fn pool_name(schema_prefix: &str, process: &str) -> String {
    format!("campusg-{schema_prefix}:{process}")
}

/// Whether `schema` is a plain identifier, safe to splice into SQL.
fn valid_schema_name(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A pool of at most `max_connections` to `database_url`, for every store a
/// process opens; its sessions are named `application_name` in
/// `pg_stat_activity`.
pub async fn connect(database_url: &str, max_connections: u32, application_name: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(storage_error)?
        .application_name(application_name)
        // Each store's statements are their own (they name its schema): room
        // for every store a process may open.
        .statement_cache_capacity(STATEMENTS_PER_CONNECTION);
    // Idle connections go back: a deployment runs many processes against one
    // server's connection limit (100 by default).
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(storage_error)
}

/// How many prepared statements a connection keeps: about twenty per store,
/// for the ten schemas the API's process opens. (The queries built from a
/// request's filters are not kept.)
const STATEMENTS_PER_CONNECTION: usize = 250;

impl PostgresEventStore {
    /// Connects to `database_url` with a pool of its own (tests, and tools
    /// that open one store), creating `schema` and its tables if needed.
    pub async fn open(database_url: &str, schema: &str) -> Result<PostgresEventStore, StoreError> {
        let pool = connect(database_url, 4, &application_name(schema)).await?;
        PostgresEventStore::open_in(pool, schema).await
    }

    /// The store in `schema`, on a pool other stores may share, creating the
    /// schema and its tables if needed.
    pub async fn open_in(pool: PgPool, schema: &str) -> Result<PostgresEventStore, StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Other(format!(
                "`{schema}` is not a schema name (lowercase letters, digits, `_`)"
            )));
        }
        let mut tx = pool.begin().await.map_err(storage_error)?;
        // A session that holds a lock here and never ends its transaction
        // (a client frozen mid-start) fails a start instead of stalling it.
        sqlx::raw_sql("SET LOCAL lock_timeout = '60s'")
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        // Replicas starting together would race on CREATE; one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('campusg-migrate'))")
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        sqlx::raw_sql(&format!("SET LOCAL search_path TO {schema}"))
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await.map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        let in_schema = |template: &str| template.replace("{schema}", schema);
        Ok(PostgresEventStore {
            pool,
            schema: schema.to_string(),
            commit: [
                in_schema(INSERT_HANDLED),
                in_schema(APPEND_EVENTS),
                in_schema(UPSERT_STATES),
                in_schema(LOCK_OUTBOX),
                in_schema(INSERT_OUTBOX),
            ],
            outbox_signal: Arc::new(Notify::new()),
            lease_holder: format!("{}/{}", application_name(schema), uuid::Uuid::new_v4()),
            lease_term: OUTBOX_LEASE,
        })
    }

    /// `template` with its tables in this store's schema (`{schema}.events`).
    fn sql(&self, template: &str) -> String {
        template.replace("{schema}", &self.schema)
    }

    /// The same store, holding the outbox lease under `instance`'s name: a
    /// replica restarted under its `--instance-id` takes its own lease back at
    /// once instead of waiting for it to lapse. Two live processes must not
    /// share an instance id (Kafka's static membership asks the same).
    pub fn leasing_as(mut self, instance: &str) -> PostgresEventStore {
        self.lease_holder = format!("{}/{instance}", self.lease_holder.split('/').next().unwrap_or_default());
        self
    }

    /// The same store with an outbox lease of `term` (tests shorten it).
    pub fn with_lease_term(mut self, term: Duration) -> PostgresEventStore {
        self.lease_term = term;
        self
    }

    /// Ends the sessions of every process pool under `schema_prefix` (a
    /// test's or a bench's systems, before their schemas are dropped: a
    /// process stopped mid-transaction can leave its session holding locks).
    pub async fn end_sessions(database_url: &str, schema_prefix: &str) -> Result<(), StoreError> {
        let mut connection = PgConnection::connect(database_url).await.map_err(storage_error)?;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE starts_with(application_name, $1) AND pid <> pg_backend_pid()",
        )
        .bind(pool_name(schema_prefix, ""))
        .execute(&mut connection)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    /// Drops `schema` and everything in it (tests clean up with this).
    pub async fn drop_schema(database_url: &str, schema: &str) -> Result<(), StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Other(format!("`{schema}` is not a schema name")));
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(database_url)
            .await
            .map_err(storage_error)?;
        // A process that stopped mid-transaction (a runtime dropped with a commit
        // in flight) can leave its session holding locks; end the schema's
        // sessions first, or the drop would wait for them forever.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(application_name(schema))
        .execute(&pool)
        .await
        .map_err(storage_error)?;
        pool.execute("SET lock_timeout = '30s'").await.map_err(storage_error)?;
        pool.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
            .await
            .map_err(storage_error)?;
        pool.close().await;
        Ok(())
    }
}

const SELECT_EVENTS: &str = "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, correlation_id, causation_id, recorded_at FROM {schema}.events";

/// The payload as text: parsed once, by the reader, into the event's type.
const SELECT_TYPE_EVENTS: &str = "SELECT aggregate_id, sequence, payload::text, recorded_at FROM {schema}.events";

/// The read model, only if no event is newer: the events' unique index
/// answers the maximum at once.
const SELECT_SNAPSHOT: &str = "SELECT s.version, s.state FROM {schema}.aggregate_states s
     WHERE s.aggregate_type = $1 AND s.aggregate_id = $2
       AND s.version = (SELECT MAX(e.sequence) FROM {schema}.events e
                        WHERE e.aggregate_type = $1 AND e.aggregate_id = $2)";

fn stored_event(row: &sqlx::postgres::PgRow) -> StoredEvent {
    StoredEvent {
        global_position: row.get(0),
        aggregate_type: row.get(1),
        aggregate_id: row.get(2),
        sequence: row.get(3),
        event_type: row.get(4),
        event_version: row.get(5),
        payload: row.get(6),
        correlation_id: row.get(7),
        causation_id: row.get(8),
        recorded_at: row.get::<DateTime<Utc>, _>(9),
    }
}

fn event_of_type(row: &sqlx::postgres::PgRow) -> EventOfType {
    EventOfType {
        aggregate_id: row.get(0),
        sequence: row.get(1),
        payload: row.get(2),
        recorded_at: row.get(3),
    }
}

// PostgreSQL's statements of the commit protocol, in `{schema}`.
const INSERT_HANDLED: &str = "INSERT INTO {schema}.handled_messages (consumer, message_id, handled_at)
     SELECT item ->> 'consumer', item ->> 'message_id', (item ->> 'at')::timestamptz
     FROM jsonb_array_elements($1) AS item
     ON CONFLICT DO NOTHING";
const APPEND_EVENTS: &str = "INSERT INTO {schema}.events (aggregate_type, aggregate_id, sequence, event_type,
                         event_version, payload, correlation_id, causation_id, recorded_at)
     SELECT item ->> 'aggregate_type', item ->> 'aggregate_id', (item ->> 'sequence')::bigint,
            item ->> 'event_type', item ->> 'event_version', item -> 'payload',
            item ->> 'correlation_id', item ->> 'causation_id', (item ->> 'at')::timestamptz
     FROM jsonb_array_elements($1) WITH ORDINALITY AS rows (item, position) ORDER BY position";
const UPSERT_STATES: &str = "INSERT INTO {schema}.aggregate_states AS stored
         (aggregate_type, aggregate_id, version, state, updated_at)
     SELECT item ->> 'aggregate_type', item ->> 'aggregate_id', (item ->> 'version')::bigint,
            item -> 'state', (item ->> 'at')::timestamptz
     FROM jsonb_array_elements($1) AS item
     ON CONFLICT (aggregate_type, aggregate_id)
     DO UPDATE SET version = excluded.version, state = excluded.state, updated_at = excluded.updated_at
     WHERE stored.version <= excluded.version";
// Ids come from a sequence when a row is inserted, not when it commits: two
// replicas could commit their rows out of id order, and the relay see a
// later commit's rows before an earlier one's. Taking ids under this store's
// lock, held until the commit is visible, makes id order commit order.
const LOCK_OUTBOX: &str = "SELECT pg_advisory_xact_lock(hashtext('{schema}.outbox'))";
const INSERT_OUTBOX: &str = "INSERT INTO {schema}.outbox (topic, key, value, headers)
     SELECT item ->> 'topic', item ->> 'key', item ->> 'value', item -> 'headers'
     FROM jsonb_array_elements($1) WITH ORDINALITY AS rows (item, position) ORDER BY position";

impl PostgresEventStore {
    /// Runs the commit protocol's steps in one transaction.
    async fn write(&self, rows: &BatchRows<'_>) -> Result<(), NotWritten<sqlx::Error>> {
        let [insert_handled, append_events, upsert_states, lock_outbox, insert_outbox] = &self.commit;
        let statements = CommitStatements {
            insert_handled,
            append_events,
            upsert_states,
            lock_outbox: Some(lock_outbox),
            insert_outbox,
        };
        let mut tx = self.pool.begin().await.map_err(NotWritten::Database)?;
        for step in steps(&statements, rows) {
            let mut statement = sqlx::query(step.statement);
            if let Some(rows) = step.rows {
                statement = statement.bind(Json(rows));
            }
            let outcome = statement.execute(&mut *tx).await.map(|done| done.rows_affected());
            step.judge(outcome, is_unique_violation)?;
        }
        tx.commit().await.map_err(NotWritten::Database)
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `select` over the read models of `aggregate_type` whose fields equal
/// `equals`, and the values to bind in order.
fn states_where(
    select: &str,
    schema: &str,
    aggregate_type: &str,
    equals: &[(String, String)],
) -> Result<(String, Vec<String>), StoreError> {
    let mut sql = format!("{select} FROM {schema}.aggregate_states WHERE aggregate_type = $1");
    let mut binds: Vec<String> = vec![aggregate_type.to_string()];
    for (field, value) in equals {
        binds.push(value.clone());
        sql.push_str(&format!(" AND {} = ${}", json_field(field)?, binds.len()));
    }
    Ok((sql, binds))
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        )))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(rows.iter().map(stored_event).collect())
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<EventOfType>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "{SELECT_TYPE_EVENTS} WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
        )))
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(rows.iter().map(event_of_type).collect())
    }

    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
        let rows = BatchRows::of(&units);
        let written = self.write(&rows).await;
        let queued = !rows.outbox.is_empty();
        settle(self, &units, queued, written, storage_error, &self.outbox_signal).await
    }

    async fn prune_handled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let pruned = sqlx::query(&self.sql("DELETE FROM {schema}.handled_messages WHERE handled_at < $1"))
            .bind(before)
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
        let doomed = "aggregate_type = $1 AND updated_at < $2 AND ($3::text IS NULL OR state ->> 'status' = $3)";
        let mut tx = self.pool.begin().await.map_err(storage_error)?;
        sqlx::query(&self.sql(&format!(
            "DELETE FROM {{schema}}.events WHERE aggregate_type = $1 AND aggregate_id IN
                 (SELECT aggregate_id FROM {{schema}}.aggregate_states WHERE {doomed})"
        )))
        .bind(aggregate_type)
        .bind(before)
        .bind(status)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        let pruned = sqlx::query(&self.sql(&format!("DELETE FROM {{schema}}.aggregate_states WHERE {doomed}")))
            .bind(aggregate_type)
            .bind(before)
            .bind(status)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        Ok(pruned.rows_affected())
    }

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT 1 FROM {schema}.handled_messages WHERE consumer = $1 AND message_id = $2"))
                .bind(consumer)
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(row.is_some())
    }

    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let row = sqlx::query(&self.sql(SELECT_SNAPSHOT))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT version, state FROM {schema}.aggregate_states WHERE aggregate_type = $1 AND aggregate_id = $2",
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn query_states(&self, aggregate_type: &str, query: &StateQuery) -> Result<Vec<Value>, StoreError> {
        let (mut sql, binds) = states_where("SELECT state", &self.schema, aggregate_type, &query.equals)?;
        match &query.order_by {
            Some(field) => sql.push_str(&format!(" ORDER BY {}", json_field(field)?)),
            None => sql.push_str(" ORDER BY inserted"),
        }
        if query.descending {
            sql.push_str(" DESC");
        }
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        sql.push_str(&format!(" OFFSET {}", query.offset.max(0)));
        // Its text varies with the filters and the page: not worth keeping.
        let mut statement = sqlx::query(&sql).persistent(false);
        for bind in &binds {
            statement = statement.bind(bind);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(storage_error)?;
        Ok(rows.iter().map(|row| row.get::<Value, _>(0)).collect())
    }

    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError> {
        let (sql, binds) = states_where("SELECT COUNT(*)", &self.schema, aggregate_type, equals)?;
        let mut statement = sqlx::query_scalar(&sql).persistent(false);
        for bind in &binds {
            statement = statement.bind(bind);
        }
        statement.fetch_one(&self.pool).await.map_err(storage_error)
    }

    async fn outbox_batch(&self, limit: i64) -> Result<Vec<(i64, OutgoingRecord)>, StoreError> {
        let rows =
            sqlx::query(&self.sql("SELECT id, topic, key, value, headers FROM {schema}.outbox ORDER BY id LIMIT $1"))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                let headers: Value = row.get(4);
                (
                    row.get(0),
                    OutgoingRecord {
                        topic: row.get(1),
                        key: row.get(2),
                        value: row.get(3),
                        headers: serde_json::from_value(headers).unwrap_or_default(),
                    },
                )
            })
            .collect())
    }

    async fn outbox_delete(&self, ids: &[i64]) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DELETE FROM {schema}.outbox WHERE id = ANY($1)"))
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(&self.sql("SELECT COUNT(*) FROM {schema}.outbox"))
            .fetch_one(&self.pool)
            .await
            .map_err(storage_error)
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    async fn claim_outbox(&self) -> Result<bool, StoreError> {
        // Taken if free or lapsed, renewed if ours; the server's clock decides.
        let held = sqlx::query(&self.sql(
            "INSERT INTO {schema}.outbox_lease AS lease (id, holder, expires_at)
             VALUES (1, $1, clock_timestamp() + make_interval(secs => $2))
             ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
             WHERE lease.holder = EXCLUDED.holder OR lease.expires_at < clock_timestamp()
             RETURNING holder",
        ))
        .bind(&self.lease_holder)
        .bind(self.lease_term.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(held.is_some())
    }
}
