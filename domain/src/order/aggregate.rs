//! The order aggregate: `handle` decides, `apply` only records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::messages::{CancelRequester, OrderCancelled, OrderCreated, OrderItem, OrderStatusUpdated};
use crate::money::Cents;
use crate::order::{OrderCommand, OrderError, OrderEvent, OrderStatus};

/// An order as rebuilt from its events. Also the order's read model: it is
/// serialized as the order's current state for queries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: Option<OrderId>,
    pub customer_id: Option<UserId>,
    pub runner_id: Option<UserId>,
    pub items: Vec<OrderItem>,
    pub store_location: Option<String>,
    pub delivery_location: String,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    pub total_cents: Cents,
    pub currency: String,
    pub status: Option<OrderStatus>,
    /// When the order entered each status it has been in (the latest entry wins
    /// for a status entered twice).
    pub status_times: BTreeMap<OrderStatus, DateTime<Utc>>,
    pub cancellation_reason: Option<String>,
    /// The status before the current one, to answer a repeated command with the
    /// same event the first one caused.
    pub previous_status: Option<OrderStatus>,
    pub cancellation_requested_by: Option<CancelRequester>,
    /// How many times a runner has accepted the order; each acceptance is one
    /// round with its own accept-order saga ([`crate::ids::SagaId::for_acceptance`]).
    #[serde(default)]
    pub acceptances: u32,
}

impl Order {
    /// Decides a command with no side effects; [`Aggregate::handle`] only forwards here.
    pub fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match command {
            OrderCommand::Place {
                order_id,
                customer_id,
                order,
                at,
            } => {
                if self.status.is_some() {
                    return Err(OrderError::AlreadyPlaced);
                }
                Ok(vec![OrderEvent::Created(OrderCreated {
                    order_id,
                    customer_id,
                    items: order.items,
                    store_location: order.store_location,
                    delivery_location: order.delivery_location,
                    food_fee_cents: order.food_fee,
                    delivery_fee_cents: order.delivery_fee,
                    total_cents: order.total,
                    currency: order.currency,
                    status: OrderStatus::Pending,
                    created_at: at,
                })])
            }
            OrderCommand::ChangeStatus { status, runner_id, at } => {
                let (order_id, current) = self.placed()?;
                if current == OrderStatus::Accepted && status == OrderStatus::Accepted && runner_id != self.runner_id {
                    return Err(OrderError::TakenByAnotherRunner);
                }
                if current == status {
                    return Err(OrderError::AlreadyInStatus(status));
                }
                if status == OrderStatus::Cancelled {
                    return Err(OrderError::IllegalTransition {
                        from: current,
                        to: status,
                    });
                }
                if !current.can_become(status) {
                    return Err(OrderError::IllegalTransition {
                        from: current,
                        to: status,
                    });
                }
                let runner_id = match status {
                    OrderStatus::Accepted => {
                        let runner = runner_id.ok_or(OrderError::RunnerRequired)?;
                        if Some(&runner) == self.customer_id.as_ref() {
                            return Err(OrderError::RunnerIsCustomer(runner));
                        }
                        if self.acceptances >= MAX_ACCEPTANCES {
                            return Err(OrderError::TooManyAcceptances(MAX_ACCEPTANCES));
                        }
                        Some(runner)
                    }
                    _ if status.is_delivery_stage()
                        || current == OrderStatus::Accepted
                        || current.is_delivery_stage() =>
                    {
                        // Only the assigned runner reports a stage or gives the order back.
                        let runner = runner_id.ok_or(OrderError::RunnerRequired)?;
                        if Some(&runner) != self.runner_id.as_ref() {
                            return Err(OrderError::NotTheAssignedRunner(runner));
                        }
                        if status == OrderStatus::Created {
                            None
                        } else {
                            self.runner_id.clone()
                        }
                    }
                    // A runner gives back only an order they hold; listing a
                    // paid order for runners is the create-order saga's step.
                    OrderStatus::Created if runner_id.is_some() => return Err(OrderError::NotHeld(current)),
                    _ => self.runner_id.clone(),
                };
                Ok(vec![OrderEvent::StatusUpdated(OrderStatusUpdated {
                    order_id,
                    status,
                    previous_status: current,
                    runner_id,
                    updated_at: at,
                })])
            }
            OrderCommand::Cancel {
                reason,
                requested_by,
                expected_created_at,
                at,
            } => {
                let (order_id, current) = self.placed()?;
                if current == OrderStatus::Cancelled {
                    return Err(OrderError::AlreadyCancelled);
                }
                match requested_by {
                    CancelRequester::Customer if !matches!(current, OrderStatus::Pending | OrderStatus::Created) => {
                        return Err(OrderError::CustomerCannotCancel(current));
                    }
                    CancelRequester::Timeout if current != OrderStatus::Created => {
                        return Err(OrderError::NoLongerWaitingForRunner(current));
                    }
                    CancelRequester::Timeout
                        if expected_created_at.is_some()
                            && expected_created_at != self.status_times.get(&OrderStatus::Created).copied() =>
                    {
                        return Err(OrderError::StaleAcceptanceTimer);
                    }
                    _ => {}
                }
                if !current.can_become(OrderStatus::Cancelled) {
                    return Err(OrderError::CannotCancel(current));
                }
                Ok(vec![OrderEvent::Cancelled(OrderCancelled {
                    order_id,
                    previous_status: current,
                    reason,
                    requested_by,
                    cancelled_at: at,
                })])
            }
        }
    }

    fn placed(&self) -> Result<(OrderId, OrderStatus), OrderError> {
        match (self.order_id, self.status) {
            (Some(order_id), Some(status)) => Ok((order_id, status)),
            _ => Err(OrderError::NotFound),
        }
    }
}

