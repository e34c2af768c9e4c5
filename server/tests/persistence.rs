//! The SQLite store across restarts, and the catalog file: seed, reconcile,
//! refuse.

mod common;

use std::path::Path;

use common::*;
use provider_sync_protocol::{SyncEvent, SyncEventType};
use serde_json::{Value, json};

const CATALOG: &str = r#"
active_provider_id = "alpha"

[[providers]]
id = "alpha"
name = "Alpha"
provider_type = "openai"
base_url = "https://api.alpha.example/v1"
priority = 10

[[providers]]
id = "beta"
name = "Beta"
fallback_provider_id = "alpha"

[[models]]
id = "alpha-large"
provider_id = "alpha"
name = "Alpha Large"
context_window = 128000
max_output_tokens = 8192
pricing = { input_per_million = 2.5, output_per_million = 10.0 }

[[models]]
id = "alpha-small"
provider_id = "alpha"
name = "Alpha Small"
context_window = 32000

[[models]]
id = "beta-1"
provider_id = "beta"
name = "Beta One"
context_window = 8000
deprecation_date = "2026-01-01"
sunset_date = "2027-01-01"
replacement_model_id = "alpha-small"
"#;

async fn events_since(server: &TestServer, since: u64, epoch: &str) -> Vec<SyncEvent> {
    let body = server
        .sync(json!({"client_version": since, "client_epoch": epoch}))
        .await;
    match body["sync_type"].as_str().unwrap() {
        "none" => vec![],
        "incremental" => serde_json::from_value(body["events"].clone()).unwrap(),
        other => panic!("expected events, got a {other} sync: {body}"),
    }
}

#[tokio::test]
async fn a_restart_keeps_version_epoch_and_incremental_sync() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_ballast().await;
    for i in 0..5 {
        first.add_provider(&format!("p{i}")).await;
    }
    let before = first.state().await;
    first.stop().await;

    let second = TestServer::start(config(&db)).await;
    let after = second.state().await;
    assert_eq!(after.metadata.version, 6);
    assert_eq!(after.metadata.epoch, before.metadata.epoch);
    assert_eq!(after.metadata.checksum, before.metadata.checksum);
    assert_eq!(after.providers, before.providers);

    // A client from before the restart still gets just the events it missed.
    let epoch = before.metadata.epoch.clone();
    let missed = events_since(&second, 3, &epoch).await;
    assert_eq!(
        missed.iter().map(|e| e.version).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    // And new versions continue from where they were.
    second.add_provider("after-restart").await;
    assert_eq!(second.version().await, 7);
    second.stop().await;
}

/// `/state`'s `server_time` is when its version was made: the last event's
/// time, the same after a restart (it was the restart's time) and on every
/// instance (each put its own time of applying it).
#[tokio::test]
async fn server_time_is_when_the_version_was_made_across_a_restart() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    let before = first.state().await;
    let made = events_since(&first, 0, &before.metadata.epoch).await;
    assert_eq!(made.last().unwrap().version, before.metadata.version);
    assert_eq!(before.metadata.server_time, made.last().unwrap().timestamp);
    first.stop().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let second = TestServer::start(config(&db)).await;
    let after = second.state().await;
    assert_eq!(after.metadata.version, before.metadata.version);
    assert_eq!(after.metadata.server_time, before.metadata.server_time);
    second.stop().await;
}

/// Every kind of write reaches the store's rows, not only its log: a
/// status change, a price change, a deprecation, a provider removed with its
/// models, the active provider. After a restart the state is the same.
/// (cargo-mutants: `Draft::emit`'s arms for `provider_removed` and
/// `provider_status_changed` could each be deleted, the row then never
/// written, and no test noticed: the removed provider came back.)
#[tokio::test]
async fn every_kind_of_write_survives_a_restart() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    for provider in ["p", "q"] {
        first.add_provider(provider).await;
    }
    for (model, provider) in [("pm", "p"), ("qm1", "q"), ("qm2", "q")] {
        first.add_model(model, provider).await;
    }
    let writes = [
        (
            reqwest::Method::PUT,
            "/providers/p/status",
            json!({"status": "degraded", "message": "slow"}),
        ),
        (
            reqwest::Method::PATCH,
            "/models/pm",
            json!({"pricing": {"input_per_million": 1.25, "output_per_million": 5.0}}),
        ),
        (
            reqwest::Method::POST,
            "/models/pm/deprecate",
            json!({"deprecation_date": "2026-12-01"}),
        ),
        (reqwest::Method::DELETE, "/providers/q", json!({})),
        (
            reqwest::Method::PUT,
            "/active-provider",
            json!({"provider_id": "p", "default_provider_id": "p"}),
        ),
    ];
    for (method, path, body) in writes {
        let request = first.admin(method.clone(), path);
        let request = if method == reqwest::Method::DELETE {
            request
        } else {
            request.json(&body)
        };
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    let before = first.state().await;
    assert!(before.provider("q").is_none() && before.model("qm1").is_none());
    first.stop().await;

    let second = TestServer::start(config(&db)).await;
    let after = second.state().await;
    assert_eq!(after.providers, before.providers);
    assert_eq!(after.all_models, before.all_models);
    assert_eq!(after.active_provider_id.as_deref(), Some("p"));
    assert_eq!(after.default_provider_id.as_deref(), Some("p"));
    assert_eq!(after.metadata.checksum, before.metadata.checksum);
    second.stop().await;
}

