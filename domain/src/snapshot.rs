//! Which aggregates may be rebuilt from their read model.
//!
//! The store writes an aggregate's read model, the aggregate serialized after
//! its last event, in the same transaction as its events. An aggregate whose
//! serialized form is all of its state can therefore be rebuilt from that one
//! row, when the row is as new as the events, instead of from every event:
//! a saga read before each of its steps then costs one row, not one per step
//! so far. cqrs-es's snapshots rest on the same round trip.
//!
//! An aggregate that keeps something out of its read model (a
//! `#[serde(skip)]` field, as the payment's and the escrow's last event) must
//! not implement [`WholeReadModel`]: it would come back without it.

use cqrs_es::Aggregate;

/// The aggregate's read model (its `Serialize` form) holds all of its state:
/// deserializing it gives the aggregate its events fold to.
pub trait WholeReadModel: Aggregate {}
