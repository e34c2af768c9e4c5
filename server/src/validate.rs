//! Checks every entity before it is written, naming the field at fault.
//! The admin API and the catalog loader share these, so both refuse the same
//! things.

use std::sync::LazyLock;

use provider_sync_protocol::{
    DeprecationStatus, ModelSpecification, ProviderStatus, ProviderSyncInfo, SyncState, parse_date,
};

use crate::error::{Error, Result};

/// Where the entity sits, to name fields: "" for an admin body,
/// "providers[2].models[0]." for a catalog entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(pub &'a str);

impl Fields<'_> {
    fn err(self, field: &str, message: impl Into<String>) -> Error {
        Error::invalid(format!("{}{field}", self.0), message)
    }
}

/// The longest id, in characters.
pub(crate) const MAX_ID: usize = 256;
/// The longest name or display name, in characters.
pub(crate) const MAX_TEXT: usize = 256;
/// The longest capability name, in characters.
pub(crate) const MAX_CAPABILITY: usize = 64;
/// The most capabilities a provider lists.
pub(crate) const MAX_CAPABILITIES: usize = 64;
/// The longest `provider_type`, in characters.
pub(crate) const MAX_PROVIDER_TYPE: usize = 64;
/// The longest `base_url` or `health_url`, in characters.
pub(crate) const MAX_URL: usize = 2048;
/// The most models one provider has (its `model_ids`).
pub(crate) const MAX_MODELS_PER_PROVIDER: usize = 10_000;
/// The longest status message an operator sets, in characters.
pub(crate) const MAX_MESSAGE: usize = 1000;

// Lengths are counted in characters (Unicode scalar values), as JSON
// Schema's `minLength`/`maxLength` count them, so the OpenAPI document can
// state them exactly; a character is at most 4 bytes, so the bound in bytes
// is four times as much.

/// The character classes the rules are made of, as ranges. The predicates
/// below test them and [`patterns`] writes them into the OpenAPI document,
/// so the document and the checks cannot drift apart.
mod classes {
    /// Control characters (general category Cc: `char::is_control`).
    pub(super) const CONTROL: &[(char, char)] = &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

    /// The invisible characters that make text read other than it is:
    /// Unicode's default-ignorable code points (soft hyphen, the combining
    /// grapheme joiner, bidirectional marks, embeddings, overrides and
    /// isolates, zero-width characters, the Hangul fillers, the Mongolian
    /// and emoji variation selectors, the byte-order mark, the deprecated
    /// format characters), the interlinear annotation controls, and the
    /// noncharacters. Those of the Basic Multilingual Plane;
    /// [`INVISIBLE_ASTRAL`] has the rest. The variation selectors go too:
    /// a name such as "GPT-4o" followed by one reads as "GPT-4o", and a name
    /// of only such characters reads as none (an emoji is written without
    /// its selector).
    pub(super) const INVISIBLE: &[(char, char)] = &[
        ('\u{ad}', '\u{ad}'),
        ('\u{34f}', '\u{34f}'),
        ('\u{61c}', '\u{61c}'),
        ('\u{115f}', '\u{1160}'),
        ('\u{17b4}', '\u{17b5}'),
        ('\u{180b}', '\u{180f}'),
        ('\u{200b}', '\u{200f}'),
        ('\u{202a}', '\u{202e}'),
        ('\u{2060}', '\u{206f}'),
        ('\u{3164}', '\u{3164}'),
        ('\u{fdd0}', '\u{fdef}'),
        ('\u{fe00}', '\u{fe0f}'),
        ('\u{feff}', '\u{feff}'),
        ('\u{ffa0}', '\u{ffa0}'),
        ('\u{fff0}', '\u{fffb}'),
        ('\u{fffe}', '\u{ffff}'),
    ];

