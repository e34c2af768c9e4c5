//! JSON text ↔ Rust values: the reader's and writer's primitives (strings,
//! numbers, objects and arrays), which the table-driven `Read` and `Write`
//! use, and a serde reader and writer of exactly the JSON the protocol uses
//! on the same primitives. Numbers with a fraction are read and written by
//! the browser (`parseFloat`, `JSON.stringify`), so no float parsing or
//! formatting is compiled into the wasm; natively (tests) the standard
//! library does it.
//!
//! It reads structs, sequences, options, strings, integers, floats, booleans
//! and unit enum variants; anything else is an error. Errors never format a
//! float. `Raw` captures a value's JSON text unparsed, which lets a reader
//! take `data` before it knows the event `type` that decides its shape.

use std::borrow::Cow;
use std::fmt::{self, Display};

use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::ser::{self, Serialize};

/// What went wrong reading (or, for a type that refuses, writing) JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Serde's own text for an unexpected value, without printing floats.
fn unexpected(value: Unexpected<'_>) -> Cow<'static, str> {
    match value {
        Unexpected::Bool(b) => Cow::Owned(format!("boolean `{b}`")),
        Unexpected::Unsigned(n) => Cow::Owned(format!("integer `{n}`")),
        Unexpected::Signed(n) => Cow::Owned(format!("integer `{n}`")),
        Unexpected::Float(_) => Cow::Borrowed("a number with a fraction"),
        Unexpected::Str(s) => Cow::Owned(format!("string \"{s}\"")),
        Unexpected::Unit => Cow::Borrowed("null"),
        Unexpected::Seq => Cow::Borrowed("an array"),
        Unexpected::Map => Cow::Borrowed("an object"),
        _ => Cow::Borrowed("another kind of value"),
    }
}

impl de::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Self(message.to_string())
    }

    fn invalid_type(value: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self(format!(
            "invalid type: {}, expected {expected}",
            unexpected(value)
        ))
    }

    fn invalid_value(value: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self(format!(
            "invalid value: {}, expected {expected}",
            unexpected(value)
        ))
    }
}

impl ser::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Self(message.to_string())
    }
}

/// A result of reading or writing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn new(message: String) -> Self {
        Self(message)
    }

    /// Its message (as `Display` writes it, without `core::fmt`).
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// `parts` joined, as `[&str]::concat` does, in a fraction of its code (the
/// standard library's join is specialised for separators, which the wasm
/// would carry for nothing).
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Appends the decimal digits of `n`. The wasm's numbers are written with
/// this and [`push_hex`] rather than `core::fmt`, whose machinery (padding,
/// `u128` division, the `Formatter`) would otherwise be compiled in.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Appends `n` in lowercase hex, with leading zeros to `width` digits (as
/// `format!("{n:0width$x}")`; `width` 0 or 1 is `{n:x}`).
pub fn push_hex(out: &mut String, n: u128, width: u32) {
    let digits = (128 - n.leading_zeros()).div_ceil(4).max(width).max(1);
    for at in (0..digits).rev() {
        let digit = n.checked_shr(at * 4).unwrap_or(0) as u8 & 0xF;
        out.push(char::from(b"0123456789abcdef"[usize::from(digit)]));
    }
}

#[cfg(target_arch = "wasm32")]
fn parse_f64(text: &str) -> f64 {
    js_sys::parse_float(text)
}

#[cfg(not(target_arch = "wasm32"))]
fn parse_f64(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

/// A finite float as JSON: the shortest text that reads back the same.
#[cfg(target_arch = "wasm32")]
fn write_fraction(out: &mut String, value: f64) {
    if let Some(text) = js_sys::JSON::stringify(&wasm_bindgen::JsValue::from_f64(value))
        .ok()
        .and_then(|t| t.as_string())
    {
        out.push_str(&text);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_fraction(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    let _ = write!(out, "{value:?}");
}

// ---------------------------------------------------------------- reading

/// Reads one `T` from JSON text; only whitespace may follow it.
pub fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T> {
    from_str_seed(text, std::marker::PhantomData)
}

/// [`from_str`] with a seed.
pub fn from_str_seed<'de, S: DeserializeSeed<'de>>(text: &'de str, seed: S) -> Result<S::Value> {
    crate::read_with(text, |reader| seed.deserialize(reader))
}

/// The value of an integer's digits, if a `u64` holds it.
fn to_u64(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The value of an integer's text (`-`? and digits), if an `i64` holds it.
fn to_i64(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    digits.bytes().try_fold(0i64, |n, d| {
        let d = i64::from(d - b'0');
        n.checked_mul(10)?
            .checked_add(if negative { -d } else { d })
    })
}

/// One JSON value as its text, unparsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'de>(pub &'de str);

/// The newtype name by which `Raw` asks this reader for text.
const RAW: &str = "$provider_sync::json::Raw";

impl<'de> de::Deserialize<'de> for Raw<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw(text))
            }
        }
        deserializer.deserialize_newtype_struct(RAW, RawVisitor)
    }
}

