//! The user aggregate, its commands, events and errors.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::limits::{self, MAX_NAME_CHARS};
use crate::messages::{
    CreateUser, Message, OrderRole, PayoutAccountAdded, PayoutAccountMissing, RateUser, UpdateUser, UserCreated,
    UserRated, UserUpdated,
};

#[derive(Clone, Debug, PartialEq)]
pub enum UserCommand {
    Register {
        details: CreateUser,
        at: DateTime<Utc>,
    },
    Update {
        changes: UpdateUser,
        at: DateTime<Utc>,
    },
    Rate {
        rating: RateUser,
        at: DateTime<Utc>,
    },
    /// The runner of `order_id` has no payout account: remember the order, so
    /// that the account, once added, is announced for it.
    AwaitPayoutAccount {
        runner_id: UserId,
        order_id: OrderId,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum UserEvent {
    #[serde(rename = "user.created")]
    Registered(UserCreated),
    #[serde(rename = "user.updated")]
    Updated(UserUpdated),
    #[serde(rename = "user.rated")]
    Rated(UserRated),
    #[serde(rename = "user.payout_account_missing")]
    PayoutAwaited(PayoutAccountMissing),
    #[serde(rename = "user.payout_account_added")]
    PayoutAccountAdded(PayoutAccountAdded),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0} already exists")]
    AlreadyRegistered(UserId),
    #[error("user {0} does not exist")]
    NotFound(UserId),
    #[error("{field} is longer than {MAX_NAME_CHARS} characters")]
    TooLong { field: &'static str },
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    #[error("`{0}` is not an email address")]
    InvalidEmail(String),
    #[error("the update changes nothing")]
    NothingToUpdate,
    #[error("a rating is 1 to 5, not {0}")]
    ScoreOutOfRange(u8),
    #[error("user {user_id} was already rated as the {role:?} of order {order_id}")]
    AlreadyRated {
        user_id: UserId,
        order_id: OrderId,
        role: OrderRole,
    },
    #[error("nobody rates themselves")]
    RatingSelf,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        Message::from(self.clone()).message_type().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl From<UserEvent> for Message {
    fn from(event: UserEvent) -> Message {
        match event {
            UserEvent::Registered(e) => Message::UserCreated(e),
            UserEvent::Updated(e) => Message::UserUpdated(e),
            UserEvent::Rated(e) => Message::UserRated(e),
            UserEvent::PayoutAwaited(e) => Message::PayoutAccountMissing(e),
            UserEvent::PayoutAccountAdded(e) => Message::PayoutAccountAdded(e),
        }
    }
}

/// A user as rebuilt from events, and the user's read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Option<UserId>,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub payment_method: Option<String>,
    pub payout_account: Option<String>,
    /// The average of every rating received as a customer; none before the first.
    pub customer_rating: Option<f64>,
    pub customer_ratings: u32,
    pub runner_rating: Option<f64>,
    pub runner_ratings: u32,
    /// Each order and role the user was rated for, so that each is rated once.
    #[serde(default)]
    pub rated_for: Vec<RatedFor>,
    /// The orders whose payout waits for this runner to add a payout account.
    #[serde(default)]
    pub awaiting_payout: Vec<OrderId>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatedFor {
    pub order_id: OrderId,
    pub role: OrderRole,
}

impl User {
    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Register { details, at } => {
                if let Some(existing) = &self.user_id {
                    return Err(UserError::AlreadyRegistered(existing.clone()));
                }
                let name = required("name", &details.name)?;
                let email = valid_email(&details.email)?;
                for (field, value) in [
                    ("phone", &details.phone),
                    ("payment_method", &details.payment_method),
                    ("payout_account", &details.payout_account),
                ] {
                    within_limit(field, value.as_deref().unwrap_or_default())?;
                }
                // A runner who delivered before registering has payouts
                // waiting for them already.
                let added = self.account_added(details.user_id.clone(), details.payout_account.clone(), at);
                let mut events = vec![UserEvent::Registered(UserCreated {
                    user_id: details.user_id,
                    name,
                    email,
                    phone: optional(details.phone),
                    payment_method: optional(details.payment_method),
                    payout_account: optional(details.payout_account),
                    created_at: at,
                })];
                events.extend(added);
                Ok(events)
            }
            UserCommand::Update { changes, at } => {
                if self.user_id.is_none() {
                    return Err(UserError::NotFound(changes.user_id));
                }
                let name = changes.name.as_deref().map(|n| required("name", n)).transpose()?;
                let email = changes.email.as_deref().map(valid_email).transpose()?;
                for (field, value) in [
                    ("phone", &changes.phone),
                    ("payment_method", &changes.payment_method),
                    ("payout_account", &changes.payout_account),
                ] {
                    within_limit(field, value.as_deref().unwrap_or_default())?;
                }
                let update = UserUpdated {
                    user_id: changes.user_id,
                    name,
                    email,
                    phone: changes.phone,
                    payment_method: changes.payment_method,
                    payout_account: changes.payout_account,
                    updated_at: at,
                };
                let nothing = update.name.is_none()
                    && update.email.is_none()
                    && update.phone.is_none()
                    && update.payment_method.is_none()
                    && update.payout_account.is_none();
                if nothing {
                    return Err(UserError::NothingToUpdate);
                }
                let added = self.account_added(update.user_id.clone(), update.payout_account.clone(), at);
                let mut events = vec![UserEvent::Updated(update)];
                events.extend(added);
                Ok(events)
            }
            UserCommand::AwaitPayoutAccount {
                runner_id,
                order_id,
                at,
            } => Ok(self.await_payout_account(order_id, at, runner_id)),
            UserCommand::Rate { rating, at } => {
                let Some(user_id) = self.user_id.clone() else {
                    return Err(UserError::NotFound(rating.user_id));
                };
                if !(1..=5).contains(&rating.score) {
                    return Err(UserError::ScoreOutOfRange(rating.score));
                }
                if rating.rated_by == user_id {
                    return Err(UserError::RatingSelf);
                }
                let already = self
                    .rated_for
                    .iter()
                    .any(|r| r.order_id == rating.order_id && r.role == rating.role);
                if already {
                    return Err(UserError::AlreadyRated {
                        user_id,
                        order_id: rating.order_id,
                        role: rating.role,
                    });
                }
                let (average, count) = match rating.role {
                    OrderRole::Customer => (self.customer_rating, self.customer_ratings),
                    OrderRole::Runner => (self.runner_rating, self.runner_ratings),
                };
                let total = average.unwrap_or(0.0) * f64::from(count) + f64::from(rating.score);
                let ratings = count + 1;
                Ok(vec![UserEvent::Rated(UserRated {
                    user_id,
                    order_id: rating.order_id,
                    role: rating.role,
                    score: rating.score,
                    rated_by: rating.rated_by,
                    average: (total / f64::from(ratings) * 100.0).round() / 100.0,
                    ratings,
                    rated_at: at,
                })])
            }
        }
    }
}

/// How many orders one `user.payout_account_added` names, at most: a runner
/// with more waiting payouts gets several.
pub const MAX_ORDERS_PER_ANNOUNCEMENT: usize = 100;

impl User {
    /// The announcement of a payout account to the orders awaiting one, if
    /// `account` adds one and any order awaits it.
    fn account_added(&self, runner_id: UserId, account: Option<String>, at: DateTime<Utc>) -> Vec<UserEvent> {
        let Some(payout_account) = optional(account) else {
            return Vec::new();
        };
        self.awaiting_payout
            .chunks(MAX_ORDERS_PER_ANNOUNCEMENT)
            .map(|orders| {
                UserEvent::PayoutAccountAdded(PayoutAccountAdded {
                    runner_id: runner_id.clone(),
                    payout_account: payout_account.clone(),
                    order_ids: orders.to_vec(),
                    added_at: at,
                })
            })
            .collect()
    }

