//! `GET /providers/{id}/availability` and `GET /models/{id}/availability`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use provider_sync_protocol::{
    ErrorBody, ModelAvailability, ProviderAvailability, ProviderStatus, model_availability,
    provider_availability,
};

use crate::app::AppState;
use crate::clock::today;
use crate::error::{AppJson, AppPath, Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/providers/{id}/availability", get(provider))
        .route("/models/{id}/availability", get(model))
}

/// Status, latest health reading and, when it is not available, where to go
/// instead.
#[utoipa::path(
    get,
    path = "/providers/{id}/availability",
    operation_id = "get_provider_availability",
    params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 200, description = "Availability", body = ProviderAvailability),
        (status = 404, description = "No such provider", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "availability"
)]
pub async fn provider(
    State(app): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<ProviderAvailability>> {
    let snapshot = app.service.snapshot();
    let mut availability = provider_availability(&snapshot.state, &id)
        .ok_or_else(|| Error::not_found("provider", &id))?;
    // The probe's latest reading is fresher than the one in the state, which
    // only changes with the status. The board keeps it while the probes run
    // and, for a provider in maintenance, as they left it (not probed
    // meanwhile): the stored one would go back to the last status change.
    // A reading is of the endpoint the provider has now, and of one that
    // is probed (not disabled).
    let (probed, resting) = snapshot.state.provider(&id).map_or((None, false), |p| {
        let resting = p.status == ProviderStatus::Maintenance;
        (p.health_url.as_deref().filter(|_| p.enabled), resting)
    });
    // One older than the stored one is not taken: an instance that does
    // not probe has the status change's event before the readings the
    // prober shares after it (RFC 3339 times in UTC to the millisecond, of
    // one width: compared as text).
    let newer = |reading: &provider_sync_protocol::ProviderHealth| {
        reading.last_check >= availability.health.last_check
    };
    if let Some(mut reading) = probed
        .and_then(|url| app.health.reading(&id, url))
        .filter(|reading| newer(reading))
    {
        // A healthy reading has no message, and one in maintenance is the
        // operator's: the stored one (their reason for a status that holds)
        // stays.
        if reading.message.is_none() || resting {
            reading.message = availability.health.message.take();
        }
        availability.health = reading;
    }
    Ok(AppJson(availability))
}

/// Deprecation, days to sunset and urgency, replacement, and whether the
/// model's provider is available.
#[utoipa::path(
    get,
    path = "/models/{id}/availability",
    operation_id = "get_model_availability",
    params(("id" = String, Path, description = "Model id (URL-encoded)")),
    responses(
        (status = 200, description = "Availability", body = ModelAvailability),
        (status = 404, description = "No such model", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "availability"
)]
pub async fn model(
    State(app): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<ModelAvailability>> {
    let snapshot = app.service.snapshot();
    model_availability(&snapshot.state, &id, today())
        .map(AppJson)
        .ok_or_else(|| Error::not_found("model", &id))
}
