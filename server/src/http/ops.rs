//! Operations: liveness, readiness, metrics, and the API description.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;

/// `/healthz` and `/readyz` alone, at the root of the server.
pub fn probes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `/healthz`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Alive {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// `/readyz`'s answer when ready.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(pattern = "^ready$")]
    status: &'static str,
    /// The catalog version this instance serves.
    version: u64,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = Alive)), tag = "ops")]
pub async fn healthz() -> Response {
    axum::Json(Alive { status: "ok" }).into_response()
}

/// The store answers too.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "The store does not answer (or, on a shared store, this instance cannot vouch for its copy); or the server is still starting (then with Retry-After)")
    ),
    tag = "ops"
)]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let shared = app.service.store().shared();
    // On a shared store an instance that knows it lost the store is not
    // ready whatever a ping says (below): it answers at once, not after the
    // ping's wait for a database that is down (2 s, past a probe's 1 s).
    let pinged = if shared && !app.service.store_reachable() {
        Err(crate::store::StoreError::Unreachable)
    } else {
        app.service.store().ping().await
    };
    // On a shared store a ping that answers says nothing of what this
    // instance missed: only a follow that caught up makes it current again
    // (and ready). A ping that fails says it is not.
    if pinged.is_err() || !shared {
        app.service.set_store_reachable(pinged.is_ok());
    }
    let pinged = match pinged {
        Ok(()) if shared && !app.service.store_reachable() => {
            Err(crate::store::StoreError::Unreachable)
        }
        pinged => pinged,
    };
    match pinged {
        Ok(()) => axum::Json(Ready {
            status: "ready",
            version: app.service.snapshot().version(),
        })
        .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "error": { "code": "not_ready", "message": "the store does not answer" } })),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    responses((
        status = 200,
        description = "Metrics text (OpenMetrics); answered while the store is down too (`provider_sync_store_reachable` is 0)",
        body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )),
    tag = "ops"
)]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let mut response = app.service.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
