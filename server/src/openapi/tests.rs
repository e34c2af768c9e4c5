//! The document against the server's own rules.

use serde_json::Value;

use super::document;

fn doc() -> Value {
    document("/api/provider-sync")
}

/// Every `$ref` in `value`.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = doc();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.trim_start_matches('#');
        assert!(
            doc.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }
}

/// The schemas requests carry, and the properties that take any value of
/// their type on purpose.
const REQUEST_BODIES: &[&str] = &[
    "NewProvider",
    "ProviderPatch",
    "StatusUpdate",
    "NewModel",
    "ModelPatch",
    "ModelPricing",
    "DeprecateModel",
    "SetActiveProvider",
    "SyncRequest",
];
const FREE: &[&str] = &[
    // Compared with the server's epoch; any other value means "another".
    "SyncRequest.client_epoch",
];

/// The schema of a property, past a `oneOf` with `null`.
fn inner(schema: &Value) -> &Value {
    match schema.get("oneOf").and_then(Value::as_array) {
        Some(options) => options.iter().find(|s| s["type"] != "null").unwrap(),
        None => schema,
    }
}

fn has_type(schema: &Value, wanted: &str) -> bool {
    match &schema["type"] {
        Value::String(t) => t == wanted,
        Value::Array(types) => types.iter().any(|t| t == wanted),
        _ => false,
    }
}

/// A string, number or list with no bound is an input the document does
/// not describe: every one is bounded, or named in `FREE`.
#[test]
fn every_input_is_bounded() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    for body in REQUEST_BODIES {
        for (name, property) in schemas[body]["properties"].as_object().unwrap() {
            let here = format!("{body}.{name}");
            if FREE.contains(&here.as_str()) {
                continue;
            }
            let schema = inner(property);
            if schema.get("$ref").is_some() || schema.get("enum").is_some() {
                continue;
            }
            if has_type(schema, "string") {
                assert!(
                    schema["format"] == "date"
                        || (schema.get("pattern").is_some() && schema.get("maxLength").is_some()),
                    "{here} takes any string: {schema}"
                );
            }
            if has_type(schema, "integer") {
                assert!(
                    schema.get("minimum").is_some() && schema.get("maximum").is_some(),
                    "{here} takes any integer: {schema}"
                );
            }
            if has_type(schema, "number") {
                assert!(schema.get("minimum").is_some(), "{here}: {schema}");
            }
            if has_type(schema, "array") {
                assert!(
                    schema.get("maxItems").is_some() && schema["items"].get("pattern").is_some(),
                    "{here} takes any list: {schema}"
                );
            }
        }
    }
}

#[test]
fn a_set_active_provider_body_names_the_provider() {
    let doc = doc();
    let required = &doc["components"]["schemas"]["SetActiveProvider"]["required"];
    assert_eq!(required, &serde_json::json!(["provider_id"]));
}

/// The request bodies' `pricing` refuses keys it does not know, as the
/// server does; a response's may gain fields in a later release.
#[test]
fn only_request_bodies_refuse_unknown_pricing_keys() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    for body in ["NewModel", "ModelPatch"] {
        let pricing = schemas[body]["properties"]["pricing"].to_string();
        assert!(
            pricing.contains("/ModelPricingInput\""),
            "{body}: {pricing}"
        );
    }
    assert_eq!(schemas["ModelPricingInput"]["additionalProperties"], false);
    let sent = schemas["ModelSpecification"]["properties"]["pricing"].to_string();
    assert!(sent.contains("/ModelPricing\""), "{sent}");
    assert!(
        schemas["ModelPricing"]
            .get("additionalProperties")
            .is_none()
    );
    assert_eq!(
        schemas["ModelPricingInput"]["properties"], schemas["ModelPricing"]["properties"],
        "the same fields and rules"
    );
}

#[test]
fn parameters_state_their_rules() {
    let doc = doc();
    let params = |path: &str, method: &str| doc["paths"][path][method]["parameters"].clone();
    let find = |params: &Value, name: &str| {
        params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["schema"]
            .clone()
    };
    let models = params("/models", "get");
    assert_eq!(find(&models, "limit")["minimum"], 1);
    assert_eq!(find(&models, "limit")["maximum"], crate::http::MAX_PAGE);
    assert_eq!(find(&models, "offset")["maximum"], u32::MAX);
    let patch = params("/admin/models/{id}", "patch");
    let if_match = find(&patch, "If-Match");
    assert_eq!(if_match["type"], "string");
    assert_eq!(if_match["pattern"], crate::http::admin::IF_MATCH_PATTERN);
    assert_eq!(find(&patch, "id")["maxLength"], crate::validate::MAX_ID);
    let audit = params("/admin/audit", "get");
    assert_eq!(find(&audit, "before")["maximum"], u64::MAX);
}