    fn await_payout_account(&self, order_id: OrderId, at: DateTime<Utc>, runner_id: UserId) -> Vec<UserEvent> {
        if self.awaiting_payout.contains(&order_id) {
            return Vec::new();
        }
        vec![UserEvent::PayoutAwaited(PayoutAccountMissing {
            runner_id,
            order_id,
            awaited_at: at,
        })]
    }
}

/// Every text of a user is a name-sized field: at most [`MAX_NAME_CHARS`].
fn within_limit(field: &'static str, value: &str) -> Result<(), UserError> {
    if limits::within(value, MAX_NAME_CHARS) {
        Ok(())
    } else {
        Err(UserError::TooLong { field })
    }
}

fn required(field: &'static str, value: &str) -> Result<String, UserError> {
    within_limit(field, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(UserError::EmptyField { field });
    }
    Ok(trimmed.to_string())
}

/// `local@domain` with a dot in the domain, no space and one `@`: the pattern
/// the API document states, `^[^@ ]+@[^@ ]*\.[^@ ]*$`.
fn valid_email(value: &str) -> Result<String, UserError> {
    within_limit("email", value)?;
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !value.contains(' ') =>
        {
            Ok(value.trim().to_string())
        }
        _ => Err(UserError::InvalidEmail(value.to_string())),
    }
}

