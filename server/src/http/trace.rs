//! Each request's id and span. An `X-Request-Id` from the client is kept
//! when it is fit for a log line, else replaced by one the server makes
//! (tower-http's request-id layers set it and send it back); the span shows
//! method, path, query and that id, never the value of `access_token`.

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tower_http::trace::MakeSpan;

use super::auth::ACCESS_TOKEN;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Whether a client's request id can go into logs and the audit as it is:
/// 1 to 128 printable ASCII characters, no spaces, quotes or backslashes.
fn fit(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'))
}

/// The client's request id, if it sent one (once) that is fit.
fn usable(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut ids = headers.get_all(&REQUEST_ID).iter();
    match (ids.next(), ids.next()) {
        (Some(id), None) if fit(id.as_bytes()) => Some(id),
        _ => None,
    }
}

/// A 5xx answer, logged: an error, but for 503, a refusal the server
/// chose (past the connection cap, a store this instance cannot reach),
/// which the metrics count and which a flood would otherwise turn into an
/// error line per request (debug instead).
pub fn on_failure(
    failure: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    let latency = latency.as_millis();
    match failure {
        ServerErrorsFailureClass::StatusCode(status)
            if status == axum::http::StatusCode::SERVICE_UNAVAILABLE =>
        {
            tracing::debug!(%status, latency_ms = latency, "refused: 503");
        }
        failure => tracing::error!(%failure, latency_ms = latency, "response failed"),
    }
}

/// Drops a client's request id that is unfit (or given twice), so that the
/// request-id layer makes one (a `map_request` step).
pub fn drop_unfit_request_id(mut request: Request) -> Request {
    if usable(request.headers()).is_none() {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The request's id (set by the request-id layer; `-` outside it).
pub fn request_id<B>(request: &axum::http::Request<B>) -> &str {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The path as the client sent it (with the mount prefix, which routers
/// nested under it no longer see in `uri()`).
pub fn original_path<B>(request: &axum::http::Request<B>) -> String {
    match request.extensions().get::<OriginalUri>() {
        Some(uri) => uri.path().to_owned(),
        None => request.uri().path().to_owned(),
    }
}

/// The path and query, with the value of `access_token` replaced.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let parts: Vec<&str> = query
        .split('&')
        .map(|part| {
            let name = url::form_urlencoded::parse(part.as_bytes())
                .next()
                .map(|(name, _)| name);
            // In any case: a misspelt `ACCESS_TOKEN` is not taken as a
            // token, but it is one the client meant to send.
            if name.is_some_and(|n| n.eq_ignore_ascii_case(ACCESS_TOKEN)) {
                "access_token=redacted"
            } else {
                part
            }
        })
        .collect();
    format!("{}?{}", uri.path(), parts.join("&"))
}

/// The span of one request, at debug (as tower-http's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %redacted(request.uri()),
            request_id = %request_id(request),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_never_shows_however_it_is_spelled() {
        for (uri, shown) in [
            (
                "/ws?since=3&access_token=s3cret&epoch=e",
                "/ws?since=3&access_token=redacted&epoch=e",
            ),
            ("/ws?access%5Ftoken=s3cret", "/ws?access_token=redacted"),
            ("/ws?access_token", "/ws?access_token=redacted"),
            ("/ws?ACCESS_TOKEN=s3cret", "/ws?access_token=redacted"),
            (
                "/ws?Access_Token=s3cret&since=1",
                "/ws?access_token=redacted&since=1",
            ),
            ("/state", "/state"),
            ("/models?search=gpt", "/models?search=gpt"),
        ] {
            assert_eq!(redacted(&uri.parse().unwrap()), shown);
        }
    }

    #[test]
    fn a_request_id_must_be_fit_for_a_log_line() {
        assert!(fit(b"deploy-42"));
        assert!(fit(
            b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"
        ));
        assert!(!fit(b""));
        assert!(!fit(b"two words"));
        assert!(!fit(b"quote\"d"));
        // Single quotes too, as the README says (found by a black-box check).
        assert!(!fit(b"quote'd"));
        assert!(!fit("é".as_bytes()));
        assert!(!fit(&[b'x'; 129]));
    }
}
