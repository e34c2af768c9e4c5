//! A `POST /sync` body, read as the handler reads it (`AppJson`, which is
//! `axum::Json`'s reading with the crate's error responses), then planned
//! with the protocol's `plan_sync` against a small fixed history, as
//! `Snapshot::catch_up` does. A body that cannot be read gets a 4xx JSON
//! error body; one that can gets a plan that brings the client to the
//! server's state. (`prefer_full` may then send the state instead, which
//! is whole by itself.)

use std::sync::OnceLock;

use axum::Json;
use axum::response::IntoResponse;
use futures_util::FutureExt;
use provider_sync_protocol::{
    ErrorBody, FullSyncReason, LogWindow, NewModel, NewProvider, SyncEvent, SyncPlan, SyncRequest,
    SyncState, apply_events, plan_sync,
};
use provider_sync_sdk::json;
use provider_sync_server::commands;
use provider_sync_server::error::Error;
use provider_sync_server::service::Draft;

const EPOCH: &str = "fuzz-epoch";
/// The log keeps the events after this version (older ones were trimmed).
const OLDEST_RESUMABLE: u64 = 3;

/// A short history: the state after each version, and the events.
struct History {
    states: Vec<SyncState>,
    events: Vec<SyncEvent>,
}

fn provider(id: &str) -> NewProvider {
    NewProvider {
        id: id.into(),
        name: id.to_uppercase(),
        ..Default::default()
    }
}

fn model(id: &str, provider_id: &str) -> NewModel {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": id, "provider_id": provider_id, "context_window": 128000,
    }))
    .expect("a model body")
}

fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(|| {
        let mut start = SyncState::default();
        start.metadata.epoch = EPOCH.into();
        start.refresh_metadata();
        let mut draft = Draft::scratch(start.clone(), None);
        commands::create_provider(&mut draft, provider("openai")).unwrap();
        commands::create_provider(&mut draft, provider("anthropic")).unwrap();
        commands::create_model(&mut draft, model("gpt-4o", "openai")).unwrap();
        commands::create_model(&mut draft, model("gpt-4o-mini", "openai")).unwrap();
        commands::create_model(&mut draft, model("claude", "anthropic")).unwrap();
        commands::delete_model(&mut draft, "gpt-4o-mini", None).unwrap();
        commands::create_model(&mut draft, model("o3", "openai")).unwrap();
        commands::create_provider(&mut draft, provider("mistral")).unwrap();
        commands::create_model(&mut draft, model("mistral-large", "mistral")).unwrap();
        commands::delete_provider(&mut draft, "mistral", None).unwrap();
        let events = draft.events().to_vec();
        let mut states = vec![start];
        for event in &events {
            let mut next = states.last().unwrap().clone();
            apply_events(&mut next, std::slice::from_ref(event)).unwrap();
            states.push(next);
        }
        assert_eq!(states.last(), Some(draft.state()));
        History { states, events }
    })
}

pub fn check(data: &[u8]) {
    let request = match Json::<SyncRequest>::from_bytes(data) {
        Ok(Json(request)) => request,
        Err(rejection) => return refused(Error::from(rejection)),
    };
    // What serde_json and the SDK write of it reads back the same.
    let written = serde_json::to_vec(&request).expect("a request serialises");
    assert_eq!(
        Json::<SyncRequest>::from_bytes(&written)
            .ok()
            .map(|j| j.0)
            .as_ref(),
        Some(&request)
    );
    let sdk = json::to_string(&request).expect("the SDK writes a request");
    assert_eq!(
        Json::<SyncRequest>::from_bytes(sdk.as_bytes())
            .ok()
            .map(|j| j.0)
            .as_ref(),
        Some(&request),
        "{sdk}"
    );
    plan(&request);
}

/// The error response: a client error with the JSON error body.
fn refused(error: Error) {
    let response = error.into_response();
    let status = response.status();
    assert!(
        [400, 413, 415, 422].contains(&status.as_u16()),
        "status {status}"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .now_or_never()
        .expect("an error body is ready at once")
        .expect("an error body reads");
    let body: ErrorBody = serde_json::from_slice(&body).expect("the error body is JSON");
    assert!(!body.error.code.is_empty() && !body.error.message.is_empty());
}

fn plan(request: &SyncRequest) {
    let history = history();
    let server = history.states.last().unwrap();
    let version = server.metadata.version;
    let window = LogWindow {
        epoch: EPOCH,
        version,
        oldest_resumable: OLDEST_RESUMABLE,
    };
    let force = request.force_full.unwrap_or(false);
    let epoch = request.client_epoch.as_deref();
    let client = request.client_version;
    match plan_sync(client, epoch, force, window) {
        SyncPlan::Full(FullSyncReason::Requested) => {
            assert!(force || (client == 0 && epoch.is_none()))
        }
        SyncPlan::Full(reason) => {
            assert!(!force);
            let expected = if epoch != Some(EPOCH) {
                FullSyncReason::EpochMismatch
            } else if client > version {
                FullSyncReason::FutureVersion
            } else {
                FullSyncReason::TooOld
            };
            assert_eq!(reason, expected);
            assert!(reason != FullSyncReason::TooOld || client < OLDEST_RESUMABLE);
        }
        SyncPlan::UpToDate => {
            assert!(!force && epoch == Some(EPOCH) && client == version);
        }
        SyncPlan::Incremental { since } => {
            assert!(!force && epoch == Some(EPOCH));
            assert_eq!(since, client);
            assert!((OLDEST_RESUMABLE..version).contains(&since));
            // The events after `since`, as the log hands them out, bring
            // the client's copy to the server's.
            let from = history.events.partition_point(|e| e.version <= since);
            let events = &history.events[from..];
            let mut copy = history.states[since as usize].clone();
            apply_events(&mut copy, events).expect("the events apply");
            assert_eq!(&copy, server);
            assert_eq!(copy.metadata.checksum, server.metadata.checksum);
        }
    }
}
