//! `GET /state`, `POST /sync`, `GET /version`: how clients get the catalog.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use provider_sync_protocol::{
    ErrorBody, FullSyncReason, SyncRequest, SyncResponse, SyncState, SyncType, VersionInfo,
};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{SYNC_VERSION, json_bytes, none_match};
use crate::app::AppState;
use crate::error::{AppJson, Result};
use crate::metrics::SyncLabels;
use crate::precompress::{AcceptEncoding, Answer};
use crate::service::{CatchUp, Snapshot};

/// The longest `POST /sync` body taken, whatever `--body-limit` says: a
/// sync request is a few hundred bytes, and it needs no token, so a longer
/// one held open would only pin the server's memory (16 KiB, not 1 MiB, per
/// unfinished request).
pub const SYNC_BODY_LIMIT: usize = 16 * 1024;

/// The sync routes; `body_limit` is the server's own (`--body-limit`).
pub fn router(body_limit: usize) -> Router<AppState> {
    let sync = Router::new().route("/sync", post(sync));
    // A declared length past it is refused at once; a body that grows past
    // it (chunked), as it comes. Only when the server's own limit, outside,
    // is larger: a body read through two limits that outgrew the outer one
    // was refused with 400, not 413 (its error wrapped twice; found by a
    // black-box check with `--body-limit 2000` and a chunked body).
    let sync = if SYNC_BODY_LIMIT < body_limit {
        sync.layer(tower_http::limit::RequestBodyLimitLayer::new(
            SYNC_BODY_LIMIT,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(SYNC_BODY_LIMIT))
    } else {
        sync
    };
    sync.route("/state", get(state))
        .route("/version", get(version))
}

fn no_cache(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The whole catalog. `ETag` is `"<epoch>-<version>-<first 8 hex digits of
/// the checksum>"`; a matching `If-None-Match` gets 304.
#[utoipa::path(
    get,
    path = "/state",
    operation_id = "get_state",
    params(("If-None-Match" = Option<String>, Header, description = "ETags the client holds (`*`, a list, weak tags)")),
    responses(
        (status = 200, description = "The full state; `ETag: \"<epoch>-<version>-<first 8 hex digits of the checksum>\"` (the checksum part changes the tag of a store copied back from a backup without a new epoch, which may reach a version again with other content)", body = SyncState,
         headers(("ETag" = String, description = "\"<epoch>-<version>-<first 8 hex digits of the checksum>\"; weak (`W/` before it) on a compressed answer"), ("X-Sync-Version" = u64, description = "The catalog version"))),
        (status = 304, description = "Unchanged since the ETag given in `If-None-Match`",
         headers(("ETag" = String, description = "The current tag, as the 200 would carry it"), ("X-Sync-Version" = u64, description = "The catalog version"))),
    ),
    security((), ("read_token" = [])),
    tag = "sync"
)]
pub async fn state(State(app): State<AppState>, request: HeaderMap) -> Response {
    let snapshot = app.service.snapshot();
    let etag = state_etag(&snapshot);
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.parse().expect("hex and digits"));
    headers.insert(&SYNC_VERSION, snapshot.version().into());
    no_cache(&mut headers);
    // On a 304 too: it carries the Vary the 200 would (RFC 9110, 15.4.5).
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if none_match(&request, &etag) {
        // The tag the 200 would carry.
        if crate::precompress::preferred(&request).is_some() {
            weaken(&mut headers, &etag);
        }
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    // This version's bytes at the best levels once they are ready; before
    // that at the on-the-fly levels, compressed once for every request.
    if let Some(coding) = crate::precompress::preferred(&request) {
        let body = snapshot
            .quick
            .get(
                Answer::State,
                coding,
                &app.service.metrics().quick_compressions,
                || snapshot.precompressed.get().map(|r| coding.of(r).clone()),
                || snapshot.state_json().clone(),
            )
            .await;
        // Compressed here, or by the layer when this could not be done.
        weaken(&mut headers, &etag);
        if let Some(body) = body {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.name()),
            );
            return json_bytes(body, headers);
        }
    }
    json_bytes(snapshot.state_json().clone(), headers)
}

/// The tag of a compressed `/state` made weak (`W/"…"`), as nginx makes
/// it: a strong tag names one representation's bytes (RFC 9110, 8.8.1),
/// and the gzip, br and identity forms are three. `If-None-Match` compares
/// weakly, so each gets its 304 with the tag of any.
fn weaken(headers: &mut HeaderMap, etag: &str) {
    let weak = format!("W/{etag}");
    headers.insert(header::ETAG, weak.parse().expect("hex and digits"));
}

/// Epoch and version name a state within one history; the checksum's first
/// 8 hex digits tell apart two states that reached the same version of the
/// same epoch (a store copied back from a backup without `--new-epoch`).
fn state_etag(snapshot: &Snapshot) -> String {
    let checksum = &snapshot.state.metadata.checksum;
    let prefix = checksum.get(..8).unwrap_or(checksum);
    format!("\"{}-{}-{prefix}\"", snapshot.epoch(), snapshot.version())
}

/// `SyncResponse` with the events and state embedded as the JSON they were
/// serialised to once, rather than serialised again per request.
#[derive(Serialize)]
struct RawSyncResponse<'a> {
    sync_type: SyncType,
    version: u64,
    epoch: &'a str,
    events: Vec<&'a RawValue>,
    state: Option<&'a RawValue>,
    reason: Option<FullSyncReason>,
    checksum: &'a str,
}

