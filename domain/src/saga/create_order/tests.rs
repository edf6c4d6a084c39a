//! Given/when/then tests of the create-order saga: each transition, each
//! compensation, and the messages each step sends.

use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use rstest::rstest;
use uuid::Uuid;

use super::*;
use crate::messages::{
    DeclineReason, EscrowOperationFailed, FundsHeld, FundsRefunded, OrderCancelled, OrderCreated, OrderCreationFailed,
    OrderStatusUpdated, PaymentAuthorized, PaymentFailed, PaymentInfoFailed, PaymentInfoRetrieved,
    PaymentOperationFailed, PaymentVoided,
};
use crate::money::DecimalAmount;
use crate::saga::Reaction;

type SagaTest = TestFramework<CreateOrderSaga>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

fn saga_id() -> SagaId {
    SagaId(Uuid::from_u128(42))
}

fn order_id() -> OrderId {
    OrderId(Uuid::from_u128(1))
}

fn customer() -> UserId {
    UserId::parse("cust_1").unwrap()
}

fn details() -> OrderDetails {
    OrderDetails {
        food_items: vec![crate::messages::FoodItemRequest {
            name: "Burger".into(),
            price: DecimalAmount::from_cents(Cents(1299)),
            quantity: 1,
        }],
        store_location: None,
        delivery_location: "North Campus".into(),
        delivery_fee: Some(DecimalAmount::from_cents(Cents(200))),
    }
}

fn observe(message: Message) -> CreateOrderSagaCommand {
    CreateOrderSagaCommand::Observe {
        saga_id: saga_id(),
        message,
        at: at(),
    }
}

fn order_created_message(order_id: OrderId) -> Message {
    Message::OrderCreated(OrderCreated {
        order_id,
        customer_id: customer(),
        items: vec![],
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

fn started() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::Started {
        saga_id: saga_id(),
        order_id: order_id(),
        customer_id: customer(),
        order_details: Some(details()),
        at: at(),
    }
}

fn order_placed() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::OrderPlaced {
        food_fee_cents: Cents(1299),
        delivery_fee_cents: Cents(200),
        total_cents: Cents(1499),
        currency: "SGD".into(),
        at: at(),
    }
}

fn info_retrieved() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::PaymentInfoRetrieved {
        payment_method: "pm_card_visa".into(),
        at: at(),
    }
}

fn authorized() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::PaymentAuthorized {
        payment_id: PaymentId::for_order(order_id()),
        at: at(),
    }
}

fn payment_authorized_message() -> Message {
    Message::PaymentAuthorized(PaymentAuthorized {
        payment_id: PaymentId::for_order(order_id()),
        order_id: order_id(),
        customer_id: customer(),
        amount_cents: Cents(1499),
        currency: "SGD".into(),
        payment_method: "pm_card_visa".into(),
        gateway_reference: "auth_1".into(),
        authorized_at: at(),
    })
}

fn saga_after(events: Vec<CreateOrderSagaEvent>) -> CreateOrderSaga {
    let mut saga = CreateOrderSaga::default();
    for event in events {
        saga.apply(event);
    }
    saga
}

fn command_types(reaction: &Reaction<CreateOrderSagaEvent>) -> Vec<&'static str> {
    reaction.commands.iter().map(Message::message_type).collect()
}

#[test]
fn starting_records_the_order_and_sends_create_order() {
    let mut saga = CreateOrderSaga::default();
    let reaction = saga
        .react(CreateOrderSagaCommand::Start {
            saga_id: saga_id(),
            order_id: order_id(),
            customer_id: customer(),
            order_details: details(),
            at: at(),
        })
        .unwrap();
    assert_eq!(reaction.events, vec![started()]);
    assert_eq!(command_types(&reaction), vec!["saga.started", "create_order"]);
    assert_eq!(saga.header.status, Some(SagaStatus::Started));
    assert_eq!(saga.step, Some(CreateOrderStep::CreateOrder));
}

#[test]
fn the_order_being_created_asks_for_the_payment_method() {
    SagaTest::with(())
        .given(vec![started()])
        .when(observe(order_created_message(order_id())))
        .then_expect_events(vec![order_placed()]);
}

#[test]
fn the_payment_method_leads_to_an_authorization_of_the_total() {
    let mut saga = saga_after(vec![started(), order_placed()]);
    let reaction = saga
        .react(observe(Message::PaymentInfoRetrieved(PaymentInfoRetrieved {
            customer_id: customer(),
            order_id: Some(order_id()),
            payment_method: "pm_card_visa".into(),
        })))
        .unwrap();
    assert_eq!(reaction.events, vec![info_retrieved()]);
    let Some(Message::AuthorizePayment(authorize)) = reaction.commands.get(1) else {
        panic!("expected authorize_payment, got {:?}", reaction.commands)
    };
    assert_eq!(authorize.amount_cents, Cents(1499));
    assert_eq!(authorize.payment_method, "pm_card_visa");
}

