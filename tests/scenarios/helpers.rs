//! `TestApp`: the real system on a random port, and one typed helper per thing a
//! test does to it.
//!
//! Every request carries a token minted with the system's local key: `get` and
//! `post` an operator's, the helpers that act for a user (`create_user`,
//! `place_order`) that user's, and `get_as`/`post_as` whatever a test gives.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use campusg::identity::LocalKey;
use campusg::operate;
use campusg::settings::{Role, Settings};
use campusg::startup::Application;
use campusg_domain::ids::UserId;
use campusg_payment::sandbox::SandboxGateway;
use campusg_runtime::access::Role as CallerRole;
use campusg_runtime::bus::{MessageBus, Record, StartFrom, Subscription};
use campusg_runtime::clock::Clock;
use campusg_runtime::store::Contracts;

use crate::backends::{Backend, Environment};

/// Every role but the payment service, for a test that holds payments back.
pub const WITHOUT_PAYMENTS: [Role; 6] = [
    Role::Api,
    Role::Order,
    Role::User,
    Role::Escrow,
    Role::Sagas,
    Role::Timer,
];

/// How long a test waits for the system to reach a state before failing.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub bus: Arc<dyn MessageBus>,
    pub contracts: Arc<Contracts>,
    pub sandbox: Arc<SandboxGateway>,
    /// The system's signing key, to mint tokens with.
    pub key: Arc<LocalKey>,
    shutdown: CancellationToken,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the environment outlives the running system.
    pub environment: Arc<Environment>,
}

impl Drop for TestApp {
    /// A test that ends without `stop` still stops its system.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Every part of the system, on a fresh environment of `backend`.
    pub async fn spawn_on(backend: Backend) -> TestApp {
        TestApp::spawn_with(Arc::new(Environment::new(backend)), &[]).await
    }

    /// The system with only `roles` running (all when empty), in `environment`.
    pub async fn spawn_with(environment: Arc<Environment>, roles: &[Role]) -> TestApp {
        TestApp::spawn_configured(environment, roles, |_| {}).await
    }

