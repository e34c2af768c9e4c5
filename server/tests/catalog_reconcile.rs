//! Reconciling the catalog file the `kubectl apply` way: what the file
//! changed since it was last applied is applied; admin-API edits of anything
//! else survive restarts; entities the file never had stay; a stale file
//! never moves the catalog backwards.

mod common;

use std::path::Path;

use common::*;
use provider_sync_protocol::{DeprecationStatus, ProviderStatus, SyncState};
use reqwest::Method;
use serde_json::json;

const CATALOG: &str = r#"
active_provider_id = "alpha"

[[providers]]
id = "alpha"
name = "Alpha"
provider_type = "openai"
priority = 10

[[providers]]
id = "beta"
name = "Beta"

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
"#;

async fn patch(server: &TestServer, path: &str, body: serde_json::Value) {
    let response = server
        .admin(Method::PATCH, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn delete(server: &TestServer, path: &str) {
    let response = server.admin(Method::DELETE, path).send().await.unwrap();
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

/// `catalog` without provider beta and its model.
fn without_beta(catalog: &str) -> String {
    catalog
        .replace("[[providers]]\nid = \"beta\"\nname = \"Beta\"\n", "")
        .replace(
            "[[models]]\nid = \"beta-1\"\nprovider_id = \"beta\"\nname = \"Beta One\"\ncontext_window = 8000\n",
            "",
        )
}

/// An admin makes `id` the active provider.
async fn make_active(server: &TestServer, id: &str) {
    let response = server
        .admin(Method::PUT, "/active-provider")
        .json(&json!({ "provider_id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// The state without the parts that move on their own.
fn content(mut state: SyncState) -> SyncState {
    state.metadata.server_time.clear();
    state
}

#[tokio::test]
async fn admin_edits_survive_a_restart_with_the_same_catalog() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    // An operator deprecates a model, changes a price, renames a provider,
    // adds a provider and a model of their own, deletes a model and picks
    // another active provider.
    let response = server
        .admin(Method::POST, "/models/alpha-small/deprecate")
        .json(&json!({"deprecation_date": "2026-12-01", "sunset_date": "2027-03-01", "replacement_model_id": "alpha-large"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    patch(
        &server,
        "/models/alpha-large",
        json!({"pricing": {"input_per_million": 3.0, "output_per_million": 10.0}}),
    )
    .await;
    patch(
        &server,
        "/providers/beta",
        json!({"display_name": "Beta (EU)"}),
    )
    .await;
    server.add_provider("gamma").await;
    server.add_model("gamma-1", "gamma").await;
    delete(&server, "/models/beta-1").await;
    let response = server
        .admin(Method::PUT, "/active-provider")
        .json(&json!({"provider_id": "gamma"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let before = server.state().await;
    server.stop().await;

    // A redeploy with the same file changes nothing and emits nothing.
    let again = with_catalog(&db, &catalog).await;
    let after = again.state().await;
    assert_eq!(content(after.clone()), content(before.clone()));
    let small = after.model("alpha-small").unwrap();
    assert_eq!(small.deprecation_status, DeprecationStatus::Deprecated);
    assert_eq!(small.sunset_date.as_deref(), Some("2027-03-01"));
    assert_eq!(
        after
            .model("alpha-large")
            .unwrap()
            .pricing
            .unwrap()
            .input_per_million,
        3.0
    );
    assert_eq!(after.provider("beta").unwrap().display_name, "Beta (EU)");
    assert!(after.provider("gamma").is_some());
    assert!(after.model("gamma-1").is_some());
    assert!(after.model("beta-1").is_none(), "deleted through the API");
    assert_eq!(after.active_provider_id.as_deref(), Some("gamma"));
    again.stop().await;

    // A file change elsewhere runs the merge: the edits still stay.
    write(
        &catalog,
        &format!(
            "revision = 2\n{}",
            CATALOG.replace("priority = 10", "priority = 12")
        ),
    );
    let merged = with_catalog(&db, &catalog).await;
    let state = merged.state().await;
    assert_eq!(state.provider("alpha").unwrap().priority, 12);
    assert_eq!(state.provider("beta").unwrap().display_name, "Beta (EU)");
    assert!(state.model("alpha-small").unwrap().is_deprecated());
    assert_eq!(
        state
            .model("alpha-large")
            .unwrap()
            .pricing
            .unwrap()
            .input_per_million,
        3.0
    );
    assert!(state.model("gamma-1").is_some());
    assert!(state.model("beta-1").is_none());
    assert_eq!(state.active_provider_id.as_deref(), Some("gamma"));
    // Only alpha changed.
    assert_eq!(state.metadata.version, before.metadata.version + 1);
    merged.stop().await;
}

#[tokio::test]
async fn what_the_file_changed_is_applied_and_the_rest_kept() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    // Admin edits: one price of alpha-large, the name of alpha-small, and
    // beta's display name.
    patch(
        &server,
        "/models/alpha-large",
        json!({"pricing": {"input_per_million": 3.0, "output_per_million": 10.0}}),
    )
    .await;
    patch(
        &server,
        "/models/alpha-small",
        json!({"name": "Alpha Small (edited)"}),
    )
    .await;
    patch(
        &server,
        "/providers/beta",
        json!({"display_name": "Beta (EU)"}),
    )
    .await;
    server.add_provider("gamma").await;
    let version = server.version().await;
    let epoch = server.state().await.metadata.epoch;
    server.stop().await;

    // The file changes alpha-large's output price (not the input price the
    // admin changed), alpha-small's name (the field the admin changed: the
    // file's new value wins), removes beta-1 and adds alpha-mini.
    let edited = CATALOG
        .replace("output_per_million = 10.0", "output_per_million = 12.0")
        .replace("name = \"Alpha Small\"", "name = \"Alpha Small 2\"")
        .replace(
            "[[models]]\nid = \"beta-1\"\nprovider_id = \"beta\"\nname = \"Beta One\"\ncontext_window = 8000\n",
            "[[models]]\nid = \"alpha-mini\"\nprovider_id = \"alpha\"\nname = \"Alpha Mini\"\ncontext_window = 16000\n",
        );
    assert_ne!(edited, CATALOG);
    write(&catalog, &edited);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    let pricing = state.model("alpha-large").unwrap().pricing.unwrap();
    assert_eq!(pricing.input_per_million, 3.0, "admin edit kept");
    assert_eq!(pricing.output_per_million, 12.0, "file change applied");
    assert_eq!(state.model("alpha-small").unwrap().name, "Alpha Small 2");
    assert_eq!(state.provider("beta").unwrap().display_name, "Beta (EU)");
    assert!(state.provider("gamma").is_some(), "created through the API");
    assert!(state.model("beta-1").is_none(), "removed from the file");
    assert!(state.model("alpha-mini").is_some());
    // Exactly: alpha-large and alpha-small updated, alpha-mini added, beta-1
    // removed.
    let body = server
        .sync(json!({"client_version": version, "client_epoch": epoch}))
        .await;
    let events = body["events"].as_array().expect("incremental");
    let mut kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "model_added",
            "model_removed",
            "model_updated",
            "model_updated"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_status_is_runtime_state_and_deleted_entities_stay_deleted() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    let response = server
        .admin(Method::PUT, "/providers/alpha/status")
        .json(&json!({"status": "maintenance", "message": "upgrade"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    delete(&server, "/providers/beta").await;
    server.stop().await;

    // An unrelated change to the file: the deleted provider stays deleted,
    // the status stays.
    write(&catalog, &CATALOG.replace("priority = 10", "priority = 11"));
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    let alpha = state.provider("alpha").unwrap();
    assert_eq!(alpha.priority, 11);
    assert_eq!(alpha.status, ProviderStatus::Maintenance);
    assert!(state.provider("beta").is_none());
    assert!(state.model("beta-1").is_none());
    server.stop().await;

    // The file changes the deleted provider: the file brings it back.
    write(
        &catalog,
        &CATALOG
            .replace("priority = 10", "priority = 11")
            .replace("name = \"Beta\"", "name = \"Beta Two\""),
    );
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert_eq!(state.provider("beta").unwrap().name, "Beta Two");
    server.stop().await;
}

#[tokio::test]
async fn the_demo_catalog_keeps_admin_writes_across_a_restart() {
    let (_dir, db) = temp_db();
    let catalog = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/catalog.toml"
    ));
    let server = with_catalog(&db, catalog).await;
    // The README's own walk-through.
    let response = server
        .admin(Method::PUT, "/providers/openai/status")
        .json(&json!({"status": "unavailable", "message": "outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .admin(Method::POST, "/models")
        .json(&json!({"id": "my-model", "name": "My Model", "provider_id": "openai", "context_window": 128000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = server
        .admin(Method::POST, "/models/my-model/deprecate")
        .json(&json!({"deprecation_date": "2026-12-01", "sunset_date": "2027-03-01", "replacement_model_id": "gpt-4.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .admin(Method::POST, "/models/gpt-4.1/deprecate")
        .json(&json!({"deprecation_date": "2026-12-02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let before = server.state().await;
    server.stop().await;

    let restarted = with_catalog(&db, catalog).await;
    let after = restarted.state().await;
    assert_eq!(after.metadata.version, before.metadata.version, "no event");
    assert_eq!(content(after.clone()), content(before));
    assert!(after.model("my-model").unwrap().is_deprecated());
    assert!(after.model("gpt-4.1").unwrap().is_deprecated());
    restarted.stop().await;
}

#[tokio::test]
async fn an_older_revision_applies_nothing() {
    let (dir, db) = temp_db();
    let new = dir.path().join("new.toml");
    let old = dir.path().join("old.toml");
    write(&old, &format!("revision = 1\n{CATALOG}"));
    write(
        &new,
        &format!(
            "revision = 2\n{}",
            CATALOG.replace("priority = 10", "priority = 20")
        ),
    );
    // Two instances with different files, restarted alternately: the newer
    // file's change is applied once, the older file never undoes it.
    let a = with_catalog(&db, &new).await;
    assert_eq!(a.state().await.provider("alpha").unwrap().priority, 20);
    let version = a.version().await;
    a.stop().await;
    for _ in 0..2 {
        let b = with_catalog(&db, &old).await;
        let state = b.state().await;
        assert_eq!(state.provider("alpha").unwrap().priority, 20);
        assert_eq!(state.metadata.version, version);
        b.stop().await;
        let a = with_catalog(&db, &new).await;
        assert_eq!(a.version().await, version);
        a.stop().await;
    }
}

#[tokio::test]
async fn a_store_from_before_the_record_adopts_the_file_without_reverting() {
    let (dir, db) = temp_db();
    // A store with a catalog but no record of an applied file, as every
    // store written by the first release is.
    let server = TestServer::start(config(&db)).await;
    server.add_provider("alpha").await;
    patch(
        &server,
        "/providers/alpha",
        json!({"display_name": "Alpha (edited)"}),
    )
    .await;
    // Named ALPHA-LARGE with a window of 8,192 (the file says otherwise).
    server.add_model("alpha-large", "alpha").await;
    server.stop().await;

    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert_eq!(
        state.provider("alpha").unwrap().display_name,
        "Alpha (edited)",
        "an existing entity keeps its value"
    );
    let large = state.model("alpha-large").unwrap();
    assert_eq!(
        (large.name.as_str(), large.context_window),
        ("ALPHA-LARGE", 8192),
        "so does an existing model"
    );
    assert!(
        state.provider("beta").is_some(),
        "missing entities are added"
    );
    assert_eq!(state.all_models.len(), 3);
    server.stop().await;

    // From now on the file's changes apply.
    write(
        &catalog,
        &CATALOG.replace(
            "name = \"Alpha\"",
            "name = \"Alpha 2\"\ndisplay_name = \"Alpha Two\"",
        ),
    );
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert_eq!(state.provider("alpha").unwrap().display_name, "Alpha Two");
    server.stop().await;
}

/// The merge breaks a rule among the limits: the file's limits win, and
/// the admin's other edits stay (the whole entry fell back to the file's,
/// the name too, before 2026-12-02).
#[tokio::test]
async fn a_merge_that_would_break_a_rule_falls_back_to_the_file() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let first = CATALOG.replace(
        "context_window = 32000",
        "context_window = 32000\nmax_input_tokens = 10000",
    );
    write(&catalog, &first);
    let server = with_catalog(&db, &catalog).await;
    // The admin raises max_input_tokens of alpha-small and renames it.
    patch(
        &server,
        "/models/alpha-small",
        json!({"max_input_tokens": 20000, "name": "Small"}),
    )
    .await;
    server.stop().await;
    // The file shrinks the context window below the admin's max_input_tokens
    // (given by the file, so not cut to the window): the merged model would
    // break the rule, so the file's limits win.
    write(
        &catalog,
        &first.replace("context_window = 32000", "context_window = 16000"),
    );
    let server = with_catalog(&db, &catalog).await;
    let small = server.state().await.model("alpha-small").unwrap().clone();
    assert_eq!(small.context_window, 16000);
    assert_eq!(small.max_input_tokens, 10000);
    assert_eq!(small.name, "Small");
    server.stop().await;
}

#[tokio::test]
async fn a_change_that_cannot_apply_now_is_tried_again_later() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    // The admin deletes beta, and with it beta-1.
    delete(&server, "/providers/beta").await;
    server.stop().await;

    // The file changes beta-1 but not beta: beta stays deleted, so beta-1's
    // change has no provider to go to and cannot apply.
    write(
        &catalog,
        &CATALOG.replace("name = \"Beta One\"", "name = \"Beta One v2\""),
    );
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.provider("beta").is_none());
    assert!(state.model("beta-1").is_none());
    // The admin brings beta back.
    server.add_provider("beta").await;
    server.stop().await;

    // The same file again: the change that could not apply is tried again.
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert_eq!(state.model("beta-1").unwrap().name, "Beta One v2");
    server.stop().await;
}

#[tokio::test]
async fn references_to_what_the_file_removes_do_not_cost_other_edits() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    patch(
        &server,
        "/models/alpha-large",
        json!({"name": "Alpha L (edited)", "replacement_model_id": "beta-1"}),
    )
    .await;
    server.stop().await;

    // The file removes beta-1 and changes alpha-large's output limit.
    let edited = CATALOG
        .replace("max_output_tokens = 8192", "max_output_tokens = 16384")
        .replace(
            "[[models]]\nid = \"beta-1\"\nprovider_id = \"beta\"\nname = \"Beta One\"\ncontext_window = 8000\n",
            "",
        );
    write(&catalog, &edited);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    let large = state.model("alpha-large").unwrap();
    assert_eq!(
        large.name, "Alpha L (edited)",
        "the admin's other edit stays"
    );
    assert_eq!(large.max_output_tokens, 16384);
    assert_eq!(large.replacement_model_id, None, "its replacement is gone");
    assert!(state.model("beta-1").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_pointer_to_a_provider_that_is_not_there_keeps_the_current_one() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    delete(&server, "/providers/beta").await;
    server.stop().await;

    // The file makes beta the active provider, but beta was deleted through
    // the API and the file did not change it: it stays deleted, and the
    // active provider stays alpha rather than becoming none.
    write(
        &catalog,
        &CATALOG.replace(
            "active_provider_id = \"alpha\"",
            "active_provider_id = \"beta\"",
        ),
    );
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.provider("beta").is_none());
    assert_eq!(state.active_provider_id.as_deref(), Some("alpha"));
    server.stop().await;
}

/// Found by a black-box check (2026-12-04): a file that changed a model's
/// replacement (a provider's fallback) to one an admin had deleted cleared
/// it, a value neither the file nor the admin gave, with an event of its
/// own. The change now waits, as one that cannot apply now does: the
/// current reference stays, nothing is emitted, and the next reconcile once
/// the target is back applies it.
#[tokio::test]
async fn a_reference_changed_to_what_an_admin_deleted_waits_with_the_current_one() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let first = CATALOG
        .replace(
            "max_output_tokens = 8192",
            "max_output_tokens = 8192\ndeprecation_date = \"2026-01-01\"\nreplacement_model_id = \"alpha-small\"",
        )
        .replace(
            "priority = 10",
            "priority = 10\nfallback_provider_id = \"beta\"",
        )
        + "\n[[providers]]\nid = \"gamma\"\nname = \"Gamma\"\n\n[[models]]\nid = \"gamma-1\"\nprovider_id = \"gamma\"\nname = \"Gamma One\"\ncontext_window = 8000\n";
    write(&catalog, &first);
    let server = with_catalog(&db, &catalog).await;
    let large = server.state().await.model("alpha-large").unwrap().clone();
    assert_eq!(large.replacement_model_id.as_deref(), Some("alpha-small"));
    delete(&server, "/providers/gamma").await;
    let before = server.version().await;
    server.stop().await;

    // The file points both references at what the admin deleted (and did
    // not change gamma or gamma-1 themselves: they stay deleted), and
    // changes another field of each.
    let pointed = first
        .replace(
            "replacement_model_id = \"alpha-small\"",
            "replacement_model_id = \"gamma-1\"",
        )
        .replace(
            "fallback_provider_id = \"beta\"",
            "fallback_provider_id = \"gamma\"",
        )
        .replace("name = \"Alpha Large\"", "name = \"Alpha Large 2\"")
        .replace("priority = 10", "priority = 11");
    write(&catalog, &pointed);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.provider("gamma").is_none());
    let large = state.model("alpha-large").unwrap();
    assert_eq!(large.replacement_model_id.as_deref(), Some("alpha-small"));
    assert_eq!(large.name, "Alpha Large 2", "the rest applies");
    let alpha = state.provider("alpha").unwrap();
    assert_eq!(alpha.fallback_provider_id.as_deref(), Some("beta"));
    assert_eq!(alpha.priority, 11);
    // One event each, for the rest; none clears a reference.
    assert_eq!(server.version().await, before + 2);
    // An admin edits the fields the file changed; the same file again
    // keeps those edits (the file's change of them was applied) and still
    // waits with the references.
    patch(&server, "/models/alpha-large", json!({"name": "Admin's"})).await;
    patch(&server, "/providers/alpha", json!({"priority": 5})).await;
    server.stop().await;
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    let large = state.model("alpha-large").unwrap();
    assert_eq!(large.name, "Admin's");
    assert_eq!(large.replacement_model_id.as_deref(), Some("alpha-small"));
    assert_eq!(state.provider("alpha").unwrap().priority, 5);
    // The admin brings them back; the same file again applies the change.
    server.add_provider("gamma").await;
    server.add_model("gamma-1", "gamma").await;
    server.stop().await;
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    let large = state.model("alpha-large").unwrap();
    assert_eq!(large.replacement_model_id.as_deref(), Some("gamma-1"));
    assert_eq!(large.name, "Admin's");
    let alpha = state.provider("alpha").unwrap();
    assert_eq!(alpha.fallback_provider_id.as_deref(), Some("gamma"));
    assert_eq!(alpha.priority, 5);
    server.stop().await;
}

/// From a review (2026-12-04): as above, where the replacement is a model
/// the file adds but cannot (its provider was deleted by an admin and the
/// file did not change it): the replacement was cleared.
#[tokio::test]
async fn a_replacement_the_file_adds_but_cannot_waits_with_the_current_one() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let first = CATALOG.replace(
        "max_output_tokens = 8192",
        "max_output_tokens = 8192\ndeprecation_date = \"2026-01-01\"\nreplacement_model_id = \"alpha-small\"",
    );
    write(&catalog, &first);
    let server = with_catalog(&db, &catalog).await;
    delete(&server, "/providers/beta").await;
    let before = server.version().await;
    server.stop().await;
    let pointed = first.replace(
        "replacement_model_id = \"alpha-small\"",
        "replacement_model_id = \"beta-2\"",
    ) + "\n[[models]]\nid = \"beta-2\"\nprovider_id = \"beta\"\nname = \"Beta Two\"\ncontext_window = 8000\n";
    write(&catalog, &pointed);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.model("beta-2").is_none());
    let large = state.model("alpha-large").unwrap();
    assert_eq!(large.replacement_model_id.as_deref(), Some("alpha-small"));
    assert_eq!(server.version().await, before);
    server.stop().await;
}

/// Found by a black-box check (2026-12-04): an admin made beta the active
/// provider; a file that removes beta, and still names alpha as it did,
/// left no active provider at all. The file's own choice now stands in.
#[tokio::test]
async fn a_file_that_removes_the_admins_active_provider_puts_its_own_back() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    write(&catalog, CATALOG);
    let server = with_catalog(&db, &catalog).await;
    make_active(&server, "beta").await;
    server.stop().await;

    let without_beta = without_beta(CATALOG);
    assert_ne!(without_beta, CATALOG);
    write(&catalog, &without_beta);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.provider("beta").is_none());
    assert_eq!(state.active_provider_id.as_deref(), Some("alpha"));
    server.stop().await;
}

/// As above, where the file also changes its own choice to a provider that
/// is not there (a review, 2026-12-04): its choice as last applied stands
/// in, not none.
#[tokio::test]
async fn a_file_that_removes_the_admins_active_provider_and_names_a_missing_one() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let first = format!("{CATALOG}\n[[providers]]\nid = \"gamma\"\nname = \"Gamma\"\n");
    write(&catalog, &first);
    let server = with_catalog(&db, &catalog).await;
    make_active(&server, "beta").await;
    // gamma goes through the API; the file does not change it, so it
    // stays deleted.
    delete(&server, "/providers/gamma").await;
    server.stop().await;
    let edited = without_beta(&first).replace(
        "active_provider_id = \"alpha\"",
        "active_provider_id = \"gamma\"",
    );
    write(&catalog, &edited);
    let server = with_catalog(&db, &catalog).await;
    let state = server.state().await;
    assert!(state.provider("beta").is_none());
    assert!(state.provider("gamma").is_none());
    assert_eq!(state.active_provider_id.as_deref(), Some("alpha"));
    server.stop().await;
}

/// A file without `revision` never undoes a numbered one (the shipped
/// sample has none), and an empty file (a save in progress, say) is
/// refused: neither touches the catalog or the admin edits.
#[tokio::test]
async fn an_unnumbered_or_empty_file_never_undoes_the_catalog() {
    let (dir, db) = temp_db();
    let numbered = dir.path().join("c.toml");
    write(
        &numbered,
        &format!(
            "revision = 5\n{}",
            CATALOG.replace("priority = 10", "priority = 20")
        ),
    );
    let server = with_catalog(&db, &numbered).await;
    patch(
        &server,
        "/models/alpha-small",
        json!({"name": "Renamed by hand"}),
    )
    .await;
    let before = content(server.state().await);
    server.stop().await;
    let plain = dir.path().join("plain.toml");
    write(&plain, CATALOG);
    let server = with_catalog(&db, &plain).await;
    assert_eq!(content(server.state().await), before);
    server.stop().await;
    let empty = dir.path().join("empty.toml");
    write(&empty, "");
    let mut refused = config(&db);
    refused.catalog = Some(empty);
    assert!(provider_sync_server::start(refused).await.is_err());
    let server = with_catalog(&db, &numbered).await;
    assert_eq!(content(server.state().await), before);
    server.stop().await;
}

/// A provider the file drops while it holds a model made through the admin
/// API stays, with that model (entities the file never had are not the
/// file's to remove); the file's own models of it go.
#[tokio::test]
async fn a_provider_holding_a_model_made_by_hand_stays_when_the_file_drops_it() {
    let (dir, db) = temp_db();
    let file = dir.path().join("c.toml");
    write(&file, &format!("revision = 1\n{CATALOG}"));
    let server = with_catalog(&db, &file).await;
    server.add_model("beta-by-hand", "beta").await;
    server.stop().await;
    let without_beta = without_beta(CATALOG);
    assert!(!without_beta.contains("beta"), "{without_beta}");
    write(&file, &format!("revision = 2\n{without_beta}"));
    let server = with_catalog(&db, &file).await;
    let state = server.state().await;
    assert!(state.provider("beta").is_some(), "the provider stays");
    assert!(
        state.model("beta-by-hand").is_some(),
        "its model made by hand stays"
    );
    assert!(state.model("beta-1").is_none(), "the file's own model goes");
    server.stop().await;
}

/// A file that adds an entity made through the admin API sets the fields
/// it gives; the others keep their values (they were wiped: the provider's
/// base URL, the model's pricing and flags set back to the defaults).
#[tokio::test]
async fn a_file_that_adds_what_the_api_made_sets_only_the_fields_it_gives() {
    let (dir, db) = temp_db();
    let file = dir.path().join("c.toml");
    write(&file, &format!("revision = 1\n{CATALOG}"));
    let server = with_catalog(&db, &file).await;
    for (path, body) in [
        (
            "/providers",
            json!({"id": "gamma", "name": "API Gamma", "base_url": "https://api.example.com/v1",
                   "priority": 7}),
        ),
        (
            "/models",
            json!({"id": "gamma-1", "provider_id": "gamma", "name": "API Gamma One",
                   "context_window": 64000, "supports_vision": true,
                   "pricing": {"input_per_million": 1.0, "output_per_million": 2.0,
                               "cached_input_per_million": 0.5}}),
        ),
    ] {
        let response = server
            .admin(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    server.stop().await;
    let added = "\n[[providers]]\nid = \"gamma\"\nname = \"File Gamma\"\n\n\
                 [[models]]\nid = \"gamma-1\"\nprovider_id = \"gamma\"\nname = \"File Gamma One\"\n\
                 context_window = 100000\nsupports_streaming = false\n\
                 pricing = { input_per_million = 3.0, output_per_million = 4.0 }\n";
    write(&file, &format!("revision = 2\n{CATALOG}{added}"));
    let server = with_catalog(&db, &file).await;
    let state = server.state().await;
    let gamma = state.provider("gamma").unwrap();
    assert_eq!(gamma.name, "File Gamma", "a field the file gives applies");
    // And what the contract derives from it.
    assert_eq!(gamma.display_name, "File Gamma");
    assert_eq!(
        gamma.base_url.as_deref(),
        Some("https://api.example.com/v1")
    );
    assert_eq!(gamma.priority, 7);
    let model = state.model("gamma-1").unwrap();
    assert_eq!(model.name, "File Gamma One");
    assert_eq!(model.context_window, 100_000);
    assert_eq!(
        (model.max_input_tokens, model.max_output_tokens),
        (100_000, 100_000)
    );
    assert!(!model.supports_streaming);
    assert!(model.supports_vision, "{model:?}");
    let pricing = model.pricing.as_ref().unwrap();
    assert_eq!(
        (pricing.input_per_million, pricing.output_per_million),
        (3.0, 4.0)
    );
    assert_eq!(
        pricing.cached_input_per_million,
        Some(0.5),
        "a member the file left empty"
    );
    server.stop().await;
}

/// A model active in the store that the merge gives the file's retirement
/// date takes the file's status with it (an active model has no dates):
/// the merge used to fail that rule, and the file's whole entry replaced
/// the admin's other edits. Both ways a model comes to be merged: one the
/// file had (an admin made it active again; the file then moves its date),
/// and one made through the API that the file then adds with only a
/// sunset date.
#[tokio::test]
async fn a_date_from_the_file_brings_its_status_and_keeps_admin_edits() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let dated = CATALOG.replace(
        "name = \"Beta One\"",
        "name = \"Beta One\"\ndeprecation_status = \"deprecated\"\ndeprecation_date = \"2026-01-01\"",
    );
    write(&catalog, &dated);
    let server = with_catalog(&db, &catalog).await;
    patch(
        &server,
        "/models/beta-1",
        json!({"deprecation_status": "active", "deprecation_date": null, "name": "Edited",
            "pricing": {"input_per_million": 3.0, "output_per_million": 4.0}}),
    )
    .await;
    // An admin's model, with a price and a flag, that the file adds later.
    let response = server
        .admin(Method::POST, "/models")
        .json(
            &json!({"id": "beta-2", "name": "Beta Two", "provider_id": "beta",
            "context_window": 8000, "supports_vision": true,
            "pricing": {"input_per_million": 1.0, "output_per_million": 2.0}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    server.stop().await;

    write(
        &catalog,
        &format!(
            "{}\n[[models]]\nid = \"beta-2\"\nprovider_id = \"beta\"\nname = \"Beta Two\"\ncontext_window = 8000\nsunset_date = \"2027-01-01\"\n",
            dated.replace("2026-01-01", "2026-02-01")
        ),
    );
    let again = with_catalog(&db, &catalog).await;
    let state = again.state().await;
    let one = state.model("beta-1").unwrap();
    assert_eq!(one.name, "Edited", "{one:?}");
    assert_eq!(one.pricing.unwrap().input_per_million, 3.0, "{one:?}");
    assert_eq!(one.deprecation_date.as_deref(), Some("2026-02-01"));
    assert_eq!(one.deprecation_status, DeprecationStatus::Deprecated);
    let two = state.model("beta-2").unwrap();
    assert!(two.supports_vision, "{two:?}");
    assert_eq!(two.pricing.unwrap().input_per_million, 1.0, "{two:?}");
    assert_eq!(two.sunset_date.as_deref(), Some("2027-01-01"));
    assert_eq!(two.deprecation_status, DeprecationStatus::Deprecated);
    again.stop().await;
}

/// `beta-1` with `retirement` in the file; an admin deletes `deleted` (if
/// any) and makes `beta-1` active, undated and renamed "Edited"; the file
/// then reads `edit(file)`. The state after that reconcile.
async fn admin_undated_then_file_edited(
    retirement: &str,
    deleted: Option<&str>,
    edit: impl FnOnce(&str) -> String,
) -> SyncState {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let dated = CATALOG.replace(
        "name = \"Beta One\"",
        &format!("name = \"Beta One\"\n{retirement}"),
    );
    write(&catalog, &dated);
    let server = with_catalog(&db, &catalog).await;
    if let Some(id) = deleted {
        let path = format!("/models/{id}");
        let response = server.admin(Method::DELETE, &path).send().await.unwrap();
        assert_eq!(response.status(), 204);
    }
    patch(
        &server,
        "/models/beta-1",
        json!({"deprecation_status": "active", "deprecation_date": null, "name": "Edited"}),
    )
    .await;
    server.stop().await;
    write(&catalog, &edit(&dated));
    let again = with_catalog(&db, &catalog).await;
    let state = again.state().await;
    again.stop().await;
    state
}

/// An admin made a dated model active with no dates; the file then adds a
/// sunset date. The retirement's fields must agree, so the file's are taken
/// together (status, both dates), as the README says; the admin's name
/// stays. (The file's status alone was taken beside the admin's cleared
/// deprecation date: a deprecated model with no deprecation date.)
#[tokio::test]
async fn a_sunset_the_file_adds_to_a_model_made_active_takes_the_files_retirement() {
    let dated = "deprecation_date = \"2026-01-01\"";
    let state = admin_undated_then_file_edited(dated, None, |file| {
        file.replace(dated, &format!("{dated}\nsunset_date = \"2027-01-01\""))
    })
    .await;
    let one = state.model("beta-1").unwrap();
    assert_eq!(one.name, "Edited", "{one:?}");
    assert_eq!(one.deprecation_status, DeprecationStatus::Deprecated);
    assert_eq!(one.deprecation_date.as_deref(), Some("2026-01-01"));
    assert_eq!(one.sunset_date.as_deref(), Some("2027-01-01"));
}

/// As above, where the file's retirement names a replacement an admin
/// deleted (review, 2026-12-03): the file's retirement but its replacement
/// is taken, and the admin's name stays (the file's whole entry replaced
/// the admin's edits, and stayed pending).
#[tokio::test]
async fn the_files_retirement_without_a_replacement_an_admin_deleted() {
    let state = admin_undated_then_file_edited(
        "deprecation_date = \"2026-01-01\"\nreplacement_model_id = \"alpha-small\"",
        Some("alpha-small"),
        |file| file.replace("2026-01-01", "2026-02-01"),
    )
    .await;
    assert!(state.model("alpha-small").is_none());
    let one = state.model("beta-1").unwrap();
    assert_eq!(one.name, "Edited", "{one:?}");
    assert_eq!(one.deprecation_status, DeprecationStatus::Deprecated);
    assert_eq!(one.deprecation_date.as_deref(), Some("2026-02-01"));
    assert_eq!(one.replacement_model_id, None, "{one:?}");
}

/// `catalog diff` reads the store the server runs on, SQLite or PostgreSQL
/// (it refused PostgreSQL), and changes nothing.
#[tokio::test]
async fn catalog_diff_plans_against_the_store_and_changes_nothing() {
    let (dir, db) = temp_db();
    let catalog = dir.path().join("catalog.toml");
    let database = config(&db).database;
    let diff = |catalog: std::path::PathBuf, database: String| async move {
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_provider-sync-server"))
                .args(["catalog", "diff"])
                .arg(&catalog)
                .args(["--database", &database])
                .output()
                .unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    };
    write(&catalog, CATALOG);
    // No store yet (a new database): everything would be added.
    let (code, out, err) = diff(catalog.clone(), database.clone()).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("a new store would be seeded"), "{out}");
    assert!(
        out.contains("Plan: 5 to add, 1 to change, 0 to remove (6 events)"),
        "{out}"
    );

    let server = with_catalog(&db, &catalog).await;
    patch(
        &server,
        "/providers/beta",
        json!({"display_name": "Beta (EU)"}),
    )
    .await;
    let before = server.state().await;
    server.stop().await;
    let (code, out, err) = diff(catalog.clone(), database.clone()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("Plan: 0 to add, 0 to change, 0 to remove (0 events); 1 admin edits kept."),
        "{out}"
    );

    write(
        &catalog,
        &CATALOG.replace("context_window = 32000", "context_window = 64000"),
    );
    let (code, out, err) = diff(catalog.clone(), database.clone()).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("~ model_updated alpha-small: context_window: 32000 -> 64000"),
        "{out}"
    );
    // Nothing was written: a server without the file finds the store as it
    // was left.
    let again = TestServer::start(config(&db)).await;
    assert_eq!(content(again.state().await), content(before));
    again.stop().await;

    if common::pg::selected() {
        // Its head row wiped alone: read as a server opening it finds it
        // (what the tables hold), not refused ("no rows returned").
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&database).await.unwrap();
        sqlx::query("DELETE FROM sync_meta")
            .execute(&mut conn)
            .await
            .unwrap();
        let (code, out, err) = diff(catalog.clone(), database.clone()).await;
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(
            out.contains("~ model_updated alpha-small: context_window: 32000 -> 64000"),
            "{out}"
        );
    }
}
