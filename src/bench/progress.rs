//! A progress bar per phase on a terminal; a line at each phase's start and end
//! otherwise, so that a log of the run still shows where it was.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone)]
pub struct Phase {
    name: &'static str,
    bar: ProgressBar,
    started: Instant,
}

impl Phase {
    pub fn start(name: &'static str, total: usize) -> Phase {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>11} [{bar:40}] {pos}/{len} {per_sec:>12} eta {eta}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.set_prefix(name);
            bar
        } else {
            eprintln!("bench: {name}: {total} to go");
            ProgressBar::hidden()
        };
        Phase {
            name,
            bar,
            started: Instant::now(),
        }
    }

    pub fn advance(&self, done: u64) {
        self.bar.inc(done);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if self.bar.is_hidden() {
            eprintln!(
                "bench: {}: done in {:.1}s",
                self.name,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// A step with no count: a line, and the time it took when it ends.
    pub fn step(name: &'static str) -> Phase {
        eprintln!("bench: {name}...");
        Phase {
            name,
            bar: ProgressBar::hidden(),
            started: Instant::now(),
        }
    }
}