    /// The default-ignorable code points past the Basic Multilingual Plane
    /// (shorthand format controls, musical symbol formatting, the tag
    /// characters, which can spell out hidden ASCII text, the ideographic
    /// variation selectors, and the unassigned rest of their block) and the
    /// noncharacters of every plane. Refused by the checks; the API
    /// document's patterns name only [`INVISIBLE`], as a `\uXXXX` escape
    /// reads alike in every regular expression dialect.
    pub(super) const INVISIBLE_ASTRAL: &[(char, char)] = &[
        ('\u{1bca0}', '\u{1bca3}'),
        ('\u{1d173}', '\u{1d17a}'),
        ('\u{1fffe}', '\u{1ffff}'),
        ('\u{2fffe}', '\u{2ffff}'),
        ('\u{3fffe}', '\u{3ffff}'),
        ('\u{4fffe}', '\u{4ffff}'),
        ('\u{5fffe}', '\u{5ffff}'),
        ('\u{6fffe}', '\u{6ffff}'),
        ('\u{7fffe}', '\u{7ffff}'),
        ('\u{8fffe}', '\u{8ffff}'),
        ('\u{9fffe}', '\u{9ffff}'),
        ('\u{afffe}', '\u{affff}'),
        ('\u{bfffe}', '\u{bffff}'),
        ('\u{cfffe}', '\u{cffff}'),
        ('\u{dfffe}', '\u{dffff}'),
        ('\u{e0000}', '\u{e0fff}'),
        ('\u{efffe}', '\u{effff}'),
        ('\u{ffffe}', '\u{fffff}'),
        ('\u{10fffe}', '\u{10ffff}'),
    ];

    /// The line and paragraph separators: line breaks, refused in text
    /// (white space, so refused in ids too).
    pub(super) const LINE_BREAK: &[(char, char)] = &[('\u{2028}', '\u{2029}')];

    /// White space (the `White_Space` property: `char::is_whitespace`, what
    /// `str::trim` removes).
    pub(super) const WHITESPACE: &[(char, char)] = &[
        ('\u{9}', '\u{d}'),
        ('\u{20}', '\u{20}'),
        ('\u{85}', '\u{85}'),
        ('\u{a0}', '\u{a0}'),
        ('\u{1680}', '\u{1680}'),
        ('\u{2000}', '\u{200a}'),
        ('\u{2028}', '\u{2029}'),
        ('\u{202f}', '\u{202f}'),
        ('\u{205f}', '\u{205f}'),
        ('\u{3000}', '\u{3000}'),
    ];

    /// Printable characters an id may not hold: they mean something in a
    /// URL or in HTML.
    pub(super) const ID_PUNCTUATION: &[(char, char)] = &[
        ('"', '"'),
        ('#', '#'),
        ('%', '%'),
        ('\'', '\''),
        ('<', '<'),
        ('>', '>'),
        ('?', '?'),
        ('\\', '\\'),
        ('`', '`'),
    ];

    pub(super) fn contains(class: &[(char, char)], c: char) -> bool {
        class.iter().any(|&(low, high)| (low..=high).contains(&c))
    }
}

use classes::{
    CONTROL, ID_PUNCTUATION, INVISIBLE, INVISIBLE_ASTRAL, LINE_BREAK, WHITESPACE, contains,
};

/// Whether a character may appear in an id: anything printable but
/// whitespace, control characters, the invisible formatting characters, and
/// the few that mean something in a URL or in HTML.
pub(crate) fn id_char(c: char) -> bool {
    ![
        WHITESPACE,
        CONTROL,
        INVISIBLE,
        INVISIBLE_ASTRAL,
        ID_PUNCTUATION,
    ]
    .iter()
    .any(|class| contains(class, c))
}

/// Ids are what providers call their models, kept as they write them
/// (LiteLLM's catalog has `/`, `:`, `.`, `*`, `~` and `@` in ids): printable
/// characters but whitespace and `% ? # \ < > " ' ``, in `/`-separated
/// segments that are neither empty nor `.` or `..`; the API serves them
/// URL-encoded.
fn id(at: Fields<'_>, field: &str, value: &str) -> Result<()> {
    if !(1..=MAX_ID).contains(&value.chars().count()) {
        return Err(at.err(field, format!("must be 1 to {MAX_ID} characters")));
    }
    if !value.chars().all(id_char) {
        return Err(at.err(
            field,
            "must be printable, without spaces, control or invisible formatting characters, or any of % ? # \\ < > \" ' `",
        ));
    }
    if value
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(at.err(
            field,
            "must not start or end with /, hold //, or have . or .. between slashes",
        ));
    }
    Ok(())
}

/// Whether a character may appear in a name or a message: anything but
/// control characters (tabs and line breaks included) and the invisible
/// formatting characters.
pub(crate) fn text_char(c: char) -> bool {
    ![CONTROL, LINE_BREAK, INVISIBLE, INVISIBLE_ASTRAL]
        .iter()
        .any(|class| contains(class, c))
}

