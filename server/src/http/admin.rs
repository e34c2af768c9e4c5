//! The admin API: authenticated writes. Each handler runs one write (one
//! transaction, consecutive versions, the audit record with them) and
//! answers with the entity, its `ETag` (the revision) and `X-Sync-Version`
//! (the catalog version after it). `GET /admin/audit` reads the records.

use std::sync::Arc;

use super::audit::{self, AdminWrite};
use super::guard::guard;
use super::{SYNC_VERSION, auth};
use crate::app::AppState;
use crate::commands;
use crate::error::{AppPath, Error, Result, StrictJson};
use crate::service::Written;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Extension, Json, Router};
use provider_sync_protocol::{
    ActiveProviderChanged, DeprecateModel, ErrorBody, ModelPatch, ModelSpecification, NewModel,
    NewProvider, ProviderPatch, ProviderSyncInfo, SetActiveProvider, StatusUpdate,
};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/providers", post(create_provider))
        .route(
            "/providers/{id}",
            patch(update_provider).delete(delete_provider),
        )
        .route("/providers/{id}/status", put(set_status))
        .route("/models", post(create_model))
        .route("/models/{id}", patch(update_model).delete(delete_model))
        .route("/models/{id}/deprecate", post(deprecate_model))
        .route("/active-provider", put(set_active_provider))
        .route_layer(middleware::from_fn_with_state(state.clone(), audit::record))
        // Reading the audit is not a write: it leaves no record.
        .route("/audit", get(audit::list))
        // A path no route has is answered 404 only to a caller with a token:
        // without one, every path under /admin is 401 alike (and counted
        // against the admin limit), telling nothing of which exist.
        // (A route, not a fallback: a nested router's fallback is lost when
        // the API is nested again under its prefix.)
        .route(
            "/{*path}",
            axum::routing::any(|uri: axum::extract::OriginalUri| async move {
                Error::not_found("route", uri.path()).into_response()
            }),
        )
        // Every request under /admin is counted against the admin limit
        // first, then needs the token (one layer: see `app::build`).
        .layer(
            tower::ServiceBuilder::new()
                .layer(guard(state.clone(), crate::limits::limit_admin))
                .layer(guard(state, auth::require_admin)),
        )
}

/// What `If-Match` may hold: `*` (any revision), or one revision as `"3"`,
/// `W/"3"` or `3` (at most 19 digits: every revision fits).
pub(crate) const IF_MATCH_PATTERN: &str = r#"^(?:\*|(?:W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#;