/// Every status the layers in front of the handlers answer is named, with
/// the error body and the headers that go with it.
/// Found by a black-box check (2026-12-04): the operations endpoints' 200
/// answers declared no content (the server sends JSON and OpenMetrics
/// text), and `/metrics`' 503 said it answered so when the store does not
/// answer (it answers 200 then, with `provider_sync_store_reachable 0`).
#[test]
fn the_operations_endpoints_say_what_they_answer() {
    let doc = doc();
    let ok = |path: &str| doc["paths"][path]["get"]["responses"]["200"]["content"].clone();
    let alive = ok("/healthz")["application/json"]["schema"].to_string();
    assert!(alive.contains("Alive"), "{alive}");
    let ready = ok("/readyz")["application/json"]["schema"].to_string();
    assert!(ready.contains("Ready"), "{ready}");
    let required = doc["components"]["schemas"]["Ready"]["required"].to_string();
    assert!(
        required.contains("version") && required.contains("status"),
        "{required}"
    );
    let metrics = ok("/metrics");
    let text = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    assert!(metrics.get(text).is_some(), "{metrics}");
    let refused = doc["paths"]["/metrics"]["get"]["responses"]["503"]["description"].to_string();
    assert!(!refused.contains("store"), "{refused}");
}

#[test]
fn every_operation_names_the_global_statuses() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let here = format!("{method} {path}");
            // 503 for every one: a starting server answers so (probes too).
            for status in ["403", "503", "504"] {
                assert!(responses.contains_key(status), "{here} lacks {status}");
            }
            let admin = operation["security"].to_string().contains("admin_token");
            if admin {
                for status in ["401", "429", "503"] {
                    assert!(responses.contains_key(status), "{here} lacks {status}");
                }
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422", "501"] {
                    assert!(responses.contains_key(status), "{here} lacks {status}");
                }
            }
            for (status, response) in responses {
                let headers = &response["headers"];
                assert_eq!(
                    headers["X-Request-Id"]["$ref"], "#/components/headers/X-Request-Id",
                    "{here} {status}"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    let body = response["content"]["application/json"]["schema"].to_string();
                    assert!(body.contains("ErrorBody"), "{here} {status}: {body}");
                }
                if status == "429" || (status == "503" && path != "/readyz") {
                    assert!(headers["Retry-After"].is_object(), "{here} {status}");
                }
                // The readiness probe's 503 has one while the server starts
                // only.
                if status == "503" && path == "/readyz" {
                    assert_eq!(headers["Retry-After"]["required"], false, "{here}");
                }
                if status == "401" {
                    assert!(headers["WWW-Authenticate"].is_object(), "{here}");
                }
            }
        }
    }
    let stale = &doc["paths"]["/admin/providers/{id}"]["patch"]["responses"]["412"];
    assert!(stale.to_string().contains("ProviderSyncInfo"), "{stale}");
    let created = &doc["paths"]["/admin/models"]["post"]["responses"]["201"]["headers"];
    assert!(created["ETag"].is_object() && created["X-Sync-Version"].is_object());
}

#[test]
fn links_name_operations_that_exist() {
    let doc = doc();
    let ids: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap().to_owned())
        .collect();
    let mut linked = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let id = link["operationId"].as_str().unwrap();
                    assert!(ids.iter().any(|known| known == id), "a link to {id}");
                    linked += 1;
                }
            }
        }
    }
    assert!(linked > 20, "{linked} links");
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");
}

/// `null` in a PATCH clears an optional field and is refused for the others:
/// the schemas say which.
#[test]
fn patches_say_where_null_clears() {
    let doc = document("/api/provider-sync");
    let nullable = |schema: &str, field: &str| {
        let property = &doc["components"]["schemas"][schema]["properties"][field];
        assert!(property.is_object(), "{schema}.{field}");
        has_type(property, "null")
            || property["oneOf"]
                .as_array()
                .is_some_and(|options| options.iter().any(|s| s["type"] == "null"))
    };
    let cases = [
        ("ProviderPatch", "name", false),
        ("ProviderPatch", "display_name", false),
        ("ProviderPatch", "provider_type", false),
        ("ProviderPatch", "enabled", false),
        ("ProviderPatch", "priority", false),
        ("ProviderPatch", "capabilities", false),
        ("ProviderPatch", "base_url", true),
        ("ProviderPatch", "health_url", true),
        ("ProviderPatch", "fallback_provider_id", true),
        ("ModelPatch", "name", false),
        ("ModelPatch", "provider_id", false),
        ("ModelPatch", "context_window", false),
        ("ModelPatch", "max_input_tokens", false),
        ("ModelPatch", "max_output_tokens", false),
        ("ModelPatch", "supports_reasoning", false),
        ("ModelPatch", "deprecation_status", false),
        ("ModelPatch", "pricing", true),
        ("ModelPatch", "deprecation_date", true),
        ("ModelPatch", "sunset_date", true),
        ("ModelPatch", "replacement_model_id", true),
    ];
    for (schema, field, expected) in cases {
        assert_eq!(nullable(schema, field), expected, "{schema}.{field}");
    }
}
