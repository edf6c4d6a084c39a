//! Typed settings. Every value comes from a flag or an environment variable
//! (`clap` reads both); the defaults are for running embedded on a laptop.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::identity::DEFAULT_AUDIENCE;

use campusg_domain::limits::MAX_TIMER_DELAY_SECONDS;
use campusg_domain::money::{Cents, DecimalAmount, DEFAULT_CURRENCY};
use campusg_domain::order::OrderRules;

/// The parts of the system one process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    /// The HTTP API (it also relays every service's outbox it writes to).
    Api,
    /// The order service: consumes `order_commands`.
    Order,
    /// The user service: consumes `user_commands`.
    User,
    /// The payment service: consumes `payment_commands`, talks to the card processor.
    Payment,
    /// The escrow service: consumes `escrow_commands`.
    Escrow,
    /// The saga orchestrator: consumes the event topics, runs the sagas.
    Sagas,
    /// The timer service: consumes `timer_commands`, fires due timers.
    Timer,
    /// The notification service: turns the event topics into notifications.
    Notification,
    /// The trace index: files every record under its order and saga, for `trace`.
    Trace,
    /// The ledger: posts every money event as balanced entries.
    Ledger,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Api,
        Role::Order,
        Role::User,
        Role::Payment,
        Role::Escrow,
        Role::Sagas,
        Role::Timer,
        Role::Notification,
        Role::Trace,
        Role::Ledger,
    ];
}

/// Where the messages and the event stores live: embedded under a data directory
/// unless Kafka or PostgreSQL is named.
#[derive(Clone, Debug, Args)]
pub struct Backends {
    /// Where the embedded log and the services' SQLite event stores live.
    #[arg(long, env = "CAMPUSG_DATA_DIR", default_value = "./campusg-data")]
    pub data_dir: PathBuf,

    /// Kafka bootstrap servers (host:port,...); the embedded log when left out.
    #[arg(long = "kafka", env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka: Option<String>,

    /// A stable name for this replica (Kafka static group membership): a replica
    /// that restarts under the same name takes its partitions back at once,
    /// instead of waiting for the broker to expire its old session.
    #[arg(long, env = "CAMPUSG_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// The replication factor of topics `campusg` creates on Kafka.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,

    /// How long a Kafka fetch waits at most when there is nothing to read, in
    /// milliseconds. Lower gives idle sagas lower latency and the broker more
    /// fetches (see docs/benchmarks.md).
    #[arg(long, env = "KAFKA_FETCH_WAIT_MS", default_value_t = 50)]
    pub kafka_fetch_wait_ms: u32,

    /// PostgreSQL for the event stores (postgres://...); SQLite files when left out.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Each service keeps its tables in the PostgreSQL schema `<prefix>_<service>`.
    #[arg(long, env = "CAMPUSG_SCHEMA_PREFIX", default_value = "campusg")]
    pub schema_prefix: String,

    /// The most connections this process holds to PostgreSQL, shared by every
    /// store it opens [default: 4 for one service's process or a command,
    /// 10 for the API's or one running several services, 20 for `up`]. A
    /// deployment needs the sum over its processes below the server's
    /// `max_connections`.
    #[arg(long, env = "DATABASE_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_connections: Option<u32>,

    /// Fault injection for the chaos suite: every consumer gets each record
    /// twice, as after a rebalance that lost a commit.
    #[arg(long, env = "CAMPUSG_DELIVER_TWICE", hide = true)]
    pub deliver_twice: bool,
}

