//! The distributed deployment for real: every service its own `campusg serve`
//! process on Kafka (tansu) and PostgreSQL, two replicas of the order and payment
//! services, and one replica of each killed with SIGKILL halfway through.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{postgres_sessions, Backend, Environment};
use crate::processes::{free_port, get_json, operator_client, wait_until_healthy, Process};

fn serve(environment: &Environment, role: &str, replica: u32, port: u16) -> Process {
    // CAMPUSG_TEST_LOG_DIR keeps the processes' logs after the test.
    let log_dir = std::env::var_os("CAMPUSG_TEST_LOG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| environment.data_dir.path().join("logs"));
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("{role}-{replica}.log")))
        .unwrap();
    let name = format!("{role}-{replica}");
    let mut args = vec!["serve".to_string(), role.to_string()];
    args.extend(environment.flags());
    args.extend([
        "--port".to_string(),
        port.to_string(),
        "--instance-id".to_string(),
        name.clone(),
    ]);
    Process::start(&name, &args, Stdio::from(log))
}

#[tokio::test]
async fn two_hundred_orders_survive_a_replica_of_each_scaled_service_being_killed() {
    let environment = Environment::new(Backend::Kafka);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = operator_client(environment.data_dir.path());

    // The API first: it creates the schemas and topics the others use.
    let mut processes = vec![serve(&environment, "api", 1, port)];
    wait_until_healthy(&client, &base).await;
    for (role, replica) in [
        ("order", 1),
        ("order", 2),
        ("user", 1),
        ("payment", 1),
        ("payment", 2),
        ("escrow", 1),
        ("sagas", 1),
        ("timer", 1),
        ("notification", 1),
        ("trace", 1),
    ] {
        processes.push(serve(&environment, role, replica, 0));
    }

    let created = client
        .post(format!("{base}/users"))
        .json(&json!({"user_id": "cust_scale", "name": "S", "email": "s@campus.edu", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    // The most sessions the deployment holds at once while it works.
    let most_sessions = std::sync::Arc::new(std::sync::Mutex::new((0usize, Vec::<String>::new())));
    let sessions = tokio::spawn({
        let (most_sessions, prefix) = (most_sessions.clone(), environment.schema_prefix.clone());
        async move {
            loop {
                let names = postgres_sessions(&prefix).await;
                {
                    let mut most = most_sessions.lock().unwrap();
                    if names.len() > most.0 {
                        *most = (names.len(), names);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    let mut sagas = Vec::new();
    for i in 0..200 {
        if i == 100 {
            // SIGKILL: no goodbye to the group, no flush, no commit. The replica
            // then comes back, as its container's restart policy would bring it.
            for (role, replica) in [("order", 2), ("payment", 2)] {
                let name = format!("{role}-{replica}");
                let process = processes.iter_mut().find(|p| p.name == name).unwrap();
                process.kill();
                processes.push(serve(&environment, role, replica, 0));
            }
        }
        let body = json!({
            "customer_id": "cust_scale",
            "order_details": {"foodItems": [{"name": format!("meal {i}"), "price": 4.2, "quantity": 2}], "deliveryLocation": "Hall 7", "deliveryFee": 1.1}
        });
        let answer: Value = client
            .post(format!("{base}/api/orders"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sagas.push(answer["saga_id"].as_str().expect("a saga id").to_string());
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let completed = loop {
        let page = get_json(&client, &format!("{base}/api/sagas?status=COMPLETED&page_size=500")).await;
        let completed: Vec<String> = page["sagas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["saga_id"].as_str().unwrap().to_string())
            .collect();
        if completed.len() >= sagas.len() || tokio::time::Instant::now() > deadline {
            break completed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let unfinished: Vec<&String> = sagas.iter().filter(|s| !completed.contains(s)).collect();
    assert!(
        unfinished.is_empty(),
        "{} sagas did not complete, e.g. {:?}",
        unfinished.len(),
        unfinished.first()
    );

    let orders = get_json(
        &client,
        &format!("{base}/api/orders?customer_id=cust_scale&page_size=200"),
    )
    .await;
    let orders = orders["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 200, "no order lost, none doubled");
    assert!(orders
        .iter()
        .all(|o| o["status"] == "CREATED" && o["total_cents"] == 950));
    let payments = get_json(
        &client,
        &format!("{base}/payments?customer_id=cust_scale&page_size=200"),
    )
    .await;
    let payments = payments["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 200);
    assert!(payments
        .iter()
        .all(|p| p["status"] == "AUTHORIZED" && p["amount_cents"] == 950));
    let escrows = get_json(&client, &format!("{base}/escrow?customer_id=cust_scale&page_size=200")).await;
    let escrows = escrows["escrows"].as_array().unwrap();
    assert_eq!(escrows.len(), 200);
    assert!(escrows
        .iter()
        .all(|e| e["status"] == "HELD" && e["amount_cents"] == 950));

    // The stores of a process share one pool: 10 connections for the API's,
    // which opens every store, 4 for each of the ten others. (With a pool per
    // store, this deployment held about 70 of the server's 100.)
    sessions.abort();
    let (most, names) = most_sessions.lock().unwrap().clone();
    assert!(
        most <= 10 + 4 * 10,
        "at most {most} PostgreSQL sessions at once, more than the processes were given: {names:?}"
    );
    assert!(
        names
            .iter()
            .all(|name| name.starts_with(&format!("campusg-{}:", environment.schema_prefix))),
        "every session belongs to a process's pool: {names:?}"
    );
}

#[tokio::test]
async fn a_system_started_before_its_broker_waits_for_it_and_then_works() {
    use std::sync::Arc;

    use crate::backends::Broker;
    use crate::helpers::TestApp;

    // The environment's broker address, with nothing listening there yet.
    let mut environment = Environment::new(Backend::Kafka);
    let port: u16 = environment
        .broker
        .take()
        .unwrap()
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let environment = Arc::new(environment);
    let starting = async {
        let app = TestApp::spawn_with(environment.clone(), &[]).await;
        (app, tokio::time::Instant::now())
    };
    let broker_comes_up_later = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        (Broker::start_on(port), tokio::time::Instant::now())
    };
    let ((app, started_at), (_broker, broker_up_at)) = tokio::join!(starting, broker_comes_up_later);

    assert!(
        started_at >= broker_up_at,
        "the system must wait for Kafka, not run without it"
    );
    app.create_user("cust_patient", Some("pm_card_visa")).await;
    let (saga_id, _) = app.place_order("cust_patient", 12.99, 1.0).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
}
