//! The catalog loader on TOML text (`Catalog::parse_with`, which the file
//! loader uses), with a small in-memory LiteLLM catalog as the base that a
//! `[litellm]` table names. A file is refused with a line inside the text,
//! or read into a catalog that is sorted, refers only to what it holds,
//! survives the store's JSON record, and reconciles into an empty store's
//! state as itself; applying it a second time changes nothing.

use std::path::Path;
use std::sync::Arc;

use provider_sync_protocol::{SyncState, state_checksum};
use provider_sync_server::Catalog;
use provider_sync_server::catalog::{LoadOptions, Outcome};
use provider_sync_server::service::Draft;

/// LiteLLM's format, a few entries (one skipped, one not chat).
const LITELLM: &str = r#"{
  "sample_spec": {"litellm_provider": "x", "mode": "chat"},
  "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000,
             "max_output_tokens": 16384, "input_cost_per_token": 2.5e-06,
             "output_cost_per_token": 1e-05, "supports_vision": true,
             "supports_function_calling": true, "successor_model": "gpt-5"},
  "gpt-5": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 400000,
            "cache_read_input_token_cost": 1.25e-07, "supports_reasoning": true},
  "claude-3-haiku": {"litellm_provider": "anthropic", "mode": "chat", "max_input_tokens": 200000,
                     "deprecation_date": "2026-03-01"},
  "text-embedding-3": {"litellm_provider": "openai", "mode": "embedding", "max_input_tokens": 8191}
}"#;

pub fn check(data: &[u8]) {
    // The loader reads the file as UTF-8 text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = |_: &Path| Ok(LITELLM.to_owned());
    let catalog = match Catalog::parse_with(
        Path::new("catalog.toml"),
        text,
        &LoadOptions::default(),
        read,
    ) {
        Ok(catalog) => catalog,
        Err(error) => {
            let lines = text.matches('\n').count() + 1;
            assert!(
                error.line.is_none_or(|line| (1..=lines).contains(&line)),
                "{error}"
            );
            let _ = error.to_string();
            return;
        }
    };
    assert!(catalog.providers.is_sorted_by(|a, b| a.id < b.id));
    assert!(catalog.models.is_sorted_by(|a, b| a.id < b.id));
    for model in &catalog.models {
        assert!(
            catalog.provider(&model.provider_id).is_some(),
            "{}",
            model.id
        );
        if let Some(replacement) = &model.replacement_model_id {
            assert!(catalog.model(replacement).is_some(), "{}", model.id);
        }
    }
    for pointer in [&catalog.active_provider_id, &catalog.default_provider_id] {
        assert!(
            pointer
                .as_ref()
                .is_none_or(|id| catalog.provider(id).is_some())
        );
    }

    // The store keeps the applied catalog as JSON, and reads it back.
    let record = serde_json::to_string(&catalog).expect("a catalog serialises");
    let stored: Catalog = serde_json::from_str(&record).expect("the record reads back");
    assert!(stored.same_content(&catalog), "{record}");

    // Into an empty store: the state then holds what the file says.
    let mut empty = SyncState::default();
    empty.metadata.epoch = "fuzz-epoch".into();
    empty.refresh_metadata();
    let mut draft = Draft::scratch(empty, None);
    let first = catalog.reconcile(&mut draft);
    let state = draft.state().clone();
    assert_eq!(state.metadata.version, first.events as u64);
    assert_eq!(state.metadata.checksum, state_checksum(&state).to_hex());
    let ids = |ids: Vec<&String>| ids.into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        ids(state.providers.iter().map(|p| &p.id).collect()),
        ids(catalog.providers.iter().map(|p| &p.id).collect())
    );
    assert_eq!(
        ids(state.all_models.iter().map(|m| &m.id).collect()),
        ids(catalog.models.iter().map(|m| &m.id).collect())
    );
    for pointer in [
        (&catalog.active_provider_id, &state.active_provider_id),
        (&catalog.default_provider_id, &state.default_provider_id),
    ] {
        if pointer.0.is_some() {
            assert_eq!(pointer.0, pointer.1);
        }
    }

    // The same file again, over what it made: nothing to do, whether the
    // store recorded it as applied or adopts it.
    let mut again = Draft::scratch(state.clone(), Some(Arc::new(stored)));
    assert_eq!(catalog.reconcile(&mut again).outcome, Outcome::Unchanged);
    assert!(again.is_empty());
    let mut adopt = Draft::scratch(state, None);
    catalog.reconcile(&mut adopt);
    assert!(adopt.is_empty(), "{:?}", adopt.events());
}
