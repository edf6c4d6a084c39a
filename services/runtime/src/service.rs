//! What every service is built from: its event store, the contracts its messages
//! are checked against, and the clock.

use std::sync::Arc;

use crate::clock::Clock;
use crate::store::{Contracts, EventStore};

#[derive(Clone)]
pub struct ServiceDeps {
    pub store: Arc<dyn EventStore>,
    pub contracts: Arc<Contracts>,
    pub clock: Arc<dyn Clock>,
}
