//! The dead-letter queue, for an operator: list the parked keys and the dead
//! letters, show one, retry a parked key (its held records handled again, in
//! order) or a dead letter (published again) after the cause is fixed, or drop
//! either with a reason.
//!
//! A record that fails with a key parks that key for its group
//! ([`campusg_runtime::parking`]); its dead letter is then a notice, and
//! retrying or dropping it acts on the key.
//!
//! Dead letters live on the dead-letter topic, and so do the operator's actions
//! on them (`dead_letter.retried`, `dead_letter.dropped`): the topic is the
//! whole record of what failed and what was done about it, on either bus.

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use campusg_runtime::bus::{MessageBus, OutgoingRecord, StartFrom, Subscription};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::Contracts;

/// A dead letter, and what has been done about it.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub offset: i64,
    pub envelope: Envelope,
    /// `dead_letter.retried` and `dead_letter.dropped` records about it, oldest first.
    pub actions: Vec<Envelope>,
}

impl DeadLetter {
    /// `PENDING`, `RETRIED` or `DROPPED`: what the latest action made of it.
    pub fn status(&self) -> &'static str {
        match self.actions.last().map(|a| a.message_type.as_str()) {
            Some("dead_letter.retried") => "RETRIED",
            Some("dead_letter.dropped") => "DROPPED",
            _ => "PENDING",
        }
    }

    fn field(&self, name: &str) -> &Value {
        &self.envelope.payload[name]
    }

    /// The type of the record that failed, if it was readable.
    pub fn original_type(&self) -> String {
        self.field("original_value")
            .as_str()
            .and_then(|raw| serde_json::from_str::<Value>(raw).ok())
            .and_then(|value| value.get("type").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "(unreadable)".to_string())
    }

    pub fn view(&self) -> Value {
        json!({
            "offset": self.offset,
            "id": self.envelope.id,
            "status": self.status(),
            "failed_at": self.envelope.timestamp,
            "dead_letter": self.envelope.payload,
            "actions": self.actions.iter().map(|a| json!({"type": a.message_type, "at": a.timestamp, "details": a.payload})).collect::<Vec<_>>(),
        })
    }
}

/// Every dead letter, oldest first, with the actions taken on each.
pub async fn all(bus: &dyn MessageBus, contracts: &Contracts) -> anyhow::Result<Vec<DeadLetter>> {
    let topic = contracts.topics.dead_letter_topic().name.clone();
    let mut reader = bus
        .subscribe(Subscription {
            group: None,
            topics: vec![topic],
            start: StartFrom::Earliest,
        })
        .await?;
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut quiet = Duration::from_millis(500);
    loop {
        let batch = reader.poll(1000, quiet).await?;
        if batch.is_empty() {
            break;
        }
        quiet = Duration::from_millis(300);
        for record in batch {
            let Ok(envelope) = serde_json::from_str::<Envelope>(&record.value) else {
                continue;
            };
            if envelope.message_type == "dead_letter" {
                letters.push(DeadLetter {
                    offset: record.offset,
                    envelope,
                    actions: Vec::new(),
                });
            } else if let Some(target) = envelope.payload["dead_letter_id"].as_str() {
                if let Some(letter) = letters.iter_mut().find(|l| l.envelope.id.to_string() == target) {
                    letter.actions.push(envelope);
                }
            }
        }
    }
    Ok(letters)
}

/// The dead letter named by its offset on the topic or its id.
pub async fn find(bus: &dyn MessageBus, contracts: &Contracts, id: &str) -> anyhow::Result<DeadLetter> {
    named(all(bus, contracts).await?, id)
        .with_context(|| format!("no dead letter {id} (give its offset or its id; see `campusg dlq list`)"))
}

/// The letter of `letters` named by its offset on the topic or its id.
pub fn named(letters: Vec<DeadLetter>, id: &str) -> Option<DeadLetter> {
    letters
        .into_iter()
        .find(|l| l.offset.to_string() == id || l.envelope.id.to_string() == id)
}

