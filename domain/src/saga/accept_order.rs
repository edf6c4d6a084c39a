//! The accept-order saga (SPEC section 7).
//!
//! A runner accepting an order is decided by the order itself, at once, so that
//! of two runners racing exactly one wins: the order goes `CREATED` → `ACCEPTED`
//! with the runner bound, under optimistic concurrency. The saga starts when it
//! observes that acceptance (`order.status_updated` to `ACCEPTED`, whether the
//! HTTP API or a hand-published `update_order_status` caused it) and does the
//! rest: stop the acceptance timer, then complete, which tells the customer.
//!
//! If the runner gives the order back before buying the food (`ACCEPTED` or
//! `ON_SITE` → `CREATED`), the saga starts a fresh acceptance timer and ends
//! `CANCELLED`: the order is listed for runners again, and a later acceptance is
//! a new saga (each acceptance round has its own id, [`SagaId::for_acceptance`]).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, SagaId, TimerId, UserId};
use crate::messages::{Message, SagaUpdate, StartOrderTimer, StopOrderTimer, ORDER_ACCEPTANCE_TIMER};
use crate::order::OrderStatus;
use crate::saga::{write_decided, Saga, SagaHeader, SagaStatus};

pub const SAGA_TYPE: &str = "accept_order";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptOrderStep {
    StopTimer,
    RestartTimer,
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObserveAcceptance {
    pub saga_id: SagaId,
    pub message: Message,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum AcceptOrderSagaEvent {
    /// The order reported a runner bound to it.
    Started {
        saga_id: SagaId,
        order_id: OrderId,
        runner_id: UserId,
        at: DateTime<Utc>,
    },
    TimerStopped {
        timer_ids: Vec<TimerId>,
        at: DateTime<Utc>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    /// The runner gave the order back; it is `CREATED` again since `order_created_at`.
    AcceptanceCancelled {
        order_created_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    TimerRestarted {
        timer_id: TimerId,
        at: DateTime<Utc>,
    },
    Cancelled {
        at: DateTime<Utc>,
    },
    Failed {
        reason: String,
        at: DateTime<Utc>,
    },
}

impl AcceptOrderSagaEvent {
    pub fn at(&self) -> DateTime<Utc> {
        use AcceptOrderSagaEvent::*;
        match self {
            Started { at, .. }
            | TimerStopped { at, .. }
            | Completed { at }
            | AcceptanceCancelled { at, .. }
            | TimerRestarted { at, .. }
            | Cancelled { at }
            | Failed { at, .. } => *at,
        }
    }

    fn name(&self) -> &'static str {
        use AcceptOrderSagaEvent::*;
        match self {
            Started { .. } => "started",
            TimerStopped { .. } => "timer_stopped",
            Completed { .. } => "completed",
            AcceptanceCancelled { .. } => "acceptance_cancelled",
            TimerRestarted { .. } => "timer_restarted",
            Cancelled { .. } => "cancelled",
            Failed { .. } => "failed",
        }
    }
}

impl DomainEvent for AcceptOrderSagaEvent {
    fn event_type(&self) -> String {
        format!("accept_order_saga.{}", self.name())
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// An accept-order saga never refuses an observation: what it does not expect,
/// it ignores.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptOrderSagaError {}

/// An accept-order saga as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AcceptOrderSaga {
    #[serde(flatten)]
    pub header: SagaHeader,
    pub runner_id: Option<UserId>,
    pub step: Option<AcceptOrderStep>,
    pub stopped_timer_ids: Vec<TimerId>,
    pub restarted_timer_id: Option<TimerId>,
}

impl Saga for AcceptOrderSaga {
    fn decide(&self, command: ObserveAcceptance) -> Result<Vec<AcceptOrderSagaEvent>, AcceptOrderSagaError> {
        use AcceptOrderSagaEvent as E;
        let ObserveAcceptance { saga_id, message, at } = command;
        let Some(status) = self.header.status else {
            return Ok(match message {
                Message::OrderStatusUpdated(accepted) if accepted.status == OrderStatus::Accepted => {
                    match accepted.runner_id {
                        Some(runner_id) => vec![E::Started {
                            saga_id,
                            order_id: accepted.order_id,
                            runner_id,
                            at,
                        }],
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            });
        };
        if message.order_id() != self.header.order_id {
            return Ok(Vec::new());
        }
        Ok(match (status, self.step, message) {
            (SagaStatus::Started, Some(AcceptOrderStep::StopTimer), Message::TimerStopped(stopped)) => vec![
                E::TimerStopped {
                    timer_ids: stopped.timer_ids,
                    at,
                },
                E::Completed { at },
            ],
            (SagaStatus::Started | SagaStatus::Completed, _, Message::OrderStatusUpdated(given_back))
                if given_back.status == OrderStatus::Created =>
            {
                vec![E::AcceptanceCancelled {
                    order_created_at: given_back.updated_at,
                    at,
                }]
            }
            (SagaStatus::Cancelling, Some(AcceptOrderStep::RestartTimer), Message::TimerStarted(started))
                if started.timer_type == ORDER_ACCEPTANCE_TIMER =>
            {
                vec![
                    E::TimerRestarted {
                        timer_id: started.timer_id,
                        at,
                    },
                    E::Cancelled { at },
                ]
            }
            (SagaStatus::Cancelling, Some(AcceptOrderStep::RestartTimer), Message::TimerFailed(failed)) => {
                vec![E::Failed {
                    reason: format!(
                        "the order was given back, but its acceptance timer could not restart: {}",
                        failed.reason
                    ),
                    at,
                }]
            }
            _ => Vec::new(),
        })
    }

    fn messages_caused_by(&self, event: &AcceptOrderSagaEvent) -> Vec<Message> {
        use AcceptOrderSagaEvent as E;
        let (Some(order_id), Some(runner_id)) = (self.header.order_id, self.runner_id.as_ref()) else {
            return Vec::new();
        };
        let progress = self.progress(event);
        match event {
            E::Started { .. } => vec![
                Message::SagaStarted(progress),
                Message::StopOrderTimer(StopOrderTimer {
                    order_id,
                    reason: format!("runner {runner_id} accepted the order"),
                }),
            ],
            E::TimerStopped { .. } | E::TimerRestarted { .. } => vec![Message::SagaStepCompleted(progress)],
            E::Completed { .. } => vec![Message::SagaCompleted(progress)],
            E::AcceptanceCancelled { order_created_at, .. } => vec![
                Message::SagaCancelling(progress),
                Message::StartOrderTimer(StartOrderTimer {
                    order_id,
                    order_created_at: Some(*order_created_at),
                    delay_seconds: None,
                }),
            ],
            E::Cancelled { .. } => vec![Message::SagaCancelled(progress)],
            E::Failed { .. } => vec![Message::SagaFailed(progress)],
        }
    }
}

impl AcceptOrderSaga {
    fn progress(&self, event: &AcceptOrderSagaEvent) -> SagaUpdate {
        self.header.progress(SAGA_TYPE, event.name().to_string(), event.at())
    }
}

impl crate::snapshot::WholeReadModel for AcceptOrderSaga {}

impl Aggregate for AcceptOrderSaga {
    const TYPE: &'static str = "accept_order_saga";
    type Command = ObserveAcceptance;
    type Event = AcceptOrderSagaEvent;
    type Error = AcceptOrderSagaError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        write_decided(self, command, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        use AcceptOrderSagaEvent as E;
        self.header.updated_at = Some(event.at());
        match event {
            E::Started {
                saga_id,
                order_id,
                runner_id,
                at,
            } => {
                self.header = SagaHeader::started(saga_id, order_id, at);
                self.runner_id = Some(runner_id);
                self.step = Some(AcceptOrderStep::StopTimer);
            }
            E::TimerStopped { timer_ids, .. } => {
                self.stopped_timer_ids = timer_ids;
                self.step = Some(AcceptOrderStep::Done);
            }
            E::Completed { .. } => self.header.status = Some(SagaStatus::Completed),
            E::AcceptanceCancelled { .. } => {
                self.header.status = Some(SagaStatus::Cancelling);
                self.step = Some(AcceptOrderStep::RestartTimer);
                self.header.error = Some(format!(
                    "runner {} gave the order back",
                    self.runner_id.as_ref().map(UserId::as_str).unwrap_or("?")
                ));
            }
            E::TimerRestarted { timer_id, .. } => {
                self.restarted_timer_id = Some(timer_id);
                self.step = Some(AcceptOrderStep::Done);
            }
            E::Cancelled { .. } => self.header.status = Some(SagaStatus::Cancelled),
            E::Failed { reason, .. } => {
                self.header.status = Some(SagaStatus::Failed);
                self.header.error = Some(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::messages::{OrderStatusUpdated, TimerStarted, TimerStopped};

    type SagaTest = TestFramework<AcceptOrderSaga>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn saga_id() -> SagaId {
        SagaId::for_acceptance(order_id(), 1)
    }

    fn runner() -> UserId {
        UserId::parse("runner_1").unwrap()
    }

    fn observe(message: Message) -> ObserveAcceptance {
        ObserveAcceptance {
            saga_id: saga_id(),
            message,
            at: at(),
        }
    }

    fn order_moved(from: OrderStatus, to: OrderStatus, runner_id: Option<UserId>) -> Message {
        Message::OrderStatusUpdated(OrderStatusUpdated {
            order_id: order_id(),
            status: to,
            previous_status: from,
            runner_id,
            updated_at: at(),
        })
    }

    fn started() -> AcceptOrderSagaEvent {
        AcceptOrderSagaEvent::Started {
            saga_id: saga_id(),
            order_id: order_id(),
            runner_id: runner(),
            at: at(),
        }
    }

    fn timer_stopped() -> Vec<AcceptOrderSagaEvent> {
        vec![
            AcceptOrderSagaEvent::TimerStopped {
                timer_ids: vec![TimerId(Uuid::from_u128(9))],
                at: at(),
            },
            AcceptOrderSagaEvent::Completed { at: at() },
        ]
    }

    fn saga_after(events: Vec<AcceptOrderSagaEvent>) -> AcceptOrderSaga {
        let mut saga = AcceptOrderSaga::default();
        for event in events {
            saga.apply(event);
        }
        saga
    }

    #[test]
    fn an_accepted_order_starts_the_saga_which_stops_the_timer() {
        let mut saga = AcceptOrderSaga::default();
        let reaction = saga
            .react(observe(order_moved(
                OrderStatus::Created,
                OrderStatus::Accepted,
                Some(runner()),
            )))
            .unwrap();
        assert_eq!(reaction.events, vec![started()]);
        let types: Vec<_> = reaction.commands.iter().map(Message::message_type).collect();
        assert_eq!(types, ["saga.started", "stop_order_timer"]);
    }

    #[test]
    fn the_stopped_timer_completes_the_saga() {
        SagaTest::with(())
            .given(vec![started()])
            .when(observe(Message::TimerStopped(TimerStopped {
                order_id: order_id(),
                timer_type: ORDER_ACCEPTANCE_TIMER.into(),
                timer_ids: vec![TimerId(Uuid::from_u128(9))],
                stopped_at: at(),
            })))
            .then_expect_events(timer_stopped());
    }

    #[test]
    fn a_given_back_order_gets_a_fresh_timer_and_the_saga_is_cancelled() {
        let mut given = vec![started()];
        given.extend(timer_stopped());
        let mut saga = saga_after(given);
        let reaction = saga
            .react(observe(order_moved(OrderStatus::Accepted, OrderStatus::Created, None)))
            .unwrap();
        assert_eq!(
            reaction.events,
            vec![AcceptOrderSagaEvent::AcceptanceCancelled {
                order_created_at: at(),
                at: at()
            }]
        );
        let Some(Message::StartOrderTimer(start)) = reaction.commands.get(1) else {
            panic!("no start_order_timer in {:?}", reaction.commands)
        };
        assert_eq!(start.order_created_at, Some(at()));

        let restarted = saga
            .react(observe(Message::TimerStarted(TimerStarted {
                timer_id: TimerId(Uuid::from_u128(10)),
                timer_type: ORDER_ACCEPTANCE_TIMER.into(),
                entity_id: order_id().to_string(),
                order_id: Some(order_id()),
                due_at: at(),
                scheduled_at: at(),
                payload: json!({}),
            })))
            .unwrap();
        assert_eq!(restarted.events.len(), 2);
        assert_eq!(saga.header.status, Some(SagaStatus::Cancelled));
        assert_eq!(saga.restarted_timer_id, Some(TimerId(Uuid::from_u128(10))));
    }

    #[test]
    fn a_later_delivery_stage_changes_nothing() {
        let mut given = vec![started()];
        given.extend(timer_stopped());
        SagaTest::with(())
            .given(given)
            .when(observe(order_moved(
                OrderStatus::Accepted,
                OrderStatus::OnSite,
                Some(runner()),
            )))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_status_other_than_accepted_does_not_start_a_saga() {
        SagaTest::with(())
            .given_no_previous_events()
            .when(observe(order_moved(OrderStatus::Pending, OrderStatus::Created, None)))
            .then_expect_events(vec![]);
    }
}