    /// The system with `roles` and settings changed by `configure`.
    pub async fn spawn_configured(
        environment: Arc<Environment>,
        roles: &[Role],
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        crate::traces::install();
        let mut settings = Settings::embedded(environment.data_dir.path().to_path_buf());
        settings.backends = environment.backends();
        settings.roles = roles.to_vec();
        // Tests poll faster than any client would; the limits have their own test.
        settings.guard.rate_limit_per_subject = 100_000;
        settings.guard.rate_limit_per_address = 100_000;
        configure(&mut settings);
        let clock: Arc<dyn Clock> = environment.clock.clone();
        let app = Application::build(&settings, clock).await.expect("the system builds");
        let address = format!("http://{}", app.address());
        let (bus, contracts, sandbox) = (app.bus(), app.contracts(), app.sandbox());
        let key = Arc::new(LocalKey::load_or_create(environment.data_dir.path()).expect("the signing key loads"));
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            address,
            // The system answers within 30 s or says why: a request that hangs
            // past this is a failure to show, not a wait.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("a client"),
            bus,
            contracts,
            sandbox,
            key,
            shutdown,
            running: Some(running),
            environment,
        }
    }

    /// Stops the system the way SIGTERM does and waits until it has stopped.
    pub async fn stop(mut self) -> Arc<Environment> {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running
                .await
                .expect("the system task does not panic")
                .expect("the system stops cleanly");
        }
        self.environment.clone()
    }

    /// Moves the system's time forward, as if `by` had passed.
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.environment.clock.advance(by);
    }

    /// A token for `user` in `role`, good for an hour of the system's time.
    pub fn token(&self, user: &str, role: CallerRole) -> String {
        let user = UserId::parse(user).expect("a user id");
        self.key
            .mint(
                &user,
                role,
                chrono::Duration::hours(1),
                "campusg",
                self.environment.clock.now(),
            )
            .expect("a token is minted")
    }

    /// The token `get` and `post` send.
    pub fn operator_token(&self) -> String {
        self.token("test_operator", CallerRole::Operator)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, Some(&self.operator_token())).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(path, body, Some(&self.operator_token())).await
    }

    /// A GET with `token`, or with none.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A POST with `token`, or with none.
    pub async fn post_as(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.address)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a raw body, for malformed requests.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(self.operator_token())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_user(&self, user_id: &str, payment_method: Option<&str>) {
        let mut body = json!({"user_id": user_id, "name": user_id, "email": format!("{user_id}@campus.edu")});
        if let Some(method) = payment_method {
            body["payment_method"] = json!(method);
        }
        let token = self.token(user_id, CallerRole::Customer);
        let (status, response) = self.post_as("/users", &body, Some(&token)).await;
        assert_eq!(status, 201, "{response}");
    }

    /// Registers a runner, paid out to `payout_account` (or waiting for one).
    pub async fn create_runner(&self, runner_id: &str, payout_account: Option<&str>) {
        let mut body = json!({"user_id": runner_id, "name": runner_id, "email": format!("{runner_id}@campus.edu")});
        if let Some(account) = payout_account {
            body["payout_account"] = json!(account);
        }
        let token = self.token(runner_id, CallerRole::Runner);
        let (status, response) = self.post_as("/users", &body, Some(&token)).await;
        assert_eq!(status, 201, "{response}");
    }

    /// Places the seeds' order (one burger at 12.99) plus `delivery_fee`;
    /// returns (saga id, order id).
    pub async fn place_order(&self, customer_id: &str, price: f64, delivery_fee: f64) -> (String, String) {
        let body = json!({
            "customer_id": customer_id,
            "order_details": {
                "foodItems": [{"name": "Burger", "price": price, "quantity": 1}],
                "storeLocation": "Koufu",
                "deliveryLocation": "North Campus",
                "deliveryFee": delivery_fee
            }
        });
        let token = self.token(customer_id, CallerRole::Customer);
        let (status, response) = self.post_as("/api/orders", &body, Some(&token)).await;
        assert_eq!(status, 202, "{response}");
        assert_eq!(response["status"], "STARTED");
        (
            response["saga_id"].as_str().unwrap().to_string(),
            response["order_id"].as_str().unwrap().to_string(),
        )
    }

    /// Waits until the saga reaches a final status and returns it.
    pub async fn saga_when_finished(&self, saga_id: &str) -> Value {
        self.saga_when(saga_id, |saga| {
            matches!(
                saga["status"].as_str(),
                Some("COMPLETED" | "COMPENSATED" | "FAILED" | "CANCELLED")
            )
        })
        .await
    }

    pub async fn saga_when(&self, saga_id: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let ready = &ready;
        eventually(&format!("saga {saga_id} never got there"), || async move {
            let (status, saga) = self.get(&format!("/api/sagas/{saga_id}")).await;
            if status == 200 && ready(&saga) {
                Ok(saga)
            } else {
                Err(saga.to_string())
            }
        })
        .await
    }

    pub async fn order(&self, order_id: &str) -> Value {
        let (status, order) = self.get(&format!("/api/orders/{order_id}")).await;
        assert_eq!(status, 200, "{order}");
        order
    }

    pub async fn payments_of(&self, order_id: &str) -> Vec<Value> {
        let (_, body) = self.get(&format!("/payments?order_id={order_id}")).await;
        body["payments"].as_array().cloned().unwrap_or_default()
    }

    pub async fn escrows_of(&self, order_id: &str) -> Vec<Value> {
        let (_, body) = self.get(&format!("/escrow?order_id={order_id}")).await;
        body["escrows"].as_array().cloned().unwrap_or_default()
    }

    /// Publishes a hand-written message the way `campusg publish` does.
    pub async fn publish(&self, topic: &str, message: &Value) {
        self.try_publish(topic, message)
            .await
            .expect("the message is published");
    }

    /// Publishes a hand-written message the way `campusg publish` does, which
    /// may refuse it.
    pub async fn try_publish(&self, topic: &str, message: &Value) -> Result<(), operate::PublishError> {
        operate::publish(
            self.bus.as_ref(),
            &self.contracts,
            topic,
            &message.to_string(),
            None,
            Utc::now(),
        )
        .await
        .map(|_| ())
    }

    /// Produces a raw record value, unchecked, as a foreign client might.
    pub async fn produce_raw(&self, topic: &str, key: &str, value: &str) {
        let record = campusg_runtime::bus::OutgoingRecord {
            topic: topic.to_string(),
            key: Some(key.to_string()),
            value: value.to_string(),
            headers: vec![],
        };
        self.bus.produce(vec![record]).await.expect("produced");
    }

    /// Every record on `topics` so far.
    pub async fn records(&self, topics: &[&str]) -> Vec<Record> {
        let subscription = Subscription {
            group: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            start: StartFrom::Earliest,
        };
        let mut reader = self.bus.subscribe(subscription).await.unwrap();
        let mut records = Vec::new();
        // A Kafka reader needs a moment to fetch; the embedded log answers at once.
        let quiet = match self.environment.backend {
            Backend::Embedded => Duration::from_millis(50),
            Backend::Kafka => Duration::from_millis(1500),
        };
        loop {
            let batch = reader.poll(1000, quiet).await.unwrap();
            if batch.is_empty() {
                return records;
            }
            records.extend(batch);
        }
    }

    /// Waits until a record on `topic` satisfies `found`.
    pub async fn record_when(&self, topic: &str, found: impl Fn(&Record) -> bool) -> Record {
        let found = &found;
        eventually(&format!("no matching record on {topic}"), || async move {
            let records = self.records(&[topic]).await;
            let count = records.len();
            records
                .into_iter()
                .find(|r| found(r))
                .ok_or_else(|| format!("{count} records, none matching"))
        })
        .await
    }
}

/// Polls `probe` until it answers `Ok`, and fails with `what` and the last
/// thing `probe` saw if it has not within the patience.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last_seen) => assert!(tokio::time::Instant::now() < deadline, "{what}; last seen: {last_seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