/// Publishes the dead letter's original record again, to its original topic,
/// under a new message id (the old id is marked handled: the consumer that
/// dead-lettered it would skip it), and records the retry.
pub async fn retry(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    letter: &DeadLetter,
    by: &str,
    force: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    if letter.status() != "PENDING" && !force {
        bail!(
            "dead letter {} is {} already; --force publishes it again anyway",
            letter.offset,
            letter.status()
        );
    }
    let topic = letter
        .field("original_topic")
        .as_str()
        .context("the dead letter names no topic")?;
    let raw = letter.field("original_value").as_str().unwrap_or_default();
    // A dead letter of a large record quotes only its beginning (or, for a
    // record the bus refused as too large, nothing): there is nothing whole to
    // publish again.
    if let Some(size) = letter.field("original_size_bytes").as_u64() {
        if size as usize != raw.len() {
            bail!(
                "dead letter {} holds {} of the record's {size} bytes; it cannot be published again",
                letter.offset,
                raw.len()
            );
        }
    }
    // Named after the letter and how often it was retried: two operators
    // retrying it at once publish one id, which its consumer handles once.
    let retried_as = Uuid::new_v5(
        &letter.envelope.id,
        format!("retry {}", letter.actions.len()).as_bytes(),
    );
    let (value, headers) = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(mut message)) => {
            message.insert("id".into(), json!(retried_as));
            message.insert("causation_id".into(), json!(letter.envelope.id));
            let header = |name: &str| {
                message
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let headers = vec![
                ("type".to_string(), header("type")),
                ("id".to_string(), retried_as.to_string()),
                ("correlation_id".to_string(), header("correlation_id")),
            ];
            (Value::Object(message).to_string(), headers)
        }
        // Not a JSON object: published as it was, for a consumer that now reads it.
        _ => (raw.to_string(), Vec::new()),
    };
    bus.produce(vec![OutgoingRecord {
        topic: topic.to_string(),
        key: letter.field("original_key").as_str().map(str::to_string),
        value,
        headers,
    }])
    .await?;
    record(
        bus,
        contracts,
        letter,
        "dead_letter.retried",
        json!({"dead_letter_id": letter.envelope.id, "retried_as": retried_as, "original_topic": topic, "by": by, "at": now}),
        now,
    )
    .await?;
    Ok(retried_as)
}

/// What retrying a dead letter did.
pub enum LetterRetry {
    /// Its key is parked in the group that dead-lettered it: the key's held
    /// records, the letter's own first, are handled again there, in order.
    KeyRetried { key: String, group: String },
    /// Its record was published again, under this id.
    PublishedAgain(Uuid),
}

