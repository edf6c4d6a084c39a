//! The consumer loop on the embedded log and the SQLite store: panics, failures for now and parked keys.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_es::Aggregate;
use tokio_util::sync::CancellationToken;

use campusg_domain::ids::OrderId;
use campusg_domain::messages::{Message, StopOrderTimer};
use campusg_runtime::batch::BatchingStore;
use campusg_runtime::bus::{MessageBus, OutgoingRecord};
use campusg_runtime::clock::SystemClock;
use campusg_runtime::consumer::*;
use campusg_runtime::envelope::Envelope;
use campusg_runtime::health::HealthBoard;
use campusg_runtime::metrics::Metrics;
use campusg_runtime::parking::{ParkedKey, PARKED};
use campusg_runtime::service::{ServiceDeps, ServiceDescription, StoreReads};
use campusg_runtime::store::{Contracts, EventStore, StateQuery};

use crate::embedded_log::EmbeddedLog;
use crate::sqlite_store::SqliteEventStore;

/// A service that handles `stop_order_timer` alone.
const TIMER_TEST: ServiceDescription = ServiceDescription {
    name: "timer-test",
    source: "test",
    consumer_group: "timer-test",
    handles: &["stop_order_timer"],
    aggregates: &[],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

/// Handles `stop_order_timer`s: panics on one whose reason is `panic`,
/// fails for now on one whose reason is `unavailable`, and otherwise notes
/// the reason.
#[derive(Default)]
struct Scripted {
    handled: Mutex<Vec<String>>,
}

#[async_trait]
impl MessageHandler for Scripted {
    async fn handle(&self, _envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let Message::StopOrderTimer(stop) = message else {
            return Ok(());
        };
        match stop.reason.as_str() {
            "panic" => panic!("the handler cannot read this"),
            "unavailable" => Err(HandlerError::Unavailable("the store is away".into())),
            reason => {
                self.handled.lock().unwrap().push(reason.to_string());
                Ok(())
            }
        }
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    contracts: Arc<Contracts>,
    handler: Arc<Scripted>,
    consumer: Consumer,
}

async fn rig(reasons: &[&str]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let contracts = Arc::new(Contracts::builtin());
    let bus: Arc<dyn MessageBus> = Arc::new(
        EmbeddedLog::open(&dir.path().join("log.db"), &contracts.topics)
            .await
            .unwrap(),
    );
    // Wrapped as every service's store is, so batches hold their units back.
    let store = BatchingStore::wrap(Arc::new(
        SqliteEventStore::open(&dir.path().join("timer.db")).await.unwrap(),
    ));
    // Each record of its own order, so that one parked key holds back no other.
    let records = reasons
        .iter()
        .enumerate()
        .map(|(i, reason)| {
            let message = Message::StopOrderTimer(StopOrderTimer {
                order_id: OrderId(uuid::Uuid::from_u128(i as u128 + 1)),
                reason: reason.to_string(),
            });
            let envelope = Envelope::wrap(&message, "saga-1", None, "test", chrono::Utc::now());
            OutgoingRecord::from_envelope("timer_commands", &envelope)
        })
        .collect();
    bus.produce(records).await.unwrap();
    let handler = Arc::new(Scripted::default());
    let deps = ServiceDeps {
        store,
        contracts: contracts.clone(),
        clock: Arc::new(SystemClock),
    };
    let consumer = Consumer::for_service(&TIMER_TEST, &deps, bus.clone(), handler.clone());
    Rig {
        _dir: dir,
        contracts,
        handler,
        consumer,
    }
}

/// The dead letters waiting in the outbox (no relay runs here), as payloads.
async fn dead_letters(contracts: &Contracts, store: &dyn EventStore) -> Vec<serde_json::Value> {
    let pending = store.outbox_batch(100).await.unwrap();
    pending
        .into_iter()
        .filter(|(_, record)| record.topic == contracts.topics.dead_letter_topic().name)
        .map(|(_, record)| serde_json::from_str::<serde_json::Value>(&record.value).unwrap()["payload"].clone())
        .collect()
}

#[tokio::test]
async fn a_handler_that_panics_on_a_record_dead_letters_it_and_the_consumer_goes_on() {
    let rig = rig(&["first", "panic", "after"]).await;
    let store = rig.consumer.store.clone();
    let handler = rig.handler.clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rig.consumer.run(shutdown.clone(), HealthBoard::new(), Metrics::new()));

    let deadline = Instant::now() + Duration::from_secs(20);
    while handler.handled.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(*handler.handled.lock().unwrap(), ["first", "after"]);
    let letters = dead_letters(&rig.contracts, store.as_ref()).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains("panicked: the handler cannot read this"), "{reason}");
}

#[tokio::test]
async fn a_handler_that_panics_on_record_after_record_stops_the_consumer_fatally() {
    let reasons = vec!["panic"; MAX_PANIC_STREAK as usize + 5];
    let rig = rig(&reasons).await;

    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        rig.consumer
            .run(CancellationToken::new(), HealthBoard::new(), Metrics::new()),
    )
    .await
    .expect("the consumer gives up");

    let fatal = outcome.unwrap_err();
    assert!(fatal.reason.contains("in a row panicked"), "{fatal}");
}

#[tokio::test]
async fn a_failure_for_now_that_outlasts_the_retry_limit_parks_its_key_and_the_consumer_goes_on() {
    let mut rig = rig(&["unavailable", "after"]).await;
    rig.consumer.config.transient_retry_limit = Duration::from_millis(300);
    let store = rig.consumer.store.clone();
    let handler = rig.handler.clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rig.consumer.run(shutdown.clone(), HealthBoard::new(), Metrics::new()));

    let deadline = Instant::now() + Duration::from_secs(20);
    while handler.handled.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(*handler.handled.lock().unwrap(), ["after"], "another key goes on");
    let parked = store
        .query_states(ParkedKey::TYPE, &StateQuery::default())
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["status"], PARKED);
    assert!(
        parked[0]["first_failure"]
            .as_str()
            .unwrap()
            .contains("the store is away"),
        "{parked:?}"
    );
}

#[tokio::test]
async fn a_record_of_a_parked_key_waits_behind_the_first() {
    let rig = rig(&["panic", "after"]).await;
    // Both records of one order: re-key the second onto the first's order.
    let store = rig.consumer.store.clone();
    let bus = rig.consumer.bus.clone();
    let message = Message::StopOrderTimer(StopOrderTimer {
        order_id: OrderId(uuid::Uuid::from_u128(1)),
        reason: "same order".to_string(),
    });
    let envelope = Envelope::wrap(&message, "saga-1", None, "test", chrono::Utc::now());
    bus.produce(vec![OutgoingRecord::from_envelope("timer_commands", &envelope)])
        .await
        .unwrap();
    let handler = rig.handler.clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rig.consumer.run(shutdown.clone(), HealthBoard::new(), Metrics::new()));

    let deadline = Instant::now() + Duration::from_secs(20);
    while handler.handled.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(
        *handler.handled.lock().unwrap(),
        ["after"],
        "the same order's record waits"
    );
    let parked = store
        .query_states(ParkedKey::TYPE, &StateQuery::default())
        .await
        .unwrap();
    assert_eq!(parked[0]["held"].as_array().unwrap().len(), 2, "{parked:?}");
}
