//! Requests retried under the same `Idempotency-Key` (SPEC section 10).
//!
//! A client that loses an answer (a dropped connection, a restarted server)
//! sends the request again with the same key; it must get the first answer
//! and cause nothing new. One [`IdempotentRequest`] per caller and key
//! remembers what the request was (a fingerprint of its method, path and
//! body) and, once answered, the answer. The key is the caller's, so two
//! callers' keys never meet.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// The longest key a client may send.
pub const MAX_KEY_CHARS: usize = 200;

/// How long a claimed request may go unanswered before a retry may run it
/// again: the process that claimed it died before it could answer. Longer
/// than any request may take (requests are answered within 30 s).
pub fn claim_lapses_after() -> Duration {
    Duration::seconds(60)
}

/// The answer a request got, replayed to its retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    /// The answer's body, as sent (JSON text).
    pub body: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyCommand {
    /// The request is about to run.
    Claim { fingerprint: String, at: DateTime<Utc> },
    /// The request ran and was answered.
    Answer { answer: Answer, at: DateTime<Utc> },
    /// The request failed for now (a 5xx): a retry may run it again.
    Release { at: DateTime<Utc> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum IdempotencyEvent {
    Claimed { fingerprint: String, at: DateTime<Utc> },
    Answered { answer: Answer, at: DateTime<Utc> },
    Released { at: DateTime<Utc> },
}

impl DomainEvent for IdempotencyEvent {
    fn event_type(&self) -> String {
        match self {
            IdempotencyEvent::Claimed { .. } => "idempotent_request.claimed",
            IdempotencyEvent::Answered { .. } => "idempotent_request.answered",
            IdempotencyEvent::Released { .. } => "idempotent_request.released",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a request under a used key does not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// Answered before: the same answer again.
    #[error("answered before")]
    Replay(Answer),
    /// The first is still running: try again shortly.
    #[error("a request with this Idempotency-Key is still running; retry shortly")]
    InFlight,
    /// The key was used for another request.
    #[error("this Idempotency-Key was used for another request (another method, path or body)")]
    Mismatch,
    /// An answer or release with no claim.
    #[error("the request was not claimed")]
    NotClaimed,
}

/// One caller's request under one key; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdempotentRequest {
    pub fingerprint: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub answer: Option<Answer>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl IdempotentRequest {
    pub fn decide(&self, command: IdempotencyCommand) -> Result<Vec<IdempotencyEvent>, IdempotencyError> {
        match command {
            IdempotencyCommand::Claim { fingerprint, at } => {
                if self.fingerprint.as_deref().is_some_and(|first| first != fingerprint) {
                    return Err(IdempotencyError::Mismatch);
                }
                match (&self.answer, self.claimed_at) {
                    (Some(answer), _) => Err(IdempotencyError::Replay(answer.clone())),
                    (None, Some(claimed)) if at < claimed + claim_lapses_after() => Err(IdempotencyError::InFlight),
                    // Never claimed, released, or its claimant died.
                    (None, _) => Ok(vec![IdempotencyEvent::Claimed { fingerprint, at }]),
                }
            }
            IdempotencyCommand::Answer { answer, at } => {
                if self.claimed_at.is_none() {
                    return Err(IdempotencyError::NotClaimed);
                }
                Ok(vec![IdempotencyEvent::Answered { answer, at }])
            }
            IdempotencyCommand::Release { at } => {
                if self.claimed_at.is_none() {
                    return Err(IdempotencyError::NotClaimed);
                }
                Ok(vec![IdempotencyEvent::Released { at }])
            }
        }
    }
}

impl Aggregate for IdempotentRequest {
    const TYPE: &'static str = "idempotent_request";
    type Command = IdempotencyCommand;
    type Event = IdempotencyEvent;
    type Error = IdempotencyError;
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
            IdempotencyEvent::Claimed { fingerprint, at } => {
                self.fingerprint = Some(fingerprint);
                self.claimed_at = Some(at);
            }
            IdempotencyEvent::Answered { answer, at } => {
                self.answer = Some(answer);
                self.answered_at = Some(at);
            }
            // The key may run again, for the same request only: a request that
            // failed after its effect was stored must not become another.
            IdempotencyEvent::Released { .. } => {
                self.claimed_at = None;
                self.answer = None;
                self.answered_at = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    type Framework = TestFramework<IdempotentRequest>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
    }

    fn claimed(fingerprint: &str) -> IdempotencyEvent {
        IdempotencyEvent::Claimed {
            fingerprint: fingerprint.into(),
            at: at(),
        }
    }

    fn answer() -> Answer {
        Answer {
            status: 202,
            body: r#"{"saga_id":"s"}"#.into(),
        }
    }

    fn claim(fingerprint: &str, after_secs: i64) -> IdempotencyCommand {
        IdempotencyCommand::Claim {
            fingerprint: fingerprint.into(),
            at: at() + Duration::seconds(after_secs),
        }
    }

    #[test]
    fn a_first_request_is_claimed() {
        Framework::with(())
            .given_no_previous_events()
            .when(claim("POST /api/orders a", 0))
            .then_expect_events(vec![claimed("POST /api/orders a")]);
    }

    #[test]
    fn a_retry_of_an_answered_request_gets_the_first_answer() {
        Framework::with(())
            .given(vec![
                claimed("f"),
                IdempotencyEvent::Answered {
                    answer: answer(),
                    at: at(),
                },
            ])
            .when(claim("f", 3600))
            .then_expect_error(IdempotencyError::Replay(answer()));
    }

    #[test]
    fn a_key_used_for_another_request_is_refused() {
        Framework::with(())
            .given(vec![
                claimed("f"),
                IdempotencyEvent::Answered {
                    answer: answer(),
                    at: at(),
                },
            ])
            .when(claim("g", 1))
            .then_expect_error(IdempotencyError::Mismatch);
    }

    #[test]
    fn a_retry_while_the_first_runs_is_told_to_wait() {
        Framework::with(())
            .given(vec![claimed("f")])
            .when(claim("f", 5))
            .then_expect_error(IdempotencyError::InFlight);
    }

    #[test]
    fn a_claim_whose_claimant_died_lapses() {
        Framework::with(())
            .given(vec![claimed("f")])
            .when(claim("f", 61))
            .then_expect_events(vec![IdempotencyEvent::Claimed {
                fingerprint: "f".into(),
                at: at() + Duration::seconds(61),
            }]);
    }

    #[test]
    fn a_released_key_is_still_the_first_request_s() {
        Framework::with(())
            .given(vec![claimed("f"), IdempotencyEvent::Released { at: at() }])
            .when(claim("g", 1))
            .then_expect_error(IdempotencyError::Mismatch);
    }

    #[test]
    fn a_released_request_runs_again() {
        Framework::with(())
            .given(vec![claimed("f"), IdempotencyEvent::Released { at: at() }])
            .when(claim("f", 1))
            .then_expect_events(vec![IdempotencyEvent::Claimed {
                fingerprint: "f".into(),
                at: at() + Duration::seconds(1),
            }]);
    }
}
