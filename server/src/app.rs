//! `fn app`: every route, merged in one place, with the tower-http layers.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_scalar::{Scalar, Servable};

use crate::access::Access;
use crate::config::Config;
use crate::error::Error;
use crate::health::HealthBoard;
use crate::http::guard::guard;
use crate::service::Service;
use crate::shutdown::ShutdownTrigger;
use crate::{http, openapi, ws};

/// What every handler and middleware is given: one pointer, so that the
/// copies axum makes per request and per layer (each route's stack is
/// cloned for every request) cost one count, not one per part.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug, Clone)]
pub struct Parts {
    pub service: Arc<Service>,
    pub config: Arc<Config>,
    /// The tokens, read from the configuration at start.
    pub access: Arc<Access>,
    pub health: Arc<HealthBoard>,
    /// New WebSocket sessions subscribe to it.
    pub shutdown: ShutdownTrigger,
    /// Rate limits, origins, WebSocket session slots.
    pub guards: Arc<crate::limits::Guards>,
    /// Where WebSocket sessions run (`--ws-threads`).
    pub sessions: ws::Sessions,
}

fn cors(config: &Config) -> CorsLayer {
    let origins = config.allowed_origins();
    let layer = if origins.is_empty() {
        CorsLayer::new()
            .allow_origin(AllowOrigin::from(Any))
            .allow_methods(Any)
    } else {
        // Named origins may send cookies (`credentials: "include"` in the
        // SDK): the browser then wants the origin and methods named, not `*`.
        // Compared as the 403 check compares them (an origin it lets
        // through was answered without `Access-Control-Allow-Origin`).
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin
                    .to_str()
                    .is_ok_and(|o| origins.contains(&crate::limits::origin_key(o)))
            }))
            .allow_methods(AllowMethods::mirror_request())
            .allow_credentials(true)
    };
    layer
        // The requested headers are named back: a `*` would not cover
        // `Authorization` (Fetch standard), and admin writes from another
        // origin would be blocked.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-sync-version"),
            http::trace::REQUEST_ID.clone(),
        ])
}

/// Keeps `--static-dir` to its own files: a path with a segment starting
/// with `.` (`.env`, `.git/`; `.well-known/` is served) and a file whose
/// real path (symbolic links followed) is outside the directory answer 404,
/// as a missing file does.
async fn within_static_dir(
    root: Arc<std::path::PathBuf>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let path = percent_encoding::percent_decode_str(request.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    // An empty segment names no file; and `//name` (or `/\\name`, a
    // browser reads `\\` as `/`) would be redirected to `//name/`, which a
    // browser reads as another host.
    let hidden = path.contains("//")
        || path.contains('\\')
        || path
            .split(['/', '\\'])
            .any(|segment| segment.starts_with('.') && segment != ".well-known");
    let outside = async {
        // Resolved for each request: a deploy that swaps a symbolic link to
        // the directory (`current -> releases/N`) serves the new one.
        let root = tokio::fs::canonicalize(&*root)
            .await
            .unwrap_or_else(|_| (*root).clone());
        let wanted = root.join(path.trim_start_matches('/'));
        let Ok(real) = tokio::fs::canonicalize(&wanted).await else {
            return false;
        };
        // Outside the directory, or a hidden file reached through a link
        // inside it (`visible -> .env`).
        let Ok(inside) = real.strip_prefix(&root) else {
            return true;
        };
        if inside.components().any(|part| {
            let part = part.as_os_str().to_string_lossy();
            part.starts_with('.') && part != ".well-known"
        }) {
            return true;
        }
        // A directory is answered with its index.html.
        real.is_dir()
            && tokio::fs::canonicalize(real.join("index.html"))
                .await
                .is_ok_and(|index| !index.starts_with(&root))
    };
    if hidden || outside.await {
        return Error::not_found("file", &path).into_response();
    }
    next.run(request).await
}

/// What the server answers while it starts (a store's lock waited for, the
/// catalog imported): `503` with `Retry-After` to every request, probes
/// too, with the request id and the CORS headers every answer carries (a
/// page of another origin reads the 503 and its `Retry-After`, not a CORS
/// failure).
pub fn starting(config: &Config) -> Router {
    let layers = tower::ServiceBuilder::new()
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        )
        .map_request(http::trace::drop_unfit_request_id)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(cors(config));
    Router::new()
        .fallback(|| async {
            Error::Unavailable(
                "the server is starting (opening its store, or reading its catalog): try again shortly"
                    .into(),
            )
            .into_response()
        })
        .layer(layers)
}

/// The server's whole router: every route under the prefix, the static
/// directory or a JSON 404 for everything else, and the layers.
pub fn app(state: AppState) -> Router {
    build(state, true)
}

/// Every route under the prefix with the layers, and no fallback (unless a
/// static directory is set), to merge into an application's own router.
pub fn routes(state: AppState) -> Router {
    build(state, false)
}

