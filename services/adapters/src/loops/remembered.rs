//! The remembering store on the SQLite store: what it answers from memory
//! can only be too old, and a write after a version too old is refused and
//! makes it read the store again.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use campusg_runtime::remembered::RememberingStore;
use campusg_runtime::store::{AggregateChange, Cause, EventStore, NewEvent, StoreError, UnitOfWork};

use crate::sqlite_store::SqliteEventStore;

/// One event on stream `id` after `expected_version`, its read model
/// naming the version it leads to.
fn filed(id: &str, expected_version: i64) -> UnitOfWork {
    let mut unit = UnitOfWork::new(Cause::request("trace".into(), "test", Utc::now()));
    unit.changes.push(AggregateChange {
        aggregate_type: "stream".into(),
        aggregate_id: id.into(),
        expected_version,
        events: vec![NewEvent {
            event_type: "record".into(),
            event_version: "1".into(),
            payload: json!({}).into(),
        }],
        state: json!({"records": expected_version + 1}).into(),
    });
    unit
}

#[tokio::test]
async fn a_read_model_another_writer_moved_is_answered_too_old_refused_on_write_then_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.db");
    let remembering = RememberingStore::wrap(Arc::new(SqliteEventStore::open(&path).await.unwrap()));
    let elsewhere: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&path).await.unwrap());

    remembering.commit(filed("a", 0)).await.unwrap();
    elsewhere.commit(filed("a", 1)).await.unwrap();
    assert_eq!(
        remembering
            .state("stream", "a")
            .await
            .unwrap()
            .map(|(version, _)| version),
        Some(1),
        "answered from memory: the version it committed, older than the store's"
    );

    let refused = remembering.commit(filed("a", 1)).await.unwrap_err();
    assert!(matches!(refused, StoreError::Conflict { .. }), "{refused:?}");
    let (version, state) = remembering.state("stream", "a").await.unwrap().unwrap();
    assert_eq!(
        (version, state),
        (2, json!({"records": 2})),
        "read from the store again"
    );
    remembering.commit(filed("a", 2)).await.unwrap();
    assert_eq!(
        elsewhere.load("stream", "a").await.unwrap().len(),
        3,
        "no sequence skipped"
    );
}

#[tokio::test]
async fn what_it_committed_it_answers_as_the_store_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.db");
    let remembering = RememberingStore::wrap(Arc::new(SqliteEventStore::open(&path).await.unwrap()));
    let elsewhere: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&path).await.unwrap());

    remembering.commit(filed("b", 0)).await.unwrap();
    remembering.commit(filed("b", 1)).await.unwrap();
    assert_eq!(
        remembering.state("stream", "b").await.unwrap(),
        Some((2, json!({"records": 2})))
    );
    assert_eq!(
        elsewhere.state("stream", "b").await.unwrap(),
        Some((2, json!({"records": 2}))),
        "the same as the store holds"
    );
}
