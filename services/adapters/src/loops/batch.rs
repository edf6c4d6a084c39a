//! Batches on the SQLite store: a poll's work stored whole at its end, or not at all.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use campusg_runtime::batch::*;
use campusg_runtime::bus::OutgoingRecord;
use campusg_runtime::store::{
    AggregateChange, Cause, EventStore, HandledMessage, NewEvent, StateQuery, StoreError, UnitOfWork,
};

use crate::sqlite_store::SqliteEventStore;

async fn stores() -> (tempfile::TempDir, Arc<dyn EventStore>, Arc<dyn EventStore>) {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.path().join("store.db")).await.unwrap());
    let batching = BatchingStore::wrap(inner.clone());
    (dir, inner, batching)
}

/// A unit that appends one event to `id` after `expected_version`, caused
/// by `message`, and sends one record.
fn unit(id: &str, expected_version: i64, message: &str) -> UnitOfWork {
    let mut unit = UnitOfWork::new(Cause {
        correlation_id: "saga".into(),
        causation_id: Some(message.into()),
        source: "test",
        at: Utc::now(),
        handled: Some(HandledMessage {
            consumer: "group".into(),
            message_id: message.into(),
        }),
    });
    unit.changes.push(AggregateChange {
        aggregate_type: "thing".into(),
        aggregate_id: id.into(),
        expected_version,
        events: vec![NewEvent {
            event_type: "thing.changed".into(),
            event_version: "1".into(),
            payload: json!({"by": message}).into(),
        }],
        state: json!({"version": expected_version + 1}).into(),
    });
    unit.outbox.push(OutgoingRecord {
        topic: "things".into(),
        key: Some(id.into()),
        value: json!({"by": message}).to_string(),
        headers: vec![("type".into(), "thing.changed".into())],
    });
    unit
}

#[tokio::test]
async fn a_batch_reads_through_what_it_holds_and_stores_it_all_at_the_end() {
    let (_dir, inner, batching) = stores().await;

    in_batch(&batching, async {
        batching.commit(unit("x", 0, "m1")).await?;
        assert_eq!(batching.load("thing", "x").await?.len(), 1);
        assert_eq!(batching.state("thing", "x").await?.unwrap().0, 1);
        assert!(batching.has_handled("group", "m1").await?);
        assert!(
            inner.load("thing", "x").await?.is_empty(),
            "nothing is stored before the end"
        );
        batching.commit(unit("x", 1, "m2")).await?;
        batching.commit(unit("y", 0, "m3")).await?;
        Ok::<(), StoreError>(())
    })
    .await
    .unwrap();

    let events = inner.load("thing", "x").await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(events[1].payload, json!({"by": "m2"}));
    assert_eq!(
        inner.state("thing", "x").await.unwrap().unwrap(),
        (2, json!({"version": 2}))
    );
    assert!(inner.has_handled("group", "m3").await.unwrap());
    let outbox: Vec<String> = inner
        .outbox_batch(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.value)
        .collect();
    assert_eq!(outbox, [r#"{"by":"m1"}"#, r#"{"by":"m2"}"#, r#"{"by":"m3"}"#]);
}

#[tokio::test]
async fn a_batch_the_store_refuses_stores_nothing() {
    let (_dir, inner, batching) = stores().await;
    inner.commit(unit("x", 0, "elsewhere")).await.unwrap();

    let refused = in_batch(&batching, async {
        batching.commit(unit("y", 0, "m1")).await?;
        // Stale: x is at version 1 in the store, which the batch never read.
        batching.commit(unit("x", 0, "m2")).await?;
        Ok::<(), StoreError>(())
    })
    .await
    .unwrap_err();

    assert!(
        matches!(Some(&refused), Some(StoreError::Conflict { aggregate_id, .. }) if aggregate_id == "x"),
        "{refused}"
    );
    assert!(inner.load("thing", "y").await.unwrap().is_empty());
    assert!(!inner.has_handled("group", "m1").await.unwrap());
    assert_eq!(inner.outbox_batch(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_message_handled_twice_in_one_batch_is_recognised() {
    let (_dir, inner, batching) = stores().await;

    let second = in_batch(&batching, async {
        batching.commit(unit("x", 0, "m1")).await?;
        Ok::<_, StoreError>(batching.commit(unit("y", 0, "m1")).await)
    })
    .await
    .unwrap();

    assert!(matches!(second, Err(StoreError::AlreadyHandled)));
    assert_eq!(inner.load("thing", "x").await.unwrap().len(), 1);
    assert!(inner.load("thing", "y").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_message_handled_before_the_batch_makes_the_store_refuse_it() {
    let (_dir, inner, batching) = stores().await;
    inner.commit(unit("x", 0, "m1")).await.unwrap();

    let refused = in_batch(&batching, async {
        assert!(!batching.has_handled("group", "m1").await?, "answered without a read");
        batching.commit(unit("y", 0, "m2")).await?;
        batching.commit(unit("z", 0, "m1")).await?;
        Ok::<(), StoreError>(())
    })
    .await
    .unwrap_err();

    assert!(matches!(Some(&refused), Some(StoreError::AlreadyHandled)), "{refused}");
    assert!(inner.load("thing", "y").await.unwrap().is_empty());
    assert!(inner.load("thing", "z").await.unwrap().is_empty());
    assert!(inner.has_handled("group", "m1").await.unwrap());
}

#[tokio::test]
async fn a_commit_refused_in_the_middle_fails_the_whole_batch() {
    let (_dir, inner, batching) = stores().await;
    inner.commit(unit("x", 0, "m1")).await.unwrap();

    let refused = in_batch(&batching, async {
        batching.commit(unit("y", 0, "m1")).await?; // a duplicate of m1
        let asked = batching.query_states("thing", &StateQuery::default()).await;
        assert!(matches!(asked, Err(StoreError::Unavailable(_))), "{asked:?}");
        // A handler that shrugs the error off does not save the batch.
        batching.commit(unit("z", 0, "m2")).await?;
        Ok::<(), StoreError>(())
    })
    .await;

    assert!(refused.is_err());
    assert!(inner.load("thing", "z").await.unwrap().is_empty());
    assert!(!inner.has_handled("group", "m2").await.unwrap());
}

#[tokio::test]
async fn outside_a_batch_every_commit_is_stored_at_once() {
    let (_dir, inner, batching) = stores().await;

    batching.commit(unit("x", 0, "m1")).await.unwrap();

    assert_eq!(inner.load("thing", "x").await.unwrap().len(), 1);
    assert!(matches!(
        batching.commit(unit("x", 0, "m2")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        batching.commit(unit("x", 1, "m1")).await,
        Err(StoreError::AlreadyHandled)
    ));
}
