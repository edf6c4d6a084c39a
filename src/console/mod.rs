//! The operator console at `/console`: pages rendered on the server from what
//! the services already answer the API, kept live over server-sent events.
//!
//! Who may see it is declared route by route, as for the API ([`routes`]):
//! operators, but for signing in. Sign-in takes a token (the bearer tokens the
//! API takes: the local key's or an OIDC issuer's) and keeps it in a cookie
//! that is `HttpOnly`, `Secure` and `SameSite=Strict`; a bearer header works
//! too. The identity layer reads that cookie for the console's paths only
//! ([`session_token`]), so the API never takes a cookie, and a form that
//! changes something is refused when it came from another site. What an
//! operator does here is recorded under their name, as over the API.
//!
//! The console is not part of the API's OpenAPI document: it answers HTML.

mod oidc;
mod pages;

pub use oidc::SignInAtIssuer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::Value;

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::limits::{MAX_QUERY_DURATION_SECONDS, MAX_TEXT_CHARS};
use campusg_domain::saga::SagaStatus;
use campusg_domain::timer::{Timer, TimerStatus};
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::bus::MessageBus;
use campusg_runtime::clock::Clock;
use campusg_runtime::http::{ApiError, Path, Query};
use campusg_runtime::store::{Contracts, EventStore, StateQuery};
use campusg_sagas::views;
use campusg_trace::story::TracedRecord;

use crate::dead_letters::{KeyAction, LetterRetry, ParkedKeysApi};
use crate::identity::Identity;
use crate::observability::Observed;
use pages::html;

/// The cookie that keeps a signed-in operator's token. `__Host-` makes the
/// browser refuse one set by another host (a sibling subdomain) or for a
/// narrower path, so nobody can slip theirs in beside it.
pub const COOKIE: &str = "__Host-campusg_console";
/// The longest token a session keeps: browsers drop larger cookies.
const MAX_SESSION_TOKEN_BYTES: usize = 3_900;
/// Sagas on one page of the list.
const PAGE_SIZE: i64 = 50;
/// A status count past this is shown as "1000+".
const COUNTED_AT_MOST: i64 = 1000;
/// How often the live stream looks for a change.
const LIVE_POLL: Duration = Duration::from_secs(1);
/// The most parked keys (oldest park first) and dead letters (newest first) a
/// page lists.
const LISTED_AT_MOST: usize = 100;

/// How many sagas ended, by type and outcome.
type EndedSagas = BTreeMap<(String, String), u64>;

/// What the console reads and acts on: the services the API serves.
pub struct Console {
    /// The stores of the sagas, the trace index and the timers, read through
    /// their services' own views.
    pub sagas: Arc<dyn EventStore>,
    pub trace: Arc<dyn EventStore>,
    pub timers: Arc<dyn EventStore>,
    pub parked: Arc<ParkedKeysApi>,
    pub observed: Observed,
    pub identity: Arc<Identity>,
    pub bus: Arc<dyn MessageBus>,
    pub contracts: Arc<Contracts>,
    pub clock: Arc<dyn Clock>,
    /// Sign-in at the OIDC issuer, when one is configured with a client id.
    sign_in_at_issuer: Option<SignInAtIssuer>,
    /// The sagas ended by type and outcome at the last look at the system
    /// page, for a rate over the time since.
    last_ended: Mutex<Option<(Instant, EndedSagas)>>,
}

impl Console {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sagas: Arc<dyn EventStore>,
        trace: Arc<dyn EventStore>,
        timers: Arc<dyn EventStore>,
        parked: Arc<ParkedKeysApi>,
        observed: Observed,
        identity: Arc<Identity>,
        bus: Arc<dyn MessageBus>,
        contracts: Arc<Contracts>,
        clock: Arc<dyn Clock>,
        sign_in_at_issuer: Option<SignInAtIssuer>,
    ) -> Arc<Console> {
        Arc::new(Console {
            sagas,
            trace,
            timers,
            parked,
            observed,
            identity,
            bus,
            contracts,
            clock,
            sign_in_at_issuer,
            last_ended: Mutex::new(None),
        })
    }
}

