//! Builds the system from [`Settings`] and runs it until shutdown.
//!
//! Embedded mode: one SQLite log (`log.db`) and one SQLite event store per
//! service (`order.db`, `user.db`, ...) under the data directory. Distributed
//! mode: Kafka, and a PostgreSQL schema per service. Each service
//! runs its consumer and its outbox relay (the timer service also its worker);
//! the HTTP API serves every service's routes, and the gateway's routes that
//! span two services. [`Application::build`] binds the listener (port 0 works), so tests
//! start the real system on a random port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use campusg_escrow::EscrowService;
use campusg_ledger::LedgerService;
use campusg_notification::NotificationService;
use campusg_order::OrderService;
use campusg_payment::sandbox::SandboxGateway;
use campusg_payment::PaymentService;
use campusg_runtime::batch::BatchingStore;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::clock::Clock;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::health::HealthBoard;
use campusg_runtime::http::ApiError;
use campusg_runtime::outbox::run_outbox_relay;
use campusg_runtime::remembered::RememberingStore;
use campusg_runtime::service::{ServiceDeps, StoreReads};
use campusg_runtime::store::{Contracts, EventStore};
use campusg_sagas::SagaOrchestrator;
use campusg_timer::worker::run_timer_worker;
use campusg_timer::TimerService;
use campusg_trace::TraceIndex;
use campusg_user::UserService;

use campusg_runtime::access::{Access, RouteRule, Routes};
use campusg_runtime::idempotency::IdempotentRequests;
use campusg_runtime::metrics::Metrics;

use crate::backends::{connect_bus, StoreOpener};
use crate::identity::{authenticate, Identity};
use crate::rate_limits::{limit_addresses, limit_subjects, RateLimits};
use crate::settings::{Guard, Role, Settings};

/// How long shutdown waits for consumers and relays to reach a safe point.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

pub struct Application {
    listener: Option<TcpListener>,
    address: SocketAddr,
    router: Router,
    bus: Arc<dyn MessageBus>,
    contracts: Arc<Contracts>,
    consumers: Vec<Consumer>,
    relays: Vec<(&'static str, Arc<dyn EventStore>)>,
    /// The timer worker, when this process runs the timer service.
    timer_worker: Option<Arc<TimerService>>,
    dedupe_window: chrono::Duration,
    clock: Arc<dyn Clock>,
    sandbox: Arc<SandboxGateway>,
    health: HealthBoard,
    metrics: Metrics,
}

impl Application {
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let contracts = Arc::new(Contracts::builtin());
        let bus = connect_bus(&settings.backends, &contracts.topics).await?;
        let api = settings.runs(Role::Api);
        // A process opens only the stores it uses: the API writes to every
        // store, a service process to its own. They share one pool.
        let stores = StoreOpener::new(
            &settings.backends,
            settings.database_connections(),
            &settings.process_name(),
        );
        let mut deps_of = HashMap::new();
        // The card processor keeps its records in the payment store through
        // the store itself, not the consumer's batching handle: they commit
        // when made, apart from any batch. On SQLite one connection, so one
        // page cache.
        let mut card_records = None;
        for (role, service) in &crate::services::SERVICES {
            let role = *role;
            if api || settings.runs(role) {
                let mut store = stores.open_read(service.name, service.store_reads).await?;
                if role == Role::Payment {
                    card_records = Some(store.clone());
                }
                // Only where its consumer runs: that is what writes the store.
                if service.remembers_its_read_models && settings.runs(role) {
                    store = RememberingStore::wrap(store);
                }
                let store = BatchingStore::wrap(store);
                let deps = ServiceDeps {
                    store,
                    contracts: contracts.clone(),
                    clock: clock.clone(),
                };
                deps_of.insert(role, deps);
            }
        }
        let deps = |role: Role| deps_of.get(&role).cloned();

