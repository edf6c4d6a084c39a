//! The operator's commands, run as the `campusg` binary against a running system,
//! on both backends: publish by hand, tail, and compare the topics with the file.

use std::io::Write;
use std::process::{Command, Stdio};

use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::TestApp;

pub(crate) fn campusg(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    campusg_with(&app.environment.flags(), args, stdin)
}

/// Runs the binary with the backend flags `flags`: whether it succeeded, its
/// standard output and its standard error.
pub(crate) fn campusg_with(flags: &[String], args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_campusg"))
        .args(args)
        .args(flags)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("campusg runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_published_with_the_cli_drives_the_system_and_tail_shows_the_records(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_cli", Some("pm_card_visa")).await;
    let saga_id = uuid::Uuid::new_v4().to_string();
    let command = json!({
        "type": "create_order",
        "correlation_id": saga_id,
        "payload": {
            "customer_id": "cust_cli",
            "order_details": {"foodItems": [{"name": "Laksa", "price": 6.5, "quantity": 1}], "deliveryLocation": "Hall 3"}
        }
    });

    let (published, stdout, stderr) =
        tokio::task::block_in_place(|| campusg(&app, &["publish", "order_commands"], Some(&command.to_string())));
    assert!(published, "{stderr}");
    assert!(stdout.contains("published create_order"), "{stdout}");
    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");

    let (tailed, stdout, stderr) = tokio::task::block_in_place(|| {
        campusg(
            &app,
            &["tail", "saga_events", "--from-beginning", "--format", "json"],
            None,
        )
    });
    assert!(tailed, "{stderr}");
    let records: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let completed = records
        .iter()
        .find(|r| r["value"]["type"] == "saga.completed" && r["value"]["correlation_id"] == saga_id.as_str())
        .unwrap_or_else(|| panic!("no saga.completed in {stdout}"));
    assert_eq!(completed["key"], saga["order_id"]);
    assert!(completed["offset"].is_i64() && completed["partition"].is_i64());
    assert_eq!(completed["headers"]["correlation_id"], saga_id.as_str());

    let (refused, _, stderr) = tokio::task::block_in_place(|| {
        campusg(
            &app,
            &[
                "publish",
                "order_commands",
                r#"{"type": "create_order", "correlation_id": "x", "payload": {}}"#,
            ],
            None,
        )
    });
    assert!(!refused);
    assert!(stderr.contains("customer_id"), "{stderr}");

    let (listed, stdout, stderr) = tokio::task::block_in_place(|| campusg(&app, &["topics", "list"], None));
    assert!(listed, "{stderr}");
    for topic in app.contracts.topics.topics() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{} ", topic.name)))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(" ok "), "{line}");
    }
}
