//! The REST endpoints, one module per resource (`app.rs` merges their
//! routers), and what stands in front of them: the token checks (`auth`),
//! the audit of admin writes (`audit`), the client's address (`client`),
//! request ids and spans (`trace`).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod catalog;
pub mod client;
pub mod ops;
pub mod sync;
pub mod trace;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The catalog version after a request, on every admin and sync answer.
pub static SYNC_VERSION: HeaderName = HeaderName::from_static("x-sync-version");

/// A JSON body that is already serialised.
pub fn json_bytes(body: impl Into<axum::body::Body>, headers: HeaderMap) -> Response {
    let mut response = (headers, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether an `If-None-Match` header matches `etag` (`*`, a list, weak tags).
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}
