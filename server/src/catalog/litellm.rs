//! LiteLLM's `model_prices_and_context_window.json` as a catalog source.
//!
//! One provider per distinct `litellm_provider`, ids kept as LiteLLM writes
//! them. The mapping onto the protocol's types:
//!
//! | LiteLLM | provider-sync |
//! | --- | --- |
//! | `litellm_provider` | `provider_id` (and a provider with a readable display name) |
//! | `max_input_tokens`, else `max_tokens` | `context_window` (an entry with neither is skipped) |
//! | `max_input_tokens`, `max_output_tokens` | the same, as given (absent: the context window) |
//! | `input_cost_per_token`, `output_cost_per_token` | `pricing` per 1M tokens (both needed) |
//! | `cache_read_input_token_cost` | `pricing.cached_input_per_million` |
//! | `supports_vision`, `supports_function_calling`, `supports_reasoning` | the same |
//! | `supports_response_schema` | `supports_json_mode` |
//! | `supports_native_streaming` (absent: true) | `supports_streaming` |
//! | `deprecation_date` (the day it stops working) | `sunset_date`, with `deprecation_status = deprecated` |
//! | `successor_model` | `replacement_model_id` (when that model is imported too) |
//!
//! Nothing is computed from today's date, so the same file always maps to
//! the same catalog. What cannot be mapped is skipped and counted, never
//! refused: one odd entry does not stop the rest.

use std::collections::{BTreeMap, BTreeSet};

use provider_sync_protocol::{DeprecationStatus, ModelPricing, NewModel, NewProvider};
use serde_json::{Map, Value};

use super::reconcile::{LIMITS, RETIREMENT_DATES};
use super::{CatalogError, ImportReport};

/// Which entries to import.
#[derive(Debug, Clone, Default)]
pub struct LitellmFilter {
    /// `mode` values to import; empty means `chat`.
    pub modes: Vec<String>,
    /// `litellm_provider` values to import; empty means all.
    pub providers: Vec<String>,
}

impl LitellmFilter {
    fn wants_mode(&self, mode: &str) -> bool {
        if self.modes.is_empty() {
            mode == "chat"
        } else {
            self.modes.iter().any(|m| m == mode)
        }
    }

    fn wants_provider(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }
}

/// What an import produced: create bodies, as the TOML format has them.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    pub providers: Vec<NewProvider>,
    pub models: Vec<NewModel>,
}

