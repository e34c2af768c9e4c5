//! `GET /ws`: the upgrade, with the socket limits, handing each connection to
//! a session.

mod lane;
mod runtime;
mod session;

pub use runtime::Sessions;
pub use session::{Ended, Resume, Timing, read_client_frame, run};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppQuery, Error};
use crate::limits::{ClientAddr, NoSession};
use crate::serve::Connection;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The version the client holds; absent for none.
    since: Option<u64>,
    /// The epoch of the client's copy.
    epoch: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// WebSocket: a `hello` event, then the missed events (or a `full_sync`),
/// then live change events and heartbeats.
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "connect",
    params(
        WsQuery,
        ("Connection" = String, Header, description = "Names `upgrade`, as every WebSocket client sends it"),
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`; another version gets 426"),
        ("Sec-WebSocket-Key" = String, Header, description = "The client's nonce: 16 bytes in base64 (RFC 6455); another value gets 400"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; frames are SyncEvent JSON"),
        (status = 400, description = "Bad query, or not a WebSocket upgrade (a Sec-WebSocket-Key that is not 16 bytes in base64 included)", body = provider_sync_protocol::ErrorBody),
        (status = 403, description = "A page of an origin not in --cors-origins", body = provider_sync_protocol::ErrorBody),
        (status = 426, description = "A WebSocket version other than 13; the answer's Sec-WebSocket-Version names 13", body = provider_sync_protocol::ErrorBody),
        (status = 429, description = "Past this address's rate limit, or its share of the WebSocket sessions (--max-ws-sessions-per-address); see Retry-After", body = provider_sync_protocol::ErrorBody),
        (status = 503, description = "At the WebSocket session limit, or (one instance of several) its store does not answer and the client holds a version it lacks; see Retry-After", body = provider_sync_protocol::ErrorBody),
    ),
    security((), ("read_token" = []), ("access_token" = [])),
    tag = "sync"
)]
pub async fn upgrade(
    State(app): State<AppState>,
    AppQuery(query): AppQuery<WsQuery>,
    connection: Option<Extension<Connection>>,
    client: Option<Extension<ClientAddr>>,
    version: axum::http::Version,
    headers: axum::http::HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let ws = ws.map_err(|rejection| match rejection {
        // A version other than 13 (RFC 6455, 4.4: a number); a missing or
        // malformed one is a bad request like any bad header.
        WebSocketUpgradeRejection::InvalidWebSocketVersionHeader(_)
            if headers
                .get(axum::http::header::SEC_WEBSOCKET_VERSION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<i32>().is_ok()
                }) =>
        {
            Error::UpgradeRequired(
            "this server speaks version 13 of the WebSocket protocol (RFC 6455): send Sec-WebSocket-Version: 13".into(),
            )
        }
        rejection => Error::BadRequest(format!(
            "{}: connect with a WebSocket client",
            rejection.body_text()
        )),
    })?;
    // RFC 6455, 4.2.1: the key is 16 bytes in base64. axum only checks
    // that one is there, and answers any value.
    if !headers
        .get(axum::http::header::SEC_WEBSOCKET_KEY)
        .is_some_and(|key| is_websocket_key(key.as_bytes()))
    {
        return Err(Error::BadRequest(
            "Sec-WebSocket-Key is not 16 bytes in base64 (RFC 6455, 4.1): connect with a WebSocket client".into(),
        ));
    }
    let slot = match app
        .guards
        .ws_session(client.map(|Extension(ClientAddr(ip))| ip))
    {
        Ok(slot) => slot,
        Err(NoSession::Full) => {
            app.service.metrics().refused("ws_sessions").inc();
            return Err(Error::Unavailable(
                "the server is at its WebSocket session limit: try again shortly, or poll".into(),
            ));
        }
        Err(NoSession::AddressFull) => {
            app.service
                .metrics()
                .refused("ws_sessions_per_address")
                .inc();
            let mut response = Error::TooManyRequests(
                "this address holds as many WebSocket sessions as one address may (--max-ws-sessions-per-address): close one, or poll".into(),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("10"),
            );
            return Ok(response);
        }
    };
    // With its slot taken: a client ahead of this instance (it came from
    // another one of a cluster) is caught up to first; when the store does
    // not answer, it is refused (503) rather than sent this instance's
    // older state, which it would take as the server's word.
    if let Some(since) = query.since {
        app.service
            .caught_up_for(query.epoch.as_deref(), since)
            .await?;
    }
    let config = &app.config;
    let timing = Timing {
        heartbeat: config.heartbeat(),
        client_timeout: config.client_timeout(),
        write_timeout: config.ws_write_timeout(),
    };
    // The write deadline measures the socket's progress when the server
    // serves the connection itself (not inside an application's own).
    let connection = connection.map(|Extension(c)| c);
    let progress = connection.as_ref().map(|c| c.activity.clone());
    // Served by this server over HTTP/1.1: the socket is at hand, and the
    // session's change frames go through a fan-out lane. Inside an
    // application's own server, the session writes them itself.
    let laned = connection
        .filter(|_| version == axum::http::Version::HTTP_11)
        .map(|c| {
            let lanes = app.sessions.lanes(&app.service, app.config.ws_queue);
            let member = lanes.member(c.socket, timing.client_timeout);
            (lanes, member)
        });
    let resume = Resume {
        since: query.since,
        epoch: query.epoch,
    };
    let service = app.service.clone();
    let shutdown = app.shutdown.subscribe();
    let sessions = app.sessions.clone();
    Ok(ws
        .read_buffer_size(1024)
        .max_message_size(config.ws_max_message)
        .max_frame_size(config.ws_max_message)
        .on_upgrade(move |socket| async move {
            let metrics = service.metrics().clone();
            metrics.ws_connections.inc();
            let _slot = slot;
            let ended = match laned {
                Some((lanes, member)) => {
                    sessions
                        .run(lane::run(
                            socket, member, lanes, service, resume, timing, progress, shutdown,
                        ))
                        .await
                }
                None => {
                    sessions
                        .run(run(socket, service, resume, timing, progress, shutdown))
                        .await
                }
            }
            .unwrap_or(Ended::ServerGone);
            if matches!(ended, Ended::WriteStalled | Ended::ClientSilent) {
                metrics.ws_dropped.inc();
            }
            tracing::debug!(?ended, "websocket session ended");
            metrics.ws_connections.dec();
        }))
}

/// The keys [`is_websocket_key`] takes, for the OpenAPI document: 16 bytes
/// are 22 base64 digits, the last of which carries 2 bits (and 4 zero
/// bits), then the padding.
pub(crate) const WEBSOCKET_KEY_PATTERN: &str = "^[A-Za-z0-9+/]{21}[AQgw]==$";

/// A `Sec-WebSocket-Key` as RFC 6455 has it: 16 bytes, base64-encoded with
/// padding (24 characters).
fn is_websocket_key(key: &[u8]) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|nonce| nonce.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::{WEBSOCKET_KEY_PATTERN, is_websocket_key};

    #[test]
    fn a_websocket_key_is_16_bytes_in_base64() {
        // RFC 6455's own example, and the nonces browsers send.
        assert!(is_websocket_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_websocket_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        for bad in [
            &b""[..],
            b"x",
            b"dGhlIHNhbXBsZSBub25jZQ",       // no padding
            b"dGhlIHNhbXBsZSBub25jZQ==\x20", // trailing bytes
            b"dGhlIHNhbXBsZSBub25j",         // 15 bytes
            b"dGhlIHNhbXBsZSBub25jZQ1=",     // 17 bytes' worth
            b"dGhlIHNhbXBsZSBub25jZ!==",     // not base64
            b"aGVsbG8=",                     // 5 bytes
        ] {
            assert!(!is_websocket_key(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// The OpenAPI document's pattern takes the keys the upgrade takes, and
    /// no other (every last digit, and strings near a key's form).
    #[test]
    fn the_documented_pattern_is_the_check() {
        let pattern = regex::Regex::new(WEBSOCKET_KEY_PATTERN).unwrap();
        const DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut keys: Vec<String> = DIGITS
            .chars()
            .map(|last| format!("dGhlIHNhbXBsZSBub25jZ{last}=="))
            .collect();
        keys.extend(
            [
                "dGhlIHNhbXBsZSBub25jZQ=",
                "dGhlIHNhbXBsZSBub25jZQ===",
                "dGhlIHNhbXBsZSBub25jZQ==\n",
                "AdGhlIHNhbXBsZSBub25jZQ==",
                "dGhlIHNhbXBsZSBub25jZQA=",
                "",
            ]
            .map(str::to_owned),
        );
        for key in &keys {
            assert_eq!(
                pattern.is_match(key),
                is_websocket_key(key.as_bytes()),
                "{key:?}"
            );
        }
        assert_eq!(keys.iter().filter(|k| pattern.is_match(k)).count(), 4);
    }
}
