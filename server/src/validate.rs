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

/// The longest id, in bytes.
pub(crate) const MAX_ID: usize = 256;
/// The longest name, display name or capability name, in bytes.
pub(crate) const MAX_TEXT: usize = 256;
/// The longest capability name, in bytes.
pub(crate) const MAX_CAPABILITY: usize = 64;
/// The most capabilities a provider lists.
pub(crate) const MAX_CAPABILITIES: usize = 64;
/// The longest `base_url` or `health_url`, in bytes.
pub(crate) const MAX_URL: usize = 2048;
/// The most models one provider has (its `model_ids`).
pub(crate) const MAX_MODELS_PER_PROVIDER: usize = 10_000;
/// The longest status message an operator sets, in bytes.
pub(crate) const MAX_MESSAGE: usize = 1000;

/// The invisible formatting characters that make text read other than it
/// is: soft hyphen, bidirectional marks, embeddings, overrides and
/// isolates, zero-width characters, the byte-order mark, interlinear
/// annotation controls.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Whether a character may appear in an id: anything printable but
/// whitespace, control characters, the invisible formatting characters, and
/// the few that mean something in a URL or in HTML.
pub(crate) fn id_char(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !invisible(c)
        && !matches!(c, '%' | '?' | '#' | '\\' | '<' | '>' | '"' | '\'' | '`')
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

/// Whether a character may appear in a name or a message: anything but
/// control characters (tabs and line breaks included) and the invisible
/// formatting characters.
pub(crate) fn text_char(c: char) -> bool {
    !c.is_control() && !invisible(c)
}

/// Human-readable text: 1 to `max` bytes, not blank, printable.
pub(crate) fn text_within(at: Fields<'_>, field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.len() > max {
        return Err(at.err(field, format!("must be 1 to {max} bytes, not blank")));
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
    let Some(value) = value else { return Ok(()) };
    if value.len() > MAX_URL {
        return Err(at.err(field, format!("must be at most {MAX_URL} bytes")));
    }
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
                "provider '{}' has {MAX_MODELS_PER_PROVIDER} models, the most one provider may have",
                m.provider_id
            ),
        ));
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

#[cfg(test)]
mod tests {
    use provider_sync_protocol::{ModelSpecification, ProviderSyncInfo, SyncState};

    use super::*;

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
    fn names_refuse_control_and_invisible_characters_only() {
        for good in [
            "GPT-5 mini",
            "Llama 3.1 (405B) «Instruct»",
            "通义千问",
            "a/b: \"quoted\" #1",
        ] {
            assert!(good.chars().all(text_char), "{good}");
        }
        for bad in [
            "a\tb",
            "a\nb",
            "a\u{0}b",
            "a\u{202e}b",
            "a\u{200d}b",
            "a\u{2067}b",
            "\u{feff}a",
        ] {
            assert!(!bad.chars().all(text_char), "{bad:?}");
        }
    }
}
