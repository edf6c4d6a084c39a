//! Printing a story: for people (text, a Mermaid sequence diagram) or tools (JSON).

use std::fmt::Write;

use serde_json::{json, Value};

use crate::story::TracedRecord;

/// The payload fields that say what a message did, in the order they are shown.
const TELLING_FIELDS: [&str; 12] = [
    "saga_type",
    "status",
    "step",
    "previous_status",
    "requested_by",
    "runner_id",
    "amount_cents",
    "timer_type",
    "due_at",
    "kind",
    "reason",
    "error",
];

/// One line per record: time since the first record and since the previous
/// one, where it is in the log, its type and sender, and what it says.
pub fn text(id: &str, records: &[TracedRecord]) -> String {
    let mut out = String::new();
    let Some(first) = records.first() else {
        let _ = writeln!(out, "nothing is indexed under {id} (an order id or a saga id)");
        return out;
    };
    let last = records.last().unwrap_or(first);
    let span = (last.at() - first.at()).num_milliseconds() as f64 / 1000.0;
    let mut topics: Vec<&str> = records.iter().map(|r| r.topic.as_str()).collect();
    topics.sort();
    topics.dedup();
    let _ = writeln!(
        out,
        "{id}: {} messages on {} topics over {span:.3} s, from {}",
        records.len(),
        topics.len(),
        first.at().to_rfc3339()
    );
    let _ = writeln!(
        out,
        "{:>10} {:>10}  {:<26} {:<28} {:<20} what",
        "since start", "since prev", "topic[partition]@offset", "type", "from"
    );
    let mut previous = first.at();
    for record in records {
        let since_start = (record.at() - first.at()).num_milliseconds() as f64 / 1000.0;
        let since_previous = (record.at() - previous).num_milliseconds() as f64 / 1000.0;
        previous = record.at();
        let position = format!("{}[{}]@{}", record.topic, record.partition, record.offset);
        let _ = writeln!(
            out,
            "{:>9.3}s {:>+9.3}s  {:<26} {:<28} {:<20} {}",
            since_start,
            since_previous,
            position,
            record.message_type.as_deref().unwrap_or("(unreadable)"),
            record.source.as_deref().unwrap_or("?"),
            summary(&record.payload)
        );
    }
    out
}

/// What a payload says, in a few `field=value` pairs.
pub fn summary(payload: &Value) -> String {
    let Some(fields) = payload.as_object() else {
        return payload.as_str().map(|raw| format!("raw: {raw}")).unwrap_or_default();
    };
    TELLING_FIELDS
        .iter()
        .filter_map(|name| {
            let value = fields.get(*name)?;
            let shown = match value {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(format!("{name}={shown}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The story as JSON: the records in order, each with its position and its
/// time since the first.
pub fn json(id: &str, records: &[TracedRecord]) -> Value {
    let start = records.first().map(TracedRecord::at);
    let entries: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut entry = serde_json::to_value(record).unwrap_or(Value::Null);
            if let Some(start) = start {
                entry["since_start_ms"] = json!((record.at() - start).num_milliseconds());
            }
            entry
        })
        .collect();
    json!({"id": id, "records": entries})
}

/// A Mermaid sequence diagram: who sent each message to whom.
pub fn mermaid(records: &[TracedRecord]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for record in records {
        let from = participant(record.source.as_deref().unwrap_or("unknown"));
        let to = participant(&receiver(&record.topic));
        let label = record.message_type.as_deref().unwrap_or("(unreadable)");
        let arrow = if record.topic.ends_with("_commands") {
            "->>"
        } else {
            "-->>"
        };
        let _ = writeln!(out, "    {from}{arrow}{to}: {label}");
    }
    out
}

/// Who reads a topic: a command topic's service, the sagas for events.
fn receiver(topic: &str) -> String {
    match topic {
        "saga_events" => "observers".to_string(),
        "notification_events" => "people".to_string(),
        "dead_letters" => "dead_letters".to_string(),
        _ => match topic.strip_suffix("_commands") {
            Some(service) => format!("{service}-service"),
            None => "saga-orchestrator".to_string(),
        },
    }
}

/// A name Mermaid takes as a participant.
fn participant(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}
