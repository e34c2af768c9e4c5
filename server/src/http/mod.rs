//! The REST endpoints, one module per resource (`app.rs` merges their
//! routers), and what stands in front of them: the token checks (`auth`),
//! the audit of admin writes (`audit`), the client's address (`client`),
//! request ids and spans (`trace`), and the middleware that checks a request
//! before its handler (`guard`).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod catalog;
pub mod client;
pub mod guard;
pub mod ops;
pub mod sync;
pub mod trace;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, Result};

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

/// An entity's `ETag`: its revision, quoted (`"R"`), as the admin API's
/// `If-Match` takes it.
pub(crate) fn revision_etag(revision: u64) -> axum::http::HeaderValue {
    format!("\"{revision}\"").parse().expect("digits")
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

/// Page size of a paginated list when the query names none.
pub(crate) const DEFAULT_PAGE: u32 = 100;
/// The largest page a client may ask for.
pub(crate) const MAX_PAGE: u32 = 1000;

/// The page size a `limit` query parameter asks for: 100 without one, 1 to
/// 1000 (else 422 naming `limit`).
pub fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}
