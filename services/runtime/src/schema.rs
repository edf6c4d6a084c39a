//! The JSON Schemas of `schemas/`, compiled once, checked on publish and on consume.

use std::collections::HashMap;

use jsonschema::Validator;
use serde_json::Value;

use crate::embedded::SCHEMA_FILES;

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
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("at {path}: {error}")
                }
            })
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
