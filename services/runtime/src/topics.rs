//! The topic catalog: `topics.toml`, parsed once.
//!
//! Code never names a topic with a string literal; it asks the catalog which topic
//! carries a message type ([`TopicCatalog::topic_for`]), or takes a topic name from
//! the catalog by the role it plays.

use std::collections::HashMap;

use serde::Deserialize;

use crate::embedded::TOPICS_TOML;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub retention_ms: i64,
    pub messages: Vec<String>,
    pub dead_letter: bool,
}

#[derive(Clone, Debug)]
pub struct TopicCatalog {
    topics: Vec<TopicSpec>,
    topic_by_message: HashMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("topics.toml is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("message type `{message_type}` is declared on both `{first}` and `{second}`")]
    TypeOnTwoTopics {
        message_type: String,
        first: String,
        second: String,
    },
    #[error("topics.toml declares no dead-letter topic (a topic with `dead_letter = true`)")]
    NoDeadLetterTopic,
    #[error("topic `{0}` has zero partitions")]
    NoPartitions(String),
}

#[derive(Deserialize)]
struct CatalogFile {
    defaults: Defaults,
    topic: Vec<TopicEntry>,
}

#[derive(Deserialize)]
struct Defaults {
    partitions: u32,
    retention_ms: i64,
}

#[derive(Deserialize)]
struct TopicEntry {
    name: String,
    partitions: Option<u32>,
    retention_ms: Option<i64>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    dead_letter: bool,
}

impl TopicCatalog {
    /// The catalog compiled into this binary from the workspace's `topics.toml`.
    pub fn builtin() -> TopicCatalog {
        TopicCatalog::parse(TOPICS_TOML).expect("the topics.toml compiled into campusg is valid")
    }

    pub fn parse(text: &str) -> Result<TopicCatalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        let mut topics = Vec::new();
        let mut topic_by_message: HashMap<String, usize> = HashMap::new();
        for (index, entry) in file.topic.into_iter().enumerate() {
            let spec = TopicSpec {
                partitions: entry.partitions.unwrap_or(file.defaults.partitions),
                retention_ms: entry.retention_ms.unwrap_or(file.defaults.retention_ms),
                name: entry.name,
                messages: entry.messages,
                dead_letter: entry.dead_letter,
            };
            if spec.partitions == 0 {
                return Err(CatalogError::NoPartitions(spec.name));
            }
            for message_type in &spec.messages {
                if let Some(&first) = topic_by_message.get(message_type) {
                    let first: &TopicSpec = &topics[first];
                    return Err(CatalogError::TypeOnTwoTopics {
                        message_type: message_type.clone(),
                        first: first.name.clone(),
                        second: spec.name.clone(),
                    });
                }
                topic_by_message.insert(message_type.clone(), index);
            }
            topics.push(spec);
        }
        if !topics.iter().any(|t| t.dead_letter) {
            return Err(CatalogError::NoDeadLetterTopic);
        }
        Ok(TopicCatalog {
            topics,
            topic_by_message,
        })
    }

    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    pub fn get(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The topic that carries `message_type`, if any does.
    pub fn topic_for(&self, message_type: &str) -> Option<&TopicSpec> {
        self.topic_by_message.get(message_type).map(|&i| &self.topics[i])
    }

    pub fn dead_letter_topic(&self) -> &TopicSpec {
        self.topics.iter().find(|t| t.dead_letter).expect("checked when parsed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_routes_the_seeds_message_types() {
        let catalog = TopicCatalog::builtin();
        for (message_type, topic) in [
            ("create_order", "order_commands"),
            ("order.created", "order_events"),
            ("get_payment_info", "user_commands"),
            ("user.payment_info_retrieved", "user_events"),
            ("authorize_payment", "payment_commands"),
            ("payment.failed", "payment_events"),
        ] {
            assert_eq!(catalog.topic_for(message_type).map(|t| t.name.as_str()), Some(topic));
        }
        assert_eq!(catalog.dead_letter_topic().name, "dead_letters");
    }

    #[test]
    fn a_type_declared_on_two_topics_is_refused() {
        let text = r#"
            [defaults]
            partitions = 1
            retention_ms = 1
            [[topic]]
            name = "a"
            messages = ["x"]
            [[topic]]
            name = "b"
            dead_letter = true
            messages = ["x"]
        "#;
        assert!(matches!(
            TopicCatalog::parse(text),
            Err(CatalogError::TypeOnTwoTopics { .. })
        ));
    }
}
