//! Notifications: what customers and runners are told about their orders.
//!
//! [`compose`] decides, from one event and the parties of its order, who is told
//! what; it is a pure function, so every sentence a person reads is tested here.
//! A [`Notification`] is an aggregate whose id is derived from the event that
//! caused it and its recipient ([`notification_id`]), so an event delivered
//! twice, replayed, or reported again makes one notification per recipient.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{OrderId, UserId};
use crate::messages::{CancelRequester, Message, NotificationCreated, OrderStatusUpdated};
use crate::money::Cents;
use crate::order::OrderStatus;

/// The people an order concerns, as the notification service has learned them
/// from the order's events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderParties {
    pub customer_id: Option<UserId>,
    pub runner_id: Option<UserId>,
    pub currency: String,
}

impl OrderParties {
    /// The parties after `message`: who placed the order, who runs it now.
    pub fn after(&self, message: &Message) -> OrderParties {
        let mut next = self.clone();
        match message {
            Message::OrderCreated(created) => {
                next.customer_id = Some(created.customer_id.clone());
                next.currency = created.currency.clone();
            }
            Message::OrderStatusUpdated(updated) => next.runner_id = updated.runner_id.clone(),
            _ => {}
        }
        next
    }
}

/// The notification service keeps each order's parties as an aggregate of its
/// own, changed only when an event changes who the parties are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum OrderPartiesEvent {
    Changed(OrderParties),
}

