//! A payout: what the escrow released to an order's runner, sent to their
//! payout account through the processor (SPEC section 13).
//!
//! One per order, keyed by the order id. It pays only what the escrow released,
//! to whom it released it: the payment service observes `escrow.released` and a
//! request for anyone else or any other amount is refused (SPEC 11). It waits
//! while the runner has no
//! payout account, and goes out when the account arrives, in whichever order
//! the request and the account arrive. A declined transfer is tried again up
//! to [`MAX_PAYOUT_ATTEMPTS`] times, then the payout is parked for an operator,
//! whose retry makes one more attempt. Each attempt has its own idempotency key
//! (`payout:{order}:{attempt}`), so a repeated command never sends twice, and a
//! retry after a decline is a new transfer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::messages::{Message, PayoutDeclined, PayoutParked, PayoutSent, PayoutWaiting};
use crate::money::Cents;
use crate::payment::{GatewayError, PaymentGateway};

/// How many attempts a payout gets before it is parked.
pub const MAX_PAYOUT_ATTEMPTS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatus {
    Waiting,
    Sent,
    Parked,
}

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 3] = [PayoutStatus::Waiting, PayoutStatus::Sent, PayoutStatus::Parked];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Waiting => "WAITING",
            PayoutStatus::Sent => "SENT",
            PayoutStatus::Parked => "PARKED",
        }
    }

    pub fn parse(text: &str) -> Option<PayoutStatus> {
        PayoutStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PayoutCommand {
    /// Pay `amount` to the runner, to `payout_account` or, without one, to the
    /// account the runner added meanwhile; else wait for one.
    Request {
        order_id: OrderId,
        runner_id: UserId,
        amount: Cents,
        payout_account: Option<String>,
        at: DateTime<Utc>,
    },
    /// The runner added a payout account while this payout was awaited.
    ProvideAccount {
        order_id: OrderId,
        runner_id: UserId,
        payout_account: String,
        at: DateTime<Utc>,
    },
    /// The escrow released the order's money to `runner_id`: the only payout
    /// the order may make.
    ObserveRelease {
        order_id: OrderId,
        runner_id: UserId,
        amount: Cents,
        at: DateTime<Utc>,
    },
    /// An operator's retry of a parked payout.
    Retry {
        payout_account: Option<String>,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum PayoutEvent {
    /// The payout was asked for with an account: it is sent at once.
    #[serde(rename = "payout.requested")]
    Requested {
        order_id: OrderId,
        runner_id: UserId,
        amount_cents: Cents,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payout_account: Option<String>,
        at: DateTime<Utc>,
    },
    /// The escrow's release, which bounds what may be paid out, and to whom.
    #[serde(rename = "payout.release_observed")]
    ReleaseObserved {
        order_id: OrderId,
        runner_id: UserId,
        amount_cents: Cents,
        at: DateTime<Utc>,
    },
    /// A request held for the release asked for another runner or amount than
    /// the escrow released: it is dropped, and the order's own request goes on.
    #[serde(rename = "payout.request_discarded")]
    RequestDiscarded { reason: String, at: DateTime<Utc> },
    /// The account arrived before the request; it is kept for it.
    #[serde(rename = "payout.account_provided")]
    AccountProvided {
        order_id: OrderId,
        runner_id: UserId,
        payout_account: String,
        at: DateTime<Utc>,
    },
    #[serde(rename = "payout.waiting")]
    Waiting(PayoutWaiting),
    #[serde(rename = "payout.declined")]
    Declined(PayoutDeclined),
    #[serde(rename = "payout.parked")]
    Parked(PayoutParked),
    #[serde(rename = "payout.sent")]
    Sent(PayoutSent),
}

impl PayoutEvent {
    /// The message this event publishes; an account kept for a later request
    /// is the payout's own business.
    pub fn message(&self) -> Option<Message> {
        match self.clone() {
            PayoutEvent::Requested { .. }
            | PayoutEvent::ReleaseObserved { .. }
            | PayoutEvent::RequestDiscarded { .. }
            | PayoutEvent::AccountProvided { .. } => None,
            PayoutEvent::Waiting(e) => Some(Message::PayoutWaiting(e)),
            PayoutEvent::Declined(e) => Some(Message::PayoutDeclined(e)),
            PayoutEvent::Parked(e) => Some(Message::PayoutParked(e)),
            PayoutEvent::Sent(e) => Some(Message::PayoutSent(e)),
        }
    }
}

impl DomainEvent for PayoutEvent {
    fn event_type(&self) -> String {
        match self {
            PayoutEvent::Requested { .. } => "payout.requested".to_string(),
            PayoutEvent::ReleaseObserved { .. } => "payout.release_observed".to_string(),
            PayoutEvent::RequestDiscarded { .. } => "payout.request_discarded".to_string(),
            PayoutEvent::AccountProvided { .. } => "payout.account_provided".to_string(),
            other => other
                .message()
                .map(|m| m.message_type().to_string())
                .unwrap_or_default(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    #[error("the payout amount must be more than zero, not {0}")]
    AmountNotPositive(Cents),
    #[error("the order has no payout")]
    NotFound,
    #[error("the payout of this order goes to {expected}, not {asked}")]
    OtherRunner { expected: UserId, asked: UserId },
    #[error("the payout of this order is {asked}, not {expected}")]
    OtherAmount { expected: Cents, asked: Cents },
    #[error("a payout that is {} cannot be retried; only a parked one can, or a waiting one once the runner has a payout account", .0.as_str())]
    NotParked(PayoutStatus),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// A payout as rebuilt from its events, and its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    pub order_id: Option<OrderId>,
    pub runner_id: Option<UserId>,
    pub amount_cents: Cents,
    pub status: Option<PayoutStatus>,
    pub payout_account: Option<String>,
    pub reference: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Whether the amount is known: a payout created by an early account is not.
    #[serde(default)]
    pub requested: bool,
    /// Whom the escrow released the order's money to, and how much.
    #[serde(default)]
    pub released_to: Option<UserId>,
    #[serde(default)]
    pub released_cents: Cents,
    /// Whose account `payout_account` is: only the payout's own runner's is used.
    #[serde(default)]
    pub account_of: Option<UserId>,
    /// Requests read before the release, each kept until the release picks
    /// the one that matches it (a forged one cannot push the order's own out).
    #[serde(default)]
    pub held: Vec<HeldRequest>,
}

/// A request read before the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRequest {
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub payout_account: Option<String>,
}

impl Payout {
    /// The account to pay: the runner's own, never one announced for another.
    fn account(&self) -> Option<String> {
        self.payout_account
            .clone()
            .filter(|_| self.account_of == self.runner_id)
    }

    /// The answer to a request already handled: the payout's latest outcome.
    pub fn outcome(&self) -> Option<Message> {
        let order_id = self.order_id?;
        let runner_id = self.runner_id.clone()?;
        let at = self.updated_at?;
        Some(match self.status? {
            PayoutStatus::Waiting => Message::PayoutWaiting(PayoutWaiting {
                order_id,
                runner_id,
                amount_cents: self.amount_cents,
                waiting_since: self.requested_at.unwrap_or(at),
            }),
            PayoutStatus::Sent => Message::PayoutSent(PayoutSent {
                order_id,
                runner_id,
                amount_cents: self.amount_cents,
                payout_account: self.payout_account.clone().unwrap_or_default(),
                reference: self.reference.clone().unwrap_or_default(),
                attempt: self.attempts,
                sent_at: at,
            }),
            PayoutStatus::Parked => Message::PayoutParked(PayoutParked {
                order_id,
                runner_id,
                amount_cents: self.amount_cents,
                attempts: self.attempts,
                reason: self.last_error.clone().unwrap_or_default(),
                parked_at: at,
            }),
        })
    }

    /// The next step of a payout both requested and released: sent to its
    /// account, or waiting for one.
    async fn proceed(
        &self,
        gateway: &Arc<dyn PaymentGateway>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PayoutEvent>, PayoutError> {
        let (Some(order_id), Some(runner_id)) = (self.order_id, self.runner_id.clone()) else {
            return Err(PayoutError::NotFound);
        };
        match self.account() {
            None => Ok(vec![PayoutEvent::Waiting(PayoutWaiting {
                order_id,
                runner_id,
                amount_cents: self.amount_cents,
                waiting_since: at,
            })]),
            Some(account) => self.send(gateway, account, MAX_PAYOUT_ATTEMPTS, at).await,
        }
    }

    /// Tries the processor up to `attempts` times from the next attempt on;
    /// the events of every try, ending sent or parked.
    async fn send(
        &self,
        gateway: &Arc<dyn PaymentGateway>,
        payout_account: String,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<PayoutEvent>, PayoutError> {
        let (Some(order_id), Some(runner_id)) = (self.order_id, self.runner_id.clone()) else {
            return Err(PayoutError::NotFound);
        };
        let mut events = Vec::new();
        let mut reason = String::new();
        for attempt in self.attempts + 1..=self.attempts + attempts {
            let key = format!("payout:{order_id}:{attempt}");
            match gateway.pay_out(&payout_account, self.amount_cents, &key).await {
                Ok(reference) => {
                    events.push(PayoutEvent::Sent(PayoutSent {
                        order_id,
                        runner_id,
                        amount_cents: self.amount_cents,
                        payout_account,
                        reference,
                        attempt,
                        sent_at: at,
                    }));
                    return Ok(events);
                }
                Err(GatewayError::Refused(why)) => {
                    reason = why;
                    events.push(PayoutEvent::Declined(PayoutDeclined {
                        order_id,
                        runner_id: runner_id.clone(),
                        amount_cents: self.amount_cents,
                        payout_account: payout_account.clone(),
                        attempt,
                        reason: reason.clone(),
                        declined_at: at,
                    }));
                }
                // Unavailable: nothing is recorded; the command is run again
                // later, and the keys already declined answer the same.
                Err(unavailable) => return Err(unavailable.into()),
            }
        }
        events.push(PayoutEvent::Parked(PayoutParked {
            order_id,
            runner_id,
            amount_cents: self.amount_cents,
            attempts: self.attempts + attempts,
            reason,
            parked_at: at,
        }));
        Ok(events)
    }
}

impl Aggregate for Payout {
    const TYPE: &'static str = "payout";
    type Command = PayoutCommand;
    type Event = PayoutEvent;
    type Error = PayoutError;
    type Services = Arc<dyn PaymentGateway>;

    async fn handle(
        &mut self,
        command: Self::Command,
        gateway: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            PayoutCommand::Request {
                order_id,
                runner_id,
                amount,
                payout_account,
                at,
            } => {
                self.request(gateway, order_id, runner_id, amount, payout_account, at)
                    .await?
            }
            PayoutCommand::ObserveRelease {
                order_id,
                runner_id,
                amount,
                at,
            } => self.observe_release(gateway, order_id, runner_id, amount, at).await?,
            PayoutCommand::ProvideAccount {
                order_id,
                runner_id,
                payout_account,
                at,
            } => {
                // An account announced for another runner than the one the
                // escrow released to, or than the request names, is not theirs.
                let expected = self
                    .released_to
                    .as_ref()
                    .or(self.runner_id.as_ref().filter(|_| self.requested));
                if expected.is_some_and(|expected| *expected != runner_id) {
                    Vec::new()
                } else {
                    match self.status {
                        None => vec![PayoutEvent::AccountProvided {
                            order_id,
                            runner_id,
                            payout_account,
                            at,
                        }],
                        Some(PayoutStatus::Waiting) => {
                            self.send(gateway, payout_account, MAX_PAYOUT_ATTEMPTS, at).await?
                        }
                        Some(PayoutStatus::Sent | PayoutStatus::Parked) => Vec::new(),
                    }
                }
            }
            PayoutCommand::Retry { payout_account, at } => match (self.status, self.released_to.clone()) {
                (Some(PayoutStatus::Parked), _) => {
                    let account = payout_account.or_else(|| self.account()).unwrap_or_default();
                    self.send(gateway, account, 1, at).await?
                }
                // A payout still waiting for an account the runner has now
                // (one the announcement missed) goes out on an operator's word.
                (Some(PayoutStatus::Waiting), _) if payout_account.is_some() => {
                    self.send(gateway, payout_account.unwrap_or_default(), 1, at).await?
                }
                // Released and never asked for (a release by hand, a saga
                // that stopped): the operator asks for it, as the release says.
                (None, Some(released_to)) if !self.requested => {
                    let order_id = self.order_id.ok_or(PayoutError::NotFound)?;
                    let released_cents = self.released_cents;
                    self.request(gateway, order_id, released_to, released_cents, payout_account, at)
                        .await?
                }
                (Some(status), _) => return Err(PayoutError::NotParked(status)),
                (None, _) => return Err(PayoutError::NotFound),
            },
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PayoutEvent::Requested {
                order_id,
                runner_id,
                amount_cents,
                payout_account,
                at,
            } => {
                self.order_id = Some(order_id);
                self.updated_at = Some(at);
                if self.released_to.is_none() {
                    self.held.push(HeldRequest {
                        runner_id,
                        amount_cents,
                        payout_account,
                    });
                    return;
                }
                if payout_account.is_some() {
                    self.payout_account = payout_account;
                    self.account_of = Some(runner_id.clone());
                }
                self.runner_id = Some(runner_id);
                self.amount_cents = amount_cents;
                self.requested = true;
                self.requested_at = Some(at);
            }
            PayoutEvent::ReleaseObserved {
                order_id,
                runner_id,
                amount_cents,
                at,
            } => {
                self.order_id = Some(order_id);
                self.released_to = Some(runner_id);
                self.released_cents = amount_cents;
                self.held.clear();
                self.updated_at.get_or_insert(at);
            }
            PayoutEvent::RequestDiscarded { reason, at } => {
                self.last_error = Some(reason);
                self.updated_at = Some(at);
            }
            PayoutEvent::AccountProvided {
                order_id,
                runner_id,
                payout_account,
                at,
            } => {
                self.order_id = Some(order_id);
                self.payout_account = Some(payout_account);
                self.account_of = Some(runner_id);
                self.updated_at = Some(at);
            }
            PayoutEvent::Waiting(e) => {
                self.order_id = Some(e.order_id);
                self.runner_id = Some(e.runner_id);
                self.amount_cents = e.amount_cents;
                self.status = Some(PayoutStatus::Waiting);
                self.requested = true;
                self.requested_at.get_or_insert(e.waiting_since);
                self.updated_at = Some(e.waiting_since);
            }
            PayoutEvent::Declined(e) => {
                self.attempts = e.attempt;
                self.payout_account = Some(e.payout_account);
                self.account_of = self.runner_id.clone();
                self.last_error = Some(e.reason);
                self.updated_at = Some(e.declined_at);
            }
            PayoutEvent::Parked(e) => {
                self.status = Some(PayoutStatus::Parked);
                self.attempts = e.attempts;
                self.last_error = Some(e.reason);
                self.updated_at = Some(e.parked_at);
            }
            PayoutEvent::Sent(e) => {
                self.status = Some(PayoutStatus::Sent);
                self.attempts = e.attempt;
                self.payout_account = Some(e.payout_account);
                self.account_of = self.runner_id.clone();
                self.reference = Some(e.reference);
                self.updated_at = Some(e.sent_at);
            }
        }
    }
}

impl Payout {
    /// A request for the payout: checked against the release when it was
    /// seen, held for it when not.
    async fn request(
        &self,
        gateway: &Arc<dyn PaymentGateway>,
        order_id: OrderId,
        runner_id: UserId,
        amount: Cents,
        payout_account: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PayoutEvent>, PayoutError> {
        if amount <= Cents::ZERO {
            return Err(PayoutError::AmountNotPositive(amount));
        }
        let requested = PayoutEvent::Requested {
            order_id,
            runner_id: runner_id.clone(),
            amount_cents: amount,
            payout_account: payout_account.clone(),
            at,
        };
        let Some(released_to) = self.released_to.clone() else {
            let held = HeldRequest {
                runner_id,
                amount_cents: amount,
                payout_account,
            };
            // Held until the release: the same request again adds nothing.
            return Ok(if self.held.contains(&held) {
                Vec::new()
            } else {
                vec![requested]
            });
        };
        if released_to != runner_id {
            return Err(PayoutError::OtherRunner {
                expected: released_to,
                asked: runner_id,
            });
        }
        if amount != self.released_cents {
            return Err(PayoutError::OtherAmount {
                expected: self.released_cents,
                asked: amount,
            });
        }
        if self.requested {
            // Handled already: the caller gets `outcome` again.
            return Ok(Vec::new());
        }
        let mut pending = self.clone();
        pending.apply(requested.clone());
        let mut events = vec![requested];
        events.extend(pending.proceed(gateway, at).await?);
        Ok(events)
    }

    /// The escrow's release: it bounds the payout, and picks among the
    /// requests held for it the one that matches.
    async fn observe_release(
        &self,
        gateway: &Arc<dyn PaymentGateway>,
        order_id: OrderId,
        runner_id: UserId,
        amount: Cents,
        at: DateTime<Utc>,
    ) -> Result<Vec<PayoutEvent>, PayoutError> {
        if self.released_to.is_some() {
            return Ok(Vec::new());
        }
        let observed = PayoutEvent::ReleaseObserved {
            order_id,
            runner_id: runner_id.clone(),
            amount_cents: amount,
            at,
        };
        let mut pending = self.clone();
        pending.apply(observed.clone());
        let mut events = vec![observed];
        let (matching, other): (Vec<&HeldRequest>, Vec<&HeldRequest>) = self
            .held
            .iter()
            .partition(|held| held.runner_id == runner_id && held.amount_cents == amount);
        for discarded in other {
            events.push(PayoutEvent::RequestDiscarded {
                reason: format!(
                    "a request of {} for {} did not match the release of {amount} to {runner_id}",
                    discarded.amount_cents, discarded.runner_id
                ),
                at,
            });
        }
        if let Some(held) = matching.first() {
            events.extend(
                pending
                    .request(gateway, order_id, runner_id, amount, held.payout_account.clone(), at)
                    .await?,
            );
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::payment::{AuthorizationOutcome, AuthorizationRequest};

    /// A processor that declines the account `acct_declined` and records every transfer.
    #[derive(Default)]
    struct Processor {
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl PaymentGateway for Processor {
        async fn authorize(&self, _: AuthorizationRequest) -> Result<AuthorizationOutcome, GatewayError> {
            unreachable!()
        }
        async fn void(&self, _: &str, _: &str) -> Result<(), GatewayError> {
            unreachable!()
        }
        async fn capture(&self, _: &str, _: Cents, _: &str) -> Result<(), GatewayError> {
            unreachable!()
        }
        async fn refund(&self, _: &str, _: Cents, _: &str) -> Result<(), GatewayError> {
            unreachable!()
        }
        async fn pay_out(&self, account: &str, _: Cents, key: &str) -> Result<String, GatewayError> {
            if account == "acct_declined" {
                return Err(GatewayError::Refused("the account is closed".into()));
            }
            self.sent.lock().unwrap().push(key.to_string());
            Ok(format!("po_{key}"))
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn order() -> OrderId {
        OrderId(Uuid::from_u128(7))
    }

    fn runner() -> UserId {
        UserId::parse("runner_1").unwrap()
    }

    fn gateway() -> Arc<dyn PaymentGateway> {
        Arc::new(Processor::default())
    }

    fn request(account: Option<&str>) -> PayoutCommand {
        PayoutCommand::Request {
            order_id: order(),
            runner_id: runner(),
            amount: Cents(1499),
            payout_account: account.map(str::to_string),
            at: at(),
        }
    }

    fn waiting() -> PayoutEvent {
        PayoutEvent::Waiting(PayoutWaiting {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            waiting_since: at(),
        })
    }

    fn released() -> PayoutEvent {
        PayoutEvent::ReleaseObserved {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            at: at(),
        }
    }

    fn requested(account: Option<&str>) -> PayoutEvent {
        PayoutEvent::Requested {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            payout_account: account.map(str::to_string),
            at: at(),
        }
    }

    fn sent(account: &str, attempt: u32) -> PayoutEvent {
        PayoutEvent::Sent(PayoutSent {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            payout_account: account.into(),
            reference: format!("po_payout:{}:{attempt}", order()),
            attempt,
            sent_at: at(),
        })
    }

    fn declined(attempt: u32) -> PayoutEvent {
        PayoutEvent::Declined(PayoutDeclined {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            payout_account: "acct_declined".into(),
            attempt,
            reason: "the account is closed".into(),
            declined_at: at(),
        })
    }

    fn parked(attempts: u32) -> PayoutEvent {
        PayoutEvent::Parked(PayoutParked {
            order_id: order(),
            runner_id: runner(),
            amount_cents: Cents(1499),
            attempts,
            reason: "the account is closed".into(),
            parked_at: at(),
        })
    }

    #[test]
    fn a_payout_with_an_account_is_sent() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released()])
            .when(request(Some("acct_1")))
            .then_expect_events(vec![requested(Some("acct_1")), sent("acct_1", 1)]);
    }

    #[test]
    fn a_payout_without_an_account_waits_then_goes_out_when_the_account_arrives() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released()])
            .when(request(None))
            .then_expect_events(vec![requested(None), waiting()]);
        TestFramework::<Payout>::with(gateway())
            .given(vec![released(), waiting()])
            .when(PayoutCommand::ProvideAccount {
                order_id: order(),
                runner_id: runner(),
                payout_account: "acct_1".into(),
                at: at(),
            })
            .then_expect_events(vec![sent("acct_1", 1)]);
    }

    #[test]
    fn an_account_that_arrives_before_the_request_is_used_by_it() {
        let provided = PayoutEvent::AccountProvided {
            order_id: order(),
            runner_id: runner(),
            payout_account: "acct_1".into(),
            at: at(),
        };
        TestFramework::<Payout>::with(gateway())
            .given(vec![released(), provided])
            .when(request(None))
            .then_expect_events(vec![requested(None), sent("acct_1", 1)]);
    }

    #[test]
    fn a_declining_account_is_tried_three_times_then_parked_and_an_operator_retries_once() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released()])
            .when(request(Some("acct_declined")))
            .then_expect_events(vec![
                requested(Some("acct_declined")),
                declined(1),
                declined(2),
                declined(3),
                parked(3),
            ]);
        TestFramework::<Payout>::with(gateway())
            .given(vec![
                released(),
                requested(Some("acct_declined")),
                declined(1),
                declined(2),
                declined(3),
                parked(3),
            ])
            .when(PayoutCommand::Retry {
                payout_account: Some("acct_2".into()),
                at: at(),
            })
            .then_expect_events(vec![sent("acct_2", 4)]);
    }

    #[test]
    fn a_repeated_request_sends_nothing_and_one_for_another_amount_is_refused() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released(), requested(Some("acct_1")), sent("acct_1", 1)])
            .when(request(Some("acct_1")))
            .then_expect_events(vec![]);
        let PayoutCommand::Request {
            order_id,
            runner_id,
            payout_account,
            at,
            ..
        } = request(None)
        else {
            unreachable!()
        };
        TestFramework::<Payout>::with(gateway())
            .given(vec![released(), waiting()])
            .when(PayoutCommand::Request {
                order_id,
                runner_id,
                amount: Cents(1),
                payout_account,
                at,
            })
            .then_expect_error(PayoutError::OtherAmount {
                expected: Cents(1499),
                asked: Cents(1),
            });
    }

    /// Review finding (issue 15): a hand-published `pay_out_runner` was paid as
    /// it asked. A payout pays only what the escrow released, to whom.
    #[rstest::rstest]
    #[case::to_someone_else(vec![released()], "mallory", 1499, PayoutError::OtherRunner { expected: runner(), asked: UserId::parse("mallory").unwrap() })]
    #[case::more_than_released(vec![released()], "runner_1", 100_000, PayoutError::OtherAmount { expected: Cents(1499), asked: Cents(100_000) })]
    fn a_payout_the_escrow_did_not_release_is_refused(
        #[case] given: Vec<PayoutEvent>,
        #[case] runner_id: &str,
        #[case] amount: i64,
        #[case] refusal: PayoutError,
    ) {
        TestFramework::<Payout>::with(gateway())
            .given(given)
            .when(PayoutCommand::Request {
                order_id: order(),
                runner_id: UserId::parse(runner_id).unwrap(),
                amount: Cents(amount),
                payout_account: Some("acct_m".into()),
                at: at(),
            })
            .then_expect_error(refusal);
    }

    fn observe_release() -> PayoutCommand {
        PayoutCommand::ObserveRelease {
            order_id: order(),
            runner_id: runner(),
            amount: Cents(1499),
            at: at(),
        }
    }

    fn forged() -> PayoutEvent {
        PayoutEvent::Requested {
            order_id: order(),
            runner_id: UserId::parse("mallory").unwrap(),
            amount_cents: Cents(100_000),
            payout_account: Some("acct_m".into()),
            at: at(),
        }
    }

    fn discarded() -> PayoutEvent {
        PayoutEvent::RequestDiscarded {
            reason: "a request of 1000.00 for mallory did not match the release of 14.99 to runner_1".into(),
            at: at(),
        }
    }

    #[test]
    fn a_request_read_before_the_release_waits_for_it() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![requested(Some("acct_1"))])
            .when(observe_release())
            .then_expect_events(vec![released(), requested(Some("acct_1")), sent("acct_1", 1)]);
    }

    /// Second review (issue 15): a forged request held first must neither be
    /// paid nor push the order's own request out.
    #[test]
    fn the_release_discards_a_forged_request_and_picks_the_order_s_own() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![forged()])
            .when(observe_release())
            .then_expect_events(vec![released(), discarded()]);
        TestFramework::<Payout>::with(gateway())
            .given(vec![forged(), requested(Some("acct_1"))])
            .when(observe_release())
            .then_expect_events(vec![
                released(),
                discarded(),
                requested(Some("acct_1")),
                sent("acct_1", 1),
            ]);
    }

    /// Second review (issue 15): an account announced for another runner was
    /// used for this order's payout.
    #[test]
    fn an_account_announced_for_another_runner_is_not_used() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released()])
            .when(PayoutCommand::ProvideAccount {
                order_id: order(),
                runner_id: UserId::parse("mallory").unwrap(),
                payout_account: "acct_m".into(),
                at: at(),
            })
            .then_expect_events(vec![]);
        let mallorys = PayoutEvent::AccountProvided {
            order_id: order(),
            runner_id: UserId::parse("mallory").unwrap(),
            payout_account: "acct_m".into(),
            at: at(),
        };
        TestFramework::<Payout>::with(gateway())
            .given(vec![mallorys, released()])
            .when(request(None))
            .then_expect_events(vec![requested(None), waiting()]);
    }

    #[test]
    fn an_operator_asks_for_a_release_nobody_asked_to_pay_out() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released()])
            .when(PayoutCommand::Retry {
                payout_account: Some("acct_1".into()),
                at: at(),
            })
            .then_expect_events(vec![requested(Some("acct_1")), sent("acct_1", 1)]);
    }

    #[test]
    fn only_a_parked_payout_is_retried() {
        TestFramework::<Payout>::with(gateway())
            .given(vec![released(), requested(Some("acct_1")), sent("acct_1", 1)])
            .when(PayoutCommand::Retry {
                payout_account: None,
                at: at(),
            })
            .then_expect_error(PayoutError::NotParked(PayoutStatus::Sent));
    }
}