impl Backends {
    pub fn embedded(data_dir: PathBuf) -> Backends {
        Backends {
            data_dir,
            kafka: None,
            instance_id: None,
            kafka_replication_factor: 1,
            kafka_fetch_wait_ms: 50,
            database_url: None,
            schema_prefix: "campusg".to_string(),
            database_connections: None,
            deliver_twice: false,
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.db")
    }

    pub fn store_path(&self, service: &str) -> PathBuf {
        self.data_dir.join(format!("{service}.db"))
    }

    pub fn schema_of(&self, service: &str) -> String {
        format!("{}_{service}", self.schema_prefix)
    }

    /// The connections a command or one service's process holds to
    /// PostgreSQL at most: a service's consumer, relay and janitor, and a
    /// request or two.
    pub fn database_connections(&self) -> u32 {
        self.database_connections.unwrap_or(4)
    }
}

/// The largest `--clock-skew-secs`, either way: a year.
const MAX_CLOCK_SKEW_SECS: i64 = 365 * 24 * 3600;

// The defaults the flags and `Settings::embedded` share.
const DEFAULT_JWT_LEEWAY_SECS: u64 = 30;
const DEFAULT_ROLE_CLAIM: &str = "role";
const DEFAULT_RATE_LIMIT_PER_SUBJECT: u32 = 3000;
const DEFAULT_RATE_LIMIT_PER_ADDRESS: u32 = 12000;
const DEFAULT_DEDUPE_WINDOW_HOURS: u64 = 14 * 24;

/// Who may call the HTTP API, and how often (SPEC section 11).
#[derive(Clone, Debug, Args)]
pub struct Guard {
    /// An OpenID Connect issuer (`https://...`) whose published keys (JWKS)
    /// sign the API's tokens. When left out, tokens are signed with the local
    /// key in the data directory, which `campusg token` mints with.
    #[arg(long, env = "CAMPUSG_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The console's client id at the OIDC issuer: with it, the console's
    /// sign-in page offers to sign in at the issuer (authorization code flow
    /// with PKCE); its redirect URI is `<console url>/console/oidc/callback`.
    #[arg(long, env = "CAMPUSG_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,

