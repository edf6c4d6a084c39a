//! What an operator asks of the stores while debugging: sagas (and the stuck
//! ones), an aggregate replayed as it was, the dead letters. Each command opens
//! only the store it reads, on whichever backend the flags name.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use campusg_domain::ids::SagaId;
use campusg_domain::limits::MAX_QUERY_DURATION_SECONDS;
use campusg_domain::saga::SagaStatus;
use campusg_runtime::store::{AggregateChange, Cause, UnitOfWork};
use campusg_sagas::views::{self, SagaFilter};

use crate::backends::open_store;
use crate::settings::Backends;

/// Reads `30s`, `5m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 5m, 2h or 1d"))?;
    let seconds_per_unit = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(format!("`{unit}` is not a unit: use s, m, h or d")),
    };
    number
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds <= MAX_QUERY_DURATION_SECONDS)
        .map(Duration::seconds)
        .ok_or_else(|| format!("`{text}` is longer than a year"))
}

/// The filter the `sagas list` flags describe.
pub fn saga_filter(
    status: Option<&str>,
    saga_type: Option<&str>,
    order_id: Option<String>,
    stuck_for: Option<Duration>,
    with_anomalies: bool,
) -> anyhow::Result<SagaFilter> {
    let status = status
        .map(|text| {
            SagaStatus::parse(text).with_context(|| {
                format!(
                    "`{text}` is not a saga status (one of {})",
                    SagaStatus::ALL.map(SagaStatus::as_str).join(", ")
                )
            })
        })
        .transpose()?;
    let saga_type = saga_type
        .map(|name| {
            views::saga_type(name).with_context(|| {
                format!(
                    "`{name}` is not a saga type (one of {})",
                    views::SAGA_TYPES.map(|(t, _)| t).join(", ")
                )
            })
        })
        .transpose()?;
    Ok(SagaFilter {
        status,
        order_id,
        saga_type,
        stuck_for,
        with_anomalies,
        ..SagaFilter::default()
    })
}

pub async fn list_sagas(backends: &Backends, filter: &SagaFilter, max: usize, json: bool) -> anyhow::Result<()> {
    let store = open_store(backends, "sagas").await?;
    let now = Utc::now();
    let sagas = views::list(store.as_ref(), filter, now).await?;
    let sagas: Vec<Value> = sagas.into_iter().take(max).collect();
    if json {
        println!("{}", Value::Array(sagas));
        return Ok(());
    }
    println!(
        "{:<36}  {:<14}  {:<12}  {:<22}  {:<36}  last step",
        "saga", "type", "status", "step", "order"
    );
    for saga in &sagas {
        let text = |field: &str| saga[field].as_str().unwrap_or("-").to_string();
        let last: Option<DateTime<Utc>> = serde_json::from_value(saga["updated_at"].clone()).ok();
        let ago = last.map(|at| format!("{} ago", short(now - at))).unwrap_or_default();
        println!(
            "{:<36}  {:<14}  {:<12}  {:<22}  {:<36}  {ago}",
            text("saga_id"),
            text("saga_type"),
            text("status"),
            text("current_step"),
            text("order_id"),
        );
    }
    println!("{} saga(s)", sagas.len());
    Ok(())
}

