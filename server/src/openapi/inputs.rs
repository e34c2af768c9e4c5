//! The input rules, stated in the document: what `validate` and the
//! handlers check, as JSON Schema keywords written from the same constants
//! and character classes, so that a request the document allows is one the
//! server takes, and one it refuses the server refuses. What no schema can
//! say (a provider that must exist, a rule between two fields) goes into
//! the field's description with the status it gets.

use serde_json::{Map, Value, json};

use crate::http;
use crate::validate::{
    MAX_CAPABILITIES, MAX_CAPABILITY, MAX_ID, MAX_MESSAGE, MAX_PROVIDER_TYPE, MAX_TEXT, MAX_URL,
    patterns,
};

/// Keywords to merge into a schema, and a sentence for its description.
struct Rule {
    keywords: Value,
    note: Option<&'static str>,
}

impl Rule {
    fn new(keywords: Value) -> Self {
        Self {
            keywords,
            note: None,
        }
    }

    fn note(mut self, note: &'static str) -> Self {
        self.note = Some(note);
        self
    }
}

fn id() -> Rule {
    Rule::new(json!({
        "minLength": 1,
        "maxLength": MAX_ID,
        "pattern": patterns::id(),
    }))
    .note(
        "An id: printable characters but white space and % ? # \\ < > \" ' `, in /-separated \
         segments that are neither empty, `.` nor `..`.",
    )
}

fn text(max: usize) -> Rule {
    Rule::new(json!({
        "minLength": 1,
        "maxLength": max,
        "pattern": patterns::text(),
    }))
    .note("Not blank; no control characters (tabs and line breaks included) or invisible formatting characters.")
}

fn url() -> Rule {
    Rule::new(json!({
        "format": "uri",
        "maxLength": MAX_URL,
        "pattern": patterns::url(),
    }))
    .note(
        "An http or https URL: a host name, an IPv4 address or a bracketed IPv6 address, an \
         optional port (1-65535), path and fragment; no credentials or query string. A host in punycode \
         (`xn--`) must be valid IDNA.",
    )
}

fn tokens() -> Rule {
    Rule::new(json!({ "minimum": 1 }))
}

fn date() -> Rule {
    Rule::new(json!({ "format": "date" }))
}

fn price() -> Rule {
    Rule::new(json!({ "minimum": 0 }))
}

const FALLBACK: &str = "Another provider's id: 404 (naming this field) if there is no such provider, 422 if it is this provider's own.";
const PROVIDER: &str = "404 (naming this field) if there is no such provider.";
const REPLACEMENT: &str = "Another model's id: 404 (naming this field) if there is no such model, 422 if it is this model's own.";
const INPUT_LIMIT: &str = "At most the context window: 422 when the request sets both, 409 (with the current model) when it contradicts the model's own.";
const SUNSET: &str = "Not before the deprecation date: 422 when the request sets both, 409 (with the current model) when it contradicts the model's own.";
const ACTIVE: &str = "Not `active` for a model with a deprecation or sunset date: 422 when the request sets both, 409 (with the current model) when it contradicts the model's own. A new model with a date and no status is `deprecated`.";

