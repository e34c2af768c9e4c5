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

/// An admin request's status and JSON answer.
async fn admin_answer(
    server: &TestServer,
    method: Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    error_of(server.admin(method, path).json(body).send().await.unwrap()).await
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
    // The scheme's name is matched in any case (RFC 9110 §11.1).
    for scheme in ["bearer", "BEARER"] {
        let written = server
            .http
            .post(server.url("/admin/providers"))
            .header(header::AUTHORIZATION, format!("{scheme} {TOKEN}"))
            .json(&json!({"id": scheme, "name": scheme}))
            .send()
            .await
            .unwrap();
        assert_eq!(written.status(), 201, "{scheme}");
    }
    assert_eq!(server.version().await, 2);
    let basic = server
        .http
        .post(server.url("/admin/providers"))
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(server.version().await, 2, "nothing was written");

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
            json!({"id": "m", "name": "M", "provider_id": "p", "context_window": "big"}),
            "context_window",
        ),
        // Bounded in characters; names free of control and invisible characters.
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
            json!({"id": "q", "name": "Q", "capabilities": ["chat", "vision", "chat"]}),
            "capabilities[2]",
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
        let (status, error) = admin_answer(&server, Method::POST, path, &body).await;
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
    let (status, error) = admin_answer(&server, Method::POST, "/providers", &huge).await;
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
    // `current` in the entity's own field order, as `GET /providers/p`
    // gives it (a black-box check, 2026-12-04, found it sorted by name).
    let text = patch("\"1\"", 9).await.unwrap().text().await.unwrap();
    let current = &text[text.find("\"current\":").unwrap() + 10..];
    let read = server.get("/providers/p").await.text().await.unwrap();
    assert!(current.starts_with(&read[..20]), "{current} / {read}");

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
        let (code, error) = admin_answer(&server, method, path, &body).await;
        assert_eq!(code, 422, "{path} {body}: {error}");
        assert_eq!(error["error"]["field"], field, "{path}: {error}");
        // The field and the problem, without axum's words for Rust's types.
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
        assert!(!message.contains("target type"), "{message}");
        // Named once (it was `status: status: invalid type…`).
        assert!(
            !message.starts_with(&format!("{field}: {field}")),
            "{message}"
        );
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

/// The same status with a new message is a change (the message is part of
/// what clients show); the same status and message again is none.
/// (cargo-mutants: `set_status`'s `==` on the message → `!=` was missed.)
#[tokio::test]
async fn a_status_write_may_change_the_message_alone_and_a_repeat_writes_nothing() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let put = |body: Value| {
        server
            .admin(Method::PUT, "/providers/p/status")
            .json(&body)
            .send()
    };
    let first = put(json!({"status": "degraded", "message": "slow"}))
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let after_first = server.version().await;

    let reworded = put(json!({"status": "degraded", "message": "slow in eu-west"}))
        .await
        .unwrap();
    assert_eq!(reworded.status(), 200);
    assert_eq!(
        server.version().await,
        after_first + 1,
        "a new message is a change"
    );
    let state = server.state().await;
    assert_eq!(
        state.provider("p").unwrap().health.message.as_deref(),
        Some("slow in eu-west")
    );

    let repeated = put(json!({"status": "degraded", "message": "slow in eu-west"}))
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200);
    assert_eq!(
        server.version().await,
        after_first + 1,
        "a repeat writes nothing"
    );
    server.stop().await;
}

/// A PATCH that deprecates a model emits `model_deprecated`; a later PATCH
/// of the deprecated model (its price) emits `model_updated`, not a second
/// deprecation. (cargo-mutants: `update_model`'s `!` in `newly_deprecated`
/// deleted was missed.)
#[tokio::test]
async fn a_patch_deprecates_once_and_then_updates() {
    let (_dir, server) = server().await;
    server.add_ballast().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.version().await;
    for body in [
        json!({"deprecation_status": "deprecated", "deprecation_date": "2026-11-01"}),
        json!({"pricing": {"input_per_million": 2.0, "output_per_million": 4.0}}),
    ] {
        let response = server
            .admin(Method::PATCH, "/models/m")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{body}");
    }
    let kinds: Vec<String> = events_since(&server, before)
        .await
        .iter()
        .map(|e| format!("{}:{:?}", e.version - before, e.payload.event_type()))
        .collect();
    assert_eq!(kinds, ["1:ModelDeprecated", "2:ModelUpdated"]);
    server.stop().await;
}

