//! The admin API: authentication, validation, optimistic concurrency and the
//! events each write emits.

mod common;

use common::*;
use provider_sync_protocol::{EventPayload, SyncEvent};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

async fn server() -> (tempfile::TempDir, TestServer) {
    let (dir, db) = temp_db();
    (dir, TestServer::start(config(&db)).await)
}

/// The events committed after `since`, from `/sync`.
async fn events_since(server: &TestServer, since: u64) -> Vec<SyncEvent> {
    let epoch = server.state().await.metadata.epoch;
    let body = server
        .sync(json!({"client_version": since, "client_epoch": epoch}))
        .await;
    if body["sync_type"] == "none" {
        return vec![];
    }
    assert_eq!(body["sync_type"], "incremental", "{body}");
    serde_json::from_value(body["events"].clone()).unwrap()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_token_is_required_and_checked() {
    let (_dir, server) = server().await;
    let body = json!({"id": "x", "name": "X"});
    let missing = server
        .http
        .post(server.url("/admin/providers"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let (status, error) = error_of(missing).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["code"], "unauthorized");
    let wrong = server
        .http
        .post(server.url("/admin/providers"))
        .bearer_auth("not-the-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(server.version().await, 0, "nothing was written");

    // Without a configured token the admin API is closed.
    let (_dir2, db) = temp_db();
    let mut open = config(&db);
    open.admin_token = None;
    let closed = TestServer::start(open).await;
    let response = closed
        .admin(Method::POST, "/providers")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 401);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PROVIDER_SYNC_ADMIN_TOKEN")
    );
    closed.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn create_applies_defaults_and_refuses_duplicates() {
    let (_dir, server) = server().await;
    let response = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "openai", "name": "OpenAI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()[header::ETAG], "\"1\"");
    assert_eq!(response.headers()["x-sync-version"], "1");
    let provider: Value = response.json().await.unwrap();
    assert_eq!(provider["display_name"], "OpenAI");
    assert_eq!(provider["enabled"], true);
    assert_eq!(provider["status"], "available");
    assert_eq!(provider["provider_type"], "openai_compatible");

    let (status, error) = error_of(
        server
            .admin(Method::POST, "/providers")
            .json(&json!({"id": "openai", "name": "Again"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "conflict");

    let model = server.add_model("gpt-x", "openai").await;
    assert_eq!(model["max_input_tokens"], 8192);
    assert_eq!(model["deprecation_status"], "active");
    let (status, _) = error_of(
        server
            .admin(Method::POST, "/models")
            .json(&json!({"id": "gpt-x", "name": "dup", "provider_id": "openai", "context_window": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    let (status, error) = error_of(
        server
            .admin(Method::POST, "/models")
            .json(&json!({"id": "m2", "name": "M2", "provider_id": "nobody", "context_window": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
    assert_eq!(server.version().await, 2, "refused writes emit nothing");
    server.stop().await;
}

#[tokio::test]
async fn validation_errors_name_the_field_and_change_nothing() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let cases = [
        ("/providers", json!({"id": "bad id!", "name": "x"}), "id"),
        ("/providers", json!({"id": "/x", "name": "x"}), "id"),
        ("/providers", json!({"id": "x/", "name": "x"}), "id"),
        ("/providers", json!({"id": "a//b", "name": "x"}), "id"),
        ("/providers", json!({"id": "a/../b", "name": "x"}), "id"),
        ("/providers", json!({"id": "..", "name": "x"}), "id"),
        ("/providers", json!({"id": "a%2Fb", "name": "x"}), "id"),
        ("/providers", json!({"id": "a?b", "name": "x"}), "id"),
        ("/providers", json!({"id": "a#b", "name": "x"}), "id"),
        ("/providers", json!({"id": "<b>", "name": "x"}), "id"),
        ("/providers", json!({"id": "a\u{202e}b", "name": "x"}), "id"),
        ("/providers", json!({"id": "q", "name": "  "}), "name"),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "base_url": "https://user:secret@example.com"}),
            "base_url",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "base_url": "https://example.com/?api_key=1"}),
            "base_url",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "fallback_provider_id": "ghost"}),
            "fallback_provider_id",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "provider_type": "Open AI"}),
            "provider_type",
        ),
        ("/providers", json!({"id": "q"}), "name"),
        // Clients read statuses they do not know (a newer server's); a
        // server writes only the ones it knows.
        (
            "/providers",
            json!({"id": "q", "name": "Q", "status": "on_fire"}),
            "status",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "deprecation_status": "retiring"}),
            "deprecation_status",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "colour": "red"}),
            "colour",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 0}),
            "context_window",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "max_output_tokens": 0}),
            "max_output_tokens",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "pricing": {"input_per_million": -1, "output_per_million": 1}}),
            "pricing.input_per_million",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "deprecation_date": "2026-13-01"}),
            "deprecation_date",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "deprecation_date": "2026-06-01", "sunset_date": "2026-01-01"}),
            "sunset_date",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": 10, "replacement_model_id": "ghost"}),
            "replacement_model_id",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": "big"}),
            "context_window",
        ),
        // Bounded by bytes; names free of control and invisible characters.
        (
            "/providers",
            json!({"id": "q", "name": "x".repeat(257)}),
            "name",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Open\u{202e}IA"}),
            "name",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "display_name": "two\nlines"}),
            "display_name",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "display_name": "zero\u{200b}width"}),
            "display_name",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "capabilities": vec!["chat"; 65]}),
            "capabilities",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "capabilities": ["chat", "x".repeat(65)]}),
            "capabilities[1]",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "capabilities": ["vision\u{2066}"]}),
            "capabilities[0]",
        ),
        (
            "/providers",
            json!({"id": "q", "name": "Q", "base_url": format!("https://example.com/{}", "a".repeat(2048))}),
            "base_url",
        ),
        (
            "/models",
            json!({"id": "m", "name": "M\u{7}", "provider_id": "p", "context_window": 10}),
            "name",
        ),
    ];
    for (path, body, field) in cases {
        let (status, error) = error_of(
            server
                .admin(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error["error"]["code"], "validation_failed", "{body}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    assert_eq!(server.version().await, 1);
    // An operator's status message too.
    let (status, error) = error_of(
        server
            .admin(Method::PUT, "/providers/p/status")
            .json(&json!({"status": "degraded", "message": "slow\u{202e}"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "message");
    assert_eq!(server.version().await, 1);

    let malformed = server
        .admin(Method::POST, "/providers")
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(malformed).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.body_limit = 4096;
    let server = TestServer::start(config).await;
    let huge = json!({"id": "p", "name": "x".repeat(10_000)});
    let (status, error) = error_of(
        server
            .admin(Method::POST, "/providers")
            .json(&huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(server.version().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn stale_if_match_gets_412_with_the_current_entity() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let patch = |revision: &str, priority: i32| {
        server
            .admin(Method::PATCH, "/providers/p")
            .header(header::IF_MATCH, revision)
            .json(&json!({"priority": priority}))
            .send()
    };
    let first = patch("\"1\"", 5).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[header::ETAG], "\"2\"");

    // A second writer still holding revision 1 is refused, and told why.
    let (status, body) = error_of(patch("\"1\"", 9).await.unwrap()).await;
    assert_eq!(status, 412);
    assert_eq!(body["error"]["code"], "precondition_failed");
    assert_eq!(body["current"]["revision"], 2);
    assert_eq!(body["current"]["priority"], 5);
    assert_eq!(server.state().await.provider("p").unwrap().priority, 5);

    // Bad header and no header.
    let bad = patch("yesterday", 9).await.unwrap();
    assert_eq!(bad.status(), 400);
    let unconditional = server
        .admin(Method::PATCH, "/providers/p")
        .json(&json!({"priority": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(unconditional.status(), 200);

    // Models too, and deletes.
    server.add_model("m", "p").await;
    let (status, body) = error_of(
        server
            .admin(Method::DELETE, "/models/m")
            .header(header::IF_MATCH, "\"7\"")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 412);
    assert_eq!(body["current"]["id"], "m");
    assert!(server.state().await.model("m").is_some());
    server.stop().await;
}

#[tokio::test]
async fn a_patch_that_changes_nothing_emits_nothing() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let response = server
        .admin(Method::PATCH, "/providers/p")
        .json(&json!({"name": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-sync-version"], "1");
    assert_eq!(server.version().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_provider_is_one_write_of_consecutive_events() {
    let (_dir, server) = server().await;
    server.add_ballast().await;
    server.add_provider("a").await;
    server.add_provider("b").await;
    server.add_model("a1", "a").await;
    server.add_model("b1", "b").await;
    // b falls back to a; b1 is replaced by a1; a is active.
    server
        .admin(Method::PATCH, "/providers/b")
        .json(&json!({"fallback_provider_id": "a"}))
        .send()
        .await
        .unwrap();
    server
        .admin(Method::POST, "/models/b1/deprecate")
        .json(&json!({"deprecation_date": "2026-01-01", "replacement_model_id": "a1"}))
        .send()
        .await
        .unwrap();
    let active = server
        .admin(Method::PUT, "/active-provider")
        .json(&json!({"provider_id": "a", "default_provider_id": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(active.status(), 200);
    let before = server.version().await;
    assert_eq!(before, 8);

    let response = server
        .admin(Method::DELETE, "/providers/a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let events = events_since(&server, before).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.version, e.event_type())).collect();
    use provider_sync_protocol::SyncEventType::*;
    assert_eq!(
        kinds,
        [
            (9, ProviderUpdated),
            (10, ModelUpdated),
            (11, ProviderRemoved),
            (12, ActiveProviderChanged)
        ]
    );
    let state = server.state().await;
    assert!(state.provider("a").is_none() && state.model("a1").is_none());
    let b = state.provider("b").unwrap();
    assert_eq!(b.fallback_provider_id, None);
    assert_eq!(state.model("b1").unwrap().replacement_model_id, None);
    assert_eq!(state.active_provider_id, None);
    assert_eq!(state.default_provider_id.as_deref(), Some("b"));
    server.stop().await;
}

#[tokio::test]
async fn status_deprecation_and_model_writes_emit_their_events() {
    let (_dir, server) = server().await;
    server.add_ballast().await;
    server.add_provider("p").await;
    server.add_model("old", "p").await;
    server.add_model("new", "p").await;
    let before = server.version().await;

    for (path, method, body, field) in [
        (
            "/providers/p/status",
            Method::PUT,
            json!({"status": "on_fire"}),
            "status",
        ),
        (
            "/providers/p",
            Method::PATCH,
            json!({"status": "x"}),
            "status",
        ),
        (
            "/models/old",
            Method::PATCH,
            json!({"deprecation_status": "retiring"}),
            "deprecation_status",
        ),
    ] {
        let (code, error) =
            error_of(server.admin(method, path).json(&body).send().await.unwrap()).await;
        assert_eq!(code, 422, "{path} {body}: {error}");
        assert_eq!(error["error"]["field"], field, "{path}: {error}");
    }
    assert_eq!(server.version().await, before, "a refused status wrote");

    let status = server
        .admin(Method::PUT, "/providers/p/status")
        .json(&json!({"status": "maintenance", "message": "upgrading"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let deprecate = server
        .admin(Method::POST, "/models/old/deprecate")
        .json(&json!({"deprecation_date": "2026-11-01", "sunset_date": "2027-02-01", "replacement_model_id": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deprecate.status(), 200);
    let patched = server
        .admin(Method::PATCH, "/models/new")
        .json(&json!({"pricing": {"input_per_million": 3.0, "output_per_million": 15.0}, "supports_vision": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let cleared = server
        .admin(Method::PATCH, "/models/new")
        .json(&json!({"pricing": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    let removed = server
        .admin(Method::DELETE, "/models/old")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let missing = server
        .admin(Method::DELETE, "/models/old")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let events = events_since(&server, 4).await;
    let summary: Vec<String> = events
        .iter()
        .map(|e| match &e.payload {
            EventPayload::ProviderStatusChanged(c) => {
                format!("{}:{:?}->{:?}", e.version, c.previous_status, c.status)
            }
            EventPayload::ModelDeprecated(m) => {
                format!(
                    "{}:deprecated {} -> {:?}",
                    e.version, m.id, m.replacement_model_id
                )
            }
            EventPayload::ModelUpdated(m) => format!(
                "{}:updated {} {:?}",
                e.version,
                m.id,
                m.pricing.map(|p| p.input_per_million)
            ),
            EventPayload::ModelRemoved(r) => format!("{}:removed {}", e.version, r.model_id),
            other => format!("{}:{:?}", e.version, other.event_type()),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "5:Available->Maintenance",
            "6:deprecated old -> Some(\"new\")",
            "7:updated new Some(3.0)",
            "8:updated new None",
            "9:removed old",
        ]
    );
    let state = server.state().await;
    assert_eq!(
        state.provider("p").unwrap().health.message.as_deref(),
        Some("upgrading")
    );
    assert_eq!(state.provider("p").unwrap().model_ids, ["new"]);
    server.stop().await;
}

#[tokio::test]
async fn active_provider_must_exist() {
    let (_dir, server) = server().await;
    let (status, _) = error_of(
        server
            .admin(Method::PUT, "/active-provider")
            .json(&json!({"provider_id": "ghost"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    server.add_provider("real").await;
    let ok = server
        .admin(Method::PUT, "/active-provider")
        .json(&json!({"provider_id": "real"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        server.state().await.active_provider_id.as_deref(),
        Some("real")
    );
    server.stop().await;
}

#[tokio::test]
async fn absent_fields_keep_their_values() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("old", "p").await;
    server.add_model("new", "p").await;
    let active = server
        .admin(Method::PUT, "/active-provider")
        .json(&json!({"provider_id": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(active.status(), 200);
    // An empty body is a mistake, not a request to clear the active provider.
    let (status, error) = error_of(
        server
            .admin(Method::PUT, "/active-provider")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error["error"]["field"], "provider_id");
    assert_eq!(
        server.state().await.active_provider_id.as_deref(),
        Some("p")
    );

    let deprecate = |body: Value| {
        server
            .admin(Method::POST, "/models/old/deprecate")
            .json(&body)
            .send()
    };
    deprecate(json!({"deprecation_date": "2026-01-01", "sunset_date": "2027-01-01", "replacement_model_id": "new"}))
        .await
        .unwrap();
    // Moving the deprecation date keeps the sunset date and replacement.
    deprecate(json!({"deprecation_date": "2026-02-01"}))
        .await
        .unwrap();
    let state = server.state().await;
    let old = state.model("old").unwrap();
    assert_eq!(old.deprecation_date.as_deref(), Some("2026-02-01"));
    assert_eq!(old.sunset_date.as_deref(), Some("2027-01-01"));
    assert_eq!(old.replacement_model_id.as_deref(), Some("new"));
    // null clears.
    deprecate(json!({"deprecation_date": "2026-02-01", "sunset_date": null}))
        .await
        .unwrap();
    assert_eq!(server.state().await.model("old").unwrap().sunset_date, None);
    server.stop().await;
}

/// A PATCH of a model or provider, with `If-Match` when given.
async fn patch(
    server: &TestServer,
    path: &str,
    if_match: Option<u64>,
    body: Value,
) -> reqwest::Response {
    let mut request = server.admin(Method::PATCH, path).json(&body);
    if let Some(revision) = if_match {
        request = request.header(header::IF_MATCH, format!("\"{revision}\""));
    }
    request.send().await.unwrap()
}

fn revision_of(entity: &Value) -> u64 {
    entity["revision"].as_u64().expect("a revision")
}

#[tokio::test]
async fn an_id_deleted_and_created_again_gets_a_revision_above_any_it_had() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let mut model_revisions = vec![revision_of(&server.add_model("m", "p").await)];
    let mut provider_revisions = vec![];
    for n in 0..2 {
        let changed = patch(&server, "/models/m", None, json!({"name": format!("M{n}")})).await;
        assert_eq!(changed.status(), 200);
        model_revisions.push(revision_of(&changed.json().await.unwrap()));
        let changed = patch(&server, "/providers/p", None, json!({"priority": n + 1})).await;
        assert_eq!(changed.status(), 200);
        provider_revisions.push(revision_of(&changed.json().await.unwrap()));
    }
    let deleted = server
        .admin(Method::DELETE, "/models/m")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = revision_of(&server.add_model("m", "p").await);
    assert!(
        model_revisions.iter().all(|old| again > *old),
        "created again at revision {again}, after {model_revisions:?}"
    );
    // An If-Match that names the first model's revisions is refused by the
    // second: it is another model.
    for old in &model_revisions {
        let refused = patch(&server, "/models/m", Some(*old), json!({"name": "Late"})).await;
        assert_eq!(refused.status(), 412, "If-Match {old}");
    }

    let deleted = server
        .admin(Method::DELETE, "/providers/p")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = revision_of(&server.add_provider("p").await);
    assert!(
        provider_revisions.iter().all(|old| again > *old),
        "created again at revision {again}, after {provider_revisions:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_health_change_between_read_and_patch_does_not_fail_the_if_match() {
    let (health_url, answer) = health_endpoint().await;
    let (_dir, server) = server().await;
    server.add_provider("backup").await;
    let created = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // The operator reads the provider ...
    let read = server.state().await.provider("watched").unwrap().clone();
    // ... a probe changes its status (whatever the status was, this answer
    // changes it) ...
    let failing = read.status == provider_sync_protocol::ProviderStatus::Available;
    answer.store(
        if failing { 503 } else { 200 },
        std::sync::atomic::Ordering::SeqCst,
    );
    probe_once(&server).await;
    let probed = server.state().await.provider("watched").unwrap().clone();
    assert_ne!(probed.status, read.status, "the probe changed the status");
    // Clients see a new revision: their copies and objects follow content
    // that changed.
    assert!(probed.revision > read.revision);

    // ... and the operator's PATCH of other fields still applies.
    let patched = patch(
        &server,
        "/providers/watched",
        Some(read.revision),
        json!({"priority": 7, "fallback_provider_id": "backup"}),
    )
    .await;
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["priority"], 7);
    assert_eq!(
        patched["status"],
        probed.status.as_str(),
        "the probe's status stays"
    );

    // An operator's own status change does count: an If-Match from before it
    // is refused.
    let before_status = revision_of(&patched);
    let set = server
        .admin(Method::PUT, "/providers/watched/status")
        .header(header::IF_MATCH, format!("\"{before_status}\""))
        .json(&json!({"status": "maintenance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let (status, body) = error_of(
        patch(
            &server,
            "/providers/watched",
            Some(before_status),
            json!({"priority": 8}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 412);
    assert_eq!(body["current"]["status"], "maintenance");
    // A revision the provider has not reached yet is stale too.
    let ahead = revision_of(&body["current"]) + 1;
    let refused = patch(
        &server,
        "/providers/watched",
        Some(ahead),
        json!({"priority": 8}),
    )
    .await;
    assert_eq!(refused.status(), 412);
    server.stop().await;
}