        let sandbox = Arc::new(match card_records {
            Some(store) => SandboxGateway::keeping_records_in(store),
            None => SandboxGateway::new(),
        });
        let orders = deps(Role::Order).map(|d| OrderService::new(d, settings.order_rules()));
        let users = deps(Role::User).map(UserService::new);
        let payments = deps(Role::Payment).map(|d| PaymentService::new(d, sandbox.clone()));
        let escrows = deps(Role::Escrow).map(|d| EscrowService::new(d, settings.escrow_hold_limit));
        let sagas = deps(Role::Sagas).map(|d| SagaOrchestrator::new(d, settings.order_rules()));
        let notifications = deps(Role::Notification).map(NotificationService::new);
        let trace_index = deps(Role::Trace).map(TraceIndex::new);
        let ledger = deps(Role::Ledger).map(LedgerService::new);
        let timers = deps(Role::Timer)
            .map(|d| TimerService::new(d, settings.acceptance_window(), settings.timer_poll_interval()));

        let mut consumers = Vec::new();
        let mut relays = Vec::new();
        for (role, consumer) in [
            (Role::Order, orders.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::User, users.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::Payment, payments.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::Escrow, escrows.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::Sagas, sagas.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::Timer, timers.as_ref().map(|s| s.consumer(bus.clone()))),
            (
                Role::Notification,
                notifications.as_ref().map(|s| s.consumer(bus.clone())),
            ),
            (Role::Trace, trace_index.as_ref().map(|s| s.consumer(bus.clone()))),
            (Role::Ledger, ledger.as_ref().map(|s| s.consumer(bus.clone()))),
        ] {
            let (Some(consumer), Some(deps)) = (consumer, deps(role)) else {
                continue;
            };
            if settings.runs(role) {
                let mut consumer = consumer;
                consumer.config.transient_retry_limit = Duration::from_secs(settings.transient_retry_secs);
                consumers.push(consumer);
            }
            // The API writes to every store, so it relays every outbox too.
            relays.push((crate::services::name_of(role), deps.store));
        }

        // The API's own records (the requests it answered under an
        // Idempotency-Key), in a store of their own.
        let api_store = if api {
            // Read once a request, for its key.
            let store = stores.open_read(API_STORE, StoreReads::Seldom).await?;
            relays.push((API_STORE, store.clone()));
            Some(store)
        } else {
            None
        };
        let health = HealthBoard::new();
        let metrics = Metrics::new();
        // What `/metrics` reads, on the API's port or a service's admin port.
        let observed = crate::observability::Observed {
            metrics: metrics.clone(),
            health: health.clone(),
            stores: relays.clone(),
        };
        let router = if let Some(api_store) = api_store {
            const EVERY: &str = "the API process opens every service's store";
            let identity =
                Arc::new(Identity::from_settings(&settings.guard, &settings.backends.data_dir, clock.clone()).await?);
            let parked_keys = Arc::new(crate::dead_letters::ParkedKeysApi {
                stores: crate::services::SERVICES
                    .iter()
                    .filter_map(|(role, service)| deps(*role).map(|d| (service.name, d.store)))
                    .collect(),
                clock: clock.clone(),
            });
            let store_of = |role| deps(role).map(|d| d.store).expect(EVERY);
            let console = crate::console::Console::new(
                store_of(Role::Sagas),
                store_of(Role::Trace),
                store_of(Role::Timer),
                parked_keys.clone(),
                observed.clone(),
                identity.clone(),
                bus.clone(),
                contracts.clone(),
                clock.clone(),
                sign_in_at_issuer(&settings.guard, &identity)?,
            );
            let idempotent = Arc::new(IdempotentRequests {
                store: api_store,
                clock: clock.clone(),
            });
            api_router(
                ApiServices {
                    health: health.clone(),
                    clock: clock.clone(),
                    orders: orders.expect(EVERY),
                    users: users.expect(EVERY),
                    payments: payments.expect(EVERY),
                    escrows: escrows.expect(EVERY),
                    sagas: sagas.expect(EVERY),
                    timers: timers.clone().expect(EVERY),
                    notifications: notifications.expect(EVERY),
                    trace_index: trace_index.expect(EVERY),
                    ledger: ledger.expect(EVERY),
                    idempotent,
                    observed,
                    parked_keys,
                    console,
                },
                identity,
                &settings.guard,
            )?
        } else if settings.admin_port.is_some() {
            let identity =
                Arc::new(Identity::from_settings(&settings.guard, &settings.backends.data_dir, clock.clone()).await?);
            admin_router(observed, clock.clone(), identity)
        } else {
            Router::new()
        };

