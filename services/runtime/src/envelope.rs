//! The envelope every record value carries (SPEC section 5), its key and headers.
//!
//! `{"id", "type", "version", "correlation_id", "causation_id", "timestamp", "source", "payload"}`
//!
//! A person may write only `type`, `correlation_id`, `timestamp` and `payload` (the
//! seeds' format); [`Envelope::parse`] fills in the rest. The id it fills in is
//! derived from the record's bytes, so the same hand-written message published
//! twice has the same id and is handled once.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use campusg_domain::messages::Message;

use crate::schema::{SchemaError, SchemaRegistry};

/// Where ids derived from raw records live, apart from the domain's.
pub(crate) const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x2f0c_8e1d_5b6a_4c3f_8e7d_6c5b_4a3f_2e1d);

/// The `source` of a message whose writer did not say who they are.
pub const MANUAL_SOURCE: &str = "manual";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub message_type: String,
    pub version: u32,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub payload: Value,
}

/// Why a record value is not a usable message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the record value is not JSON: {0}")]
    NotJson(String),
    #[error("the record value is not a message envelope: {0}")]
    Malformed(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("`{message_type}` is a known type but its payload does not read: {reason}")]
    Undecodable { message_type: String, reason: String },
}

/// The envelope as a person may write it.
#[derive(Deserialize)]
struct LooseEnvelope {
    id: Option<Uuid>,
    #[serde(rename = "type")]
    message_type: String,
    version: Option<u32>,
    correlation_id: String,
    causation_id: Option<String>,
    timestamp: Option<String>,
    source: Option<String>,
    payload: Value,
}

impl Envelope {
    /// Wraps a message the system itself produces.
    pub fn wrap(
        message: &Message,
        correlation_id: &str,
        causation_id: Option<&str>,
        source: &str,
        at: DateTime<Utc>,
    ) -> Envelope {
        let tagged = serde_json::to_value(message).expect("messages always serialize");
        let payload = tagged.get("payload").cloned().unwrap_or(Value::Null);
        Envelope {
            id: Uuid::new_v4(),
            message_type: message.message_type().to_string(),
            version: 1,
            correlation_id: correlation_id.to_string(),
            causation_id: causation_id.map(str::to_string),
            timestamp: at,
            source: source.to_string(),
            payload,
        }
    }

    /// Reads a record value, fills in what a hand-written message leaves out, and
    /// checks it against `schemas/envelope.json` and `schemas/<type>.json`.
    pub fn parse(raw: &str, schemas: &SchemaRegistry, now: DateTime<Utc>) -> Result<Envelope, EnvelopeError> {
        let value: Value = serde_json::from_str(raw).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        schemas.validate_envelope(&value)?;
        let loose: LooseEnvelope =
            serde_json::from_value(value).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let timestamp = match loose.timestamp.as_deref() {
            None => now,
            Some(text) => parse_timestamp(text)
                .ok_or_else(|| EnvelopeError::Malformed(format!("timestamp `{text}` is not an ISO 8601 time")))?,
        };
        let envelope = Envelope {
            id: loose
                .id
                .unwrap_or_else(|| Uuid::new_v5(&RECORD_NAMESPACE, raw.trim().as_bytes())),
            message_type: loose.message_type,
            version: loose.version.unwrap_or(1),
            correlation_id: loose.correlation_id,
            causation_id: loose.causation_id,
            timestamp,
            source: loose.source.unwrap_or_else(|| MANUAL_SOURCE.to_string()),
            payload: loose.payload,
        };
        schemas.validate_payload(&envelope.message_type, &envelope.payload)?;
        Ok(envelope)
    }

    /// The typed message, for the types this build knows.
    pub fn decode(&self) -> Result<Message, EnvelopeError> {
        let tagged = serde_json::json!({"type": self.message_type, "payload": self.payload});
        serde_json::from_value(tagged).map_err(|e| EnvelopeError::Undecodable {
            message_type: self.message_type.clone(),
            reason: e.to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes always serialize")
    }

    /// The record key: the order the message is about, else the user, else the
    /// correlation id.
    pub fn key(&self) -> String {
        let order_or_user = ["order_id", "user_id", "customer_id"]
            .iter()
            .find_map(|field| self.payload.get(*field).and_then(Value::as_str));
        order_or_user.unwrap_or(&self.correlation_id).to_string()
    }

    /// The record headers: `type`, `id`, `correlation_id`, and a W3C `traceparent`
    /// whose trace id is the correlation id, so one saga is one trace.
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("type".to_string(), self.message_type.clone()),
            ("id".to_string(), self.id.to_string()),
            ("correlation_id".to_string(), self.correlation_id.clone()),
            ("traceparent".to_string(), self.traceparent()),
        ]
    }

