//! The escrow aggregate, its commands, events and errors.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{EscrowId, OrderId, UserId};
use crate::messages::{FundsHeld, FundsRefunded, FundsReleased, Message};
use crate::money::Cents;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EscrowStatus {
    Held,
    Released,
    Refunded,
}

impl EscrowStatus {
    pub const ALL: [EscrowStatus; 3] = [EscrowStatus::Held, EscrowStatus::Released, EscrowStatus::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            EscrowStatus::Held => "HELD",
            EscrowStatus::Released => "RELEASED",
            EscrowStatus::Refunded => "REFUNDED",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EscrowCommand {
    Hold {
        escrow_id: EscrowId,
        order_id: OrderId,
        customer_id: UserId,
        food_fee: Cents,
        delivery_fee: Cents,
        currency: String,
        /// The most one order may hold, from configuration.
        limit: Cents,
        at: DateTime<Utc>,
    },
    Release {
        runner_id: UserId,
        at: DateTime<Utc>,
    },
    Refund {
        reason: String,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum EscrowEvent {
    #[serde(rename = "escrow.funds_held")]
    Held(FundsHeld),
    #[serde(rename = "escrow.released")]
    Released(FundsReleased),
    #[serde(rename = "escrow.refunded")]
    Refunded(FundsRefunded),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscrowError {
    #[error("funds for this order are already {}", .0.as_str())]
    AlreadyHeld(EscrowStatus),
    #[error("the amount to hold must be more than zero, not {0}")]
    AmountNotPositive(Cents),
    #[error("the amount {amount} is above the escrow limit of {limit} per order")]
    AboveLimit { amount: Cents, limit: Cents },
    #[error("no funds are held for this order")]
    NotFound,
    #[error("funds that are {} cannot be released", .0.as_str())]
    CannotRelease(EscrowStatus),
    #[error("funds that are {} cannot be refunded", .0.as_str())]
    CannotRefund(EscrowStatus),
}

impl DomainEvent for EscrowEvent {
    fn event_type(&self) -> String {
        Message::from(self.clone()).message_type().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl From<EscrowEvent> for Message {
    fn from(event: EscrowEvent) -> Message {
        match event {
            EscrowEvent::Held(e) => Message::FundsHeld(e),
            EscrowEvent::Released(e) => Message::FundsReleased(e),
            EscrowEvent::Refunded(e) => Message::FundsRefunded(e),
        }
    }
}

/// An escrow as rebuilt from events, and its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Escrow {
    pub escrow_id: Option<EscrowId>,
    pub order_id: Option<OrderId>,
    pub customer_id: Option<UserId>,
    pub runner_id: Option<UserId>,
    pub amount_cents: Cents,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    pub currency: String,
    pub status: Option<EscrowStatus>,
    pub held_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The event that last changed the escrow, to answer a repeated command with it.
    /// Not part of the read model.
    #[serde(skip)]
    pub last_event: Option<EscrowEvent>,
}

impl Escrow {
    pub fn decide(&self, command: EscrowCommand) -> Result<Vec<EscrowEvent>, EscrowError> {
        match command {
            EscrowCommand::Hold {
                escrow_id,
                order_id,
                customer_id,
                food_fee,
                delivery_fee,
                currency,
                limit,
                at,
            } => {
                if let Some(status) = self.status {
                    return Err(EscrowError::AlreadyHeld(status));
                }
                let amount = food_fee.checked_add(delivery_fee).unwrap_or(Cents(i64::MAX));
                if amount <= Cents::ZERO || food_fee.is_negative() || delivery_fee.is_negative() {
                    return Err(EscrowError::AmountNotPositive(amount));
                }
                if amount > limit {
                    return Err(EscrowError::AboveLimit { amount, limit });
                }
                Ok(vec![EscrowEvent::Held(FundsHeld {
                    escrow_id,
                    order_id,
                    customer_id,
                    amount_cents: amount,
                    food_fee_cents: food_fee,
                    delivery_fee_cents: delivery_fee,
                    currency,
                    held_at: at,
                })])
            }
            EscrowCommand::Release { runner_id, at } => {
                let (escrow_id, order_id, status) = self.existing()?;
                if status != EscrowStatus::Held {
                    return Err(EscrowError::CannotRelease(status));
                }
                Ok(vec![EscrowEvent::Released(FundsReleased {
                    escrow_id,
                    order_id,
                    runner_id,
                    amount_cents: self.amount_cents,
                    released_at: at,
                })])
            }
            EscrowCommand::Refund { reason, at } => {
                let (escrow_id, order_id, status) = self.existing()?;
                if status != EscrowStatus::Held {
                    return Err(EscrowError::CannotRefund(status));
                }
                Ok(vec![EscrowEvent::Refunded(FundsRefunded {
                    escrow_id,
                    order_id,
                    customer_id: self.customer_id.clone().expect("held funds have a customer"),
                    amount_cents: self.amount_cents,
                    reason,
                    refunded_at: at,
                })])
            }
        }
    }

    /// The answer this escrow already gave to `command`, if its last change was
    /// the success of the same request: a hold of the same amounts for the same
    /// customer, a release to the same runner, a refund. A repeated command is
    /// answered with it; one that asks for something else is refused by
    /// [`Escrow::decide`] (SPEC 11: no reply taken on trust, none given on it).
    pub fn answer_to_repeat(&self, command: &EscrowCommand) -> Option<EscrowEvent> {
        let last = self.last_event.as_ref()?;
        let same = match (command, last) {
            (
                EscrowCommand::Hold {
                    customer_id,
                    food_fee,
                    delivery_fee,
                    currency,
                    ..
                },
                EscrowEvent::Held(held),
            ) => {
                held.customer_id == *customer_id
                    && held.food_fee_cents == *food_fee
                    && held.delivery_fee_cents == *delivery_fee
                    && held.currency == *currency
            }
            (EscrowCommand::Release { runner_id, .. }, EscrowEvent::Released(released)) => {
                released.runner_id == *runner_id
            }
            (EscrowCommand::Refund { .. }, EscrowEvent::Refunded(_)) => true,
            _ => false,
        };
        same.then(|| last.clone())
    }

    fn existing(&self) -> Result<(EscrowId, OrderId, EscrowStatus), EscrowError> {
        match (self.escrow_id, self.order_id, self.status) {
            (Some(escrow_id), Some(order_id), Some(status)) => Ok((escrow_id, order_id, status)),
            _ => Err(EscrowError::NotFound),
        }
    }
}

impl Aggregate for Escrow {
    const TYPE: &'static str = "escrow";
    type Command = EscrowCommand;
    type Event = EscrowEvent;
    type Error = EscrowError;
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
        self.last_event = Some(event.clone());
        match event {
            EscrowEvent::Held(e) => {
                self.escrow_id = Some(e.escrow_id);
                self.order_id = Some(e.order_id);
                self.customer_id = Some(e.customer_id);
                self.amount_cents = e.amount_cents;
                self.food_fee_cents = e.food_fee_cents;
                self.delivery_fee_cents = e.delivery_fee_cents;
                self.currency = e.currency;
                self.status = Some(EscrowStatus::Held);
                self.held_at = Some(e.held_at);
                self.updated_at = Some(e.held_at);
            }
            EscrowEvent::Released(e) => {
                self.status = Some(EscrowStatus::Released);
                self.runner_id = Some(e.runner_id);
                self.updated_at = Some(e.released_at);
            }
            EscrowEvent::Refunded(e) => {
                self.status = Some(EscrowStatus::Refunded);
                self.updated_at = Some(e.refunded_at);
            }
        }
    }
}

#[cfg(test)]
mod aggregate_tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn hold(limit: Cents) -> EscrowCommand {
        EscrowCommand::Hold {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            customer_id: UserId::parse("cust_1").unwrap(),
            food_fee: Cents(1299),
            delivery_fee: Cents(200),
            currency: "SGD".into(),
            limit,
            at: at(),
        }
    }

    fn held() -> EscrowEvent {
        EscrowEvent::Held(FundsHeld {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            customer_id: UserId::parse("cust_1").unwrap(),
            amount_cents: Cents(1499),
            food_fee_cents: Cents(1299),
            delivery_fee_cents: Cents(200),
            currency: "SGD".into(),
            held_at: at(),
        })
    }

    fn released() -> EscrowEvent {
        EscrowEvent::Released(FundsReleased {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            runner_id: UserId::parse("runner_1").unwrap(),
            amount_cents: Cents(1499),
            released_at: at(),
        })
    }

    #[test]
    fn the_order_total_is_held() {
        TestFramework::<Escrow>::with(())
            .given_no_previous_events()
            .when(hold(Cents(50_000)))
            .then_expect_events(vec![held()]);
    }

    #[test]
    fn a_total_above_the_limit_is_not_held() {
        TestFramework::<Escrow>::with(())
            .given_no_previous_events()
            .when(hold(Cents(1000)))
            .then_expect_error(EscrowError::AboveLimit {
                amount: Cents(1499),
                limit: Cents(1000),
            });
    }

    fn escrow_after(events: Vec<EscrowEvent>) -> Escrow {
        let mut escrow = Escrow::default();
        for event in events {
            escrow.apply(event);
        }
        escrow
    }

    fn release_to(runner: &str) -> EscrowCommand {
        EscrowCommand::Release {
            runner_id: UserId::parse(runner).unwrap(),
            at: at(),
        }
    }

    #[test]
    fn a_release_repeated_to_the_same_runner_is_answered_with_the_release() {
        let escrow = escrow_after(vec![held(), released()]);
        assert_eq!(escrow.answer_to_repeat(&release_to("runner_1")), Some(released()));
    }

    #[test]
    fn a_release_to_someone_else_after_the_release_is_not_answered_as_done_but_refused() {
        let escrow = escrow_after(vec![held(), released()]);
        assert_eq!(escrow.answer_to_repeat(&release_to("mallory")), None);
        TestFramework::<Escrow>::with(())
            .given(vec![held(), released()])
            .when(release_to("mallory"))
            .then_expect_error(EscrowError::CannotRelease(EscrowStatus::Released));
    }

    #[test]
    fn a_hold_of_another_amount_is_not_answered_with_the_first_hold() {
        let escrow = escrow_after(vec![held()]);
        assert_eq!(escrow.answer_to_repeat(&hold(Cents(50_000))), Some(held()));
        let EscrowCommand::Hold { limit, .. } = hold(Cents(50_000)) else {
            unreachable!()
        };
        let smaller = EscrowCommand::Hold {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            customer_id: UserId::parse("cust_1").unwrap(),
            food_fee: Cents(1),
            delivery_fee: Cents(0),
            currency: "SGD".into(),
            limit,
            at: at(),
        };
        assert_eq!(escrow.answer_to_repeat(&smaller), None);
    }

    #[test]
    fn funds_are_held_once() {
        TestFramework::<Escrow>::with(())
            .given(vec![held()])
            .when(hold(Cents(50_000)))
            .then_expect_error(EscrowError::AlreadyHeld(EscrowStatus::Held));
    }

    #[test]
    fn held_funds_are_released_to_the_runner_in_full() {
        TestFramework::<Escrow>::with(())
            .given(vec![held()])
            .when(EscrowCommand::Release {
                runner_id: UserId::parse("runner_1").unwrap(),
                at: at(),
            })
            .then_expect_events(vec![released()]);
    }

    #[test]
    fn released_funds_are_never_released_again() {
        TestFramework::<Escrow>::with(())
            .given(vec![held(), released()])
            .when(EscrowCommand::Release {
                runner_id: UserId::parse("runner_1").unwrap(),
                at: at(),
            })
            .then_expect_error(EscrowError::CannotRelease(EscrowStatus::Released));
    }

    #[test]
    fn released_funds_cannot_be_refunded() {
        TestFramework::<Escrow>::with(())
            .given(vec![held(), released()])
            .when(EscrowCommand::Refund {
                reason: "x".into(),
                at: at(),
            })
            .then_expect_error(EscrowError::CannotRefund(EscrowStatus::Released));
    }
}