/// How deep arrays and objects may nest: far deeper than any message of the
/// protocol, and shallow enough for the reader, which recurses per level, to
/// stay well within the 1 MiB stack of the wasm (where running out traps).
const MAX_DEPTH: u32 = 128;

/// Reads JSON text: the primitives of [`crate::Read`]'s implementations, and
/// a serde `Deserializer` (`&mut Reader`).
pub struct Reader<'de> {
    text: &'de str,
    at: usize,
    /// Arrays and objects open around `at`.
    depth: u32,
}

impl<'de> Reader<'de> {
    /// A reader at the start of `text`.
    pub fn new(text: &'de str) -> Self {
        Self {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// Fails unless only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            Some(_) => Err(self.error("trailing characters")),
            None => Ok(()),
        }
    }

    /// Eats `null` if it comes next: whether it did.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.word("null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Steps over one value: its text.
    pub fn raw(&mut self) -> Result<&'de str> {
        self.peek();
        let start = self.at;
        self.skip()?;
        Ok(self.slice(start))
    }

    /// Reads an object: `member` is given each member's name and reads (or
    /// skips) its value.
    pub fn object(&mut self, member: &mut dyn FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        self.open(b'{')?;
        let mut first = true;
        while self.more(b'}', &mut first)? {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, &key)?;
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array: `element` reads each element.
    pub fn array(&mut self, element: &mut dyn FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.open(b'[')?;
        let mut first = true;
        while self.more(b']', &mut first)? {
            element(self)?;
        }
        self.depth -= 1;
        Ok(())
    }

    /// The text from `start` to the reading position. Positions are always
    /// between characters (the reader stops only at ASCII bytes), so `get`
    /// never fails; it is used rather than indexing, whose failure path
    /// would bring string formatting into the wasm.
    fn slice(&self, start: usize) -> &'de str {
        self.text.get(start..self.at).unwrap_or_default()
    }

    /// The text from the reading position on.
    fn rest(&self) -> &'de str {
        self.text.get(self.at..).unwrap_or_default()
    }

    pub fn error(&self, what: &str) -> Error {
        let mut message = crate::concat(&[what, " at byte "]);
        push_decimal(&mut message, self.at as u64);
        Error(message)
    }

    /// The next byte that is not whitespace, left in place.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(match byte {
                b':' => "expected `:`",
                b'[' => "expected an array",
                b'{' => "expected an object",
                _ => "expected a string",
            }))
        }
    }

    /// Eats `bracket`, opening an array or object one level deeper.
    fn open(&mut self, bracket: u8) -> Result<()> {
        self.eat(bracket)?;
        if self.depth == MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.depth += 1;
        Ok(())
    }

    /// Eats `word` (after any whitespace).
    fn word(&mut self, word: &'static str) -> Result<()> {
        self.peek();
        if self.rest().starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    pub fn boolean(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.word("true").map(|()| true),
            Some(b'f') => self.word("false").map(|()| false),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// Eats the next byte (whitespace is not skipped) if it is one of `set`.
    fn take(&mut self, set: &[u8]) -> bool {
        let hit = self
            .text
            .as_bytes()
            .get(self.at)
            // Not `set.contains`: for bytes it is `memchr`, which the wasm
            // would carry for sets of one or two.
            .is_some_and(|b| set.iter().any(|c| c == b));
        self.at += usize::from(hit);
        hit
    }

    /// Eats ASCII digits; how many.
    fn digits(&mut self) -> usize {
        let from = self.at;
        while self.take(b"0123456789") {}
        self.at - from
    }

    /// A number's text, strictly as JSON has it: `-`?, an integer part
    /// without leading zeros, `.` and digits?, `e` or `E`, a sign? and
    /// digits?. `integer` when it has neither fraction nor exponent.
    fn number(&mut self) -> Result<(&'de str, bool)> {
        self.peek();
        let start = self.at;
        self.take(b"-");
        let lead = self.text.as_bytes().get(self.at).copied();
        let mut valid = match self.digits() {
            0 => false,
            1 => true,
            _ => lead != Some(b'0'),
        };
        let mut integer = true;
        if self.take(b".") {
            integer = false;
            valid &= self.digits() > 0;
        }
        if self.take(b"eE") {
            integer = false;
            self.take(b"+-");
            valid &= self.digits() > 0;
        }
        if !valid {
            return Err(self.error("expected a number"));
        }
        Ok((self.slice(start), integer))
    }

    pub fn unsigned(&mut self) -> Result<u64> {
        let (text, integer) = self.number()?;
        if !integer || text.starts_with('-') {
            return Err(self.error("expected an unsigned integer"));
        }
        to_u64(text).ok_or_else(|| self.error("integer out of range"))
    }

    pub fn signed(&mut self) -> Result<i64> {
        let (text, integer) = self.number()?;
        if !integer {
            return Err(self.error("expected an integer"));
        }
        match to_i64(text) {
            // `-0` is a float to serde_json, and so to the server.
            Some(0) if text.starts_with('-') => Err(self.error("expected an integer")),
            Some(n) => Ok(n),
            None => Err(self.error("integer out of range")),
        }
    }

    /// An `i32`, read as a float (exact for it): the wasm's one reader of
    /// numbers' values beside `unsigned`'s. An integer's text only, `-0`
    /// refused (a float to serde_json, and so to the server).
    pub fn int32(&mut self) -> Result<i32> {
        let (text, integer) = self.number()?;
        let value = parse_f64(text);
        if !integer || value == 0.0 && text.starts_with('-') {
            return Err(self.error("expected an integer"));
        }
        if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&value) {
            return Err(self.error("integer out of range"));
        }
        Ok(value as i32)
    }

    pub fn float(&mut self) -> Result<f64> {
        let (text, _) = self.number()?;
        self.finite(text)
    }

    /// The value of a number's text, which must be finite (`1e400` is not).
    fn finite(&self, text: &str) -> Result<f64> {
        let value = parse_f64(text);
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.error("number out of range"))
        }
    }

    /// The four hex digits of a `\u` escape: exactly four, ASCII only.
    fn hex4(&mut self) -> Result<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .text
                .as_bytes()
                .get(self.at)
                .and_then(|&b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("bad \\u escape"))?;
            value = value << 4 | digit;
            self.at += 1;
        }
        Ok(value)
    }

    /// A string, borrowed from the text when it has no escapes.
    pub fn string(&mut self) -> Result<Cow<'de, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        self.at += 1;
        let bytes = self.text.as_bytes();
        let mut start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let Some(&b) = bytes.get(self.at) else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    let tail = self.slice(start);
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.slice(start));
                    let escape = bytes.get(self.at + 1).copied();
                    self.at += 2;
                    let c = match escape {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let unit = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&unit)
                                && self.rest().starts_with("\\u")
                            {
                                let back = self.at;
                                self.at += 2;
                                let low = self.hex4()?;
                                if (0xDC00..0xE000).contains(&low) {
                                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                } else {
                                    // Not a pair: the lone half becomes U+FFFD
                                    // (as a JS string crossing into Rust does).
                                    self.at = back;
                                    unit
                                }
                            } else {
                                unit
                            };
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        }
                        _ => return Err(self.error("bad escape")),
                    };
                    s.push(c);
                    start = self.at;
                }
                0..=0x1F => return Err(self.error("control character in a string")),
                _ => self.at += 1,
            }
        }
    }

    /// Steps over one value of any kind.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(open @ (b'{' | b'[')) => {
                self.open(open)?;
                let mut list = List {
                    reader: self,
                    first: true,
                    done: false,
                };
                list.finish(if open == b'{' { b'}' } else { b']' })
            }
            Some(b't' | b'f') => self.boolean().map(drop),
            Some(b'n') => self.word("null"),
            _ => self.number().map(drop),
        }
    }

    /// In an array or object: whether another element follows (eating the
    /// comma before it), or the closing bracket (eaten).
    fn more(&mut self, close: u8, first: &mut bool) -> Result<bool> {
        match self.peek() {
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            Some(b',') if !*first => {
                self.at += 1;
                Ok(true)
            }
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            _ => Err(self.error("expected `,` or the end of a list")),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'"') => self.deserialize_str(visitor),
            Some(b'{') => self.deserialize_map(visitor),
            Some(b'[') => self.deserialize_seq(visitor),
            Some(b't' | b'f') => self.deserialize_bool(visitor),
            Some(b'n') => self.deserialize_unit(visitor),
            _ => {
                // As serde_json and `JSON.parse` read a number of no
                // given type: an integer that 64 bits hold is an integer;
                // anything else (a fraction, an exponent, `-0`, an integer
                // past 64 bits) is a float.
                let (text, integer) = self.number()?;
                if integer {
                    if !text.starts_with('-') {
                        if let Some(n) = to_u64(text) {
                            return visitor.visit_u64(n);
                        }
                    } else if let Some(n) = to_i64(text).filter(|&n| n != 0) {
                        return visitor.visit_i64(n);
                    }
                }
                visitor.visit_f64(self.finite(text)?)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_bool(self.boolean()?)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.signed()?)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.signed()?)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.signed()?)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.signed()?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.unsigned()?)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.unsigned()?)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.unsigned()?)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.unsigned()?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.string()? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'n') {
            self.word("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.word("null")?;
        visitor.visit_unit()
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
        if name == RAW {
            visitor.visit_borrowed_str(self.raw()?)
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.open(b'[')?;
        let mut list = List {
            reader: self,
            first: true,
            done: false,
        };
        let value = visitor.visit_seq(&mut list)?;
        list.finish(b']')?;
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.open(b'{')?;
        let mut list = List {
            reader: self,
            first: true,
            done: false,
        };
        let value = visitor.visit_map(&mut list)?;
        list.finish(b'}')?;
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        // Only unit variants, written as their name.
        let name = self.string()?;
        visitor.visit_enum(UnitVariant(name))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf tuple tuple_struct
    }
}

/// The elements of an array, or the members of an object.
struct List<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
    done: bool,
}