/// An empty string in an optional field means "none".
fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
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
            UserEvent::Registered(e) => {
                self.user_id = Some(e.user_id);
                self.name = e.name;
                self.email = e.email;
                self.phone = e.phone;
                self.payment_method = e.payment_method;
                self.payout_account = e.payout_account;
                self.created_at = Some(e.created_at);
                self.updated_at = Some(e.created_at);
            }
            UserEvent::Updated(e) => {
                if let Some(name) = e.name {
                    self.name = name;
                }
                if let Some(email) = e.email {
                    self.email = email;
                }
                // An empty string clears an optional detail.
                if let Some(phone) = e.phone {
                    self.phone = optional(Some(phone));
                }
                if let Some(method) = e.payment_method {
                    self.payment_method = optional(Some(method));
                }
                if let Some(account) = e.payout_account {
                    self.payout_account = optional(Some(account));
                }
                self.updated_at = Some(e.updated_at);
            }
            UserEvent::Rated(e) => {
                match e.role {
                    OrderRole::Customer => {
                        self.customer_rating = Some(e.average);
                        self.customer_ratings = e.ratings;
                    }
                    OrderRole::Runner => {
                        self.runner_rating = Some(e.average);
                        self.runner_ratings = e.ratings;
                    }
                }
                self.rated_for.push(RatedFor {
                    order_id: e.order_id,
                    role: e.role,
                });
                self.updated_at = Some(e.rated_at);
            }
            UserEvent::PayoutAwaited(e) => self.awaiting_payout.push(e.order_id),
            UserEvent::PayoutAccountAdded(e) => {
                self.awaiting_payout.retain(|order| !e.order_ids.contains(order));
            }
        }
    }
}

#[cfg(test)]
mod payout_account_tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn runner() -> UserId {
        UserId::parse("r9").unwrap()
    }

    fn awaiting(orders: u128, registered: bool) -> User {
        let mut user = User::default();
        if registered {
            user.apply(UserEvent::Registered(UserCreated {
                user_id: runner(),
                name: "R".into(),
                email: "r9@campus.edu".into(),
                phone: None,
                payment_method: None,
                payout_account: None,
                created_at: at(),
            }));
        }
        for n in 0..orders {
            for event in user
                .decide(UserCommand::AwaitPayoutAccount {
                    runner_id: runner(),
                    order_id: OrderId(Uuid::from_u128(n)),
                    at: at(),
                })
                .unwrap()
            {
                user.apply(event);
            }
        }
        user
    }

    fn announced(events: &[UserEvent]) -> Vec<usize> {
        events
            .iter()
            .filter_map(|e| match e {
                UserEvent::PayoutAccountAdded(added) => Some(added.order_ids.len()),
                _ => None,
            })
            .collect()
    }

    /// Review finding (issue 15): a runner who delivered before registering
    /// never had their waiting payout announced.
    #[test]
    fn registering_with_an_account_announces_it_to_the_payouts_already_waiting() {
        let events = awaiting(2, false)
            .decide(UserCommand::Register {
                details: CreateUser {
                    user_id: runner(),
                    name: "R".into(),
                    email: "r9@campus.edu".into(),
                    phone: None,
                    payment_method: None,
                    payout_account: Some("acct_r9".into()),
                },
                at: at(),
            })
            .unwrap();
        assert_eq!(announced(&events), [2]);
    }

    /// Review finding (issue 15): over 1,000 waiting payouts made one
    /// announcement too long for its schema, refusing the account itself.
    #[test]
    fn many_waiting_payouts_are_announced_in_parts() {
        let events = awaiting(250, true)
            .decide(UserCommand::Update {
                changes: UpdateUser {
                    user_id: runner(),
                    name: None,
                    email: None,
                    phone: None,
                    payment_method: None,
                    payout_account: Some("acct_r9".into()),
                },
                at: at(),
            })
            .unwrap();
        assert_eq!(announced(&events), [100, 100, 50]);
    }
}