/// Every page and action of the console, and who may use each.
pub fn routes() -> Routes<Arc<Console>> {
    Routes::new()
        .get("/console", "console", Access::Operators, || async {
            Redirect::to("/console/sagas")
        })
        .get("/console/login", "consoleSignInPage", Access::Public, sign_in_page)
        .post("/console/login", "consoleSignIn", Access::Public, sign_in)
        .post("/console/logout", "consoleSignOut", Access::Public, sign_out)
        .get(
            "/console/oidc/start",
            "consoleSignInAtIssuer",
            Access::Public,
            oidc::start,
        )
        .get(
            "/console/oidc/callback",
            "consoleSignedInAtIssuer",
            Access::Public,
            oidc::callback,
        )
        .get("/console/assets/{file}", "consoleAsset", Access::Public, asset)
        .get("/console/sagas", "consoleSagas", Access::Operators, sagas)
        .get("/console/sagas/{saga_id}", "consoleSaga", Access::Operators, saga)
        .get("/console/orders/{order_id}", "consoleOrder", Access::Operators, order)
        .get(
            "/console/dead-letters",
            "consoleDeadLetters",
            Access::Operators,
            dead_letters,
        )
        .post(
            "/console/parked-keys/{key}/retry",
            "consoleRetryKey",
            Access::Operators,
            retry_key,
        )
        .post(
            "/console/parked-keys/{key}/drop",
            "consoleDropKey",
            Access::Operators,
            drop_key,
        )
        .post(
            "/console/dead-letters/{id}/retry",
            "consoleRetryLetter",
            Access::Operators,
            retry_letter,
        )
        .post(
            "/console/dead-letters/{id}/drop",
            "consoleDropLetter",
            Access::Operators,
            drop_letter,
        )
        .get("/console/system", "consoleSystem", Access::Operators, system)
        .get("/console/live", "consoleLive", Access::Operators, live)
}

/// Whether `path` is the console's: the API never reads the session cookie.
fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The token of a console session: the cookie, on the console's paths only.
pub fn session_token(request: &Request) -> Option<String> {
    if !is_console(request.uri().path()) {
        return None;
    }
    cookie(request.headers(), COOKIE)
}

/// The value of the cookie `name` the request carries.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// For a browser: a page that needs a signed-in operator sends whoever is not
/// signed in to the sign-in page, and answers a signed-in non-operator with a
/// page that says so. A form posted from another site is refused: the cookie
/// is `SameSite=Strict`, and this holds even where a browser ignores that.
pub async fn browser_answers(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !from_own_pages(request.headers()) {
        return ApiError::forbidden("the console takes forms from its own pages only").into_response();
    }
    let is_get = request.method() == Method::GET;
    let response = next.run(request).await;
    let is_page = |response: &Response| {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind.as_bytes().starts_with(b"text/html"))
    };
    let mut response = match response.status() {
        // The access rule's refusal (JSON) sends a browser to sign in; a page
        // that refuses (a sign-in that failed) says why itself.
        StatusCode::UNAUTHORIZED if is_get && !is_page(&response) => Redirect::to("/console/login").into_response(),
        // The access rule's refusal (JSON) becomes a page; a page says why itself.
        StatusCode::FORBIDDEN if !is_page(&response) => html(
            StatusCode::FORBIDDEN,
            &pages::Refused {
                message: "This console is for operators. Sign in with an operator's token.".to_string(),
            },
        ),
        _ => response,
    };
    if is_page(&response) {
        page_headers(response.headers_mut());
    }
    response
}

/// Whether a form came from the console's own pages: the browser says so
/// (`Sec-Fetch-Site`), or, in one too old to, its `Origin` is this host.
fn from_own_pages(headers: &HeaderMap) -> bool {
    let header = |name: header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin" || site == "none";
    }
    match (header(header::ORIGIN), header(header::HOST)) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        // No browser that sends forms across sites leaves both out.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

async fn sign_in_page(State(console): State<Arc<Console>>) -> Response {
    html(
        StatusCode::OK,
        &pages::SignIn {
            error: None,
            issuer: console
                .sign_in_at_issuer
                .as_ref()
                .map(|issuer| issuer.endpoints.issuer.clone()),
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
}

/// Keeps an operator's token in the session cookie; refuses any other.
async fn sign_in(State(console): State<Arc<Console>>, Form(form): Form<SignInForm>) -> Response {
    match operator_session(&console, form.token.trim()).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/console/sagas")).into_response(),
        Err(refused) => refused,
    }
}

/// The session cookie for `token`, if it is an operator's; else the sign-in
/// page again, saying why not.
async fn operator_session(console: &Console, token: &str) -> Result<String, Response> {
    let refused = |status, error: &str| {
        html(
            status,
            &pages::SignIn {
                error: Some(error.to_string()),
                issuer: None,
            },
        )
    };
    // A token goes into a header: only the characters a JWT has.
    let well_formed = !token.is_empty()
        && token.len() <= MAX_SESSION_TOKEN_BYTES
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
    if !well_formed {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "That is not a token the console can keep.",
        ));
    }
    match console.identity.verify(token).await {
        Err(reason) => Err(refused(
            StatusCode::UNAUTHORIZED,
            &format!("The token was refused: {reason}"),
        )),
        Ok(caller) if !caller.is_operator() => Err(refused(
            StatusCode::FORBIDDEN,
            &format!("{} is a {}; the console is for operators.", caller.user, caller.role),
        )),
        Ok(caller) => {
            tracing::info!(operator = %caller.user, "signed in to the console");
            Ok(format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict"))
        }
    }
}