impl List<'_, '_> {
    /// Steps over what the visitor left, up to and including `close`, which
    /// closes the level.
    fn finish(&mut self, close: u8) -> Result<()> {
        while !self.done && self.reader.more(close, &mut self.first)? {
            if close == b'}' {
                self.reader.string()?;
                self.reader.eat(b':')?;
            }
            self.reader.skip()?;
        }
        self.reader.depth -= 1;
        Ok(())
    }

    fn next(&mut self, close: u8) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let more = self.reader.more(close, &mut self.first)?;
        self.done = !more;
        Ok(more)
    }
}

impl<'de> de::SeqAccess<'de> for List<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for List<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.next(b'}')? {
            return Ok(None);
        }
        let key = seed.deserialize(&mut *self.reader)?;
        self.reader.eat(b':')?;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }
}

struct UnitVariant<'de>(Cow<'de, str>);

impl<'de> de::EnumAccess<'de> for UnitVariant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = match &self.0 {
            Cow::Borrowed(name) => seed.deserialize(name.into_deserializer()),
            Cow::Owned(name) => seed.deserialize(name.as_str().into_deserializer()),
        }?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(Error("expected a unit variant".into()))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(Error("expected a unit variant".into()))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Error("expected a unit variant".into()))
    }
}

// ---------------------------------------------------------------- writing

