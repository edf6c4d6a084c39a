//! Where a scenario runs: embedded (SQLite log and stores in a temporary
//! directory), or distributed (a tansu broker of its own on a free port, and a
//! fresh set of PostgreSQL schemas). Everything is cleaned up on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::sync::Arc;

use tempfile::TempDir;

use campusg_runtime::clock::OffsetClock;

use campusg::settings::Backends;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    /// Kafka (tansu) and PostgreSQL.
    Kafka,
}

/// The PostgreSQL the distributed scenarios use; `TEST_DATABASE_URL` overrides.
pub(crate) fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A tansu broker that lives as long as this value.
pub struct Broker {
    process: Child,
    pub address: String,
}

impl Broker {
    pub fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Broker::start_on(port)
    }

    /// A broker on `port`, which a test reserved before.
    pub fn start_on(port: u16) -> Broker {
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let tansu = std::env::var("TANSU").unwrap_or_else(|_| "tansu".to_string());
        let process = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{tansu}` (scripts/test installs it): {e}"));
        // Owned before waiting, so that a broker that never listens is still stopped.
        let broker = Broker { process, address };
        for _ in 0..200 {
            if TcpStream::connect(&broker.address).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tansu did not listen on {}", broker.address);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Everything a scenario's system keeps, which outlives a restart of it.
pub struct Environment {
    pub backend: Backend,
    pub data_dir: TempDir,
    pub broker: Option<Broker>,
    /// Where the Kafka backend's broker listens (or will listen).
    pub kafka_address: Option<String>,
    pub schema_prefix: String,
    /// The time the system sees; tests move it forward instead of waiting.
    pub clock: Arc<OffsetClock>,
}

impl Environment {
    pub fn new(backend: Backend) -> Environment {
        let schema_prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let broker = (backend == Backend::Kafka).then(Broker::start);
        let kafka_address = broker.as_ref().map(|b| b.address.clone());
        Environment {
            backend,
            data_dir: tempfile::tempdir().unwrap(),
            broker,
            kafka_address,
            schema_prefix,
            clock: Arc::new(OffsetClock::new()),
        }
    }

    pub fn backends(&self) -> Backends {
        let mut backends = Backends::embedded(self.data_dir.path().to_path_buf());
        if let Some(address) = &self.kafka_address {
            backends.kafka = Some(address.clone());
            backends.database_url = Some(database_url());
            backends.schema_prefix = self.schema_prefix.clone();
        }
        backends
    }

    /// The command-line flags that point `campusg` at this environment.
    pub fn flags(&self) -> Vec<String> {
        let backends = self.backends();
        let mut flags = vec!["--data-dir".to_string(), backends.data_dir.display().to_string()];
        if let (Some(kafka), Some(database_url)) = (backends.kafka, backends.database_url) {
            flags.extend(["--kafka".to_string(), kafka, "--database-url".to_string(), database_url]);
            flags.extend(["--schema-prefix".to_string(), backends.schema_prefix]);
        }
        flags
    }
}

/// The PostgreSQL sessions the systems under `schema_prefix` hold now, by
/// their `application_name`.
pub async fn postgres_sessions(schema_prefix: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    sqlx::query_scalar("SELECT application_name FROM pg_stat_activity WHERE starts_with(application_name, $1)")
        .bind(format!("campusg-{schema_prefix}"))
        .fetch_all(&mut db)
        .await
        .unwrap()
}

impl Drop for Environment {
    fn drop(&mut self) {
        if self.backend != Backend::Kafka {
            return;
        }
        let prefix = self.schema_prefix.clone();
        // Drop runs outside any runtime we could borrow; a small one of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                use campusg_adapters::postgres_store::PostgresEventStore;
                let _ = PostgresEventStore::end_sessions(&database_url(), &prefix).await;
                for service in campusg::services::names().chain([campusg::startup::API_STORE]) {
                    let schema = format!("{prefix}_{service}");
                    let _ = PostgresEventStore::drop_schema(&database_url(), &schema).await;
                }
            });
        })
        .join();
    }
}
