//! A reader for the JSON stored payloads are mostly made of, with the
//! fewest steps per byte: strings without escapes, integers, literals,
//! arrays and objects. It gives up on anything else (an escape, a
//! fraction or exponent, an integer past 64 bits, deep nesting, any error,
//! the visitor's included), and the codec then reads the payload with
//! serde_json, whose result and errors stand.
//!
//! So it must never accept what serde_json refuses, and must hand serde's
//! visitors exactly what serde_json hands them for what it accepts: each
//! `deserialize_*` below accepts the tokens serde_json's accepts for the
//! same hint and calls the same `visit_*` method (a string without escapes
//! is `visit_borrowed_str`, a non-negative integer `visit_u64`, a negative
//! one `visit_i64`, `null` for `()` is `visit_unit`, and so on).

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

/// Why the plain reader stopped: nothing to report, since serde_json reads
/// the payload again and says what is wrong, if anything is.
#[derive(Debug)]
pub(super) struct GaveUp;

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not plain JSON")
    }
}

impl std::error::Error for GaveUp {}

impl de::Error for GaveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self
    }
}

type Result<T> = std::result::Result<T, GaveUp>;

/// Nesting past this gives up (serde_json refuses past 128 levels; giving
/// up well before keeps the two from ever disagreeing).
const MAX_DEPTH: u32 = 64;

/// The name serde_json's `RawValue` asks for, which it reads differently.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

/// A JSON text being read from its start.
pub(super) struct PlainJson<'de> {
    text: &'de str,
    at: usize,
    depth: u32,
}

impl<'de> PlainJson<'de> {
    pub(super) fn new(text: &'de str) -> Self {
        Self {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// Checks that only whitespace follows what was read.
    pub(super) fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(GaveUp),
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    /// Consumes `byte`, which must come next after whitespace.
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(GaveUp)
        }
    }

    /// Consumes `word` (a literal), which must come next.
    fn literal(&mut self, word: &str) -> Result<()> {
        if self.text.as_bytes()[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(GaveUp)
        }
    }

    /// A string without escapes or control characters, the opening quote
    /// next; its text, borrowed.
    #[inline(always)]
    fn string(&mut self) -> Result<&'de str> {
        let bytes = self.text.as_bytes();
        let start = self.at + 1;
        let mut end = start;
        // Eight bytes at a time to the first that ends the plain text.
        loop {
            let found = plain_text_ends(word_at(bytes, end));
            if found == 0 {
                end += 8;
                continue;
            }
            end += (found.trailing_zeros() / 8) as usize;
            break;
        }
        if bytes.get(end) != Some(&b'"') {
            return Err(GaveUp);
        }
        self.at = end + 1;
        // Quotes are ASCII, so both ends are character boundaries.
        self.text.get(start..end).ok_or(GaveUp)
    }

    /// An integer as serde_json reads it: `visit_u64` for one without a
    /// sign, `visit_i64` for a negative one. Anything it would read as a
    /// float (a fraction, an exponent, `-0`, more than 64 bits) gives up.
    fn integer<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let bytes = self.text.as_bytes();
        let negative = bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let significand = match bytes.get(self.at) {
            Some(b'0') => {
                self.at += 1;
                0
            }
            Some(&digit @ b'1'..=b'9') => {
                self.at += 1;
                let mut value = u64::from(digit - b'0');
                while let Some(&digit @ b'0'..=b'9') = bytes.get(self.at) {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                        .ok_or(GaveUp)?;
                    self.at += 1;
                }
                value
            }
            _ => return Err(GaveUp),
        };
        if matches!(bytes.get(self.at), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
            return Err(GaveUp);
        }
        if !negative {
            return visitor.visit_u64(significand);
        }
        // serde_json's own rule: a negation that does not come out below
        // zero (`-0`, or past `i64::MIN`) is a float.
        let negated = (significand as i64).wrapping_neg();
        if negated >= 0 {
            return Err(GaveUp);
        }
        visitor.visit_i64(negated)
    }

    /// Steps one level into an array or object (its opening byte next).
    fn enter(&mut self) -> Result<()> {
        if self.depth == MAX_DEPTH {
            return Err(GaveUp);
        }
        self.depth += 1;
        self.at += 1;
        Ok(())
    }

    /// Steps out of an array or object whose last element was read.
    fn leave(&mut self, close: u8) -> Result<()> {
        self.depth -= 1;
        self.expect(close)
    }

    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let value = visitor.visit_seq(Elements {
            json: self,
            first: true,
        })?;
        self.leave(b']')?;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let value = visitor.visit_map(Entries {
            json: self,
            first: true,
        })?;
        self.leave(b'}')?;
        Ok(value)
    }

    /// Steps over one value, checking it as strictly as reading it.
    fn skip(&mut self) -> Result<()> {
        de::Deserializer::deserialize_any(self, de::IgnoredAny).map(|_| ())
    }
}