/// Writes `value` as JSON. `None` is `null`; a float that is not finite is
/// `null` too, as in `JSON.stringify`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut writer = Writer(String::new());
    value.serialize(&mut writer)?;
    Ok(writer.0)
}

/// JSON text being written: the primitives of [`crate::Write`]'s
/// implementations, and a serde `Serializer` (`&mut Writer`).
#[derive(Default)]
pub struct Writer(String);

impl Writer {
    /// The text written.
    pub fn finish(self) -> String {
        self.0
    }

    /// Appends `text` as it is.
    pub fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    /// An unsigned integer.
    pub fn unsigned(&mut self, value: u64) {
        push_decimal(&mut self.0, value);
    }

    /// A signed integer.
    pub fn signed(&mut self, value: i64) {
        if value < 0 {
            self.0.push('-');
        }
        push_decimal(&mut self.0, value.unsigned_abs());
    }

    /// A string, quoted and escaped.
    pub fn string(&mut self, value: &str) {
        let out = &mut self.0;
        out.push('"');
        let mut start = 0;
        for (i, b) in value.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1F => "",
                _ => continue,
            };
            out.push_str(value.get(start..i).unwrap_or_default());
            if escape.is_empty() {
                out.push_str("\\u");
                push_hex(out, u128::from(b), 4);
            } else {
                out.push_str(escape);
            }
            start = i + 1;
        }
        out.push_str(value.get(start..).unwrap_or_default());
        out.push('"');
    }

    /// A number, as `JSON.stringify` writes it (not finite: `null`).
    pub fn float(&mut self, value: f64) {
        if !value.is_finite() {
            self.0.push_str("null");
        } else if value == 0.0 && value.is_sign_negative() {
            self.0.push_str("-0");
        } else if value.fract() == 0.0 && value.abs() < 1e15 {
            self.signed(value as i64);
        } else {
            write_fraction(&mut self.0, value);
        }
    }
}