pub async fn show_saga(backends: &Backends, saga_id: &str, json: bool) -> anyhow::Result<()> {
    let id = SagaId::parse(saga_id).with_context(|| format!("`{saga_id}` is not a saga id (a UUID)"))?;
    let store = open_store(backends, "sagas").await?;
    let found = views::find_saga(store.as_ref(), id)
        .await?
        .with_context(|| format!("saga {saga_id} does not exist"))?;
    let mut view = views::saga_view(found.saga_type, &found.state);
    let history = views::history(store.as_ref(), found.aggregate_type, id).await?;
    if json {
        view["history"] = Value::Array(history);
        println!("{view}");
        return Ok(());
    }
    for field in [
        "saga_id",
        "saga_type",
        "order_id",
        "status",
        "current_step",
        "error",
        "cancellation_reason",
    ] {
        if let Some(value) = view[field].as_str() {
            println!("{field:<20} {value}");
        }
    }
    println!("history:");
    for step in history {
        println!(
            "  {:>3}  {}  {:<45} caused by {}",
            step["sequence"],
            step["recorded_at"].as_str().unwrap_or(""),
            step["event"].as_str().unwrap_or(""),
            step["caused_by"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

/// `1h 5m`, `12s`, as people say it.
fn short(duration: Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// Where a replay stops: after an event number, at a time, or once the
/// record at a position of the log had been handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsOf {
    Event(i64),
    Time(DateTime<Utc>),
    /// `topic[partition]@offset`, as `trace` and `tail` print positions.
    Position {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// Reads `--as-of`: an event number, an RFC 3339 time, or a log position
/// `topic[partition]@offset`.
pub fn parse_as_of(text: &str) -> anyhow::Result<AsOf> {
    if let Ok(number) = text.parse::<i64>() {
        anyhow::ensure!(number >= 0, "an event number is 1 or more");
        return Ok(AsOf::Event(number));
    }
    if let Some((place, offset)) = text.split_once('@') {
        let (topic, partition) = place
            .strip_suffix(']')
            .and_then(|p| p.split_once('['))
            .with_context(|| format!("`{text}` is not a position like order_events[2]@14"))?;
        return Ok(AsOf::Position {
            topic: topic.to_string(),
            partition: partition
                .parse()
                .with_context(|| format!("`{partition}` is not a partition"))?,
            offset: offset.parse().with_context(|| format!("`{offset}` is not an offset"))?,
        });
    }
    let at = DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("`{text}` is neither an event number nor an RFC 3339 time"))?;
    Ok(AsOf::Time(at.into()))
}

/// Which service's store keeps an aggregate type.
fn store_of(aggregate_type: &str) -> Option<&'static str> {
    crate::services::aggregate(aggregate_type).map(|(_, service)| service)
}

/// The states after each event of one aggregate, whatever its type.
pub fn replay_states(
    aggregate_type: &str,
    events: &[campusg_runtime::store::StoredEvent],
) -> anyhow::Result<Vec<Value>> {
    let Some((kind, _)) = crate::services::aggregate(aggregate_type) else {
        anyhow::bail!("`{aggregate_type}` is not an aggregate type campusg knows");
    };
    Ok((kind.states_after_each)(events)?)
}

/// The state after all of one aggregate's events, whatever its type: what a
/// rebuild writes.
pub fn rebuilt_state(
    aggregate_type: &str,
    events: &[campusg_runtime::store::EventOfType],
) -> anyhow::Result<campusg_runtime::store::JsonText> {
    let Some((kind, _)) = crate::services::aggregate(aggregate_type) else {
        anyhow::bail!("`{aggregate_type}` is not an aggregate type campusg knows");
    };
    Ok((kind.state_after)(events)?)
}

/// Prints an aggregate as it was `as_of` (the latest when `None`), with the
/// events that led there.
pub async fn replay(
    backends: &Backends,
    aggregate_type: &str,
    id: &str,
    as_of: Option<AsOf>,
    json: bool,
) -> anyhow::Result<()> {
    let service = store_of(aggregate_type).with_context(|| {
        let known: Vec<&str> = crate::services::aggregates()
            .map(|(kind, _)| kind.aggregate_type)
            .collect();
        format!("`{aggregate_type}` is not an aggregate type: {}", known.join(", "))
    })?;
    let store = open_store(backends, service).await?;
    let events = store.load(aggregate_type, id).await?;
    anyhow::ensure!(!events.is_empty(), "{aggregate_type} {id} has no events");
    let states = replay_states(aggregate_type, &events)?;
    let as_of = match as_of {
        Some(AsOf::Position {
            topic,
            partition,
            offset,
        }) => Some(position_in_history(backends, id, &events, &topic, partition, offset).await?),
        other => other,
    };
    let upto = events
        .iter()
        .take_while(|event| match &as_of {
            None => true,
            Some(AsOf::Event(number)) => event.sequence <= *number,
            Some(AsOf::Time(at)) => event.recorded_at <= *at,
            Some(AsOf::Position { .. }) => unreachable!("a position was turned into an event or a time"),
        })
        .count();
    anyhow::ensure!(upto > 0, "{aggregate_type} {id} did not exist yet at that point");
    let state = &states[upto - 1];
    let led_there: Vec<Value> = events[..upto]
        .iter()
        .map(|event| {
            serde_json::json!({
                "sequence": event.sequence,
                "type": event.event_type,
                "recorded_at": event.recorded_at,
                "correlation_id": event.correlation_id,
                "caused_by": event.causation_id,
                "event": event.payload,
            })
        })
        .collect();
    if json {
        let replayed = serde_json::json!({
            "aggregate_type": aggregate_type,
            "id": id,
            "version": upto,
            "of": events.len(),
            "state": state,
            "events": led_there,
        });
        println!("{replayed}");
        return Ok(());
    }
    println!("{aggregate_type} {id} as of event {upto} of {}:", events.len());
    println!("{}", serde_json::to_string_pretty(state)?);
    println!("events:");
    for event in &led_there {
        println!(
            "  {:>3}  {}  {}",
            event["sequence"],
            event["recorded_at"].as_str().unwrap_or(""),
            event["type"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Where the record at a log position falls in an aggregate's history. A
/// record that is one of the aggregate's own events (same type, same payload)
/// is that event: the aggregate as of it includes it and nothing later, however
/// late the outbox published it. Any other record (a command, another service's
/// event) counts from when the log took it. The record is found in the trace
/// index under `id` (an order or saga id).
async fn position_in_history(
    backends: &Backends,
    id: &str,
    events: &[campusg_runtime::store::StoredEvent],
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<AsOf> {
    let trace = open_store(backends, "trace").await?;
    let records = campusg_trace::story(trace.as_ref(), id).await?;
    let record = records
        .iter()
        .find(|r| r.topic == topic && r.partition == partition && r.offset == offset)
        .with_context(|| format!("no record at {topic}[{partition}]@{offset} is indexed under {id}"))?;
    let own_event = events.iter().find(|event| {
        record.message_type.as_deref() == Some(event.event_type.as_str())
            && event.payload.get("payload") == Some(&record.payload)
    });
    Ok(match own_event {
        Some(event) => AsOf::Event(event.sequence),
        None => AsOf::Time(record.logged_at),
    })
}

/// Rebuilds the read model of every aggregate of a type from its events, and
/// returns how many. Each read model is written at the version of the events it
/// was folded from, and a store never lets a read model go back to an older
/// version: a rebuild racing the running system cannot undo a newer write, and
/// running it again changes nothing.
pub async fn rebuild(backends: &Backends, aggregate_type: &str) -> anyhow::Result<usize> {
    let service = store_of(aggregate_type).with_context(|| format!("`{aggregate_type}` is not an aggregate type"))?;
    let store = open_store(backends, service).await?;
    let events = store.load_type(aggregate_type).await?;
    let mut rebuilt = 0;
    for history in events.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
        let state = rebuilt_state(aggregate_type, history)?;
        let mut unit = UnitOfWork::new(Cause::request(
            format!("rebuild:{aggregate_type}"),
            "operator",
            Utc::now(),
        ));
        unit.changes.push(AggregateChange {
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: history[0].aggregate_id.clone(),
            expected_version: history.last().map_or(0, |event| event.sequence),
            events: Vec::new(),
            state,
        });
        store.commit(unit).await?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}
