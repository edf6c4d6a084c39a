//! Every service of campusg, listed once, with the role that runs it.
//!
//! Start-up opens their stores, runs their consumers and relays their outboxes;
//! `campusg replay` finds the store of an aggregate type and replays it;
//! `campusg dlq`, the bench and the tests walk their stores: all from this
//! list, which each service fills with what it declares of itself
//! ([`ServiceDescription`]). A new service is one line here.

use campusg_runtime::service::{AggregateKind, ServiceDescription};

use crate::settings::Role;

pub static SERVICES: [(Role, ServiceDescription); 9] = [
    (Role::Order, campusg_order::DESCRIPTION),
    (Role::User, campusg_user::DESCRIPTION),
    (Role::Payment, campusg_payment::DESCRIPTION),
    (Role::Escrow, campusg_escrow::DESCRIPTION),
    (Role::Sagas, campusg_sagas::DESCRIPTION),
    (Role::Timer, campusg_timer::DESCRIPTION),
    (Role::Notification, campusg_notification::DESCRIPTION),
    (Role::Trace, campusg_trace::DESCRIPTION),
    (Role::Ledger, campusg_ledger::DESCRIPTION),
];

/// The services' names, which name their stores.
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|(_, service)| service.name)
}

/// The name of the service `role` runs.
pub fn name_of(role: Role) -> &'static str {
    SERVICES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, service)| service.name)
        .expect("every service role is listed")
}

/// Every aggregate type campusg keeps, with the service whose store holds it.
pub fn aggregates() -> impl Iterator<Item = (&'static AggregateKind, &'static str)> {
    SERVICES
        .iter()
        .flat_map(|(_, service)| service.aggregates.iter().map(|kind| (kind, service.name)))
}