/// A client exactly at the version before the oldest event in the log
/// resumes from the log; one version older takes the full state.
/// (cargo-mutants: `Snapshot::window`'s `- 1` → `+ 1` or `/ 1` was missed.)
#[tokio::test]
async fn a_client_at_the_oldest_resumable_version_resumes() {
    let (_dir, db) = temp_db();
    let mut short = config(&db);
    short.event_retention = 5;
    let server = TestServer::start(short).await;
    server.add_ballast().await;
    for i in 0..10 {
        server.add_provider(&format!("p{i}")).await;
    }
    let state = server.state().await;
    let (version, epoch) = (state.metadata.version, state.metadata.epoch);
    let oldest_kept = version - 4;
    let resumed = events_since(&server, oldest_kept - 1, &epoch).await;
    assert_eq!(
        resumed.iter().map(|e| e.version).collect::<Vec<_>>(),
        (oldest_kept..=version).collect::<Vec<_>>()
    );
    let too_old = server
        .sync(json!({"client_version": oldest_kept - 2, "client_epoch": epoch}))
        .await;
    assert_eq!(too_old["sync_type"], "full", "{too_old}");
    assert_eq!(too_old["reason"], "too_old", "{too_old}");
    server.stop().await;
}

#[tokio::test]
async fn a_new_store_is_a_new_epoch() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    let old = first.state().await.metadata.epoch;
    first.stop().await;
    wipe_store(&db);
    let wiped = TestServer::start(config(&db)).await;
    let state = wiped.state().await;
    assert_ne!(state.metadata.epoch, old);
    assert_eq!(state.metadata.version, 0);
    let body = wiped
        .sync(json!({"client_version": 1, "client_epoch": old}))
        .await;
    assert_eq!(body["sync_type"], "full");
    assert_eq!(body["reason"], "epoch_mismatch");
    wiped.stop().await;
}

/// ARCHITECTURE.md: a wiped event log is a new epoch. The log emptied by
/// hand (the head row and the entities kept), or its newest events deleted,
/// is found at the next start: every client takes a full state, the data
/// stays, and versions go on. An epoch's log that is empty because the epoch
/// has just begun is not taken for a wiped one at each start.
#[tokio::test]
async fn a_wiped_event_log_is_a_new_epoch() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    for id in ["p", "q", "r"] {
        first.add_provider(id).await;
    }
    let before = first.state().await.metadata;
    first.stop().await;
    edit_store(&db, "DELETE FROM events").await;

    let wiped = TestServer::start(config(&db)).await;
    let state = wiped.state().await;
    assert_ne!(
        state.metadata.epoch, before.epoch,
        "a wiped log kept its epoch"
    );
    assert_eq!(state.metadata.version, before.version);
    assert_eq!(state.providers.len(), 3, "the data stays");
    // A client of the old history at the current version is not told it is
    // up to date: it takes the state.
    let body = wiped
        .sync(json!({"client_version": before.version, "client_epoch": before.epoch}))
        .await;
    assert_eq!(body["sync_type"], "full", "{body}");
    assert_eq!(body["reason"], "epoch_mismatch", "{body}");
    let epoch = state.metadata.epoch.clone();
    wiped.stop().await;

    // Started again with nothing written: the same epoch (its log is empty
    // because it has just begun).
    let again = TestServer::start(config(&db)).await;
    assert_eq!(again.state().await.metadata.epoch, epoch);
    // Writes go on from there; then the newest events are deleted by hand.
    again.add_provider("s").await;
    again.add_provider("t").await;
    let version = again.version().await;
    assert_eq!(version, before.version + 2);
    assert_eq!(events_since(&again, version - 2, &epoch).await.len(), 2);
    again.stop().await;
    edit_store(
        &db,
        &format!("DELETE FROM events WHERE version = {version}"),
    )
    .await;

    let cut = TestServer::start(config(&db)).await;
    let state = cut.state().await;
    assert_ne!(
        state.metadata.epoch, epoch,
        "a log without its newest event kept its epoch"
    );
    assert_eq!(state.metadata.version, version);
    assert_eq!(state.providers.len(), 5);
    let body = cut
        .sync(json!({"client_version": version - 1, "client_epoch": epoch}))
        .await;
    assert_eq!(body["sync_type"], "full", "{body}");
    cut.stop().await;
}

