//! Opening the bus and the event stores the settings name: the embedded log and
//! SQLite files by default, Kafka and PostgreSQL when given. Nothing above this
//! module knows which it got.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::OnceCell;

use campusg_adapters::embedded_log::EmbeddedLog;
use campusg_adapters::kafka_bus::{security_settings_from, KafkaBus, KafkaSettings};
use campusg_adapters::postgres_store::{self, PgPool, PostgresEventStore};
use campusg_adapters::sqlite_store::SqliteEventStore;
use campusg_runtime::bus::{backoff, BusError, MessageBus};
use campusg_runtime::deliver_twice::DeliveringTwice;
use campusg_runtime::service::StoreReads;
use campusg_runtime::store::{EventStore, StoreError};
use campusg_runtime::topics::TopicCatalog;

use crate::settings::Backends;

/// How long start-up waits for Kafka or PostgreSQL before giving up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

/// Connects to the bus, creating the catalog's topics that are missing. An
/// unreachable broker is waited for, with a log line per attempt.
pub async fn connect_bus(backends: &Backends, catalog: &TopicCatalog) -> anyhow::Result<Arc<dyn MessageBus>> {
    let bus = connect_chosen_bus(backends, catalog).await?;
    if backends.deliver_twice {
        tracing::warn!("every record is delivered twice on purpose (--deliver-twice)");
        return Ok(Arc::new(DeliveringTwice::new(bus)));
    }
    Ok(bus)
}

async fn connect_chosen_bus(backends: &Backends, catalog: &TopicCatalog) -> anyhow::Result<Arc<dyn MessageBus>> {
    match &backends.kafka {
        None => {
            let path = backends.log_path();
            let log = EmbeddedLog::open(&path, catalog)
                .await
                .with_context(|| format!("cannot open the embedded log at {}", path.display()))?;
            Ok(Arc::new(log))
        }
        Some(servers) => {
            let bus = KafkaBus::connect(KafkaSettings {
                bootstrap_servers: servers.clone(),
                replication_factor: backends.kafka_replication_factor,
                instance_id: backends.instance_id.clone(),
                fetch_wait_ms: backends.kafka_fetch_wait_ms,
                security: security_settings_from(std::env::vars()),
            })?;
            let unreachable = |error: &BusError| matches!(error, BusError::Unavailable(_) | BusError::Other(_));
            waiting_for("Kafka", servers, unreachable, || bus.ensure_topics(catalog))
                .await
                .with_context(|| format!("Kafka at {servers} is not usable"))?;
            Ok(Arc::new(bus))
        }
    }
}

/// Opens one service's event store, for a command that needs one. A process
/// that opens several opens them through one [`StoreOpener`].
pub async fn open_store(backends: &Backends, service: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    StoreOpener::for_command(backends).open(service).await
}

/// Opens the event stores of one process: SQLite files, or PostgreSQL schemas
/// that share one pool of at most `connections`, so that what a process asks
/// of the server's connection limit does not grow with the stores it opens.
pub struct StoreOpener {
    backends: Backends,
    connections: u32,
    /// What the process runs, in its pool's name.
    process: String,
    pool: OnceCell<PgPool>,
}

impl StoreOpener {
    /// For a process that runs `process` (its roles, or its instance id),
    /// with at most `connections` to PostgreSQL.
    pub fn new(backends: &Backends, connections: u32, process: &str) -> StoreOpener {
        StoreOpener {
            backends: backends.clone(),
            connections,
            process: process.to_string(),
            pool: OnceCell::new(),
        }
    }

    /// For an operator's command (`campusg ledger check`, `dlq`, ...).
    pub fn for_command(backends: &Backends) -> StoreOpener {
        StoreOpener::new(backends, backends.database_connections(), "command")
    }

    /// The store of `service`, for a caller that reads it often.
    pub async fn open(&self, service: &str) -> anyhow::Result<Arc<dyn EventStore>> {
        self.open_read(service, StoreReads::Often).await
    }

    /// The store of `service`, read as `reads` says (what an embedded store
    /// keeps of it in memory). An unreachable PostgreSQL is waited for.
    pub async fn open_read(&self, service: &str, reads: StoreReads) -> anyhow::Result<Arc<dyn EventStore>> {
        let backends = &self.backends;
        let Some(url) = &backends.database_url else {
            let path = backends.store_path(service);
            let store = SqliteEventStore::open_read(&path, reads)
                .await
                .with_context(|| format!("cannot open the {service} event store at {}", path.display()))?;
            return Ok(Arc::new(store));
        };
        let schema = backends.schema_of(service);
        let unavailable = |error: &StoreError| matches!(error, StoreError::Unavailable(_));
        let opened = waiting_for("PostgreSQL", &schema, unavailable, || async {
            let pool = self.pool(url).await?;
            PostgresEventStore::open_in(pool, &schema).await
        })
        .await
        .with_context(|| format!("cannot open the {service} event store in schema {schema}"))?;
        Ok(Arc::new(match &backends.instance_id {
            Some(instance) => opened.leasing_as(instance),
            None => opened,
        }))
    }

    /// The process's pool, connected by the first store that needs it.
    async fn pool(&self, url: &str) -> Result<PgPool, StoreError> {
        let name = postgres_store::pool_name(&self.backends.schema_prefix, &self.process);
        self.pool
            .get_or_try_init(|| postgres_store::connect(url, self.connections, &name))
            .await
            .cloned()
    }
}

/// Runs `attempt` until it succeeds, fails with an error that is not
/// `transient`, or `what` (at `at`) has been unreachable for
/// [`STARTUP_PATIENCE`], with a log line per attempt.
async fn waiting_for<T, E, F, Fut>(what: &str, at: &str, transient: impl Fn(&E) -> bool, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    let mut attempts = 0;
    loop {
        match attempt().await {
            Err(error) if transient(&error) && tokio::time::Instant::now() < deadline => {
                attempts += 1;
                tracing::warn!(at, error = %error, attempt = attempts, "waiting for {what}");
                tokio::time::sleep(backoff(attempts).max(Duration::from_millis(500))).await;
            }
            done => return done,
        }
    }
}
