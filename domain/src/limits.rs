//! Every bound an input must keep, declared once.
//!
//! The HTTP API, the domain's parsers and the message schemas in `schemas/` all
//! hold these numbers, so that a request and a hand-published record are refused
//! at the same size. The schemas are JSON files an operator reads, so they repeat
//! the numbers; `runtime`'s schema tests check that they agree with these.
//!
//! The bounds keep the work of one input small: no request, record or stored
//! event can grow past the broker's message size (1 MiB by default), and no
//! amount or time can overflow the arithmetic that follows.

use crate::money::Cents;

/// The largest HTTP request body, in bytes; a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most food items one order may have.
pub const MAX_ITEMS_PER_ORDER: usize = 50;

/// The most of one item an order may ask for.
pub const MAX_ITEM_QUANTITY: i64 = 100;

/// The longest name a person gives: a food item, a location, a user's name.
pub const MAX_NAME_CHARS: usize = 200;

/// The longest free text a person gives: a reason, a notification's message.
pub const MAX_TEXT_CHARS: usize = 1000;

/// The longest decimal amount as written (`"12.99"`, `"1.5e1"`), in characters.
pub const MAX_AMOUNT_CHARS: usize = 32;

/// The largest order total: food and delivery together.
pub const MAX_ORDER_TOTAL: Cents = Cents(1_000_000);

/// The longest a timer may run, in seconds: 30 days.
pub const MAX_TIMER_DELAY_SECONDS: i64 = 30 * 24 * 60 * 60;

/// The deepest a JSON value kept as it is given (a timer's payload) may nest.
/// It is stored inside an event, two levels deeper than in its request, and
/// serde_json reads at most 128 levels back.
pub const MAX_JSON_DEPTH: usize = 32;

/// How deeply `value` nests: 1 for a scalar, one more for each array or
/// object around it. Recursion is bounded by what the parser took.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let inner = match value {
        serde_json::Value::Array(items) => items.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => fields.values().map(json_depth).max().unwrap_or(0),
        _ => return 1,
    };
    inner + 1
}

/// The highest page number a list answers.
pub const MAX_PAGE: i64 = 10_000;

/// The longest duration a query may name (`stuck_for`), in seconds: a year.
pub const MAX_QUERY_DURATION_SECONDS: i64 = 365 * 24 * 60 * 60;

/// Counts `text` in characters (not bytes), as JSON Schema's `maxLength` does.
pub fn within(text: &str, max_chars: usize) -> bool {
    text.chars().nth(max_chars).is_none()
}

/// `text` cut to its first `max_chars` characters, with `…` where it was cut:
/// for error messages that quote what they refuse.
pub fn shortened(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_counted_in_characters_not_bytes() {
        assert!(within("ééé", 3));
        assert!(!within("éééé", 3));
        assert_eq!(shortened("éééé", 3), "ééé…");
        assert_eq!(shortened("abc", 3), "abc");
    }

    #[rstest::rstest]
    #[case::a_scalar(serde_json::json!("x"), 1)]
    #[case::an_empty_object(serde_json::json!({}), 1)]
    #[case::an_object_of_scalars(serde_json::json!({"a": 1, "b": [true]}), 3)]
    #[case::the_deepest_branch_counts(serde_json::json!([1, [2, [3]], {"a": {}}]), 4)]
    fn a_json_value_s_depth_counts_every_array_and_object_around_its_deepest_scalar(
        #[case] value: serde_json::Value,
        #[case] depth: usize,
    ) {
        assert_eq!(json_depth(&value), depth);
    }
}
