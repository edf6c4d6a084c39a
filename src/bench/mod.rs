//! `campusg bench`: measures the running system from the outside, through the
//! same entry points its users have.
//!
//! The system under test is a `campusg up` child process ([`system`]), so that
//! its memory is its own and the load generator's work does not hide in it.
//! Orders go in over HTTP ([`client`]); a saga counts as finished when its
//! `saga.*` event is on the `saga_events` topic ([`completions`]), and its time
//! is the `at` the saga recorded, so how quickly the bench notices changes no
//! figure. After the load the system is stopped, every aggregate is replayed
//! from its events ([`replay`]), and the same machine's floor is measured: the
//! bus's raw produce-and-consume rate and the event store's raw append rate
//! ([`floor`]), so each figure can be read as a fraction of what is possible.

mod client;
mod compare;
mod completions;
mod floor;
mod progress;
mod replay;
mod report;
mod system;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use tokio::task::JoinSet;

use crate::backends::connect_bus;
use crate::settings::Backends;
use campusg_runtime::topics::TopicCatalog;

use client::{Client, Party};
use completions::Completions;
use progress::Phase;
pub use report::Report;
use report::{Floor, Latency, Lifecycle, Saturation, ShareOfFloor};
use system::SystemUnderTest;

#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Orders placed for the saturation run.
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,

    /// Concurrent clients for the saturation and lifecycle runs; each sends its
    /// next request as soon as the previous one is answered.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,

    /// The offered rate of the latency run, in orders per second: requests are
    /// sent on this schedule whatever the answers. Half the saturation rate when
    /// left out.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Orders in the latency run; ten seconds at the offered rate when left out.
    #[arg(long)]
    pub latency_orders: Option<usize>,

    /// Orders taken through the whole lifecycle (create, accept, every delivery
    /// stage, complete); a tenth of --orders when left out.
    #[arg(long)]
    pub lifecycle_orders: Option<usize>,

    /// Records produced and consumed, and events appended, to measure the floor.
    #[arg(long, default_value_t = 20_000)]
    pub floor_records: usize,

    /// Run the system on Kafka (host:port); the embedded log when left out.
    #[arg(long = "kafka", requires = "database_url")]
    pub kafka: Option<String>,

    /// The system's Kafka fetch wait (`up --kafka-fetch-wait-ms`), in milliseconds.
    #[arg(long, env = "KAFKA_FETCH_WAIT_MS", default_value_t = 50)]
    pub kafka_fetch_wait_ms: u32,

    /// PostgreSQL for the event stores when on Kafka; the bench uses schemas of
    /// its own and drops them afterwards.
    #[arg(long, requires = "kafka")]
    pub database_url: Option<String>,

    /// Where the system keeps its data; a temporary directory, removed
    /// afterwards, when left out. A directory named here is never removed.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// The PostgreSQL schemas' prefix; a fresh one when left out.
    #[arg(long)]
    pub schema_prefix: Option<String>,

    /// Keep the PostgreSQL schemas after the run, to inspect them with
    /// `campusg sagas`, `trace` or `replay`.
    #[arg(long)]
    pub keep_data: bool,

    /// How long without a single saga finishing before the bench gives up, in seconds.
    #[arg(long, default_value_t = 60)]
    pub patience_secs: u64,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// A report saved before (`--json`): each figure is printed beside it, as
    /// a ratio, so a change shows what it moved.
    #[arg(long, value_name = "BASELINE.json")]
    pub compare: Option<PathBuf>,
}

/// Runs every measurement and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // Removed when dropped, and left empty when --data-dir names another.
    let temporary = tempfile::Builder::new().prefix("campusg-bench-").tempdir()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| temporary.path().to_path_buf());
    let mut backends = Backends::embedded(data_dir);
    backends.kafka = args.kafka.clone();
    backends.kafka_fetch_wait_ms = args.kafka_fetch_wait_ms;
    backends.database_url = args.database_url.clone();
    backends.schema_prefix = args
        .schema_prefix
        .clone()
        .unwrap_or_else(|| format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..10]));
    // Read before the run, so that a bad path costs nothing.
    let baseline = match &args.compare {
        Some(path) => Some(compare::read_baseline(path)?),
        None => None,
    };
    let outcome = measure(&args, &backends).await;
    if !args.keep_data {
        system::drop_schemas(&backends).await;
    }
    let report = outcome?;
    let now = serde_json::to_value(&report)?;
    let comparison = baseline.as_ref().map(|baseline| compare::figures(baseline, &now));
    if args.json {
        let mut out = now;
        if let Some(comparison) = &comparison {
            out["compared_with_baseline"] = serde_json::to_value(comparison)?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", report.table());
        if let Some(comparison) = &comparison {
            print!("{}", compare::table(comparison));
        }
    }
    Ok(())
}

