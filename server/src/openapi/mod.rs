//! The OpenAPI description (served at `/openapi.json`, browsable at
//! `/docs`): generated from the handlers' annotations and the protocol
//! types, then completed from the server's own rules, so that it tells the
//! truth about inputs and answers.
//!
//! # Layout
//!
//! - `inputs`: the checks of `validate` and the handlers as JSON Schema
//!   (lengths, patterns, ranges, formats), from the same constants.
//! - `statuses`: every status an operation can answer, the global ones
//!   included (token, origin, rate limit, capacity, timeout, body), with
//!   the error body and the headers.
//! - `links`: how an answer leads to the next operation on the same entity.

mod inputs;
mod links;
mod statuses;

use provider_sync_protocol as p;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::http;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "provider-sync",
        description = "Keeps an AI provider/model catalog in sync between this server and every client: \
full and incremental sync over REST, live events over WebSocket, an authenticated and audited admin API. \
With --read-tokens-file the read API and the WebSocket need a token too (read_token): an Authorization \
header, or on the WebSocket the access_token query parameter; operations endpoints never do. \
Every answer carries an X-Request-Id; every error is {\"error\": {\"code\", \"message\", \"field\"?}}."
    ),
    paths(
        http::sync::state,
        http::sync::sync,
        http::sync::version,
        http::catalog::list_providers,
        http::catalog::get_provider,
        http::catalog::list_models,
        http::catalog::get_model,
        http::availability::provider,
        http::availability::model,
        http::admin::create_provider,
        http::admin::update_provider,
        http::admin::delete_provider,
        http::admin::set_status,
        http::admin::create_model,
        http::admin::update_model,
        http::admin::delete_model,
        http::admin::deprecate_model,
        http::admin::set_active_provider,
        http::audit::list,
        http::ops::healthz,
        http::ops::readyz,
        http::ops::metrics,
        crate::ws::upgrade,
    ),
    components(schemas(
        p::SyncEvent,
        p::EventPayload,
        p::SyncEventType,
        p::ClientMessage,
        p::Hello,
        p::Heartbeat,
        // `GET /models?capability=` names it.
        p::ModelCapability,
    )),
    modifiers(&AdminToken),
    tags(
        (name = "sync", description = "Full and incremental sync, WebSocket"),
        (name = "catalog", description = "Read-only views"),
        (name = "availability", description = "Provider and model availability"),
        (name = "admin", description = "Authenticated writes"),
        (name = "ops", description = "Operations"),
    )
)]
struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Only with --read-tokens-file (an admin token reads too).
        components.add_security_scheme(
            "read_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("access_token"))),
        );
    }
}

/// The description, with the mount prefix as its server URL.
pub(crate) fn document(prefix: &str) -> Value {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(if prefix.is_empty() {
        "/"
    } else {
        prefix
    })]);
    let mut doc = serde_json::to_value(doc).expect("the API description serialises");
    inputs::apply(&mut doc);
    statuses::apply(&mut doc);
    links::apply(&mut doc);
    doc
}

/// Every operation of the document: path, method and the operation object.
fn operations(doc: &mut Value) -> impl Iterator<Item = (String, String, &mut Value)> {
    doc["paths"]
        .as_object_mut()
        .expect("the document has paths")
        .iter_mut()
        .flat_map(|(path, item)| {
            item.as_object_mut()
                .expect("a path item is an object")
                .iter_mut()
                .map(move |(method, operation)| (path.clone(), method.clone(), operation))
        })
}

#[cfg(test)]
mod tests;