/// Text from outside (a catalog entry's key, which the checks may have
/// refused) as a log line or a terminal may show it: what [`text_char`]
/// refuses (bidirectional overrides, zero-width and control characters)
/// and the backslash written as `\u{…}` escapes, and no more than 100
/// characters (then `…`).
pub(crate) fn shown(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 100 {
            out.push('…');
            break;
        }
        if text_char(c) && c != '\\' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    out
}

/// Human-readable text: 1 to `max` characters, not blank, printable.
pub(crate) fn text_within(at: Fields<'_>, field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(at.err(field, format!("must be 1 to {max} characters, not blank")));
    }
    if !value.chars().all(text_char) {
        return Err(at.err(
            field,
            "must not hold control characters or invisible formatting characters (bidirectional overrides, zero-width)",
        ));
    }
    Ok(())
}

fn text(at: Fields<'_>, field: &str, value: &str) -> Result<()> {
    text_within(at, field, value, MAX_TEXT)
}

fn url(at: Fields<'_>, field: &str, value: Option<&str>) -> Result<()> {
    static URL: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(&patterns::url()).expect("the URL pattern compiles"));
    let Some(value) = value else { return Ok(()) };
    if value.chars().count() > MAX_URL {
        return Err(at.err(field, format!("must be at most {MAX_URL} characters")));
    }
    if !URL.is_match(value) {
        return Err(at.err(
            field,
            "must be an http or https URL (the scheme in lower case) with a host name or address, \
             an optional port (1-65535) and path, and no credentials or query string (no secrets in the catalog)",
        ));
    }
    // The pattern admits only what parses; a host in punycode (`xn--`) must
    // also be valid IDNA.
    url::Url::parse(value).map_err(|e| at.err(field, format!("is not a URL: {e}")))?;
    Ok(())
}

/// A `YYYY-MM-DD` date (RFC 3339's full-date, JSON Schema's `date`).
fn date(at: Fields<'_>, field: &str, value: Option<&str>) -> Result<Option<time::Date>> {
    value
        .map(|v| {
            let shaped = v.len() == 10
                && v.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            shaped
                .then(|| parse_date(v).ok())
                .flatten()
                .ok_or_else(|| at.err(field, format!("'{v}' is not a YYYY-MM-DD date")))
        })
        .transpose()
}

/// A provider status or deprecation status this release knows: clients read
/// any string (so a newer server cannot break them), but a server only
/// writes the values it knows.
pub(crate) fn known(at: Fields<'_>, field: &str, value: &str, known: &[&str]) -> Result<()> {
    if known.contains(&value) {
        return Ok(());
    }
    Err(at.err(field, format!("must be one of {}", known.join(", "))))
}

/// Every check of a provider: its fields, then what it names.
pub(crate) fn provider(state: &SyncState, p: &ProviderSyncInfo, at: Fields<'_>) -> Result<()> {
    provider_fields(p, at)?;
    provider_references(state, p, at)
}

/// The checks of each field of a provider on its own.
pub(crate) fn provider_fields(p: &ProviderSyncInfo, at: Fields<'_>) -> Result<()> {
    provider_fields_since(p, None, at)
}

/// [`provider_fields`] for an update of `was`: a field that keeps its value
/// is not checked again. A store of an earlier release may hold values
/// that these checks refuse now (an id with `//`, a name with a control
/// character); an edit of another field must not be refused for them.
pub(crate) fn provider_fields_since(
    p: &ProviderSyncInfo,
    was: Option<&ProviderSyncInfo>,
    at: Fields<'_>,
) -> Result<()> {
    macro_rules! changed {
        ($field:ident) => {
            was.is_none_or(|was| was.$field != p.$field)
        };
    }
    if changed!(id) {
        id(at, "id", &p.id)?;
    }
    if changed!(status) {
        known(at, "status", p.status.as_str(), ProviderStatus::KNOWN)?;
    }
    if changed!(name) {
        text(at, "name", &p.name)?;
    }
    if changed!(display_name) {
        text(at, "display_name", &p.display_name)?;
    }
    if changed!(provider_type)
        && (!(1..=MAX_PROVIDER_TYPE).contains(&p.provider_type.len())
            || !p.provider_type.chars().all(provider_type_char))
    {
        return Err(at.err(
            "provider_type",
            "must be a lowercase word such as openai, anthropic or openai_compatible",
        ));
    }
    if changed!(base_url) {
        url(at, "base_url", p.base_url.as_deref())?;
    }
    if changed!(health_url) {
        url(at, "health_url", p.health_url.as_deref())?;
    }
    if changed!(fallback_provider_id)
        && let Some(fallback) = &p.fallback_provider_id
    {
        id(at, "fallback_provider_id", fallback)?;
    }
    if !changed!(capabilities) {
        return Ok(());
    }
    if p.capabilities.len() > MAX_CAPABILITIES {
        return Err(at.err(
            "capabilities",
            format!("must list at most {MAX_CAPABILITIES} capabilities"),
        ));
    }
    for (i, capability) in p.capabilities.iter().enumerate() {
        text_within(
            at,
            &format!("capabilities[{i}]"),
            capability,
            MAX_CAPABILITY,
        )?;
        if p.capabilities[..i].contains(capability) {
            // A list clients filter by: twice is a slip, not a weight.
            return Err(at.err(
                &format!("capabilities[{i}]"),
                format!("'{capability}' is listed twice"),
            ));
        }
    }
    Ok(())
}

