//! The complete-order saga (SPEC section 7).
//!
//! Started when the order reaches `DELIVERED` (the runner reported it), or by
//! `POST /saga/complete/completeOrder`, which checks the order is `DELIVERED`
//! first. An order completes once, so both name the same saga
//! ([`SagaId::for_completion`]) and a second start finds it started.
//!
//! Steps: 1 capture the payment (the pivot), 2 release the escrow to the runner
//! (the food cost they paid plus the delivery fee), 3 mark the order
//! `COMPLETED`, 4 ask the user service for the runner's payout account, 5 pay
//! the released amount out to it. Then the saga is `COMPLETED`, which the
//! notification service turns into the customer's receipt. A runner with no
//! payout account does not hold the saga up: the payout waits (`payout.waiting`)
//! and goes out when the runner adds one; a payout every attempt of which was
//! declined is parked for an operator (`payout.parked`). Either way the saga's
//! part is done, and its `payout_status` says where the money is.
//!
//! A capture the processor refuses for good ends the saga `FAILED` with no
//! money moved; a processor that is only unavailable is retried by the payment
//! service until it answers. After the capture, a refused step is asked again,
//! up to [`MAX_ATTEMPTS`] times, and then the saga is `FAILED` for an operator
//! to look at; it never undoes a capture. The payment and escrow aggregates
//! each move money once, so no redelivery or retry pays twice.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, SagaId, UserId};
use crate::messages::{
    CapturePayment, GetPayoutAccount, Message, PayOutRunner, ReleaseFunds, SagaUpdate, UpdateOrderStatus,
};
use crate::money::Cents;
use crate::order::OrderStatus;
use crate::saga::{write_decided, Saga, SagaHeader, SagaStatus};

pub const SAGA_TYPE: &str = "complete_order";