fn build(state: AppState, fallback: bool) -> Router {
    let config = state.config.clone();
    let state_for_probes = state.clone();
    let origin_state = state.clone();
    let doc = openapi::document(config.prefix());
    let doc_json = serde_json::to_string(&doc).expect("the API description serialises");
    // With --read-tokens-file these answer only callers with a token; every
    // one is under the per-address read limit (refused tokens count). One
    // guard each (see `read_checks`).
    let reads = Router::new()
        .merge(http::sync::router(config.body_limit))
        .merge(http::catalog::router())
        .merge(http::availability::router())
        .route_layer(guard(state.clone(), read_checks))
        .merge(ws::router().route_layer(guard(state.clone(), ws_checks)));
    let api = Router::new()
        .merge(reads)
        .merge(http::ops::router())
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
    // The standalone server also answers the probes at the root, where load
    // balancers and Kubernetes look for them (an application that mounts
    // the routes has its own).
    let api = if fallback && !config.prefix().is_empty() {
        api.merge(http::ops::probes(state_for_probes))
    } else {
        api
    };
    let api =
        match &config.static_dir {
            Some(dir) => {
                // Refused at start if it is not a directory (`Config::check`).
                let root = Arc::new(dir.clone());
                let guard = middleware::from_fn(move |request, next| {
                    within_static_dir(root.clone(), request, next)
                });
                api.fallback_service(tower::Layer::layer(&guard, ServeDir::new(dir)))
            }
            None if fallback => api.fallback(|uri: Uri| async move {
                Error::not_found("route", uri.path()).into_response()
            }),
            None => api,
        };
    // One layer made of all of them (`ServiceBuilder`, the outermost
    // first): axum wraps every route in each layer it is given and clones
    // the route's whole stack for every request, one boxed level a layer;
    // given as one, the stack is one level.
    let layers = tower::ServiceBuilder::new()
        // No answer of this server is to be read as another type than it
        // says (a browser sniffing a JSON error, or a static file, as HTML).
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            ),
        )
        .layer(crate::serve::CloseUnreadLayer)
        .map_request(http::trace::drop_unfit_request_id)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(http::trace::RequestSpan)
                .on_failure(http::trace::on_failure),
        )
        // The client's address, then its origin. Outside CORS: a foreign
        // origin's preflight is refused too.
        .layer(guard(origin_state, crate::limits::identify_client))
        .layer(cors(&config))
        .layer(guard((), crate::serve::refuse_over_capacity))
        .layer(guard((), crate::serve::refuse_transfer_codings))
        // The guards outside take and give axum's body.
        .map_response(IntoResponse::into_response)
        .layer(CompressionLayer::new())
        // tower's `then`: the answer, without a clone of what it wraps
        // (as axum's `map_response` made).
        .then(
            |answer: Result<Response, std::convert::Infallible>| async move {
                let Ok(response) = answer;
                Ok::<_, std::convert::Infallible>(crate::error::json_errors(response).await)
            },
        )
        // 504, not 408: a client retries a 408 blindly, and a write that
        // timed out may have landed. Inside `json_errors`, so it gets the
        // JSON shape too.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.request_timeout(),
        ))
        // A declared length past the limit is refused before any of the body
        // is waited for (413 at once, not when the bytes have come).
        // The timeout's own answer needs a body type with a default; the
        // limit's is made an axum body (as axum did between layers).
        .map_response(IntoResponse::into_response)
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(DefaultBodyLimit::max(config.body_limit));
    api.layer(layers)
}

/// The read API's checks, in turn: the per-address limit (so refused
/// tokens count), whether this instance is current, the token. One guard
/// rather than three: axum wraps each route in every layer it is given,
/// one boxed level (and a copy of what it holds) for every request.
fn read_checks(app: &AppState, request: &mut Request) -> Option<Response> {
    crate::limits::limit_reads(app, request)
        .or_else(|| crate::limits::require_current(app, request))
        .or_else(|| http::auth::require_read(app, request))
}