        // The API's port, or a service process's admin port when it has one.
        let port = if api { Some(settings.port) } else { settings.admin_port };
        let (listener, address) = match port {
            Some(port) => {
                let listener = TcpListener::bind((settings.host, port))
                    .await
                    .with_context(|| format!("cannot listen on {}:{port}", settings.host))?;
                let address = listener.local_addr()?;
                (Some(listener), address)
            }
            None => (None, SocketAddr::from((settings.host, 0))),
        };
        Ok(Application {
            listener,
            address,
            router,
            bus,
            contracts,
            consumers,
            relays,
            timer_worker: timers.filter(|_| settings.runs(Role::Timer)),
            dedupe_window: settings.dedupe_window(),
            clock: clock.clone(),
            sandbox,
            health,
            metrics,
        })
    }

    /// The address the HTTP API listens on (or, in a process without the API,
    /// its admin port: `--admin-port`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn bus(&self) -> Arc<dyn MessageBus> {
        self.bus.clone()
    }

    pub fn contracts(&self) -> Arc<Contracts> {
        self.contracts.clone()
    }

    /// The built-in card processor, to see what it charged.
    pub fn sandbox(&self) -> Arc<SandboxGateway> {
        self.sandbox.clone()
    }

    /// Runs every part until `shutdown` is cancelled, then waits for each to stop
    /// at a safe point. A consumer that cannot go on (a fatal error) stops the
    /// whole process, which then returns that error, so that `campusg` exits
    /// non-zero and its supervisor restarts it.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        let (fatal_sender, mut fatal_receiver) = tokio::sync::mpsc::unbounded_channel();
        for consumer in self.consumers {
            let (shutdown, health, fatal_sender) = (shutdown.clone(), self.health.clone(), fatal_sender.clone());
            let metrics = self.metrics.clone();
            tracker.spawn(async move {
                if let Err(fatal) = consumer.run(shutdown.clone(), health, metrics).await {
                    let _ = fatal_sender.send(fatal);
                    shutdown.cancel();
                }
            });
        }
        drop(fatal_sender);
        let dead_letters = self.contracts.topics.dead_letter_topic();
        let dead_letter_topic = dead_letters.name.clone();
        let keep = campusg_runtime::janitor::Keep {
            dedupe_window: self.dedupe_window,
            released_keys: chrono::Duration::milliseconds(dead_letters.retention_ms),
        };
        tracker.spawn(campusg_runtime::janitor::run_janitor(
            self.relays.clone(),
            self.bus.clone(),
            keep,
            self.clock.clone(),
            shutdown.clone(),
        ));
        for (name, store) in self.relays {
            tracker.spawn(run_outbox_relay(
                name,
                store,
                self.bus.clone(),
                dead_letter_topic.clone(),
                self.metrics.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(timers) = self.timer_worker {
            tracker.spawn(run_timer_worker(timers, shutdown.clone()));
        }
        if let Some(listener) = self.listener {
            tracing::info!(address = %self.address, "HTTP listening");
            let stop = shutdown.clone();
            // The client's address, for the per-address rate limit.
            let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
            let server = axum::serve(listener, service).with_graceful_shutdown(async move { stop.cancelled().await });
            tracker.spawn(async move {
                if let Err(error) = server.await {
                    tracing::error!(error = %error, "the HTTP server stopped");
                }
            });
        }
        tracker.close();
        shutdown.cancelled().await;
        tracing::info!("shutting down");
        if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait()).await.is_err() {
            anyhow::bail!("some tasks did not stop within {SHUTDOWN_DEADLINE:?}");
        }
        match fatal_receiver.try_recv() {
            Ok(fatal) => Err(fatal.into()),
            Err(_) => Ok(()),
        }
    }
}