async fn measure(args: &BenchArgs, backends: &Backends) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.orders > 0 && args.clients > 0,
        "--orders and --clients must be at least 1"
    );
    let patience = Duration::from_secs(args.patience_secs.max(1));
    let mut system = SystemUnderTest::start(backends).await?;
    let catalog = TopicCatalog::builtin();
    let bus = connect_bus(backends, &catalog).await?;
    let completions = Completions::follow(bus.clone()).await?;
    let key = Arc::new(crate::identity::LocalKey::load_or_create(&backends.data_dir)?);
    let client = Client::new(system.base_url(), key);
    let parties = client.sign_up(args.clients).await?;

    let records_before = floor::records_held(bus.as_ref()).await?;
    let (mut saturation, last_order) = saturation(args, &client, &parties, &completions, patience).await?;
    let behind_secs = settle(&client, &last_order, patience).await?;
    saturation = saturation.caught_up_after(behind_secs);
    // What the run caused is counted until the observers are done with it too.
    let caught_up = Utc::now();
    saturation.records = (floor::records_held(bus.as_ref()).await? - records_before).max(0) as u64;
    let rate = args.rate.unwrap_or(saturation.sagas_per_sec / 2.0).max(1.0);
    let latency_orders = args.latency_orders.unwrap_or((rate * 10.0).ceil() as usize).max(1);
    let (latency, last_order) = latency(rate, latency_orders, &client, &parties, &completions, patience).await?;
    settle(&client, &last_order, patience).await?;
    let lifecycle_orders = args.lifecycle_orders.unwrap_or(args.orders / 10).max(1);
    let lifecycle = lifecycle(lifecycle_orders, &client, &parties, &completions, patience).await?;
    let peak_rss_mib = system.peak_rss_mib()?;
    let malloc_arena_max = system.malloc_arena_max.clone();
    completions.stop().await;
    system.stop().await;

    let replay = replay::every_aggregate(backends, (saturation.started, caught_up)).await?;
    let message_bytes = floor::typical_message_bytes(bus.as_ref(), &catalog).await?;
    let floor = Floor {
        message_bytes,
        bus_records_per_sec: floor::bus(bus.clone(), message_bytes, args.floor_records).await?,
        store_appends_per_sec: floor::store(backends, args.clients, args.floor_records, replay.mean_event_bytes)
            .await?,
    };
    let seconds = seconds_between(saturation.started, caught_up);
    let share = ShareOfFloor {
        messages_per_saga: saturation.records as f64 / saturation.orders as f64,
        bus_records_per_sec: saturation.records as f64 / seconds,
        of_bus_floor: saturation.records as f64 / seconds / floor.bus_records_per_sec,
        events_per_saga: replay.events_in_saturation as f64 / saturation.orders as f64,
        store_appends_per_sec: replay.events_in_saturation as f64 / seconds,
        of_store_floor: replay.events_in_saturation as f64 / seconds / floor.store_appends_per_sec,
    };
    Ok(Report {
        backend: if backends.kafka.is_some() {
            "kafka+postgres"
        } else {
            "embedded"
        },
        version: env!("CARGO_PKG_VERSION"),
        measured_at: Utc::now(),
        clients: args.clients,
        saturation,
        latency,
        lifecycle,
        replay: replay.rate,
        peak_rss_mib,
        malloc_arena_max,
        floor,
        share,
    })
}

/// N orders from M clients as fast as they are taken; the rate is the orders
/// over the time from the first request to the last saga's completion.
async fn saturation(
    args: &BenchArgs,
    client: &Client,
    parties: &[Party],
    completions: &Completions,
    patience: Duration,
) -> anyhow::Result<(Saturation, String)> {
    let phase = Phase::start("saturation", args.orders);
    let started = Utc::now();
    let placed = closed_loop(parties, args.orders, {
        let client = client.clone();
        move |party: Party| {
            let client = client.clone();
            async move {
                let order = client.place_order(&party.customer).await?;
                Ok((order.saga_id, order.order_id))
            }
        }
    })
    .await?;
    let order_of: HashMap<String, String> = placed.into_iter().collect();
    let sagas: Vec<String> = order_of.keys().cloned().collect();
    let finished = completions.wait_all(&sagas, &phase, patience).await?;
    phase.finish();
    let last_finished = finished.iter().max_by_key(|f| f.at).context("no saga finished")?;
    let last = last_finished.at;
    let seconds = seconds_between(started, last);
    let saturation = Saturation {
        orders: sagas.len(),
        seconds,
        sagas_per_sec: sagas.len() as f64 / seconds,
        records: 0,
        started,
        finished: last,
        observers_behind_secs: 0.0,
        whole_system_per_sec: 0.0,
    };
    Ok((saturation, order_of[&last_finished.saga_id].clone()))
}

