//! The system under test: `campusg up` in a child process of its own, on the
//! bench's backends, so that its peak memory is read from its own `/proc` entry.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::settings::Backends;
use campusg_adapters::postgres_store::PostgresEventStore;

/// How long the system may take to answer its first health check.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

/// glibc gives each thread that calls `malloc` an arena of its own, and
/// SQLite allocates from a thread per file: two arenas hold the embedded
/// system's peak about 25 MiB lower at the same rate (docs/benchmarks.md,
/// "Two malloc arenas"). The Dockerfile runs the system with this setting;
/// the bench runs it the same way, unless its own environment says otherwise.
const MALLOC_ARENAS: (&str, &str) = ("MALLOC_ARENA_MAX", "2");

pub struct SystemUnderTest {
    child: Child,
    port: u16,
    log: PathBuf,
    /// The `MALLOC_ARENA_MAX` the system runs with.
    pub malloc_arena_max: String,
}

impl SystemUnderTest {
    /// Starts `campusg up` on a free port and waits until it answers.
    pub async fn start(backends: &Backends) -> anyhow::Result<SystemUnderTest> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::create_dir_all(&backends.data_dir)?;
        let log = backends.data_dir.join("system.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("up")
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(&backends.data_dir)
            // Every bench request comes from one address, at far more than a
            // client's share: the bench measures the system, not its limiter.
            .args(["--rate-limit-per-address", "0", "--rate-limit-per-subject", "0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        if let (Some(kafka), Some(database_url)) = (&backends.kafka, &backends.database_url) {
            command
                .args(["--kafka", kafka, "--database-url", database_url])
                .args(["--schema-prefix", &backends.schema_prefix])
                .args(["--kafka-fetch-wait-ms", &backends.kafka_fetch_wait_ms.to_string()]);
        }
        let (name, value) = MALLOC_ARENAS;
        let malloc_arena_max = match std::env::var(name) {
            Ok(own) => own,
            Err(_) => {
                command.env(name, value);
                value.to_string()
            }
        };
        let child = command.spawn().context("cannot start `campusg up`")?;
        let mut system = SystemUnderTest {
            child,
            port,
            log,
            malloc_arena_max,
        };
        system.wait_until_ready().await?;
        Ok(system)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "`campusg up` exited ({status}) before it answered:\n{}",
                    self.log_tail()
                );
            }
            let health = http.get(format!("{}/health", self.base_url())).send().await;
            if health.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "`campusg up` did not answer within {}s:\n{}",
                STARTUP_PATIENCE.as_secs(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The most memory the process has held resident so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("the system has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("peak memory is read from /proc, which this system does not have")?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("/proc/<pid>/status has no VmHWM line")?;
        Ok(kib / 1024.0)
    }

    /// Stops the system the way an operator would (SIGTERM), and kills it if it
    /// has not stopped within ten seconds.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Drops the PostgreSQL schemas a bench run made.
pub async fn drop_schemas(backends: &Backends) {
    let Some(url) = &backends.database_url else {
        return;
    };
    if let Err(error) = PostgresEventStore::end_sessions(url, &backends.schema_prefix).await {
        tracing::warn!(error = %error, "cannot end the bench's PostgreSQL sessions");
    }
    for service in crate::services::names().chain([crate::startup::API_STORE, super::floor::FLOOR_SERVICE]) {
        if let Err(error) = PostgresEventStore::drop_schema(url, &backends.schema_of(service)).await {
            tracing::warn!(service, error = %error, "cannot drop the bench's schema");
        }
    }
}
