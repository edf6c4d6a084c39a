//! `campusg ledger check`: the ledger, the payment, escrow and payout
//! aggregates, and the processor's own records must agree, cent for cent.
//!
//! Each source is read apart (the aggregates rebuilt from their events, not
//! from their read models), so a store changed by hand, a posting lost or made
//! twice, or a processor call no aggregate recorded all show as differences.
//! Differences of money still in flight vanish when the system is quiet: run
//! it then, or run it twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use campusg_domain::escrow::{Escrow, EscrowStatus};
use campusg_domain::ids::OrderId;
use campusg_domain::ledger::{Account, OrderLedger};
use campusg_domain::money::Cents;
use campusg_domain::payment::{Payment, PaymentStatus, Payout, PayoutStatus};

/// One call the processor recorded, under its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorRecord {
    pub key: String,
    /// `authorize`, `capture`, `void`, `refund`, `payout`, `payout_declined`.
    pub operation: String,
    pub amount_cents: Option<Cents>,
    /// For an authorization: whether it was approved.
    pub approved: bool,
}

/// Everything the check compares, each from its own store.
#[derive(Default)]
pub struct Books {
    pub payments: Vec<Payment>,
    pub escrows: Vec<Escrow>,
    pub payouts: Vec<Payout>,
    pub ledgers: Vec<OrderLedger>,
    pub processor: Vec<ProcessorRecord>,
}

