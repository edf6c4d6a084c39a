//! The campusg domain: what an order, a user, a payment and an escrow are, which
//! changes each may go through, and how the sagas coordinate them.
//!
//! # Layout
//!
//! - [`limits`]: every bound an input must keep, declared once.
//! - [`money`]: amounts in integer cents, parsed exactly from the decimal numbers
//!   the HTTP API and hand-written messages carry.
//! - [`ids`]: the identifiers, and how the ids that a hand-written message leaves
//!   out are derived so that publishing it twice still names the same things.
//! - [`messages`]: every message that crosses a topic, as one tagged enum. This is
//!   the wire contract: `schemas/` holds a JSON Schema for each variant.
//! - [`order`], [`user`], [`payment`], [`escrow`]: the aggregates, each a cqrs-es
//!   [`cqrs_es::Aggregate`] with its commands, events and errors.
//! - [`ledger`]: the double-entry ledger every money event posts to.
//! - [`timer`]: durable timers, scheduled, then cancelled or fired once.
//! - [`notification`]: who is told what about an order, and the notifications kept.
//! - [`idempotency`]: a request retried under the same `Idempotency-Key` gets
//!   its first answer and causes nothing new.
//! - [`time`]: times in the form the stores sort.
//! - [`snapshot`]: which aggregates may be rebuilt from their read model.
//! - [`saga`]: the saga state machines, themselves event-sourced aggregates whose
//!   input is the messages they observe and whose output is events plus commands.
//!
//! **Architecture Invariant:** nothing here performs I/O or reads the clock. Time
//! and new ids come in through commands; the one side effect the domain needs (a
//! card processor) is the [`payment::PaymentGateway`] port, implemented elsewhere.

#![forbid(unsafe_code)]

pub mod escrow;
pub mod idempotency;
pub mod ids;
pub mod ledger;
pub mod limits;
pub mod messages;
pub mod money;
pub mod notification;
pub mod order;
pub mod payment;
pub mod saga;
pub mod snapshot;
pub mod time;
pub mod timer;
pub mod user;