/// The console as a client of the OIDC issuer, when it has a client id there.
/// A client id for an issuer that names no endpoints to sign in at stops the
/// start, rather than leave the console without its sign-in.
fn sign_in_at_issuer(guard: &Guard, identity: &Identity) -> anyhow::Result<Option<crate::console::SignInAtIssuer>> {
    let Some(client_id) = guard.oidc_client_id.clone() else {
        return Ok(None);
    };
    let endpoints = identity.sign_in_endpoints().with_context(|| {
        "--oidc-client-id is set, but the OIDC issuer's discovery document names no https authorization and token endpoints"
    })?;
    crate::console::SignInAtIssuer::new(
        endpoints.clone(),
        client_id,
        guard.oidc_client_secret.clone(),
        guard.console_url.clone(),
        &guard.jwt_audience,
    )
    .map(Some)
}

/// Every service, for the HTTP API to serve.
struct ApiServices {
    health: HealthBoard,
    clock: Arc<dyn Clock>,
    orders: Arc<OrderService>,
    users: Arc<UserService>,
    payments: Arc<PaymentService>,
    escrows: Arc<EscrowService>,
    sagas: Arc<SagaOrchestrator>,
    timers: Arc<TimerService>,
    notifications: Arc<NotificationService>,
    trace_index: Arc<TraceIndex>,
    ledger: Arc<LedgerService>,
    idempotent: Arc<IdempotentRequests>,
    observed: crate::observability::Observed,
    parked_keys: Arc<crate::dead_letters::ParkedKeysApi>,
    console: Arc<crate::console::Console>,
}

/// The store of the API's own records (`api.db`, or the schema `<prefix>_api`).
pub const API_STORE: &str = "api";

/// What the public routes read.
#[derive(Clone)]
struct Public {
    health: HealthBoard,
    clock: Arc<dyn Clock>,
}

/// The routes anyone may call, token or not.
fn public_routes() -> Routes<Public> {
    Routes::new()
        .get("/health", "health", Access::Public, report_health)
        .get("/openapi.json", "openApiDocument", Access::Public, || async {
            Json(crate::openapi::document())
        })
}

/// One group of the API's routes: who may call each (for the OpenAPI
/// document), and how it is served from the services.
struct RouteGroup {
    table: Vec<RouteRule>,
    serve: Box<dyn FnOnce(&ApiServices) -> Router>,
}

fn group<S: Clone + Send + Sync + 'static>(
    routes: Routes<S>,
    state: impl FnOnce(&ApiServices) -> S + 'static,
) -> RouteGroup {
    RouteGroup {
        table: routes.table().to_vec(),
        serve: Box::new(move |services| routes.with_state(state(services))),
    }
}

/// What a process that does not serve the API answers on its admin port:
/// whether it is healthy, for anyone, and its metrics, for operators.
fn admin_router(observed: crate::observability::Observed, clock: Arc<dyn Clock>, identity: Arc<Identity>) -> Router {
    let metrics = observed.metrics.clone();
    let public = Public {
        health: observed.health.clone(),
        clock,
    };
    public_routes()
        .with_state::<()>(public)
        .merge(crate::observability::routes().with_state::<()>(observed))
        .fallback(|| async { ApiError::not_found("this process serves /health and /metrics only") })
        .layer(axum::middleware::from_fn_with_state(identity, authenticate))
        .layer(axum::middleware::from_fn(answer_within_deadline))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::observability::observe_requests,
        ))
}

