//! The console's pages: each an askama template (`templates/`) and the rows
//! it shows, already written as text. Askama escapes every value; only the
//! sequence diagram, drawn and escaped by `campusg_trace::render::svg`, goes
//! in as it is.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// A page as an HTML answer with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => campusg_runtime::http::ApiError::internal(error).into_response(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct SignIn {
    pub error: Option<String>,
    /// The OIDC issuer the operator may sign in at, when one is configured.
    pub issuer: Option<String>,
}

#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedIn {}

#[derive(Template)]
#[template(path = "refused.html")]
pub struct Refused {
    pub message: String,
}

pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// What the saga filter form was sent with, as typed.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct SagaFilterForm {
    #[serde(default)]
    pub saga_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub order_id: String,
    #[serde(default)]
    pub customer_id: String,
    #[serde(default)]
    pub runner_id: String,
    #[serde(default)]
    pub stuck_for: String,
    #[serde(default)]
    pub anomalies: bool,
    #[serde(default)]
    pub page: Option<i64>,
}

pub struct StatusCount {
    pub status: String,
    pub class: String,
    pub count: String,
    pub link: String,
}

pub struct SagaRow {
    pub saga_id: String,
    pub short_id: String,
    pub saga_type: String,
    pub status: String,
    pub status_class: String,
    pub step: String,
    pub order_id: String,
    pub short_order: String,
    pub customer: String,
    pub runner: String,
    pub started_at: String,
    pub updated_at: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "sagas.html")]
pub struct Sagas {
    pub form: SagaFilterForm,
    pub saga_types: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub error: Option<String>,
    pub counts: Vec<StatusCount>,
    pub rows: Vec<SagaRow>,
    pub page: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

pub struct Step {
    pub at: String,
    /// Time since the step before.
    pub took: String,
    pub name: String,
    pub details: String,
    pub compensation: bool,
    /// The anchor of the record that caused the step, when the index has it.
    pub record: Option<String>,
}

pub struct Undone {
    pub name: String,
    pub at: String,
    pub took: String,
}

pub struct RecordRow {
    pub anchor: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub message_type: String,
    pub source: String,
    pub at: String,
    pub headers: Vec<(String, String)>,
    pub summary: String,
    pub payload: String,
}

#[derive(Template)]
#[template(path = "saga.html")]
pub struct Saga {
    pub saga_id: String,
    pub saga_type: String,
    pub status: String,
    pub status_class: String,
    pub order_id: String,
    pub started_at: String,
    pub updated_at: String,
    pub error: String,
    pub steps: Vec<Step>,
    pub compensations: Vec<Undone>,
    pub records: Vec<RecordRow>,
}

#[derive(Template)]
#[template(path = "order.html")]
pub struct Order {
    pub order_id: String,
    pub diagram: String,
    pub sagas: Vec<SagaRow>,
    pub records: Vec<RecordRow>,
}

pub struct ParkedKeyRow {
    /// Where its forms post, each part encoded.
    pub retry_action: String,
    pub drop_action: String,
    pub key: String,
    pub group: String,
    pub status: String,
    pub parked_at: String,
    pub held: usize,
    pub first_failure: String,
}

pub struct LetterRow {
    pub retry_action: String,
    pub drop_action: String,
    pub offset: i64,
    pub failed_at: String,
    pub status: String,
    pub pending: bool,
    pub original_type: String,
    pub original: String,
    pub key: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
pub struct DeadLetters {
    pub notice: Option<String>,
    pub parked: Vec<ParkedKeyRow>,
    pub letters: Vec<LetterRow>,
}

pub struct RateRow {
    pub saga_type: String,
    pub outcome: String,
    pub total: u64,
    pub per_second: String,
}

pub struct StepLatencyRow {
    pub saga_type: String,
    pub step: String,
    pub count: u64,
    pub mean: String,
}

pub struct GroupRow {
    pub group: String,
    pub state: String,
    pub behind: String,
    pub partitions: String,
    pub last_poll: String,
    pub error: String,
}

pub struct TimerRow {
    pub id: String,
    pub timer_type: String,
    pub order_id: String,
    pub due_at: String,
}

#[derive(Template)]
#[template(path = "system.html")]
pub struct System {
    pub rate_window: String,
    pub rates: Vec<RateRow>,
    pub steps: Vec<StepLatencyRow>,
    pub groups: Vec<GroupRow>,
    pub outboxes: Vec<(String, String)>,
    pub timers: Vec<TimerRow>,
}