/// `deprecate` marks an active model deprecated, and leaves a sunset model
/// sunset (a new date is no return to "deprecated"). (cargo-mutants:
/// `deprecate_model`'s `== Active` → `!=` was missed.)
#[tokio::test]
async fn deprecate_marks_an_active_model_and_keeps_a_sunset_one_sunset() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("active", "p").await;
    let created = server
        .admin(Method::POST, "/models")
        .json(&json!({"id": "gone", "name": "Gone", "provider_id": "p", "context_window": 8192,
            "deprecation_status": "sunset", "deprecation_date": "2025-01-01", "sunset_date": "2025-06-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    for id in ["active", "gone"] {
        let response = server
            .admin(Method::POST, &format!("/models/{id}/deprecate"))
            .json(&json!({"deprecation_date": "2025-02-01"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{id}: {}",
            response.text().await.unwrap()
        );
    }
    let state = server.state().await;
    let status = |id: &str| state.model(id).unwrap().deprecation_status.clone();
    assert_eq!(
        (status("active"), status("gone")),
        (
            provider_sync_protocol::DeprecationStatus::Deprecated,
            provider_sync_protocol::DeprecationStatus::Sunset
        )
    );
    server.stop().await;
}

/// Naming a new active provider is a change even when the default stays;
/// naming the same one again is none. (cargo-mutants:
/// `set_active_provider`'s first `!=` → `==` was missed.)
#[tokio::test]
async fn a_new_active_provider_is_a_change_and_the_same_one_is_none() {
    let (_dir, server) = server().await;
    server.add_provider("p1").await;
    server.add_provider("p2").await;
    let mut versions = vec![server.version().await];
    for id in ["p1", "p1", "p2"] {
        let response = server
            .admin(Method::PUT, "/active-provider")
            .json(&json!({"provider_id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        versions.push(server.version().await);
        assert_eq!(server.state().await.active_provider_id.as_deref(), Some(id));
    }
    let steps: Vec<u64> = versions.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps, [1, 0, 1]);
    server.stop().await;
}

/// An id in the path whose bytes are not UTF-8 names no entity: 404, as
/// any id of another form (it was 400, which the document does not list),
/// and nothing changes.
#[tokio::test]
async fn path_ids_that_are_not_utf8_are_404() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.version().await;
    for (method, path, body) in [
        (Method::PATCH, "/providers/%FF", json!({"name": "X"})),
        (Method::DELETE, "/providers/%C3", json!({})),
        (
            Method::PUT,
            "/providers/%FF/status",
            json!({"status": "degraded"}),
        ),
        (Method::PATCH, "/models/%FF", json!({"name": "X"})),
        (Method::DELETE, "/models/%C3%28", json!({})),
        (
            Method::POST,
            "/models/%FF/deprecate",
            json!({"deprecation_date": "2026-06-01"}),
        ),
    ] {
        let (status, error) = error_of(
            server
                .admin(method.clone(), path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{method} {path}: {error}");
        assert_eq!(error["error"]["code"], "not_found", "{error}");
    }
    assert_eq!(server.version().await, before);
    server.stop().await;
}

/// A body that names an entity that does not exist is answered as an id in
/// the path that names none: 404, with the field that names it (the
/// document allows any id there; only the catalog can tell).
#[tokio::test]
async fn references_to_unknown_entities_are_404_naming_the_field() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.version().await;
    for (method, path, body, field) in [
        (
            Method::POST,
            "/providers",
            json!({"id": "q", "name": "Q", "fallback_provider_id": "ghost"}),
            "fallback_provider_id",
        ),
        (
            Method::PATCH,
            "/providers/p",
            json!({"fallback_provider_id": "ghost"}),
            "fallback_provider_id",
        ),
        (
            Method::POST,
            "/models",
            json!({"id": "n", "name": "N", "provider_id": "ghost", "context_window": 10}),
            "provider_id",
        ),
        (
            Method::POST,
            "/models",
            json!({"id": "n", "name": "N", "provider_id": "p", "context_window": 10, "replacement_model_id": "ghost"}),
            "replacement_model_id",
        ),
        (
            Method::PATCH,
            "/models/m",
            json!({"provider_id": "ghost"}),
            "provider_id",
        ),
        (
            Method::PATCH,
            "/models/m",
            json!({"replacement_model_id": "ghost"}),
            "replacement_model_id",
        ),
        (
            Method::POST,
            "/models/m/deprecate",
            json!({"deprecation_date": "2026-06-01", "replacement_model_id": "ghost"}),
            "replacement_model_id",
        ),
        (
            Method::PUT,
            "/active-provider",
            json!({"provider_id": "ghost"}),
            "provider_id",
        ),
        (
            Method::PUT,
            "/active-provider",
            json!({"provider_id": "p", "default_provider_id": "ghost"}),
            "default_provider_id",
        ),
    ] {
        let (status, error) = error_of(
            server
                .admin(method.clone(), path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{method} {path} {body}: {error}");
        assert_eq!(error["error"]["code"], "not_found", "{error}");
        assert_eq!(error["error"]["field"], field, "{method} {path}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ghost"),
            "{error}"
        );
    }
    // An entity naming itself is a value no entity may hold: 422.
    for (path, body, field) in [
        (
            "/providers/p",
            json!({"fallback_provider_id": "p"}),
            "fallback_provider_id",
        ),
        (
            "/models/m",
            json!({"replacement_model_id": "m"}),
            "replacement_model_id",
        ),
    ] {
        let (status, error) = admin_answer(&server, Method::PATCH, path, &body).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert_eq!(server.version().await, before, "a refused write wrote");
    server.stop().await;
}

/// A rule between two of a model's fields: broken within one request, the
/// request is at fault (422); broken against a value the model keeps, the
/// change conflicts with the model as it is (409, with the current model),
/// and sending both fields resolves it.
#[tokio::test]
async fn a_change_that_contradicts_the_models_own_fields_is_409_with_the_model() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await; // context window and input limit 8192
    let before = server.version().await;
    let send = |method: Method, path: &'static str, body: Value| {
        let server = &server;
        async move { admin_answer(server, method, path, &body).await }
    };
    for (method, path, body, field) in [
        (
            Method::PATCH,
            "/models/m",
            json!({"max_input_tokens": 9000}),
            "max_input_tokens",
        ),
        (
            Method::PATCH,
            "/models/m",
            json!({"context_window": 100}),
            "context_window",
        ),
    ] {
        let (status, error) = send(method, path, body.clone()).await;
        assert_eq!(status, 409, "{body}: {error}");
        assert_eq!(error["error"]["code"], "conflict");
        assert_eq!(error["error"]["field"], field, "{error}");
        assert_eq!(error["current"]["max_input_tokens"], 8192, "{error}");
        // The fields named once (a black-box check, 2026-12-04, read
        // "max_input_tokens: max_input_tokens must be between …").
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("max_input_tokens must be between 1 and the context window"),
            "{message}"
        );
    }
    let (status, error) = send(
        Method::PATCH,
        "/models/m",
        json!({"context_window": 100, "max_input_tokens": 200}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &error["error"]["field"]),
        (422, &json!("max_input_tokens")),
        "{error}"
    );
    let (status, error) = send(
        Method::POST,
        "/models",
        json!({"id": "n", "name": "N", "provider_id": "p", "context_window": 10, "max_input_tokens": 11}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(server.version().await, before, "a refused write wrote");
    let (status, model) = send(
        Method::PATCH,
        "/models/m",
        json!({"context_window": 100, "max_input_tokens": 100}),
    )
    .await;
    assert_eq!(status, 200, "{model}");

    let (status, _) = send(
        Method::POST,
        "/models/m/deprecate",
        json!({"deprecation_date": "2026-06-01", "sunset_date": "2026-12-01"}),
    )
    .await;
    assert_eq!(status, 200);
    let before = server.version().await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/models/m",
            json!({"deprecation_date": "2027-01-01"}),
        ),
        (
            Method::POST,
            "/models/m/deprecate",
            json!({"deprecation_date": "2027-01-01"}),
        ),
        (
            Method::PATCH,
            "/models/m",
            json!({"sunset_date": "2026-01-01"}),
        ),
    ] {
        let (status, error) = send(method, path, body.clone()).await;
        assert_eq!(status, 409, "{body}: {error}");
        assert_eq!(error["current"]["sunset_date"], "2026-12-01", "{error}");
    }
    let (status, error) = send(
        Method::POST,
        "/models/m/deprecate",
        json!({"deprecation_date": "2027-01-01", "sunset_date": "2026-01-01"}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "sunset_date");
    assert_eq!(server.version().await, before, "a refused write wrote");
    let (status, _) = send(
        Method::POST,
        "/models/m/deprecate",
        json!({"deprecation_date": "2027-01-01", "sunset_date": "2027-06-01"}),
    )
    .await;
    assert_eq!(status, 200);
    // Sunset on the day of the deprecation is not before it.
    let (status, model) = send(
        Method::POST,
        "/models/m/deprecate",
        json!({"deprecation_date": "2027-06-01", "sunset_date": "2027-06-01"}),
    )
    .await;
    assert_eq!(status, 200, "{model}");
    server.stop().await;
}

/// A retirement date makes a model deprecated: an active model with a
/// sunset date was listed as active by `GET /models` while its
/// availability said it was gone. Given with `active` in one body, 422;
/// against the model's own status or dates, 409 with the model; a new
/// model with a date and no status is deprecated.
#[tokio::test]
async fn an_active_model_has_no_retirement_dates() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let send = |method: Method, path: &'static str, body: Value| {
        let server = &server;
        async move { admin_answer(server, method, path, &body).await }
    };
    let before = server.version().await;
    for date in ["deprecation_date", "sunset_date"] {
        let mut body = json!({"id": "n", "name": "N", "provider_id": "p",
            "context_window": 10, "deprecation_status": "active"});
        body[date] = json!("2025-06-01");
        let (status, error) = send(Method::POST, "/models", body).await;
        assert_eq!(status, 422, "{date}: {error}");
        assert_eq!(error["error"]["field"], "deprecation_status", "{error}");
    }
    let (status, error) = send(
        Method::PATCH,
        "/models/m",
        json!({"sunset_date": "2020-01-01"}),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["field"], "sunset_date", "{error}");
    assert_eq!(error["current"]["deprecation_status"], "active", "{error}");
    assert_eq!(server.version().await, before, "a refused write wrote");

    let (status, created) = send(
        Method::POST,
        "/models",
        json!({"id": "n", "name": "N", "provider_id": "p", "context_window": 10,
            "sunset_date": "2025-06-01"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["deprecation_status"], "deprecated");
    let (status, error) = send(
        Method::PATCH,
        "/models/n",
        json!({"deprecation_status": "active"}),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["field"], "deprecation_status", "{error}");
    let (status, model) = send(
        Method::PATCH,
        "/models/n",
        json!({"deprecation_status": "active", "sunset_date": null}),
    )
    .await;
    assert_eq!(status, 200, "{model}");
    let active: Value = server
        .get("/models?deprecated=false")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = active["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m", "n"]);
    server.stop().await;
}

/// Lengths are what the OpenAPI document's `maxLength` counts: characters.
#[tokio::test]
async fn lengths_are_counted_in_characters() {
    let (_dir, server) = server().await;
    let name = "通".repeat(256);
    let id = "é".repeat(256);
    let created = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": id, "name": name, "capabilities": ["ü".repeat(64)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let message = "ß".repeat(1000);
    let status = server
        .admin(
            Method::PUT,
            &format!("/providers/{}/status", "%C3%A9".repeat(256)),
        )
        .json(&json!({"status": "maintenance", "message": message}))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200, "{}", status.text().await.unwrap());
    // A URL of exactly the limit (2,048 characters) is taken.
    let at_limit = format!("https://example.com/{}", "a".repeat(2048 - 20));
    assert_eq!(at_limit.len(), 2048);
    let created = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "u", "name": "U", "base_url": at_limit}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    for (body, field) in [
        (json!({"id": "q", "name": "通".repeat(257)}), "name"),
        (json!({"id": "é".repeat(257), "name": "Q"}), "id"),
        (
            json!({"id": "q", "name": "Q", "capabilities": ["ü".repeat(65)]}),
            "capabilities[0]",
        ),
    ] {
        let (status, error) = admin_answer(&server, Method::POST, "/providers", &body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    server.stop().await;
}

/// URLs, dates and `If-Match` values of other forms than the document's
/// patterns and formats are refused, not taken in some reading of them.
#[tokio::test]
async fn inputs_of_other_forms_than_the_documents_are_refused() {
    let (_dir, server) = server().await;
    let provider = server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.version().await;
    for url in [
        "http://example.com/a b",
        "HTTP://example.com/",
        "https://example.com/%zz",
        "http:example.com",
        "https://example.com:/x",
        "https://example.com/\\x",
    ] {
        let (status, error) = error_of(
            server
                .admin(Method::PATCH, "/providers/p")
                .json(&json!({"base_url": url}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{url}: {error}");
        assert_eq!(error["error"]["field"], "base_url");
    }
    for date in ["+2026-11-30", "2026-11-30 ", "2026-11-31"] {
        let (status, error) = error_of(
            server
                .admin(Method::POST, "/models/m/deprecate")
                .json(&json!({"deprecation_date": date}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{date}: {error}");
    }
    let revision = provider["revision"].as_u64().unwrap();
    for if_match in [
        format!("\"\"{revision}\"\""),
        format!("{revision}\""),
        format!("\"{revision}"),
        format!("W/W/\"{revision}\""),
        "null".to_owned(),
    ] {
        let (status, error) = error_of(
            server
                .admin(Method::PATCH, "/providers/p")
                .header(header::IF_MATCH, &if_match)
                .json(&json!({"priority": 3}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{if_match}: {error}");
    }
    // A value past ASCII is shown as it was sent (it was shown as "").
    let (status, error) = error_of(
        server
            .admin(Method::PATCH, "/providers/p")
            .header(
                header::IF_MATCH,
                reqwest::header::HeaderValue::from_bytes("\"3é\"".as_bytes()).unwrap(),
            )
            .json(&json!({"priority": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.ends_with(r#"not "\"3é\"""#), "{message}");
    // Creates and the active provider too, which have no revision to
    // compare a readable one with (they took any header: a black-box check,
    // 2026-12-04).
    for (path, method, body) in [
        ("/providers", Method::POST, json!({"id": "q", "name": "Q"})),
        (
            "/models",
            Method::POST,
            json!({"id": "n", "name": "N", "provider_id": "p", "context_window": 1000}),
        ),
        ("/active-provider", Method::PUT, json!({"provider_id": "p"})),
    ] {
        let (status, error) = error_of(
            server
                .admin(method.clone(), path)
                .header(header::IF_MATCH, "garbage")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{method} {path}: {error}");
    }
    // Two header lines, a stale revision after the current one or the
    // other way round: a list, refused (only the first line was read).
    for lines in [
        [format!("\"{revision}\""), "\"1\"".to_owned()],
        ["\"1\"".to_owned(), format!("\"{revision}\"")],
    ] {
        let response = server
            .admin(Method::PATCH, "/providers/p")
            .header(header::IF_MATCH, &lines[0])
            .header(header::IF_MATCH, &lines[1])
            .json(&json!({"priority": 3}))
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(status, 400, "{lines:?}: {error}");
    }
    assert_eq!(server.version().await, before, "a refused write wrote");
    for if_match in [
        format!("\"{revision}\""),
        format!("W/\"{revision}\""),
        revision.to_string(),
        "*".to_owned(),
    ] {
        let response = server
            .admin(Method::PATCH, "/providers/p")
            .header(header::IF_MATCH, &if_match)
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{if_match}");
    }
    server.stop().await;
}

/// Bodies are JSON objects: serde would read a struct from an array too,
/// and `[null, null]` would be an empty patch that answers 200.
#[tokio::test]
async fn bodies_must_be_json_objects() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.version().await;
    for (method, path) in [
        (Method::PATCH, "/providers/p"),
        (Method::PATCH, "/models/m"),
        (Method::PUT, "/active-provider"),
        (Method::POST, "/providers"),
    ] {
        for body in ["[null, null]", "[]", "null", "3", "\"p\""] {
            let response = server
                .admin(method.clone(), path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, error) = error_of(response).await;
            assert_eq!(status, 422, "{method} {path} {body}: {error}");
            assert_eq!(error["error"]["field"], "body", "{error}");
        }
    }
    assert_eq!(server.version().await, before);
    server.stop().await;
}

/// A body that gives a field twice is ambiguous: 422 naming the key, not
/// the last copy taken silently (also nested, and in `POST /sync`); a body
/// sent compressed (any `Content-Encoding` but identity) is refused 415, not
/// read as JSON text (and an unknown coding was ignored). Nothing changes.
#[tokio::test]
async fn duplicate_keys_and_compressed_bodies_are_refused() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let before = server.version().await;
    for (method, path, body) in [
        (
            Method::POST,
            "/providers",
            r#"{"id":"x","name":"y","name":"z"}"#,
        ),
        (
            Method::PATCH,
            "/providers/p",
            r#"{"name":"a","priority":1,"name":"b"}"#,
        ),
        (
            Method::POST,
            "/models",
            r#"{"id":"m","name":"M","provider_id":"p","context_window":8,
               "pricing":{"input_per_million":1,"output_per_million":2,"input_per_million":3}}"#,
        ),
    ] {
        let response = server
            .admin(method.clone(), path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(status, 422, "{method} {path}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("duplicate key `"), "{message}");
    }
    for coding in ["gzip", "bogus", "br"] {
        let response = server
            .admin(Method::POST, "/providers")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, coding)
            .body(r#"{"id":"x","name":"y"}"#)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(status, 415, "{coding}: {error}");
        assert_eq!(error["error"]["code"], "unsupported_media_type");
        assert!(error["error"]["message"].as_str().unwrap().contains(coding));
    }
    // A coding after identity, in a list or in a second header.
    for codings in [&["identity, gzip"][..], &["identity", "gzip"]] {
        let mut request = server
            .admin(Method::POST, "/providers")
            .header(header::CONTENT_TYPE, "application/json");
        for coding in codings {
            request = request.header(header::CONTENT_ENCODING, *coding);
        }
        let response = request
            .body(r#"{"id":"x","name":"y"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{codings:?}");
    }
    assert_eq!(server.version().await, before);
    // An unknown key in a nested object (`pricing`, a type the server also
    // sends): refused, naming its path (it was skipped, the price lost).
    server
        .admin(Method::POST, "/models")
        .json(&json!({"id": "priced", "name": "P", "provider_id": "p", "context_window": 8}))
        .send()
        .await
        .unwrap();
    let before = server.version().await;
    let unknown_key = json!({"input_per_million": 1, "output_per_million": 2,
        "cached_input_per_milion": 0.5});
    for (method, path, pricing, field) in [
        (
            Method::POST,
            "/models",
            unknown_key.clone(),
            "pricing.cached_input_per_milion",
        ),
        (
            Method::PATCH,
            "/models/priced",
            unknown_key,
            "pricing.cached_input_per_milion",
        ),
        // Prices given as a list of values in the fields' order: serde's
        // derived reader took `[1, 2, 3]` as input, output and cached prices.
        (Method::POST, "/models", json!([7, 8]), "pricing"),
        (Method::PATCH, "/models/priced", json!([1, 2, 3]), "pricing"),
        (Method::PATCH, "/models/priced", json!([]), "pricing"),
    ] {
        let mut body = json!({ "pricing": pricing });
        if method == Method::POST {
            body["id"] = json!("m2");
            body["name"] = json!("M");
            body["provider_id"] = json!("p");
            body["context_window"] = json!(8);
        }
        let response = server
            .admin(method.clone(), path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(status, 422, "{method} {path} {pricing}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert_eq!(server.version().await, before);
    let sync = server
        .http
        .post(server.url("/sync"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"client_version":0,"client_version":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 422);
    // An identity coding is no coding; empty elements of the list are no
    // codings either (RFC 9110, 5.6.1: they were refused, the message
    // naming an empty coding).
    for (n, coding) in ["identity", "identity,", ", identity ,,", ""]
        .into_iter()
        .enumerate()
    {
        let response = server
            .admin(Method::POST, "/providers")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, coding)
            .body(format!(r#"{{"id":"x{n}","name":"y"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{coding:?}");
    }
    server.stop().await;
}

/// `null` clears an optional field in a PATCH; on a field every entity has
/// it is a bad value (422 naming the field), not "leave it", and changes
/// nothing.
#[tokio::test]
async fn a_patch_cannot_clear_a_field_every_entity_has() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    server.add_model("m", "p").await;
    let before = server.state().await;
    let cases = [
        ("/providers/p", "name"),
        ("/providers/p", "display_name"),
        ("/providers/p", "enabled"),
        ("/providers/p", "priority"),
        ("/providers/p", "capabilities"),
        ("/models/m", "name"),
        ("/models/m", "provider_id"),
        ("/models/m", "context_window"),
        ("/models/m", "max_input_tokens"),
        ("/models/m", "supports_streaming"),
        ("/models/m", "deprecation_status"),
    ];
    for (path, field) in cases {
        let (status, error) = error_of(
            server
                .admin(Method::PATCH, path)
                .json(&json!({ field: null }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{path} {field}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert_eq!(server.state().await, before, "nothing changed");
    // An optional one is cleared.
    let cleared = server
        .admin(Method::PATCH, "/models/m")
        .json(&json!({"pricing": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    server.stop().await;
}

/// A whole number is an integer however it is written (JSON Schema counts
/// `8192.0` as an integer; Python's `json` writes floats that way), and a
/// type error names the field, not the value.
#[tokio::test]
async fn whole_numbers_written_as_floats_are_integers() {
    let (_dir, server) = server().await;
    server.add_provider("p").await;
    let created = server
        .admin(Method::POST, "/models")
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"id": "m", "name": "M", "provider_id": "p", "context_window": 8192.0, "max_output_tokens": 1e3}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let model = server.state().await;
    let model = model.model("m").unwrap();
    assert_eq!(
        (model.context_window, model.max_output_tokens),
        (8192, 1000)
    );
    let synced = server
        .http
        .post(server.url("/sync"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"client_version": 0.0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let (status, error) = error_of(
        server
            .admin(Method::PATCH, "/models/m")
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"context_window": 8192.5}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "context_window", "{error}");
    // No position: serde's would count in the body as read back (its keys
    // sorted), not as it was sent.
    let (status, error) = error_of(
        server
            .admin(Method::PATCH, "/models/m")
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"name": "x", "supports_vision": "yes"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "supports_vision", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("expected a boolean"), "{message}");
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

// Who changed what: named tokens, the audit table and its log line.

const ALICE: &str = "alice-token-0123456789abcdef0123456789";
const BOB: &str = "bob-token-0123456789abcdef0123456789ab";

/// `GET /admin/audit` with `query`, as the holder of `token`.
async fn audit(server: &TestServer, token: &str, query: &str) -> Value {
    let response = server
        .http
        .get(server.url(&format!("/admin/audit{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every audit entry, newest first.
async fn audit_entries(server: &TestServer) -> Vec<Value> {
    let page = audit(server, TOKEN, "?limit=1000").await;
    page["entries"].as_array().unwrap().clone()
}

/// A bad value from an environment variable: the error names the variable
/// beside the flag (it named the flag alone, which the command line did not
/// hold), both for a value clap refuses and for one the start refuses.
#[test]
fn a_bad_environment_variable_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let database = db.to_str().unwrap();
    let (code, stderr) = refused_start(
        &["--database", database],
        &[("PROVIDER_SYNC_READ_RATE_LIMIT", "abc")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--read-rate-limit"), "{stderr}");
    assert!(
        stderr.contains("environment variable PROVIDER_SYNC_READ_RATE_LIMIT"),
        "{stderr}"
    );
    let (code, stderr) = refused_start(
        &["--database", database],
        &[("PROVIDER_SYNC_HEARTBEAT_MS", "0")],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "--heartbeat-ms was given by the environment variable PROVIDER_SYNC_HEARTBEAT_MS"
        ),
        "{stderr}"
    );
    // Given on the command line: no such note.
    let (_, stderr) = refused_start(&["--database", database, "--heartbeat-ms", "0"], &[]);
    assert!(!stderr.contains("environment variable"), "{stderr}");
    assert!(!db.exists(), "a refused start opens no store");
}

#[test]
fn a_short_admin_token_stops_the_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let database = db.to_str().unwrap();
    let short = "short-but-secret";

    let (code, stderr) = refused_start(&["--database", database, "--admin-token", short], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--admin-token"), "{stderr}");
    assert!(stderr.contains("32"), "{stderr}");
    assert!(
        !stderr.contains(short),
        "the token is never printed: {stderr}"
    );

    let (code, stderr) = refused_start(
        &["--database", database],
        &[("PROVIDER_SYNC_ADMIN_TOKEN", short)],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--admin-token"), "{stderr}");
    assert!(!stderr.contains(short), "{stderr}");

    // In a file: the flag and the line (comments and blank lines count).
    let file = dir.path().join("admins");
    write(
        &file,
        &format!("# operators\nalice:{ALICE}\n\nbob:{short}\n"),
    );
    let (code, stderr) = refused_start(
        &[
            "--database",
            database,
            "--admin-tokens-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--admin-tokens-file line 4"), "{stderr}");
    assert!(
        !stderr.contains(short) && !stderr.contains(ALICE),
        "{stderr}"
    );

    let (code, stderr) = refused_start(
        &["--database", database],
        &[("PROVIDER_SYNC_READ_TOKENS_FILE", file.to_str().unwrap())],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--read-tokens-file line 4"), "{stderr}");

    // Two holders with one name.
    write(&file, &format!("alice:{ALICE}\nalice:{BOB}\n"));
    let (_, stderr) = refused_start(
        &[
            "--database",
            database,
            "--admin-tokens-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(stderr.contains("--admin-tokens-file line 2"), "{stderr}");
    assert!(!db.exists(), "a refused start opens no store");
}

#[tokio::test]
async fn tokens_from_a_file_each_write_under_their_own_name() {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    config.admin_token = None;
    config.admin_tokens_file = Some(tokens_file(
        dir.path(),
        "admins",
        &[("alice", ALICE), ("bob", BOB)],
    ));
    let server = TestServer::start(config).await;
    for (token, id) in [(ALICE, "by-alice"), (BOB, "by-bob")] {
        let response = server
            .http
            .post(server.url("/admin/providers"))
            .bearer_auth(token)
            .json(&json!({"id": id, "name": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // The command-line token of the other servers is not one of these.
    let refused = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "x", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");

    let page = audit(&server, BOB, "").await;
    let who: Vec<(&str, u64)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["token"].as_str().unwrap(),
                e["first_version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(who, [("bob", 2), ("alice", 1)], "{page}");
    server.stop().await;
}

#[tokio::test]
async fn every_admin_write_is_audited_with_its_versions_token_and_request_id() {
    let (_dir, server) = server().await;
    let epoch = server.state().await.metadata.epoch;
    server.add_provider("a").await;
    server.add_provider("b").await;
    let fallback = server
        .admin(Method::PATCH, "/providers/b")
        .json(&json!({"fallback_provider_id": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback.status(), 200);

    // One write of several events (b loses its fallback, a goes), with the
    // caller's request id.
    let deleted = server
        .admin(Method::DELETE, "/providers/a")
        .header("x-request-id", "deploy-42")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(deleted.headers()["x-request-id"], "deploy-42");
    let entries = audit_entries(&server).await;
    assert_eq!(entries.len(), 4, "{entries:?}");
    let newest = &entries[0];
    assert_eq!(newest["token"], "admin");
    assert_eq!(newest["request_id"], "deploy-42");
    assert_eq!(newest["method"], "DELETE");
    assert_eq!(newest["path"], "/api/provider-sync/admin/providers/a");
    assert_eq!(newest["status"], 204);
    assert_eq!(newest["client"], "127.0.0.1");
    assert_eq!(newest["epoch"], epoch.as_str());
    assert_eq!(newest["first_version"], 4);
    assert_eq!(newest["last_version"], 5);
    assert_eq!(server.version().await, 5);
    let at = newest["at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
        "{at}"
    );
    let created = &entries[3];
    assert_eq!(
        (
            &created["method"],
            &created["status"],
            &created["first_version"],
            &created["last_version"]
        ),
        (&json!("POST"), &json!(201), &json!(1), &json!(1))
    );

    // Without a request id (or with one that is not fit for a log line), the
    // server makes one, answers with it and records it.
    for sent in [None, Some("two words"), Some(&*"x".repeat(300))] {
        let mut request = server
            .admin(Method::PATCH, "/providers/nope")
            .json(&json!({"name": "n"}));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        // A failed write is recorded too, without versions.
        assert_eq!(response.status(), 404);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty() && Some(id.as_str()) != sent, "{id}");
        let newest = audit_entries(&server).await.remove(0);
        assert_eq!(newest["request_id"], id.as_str());
        assert_eq!(newest["status"], 404);
        assert_eq!(newest["first_version"], Value::Null);
        assert_eq!(newest["last_version"], Value::Null);
    }

    // A write that changes nothing is recorded, without versions.
    let unchanged = server
        .admin(Method::PATCH, "/providers/b")
        .json(&json!({"name": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 200);
    let newest = audit_entries(&server).await.remove(0);
    assert_eq!(
        (
            &newest["method"],
            &newest["status"],
            &newest["first_version"]
        ),
        (&json!("PATCH"), &json!(200), &Value::Null)
    );
    assert_eq!(server.version().await, 5);

    // A refused token leaves no record (it names no one), nor does reading
    // the audit.
    let count = audit_entries(&server).await.len();
    let refused = server
        .http
        .delete(server.url("/admin/providers/b"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("x-request-id"));
    assert_eq!(audit_entries(&server).await.len(), count);
    server.stop().await;
}

#[tokio::test]
async fn the_audit_needs_the_admin_token_and_pages_newest_first() {
    let (_dir, server) = server().await;
    for id in ["p1", "p2", "p3", "p4", "p5"] {
        server.add_provider(id).await;
    }
    for token in [None, Some(ALICE)] {
        let mut request = server.http.get(server.url("/admin/audit"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, error) = error_of(request.send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(error["error"]["code"], "unauthorized");
    }

    let mut paths = Vec::new();
    let mut ids = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = audit(&server, TOKEN, &query).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2, "{page}");
        for entry in entries {
            ids.push(entry["id"].as_u64().unwrap());
            paths.push(
                entry["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        match page["next_before"].as_u64() {
            Some(before) => {
                assert_eq!(Some(before), ids.last().copied());
                query = format!("?limit=2&before={before}");
            }
            None => break,
        }
    }
    // Every write once, newest first (the bodies name the providers; the
    // path is the collection's).
    assert_eq!(paths, ["providers"; 5]);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let versions: Vec<u64> = audit_entries(&server)
        .await
        .iter()
        .map(|e| e["first_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [5, 4, 3, 2, 1]);

    // A parameter it does not have (a misspelt `befor`) is refused, as
    // `GET /models` refuses one, rather than ignored.
    for bad in ["?limit=0", "?limit=1001", "?before=x", "?befor=3"] {
        let response = server
            .http
            .get(server.url(&format!("/admin/audit{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{bad}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_log_names_who_wrote_and_never_shows_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let reader = "reader-token-0123456789abcdef012345678";
    let admins = tokens_file(dir.path(), "admins", &[("alice", ALICE)]);
    let readers = tokens_file(dir.path(), "readers", &[("app", reader)]);
    let log_path = dir.path().join("server.log");
    let db = dir.path().join("log.db");
    let (child, base) = spawn_binary_with(
        &[
            "--database",
            db.to_str().unwrap(),
            "--admin-tokens-file",
            admins.to_str().unwrap(),
            "--read-tokens-file",
            readers.to_str().unwrap(),
            "--health-interval-ms",
            "3600000",
        ],
        &[("RUST_LOG", "debug")],
        std::fs::File::create(&log_path).unwrap().into(),
    );
    let mut child = KillOnDrop(child);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/admin/providers"))
        .bearer_auth(ALICE)
        .header("x-request-id", "log-test-1")
        .json(&json!({"id": "p", "name": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let state = http
        .get(format!("{base}/state"))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 200);
    let ws = format!(
        "{}/ws?access_token={reader}",
        base.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    next_event(&mut socket).await;
    drop(socket);

    let stopped = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    child.0.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("log-test-1") && l.contains("alice"))
        .unwrap_or_else(|| panic!("no audit line in {log}"));
    for part in [
        "INFO",
        "127.0.0.1",
        "POST",
        "/admin/providers",
        "201",
        "1..1",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(
        log.contains("access_token"),
        "the WebSocket request is logged: {log}"
    );
    assert!(!log.contains(ALICE), "{log}");
    assert!(!log.contains(reader), "{log}");
}

#[tokio::test]
async fn audit_records_past_the_retention_are_trimmed() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    server.add_provider("today").await;
    server.stop().await;

    // Two records from the past, put in the stopped server's store.
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let store = provider_sync_server::store::open(&config(&db).database, Default::default())
        .await
        .unwrap();
    for (days, request_id) in [(91, "91-days-ago"), (45, "45-days-ago")] {
        let record = provider_sync_server::audit::AuditRecord {
            at_ms: now - days * DAY_MS,
            token: "alice".into(),
            client: "127.0.0.1".into(),
            request_id: request_id.into(),
            method: "POST".into(),
            path: "/api/provider-sync/admin/providers".into(),
            status: 201,
            epoch: None,
            versions: None,
        };
        store.record_audit(&record).await.unwrap();
    }
    assert_eq!(store.audit(None, 10).await.unwrap().len(), 3);
    store.close().await;

    let request_ids = |entries: Vec<Value>| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // The default keeps 90 days.
    let server = TestServer::start(config(&db)).await;
    let kept = request_ids(audit_entries(&server).await);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], "45-days-ago");
    server.stop().await;

    let mut shorter = config(&db);
    shorter.audit_retention_days = 30;
    let server = TestServer::start(shorter).await;
    let kept = audit_entries(&server).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["first_version"], 1, "today's write stays");
    server.stop().await;
}
