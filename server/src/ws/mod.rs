//! `GET /ws`: the upgrade, with the socket limits, handing each connection to
//! a session.

mod session;

pub use session::{Ended, Resume, Timing, run};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppQuery, Error};

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
    params(WsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; frames are SyncEvent JSON"),
        (status = 400, description = "Bad query", body = provider_sync_protocol::ErrorBody),
    ),
    security((), ("read_token" = []), ("access_token" = [])),
    tag = "sync"
)]
pub async fn upgrade(
    State(app): State<AppState>,
    AppQuery(query): AppQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let ws = ws.map_err(|rejection| {
        Error::BadRequest(format!(
            "{}: connect with a WebSocket client",
            rejection.body_text()
        ))
    })?;
    let config = &app.config;
    let timing = Timing {
        heartbeat: config.heartbeat(),
        client_timeout: config.client_timeout(),
        write_timeout: config.ws_write_timeout(),
    };
    let resume = Resume {
        since: query.since,
        epoch: query.epoch,
    };
    let service = app.service.clone();
    let shutdown = app.shutdown.subscribe();
    Ok(ws
        .read_buffer_size(1024)
        .max_message_size(config.ws_max_message)
        .max_frame_size(config.ws_max_message)
        .on_upgrade(move |socket| async move {
            let metrics = service.metrics().clone();
            metrics.ws_connections.inc();
            let ended = run(socket, service, resume, timing, shutdown).await;
            if matches!(ended, Ended::WriteStalled | Ended::ClientSilent) {
                metrics.ws_dropped.inc();
            }
            tracing::debug!(?ended, "websocket session ended");
            metrics.ws_connections.dec();
        }))
}
