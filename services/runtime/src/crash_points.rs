//! Fault injection: named points between two writes where the chaos suite
//! and the tests make the process die, as a power cut or a SIGKILL would at
//! the worst instant.
//!
//! A SIGKILL from outside lands anywhere, rarely between the two writes that
//! matter: a consumer's store commit and its offset commit, the relay's
//! produce and its outbox deletion. `CAMPUSG_CRASH_POINTS=name=N,...` arms
//! those points: each time one is reached the process aborts with a chance of
//! one in N. Unarmed (always, outside tests) a point costs one atomic load.

use std::sync::OnceLock;

/// After a consumer stored a poll's effects, before it commits the offsets.
pub const AFTER_STORE_COMMIT: &str = "after-store-commit";
/// After the relay produced outbox rows, before it deletes them.
pub const AFTER_PRODUCE: &str = "after-produce";

const KNOWN: [&str; 2] = [AFTER_STORE_COMMIT, AFTER_PRODUCE];

static ARMED: OnceLock<Vec<(&'static str, u64)>> = OnceLock::new();

/// Arms the points `spec` names (`after-store-commit=20,after-produce=5`).
/// Called once at start; an unknown point or a chance that is not a whole
/// number from 1 up is an error, so a typo does not quietly inject nothing.
pub fn arm(spec: &str) -> Result<(), String> {
    let mut armed = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, one_in) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not name=N"))?;
        let point = KNOWN
            .iter()
            .find(|known| **known == name)
            .ok_or_else(|| format!("`{name}` is not a crash point ({})", KNOWN.join(", ")))?;
        let one_in: u64 = one_in
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{one_in}` is not a whole number from 1 up"))?;
        armed.push((*point, one_in));
    }
    ARMED
        .set(armed)
        .map_err(|_| "the crash points are armed already".to_string())
}

/// Aborts the process, by chance, if `point` is armed.
pub fn reached(point: &str) {
    let Some(armed) = ARMED.get() else { return };
    let Some((_, one_in)) = armed.iter().find(|(name, _)| *name == point) else {
        return;
    };
    if uuid::Uuid::new_v4().as_u128().is_multiple_of(u128::from(*one_in)) {
        eprintln!("campusg: crash point `{point}` reached; aborting on purpose (CAMPUSG_CRASH_POINTS)");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_that_does_not_exist_is_refused() {
        assert!(arm("after-lunch=3").unwrap_err().contains("not a crash point"));
        assert!(arm("after-produce=0").unwrap_err().contains("whole number"));
        assert!(arm("after-produce").unwrap_err().contains("name=N"));
    }
}