/// The file's entries by key, sorted, and the keys given more than once:
/// the last copy is taken, as LiteLLM's own loader takes it (its file has
/// shipped with such keys), and each is reported. Then the keys of entries
/// that are JSON but cannot be read as values here (a number past a
/// double's range, such as `1e400`, which Python reads as infinity;
/// nesting past 128 levels): skipped one by one, not the whole file.
struct Entries(Vec<(String, Value)>, Vec<String>, Vec<String>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of models")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries: BTreeMap<String, Option<Value>> = BTreeMap::new();
                let mut twice = Vec::new();
                while let Some((key, raw)) =
                    map.next_entry::<String, Box<serde_json::value::RawValue>>()?
                {
                    let value = serde_json::from_str::<Value>(raw.get()).ok();
                    if entries.insert(key.clone(), value).is_some() {
                        twice.push(key);
                    }
                }
                let mut unreadable = Vec::new();
                let entries = entries
                    .into_iter()
                    .filter_map(|(key, value)| match value {
                        Some(value) => Some((key, value)),
                        None => {
                            unreadable.push(key);
                            None
                        }
                    })
                    .collect();
                Ok(Entries(entries, twice, unreadable))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A filter value no entry has (a misspelt `anthropc`) is refused: it
/// would remove what the name was meant to keep.
fn refuse_unmatched(
    path: &str,
    entries: &[(String, Value)],
    filter: &LitellmFilter,
) -> Result<(), CatalogError> {
    for (filter_name, wanted, key) in [
        ("mode", &filter.modes, "mode"),
        ("provider", &filter.providers, "litellm_provider"),
    ] {
        let found: BTreeSet<&str> = entries
            .iter()
            .map(|(_, e)| e)
            .filter_map(|e| e.get(key).and_then(Value::as_str))
            .collect();
        if let Some(missing) = wanted.iter().find(|w| !found.contains(w.as_str())) {
            let closest = found
                .iter()
                .map(|f| (strsim::jaro_winkler(missing, f), *f))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let hint = closest.map_or(String::new(), |(_, f)| {
                format!(" (did you mean '{}'?)", crate::validate::shown(f))
            });
            return Err(CatalogError {
                path: path.to_owned(),
                line: None,
                field: None,
                message: format!(
                    "the {filter_name} filter's '{}' (--catalog-{filter_name}s, or the [litellm] table's {filter_name}s) is no entry's {key}{hint}: refused, as importing without it would remove what it names",
                    crate::validate::shown(missing)
                ),
            });
        }
    }
    Ok(())
}

/// Reads the JSON text of LiteLLM's catalog.
pub(crate) fn import(
    path: &str,
    text: &str,
    filter: &LitellmFilter,
    report: &mut ImportReport,
) -> Result<Imported, CatalogError> {
    let Entries(entries, twice, unreadable) =
        serde_json::from_str(text).map_err(|e| CatalogError {
            path: path.to_owned(),
            line: Some(e.line()),
            field: None,
            message: match e.classify() {
                // The text as a whole is no JSON (NaN, a file cut short): no
                // entry can be read.
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!("not JSON text, so no entry can be read: {e}")
                }
                _ => format!("not LiteLLM's catalog (a JSON object of models): {e}"),
            },
        })?;
    for key in &twice {
        report.adjust("key given more than once: its last copy taken", key);
    }
    for key in &unreadable {
        // Not taken as removed: a model the store has under this id stays.
        report.skip(
            "a value past what can be read (a number beyond a double's range, or nesting past 128 levels)",
            key,
        );
        report.unreadable_models.insert(key.clone());
    }
    refuse_unmatched(path, &entries, filter)?;
    let mut providers: BTreeMap<String, NewProvider> = BTreeMap::new();
    let mut models = Vec::new();
    let mut successors = Vec::new();
    // The providers of entries that could not be read.
    let mut unread_of = BTreeSet::new();
    for (id, entry) in entries.iter() {
        report.entries += 1;
        if id == "sample_spec" {
            report.skip("the format's own example (sample_spec)", id);
            continue;
        }
        let Some(entry) = entry.as_object() else {
            report.skip("not an object", id);
            report.unreadable_models.insert(id.to_owned());
            continue;
        };
        // LiteLLM's other name for an entry (`claude-opus-latest`), with
        // nothing of its own: the entry it names is imported under its own
        // id. (Counted as left out by the mode filter, it had no mode.)
        if entry.contains_key("alias_of") && !entry.contains_key("litellm_provider") {
            report.skip(
                "an alias of another entry (alias_of): imported under that entry's id",
                id,
            );
            continue;
        }
        let mode = match entry.get("mode") {
            None | Some(Value::Null) => "",
            Some(Value::String(mode)) => mode,
            Some(_) => {
                report.skip("mode not a string", id);
                report.unreadable_models.insert(id.to_owned());
                continue;
            }
        };
        if !filter.wants_mode(mode) {
            report.filtered += 1;
            continue;
        }
        let Some(provider) = entry.get("litellm_provider").and_then(Value::as_str) else {
            report.skip("no litellm_provider", id);
            report.unreadable_models.insert(id.to_owned());
            continue;
        };
        if !filter.wants_provider(provider) {
            report.filtered += 1;
            continue;
        }
        let Some(model) = map_model(id, provider, entry, report) else {
            unread_of.insert(provider.to_owned());
            continue;
        };
        if let Some(successor) = entry.get("successor_model").and_then(Value::as_str) {
            successors.push((models.len(), successor.to_owned()));
        }
        providers
            .entry(provider.to_owned())
            .or_insert_with(|| map_provider(provider));
        models.push(model);
    }
    // A provider the file names only through entries it cannot read is in
    // the file, unread: one the store has stays (taken as removed, it went
    // with those models).
    for provider in unread_of {
        if !providers.contains_key(&provider) {
            report.unreadable_providers.insert(provider);
        }
    }
    let imported: BTreeSet<&str> = models.iter().map(|m| m.id.as_str()).collect();
    let mut replacements = Vec::new();
    for (index, successor) in successors {
        if successor != models[index].id && imported.contains(successor.as_str()) {
            replacements.push((index, successor));
        } else if report.unreadable_models.contains(&successor) {
            // Not cleared on the strength of an entry the file could not
            // read: the store's replacement stays.
            let id = models[index].id.clone();
            report.adjust(
                "the entry successor_model names could not be read (and was skipped): the store's replacement kept",
                &id,
            );
            (report.unreadable_fields.entry(id).or_default()).push("replacement_model_id");
        } else {
            report.adjust(
                "successor_model not imported: replacement left empty",
                &models[index].id,
            );
        }
    }
    for (index, successor) in replacements {
        models[index].replacement_model_id = Some(successor);
    }
    Ok(Imported {
        providers: providers.into_values().collect(),
        models,
    })
}