/// Brings a client from `client_version` to now: nothing, the missed events,
/// or the full state.
#[utoipa::path(
    post,
    path = "/sync",
    request_body = SyncRequest,
    responses(
        (status = 200, description = "What the client needs", body = SyncResponse,
         headers(("X-Sync-Version" = u64, description = "The catalog version"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "A field has the wrong type", body = ErrorBody),
    ),
    security((), ("read_token" = [])),
    tag = "sync"
)]
pub async fn sync(
    State(app): State<AppState>,
    AcceptEncoding(accepted): AcceptEncoding,
    AppJson(request): AppJson<SyncRequest>,
) -> Result<Response> {
    // A client ahead of this instance (it came from another one) is caught
    // up to first, rather than sent an older state.
    // Still behind such a client (or of another epoch), the store not
    // answering: refused, since an older state would roll the client back.
    app.service
        .caught_up_for(request.client_epoch.as_deref(), request.client_version)
        .await?;
    let snapshot = app.service.snapshot();
    let catch_up = snapshot.catch_up(
        request.client_version,
        request.client_epoch.as_deref(),
        request.force_full.unwrap_or(false),
    );
    let label = match &catch_up {
        CatchUp::UpToDate => "none",
        CatchUp::Events(_) => "incremental",
        CatchUp::Full(_) => "full",
    };
    app.service
        .metrics()
        .syncs
        .get_or_create(&SyncLabels { sync_type: label })
        .inc();
    let mut headers = HeaderMap::new();
    headers.insert(&SYNC_VERSION, snapshot.version().into());
    no_cache(&mut headers);
    let body = match &catch_up {
        CatchUp::UpToDate => sync_body(&snapshot, SyncType::None, vec![], None),
        CatchUp::Events(events) => sync_body(
            &snapshot,
            SyncType::Incremental,
            events
                .iter()
                .map(|e| serde_json::from_str::<&RawValue>(e.json.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .expect("logged events are valid JSON"),
            None,
        ),
        CatchUp::Full(reason) => {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            // This version's answer for this reason at the best levels once
            // it is ready (asked for now if it is not); before that at the
            // on-the-fly levels, compressed once for every request.
            if snapshot.full_syncs.get(*reason).is_none() && snapshot.full_syncs.want(*reason) {
                app.service.answer_wanted();
            }
            if let Some(coding) = crate::precompress::preferred(&accepted) {
                let body = snapshot
                    .quick
                    .get(
                        Answer::FullSync(*reason),
                        coding,
                        &app.service.metrics().quick_compressions,
                        || {
                            snapshot
                                .full_syncs
                                .get(*reason)
                                .map(|r| coding.of(r).clone())
                        },
                        || full_sync_body(&snapshot, *reason),
                    )
                    .await;
                if let Some(body) = body {
                    headers.insert(
                        header::CONTENT_ENCODING,
                        HeaderValue::from_static(coding.name()),
                    );
                    return Ok(json_bytes(body, headers));
                }
            }
            return Ok(json_bytes(full_sync_body(&snapshot, *reason), headers));
        }
    };
    Ok(json_bytes(body, headers))
}

fn sync_body(
    snapshot: &Snapshot,
    sync_type: SyncType,
    events: Vec<&RawValue>,
    reason: Option<FullSyncReason>,
) -> Vec<u8> {
    serde_json::to_vec(&RawSyncResponse {
        sync_type,
        version: snapshot.version(),
        epoch: snapshot.epoch(),
        events,
        state: (sync_type == SyncType::Full).then(|| snapshot.state_raw()),
        reason,
        checksum: &snapshot.state.metadata.checksum,
    })
    .expect("response serialises")
}

/// The full `POST /sync` answer of `snapshot` for `reason`: the same bytes
/// for every client given that reason at that version, made once and
/// shared (each request held its own copy of the catalog: a client that
/// does not read its answer kept one per connection), and compressed once
/// (`crate::precompress`).
pub(crate) fn full_sync_body(snapshot: &Snapshot, reason: FullSyncReason) -> axum::body::Bytes {
    snapshot
        .full_syncs
        .json(reason, || {
            sync_body(snapshot, SyncType::Full, vec![], Some(reason))
        })
        .clone()
}

/// The current version and epoch: the polling fallback's cheap check.
#[utoipa::path(
    get,
    path = "/version",
    operation_id = "get_version",
    responses((status = 200, description = "Where the catalog stands", body = VersionInfo)),
    security((), ("read_token" = [])),
    tag = "sync"
)]
pub async fn version(State(app): State<AppState>) -> Response {
    let info = app.service.snapshot().version_info();
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Written into room enough for it (`axum::Json` starts at 128 bytes,
    // and an answer is about 150: a second allocation and a copy).
    let mut body = Vec::with_capacity(256);
    if let Err(err) = serde_json::to_writer(&mut body, &info) {
        // As `axum::Json` answers it (the JSON error shape comes from
        // `json_errors`); a `VersionInfo` of numbers and strings always
        // serialises.
        return (StatusCode::INTERNAL_SERVER_ERROR, headers, err.to_string()).into_response();
    }
    json_bytes(body, headers)
}