/// Orders sent on a fixed schedule (open loop); each saga's latency runs from
/// when its request was due to when the saga completed, so a request that had
/// to wait for a slow system counts its wait.
async fn latency(
    rate: f64,
    orders: usize,
    client: &Client,
    parties: &[Party],
    completions: &Completions,
    patience: Duration,
) -> anyhow::Result<(Latency, String)> {
    let phase = Phase::start("latency", orders);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let origin = Instant::now();
    let origin_wall = Utc::now();
    let mut requests = JoinSet::new();
    for i in 0..orders {
        let due = origin + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let due_wall = origin_wall + chrono::Duration::from_std(due - origin)?;
        let (client, customer) = (client.clone(), parties[i % parties.len()].customer.clone());
        requests.spawn(async move { anyhow::Ok((due_wall, client.place_order(&customer).await?)) });
    }
    let mut due = HashMap::with_capacity(orders);
    let mut order_of = HashMap::with_capacity(orders);
    while let Some(joined) = requests.join_next().await {
        let (at, placed) = joined.context("a request panicked")??;
        due.insert(placed.saga_id.clone(), at);
        order_of.insert(placed.saga_id, placed.order_id);
    }
    let sagas: Vec<String> = due.keys().cloned().collect();
    let finished = completions.wait_all(&sagas, &phase, patience).await?;
    phase.finish();
    let mut millis: Vec<f64> = finished
        .iter()
        .map(|f| (f.at - due[&f.saga_id]).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0)
        .collect();
    millis.sort_by(f64::total_cmp);
    let last_finished = finished.iter().max_by_key(|f| f.at).context("no saga finished")?;
    let latency = Latency {
        offered_per_sec: rate,
        orders,
        p50_ms: percentile(&millis, 50.0),
        p90_ms: percentile(&millis, 90.0),
        p99_ms: percentile(&millis, 99.0),
        max_ms: millis.last().copied().unwrap_or(0.0),
    };
    Ok((latency, order_of[&last_finished.saga_id].clone()))
}

/// Waits until the observers (the trace index, the notifications) have caught
/// up with the last order of a phase, so that the next phase does not pay for
/// the backlog of this one. Returns how long that took.
async fn settle(client: &Client, last_order: &str, patience: Duration) -> anyhow::Result<f64> {
    let phase = Phase::step("settle");
    let started = Instant::now();
    // The observers may be far behind after a saturation run: more patience.
    let patience = patience * 10;
    let deadline = tokio::time::Instant::now() + patience;
    while !client.observed(last_order).await? {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the trace index and the notifications have not caught up with order {last_order} after {}s",
            patience.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phase.finish();
    Ok(started.elapsed().as_secs_f64())
}

/// Each client takes orders through their whole life, one after another:
/// place, wait for the order to be listed, accept, report every delivery stage,
/// wait for the complete-order saga.
async fn lifecycle(
    orders: usize,
    client: &Client,
    parties: &[Party],
    completions: &Completions,
    patience: Duration,
) -> anyhow::Result<Lifecycle> {
    let phase = Phase::start("lifecycle", orders);
    let started = Instant::now();
    closed_loop(parties, orders, {
        let (client, completions, bar) = (client.clone(), completions.clone(), phase.clone());
        move |party: Party| {
            let (client, completions, bar) = (client.clone(), completions.clone(), bar.clone());
            async move {
                let placed = client.place_order(&party.customer).await?;
                completions.wait_completed(&placed.saga_id, patience).await?;
                client.accept(&placed.order_id, &party.runner).await?;
                let saga_id = client.deliver(&placed.order_id, &party.runner).await?;
                completions.wait_completed(&saga_id, patience).await?;
                bar.advance(1);
                Ok(())
            }
        }
    })
    .await?;
    phase.finish();
    let seconds = started.elapsed().as_secs_f64();
    Ok(Lifecycle {
        orders,
        seconds,
        per_sec: orders as f64 / seconds,
    })
}

/// Does `total` items of `work` with one worker per entry of `workers`, each
/// starting its next item as soon as its last is done (a closed loop), and
/// returns every item's result. The first error stops the run.
async fn closed_loop<P, T, F, Fut>(workers: &[P], total: usize, work: F) -> anyhow::Result<Vec<T>>
where
    P: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(P) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for worker in workers {
        let (worker, next, work) = (worker.clone(), next.clone(), work.clone());
        tasks.spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                done.push(work(worker.clone()).await?);
            }
            anyhow::Ok(done)
        });
    }
    let mut results = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        results.extend(joined.context("a worker panicked")??);
    }
    Ok(results)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_microseconds().unwrap_or(0) as f64 / 1e6).max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        assert_eq!(percentile(&[], 90.0), 0.0);
    }
}