fn map_provider(litellm: &str) -> NewProvider {
    NewProvider {
        id: litellm.to_owned(),
        name: display_name(litellm),
        provider_type: Some(provider_type(litellm)),
        ..NewProvider::default()
    }
}

fn map_model(
    id: &str,
    provider: &str,
    entry: &Map<String, Value>,
    report: &mut ImportReport,
) -> Option<NewModel> {
    let limit = |key: &str| entry.get(key).and_then(whole_number);
    let max_input = limit("max_input_tokens");
    // A key given with a value that is not what it should be (not `null`).
    let given = |key: &str| entry.get(key).is_some_and(|v| !v.is_null());
    let Some(context_window) = max_input.or_else(|| limit("max_tokens")) else {
        report.unreadable_models.insert(id.to_owned());
        report.skip(
            if given("max_input_tokens") || given("max_tokens") {
                "max_input_tokens and max_tokens not whole numbers from 1 to 4294967295"
            } else {
                "no max_input_tokens or max_tokens"
            },
            id,
        );
        return None;
    };
    // The fields whose values could not be read: a model the store has
    // already keeps its own (`ImportReport::unreadable_fields`).
    let mut unreadable: Vec<&'static str> = Vec::new();
    if given("max_input_tokens") && max_input.is_none() {
        unreadable.extend(LIMITS);
        report.adjust(
            "max_input_tokens not a whole number from 1 to 4294967295: left out (max_tokens taken as the context window)",
            id,
        );
    }
    let max_output = limit("max_output_tokens");
    if given("max_output_tokens") && max_output.is_none() {
        unreadable.extend(LIMITS);
        report.adjust(
            "max_output_tokens not a whole number from 1 to 4294967295: left out",
            id,
        );
    }
    // A capability given as something other than true or false is read as
    // not supported, and said so.
    let mut flag = |key: &'static str, field: &'static str, absent: bool| match entry.get(key) {
        None | Some(Value::Null) => absent,
        Some(Value::Bool(value)) => *value,
        Some(_) => {
            unreadable.push(field);
            report.adjust(&[key, " not true or false: taken as false"].concat(), id);
            false
        }
    };
    let supports_streaming = flag("supports_native_streaming", "supports_streaming", true);
    let supports_vision = flag("supports_vision", "supports_vision", false);
    let supports_function_calling = flag(
        "supports_function_calling",
        "supports_function_calling",
        false,
    );
    let supports_json_mode = flag("supports_response_schema", "supports_json_mode", false);
    let supports_reasoning = flag("supports_reasoning", "supports_reasoning", false);
    let price = |key: &str| entry.get(key).and_then(price_per_million);
    let pricing = match (
        price("input_cost_per_token"),
        price("output_cost_per_token"),
    ) {
        (Some(input), Some(output)) => Some(ModelPricing {
            input_per_million: input,
            output_per_million: output,
            cached_input_per_million: price("cache_read_input_token_cost"),
        }),
        (input, output) => {
            let unreadable_price = ["input_cost_per_token", "output_cost_per_token"]
                .iter()
                .any(|key| given(key) && price(key).is_none());
            if unreadable_price {
                unreadable.push("pricing");
                report.adjust("a price not a number of zero or more: no pricing", id);
            } else if input.is_some() || output.is_some() {
                report.adjust("only one of input and output price: no pricing", id);
            }
            None
        }
    };
    let sunset_date = match entry.get("deprecation_date") {
        None | Some(Value::Null) => None,
        Some(Value::String(date)) if provider_sync_protocol::parse_date(date).is_ok() => {
            Some(date.clone())
        }
        Some(_) => {
            unreadable.extend(RETIREMENT_DATES);
            report.adjust("deprecation_date not a YYYY-MM-DD date: left out", id);
            None
        }
    };
    if !unreadable.is_empty() {
        unreadable.sort_unstable();
        unreadable.dedup();
        report.unreadable_fields.insert(id.to_owned(), unreadable);
    }
    Some(NewModel {
        id: id.to_owned(),
        name: id.to_owned(),
        provider_id: provider.to_owned(),
        context_window,
        max_input_tokens: max_input,
        max_output_tokens: max_output,
        supports_streaming: Some(supports_streaming),
        supports_vision: Some(supports_vision),
        supports_function_calling: Some(supports_function_calling),
        supports_json_mode: Some(supports_json_mode),
        supports_reasoning: Some(supports_reasoning),
        pricing,
        deprecation_status: Some(if sunset_date.is_some() {
            DeprecationStatus::Deprecated
        } else {
            DeprecationStatus::Active
        }),
        deprecation_date: None,
        sunset_date,
        replacement_model_id: None,
    })
}