/// How many times an order may be accepted in all (a runner who gives it
/// back counts). Every acceptance and give-back is a record about the order
/// on several topics; an order accepted and given back without end would be
/// a stream one runner could grow at will. Past this, the order waits for its
/// acceptance window to run out, and is cancelled and refunded.
pub const MAX_ACCEPTANCES: u32 = 10;

impl crate::snapshot::WholeReadModel for Order {}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
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
            OrderEvent::Created(e) => {
                self.order_id = Some(e.order_id);
                self.customer_id = Some(e.customer_id);
                self.items = e.items;
                self.store_location = e.store_location;
                self.delivery_location = e.delivery_location;
                self.food_fee_cents = e.food_fee_cents;
                self.delivery_fee_cents = e.delivery_fee_cents;
                self.total_cents = e.total_cents;
                self.currency = e.currency;
                self.status = Some(e.status);
                self.status_times.insert(e.status, e.created_at);
            }
            OrderEvent::StatusUpdated(e) => {
                if e.status == OrderStatus::Accepted {
                    self.acceptances += 1;
                }
                self.previous_status = self.status;
                self.status = Some(e.status);
                self.runner_id = e.runner_id;
                self.status_times.insert(e.status, e.updated_at);
            }
            OrderEvent::Cancelled(e) => {
                self.previous_status = self.status;
                self.status = Some(OrderStatus::Cancelled);
                self.cancellation_reason = Some(e.reason);
                self.cancellation_requested_by = Some(e.requested_by);
                self.status_times.insert(OrderStatus::Cancelled, e.cancelled_at);
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
    use crate::order::ValidatedOrder;

    type OrderTestFramework = TestFramework<Order>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn customer() -> UserId {
        UserId::parse("cust_1").unwrap()
    }

    fn runner() -> UserId {
        UserId::parse("runner_1").unwrap()
    }

    fn validated_order() -> ValidatedOrder {
        ValidatedOrder {
            items: vec![OrderItem {
                name: "Burger".into(),
                price_cents: Cents(1299),
                quantity: 1,
            }],
            store_location: None,
            delivery_location: "North Campus".into(),
            food_fee: Cents(1299),
            delivery_fee: Cents(200),
            total: Cents(1499),
            currency: "SGD".into(),
        }
    }

    fn created() -> OrderEvent {
        OrderEvent::Created(OrderCreated {
            order_id: order_id(),
            customer_id: customer(),
            items: validated_order().items,
            store_location: None,
            delivery_location: "North Campus".into(),
            food_fee_cents: Cents(1299),
            delivery_fee_cents: Cents(200),
            total_cents: Cents(1499),
            currency: "SGD".into(),
            status: OrderStatus::Pending,
            created_at: at(),
        })
    }

    fn moved(from: OrderStatus, to: OrderStatus, runner_id: Option<UserId>) -> OrderEvent {
        OrderEvent::StatusUpdated(OrderStatusUpdated {
            order_id: order_id(),
            status: to,
            previous_status: from,
            runner_id,
            updated_at: at(),
        })
    }

    fn change(status: OrderStatus, runner_id: Option<UserId>) -> OrderCommand {
        OrderCommand::ChangeStatus {
            status,
            runner_id,
            at: at(),
        }
    }

    #[test]
    fn placing_an_order_creates_it_pending_with_its_amounts() {
        OrderTestFramework::with(())
            .given_no_previous_events()
            .when(OrderCommand::Place {
                order_id: order_id(),
                customer_id: customer(),
                order: validated_order(),
                at: at(),
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn an_order_is_placed_only_once() {
        OrderTestFramework::with(())
            .given(vec![created()])
            .when(OrderCommand::Place {
                order_id: order_id(),
                customer_id: customer(),
                order: validated_order(),
                at: at(),
            })
            .then_expect_error(OrderError::AlreadyPlaced);
    }

    #[test]
    fn a_paid_order_becomes_created() {
        OrderTestFramework::with(())
            .given(vec![created()])
            .when(change(OrderStatus::Created, None))
            .then_expect_events(vec![moved(OrderStatus::Pending, OrderStatus::Created, None)]);
    }

    #[test]
    fn a_runner_cannot_list_an_order_still_being_paid_for() {
        OrderTestFramework::with(())
            .given(vec![created()])
            .when(change(OrderStatus::Created, Some(runner())))
            .then_expect_error(OrderError::NotHeld(OrderStatus::Pending));
    }

    #[test]
    fn a_status_that_skips_a_stage_is_refused() {
        OrderTestFramework::with(())
            .given(vec![created()])
            .when(change(OrderStatus::Accepted, Some(runner())))
            .then_expect_error(OrderError::IllegalTransition {
                from: OrderStatus::Pending,
                to: OrderStatus::Accepted,
            });
    }

    #[test]
    fn repeating_the_current_status_is_reported_as_such() {
        OrderTestFramework::with(())
            .given(vec![created(), moved(OrderStatus::Pending, OrderStatus::Created, None)])
            .when(change(OrderStatus::Created, None))
            .then_expect_error(OrderError::AlreadyInStatus(OrderStatus::Created));
    }

    #[test]
    fn the_customer_cannot_accept_their_own_order() {
        OrderTestFramework::with(())
            .given(vec![created(), moved(OrderStatus::Pending, OrderStatus::Created, None)])
            .when(change(OrderStatus::Accepted, Some(customer())))
            .then_expect_error(OrderError::RunnerIsCustomer(customer()));
    }

    #[test]
    fn only_the_assigned_runner_reports_a_delivery_stage() {
        OrderTestFramework::with(())
            .given(vec![
                created(),
                moved(OrderStatus::Pending, OrderStatus::Created, None),
                moved(OrderStatus::Created, OrderStatus::Accepted, Some(runner())),
            ])
            .when(change(
                OrderStatus::OnSite,
                Some(UserId::parse("someone_else").unwrap()),
            ))
            .then_expect_error(OrderError::NotTheAssignedRunner(UserId::parse("someone_else").unwrap()));
    }

    #[test]
    fn an_accepted_order_is_not_given_back_without_its_runner() {
        OrderTestFramework::with(())
            .given(vec![
                created(),
                moved(OrderStatus::Pending, OrderStatus::Created, None),
                moved(OrderStatus::Created, OrderStatus::Accepted, Some(runner())),
            ])
            .when(change(OrderStatus::Created, None))
            .then_expect_error(OrderError::RunnerRequired);
    }

    #[test]
    fn the_assigned_runner_gives_the_order_back_and_it_has_no_runner() {
        OrderTestFramework::with(())
            .given(vec![
                created(),
                moved(OrderStatus::Pending, OrderStatus::Created, None),
                moved(OrderStatus::Created, OrderStatus::Accepted, Some(runner())),
            ])
            .when(change(OrderStatus::Created, Some(runner())))
            .then_expect_events(vec![moved(OrderStatus::Accepted, OrderStatus::Created, None)]);
    }

    fn cancel(requested_by: CancelRequester, expected_created_at: Option<DateTime<Utc>>) -> OrderCommand {
        OrderCommand::Cancel {
            reason: "no longer wanted".into(),
            requested_by,
            expected_created_at,
            at: at(),
        }
    }

    fn cancelled(previous_status: OrderStatus, requested_by: CancelRequester) -> OrderEvent {
        OrderEvent::Cancelled(OrderCancelled {
            order_id: order_id(),
            previous_status,
            reason: "no longer wanted".into(),
            requested_by,
            cancelled_at: at(),
        })
    }

    fn accepted_by(runner_id: UserId) -> Vec<OrderEvent> {
        vec![
            created(),
            moved(OrderStatus::Pending, OrderStatus::Created, None),
            moved(OrderStatus::Created, OrderStatus::Accepted, Some(runner_id)),
        ]
    }

    #[test]
    fn an_order_accepted_and_given_back_too_often_is_not_accepted_again() {
        let runner = UserId::parse("runner_1").unwrap();
        let mut given = vec![created(), moved(OrderStatus::Pending, OrderStatus::Created, None)];
        for _ in 0..MAX_ACCEPTANCES {
            given.push(moved(OrderStatus::Created, OrderStatus::Accepted, Some(runner.clone())));
            given.push(moved(OrderStatus::Accepted, OrderStatus::Created, None));
        }
        OrderTestFramework::with(())
            .given(given)
            .when(change(OrderStatus::Accepted, Some(runner)))
            .then_expect_error(OrderError::TooManyAcceptances(MAX_ACCEPTANCES));
    }

    #[rstest::rstest]
    #[case::customer(CancelRequester::Customer)]
    #[case::system(CancelRequester::System)]
    fn a_pending_order_can_be_cancelled(#[case] requested_by: CancelRequester) {
        OrderTestFramework::with(())
            .given(vec![created()])
            .when(cancel(requested_by, None))
            .then_expect_events(vec![cancelled(OrderStatus::Pending, requested_by)]);
    }

    #[test]
    fn the_customer_cannot_cancel_once_a_runner_accepted() {
        OrderTestFramework::with(())
            .given(accepted_by(runner()))
            .when(cancel(CancelRequester::Customer, None))
            .then_expect_error(OrderError::CustomerCannotCancel(OrderStatus::Accepted));
    }

    #[test]
    fn an_operator_can_cancel_an_accepted_order() {
        OrderTestFramework::with(())
            .given(accepted_by(runner()))
            .when(cancel(CancelRequester::System, None))
            .then_expect_events(vec![cancelled(OrderStatus::Accepted, CancelRequester::System)]);
    }

    #[test]
    fn a_timeout_cancels_an_order_still_waiting_for_a_runner() {
        OrderTestFramework::with(())
            .given(vec![created(), moved(OrderStatus::Pending, OrderStatus::Created, None)])
            .when(cancel(CancelRequester::Timeout, Some(at())))
            .then_expect_events(vec![cancelled(OrderStatus::Created, CancelRequester::Timeout)]);
    }

    #[test]
    fn a_timeout_does_not_cancel_an_accepted_order() {
        OrderTestFramework::with(())
            .given(accepted_by(runner()))
            .when(cancel(CancelRequester::Timeout, Some(at())))
            .then_expect_error(OrderError::NoLongerWaitingForRunner(OrderStatus::Accepted));
    }

    #[test]
    fn a_stale_timer_does_not_cancel_an_order_given_back_since() {
        let mut given_back = moved(OrderStatus::Accepted, OrderStatus::Created, None);
        if let OrderEvent::StatusUpdated(e) = &mut given_back {
            e.updated_at = at() + chrono::Duration::minutes(29);
        }
        let mut history = accepted_by(runner());
        history.push(given_back);
        OrderTestFramework::with(())
            .given(history)
            .when(cancel(CancelRequester::Timeout, Some(at())))
            .then_expect_error(OrderError::StaleAcceptanceTimer);
    }

    #[test]
    fn a_second_runner_cannot_take_an_accepted_order() {
        OrderTestFramework::with(())
            .given(accepted_by(runner()))
            .when(change(OrderStatus::Accepted, Some(UserId::parse("runner_2").unwrap())))
            .then_expect_error(OrderError::TakenByAnotherRunner);
    }

    #[test]
    fn the_same_runner_accepting_again_is_reported_as_already_accepted() {
        OrderTestFramework::with(())
            .given(accepted_by(runner()))
            .when(change(OrderStatus::Accepted, Some(runner())))
            .then_expect_error(OrderError::AlreadyInStatus(OrderStatus::Accepted));
    }

    #[test]
    fn a_purchased_order_cannot_be_cancelled() {
        let mut history = accepted_by(runner());
        history.push(moved(OrderStatus::Accepted, OrderStatus::OnSite, Some(runner())));
        history.push(moved(OrderStatus::OnSite, OrderStatus::Purchased, Some(runner())));
        OrderTestFramework::with(())
            .given(history)
            .when(cancel(CancelRequester::System, None))
            .then_expect_error(OrderError::CannotCancel(OrderStatus::Purchased));
    }

    #[test]
    fn a_command_for_an_order_never_placed_is_refused() {
        OrderTestFramework::with(())
            .given_no_previous_events()
            .when(cancel(CancelRequester::System, None))
            .then_expect_error(OrderError::NotFound);
    }
}
