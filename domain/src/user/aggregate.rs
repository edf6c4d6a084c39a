//! The user aggregate, its commands, events and errors.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::messages::{CreateUser, Message, UpdateUser, UserCreated, UserUpdated};

#[derive(Clone, Debug, PartialEq)]
pub enum UserCommand {
    Register { details: CreateUser, at: DateTime<Utc> },
    Update { changes: UpdateUser, at: DateTime<Utc> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum UserEvent {
    #[serde(rename = "user.created")]
    Registered(UserCreated),
    #[serde(rename = "user.updated")]
    Updated(UserUpdated),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0} already exists")]
    AlreadyRegistered(UserId),
    #[error("user {0} does not exist")]
    NotFound(UserId),
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    #[error("`{0}` is not an email address")]
    InvalidEmail(String),
    #[error("the update changes nothing")]
    NothingToUpdate,
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
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
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
                Ok(vec![UserEvent::Registered(UserCreated {
                    user_id: details.user_id,
                    name,
                    email,
                    phone: optional(details.phone),
                    payment_method: optional(details.payment_method),
                    payout_account: optional(details.payout_account),
                    created_at: at,
                })])
            }
            UserCommand::Update { changes, at } => {
                if self.user_id.is_none() {
                    return Err(UserError::NotFound(changes.user_id));
                }
                let name = changes.name.as_deref().map(|n| required("name", n)).transpose()?;
                let email = changes.email.as_deref().map(valid_email).transpose()?;
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
                Ok(vec![UserEvent::Updated(update)])
            }
        }
    }
}

fn required(field: &'static str, value: &str) -> Result<String, UserError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(UserError::EmptyField { field });
    }
    Ok(trimmed.to_string())
}

fn valid_email(value: &str) -> Result<String, UserError> {
    let trimmed = value.trim();
    match trimmed.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !trimmed.contains(' ') => {
            Ok(trimmed.to_string())
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
        }
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
}
