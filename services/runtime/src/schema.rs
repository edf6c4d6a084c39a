//! The JSON Schemas of `schemas/`, compiled once, checked on publish and on consume.

use std::collections::HashMap;

use jsonschema::Validator;
use serde_json::Value;

use campusg_domain::limits::shortened;

use crate::embedded::SCHEMA_FILES;

/// How much of one schema problem's message is kept.
const PROBLEM_CHARS: usize = 200;
/// How many problems of one message are reported.
const MAX_PROBLEMS: usize = 10;

/// Why a message does not match its schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown message type `{0}`: no schema in schemas/")]
    UnknownType(String),
    #[error("`{message_type}` does not match schemas/{message_type}.json: {}", .problems.join("; "))]
    Invalid {
        message_type: String,
        problems: Vec<String>,
    },
}

pub struct SchemaRegistry {
    validators: HashMap<String, Validator>,
}

impl SchemaRegistry {
    /// The schemas compiled into this binary.
    pub fn builtin() -> SchemaRegistry {
        let mut validators = HashMap::new();
        for (name, text) in SCHEMA_FILES {
            let schema: Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("schemas/{name}.json is not JSON: {e}"));
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("schemas/{name}.json is not a valid schema: {e}"));
            validators.insert(name.to_string(), validator);
        }
        SchemaRegistry { validators }
    }

    pub fn knows(&self, message_type: &str) -> bool {
        self.validators.contains_key(message_type)
    }

    /// Checks a message's payload against `schemas/<type>.json`.
    pub fn validate_payload(&self, message_type: &str, payload: &Value) -> Result<(), SchemaError> {
        self.check(message_type, payload)
    }

    /// Checks a whole record value against `schemas/envelope.json`.
    pub fn validate_envelope(&self, value: &Value) -> Result<(), SchemaError> {
        self.check("envelope", value)
    }

    fn check(&self, name: &str, value: &Value) -> Result<(), SchemaError> {
        let validator = self
            .validators
            .get(name)
            .ok_or_else(|| SchemaError::UnknownType(name.to_string()))?;
        let problems: Vec<String> = validator
            .iter_errors(value)
            .map(|error| {
                // A message quotes the value it refuses, which may be a whole
                // megabyte of array: keep the beginning, enough to see it.
                let message = shortened(&error.to_string(), PROBLEM_CHARS);
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    message
                } else {
                    format!("at {path}: {message}")
                }
            })
            .take(MAX_PROBLEMS)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemaError::Invalid {
                message_type: name.to_string(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use campusg_domain::limits::{
        MAX_AMOUNT_CHARS, MAX_ITEMS_PER_ORDER, MAX_ITEM_QUANTITY, MAX_NAME_CHARS, MAX_ORDER_TOTAL, MAX_TEXT_CHARS,
        MAX_TIMER_DELAY_SECONDS,
    };

    use super::*;
    use crate::topics::TopicCatalog;

    #[test]
    fn every_message_type_in_the_catalog_has_a_schema() {
        let registry = SchemaRegistry::builtin();
        for topic in TopicCatalog::builtin().topics() {
            for message_type in &topic.messages {
                assert!(registry.knows(message_type), "no schemas/{message_type}.json");
            }
        }
    }

    /// The schemas repeat the bounds of `campusg_domain::limits` for the
    /// operators who read them; this keeps the two the same.
    #[rstest::rstest]
    #[case("create_order", "/properties/order_details/properties/foodItems/maxItems", MAX_ITEMS_PER_ORDER as i64)]
    #[case("create_order", "/properties/order_details/properties/foodItems/items/properties/name/maxLength", MAX_NAME_CHARS as i64)]
    #[case(
        "create_order",
        "/properties/order_details/properties/foodItems/items/properties/quantity/maximum",
        MAX_ITEM_QUANTITY
    )]
    #[case("create_order", "/properties/order_details/properties/foodItems/items/properties/price/maxLength", MAX_AMOUNT_CHARS as i64)]
    #[case("create_order", "/properties/order_details/properties/deliveryLocation/maxLength", MAX_NAME_CHARS as i64)]
    #[case("create_order", "/properties/order_details/properties/storeLocation/maxLength", MAX_NAME_CHARS as i64)]
    #[case("create_order", "/properties/order_details/properties/deliveryFee/maxLength", MAX_AMOUNT_CHARS as i64)]
    #[case("order.created", "/properties/items/maxItems", MAX_ITEMS_PER_ORDER as i64)]
    #[case("order.created", "/properties/total_cents/maximum", MAX_ORDER_TOTAL.0)]
    #[case("authorize_payment", "/properties/amount_cents/maximum", MAX_ORDER_TOTAL.0)]
    #[case("hold_funds", "/properties/amount_cents/maximum", MAX_ORDER_TOTAL.0)]
    #[case("start_order_timer", "/properties/delay_seconds/maximum", MAX_TIMER_DELAY_SECONDS)]
    #[case("cancel_order", "/properties/reason/maxLength", MAX_TEXT_CHARS as i64)]
    #[case("create_user", "/properties/payout_account/maxLength", MAX_NAME_CHARS as i64)]
    #[case("update_user", "/properties/name/maxLength", MAX_NAME_CHARS as i64)]
    #[case("envelope", "/properties/correlation_id/maxLength", MAX_NAME_CHARS as i64)]
    fn the_schemas_state_the_domains_limits(#[case] schema: &str, #[case] pointer: &str, #[case] limit: i64) {
        let (_, text) = SCHEMA_FILES.iter().find(|(name, _)| *name == schema).unwrap();
        let schema_value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema_value.pointer(pointer).and_then(Value::as_i64),
            Some(limit),
            "schemas/{schema}.json at {pointer}"
        );
    }

    #[test]
    fn a_payload_missing_a_required_field_is_reported_with_the_field() {
        let registry = SchemaRegistry::builtin();
        let error = registry
            .validate_payload(
                "cancel_order",
                &json!({"order_id": "6f1c3f46-33a5-4b1e-9a7b-0a0d1f5e2c11"}),
            )
            .unwrap_err();
        assert!(error.to_string().contains("reason"), "{error}");
    }
}