/// The head row deleted by hand while the rows stay: a new epoch whose
/// versions go on above every revision the store holds, so no revision is
/// given again (an `If-Match` read before it would be taken as current) and
/// none goes back.
#[tokio::test]
async fn a_lost_head_row_starts_an_epoch_above_every_revision() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    first.add_model("m", "p").await;
    for price in 1..=5 {
        let response = first
            .admin(reqwest::Method::PATCH, "/models/m")
            .json(&json!({"pricing": {"input_per_million": price, "output_per_million": price}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let before = first.state().await;
    let highest = before.model("m").unwrap().revision;
    assert_eq!(highest, before.metadata.version);
    first.stop().await;
    // The log too: the floor is then the rows' own revisions (with the log,
    // its head event's version alone would give it).
    edit_store(&db, "DELETE FROM sync_meta").await;
    edit_store(&db, "DELETE FROM events").await;

    let headless = TestServer::start(config(&db)).await;
    let state = headless.state().await;
    assert_ne!(state.metadata.epoch, before.metadata.epoch);
    assert!(
        state.metadata.version >= highest,
        "version {} under the revision {highest} the store holds",
        state.metadata.version
    );
    assert_eq!(
        state.model("m").unwrap().revision,
        highest,
        "the data stays"
    );
    // The next change of another entity, then of `m`: each revision above
    // every one given before.
    let p = headless
        .admin(reqwest::Method::PATCH, "/providers/p")
        .json(&json!({"priority": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(p.status(), 200);
    let p: Value = p.json().await.unwrap();
    assert!(p["revision"].as_u64().unwrap() > highest, "{p}");
    // An `If-Match` read before the change is refused after it.
    let edit = |revision: u64, price: u32| {
        headless
            .admin(reqwest::Method::PATCH, "/models/m")
            .header("If-Match", format!("\"{revision}\""))
            .json(&json!({"pricing": {"input_per_million": price, "output_per_million": price}}))
            .send()
    };
    let changed = edit(highest, 9).await.unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert!(changed["revision"].as_u64().unwrap() > highest, "{changed}");
    assert_eq!(edit(highest, 10).await.unwrap().status(), 412);
    headless.stop().await;
}
#[tokio::test]
async fn the_catalog_seeds_then_reconciles_only_the_differences() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);

    let seeded = with_catalog(&db, &catalog).await;
    let state = seeded.state().await;
    assert_eq!(state.providers.len(), 2);
    assert_eq!(state.all_models.len(), 3);
    assert_eq!(state.active_provider_id.as_deref(), Some("alpha"));
    // 2 providers + 3 models + the active provider.
    assert_eq!(state.metadata.version, 6);
    let epoch = state.metadata.epoch.clone();
    seeded.stop().await;

    // The same file again: nothing happens.
    let unchanged = with_catalog(&db, &catalog).await;
    assert_eq!(unchanged.version().await, 6);
    unchanged.stop().await;

    // One price changed, one model removed, one model added, one deprecated.
    let edited = CATALOG
        .replace("input_per_million = 2.5", "input_per_million = 2.0")
        .replace(
            "[[models]]\nid = \"alpha-small\"",
            "[[models]]\nid = \"alpha-mini\"",
        )
        .replace(
            "replacement_model_id = \"alpha-small\"",
            "replacement_model_id = \"alpha-mini\"",
        )
        + "\n[[models]]\nid = \"beta-2\"\nprovider_id = \"beta\"\nname = \"Beta Two\"\ncontext_window = 16000\ndeprecation_date = \"2026-06-01\"\n";
    write(&catalog, &edited);
    let reconciled = with_catalog(&db, &catalog).await;
    let events = events_since(&reconciled, 6, &epoch).await;
    let mut kinds: Vec<(SyncEventType, String)> = events
        .iter()
        .map(|e| {
            let id = match &e.payload {
                provider_sync_protocol::EventPayload::ModelAdded(m)
                | provider_sync_protocol::EventPayload::ModelUpdated(m)
                | provider_sync_protocol::EventPayload::ModelDeprecated(m) => m.id.clone(),
                provider_sync_protocol::EventPayload::ModelRemoved(r) => r.model_id.clone(),
                other => format!("{other:?}"),
            };
            (e.event_type(), id)
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            (SyncEventType::ModelAdded, "alpha-mini".to_owned()),
            (SyncEventType::ModelAdded, "beta-2".to_owned()),
            (SyncEventType::ModelUpdated, "alpha-large".to_owned()),
            (SyncEventType::ModelUpdated, "beta-1".to_owned()),
            (SyncEventType::ModelRemoved, "alpha-small".to_owned()),
        ]
    );
    let state = reconciled.state().await;
    assert_eq!(
        state
            .model("alpha-large")
            .unwrap()
            .pricing
            .unwrap()
            .input_per_million,
        2.0
    );
    // Its revision is the version of the event that changed it.
    let updated = events
        .iter()
        .find(|e| {
            matches!(&e.payload, provider_sync_protocol::EventPayload::ModelUpdated(m) if m.id == "alpha-large")
        })
        .unwrap();
    assert_eq!(
        state.model("alpha-large").unwrap().revision,
        updated.version
    );
    reconciled.stop().await;

    // Removing a provider from the file removes it and its models in one event.
    let without_beta: String = edited
        .split("\n[[")
        .filter(|block| !block.contains("\"beta") && !block.contains("id = \"beta\""))
        .collect::<Vec<_>>()
        .join("\n[[");
    write(&catalog, &without_beta);
    let smaller = with_catalog(&db, &catalog).await;
    let version = state.metadata.version;
    let events = events_since(&smaller, version, &epoch).await;
    assert_eq!(
        events.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        [SyncEventType::ProviderRemoved]
    );
    assert_eq!(smaller.state().await.all_models.len(), 2);
    smaller.stop().await;
}

#[tokio::test]
async fn a_bad_catalog_is_refused_with_line_and_field_and_changes_nothing() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let seeded = with_catalog(&db, &catalog).await;
    let before = seeded.state().await;
    seeded.stop().await;

    // Errors name the line of the key (a value's check named the line of
    // its table's header).
    let cases = [
        (
            CATALOG.replace("context_window = 32000", "context_window = 0"),
            28,
            "models[1].context_window",
        ),
        (
            CATALOG.replace(
                "fallback_provider_id = \"alpha\"",
                "fallback_provider_id = \"gamma\"",
            ),
            14,
            "providers[1].fallback_provider_id",
        ),
        (
            CATALOG.replace("name = \"Beta\"", "nmae = \"Beta\""),
            13,
            "providers[1].nmae: unknown field `nmae`",
        ),
        // In a nested table of a type the server also sends (it was
        // skipped: the price left out without a word).
        (
            CATALOG.replace(
                "output_per_million = 10.0 }",
                "output_per_million = 10.0, cached_input_per_milion = 1.0 }",
            ),
            22,
            "models[0].pricing.cached_input_per_milion: unknown field `cached_input_per_milion`",
        ),
        // Its line is found in its own entry (not at the first `name =`,
        // a provider's).
        (
            CATALOG.replace(
                "context_window = 8000",
                "context_window = 8000\npricing = { input_per_million = 1.0, output_per_million = 2.0, name = \"x\" }",
            ),
            35,
            "models[2].pricing.name: unknown field `name`",
        ),
        // Prices as a list of values (serde's derived reader took them in
        // the fields' order).
        (
            CATALOG.replace(
                "pricing = { input_per_million = 2.5, output_per_million = 10.0 }",
                "pricing = [2.5, 10.0]",
            ),
            22,
            "models[0].pricing: invalid type: sequence, expected an object of prices",
        ),
        (
            CATALOG.replace("sunset_date = \"2027-01-01\"", "sunset_date = \"soon\""),
            36,
            "models[2].sunset_date",
        ),
        // Retirement dates on a model the file calls active.
        (
            CATALOG.replace(
                "deprecation_date = \"2026-01-01\"",
                "deprecation_status = \"active\"\ndeprecation_date = \"2026-01-01\"",
            ),
            35,
            "models[2].deprecation_status: must not be active for a model with a deprecation_date",
        ),
        (
            CATALOG.replace("priority = 10", "priority = \"high\""),
            9,
            "providers[0].priority: invalid type",
        ),
        (
            CATALOG.replace(
                "[[models]]\nid = \"alpha-small\"",
                "[[models]]\nid = \"alpha-large\"",
            ),
            25,
            "listed twice",
        ),
        (
            CATALOG.replace(
                "active_provider_id = \"alpha\"",
                "active_provider_id = \"omega\"",
            ),
            2,
            "active_provider_id",
        ),
    ];
    for (text, line, needle) in cases {
        write(&catalog, &text);
        let mut config = config(&db);
        config.catalog = Some(catalog.clone());
        let err = provider_sync_server::start(config).await.expect_err(needle);
        let message = err.to_string();
        assert!(message.contains(needle), "{message}");
        assert!(
            message.contains(&format!("catalog.toml:{line}:")),
            "line {line}: {message}"
        );
    }
    let untouched = TestServer::start(config(&db)).await;
    let mut after = untouched.state().await;
    after.metadata.server_time = before.metadata.server_time.clone();
    assert_eq!(after, before);
    untouched.stop().await;
}

#[test]
fn the_binary_refuses_a_bad_catalog_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("bad.toml");
    write(&catalog, "[[providers]]\nid = \"x\"\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
        .arg("--catalog")
        .arg(&catalog)
        .arg("--database")
        .arg(dir.path().join("db.sqlite"))
        .arg("--bind")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml:1:") && stderr.contains("missing field `name`"),
        "{stderr}"
    );
}

#[test]
fn the_sample_catalog_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/catalog.toml");
    let catalog = provider_sync_server::Catalog::load(Path::new(path)).unwrap();
    assert!(catalog.providers.len() >= 7);
    assert!(catalog.models.len() >= 30);
    let deprecated = catalog.models.iter().filter(|m| m.is_deprecated()).count();
    assert!(deprecated >= 5, "{deprecated} deprecated models");
}

#[tokio::test]
async fn new_epoch_makes_every_client_take_a_full_state() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_ballast().await;
    first.add_provider("p").await;
    let old = first.state().await.metadata.epoch;
    first.stop().await;
    let mut restored = config(&db);
    restored.new_epoch = true;
    let second = TestServer::start(restored).await;
    let state = second.state().await;
    assert_ne!(state.metadata.epoch, old);
    assert_eq!(state.providers.len(), 2, "the data stays");
    let body = second
        .sync(json!({"client_version": 1, "client_epoch": old}))
        .await;
    assert_eq!(body["reason"], "epoch_mismatch");
    // Even a client of the new epoch cannot resume from before the rotation.
    let epoch = state.metadata.epoch.clone();
    let body = second
        .sync(json!({"client_version": 1, "client_epoch": epoch}))
        .await;
    assert_eq!(body["sync_type"], "full");
    second.stop().await;
}