async fn sign_out() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console/login")).into_response()
}

/// The stylesheet and the script, built into the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "console.css" => ("text/css; charset=utf-8", include_str!("assets/console.css")),
        "console.js" => ("text/javascript; charset=utf-8", include_str!("assets/console.js")),
        _ => return ApiError::not_found(format!("no console asset {file}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The filter as the list of sagas takes it, or what is wrong with the form.
fn saga_filter(form: &pages::SagaFilterForm) -> Result<views::SagaFilter, String> {
    let given = |text: &str| Some(text.trim()).filter(|text| !text.is_empty()).map(str::to_string);
    let mut filter = views::SagaFilter {
        with_anomalies: form.anomalies,
        ..views::SagaFilter::default()
    };
    if let Some(name) = given(&form.saga_type) {
        filter.saga_type = Some(views::saga_type(&name).ok_or(format!("`{name}` is not a saga type"))?);
    }
    if let Some(status) = given(&form.status) {
        filter.status = Some(SagaStatus::parse(&status).ok_or(format!("`{status}` is not a saga status"))?);
    }
    if let Some(order) = given(&form.order_id) {
        let order = OrderId::parse(&order).map_err(|_| format!("`{order}` is not an order id"))?;
        filter.order_id = Some(order.to_string());
    }
    for (field, text, target) in [
        ("customer", &form.customer_id, &mut filter.customer_id),
        ("runner", &form.runner_id, &mut filter.runner_id),
    ] {
        if let Some(user) = given(text) {
            let user = UserId::parse(&user).map_err(|_| format!("`{user}` is not a {field} id"))?;
            *target = Some(user.to_string());
        }
    }
    if let Some(seconds) = given(&form.stuck_for) {
        let seconds: i64 = seconds
            .parse()
            .ok()
            .filter(|s| (0..=MAX_QUERY_DURATION_SECONDS).contains(s))
            .ok_or(format!(
                "stuck for is a number of seconds from 0 to {MAX_QUERY_DURATION_SECONDS}"
            ))?;
        filter.stuck_for = Some(chrono::Duration::seconds(seconds));
    }
    Ok(filter)
}

/// The list's address with `form`, changed by `change`.
fn sagas_link(form: &pages::SagaFilterForm, change: impl FnOnce(&mut pages::SagaFilterForm)) -> String {
    let mut form = form.clone();
    change(&mut form);
    let query: Vec<(&str, String)> = [
        ("saga_type", form.saga_type.clone()),
        ("status", form.status.clone()),
        ("order_id", form.order_id.clone()),
        ("customer_id", form.customer_id.clone()),
        ("runner_id", form.runner_id.clone()),
        ("stuck_for", form.stuck_for.clone()),
        ("anomalies", if form.anomalies { "true".into() } else { String::new() }),
        ("page", form.page.map(|p| p.to_string()).unwrap_or_default()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect();
    let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
    if encoded.is_empty() {
        "/console/sagas".to_string()
    } else {
        format!("/console/sagas?{encoded}")
    }
}

/// Sagas by type, status, order, customer, runner, stuck for, anomalies:
/// counts by status for the filter, and a page of them, newest first.
async fn sagas(State(console): State<Arc<Console>>, Query(form): Query<pages::SagaFilterForm>) -> Response {
    let store = console.sagas.as_ref();
    let now = console.clock.now();
    let page = form.page.unwrap_or(1).clamp(1, campusg_domain::limits::MAX_PAGE);
    let choices = |values: Vec<&str>, chosen: &str| {
        values
            .into_iter()
            .map(|value| pages::Choice {
                value: value.to_string(),
                selected: value.eq_ignore_ascii_case(chosen),
            })
            .collect()
    };
    let mut listed = pages::Sagas {
        saga_types: choices(views::SAGA_TYPES.iter().map(|(t, _)| *t).collect(), &form.saga_type),
        statuses: choices(SagaStatus::ALL.iter().map(|s| s.as_str()).collect(), &form.status),
        form: form.clone(),
        error: None,
        counts: Vec::new(),
        rows: Vec::new(),
        page,
        previous: None,
        next: None,
    };
    let filter = match saga_filter(&form) {
        Ok(filter) => filter,
        Err(error) => {
            listed.error = Some(error);
            return html(StatusCode::BAD_REQUEST, &listed);
        }
    };
    for status in SagaStatus::ALL {
        let counting = views::SagaFilter {
            status: Some(status),
            ..filter.clone()
        };
        let count = match views::count(store, &counting, now).await {
            Ok(count) => count,
            Err(error) => return ApiError::from(error).into_response(),
        };
        listed.counts.push(pages::StatusCount {
            status: status.as_str().to_string(),
            class: status.as_str().to_lowercase(),
            count: if count > COUNTED_AT_MOST {
                format!("{COUNTED_AT_MOST}+")
            } else {
                count.to_string()
            },
            link: sagas_link(&form, |form| {
                form.status = status.as_str().to_string();
                form.page = None;
            }),
        });
    }
    let paged = views::SagaFilter {
        limit: Some(page * PAGE_SIZE + 1),
        ..filter
    };
    let found = match views::list(store, &paged, now).await {
        Ok(found) => found,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let more = found.len() as i64 > page * PAGE_SIZE;
    listed.rows = found
        .iter()
        .skip(((page - 1) * PAGE_SIZE) as usize)
        .take(PAGE_SIZE as usize)
        .map(saga_row)
        .collect();
    if page > 1 {
        listed.previous = Some(sagas_link(&form, |form| form.page = Some(page - 1)));
    }
    if more {
        listed.next = Some(sagas_link(&form, |form| form.page = Some(page + 1)));
    }
    html(StatusCode::OK, &listed)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A time as the console writes it: to the millisecond, in UTC.
fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn when_text(value: &Value) -> String {
    serde_json::from_value::<DateTime<Utc>>(value.clone())
        .map(|at| when(&at))
        .unwrap_or_else(|_| text_of(value))
}

/// A duration as people read it: 850 ms, 2.4 s, 3 min 5 s.
fn took(duration: chrono::Duration) -> String {
    let ms = duration.num_milliseconds();
    match ms {
        ..0 => String::new(),
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn saga_row(view: &Value) -> pages::SagaRow {
    let saga_id = text_of(&view["saga_id"]);
    let order_id = text_of(&view["order_id"]);
    let status = text_of(&view["status"]);
    pages::SagaRow {
        short_id: short(&saga_id),
        saga_id,
        saga_type: text_of(&view["saga_type"]),
        status_class: status.to_lowercase(),
        status,
        step: text_of(&view["current_step"]),
        short_order: short(&order_id),
        order_id,
        customer: text_of(&view["customer_id"]),
        runner: text_of(&view["runner_id"]),
        started_at: when_text(&view["created_at"]),
        updated_at: when_text(&view["updated_at"]),
        error: text_of(&view["error"]),
    }
}

fn record_row(record: &TracedRecord) -> pages::RecordRow {
    let header = |name: &str, value: &Option<String>| value.clone().map(|value| (name.to_string(), value));
    pages::RecordRow {
        anchor: record.anchor(),
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        message_type: record.message_type.clone().unwrap_or_else(|| "(unreadable)".into()),
        source: record.source.clone().unwrap_or_default(),
        at: when(&record.at()),
        headers: [
            header("type", &record.message_type),
            header("id", &record.id),
            header("correlation_id", &record.correlation_id),
            header("causation_id", &record.causation_id),
            header("key", &record.key),
        ]
        .into_iter()
        .flatten()
        .collect(),
        summary: campusg_trace::render::summary(&record.payload),
        payload: serde_json::to_string_pretty(&record.payload).unwrap_or_default(),
    }
}

/// One saga: its steps as a timeline with the time each took, the
/// compensations in the order they unwound, and the records behind them.
async fn saga(State(console): State<Arc<Console>>, Path(saga_id): Path<String>) -> Response {
    let saga_id = match SagaId::parse(&saga_id) {
        Ok(id) => id,
        Err(_) => return ApiError::bad_request(format!("`{saga_id}` is not a saga id")).into_response(),
    };
    let store = console.sagas.as_ref();
    let found = match views::find_saga(store, saga_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return ApiError::not_found(format!("saga {saga_id} does not exist")).into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let (history, records) = match (
        views::history(store, found.aggregate_type, saga_id).await,
        campusg_trace::story::story(console.trace.as_ref(), &saga_id.to_string()).await,
    ) {
        (Ok(history), Ok(records)) => (history, records),
        (Err(error), _) | (_, Err(error)) => return ApiError::from(error).into_response(),
    };
    let view = views::saga_view(found.saga_type, &found.state);
    let prefix = format!("{}.", found.aggregate_type);
    let mut steps = Vec::new();
    let mut compensations = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for entry in &history {
        let name = text_of(&entry["event"]).trim_start_matches(&prefix).to_string();
        let details = &entry["details"];
        let at = serde_json::from_value::<DateTime<Utc>>(details["at"].clone())
            .or_else(|_| serde_json::from_value(entry["recorded_at"].clone()))
            .ok();
        let since = match (previous, at) {
            (Some(previous), Some(at)) => took(at - previous),
            _ => String::new(),
        };
        let caused_by = text_of(&entry["caused_by"]);
        let record = records
            .iter()
            .find(|record| record.id.as_deref() == Some(caused_by.as_str()))
            .map(TracedRecord::anchor);
        let compensation = name.starts_with("compensation");
        if name == "compensation_completed" {
            compensations.push(pages::Undone {
                name: text_of(&details["compensation"]),
                at: at.map(|at| when(&at)).unwrap_or_default(),
                took: since.clone(),
            });
        }
        steps.push(pages::Step {
            at: at.map(|at| when(&at)).unwrap_or_default(),
            took: since,
            details: step_details(details),
            name,
            compensation,
            record,
        });
        previous = at.or(previous);
    }
    let status = text_of(&view["status"]);
    html(
        StatusCode::OK,
        &pages::Saga {
            saga_id: saga_id.to_string(),
            saga_type: found.saga_type.to_string(),
            status_class: status.to_lowercase(),
            status,
            order_id: text_of(&view["order_id"]),
            started_at: when_text(&view["created_at"]),
            updated_at: when_text(&view["updated_at"]),
            error: text_of(&view["error"]),
            steps,
            compensations,
            records: records.iter().map(record_row).collect(),
        },
    )
}

/// What a step's event says, but for what the timeline shows already.
fn step_details(details: &Value) -> String {
    let Some(fields) = details.as_object() else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(name, value)| !matches!(name.as_str(), "at" | "saga_id" | "order_id") && !value.is_null())
        .map(|(name, value)| format!("{name}: {}", text_of(value)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One order: the sequence diagram of every message about it, its sagas, and
/// the records.
async fn order(State(console): State<Arc<Console>>, Path(order_id): Path<String>) -> Response {
    let order_id = match OrderId::parse(&order_id) {
        Ok(id) => id,
        Err(_) => return ApiError::bad_request(format!("`{order_id}` is not an order id")).into_response(),
    };
    let records = match campusg_trace::story::story(console.trace.as_ref(), &order_id.to_string()).await {
        Ok(records) => records,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let filter = views::SagaFilter {
        order_id: Some(order_id.to_string()),
        ..views::SagaFilter::default()
    };
    let sagas = match views::list(console.sagas.as_ref(), &filter, console.clock.now()).await {
        Ok(found) => found.iter().map(saga_row).collect(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    html(
        StatusCode::OK,
        &pages::Order {
            order_id: order_id.to_string(),
            diagram: campusg_trace::render::svg(&records),
            sagas,
            records: records.iter().map(record_row).collect(),
        },
    )
}

#[derive(Deserialize, Default)]
struct Notice {
    done: Option<String>,
}

/// Parked keys and dead letters, with what an operator may do to each.
async fn dead_letters(State(console): State<Arc<Console>>, Query(notice): Query<Notice>) -> Response {
    let parked = match crate::dead_letters::parked_keys(&console.parked.stores, 0, LISTED_AT_MOST).await {
        Ok(parked) => parked,
        Err(error) => return ApiError::internal(error).into_response(),
    };
    let letters = match crate::dead_letters::all(console.bus.as_ref(), &console.contracts).await {
        Ok(letters) => letters,
        Err(error) => return ApiError::internal(error).into_response(),
    };
    let parked = parked
        .iter()
        .map(|key| pages::ParkedKeyRow {
            retry_action: key_action(&key["key"], &key["group"], "retry"),
            drop_action: key_action(&key["key"], &key["group"], "drop"),
            key: text_of(&key["key"]),
            group: text_of(&key["group"]),
            status: text_of(&key["status"]),
            parked_at: when_text(&key["parked_at"]),
            held: key["held"].as_array().map_or(0, Vec::len),
            first_failure: text_of(&key["first_failure"]),
        })
        .collect();
    let letters = letters
        .iter()
        .rev()
        .take(LISTED_AT_MOST)
        .map(|letter| {
            let field = |name: &str| text_of(&letter.envelope.payload[name]);
            let id = letter.envelope.id.to_string();
            pages::LetterRow {
                retry_action: format!("/console/dead-letters/{}/retry", path_segment(&id)),
                drop_action: format!("/console/dead-letters/{}/drop", path_segment(&id)),
                offset: letter.offset,
                failed_at: when(&letter.envelope.timestamp),
                status: letter.status().to_string(),
                pending: letter.status() == "PENDING",
                original_type: letter.original_type(),
                original: format!(
                    "{} [{}] @ {} ({})",
                    field("original_topic"),
                    field("original_partition"),
                    field("original_offset"),
                    field("consumer_group")
                ),
                key: field("original_key"),
                reason: field("reason"),
            }
        })
        .collect();
    let notice = notice
        .done
        .filter(|text| campusg_domain::limits::within(text, MAX_TEXT_CHARS));
    html(
        StatusCode::OK,
        &pages::DeadLetters {
            notice,
            parked,
            letters,
        },
    )
}

/// `text` as one segment of a path: a key may hold `/`, `?`, `#` or `..`.
fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Where a parked key's form posts `verb` (retry, drop), for its group only.
fn key_action(key: &Value, group: &Value, verb: &str) -> String {
    let group = serde_urlencoded::to_string([("group", text_of(group))]).unwrap_or_default();
    format!("/console/parked-keys/{}/{verb}?{group}", path_segment(&text_of(key)))
}

#[derive(Deserialize)]
struct GroupScope {
    group: Option<String>,
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

/// Back to the dead-letter page, saying what was done.
fn done(what: String) -> Response {
    let query = serde_urlencoded::to_string([("done", what)]).unwrap_or_default();
    Redirect::to(&format!("/console/dead-letters?{query}")).into_response()
}

/// A reason a person must give: not blank, within the text limit.
fn reason_given(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::unprocessable("say why"));
    }
    campusg_runtime::http::text_within("reason", reason, MAX_TEXT_CHARS)?;
    Ok(reason.to_string())
}

async fn act(console: &Console, caller: &Caller, key: &str, group: Option<&str>, action: KeyAction) -> Response {
    let verb = match &action {
        KeyAction::Retry => "retried",
        KeyAction::Drop(_) => "dropped",
    };
    match console.parked.act(caller, key, group, &action).await {
        Ok(groups) => {
            let by = &caller.user;
            tracing::info!(operator = %by, key, groups = ?groups, verb, "parked key acted on from the console");
            done(format!("Key {key} {verb} in {} by {by}.", groups.join(", ")))
        }
        Err(refused) => refused.into_response(),
    }
}

async fn retry_key(
    State(console): State<Arc<Console>>,
    caller: Caller,
    Path(key): Path<String>,
    Query(scope): Query<GroupScope>,
) -> Response {
    act(&console, &caller, &key, scope.group.as_deref(), KeyAction::Retry).await
}

async fn drop_key(
    State(console): State<Arc<Console>>,
    caller: Caller,
    Path(key): Path<String>,
    Query(scope): Query<GroupScope>,
    Form(form): Form<ReasonForm>,
) -> Response {
    match reason_given(&form.reason) {
        Ok(reason) => act(&console, &caller, &key, scope.group.as_deref(), KeyAction::Drop(reason)).await,
        Err(refused) => refused.into_response(),
    }
}

/// The dead letter `id` names (its offset or its id), or the answer that says
/// why there is none.
async fn letter_named(console: &Console, id: &str) -> Result<crate::dead_letters::DeadLetter, Response> {
    let letters = crate::dead_letters::all(console.bus.as_ref(), &console.contracts)
        .await
        .map_err(|error| ApiError::internal(error).into_response())?;
    crate::dead_letters::named(letters, id)
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {id}")).into_response())
}

async fn retry_letter(State(console): State<Arc<Console>>, caller: Caller, Path(id): Path<String>) -> Response {
    let letter = match letter_named(&console, &id).await {
        Ok(letter) => letter,
        Err(answer) => return answer,
    };
    let by = caller.user.to_string();
    let retried = crate::dead_letters::retry_letter(
        console.bus.as_ref(),
        &console.contracts,
        &console.parked.stores,
        &letter,
        &by,
        false,
        console.clock.now(),
    )
    .await;
    match retried {
        Ok(LetterRetry::KeyRetried { key, group }) => done(format!(
            "Dead letter {}: its key {key} is parked in {group}; its held records are handled again, in order, by {by}.",
            letter.offset
        )),
        Ok(LetterRetry::PublishedAgain(new_id)) => done(format!(
            "Dead letter {} published again as {new_id} by {by}.",
            letter.offset
        )),
        Err(error) => ApiError::conflict(error.to_string()).into_response(),
    }
}

async fn drop_letter(
    State(console): State<Arc<Console>>,
    caller: Caller,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let reason = match reason_given(&form.reason) {
        Ok(reason) => reason,
        Err(refused) => return refused.into_response(),
    };
    let letter = match letter_named(&console, &id).await {
        Ok(letter) => letter,
        Err(answer) => return answer,
    };
    let by = caller.user.to_string();
    let dropped = crate::dead_letters::drop_letter(
        console.bus.as_ref(),
        &console.contracts,
        &console.parked.stores,
        &letter,
        &reason,
        &by,
        console.clock.now(),
    )
    .await;
    match dropped {
        Ok(groups) if groups.is_empty() => done(format!("Dead letter {} dropped by {by}: {reason}", letter.offset)),
        Ok(groups) => done(format!(
            "Dead letter {} dropped by {by}, with its key's held records in {}: {reason}",
            letter.offset,
            groups.join(", ")
        )),
        Err(error) => ApiError::conflict(error.to_string()).into_response(),
    }
}

/// Rates, step latency, consumer groups with their lag per partition, outbox
/// depth and the timers due next.
async fn system(State(console): State<Arc<Console>>) -> Response {
    let metrics = &console.observed.metrics;
    let ended: EndedSagas = metrics
        .series("campusg_sagas_ended_total")
        .into_iter()
        .map(|series| {
            let label = |name: &str| series.labels.get(name).cloned().unwrap_or_default();
            ((label("saga_type"), label("outcome")), series.count)
        })
        .collect();
    let since = {
        let mut last = console
            .last_ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let since = last.take();
        *last = Some((Instant::now(), ended.clone()));
        since
    };
    let elapsed = since.as_ref().map(|(at, _)| at.elapsed().as_secs_f64());
    let rates = ended
        .iter()
        .map(|((saga_type, outcome), total)| {
            let per_second = match (&since, elapsed) {
                (Some((_, before)), Some(seconds)) if seconds > 0.0 => {
                    let before = before.get(&(saga_type.clone(), outcome.clone())).copied().unwrap_or(0);
                    format!("{:.2}", total.saturating_sub(before) as f64 / seconds)
                }
                _ => "–".to_string(),
            };
            pages::RateRow {
                saga_type: saga_type.clone(),
                outcome: outcome.clone(),
                total: *total,
                per_second,
            }
        })
        .collect();
    let steps = metrics
        .series("campusg_saga_step_seconds")
        .into_iter()
        .map(|series| pages::StepLatencyRow {
            saga_type: series.labels.get("saga_type").cloned().unwrap_or_default(),
            step: series.labels.get("step").cloned().unwrap_or_default(),
            count: series.count,
            mean: took(chrono::Duration::microseconds(
                (series.sum / series.count.max(1) as f64 * 1e6) as i64,
            )),
        })
        .collect();
    let (_, report) = console.observed.health.report(console.clock.now());
    let partitions: BTreeMap<String, String> = console
        .observed
        .health
        .lag_by_partition()
        .into_iter()
        .map(|(group, lags)| {
            let shown = lags
                .iter()
                .filter(|lag| lag.records_behind > 0)
                .map(|lag| format!("{}[{}]: {}", lag.topic, lag.partition, lag.records_behind))
                .collect::<Vec<_>>()
                .join(", ");
            (group, shown)
        })
        .collect();
    let groups = report
        .iter()
        .map(|(group, status)| pages::GroupRow {
            group: group.clone(),
            state: status.state.to_string(),
            behind: status.records_behind.map(|b| b.to_string()).unwrap_or_default(),
            partitions: partitions.get(group).cloned().unwrap_or_default(),
            last_poll: status.last_poll_at.map(|at| when(&at)).unwrap_or_default(),
            error: status.last_error.clone().unwrap_or_default(),
        })
        .collect();
    let outboxes = campusg_runtime::metrics::read_stores(&console.observed.stores)
        .await
        .into_iter()
        .map(|(name, read)| {
            let depth = match read {
                Ok(reading) => reading.outbox_depth.to_string(),
                Err(why) => format!("cannot tell: {why}"),
            };
            (name.to_string(), depth)
        })
        .collect();
    let due_next = StateQuery {
        equals: vec![("status".into(), TimerStatus::Scheduled.as_str().into())],
        order_by: Some("due_key".into()),
        limit: Some(20),
        ..StateQuery::default()
    };
    let timers = match console.timers.query_states(Timer::TYPE, &due_next).await {
        Ok(found) => found
            .iter()
            .map(|timer| pages::TimerRow {
                id: text_of(&timer["timer_id"]),
                timer_type: text_of(&timer["timer_type"]),
                order_id: text_of(&timer["order_id"]),
                due_at: when_text(&timer["due_at"]),
            })
            .collect(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    html(
        StatusCode::OK,
        &pages::System {
            rate_window: match elapsed {
                Some(seconds) => format!("(over the last {seconds:.0} s)"),
                None => "(from the next look on)".to_string(),
            },
            rates,
            steps,
            groups,
            outboxes,
            timers,
        },
    )
}

/// `changed` whenever the system has published something since the last
/// look: the pages fetch their live regions again.
async fn live(State(console): State<Arc<Console>>) -> impl IntoResponse {
    let metrics = console.observed.metrics.clone();
    let published = move || -> u64 {
        metrics
            .series("campusg_messages_published_total")
            .iter()
            .map(|series| series.count)
            .sum()
    };
    // A first comment at once: the browser has its answer started, and a
    // page left behind closes its stream rather than hold a connection.
    let hello = futures_util::stream::once(async { Ok(Event::default().comment("live")) });
    let changes = futures_util::stream::unfold(published(), move |seen| {
        let published = published.clone();
        async move {
            let mut now = published();
            while now == seen {
                tokio::time::sleep(LIVE_POLL).await;
                now = published();
            }
            let event = Event::default().event("changed").data(now.to_string());
            Some((Ok::<_, std::convert::Infallible>(event), now))
        }
    });
    let stream = futures_util::StreamExt::chain(hello, changes);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A page is not kept by caches, not framed by other sites, and runs only
/// the console's own script.
fn page_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("a valid header"));
    headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("a valid header"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".parse().expect("a valid header"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
            .parse()
            .expect("a valid header"),
    );
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_parked_keys_form_posts_to_that_key_whatever_it_holds() {
        let key = json!("x/../../dead-letters/1?group=other#top");
        let action = key_action(&key, &json!("payment-service"), "retry");
        assert_eq!(
            action,
            "/console/parked-keys/x%2F%2E%2E%2F%2E%2E%2Fdead%2Dletters%2F1%3Fgroup%3Dother%23top/retry?group=payment-service"
        );
    }

    #[rstest]
    #[case::the_console("/console", true)]
    #[case::a_page("/console/sagas", true)]
    #[case::a_look_alike("/consoles", false)]
    #[case::another_look_alike("/console-evil/x", false)]
    #[case::the_api("/api/sagas", false)]
    fn only_the_consoles_own_paths_read_the_session_cookie(#[case] path: &str, #[case] console: bool) {
        let request = Request::builder()
            .uri(path)
            .header(header::COOKIE, format!("other=1; {COOKIE}=the.token"))
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(session_token(&request).is_some(), console);
        if console {
            assert_eq!(session_token(&request).as_deref(), Some("the.token"));
        }
    }

    #[rstest]
    #[case::same_origin(Some("same-origin"), None, true)]
    #[case::typed_by_hand(Some("none"), None, true)]
    #[case::another_site(Some("cross-site"), None, false)]
    #[case::a_sibling_subdomain(Some("same-site"), None, false)]
    #[case::an_old_browser_here(None, Some("http://console.example:8080"), true)]
    #[case::an_old_browser_elsewhere(None, Some("https://evil.example"), false)]
    #[case::no_browser(None, None, true)]
    fn a_form_counts_as_the_consoles_own_only_from_its_own_pages(
        #[case] site: Option<&str>,
        #[case] origin: Option<&str>,
        #[case] own: bool,
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("console.example:8080"));
        if let Some(site) = site {
            headers.insert("sec-fetch-site", HeaderValue::from_str(site).unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        assert_eq!(from_own_pages(&headers), own);
    }
}