/// What a provider names: its fallback is another provider that exists.
pub(crate) fn provider_references(
    state: &SyncState,
    p: &ProviderSyncInfo,
    at: Fields<'_>,
) -> Result<()> {
    if let Some(fallback) = &p.fallback_provider_id {
        if fallback == &p.id {
            return Err(at.err("fallback_provider_id", "must name another provider"));
        }
        if state.provider(fallback).is_none() {
            return Err(at.err("fallback_provider_id", format!("no provider '{fallback}'")));
        }
    }
    Ok(())
}

/// Whether a character may appear in a `provider_type`.
fn provider_type_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

/// Every check of a model: its fields, what it names, then the rules
/// between its fields.
pub(crate) fn model(state: &SyncState, m: &ModelSpecification, at: Fields<'_>) -> Result<()> {
    model_fields(m, at)?;
    model_references(state, m, at)?;
    match model_relations(m) {
        Some(broken) => Err(at.err(broken.fields[0], broken.message)),
        None => Ok(()),
    }
}

/// The checks of each field of a model on its own.
pub(crate) fn model_fields(m: &ModelSpecification, at: Fields<'_>) -> Result<()> {
    model_fields_since(m, None, at)
}

/// [`model_fields`] for an update of `was`: a field that keeps its value is
/// not checked again (see [`provider_fields_since`]).
pub(crate) fn model_fields_since(
    m: &ModelSpecification,
    was: Option<&ModelSpecification>,
    at: Fields<'_>,
) -> Result<()> {
    macro_rules! changed {
        ($field:ident) => {
            was.is_none_or(|was| was.$field != m.$field)
        };
    }
    if changed!(id) {
        id(at, "id", &m.id)?;
    }
    if changed!(deprecation_status) {
        known(
            at,
            "deprecation_status",
            m.deprecation_status.as_str(),
            DeprecationStatus::KNOWN,
        )?;
    }
    if changed!(name) {
        text(at, "name", &m.name)?;
    }
    if changed!(provider_id) {
        id(at, "provider_id", &m.provider_id)?;
    }
    if changed!(context_window) && m.context_window == 0 {
        return Err(at.err("context_window", "must be greater than 0"));
    }
    if changed!(max_input_tokens) && m.max_input_tokens == 0 {
        return Err(at.err("max_input_tokens", "must be greater than 0"));
    }
    // Not bounded by the context window: providers publish output limits
    // above their input limits (40 chat models of LiteLLM's catalog do).
    if changed!(max_output_tokens) && m.max_output_tokens == 0 {
        return Err(at.err("max_output_tokens", "must be greater than 0"));
    }
    if changed!(pricing)
        && let Some(pricing) = &m.pricing
    {
        for (field, value) in [
            ("pricing.input_per_million", Some(pricing.input_per_million)),
            (
                "pricing.output_per_million",
                Some(pricing.output_per_million),
            ),
            (
                "pricing.cached_input_per_million",
                pricing.cached_input_per_million,
            ),
        ] {
            let Some(value) = value else { continue };
            if !value.is_finite() || value < 0.0 {
                return Err(at.err(field, "must be a number of dollars, 0 or more"));
            }
        }
    }
    if changed!(deprecation_date) {
        date(at, "deprecation_date", m.deprecation_date.as_deref())?;
    }
    if changed!(sunset_date) {
        date(at, "sunset_date", m.sunset_date.as_deref())?;
    }
    if changed!(replacement_model_id)
        && let Some(replacement) = &m.replacement_model_id
    {
        id(at, "replacement_model_id", replacement)?;
    }
    Ok(())
}

