//! The double-entry ledger (SPEC section 13): every money event of an order
//! as a balanced entry between two named accounts.
//!
//! | event | debit | credit |
//! |---|---|---|
//! | `payment.authorized` | authorizations | customer_card |
//! | `payment.voided` | customer_card | authorizations |
//! | `payment.captured` | escrow | authorizations |
//! | `escrow.released` | runner_payable | escrow |
//! | `payout.sent` | paid_out | runner_payable |
//! | `payment.refunded` | customer_card | refunds |
//!
//! A balance is debits minus credits, so an order's balances always sum to
//! zero, and each tells where the money is: `customer_card` is minus what the
//! card gave (held or taken), `authorizations` what is held on it, `escrow`
//! what the platform holds for the order, `runner_payable` what it owes the
//! runner, `paid_out` what reached the runner, and `refunds` minus what went
//! back to the customer. A refund made after the payout is the platform's: the
//! runner keeps what they were paid, and `refunds` shows the loss.
//!
//! The escrow's hold and its refund on a cancellation post nothing: they
//! earmark an authorization, and no money moves until the capture. `campusg
//! ledger check` still compares every escrow with the ledger.
//!
//! One [`OrderLedger`] per order. Each entry is posted once, under its
//! `source` (the event type, and the refund for a refund), however often the
//! event is delivered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::messages::Message;
use crate::money::Cents;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    CustomerCard,
    Authorizations,
    Escrow,
    RunnerPayable,
    PaidOut,
    Refunds,
}

impl Account {
    pub const ALL: [Account; 6] = [
        Account::CustomerCard,
        Account::Authorizations,
        Account::Escrow,
        Account::RunnerPayable,
        Account::PaidOut,
        Account::Refunds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::CustomerCard => "customer_card",
            Account::Authorizations => "authorizations",
            Account::Escrow => "escrow",
            Account::RunnerPayable => "runner_payable",
            Account::PaidOut => "paid_out",
            Account::Refunds => "refunds",
        }
    }
}

/// One balanced entry: `amount_cents` debited to `debit` and credited to `credit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// What posted it, unique within the order: `payment.captured`,
    /// `payment.refunded:<refund id>`.
    pub source: String,
    /// The message type that posted it.
    pub kind: String,
    pub debit: Account,
    pub credit: Account,
    pub amount_cents: Cents,
    pub occurred_at: DateTime<Utc>,
}

/// The message types that post to a ledger: those [`entry_for`] maps to an
/// entry (keep the two in step).
pub const POSTED_TYPES: &[&str] = &[
    "payment.authorized",
    "payment.voided",
    "payment.captured",
    "payment.refunded",
    "escrow.released",
    "payout.sent",
];

/// The entry a money event posts, with the order it belongs to and the party
/// it names; `None` for a message that moves no money.
pub fn entry_for(message: &Message) -> Option<(OrderId, Option<Party>, LedgerEntry)> {
    use Account::*;
    let (order_id, party, source, debit, credit, amount, at) = match message {
        Message::PaymentAuthorized(m) => (
            m.order_id,
            Some(Party::Customer(m.customer_id.clone())),
            message.message_type().to_string(),
            Authorizations,
            CustomerCard,
            m.amount_cents,
            m.authorized_at,
        ),
        Message::PaymentVoided(m) => (
            m.order_id,
            m.customer_id.clone().map(Party::Customer),
            message.message_type().to_string(),
            CustomerCard,
            Authorizations,
            m.amount_cents,
            m.voided_at,
        ),
        Message::PaymentCaptured(m) => (
            m.order_id,
            m.customer_id.clone().map(Party::Customer),
            message.message_type().to_string(),
            Escrow,
            Authorizations,
            m.amount_cents,
            m.captured_at,
        ),
        Message::FundsReleased(m) => (
            m.order_id,
            Some(Party::Runner(m.runner_id.clone())),
            message.message_type().to_string(),
            RunnerPayable,
            Escrow,
            m.amount_cents,
            m.released_at,
        ),
        Message::PayoutSent(m) => (
            m.order_id,
            Some(Party::Runner(m.runner_id.clone())),
            message.message_type().to_string(),
            PaidOut,
            RunnerPayable,
            m.amount_cents,
            m.sent_at,
        ),
        Message::PaymentRefunded(m) => (
            m.order_id,
            Some(Party::Customer(m.customer_id.clone())),
            format!("{}:{}", message.message_type(), m.refund_id),
            CustomerCard,
            Refunds,
            m.amount_cents,
            m.refunded_at,
        ),
        _ => return None,
    };
    Some((
        order_id,
        party,
        LedgerEntry {
            source,
            kind: message.message_type().to_string(),
            debit,
            credit,
            amount_cents: amount,
            occurred_at: at,
        },
    ))
}

