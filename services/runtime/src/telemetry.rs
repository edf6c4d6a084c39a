//! Tracing set-up, once per process. `RUST_LOG` overrides the default filter.

use tracing_subscriber::EnvFilter;

/// Installs a human-readable subscriber writing to stderr. Safe to call more
/// than once (tests do); only the first call installs.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