/// What a model names: a provider that exists and has room for it, and a
/// replacement that is another model that exists.
pub(crate) fn model_references(
    state: &SyncState,
    m: &ModelSpecification,
    at: Fields<'_>,
) -> Result<()> {
    let Some(provider) = state.provider(&m.provider_id) else {
        return Err(at.err("provider_id", format!("no provider '{}'", m.provider_id)));
    };
    let joins = state
        .model(&m.id)
        .is_none_or(|old| old.provider_id != m.provider_id);
    if joins && provider.model_ids.len() >= MAX_MODELS_PER_PROVIDER {
        return Err(at.err(
            "provider_id",
            format!(
                "provider '{}' already has {} models, and {MAX_MODELS_PER_PROVIDER} is the most one provider may have",
                m.provider_id,
                provider.model_ids.len()
            ),
        ));
    }
    if let Some(replacement) = &m.replacement_model_id {
        if replacement == &m.id {
            return Err(at.err("replacement_model_id", "must name another model"));
        }
        if state.model(replacement).is_none() {
            return Err(at.err("replacement_model_id", format!("no model '{replacement}'")));
        }
    }
    Ok(())
}

/// A rule between two fields of one entity that its values break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contradiction {
    /// The fields the rule relates; the first is the one to change.
    pub fields: [&'static str; 2],
    pub message: String,
}

/// The rules between a model's fields (its fields each passed on their
/// own): the input limit within the context window, no retirement dates on
/// an active model, the sunset not before the deprecation.
pub(crate) fn model_relations(m: &ModelSpecification) -> Option<Contradiction> {
    if m.max_input_tokens > m.context_window {
        return Some(Contradiction {
            fields: ["max_input_tokens", "context_window"],
            message: format!(
                "must be between 1 and the context window ({})",
                m.context_window
            ),
        });
    }
    // A date of retirement makes a model deprecated (the deprecate
    // operation sets both): an active one with a sunset date was listed as
    // active by `GET /models` while its availability said it was gone.
    if m.deprecation_status == DeprecationStatus::Active {
        let dated = [
            ("deprecation_date", &m.deprecation_date),
            ("sunset_date", &m.sunset_date),
        ]
        .into_iter()
        .find_map(|(field, date)| date.as_ref().map(|_| field));
        if let Some(dated) = dated {
            return Some(Contradiction {
                fields: ["deprecation_status", dated],
                message: format!(
                    "must not be active for a model with a {dated}: make it deprecated \
                     (POST /admin/models/{{id}}/deprecate), or take the date away"
                ),
            });
        }
    }
    let day = |d: &Option<String>| d.as_deref().and_then(|d| parse_date(d).ok());
    if let (Some(deprecated), Some(sunset)) = (day(&m.deprecation_date), day(&m.sunset_date))
        && sunset < deprecated
    {
        return Some(Contradiction {
            fields: ["sunset_date", "deprecation_date"],
            message: format!(
                "must not be before the deprecation date ({})",
                m.deprecation_date.as_deref().unwrap_or_default()
            ),
        });
    }
    None
}

/// The rules above as regular expressions, for the OpenAPI document (and,
/// for URLs, for the check itself). They are written from the same
/// character classes as the predicates, in the syntax that ECMA-262 (JSON
/// Schema), Python and Rust's `regex` read alike: `\uXXXX` escapes,
/// non-capturing groups, no look-around. The tests below hold each to its
/// predicate.
pub(crate) mod patterns {
    use std::fmt::Write as _;

    use super::classes::{CONTROL, ID_PUNCTUATION, INVISIBLE, LINE_BREAK, WHITESPACE};

    /// A character class of everything outside `classes` (and `extra`),
    /// their ranges sorted and merged.
    fn outside(classes: &[&[(char, char)]], extra: &[char]) -> String {
        let mut ranges: Vec<(u32, u32)> = classes
            .iter()
            .flat_map(|c| c.iter())
            .map(|&(low, high)| (u32::from(low), u32::from(high)))
            .chain(extra.iter().map(|&c| (u32::from(c), u32::from(c))))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (low, high) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1 + 1 => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        let mut out = String::from("[^");
        for (low, high) in merged {
            write!(out, "\\u{low:04X}").expect("writing to a String");
            if high != low {
                write!(out, "-\\u{high:04X}").expect("writing to a String");
            }
        }
        out.push(']');
        out
    }

