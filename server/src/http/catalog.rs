//! Read-only views of the catalog: `GET /providers`, `GET /models` (filtered,
//! paginated) and single entities.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use provider_sync_protocol::{
    ErrorBody, ModelCapability, ModelFilter, ModelPage, ModelSpecification, ProviderSyncInfo,
};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppJson, AppPath, AppQuery, Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/providers", get(list_providers))
        .route("/providers/{id}", get(get_provider))
        .route("/models", get(list_models))
        .route("/models/{id}", get(get_model))
}

/// A parameter of no filter is refused (400 naming it), not ignored: a
/// misspelt filter would otherwise answer every model.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    /// Only this provider's models (`provider` is read as the same).
    #[serde(alias = "provider")]
    provider_id: Option<String>,
    /// Only models with this capability.
    capability: Option<ModelCapability>,
    /// `true`: only deprecated or sunset models; `false`: only active ones.
    deprecated: Option<bool>,
    /// Text in the model's id or name, ignoring the case of ASCII letters
    /// (other characters match as written).
    #[serde(alias = "q")]
    search: Option<String>,
    /// Models to skip (default 0).
    offset: Option<u32>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

/// Models matching every filter given, in id order, one page at a time.
#[utoipa::path(
    get,
    path = "/models",
    params(ModelsQuery),
    responses(
        (status = 200, description = "One page of models", body = ModelPage),
        (status = 400, description = "A filter cannot be read", body = ErrorBody),
        (status = 422, description = "Limit out of range", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "catalog"
)]
pub async fn list_models(
    State(app): State<AppState>,
    AppQuery(query): AppQuery<ModelsQuery>,
) -> Result<AppJson<ModelPage>> {
    let limit = super::page_limit(query.limit)?;
    let offset = query.offset.unwrap_or(0);
    let filter = ModelFilter {
        provider_id: query.provider_id,
        capability: query.capability,
        deprecated: query.deprecated,
        search: query.search.filter(|s| !s.is_empty()),
    };
    let snapshot = app.service.snapshot();
    let matching: Vec<&ModelSpecification> = snapshot
        .state
        .all_models
        .iter()
        .filter(|m| filter.matches(m))
        .collect();
    Ok(AppJson(ModelPage {
        total: matching.len() as u32,
        models: matching
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect(),
        offset,
        limit,
        version: snapshot.version(),
    }))
}

#[utoipa::path(
    get,
    path = "/models/{id}",
    params(("id" = String, Path, description = "Model id (URL-encoded)")),
    responses(
        (status = 200, description = "The model; its `ETag` is its revision, what a write's `If-Match` names", body = ModelSpecification),
        (status = 404, description = "No such model", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "catalog"
)]
pub async fn get_model(
    State(app): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response> {
    let snapshot = app.service.snapshot();
    let model = snapshot
        .state
        .model(&id)
        .ok_or_else(|| Error::not_found("model", &id))?;
    Ok(with_revision(model.revision, AppJson(model.clone())))
}

/// An entity's answer with its revision as `ETag` (`"R"`), as the admin
/// API's writes answer: a client reads, then writes with `If-Match`.
fn with_revision(revision: u64, body: impl IntoResponse) -> Response {
    ([(header::ETAG, super::revision_etag(revision))], body).into_response()
}

/// Every provider, in id order.
#[utoipa::path(
    get,
    path = "/providers",
    responses((status = 200, description = "All providers", body = Vec<ProviderSyncInfo>)),
    security((), ("read_token" = [])),
    tag = "catalog"
)]
pub async fn list_providers(State(app): State<AppState>) -> AppJson<Vec<ProviderSyncInfo>> {
    AppJson(app.service.snapshot().state.providers.clone())
}

#[utoipa::path(
    get,
    path = "/providers/{id}",
    params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 200, description = "The provider; its `ETag` is its revision, what a write's `If-Match` names", body = ProviderSyncInfo),
        (status = 404, description = "No such provider", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "catalog"
)]
pub async fn get_provider(
    State(app): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Response> {
    let snapshot = app.service.snapshot();
    let provider = snapshot
        .state
        .provider(&id)
        .ok_or_else(|| Error::not_found("provider", &id))?;
    Ok(with_revision(provider.revision, AppJson(provider.clone())))
}
