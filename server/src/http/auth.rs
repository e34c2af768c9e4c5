//! The checks in front of the routes: an admin token for the admin API, a
//! read (or admin) token for the read API and the WebSocket when
//! `--read-tokens-file` is set. Operations endpoints have no check.
//!
//! HTTP requests carry the token as `Authorization: Bearer <token>`. A
//! browser cannot set headers on a WebSocket, so `/ws` also takes it in the
//! `access_token` query parameter (what the SDK sends); the request span
//! never shows its value (see `http::trace`).

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::access::{Grant, Holder};
use crate::app::AppState;
use crate::error::Error;

/// For an application that authenticates its own callers
/// ([`crate::Config::admin_trust_caller`]): the name its middleware puts in
/// the request's extensions is the name the audit log gives the write
/// (`trusted-caller` without one).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// The query parameter a WebSocket client puts its token in.
pub const ACCESS_TOKEN: &str = "access_token";

/// The token of `Authorization: Bearer <token>`; the scheme's name in any
/// case (RFC 9110 §11.1: `bearer` and `BEARER` name it too).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The token of `?access_token=…`.
fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == ACCESS_TOKEN)
        .map(|(_, value)| value.into_owned())
}

/// Guard ([`super::guard`]): lets through requests with an admin token,
/// with the holder in the request's extensions (for the audit); 401
/// otherwise.
pub fn require_admin(app: &AppState, request: &mut Request) -> Option<Response> {
    // Mounted inside an application that authenticates its own callers.
    if app.config.admin_trust_caller {
        let name = request
            .extensions()
            .get::<Caller>()
            .map_or("trusted-caller", |c| c.0.as_str());
        let holder = Holder {
            name: name.into(),
            grant: Grant::Admin,
        };
        request.extensions_mut().insert(holder);
        return None;
    }
    if !app.access.admin_configured() {
        return Some(Error::Unauthorized(
            "the admin API is disabled: start the server with --admin-token (PROVIDER_SYNC_ADMIN_TOKEN) or --admin-tokens-file",
        )
        .into_response());
    }
    let Some(token) = bearer(request.headers()) else {
        return Some(
            Error::Unauthorized("send the admin token as Authorization: Bearer <token>")
                .into_response(),
        );
    };
    match app.access.identify(token) {
        Some(holder) if holder.grant == Grant::Admin => {
            request.extensions_mut().insert(holder);
            None
        }
        _ => {
            tracing::info!(
                client = %super::client::address(request),
                method = %request.method(),
                path = %super::trace::original_path(request),
                request_id = %super::trace::request_id(request),
                "admin request refused: not an admin token"
            );
            Some(Error::Unauthorized("the admin token is not valid").into_response())
        }
    }
}

/// Guard: the read API, with `--read-tokens-file`, needs a read or admin
/// token in the `Authorization` header.
pub fn require_read(app: &AppState, request: &mut Request) -> Option<Response> {
    if !app.access.reads_closed() {
        return None;
    }
    read_with(app, bearer(request.headers()))
}

/// Guard: the WebSocket, as [`require_read`], or the token in
/// `?access_token=`.
pub fn require_read_ws(app: &AppState, request: &mut Request) -> Option<Response> {
    if !app.access.reads_closed() {
        return None;
    }
    match bearer(request.headers()) {
        Some(token) => read_with(app, Some(token)),
        None => read_with(app, query_token(request).as_deref()),
    }
}

fn read_with(app: &AppState, token: Option<&str>) -> Option<Response> {
    match token.map(|t| app.access.identify(t)) {
        Some(Some(_)) => None,
        Some(None) => Some(Error::Unauthorized("the token is not valid").into_response()),
        None => Some(Error::Unauthorized(
            "send a read token as Authorization: Bearer <token> (on the WebSocket: ?access_token=<token>)",
        )
        .into_response()),
    }
}