impl DomainEvent for OrderPartiesEvent {
    fn event_type(&self) -> String {
        "order_parties.changed".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl crate::snapshot::WholeReadModel for OrderParties {}

impl Aggregate for OrderParties {
    const TYPE: &'static str = "order_parties";
    /// The parties as they are now.
    type Command = OrderParties;
    type Event = OrderPartiesEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if command != *self {
            sink.write(OrderPartiesEvent::Changed(command), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let OrderPartiesEvent::Changed(parties) = event;
        *self = parties;
    }
}

/// The inbox every operator reads (`GET /api/notifications/user/operators`):
/// what needs a person, such as a saga that refused a reply.
pub const OPERATORS_INBOX: &str = "operators";

/// One notification to create: to whom, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub recipient: UserId,
    pub kind: &'static str,
    pub title: String,
    pub message: String,
}

fn money(cents: Cents, currency: &str) -> String {
    let currency = if currency.is_empty() {
        crate::money::DEFAULT_CURRENCY
    } else {
        currency
    };
    format!("{currency} {cents}")
}

/// The message types someone is told of ([`compose`]) or that say who an
/// order's parties are ([`OrderParties::after`]); keep the three in step.
pub const NOTIFIED_TYPES: &[&str] = &[
    "order.created",
    "order.status_updated",
    "order.cancelled",
    "payment.authorized",
    "payment.failed",
    "payment.voided",
    "payment.captured",
    "payment.refunded",
    "payout.sent",
    "payout.waiting",
    "payout.parked",
    "escrow.funds_held",
    "escrow.released",
    "escrow.refunded",
    "saga.anomaly_recorded",
];

/// Who is told what about `message`, given the order's parties before it.
pub fn compose(message: &Message, parties: &OrderParties) -> Vec<Draft> {
    let customer = parties.customer_id.clone();
    let runner = parties.runner_id.clone();
    let currency = parties.currency.as_str();
    let to = |recipient: Option<UserId>, kind: &'static str, title: &str, message: String| {
        recipient.map(|recipient| Draft {
            recipient,
            kind,
            title: title.to_string(),
            message,
        })
    };
    let drafts = match message {
        Message::OrderCreated(created) if created.status == OrderStatus::Pending => vec![to(
            Some(created.customer_id.clone()),
            "order_placed",
            "Order placed",
            format!(
                "Your order to {} is placed: {} in all. We are taking the payment.",
                created.delivery_location,
                money(created.total_cents, &created.currency)
            ),
        )],
        Message::PaymentAuthorized(authorized) => vec![to(
            Some(authorized.customer_id.clone()),
            "payment_authorized",
            "Payment authorized",
            format!(
                "{} is on hold on your card until your order is delivered.",
                money(authorized.amount_cents, &authorized.currency)
            ),
        )],
        Message::PaymentFailed(failed) => vec![to(
            Some(failed.customer_id.clone()),
            "payment_failed",
            "Payment declined",
            format!("Your payment was declined: {}. The order is cancelled.", failed.message),
        )],
        Message::FundsHeld(held) => vec![to(
            Some(held.customer_id.clone()),
            "funds_held",
            "Funds held",
            format!(
                "{} is held in escrow and paid to your runner only when the order is delivered.",
                money(held.amount_cents, &held.currency)
            ),
        )],
        Message::OrderStatusUpdated(updated) => status_drafts(updated, parties),
        Message::OrderCancelled(cancelled) => {
            let (kind, title) = match cancelled.requested_by {
                CancelRequester::Timeout => ("order_timed_out", "No runner in time"),
                _ => ("order_cancelled", "Order cancelled"),
            };
            vec![
                to(
                    customer,
                    kind,
                    title,
                    format!("Your order is cancelled: {}.", cancelled.reason),
                ),
                to(
                    runner,
                    "order_cancelled",
                    "Order cancelled",
                    format!("The order you accepted is cancelled: {}.", cancelled.reason),
                ),
            ]
        }
        Message::FundsRefunded(refunded) => vec![to(
            Some(refunded.customer_id.clone()),
            "refunded",
            "Refunded",
            format!(
                "{} held for your order is refunded.",
                money(refunded.amount_cents, currency)
            ),
        )],
        Message::PaymentVoided(voided) => vec![to(
            voided.customer_id.clone().or(customer),
            "payment_released",
            "Card hold released",
            format!(
                "The hold of {} on your card is released; you are not charged.",
                money(voided.amount_cents, currency)
            ),
        )],
        Message::PaymentCaptured(captured) => vec![to(
            captured.customer_id.clone().or(customer),
            "receipt",
            "Receipt",
            format!(
                "You paid {} for order {}. Thank you!",
                money(captured.amount_cents, currency),
                captured.order_id
            ),
        )],
        Message::PaymentRefunded(refunded) => vec![to(
            Some(refunded.customer_id.clone()),
            "refund_issued",
            "Refund issued",
            format!(
                "{} of your payment for order {} is refunded to your card: {}.",
                money(refunded.amount_cents, currency),
                refunded.order_id,
                refunded.reason
            ),
        )],
        Message::SagaAnomalyRecorded(anomaly) => vec![to(
            UserId::parse(OPERATORS_INBOX).ok(),
            "saga_anomaly",
            "A saga refused a reply",
            format!(
                "The {} saga {} of order {} refused a reply and is {}: {}",
                anomaly.saga_type,
                anomaly.saga_id,
                anomaly.order_id,
                anomaly.status,
                anomaly.error.as_deref().unwrap_or("no reason given")
            ),
        )],
        Message::FundsReleased(released) => vec![to(
            Some(released.runner_id.clone()),
            "payout",
            "Payout",
            format!(
                "{} is released to you: the food you bought plus your delivery fee. It goes to your payout account.",
                money(released.amount_cents, currency)
            ),
        )],
        Message::PayoutSent(sent) => vec![to(
            Some(sent.runner_id.clone()),
            "payout_sent",
            "Payout sent",
            format!(
                "{} for order {} is sent to your payout account {}.",
                money(sent.amount_cents, currency),
                sent.order_id,
                sent.payout_account
            ),
        )],
        Message::PayoutWaiting(waiting) => vec![to(
            Some(waiting.runner_id.clone()),
            "payout_waiting",
            "Add a payout account",
            format!(
                "{} for order {} waits for a payout account: add one to your profile and it is sent at once.",
                money(waiting.amount_cents, currency),
                waiting.order_id
            ),
        )],
        Message::PayoutParked(parked) => vec![
            to(
                Some(parked.runner_id.clone()),
                "payout_declined",
                "Payout declined",
                format!(
                    "Your payout account declined {} for order {}: {}. Check your payout account; an operator will retry.",
                    money(parked.amount_cents, currency),
                    parked.order_id,
                    parked.reason
                ),
            ),
            to(
                UserId::parse(OPERATORS_INBOX).ok(),
                "payout_parked",
                "A payout is parked",
                format!(
                    "The payout of {} for order {} to {} was declined {} times ({}); retry it with POST /api/payouts/{}/retry.",
                    money(parked.amount_cents, currency),
                    parked.order_id,
                    parked.runner_id,
                    parked.attempts,
                    parked.reason,
                    parked.order_id
                ),
            ),
        ],
        _ => Vec::new(),
    };
    drafts.into_iter().flatten().collect()
}

fn status_drafts(updated: &OrderStatusUpdated, parties: &OrderParties) -> Vec<Option<Draft>> {
    let (status, previous) = (updated.status, updated.previous_status);
    let customer = parties.customer_id.clone();
    let to = |recipient: Option<UserId>, kind: &'static str, title: &str, text: String| {
        recipient.map(|recipient| Draft {
            recipient,
            kind,
            title: title.to_string(),
            message: text,
        })
    };
    let runner_now = updated.runner_id.clone();
    let runner_name = runner_now
        .as_ref()
        .or(parties.runner_id.as_ref())
        .map(|r| r.to_string())
        .unwrap_or_default();
    use OrderStatus::*;
    match (previous, status) {
        (Pending, Created) => vec![to(
            customer,
            "order_listed",
            "Looking for a runner",
            "Your order is paid and listed for runners.".to_string(),
        )],
        (_, Accepted) => vec![
            to(
                customer,
                "order_accepted",
                "Runner on the way",
                format!("{runner_name} accepted your order."),
            ),
            to(
                runner_now,
                "order_accepted",
                "Order accepted",
                "You accepted the order. Head to the store.".to_string(),
            ),
        ],
        (Accepted | OnSite, Created) => vec![
            to(
                customer,
                "acceptance_cancelled",
                "Looking for a runner again",
                format!("{runner_name} gave your order back; it is listed for runners again."),
            ),
            to(
                parties.runner_id.clone(),
                "acceptance_cancelled",
                "Order given back",
                "You gave the order back.".to_string(),
            ),
        ],
        (_, OnSite | Purchased | Collected | OnTheWay | Delivered) => {
            let (kind, customer_text, runner_text) = match status {
                OnSite => (
                    "runner_on_site",
                    "Your runner is at the store.",
                    "You are at the store.",
                ),
                Purchased => (
                    "food_purchased",
                    "Your runner bought your food.",
                    "You bought the food.",
                ),
                Collected => (
                    "food_collected",
                    "Your runner collected your food.",
                    "You collected the food.",
                ),
                OnTheWay => ("on_the_way", "Your food is on the way.", "You are on the way."),
                _ => ("delivered", "Your order is delivered.", "You delivered the order."),
            };
            vec![
                to(customer, kind, "Order update", customer_text.to_string()),
                to(runner_now, kind, "Order update", runner_text.to_string()),
            ]
        }
        (_, Completed) => vec![
            to(
                customer,
                "order_completed",
                "Order completed",
                "Your order is complete. Rate your runner!".to_string(),
            ),
            to(
                runner_now,
                "order_completed",
                "Order completed",
                "The order is complete. Rate your customer!".to_string(),
            ),
        ],
        _ => Vec::new(),
    }
}