/// An aggregate type and the service whose store holds it.
pub fn aggregate(aggregate_type: &str) -> Option<(&'static AggregateKind, &'static str)> {
    aggregates().find(|(kind, _)| kind.aggregate_type == aggregate_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_and_aggregate_type_is_named_once() {
        let mut names: Vec<&str> = names().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SERVICES.len());
        let mut types: Vec<&str> = aggregates().map(|(kind, _)| kind.aggregate_type).collect();
        let all = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), all, "an aggregate type kept by two stores: {types:?}");
    }

    /// A service's subscriptions follow from the types it handles: each must
    /// be a type the contracts know, on a topic.
    #[test]
    fn every_handled_type_has_a_schema_and_a_topic() {
        let contracts = campusg_runtime::store::Contracts::builtin();
        for (_, service) in &SERVICES {
            for message_type in service.handles {
                assert!(
                    contracts.topics.topic_for(message_type).is_some(),
                    "{}: no topic carries `{message_type}`",
                    service.name
                );
                assert!(
                    contracts.schemas.knows(message_type),
                    "{}: no schema for `{message_type}`",
                    service.name
                );
            }
        }
    }

    /// Every message the domain's own decisions act on is one its service
    /// declares, or the consumer would pass it by: checked on sample messages
    /// of every type, made from the schemas (one per value of each enum field,
    /// so that a decision that depends on a status meets each status).
    mod declared_types_cover_the_decisions {
        use serde_json::{json, Map, Value};

        use campusg_domain::ids::{SagaId, UserId};
        use campusg_domain::ledger::{entry_for, POSTED_TYPES};
        use campusg_domain::messages::Message;
        use campusg_domain::notification::{compose, OrderParties, NOTIFIED_TYPES};
        use campusg_domain::saga::routing::{address_of, SagaAddress, ROUTED_TYPES};
        use campusg_runtime::embedded::SCHEMA_FILES;
        use campusg_runtime::store::Contracts;

        /// A value `schema` accepts, with the enum field `vary` (if this is
        /// it) set to its `choice`th value.
        fn sample(schema: &Value, path: &str, vary: &str, choice: usize) -> Value {
            if let Some(values) = schema["enum"].as_array() {
                let pick = if path == vary { choice } else { 0 };
                return values[pick.min(values.len() - 1)].clone();
            }
            if let Some(first) = schema["anyOf"]
                .as_array()
                .or(schema["oneOf"].as_array())
                .and_then(|s| s.first())
            {
                return sample(first, path, vary, choice);
            }
            let kind = match &schema["type"] {
                Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            match kind.as_str() {
                Some("object") => {
                    let mut object = Map::new();
                    if let Some(properties) = schema["properties"].as_object() {
                        for (name, property) in properties {
                            object.insert(name.clone(), sample(property, &format!("{path}/{name}"), vary, choice));
                        }
                    }
                    Value::Object(object)
                }
                Some("array") => match schema["minItems"].as_u64() {
                    Some(n) if n > 0 => json!([sample(&schema["items"], &format!("{path}/0"), vary, choice)]),
                    _ => json!([]),
                },
                Some("integer") | Some("number") => {
                    let low = schema["minimum"]
                        .as_i64()
                        .or(schema["exclusiveMinimum"].as_i64().map(|n| n + 1))
                        .unwrap_or(1);
                    json!(low.max(1))
                }
                Some("boolean") => json!(true),
                Some("string") => {
                    let text = match (schema["format"].as_str(), schema["pattern"].as_str()) {
                        (Some("uuid"), _) => "0f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f".to_string(),
                        (Some("date-time"), _) => "2026-11-30T12:00:00Z".to_string(),
                        (_, Some(pattern)) if pattern.contains("[0-9]+") => "1.00".to_string(),
                        (_, Some(pattern)) if pattern.starts_with("^[a-z_]") => "a".to_string(),
                        _ => "user_1".to_string(),
                    };
                    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
                    format!("{text}{}", "x".repeat(min.saturating_sub(text.len()))).into()
                }
                _ => Value::Null,
            }
        }

        /// Where the enum fields of `schema` are, as paths.
        fn enum_paths(schema: &Value, path: &str, found: &mut Vec<(String, usize)>) {
            if let Some(values) = schema["enum"].as_array() {
                found.push((path.to_string(), values.len()));
            }
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    enum_paths(property, &format!("{path}/{name}"), found);
                }
            }
        }

        /// Sample messages of every type the contracts know.
        fn samples() -> Vec<Message> {
            let contracts = Contracts::builtin();
            let mut messages = Vec::new();
            for (message_type, text) in SCHEMA_FILES {
                // The dead-letter topic's records are the operators', not the services'.
                let dead_letters = &contracts.topics.dead_letter_topic().name;
                if contracts
                    .topics
                    .topic_for(message_type)
                    .is_none_or(|topic| &topic.name == dead_letters)
                {
                    continue;
                }
                let schema: Value = serde_json::from_str(text).unwrap();
                let mut variations = vec![(String::new(), 1)];
                enum_paths(&schema, "", &mut variations);
                for (vary, count) in variations {
                    for choice in 0..count {
                        let payload = sample(&schema, "", &vary, choice);
                        contracts
                            .schemas
                            .validate_payload(message_type, &payload)
                            .unwrap_or_else(|e| panic!("the sample {message_type} {payload} is not valid: {e}"));
                        let tagged = json!({"type": message_type, "payload": payload});
                        let message: Message = serde_json::from_value(tagged)
                            .unwrap_or_else(|e| panic!("the sample {message_type} does not decode: {e}"));
                        messages.push(message);
                    }
                }
            }
            assert!(messages.len() > 60, "only {} samples", messages.len());
            messages
        }

        fn declared(list: &[&str], message: &Message) -> bool {
            list.contains(&message.message_type())
        }

        #[test]
        fn every_message_a_saga_is_addressed_by_is_routed_to_the_sagas() {
            for message in samples() {
                let address = address_of(&message, SagaId(uuid::Uuid::nil()));
                if address != SagaAddress::Nowhere {
                    assert!(
                        declared(ROUTED_TYPES, &message),
                        "{} is routed but not declared",
                        message.message_type()
                    );
                }
            }
        }

        #[test]
        fn every_message_that_posts_to_a_ledger_reaches_the_ledger() {
            for message in samples() {
                if entry_for(&message).is_some() {
                    assert!(
                        declared(POSTED_TYPES, &message),
                        "{} posts but is not declared",
                        message.message_type()
                    );
                }
            }
        }

        #[test]
        fn every_message_someone_is_told_of_reaches_the_notifications() {
            let user = UserId::parse("user_1").unwrap();
            let known = OrderParties {
                customer_id: Some(user.clone()),
                runner_id: Some(user),
                currency: "SGD".into(),
            };
            let unknown = OrderParties::default();
            for message in samples() {
                let acts = !compose(&message, &known).is_empty() || unknown.after(&message) != unknown;
                if acts {
                    assert!(
                        declared(NOTIFIED_TYPES, &message),
                        "{} is told but not declared",
                        message.message_type()
                    );
                }
            }
        }
    }
}
