//! The ports and loops every campusg service shares, written once: what a
//! service is built from, and the interfaces ([`bus::MessageBus`],
//! [`store::EventStore`]) it reaches the log and its store through. Their
//! implementations on SQLite, Kafka and PostgreSQL live in `campusg-adapters`,
//! which no service depends on.
//!
//! # Layout
//!
//! - [`topics`]: the topic catalog read from `topics.toml`: partitions, retention,
//!   and which message types each topic carries.
//! - [`schema`]: the JSON Schemas from `schemas/`, checked on publish and on consume.
//! - [`envelope`]: the JSON envelope around every message, its record key and
//!   headers, and how a hand-written message in the seeds' format is completed.
//! - [`bus`]: the message-bus interface, shaped after Kafka's (keyed records,
//!   partitions, consumer groups, commit after handling).
//! - [`store`]: the event-store interface: append events, queue their messages in
//!   an outbox, and mark the incoming message handled, all in one transaction.
//! - [`outbox`]: the relay that publishes what the outbox holds.
//! - [`batch`]: a consumer's whole poll committed in one transaction, without
//!   the services knowing.
//! - [`remembered`]: a store that answers the read models it committed from
//!   memory, for a service that reads them only to write after them.
//! - [`deliver_twice`]: fault injection: a bus that delivers every record twice.
//! - [`crash_points`]: fault injection: the process dies between two writes.
//! - [`command`]: the one shape of every service that takes commands.
//! - [`consumer`]: the consumer loop: validate, handle, dead-letter, commit;
//!   failures classed transient, permanent or fatal.
//! - [`janitor`]: handled-message marks kept for the dedupe window, then forgotten.
//! - [`parking`]: a record that cannot be handled parks its key for its group;
//!   the key's later records wait behind it.
//! - [`health`]: where each consumer of the process stands, for `/health`.
//! - [`aggregate`]: running a command against an event-sourced aggregate with
//!   optimistic concurrency.
//! - [`service`]: what every service is built from.
//! - [`clock`]: the injectable clock.
//! - [`http`]: the JSON error shape of the HTTP API.
//! - [`access`]: who is calling, and the rule every route declares for who may.
//! - [`idempotency`]: a mutating request retried under its `Idempotency-Key`
//!   gets its first answer.
//! - [`telemetry`]: tracing set-up.

#![forbid(unsafe_code)]

pub mod access;
pub mod aggregate;
pub mod batch;
pub mod bus;
pub mod clock;
pub mod command;
pub mod consumer;
pub mod crash_points;
pub mod deliver_twice;
pub mod envelope;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod janitor;
pub mod metrics;
pub mod outbox;
pub mod parking;
pub mod remembered;
pub mod schema;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod topics;

/// Files embedded at build time by `build.rs`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
