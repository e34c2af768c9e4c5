//! Every read endpoint against a real server.

mod common;

use common::*;
use provider_sync_protocol::{FullSyncReason, SyncState, state_checksum};
use reqwest::header;
use serde_json::{Value, json};

async fn seeded() -> (tempfile::TempDir, TestServer) {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    config.catalog = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml").into());
    (dir, TestServer::start(config).await)
}

#[tokio::test]
async fn state_has_an_etag_and_answers_304_when_unchanged() {
    let (_dir, server) = seeded().await;
    let response = server.get("/state").await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let state: SyncState = response.json().await.unwrap();
    // Epoch, version and the first 8 hex digits of the checksum: a store
    // copied back from a backup without a new epoch may reach a version it
    // had before with other content, and the tag still changes.
    // Compressed (this client asks for gzip and br): a weak tag, since the
    // identity form is other bytes (a black-box check, 2026-12-07: the
    // three forms shared one strong tag).
    let strong = format!(
        "\"{}-{}-{}\"",
        state.metadata.epoch,
        state.metadata.version,
        &state.metadata.checksum[..8]
    );
    assert_eq!(etag, format!("W/{strong}"));
    assert_eq!(state.metadata.checksum, state_checksum(&state).to_hex());
    // Uncompressed, the strong one; each form's tag gets a 304 from either.
    let plain = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let identity = plain.get(server.url("/state")).send().await.unwrap();
    assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(identity.headers()[header::ETAG], strong.as_str());
    for (client, tag, answered) in [(&plain, &etag, &strong), (&server.http, &strong, &etag)] {
        let unchanged = client
            .get(server.url("/state"))
            .header(header::IF_NONE_MATCH, tag)
            .send()
            .await
            .unwrap();
        assert_eq!(unchanged.status(), 304, "{tag}");
        assert_eq!(unchanged.headers()[header::ETAG], answered.as_str());
    }
    assert!(state.providers.len() >= 7 && state.all_models.len() >= 30);

    let again = server
        .http
        .get(server.url("/state"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // The Vary the 200 carries, as a 304 must (RFC 9110, 15.4.5).
    assert!(
        again.headers().get_all(header::VARY).iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")),
        "{:?}",
        again.headers()
    );
    assert!(again.bytes().await.unwrap().is_empty());

    // After a change the old tag no longer matches.
    server.add_provider("newcomer").await;
    let changed = server
        .http
        .get(server.url("/state"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    server.stop().await;
}

/// A client that shows the bytes as sent (no decompression).
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap()
}

#[tokio::test]
async fn state_is_compressed_with_gzip_and_brotli() {
    let (_dir, server) = seeded().await;
    let plain = raw_client();
    let raw = plain
        .get(server.url("/state"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for encoding in ["gzip", "br"] {
        let response = plain
            .get(server.url("/state"))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
        let body = response.bytes().await.unwrap();
        assert!(
            body.len() * 3 < raw.len(),
            "{encoding}: {} of {}",
            body.len(),
            raw.len()
        );
    }
    // The client that decompresses gets the same state.
    let decoded: SyncState = server.state().await;
    let original: SyncState = serde_json::from_slice(&raw).unwrap();
    assert_eq!(decoded, original);
    server.stop().await;
}

/// A HEAD answer carries the headers of the GET answer it stands for,
/// compression's included (a cache freshens a stored GET from a HEAD). Found
/// by a review (2026-12-06): the server's layers put around the whole router
/// instead of around each route saw the body axum empties for a HEAD, and
/// answered it uncompressed, without `Vary`.
#[tokio::test]
async fn head_answers_carry_the_headers_of_get() {
    let (_dir, server) = seeded().await;
    let plain = raw_client();
    for path in ["/version", "/openapi.json", "/providers"] {
        let answer = |method: reqwest::Method| {
            plain
                .request(method, server.url(path))
                .header(header::ACCEPT_ENCODING, "gzip")
                .send()
        };
        let get = answer(reqwest::Method::GET).await.unwrap();
        let head = answer(reqwest::Method::HEAD).await.unwrap();
        assert_eq!(get.status(), 200, "{path}");
        assert_eq!(head.status(), 200, "{path}");
        assert_eq!(get.headers()[header::CONTENT_ENCODING], "gzip", "{path}");
        for name in [
            header::CONTENT_ENCODING,
            header::VARY,
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            header::X_CONTENT_TYPE_OPTIONS,
        ] {
            assert_eq!(
                head.headers().get(&name),
                get.headers().get(&name),
                "{path}: {name}"
            );
        }
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn version_reports_version_epoch_and_checksum() {
    let (_dir, server) = seeded().await;
    let state = server.state().await;
    let version: Value = server.get("/version").await.json().await.unwrap();
    assert_eq!(version["version"], state.metadata.version);
    assert_eq!(version["epoch"], state.metadata.epoch.as_str());
    assert_eq!(version["checksum"], state.metadata.checksum.as_str());
    assert!(version["server_time"].as_str().unwrap().ends_with('Z'));
    server.stop().await;
}

#[tokio::test]
async fn sync_answers_none_incremental_or_full_as_the_contract_says() {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    config.event_retention = 5;
    let server = TestServer::start(config).await;
    for i in 0..8 {
        server.add_provider(&format!("p{i}")).await;
    }
    let state = server.state().await;
    let epoch = state.metadata.epoch.clone();
    assert_eq!(state.metadata.version, 8);

    let none = server
        .sync(json!({"client_version": 8, "client_epoch": epoch}))
        .await;
    assert_eq!(none["sync_type"], "none");
    assert_eq!(none["events"], json!([]));
    assert_eq!(none["state"], Value::Null);

    let incremental = server
        .sync(json!({"client_version": 5, "client_epoch": epoch}))
        .await;
    assert_eq!(incremental["sync_type"], "incremental");
    let versions: Vec<u64> = incremental["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [6, 7, 8]);
    assert_eq!(incremental["state"], Value::Null);

    for (body, reason) in [
        (
            json!({"client_version": 2, "client_epoch": epoch}),
            "too_old",
        ),
        (
            json!({"client_version": 9, "client_epoch": epoch}),
            "future_version",
        ),
        (
            json!({"client_version": 5, "client_epoch": "another"}),
            "epoch_mismatch",
        ),
        (json!({"client_version": 0}), "requested"),
        (
            json!({"client_version": 8, "client_epoch": epoch, "force_full": true}),
            "requested",
        ),
    ] {
        let full = server.sync(body.clone()).await;
        assert_eq!(full["sync_type"], "full", "{body}");
        assert_eq!(full["reason"], reason, "{body}");
        assert_eq!(full["events"], json!([]));
        assert_eq!(full["state"]["metadata"]["version"], 8);
        assert_eq!(full["checksum"], state.metadata.checksum.as_str());
    }
    server.stop().await;
    drop(dir);
}

#[tokio::test]
async fn sync_refuses_malformed_bodies_with_json_errors() {
    let (_dir, server) = seeded().await;
    let send = |body: &'static str| {
        server
            .http
            .post(server.url("/sync"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let malformed = send("{not json").await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    let wrong_type = send(r#"{"client_version": "seven"}"#).await.unwrap();
    assert_eq!(wrong_type.status(), 422);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"]["field"], "client_version");
    server.stop().await;
}

#[tokio::test]
async fn models_filter_and_paginate() {
    let (_dir, server) = seeded().await;
    let state = server.state().await;
    let page = |query: &'static str| {
        let server = &server;
        async move {
            let response = server.get(&format!("/models{query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = page("").await;
    assert_eq!(all["total"], state.all_models.len());

    let anthropic = page("?provider_id=anthropic").await;
    let expected: Vec<String> = state.models_of("anthropic").map(|m| m.id.clone()).collect();
    assert_eq!(ids(&anthropic), expected);

    let vision = page("?capability=vision").await;
    assert!(
        vision["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["supports_vision"] == true)
    );
    let vision_count = state
        .all_models
        .iter()
        .filter(|m| m.supports_vision)
        .count();
    assert_eq!(vision["total"], vision_count);

    let deprecated = page("?deprecated=true").await;
    let deprecated_count = state
        .all_models
        .iter()
        .filter(|m| m.is_deprecated())
        .count();
    assert!(deprecated_count >= 5);
    assert_eq!(deprecated["total"], deprecated_count);
    let active = page("?deprecated=false").await;
    assert_eq!(
        active["total"].as_u64().unwrap() as usize + deprecated_count,
        state.all_models.len()
    );

    let search = page("?q=CLAUDE").await;
    assert!(!ids(&search).is_empty());
    assert!(ids(&search).iter().all(|id| id.contains("claude")));

    let first = page("?limit=5").await;
    let second = page("?limit=5&offset=5").await;
    assert_eq!(
        ids(&first),
        state.all_models[..5]
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&second),
        state.all_models[5..10]
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(second["offset"], 5);
    assert_eq!(second["total"], state.all_models.len());

    let bad_capability = server.get("/models?capability=telepathy").await;
    assert_eq!(bad_capability.status(), 400);
    let body: Value = bad_capability.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let bad_limit = server.get("/models?limit=0").await;
    assert_eq!(bad_limit.status(), 422);
    // `provider`, as the contract names the filter, is `provider_id`; a
    // parameter of no filter is refused, naming it, rather than ignored
    // (`?provider=anthropic` answered every model).
    let by_provider = page("?provider=anthropic").await;
    assert_eq!(
        by_provider["total"],
        page("?provider_id=anthropic").await["total"]
    );
    assert!(
        ids(&by_provider)
            .iter()
            .all(|id| state.model(id).unwrap().provider_id == "anthropic")
    );
    assert!(!ids(&by_provider).is_empty());
    let unknown = server.get("/models?provder=anthropic").await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provder"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn single_entities_and_unknown_ids() {
    let (_dir, server) = seeded().await;
    let model: Value = server.get("/models/gpt-4.1").await.json().await.unwrap();
    assert_eq!(model["provider_id"], "openai");
    let provider: Value = server
        .get("/providers/anthropic")
        .await
        .json()
        .await
        .unwrap();
    assert!(!provider["model_ids"].as_array().unwrap().is_empty());
    let providers: Vec<Value> = server.get("/providers").await.json().await.unwrap();
    assert_eq!(providers.len(), server.state().await.providers.len());
    // An id with a slash travels URL-encoded.
    let state = server.state().await;
    let slashed = state
        .all_models
        .iter()
        .find(|m| m.id.contains('/'))
        .expect("a host-prefixed model");
    let encoded = slashed.id.replace('/', "%2F");
    assert_eq!(
        server.get(&format!("/models/{encoded}")).await.status(),
        200
    );

    for path in [
        "/models/no-such-model",
        "/providers/no-such-provider",
        "/models/no-such-model/availability",
        "/providers/no-such-provider/availability",
        "/no-such-route",
        // Bytes that are not UTF-8 name no entity either (they were 400,
        // which the document does not list for these operations).
        "/models/%FF",
        "/providers/%C3",
        "/models/%FF/availability",
        "/providers/%C3/availability",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        // The message says why, not "entity 'an id that is not UTF-8' not
        // found" (a black-box check).
        if path.contains('%') {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("not UTF-8 text"), "{path}: {message}");
            assert!(!message.contains("entity '"), "{path}: {message}");
        }
    }
    // An id far past any id's length is not repeated whole (a black-box
    // check, 2026-12-04: all 5,000 characters were in the message).
    let long = "x".repeat(5_000);
    for path in [
        format!("/models/{long}/availability"),
        format!("/providers/{long}"),
    ] {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.chars().count() < 150, "{message}");
        assert!(
            message.contains(&format!("'{}…'", "x".repeat(100))),
            "{message}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn availability_reports_fallback_and_sunset() {
    let (_dir, server) = seeded().await;
    let ok: Value = server
        .get("/providers/openai/availability")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ok["is_available"], true);
    assert_eq!(ok["fallback_provider_id"], Value::Null);

    // Take OpenAI down: its configured fallback is suggested.
    let response = server
        .admin(reqwest::Method::PUT, "/providers/openai/status")
        .json(&json!({"status": "unavailable", "message": "outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let state = server.state().await;
    let configured = state
        .provider("openai")
        .unwrap()
        .fallback_provider_id
        .clone()
        .unwrap();
    let down: Value = server
        .get("/providers/openai/availability")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(down["is_available"], false);
    assert_eq!(down["status"], "unavailable");
    assert_eq!(down["health"]["message"], "outage");
    assert_eq!(down["fallback_provider_id"], configured.as_str());

    // Models: a deprecated one with a replacement, and a sunset one.
    let deprecated = state
        .all_models
        .iter()
        .find(|m| {
            m.deprecation_status == provider_sync_protocol::DeprecationStatus::Deprecated
                && m.replacement_model_id.is_some()
                && m.sunset_date.is_some()
        })
        .expect("a deprecated model with a sunset date");
    let a: Value = server
        .get(&format!("/models/{}/availability", deprecated.id))
        .await
        .json()
        .await
        .unwrap();
    let replacement = state
        .model(deprecated.replacement_model_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(a["replacement_model_name"], replacement.name.as_str());
    assert!(a["days_until_sunset"].is_i64());
    assert_ne!(a["urgency"], "none");
    let sunset = state
        .all_models
        .iter()
        .find(|m| m.deprecation_status == provider_sync_protocol::DeprecationStatus::Sunset)
        .expect("a sunset model");
    let s: Value = server
        .get(&format!(
            "/models/{}/availability",
            sunset.id.replace('/', "%2F")
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["urgency"], "sunset");
    assert_eq!(s["is_available"], false);
    server.stop().await;
}

#[tokio::test]
async fn operations_endpoints() {
    let (_dir, server) = seeded().await;
    assert_eq!(server.get("/healthz").await.status(), 200);
    let ready: Value = server.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");

    server.sync(json!({"client_version": 0})).await;
    let metrics = server.get("/metrics").await.text().await.unwrap();
    let version = server.version().await;
    assert!(
        metrics.contains(&format!("provider_sync_version {version}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("provider_sync_sync_responses_total{sync_type=\"full\"} 1"),
        "{metrics}"
    );

    let doc: Value = server.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/state",
        "/sync",
        "/version",
        "/models",
        "/ws",
        "/admin/providers/{id}",
        "/admin/active-provider",
        "/admin/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert_eq!(doc["servers"][0]["url"], "/api/provider-sync");
    for schema in ["SyncState", "AuditPage", "AuditEntry"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // Reads name the optional read token; the WebSocket its query form.
    for scheme in ["admin_token", "read_token", "access_token"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    // Every field the server sends is `required` in its schema (nullable
    // where it may be null): what a client generated from the document may
    // count on, and what the TypeScript declarations say. ProviderHealth's
    // and SyncResponse's were not.
    let required = |schema: &str, value: &Value| {
        let listed: Vec<&str> = doc["components"]["schemas"][schema]["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in value.as_object().expect(schema).keys() {
            assert!(
                listed.contains(&key.as_str()),
                "{schema}.{key} is sent but not required"
            );
        }
    };
    let state: Value = server.get("/state").await.json().await.unwrap();
    required("SyncState", &state);
    required("SyncMetadata", &state["metadata"]);
    for provider in state["providers"].as_array().unwrap() {
        required("ProviderSyncInfo", provider);
        required("ProviderHealth", &provider["health"]);
    }
    for model in state["all_models"].as_array().unwrap() {
        required("ModelSpecification", model);
    }
    let full = server.sync(json!({"client_version": 0})).await;
    required("SyncResponse", &full);
    let ws_security = doc["paths"]["/ws"]["get"]["security"].to_string();
    assert!(ws_security.contains("access_token"), "{ws_security}");
    let docs = server.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("openapi"));
    server.stop().await;
}

/// Found by a black-box check (2026-12-02): a query whose escapes are not
/// UTF-8 was read with replacement characters and answered 200 with an
/// empty list; the README says a query that cannot be read is a 400.
#[tokio::test]
async fn a_query_whose_escapes_are_not_text_is_refused() {
    let (_dir, server) = seeded().await;
    let response = server.get("/models?provider_id=%ff").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    // Escaped UTF-8 is text.
    assert_eq!(server.get("/models?provider_id=%C3%A9").await.status(), 200);
    server.stop().await;
}

/// Found by a black-box check (2026-12-02): no answer said
/// `X-Content-Type-Options`, so a browser could sniff a JSON error (which
/// echoes a path) or a static file as HTML.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let (_dir, server) = seeded().await;
    for (path, status) in [
        ("/state", 200),
        ("/version", 200),
        ("/no/such/route", 404),
        ("/admin/audit", 401),
        ("/metrics", 200),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn cors_allows_browsers_from_other_origins() {
    let (_dir, server) = seeded().await;
    let response = server
        .http
        .get(server.url("/state"))
        .header(header::ORIGIN, "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let exposed = response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_lowercase();
    // What the SDK reads from other origins: the ETag, the version, and
    // Retry-After on 429/503.
    for name in ["etag", "x-sync-version", "retry-after"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    for (method, path, headers) in [
        ("POST", "/admin/models", "authorization,content-type"),
        (
            "PATCH",
            "/admin/models/m",
            "authorization,content-type,if-match",
        ),
        ("GET", "/state", "if-none-match"),
    ] {
        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header(header::ORIGIN, "http://localhost:5173")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers)
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success());
        let allowed_methods = preflight.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .to_uppercase();
        assert!(
            allowed_methods == "*" || allowed_methods.contains(method),
            "{method}: {allowed_methods}"
        );
        // `*` does not cover Authorization (Fetch standard): the headers are
        // named, not wildcarded.
        let allowed_headers = preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_lowercase();
        for name in headers.split(',') {
            assert!(
                allowed_headers.split(',').any(|h| h.trim() == name),
                "{name} not allowed: {allowed_headers}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn named_cors_origins_may_send_cookies_and_others_are_not_named() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.cors_origins = vec!["https://app.example".into()];
    let server = TestServer::start(config).await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/sync"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    let headers = allowed.headers();
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    // The SDK's `credentials: "include"` (cookies) needs this, and the
    // methods named rather than `*`.
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert!(
        headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    // Compared as the 403 check compares (case and a trailing slash do not
    // matter, README): that check let this through, and the answer had no
    // `Access-Control-Allow-Origin` (black-box check, 2026-12-03).
    let spelt = preflight("https://APP.example/").await.unwrap();
    assert_eq!(
        spelt.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://APP.example/"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(
        !other
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    server.stop().await;
}

#[tokio::test]
async fn errors_made_outside_the_handlers_are_json_too() {
    let (_dir, server) = seeded().await;
    let cases = [
        (
            server.http.delete(server.url("/state")),
            405,
            "method_not_allowed",
        ),
        (server.http.get(server.url("/ws")), 400, "bad_request"),
        (
            server
                .http
                .post(server.url("/sync"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn prices_survive_the_json_round_trip_exactly() {
    let (dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.catalog = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml").into());
    let server = TestServer::start(cfg.clone()).await;
    let (input, output, cached) = (479.31600000000003_f64, 0.1_f64 + 0.2_f64, 1e-7_f64 / 3.0);
    let response = server
        .admin(reqwest::Method::POST, "/models")
        .json(&json!({"id": "odd-price", "name": "Odd", "provider_id": "openai", "context_window": 1000,
                      "pricing": {"input_per_million": input, "output_per_million": output,
                                  "cached_input_per_million": cached}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let bits = |state: &provider_sync_protocol::SyncState| {
        let p = state.model("odd-price").unwrap().pricing.unwrap();
        (
            p.input_per_million.to_bits(),
            p.output_per_million.to_bits(),
            p.cached_input_per_million.map(f64::to_bits),
        )
    };
    let expected = (input.to_bits(), output.to_bits(), Some(cached.to_bits()));
    let state = server.state().await;
    // Stored and served bit for bit, not only the same on both sides.
    assert_eq!(bits(&state), expected);
    assert_eq!(state_checksum(&state).to_hex(), state.metadata.checksum);
    server.stop().await;
    // And again from the store after a restart.
    let restarted = TestServer::start(cfg).await;
    let state = restarted.state().await;
    assert_eq!(bits(&state), expected);
    assert_eq!(state_checksum(&state).to_hex(), state.metadata.checksum);
    restarted.stop().await;
    drop(dir);
}

#[tokio::test]
async fn a_prefix_without_a_slash_is_refused_at_start() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.prefix = "api".into();
    let err = provider_sync_server::start(config).await.unwrap_err();
    assert!(
        err.to_string().contains("--prefix must start with /"),
        "{err}"
    );
    // A prefix no request could reach (it started, and every endpoint
    // answered 404).
    for (prefix, why) in [
        ("/a b", "' ' cannot be in it"),
        ("/a?x", "'?' cannot be in it"),
        ("/a#x", "'#' cannot be in it"),
        ("/a%2", "'%' cannot be in it"),
        ("/a%zz", "'%' cannot be in it"),
        ("/é", "'é' cannot be in it"),
        ("/a/{id}", "'{' cannot be in it"),
        ("/a/./b", "a `.` or `..` segment"),
        ("/a/../b", "a `.` or `..` segment"),
        ("/:v1", "may not start with `:` or `*`"),
        ("/a/*rest", "may not start with `:` or `*`"),
    ] {
        let mut refused = common::config(&db);
        refused.prefix = prefix.into();
        let err = provider_sync_server::start(refused).await.unwrap_err();
        assert!(err.to_string().contains(why), "{prefix}: {err}");
    }
}

/// A prefix with the characters a path may hold as it is, escapes and an
/// empty segment is served.
#[tokio::test]
async fn a_prefix_with_punctuation_serves_the_api() {
    for prefix in ["/v1/sync-api_~x:y@z/", "/team%20a/%C3%A9", "/a//b"] {
        let (_dir, db) = temp_db();
        let mut config = config(&db);
        config.prefix = prefix.into();
        let server = TestServer::start(config).await;
        assert!(
            server.base.ends_with(prefix.trim_end_matches('/')),
            "{}",
            server.base
        );
        assert_eq!(server.get("/version").await.status(), 200, "{prefix}");
        server.stop().await;
    }
}

#[tokio::test]
async fn durations_that_cannot_work_are_refused_at_start_naming_the_flag() {
    let (_dir, db) = temp_db();
    type Edit = fn(&mut provider_sync_server::Config);
    let cases: [(&str, Edit); 10] = [
        ("--heartbeat-ms", |c| c.heartbeat_ms = 0),
        // Not durations, but refused the same way (they panicked or aborted
        // after the store was made, or passed and failed later).
        ("--cors-origins: \"*\" is not an origin", |c| {
            c.cors_origins = vec!["https://a.example.com".into(), "*".into()]
        }),
        ("--cors-origins: \"https://a.example.com/app\"", |c| {
            c.cors_origins = vec!["https://a.example.com/app".into()]
        }),
        ("--cors-origins: \"app.example.com\"", |c| {
            c.cors_origins = vec!["app.example.com".into()]
        }),
        ("--ws-threads (100000) must not exceed", |c| {
            c.ws_threads = Some(100_000)
        }),
        ("--static-dir /no/such/dir: not a directory", |c| {
            c.static_dir = Some("/no/such/dir".into())
        }),
        ("--client-timeout-ms", |c| {
            c.heartbeat_ms = 30_000;
            c.client_timeout_ms = 10_000
        }),
        ("--request-timeout-ms", |c| c.request_timeout_ms = 0),
        ("--event-retention", |c| c.event_retention = 0),
        // Taken as 1 before: one failure made a provider unavailable.
        ("--health-failures must be greater than 0", |c| {
            c.health_failures = 0
        }),
    ];
    for (flag, edit) in cases {
        let mut config = config(&db);
        edit(&mut config);
        let err = provider_sync_server::start(config)
            .await
            .expect_err(flag)
            .to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
    assert!(!db.exists(), "refused before the store was touched");
}

const READER: &str = "reader-token-0123456789abcdef012345678";

#[tokio::test]
async fn read_tokens_close_the_read_api_and_leave_operations_open() {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    config.catalog = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml").into());
    config.read_tokens_file = Some(tokens_file(dir.path(), "readers", &[("app", READER)]));
    let server = TestServer::start(config).await;
    let model = server.state_with(READER).await.all_models[0].id.clone();
    let reads = [
        ("GET", "/state".to_owned()),
        ("POST", "/sync".to_owned()),
        ("GET", "/version".to_owned()),
        ("GET", "/providers".to_owned()),
        ("GET", "/providers/openai".to_owned()),
        ("GET", "/models".to_owned()),
        ("GET", format!("/models/{model}")),
        ("GET", "/providers/openai/availability".to_owned()),
        ("GET", format!("/models/{model}/availability")),
    ];
    for (method, path) in &reads {
        let request = |token: Option<&str>| {
            let mut request = server
                .http
                .request(method.parse().unwrap(), server.url(path))
                .json(&json!({"client_version": 0}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        for refused in [None, Some("not-a-token-but-long-enough-0123456789")] {
            let response = request(refused).await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {refused:?}");
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{path}");
        }
        // The read token, and an admin token, read.
        for token in [READER, TOKEN] {
            let response = request(Some(token)).await.unwrap();
            assert_eq!(response.status(), 200, "{method} {path}");
        }
    }
    // HTTP reads take the header only: a token in the URL ends up in logs
    // and caches (the WebSocket, which cannot send a header, is the exception).
    let in_url = server.get(&format!("/state?access_token={READER}")).await;
    assert_eq!(in_url.status(), 401);
    // Operations stay open for probes and scrapers.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(server.get(path).await.status(), 200, "{path}");
    }
    // A read token does not write.
    let write = server
        .http
        .post(server.url("/admin/providers"))
        .bearer_auth(READER)
        .json(&json!({"id": "x", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn without_read_tokens_reads_are_open() {
    let (_dir, server) = seeded().await;
    assert_eq!(server.get("/state").await.status(), 200);
    assert_eq!(server.get("/version").await.status(), 200);
    server.stop().await;
}

/// The count of full-state answers compressed at the on-the-fly levels.
async fn quick_compressions(server: &TestServer) -> u64 {
    let metrics = server.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("provider_sync_quick_compressions_total "))
        .unwrap_or_else(|| panic!("no quick_compressions counter: {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// Found by a black-box check (2026-12-02): until a version's best copies
/// were ready (seconds for a large catalog), every request for the full
/// state compressed the whole catalog for itself; with a 6 MB state a
/// flood of them after a write took a bystander's `/version` from 3 ms to
/// 390 ms. Each answer is now compressed once per version and encoding,
/// and shared by the requests that come meanwhile.
#[tokio::test]
async fn before_its_best_copy_a_version_is_compressed_once_for_every_request() {
    use std::io::Read;
    // Best copies never made (the tests' configuration).
    let (_dir, server) = seeded().await;
    server.add_provider("fresh").await;
    let raw = raw_client();
    let plain = raw
        .get(server.url("/state"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let before = quick_compressions(&server).await;
    let get = |encoding: &'static str| {
        raw.get(server.url("/state"))
            .header("accept-encoding", encoding)
            .send()
    };
    let full_sync = || {
        raw.post(server.url("/sync"))
            .header("accept-encoding", "br")
            .json(&json!({"client_version": 0}))
            .send()
    };
    let (brs, gzips, syncs) = tokio::join!(
        futures_util::future::join_all((0..8).map(|_| get("br"))),
        futures_util::future::join_all((0..8).map(|_| get("gzip"))),
        futures_util::future::join_all((0..4).map(|_| full_sync())),
    );
    let mut bodies = Vec::new();
    for (encoding, answers) in [("br", brs), ("gzip", gzips), ("br", syncs)] {
        let mut seen = Vec::new();
        for answer in answers {
            let answer = answer.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.headers()["content-encoding"], encoding);
            seen.push(answer.bytes().await.unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{encoding}");
        bodies.push((encoding, seen.remove(0)));
    }
    // GET /state's bytes decompress to the state; the full sync's to a
    // full answer with it.
    let mut json = Vec::new();
    brotli::Decompressor::new(&bodies[0].1[..], 4096)
        .read_to_end(&mut json)
        .unwrap();
    assert_eq!(json, plain);
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&bodies[1].1[..])
        .read_to_end(&mut json)
        .unwrap();
    assert_eq!(json, plain);
    let mut json = Vec::new();
    brotli::Decompressor::new(&bodies[2].1[..], 4096)
        .read_to_end(&mut json)
        .unwrap();
    let answer: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(answer["sync_type"], "full");
    assert!(answer["state"]["providers"].as_array().unwrap().len() > 1);
    // Three answers made: the state in brotli and in gzip, the full sync.
    assert_eq!(quick_compressions(&server).await - before, 3);
    // A new version gets its own.
    server.add_provider("fresher").await;
    let answer = get("br").await.unwrap();
    let mut json = Vec::new();
    brotli::Decompressor::new(&answer.bytes().await.unwrap()[..], 4096)
        .read_to_end(&mut json)
        .unwrap();
    let state: SyncState = serde_json::from_slice(&json).unwrap();
    assert!(state.provider("fresher").is_some());
    assert_eq!(quick_compressions(&server).await - before, 4);
    server.stop().await;
}

/// A server with the sample catalog that precompresses a version 50 ms
/// after it became current, and a client that shows the bytes as sent.
async fn precompressing_server() -> (tempfile::TempDir, TestServer, reqwest::Client) {
    let (dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.catalog = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml").into());
    cfg.precompress_after_ms = 50;
    let server = TestServer::start(cfg).await;
    let raw = raw_client();
    (dir, server, raw)
}

#[tokio::test]
async fn state_is_served_precompressed_once_a_version_is_stable() {
    use std::io::Read;
    let (_dir, server, raw) = precompressing_server().await;
    let fetch = |encoding: &'static str| {
        raw.get(server.url("/state"))
            .header("accept-encoding", encoding)
            .send()
    };
    let plain = fetch("identity").await.unwrap().bytes().await.unwrap();
    let metric = "provider_sync_state_precompressions_total{result=\"ready\"}";
    let mut ready = false;
    // Up to a minute: the compressing thread runs at nice 19, which other
    // work on a busy machine can hold off for seconds.
    for _ in 0..2400 {
        if server
            .get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains(metric)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ready, "the stable version was never precompressed");
    let best = provider_sync_server::precompress::compress(&plain);
    for (encoding, expected) in [("br", &best.br), ("gzip", &best.gzip)] {
        let answer = fetch(encoding).await.unwrap();
        assert_eq!(answer.headers()["content-encoding"], encoding);
        let body = answer.bytes().await.unwrap();
        // The precompressed bytes themselves: the best levels, not the
        // compression layer's on-the-fly ones.
        assert_eq!(&body, expected, "{encoding}");
    }
    let answer = fetch("gzip, deflate, br").await.unwrap();
    let body = answer.bytes().await.unwrap();
    let mut json = Vec::new();
    brotli::Decompressor::new(&body[..], 4096)
        .read_to_end(&mut json)
        .unwrap();
    assert_eq!(json, plain);

    // A new version is never answered with the old one's bytes.
    server.add_provider("fresh").await;
    let answer = fetch("br").await.unwrap();
    let etag = answer.headers()["etag"].to_str().unwrap().to_owned();
    let body = answer.bytes().await.unwrap();
    let mut json = Vec::new();
    brotli::Decompressor::new(&body[..], 4096)
        .read_to_end(&mut json)
        .unwrap();
    let state: provider_sync_protocol::SyncState = serde_json::from_slice(&json).unwrap();
    assert!(state.provider("fresh").is_some());
    assert!(
        etag.contains(&format!("-{}-", state.metadata.version)),
        "{etag}"
    );
    server.stop().await;
}

#[tokio::test]
async fn full_sync_answers_are_served_precompressed_per_reason() {
    use std::io::Read;
    let (_dir, server, raw) = precompressing_server().await;
    let sync = |request: serde_json::Value, encoding: &'static str| {
        raw.post(server.url("/sync"))
            .header("accept-encoding", encoding)
            .json(&request)
            .send()
    };
    let ready = |count: u32| {
        let metric =
            format!("provider_sync_sync_precompressions_total{{result=\"ready\"}} {count}");
        let server = &server;
        async move {
            // Up to a minute: the compressing thread runs at nice 19.
            for _ in 0..2400 {
                let text = server.get("/metrics").await.text().await.unwrap();
                if text.contains(&metric) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            panic!("never reached: {metric}");
        }
    };
    let unbrotli = |body: &[u8]| {
        let mut json = Vec::new();
        brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut json)
            .unwrap();
        json
    };

    // A client with nothing: a full answer, as requested.
    let nothing = json!({"client_version": 0});
    let answer = sync(nothing.clone(), "identity").await.unwrap();
    assert_eq!(answer.headers()["vary"], "accept-encoding");
    let plain = answer.bytes().await.unwrap();
    let parsed: provider_sync_protocol::SyncResponse = serde_json::from_slice(&plain).unwrap();
    assert_eq!(parsed.reason, Some(FullSyncReason::Requested));
    // Given once, that answer is made at the best levels in the background.
    ready(1).await;
    let best = provider_sync_server::precompress::compress(&plain);
    for (encoding, expected) in [("br", &best.br), ("gzip", &best.gzip)] {
        let answer = sync(nothing.clone(), encoding).await.unwrap();
        assert_eq!(answer.headers()["content-encoding"], encoding);
        assert_eq!(answer.headers()["vary"], "accept-encoding");
        let body = answer.bytes().await.unwrap();
        // The precompressed bytes themselves, not the compression layer's.
        assert_eq!(&body, expected, "{encoding}");
    }
    // A client that takes neither still gets the JSON as it is.
    let answer = sync(nothing.clone(), "identity").await.unwrap();
    assert!(answer.headers().get("content-encoding").is_none());
    assert_eq!(answer.bytes().await.unwrap(), plain);

    // Another reason at the same version has its own bytes: never the
    // first reason's. Until they are ready it is compressed on the fly.
    let other_epoch = json!({"client_version": parsed.version, "client_epoch": "another-epoch"});
    let answer = sync(other_epoch.clone(), "br").await.unwrap();
    let json = unbrotli(&answer.bytes().await.unwrap());
    let first: provider_sync_protocol::SyncResponse = serde_json::from_slice(&json).unwrap();
    assert_eq!(first.reason, Some(FullSyncReason::EpochMismatch));
    ready(2).await;
    let answer = sync(other_epoch, "br").await.unwrap();
    let body = answer.bytes().await.unwrap();
    assert_eq!(unbrotli(&body), json);
    assert_eq!(body, provider_sync_server::precompress::compress(&json).br);

    // Incremental answers are not touched.
    server.add_provider("fresh").await;
    let caught_up = json!({"client_version": parsed.version, "client_epoch": parsed.epoch});
    let answer = sync(caught_up, "identity").await.unwrap();
    let incremental: provider_sync_protocol::SyncResponse =
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(
        incremental.sync_type,
        provider_sync_protocol::SyncType::Incremental
    );

    // A new version is never answered with the old one's bytes.
    let answer = sync(nothing, "br").await.unwrap();
    let body = answer.bytes().await.unwrap();
    let full: provider_sync_protocol::SyncResponse =
        serde_json::from_slice(&unbrotli(&body)).unwrap();
    assert!(full.version > parsed.version);
    assert!(full.state.unwrap().provider("fresh").is_some());
    server.stop().await;
}

/// A deployment template writes `X=` for "not set", and `1` or `yes` for
/// a switch on: the server starts (it stopped with "a value is required
/// for '--catalog'" and "invalid value '1'").
#[tokio::test]
async fn empty_variables_count_as_not_set_and_switches_read_1_and_0() {
    let (dir, db) = temp_db();
    let empty = [
        "PROVIDER_SYNC_CATALOG",
        "PROVIDER_SYNC_STATIC_DIR",
        "PROVIDER_SYNC_WS_THREADS",
        "PROVIDER_SYNC_MAX_CONNECTIONS",
        "PROVIDER_SYNC_TRUSTED_PROXIES",
        "PROVIDER_SYNC_READ_TOKENS_FILE",
    ];
    let mut env: Vec<(&str, &str)> = empty.iter().map(|name| (*name, "")).collect();
    env.extend([
        ("DATABASE_URL", db.to_str().unwrap()),
        ("PROVIDER_SYNC_CATALOG_WATCH", "1"),
        ("PROVIDER_SYNC_NEW_EPOCH", "no"),
    ]);
    let (child, base) = spawn_binary_with(&[], &env, std::process::Stdio::null());
    let mut child = KillOnDrop(child);
    let answer = reqwest::get(format!("{base}/version")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    assert!(child.0.wait().unwrap().success());
    drop(dir);
}

/// A SIGTERM sent as soon as the server says it listens shuts it down with
/// exit code 0 (its handler was installed at the first wait, after that
/// line: the signal's default action could kill it first).
#[test]
fn a_signal_sent_as_soon_as_it_listens_is_a_clean_shutdown() {
    for _ in 0..20 {
        let (_dir, db) = temp_db();
        let (child, _) = spawn_binary(&["--database", db.to_str().unwrap()]);
        let mut child = KillOnDrop(child);
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status();
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// A signal while the server waits for another process's store lock stops
/// it there, with exit code 1 (caught from the start, it waited out the
/// whole lock timeout first).
#[test]
fn a_signal_during_the_start_stops_it_there() {
    let (_dir, db) = temp_db();
    let (holder, _) = spawn_binary(&["--database", db.to_str().unwrap()]);
    let _holder = KillOnDrop(holder);
    let waiting = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
        .args(["--bind", "127.0.0.1:0", "--database", db.to_str().unwrap()])
        .args(["--store-lock-timeout-ms", "60000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut waiting = KillOnDrop(waiting);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        waiting.0.try_wait().unwrap().is_none(),
        "it waits for the lock"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &waiting.0.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = waiting.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still waiting 10 s after the signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// A second Ctrl-C or SIGTERM ends the process at once (it waited out the
/// whole shutdown timeout), with exit code 1: a request was cut short.
#[test]
fn a_second_signal_exits_without_waiting_for_requests_in_flight() {
    use std::io::Write;
    let (_dir, db) = temp_db();
    let (child, base) = spawn_binary(&[
        "--database",
        db.to_str().unwrap(),
        "--shutdown-timeout-ms",
        "60000",
    ]);
    let mut child = KillOnDrop(child);
    // A request whose body has not all come: in flight.
    let addr = host_of(&base);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            b"POST /api/provider-sync/sync HTTP/1.1\r\nHost: x\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"client",
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = child.0.id().to_string();
    let signal = || {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
    };
    signal();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "it waits for the request"
    );
    let sent = std::time::Instant::now();
    signal();
    let deadline = sent + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after the second signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    drop(stream);
}

/// Sends `head` and `body` on `stream` and reads the answer's head and
/// body (by its `content-length`), lowercased head first.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    head: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.unwrap();
    // Some of a large body may never be read: the server answers first.
    let _ = stream.write_all(body).await;
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the answer's head ended early"
        );
        seen.push(byte[0]);
    }
    let head = String::from_utf8(seen).unwrap().to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut answer = vec![0u8; length];
    stream.read_exact(&mut answer).await.unwrap();
    (head, answer)
}

/// An answer given before the request's body was read (a 401 from the
/// headers) says `Connection: close`, since the server closes that
/// connection; one that read its body keeps the connection for the next
/// request. Before, the early answer said nothing and the client's next
/// request on the connection met a broken pipe.
#[tokio::test]
async fn an_answer_before_the_body_is_read_says_the_connection_closes() {
    let (_dir, server) = seeded().await;
    let rest = server.base.strip_prefix("http://").unwrap();
    let (host, prefix) = rest.split_once('/').unwrap();
    let body = format!(r#"{{"name":"{}"}}"#, "x".repeat(200_000));
    let mut early = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "PATCH /{prefix}/admin/models/gpt-5 HTTP/1.1\r\nhost: {host}\r\n\
         authorization: Bearer wrong-token-wrong-token-wrong-token\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (answer, _) = exchange(&mut early, &head, body.as_bytes()).await;
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");

    let mut kept = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = br#"{"client_version":0}"#;
    let head = format!(
        "POST /{prefix}/sync HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let (answer, _) = exchange(&mut kept, &head, body).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    let head = format!("GET /{prefix}/version HTTP/1.1\r\nhost: {host}\r\n\r\n");
    let (answer, _) = exchange(&mut kept, &head, b"").await;
    assert!(
        answer.starts_with("http/1.1 200"),
        "the connection was kept: {answer}"
    );
}

/// One model or provider read alone carries its revision as `ETag`, which
/// a write takes as `If-Match` (as the admin API's answers do): read,
/// then write what was read; a tag gone stale gets 412.
#[tokio::test]
async fn an_entity_read_alone_carries_its_revision_for_if_match() {
    let (_dir, server) = seeded().await;
    for (path, body) in [
        ("/models/gpt-5", json!({"name": "GPT-5 (read first)"})),
        ("/providers/openai", json!({"priority": 7})),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200);
        let tag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_owned();
        let entity: Value = response.json().await.unwrap();
        assert_eq!(tag, format!("\"{}\"", entity["revision"]), "{path}");
        // Written with the tag read, then again with it, stale by then.
        for expected in [200, 412] {
            let written = server
                .admin(reqwest::Method::PATCH, path)
                .header(header::IF_MATCH, &tag)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(written.status(), expected, "{path}");
        }
    }
}
