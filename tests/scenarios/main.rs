//! Scenario tests: the whole system, started for real (embedded, on a random
//! port, in a fresh data directory), driven through its HTTP API and its topics.
//!
//! One test binary with a module per capability, so the suite links once.

mod backends;
mod helpers;
mod oidc;
mod processes;
mod traces;

mod access;
mod bad_input;
mod bad_requests;
mod bench;
mod cli;
mod console;
mod create_order;
mod debugging;
mod delivery;
mod deployment;
mod distributed;
mod faults;
mod hand_published;
mod money;
mod observability;
mod processor;
mod restart;
mod runners;
mod timeouts;
