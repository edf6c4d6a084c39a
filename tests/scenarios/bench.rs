//! `campusg bench`, run short on both backends: it must finish, report every
//! figure, and leave behind exactly the sagas it claims, all COMPLETED. How
//! fast is not asserted here; docs/benchmarks.md reports that.

use std::process::Command;

use rstest::rstest;
use serde_json::Value;

use campusg::backends::open_store;
use campusg_runtime::store::StateQuery;

use crate::backends::{Backend, Environment};

const ORDERS: u64 = 100;
const LATENCY_ORDERS: u64 = 30;
const LIFECYCLE_ORDERS: u64 = 8;

/// A short bench run, compared with `baseline`, a report saved before.
fn bench(environment: &Environment, baseline: &std::path::Path) -> Value {
    let backends = environment.backends();
    let mut command = Command::new(env!("CARGO_BIN_EXE_campusg"));
    command
        .args(["bench", "--json", "--keep-data", "--clients", "4"])
        .arg("--compare")
        .arg(baseline)
        .args(["--orders", &ORDERS.to_string()])
        .args(["--latency-orders", &LATENCY_ORDERS.to_string()])
        .args(["--lifecycle-orders", &LIFECYCLE_ORDERS.to_string()])
        .args(["--floor-records", "500"])
        .arg("--data-dir")
        .arg(&backends.data_dir)
        .env("RUST_LOG", "error")
        .env_remove("MALLOC_ARENA_MAX");
    if let (Some(kafka), Some(database_url)) = (&backends.kafka, &backends.database_url) {
        command.args(["--kafka", kafka, "--database-url", database_url]);
        command.args(["--schema-prefix", &backends.schema_prefix]);
    }
    let output = command.output().expect("campusg runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the bench failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"))
}

fn positive(report: &Value, path: &str) -> f64 {
    let value = report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is missing: {report}"));
    assert!(value > 0.0, "{path} is {value}: {report}");
    value
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_reports_every_figure_and_completes_every_saga(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Environment::new(backend);
    let saved = tempfile::tempdir().unwrap();
    let baseline = saved.path().join("baseline.json");
    let before = serde_json::json!({"saturation": {"whole_system_per_sec": 0.5, "sagas_per_sec": 1.0}});
    std::fs::write(&baseline, before.to_string()).unwrap();

    let report = tokio::task::block_in_place(|| bench(&environment, &baseline));

    assert_eq!(report["saturation"]["orders"], ORDERS);
    // The system runs as the Dockerfile runs it, with two malloc arenas.
    assert_eq!(report["malloc_arena_max"], "2", "{report}");
    assert_eq!(report["latency"]["orders"], LATENCY_ORDERS);
    assert_eq!(report["lifecycle"]["orders"], LIFECYCLE_ORDERS);
    for path in [
        "/saturation/sagas_per_sec",
        "/saturation/records",
        "/latency/offered_per_sec",
        "/latency/p50_ms",
        "/latency/p90_ms",
        "/latency/p99_ms",
        "/latency/max_ms",
        "/lifecycle/per_sec",
        "/replay/aggregates",
        "/replay/events_per_sec",
        "/peak_rss_mib",
        "/floor/message_bytes",
        "/floor/bus_records_per_sec",
        "/floor/store_appends_per_sec",
        "/share/of_bus_floor",
        "/share/of_store_floor",
    ] {
        positive(&report, path);
    }
    // The headline counts until the observers caught up, so it is never above the sagas' own rate.
    let whole = positive(&report, "/saturation/whole_system_per_sec");
    assert!(whole <= positive(&report, "/saturation/sagas_per_sec"), "{report}");
    // Each figure beside the saved run's, as a ratio.
    let compared = report["compared_with_baseline"].as_array().expect("a comparison");
    let headline = compared
        .iter()
        .find(|c| c["figure"] == "whole system orders/s")
        .expect("the headline is compared");
    assert_eq!(headline["baseline"], 0.5);
    assert_eq!(headline["ratio"].as_f64().unwrap(), whole / 0.5);
    let p50 = positive(&report, "/latency/p50_ms");
    assert!(p50 <= positive(&report, "/latency/p99_ms"));
    assert!(positive(&report, "/latency/p99_ms") <= positive(&report, "/latency/max_ms"));

    // The stores agree with the report: every order the bench placed has a
    // completed create-order saga, and every lifecycle a completed payout.
    let sagas = open_store(&environment.backends(), "sagas").await.unwrap();
    let count = |aggregate_type: &'static str, status: &'static str| {
        let sagas = sagas.clone();
        async move {
            let query = StateQuery {
                equals: vec![("status".to_string(), status.to_string())],
                ..StateQuery::default()
            };
            sagas.query_states(aggregate_type, &query).await.unwrap().len() as u64
        }
    };
    let placed = ORDERS + LATENCY_ORDERS + LIFECYCLE_ORDERS;
    assert_eq!(count("create_order_saga", "COMPLETED").await, placed);
    assert_eq!(count("complete_order_saga", "COMPLETED").await, LIFECYCLE_ORDERS);
    assert_eq!(count("create_order_saga", "COMPENSATED").await, 0);
}
