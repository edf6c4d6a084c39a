//! What an operator does by hand, on whichever bus the system runs on: publish a
//! message (checked like any other), tail topics, move a consumer group.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use campusg_runtime::bus::{
    BusError, MessageBus, OffsetReset, OutgoingRecord, Record, RecordPosition, StartFrom, Subscription,
};
use campusg_runtime::envelope::{Envelope, EnvelopeError};
use campusg_runtime::store::Contracts;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("topic `{0}` is not in topics.toml")]
    UnknownTopic(String),
    #[error(transparent)]
    Invalid(#[from] EnvelopeError),
    #[error("`{message_type}` does not belong on `{topic}`; {hint}")]
    WrongTopic {
        message_type: String,
        topic: String,
        hint: String,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Checks one hand-written message (the seeds' format is enough), completes its
/// envelope and publishes it to `topic`, keyed by its order (or `key`).
pub async fn publish(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    topic: &str,
    raw: &str,
    key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Envelope, RecordPosition), PublishError> {
    let spec = contracts
        .topics
        .get(topic)
        .ok_or_else(|| PublishError::UnknownTopic(topic.to_string()))?;
    let envelope = Envelope::parse(raw, &contracts.schemas, now)?;
    if !spec.messages.contains(&envelope.message_type) {
        let hint = match contracts.topics.topic_for(&envelope.message_type) {
            Some(right) => format!("it goes on `{}`", right.name),
            None => "no topic carries it".to_string(),
        };
        return Err(PublishError::WrongTopic {
            message_type: envelope.message_type.clone(),
            topic: topic.to_string(),
            hint,
        });
    }
    envelope.decode()?;
    let mut record = OutgoingRecord::from_envelope(topic, &envelope);
    if let Some(key) = key {
        record.key = Some(key.to_string());
    }
    let position = bus.produce(vec![record]).await?.remove(0);
    Ok((envelope, position))
}

/// Splits what a person gave `publish`: one JSON document, or JSON lines.
pub fn split_messages(input: &str) -> Vec<String> {
    if serde_json::from_str::<Value>(input).is_ok() {
        return vec![input.trim().to_string()];
    }
    input
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFormat {
    /// A header line per record, then its value, pretty-printed.
    Text,
    /// One JSON object per record, for tools.
    Json,
}

pub struct TailOptions {
    pub topics: Vec<String>,
    pub from_beginning: bool,
    pub follow: bool,
    pub format: TailFormat,
    /// Stop after this many records.
    pub max_records: Option<usize>,
}

/// Prints records of `topics` to `out` until caught up (or, with `follow`,
/// until `stop` resolves). Returns how many it printed.
pub async fn tail(
    bus: &dyn MessageBus,
    options: &TailOptions,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<usize> {
    let start = if options.from_beginning {
        StartFrom::Earliest
    } else {
        StartFrom::Latest
    };
    let mut consumer = bus
        .subscribe(Subscription {
            group: None,
            topics: options.topics.clone(),
            start,
        })
        .await?;
    let mut printed = 0;
    tokio::pin!(stop);
    loop {
        let records = tokio::select! {
            records = consumer.poll(500, Duration::from_millis(if options.follow { 1000 } else { 300 })) => records?,
            _ = &mut stop => return Ok(printed),
        };
        if records.is_empty() && !options.follow {
            return Ok(printed);
        }
        for record in records {
            write_record(out, &record, options.format)?;
            printed += 1;
            if options.max_records.is_some_and(|max| printed >= max) {
                return Ok(printed);
            }
        }
        out.flush()?;
    }
}

fn write_record(out: &mut (dyn Write + Send), record: &Record, format: TailFormat) -> std::io::Result<()> {
    let value: Value = serde_json::from_str(&record.value).unwrap_or_else(|_| Value::String(record.value.clone()));
    match format {
        TailFormat::Json => {
            let headers: serde_json::Map<String, Value> = record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let line = json!({
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key,
                "timestamp": record.timestamp,
                "headers": headers,
                "value": value,
            });
            writeln!(out, "{line}")
        }
        TailFormat::Text => {
            let headers: Vec<String> = record.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(
                out,
                "── {}[{}]@{}  key={}  {}",
                record.topic,
                record.partition,
                record.offset,
                record.key.as_deref().unwrap_or("-"),
                record.timestamp.to_rfc3339()
            )?;
            writeln!(out, "   {}", headers.join("  "))?;
            let pretty = serde_json::to_string_pretty(&value).unwrap_or_else(|_| record.value.clone());
            for line in pretty.lines() {
                writeln!(out, "   {line}")?;
            }
            Ok(())
        }
    }
}

/// Parses `earliest`, `latest` or an offset.
pub fn parse_offset_reset(text: &str) -> Result<OffsetReset, String> {
    match text {
        "earliest" => Ok(OffsetReset::Earliest),
        "latest" => Ok(OffsetReset::Latest),
        other => other
            .parse::<i64>()
            .map(OffsetReset::To)
            .map_err(|_| format!("`{other}` is not `earliest`, `latest` or an offset")),
    }
}
