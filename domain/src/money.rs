//! Money in integer minor units.
//!
//! Floats never hold an amount. The HTTP API and the seeds' hand-written messages
//! carry decimal numbers in major units (`"price": 12.99`); [`Cents::parse_decimal`]
//! turns their text into cents exactly, and refuses more than two decimals rather
//! than rounding.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits;

/// The currency every amount is in unless a message says otherwise.
pub const DEFAULT_CURRENCY: &str = "SGD";

/// An amount in cents (minor units). Negative values exist only as intermediate
/// results; every amount the domain accepts from outside is checked to be at least zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("`{0}` is not a decimal amount")]
    NotANumber(String),
    #[error("`{0}` has more than two decimals")]
    TooManyDecimals(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
    #[error("an amount is at most {0} characters long")]
    TooLong(usize),
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Parses a decimal amount in major units (`"12.99"`, `"12"`, `"-3.5"`) into
    /// cents, exactly. Scientific notation is accepted when it denotes at most two
    /// decimals (`"1.5e1"`).
    ///
    /// The work is bounded whatever the input: text longer than
    /// [`limits::MAX_AMOUNT_CHARS`] is refused before it is read, and an exponent
    /// only ever scales a non-zero amount by at most 10^18.
    pub fn parse_decimal(text: &str) -> Result<Cents, AmountError> {
        let trimmed = text.trim();
        let not_a_number = || AmountError::NotANumber(text.to_string());
        if !limits::within(trimmed, limits::MAX_AMOUNT_CHARS) {
            return Err(AmountError::TooLong(limits::MAX_AMOUNT_CHARS));
        }
        let (mantissa, exponent) = match trimmed.find(['e', 'E']) {
            Some(idx) => {
                let exponent: i32 = trimmed[idx + 1..].parse().map_err(|_| not_a_number())?;
                (&trimmed[..idx], exponent)
            }
            None => (trimmed, 0),
        };
        let (negative, unsigned) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(not_a_number());
        }
        if !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
            return Err(not_a_number());
        }
        // value = digits x 10^(exponent - fraction.len()), so in cents the digits
        // are scaled by 10^shift; a negative shift may only drop trailing zeros.
        let digits = format!("{whole}{fraction}");
        let shift = exponent as i64 - fraction.len() as i64 + 2;
        let too_large = || AmountError::TooLarge(text.to_string());
        let kept_digits = if shift >= 0 {
            digits.as_str()
        } else {
            let cut = digits.len().saturating_sub(shift.unsigned_abs() as usize);
            if digits[cut..].bytes().any(|b| b != b'0') {
                return Err(AmountError::TooManyDecimals(text.to_string()));
            }
            &digits[..cut]
        };
        let mut cents: i64 = 0;
        for digit in kept_digits.bytes() {
            cents = cents
                .checked_mul(10)
                .and_then(|c| c.checked_add((digit - b'0') as i64))
                .ok_or_else(too_large)?;
        }
        if cents != 0 && shift > 0 {
            let scale = u32::try_from(shift)
                .ok()
                .and_then(|shift| 10i64.checked_pow(shift))
                .ok_or_else(too_large)?;
            cents = cents.checked_mul(scale).ok_or_else(too_large)?;
        }
        Ok(Cents(if negative { -cents } else { cents }))
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl fmt::Display for Cents {
    /// Major units with two decimals, the way a receipt shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// A decimal amount in major units as it arrived on the wire, kept as text so that
/// nothing passes through a float before [`Cents::parse_decimal`] reads it. It
/// deserializes from a JSON number or a string and serializes back as a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecimalAmount(String);

impl DecimalAmount {
    /// Keeps `text` as written; [`DecimalAmount::to_cents`] checks it.
    pub fn parse(text: &str) -> DecimalAmount {
        DecimalAmount(text.trim().to_string())
    }

    pub fn from_cents(cents: Cents) -> DecimalAmount {
        DecimalAmount(cents.to_string())
    }

    pub fn to_cents(&self) -> Result<Cents, AmountError> {
        Cents::parse_decimal(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for DecimalAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<serde_json::Number>() {
            Ok(number) => number.serialize(serializer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for DecimalAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            // serde_json prints a float with the shortest text that reads back as the
            // same float, which for any amount a person types is the text they typed.
            serde_json::Value::Number(number) => Ok(DecimalAmount(number.to_string())),
            serde_json::Value::String(text) => Ok(DecimalAmount(text)),
            other => Err(serde::de::Error::custom(format!(
                "expected a decimal amount, found {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("12.99", 1299)]
    #[case("12.9", 1290)]
    #[case("12", 1200)]
    #[case("0.01", 1)]
    #[case("0", 0)]
    #[case("-3.5", -350)]
    #[case("1.5e1", 1500)]
    #[case("1250e-2", 1250)]
    #[case("12.990", 1299)]
    #[case(".5", 50)]
    fn decimal_text_becomes_exact_cents(#[case] text: &str, #[case] cents: i64) {
        assert_eq!(Cents::parse_decimal(text), Ok(Cents(cents)));
    }

    #[rstest]
    #[case("12.999")]
    #[case("0.001")]
    #[case("1e-3")]
    fn more_than_two_decimals_is_refused(#[case] text: &str) {
        assert_eq!(
            Cents::parse_decimal(text),
            Err(AmountError::TooManyDecimals(text.to_string()))
        );
    }

    #[rstest]
    #[case("")]
    #[case("abc")]
    #[case("1.2.3")]
    #[case("-")]
    fn text_that_is_not_a_number_is_refused(#[case] text: &str) {
        assert_eq!(
            Cents::parse_decimal(text),
            Err(AmountError::NotANumber(text.to_string()))
        );
    }

    #[rstest]
    #[case("0e2147483647", Ok(Cents(0)))]
    #[case("0e-2147483648", Ok(Cents(0)))]
    #[case("1e2147483647", Err(AmountError::TooLarge("1e2147483647".into())))]
    #[case("1e17", Err(AmountError::TooLarge("1e17".into())))]
    #[case("1e16", Ok(Cents(1_000_000_000_000_000_000)))]
    #[case("1e-2147483648", Err(AmountError::TooManyDecimals("1e-2147483648".into())))]
    fn a_huge_exponent_is_answered_at_once(#[case] text: &str, #[case] expected: Result<Cents, AmountError>) {
        assert_eq!(Cents::parse_decimal(text), expected);
    }

    #[test]
    fn text_longer_than_an_amount_can_be_is_refused_unread() {
        let text = format!("1{}", "0".repeat(limits::MAX_AMOUNT_CHARS));
        assert_eq!(
            Cents::parse_decimal(&text),
            Err(AmountError::TooLong(limits::MAX_AMOUNT_CHARS))
        );
    }

    #[test]
    fn a_json_float_reaches_cents_without_rounding_error() {
        let amount: DecimalAmount = serde_json::from_str("0.29").unwrap();
        assert_eq!(amount.to_cents(), Ok(Cents(29)));
        let amount: DecimalAmount = serde_json::from_str("1.005").unwrap();
        assert!(amount.to_cents().is_err());
    }

    #[test]
    fn cents_display_as_major_units() {
        assert_eq!(Cents(1299).to_string(), "12.99");
        assert_eq!(Cents(-5).to_string(), "-0.05");
    }
}