/// Every group of routes the HTTP API serves, each named once: the route
/// table and the router are both made from this list.
fn route_groups() -> Vec<RouteGroup> {
    vec![
        group(public_routes(), |s| Public {
            health: s.health.clone(),
            clock: s.clock.clone(),
        }),
        group(campusg_order::routes(), |s| s.orders.clone()),
        group(campusg_user::routes(), |s| s.users.clone()),
        group(campusg_payment::routes(), |s| s.payments.clone()),
        group(campusg_escrow::routes(), |s| s.escrows.clone()),
        group(campusg_sagas::routes(), |s| s.sagas.clone()),
        group(campusg_timer::routes(), |s| s.timers.clone()),
        group(campusg_notification::routes(), |s| s.notifications.clone()),
        group(campusg_trace::routes(), |s| s.trace_index.clone()),
        group(campusg_ledger::routes(), |s| s.ledger.clone()),
        group(crate::gateway::routes(), |s| crate::gateway::Gateway {
            sagas: s.sagas.clone(),
            orders: s.orders.clone(),
            users: s.users.clone(),
            payments: s.payments.clone(),
            escrows: s.escrows.clone(),
        }),
        group(crate::dead_letters::routes(), |s| s.parked_keys.clone()),
        group(crate::observability::routes(), |s| s.observed.clone()),
    ]
}

/// Every route of the HTTP API and who may call it, for the OpenAPI document.
pub fn route_table() -> Vec<RouteRule> {
    route_groups().into_iter().flat_map(|group| group.table).collect()
}

/// The HTTP API: every service's routes, and the gateway's, behind the guard:
/// per-address limit, then the token, then the per-caller limit. The API's
/// store of idempotent requests rides along for the mutating routes.
fn api_router(services: ApiServices, identity: Arc<Identity>, guard: &Guard) -> anyhow::Result<Router> {
    let limits = Arc::new(RateLimits::new(
        guard.rate_limit_per_address,
        guard.rate_limit_per_subject,
        guard.trusted_proxies.clone(),
    ));
    let idempotent = services.idempotent.clone();
    let metrics = services.observed.metrics.clone();
    let mut router = route_groups()
        .into_iter()
        .fold(Router::new(), |router, group| router.merge((group.serve)(&services)))
        .merge(
            crate::console::routes()
                .with_state(services.console.clone())
                .layer(axum::middleware::from_fn(crate::console::browser_answers)),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint; see /openapi.json") })
        .layer(campusg_runtime::http::body_limit())
        .layer(axum::Extension(idempotent))
        .layer(axum::middleware::from_fn_with_state(limits.clone(), limit_subjects))
        .layer(axum::middleware::from_fn_with_state(identity, authenticate))
        .layer(axum::middleware::from_fn_with_state(limits, limit_addresses));
    if let Some(cors) = cors(&guard.cors_origins)? {
        router = router.layer(cors);
    }
    Ok(router
        .layer(axum::middleware::from_fn(answer_within_deadline))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::observability::observe_requests,
        )))
}

/// Browsers may call the API from the configured origins only; with none, no
/// CORS headers are sent and browsers keep other sites' pages out.
fn cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use axum::http::{header, HeaderValue, Method};
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin.trim()).with_context(|| format!("`{origin}` is not an origin")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    ))
}

/// `GET /health`: 200 while every consumer of this process runs, 503 when one
/// has stopped or has been stuck on a record for too long; each consumer's
/// state, records behind and last error either way.
async fn report_health(State(public): State<Public>) -> (StatusCode, Json<serde_json::Value>) {
    let (healthy, consumers) = public.health.report(public.clock.now());
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if healthy { "ok" } else { "unhealthy" }, "consumers": consumers});
    (status, Json(body))
}

/// How long a request may take before it is answered 503. A unit of work is
/// committed whole or not at all, so a request cut off here leaves nothing
/// half done; a server-sent-events stream counts only until its first byte.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Answers 503 (`retry`) when a request has not been answered within
/// [`REQUEST_DEADLINE`], so that no caller waits on a stuck store forever.
async fn answer_within_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "retry",
            message: format!("the request was not answered within {REQUEST_DEADLINE:?}; try again"),
        }
        .into_response(),
    }
}

/// Logs each request with its method, path and status. Headers are not logged:
/// they carry credentials.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}
