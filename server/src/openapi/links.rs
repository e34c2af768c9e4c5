//! How operations lead to one another (OpenAPI links): the entity a write
//! answers with names the entity of the next read or write, and its `ETag`
//! is the next write's `If-Match`. Clients and generated SDKs can follow
//! them; a stateful test creates a provider, gives it models, changes and
//! removes them.

use serde_json::{Value, json};

/// Where an entity's answer leads: the operations on the same entity.
fn on_provider() -> Value {
    // Every answer with the entity carries its revision as `ETag`.
    let write = json!({ "id": "$response.body#/id", "header.If-Match": "$response.header.ETag" });
    json!({
        "GetProvider": { "operationId": "get_provider", "parameters": { "id": "$response.body#/id" } },
        "GetProviderAvailability": {
            "operationId": "get_provider_availability",
            "parameters": { "id": "$response.body#/id" },
        },
        "UpdateProvider": { "operationId": "update_provider", "parameters": write },
        "SetProviderStatus": { "operationId": "set_status", "parameters": write },
        "DeleteProvider": { "operationId": "delete_provider", "parameters": write },
        "AddModel": {
            "operationId": "create_model",
            "requestBody": { "provider_id": "$response.body#/id" },
            "description": "A model of this provider",
        },
    })
}

fn on_model() -> Value {
    // Every answer with the entity carries its revision as `ETag`.
    let write = json!({ "id": "$response.body#/id", "header.If-Match": "$response.header.ETag" });
    json!({
        "GetModel": { "operationId": "get_model", "parameters": { "id": "$response.body#/id" } },
        "GetModelAvailability": {
            "operationId": "get_model_availability",
            "parameters": { "id": "$response.body#/id" },
        },
        "GetModelProvider": {
            "operationId": "get_provider",
            "parameters": { "id": "$response.body#/provider_id" },
        },
        "UpdateModel": { "operationId": "update_model", "parameters": write },
        "DeprecateModel": { "operationId": "deprecate_model", "parameters": write },
        "DeleteModel": { "operationId": "delete_model", "parameters": write },
    })
}

/// From the list of providers: a new provider that falls back to one of them.
fn on_providers() -> Value {
    json!({
        "AddProviderFallingBack": {
            "operationId": "create_provider",
            "requestBody": { "fallback_provider_id": "$response.body#/0/id" },
            "description": "A provider that falls back to the first one listed",
        },
    })
}

pub(super) fn apply(doc: &mut Value) {
    let answers = [
        ("/providers", "get", "200", on_providers()),
        ("/admin/providers", "post", "201", on_provider()),
        ("/admin/providers/{id}", "patch", "200", on_provider()),
        ("/admin/providers/{id}/status", "put", "200", on_provider()),
        ("/providers/{id}", "get", "200", on_provider()),
        ("/admin/models", "post", "201", on_model()),
        ("/admin/models/{id}", "patch", "200", on_model()),
        ("/admin/models/{id}/deprecate", "post", "200", on_model()),
        ("/models/{id}", "get", "200", on_model()),
    ];
    for (path, method, status, links) in answers {
        let response = doc["paths"][path][method]["responses"]
            .get_mut(status)
            .unwrap_or_else(|| panic!("no {status} answer to {method} {path}"));
        response["links"] = links;
    }
}