#[test]
fn an_authorized_payment_holds_the_total_in_escrow() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved()]);
    let reaction = saga.react(observe(payment_authorized_message())).unwrap();
    assert_eq!(reaction.events, vec![authorized()]);
    let Some(Message::HoldFunds(hold)) = reaction.commands.get(1) else {
        panic!("expected hold_funds")
    };
    assert_eq!(
        (hold.amount_cents, hold.food_fee_cents, hold.delivery_fee_cents),
        (Cents(1499), Cents(1299), Cents(200))
    );
}

fn funds_held() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::FundsHeld {
        escrow_id: EscrowId::for_order(order_id()),
        at: at(),
    }
}

fn funds_held_message() -> Message {
    Message::FundsHeld(FundsHeld {
        escrow_id: EscrowId::for_order(order_id()),
        order_id: order_id(),
        customer_id: customer(),
        amount_cents: Cents(1499),
        food_fee_cents: Cents(1299),
        delivery_fee_cents: Cents(200),
        currency: "SGD".into(),
        held_at: at(),
    })
}

fn marked_created() -> CreateOrderSagaEvent {
    CreateOrderSagaEvent::OrderMarkedCreated {
        order_created_at: at(),
        at: at(),
    }
}

fn timer_id() -> TimerId {
    TimerId(Uuid::from_u128(7))
}

fn timer_started() -> Vec<CreateOrderSagaEvent> {
    vec![
        CreateOrderSagaEvent::TimerStarted {
            timer_id: timer_id(),
            due_at: due(),
            at: at(),
        },
        CreateOrderSagaEvent::Completed { at: at() },
    ]
}

fn due() -> DateTime<Utc> {
    at() + chrono::Duration::minutes(30)
}

/// Every event of a saga that placed its order and started the timer.
fn completed() -> Vec<CreateOrderSagaEvent> {
    let mut events = vec![
        started(),
        order_placed(),
        info_retrieved(),
        authorized(),
        funds_held(),
        marked_created(),
    ];
    events.extend(timer_started());
    events
}

fn timer_expired_message() -> Message {
    Message::TimerExpired(crate::messages::TimerExpired {
        timer_id: timer_id(),
        timer_type: ORDER_ACCEPTANCE_TIMER.into(),
        entity_id: order_id().to_string(),
        order_id: Some(order_id()),
        due_at: due(),
        fired_at: due(),
        payload: serde_json::json!({"order_created_at": at()}),
    })
}

fn order_cancelled_message(requested_by: CancelRequester) -> Message {
    Message::OrderCancelled(OrderCancelled {
        order_id: order_id(),
        previous_status: OrderStatus::Created,
        reason: "changed my mind".into(),
        requested_by,
        cancelled_at: at(),
    })
}

#[test]
fn held_funds_mark_the_order_created_which_starts_the_acceptance_timer() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved(), authorized()]);
    let reaction = saga.react(observe(funds_held_message())).unwrap();
    assert_eq!(
        command_types(&reaction),
        vec!["saga.step_completed", "update_order_status"]
    );

    let reaction = saga
        .react(observe(Message::OrderStatusUpdated(OrderStatusUpdated {
            order_id: order_id(),
            status: OrderStatus::Created,
            previous_status: OrderStatus::Pending,
            runner_id: None,
            updated_at: at(),
        })))
        .unwrap();
    assert_eq!(reaction.events, vec![marked_created()]);
    let Some(Message::StartOrderTimer(start)) = reaction.commands.get(1) else {
        panic!("expected start_order_timer, got {:?}", reaction.commands)
    };
    assert_eq!(start.order_created_at, Some(at()));
    assert_eq!(saga.step, Some(CreateOrderStep::StartTimer));
}

#[test]
fn the_started_timer_completes_the_saga() {
    let mut given = completed();
    given.truncate(given.len() - 2);
    SagaTest::with(())
        .given(given)
        .when(observe(Message::TimerStarted(crate::messages::TimerStarted {
            timer_id: timer_id(),
            timer_type: ORDER_ACCEPTANCE_TIMER.into(),
            entity_id: order_id().to_string(),
            order_id: Some(order_id()),
            due_at: due(),
            scheduled_at: at(),
            payload: serde_json::json!({}),
        })))
        .then_expect_events(timer_started());
}

