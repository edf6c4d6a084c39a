//! `campusg`: runs the system and the operator's tools. `main` only parses the
//! command line, sets up telemetry and hands over to the library.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use campusg::backends::{connect_bus, open_store};
use campusg::operate::{self, TailFormat, TailOptions};
use campusg::settings::{Backends, Role, Settings};
use campusg::startup::Application;
use campusg::{dead_letters, inspect};
use campusg_runtime::bus::OffsetReset;
use campusg_runtime::clock::{Clock, OffsetClock, SystemClock};
use campusg_runtime::store::Contracts;

#[derive(Parser)]
#[command(
    name = "campusg",
    version,
    about = "Campus food delivery: event-sourced services and sagas over Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: every service, the sagas and the HTTP API.
    Up(Settings),
    /// Run one part of the system; run as many replicas of it as you like.
    Serve {
        #[arg(value_enum)]
        role: Role,
        #[command(flatten)]
        settings: Settings,
    },
    /// Publish a message to a topic, checked against topics.toml and its schema.
    ///
    /// The message is an argument, a file (--file), or standard input; several
    /// messages may be given as JSON lines. The seeds' format
    /// ({type, correlation_id, timestamp, payload}) is enough.
    Publish {
        topic: String,
        /// The message; read from --file or standard input when left out.
        message: Option<String>,
        #[arg(long, short)]
        file: Option<PathBuf>,
        /// The record key; by default the order (or user) the message is about.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        backends: Backends,
    },
    /// Print the records of one or more topics with key, headers, partition and offset.
    Tail {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Start at the oldest record instead of the newest.
        #[arg(long, short = 'b')]
        from_beginning: bool,
        /// Keep waiting for new records.
        #[arg(long, short)]
        follow: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: TailFormat,
        /// Stop after this many records.
        #[arg(long, short = 'n')]
        max: Option<usize>,
        #[command(flatten)]
        backends: Backends,
    },
    /// One order's whole story across every topic and saga, in causal and time
    /// order, from the trace index (kept by the `trace` role, part of `up`).
    Trace {
        /// An order id, or a saga id (its order's story).
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: TraceFormat,
        #[command(flatten)]
        backends: Backends,
    },
    /// Sagas: list them (stuck ones too), or show one with its history.
    Sagas {
        #[command(subcommand)]
        command: SagasCommand,
    },
    /// Parked keys and dead letters: list, show, retry (after the cause is
    /// fixed), drop.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Rebuild an aggregate from its events as it was at an event number or a
    /// time, and print the state with the events that led to it.
    ///
    /// `--rebuild <type>` instead rebuilds the read model of every aggregate of
    /// a type from its events; safe while the system runs, and to repeat.
    Replay {
        /// The aggregate type: order, user, payment, escrow, timer, notification,
        /// order_parties, create_order_saga, accept_order_saga, complete_order_saga.
        #[arg(required_unless_present = "rebuild")]
        aggregate_type: Option<String>,
        /// The aggregate's id.
        #[arg(required_unless_present = "rebuild")]
        id: Option<String>,
        /// Rebuild the read models of this aggregate type.
        #[arg(long, value_name = "TYPE", conflicts_with_all = ["aggregate_type", "id", "as_of"])]
        rebuild: Option<String>,
        /// An event number (1 is the first), an RFC 3339 time, or a log position
        /// as `trace` prints it (`order_events[2]@14`); the latest when left out.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backends: Backends,
    },
    /// The double-entry ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Consumer groups.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Print a token for calling the HTTP API as a user in a role, signed with
    /// the local key in the data directory (made on first use). A system run
    /// with --oidc-issuer takes only its issuer's tokens instead.
    Token {
        /// The user the token is for (its `sub`).
        #[arg(long)]
        user: String,
        /// customer, runner or operator.
        #[arg(long, value_parser = parse_role)]
        role: campusg_runtime::access::Role,
        /// How long it holds: 30m, 1h, 7d (at most 30 days).
        #[arg(long, default_value = "1h", value_parser = inspect::parse_duration)]
        ttl: chrono::Duration,
        /// The audience the system expects (`--jwt-audience`).
        #[arg(long, env = "CAMPUSG_JWT_AUDIENCE", default_value = campusg::identity::DEFAULT_AUDIENCE)]
        audience: String,
        /// Where the system keeps its data, and its signing key.
        #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
        data_dir: PathBuf,
    },
    /// Measure the system: saga throughput at saturation, latency at a fixed
    /// offered rate, the full lifecycle rate, replay speed, peak memory, and the
    /// bus's and the store's own floor (see docs/benchmarks.md).
    Bench(campusg::bench::BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum TraceFormat {
    /// A line per message, with times since the start and since the previous one.
    Text,
    /// The records, with their positions, for tools.
    Json,
    /// A Mermaid sequence diagram of the services involved.
    Mermaid,
}

#[derive(Subcommand)]
enum SagasCommand {
    /// Sagas, the most recently started first.
    List {
        /// Only sagas in this status (STARTED, COMPLETED, CANCELLED...).
        #[arg(long)]
        status: Option<String>,
        /// Only sagas of this type (create_order, accept_order, complete_order).
        #[arg(long = "type")]
        saga_type: Option<String>,
        /// Only this order's sagas.
        #[arg(long)]
        order: Option<String>,
        /// Only sagas with work left that have made no progress for this long
        /// (30s, 5m, 2h, 1d).
        #[arg(long, value_parser = inspect::parse_duration)]
        stuck_for: Option<chrono::Duration>,
        /// Only sagas that recorded a reply they did not take (an amount,
        /// customer or runner that disagreed with their own).
        #[arg(long)]
        anomalies: bool,
        /// At most this many.
        #[arg(long, short = 'n', default_value_t = 50)]
        max: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backends: Backends,
    },
    /// One saga: its state, current step and history.
    Show {
        saga_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backends: Backends,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// The parked keys (each group's, with their first failure and the records
    /// they hold), then every dead letter, oldest first, with its status
    /// (PENDING, RETRIED, DROPPED).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backends: Backends,
    },
    /// One dead letter, whole, with the actions taken on it.
    Show {
        /// Its offset on the dead-letter topic, or its id.
        id: String,
        #[command(flatten)]
        backends: Backends,
    },
    /// A parked key (or a dead letter whose key is parked): handle its held
    /// records again, in order. Another dead letter: publish its record again
    /// to its topic, under a new message id.
    Retry {
        /// A parked key, or a dead letter's offset or id.
        id: String,
        /// Only in this consumer group (a key parked in several groups).
        #[arg(long)]
        group: Option<String>,
        /// Publish it again even if it was retried or dropped before.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        backends: Backends,
    },
    /// A parked key (or a dead letter whose key is parked): drop its held
    /// records, with the reason, and free the key. A dead letter: record that
    /// it is not to be retried, and why.
    Drop {
        /// A parked key, or a dead letter's offset or id.
        id: String,
        /// Only in this consumer group (a key parked in several groups).
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        backends: Backends,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Move a group's committed offsets; run while the group is stopped.
    Reset {
        group: String,
        #[arg(long)]
        topic: String,
        /// Only this partition (all when left out).
        #[arg(long)]
        partition: Option<i32>,
        /// `earliest`, `latest`, or the offset of the next record to read.
        #[arg(long, value_parser = operate::parse_offset_reset)]
        to: OffsetReset,
        #[command(flatten)]
        backends: Backends,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Compare the ledger, the payment, escrow and payout aggregates and the
    /// processor's records, cent for cent; print every difference and exit
    /// non-zero on any. Run it when the system is quiet: money in flight shows
    /// as a difference until it lands.
    Check {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backends: Backends,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create the topics of topics.toml that the bus does not have yet.
    Create {
        #[command(flatten)]
        backends: Backends,
    },
    /// Compare the bus with topics.toml: partitions, record counts, what is missing.
    List {
        #[command(flatten)]
        backends: Backends,
    },
}

/// Every record, envelope and row is built as JSON values on its way through
/// a process, millions of small allocations a minute: glibc's allocator spent
/// over a quarter of the system's time on them, mimalloc a fraction of that
/// (docs/benchmarks.md, "Another allocator"). Version 2: version 3 was no
/// faster here and kept more memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keep_memory_in_small_pages();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// mimalloc asks Linux for transparent huge pages on its memory, so each
/// thread's few live kilobytes hold a whole 2 MiB page resident: 35 of the
/// 39 MiB an idle system held, and about 25 MiB of its peak under load
/// (docs/benchmarks.md, "Small pages"). Turned off for this process (and
/// the processes it starts) before any thread runs; where the kernel
/// refuses, the process runs as before, with more memory.
fn keep_memory_in_small_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: transparent huge pages stay on ({error}): the process keeps more memory");
    }
}

fn parse_role(text: &str) -> Result<campusg_runtime::access::Role, String> {
    campusg_runtime::access::Role::parse(text)
        .ok_or_else(|| format!("`{text}` is not a role: customer, runner or operator"))
}

/// The longest a minted token holds.
const MAX_TOKEN_TTL_DAYS: i64 = 30;

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Token {
            user,
            role,
            ttl,
            audience,
            data_dir,
        } => {
            let user = campusg_domain::ids::UserId::parse(&user)?;
            anyhow::ensure!(
                ttl > chrono::Duration::zero() && ttl <= chrono::Duration::days(MAX_TOKEN_TTL_DAYS),
                "a token holds from a second to {MAX_TOKEN_TTL_DAYS} days"
            );
            let key = campusg::identity::LocalKey::load_or_create(&data_dir)?;
            println!("{}", key.mint(&user, role, ttl, &audience, SystemClock.now())?);
            Ok(())
        }
        Command::Up(settings) => run_system(settings).await,
        Command::Bench(args) => {
            campusg_runtime::telemetry::init("warn");
            campusg::bench::run(args).await
        }
        Command::Serve { role, mut settings } => {
            settings.roles = vec![role];
            if settings.backends.kafka.is_none() {
                // The embedded log gives each group one member: replicas of a role
                // would each read every partition.
                eprintln!("note: `serve` on the embedded log runs one process per role; replicas need --kafka");
            }
            run_system(settings).await
        }
        Command::Sagas { command } => {
            campusg_runtime::telemetry::init("warn");
            match command {
                SagasCommand::List {
                    status,
                    saga_type,
                    order,
                    stuck_for,
                    anomalies,
                    max,
                    json,
                    backends,
                } => {
                    let filter =
                        inspect::saga_filter(status.as_deref(), saga_type.as_deref(), order, stuck_for, anomalies)?;
                    inspect::list_sagas(&backends, &filter, max, json).await
                }
                SagasCommand::Show {
                    saga_id,
                    json,
                    backends,
                } => inspect::show_saga(&backends, &saga_id, json).await,
            }
        }
        Command::Dlq { command } => {
            campusg_runtime::telemetry::init("warn");
            run_dlq(command).await
        }
        Command::Replay {
            aggregate_type,
            id,
            rebuild,
            as_of,
            json,
            backends,
        } => {
            campusg_runtime::telemetry::init("warn");
            if let Some(aggregate_type) = rebuild {
                let rebuilt = inspect::rebuild(&backends, &aggregate_type).await?;
                println!("rebuilt the read models of {rebuilt} {aggregate_type} aggregate(s) from their events");
                return Ok(());
            }
            let (Some(aggregate_type), Some(id)) = (aggregate_type, id) else {
                anyhow::bail!("give an aggregate type and an id, or --rebuild <type>");
            };
            let as_of = as_of.as_deref().map(inspect::parse_as_of).transpose()?;
            inspect::replay(&backends, &aggregate_type, &id, as_of, json).await
        }
        Command::Ledger {
            command: LedgerCommand::Check { json, backends },
        } => {
            campusg_runtime::telemetry::init("warn");
            let report = campusg::ledger_check::run(&backends).await?;
            if json {
                let differences: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
                let totals: serde_json::Map<String, serde_json::Value> = report
                    .totals
                    .iter()
                    .map(|(account, cents)| (account.as_str().to_string(), serde_json::json!(cents)))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "orders": report.orders,
                        "entries": report.entries,
                        "processor_records": report.processor_records,
                        "balances": totals,
                        "differences": differences,
                    })
                );
            } else {
                print!("{}", campusg::ledger_check::render(&report));
            }
            anyhow::ensure!(
                report.differences.is_empty(),
                "the books disagree in {} place(s)",
                report.differences.len()
            );
            Ok(())
        }
        Command::Trace { id, format, backends } => {
            campusg_runtime::telemetry::init("warn");
            let store = open_store(&backends, "trace").await?;
            let records = campusg_trace::story(store.as_ref(), &id).await?;
            anyhow::ensure!(
                !records.is_empty(),
                "nothing is indexed under {id}: give an order id or a saga id (the trace role indexes the log)"
            );
            match format {
                TraceFormat::Text => print!("{}", campusg_trace::render::text(&id, &records)),
                TraceFormat::Json => println!("{}", campusg_trace::render::json(&id, &records)),
                TraceFormat::Mermaid => print!("{}", campusg_trace::render::mermaid(&records)),
            }
            Ok(())
        }
        Command::Publish {
            topic,
            message,
            file,
            key,
            backends,
        } => {
            campusg_runtime::telemetry::init("warn");
            let input = match (message, file) {
                (Some(message), _) => message,
                (None, Some(file)) => {
                    std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
                }
                (None, None) => {
                    let mut input = String::new();
                    std::io::stdin()
                        .read_to_string(&mut input)
                        .context("cannot read standard input")?;
                    input
                }
            };
            let contracts = Contracts::builtin();
            let bus = connect_bus(&backends, &contracts.topics).await?;
            let messages = operate::split_messages(&input);
            anyhow::ensure!(!messages.is_empty(), "no message given");
            let mut failed = 0;
            for raw in messages {
                match operate::publish(
                    bus.as_ref(),
                    &contracts,
                    &topic,
                    &raw,
                    key.as_deref(),
                    SystemClock.now(),
                )
                .await
                {
                    Ok((envelope, position)) => println!(
                        "published {} id={} correlation_id={} to {}[{}]@{}",
                        envelope.message_type,
                        envelope.id,
                        envelope.correlation_id,
                        position.topic,
                        position.partition,
                        position.offset
                    ),
                    Err(error) => {
                        failed += 1;
                        eprintln!("not published: {error}");
                    }
                }
            }
            anyhow::ensure!(failed == 0, "{failed} message(s) were not published");
            Ok(())
        }
        Command::Tail {
            topics,
            from_beginning,
            follow,
            format,
            max,
            backends,
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            for topic in &topics {
                anyhow::ensure!(
                    contracts.topics.get(topic).is_some(),
                    "topic `{topic}` is not in topics.toml"
                );
            }
            let bus = connect_bus(&backends, &contracts.topics).await?;
            let options = TailOptions {
                topics,
                from_beginning,
                follow,
                format,
                max_records: max,
            };
            let mut stdout = std::io::stdout();
            operate::tail(bus.as_ref(), &options, &mut stdout, shutdown_signal()).await?;
            Ok(())
        }
        Command::Groups {
            command:
                GroupsCommand::Reset {
                    group,
                    topic,
                    partition,
                    to,
                    backends,
                },
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            let bus = connect_bus(&backends, &contracts.topics).await?;
            bus.reset_offsets(&group, &topic, partition, to).await?;
            println!("group {group} on {topic}: offsets reset to {to:?}");
            Ok(())
        }
        Command::Topics {
            command: TopicsCommand::Create { backends },
        } => {
            campusg_runtime::telemetry::init("info");
            let contracts = Contracts::builtin();
            // Connecting creates what is missing.
            connect_bus(&backends, &contracts.topics).await?;
            println!(
                "the {} topics of topics.toml exist on the bus",
                contracts.topics.topics().len()
            );
            Ok(())
        }
        Command::Topics {
            command: TopicsCommand::List { backends },
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            let bus = connect_bus(&backends, &contracts.topics).await?;
            let on_bus = bus.describe_topics().await?;
            println!(
                "{:<22} {:>10} {:>10}  {:<12} message types",
                "topic", "partitions", "records", "state"
            );
            for spec in contracts.topics.topics() {
                let (partitions, records, state) = match on_bus.iter().find(|t| t.name == spec.name) {
                    None => ("-".to_string(), "-".to_string(), "missing".to_string()),
                    Some(t) if t.partitions != spec.partitions => (
                        t.partitions.to_string(),
                        t.records.to_string(),
                        format!("file says {} partitions", spec.partitions),
                    ),
                    Some(t) => (t.partitions.to_string(), t.records.to_string(), "ok".to_string()),
                };
                println!(
                    "{:<22} {partitions:>10} {records:>10}  {state:<12} {}",
                    spec.name,
                    spec.messages.join(", ")
                );
            }
            for extra in on_bus.iter().filter(|t| contracts.topics.get(&t.name).is_none()) {
                println!(
                    "{:<22} {:>10} {:>10}  not in topics.toml",
                    extra.name, extra.partitions, extra.records
                );
            }
            Ok(())
        }
    }
}