#[tokio::test]
async fn awkward_prices_do_not_cause_spurious_updates_on_restart() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(
        &catalog,
        &CATALOG.replace(
            "input_per_million = 2.5",
            "input_per_million = 479.31600000000003",
        ),
    );
    let first = with_catalog(&db, &catalog).await;
    let version = first.version().await;
    first.stop().await;
    let second = with_catalog(&db, &catalog).await;
    assert_eq!(second.version().await, version);
    second.stop().await;
}

#[tokio::test]
async fn the_log_is_bounded_by_bytes_as_well_as_by_count() {
    let (_dir, db) = temp_db();
    let mut bounded = config(&db);
    bounded.event_retention_bytes = 3_000;
    let server = TestServer::start(bounded.clone()).await;
    server.add_ballast().await;
    for i in 0..20 {
        server.add_provider(&format!("p{i:02}")).await;
    }
    let epoch = server.state().await.metadata.epoch;
    // The newest events fit; the oldest do not (each is a few hundred bytes).
    let recent = server
        .sync(json!({"client_version": 19, "client_epoch": epoch}))
        .await;
    assert_eq!(recent["sync_type"], "incremental", "{recent}");
    let old = server
        .sync(json!({"client_version": 2, "client_epoch": epoch}))
        .await;
    assert_eq!(old["reason"], "too_old", "{old}");
    server.stop().await;
    // The store keeps the same bound across a restart.
    let restarted = TestServer::start(bounded).await;
    let old = restarted
        .sync(json!({"client_version": 2, "client_epoch": epoch}))
        .await;
    assert_eq!(old["reason"], "too_old", "{old}");
    let recent = restarted
        .sync(json!({"client_version": 19, "client_epoch": epoch}))
        .await;
    assert_eq!(recent["sync_type"], "incremental", "{recent}");
    restarted.stop().await;
}