/// The notification an event makes for a recipient. It is derived from what the
/// event says, not from its envelope, so the same event delivered again, and a
/// repeated answer that reports the same fact again (a service answers a
/// repeated command with the event it recorded the first time), name the same
/// notification.
pub fn notification_id(event: &Message, recipient: &UserId) -> Uuid {
    let fact = serde_json::to_string(event).expect("messages always serialize");
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, format!("{recipient}\n{fact}").as_bytes())
}

const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x3f1c_2a7e_9b4d_4c61_8e0f_5a2b_7c9d_1e3f);

#[derive(Clone, Debug, PartialEq)]
pub enum NotificationCommand {
    Create(NotificationCreated),
    MarkRead { at: DateTime<Utc> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum NotificationEvent {
    Created(NotificationCreated),
    Read { read_at: DateTime<Utc> },
}

impl DomainEvent for NotificationEvent {
    fn event_type(&self) -> String {
        match self {
            NotificationEvent::Created(_) => "notification.created".to_string(),
            NotificationEvent::Read { .. } => "notification.read".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("notification {0} already exists")]
    AlreadyCreated(Uuid),
    #[error("the notification does not exist")]
    NotFound,
    #[error("a notification needs a message")]
    EmptyMessage,
}

/// A notification as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: Option<Uuid>,
    pub user_id: Option<UserId>,
    pub order_id: Option<OrderId>,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `created_at` in a fixed-width form that sorts as the times do.
    pub sort_key: String,
    /// `UNREAD` or `READ`: text, so that both stores filter on it the same way.
    pub status: String,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
}

pub const UNREAD: &str = "UNREAD";
pub const READ: &str = "READ";

impl Notification {
    pub fn decide(&self, command: NotificationCommand) -> Result<Vec<NotificationEvent>, NotificationError> {
        match command {
            NotificationCommand::Create(created) => {
                if let Some(id) = self.notification_id {
                    return Err(NotificationError::AlreadyCreated(id));
                }
                if created.message.trim().is_empty() {
                    return Err(NotificationError::EmptyMessage);
                }
                Ok(vec![NotificationEvent::Created(created)])
            }
            NotificationCommand::MarkRead { at } => {
                if self.notification_id.is_none() {
                    return Err(NotificationError::NotFound);
                }
                if self.read {
                    return Ok(Vec::new());
                }
                Ok(vec![NotificationEvent::Read { read_at: at }])
            }
        }
    }
}

impl Aggregate for Notification {
    const TYPE: &'static str = "notification";
    type Command = NotificationCommand;
    type Event = NotificationEvent;
    type Error = NotificationError;
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
            NotificationEvent::Created(e) => {
                self.notification_id = Some(e.notification_id);
                self.user_id = Some(e.user_id);
                self.order_id = e.order_id;
                self.kind = e.kind;
                self.title = e.title;
                self.message = e.message;
                self.sort_key = crate::time::sort_key(e.created_at);
                self.status = UNREAD.to_string();
                self.created_at = Some(e.created_at);
            }
            NotificationEvent::Read { read_at } => {
                self.read = true;
                self.status = READ.to_string();
                self.read_at = Some(read_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rstest::rstest;

    use super::*;
    use crate::ids::EscrowId;
    use crate::messages::{FundsReleased, OrderCancelled};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn parties(runner: Option<&str>) -> OrderParties {
        OrderParties {
            customer_id: Some(user("cust_1")),
            runner_id: runner.map(user),
            currency: "SGD".into(),
        }
    }

    fn moved(from: OrderStatus, to: OrderStatus, runner: Option<&str>) -> Message {
        Message::OrderStatusUpdated(OrderStatusUpdated {
            order_id: order_id(),
            status: to,
            previous_status: from,
            runner_id: runner.map(user),
            updated_at: at(),
        })
    }

    fn told(drafts: &[Draft]) -> Vec<(String, &'static str)> {
        drafts.iter().map(|d| (d.recipient.to_string(), d.kind)).collect()
    }

    #[rstest]
    #[case(OrderStatus::Created, OrderStatus::Accepted, "order_accepted")]
    #[case(OrderStatus::Accepted, OrderStatus::OnSite, "runner_on_site")]
    #[case(OrderStatus::OnSite, OrderStatus::Purchased, "food_purchased")]
    #[case(OrderStatus::Purchased, OrderStatus::Collected, "food_collected")]
    #[case(OrderStatus::Collected, OrderStatus::OnTheWay, "on_the_way")]
    #[case(OrderStatus::OnTheWay, OrderStatus::Delivered, "delivered")]
    #[case(OrderStatus::Delivered, OrderStatus::Completed, "order_completed")]
    fn each_runner_step_tells_the_customer_and_the_runner(
        #[case] from: OrderStatus,
        #[case] to: OrderStatus,
        #[case] kind: &str,
    ) {
        let drafts = compose(&moved(from, to, Some("runner_1")), &parties(Some("runner_1")));
        assert_eq!(
            told(&drafts),
            vec![("cust_1".to_string(), kind), ("runner_1".to_string(), kind)]
        );
    }

    #[test]
    fn a_given_back_order_tells_the_runner_who_gave_it_back() {
        let drafts = compose(
            &moved(OrderStatus::Accepted, OrderStatus::Created, None),
            &parties(Some("runner_1")),
        );
        assert_eq!(
            told(&drafts),
            vec![
                ("cust_1".to_string(), "acceptance_cancelled"),
                ("runner_1".to_string(), "acceptance_cancelled")
            ]
        );
        assert!(drafts[0].message.starts_with("runner_1 gave your order back"));
    }

    #[test]
    fn a_timeout_is_told_as_such() {
        let cancelled = Message::OrderCancelled(OrderCancelled {
            order_id: order_id(),
            previous_status: OrderStatus::Created,
            reason: "no runner accepted the order within the acceptance window".into(),
            requested_by: CancelRequester::Timeout,
            cancelled_at: at(),
        });
        let drafts = compose(&cancelled, &parties(None));
        assert_eq!(told(&drafts), vec![("cust_1".to_string(), "order_timed_out")]);
    }

    #[test]
    fn the_payout_says_how_much() {
        let released = Message::FundsReleased(FundsReleased {
            escrow_id: EscrowId::for_order(order_id()),
            order_id: order_id(),
            runner_id: user("runner_1"),
            amount_cents: Cents(1549),
            released_at: at(),
        });
        let drafts = compose(&released, &parties(Some("runner_1")));
        assert_eq!(drafts[0].kind, "payout");
        assert!(
            drafts[0].message.starts_with("SGD 15.49 is released to you"),
            "{}",
            drafts[0].message
        );
    }

    /// Found by the chaos suite: on Kafka a restarted notification service may
    /// read an order's payment events before its order events; the receipt
    /// then had no one to go to, and was never made.
    #[test]
    fn a_receipt_reaches_the_customer_before_the_order_is_known() {
        let captured = Message::PaymentCaptured(crate::messages::PaymentCaptured {
            payment_id: crate::ids::PaymentId::for_order(order_id()),
            order_id: order_id(),
            amount_cents: Cents(1549),
            captured_at: at(),
            customer_id: Some(user("cust_1")),
        });
        let drafts = compose(&captured, &OrderParties::default());
        assert_eq!(told(&drafts), vec![("cust_1".to_string(), "receipt")]);
    }

    #[test]
    fn the_same_fact_names_the_same_notification_for_each_recipient() {
        let event = moved(OrderStatus::Created, OrderStatus::Accepted, Some("runner_1"));
        let again = moved(OrderStatus::Created, OrderStatus::Accepted, Some("runner_1"));
        assert_eq!(notification_id(&event, &user("a")), notification_id(&again, &user("a")));
        assert_ne!(notification_id(&event, &user("a")), notification_id(&event, &user("b")));
        let later = moved(OrderStatus::Accepted, OrderStatus::OnSite, Some("runner_1"));
        assert_ne!(notification_id(&event, &user("a")), notification_id(&later, &user("a")));
    }
}