/// Retries a dead letter the one safe way. A record whose key was parked is
/// held with its key: while parked, the key is retried (and the letter noted
/// as retried in place); once the key was dealt with, the letter is refused,
/// since its record, published again, would be handled a second time. Any
/// other letter's record is published again.
pub async fn retry_letter(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    stores: &ServiceStores,
    letter: &DeadLetter,
    by: &str,
    force: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<LetterRetry> {
    let key = letter.field("original_key").as_str().unwrap_or_default();
    let group = letter.field("consumer_group").as_str().unwrap_or_default();
    if !key.is_empty() {
        if let Some(status) = parking_of(stores, group, key).await? {
            if status == "PARKED" {
                act_on_key(stores, key, Some(group), &KeyAction::Retry, by, now).await?;
                record_retried_in_place(bus, contracts, letter, by, now).await?;
                return Ok(LetterRetry::KeyRetried {
                    key: key.to_string(),
                    group: group.to_string(),
                });
            }
            bail!(
                "dead letter {}: its key {key} was parked in {group} and is {status}; its records were dealt with there",
                letter.offset
            );
        }
    }
    Ok(LetterRetry::PublishedAgain(
        retry(bus, contracts, letter, by, force, now).await?,
    ))
}

/// Drops a dead letter, and its key's held records in the letter's own group
/// (another group's records of the same key, a payment's void say, are not
/// this letter's to drop). Returns the groups whose held records were dropped.
pub async fn drop_letter(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    stores: &ServiceStores,
    letter: &DeadLetter,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let key = letter.field("original_key").as_str().unwrap_or_default();
    let group = letter.field("consumer_group").as_str().unwrap_or_default();
    let mut dropped = Vec::new();
    if !key.is_empty() {
        let action = KeyAction::Drop(reason.to_string());
        dropped = act_on_key(stores, key, Some(group), &action, by, now).await?;
    }
    drop(bus, contracts, letter, reason, by, now).await?;
    Ok(dropped)
}

/// How `key` stands in `group` if it was ever parked there (PARKED, RETRYING,
/// RELEASED or DROPPED): a dead letter of a key that was parked is dealt with
/// through the key, never published again.
pub async fn parking_of(stores: &ServiceStores, group: &str, key: &str) -> anyhow::Result<Option<String>> {
    use campusg_runtime::parking::{parked_key_id, ParkedKey};
    use cqrs_es::Aggregate;
    for (_, store) in stores {
        if let Some((_, state)) = store.state(ParkedKey::TYPE, &parked_key_id(group, key)).await? {
            return Ok(state["status"].as_str().map(str::to_string));
        }
    }
    Ok(None)
}

/// Records that the dead letter's record is handled again where it is held
/// (its key was parked), under its own id.
pub async fn record_retried_in_place(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    letter: &DeadLetter,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let original_id = letter
        .field("original_value")
        .as_str()
        .and_then(|raw| serde_json::from_str::<Value>(raw).ok())
        .and_then(|value| {
            value
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| Uuid::parse_str(id).ok())
        })
        .unwrap_or(letter.envelope.id);
    let topic = letter.field("original_topic").as_str().unwrap_or_default();
    record(
        bus,
        contracts,
        letter,
        "dead_letter.retried",
        json!({"dead_letter_id": letter.envelope.id, "retried_as": original_id, "original_topic": topic, "by": by, "at": now}),
        now,
    )
    .await
}

/// Records that the dead letter is not to be retried, and why.
pub async fn drop(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    letter: &DeadLetter,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if letter.status() != "PENDING" {
        bail!("dead letter {} is {} already", letter.offset, letter.status());
    }
    record(
        bus,
        contracts,
        letter,
        "dead_letter.dropped",
        json!({"dead_letter_id": letter.envelope.id, "reason": reason, "by": by, "at": now}),
        now,
    )
    .await
}

/// Publishes an action on the dead-letter topic, checked against its schema.
async fn record(
    bus: &dyn MessageBus,
    contracts: &Contracts,
    letter: &DeadLetter,
    action: &str,
    payload: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    contracts.schemas.validate_payload(action, &payload)?;
    let envelope = Envelope {
        id: Uuid::new_v4(),
        message_type: action.to_string(),
        version: 1,
        correlation_id: letter.envelope.correlation_id.clone(),
        causation_id: Some(letter.envelope.id.to_string()),
        timestamp: now,
        source: "operator".to_string(),
        payload,
    };
    let topic = contracts.topics.dead_letter_topic().name.clone();
    let mut outgoing = OutgoingRecord::from_envelope(&topic, &envelope);
    outgoing.key = letter.field("original_key").as_str().map(str::to_string);
    bus.produce(vec![outgoing]).await?;
    Ok(())
}

/// Who the operator is, for the record.
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "operator".to_string())
}