/// The properties of request bodies and the rule each gets.
fn bodies() -> Vec<(&'static str, &'static str, Rule)> {
    let mut rules = Vec::new();
    for schema in ["NewProvider", "ProviderPatch"] {
        rules.extend([
            (schema, "name", text(MAX_TEXT)),
            (schema, "display_name", text(MAX_TEXT)),
            (
                schema,
                "provider_type",
                Rule::new(json!({
                    "minLength": 1,
                    "maxLength": MAX_PROVIDER_TYPE,
                    "pattern": patterns::PROVIDER_TYPE,
                })),
            ),
            (schema, "base_url", url()),
            (schema, "health_url", url()),
            (schema, "fallback_provider_id", id().note(FALLBACK)),
            (
                schema,
                "capabilities",
                Rule::new(json!({
                    "maxItems": MAX_CAPABILITIES,
                    "uniqueItems": true,
                    "items": text(MAX_CAPABILITY).keywords,
                })),
            ),
        ]);
    }
    rules.push(("NewProvider", "id", id()));
    for schema in ["NewModel", "ModelPatch"] {
        rules.extend([
            (schema, "name", text(MAX_TEXT)),
            (schema, "provider_id", id().note(PROVIDER)),
            (schema, "context_window", tokens()),
            (schema, "max_input_tokens", tokens().note(INPUT_LIMIT)),
            (schema, "max_output_tokens", tokens()),
            (schema, "deprecation_date", date()),
            (schema, "sunset_date", date().note(SUNSET)),
            (
                schema,
                "deprecation_status",
                Rule::new(json!({})).note(ACTIVE),
            ),
            (schema, "replacement_model_id", id().note(REPLACEMENT)),
        ]);
    }
    rules.push(("NewModel", "id", id()));
    rules.extend([
        ("ModelPricing", "input_per_million", price()),
        ("ModelPricing", "output_per_million", price()),
        ("ModelPricing", "cached_input_per_million", price()),
        ("StatusUpdate", "message", text(MAX_MESSAGE)),
        ("DeprecateModel", "deprecation_date", date()),
        ("DeprecateModel", "sunset_date", date().note(SUNSET)),
        (
            "DeprecateModel",
            "replacement_model_id",
            id().note(REPLACEMENT),
        ),
        ("SetActiveProvider", "provider_id", id().note(PROVIDER)),
        (
            "SetActiveProvider",
            "default_provider_id",
            id().note(PROVIDER),
        ),
    ]);
    rules
}

/// Parameters, by where they are and their name, wherever they appear.
fn parameters() -> Vec<(&'static str, &'static str, Rule)> {
    vec![
        (
            "path",
            "id",
            id().note("Ids of other forms name nothing: 404."),
        ),
        (
            "header",
            "If-Match",
            Rule::new(json!({ "type": "string", "pattern": http::admin::IF_MATCH_PATTERN })),
        ),
        (
            "query",
            "limit",
            Rule::new(json!({
                "minimum": 1,
                "maximum": http::MAX_PAGE,
                "default": http::DEFAULT_PAGE,
            })),
        ),
        ("query", "offset", Rule::new(json!({ "default": 0 }))),
        // What axum's WebSocket upgrade checks, as it checks it.
        (
            "header",
            "Connection",
            Rule::new(json!({ "type": "string", "pattern": "^.*[Uu][Pp][Gg][Rr][Aa][Dd][Ee].*$" })),
        ),
        (
            "header",
            "Upgrade",
            Rule::new(
                json!({ "type": "string", "pattern": "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$" }),
            ),
        ),
        (
            "header",
            "Sec-WebSocket-Version",
            Rule::new(json!({ "type": "string", "enum": ["13"] })),
        ),
        // And what the upgrade checks of the key (`ws::is_websocket_key`).
        (
            "header",
            "Sec-WebSocket-Key",
            Rule::new(json!({ "type": "string", "pattern": crate::ws::WEBSOCKET_KEY_PATTERN })),
        ),
    ]
}

