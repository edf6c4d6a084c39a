//! A durable timer: scheduled, then either cancelled or fired, once.
//!
//! Timers are event-sourced like everything else, so a timer scheduled before a
//! crash is still there after it, and one that fell due while the system was down
//! fires when the timer worker next looks. Firing is a command like any other:
//! two workers racing to fire the same timer meet optimistic concurrency, and
//! the second finds it already `FIRED`.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{OrderId, TimerId};
use crate::limits::MAX_TIMER_DELAY_SECONDS;
use crate::messages::{Message, TimerCancelled, TimerExpired, TimerStarted};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimerStatus {
    Scheduled,
    Cancelled,
    Fired,
}

impl TimerStatus {
    pub const ALL: [TimerStatus; 3] = [TimerStatus::Scheduled, TimerStatus::Cancelled, TimerStatus::Fired];

    pub fn as_str(self) -> &'static str {
        match self {
            TimerStatus::Scheduled => "SCHEDULED",
            TimerStatus::Cancelled => "CANCELLED",
            TimerStatus::Fired => "FIRED",
        }
    }

    pub fn parse(text: &str) -> Option<TimerStatus> {
        TimerStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// What a timer is for, as whoever schedules it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSpec {
    pub timer_id: TimerId,
    pub timer_type: String,
    pub entity_id: String,
    pub order_id: Option<OrderId>,
    pub due_at: DateTime<Utc>,
    pub payload: Value,
    /// The saga that scheduled it: the expiry is correlated with it.
    pub correlation_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TimerCommand {
    Schedule {
        spec: TimerSpec,
        at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        at: DateTime<Utc>,
    },
    /// Fire the timer if it is due at `at`.
    Fire {
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum TimerEvent {
    Scheduled {
        #[serde(flatten)]
        timer: TimerStarted,
        correlation_id: String,
    },
    Cancelled(TimerCancelled),
    Fired(TimerExpired),
}

impl DomainEvent for TimerEvent {
    fn event_type(&self) -> String {
        Message::from(self.clone()).message_type().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl From<TimerEvent> for Message {
    fn from(event: TimerEvent) -> Message {
        match event {
            TimerEvent::Scheduled { timer, .. } => Message::TimerStarted(timer),
            TimerEvent::Cancelled(e) => Message::TimerCancelled(e),
            TimerEvent::Fired(e) => Message::TimerExpired(e),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimerError {
    #[error("timer {0} is already scheduled")]
    AlreadyScheduled(TimerId),
    #[error("the timer does not exist")]
    NotFound,
    #[error("the timer is not due until {0}")]
    NotDue(DateTime<Utc>),
    #[error("the timer has already fired")]
    AlreadyFired,
    #[error("the timer has already been cancelled")]
    AlreadyCancelled,
    #[error("a timer runs from 0 to {MAX_TIMER_DELAY_SECONDS} seconds, not {0}")]
    DelayOutOfRange(i64),
    #[error("a timer falls due at most {MAX_TIMER_DELAY_SECONDS} seconds ahead, not at {0}")]
    DueTooLate(DateTime<Utc>),
}

/// When a timer started at `at` for `delay_seconds` falls due. The delay is
/// checked before any date arithmetic, so no input can overflow it.
pub fn due_after(at: DateTime<Utc>, delay_seconds: i64) -> Result<DateTime<Utc>, TimerError> {
    if !(0..=MAX_TIMER_DELAY_SECONDS).contains(&delay_seconds) {
        return Err(TimerError::DelayOutOfRange(delay_seconds));
    }
    at.checked_add_signed(chrono::Duration::seconds(delay_seconds))
        .ok_or(TimerError::DelayOutOfRange(delay_seconds))
}

/// A timer as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub timer_id: Option<TimerId>,
    pub timer_type: String,
    pub entity_id: String,
    pub order_id: Option<OrderId>,
    pub status: Option<TimerStatus>,
    pub due_at: Option<DateTime<Utc>>,
    /// `due_at` in a fixed-width form, so that the store can order timers by
    /// when they fall due with a plain text comparison.
    pub due_key: String,
    pub payload: Value,
    pub correlation_id: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub fired_at: Option<DateTime<Utc>>,
}

impl Timer {
    pub fn decide(&self, command: TimerCommand) -> Result<Vec<TimerEvent>, TimerError> {
        match command {
            TimerCommand::Schedule { spec, at } => {
                if let Some(timer_id) = self.timer_id {
                    return Err(TimerError::AlreadyScheduled(timer_id));
                }
                if due_after(at, MAX_TIMER_DELAY_SECONDS).is_ok_and(|latest| spec.due_at > latest) {
                    return Err(TimerError::DueTooLate(spec.due_at));
                }
                Ok(vec![TimerEvent::Scheduled {
                    timer: TimerStarted {
                        timer_id: spec.timer_id,
                        timer_type: spec.timer_type,
                        entity_id: spec.entity_id,
                        order_id: spec.order_id,
                        due_at: spec.due_at,
                        scheduled_at: at,
                        payload: spec.payload,
                    },
                    correlation_id: spec.correlation_id,
                }])
            }
            TimerCommand::Cancel { reason, at } => {
                let timer_id = self.pending()?;
                Ok(vec![TimerEvent::Cancelled(TimerCancelled {
                    timer_id,
                    timer_type: self.timer_type.clone(),
                    entity_id: self.entity_id.clone(),
                    order_id: self.order_id,
                    reason,
                    cancelled_at: at,
                })])
            }
            TimerCommand::Fire { at } => {
                let timer_id = self.pending()?;
                let due_at = self.due_at.ok_or(TimerError::NotFound)?;
                if at < due_at {
                    return Err(TimerError::NotDue(due_at));
                }
                Ok(vec![TimerEvent::Fired(TimerExpired {
                    timer_id,
                    timer_type: self.timer_type.clone(),
                    entity_id: self.entity_id.clone(),
                    order_id: self.order_id,
                    due_at,
                    fired_at: at,
                    payload: self.payload.clone(),
                })])
            }
        }
    }

    /// The timer's id, if it is still waiting to fire.
    fn pending(&self) -> Result<TimerId, TimerError> {
        match (self.timer_id, self.status) {
            (Some(timer_id), Some(TimerStatus::Scheduled)) => Ok(timer_id),
            (_, Some(TimerStatus::Fired)) => Err(TimerError::AlreadyFired),
            (_, Some(TimerStatus::Cancelled)) => Err(TimerError::AlreadyCancelled),
            _ => Err(TimerError::NotFound),
        }
    }
}

impl Aggregate for Timer {
    const TYPE: &'static str = "timer";
    type Command = TimerCommand;
    type Event = TimerEvent;
    type Error = TimerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TimerEvent::Scheduled { timer, correlation_id } => {
                self.timer_id = Some(timer.timer_id);
                self.timer_type = timer.timer_type;
                self.entity_id = timer.entity_id;
                self.order_id = timer.order_id;
                self.status = Some(TimerStatus::Scheduled);
                self.due_at = Some(timer.due_at);
                self.due_key = crate::time::sort_key(timer.due_at);
                self.payload = timer.payload;
                self.correlation_id = correlation_id;
                self.scheduled_at = Some(timer.scheduled_at);
            }
            TimerEvent::Cancelled(e) => {
                self.status = Some(TimerStatus::Cancelled);
                self.cancelled_at = Some(e.cancelled_at);
                self.cancel_reason = Some(e.reason);
            }
            TimerEvent::Fired(e) => {
                self.status = Some(TimerStatus::Fired);
                self.fired_at = Some(e.fired_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use cqrs_es::test::TestFramework;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    type TimerTestFramework = TestFramework<Timer>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn due() -> DateTime<Utc> {
        at() + Duration::minutes(30)
    }

    fn spec() -> TimerSpec {
        TimerSpec {
            timer_id: TimerId(Uuid::from_u128(7)),
            timer_type: "order_acceptance".into(),
            entity_id: Uuid::from_u128(1).to_string(),
            order_id: Some(OrderId(Uuid::from_u128(1))),
            due_at: due(),
            payload: json!({"order_created_at": at()}),
            correlation_id: "saga-1".into(),
        }
    }

    fn scheduled() -> TimerEvent {
        let spec = spec();
        TimerEvent::Scheduled {
            timer: TimerStarted {
                timer_id: spec.timer_id,
                timer_type: spec.timer_type,
                entity_id: spec.entity_id,
                order_id: spec.order_id,
                due_at: spec.due_at,
                scheduled_at: at(),
                payload: spec.payload,
            },
            correlation_id: spec.correlation_id,
        }
    }

    fn fired() -> TimerEvent {
        let spec = spec();
        TimerEvent::Fired(TimerExpired {
            timer_id: spec.timer_id,
            timer_type: spec.timer_type,
            entity_id: spec.entity_id,
            order_id: spec.order_id,
            due_at: due(),
            fired_at: due(),
            payload: spec.payload,
        })
    }

    fn cancelled() -> TimerEvent {
        let spec = spec();
        TimerEvent::Cancelled(TimerCancelled {
            timer_id: spec.timer_id,
            timer_type: spec.timer_type,
            entity_id: spec.entity_id,
            order_id: spec.order_id,
            reason: "accepted".into(),
            cancelled_at: at(),
        })
    }

    #[test]
    fn a_timer_due_further_ahead_than_the_longest_delay_is_refused() {
        let mut spec = spec();
        spec.due_at = at() + Duration::seconds(MAX_TIMER_DELAY_SECONDS + 1);
        TimerTestFramework::with(())
            .given_no_previous_events()
            .when(TimerCommand::Schedule { spec, at: at() })
            .then_expect_error_message(
                "a timer falls due at most 2592000 seconds ahead, not at 2026-12-22 12:00:01 UTC",
            );
    }

    #[rstest::rstest]
    #[case(-1)]
    #[case(MAX_TIMER_DELAY_SECONDS + 1)]
    #[case(9_000_000_000_000)]
    #[case(i64::MAX)]
    fn a_delay_out_of_range_is_refused_before_any_date_arithmetic(#[case] delay_seconds: i64) {
        assert_eq!(
            due_after(at(), delay_seconds),
            Err(TimerError::DelayOutOfRange(delay_seconds))
        );
    }

    #[test]
    fn the_longest_delay_is_taken() {
        assert_eq!(due_after(at(), MAX_TIMER_DELAY_SECONDS), Ok(at() + Duration::days(30)));
    }

    #[test]
    fn scheduling_records_when_the_timer_falls_due() {
        TimerTestFramework::with(())
            .given_no_previous_events()
            .when(TimerCommand::Schedule { spec: spec(), at: at() })
            .then_expect_events(vec![scheduled()]);
    }

    #[test]
    fn a_timer_is_scheduled_once() {
        TimerTestFramework::with(())
            .given(vec![scheduled()])
            .when(TimerCommand::Schedule { spec: spec(), at: at() })
            .then_expect_error(TimerError::AlreadyScheduled(spec().timer_id));
    }

    #[test]
    fn a_due_timer_fires_with_its_payload() {
        TimerTestFramework::with(())
            .given(vec![scheduled()])
            .when(TimerCommand::Fire { at: due() })
            .then_expect_events(vec![fired()]);
    }

    #[test]
    fn a_timer_does_not_fire_early() {
        TimerTestFramework::with(())
            .given(vec![scheduled()])
            .when(TimerCommand::Fire {
                at: due() - Duration::seconds(1),
            })
            .then_expect_error(TimerError::NotDue(due()));
    }

    #[test]
    fn a_timer_fires_once() {
        TimerTestFramework::with(())
            .given(vec![scheduled(), fired()])
            .when(TimerCommand::Fire {
                at: due() + Duration::minutes(5),
            })
            .then_expect_error(TimerError::AlreadyFired);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        TimerTestFramework::with(())
            .given(vec![scheduled(), cancelled()])
            .when(TimerCommand::Fire { at: due() })
            .then_expect_error(TimerError::AlreadyCancelled);
    }

    #[test]
    fn a_fired_timer_cannot_be_cancelled() {
        TimerTestFramework::with(())
            .given(vec![scheduled(), fired()])
            .when(TimerCommand::Cancel {
                reason: "accepted".into(),
                at: due(),
            })
            .then_expect_error(TimerError::AlreadyFired);
    }
}
