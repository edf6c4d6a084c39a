//! The timer service: durable timers, and the worker that fires them.
//!
//! A timer is an event-sourced aggregate ([`campusg_domain::timer::Timer`]), so
//! it survives any crash. The service consumes `timer_commands`
//! (`start_order_timer`, `stop_order_timer`) and publishes `timer_events`. The
//! worker ([`worker`]) looks for due timers every poll interval and fires each
//! once: firing is a command on the timer, so two replicas racing to fire the
//! same timer meet optimistic concurrency and only one `timer.expired` is
//! published. A timer that fell due while the service was down fires on its
//! first poll after start. Time comes from the injected clock, so tests move it
//! instead of waiting.
//!
//! It also serves the seeds' scheduler API: `POST /schedule`,
//! `POST /events/{id}/cancel`, `GET /events`, `GET /events/{id}`.

mod handler;
mod routes;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use routes::routes;

pub const SERVICE_NAME: &str = "timer-service";
pub const CONSUMER_GROUP: &str = "timer-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "timer",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: &["start_order_timer", "stop_order_timer"],
    aggregates: &[AggregateKind::of::<campusg_domain::timer::Timer>()],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct TimerService {
    deps: ServiceDeps,
    /// How long a runner has to accept an order (30 minutes by default).
    acceptance_window: chrono::Duration,
    /// How often the worker looks for due timers.
    poll_interval: Duration,
}

impl TimerService {
    pub fn new(deps: ServiceDeps, acceptance_window: chrono::Duration, poll_interval: Duration) -> Arc<TimerService> {
        Arc::new(TimerService {
            deps,
            acceptance_window,
            poll_interval,
        })
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