/// A token limit: a positive whole number that fits the protocol's `u32`.
fn whole_number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(n) => u32::try_from(n).ok().filter(|n| *n > 0),
            None => n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u32),
        },
        _ => None,
    }
}

/// A per-token price in dollars as a per-million price, without the float
/// noise of a multiplication (2.5e-06 becomes 2.5, not 2.4999999999999996).
fn price_per_million(value: &Value) -> Option<f64> {
    let per_token = value.as_f64().filter(|p| p.is_finite() && *p >= 0.0)?;
    // `-0.0` is free, as 0 (adding 0 drops the sign).
    Some(shift_decimal(per_token, 6) + 0.0)
}

/// `value * 10^places`, done on the shortest decimal form of `value`.
pub(crate) fn shift_decimal(value: f64, places: i32) -> f64 {
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').expect("{:e} writes an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} writes an integer exponent");
    format!("{mantissa}e{}", exponent + places)
        .parse()
        .expect("a mantissa and an exponent parse")
}

/// The protocol's provider type for a LiteLLM provider: the family where one
/// is known, else the LiteLLM name itself.
fn provider_type(litellm: &str) -> String {
    let family = match litellm {
        "openai" | "text-completion-openai" => "openai",
        "azure" | "azure_text" => "azure",
        "anthropic" => "anthropic",
        "gemini" | "palm" => "google",
        _ if litellm.starts_with("vertex_ai") => "google",
        "mistral" | "codestral" | "text-completion-codestral" => "mistral",
        _ if litellm.starts_with("bedrock") => "bedrock",
        _ => "",
    };
    if !family.is_empty() {
        return family.to_owned();
    }
    let word: String = litellm
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if word.is_empty() {
        "openai_compatible".to_owned()
    } else {
        word
    }
}