/// An array or object being written by serde.
pub struct Compound<'a> {
    writer: &'a mut Writer,
    first: bool,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.writer.0.push(',');
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.comma();
        self.writer.string(key);
        self.writer.0.push(':');
        value.serialize(&mut *self.writer)
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.comma();
        value.serialize(&mut *self.writer)
    }

    fn close(self, bracket: char) -> Result<()> {
        self.writer.0.push(bracket);
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.signed(v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.unsigned(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        self.float(v.into());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        self.float(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.string(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        v.serialize(self)
    }

    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.0.push_str("null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.string(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.0.push('{');
        let mut object = Compound {
            writer: self,
            first: true,
        };
        object.field(variant, value)?;
        object.close('}')
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.0.push('[');
        Ok(Compound {
            writer: self,
            first: true,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        Err(Error("tuple variants are not written".into()))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.0.push('{');
        Ok(Compound {
            writer: self,
            first: true,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        Err(Error("struct variants are not written".into()))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.close(']')
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.close(']')
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.close(']')
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.close(']')
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    /// Keys are strings in every type written here.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.comma();
        key.serialize(&mut *self.writer)?;
        self.writer.0.push(':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> Result<()> {
        self.close('}')
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.close('}')
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.close('}')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_i32_is_read_as_serde_json_reads_one() {
        let read = |text: &str| {
            Reader::new(text)
                .int32()
                .map_err(|e| e.message().to_owned())
        };
        for text in ["0", "7", "-4", "2147483647", "-2147483648"] {
            assert_eq!(
                read(text),
                Ok(serde_json::from_str::<i32>(text).unwrap()),
                "{text}"
            );
        }
        for (text, error) in [
            ("-0", "expected an integer"),
            ("1.0", "expected an integer"),
            ("1e2", "expected an integer"),
            ("2147483648", "integer out of range"),
            ("-2147483649", "integer out of range"),
            (&"9".repeat(400), "integer out of range"),
        ] {
            assert!(serde_json::from_str::<i32>(text).is_err(), "{text}");
            let found = read(text).unwrap_err();
            assert!(found.starts_with(error), "{text}: {found}");
        }
    }

    #[test]
    fn numbers_are_written_as_core_fmt_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 4_294_967_296, u64::MAX - 1, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
        for (n, width) in [
            (0u128, 0),
            (0, 1),
            (0xabc, 0),
            (0x5, 40),
            (0, 4),
            (0x1f, 4),
            (0xabc, 1),
            (u128::from(u64::MAX), 1),
            (1 << 127, 32),
            (u128::MAX, 32),
            (0x42, 32),
        ] {
            let mut out = String::new();
            push_hex(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$x}", width = width as usize));
        }
        let mut w = Writer::default();
        w.signed(i64::MIN);
        w.raw(",");
        w.float(-3.0);
        w.raw(",");
        w.string("\u{1}\u{1f}");
        assert_eq!(w.finish(), r#"-9223372036854775808,-3,"\u0001\u001f""#);
    }

    /// A syntax error says what was expected and where: what a person
    /// reads in a `sync_error` about a malformed answer.
    #[test]
    fn a_syntax_error_names_what_was_expected_and_where() {
        use std::collections::BTreeMap;
        type Object = BTreeMap<String, u32>;
        for (error, expected) in [
            (
                from_str::<Vec<u32>>(" {}").unwrap_err(),
                "expected an array at byte 1",
            ),
            (
                from_str::<Object>("[]").unwrap_err(),
                "expected an object at byte 0",
            ),
            (
                from_str::<Object>(r#"{"a" 1}"#).unwrap_err(),
                "expected `:` at byte 5",
            ),
            (
                from_str::<String>("1").unwrap_err(),
                "expected a string at byte 0",
            ),
            (
                from_str::<Vec<u32>>("[1 2]").unwrap_err(),
                "expected `,` or the end of a list at byte 3",
            ),
            (
                from_str::<u32>("1 2").unwrap_err(),
                "trailing characters at byte 2",
            ),
            // A comma before the first element is not a separator.
            (
                from_str::<Vec<u32>>("[,1]").unwrap_err(),
                "expected a number at byte 1",
            ),
        ] {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn strings_and_escapes() {
        let read: String = from_str(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83e\udd80 \ud800x""#).unwrap();
        assert_eq!(read, "a\"b\\c/d\u{8}\u{c}\n\r\t\u{e9}\u{1f980} \u{fffd}x");
        // Short escapes for newline, carriage return and tab, as
        // JSON.stringify writes them.
        assert_eq!(to_string("\r\t\n").unwrap(), r#""\r\t\n""#);
        let text = to_string("q\"\\\n\u{1}é").unwrap();
        assert_eq!(text, r#""q\"\\\n\u0001é""#);
        assert_eq!(from_str::<String>(&text).unwrap(), "q\"\\\n\u{1}é");
    }

    /// A value of the wrong kind is named as serde names it (without
    /// printing a float): what a person reads in a `sync_error`.
    #[test]
    fn a_value_of_the_wrong_kind_is_named() {
        for (text, named) in [
            ("true", "boolean `true`"),
            ("7", "integer `7`"),
            ("-7", "integer `-7`"),
            ("1.5", "a number with a fraction"),
            ("null", "null"),
            ("[1]", "an array"),
            ("{}", "an object"),
        ] {
            assert_eq!(
                from_str::<char>(text).unwrap_err().to_string(),
                format!("invalid type: {named}, expected a character"),
                "{text}"
            );
        }
        assert_eq!(
            from_str::<char>(r#""xy""#).unwrap_err().to_string(),
            r#"invalid value: string "xy", expected a character"#
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(from_str::<u64>(" 18446744073709551615 ").unwrap(), u64::MAX);
        assert!(from_str::<u64>("18446744073709551616").is_err());
        assert_eq!(from_str::<i64>("-9223372036854775808").unwrap(), i64::MIN);
        assert!(from_str::<u32>("4294967296").is_err());
        assert!(from_str::<u32>("-1").is_err());
        assert_eq!(from_str::<f64>("-1.5e3").unwrap(), -1500.0);
        assert_eq!(from_str::<f64>("7").unwrap(), 7.0);
        assert_eq!(from_str::<f64>("0.30000000000000004").unwrap(), 0.1 + 0.2);
        for (value, text) in [
            (1.0, "1"),
            (-0.0, "-0"),
            (0.25, "0.25"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ] {
            assert_eq!(to_string(&value).unwrap(), text);
        }
        assert_eq!(from_str::<f64>(&to_string(&1e300).unwrap()).unwrap(), 1e300);
    }

    #[test]
    fn a_u_escape_is_four_hex_digits_and_lone_surrogates_read_as_u_fffd() {
        for bad in [
            r#""\u+041""#,
            r#""\u12""#,
            r#""\u12"  "#,
            r#""\u 041""#,
            r#""\u004g""#,
        ] {
            assert!(from_str::<String>(bad).is_err(), "{bad}");
        }
        assert!(from_str::<String>(r#""\ud800\u+c00""#).is_err());
        for (text, read) in [
            (r#""\u00E9\u00e9""#, "\u{e9}\u{e9}"),
            (r#""\udc00""#, "\u{fffd}"),
            (r#""\ud800\u0041""#, "\u{fffd}A"),
            (r#""\ud800""#, "\u{fffd}"),
            (r#""\ud800\ud800\udc00""#, "\u{fffd}\u{10000}"),
        ] {
            assert_eq!(from_str::<String>(text).unwrap(), read, "{text}");
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar_and_are_finite() {
        for bad in [
            "01", "-01", "00", "1.", "1.e5", ".5", "-.5", "1e", "1e+", "1E-", "1.2.3", "1e5e5",
            "1e5.5", "--1", "-a", "1x",
        ] {
            assert!(from_str::<f64>(bad).is_err(), "{bad}");
            assert!(from_str::<Raw<'_>>(bad).is_err(), "{bad}");
            assert!(from_str::<serde_json::Value>(bad).is_err(), "{bad}");
            assert!(from_str::<Vec<f64>>(&format!("[{bad}]")).is_err(), "{bad}");
        }
        // Well-formed, but past what a float holds: refused where read as
        // a number (text stepped over or kept raw is not converted).
        for huge in ["1e400", "-1e400", "1e999999", "1797693134862315800000e288"] {
            assert!(from_str::<f64>(huge).is_err(), "{huge}");
            assert!(from_str::<serde_json::Value>(huge).is_err(), "{huge}");
            assert!(
                from_str::<Vec<f64>>(&format!("[{huge}]")).is_err(),
                "{huge}"
            );
        }
        assert!(from_str::<u64>("01").is_err());
        for good in [
            "0", "-0", "0.5", "-0.5", "10", "1e5", "1E+5", "1e-5", "-0.0e0", "1.25e+2", "1e-400",
        ] {
            let value: f64 = from_str(good).unwrap();
            assert_eq!(value, serde_json::from_str::<f64>(good).unwrap(), "{good}");
            assert_eq!(from_str::<Raw<'_>>(good).unwrap(), Raw(good));
        }
    }

    /// Found by the sdk_json fuzz check (fuzz/corpus/sdk_json/numbers): a
    /// value of any type (`serde_json::Value`) read integers past 64 bits
    /// as errors and `-0` as the integer 0, where serde_json and
    /// `JSON.parse` read floats.
    #[test]
    fn a_value_of_any_type_reads_numbers_as_serde_json_does() {
        for text in [
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "-0",
            "0",
            "-1",
            "18446744073709551615",
            "-9223372036854775808",
            "-0.0",
            "1e2",
        ] {
            let ours: serde_json::Value = from_str(text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.is_f64(), theirs.is_f64(), "{text}");
        }
        assert!(from_str::<serde_json::Value>("1e400").is_err());
    }

    /// Found by the sdk_json fuzz check on a hand-written input
    /// (fuzz/corpus/sdk_json/regression-negative-zero-integer): `-0` read as
    /// the integer 0, where serde_json, and so the server, refuses it.
    #[test]
    fn minus_zero_is_not_an_integer_as_for_serde_json() {
        assert!(from_str::<i32>("-0").is_err());
        assert!(from_str::<i64>("[-0]").is_err());
        assert!(serde_json::from_str::<i32>("-0").is_err());
        assert_eq!(from_str::<i32>("0").unwrap(), 0);
        assert_eq!(from_str::<f64>("-0").unwrap(), 0.0);
    }

    #[test]
    fn integers_out_of_their_type_range_are_errors() {
        assert!(from_str::<i32>("2147483648").is_err());
        assert!(from_str::<i32>("-2147483649").is_err());
        assert_eq!(from_str::<i32>("-2147483648").unwrap(), i32::MIN);
        assert!(from_str::<u8>("256").is_err());
    }

    #[test]
    fn what_is_written_serde_json_reads_back() {
        for value in [1e15, -3.0, 1e-7, 1e21, -1.5e-300, 123456.789, 0.1 + 0.2] {
            let text = to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<f64>(&text).unwrap(), value, "{text}");
            assert_eq!(from_str::<f64>(&text).unwrap(), value, "{text}");
        }
        assert_eq!(to_string(&-3.0).unwrap(), "-3");
        assert_eq!(to_string(&f64::NEG_INFINITY).unwrap(), "null");
        let tricky = "\u{7f}\u{2028}\u{0}\u{1f}\u{2029}\"\\/é🦀";
        let text = to_string(tricky).unwrap();
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            tricky,
            "{text}"
        );
        assert_eq!(from_str::<String>(&text).unwrap(), tricky, "{text}");
    }

    /// Every shape of serde's data model this writer takes is written as
    /// serde_json writes it (the protocol's types use only some of them
    /// today), numbers aside: floats follow `JSON.stringify` (`1`, not
    /// `1.0`; an `f32` widened to `f64` first). Tuple and struct variants
    /// are refused, by name.
    #[test]
    fn every_shape_is_written_as_serde_json_writes_it() {
        #[derive(serde::Serialize)]
        struct Unit;
        #[derive(serde::Serialize)]
        struct Newtype(u8);
        #[derive(serde::Serialize)]
        struct Pair(i16, u16);
        #[derive(serde::Serialize)]
        enum Shape {
            Newtype(i8),
            Tuple(u8, char),
            Struct { a: f32 },
        }
        fn as_bytes<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        #[derive(serde::Serialize)]
        struct All<'a> {
            small: (i8, i16, u8, u16),
            float: f32,
            letter: char,
            #[serde(serialize_with = "as_bytes")]
            bytes: &'a [u8],
            unit: Unit,
            newtype: Newtype,
            pair: Pair,
            variant: Shape,
        }
        let value = All {
            small: (-8, -16, 8, 16),
            float: 0.5,
            letter: '"',
            bytes: &[0, 7, 255],
            unit: Unit,
            newtype: Newtype(3),
            pair: Pair(-1, 1),
            variant: Shape::Newtype(-2),
        };
        assert_eq!(
            to_string(&value).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(
            to_string(&Shape::Tuple(4, 'é')).unwrap_err().to_string(),
            "tuple variants are not written"
        );
        assert_eq!(
            to_string(&Shape::Struct { a: 1.5 })
                .unwrap_err()
                .to_string(),
            "struct variants are not written"
        );
    }

    /// Depth counts nesting, not siblings: a long list of objects is not
    /// "nested too deeply".
    #[test]
    fn many_siblings_are_not_nesting() {
        let text = format!("[{}{{}}]", "{},".repeat(300));
        let read: Vec<std::collections::BTreeMap<String, u32>> = from_str(&text).unwrap();
        assert_eq!(read.len(), 301);
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(from_str::<serde::de::IgnoredAny>(&deep).is_err());
    }

    #[test]
    fn whitespace_may_come_before_any_value() {
        from_str::<()>(" null").unwrap();
        from_str::<()>("\n\t null ").unwrap();
        assert!(from_str::<bool>(" true").unwrap());
        assert_eq!(from_str::<Option<u8>>(" null").unwrap(), None);
        assert_eq!(from_str::<Vec<()>>("[ null ,\tnull ]").unwrap(), [(), ()]);
        assert!(from_str::<()>(" nul").is_err());
    }

    #[test]
    fn a_sign_that_opens_the_text_is_an_error_not_a_panic() {
        assert!(from_str::<u64>("+1").is_err());
        assert!(from_str::<i64>("+1").is_err());
        assert!(from_str::<f64>("+1").is_err());
        assert!(from_str::<Raw<'_>>("+1").is_err());
        assert!(from_str::<Raw<'_>>("-").is_err());
    }

    #[test]
    fn unknown_fields_are_skipped_and_raw_keeps_text() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct One {
            a: u32,
        }
        let read: One = from_str(r#"{"x":{"y":[1,"]",null,true,{}]},"a":3,"z":-2.5e-1}"#).unwrap();
        assert_eq!(read, One { a: 3 });
        let tricky = r#"{"k":"}\"{[","n":[{"a":[]}],"a":4,"f":-1.5e-3}"#;
        assert_eq!(from_str::<One>(tricky).unwrap(), One { a: 4 });
        let raw: Vec<Raw<'_>> = from_str(r#"[ {"k": [1, 2]} , "s" ]"#).unwrap();
        assert_eq!(raw, [Raw(r#"{"k": [1, 2]}"#), Raw(r#""s""#)]);
    }
}
