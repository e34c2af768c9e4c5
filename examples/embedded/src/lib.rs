//! provider-sync inside an application of your own.
//!
//! The application has its own routes (`/`), its own login (here a stand-in:
//! the `x-user` header, where a real application checks its session), its
//! own listener and its own shutdown. provider-sync's router is merged in at
//! `/catalog/api` (its `prefix`); the application's middleware stands in
//! front of the admin API, which then trusts what reaches it
//! (`admin_trust_caller`), so there is no second token to manage; it names
//! the caller for provider-sync's audit (`Caller`).

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use provider_sync_server::{Caller, Config, ProviderSync, StartError};

/// Where provider-sync's routes live in this application.
pub const PREFIX: &str = "/catalog/api";

/// The application's own check: only operators reach the admin API, and
/// provider-sync's audit names them (`Caller`).
async fn operators_only(mut request: Request, next: Next) -> Response {
    let admin = request.uri().path().starts_with(&format!("{PREFIX}/admin"));
    let operator = request
        .headers()
        .get("x-user")
        .is_some_and(|user| user == "operator");
    if admin && !operator {
        return (StatusCode::FORBIDDEN, "operators only").into_response();
    }
    if operator {
        request.extensions_mut().insert(Caller("operator".into()));
    }
    next.run(request).await
}

/// provider-sync built on `database`, and the application's router with it
/// mounted. Serve the router, then call `ProviderSync::shutdown` when the
/// application stops.
pub async fn build(database: &str) -> Result<(Router, ProviderSync), StartError> {
    let mut config = Config::defaults();
    config.database = database.to_owned();
    config.prefix = PREFIX.to_owned();
    config.admin_trust_caller = true;
    let sync = ProviderSync::build(config).await?;
    let app = Router::new()
        .route("/", get(|| async { "the host application" }))
        .merge(sync.router())
        .layer(middleware::from_fn(operators_only))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "no such page in the host application",
            )
        });
    Ok((app, sync))
}
