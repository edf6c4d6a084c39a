//! Printing a story: for people (text, a sequence diagram in Mermaid or SVG) or tools (JSON).

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

/// One message of a sequence diagram: who sent it to whom.
pub struct Arrow<'a> {
    pub from: String,
    pub to: String,
    pub label: &'a str,
    /// A command (drawn solid), else an event (dashed).
    pub command: bool,
    pub record: &'a TracedRecord,
}

/// The messages of a story as a sequence diagram draws them, in order.
pub fn arrows(records: &[TracedRecord]) -> Vec<Arrow<'_>> {
    records
        .iter()
        .map(|record| Arrow {
            from: participant(record.source.as_deref().unwrap_or("unknown")),
            to: participant(&receiver(&record.topic)),
            label: record.message_type.as_deref().unwrap_or("(unreadable)"),
            command: record.topic.ends_with("_commands"),
            record,
        })
        .collect()
}

/// A Mermaid sequence diagram: who sent each message to whom.
pub fn mermaid(records: &[TracedRecord]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for arrow in arrows(records) {
        let line = if arrow.command { "->>" } else { "-->>" };
        let _ = writeln!(out, "    {}{line}{}: {}", arrow.from, arrow.to, arrow.label);
    }
    out
}

/// The same diagram as an SVG drawing, for a browser with no script: a
/// lifeline per participant in the order they first appear, an arrow per
/// message, each linked to its record (`TracedRecord::anchor`).
pub fn svg(records: &[TracedRecord]) -> String {
    const COLUMN: usize = 170;
    const ROW: usize = 34;
    const TOP: usize = 50;
    let arrows = arrows(records);
    let mut participants: Vec<&str> = Vec::new();
    for arrow in &arrows {
        for name in [arrow.from.as_str(), arrow.to.as_str()] {
            if !participants.contains(&name) {
                participants.push(name);
            }
        }
    }
    let x = |name: &str| participants.iter().position(|p| *p == name).unwrap_or(0) * COLUMN + COLUMN / 2;
    let width = participants.len().max(1) * COLUMN;
    let height = TOP + (arrows.len() + 1) * ROW;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram">"#
    );
    out.push_str(r#"<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>"#);
    for name in &participants {
        let center = x(name);
        let _ = write!(
            out,
            r#"<g class="participant"><rect x="{}" y="4" width="{}" height="26" rx="4"/><text x="{center}" y="22" text-anchor="middle">{}</text><line x1="{center}" y1="30" x2="{center}" y2="{height}"/></g>"#,
            center - COLUMN / 2 + 6,
            COLUMN - 12,
            escape(name)
        );
    }
    for (row, arrow) in arrows.iter().enumerate() {
        let y = TOP + row * ROW + ROW / 2;
        let (from, to) = (x(&arrow.from), x(&arrow.to));
        let class = if arrow.command { "command" } else { "event" };
        let (topic, partition, offset) = arrow.record.position();
        let _ = write!(
            out,
            r##"<a href="#{}"><g class="arrow {class}"><title>{} on {} [{partition}] @ {offset}</title>"##,
            escape(&arrow.record.anchor()),
            escape(arrow.label),
            escape(&topic),
        );
        if from == to {
            let _ = write!(
                out,
                r#"<path d="M {from} {} h 30 v 12 h -30" marker-end="url(#head)"/>"#,
                y - 6
            );
        } else {
            let _ = write!(
                out,
                r#"<line x1="{from}" y1="{y}" x2="{to}" y2="{y}" marker-end="url(#head)"/>"#
            );
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text></g></a>"#,
            (from + to) / 2 + if from == to { 40 } else { 0 },
            y - 5,
            escape(arrow.label)
        );
    }
    out.push_str("</svg>");
    out
}

/// Text safe inside SVG (XML) text and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn record(topic: &str, offset: i64, source: &str, message_type: &str) -> TracedRecord {
        TracedRecord {
            topic: topic.to_string(),
            partition: 2,
            offset,
            key: None,
            logged_at: Utc::now(),
            id: None,
            message_type: Some(message_type.to_string()),
            correlation_id: None,
            causation_id: None,
            source: Some(source.to_string()),
            timestamp: None,
            payload: Value::Null,
        }
    }

    #[test]
    fn the_svg_diagram_draws_a_lifeline_per_participant_and_an_arrow_per_message_linked_to_its_record() {
        let records = [
            record("order_commands", 7, "saga-orchestrator", "create_order"),
            record("order_events", 9, "order-service", "order.created"),
        ];
        let drawn = svg(&records);

        assert_eq!(drawn.matches(r#"class="participant""#).count(), 2, "{drawn}");
        assert_eq!(drawn.matches("<g class=\"arrow command\">").count(), 1);
        assert_eq!(drawn.matches("<g class=\"arrow event\">").count(), 1);
        assert!(drawn.contains(r##"href="#record-order_commands-2-7""##), "{drawn}");
        assert_eq!(
            mermaid(&records),
            "sequenceDiagram\n    saga_orchestrator->>order_service: create_order\n    order_service-->>saga_orchestrator: order.created\n"
        );
    }

    #[test]
    fn text_from_a_record_cannot_break_out_of_the_svg() {
        let records = [record("order_events", 1, "x", "<script>alert(1)</script>\"'&")];
        let drawn = svg(&records);
        assert!(!drawn.contains("<script>"), "{drawn}");
        assert!(drawn.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    }
}