/// The services' stores, where each consumer group keeps its parked keys.
pub type ServiceStores = Vec<(&'static str, std::sync::Arc<dyn campusg_runtime::store::EventStore>)>;

/// Opens every service's store, for the operator's commands.
pub async fn open_service_stores(backends: &crate::settings::Backends) -> anyhow::Result<ServiceStores> {
    let opener = crate::backends::StoreOpener::for_command(backends);
    let mut stores = Vec::new();
    for service in crate::services::names() {
        stores.push((service, opener.open(service).await?));
    }
    Ok(stores)
}

/// The keys parked now (or being retried), in every group, oldest park
/// first, from the `skip`th on and at most `count` of them, each with its
/// first and last failure and the records it holds.
pub async fn parked_keys(stores: &ServiceStores, skip: usize, count: usize) -> anyhow::Result<Vec<Value>> {
    // Each store gives its oldest `skip + count`; the page is among them.
    let enough = i64::try_from(skip.saturating_add(count)).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    for (service, store) in stores {
        let waiting = campusg_runtime::parking::waiting_keys(store.as_ref(), None, Some(enough)).await?;
        found.extend(waiting.iter().map(|state| parked_view(service, state)));
    }
    let parked_at = |view: &Value| {
        view["parked_at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
    };
    found.sort_by_key(|view| parked_at(view));
    Ok(found.into_iter().skip(skip).take(count).collect())
}

fn parked_view(service: &str, state: &Value) -> Value {
    let held: Vec<Value> = state["held"]
        .as_array()
        .map(|held| {
            held.iter()
                .map(|record| {
                    let message_type = record["value"]
                        .as_str()
                        .and_then(|raw| serde_json::from_str::<Value>(raw).ok())
                        .and_then(|value| value.get("type").and_then(Value::as_str).map(str::to_string));
                    json!({
                        "topic": record["topic"], "partition": record["partition"],
                        "offset": record["offset"], "type": message_type,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "service": service,
        "group": state["group"],
        "key": state["key"],
        "status": state["status"],
        "parked_at": state["parked_at"],
        "first_failure": state["first_failure"],
        "last_failure": state["last_failure"],
        "held": held,
    })
}

/// What an operator does with a parked key.
pub enum KeyAction {
    /// Handle its held records again, in order.
    Retry,
    /// Drop its held records, with the reason.
    Drop(String),
}

/// Applies `action` to `key` in `group`, or in every group that parked it;
/// returns those groups (none when the key is parked nowhere).
pub async fn act_on_key(
    stores: &ServiceStores,
    key: &str,
    group: Option<&str>,
    action: &KeyAction,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    use campusg_runtime::aggregate::{run_alone, NotRun};
    use campusg_runtime::parking::{parked_key_id, ParkedKey, ParkingCommand, PARKED, RETRYING};
    use campusg_runtime::store::{Cause, StateQuery};
    use cqrs_es::Aggregate;

    // Every group is checked before any is changed: a drop refused in one
    // group leaves the others as they were.
    let mut targets = Vec::new();
    for (_, store) in stores {
        let query = StateQuery {
            equals: vec![("key".to_string(), key.to_string())],
            ..StateQuery::default()
        };
        for state in store.query_states(ParkedKey::TYPE, &query).await? {
            let Some(parked_in) = state["group"].as_str() else {
                continue;
            };
            if group.is_some_and(|wanted| wanted != parked_in) {
                continue;
            }
            let status = state["status"].as_str().unwrap_or_default();
            if ![PARKED, RETRYING].contains(&status) {
                continue;
            }
            if status == RETRYING && matches!(action, KeyAction::Drop(_)) {
                return Err(KeyRefused(format!(
                    "key {key} in {parked_in} is being retried; drop it if the retry parks it again"
                ))
                .into());
            }
            targets.push((store, parked_in.to_string()));
        }
    }
    let mut groups = Vec::new();
    for (store, group) in targets {
        let id = parked_key_id(&group, key);
        let command = match action {
            KeyAction::Retry => ParkingCommand::RequestRetry {
                by: by.to_string(),
                at: now,
            },
            KeyAction::Drop(reason) => ParkingCommand::Drop {
                by: by.to_string(),
                reason: reason.clone(),
                at: now,
            },
        };
        let cause = Cause::request(id.clone(), "operator", now);
        match run_alone::<ParkedKey>(store.as_ref(), &id, command, &(), cause).await {
            Ok(_) => groups.push(group),
            Err(NotRun::Refused(refused)) => return Err(KeyRefused(format!("key {key} in {group}: {refused}")).into()),
            Err(NotRun::Store(error)) => return Err(error.into()),
        }
    }
    Ok(groups)
}

/// An operator's action a parked key's state refuses (a drop while it is
/// being retried): a conflict, not a failure of the server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyRefused(pub String);

/// `GET /api/parked-keys`, and an operator's retry or drop of one key, over HTTP.
pub fn routes() -> campusg_runtime::access::Routes<std::sync::Arc<ParkedKeysApi>> {
    use campusg_runtime::access::{Access, Routes};
    Routes::new()
        .get("/api/parked-keys", "listParkedKeys", Access::Operators, list_parked)
        .post(
            "/api/parked-keys/{key}/retry",
            "retryParkedKey",
            Access::Operators,
            retry_parked,
        )
        .post(
            "/api/parked-keys/{key}/drop",
            "dropParkedKey",
            Access::Operators,
            drop_parked,
        )
}

/// What the parked-key routes read and change: every service's store.
pub struct ParkedKeysApi {
    pub stores: ServiceStores,
    pub clock: std::sync::Arc<dyn campusg_runtime::clock::Clock>,
}

use axum::extract::State;
use axum::Json;
use campusg_runtime::access::Caller;
use campusg_runtime::http::{reason_or, ApiError, JsonBody, Page, Path, Query};

fn internal(error: anyhow::Error) -> ApiError {
    if let Some(refused) = error.downcast_ref::<KeyRefused>() {
        return ApiError::conflict(refused.0.clone());
    }
    match error.downcast::<campusg_runtime::store::StoreError>() {
        Ok(store) => store.into(),
        Err(other) => ApiError::internal(other),
    }
}

/// The default and the largest page of `GET /api/parked-keys`.
pub const PARKED_KEYS_PAGE: (i64, i64) = (20, 100);

async fn list_parked(
    State(api): State<std::sync::Arc<ParkedKeysApi>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let mut query = campusg_runtime::store::StateQuery::default();
    let (page, page_size) = page.apply(&mut query, PARKED_KEYS_PAGE.0, PARKED_KEYS_PAGE.1)?;
    let skip = usize::try_from(query.offset).unwrap_or(0);
    let parked = parked_keys(&api.stores, skip, page_size as usize)
        .await
        .map_err(internal)?;
    Ok(Json(
        json!({ "parked_keys": parked, "page": page, "page_size": page_size }),
    ))
}

/// `?group=`: act in one consumer group only.
#[derive(serde::Deserialize)]
struct GroupScope {
    group: Option<String>,
}

async fn retry_parked(
    State(api): State<std::sync::Arc<ParkedKeysApi>>,
    caller: Caller,
    Path(key): Path<String>,
    Query(scope): Query<GroupScope>,
) -> Result<Json<Value>, ApiError> {
    act(&api, &caller, &key, scope.group.as_deref(), KeyAction::Retry).await
}

#[derive(serde::Deserialize)]
struct DropRequest {
    reason: Option<String>,
}

async fn drop_parked(
    State(api): State<std::sync::Arc<ParkedKeysApi>>,
    caller: Caller,
    Path(key): Path<String>,
    Query(scope): Query<GroupScope>,
    JsonBody(request): JsonBody<DropRequest>,
) -> Result<Json<Value>, ApiError> {
    let reason = reason_or(request.reason, "dropped by an operator")?;
    act(&api, &caller, &key, scope.group.as_deref(), KeyAction::Drop(reason)).await
}

impl ParkedKeysApi {
    /// An operator's `action` on `key` (in `group`, or every group that
    /// parked it), recorded under `caller`: the groups it was taken in, or
    /// the answer that says why none (404 parked nowhere, 409 refused).
    pub async fn act(
        &self,
        caller: &Caller,
        key: &str,
        group: Option<&str>,
        action: &KeyAction,
    ) -> Result<Vec<String>, ApiError> {
        campusg_runtime::http::text_within("key", key, campusg_domain::limits::MAX_NAME_CHARS)?;
        let by = caller.user.to_string();
        let groups = act_on_key(&self.stores, key, group, action, &by, self.clock.now())
            .await
            .map_err(internal)?;
        if groups.is_empty() {
            return Err(ApiError::not_found(format!("key {key} is parked in no consumer group")));
        }
        Ok(groups)
    }
}

async fn act(
    api: &ParkedKeysApi,
    caller: &Caller,
    key: &str,
    group: Option<&str>,
    action: KeyAction,
) -> Result<Json<Value>, ApiError> {
    let groups = api.act(caller, key, group, &action).await?;
    let done = match action {
        KeyAction::Retry => "retrying",
        KeyAction::Drop(_) => "dropped",
    };
    Ok(Json(
        json!({"key": key, "groups": groups, "status": done, "by": caller.user}),
    ))
}
