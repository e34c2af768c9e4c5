//! Checks every entity before it is written, naming the field at fault.
//! The admin API and the catalog loader share these, so both refuse the same
//! things.

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

const MAX_ID: usize = 256;
const MAX_TEXT: usize = 256;

/// Whether a character may appear in an id: anything printable but
/// whitespace, control characters, the invisible formatting characters that
/// make one id look like another (bidirectional overrides, zero-width), and
/// the few that mean something in a URL or in HTML.
pub(crate) fn id_char(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(
            c,
            '%' | '?' | '#' | '\\' | '<' | '>' | '"' | '\'' | '`'
                | '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// Ids are what providers call their models, kept as they write them
/// (LiteLLM's catalog has `/`, `:`, `.`, `*`, `~` and `@` in ids): printable
/// characters but whitespace and `% ? # \ < > " ' ``, in `/`-separated
/// segments that are neither empty nor `.` or `..`; the API serves them
/// URL-encoded.
fn id(at: Fields<'_>, field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID {
        return Err(at.err(field, format!("must be 1 to {MAX_ID} bytes")));
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

fn text(at: Fields<'_>, field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > MAX_TEXT {
        return Err(at.err(field, format!("must be 1 to {MAX_TEXT} characters")));
    }
    Ok(())
}

fn url(at: Fields<'_>, field: &str, value: Option<&str>) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    let parsed = url::Url::parse(value).map_err(|e| at.err(field, format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(at.err(field, "must be an http or https URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return Err(at.err(
            field,
            "must not carry credentials or a query string (no secrets in the catalog)",
        ));
    }
    Ok(())
}

fn date(at: Fields<'_>, field: &str, value: Option<&str>) -> Result<Option<time::Date>> {
    value
        .map(|v| {
            parse_date(v).map_err(|_| at.err(field, format!("'{v}' is not a YYYY-MM-DD date")))
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

pub(crate) fn provider(state: &SyncState, p: &ProviderSyncInfo, at: Fields<'_>) -> Result<()> {
    id(at, "id", &p.id)?;
    known(at, "status", p.status.as_str(), ProviderStatus::KNOWN)?;
    text(at, "name", &p.name)?;
    text(at, "display_name", &p.display_name)?;
    if p.provider_type.is_empty()
        || p.provider_type.len() > 64
        || !p
            .provider_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(at.err(
            "provider_type",
            "must be a lowercase word such as openai, anthropic or openai_compatible",
        ));
    }
    url(at, "base_url", p.base_url.as_deref())?;
    url(at, "health_url", p.health_url.as_deref())?;
    if let Some(fallback) = &p.fallback_provider_id {
        if fallback == &p.id {
            return Err(at.err("fallback_provider_id", "must name another provider"));
        }
        if state.provider(fallback).is_none() {
            return Err(at.err("fallback_provider_id", format!("no provider '{fallback}'")));
        }
    }
    for (i, capability) in p.capabilities.iter().enumerate() {
        if capability.trim().is_empty() || capability.len() > 64 {
            return Err(at.err(&format!("capabilities[{i}]"), "must be 1 to 64 characters"));
        }
    }
    Ok(())
}

pub(crate) fn model(state: &SyncState, m: &ModelSpecification, at: Fields<'_>) -> Result<()> {
    id(at, "id", &m.id)?;
    known(
        at,
        "deprecation_status",
        m.deprecation_status.as_str(),
        DeprecationStatus::KNOWN,
    )?;
    text(at, "name", &m.name)?;
    if state.provider(&m.provider_id).is_none() {
        return Err(at.err("provider_id", format!("no provider '{}'", m.provider_id)));
    }
    if m.context_window == 0 {
        return Err(at.err("context_window", "must be greater than 0"));
    }
    if m.max_input_tokens == 0 || m.max_input_tokens > m.context_window {
        return Err(at.err(
            "max_input_tokens",
            format!(
                "must be between 1 and the context window ({})",
                m.context_window
            ),
        ));
    }
    // Not bounded by the context window: providers publish output limits
    // above their input limits (40 chat models of LiteLLM's catalog do).
    if m.max_output_tokens == 0 {
        return Err(at.err("max_output_tokens", "must be greater than 0"));
    }
    if let Some(pricing) = &m.pricing {
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
    let deprecated = date(at, "deprecation_date", m.deprecation_date.as_deref())?;
    let sunset = date(at, "sunset_date", m.sunset_date.as_deref())?;
    if let (Some(deprecated), Some(sunset)) = (deprecated, sunset)
        && sunset < deprecated
    {
        return Err(at.err("sunset_date", "must not be before the deprecation date"));
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
