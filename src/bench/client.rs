//! The bench's HTTP client: the requests a customer's and a runner's apps make.
//! Any answer but the expected status is an error that names the request, so
//! a bench never counts a refused order as a placed one. Each request carries
//! the token of the user making it (minted with the system's local key), as
//! the apps' would.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};

use campusg_domain::ids::UserId;
use campusg_runtime::access::Role;

use crate::identity::{LocalKey, DEFAULT_AUDIENCE};

/// The operator the bench observes the system as.
const OBSERVER: &str = "bench_observer";

/// The delivery stages a runner reports, in order; the last one starts the
/// complete-order saga.
const STAGES: [&str; 5] = ["ON_SITE", "PURCHASED", "COLLECTED", "ON_THE_WAY", "DELIVERED"];

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: Arc<LocalKey>,
}

/// A customer and a runner that one bench client plays.
#[derive(Clone)]
pub struct Party {
    pub customer: String,
    pub runner: String,
}

pub struct Placed {
    pub saga_id: String,
    pub order_id: String,
}

impl Client {
    pub fn new(base_url: String, key: Arc<LocalKey>) -> Client {
        Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .expect("a default HTTP client builds"),
            base_url,
            key,
        }
    }

    fn token(&self, user: &str, role: Role) -> anyhow::Result<String> {
        let user = UserId::parse(user)?;
        self.key.mint(
            &user,
            role,
            chrono::Duration::hours(1),
            DEFAULT_AUDIENCE,
            chrono::Utc::now(),
        )
    }

    /// Signs up a customer (with a card) and a runner for each of `clients`.
    pub async fn sign_up(&self, clients: usize) -> anyhow::Result<Vec<Party>> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut parties = Vec::with_capacity(clients);
        for i in 0..clients {
            let party = Party {
                customer: format!("bench_customer_{}_{i}", &run[..8]),
                runner: format!("bench_runner_{}_{i}", &run[..8]),
            };
            for (user, role, card) in [
                (&party.customer, Role::Customer, Some("pm_card_visa")),
                (&party.runner, Role::Runner, None),
            ] {
                let mut body = json!({"user_id": user, "name": user, "email": format!("{user}@campus.edu")});
                if let Some(card) = card {
                    body["payment_method"] = json!(card);
                }
                self.post((user, role), "/users", &body, 201).await?;
            }
            parties.push(party);
        }
        Ok(parties)
    }

    /// Places the seeds' order: one burger and a delivery fee.
    pub async fn place_order(&self, customer: &str) -> anyhow::Result<Placed> {
        let body = json!({
            "customer_id": customer,
            "order_details": {
                "foodItems": [{"name": "Burger", "price": 12.99, "quantity": 1}],
                "storeLocation": "Koufu",
                "deliveryLocation": "North Campus",
                "deliveryFee": 2.5
            }
        });
        let answer = self.post((customer, Role::Customer), "/api/orders", &body, 202).await?;
        Ok(Placed {
            saga_id: text_field(&answer, "saga_id")?,
            order_id: text_field(&answer, "order_id")?,
        })
    }

    pub async fn accept(&self, order_id: &str, runner: &str) -> anyhow::Result<()> {
        let path = format!("/api/orders/{order_id}/accept");
        self.post((runner, Role::Runner), &path, &json!({"runner_id": runner}), 200)
            .await?;
        Ok(())
    }

    /// Reports every delivery stage; returns the complete-order saga's id.
    pub async fn deliver(&self, order_id: &str, runner: &str) -> anyhow::Result<String> {
        let path = format!("/api/orders/{order_id}/status");
        let mut answer = Value::Null;
        for stage in STAGES {
            answer = self
                .post(
                    (runner, Role::Runner),
                    &path,
                    &json!({"runner_id": runner, "status": stage}),
                    200,
                )
                .await?;
        }
        text_field(&answer, "saga_id")
    }

    /// Whether the observers have caught up with `order_id`: the trace index
    /// holds its saga's completion and the customer has been told it is listed.
    pub async fn observed(&self, order_id: &str) -> anyhow::Result<bool> {
        let trace = self.get(&format!("/api/orders/{order_id}/trace")).await?;
        let traced = trace["records"]
            .as_array()
            .is_some_and(|records| records.iter().any(|r| r["type"] == "saga.completed"));
        let told = self.get(&format!("/api/notifications/order/{order_id}")).await?;
        let listed = told["notifications"]
            .as_array()
            .is_some_and(|notes| notes.iter().any(|n| n["kind"] == "order_listed"));
        Ok(traced && listed)
    }

    /// A GET as the bench's operator.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(self.token(OBSERVER, Role::Operator)?)
            .send()
            .await
            .with_context(|| format!("GET {path} failed"))?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, (user, role): (&str, Role), path: &str, body: &Value, expected: u16) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.token(user, role)?)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path} failed"))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            status == expected,
            "POST {path} answered {status}, not {expected}: {answer}"
        );
        Ok(answer)
    }
}

fn text_field(answer: &Value, field: &str) -> anyhow::Result<String> {
    answer[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the answer has no `{field}`: {answer}"))
}