    /// The console's client secret at the issuer, for a confidential client.
    #[arg(
        long,
        env = "CAMPUSG_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        requires = "oidc_client_id"
    )]
    pub oidc_client_secret: Option<String>,

    /// The console's address as browsers reach it (`https://ops.example`), for
    /// the issuer's redirect; the request's own host when left out.
    #[arg(long, env = "CAMPUSG_CONSOLE_URL")]
    pub console_url: Option<String>,

    /// The audience (`aud`) every token must name.
    #[arg(long, env = "CAMPUSG_JWT_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    pub jwt_audience: String,

    /// How far the token issuer's clock may be off, in seconds (`exp`, `nbf`).
    #[arg(long, env = "CAMPUSG_JWT_LEEWAY_SECS", default_value_t = DEFAULT_JWT_LEEWAY_SECS,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub jwt_leeway_secs: u64,

    /// The claim that holds the caller's role (`customer`, `runner` or `operator`).
    #[arg(long, env = "CAMPUSG_JWT_ROLE_CLAIM", default_value = DEFAULT_ROLE_CLAIM)]
    pub jwt_role_claim: String,

    /// Requests a minute one subject may make (and its largest burst); 0: no limit.
    #[arg(long, env = "CAMPUSG_RATE_LIMIT_PER_SUBJECT", default_value_t = DEFAULT_RATE_LIMIT_PER_SUBJECT)]
    pub rate_limit_per_subject: u32,

    /// Requests a minute one client address may make (and its largest burst); 0: no limit.
    #[arg(long, env = "CAMPUSG_RATE_LIMIT_PER_ADDRESS", default_value_t = DEFAULT_RATE_LIMIT_PER_ADDRESS)]
    pub rate_limit_per_address: u32,

    /// Proxies in front of the API (their addresses) whose `X-Forwarded-For`
    /// names the client, for the per-address limit.
    #[arg(long = "trusted-proxy", env = "CAMPUSG_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Web origins (`https://app.example`) whose pages may call the API from a
    /// browser; none when left out.
    #[arg(long = "cors-origin", env = "CAMPUSG_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard {
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            console_url: None,
            jwt_audience: DEFAULT_AUDIENCE.to_string(),
            jwt_leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            jwt_role_claim: DEFAULT_ROLE_CLAIM.to_string(),
            rate_limit_per_subject: DEFAULT_RATE_LIMIT_PER_SUBJECT,
            rate_limit_per_address: DEFAULT_RATE_LIMIT_PER_ADDRESS,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct Settings {
    #[command(flatten)]
    pub backends: Backends,

    #[command(flatten)]
    pub guard: Guard,

    #[arg(long, env = "CAMPUSG_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// The HTTP port; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// For a process that does not serve the API (`serve order`, ...): serve
    /// its own `GET /health` and `GET /metrics` (operators) on this port; 0
    /// picks a free one. None when left out.
    #[arg(long, env = "CAMPUSG_ADMIN_PORT")]
    pub admin_port: Option<u16>,

    /// Which parts to run (all, unless listed).
    #[arg(long = "role", value_enum, value_delimiter = ',', env = "CAMPUSG_ROLES")]
    pub roles: Vec<Role>,

    /// The highest delivery fee a customer may offer, in major units.
    #[arg(long, env = "CAMPUSG_MAX_DELIVERY_FEE", default_value = "20.00", value_parser = parse_amount)]
    pub max_delivery_fee: Cents,

    /// The most escrow holds for one order, in major units; a larger total is refused.
    #[arg(long, env = "CAMPUSG_ESCROW_HOLD_LIMIT", default_value = "500.00", value_parser = parse_amount)]
    pub escrow_hold_limit: Cents,

    #[arg(long, env = "CAMPUSG_CURRENCY", default_value = DEFAULT_CURRENCY)]
    pub currency: String,

    /// How long runners have to accept an order before it is cancelled and
    /// refunded, in seconds (at most a timer's longest delay, 30 days).
    #[arg(
        long = "acceptance-window",
        env = "CAMPUSG_ACCEPTANCE_WINDOW_SECS",
        default_value_t = 30 * 60,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMER_DELAY_SECONDS as u64)
    )]
    pub acceptance_window_secs: u64,

    /// How often the timer worker looks for due timers, in milliseconds.
    #[arg(long = "timer-poll-ms", env = "CAMPUSG_TIMER_POLL_MS", default_value_t = 1000)]
    pub timer_poll_ms: u64,

    /// How long a consumer retries a record that fails for now (the store or
    /// the broker away) before the process exits non-zero, in seconds.
    #[arg(
        long = "transient-retry-secs",
        env = "CAMPUSG_TRANSIENT_RETRY_SECS",
        default_value_t = 300
    )]
    pub transient_retry_secs: u64,

    /// How long each service remembers the messages it handled, to recognise
    /// a duplicate, in hours: longer than a record can stay on a topic (7 days'
    /// retention, plus the segment Kafka deletes it with) and than a group's
    /// committed offsets live on Kafka (7 days by default), so at least 8 days.
    #[arg(
        long = "dedupe-window-hours",
        env = "CAMPUSG_DEDUPE_WINDOW_HOURS",
        default_value_t = DEFAULT_DEDUPE_WINDOW_HOURS,
        value_parser = clap::value_parser!(u64).range(8 * 24..=24 * 365)
    )]
    pub dedupe_window_hours: u64,

    /// Fault injection for the chaos suite: this process's clock reads the real
    /// time plus this many seconds, as on a host whose clock jumped.
    #[arg(
        long,
        env = "CAMPUSG_CLOCK_SKEW_SECS",
        default_value_t = 0,
        hide = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(i64).range(-MAX_CLOCK_SKEW_SECS..=MAX_CLOCK_SKEW_SECS)
    )]
    pub clock_skew_secs: i64,
}

fn parse_amount(text: &str) -> Result<Cents, String> {
    let cents = DecimalAmount::parse(text).to_cents().map_err(|e| e.to_string())?;
    if cents.is_negative() {
        return Err(format!("{text} is negative"));
    }
    Ok(cents)
}