/// LiteLLM provider ids whose readable name is not the one made from the id
/// (`generated_name`), sorted by id.
const KNOWN_NAMES: &[(&str, &str)] = &[
    ("ai21", "AI21 Labs"),
    ("azure", "Azure OpenAI"),
    ("azure_ai", "Azure AI Foundry"),
    ("bedrock", "Amazon Bedrock"),
    ("bedrock_converse", "Amazon Bedrock (Converse)"),
    ("bedrock_mantle", "Amazon Bedrock Mantle"),
    ("cloudflare", "Cloudflare Workers AI"),
    ("codestral", "Mistral Codestral"),
    ("cohere_chat", "Cohere"),
    ("dashscope", "Alibaba Cloud DashScope"),
    ("deepinfra", "DeepInfra"),
    ("deepseek", "DeepSeek"),
    ("friendliai", "FriendliAI"),
    ("gemini", "Google Gemini"),
    ("gigachat", "GigaChat"),
    ("github_copilot", "GitHub Copilot"),
    ("lambda_ai", "Lambda"),
    ("meta_llama", "Meta Llama API"),
    ("minimax", "MiniMax"),
    ("mistral", "Mistral AI"),
    ("moonshot", "Moonshot AI"),
    ("nebius", "Nebius AI Studio"),
    ("nlp_cloud", "NLP Cloud"),
    ("novita", "Novita AI"),
    ("oci", "Oracle Cloud (OCI)"),
    ("openai", "OpenAI"),
    ("openrouter", "OpenRouter"),
    ("ovhcloud", "OVHcloud AI Endpoints"),
    ("palm", "Google PaLM"),
    ("sagemaker", "Amazon SageMaker"),
    ("sambanova", "SambaNova"),
    ("snowflake", "Snowflake Cortex"),
    ("tencent", "Tencent Hunyuan"),
    ("v0", "Vercel v0"),
    ("vertex_ai", "Google Vertex AI"),
    (
        "vertex_ai-language-models",
        "Google Vertex AI (language models)",
    ),
    ("wandb", "Weights & Biases"),
    ("watsonx", "IBM watsonx"),
    ("xai", "xAI"),
    ("xiaomi_mimo", "Xiaomi MiMo"),
    ("zai", "Z.ai"),
];

/// A readable name for a LiteLLM provider id.
pub(crate) fn display_name(litellm: &str) -> String {
    match KNOWN_NAMES.binary_search_by(|(id, _)| id.cmp(&litellm)) {
        Ok(at) => KNOWN_NAMES[at].1.to_owned(),
        Err(_) => generated_name(litellm),
    }
}

