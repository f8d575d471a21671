//! Money as integer minor units (cents), never floats. Amounts parse from and
//! print as decimal strings with two places ("1400.00").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in cents. Signed, so that a balance change can be negative;
/// commands that need a positive amount check it themselves.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `[-]digits[.d[d]]`.
    #[error(
        "invalid amount {0:?}: expected a decimal number with at most two decimal places, like 1400.00"
    )]
    Malformed(String),
    /// Too large to hold in cents.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// An amount of `cents` minor units.
    pub const fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    /// The amount in minor units.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// True when strictly greater than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// True when below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// `self + other`, saturating; for folds over recorded facts, which
    /// `handle` already checked with [`Money::checked_add`].
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// `[+|-]digits[.d[d]]`, in one pass over the bytes (amounts are read
    /// with every event that carries one). Malformed text is refused before
    /// an amount too large for cents is.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let (negative, unsigned) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, bytes),
        };
        // The usual shape first: up to 14 whole digits, a point, two digits
        // (it cannot overflow).
        if let [whole @ .., b'.', tens @ b'0'..=b'9', ones @ b'0'..=b'9'] = unsigned
            && (1..=14).contains(&whole.len())
            && whole.iter().all(u8::is_ascii_digit)
        {
            let units = whole
                .iter()
                .fold(0i64, |n, digit| n * 10 + i64::from(digit - b'0'));
            let cents = units * 100 + i64::from(tens - b'0') * 10 + i64::from(ones - b'0');
            return Ok(Money(if negative { -cents } else { cents }));
        }
        // The digits, whole units then cents, as one number: exact while
        // there are at most 16 of them (then times 100 still fits).
        let mut number: i64 = 0;
        let mut rest = unsigned;
        let mut whole_digits = 0;
        while let [byte @ b'0'..=b'9', tail @ ..] = rest {
            number = number.wrapping_mul(10).wrapping_add(i64::from(byte - b'0'));
            whole_digits += 1;
            rest = tail;
        }
        let mut fraction_digits: u32 = 0;
        if let [b'.', tail @ ..] = rest {
            rest = tail;
            while let [byte @ b'0'..=b'9', tail @ ..] = rest {
                number = number.wrapping_mul(10).wrapping_add(i64::from(byte - b'0'));
                fraction_digits += 1;
                rest = tail;
            }
            if fraction_digits == 0 {
                return Err(MoneyError::Malformed(text.to_owned()));
            }
        }
        if whole_digits == 0 || fraction_digits > 2 || !rest.is_empty() {
            return Err(MoneyError::Malformed(text.to_owned()));
        }
        let scale = match fraction_digits {
            0 => 100,
            1 => 10,
            _ => 1,
        };
        let cents = if whole_digits + fraction_digits <= 16 {
            number * scale
        } else {
            // Long amounts again, with every step checked.
            unsigned
                .iter()
                .filter(|b| b.is_ascii_digit())
                .try_fold(0i64, |n, byte| {
                    n.checked_mul(10)?.checked_add(i64::from(byte - b'0'))
                })
                .and_then(|n| n.checked_mul(scale))
                .ok_or_else(|| MoneyError::Overflow(text.to_owned()))?
        };
        Ok(Money(if negative { -cents } else { cents }))
    }
}

impl Money {
    /// The amount as text ("-12.05") written into `buf`, digit by digit:
    /// serializing an amount is on every event's path, and this skips the
    /// formatting machinery.
    fn to_text(self, buf: &mut [u8; 24]) -> &str {
        let mut rest = self.0.unsigned_abs();
        let mut start = buf.len();
        let mut put = |byte: u8| {
            start -= 1;
            buf[start] = byte;
        };
        for _ in 0..2 {
            put(b'0' + (rest % 10) as u8);
            rest /= 10;
        }
        put(b'.');
        loop {
            put(b'0' + (rest % 10) as u8);
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if self.0 < 0 {
            put(b'-');
        }
        // Only ASCII digits, '.' and '-' were written.
        std::str::from_utf8(&buf[start..]).unwrap_or_default()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text(&mut [0; 24]))
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.to_text(&mut [0; 24]))
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(AmountText)
    }
}

/// Reads an amount from the string it is written as, parsing the text
/// where the deserializer has it (no copy into a `String` first). Accepts
/// and refuses what a `String` does, with the same messages.
struct AmountText;

impl serde::de::Visitor<'_> for AmountText {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Money, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Money, E> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.visit_str(text),
            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(bytes), &self)),
        }
    }
}

/// An ISO 4217-style currency code: three uppercase ASCII letters, held
/// inline (no allocation: an aggregate's state that carries one clones
/// without touching the heap).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

/// Why a string is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid currency {0:?}: expected three letters, like USD")]
pub struct CurrencyError(String);

