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
use campusg_runtime::bus::OffsetReset;
use campusg_runtime::clock::{Clock, SystemClock};
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(settings) => run_system(settings).await,
        Command::Serve { role, mut settings } => {
            settings.roles = vec![role];
            if settings.backends.kafka.is_none() {
                // The embedded log gives each group one member: replicas of a role
                // would each read every partition.
                eprintln!("note: `serve` on the embedded log runs one process per role; replicas need --kafka");
            }
            run_system(settings).await
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

/// Runs the parts `settings` names until SIGINT or SIGTERM.
async fn run_system(settings: Settings) -> anyhow::Result<()> {
    campusg_runtime::telemetry::init("info");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
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
    let roles: Vec<String> = Role::ALL
        .iter()
        .filter(|role| settings.runs(**role))
        .map(|role| format!("{role:?}").to_lowercase())
        .collect();
    tracing::info!(address = %app.address(), %bus, %stores, roles = %roles.join(","), "campusg is up");
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
