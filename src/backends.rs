//! Opening the bus and the event stores the settings name: the embedded log and
//! SQLite files by default, Kafka and PostgreSQL when given. Nothing above this
//! module knows which it got.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use campusg_adapters::embedded_log::EmbeddedLog;
use campusg_adapters::kafka_bus::{security_settings_from, KafkaBus, KafkaSettings};
use campusg_adapters::postgres_store::PostgresEventStore;
use campusg_adapters::sqlite_store::SqliteEventStore;
use campusg_runtime::bus::{backoff, BusError, MessageBus};
use campusg_runtime::deliver_twice::DeliveringTwice;
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
            let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
            let mut attempt = 0;
            loop {
                match bus.ensure_topics(catalog).await {
                    Ok(()) => return Ok(Arc::new(bus)),
                    Err(error @ (BusError::Unavailable(_) | BusError::Other(_)))
                        if tokio::time::Instant::now() < deadline =>
                    {
                        attempt += 1;
                        tracing::warn!(kafka = %servers, error = %error, attempt, "waiting for Kafka");
                        tokio::time::sleep(backoff(attempt).max(Duration::from_millis(500))).await;
                    }
                    Err(error) => return Err(error).with_context(|| format!("Kafka at {servers} is not usable")),
                }
            }
        }
    }
}

/// Opens one service's event store. An unreachable PostgreSQL is waited for.
pub async fn open_store(backends: &Backends, service: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    match &backends.database_url {
        None => {
            let path = backends.store_path(service);
            let store = SqliteEventStore::open(&path)
                .await
                .with_context(|| format!("cannot open the {service} event store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
        Some(url) => {
            let schema = backends.schema_of(service);
            let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
            let mut attempt = 0;
            loop {
                match PostgresEventStore::open(url, &schema).await {
                    Ok(store) => {
                        return Ok(Arc::new(match &backends.instance_id {
                            Some(instance) => store.leasing_as(instance),
                            None => store,
                        }))
                    }
                    Err(error @ StoreError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                        attempt += 1;
                        tracing::warn!(schema = %schema, error = %error, attempt, "waiting for PostgreSQL");
                        tokio::time::sleep(backoff(attempt).max(Duration::from_millis(500))).await;
                    }
                    Err(error) => {
                        return Err(error)
                            .with_context(|| format!("cannot open the {service} event store in schema {schema}"))
                    }
                }
            }
        }
    }
}