impl Settings {
    /// Settings for running everything embedded in `data_dir` on a free port.
    pub fn embedded(data_dir: PathBuf) -> Settings {
        Settings {
            backends: Backends::embedded(data_dir),
            guard: Guard::default(),
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            admin_port: None,
            roles: Vec::new(),
            max_delivery_fee: Cents(2000),
            escrow_hold_limit: Cents(50_000),
            currency: DEFAULT_CURRENCY.to_string(),
            acceptance_window_secs: 30 * 60,
            timer_poll_ms: 100,
            transient_retry_secs: 300,
            dedupe_window_hours: DEFAULT_DEDUPE_WINDOW_HOURS,
            clock_skew_secs: 0,
        }
    }

    pub fn acceptance_window(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.acceptance_window_secs.min(MAX_TIMER_DELAY_SECONDS as u64) as i64)
    }

    pub fn timer_poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timer_poll_ms.max(1))
    }

    pub fn dedupe_window(&self) -> chrono::Duration {
        chrono::Duration::hours(self.dedupe_window_hours.min(24 * 365) as i64)
    }

    pub fn runs(&self, role: Role) -> bool {
        self.roles.is_empty() || self.roles.contains(&role)
    }

    /// The connections this process holds to PostgreSQL at most: more where
    /// it opens several services' stores (the API opens every one), but not a
    /// pool per store.
    pub fn database_connections(&self) -> u32 {
        let several = self.roles.iter().any(|role| *role != self.roles[0]);
        match self.backends.database_connections {
            Some(connections) => connections,
            // The whole system in one process: every consumer, relay and the
            // API's requests (10 costs it a tenth of its rate on Kafka).
            None if self.roles.is_empty() => 20,
            None if self.runs(Role::Api) || several => 10,
            None => self.backends.database_connections(),
        }
    }

    /// What this process runs, as its PostgreSQL sessions are named: its
    /// instance id, its roles, or `up` for all of them.
    pub fn process_name(&self) -> String {
        if let Some(instance) = &self.backends.instance_id {
            return instance.clone();
        }
        if self.roles.is_empty() {
            return "up".to_string();
        }
        let names: Vec<String> = self
            .roles
            .iter()
            .filter_map(|role| role.to_possible_value().map(|value| value.get_name().to_string()))
            .collect();
        names.join("+")
    }

    pub fn order_rules(&self) -> OrderRules {
        OrderRules {
            max_delivery_fee: self.max_delivery_fee,
            currency: self.currency.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::everything_in_one_process(&[], None, 20)]
    #[case::the_api(&[Role::Api], None, 10)]
    #[case::several_services(&[Role::Order, Role::Payment], None, 10)]
    #[case::one_service(&[Role::Payment], None, 4)]
    #[case::one_service_named_twice(&[Role::Payment, Role::Payment], None, 4)]
    #[case::as_set(&[], Some(3), 3)]
    fn a_process_that_opens_more_stores_gets_more_database_connections(
        #[case] roles: &[Role],
        #[case] set: Option<u32>,
        #[case] expected: u32,
    ) {
        let mut settings = Settings::embedded(PathBuf::from("."));
        settings.roles = roles.to_vec();
        settings.backends.database_connections = set;
        assert_eq!(settings.database_connections(), expected);
    }

    #[rstest]
    #[case(&[], None, "up")]
    #[case(&[Role::Order, Role::Payment], None, "order+payment")]
    #[case(&[Role::Payment], Some("payment-2"), "payment-2")]
    fn a_process_is_named_by_its_instance_or_its_roles(
        #[case] roles: &[Role],
        #[case] instance: Option<&str>,
        #[case] expected: &str,
    ) {
        let mut settings = Settings::embedded(PathBuf::from("."));
        settings.roles = roles.to_vec();
        settings.backends.instance_id = instance.map(str::to_string);
        assert_eq!(settings.process_name(), expected);
    }
}