#[rstest]
#[case::another_amount(Cents(1), "pm_card_visa", "it is for 0.01 SGD, not the order's 14.99 SGD")]
#[case::another_card(
    Cents(1499),
    "pm_card_of_someone_else",
    "it is on payment method pm_card_of_someone_else"
)]
fn an_authorization_the_saga_did_not_ask_for_is_not_taken_but_voided_and_the_order_cancelled(
    #[case] amount: Cents,
    #[case] payment_method: &str,
    #[case] reason: &str,
) {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved()]);
    let Message::PaymentAuthorized(mut authorized) = payment_authorized_message() else {
        unreachable!()
    };
    authorized.amount_cents = amount;
    authorized.payment_method = payment_method.to_string();

    let reaction = saga.react(observe(Message::PaymentAuthorized(authorized))).unwrap();

    assert_eq!(
        command_types(&reaction),
        vec![
            "saga.step_completed",
            "saga.anomaly_recorded",
            "saga.compensating",
            "void_payment",
            "cancel_order"
        ],
        "no hold_funds; the operators are told"
    );
    assert_eq!(saga.payment_id, None);
    assert_eq!(saga.header.status, Some(SagaStatus::Compensating));
    assert_eq!(
        saga.anomalies,
        vec![format!("`payment.authorized` was not taken: {reason}")]
    );
}

#[test]
fn an_expired_timer_asks_the_order_to_cancel_if_still_waiting_since_then() {
    let mut saga = saga_after(completed());
    let reaction = saga.react(observe(timer_expired_message())).unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Cancelling));
    let Some(Message::CancelOrder(cancel)) = reaction.commands.get(1) else {
        panic!("expected cancel_order, got {:?}", reaction.commands)
    };
    assert_eq!(cancel.requested_by, CancelRequester::Timeout);
    assert_eq!(cancel.expected_created_at, Some(at()));
}

#[test]
fn the_expiry_of_a_timer_restarted_after_a_give_back_asks_to_cancel_the_order_as_listed_again() {
    // A runner gave the order back: it is CREATED again since `relisted`, and the
    // accept-order saga started a new timer for that time.
    let relisted = at() + chrono::Duration::minutes(10);
    let mut saga = saga_after(completed());
    let Message::TimerExpired(mut expired) = timer_expired_message() else {
        unreachable!()
    };
    expired.payload = serde_json::json!({ "order_created_at": relisted });

    let reaction = saga.react(observe(Message::TimerExpired(expired))).unwrap();

    let Some(Message::CancelOrder(cancel)) = reaction.commands.get(1) else {
        panic!("expected cancel_order, got {:?}", reaction.commands)
    };
    assert_eq!(cancel.expected_created_at, Some(relisted));
}

#[test]
fn a_timeout_the_order_refuses_returns_the_saga_to_completed() {
    let mut saga = saga_after(completed());
    saga.react(observe(timer_expired_message())).unwrap();
    let reaction = saga
        .react(observe(Message::OrderCancellationFailed(
            crate::messages::OrderCancellationFailed {
                order_id: order_id(),
                reason: "the order is ACCEPTED".into(),
            },
        )))
        .unwrap();
    assert_eq!(command_types(&reaction), vec!["saga.step_completed"]);
    assert_eq!(saga.header.status, Some(SagaStatus::Completed));
    assert_eq!(saga.cancellation_reason, None);
}

#[test]
fn a_cancelled_order_refunds_voids_and_stops_the_timer_then_the_saga_is_cancelled() {
    let mut saga = saga_after(completed());
    let reaction = saga
        .react(observe(order_cancelled_message(CancelRequester::Customer)))
        .unwrap();
    assert_eq!(
        command_types(&reaction),
        vec!["saga.cancelling", "refund_funds", "void_payment", "stop_order_timer"]
    );
    saga.react(observe(Message::FundsRefunded(FundsRefunded {
        escrow_id: EscrowId::for_order(order_id()),
        order_id: order_id(),
        customer_id: customer(),
        amount_cents: Cents(1499),
        reason: "x".into(),
        refunded_at: at(),
    })))
    .unwrap();
    saga.react(observe(Message::PaymentVoided(PaymentVoided {
        payment_id: PaymentId::for_order(order_id()),
        order_id: order_id(),
        amount_cents: Cents(1499),
        reason: "x".into(),
        voided_at: at(),
        customer_id: Some(customer()),
    })))
    .unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Cancelling));
    let last = saga
        .react(observe(Message::TimerStopped(crate::messages::TimerStopped {
            order_id: order_id(),
            timer_type: ORDER_ACCEPTANCE_TIMER.into(),
            timer_ids: vec![],
            stopped_at: at(),
        })))
        .unwrap();
    assert_eq!(command_types(&last), vec!["saga.step_completed", "saga.cancelled"]);
    assert_eq!(saga.header.status, Some(SagaStatus::Cancelled));
    assert_eq!(saga.cancellation_reason.as_deref(), Some("changed my mind"));
}

