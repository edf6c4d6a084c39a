//! The floor the system stands on: how fast this machine's bus moves records
//! of the system's own size from a producer to a consumer group, and how fast
//! its event store appends, with nothing of campusg's logic in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use campusg_runtime::bus::{MessageBus, OutgoingRecord, StartFrom, Subscription};
use campusg_runtime::store::{AggregateChange, Cause, NewEvent, UnitOfWork};
use campusg_runtime::topics::TopicCatalog;

use super::closed_loop;
use super::progress::Phase;
use crate::backends::open_store;
use crate::settings::Backends;

/// The store (SQLite file or PostgreSQL schema) the append floor writes to.
pub const FLOOR_SERVICE: &str = "bench_floor";
const FLOOR_TOPIC: &str = "bench_floor";
/// Records per produce call: what the outbox relay sends at once.
const PRODUCE_BATCH: usize = 100;

/// Records held on every topic, to count what a phase produced.
pub async fn records_held(bus: &dyn MessageBus) -> anyhow::Result<i64> {
    Ok(bus.describe_topics().await?.iter().map(|topic| topic.records).sum())
}

/// The mean size of the records the system wrote (value, key and headers),
/// from a sample of up to 2,000 of them across its topics.
pub async fn typical_message_bytes(bus: &dyn MessageBus, catalog: &TopicCatalog) -> anyhow::Result<usize> {
    let mut reader = bus
        .subscribe(Subscription {
            group: None,
            topics: catalog.topics().iter().map(|topic| topic.name.clone()).collect(),
            start: StartFrom::Earliest,
        })
        .await?;
    let (mut records, mut bytes) = (0usize, 0usize);
    while records < 2_000 {
        let batch = reader.poll(500, Duration::from_millis(500)).await?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            records += 1;
            bytes += record.value.len()
                + record.key.as_ref().map_or(0, String::len)
                + record.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        }
    }
    reader.close().await;
    anyhow::ensure!(records > 0, "the system wrote no records to sample");
    Ok(bytes / records)
}

/// Records per second from one producer, in batches as the outbox relay sends
/// them, to one consumer group that commits after each poll as the services do.
/// Timed from the first produce to the last record consumed.
pub async fn bus(bus: Arc<dyn MessageBus>, message_bytes: usize, count: usize) -> anyhow::Result<f64> {
    let phase = Phase::start("bus floor", count);
    let catalog = TopicCatalog::parse(&format!(
        "[defaults]\npartitions = 6\nretention_ms = 604800000\n\
         [[topic]]\nname = \"{FLOOR_TOPIC}\"\n\
         [[topic]]\nname = \"dead_letters\"\ndead_letter = true\npartitions = 1\n"
    ))
    .expect("the floor's catalog is valid");
    bus.ensure_topics(&catalog).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut consumer = bus
        .subscribe(Subscription {
            group: Some(format!("bench-floor-{run}")),
            topics: vec![FLOOR_TOPIC.to_string()],
            start: StartFrom::Latest,
        })
        .await?;
    // A group reads from where it stands when it gets its partitions; a marker
    // sent until one arrives shows that it has them.
    let marker = format!("{run}-ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    'ready: loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bus floor's consumer group got no partitions within 60s"
        );
        bus.produce(vec![record(&marker, 0, message_bytes)]).await?;
        for _ in 0..10 {
            let polled = consumer.poll(100, Duration::from_millis(100)).await?;
            if let Some(last) = polled.last() {
                consumer.commit(&[last.position()]).await?;
            }
            if polled.iter().any(|r| r.key.as_deref() == Some(marker.as_str())) {
                break 'ready;
            }
        }
    }
    let started = Instant::now();
    let producer = {
        let (bus, run) = (bus.clone(), run.clone());
        tokio::spawn(async move {
            for first in (0..count).step_by(PRODUCE_BATCH) {
                let batch = (first..(first + PRODUCE_BATCH).min(count))
                    .map(|i| record(&format!("{run}-{i}"), i, message_bytes))
                    .collect();
                bus.produce(batch).await?;
            }
            anyhow::Ok(())
        })
    };
    let mut consumed = 0;
    while consumed < count {
        let polled = consumer.poll(500, Duration::from_secs(5)).await?;
        anyhow::ensure!(
            !polled.is_empty() || !producer.is_finished(),
            "the bus floor's consumer stopped receiving after {consumed} of {count} records"
        );
        let ours = polled
            .iter()
            .filter(|r| r.key.as_deref().is_some_and(|key| key.starts_with(&run)) && r.key.as_deref() != Some(&marker))
            .count();
        consumed += ours;
        phase.advance(ours as u64);
        let positions: Vec<_> = polled.iter().map(|r| r.position()).collect();
        if !positions.is_empty() {
            consumer.commit(&positions).await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    producer.await.context("the floor's producer panicked")??;
    consumer.close().await;
    phase.finish();
    Ok(count as f64 / seconds)
}

/// A record of `bytes` in all, keyed `key` (which also picks its partition).
fn record(key: &str, i: usize, bytes: usize) -> OutgoingRecord {
    let headers = vec![
        ("message_id".to_string(), uuid::Uuid::new_v4().to_string()),
        ("type".to_string(), "bench.floor".to_string()),
    ];
    let overhead = key.len() + headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + 24;
    let value = json!({"i": i, "pad": "x".repeat(bytes.saturating_sub(overhead))}).to_string();
    OutgoingRecord {
        topic: FLOOR_TOPIC.to_string(),
        key: Some(key.to_string()),
        value,
        headers,
    }
}

/// Events appended per second by `writers` concurrent writers, each commit one
/// event of `count` to a new aggregate with its read model: the least a
/// command's commit does.
pub async fn store(backends: &Backends, writers: usize, count: usize, event_bytes: usize) -> anyhow::Result<f64> {
    let phase = Phase::start("store floor", count);
    let store = open_store(backends, FLOOR_SERVICE).await?;
    let pad = "x".repeat(event_bytes.saturating_sub(40));
    let started = Instant::now();
    closed_loop(&vec![(); writers.max(1)], count, {
        let phase = phase.clone();
        move |()| {
            let (store, pad, phase) = (store.clone(), pad.clone(), phase.clone());
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let mut unit = UnitOfWork::new(Cause::request(id.clone(), "bench", Utc::now()));
                unit.changes.push(AggregateChange {
                    aggregate_type: FLOOR_SERVICE.to_string(),
                    aggregate_id: id,
                    expected_version: 0,
                    events: vec![NewEvent {
                        event_type: "bench.appended".to_string(),
                        event_version: "1".to_string(),
                        payload: json!({"pad": pad}).into(),
                    }],
                    state: json!({"appended": 1}).into(),
                });
                store.commit(unit).await?;
                phase.advance(1);
                Ok(())
            }
        }
    })
    .await?;
    phase.finish();
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