    /// An id: `/`-separated segments of id characters, none empty, `.` or
    /// `..` (a segment holds a character other than `.`, or three dots or
    /// more).
    pub(crate) fn id() -> String {
        let refused = [WHITESPACE, CONTROL, INVISIBLE, ID_PUNCTUATION];
        let any = outside(&refused, &['/']);
        let not_dot = outside(&refused, &['/', '.']);
        let segment = format!("(?:\\.*{not_dot}{any}*|\\.{{3,}})");
        format!("^{segment}(?:/{segment})*$")
    }

    /// Text: no control or invisible formatting characters, and not blank
    /// (one character that is not white space).
    pub(crate) fn text() -> String {
        let printable = outside(&[CONTROL, LINE_BREAK, INVISIBLE], &[]);
        let visible = outside(&[CONTROL, LINE_BREAK, INVISIBLE, WHITESPACE], &[]);
        format!("^{printable}*{visible}{printable}*$")
    }

    /// A `provider_type`: lowercase ASCII letters, digits, `_` and `-`.
    pub(crate) const PROVIDER_TYPE: &str = "^[-_a-z0-9]+$";

    const DEC_OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    /// 0 to 4294967295: an IPv4 address written as one number.
    const NUMBER32: &str = "(?:429496729[0-5]|42949672[0-8][0-9]|4294967[01][0-9]{2}|429496[0-6][0-9]{3}|42949[0-5][0-9]{4}|4294[0-8][0-9]{5}|429[0-3][0-9]{6}|42[0-8][0-9]{7}|4[01][0-9]{8}|[1-3][0-9]{9}|[1-9][0-9]{0,8}|0)";
    const PORT: &str =
        "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
    /// RFC 3986's `pchar`: unreserved, sub-delims, `:`, `@`, percent-escapes.
    const PCHAR: &str = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})";

    fn ipv4() -> String {
        format!("{DEC_OCTET}(?:\\.{DEC_OCTET}){{3}}")
    }

    /// RFC 3986's `IPv6address`, every form of it.
    fn ipv6() -> String {
        let h16 = "[0-9A-Fa-f]{1,4}";
        let ls32 = format!("(?:{h16}:{h16}|{})", ipv4());
        let before = |n: usize| format!("(?:(?:{h16}:){{0,{n}}}{h16})?");
        [
            format!("(?:{h16}:){{6}}{ls32}"),
            format!("::(?:{h16}:){{5}}{ls32}"),
            format!("(?:{h16})?::(?:{h16}:){{4}}{ls32}"),
            format!("{}::(?:{h16}:){{3}}{ls32}", before(1)),
            format!("{}::(?:{h16}:){{2}}{ls32}", before(2)),
            format!("{}::{h16}:{ls32}", before(3)),
            format!("{}::{ls32}", before(4)),
            format!("{}::{h16}", before(5)),
            format!("{}::", before(6)),
        ]
        .map(|form| format!("(?:{form})"))
        .join("|")
    }

    /// A host name whose last label starts with a letter (one that does
    /// not would be read as an IPv4 address, and refused unless it is one).
    fn host_name() -> String {
        let label = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
        let last = "[A-Za-z](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
        format!("(?:{label}\\.)*{last}")
    }

    /// An http(s) URL as the catalog keeps it: a host name, an IPv4
    /// address (dotted, or as one number), or a bracketed IPv6 address; an
    /// optional port, path and fragment; no credentials, no query string.
    /// Everything it matches is an RFC 3986 URI that WHATWG parsing accepts.
    pub(crate) fn url() -> String {
        format!(
            "^https?://(?:{}|{}|{NUMBER32}|\\[(?:{})\\])(?::{PORT})?(?:/{PCHAR}*)*(?:#(?:{PCHAR}|[/?])*)?$",
            host_name(),
            ipv4(),
            ipv6()
        )
    }
}

#[cfg(test)]
mod tests {
    use provider_sync_protocol::{ModelSpecification, ProviderSyncInfo, SyncState};

    use super::*;

