//! `campusg`: runs the system and the operator's tools. `main` only parses the
//! command line, sets up telemetry and hands over to the library.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use campusg::operate::{self, TailFormat, TailOptions};
use campusg::settings::Settings;
use campusg::startup::Application;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::clock::{Clock, SystemClock};
use campusg_runtime::embedded_log::EmbeddedLog;
use campusg_runtime::store::Contracts;

#[derive(Parser)]
#[command(
    name = "campusg",
    version,
    about = "Campus food delivery: event-sourced services and sagas over a Kafka-shaped log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: every service, the sagas and the HTTP API.
    Up(Settings),
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
        #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
        data_dir: PathBuf,
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
        #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
        data_dir: PathBuf,
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
        to: campusg_runtime::bus::OffsetReset,
        #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// The topics of topics.toml with their partitions and how many records each holds.
    List {
        #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
        data_dir: PathBuf,
    },
}

async fn open_log(
    data_dir: &std::path::Path,
    contracts: &Contracts,
) -> anyhow::Result<EmbeddedLog> {
    let path = data_dir.join("log.db");
    EmbeddedLog::open(&path, &contracts.topics)
        .await
        .with_context(|| format!("cannot open the log at {}", path.display()))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
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
        Command::Up(settings) => {
            campusg_runtime::telemetry::init("info");
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let app = Application::build(&settings, clock).await?;
            tracing::info!(data_dir = %settings.data_dir.display(), address = %app.address(), "campusg is up (embedded)");
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                trigger.cancel();
            });
            app.run_until_stopped(shutdown).await
        }
        Command::Publish {
            topic,
            message,
            file,
            key,
            data_dir,
        } => {
            campusg_runtime::telemetry::init("warn");
            let input = match (message, file) {
                (Some(message), _) => message,
                (None, Some(file)) => std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
                (None, None) => {
                    let mut input = String::new();
                    std::io::stdin()
                        .read_to_string(&mut input)
                        .context("cannot read standard input")?;
                    input
                }
            };
            let contracts = Contracts::builtin();
            let log = open_log(&data_dir, &contracts).await?;
            let messages = operate::split_messages(&input);
            anyhow::ensure!(!messages.is_empty(), "no message given");
            let mut failed = 0;
            for raw in messages {
                match operate::publish(
                    &log,
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
            data_dir,
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            for topic in &topics {
                anyhow::ensure!(
                    contracts.topics.get(topic).is_some(),
                    "topic `{topic}` is not in topics.toml"
                );
            }
            let log = open_log(&data_dir, &contracts).await?;
            let options = TailOptions {
                topics,
                from_beginning,
                follow,
                format,
                max_records: max,
            };
            let mut stdout = std::io::stdout();
            operate::tail(&log, &options, &mut stdout, shutdown_signal()).await?;
            Ok(())
        }
        Command::Groups {
            command:
                GroupsCommand::Reset {
                    group,
                    topic,
                    partition,
                    to,
                    data_dir,
                },
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            let log = open_log(&data_dir, &contracts).await?;
            log.reset_offsets(&group, &topic, partition, to).await?;
            println!("group {group} on {topic}: offsets reset to {to:?}");
            Ok(())
        }
        Command::Topics {
            command: TopicsCommand::List { data_dir },
        } => {
            campusg_runtime::telemetry::init("warn");
            let contracts = Contracts::builtin();
            let log = open_log(&data_dir, &contracts).await?;
            println!(
                "{:<22} {:>10} {:>10}  message types",
                "topic", "partitions", "records"
            );
            for (name, partitions, watermarks) in log.describe().await? {
                let types = contracts
                    .topics
                    .get(&name)
                    .map(|t| t.messages.join(", "))
                    .unwrap_or_default();
                println!(
                    "{name:<22} {partitions:>10} {:>10}  {types}",
                    watermarks.iter().sum::<i64>()
                );
            }
            Ok(())
        }
    }
}
