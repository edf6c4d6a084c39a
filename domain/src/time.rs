//! Times as the stores sort them.

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` in a fixed-width text form (microseconds, `Z`), so that a store orders
/// times correctly by comparing text. RFC 3339 as chrono writes it by default
/// drops trailing zero fractions, and then `12:00:00Z` sorts after `12:00:00.5Z`.
pub fn sort_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn sort_keys_sort_as_the_times_do() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let earlier = sort_key(at);
        let later = sort_key(at + Duration::milliseconds(500));
        assert!(earlier < later, "{earlier} < {later}");
    }
}
