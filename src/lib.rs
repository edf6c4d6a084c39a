//! The `campusg` binary's library: it wires the services together and runs them.
//! Nothing here decides anything about orders or money; that is `domain/`.
//!
//! - [`settings`]: typed configuration from flags and environment variables.
//! - [`backends`]: opens the bus and the event stores the settings name.
//! - [`services`]: every service, listed once, with the role that runs it.
//! - [`startup`]: builds the whole system (bus, stores, services, HTTP API) and
//!   runs it until shutdown.
//! - [`operate`]: what an operator does by hand: publish a message, tail a topic,
//!   reset a consumer group.
//! - [`openapi`]: the OpenAPI document the API serves.
//! - [`bench`]: `campusg bench`, the system measured from the outside.
//! - [`identity`]: who a request comes from: bearer tokens, the local signing
//!   key, an OIDC issuer's keys.
//! - [`rate_limits`]: requests a minute per client address and per caller.
//! - [`console`]: the operators' console in the browser, at `/console`.
//! - [`observability`]: `GET /metrics` and the count of every request.
//! - [`trace_export`]: spans exported over OTLP when an endpoint is configured.

#![forbid(unsafe_code)]

pub mod backends;
pub mod bench;
pub mod console;
pub mod dead_letters;
pub mod gateway;
pub mod identity;
pub mod inspect;
pub mod ledger_check;
pub mod observability;
pub mod openapi;
pub mod operate;
pub mod rate_limits;
pub mod services;
pub mod settings;
pub mod startup;
pub mod trace_export;