#[cfg(test)]
mod aggregate_tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    fn registration() -> CreateUser {
        CreateUser {
            user_id: alice(),
            name: "Alice".into(),
            email: "alice@campus.edu".into(),
            phone: None,
            payment_method: Some("pm_card_visa".into()),
            payout_account: None,
        }
    }

    fn registered() -> UserEvent {
        UserEvent::Registered(UserCreated {
            user_id: alice(),
            name: "Alice".into(),
            email: "alice@campus.edu".into(),
            phone: None,
            payment_method: Some("pm_card_visa".into()),
            payout_account: None,
            created_at: at(),
        })
    }

    #[test]
    fn a_new_user_is_registered() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(UserCommand::Register {
                details: registration(),
                at: at(),
            })
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn a_payout_account_longer_than_a_name_is_refused() {
        let mut details = registration();
        details.payout_account = Some("9".repeat(MAX_NAME_CHARS + 1));
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(UserCommand::Register { details, at: at() })
            .then_expect_error(UserError::TooLong {
                field: "payout_account",
            });
    }

    #[test]
    fn a_user_id_is_registered_once() {
        TestFramework::<User>::with(())
            .given(vec![registered()])
            .when(UserCommand::Register {
                details: registration(),
                at: at(),
            })
            .then_expect_error(UserError::AlreadyRegistered(alice()));
    }

    #[test]
    fn a_malformed_email_is_refused() {
        let mut details = registration();
        details.email = "not-an-email".into();
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(UserCommand::Register { details, at: at() })
            .then_expect_error(UserError::InvalidEmail("not-an-email".into()));
    }

    #[test]
    fn updating_an_unknown_user_is_refused() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(UserCommand::Update {
                changes: UpdateUser {
                    user_id: alice(),
                    name: Some("A".into()),
                    email: None,
                    phone: None,
                    payment_method: None,
                    payout_account: None,
                },
                at: at(),
            })
            .then_expect_error(UserError::NotFound(alice()));
    }

    #[test]
    fn an_empty_payment_method_in_an_update_clears_it() {
        let mut user = User::default();
        user.apply(registered());
        user.apply(UserEvent::Updated(UserUpdated {
            user_id: alice(),
            name: None,
            email: None,
            phone: None,
            payment_method: Some(String::new()),
            payout_account: None,
            updated_at: at(),
        }));
        assert_eq!(user.payment_method, None);
    }

    fn rating(order: u128, score: u8) -> RateUser {
        RateUser {
            user_id: alice(),
            order_id: OrderId(uuid::Uuid::from_u128(order)),
            role: OrderRole::Runner,
            score,
            rated_by: UserId::parse("bob").unwrap(),
        }
    }

    fn rated(order: u128, score: u8, average: f64, ratings: u32) -> UserEvent {
        UserEvent::Rated(UserRated {
            user_id: alice(),
            order_id: OrderId(uuid::Uuid::from_u128(order)),
            role: OrderRole::Runner,
            score,
            rated_by: UserId::parse("bob").unwrap(),
            average,
            ratings,
            rated_at: at(),
        })
    }

    #[test]
    fn a_rating_is_averaged_with_the_ones_before() {
        TestFramework::<User>::with(())
            .given(vec![registered(), rated(1, 5, 5.0, 1), rated(2, 4, 4.5, 2)])
            .when(UserCommand::Rate {
                rating: rating(3, 2),
                at: at(),
            })
            .then_expect_events(vec![rated(3, 2, 3.67, 3)]);
    }

    #[test]
    fn a_user_is_rated_once_per_order_and_role() {
        TestFramework::<User>::with(())
            .given(vec![registered(), rated(1, 5, 5.0, 1)])
            .when(UserCommand::Rate {
                rating: rating(1, 3),
                at: at(),
            })
            .then_expect_error(UserError::AlreadyRated {
                user_id: alice(),
                order_id: OrderId(uuid::Uuid::from_u128(1)),
                role: OrderRole::Runner,
            });
    }

    #[rstest::rstest]
    #[case(0)]
    #[case(6)]
    fn a_score_outside_one_to_five_is_refused(#[case] score: u8) {
        TestFramework::<User>::with(())
            .given(vec![registered()])
            .when(UserCommand::Rate {
                rating: rating(1, score),
                at: at(),
            })
            .then_expect_error(UserError::ScoreOutOfRange(score));
    }
}