/// A name made from the id's words: `vertex_ai-anthropic_models` →
/// "Vertex AI Anthropic Models".
fn generated_name(litellm: &str) -> String {
    let words: Vec<String> = litellm
        .split(['_', '-', '.', '/'])
        .filter(|w| !w.is_empty())
        .map(|word| match word {
            "ai" => "AI".to_owned(),
            "vertex" => "Vertex".to_owned(),
            _ => {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                }
            }
        })
        .collect();
    let name = words.join(" ");
    if name.trim().is_empty() {
        litellm.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_prices_become_per_million_without_float_noise() {
        for (per_token, per_million) in [
            (2.5e-06, 2.5),
            (1e-05, 10.0),
            (1.25e-07, 0.125),
            (3e-07, 0.3),
            (1.1e-06, 1.1),
            (0.0, 0.0),
            (6e-05, 60.0),
            (4.4e-06, 4.4),
            (4.2e-09, 0.0042),
            (1.05e-08, 0.0105),
            (6.25e-09, 0.00625),
        ] {
            assert_eq!(shift_decimal(per_token, 6), per_million, "{per_token}");
        }
        // A plain multiplication would not do (LiteLLM 1.110.2 has 204 such prices).
        assert_ne!(4.2e-09 * 1e6, 0.0042);
        assert_ne!(1.05e-08 * 1e6, 0.0105);
    }

    /// An alias (LiteLLM 1.110.2 has 98) is reported as one, not counted
    /// as left out by the mode filter; the entry it names is imported.
    #[test]
    fn an_alias_is_reported_as_one() {
        let text = r#"{"claude-opus-5-5": {"litellm_provider": "anthropic", "mode": "chat", "max_input_tokens": 200000},
                       "claude-opus-latest": {"alias_of": "claude-opus-5-5"}}"#;
        let mut report = ImportReport::default();
        let imported = import("a.json", text, &LitellmFilter::default(), &mut report).unwrap();
        assert_eq!(imported.models.len(), 1);
        assert_eq!(imported.models[0].id, "claude-opus-5-5");
        assert_eq!(report.filtered, 0);
        assert_eq!(
            report.skipped,
            [(
                "an alias of another entry (alias_of): imported under that entry's id".to_owned(),
                1,
                vec!["claude-opus-latest".to_owned()]
            )]
        );
    }

    /// An entry the import cannot read at all counts as in the file,
    /// unread (a model the store has keeps its values): one that is not an
    /// object, or has a mode or provider that is not a string; and a
    /// provider that only such entries name (it was taken as removed).
    #[test]
    fn entries_that_cannot_be_read_are_reported_with_their_providers() {
        let text = r#"{
            "a": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 1000},
            "b": {"litellm_provider": "openai", "mode": "chat", "max_tokens": "x"},
            "c": {"litellm_provider": "mistral", "mode": "chat", "max_tokens": -1},
            "d": "not an entry",
            "e": {"litellm_provider": "openai", "mode": 7, "max_tokens": 1000},
            "f": {"litellm_provider": 7, "mode": "chat", "max_tokens": 1000},
            "g": {"litellm_provider": "cohere", "mode": "embedding", "max_tokens": "x"}
        }"#;
        let mut report = ImportReport::default();
        let imported = import("t.json", text, &LitellmFilter::default(), &mut report).unwrap();
        let ids: Vec<&str> = imported.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        let unread: Vec<&str> = report
            .unreadable_models
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(unread, ["b", "c", "d", "e", "f"]);
        let unread: Vec<&str> = (report.unreadable_providers.iter())
            .map(String::as_str)
            .collect();
        assert_eq!(unread, ["mistral"], "not openai, which is read");
    }

    /// JSON that no value here can hold (a number past a double's range,
    /// which Python's loader reads as infinity; nesting past 128 levels)
    /// skips its entry, not the file (the whole release was refused); the
    /// last copy of a key still wins.
    #[test]
    fn an_entry_past_what_can_be_read_is_skipped_not_the_file() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(
            r#"{{
            "a": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": 1000}},
            "big": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": 1000, "input_cost_per_token": 1e400}},
            "deep": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": 1000, "x": {deep}}},
            "again": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": 1e400}},
            "again": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": 2000}}
        }}"#
        );
        let mut report = ImportReport::default();
        let imported = import("t.json", &text, &LitellmFilter::default(), &mut report).unwrap();
        let ids: Vec<&str> = imported.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "again"]);
        let unread: Vec<&str> = report
            .unreadable_models
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(unread, ["big", "deep"]);
        assert_eq!(report.skipped_count(), 2);
    }

    #[test]
    fn limits_are_positive_whole_numbers_that_fit() {
        assert_eq!(whole_number(&serde_json::json!(128000)), Some(128000));
        assert_eq!(whole_number(&serde_json::json!(8192.0)), Some(8192));
        assert_eq!(whole_number(&serde_json::json!(0)), None);
        assert_eq!(whole_number(&serde_json::json!(1.5)), None);
        assert_eq!(whole_number(&serde_json::json!("8192")), None);
        assert_eq!(whole_number(&serde_json::json!(5_000_000_000u64)), None);
    }

    /// The table of names is sorted by id (it is searched), and each of its
    /// entries is needed: the name made from the id would be another.
    #[test]
    fn every_known_name_is_needed_and_found() {
        let redundant: Vec<&str> = KNOWN_NAMES
            .iter()
            .filter(|(id, name)| generated_name(id) == *name)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            redundant,
            Vec::<&str>::new(),
            "names made from the id anyway"
        );
        assert!(
            KNOWN_NAMES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        for (id, name) in KNOWN_NAMES {
            assert_eq!(display_name(id), *name);
        }
        // One provider per value, each told apart by its name (two of
        // Google's once shared "Google Vertex AI").
        let mut names: Vec<&str> = KNOWN_NAMES.iter().map(|(_, name)| *name).collect();
        names.sort_unstable();
        let shared: Vec<&str> = names
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        assert_eq!(shared, Vec::<&str>::new(), "names given to two providers");
    }

    #[test]
    fn provider_names_are_readable() {
        assert_eq!(display_name("openai"), "OpenAI");
        assert_eq!(
            display_name("vertex_ai-anthropic_models"),
            "Vertex AI Anthropic Models"
        );
        assert_eq!(display_name("scx-ai"), "Scx AI");
        assert_eq!(provider_type("vertex_ai-anthropic_models"), "google");
        assert_eq!(provider_type("scx-ai"), "scx-ai");
    }

    /// Each of LiteLLM's names for a family's API is that family; any other
    /// name is itself, as a lower-case word (letters, digits, `_`, `-`).
    #[test]
    fn provider_types_name_the_family() {
        for (litellm, family) in [
            ("text-completion-openai", "openai"),
            ("azure_text", "azure"),
            ("palm", "google"),
            ("vertex_ai", "google"),
            ("codestral", "mistral"),
            ("text-completion-codestral", "mistral"),
            ("bedrock_converse", "bedrock"),
            ("Together_AI-2", "together_ai-2"),
            ("my provider!", "myprovider"),
            ("!!!", "openai_compatible"),
        ] {
            assert_eq!(provider_type(litellm), family, "{litellm}");
        }
    }

    /// A limit or a capability given in a form that cannot be taken as it
    /// is (LiteLLM 1.110.2 has `max_output_tokens: 0` on 12 entries) is left
    /// out or read as false, and the report says so for each entry.
    #[test]
    fn values_not_taken_as_given_are_reported() {
        let text = r#"{
            "a": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 1000,
                  "max_output_tokens": 0, "supports_vision": "yes"},
            "b": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": "lots",
                  "max_tokens": 2000, "supports_reasoning": 1, "supports_native_streaming": "no"},
            "c": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 3000,
                  "max_output_tokens": null, "supports_vision": true}
        }"#;
        let mut report = ImportReport::default();
        let imported = import("t.json", text, &LitellmFilter::default(), &mut report).unwrap();
        let [a, b, c] = &imported.models[..] else {
            panic!("{:?}", imported.models)
        };
        assert_eq!(
            (a.max_output_tokens, a.supports_vision),
            (None, Some(false))
        );
        assert_eq!((b.context_window, b.max_input_tokens), (2000, None));
        assert_eq!(
            (b.supports_reasoning, b.supports_streaming),
            (Some(false), Some(false))
        );
        assert_eq!((c.max_output_tokens, c.supports_vision), (None, Some(true)));
        let adjusted: Vec<(&str, usize, Vec<&str>)> = report
            .adjusted
            .iter()
            .map(|(reason, n, ids)| {
                (
                    reason.as_str(),
                    *n,
                    ids.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            adjusted,
            vec![
                (
                    "max_output_tokens not a whole number from 1 to 4294967295: left out",
                    1,
                    vec!["a"]
                ),
                (
                    "supports_vision not true or false: taken as false",
                    1,
                    vec!["a"]
                ),
                (
                    "max_input_tokens not a whole number from 1 to 4294967295: left out (max_tokens taken as the context window)",
                    1,
                    vec!["b"]
                ),
                (
                    "supports_native_streaming not true or false: taken as false",
                    1,
                    vec!["b"]
                ),
                (
                    "supports_reasoning not true or false: taken as false",
                    1,
                    vec!["b"]
                ),
            ]
        );
    }

    #[test]
    fn a_price_is_a_finite_number_of_zero_or_more() {
        assert_eq!(price_per_million(&serde_json::json!(2.5e-06)), Some(2.5));
        assert_eq!(price_per_million(&serde_json::json!(0)), Some(0.0));
        assert_eq!(price_per_million(&serde_json::json!(-1e-06)), None);
        // `-0.0` (as Python writes a zero that was negated) is 0, unsigned.
        let zero = price_per_million(&serde_json::json!(-0.0)).unwrap();
        assert!(zero == 0.0 && zero.is_sign_positive(), "{zero}");
        assert_eq!(price_per_million(&serde_json::json!("2.5e-06")), None);
    }
}