/// The revision an `If-Match` header names (see [`IF_MATCH_PATTERN`]); `*`
/// or no header means any, anything else is a 400.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl IfMatch {
    /// The header's value read, or `None` if it is not of the pattern's form.
    fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self(None));
        }
        let digits = match text.strip_prefix("W/") {
            Some(tag) => tag.strip_prefix('"')?.strip_suffix('"')?,
            None => match text.strip_prefix('"') {
                Some(tag) => tag.strip_suffix('"')?,
                None => text,
            },
        };
        if !(1..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(|revision| Self(Some(revision)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        // Two header lines are a list (RFC 9110), which names no one
        // revision: refused as a list in one line is (only the first line
        // was read).
        if values.next().is_some() {
            return Err(Error::BadRequest(
                "If-Match must name one revision such as \"3\" (or be *): it was sent more than once".into(),
            ));
        }
        // Bytes past ASCII were shown as "" (a value that is not text):
        // shown as UTF-8 where they are, cut at 100 characters.
        let text = String::from_utf8_lossy(value.as_bytes());
        let shown: String = text.chars().take(100).collect();
        Self::parse(value.to_str().unwrap_or("")).ok_or_else(|| {
            Error::BadRequest(format!(
                "If-Match must name a revision such as \"3\" (at most 19 digits: no revision has more) or be *, not {shown:?}"
            ))
        })
    }
}

/// How `If-Match` is read for providers (the health probes change them too).
const PROVIDER_IF_MATCH: &str = "Revision the change is based on (`\"R\"`): refused with 412 if the provider changed after revision R, unless only the health probes changed it";

/// The answer to a write: status, entity, `ETag` and `X-Sync-Version`.
fn answer<T: serde::Serialize>(
    status: StatusCode,
    written: Written<T>,
    revision: Option<u64>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(&SYNC_VERSION, written.version.into());
    if let Some(revision) = revision {
        headers.insert(header::ETAG, super::revision_etag(revision));
    }
    (status, headers, Json(written.value)).into_response()
}

/// Entities whose revision is their `ETag`.
trait Revisioned {
    fn revision(&self) -> u64;
}

impl Revisioned for ProviderSyncInfo {
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl Revisioned for ModelSpecification {
    fn revision(&self) -> u64 {
        self.revision
    }
}

/// The answer to a write of one entity: it, with its revision as `ETag`.
fn answer_entity<T: serde::Serialize + Revisioned>(
    status: StatusCode,
    written: Written<T>,
) -> Response {
    let revision = written.value.revision();
    answer(status, written, Some(revision))
}

fn answer_empty(written: Written<()>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(&SYNC_VERSION, written.version.into());
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// Create a provider. Only `id` and `name` are required.
#[utoipa::path(
    post,
    path = "/admin/providers",
    request_body = NewProvider,
    responses(
        (status = 201, description = "Created", body = ProviderSyncInfo),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "The fallback provider does not exist (`field` names it)", body = ErrorBody),
        (status = 409, description = "The id exists", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn create_provider(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    // Read (an unreadable one is a 400, as everywhere) but not compared:
    // there is no revision of this write's target to compare it with.
    _if_match: IfMatch,
    StrictJson(body): StrictJson<NewProvider>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::CREATED, |d| {
            commands::create_provider(d, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::CREATED, written))
}

/// Change some fields of a provider; `null` clears an optional one.
#[utoipa::path(
    patch,
    path = "/admin/providers/{id}",
    params(("id" = String, Path, description = "Provider id"),
           ("If-Match" = Option<String>, Header, description = PROVIDER_IF_MATCH)),
    request_body = ProviderPatch,
    responses(
        (status = 200, description = "Updated", body = ProviderSyncInfo),
        (status = 404, description = "No such provider, or no such fallback provider (`field` names it)", body = ErrorBody),
        (status = 412, description = "Stale revision; the body has the current provider", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn update_provider(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
    StrictJson(body): StrictJson<ProviderPatch>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::OK, |d| {
            commands::update_provider(d, &id, if_match, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::OK, written))
}

/// Remove a provider and its models.
#[utoipa::path(
    delete,
    path = "/admin/providers/{id}",
    params(("id" = String, Path, description = "Provider id"),
           ("If-Match" = Option<String>, Header, description = PROVIDER_IF_MATCH)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 412, description = "Stale revision", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn delete_provider(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::NO_CONTENT, |d| {
            commands::delete_provider(d, &id, if_match)
        })
        .await?;
    Ok(answer_empty(written))
}

/// Set a provider's status (for example `maintenance`) with a message.
#[utoipa::path(
    put,
    path = "/admin/providers/{id}/status",
    params(("id" = String, Path, description = "Provider id"),
           ("If-Match" = Option<String>, Header, description = PROVIDER_IF_MATCH)),
    request_body = StatusUpdate,
    responses(
        (status = 200, description = "Status set", body = ProviderSyncInfo),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 412, description = "Stale revision", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn set_status(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
    StrictJson(body): StrictJson<StatusUpdate>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::OK, |d| {
            commands::set_status(d, &id, if_match, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::OK, written))
}

/// Create a model. `id`, `name`, `provider_id` and `context_window` are
/// required.
#[utoipa::path(
    post,
    path = "/admin/models",
    request_body = NewModel,
    responses(
        (status = 201, description = "Created", body = ModelSpecification),
        (status = 404, description = "Its provider or replacement does not exist (`field` names it)", body = ErrorBody),
        (status = 409, description = "The id exists", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn create_model(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    // Read (an unreadable one is a 400, as everywhere) but not compared:
    // there is no revision of this write's target to compare it with.
    _if_match: IfMatch,
    StrictJson(body): StrictJson<NewModel>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::CREATED, |d| {
            commands::create_model(d, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::CREATED, written))
}

/// Change some fields of a model; `null` clears an optional one.
#[utoipa::path(
    patch,
    path = "/admin/models/{id}",
    params(("id" = String, Path, description = "Model id (URL-encoded)"),
           ("If-Match" = Option<String>, Header, description = "Revision the change is based on")),
    request_body = ModelPatch,
    responses(
        (status = 200, description = "Updated", body = ModelSpecification),
        (status = 404, description = "No such model, or no such provider or replacement (`field` names it)", body = ErrorBody),
        (status = 409, description = "The change contradicts a field the model keeps (an input limit above its context window, a sunset before its deprecation date): set both in one request; the body has the current model", body = ErrorBody),
        (status = 412, description = "Stale revision; the body has the current model", body = ErrorBody),
        (status = 422, description = "A field is not acceptable", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn update_model(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
    StrictJson(body): StrictJson<ModelPatch>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::OK, |d| {
            commands::update_model(d, &id, if_match, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::OK, written))
}

/// Remove a model.
#[utoipa::path(
    delete,
    path = "/admin/models/{id}",
    params(("id" = String, Path, description = "Model id (URL-encoded)"),
           ("If-Match" = Option<String>, Header, description = "Revision the change is based on")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 412, description = "Stale revision", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn delete_model(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::NO_CONTENT, |d| {
            commands::delete_model(d, &id, if_match)
        })
        .await?;
    Ok(answer_empty(written))
}

/// Deprecate a model: dates and replacement.
#[utoipa::path(
    post,
    path = "/admin/models/{id}/deprecate",
    params(("id" = String, Path, description = "Model id (URL-encoded)"),
           ("If-Match" = Option<String>, Header, description = "Revision the change is based on")),
    request_body = DeprecateModel,
    responses(
        (status = 200, description = "Deprecated", body = ModelSpecification),
        (status = 404, description = "No such model, or no such replacement (`field` names it)", body = ErrorBody),
        (status = 409, description = "The change contradicts a field the model keeps (an input limit above its context window, a sunset before its deprecation date): set both in one request; the body has the current model", body = ErrorBody),
        (status = 412, description = "Stale revision", body = ErrorBody),
        (status = 422, description = "A date or the replacement is not acceptable", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn deprecate_model(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    AppPath(id): AppPath<String>,
    IfMatch(if_match): IfMatch,
    StrictJson(body): StrictJson<DeprecateModel>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::OK, |d| {
            commands::deprecate_model(d, &id, if_match, body.clone())
        })
        .await?;
    Ok(answer_entity(StatusCode::OK, written))
}

/// Choose the active (and optionally the default) provider.
#[utoipa::path(
    put,
    path = "/admin/active-provider",
    request_body = SetActiveProvider,
    responses(
        (status = 200, description = "Set", body = ActiveProviderChanged),
        (status = 404, description = "No such provider (`field` names which)", body = ErrorBody),
        (status = 422, description = "`provider_id` is missing, or a field has the wrong type", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn set_active_provider(
    State(app): State<AppState>,
    Extension(write): Extension<Arc<AdminWrite>>,
    // Read (an unreadable one is a 400, as everywhere) but not compared:
    // there is no revision of this write's target to compare it with.
    _if_match: IfMatch,
    StrictJson(body): StrictJson<SetActiveProvider>,
) -> Result<Response> {
    let written = write
        .write(&app.service, StatusCode::OK, |d| {
            commands::set_active_provider(d, body.clone())
        })
        .await?;
    Ok(answer(StatusCode::OK, written, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_what_its_pattern_says() {
        let pattern = regex::Regex::new(IF_MATCH_PATTERN).unwrap();
        for text in [
            "*",
            "3",
            "\"3\"",
            "W/\"3\"",
            "0",
            "9999999999999999999",
            "99999999999999999999",
            "",
            "\"",
            "\"\"",
            "\"3",
            "3\"",
            "\"\"3\"\"",
            "W/3",
            "W/W/\"3\"",
            "w/\"3\"",
            " 3",
            "3 ",
            "-1",
            "+1",
            "null",
            "**",
            "\"*\"",
            "3, 4",
            "٣",
        ] {
            assert_eq!(
                IfMatch::parse(text).is_some(),
                pattern.is_match(text),
                "{text:?}"
            );
        }
        assert_eq!(IfMatch::parse("W/\"42\"").unwrap().0, Some(42));
        assert_eq!(IfMatch::parse("*").unwrap().0, None);
    }
}