#[tokio::test]
async fn what_if_match_accepts_after_a_health_change_survives_a_restart() {
    let (health_url, answer) = health_endpoint().await;
    answer.store(503, std::sync::atomic::Ordering::SeqCst);
    let (_dir, db) = temp_db();
    // The server's own prober, whose first round runs at start and on a
    // loaded machine may come after the provider exists, reads the 503 as
    // `probe_once` does (by default it refuses loopback and waits for three
    // failures: `degraded`).
    let mut settings = config(&db);
    settings.health_allow_private = true;
    settings.health_failures = 1;
    let server = TestServer::start(settings.clone()).await;
    let created = server
        .admin(reqwest::Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let read = server.state().await.provider("watched").unwrap().clone();
    probe_once(&server).await;
    let probed = server.state().await.provider("watched").unwrap().clone();
    assert_eq!(probed.status.as_str(), "unavailable");
    assert!(probed.revision > read.revision);
    server.stop().await;

    let restarted = TestServer::start(settings).await;
    let patched = restarted
        .admin(reqwest::Method::PATCH, "/providers/watched")
        .header(reqwest::header::IF_MATCH, format!("\"{}\"", read.revision))
        .json(&json!({"priority": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    restarted.stop().await;
}

/// A provider the probes found down (`--health-failures` 2 in a row) is
/// still down after a restart whose first probe fails again: the streak is
/// the stored one, not counted again from zero. It was: the first failure
/// after the restart made it `degraded` (usable, by the availability
/// endpoint) and the next `unavailable` again, two events for nothing.
#[tokio::test]
async fn a_failure_streak_survives_a_restart() {
    use provider_sync_server::health::{HealthBoard, ProbeSettings, probe_all};
    let (health_url, answer) = health_endpoint().await;
    answer.store(503, std::sync::atomic::Ordering::SeqCst);
    let (_dir, db) = temp_db();
    let settings = ProbeSettings {
        interval: std::time::Duration::from_secs(3600),
        timeout: std::time::Duration::from_secs(30),
        degraded_after: std::time::Duration::from_secs(30),
        failures: 2,
        allow_private: true,
    };
    // Each board is one process's probes.
    let client = reqwest::Client::new();
    let probe = async |server: &TestServer, board: &HealthBoard| {
        probe_all(server.server.service(), board, &client, &settings).await
    };
    let server = TestServer::start(config(&db)).await;
    server
        .admin(reqwest::Method::POST, "/providers")
        .json(&json!({"id": "down", "name": "Down", "health_url": health_url}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let board = HealthBoard::default();
    probe(&server, &board).await;
    probe(&server, &board).await;
    let state = server.state().await;
    let down = state.provider("down").unwrap();
    assert_eq!(down.status.as_str(), "unavailable");
    assert_eq!(down.health.consecutive_failures, 2);
    let version = state.metadata.version;
    server.stop().await;

    let restarted = TestServer::start(config(&db)).await;
    probe(&restarted, &HealthBoard::default()).await;
    let state = restarted.state().await;
    let down = state.provider("down").unwrap();
    assert_eq!(down.status.as_str(), "unavailable");
    assert_eq!(state.metadata.version, version, "no event");
    let availability = restarted.get("/providers/down/availability").await;
    let availability: serde_json::Value = availability.json().await.unwrap();
    assert_eq!(availability["is_available"], false, "{availability}");
    // An operator's status starts the streak again: after maintenance and
    // back to available, one failure (in a process that has not probed it
    // yet) is `degraded`, not `unavailable` from the streak of before.
    for status in ["maintenance", "available"] {
        restarted
            .admin(reqwest::Method::PUT, "/providers/down/status")
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    probe(&restarted, &HealthBoard::default()).await;
    let down = restarted.state().await.provider("down").unwrap().clone();
    assert_eq!(down.status.as_str(), "degraded");
    assert_eq!(down.health.consecutive_failures, 1);
    // Another endpoint starts it again as well.
    let (other_url, _) = health_endpoint().await;
    let patched: serde_json::Value = restarted
        .admin(reqwest::Method::PATCH, "/providers/down")
        .json(&json!({ "health_url": other_url }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["health"]["consecutive_failures"], 0, "{patched}");
    restarted.stop().await;
}