/// The WebSocket's: as [`read_checks`], the token in the query as well.
fn ws_checks(app: &AppState, request: &mut Request) -> Option<Response> {
    crate::limits::limit_reads(app, request)
        .or_else(|| crate::limits::require_current(app, request))
        .or_else(|| http::auth::require_read_ws(app, request))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::Metrics;
    use crate::store::SqliteStore;

    const TOKEN: &str = "unit-test-admin-token-of-32-bytes-or-more";

    async fn state(dir: &tempfile::TempDir) -> AppState {
        let store = SqliteStore::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        state_on(service_on(Arc::new(store)).await)
    }

    async fn service_on(store: Arc<dyn crate::store::Store>) -> Arc<Service> {
        Service::open(
            store,
            crate::service::Retention::events(100),
            16,
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap()
    }

    fn state_on(service: Arc<Service>) -> AppState {
        let mut config = Config::defaults();
        config.admin_token = Some(TOKEN.into());
        AppState::new(Parts {
            service,
            guards: Arc::new(crate::limits::Guards::new(&config)),
            access: Arc::new(Access::from_config(&config).unwrap()),
            config: Arc::new(config),
            health: Arc::default(),
            shutdown: crate::shutdown::channel().0,
            sessions: ws::Sessions::default(),
        })
    }

    /// One instance of several whose store does not answer its reads, and
    /// a client holding a version (or an epoch) the instance lacks: the
    /// client is refused (503), on the WebSocket before its upgrade as on
    /// `POST /sync`, rather than sent the instance's older state, which the
    /// SDK would take as the server's word and roll its copy back to.
    #[tokio::test]
    async fn a_client_ahead_of_an_instance_that_cannot_catch_up_is_refused() {
        use futures_util::StreamExt;
        use std::sync::atomic::Ordering::SeqCst;
        use tokio_tungstenite::tungstenite;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            crate::service::testing::Wrapped::open(&dir, std::time::Duration::ZERO, true).await,
        );
        let here = service_on(store.clone()).await;
        // Another instance on the store writes; this one has not followed.
        let there = service_on(store.clone()).await;
        there
            .write(|d| {
                crate::commands::create_provider(
                    d,
                    provider_sync_protocol::NewProvider {
                        id: "a".into(),
                        name: "a".into(),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        let epoch = there.snapshot().epoch().to_owned();
        assert_eq!(here.snapshot().version(), 0);
        store.fail_reads.store(true, SeqCst);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = app(state_on(here.clone()));
        tokio::spawn(async move { axum::serve(listener, served).await });
        let base = format!("{addr}/api/provider-sync");
        let socket = |since: u64, epoch: &str| {
            tokio_tungstenite::connect_async(format!("ws://{base}/ws?since={since}&epoch={epoch}"))
        };
        match socket(1, &epoch).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
            Ok((mut socket, _)) => {
                let first = socket.next().await;
                panic!("a client ahead was accepted; it was sent {first:?}")
            }
            Err(other) => panic!("{other}"),
        }
        match socket(0, "another-epoch").await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
            other => panic!("a client of another epoch: {:?}", other.map(|_| ())),
        }
        // A client this instance can vouch to (at its version) is served.
        let (mut ok, _) = socket(0, &epoch).await.expect("a client at its version");
        let hello = ok.next().await.unwrap().unwrap();
        assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello:?}");

        let sync = |body: serde_json::Value| {
            reqwest::Client::new()
                .post(format!("http://{base}/sync"))
                .json(&body)
                .send()
        };
        let ahead = sync(serde_json::json!({"client_version": 1, "client_epoch": epoch}));
        assert_eq!(ahead.await.unwrap().status(), 503);
        let other = sync(serde_json::json!({"client_version": 0, "client_epoch": "another-epoch"}));
        assert_eq!(other.await.unwrap().status(), 503);
        let at = sync(serde_json::json!({"client_version": 0, "client_epoch": epoch}));
        assert_eq!(at.await.unwrap().status(), 200);
        // Once the store answers, the client ahead is caught up to.
        store.fail_reads.store(false, SeqCst);
        let ahead = sync(serde_json::json!({"client_version": 1, "client_epoch": epoch}));
        assert_eq!(ahead.await.unwrap().status(), 200);
        assert_eq!(here.snapshot().version(), 1);
    }

    #[tokio::test]
    async fn state_answers_304_to_its_own_etag() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(state(&dir).await);
        let first = app
            .clone()
            .oneshot(
                Request::get("/api/provider-sync/state")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let second = app
            .oneshot(
                Request::get("/api/provider-sync/state")
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn admin_writes_need_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(&dir).await;
        let service = state.service.clone();
        let app = app(state);
        let request = |token: Option<&str>| {
            let mut builder = Request::post("/api/provider-sync/admin/providers")
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(token) = token {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            builder
                .body(Body::from(r#"{"id":"p","name":"P"}"#))
                .unwrap()
        };
        let refused = app.clone().oneshot(request(Some("guess"))).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(service.snapshot().version(), 0);

        let created = app.oneshot(request(Some(TOKEN))).await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(service.snapshot().version(), 1);
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_a_json_504() {
        let dir = tempfile::tempdir().unwrap();
        let mut parts = Parts::clone(&*state(&dir).await);
        let mut config = (*parts.config).clone();
        config.request_timeout_ms = 50;
        parts.config = Arc::new(config);
        let state = AppState::new(parts);
        // A body that arrives too slowly keeps the handler waiting.
        let slow = futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{}"))
        });
        let response = app(state)
            .oneshot(
                Request::post("/api/provider-sync/sync")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(slow))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "timeout");
        // A write that timed out may still land (black-box check,
        // 2026-12-03: it did, 10 s after a 504 that said only "Gateway
        // Timeout"): the message says so.
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("read it back"), "{message}");
    }

    #[tokio::test]
    async fn the_probes_answer_at_the_root_too() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(state(&dir).await);
        for path in [
            "/healthz",
            "/readyz",
            "/api/provider-sync/healthz",
            "/api/provider-sync/readyz",
        ] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        // Not in the routes an application mounts: it has its own.
        let other = tempfile::tempdir().unwrap();
        let mounted = routes(state(&other).await)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(mounted.status(), StatusCode::NOT_FOUND);
    }
}