/// Who an entry names: the order's parties may read its ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "user_id", rename_all = "snake_case")]
pub enum Party {
    Customer(UserId),
    Runner(UserId),
}

#[derive(Clone, Debug, PartialEq)]
pub enum LedgerCommand {
    Post {
        order_id: OrderId,
        party: Option<Party>,
        entry: LedgerEntry,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum LedgerEvent {
    Posted {
        order_id: OrderId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        party: Option<Party>,
        entry: LedgerEntry,
    },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        "ledger.posted".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry moves more than zero, not {0}")]
    AmountNotPositive(Cents),
    #[error("`{posted_as}` was posted already for {posted}, not {asked}")]
    PostedOtherwise {
        posted_as: String,
        posted: Cents,
        asked: Cents,
    },
}

/// An order's ledger as rebuilt from its entries; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderLedger {
    pub order_id: Option<OrderId>,
    pub customer_id: Option<UserId>,
    pub runner_id: Option<UserId>,
    pub entries: Vec<LedgerEntry>,
    /// Debits minus credits, per account.
    pub balances: BTreeMap<Account, Cents>,
}

impl OrderLedger {
    pub fn decide(&self, command: LedgerCommand) -> Result<Vec<LedgerEvent>, LedgerError> {
        let LedgerCommand::Post { order_id, party, entry } = command;
        if entry.amount_cents <= Cents::ZERO {
            return Err(LedgerError::AmountNotPositive(entry.amount_cents));
        }
        if let Some(posted) = self.entries.iter().find(|e| e.source == entry.source) {
            // A redelivery posts nothing; the same source for another amount
            // is a disagreement the caller must hear of.
            return if posted.amount_cents == entry.amount_cents {
                Ok(Vec::new())
            } else {
                Err(LedgerError::PostedOtherwise {
                    posted_as: entry.source,
                    posted: posted.amount_cents,
                    asked: entry.amount_cents,
                })
            };
        }
        Ok(vec![LedgerEvent::Posted { order_id, party, entry }])
    }

    pub fn balance(&self, account: Account) -> Cents {
        self.balances.get(&account).copied().unwrap_or(Cents::ZERO)
    }

    /// The entries posted under a kind, summed.
    pub fn posted(&self, kind: &str) -> Cents {
        Cents(
            self.entries
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.amount_cents.0)
                .sum(),
        )
    }
}

impl crate::snapshot::WholeReadModel for OrderLedger {}

impl Aggregate for OrderLedger {
    const TYPE: &'static str = "order_ledger";
    type Command = LedgerCommand;
    type Event = LedgerEvent;
    type Error = LedgerError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let LedgerEvent::Posted { order_id, party, entry } = event;
        self.order_id = Some(order_id);
        match party {
            Some(Party::Customer(customer)) => self.customer_id = Some(customer),
            Some(Party::Runner(runner)) => self.runner_id = Some(runner),
            None => {}
        }
        let amount = entry.amount_cents.0;
        *self.balances.entry(entry.debit).or_insert(Cents::ZERO) = Cents(self.balance(entry.debit).0 + amount);
        *self.balances.entry(entry.credit).or_insert(Cents::ZERO) = Cents(self.balance(entry.credit).0 - amount);
        self.entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::ids::{EscrowId, PaymentId, RefundId};
    use crate::messages::{FundsReleased, PaymentAuthorized, PaymentCaptured, PaymentRefunded, PayoutSent};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn order() -> OrderId {
        OrderId(Uuid::from_u128(3))
    }

    fn customer() -> UserId {
        UserId::parse("cust_1").unwrap()
    }