    /// Found by a black-box check (2026-12-03): a skipped entry's key was
    /// printed as it was, its bidirectional override reordering the line.
    #[test]
    fn text_from_outside_is_shown_escaped_and_bounded() {
        assert_eq!(shown("gpt-4o"), "gpt-4o");
        assert_eq!(
            shown("evil\u{202e}gpt\u{200b}\\\n"),
            "evil\\u{202e}gpt\\u{200b}\\u{5c}\\u{a}"
        );
        assert_eq!(shown("x\u{3164}y"), "x\\u{3164}y");
        let long = "a".repeat(500);
        assert_eq!(shown(&long), format!("{}…", "a".repeat(100)));
    }

    #[test]
    fn a_provider_holds_a_bounded_number_of_models() {
        let mut state = SyncState::default();
        let mut provider: ProviderSyncInfo = serde_json::from_value(serde_json::json!({
            "id": "p", "name": "P", "display_name": "P", "provider_type": "openai",
            "base_url": null, "health_url": null, "enabled": true, "priority": 0,
            "status": "available", "fallback_provider_id": null, "capabilities": [],
            "model_ids": [], "revision": 1,
            "health": {"last_check": null, "latency_ms": null, "error_rate": 0.0,
                       "consecutive_failures": 0, "message": null}
        }))
        .unwrap();
        provider.model_ids = (0..MAX_MODELS_PER_PROVIDER)
            .map(|i| format!("m{i}"))
            .collect();
        state.providers.push(provider);
        let model = |id: &str| -> ModelSpecification {
            serde_json::from_value(serde_json::json!({
                "id": id, "name": id, "provider_id": "p", "context_window": 10,
                "max_input_tokens": 10, "max_output_tokens": 10, "supports_streaming": true,
                "supports_vision": false, "supports_function_calling": false,
                "supports_json_mode": false, "supports_reasoning": false, "pricing": null,
                "deprecation_status": "active", "deprecation_date": null,
                "sunset_date": null, "replacement_model_id": null, "revision": 1
            }))
            .unwrap()
        };
        let refused = super::model(&state, &model("one-more"), Fields("")).unwrap_err();
        assert!(refused.to_string().starts_with("provider_id:"), "{refused}");
        // A model it already has may still change.
        state.all_models.push(model("m0"));
        assert!(super::model(&state, &model("m0"), Fields("")).is_ok());
    }