#[test]
fn an_order_cancelled_while_authorizing_voids_the_authorization_once_it_arrives() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved()]);
    let reaction = saga
        .react(observe(order_cancelled_message(CancelRequester::Customer)))
        .unwrap();
    assert_eq!(command_types(&reaction), vec!["saga.cancelling"]);
    assert_eq!(saga.awaiting, Some(CreateOrderStep::AuthorizePayment));

    let reaction = saga.react(observe(payment_authorized_message())).unwrap();
    assert_eq!(command_types(&reaction), vec!["saga.step_completed", "void_payment"]);
    saga.react(observe(Message::PaymentVoided(PaymentVoided {
        payment_id: PaymentId::for_order(order_id()),
        order_id: order_id(),
        amount_cents: Cents(1499),
        reason: "x".into(),
        voided_at: at(),
        customer_id: Some(customer()),
    })))
    .unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Cancelled));
}

#[test]
fn an_order_cancelled_while_authorizing_a_declined_card_needs_no_undo() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved()]);
    saga.react(observe(order_cancelled_message(CancelRequester::Customer)))
        .unwrap();
    saga.react(observe(Message::PaymentFailed(PaymentFailed {
        payment_id: PaymentId::for_order(order_id()),
        order_id: order_id(),
        customer_id: customer(),
        amount_cents: Cents(1499),
        reason: DeclineReason::CardDeclined,
        message: "declined".into(),
        failed_at: at(),
    })))
    .unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Cancelled));
}

#[test]
fn an_order_cancelled_before_payment_needs_no_undo() {
    SagaTest::with(())
        .given(vec![started(), order_placed()])
        .when(observe(order_cancelled_message(CancelRequester::Customer)))
        .then_expect_events(vec![
            CreateOrderSagaEvent::OrderCancelled {
                requested_by: CancelRequester::Customer,
                reason: "changed my mind".into(),
                compensations: vec![],
                awaiting: None,
                at: at(),
            },
            CreateOrderSagaEvent::Cancelled { at: at() },
        ]);
}

#[test]
fn an_expiry_delivered_twice_asks_to_cancel_once() {
    let mut saga = saga_after(completed());
    saga.react(observe(timer_expired_message())).unwrap();
    let again = saga.react(observe(timer_expired_message())).unwrap();
    assert_eq!(again, Reaction::default());
}

#[test]
fn a_cancelled_order_reported_twice_refunds_once() {
    let mut saga = saga_after(completed());
    saga.react(observe(order_cancelled_message(CancelRequester::Timeout)))
        .unwrap();
    let again = saga
        .react(observe(order_cancelled_message(CancelRequester::Timeout)))
        .unwrap();
    assert_eq!(again, Reaction::default());
}

#[rstest]
#[case(PaymentInfoFailure::UserNotFound, "customer cust_1 was not found")]
#[case(PaymentInfoFailure::NoPaymentMethod, "customer cust_1 has no payment method")]
fn no_payment_info_cancels_the_order(#[case] failure: PaymentInfoFailure, #[case] reason: &str) {
    SagaTest::with(())
        .given(vec![started(), order_placed()])
        .when(observe(Message::PaymentInfoFailed(PaymentInfoFailed {
            customer_id: customer(),
            order_id: Some(order_id()),
            reason: failure,
            message: "whatever the service said".into(),
        })))
        .then_expect_events(vec![CreateOrderSagaEvent::CompensationStarted {
            failed_step: CreateOrderStep::GetPaymentInfo,
            reason: reason.into(),
            compensations: vec![Compensation::CancelOrder],
            at: at(),
        }]);
}

#[test]
fn a_declined_payment_cancels_the_order_and_says_why() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved()]);
    let reaction = saga
        .react(observe(Message::PaymentFailed(PaymentFailed {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            customer_id: customer(),
            amount_cents: Cents(1499),
            reason: DeclineReason::InsufficientFunds,
            message: "insufficient funds".into(),
            failed_at: at(),
        })))
        .unwrap();
    assert_eq!(command_types(&reaction), vec!["saga.compensating", "cancel_order"]);
    assert_eq!(saga.header.status, Some(SagaStatus::Compensating));
    assert_eq!(
        saga.header.error.as_deref(),
        Some("the payment was declined: insufficient funds (INSUFFICIENT_FUNDS)")
    );
}