/// A byte of each value repeated across a word.
const fn repeated(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// The eight bytes of `bytes` from `at` as a little-endian word; past the
/// end, zero bytes (which end a string's plain text, so a string that runs
/// to the end is found unterminated).
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let rest = bytes.get(at..).unwrap_or_default();
    if let Some(word) = rest.first_chunk::<8>() {
        return u64::from_le_bytes(*word);
    }
    match bytes.last_chunk::<8>() {
        // The last eight bytes, shifted so that `rest` comes first.
        Some(last) => u64::from_le_bytes(*last)
            .checked_shr(8 * (8 - rest.len() as u32))
            .unwrap_or(0),
        None => {
            let mut padded = [0; 8];
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    }
}

/// The bytes of `word` below `limit` (at most 0x80), each marked by its
/// high bit, without a branch per byte. Only the lowest mark is sure (a
/// borrow may mark a byte above a marked one), which is the one wanted.
const fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(repeated(limit)) & !word & repeated(0x80)
}

/// The bytes of `word` (little-endian: its first byte lowest) that end a
/// string's plain text, a quote, a backslash or a control character, as in
/// [`bytes_below`]: the lowest mark is the first such byte.
const fn plain_text_ends(word: u64) -> u64 {
    bytes_below(word ^ repeated(b'"'), 1)
        | bytes_below(word ^ repeated(b'\\'), 1)
        | bytes_below(word, 0x20)
}

impl<'de> de::Deserializer<'de> for &mut PlainJson<'de> {
    type Error = GaveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek().ok_or(GaveUp)? {
            b'n' => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            b't' => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            b'-' | b'0'..=b'9' => self.integer(visitor),
            b'"' => visitor.visit_borrowed_str(self.string()?),
            b'[' => self.seq(visitor),
            b'{' => self.map(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b't' | b'f') => self.deserialize_any(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_number(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'"') => visitor.visit_borrowed_str(self.string()?),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    /// serde_json hands a string's bytes to a bytes visitor: not this
    /// reader's business.
    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'n') => self.deserialize_any(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW_VALUE {
            return Err(GaveUp);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'[') => self.seq(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'{') => self.map(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.peek() {
            Some(b'{') => self.map(visitor),
            Some(b'[') => self.seq(visitor),
            _ => Err(GaveUp),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.peek() {
            Some(b'"') => visitor.visit_enum(UnitVariant(self)),
            Some(b'{') => {
                self.enter()?;
                let value = visitor.visit_enum(VariantWithContent(&mut *self))?;
                self.leave(b'}')?;
                Ok(value)
            }
            _ => Err(GaveUp),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }
}

impl<'de> PlainJson<'de> {
    /// Every numeric hint: a number, as `deserialize_any` reads it.
    fn deserialize_number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.integer(visitor),
            _ => Err(GaveUp),
        }
    }
}

/// The elements of an array, its `[` read.
struct Elements<'a, 'de> {
    json: &'a mut PlainJson<'de>,
    first: bool,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = GaveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.json.peek().ok_or(GaveUp)? {
            b']' => return Ok(None),
            b',' if !self.first => {
                self.json.at += 1;
                if matches!(self.json.peek(), Some(b']') | None) {
                    return Err(GaveUp);
                }
            }
            _ if self.first => {}
            _ => return Err(GaveUp),
        }
        self.first = false;
        seed.deserialize(&mut *self.json).map(Some)
    }
}

/// The entries of an object, its `{` read.
struct Entries<'a, 'de> {
    json: &'a mut PlainJson<'de>,
    first: bool,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = GaveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.json.peek().ok_or(GaveUp)? {
            b'}' => return Ok(None),
            b',' if !self.first => {
                self.json.at += 1;
                if self.json.peek() != Some(b'"') {
                    return Err(GaveUp);
                }
            }
            b'"' if self.first => {}
            _ => return Err(GaveUp),
        }
        self.first = false;
        let key = self.json.string()?;
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.json.expect(b':')?;
        seed.deserialize(&mut *self.json)
    }
}

/// An object's key, read: what serde_json's key reader gives for it.
struct Key<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = GaveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW_VALUE {
            return Err(GaveUp);
        }
        visitor.visit_newtype_struct(self)
    }

    // serde_json parses numbers and booleans out of a key's text, and reads
    // options, enums and bytes its own way: not this reader's business.
    fn deserialize_bool<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_option<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum written as its variant's name alone.
struct UnitVariant<'a, 'de>(&'a mut PlainJson<'de>);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, 'de> {
    type Error = GaveUp;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.0)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, 'de> {
    type Error = GaveUp;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(GaveUp)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(GaveUp)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(GaveUp)
    }
}

/// An enum written as `{"<variant>": <content>}`, its `{` read.
struct VariantWithContent<'a, 'de>(&'a mut PlainJson<'de>);

impl<'de> de::EnumAccess<'de> for VariantWithContent<'_, 'de> {
    type Error = GaveUp;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.0)?;
        self.0.expect(b':')?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantWithContent<'_, 'de> {
    type Error = GaveUp;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.0)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.0, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.0, "", fields, visitor)
    }
}
