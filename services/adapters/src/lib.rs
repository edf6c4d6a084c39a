//! The adapters: the runtime's ports ([`campusg_runtime::bus::MessageBus`],
//! [`campusg_runtime::store::EventStore`]) on real technology. Only the binary
//! that wires a process together depends on this crate; the services depend on
//! the ports alone, so that none of them can reach past a trait to Kafka or SQL
//! (the compiler checks it: a service crate does not link rdkafka or sqlx).
//!
//! # Layout
//!
//! - [`embedded_log`]: the bus in a SQLite file, with Kafka's semantics, for the
//!   embedded mode; [`log_tail`] keeps its newest records in memory for the
//!   consumers of the process that wrote them.
//! - [`kafka_bus`]: the bus on Kafka, for the distributed mode.
//! - [`sqlite_store`]: the event store in SQLite (embedded mode).
//! - [`postgres_store`]: the event store in PostgreSQL, a schema per service.
//! - [`sql_commit`]: the commit protocol both SQL stores follow, written once.
//! - [`sqlite`]: opening SQLite files the way the log and the stores want them.

#![forbid(unsafe_code)]

pub mod embedded_log;
pub mod kafka_bus;
pub mod log_tail;
pub mod postgres_store;
pub mod sql_commit;
pub mod sqlite;
pub mod sqlite_store;

/// The runtime's loops (batching, consuming, relaying) tested on the real
/// adapters, where a crash, a refusal or a redelivery behaves as in production.
#[cfg(test)]
mod loops {
    mod batch;
    mod consumer;
    mod outbox;
    mod remembered;
}