/// A disagreement, about an order or about the books as a whole.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    pub order_id: Option<OrderId>,
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.order_id {
            Some(order_id) => write!(f, "order {order_id}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// What the check found.
pub struct Report {
    pub orders: usize,
    pub entries: usize,
    pub processor_records: usize,
    /// Every order's balances added up, per account.
    pub totals: BTreeMap<Account, Cents>,
    pub differences: Vec<Difference>,
}

/// What one order's sources say, gathered by order.
#[derive(Default)]
struct OrderBooks<'a> {
    payment: Option<&'a Payment>,
    escrow: Option<&'a Escrow>,
    payout: Option<&'a Payout>,
    ledger: Option<&'a OrderLedger>,
    /// The processor's amounts per operation.
    processor: BTreeMap<&'static str, Cents>,
    processor_calls: BTreeMap<&'static str, usize>,
    /// Operations some record of which does not say its amount (made before
    /// the processor recorded amounts): their amounts are not compared.
    amounts_unknown: BTreeSet<&'static str>,
    /// Authorizations the processor declined.
    declined_authorizations: usize,
}

pub fn check(books: &Books) -> Report {
    let mut orders: BTreeMap<OrderId, OrderBooks> = BTreeMap::new();
    let mut differences = Vec::new();
    let mut payment_orders = BTreeMap::new();
    let mut refund_orders = BTreeMap::new();
    for payment in &books.payments {
        let (Some(order_id), Some(payment_id)) = (payment.order_id, payment.payment_id) else {
            continue;
        };
        payment_orders.insert(payment_id.to_string(), order_id);
        for refund in &payment.refunds {
            refund_orders.insert(refund.refund_id.to_string(), order_id);
        }
        orders.entry(order_id).or_default().payment = Some(payment);
    }
    for escrow in &books.escrows {
        if let Some(order_id) = escrow.order_id {
            orders.entry(order_id).or_default().escrow = Some(escrow);
        }
    }
    for payout in &books.payouts {
        if let Some(order_id) = payout.order_id {
            orders.entry(order_id).or_default().payout = Some(payout);
        }
    }
    let mut entries = 0;
    let mut totals: BTreeMap<Account, Cents> = BTreeMap::new();
    for ledger in &books.ledgers {
        let Some(order_id) = ledger.order_id else { continue };
        entries += ledger.entries.len();
        for (account, balance) in &ledger.balances {
            let total = totals.entry(*account).or_insert(Cents::ZERO);
            *total = Cents(total.0 + balance.0);
        }
        orders.entry(order_id).or_default().ledger = Some(ledger);
    }
    for record in &books.processor {
        let (operation, id) = match record.key.split_once(':') {
            Some((operation, rest)) => (operation, rest),
            None => ("", ""),
        };
        let order_id = match operation {
            "authorize" | "capture" | "void" => payment_orders.get(id).copied(),
            "refund" => refund_orders.get(id).copied(),
            "payout" => id.split(':').next().and_then(|o| OrderId::parse(o).ok()),
            _ => None,
        };
        let Some(order_id) = order_id else {
            differences.push(Difference {
                order_id: None,
                what: format!(
                    "the processor's record `{}` ({}) belongs to no payment or payout",
                    record.key, record.operation
                ),
            });
            continue;
        };
        let counted = match record.operation.as_str() {
            "authorize" if record.approved => Some("authorize"),
            "capture" => Some("capture"),
            "void" => Some("void"),
            "refund" => Some("refund"),
            "payout" => Some("payout"),
            _ => None,
        };
        let order = orders.entry(order_id).or_default();
        if record.operation == "authorize" && !record.approved {
            order.declined_authorizations += 1;
        }
        if let Some(operation) = counted {
            if record.amount_cents.is_none() {
                order.amounts_unknown.insert(operation);
            }
            let amount = order.processor.entry(operation).or_insert(Cents::ZERO);
            *amount = Cents(amount.0 + record.amount_cents.map_or(0, |a| a.0));
            *order.processor_calls.entry(operation).or_insert(0) += 1;
        }
    }
    for (order_id, order) in &orders {
        for what in compare(order) {
            differences.push(Difference {
                order_id: Some(*order_id),
                what,
            });
        }
    }
    let sum: i64 = totals.values().map(|c| c.0).sum();
    if sum != 0 {
        differences.push(Difference {
            order_id: None,
            what: format!(
                "the ledger does not balance: its accounts add up to {} cents, not 0",
                sum
            ),
        });
    }
    differences.sort();
    Report {
        orders: orders.len(),
        entries,
        processor_records: books.processor.len(),
        totals,
        differences,
    }
}

/// One order's differences.
fn compare(order: &OrderBooks) -> Vec<String> {
    let mut differences = Vec::new();
    let agree = |differences: &mut Vec<String>, what: &str, figures: &[(&str, Cents)]| {
        let first = figures[0].1;
        if figures.iter().any(|(_, amount)| *amount != first) {
            let said: Vec<String> = figures.iter().map(|(who, amount)| format!("{who} {amount}")).collect();
            differences.push(format!("{what} disagree: {}", said.join(", ")));
        }
    };
    let posted = |kind: &str| order.ledger.map_or(Cents::ZERO, |ledger| ledger.posted(kind));
    let processor = |operation: &str| order.processor.get(operation).copied().unwrap_or(Cents::ZERO);

    let payment_status = order.payment.and_then(|p| p.status);
    let authorized = match (order.payment, payment_status) {
        (Some(payment), Some(status)) if status != PaymentStatus::Failed => payment.amount_cents,
        _ => Cents::ZERO,
    };
    agree(
        &mut differences,
        "the amounts authorized",
        &[
            ("the payment says", authorized),
            ("the ledger posted", posted("payment.authorized")),
        ],
    );
    let made_at_processor = |operation: &str| order.processor_calls.contains_key(operation);
    if authorized > Cents::ZERO && !made_at_processor("authorize") && order.declined_authorizations > 0 {
        differences.push(format!(
            "the payment says {authorized} was authorized, but the processor declined the authorization"
        ));
    }
    if made_at_processor("authorize") && !order.amounts_unknown.contains("authorize") {
        agree(
            &mut differences,
            "the amounts authorized at the processor",
            &[
                ("the payment says", authorized),
                ("the processor recorded", processor("authorize")),
            ],
        );
    }
    let voided = if payment_status == Some(PaymentStatus::Voided) {
        authorized
    } else {
        Cents::ZERO
    };
    if (voided > Cents::ZERO) != made_at_processor("void") && order.payment.is_some() {
        differences.push(format!(
            "the payment is {}, but the processor {} a void",
            payment_status.map_or("without a status", PaymentStatus::as_str),
            if made_at_processor("void") {
                "recorded"
            } else {
                "has no record of"
            }
        ));
    }
    agree(
        &mut differences,
        "the amounts voided",
        &[
            ("the payment says", voided),
            ("the ledger posted", posted("payment.voided")),
        ],
    );
    let captured = order.payment.map_or(Cents::ZERO, |p| p.captured_cents);
    agree(
        &mut differences,
        "the amounts captured",
        &[
            ("the payment says", captured),
            ("the ledger posted", posted("payment.captured")),
            ("the processor recorded", processor("capture")),
        ],
    );
    let refunded = order.payment.map_or(Cents::ZERO, |p| p.refunded_cents);
    agree(
        &mut differences,
        "the amounts refunded",
        &[
            ("the payment says", refunded),
            ("the ledger posted", posted("payment.refunded")),
            ("the processor recorded", processor("refund")),
        ],
    );
    if refunded > captured {
        differences.push(format!("{refunded} was refunded of the {captured} captured"));
    }

    let released = match order.escrow {
        Some(escrow) if escrow.status == Some(EscrowStatus::Released) => escrow.amount_cents,
        _ => Cents::ZERO,
    };
    agree(
        &mut differences,
        "the amounts released to the runner",
        &[
            ("the escrow says", released),
            ("the ledger posted", posted("escrow.released")),
        ],
    );
    if let (Some(escrow), Some(payment)) = (order.escrow, order.payment) {
        if escrow.status.is_some() && payment_status != Some(PaymentStatus::Failed) {
            agree(
                &mut differences,
                "the escrow and the payment it holds",
                &[
                    ("the escrow holds", escrow.amount_cents),
                    ("the payment authorized", payment.amount_cents),
                ],
            );
        }
    }
    if released > Cents::ZERO {
        agree(
            &mut differences,
            "the amounts captured and released",
            &[("captured", captured), ("released", released)],
        );
    }

    let paid_out = match order.payout {
        Some(payout) if payout.status == Some(PayoutStatus::Sent) => payout.amount_cents,
        _ => Cents::ZERO,
    };
    agree(
        &mut differences,
        "the amounts paid out",
        &[
            ("the payout says", paid_out),
            ("the ledger posted", posted("payout.sent")),
            ("the processor recorded", processor("payout")),
        ],
    );
    if released > Cents::ZERO && !order.payout.is_some_and(|p| p.requested) {
        differences.push(format!(
            "the escrow released {released} to the runner, but no payout was asked for"
        ));
    }
    if let (Some(payout), Some(escrow)) = (order.payout.filter(|p| p.requested), order.escrow) {
        if released > Cents::ZERO && payout.runner_id != escrow.runner_id {
            differences.push(format!(
                "the payout is for {}, but the escrow released to {}",
                payout.runner_id.as_ref().map(ToString::to_string).unwrap_or_default(),
                escrow.runner_id.as_ref().map(ToString::to_string).unwrap_or_default()
            ));
        }
    }
    if let Some(payout) = order.payout.filter(|p| p.requested) {
        agree(
            &mut differences,
            "the payout and the release it pays",
            &[
                ("the payout is for", payout.amount_cents),
                ("the escrow released", released),
            ],
        );
    }
    for (operation, calls) in &order.processor_calls {
        // A refund or a payout may be made more than once; the rest once.
        if *calls > 1 && !matches!(*operation, "refund" | "payout") {
            differences.push(format!("the processor recorded {calls} calls to {operation}"));
        }
    }
    if order.processor_calls.get("payout").copied().unwrap_or(0) > 1 {
        differences.push("the processor paid the runner out more than once".to_string());
    }
    if let Some(ledger) = order.ledger {
        let sum: i64 = ledger.balances.values().map(|c| c.0).sum();
        if sum != 0 {
            differences.push(format!("the order's ledger does not balance: {sum} cents over"));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use campusg_domain::ids::{EscrowId, PaymentId, UserId};
    use campusg_domain::ledger::{entry_for, LedgerCommand};
    use campusg_domain::messages::{FundsHeld, FundsReleased, Message, PaymentAuthorized, PaymentCaptured, PayoutSent};
    use campusg_domain::payment::PaymentEvent;
    use cqrs_es::Aggregate;

    fn order() -> OrderId {
        OrderId(Uuid::from_u128(5))
    }

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    /// The books of an order captured, released and paid out, each source
    /// built from the same events the services publish.
    fn books(escrow_amount: i64) -> Books {
        let customer = UserId::parse("cust_1").unwrap();
        let runner = UserId::parse("runner_1").unwrap();
        let payment_id = PaymentId::for_order(order());
        let authorized = PaymentAuthorized {
            payment_id,
            order_id: order(),
            customer_id: customer.clone(),
            amount_cents: Cents(1549),
            currency: "SGD".into(),
            payment_method: "pm_card_visa".into(),
            gateway_reference: "auth_1".into(),
            authorized_at: at(),
        };
        let captured = PaymentCaptured {
            payment_id,
            order_id: order(),
            amount_cents: Cents(1549),
            captured_at: at(),
            customer_id: Some(customer.clone()),
        };
        let mut payment = Payment::default();
        payment.apply(PaymentEvent::Authorized(authorized.clone()));
        payment.apply(PaymentEvent::Captured(captured.clone()));
        let released = FundsReleased {
            escrow_id: EscrowId::for_order(order()),
            order_id: order(),
            runner_id: runner.clone(),
            amount_cents: Cents(1549),
            released_at: at(),
        };
        let mut escrow = Escrow::default();
        escrow.apply(campusg_domain::escrow::EscrowEvent::Held(FundsHeld {
            escrow_id: EscrowId::for_order(order()),
            order_id: order(),
            customer_id: customer,
            amount_cents: Cents(escrow_amount),
            food_fee_cents: Cents(escrow_amount - 250),
            delivery_fee_cents: Cents(250),
            currency: "SGD".into(),
            held_at: at(),
        }));
        escrow.apply(campusg_domain::escrow::EscrowEvent::Released(released.clone()));
        let sent = PayoutSent {
            order_id: order(),
            runner_id: runner.clone(),
            amount_cents: Cents(1549),
            payout_account: "acct_1".into(),
            reference: "po_1".into(),
            attempt: 1,
            sent_at: at(),
        };
        let mut payout = Payout::default();
        payout.apply(campusg_domain::payment::PayoutEvent::ReleaseObserved {
            order_id: order(),
            runner_id: runner.clone(),
            amount_cents: Cents(1549),
            at: at(),
        });
        payout.apply(campusg_domain::payment::PayoutEvent::Requested {
            order_id: order(),
            runner_id: runner,
            amount_cents: Cents(1549),
            payout_account: Some("acct_1".into()),
            at: at(),
        });
        payout.apply(campusg_domain::payment::PayoutEvent::Sent(sent.clone()));
        let mut ledger = OrderLedger::default();
        for message in [
            Message::PaymentAuthorized(authorized),
            Message::PaymentCaptured(captured),
            Message::FundsReleased(released),
            Message::PayoutSent(sent),
        ] {
            let (order_id, party, entry) = entry_for(&message).unwrap();
            for event in ledger.decide(LedgerCommand::Post { order_id, party, entry }).unwrap() {
                ledger.apply(event);
            }
        }
        let record = |key: String, operation: &str| ProcessorRecord {
            key,
            operation: operation.into(),
            amount_cents: Some(Cents(1549)),
            approved: true,
        };
        Books {
            payments: vec![payment],
            escrows: vec![escrow],
            payouts: vec![payout],
            ledgers: vec![ledger],
            processor: vec![
                record(format!("authorize:{payment_id}"), "authorize"),
                record(format!("capture:{payment_id}"), "capture"),
                record(format!("payout:{}:1", order()), "payout"),
            ],
        }
    }

    #[test]
    fn books_that_agree_show_no_difference_and_say_where_the_money_is() {
        let report = check(&books(1549));
        assert_eq!(report.differences, vec![]);
        assert_eq!(report.totals.get(&Account::PaidOut), Some(&Cents(1549)));
        assert_eq!(report.totals.get(&Account::CustomerCard), Some(&Cents(-1549)));
    }

    #[test]
    fn an_escrow_changed_by_hand_is_reported() {
        let report = check(&books(1000));
        let said: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
        assert!(
            said.iter()
                .any(|d| d.contains("the amounts released to the runner disagree: the escrow says 10.00")),
            "{said:?}"
        );
    }

    /// Review finding (issue 15): money released to a runner and never paid
    /// out, or paid to another runner, passed the check.
    #[test]
    fn a_release_never_paid_out_or_paid_to_another_runner_is_reported() {
        let mut unpaid = books(1549);
        unpaid.payouts.clear();
        unpaid.processor.retain(|r| r.operation != "payout");
        unpaid.ledgers[0].entries.retain(|e| e.kind != "payout.sent");
        let said: Vec<String> = check(&unpaid).differences.iter().map(ToString::to_string).collect();
        assert!(said.iter().any(|d| d.contains("no payout was asked for")), "{said:?}");

        let mut elsewhere = books(1549);
        elsewhere.payouts[0].runner_id = Some(UserId::parse("mallory").unwrap());
        let said: Vec<String> = check(&elsewhere).differences.iter().map(ToString::to_string).collect();
        assert!(
            said.iter()
                .any(|d| d.contains("the payout is for mallory, but the escrow released to runner_1")),
            "{said:?}"
        );
    }

    #[test]
    fn a_processor_call_no_aggregate_recorded_is_reported() {
        let mut books = books(1549);
        books.processor.push(ProcessorRecord {
            key: format!("payout:{}:2", order()),
            operation: "payout".into(),
            amount_cents: Some(Cents(1549)),
            approved: false,
        });
        let report = check(&books);
        let said: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
        assert!(
            said.iter().any(|d| d.contains("paid the runner out more than once")),
            "{said:?}"
        );
        assert!(
            said.iter().any(|d| d.contains("the amounts paid out disagree")),
            "{said:?}"
        );
    }
}