/// How many times a step after the pivot is asked for in all.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompleteOrderStep {
    CapturePayment,
    ReleaseEscrow,
    MarkOrderCompleted,
    GetPayoutAccount,
    PayOut,
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CompleteOrderSagaCommand {
    /// Complete an order the caller found `DELIVERED` by `runner_id`.
    Start {
        saga_id: SagaId,
        order_id: OrderId,
        runner_id: UserId,
        at: DateTime<Utc>,
    },
    Observe {
        saga_id: SagaId,
        message: Message,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum CompleteOrderSagaEvent {
    Started {
        saga_id: SagaId,
        order_id: OrderId,
        runner_id: UserId,
        at: DateTime<Utc>,
    },
    PaymentCaptured {
        amount_cents: Cents,
        at: DateTime<Utc>,
    },
    FundsReleased {
        amount_cents: Cents,
        at: DateTime<Utc>,
    },
    OrderCompleted {
        at: DateTime<Utc>,
    },
    PayoutAccountRetrieved {
        payout_account: String,
        at: DateTime<Utc>,
    },
    PayoutAccountMissing {
        at: DateTime<Utc>,
    },
    /// Where the payout ended for the saga: `SENT`, `WAITING` (for an account)
    /// or `PARKED` (declined, for an operator).
    PayoutSettled {
        status: String,
        at: DateTime<Utc>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    /// A step after the pivot was refused; it is asked again.
    StepRetried {
        step: CompleteOrderStep,
        reason: String,
        attempt: u32,
        at: DateTime<Utc>,
    },
    Failed {
        step: CompleteOrderStep,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A reply disagreed with the saga's own state (a payout to someone other
    /// than the order's runner, an amount other than the one captured): it is
    /// not taken, and the saga stays at its step for an operator (SPEC 11).
    AnomalyRecorded {
        step: CompleteOrderStep,
        reply: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl CompleteOrderSagaEvent {
    pub fn at(&self) -> DateTime<Utc> {
        use CompleteOrderSagaEvent::*;
        match self {
            Started { at, .. }
            | PaymentCaptured { at, .. }
            | FundsReleased { at, .. }
            | OrderCompleted { at }
            | PayoutAccountRetrieved { at, .. }
            | PayoutAccountMissing { at }
            | PayoutSettled { at, .. }
            | Completed { at }
            | StepRetried { at, .. }
            | Failed { at, .. }
            | AnomalyRecorded { at, .. } => *at,
        }
    }

    fn name(&self) -> &'static str {
        use CompleteOrderSagaEvent::*;
        match self {
            Started { .. } => "started",
            PaymentCaptured { .. } => "payment_captured",
            FundsReleased { .. } => "funds_released",
            OrderCompleted { .. } => "order_completed",
            PayoutAccountRetrieved { .. } => "payout_account_retrieved",
            PayoutAccountMissing { .. } => "payout_account_missing",
            PayoutSettled { .. } => "payout_settled",
            Completed { .. } => "completed",
            StepRetried { .. } => "step_retried",
            Failed { .. } => "failed",
            AnomalyRecorded { .. } => "anomaly_recorded",
        }
    }
}

impl DomainEvent for CompleteOrderSagaEvent {
    fn event_type(&self) -> String {
        format!("complete_order_saga.{}", self.name())
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompleteOrderSagaError {
    #[error("saga {0} has already started")]
    AlreadyStarted(SagaId),
}

/// A complete-order saga as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompleteOrderSaga {
    #[serde(flatten)]
    pub header: SagaHeader,
    pub runner_id: Option<UserId>,
    pub step: Option<CompleteOrderStep>,
    pub captured_cents: Cents,
    pub payout_cents: Cents,
    /// The account the payout goes to, once the user service named one.
    #[serde(default)]
    pub payout_account: Option<String>,
    /// `SENT`, `WAITING` or `PARKED`, once the payout service answered.
    #[serde(default)]
    pub payout_status: Option<String>,
    /// Replies that disagreed with the saga's state, and why; none was taken.
    #[serde(default)]
    pub anomalies: Vec<String>,
    /// How many times the current step has been asked for.
    pub attempts: u32,
}

impl Saga for CompleteOrderSaga {
    fn decide(&self, command: CompleteOrderSagaCommand) -> Result<Vec<CompleteOrderSagaEvent>, CompleteOrderSagaError> {
        use CompleteOrderSagaEvent as E;
        match command {
            CompleteOrderSagaCommand::Start {
                saga_id,
                order_id,
                runner_id,
                at,
            } => {
                if self.header.saga_id.is_some() {
                    return Err(CompleteOrderSagaError::AlreadyStarted(saga_id));
                }
                Ok(vec![E::Started {
                    saga_id,
                    order_id,
                    runner_id,
                    at,
                }])
            }
            CompleteOrderSagaCommand::Observe { saga_id, message, at } => {
                if self.header.saga_id.is_none() {
                    return Ok(match message {
                        Message::OrderStatusUpdated(delivered) if delivered.status == OrderStatus::Delivered => {
                            match delivered.runner_id {
                                Some(runner_id) => vec![E::Started {
                                    saga_id,
                                    order_id: delivered.order_id,
                                    runner_id,
                                    at,
                                }],
                                None => Vec::new(),
                            }
                        }
                        _ => Vec::new(),
                    });
                }
                if message.order_id() != self.header.order_id || self.header.status != Some(SagaStatus::Started) {
                    return Ok(Vec::new());
                }
                Ok(self.observe(message, at))
            }
        }
    }

    fn messages_caused_by(&self, event: &CompleteOrderSagaEvent) -> Vec<Message> {
        use CompleteOrderSagaEvent as E;
        let progress = self.progress(event);
        let mut messages = match event {
            E::Started { .. } => vec![Message::SagaStarted(progress)],
            E::Completed { .. } => vec![Message::SagaCompleted(progress)],
            E::Failed { .. } => vec![Message::SagaFailed(progress)],
            E::AnomalyRecorded { reason, .. } => vec![
                Message::SagaStepCompleted(progress.clone()),
                Message::SagaAnomalyRecorded(SagaUpdate {
                    error: Some(reason.clone()),
                    ..progress
                }),
            ],
            _ => vec![Message::SagaStepCompleted(progress)],
        };
        let asks_for_the_step = matches!(
            event,
            E::Started { .. }
                | E::PaymentCaptured { .. }
                | E::FundsReleased { .. }
                | E::OrderCompleted { .. }
                | E::PayoutAccountRetrieved { .. }
                | E::PayoutAccountMissing { .. }
                | E::StepRetried { .. }
        );
        if asks_for_the_step {
            messages.extend(self.command_for_step());
        }
        messages
    }
}

impl CompleteOrderSaga {
    fn observe(&self, message: Message, at: DateTime<Utc>) -> Vec<CompleteOrderSagaEvent> {
        use CompleteOrderSagaEvent as E;
        use CompleteOrderStep as Step;
        let Some(step) = self.step else {
            return Vec::new();
        };
        match (step, message) {
            (Step::CapturePayment, Message::PaymentCaptured(captured)) => vec![E::PaymentCaptured {
                amount_cents: captured.amount_cents,
                at,
            }],
            (Step::CapturePayment, Message::PaymentCaptureFailed(failed)) => vec![E::Failed {
                step,
                reason: format!("the payment could not be captured: {}", failed.reason),
                at,
            }],
            (Step::ReleaseEscrow, Message::FundsReleased(released)) => {
                // (A reply about another order never reaches this saga.)
                let reason = if Some(&released.runner_id) != self.runner_id.as_ref() {
                    Some(format!(
                        "it paid {} out, not the order's runner {}",
                        released.runner_id,
                        self.runner_id.as_ref().map(UserId::to_string).unwrap_or_default()
                    ))
                } else if released.amount_cents != self.captured_cents {
                    Some(format!(
                        "it paid out {}, not the {} captured",
                        released.amount_cents, self.captured_cents
                    ))
                } else {
                    None
                };
                match reason {
                    Some(reason) => self.anomaly(step, "escrow.released", reason, at),
                    None => vec![E::FundsReleased {
                        amount_cents: released.amount_cents,
                        at,
                    }],
                }
            }
            (Step::ReleaseEscrow, Message::ReleaseFailed(failed)) => {
                self.retry(step, format!("the escrow could not be released: {}", failed.reason), at)
            }
            (Step::MarkOrderCompleted, Message::OrderStatusUpdated(updated))
                if updated.status == OrderStatus::Completed =>
            {
                vec![E::OrderCompleted { at }]
            }
            (Step::MarkOrderCompleted, Message::OrderStatusUpdateFailed(failed))
                if failed.status == OrderStatus::Completed =>
            {
                self.retry(
                    step,
                    format!("the order could not be marked COMPLETED: {}", failed.reason),
                    at,
                )
            }
            (Step::GetPayoutAccount, Message::PayoutAccountRetrieved(retrieved)) => {
                match self.other_runner(&retrieved.runner_id) {
                    Some(reason) => self.anomaly(step, "user.payout_account_retrieved", reason, at),
                    None => vec![E::PayoutAccountRetrieved {
                        payout_account: retrieved.payout_account,
                        at,
                    }],
                }
            }
            (Step::GetPayoutAccount, Message::PayoutAccountMissing(missing)) => {
                match self.other_runner(&missing.runner_id) {
                    Some(reason) => self.anomaly(step, "user.payout_account_missing", reason, at),
                    None => vec![E::PayoutAccountMissing { at }],
                }
            }
            (Step::PayOut, Message::PayoutSent(payout)) => match &self.payout_account {
                Some(account) if *account != payout.payout_account => self.anomaly(
                    step,
                    "payout.sent",
                    format!(
                        "it went to {}, not the runner's payout account {account}",
                        payout.payout_account
                    ),
                    at,
                ),
                _ => self.payout_settled(step, "payout.sent", &payout.runner_id, payout.amount_cents, "SENT", at),
            },
            (Step::PayOut, Message::PayoutWaiting(payout)) => self.payout_settled(
                step,
                "payout.waiting",
                &payout.runner_id,
                payout.amount_cents,
                "WAITING",
                at,
            ),
            (Step::PayOut, Message::PayoutParked(payout)) => self.payout_settled(
                step,
                "payout.parked",
                &payout.runner_id,
                payout.amount_cents,
                "PARKED",
                at,
            ),
            _ => Vec::new(),
        }
    }

    /// Why a reply about `runner_id` is not about this order's runner, if it is not.
    fn other_runner(&self, runner_id: &UserId) -> Option<String> {
        (Some(runner_id) != self.runner_id.as_ref()).then(|| {
            format!(
                "it is about {runner_id}, not the order's runner {}",
                self.runner_id.as_ref().map(UserId::to_string).unwrap_or_default()
            )
        })
    }

    /// The payout's answer, taken if it pays the order's runner what was released.
    fn payout_settled(
        &self,
        step: CompleteOrderStep,
        reply: &str,
        runner_id: &UserId,
        amount: Cents,
        status: &str,
        at: DateTime<Utc>,
    ) -> Vec<CompleteOrderSagaEvent> {
        let reason = self.other_runner(runner_id).or_else(|| {
            (amount != self.payout_cents).then(|| format!("it pays {amount}, not the {} released", self.payout_cents))
        });
        match reason {
            Some(reason) => self.anomaly(step, reply, reason, at),
            None => vec![
                CompleteOrderSagaEvent::PayoutSettled {
                    status: status.to_string(),
                    at,
                },
                CompleteOrderSagaEvent::Completed { at },
            ],
        }
    }

    /// A reply that disagrees with the saga's state, recorded once per reason.
    fn anomaly(
        &self,
        step: CompleteOrderStep,
        reply: &str,
        reason: String,
        at: DateTime<Utc>,
    ) -> Vec<CompleteOrderSagaEvent> {
        let reason = format!("`{reply}` was not taken: {reason}");
        if self.anomalies.contains(&reason) {
            return Vec::new();
        }
        vec![CompleteOrderSagaEvent::AnomalyRecorded {
            step,
            reply: reply.to_string(),
            reason,
            at,
        }]
    }

    /// After the pivot a refused step is asked again, until the attempts run out.
    fn retry(&self, step: CompleteOrderStep, reason: String, at: DateTime<Utc>) -> Vec<CompleteOrderSagaEvent> {
        if self.attempts >= MAX_ATTEMPTS {
            return vec![CompleteOrderSagaEvent::Failed {
                step,
                reason: format!("{reason} (asked {} times; the payment stays captured)", self.attempts),
                at,
            }];
        }
        vec![CompleteOrderSagaEvent::StepRetried {
            step,
            reason,
            attempt: self.attempts + 1,
            at,
        }]
    }

    /// The command that performs the current step.
    fn command_for_step(&self) -> Option<Message> {
        let order_id = self.header.order_id?;
        let runner_id = self.runner_id.clone()?;
        Some(match self.step? {
            CompleteOrderStep::CapturePayment => Message::CapturePayment(CapturePayment { order_id }),
            CompleteOrderStep::ReleaseEscrow => Message::ReleaseFunds(ReleaseFunds { order_id, runner_id }),
            CompleteOrderStep::MarkOrderCompleted => Message::UpdateOrderStatus(UpdateOrderStatus {
                order_id,
                status: OrderStatus::Completed,
                runner_id: Some(runner_id),
            }),
            CompleteOrderStep::GetPayoutAccount => Message::GetPayoutAccount(GetPayoutAccount { runner_id, order_id }),
            CompleteOrderStep::PayOut => Message::PayOutRunner(PayOutRunner {
                order_id,
                runner_id,
                amount_cents: self.payout_cents,
                payout_account: self.payout_account.clone(),
            }),
            CompleteOrderStep::Done => return None,
        })
    }

    fn progress(&self, event: &CompleteOrderSagaEvent) -> SagaUpdate {
        self.header.progress(SAGA_TYPE, event.name().to_string(), event.at())
    }
}

impl crate::snapshot::WholeReadModel for CompleteOrderSaga {}

impl Aggregate for CompleteOrderSaga {
    const TYPE: &'static str = "complete_order_saga";
    type Command = CompleteOrderSagaCommand;
    type Event = CompleteOrderSagaEvent;
    type Error = CompleteOrderSagaError;
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
        use CompleteOrderSagaEvent as E;
        use CompleteOrderStep as Step;
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
                self.step = Some(Step::CapturePayment);
                self.attempts = 1;
            }
            E::PaymentCaptured { amount_cents, .. } => {
                self.captured_cents = amount_cents;
                self.step = Some(Step::ReleaseEscrow);
                self.attempts = 1;
            }
            E::FundsReleased { amount_cents, .. } => {
                self.payout_cents = amount_cents;
                self.step = Some(Step::MarkOrderCompleted);
                self.attempts = 1;
            }
            E::OrderCompleted { .. } => {
                self.step = Some(Step::GetPayoutAccount);
                self.attempts = 1;
            }
            E::PayoutAccountRetrieved { payout_account, .. } => {
                self.payout_account = Some(payout_account);
                self.step = Some(Step::PayOut);
            }
            E::PayoutAccountMissing { .. } => self.step = Some(Step::PayOut),
            E::PayoutSettled { status, .. } => {
                self.payout_status = Some(status);
                self.step = Some(Step::Done);
            }
            E::Completed { .. } => self.header.status = Some(SagaStatus::Completed),
            E::StepRetried { reason, attempt, .. } => {
                self.attempts = attempt;
                self.header.error = Some(reason);
            }
            E::Failed { reason, .. } => {
                self.header.status = Some(SagaStatus::Failed);
                self.header.error = Some(reason);
            }
            E::AnomalyRecorded { reason, .. } => {
                self.header.error = Some(reason.clone());
                self.anomalies.push(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::ids::{EscrowId, PaymentId};
    use crate::messages::{
        EscrowOperationFailed, FundsReleased, OrderStatusUpdated, PaymentCaptured, PaymentOperationFailed,
        PayoutAccountMissing, PayoutAccountRetrieved, PayoutSent, PayoutWaiting,
    };

    type SagaTest = TestFramework<CompleteOrderSaga>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn saga_id() -> SagaId {
        SagaId::for_completion(order_id())
    }

    fn runner() -> UserId {
        UserId::parse("runner_1").unwrap()
    }

    fn observe(message: Message) -> CompleteOrderSagaCommand {
        CompleteOrderSagaCommand::Observe {
            saga_id: saga_id(),
            message,
            at: at(),
        }
    }

    fn started() -> CompleteOrderSagaEvent {
        CompleteOrderSagaEvent::Started {
            saga_id: saga_id(),
            order_id: order_id(),
            runner_id: runner(),
            at: at(),
        }
    }

    fn captured() -> CompleteOrderSagaEvent {
        CompleteOrderSagaEvent::PaymentCaptured {
            amount_cents: Cents(1499),
            at: at(),
        }
    }

    fn released_message() -> Message {
        Message::FundsReleased(FundsReleased {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            released_at: at(),
        })
    }

    fn release_failed() -> Message {
        Message::ReleaseFailed(EscrowOperationFailed {
            order_id: order_id(),
            reason: "the escrow is busy".into(),
        })
    }

    fn types(messages: &[Message]) -> Vec<&'static str> {
        messages.iter().map(Message::message_type).collect()
    }

    #[test]
    fn a_delivered_order_starts_the_saga_which_captures_the_payment() {
        let mut saga = CompleteOrderSaga::default();
        let reaction = saga
            .react(observe(Message::OrderStatusUpdated(OrderStatusUpdated {
                order_id: order_id(),
                status: OrderStatus::Delivered,
                previous_status: OrderStatus::OnTheWay,
                runner_id: Some(runner()),
                updated_at: at(),
            })))
            .unwrap();
        assert_eq!(reaction.events, vec![started()]);
        assert_eq!(types(&reaction.commands), ["saga.started", "capture_payment"]);
    }

    #[test]
    fn the_captured_payment_releases_the_escrow_to_the_runner() {
        let mut saga = CompleteOrderSaga::default();
        saga.apply(started());
        let reaction = saga
            .react(observe(Message::PaymentCaptured(PaymentCaptured {
                payment_id: PaymentId::for_order(order_id()),
                order_id: order_id(),
                amount_cents: Cents(1499),
                captured_at: at(),
                customer_id: None,
            })))
            .unwrap();
        let Some(Message::ReleaseFunds(release)) = reaction.commands.get(1) else {
            panic!("expected release_funds, got {:?}", reaction.commands)
        };
        assert_eq!(release.runner_id, runner());
    }

    #[rstest::rstest]
    #[case::to_someone_else("mallory", 1499, "it paid mallory out, not the order's runner runner_1")]
    #[case::another_amount("runner_1", 1, "it paid out 0.01, not the 14.99 captured")]
    fn a_release_that_disagrees_with_the_saga_is_not_taken_and_recorded_as_an_anomaly(
        #[case] runner_id: &str,
        #[case] amount_cents: i64,
        #[case] reason: &str,
    ) {
        let mut saga = CompleteOrderSaga::default();
        saga.apply(started());
        saga.apply(captured());
        let Message::FundsReleased(mut released) = released_message() else {
            unreachable!()
        };
        released.runner_id = UserId::parse(runner_id).unwrap();
        released.amount_cents = Cents(amount_cents);

        let reaction = saga.react(observe(Message::FundsReleased(released.clone()))).unwrap();

        assert_eq!(
            reaction.events,
            vec![CompleteOrderSagaEvent::AnomalyRecorded {
                step: CompleteOrderStep::ReleaseEscrow,
                reply: "escrow.released".into(),
                reason: format!("`escrow.released` was not taken: {reason}"),
                at: at(),
            }]
        );
        assert_eq!(
            types(&reaction.commands),
            ["saga.step_completed", "saga.anomaly_recorded"],
            "nothing moves on; the operators are told"
        );
        assert_eq!(saga.step, Some(CompleteOrderStep::ReleaseEscrow));
        assert_eq!(saga.payout_cents, Cents::ZERO);
        let again = saga.react(observe(Message::FundsReleased(released))).unwrap();
        assert!(again.events.is_empty(), "one anomaly per reason");
    }

    fn order_completed() -> Message {
        Message::OrderStatusUpdated(OrderStatusUpdated {
            order_id: order_id(),
            status: OrderStatus::Completed,
            previous_status: OrderStatus::Delivered,
            runner_id: Some(runner()),
            updated_at: at(),
        })
    }

    /// A saga whose order is completed, asking for the runner's payout account.
    fn at_the_payout() -> CompleteOrderSaga {
        let mut saga = CompleteOrderSaga::default();
        saga.apply(started());
        saga.apply(captured());
        saga.react(observe(released_message())).unwrap();
        saga.react(observe(order_completed())).unwrap();
        saga
    }

    #[test]
    fn the_released_funds_mark_the_order_completed_then_the_runner_is_paid_out() {
        let mut saga = CompleteOrderSaga::default();
        saga.apply(started());
        saga.apply(captured());
        let reaction = saga.react(observe(released_message())).unwrap();
        assert_eq!(
            types(&reaction.commands),
            ["saga.step_completed", "update_order_status"]
        );
        let reaction = saga.react(observe(order_completed())).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.step_completed", "get_payout_account"]);
        let reaction = saga
            .react(observe(Message::PayoutAccountRetrieved(PayoutAccountRetrieved {
                runner_id: runner(),
                order_id: order_id(),
                payout_account: "acct_1".into(),
            })))
            .unwrap();
        let Some(Message::PayOutRunner(payout)) = reaction.commands.get(1) else {
            panic!("expected pay_out_runner, got {:?}", reaction.commands)
        };
        assert_eq!(
            (payout.amount_cents, payout.payout_account.as_deref()),
            (Cents(1499), Some("acct_1"))
        );
        let reaction = saga.react(observe(payout_sent("runner_1", 1499))).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.step_completed", "saga.completed"]);
        assert_eq!(saga.header.status, Some(SagaStatus::Completed));
        assert_eq!(saga.payout_status.as_deref(), Some("SENT"));
    }

    fn payout_sent(runner_id: &str, amount_cents: i64) -> Message {
        Message::PayoutSent(PayoutSent {
            order_id: order_id(),
            runner_id: UserId::parse(runner_id).unwrap(),
            amount_cents: Cents(amount_cents),
            payout_account: "acct_1".into(),
            reference: "po_1".into(),
            attempt: 1,
            sent_at: at(),
        })
    }

    #[test]
    fn a_runner_without_a_payout_account_does_not_hold_the_order_up_the_payout_waits() {
        let mut saga = at_the_payout();
        let reaction = saga
            .react(observe(Message::PayoutAccountMissing(PayoutAccountMissing {
                runner_id: runner(),
                order_id: order_id(),
                awaited_at: at(),
            })))
            .unwrap();
        let Some(Message::PayOutRunner(payout)) = reaction.commands.get(1) else {
            panic!("expected pay_out_runner, got {:?}", reaction.commands)
        };
        assert_eq!(payout.payout_account, None);
        saga.react(observe(Message::PayoutWaiting(PayoutWaiting {
            order_id: order_id(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            waiting_since: at(),
        })))
        .unwrap();
        assert_eq!(saga.header.status, Some(SagaStatus::Completed));
        assert_eq!(saga.payout_status.as_deref(), Some("WAITING"));
    }

    #[test]
    fn a_payout_sent_to_another_account_than_the_runner_s_is_not_taken() {
        let mut saga = at_the_payout();
        saga.react(observe(Message::PayoutAccountRetrieved(PayoutAccountRetrieved {
            runner_id: runner(),
            order_id: order_id(),
            payout_account: "acct_runner".into(),
        })))
        .unwrap();
        let reaction = saga.react(observe(payout_sent("runner_1", 1499))).unwrap();
        assert_eq!(
            types(&reaction.commands),
            ["saga.step_completed", "saga.anomaly_recorded"]
        );
        assert_eq!(saga.payout_status, None);
    }

    #[rstest::rstest]
    #[case::to_someone_else("mallory", 1499)]
    #[case::another_amount("runner_1", 1)]
    fn a_payout_that_disagrees_with_the_release_is_not_taken(#[case] runner_id: &str, #[case] amount_cents: i64) {
        let mut saga = at_the_payout();
        saga.react(observe(Message::PayoutAccountRetrieved(PayoutAccountRetrieved {
            runner_id: runner(),
            order_id: order_id(),
            payout_account: "acct_1".into(),
        })))
        .unwrap();
        let reaction = saga.react(observe(payout_sent(runner_id, amount_cents))).unwrap();
        assert_eq!(
            types(&reaction.commands),
            ["saga.step_completed", "saga.anomaly_recorded"]
        );
        assert_eq!(saga.header.status, Some(SagaStatus::Started));
        assert_eq!(saga.payout_status, None);
    }

    #[test]
    fn a_refused_capture_fails_the_saga_with_no_money_moved() {
        SagaTest::with(())
            .given(vec![started()])
            .when(observe(Message::PaymentCaptureFailed(PaymentOperationFailed {
                order_id: order_id(),
                reason: "authorization expired".into(),
            })))
            .then_expect_events(vec![CompleteOrderSagaEvent::Failed {
                step: CompleteOrderStep::CapturePayment,
                reason: "the payment could not be captured: authorization expired".into(),
                at: at(),
            }]);
    }

    #[test]
    fn after_the_pivot_a_refused_step_is_asked_again_then_left_to_an_operator() {
        let mut saga = CompleteOrderSaga::default();
        saga.apply(started());
        saga.apply(captured());
        for attempt in 2..=MAX_ATTEMPTS {
            let reaction = saga.react(observe(release_failed())).unwrap();
            assert_eq!(
                types(&reaction.commands),
                ["saga.step_completed", "release_funds"],
                "attempt {attempt}"
            );
        }
        let reaction = saga.react(observe(release_failed())).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.failed"]);
        assert_eq!(saga.header.status, Some(SagaStatus::Failed));
    }

    #[test]
    fn a_second_start_is_refused_so_the_caller_finds_the_first() {
        SagaTest::with(())
            .given(vec![started()])
            .when(CompleteOrderSagaCommand::Start {
                saga_id: saga_id(),
                order_id: order_id(),
                runner_id: runner(),
                at: at(),
            })
            .then_expect_error(CompleteOrderSagaError::AlreadyStarted(saga_id()));
    }

    #[test]
    fn a_duplicate_capture_changes_nothing() {
        SagaTest::with(())
            .given(vec![started(), captured()])
            .when(observe(Message::PaymentCaptured(PaymentCaptured {
                payment_id: PaymentId::for_order(order_id()),
                order_id: order_id(),
                amount_cents: Cents(1499),
                captured_at: at(),
                customer_id: None,
            })))
            .then_expect_events(vec![]);
    }
}