#[test]
fn a_refused_escrow_hold_voids_the_payment_and_cancels_the_order() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved(), authorized()]);
    let reaction = saga
        .react(observe(Message::HoldFailed(EscrowOperationFailed {
            order_id: order_id(),
            reason: "above the escrow limit".into(),
        })))
        .unwrap();
    assert_eq!(
        command_types(&reaction),
        vec!["saga.compensating", "void_payment", "cancel_order"]
    );

    let reaction = saga
        .react(observe(Message::PaymentVoided(PaymentVoided {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            amount_cents: Cents(1499),
            reason: "x".into(),
            voided_at: at(),
            customer_id: Some(customer()),
        })))
        .unwrap();
    assert_eq!(
        saga.header.status,
        Some(SagaStatus::Compensating),
        "{:?}",
        reaction.events
    );

    saga.react(observe(Message::OrderCancelled(OrderCancelled {
        order_id: order_id(),
        previous_status: OrderStatus::Pending,
        reason: "x".into(),
        requested_by: CancelRequester::System,
        cancelled_at: at(),
    })))
    .unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Compensated));
    assert_eq!(
        saga.header.error.as_deref(),
        Some("the escrow hold failed: above the escrow limit")
    );
}

#[test]
fn an_order_that_cannot_be_created_fails_the_saga() {
    SagaTest::with(())
        .given(vec![started()])
        .when(observe(Message::OrderCreationFailed(OrderCreationFailed {
            order_id: order_id(),
            customer_id: customer(),
            reason: "an order needs at least one food item".into(),
        })))
        .then_expect_events(vec![CreateOrderSagaEvent::Failed {
            step: CreateOrderStep::CreateOrder,
            reason: "the order could not be created: an order needs at least one food item".into(),
            at: at(),
        }]);
}

#[test]
fn a_failed_compensation_fails_the_saga() {
    let mut saga = saga_after(vec![started(), order_placed(), info_retrieved(), authorized()]);
    saga.react(observe(Message::HoldFailed(EscrowOperationFailed {
        order_id: order_id(),
        reason: "limit".into(),
    })))
    .unwrap();
    saga.react(observe(Message::PaymentVoidFailed(PaymentOperationFailed {
        order_id: order_id(),
        reason: "processor refused".into(),
    })))
    .unwrap();
    assert_eq!(saga.header.status, Some(SagaStatus::Failed));
    assert!(saga.header.error.as_deref().unwrap().contains("processor refused"));
}

#[test]
fn a_duplicate_event_changes_nothing() {
    SagaTest::with(())
        .given(vec![started(), order_placed(), info_retrieved(), authorized()])
        .when(observe(payment_authorized_message()))
        .then_expect_events(vec![]);
}

#[test]
fn a_late_refund_after_compensation_changes_nothing() {
    let mut saga = saga_after(vec![started(), order_placed()]);
    saga.react(observe(Message::PaymentInfoFailed(PaymentInfoFailed {
        customer_id: customer(),
        order_id: Some(order_id()),
        reason: PaymentInfoFailure::UserNotFound,
        message: "".into(),
    })))
    .unwrap();
    let reaction = saga
        .react(observe(Message::FundsRefunded(FundsRefunded {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            customer_id: customer(),
            amount_cents: Cents(1499),
            reason: "x".into(),
            refunded_at: at(),
        })))
        .unwrap();
    assert_eq!(reaction, Reaction::default());
}

#[test]
fn a_message_about_another_order_is_ignored() {
    SagaTest::with(())
        .given(vec![started()])
        .when(observe(order_created_message(OrderId(Uuid::from_u128(999)))))
        .then_expect_events(vec![]);
}

#[test]
fn an_order_created_by_hand_starts_a_saga_that_was_never_started() {
    let mut saga = CreateOrderSaga::default();
    let reaction = saga.react(observe(order_created_message(order_id()))).unwrap();
    assert_eq!(
        reaction.events,
        vec![
            CreateOrderSagaEvent::Started {
                saga_id: saga_id(),
                order_id: order_id(),
                customer_id: customer(),
                order_details: None,
                at: at(),
            },
            order_placed(),
        ]
    );
    assert_eq!(
        command_types(&reaction),
        vec!["saga.started", "saga.step_completed", "get_payment_info"]
    );
}

#[test]
fn an_event_for_a_saga_never_started_is_ignored_unless_it_places_an_order() {
    SagaTest::with(())
        .given_no_previous_events()
        .when(observe(payment_authorized_message()))
        .then_expect_events(vec![]);
}