    fn runner() -> UserId {
        UserId::parse("runner_1").unwrap()
    }

    /// Every money event of an order paid, completed, paid out, then refunded in part.
    fn lifecycle() -> Vec<Message> {
        vec![
            Message::PaymentAuthorized(PaymentAuthorized {
                payment_id: PaymentId::for_order(order()),
                order_id: order(),
                customer_id: customer(),
                amount_cents: Cents(1549),
                currency: "SGD".into(),
                payment_method: "pm_card_visa".into(),
                gateway_reference: "auth_1".into(),
                authorized_at: at(),
            }),
            Message::PaymentCaptured(PaymentCaptured {
                payment_id: PaymentId::for_order(order()),
                order_id: order(),
                amount_cents: Cents(1549),
                captured_at: at(),
                customer_id: Some(customer()),
            }),
            Message::FundsReleased(FundsReleased {
                escrow_id: EscrowId::for_order(order()),
                order_id: order(),
                runner_id: runner(),
                amount_cents: Cents(1549),
                released_at: at(),
            }),
            Message::PayoutSent(PayoutSent {
                order_id: order(),
                runner_id: runner(),
                amount_cents: Cents(1549),
                payout_account: "acct_1".into(),
                reference: "po_1".into(),
                attempt: 1,
                sent_at: at(),
            }),
            Message::PaymentRefunded(PaymentRefunded {
                payment_id: PaymentId::for_order(order()),
                order_id: order(),
                customer_id: customer(),
                refund_id: RefundId(Uuid::from_u128(9)),
                amount_cents: Cents(400),
                refunded_cents: Cents(400),
                captured_cents: Cents(1549),
                reason: "missing drink".into(),
                refunded_at: at(),
            }),
        ]
    }

    fn post(message: &Message) -> LedgerCommand {
        let (order_id, party, entry) = entry_for(message).expect("a money event");
        LedgerCommand::Post { order_id, party, entry }
    }

    #[test]
    fn an_order_paid_out_and_refunded_in_part_balances_and_says_where_each_cent_is() {
        let mut ledger = OrderLedger::default();
        for message in lifecycle() {
            for event in ledger.decide(post(&message)).unwrap() {
                ledger.apply(event);
            }
        }
        let balances: Vec<i64> = Account::ALL.iter().map(|a| ledger.balance(*a).0).collect();
        // card, authorizations, escrow, runner payable, paid out, refunds
        assert_eq!(balances, [-1549 + 400, 0, 0, 0, 1549, -400]);
        assert_eq!(balances.iter().sum::<i64>(), 0);
        assert_eq!(ledger.customer_id, Some(customer()));
        assert_eq!(ledger.runner_id, Some(runner()));
    }

    #[test]
    fn an_event_delivered_twice_posts_once() {
        let captured = lifecycle().remove(1);
        let LedgerCommand::Post { order_id, party, entry } = post(&captured);
        TestFramework::<OrderLedger>::with(())
            .given(vec![LedgerEvent::Posted {
                order_id,
                party: party.clone(),
                entry: entry.clone(),
            }])
            .when(LedgerCommand::Post { order_id, party, entry })
            .then_expect_events(vec![]);
    }

    #[test]
    fn the_same_source_for_another_amount_is_refused() {
        let captured = lifecycle().remove(1);
        let LedgerCommand::Post { order_id, party, entry } = post(&captured);
        let mut other = entry.clone();
        other.amount_cents = Cents(1);
        TestFramework::<OrderLedger>::with(())
            .given(vec![LedgerEvent::Posted {
                order_id,
                party: party.clone(),
                entry,
            }])
            .when(LedgerCommand::Post {
                order_id,
                party,
                entry: other,
            })
            .then_expect_error(LedgerError::PostedOtherwise {
                posted_as: "payment.captured".into(),
                posted: Cents(1549),
                asked: Cents(1),
            });
    }

    #[test]
    fn messages_that_move_no_money_post_nothing() {
        let held = Message::PayoutWaiting(crate::messages::PayoutWaiting {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1549),
            waiting_since: at(),
        });
        assert_eq!(entry_for(&held), None);
    }
}
