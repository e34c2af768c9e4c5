//! `fn app`: every route, merged in one place, with the tower-http layers.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_scalar::{Scalar, Servable};

use crate::config::Config;
use crate::error::Error;
use crate::health::HealthBoard;
use crate::service::Service;
use crate::shutdown::ShutdownTrigger;
use crate::{http, openapi, ws};

#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub config: Arc<Config>,
    pub health: Arc<HealthBoard>,
    /// New WebSocket sessions subscribe to it.
    pub shutdown: ShutdownTrigger,
}

fn cors(config: &Config) -> CorsLayer {
    let origins = if config.cors_origins.is_empty() {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([header::ETAG, HeaderName::from_static("x-sync-version")])
}

pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let doc = openapi::document(config.prefix());
    let doc_json = serde_json::to_string(&doc).expect("the API description serialises");
    let api = Router::new()
        .merge(http::sync::router())
        .merge(http::catalog::router())
        .merge(http::availability::router())
        .merge(http::ops::router())
        .merge(ws::router())
        .nest("/admin", http::admin::router(state.clone()))
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc_json.clone(),
                )
            }),
        )
        .with_state(state)
        .merge(Scalar::with_url("/docs", doc));
    let api = if config.prefix().is_empty() {
        api
    } else {
        Router::new().nest(config.prefix(), api)
    };
    let api =
        match &config.static_dir {
            Some(dir) => api.fallback_service(ServeDir::new(dir)),
            None => api.fallback(|uri: Uri| async move {
                Error::not_found("route", uri.path()).into_response()
            }),
        };
    api.layer(DefaultBodyLimit::max(config.body_limit))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ))
        .layer(cors(&config))
        .layer(TraceLayer::new_for_http())
}