/// The most parked keys `dlq list` prints (`GET /api/parked-keys` pages on).
const DLQ_LIST_MOST: usize = 1000;

/// Runs the parts `settings` names until SIGINT or SIGTERM.
async fn run_system(settings: Settings) -> anyhow::Result<()> {
    let roles: Vec<String> = Role::ALL
        .iter()
        .filter(|role| settings.runs(**role))
        .map(|role| format!("{role:?}").to_lowercase())
        .collect();
    let service_name = match roles.as_slice() {
        [one] => format!("campusg-{one}"),
        _ => "campusg".to_string(),
    };
    let traces = campusg::trace_export::TraceExport::install("info", &service_name)?;
    let outcome = run_system_until_stopped(settings, roles).await;
    traces.finish().await;
    outcome
}

async fn run_system_until_stopped(settings: Settings, roles: Vec<String>) -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var("CAMPUSG_CRASH_POINTS") {
        campusg_runtime::crash_points::arm(&spec).map_err(|e| anyhow::anyhow!("CAMPUSG_CRASH_POINTS: {e}"))?;
        tracing::warn!(crash_points = %spec, "the process will abort at these points, by chance, on purpose");
    }
    let clock: Arc<dyn Clock> = match settings.clock_skew_secs {
        0 => Arc::new(SystemClock),
        skew => {
            tracing::warn!(skew_secs = skew, "the clock is skewed on purpose (--clock-skew-secs)");
            Arc::new(OffsetClock::skewed(chrono::Duration::seconds(skew)))
        }
    };
    let app = Application::build(&settings, clock).await?;
    let backends = &settings.backends;
    let bus = backends
        .kafka
        .as_deref()
        .map(|k| format!("Kafka at {k}"))
        .unwrap_or_else(|| "embedded log".into());
    let stores = if backends.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    tracing::info!(address = %app.address(), %bus, %stores, roles = %roles.join(","), "campusg is up");
    if settings.runs(Role::Api) && settings.guard.oidc_issuer.is_none() {
        let data_dir = backends.data_dir.display();
        tracing::info!(
            "every request but /health and /openapi.json needs a token: \
             `campusg token --data-dir {data_dir} --user <id> --role customer|runner|operator`, \
             sent as `Authorization: Bearer <token>`"
        );
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

async fn run_dlq(command: DlqCommand) -> anyhow::Result<()> {
    let contracts = Contracts::builtin();
    let backends = match &command {
        DlqCommand::List { backends, .. }
        | DlqCommand::Show { backends, .. }
        | DlqCommand::Retry { backends, .. }
        | DlqCommand::Drop { backends, .. } => backends,
    };
    let bus = connect_bus(backends, &contracts.topics).await?;
    let now = SystemClock.now();
    let stores = dead_letters::open_service_stores(backends).await?;
    match &command {
        DlqCommand::List { json, .. } => {
            let parked = dead_letters::parked_keys(&stores, 0, DLQ_LIST_MOST).await?;
            let letters = dead_letters::all(bus.as_ref(), &contracts).await?;
            if *json {
                let views: Vec<_> = letters.iter().map(dead_letters::DeadLetter::view).collect();
                println!("{}", serde_json::json!({"parked_keys": parked, "dead_letters": views}));
                return Ok(());
            }
            println!(
                "{:<36}  {:<20}  {:<8}  {:>4}  first failure",
                "parked key", "group", "status", "held"
            );
            for key in &parked {
                println!(
                    "{:<36}  {:<20}  {:<8}  {:>4}  {}",
                    key["key"].as_str().unwrap_or("?"),
                    key["group"].as_str().unwrap_or("?"),
                    key["status"].as_str().unwrap_or("?"),
                    key["held"].as_array().map_or(0, Vec::len),
                    key["first_failure"].as_str().unwrap_or("")
                );
            }
            let shown = if parked.len() == DLQ_LIST_MOST {
                format!("the {DLQ_LIST_MOST} oldest")
            } else {
                parked.len().to_string()
            };
            println!("{shown} parked key(s): `campusg dlq retry <key>` or `dlq drop <key> --reason ...`\n");
            println!(
                "{:>6}  {:<8}  {:<25}  {:<24}  {:<22}  reason",
                "offset", "status", "failed at", "from", "type"
            );
            for letter in &letters {
                let payload = &letter.envelope.payload;
                println!(
                    "{:>6}  {:<8}  {:<25}  {:<24}  {:<22}  {}",
                    letter.offset,
                    letter.status(),
                    letter
                        .envelope
                        .timestamp
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    format!(
                        "{}[{}]@{}",
                        payload["original_topic"].as_str().unwrap_or("?"),
                        payload["original_partition"],
                        payload["original_offset"]
                    ),
                    letter.original_type(),
                    payload["reason"].as_str().unwrap_or("")
                );
            }
            println!("{} dead letter(s)", letters.len());
        }
        DlqCommand::Show { id, .. } => {
            let letter = dead_letters::find(bus.as_ref(), &contracts, id).await?;
            println!("{}", serde_json::to_string_pretty(&letter.view())?);
        }
        DlqCommand::Retry { id, group, force, .. } => {
            let by = dead_letters::operator();
            let retry = dead_letters::KeyAction::Retry;
            let groups = dead_letters::act_on_key(&stores, id, group.as_deref(), &retry, &by, now).await?;
            if !groups.is_empty() {
                println!(
                    "key {id}: its held records are handled again, in order, by {}",
                    groups.join(", ")
                );
                return Ok(());
            }
            let letter = dead_letters::find(bus.as_ref(), &contracts, id).await?;
            match dead_letters::retry_letter(bus.as_ref(), &contracts, &stores, &letter, &by, *force, now).await? {
                dead_letters::LetterRetry::KeyRetried { key, group } => println!(
                    "dead letter {}: its key {key} is parked in {group}; its held records are handled again, in order",
                    letter.offset
                ),
                dead_letters::LetterRetry::PublishedAgain(retried_as) => println!(
                    "dead letter {} published again to {} as {retried_as}; recorded as retried by {by}",
                    letter.offset,
                    letter.envelope.payload["original_topic"].as_str().unwrap_or("?")
                ),
            }
        }
        DlqCommand::Drop { id, group, reason, .. } => {
            let by = dead_letters::operator();
            let drop = dead_letters::KeyAction::Drop(reason.clone());
            let groups = dead_letters::act_on_key(&stores, id, group.as_deref(), &drop, &by, now).await?;
            if !groups.is_empty() {
                println!(
                    "key {id}: its held records are dropped by {by} in {}: {reason}",
                    groups.join(", ")
                );
                return Ok(());
            }
            let letter = dead_letters::find(bus.as_ref(), &contracts, id).await?;
            let key = letter.envelope.payload["original_key"].as_str().unwrap_or_default();
            for group in dead_letters::drop_letter(bus.as_ref(), &contracts, &stores, &letter, reason, &by, now).await?
            {
                println!(
                    "dead letter {}: its key {key}'s held records in {group} are dropped",
                    letter.offset
                );
            }
            println!("dead letter {} dropped by {by}: {reason}", letter.offset);
        }
    }
    Ok(())
}