impl Currency {
    /// Validates and upper-cases `code`.
    ///
    /// # Errors
    /// [`CurrencyError`] unless `code` is three ASCII letters.
    pub fn new(code: &str) -> Result<Self, CurrencyError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_alphabetic) => Ok(Self([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(CurrencyError(code.to_owned())),
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a currency code is three ASCII letters")
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self(*b"USD")
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::new(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.as_str().to_owned()
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CurrencyVisitor)
    }
}

/// Reads a currency from any string, borrowed or not, without allocating.
struct CurrencyVisitor;

impl serde::de::Visitor<'_> for CurrencyVisitor {
    type Value = Currency;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a three-letter currency code, like \"USD\"")
    }

    fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<Currency, E> {
        Currency::new(code).map_err(E::custom)
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::new(code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i64, MoneyError> {
        text.parse::<Money>().map(Money::cents)
    }

    #[test]
    fn parses_decimal_strings_into_cents() {
        assert_eq!(parse("1400.00"), Ok(140_000));
        assert_eq!(parse("1400"), Ok(140_000));
        assert_eq!(parse("0.5"), Ok(50));
        assert_eq!(parse("10.05"), Ok(1_005));
        assert_eq!(parse("-50.00"), Ok(-5_000));
        assert_eq!(parse("+7"), Ok(700));
    }

    /// The rule as first written (split at the point, check the digits,
    /// parse each side): what the one-pass parser must agree with.
    fn split_and_parse(text: &str) -> Result<Money, MoneyError> {
        let malformed = || MoneyError::Malformed(text.to_owned());
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
            return Err(malformed());
        }
        if unsigned.ends_with('.') {
            return Err(malformed());
        }
        let overflow = || MoneyError::Overflow(text.to_owned());
        let whole: i64 = whole.parse().map_err(|_| overflow())?;
        let fraction: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| malformed())? * 10,
            _ => fraction.parse().map_err(|_| malformed())?,
        };
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction))
            .ok_or_else(overflow)?;
        Ok(Money(if negative { -cents } else { cents }))
    }

    #[test]
    fn parsing_agrees_with_the_split_and_parse_rule_on_every_short_text() {
        // Given every text of up to five characters over digits, signs,
        // points, a letter and a non-ASCII character
        let alphabet = ['0', '1', '9', '.', '-', '+', 'x', 'é'];
        let mut texts = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(last.iter().cloned());
        }
        // And amounts at the edge of what cents hold
        for edge in [
            "92233720368547758.07",
            "92233720368547758.08",
            "-92233720368547758.07",
            "92233720368547758.1",
            "92233720368547758",
            "922337203685477580",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999.x",
            "0000000000000000000000001.50",
            "9999999999999999",
            "99999999999999999",
            "999999999999999.99",
            "9999999999999999.9",
            "-99999999999999.99",
        ] {
            texts.push(edge.to_owned());
        }
        // Then the one-pass parser reads each exactly as the rule does
        for text in &texts {
            assert_eq!(text.parse::<Money>(), split_and_parse(text), "{text:?}");
        }
    }

    #[test]
    fn rejects_malformed_amounts() {
        for bad in [
            "", "-", ".5", "1.", "1.234", "abc", "1e5", "1,00", " 1", "1 ", "--1", "NaN",
        ] {
            assert!(
                matches!(parse(bad), Err(MoneyError::Malformed(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            parse("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn prints_two_decimal_places() {
        assert_eq!(Money::from_cents(140_000).to_string(), "1400.00");
        assert_eq!(Money::from_cents(5).to_string(), "0.05");
        assert_eq!(Money::from_cents(-5_000).to_string(), "-50.00");
        assert_eq!(
            Money::from_cents(i64::MIN).to_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn round_trips_through_json_as_a_string() {
        let json = serde_json::to_string(&Money::from_cents(123_456)).unwrap();
        assert_eq!(json, "\"1234.56\"");
        assert_eq!(
            serde_json::from_str::<Money>(&json).unwrap().cents(),
            123_456
        );
    }

    #[test]
    fn an_amount_reads_from_any_json_string_and_refuses_what_a_string_refuses() {
        // Given an amount written with an escape (serde hands it over copied)
        let escaped: Money = serde_json::from_str(r#""\u0031.50""#).unwrap();
        // Then it parses like the plain text
        assert_eq!(escaped.cents(), 150);
        // And a value that is not a string is refused as a `String` refuses it
        for json in ["5", "null", "[\"1.00\"]"] {
            let amount = serde_json::from_str::<Money>(json).unwrap_err().to_string();
            let string = serde_json::from_str::<String>(json)
                .unwrap_err()
                .to_string();
            assert_eq!(amount, string, "{json}");
        }
        // And a malformed amount names the text
        let err = serde_json::from_str::<Money>(r#""1.234""#).unwrap_err();
        assert!(
            err.to_string().contains("invalid amount \"1.234\""),
            "{err}"
        );
    }

    #[test]
    fn currency_is_three_letters() {
        assert_eq!(Currency::new("usd").unwrap().as_str(), "USD");
        assert!(Currency::new("US").is_err());
        assert!(Currency::new("US1").is_err());
    }
}
