//! `docker-compose.yml` cannot run here (no Docker engine); these tests check
//! that it parses and that it deploys exactly the roles `campusg serve` knows.

use std::collections::BTreeSet;

use clap::ValueEnum;
use serde_yaml_ng::Value;

use campusg::settings::Role;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml")).unwrap();
    let mut compose: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml is YAML");
    compose.apply_merge().expect("its merge keys resolve");
    compose
}

fn command_of(service: &Value) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn compose_runs_one_container_per_serve_role() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let served: BTreeSet<String> = services
        .values()
        .map(command_of)
        .filter(|command| command.first().map(String::as_str) == Some("serve"))
        .map(|command| command[1].clone())
        .collect();
    let roles: BTreeSet<String> = Role::ALL
        .iter()
        .map(|role| role.to_possible_value().unwrap().get_name().to_string())
        .collect();
    assert_eq!(served, roles);
}

#[test]
fn compose_runs_kafka_in_kraft_mode_provisions_topics_and_checks_health() {
    let compose = compose();
    let services = &compose["services"];
    let kafka = &services["kafka"];
    assert!(kafka["image"].as_str().unwrap().starts_with("apache/kafka"));
    assert_eq!(
        kafka["environment"]["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller")
    );
    assert!(kafka
        .get("environment")
        .and_then(|e| e.get("KAFKA_ZOOKEEPER_CONNECT"))
        .is_none());
    assert_eq!(command_of(&services["topics"]), vec!["topics", "create"]);
    for (name, service) in services.as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if command_of(service).first().map(String::as_str) == Some("serve") {
            assert!(service.get("healthcheck").is_some(), "{name} has no health check");
            assert_eq!(
                service["environment"]["KAFKA_BOOTSTRAP_SERVERS"].as_str(),
                Some("kafka:9092"),
                "{name}"
            );
            assert!(
                service["environment"]["DATABASE_URL"]
                    .as_str()
                    .unwrap()
                    .starts_with("postgres://"),
                "{name}"
            );
            assert_eq!(
                service["depends_on"]["topics"]["condition"].as_str(),
                Some("service_completed_successfully"),
                "{name} starts before the topics exist"
            );
        }
    }
}

/// The topics are the trust boundary behind the API (SPEC 11): Kafka and
/// PostgreSQL publish their ports on the host's loopback only.
#[test]
fn compose_keeps_kafka_and_postgres_off_the_network() {
    let compose = compose();
    for name in ["kafka", "postgres"] {
        let ports = compose["services"][name]["ports"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert!(!ports.is_empty(), "{name} publishes a port for tools on the host");
        for port in ports {
            let port = port.as_str().unwrap_or_default();
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond the host"
            );
        }
    }
}