    #[test]
    fn the_classes_are_the_standard_librarys() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(contains(CONTROL, c), c.is_control(), "{c:?}");
            assert_eq!(contains(WHITESPACE, c), c.is_whitespace(), "{c:?}");
        }
    }

    /// Every character of the BMP; past it, a sample. Not those of
    /// `INVISIBLE_ASTRAL`, which the checks refuse and the document's
    /// patterns leave out (see `the_astral_invisible_characters_are_refused`).
    fn chars() -> impl Iterator<Item = char> {
        (0..=0xFFFF)
            .chain((0x10000..=0x10FFFF).step_by(251))
            .filter_map(char::from_u32)
            .filter(|&c| !contains(INVISIBLE_ASTRAL, c))
    }

    #[test]
    fn the_astral_invisible_characters_are_refused() {
        for &(low, high) in INVISIBLE_ASTRAL {
            for c in [low, high] {
                assert!(!id_char(c) && !text_char(c), "{c:?}");
            }
        }
        // From the review: every plane's noncharacters.
        for plane in 1..=16u32 {
            for c in [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff] {
                let c = char::from_u32(c).unwrap();
                assert!(!id_char(c) && !text_char(c), "{c:?}");
            }
        }
    }

    fn regex(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).unwrap()
    }

    #[test]
    fn the_text_pattern_is_the_text_rule() {
        let text = regex(&patterns::text());
        for c in chars() {
            let check = |s: &str| text_within(Fields(""), "f", s, MAX_TEXT).is_ok();
            for sample in [format!("a{c}"), c.to_string()] {
                assert_eq!(text.is_match(&sample), check(&sample), "{sample:?}");
            }
        }
        assert!(!text.is_match(""));
        assert!(!text.is_match(" \u{3000} "));
    }

    #[test]
    fn the_id_pattern_is_the_id_rule() {
        let pattern = regex(&patterns::id());
        let check = |s: &str| id(Fields(""), "id", s).is_ok();
        for c in chars() {
            for sample in [format!("a{c}"), c.to_string(), format!("{c}/b")] {
                assert_eq!(pattern.is_match(&sample), check(&sample), "{sample:?}");
            }
        }
        // Segments: every string of up to six of these characters.
        let alphabet = ['a', '.', '/', 'é'];
        let mut samples = vec![String::new()];
        for _ in 0..6 {
            samples = samples
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .chain(samples.iter().cloned())
                .collect();
            samples.sort();
            samples.dedup();
        }
        for sample in samples {
            assert_eq!(pattern.is_match(&sample), check(&sample), "{sample:?}");
        }
    }

    #[test]
    fn the_provider_type_pattern_is_its_rule() {
        let pattern = regex(patterns::PROVIDER_TYPE);
        for c in chars() {
            assert_eq!(
                pattern.is_match(&c.to_string()),
                provider_type_char(c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn urls_the_pattern_admits_parse_and_others_are_refused() {
        let check = |s: &str| url(Fields(""), "base_url", Some(s)).is_ok();
        for good in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:8080/health",
            "http://2130706433:80/health",
            "http://[::ffff:127.0.0.1]:1/health",
            "http://[2001:db8::1]/",
            "http://localhost",
            "https://my_host.example.com/a%20b/c;d=e#top",
        ] {
            assert!(check(good), "{good}");
        }
        for bad in [
            "https://user:secret@example.com",
            "https://example.com/?api_key=1",
            "ftp://example.com/",
            "HTTPS://example.com/",
            "https://example.com/a b",
            "https://1.2.3.256/",
            "https://a.123/",
            "https://4294967296/",
            "https://example.com:65536/",
            // Port 0 names no port anything listens on (a black-box check,
            // 2026-12-04).
            "http://127.0.0.1:0/",
            "https://example.com:00/",
            "https://[::1::]/",
            "https://exa%41mple.com/",
            "https:example.com",
            "",
        ] {
            assert!(!check(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// What the document promises is accepted (`xn--` labels aside,
        /// which must also be valid IDNA, as the document says).
        #[test]
        fn every_url_the_pattern_admits_is_accepted(
            url in proptest::string::string_regex(
                patterns::url().trim_start_matches('^').trim_end_matches('$')
            ).unwrap()
        ) {
            proptest::prop_assume!(url.chars().count() <= MAX_URL);
            proptest::prop_assume!(!url.to_ascii_lowercase().contains("xn--"));
            proptest::prop_assert!(
                super::url(Fields(""), "base_url", Some(&url)).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn dates_are_full_dates_only() {
        let check = |s: &str| date(Fields(""), "d", Some(s)).is_ok();
        for good in ["2026-11-30", "0000-02-29", "2024-02-29", "9999-12-31"] {
            assert!(check(good), "{good}");
        }
        for bad in [
            "2026-1-30",
            "+2026-11-30",
            "2026-11-31",
            "2025-02-29",
            "20260-11-30",
            "2026-11-30T00:00:00Z",
            "2026/11/30",
        ] {
            assert!(!check(bad), "{bad}");
        }
    }

    #[test]
    fn names_refuse_control_and_invisible_characters_only() {
        for good in [
            "GPT-5 mini",
            "Llama 3.1 (405B) «Instruct»",
            "通义千问",
            "a/b: \"quoted\" #1",
        ] {
            assert!(good.chars().all(text_char), "{good}");
        }
        // From the second review: variation selectors and fillers read as
        // nothing: a name of them alone, or one that reads as another's.
        for spoof in [
            "\u{115f}",
            "\u{fe0f}",
            "GPT-4o\u{fe0f}",
            "a\u{180b}",
            "a\u{e0100}",
        ] {
            assert!(!spoof.chars().all(text_char), "{spoof:?}");
            assert!(!spoof.chars().all(id_char), "{spoof:?}");
        }
        for bad in [
            "a\tb",
            "a\nb",
            "a\u{0}b",
            "a\u{202e}b",
            "a\u{200d}b",
            "a\u{2067}b",
            "\u{feff}a",
            // Found by a black-box check (2026-12-02): tag characters
            // (hidden ASCII text), line separators, the deprecated format
            // characters, Hangul fillers, variation selectors,
            // noncharacters.
            "gpt-x\u{e0001}",
            "ok\u{e0049}\u{e0047}\u{e004e}",
            "Line1\u{2028}Line2",
            "a\u{2029}b",
            "a\u{206a}b",
            "a\u{3164}b",
            "a\u{34f}b",
            "a\u{ffff}b",
            "a\u{fdd0}b",
            "a\u{1d173}b",
        ] {
            assert!(!bad.chars().all(text_char), "{bad:?}");
            assert!(!bad.chars().all(id_char), "{bad:?}");
        }
    }
}