    /// The parent span is the one this message is made in, when it is exported
    /// and in the saga's trace (see `telemetry`); else one named after the
    /// message's id, so the record still lands in its saga's trace.
    pub fn traceparent(&self) -> String {
        let trace_id = crate::telemetry::trace_id_of(&self.correlation_id);
        let (span_id, flags) = crate::telemetry::current_span_in(trace_id)
            .unwrap_or_else(|| (self.id.simple().to_string()[..16].to_string(), "01".to_string()));
        format!("00-{}-{span_id}-{flags}", trace_id.simple())
    }
}

/// RFC 3339, or an ISO 8601 time with no offset (read as UTC), as the seeds'
/// Python `datetime.isoformat()` writes it.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn seeds_message() -> String {
        json!({
            "type": "create_order",
            "correlation_id": "b1a7d3c2-6d1e-4c35-9a51-8f1f7e0c2a10",
            "timestamp": "2026-11-21T11:59:00.123456",
            "payload": {
                "customer_id": "cust_123",
                "order_details": {
                    "foodItems": [{"name": "Burger", "price": 12.99, "quantity": 1}],
                    "deliveryLocation": "North Campus"
                }
            }
        })
        .to_string()
    }

    #[test]
    fn a_message_in_the_seeds_format_is_completed() {
        let schemas = SchemaRegistry::builtin();
        let envelope = Envelope::parse(&seeds_message(), &schemas, now()).unwrap();
        assert_eq!(envelope.version, 1);
        assert_eq!(envelope.source, MANUAL_SOURCE);
        assert_eq!(
            envelope.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 21, 11, 59, 0).unwrap() + chrono::Duration::microseconds(123456)
        );
        assert!(matches!(envelope.decode(), Ok(Message::CreateOrder(_))));
    }

    #[test]
    fn the_same_hand_written_message_gets_the_same_id() {
        let schemas = SchemaRegistry::builtin();
        let first = Envelope::parse(&seeds_message(), &schemas, now()).unwrap();
        let second = Envelope::parse(&seeds_message(), &schemas, now()).unwrap();
        assert_eq!(first.id, second.id);
    }

    #[test]
    fn a_payload_that_breaks_its_schema_is_refused_with_the_reason() {
        let schemas = SchemaRegistry::builtin();
        let raw = json!({"type": "cancel_order", "correlation_id": "x", "payload": {"order_id": "nope"}}).to_string();
        let error = Envelope::parse(&raw, &schemas, now()).unwrap_err();
        assert!(
            matches!(error, EnvelopeError::Schema(SchemaError::Invalid { .. })),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_type_is_refused() {
        let schemas = SchemaRegistry::builtin();
        let raw = json!({"type": "launch_rocket", "correlation_id": "x", "payload": {}}).to_string();
        assert_eq!(
            Envelope::parse(&raw, &schemas, now()).unwrap_err(),
            EnvelopeError::Schema(SchemaError::UnknownType("launch_rocket".into()))
        );
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        let schemas = SchemaRegistry::builtin();
        assert!(matches!(
            Envelope::parse("{oops", &schemas, now()),
            Err(EnvelopeError::NotJson(_))
        ));
    }

    #[test]
    fn the_traceparent_carries_the_correlation_id_as_trace_id() {
        let schemas = SchemaRegistry::builtin();
        let envelope = Envelope::parse(&seeds_message(), &schemas, now()).unwrap();
        let traceparent = envelope.traceparent();
        assert!(
            traceparent.starts_with("00-b1a7d3c26d1e4c359a518f1f7e0c2a10-"),
            "{traceparent}"
        );
        assert_eq!(traceparent.len(), 55);
    }
}