/// Merges a rule's keywords into `schema` (into `items` as well).
fn merge(schema: &mut Value, rule: &Rule) {
    let schema = schema.as_object_mut().expect("a schema is an object");
    for (key, value) in rule.keywords.as_object().expect("keywords are an object") {
        match (schema.get_mut(key), value) {
            (Some(Value::Object(into)), Value::Object(from)) => {
                into.extend(from.clone());
            }
            _ => {
                schema.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Appends a sentence to a schema's description.
pub(super) fn describe(schema: &mut Map<String, Value>, note: &str) {
    let description = match schema.get("description").and_then(Value::as_str) {
        Some(text) => format!("{text}\n\n{note}"),
        None => note.to_owned(),
    };
    schema.insert("description".into(), description.into());
}

/// Where a property's schema sits: inline, or beside a `null` in a `oneOf`
/// (an optional field of a schema type).
fn property<'a>(doc: &'a mut Value, schema: &str, name: &str) -> &'a mut Value {
    let property = doc["components"]["schemas"][schema]["properties"]
        .get_mut(name)
        .unwrap_or_else(|| panic!("the document has no {schema}.{name}"));
    if property.get("oneOf").is_some() {
        return property["oneOf"]
            .as_array_mut()
            .expect("oneOf is a list")
            .iter_mut()
            .find(|s| s["type"] != "null")
            .expect("a oneOf beside null");
    }
    property
}

/// Integers state the range of their Rust type (`uint32` from 0 to
/// 4294967295 …), wherever they are.
fn integer_ranges(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // utoipa spells the unsigned formats in kebab case (`u-int32`).
            if let Some(Value::String(format)) = map.get_mut("format")
                && format.starts_with("u-int")
            {
                *format = format.replacen("u-int", "uint", 1);
            }
            let range: Option<(Value, Value)> = match map.get("format").and_then(Value::as_str) {
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
                Some("uint8") => Some((0.into(), u8::MAX.into())),
                Some("uint16") => Some((0.into(), u16::MAX.into())),
                Some("uint32") => Some((0.into(), u32::MAX.into())),
                Some("uint64") => Some((0.into(), u64::MAX.into())),
                _ => None,
            };
            if let Some((min, max)) = range {
                map.entry("minimum").or_insert(min);
                map.entry("maximum").or_insert(max);
            }
            map.values_mut().for_each(integer_ranges);
        }
        Value::Array(items) => items.iter_mut().for_each(integer_ranges),
        _ => {}
    }
}

pub(super) fn apply(doc: &mut Value) {
    integer_ranges(doc);
    for (schema, name, rule) in bodies() {
        let property = property(doc, schema, name);
        merge(property, &rule);
        if let Some(note) = rule.note {
            describe(
                property.as_object_mut().expect("a schema is an object"),
                note,
            );
        }
    }
    // `null` clears the active provider, but the field must be there: an
    // empty body is a mistake (422), not a request to clear it.
    doc["components"]["schemas"]["SetActiveProvider"]["required"] = json!(["provider_id"]);
    // The admin API refuses an unknown key in `pricing` too, as in the
    // bodies around it (their types refuse unknown fields; this one, also
    // sent by the server, is checked by `StrictJson`). Said of the request
    // bodies' copy only: a response's pricing may gain fields in a later
    // release.
    let schemas = &mut doc["components"]["schemas"];
    let mut input = schemas["ModelPricing"].clone();
    input["additionalProperties"] = json!(false);
    schemas["ModelPricingInput"] = input;
    for body in ["NewModel", "ModelPatch"] {
        let pricing = &mut schemas[body]["properties"]["pricing"];
        let text = pricing.to_string().replace(
            "#/components/schemas/ModelPricing\"",
            "#/components/schemas/ModelPricingInput\"",
        );
        assert_ne!(
            text,
            pricing.to_string(),
            "{body}.pricing names ModelPricing"
        );
        *pricing = serde_json::from_str(&text).expect("JSON text of a schema");
    }
    let rules = parameters();
    let mut unused: Vec<(&str, &str)> = rules.iter().map(|(at, name, _)| (*at, *name)).collect();
    for (_, _, operation) in super::operations(doc) {
        let Some(params) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for param in params {
            let Some((at, name, rule)) = rules
                .iter()
                .find(|(at, name, _)| param["in"] == *at && param["name"] == *name)
            else {
                continue;
            };
            unused.retain(|used| used != &(*at, *name));
            // A header's schema is a string, never null (an absent header
            // is no value, not `null`).
            if *at == "header" {
                param["schema"] = json!({ "type": "string" });
            }
            merge(&mut param["schema"], rule);
            if let Some(note) = rule.note {
                describe(
                    param.as_object_mut().expect("a parameter is an object"),
                    note,
                );
            }
        }
    }
    assert!(
        unused.is_empty(),
        "parameter rules that match nothing: {unused:?}"
    );
}
