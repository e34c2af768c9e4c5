//! LiteLLM's `model_prices_and_context_window.json` as a catalog source: the
//! mapping on a trimmed copy kept in `fixtures/litellm/` (with its license),
//! then two real releases fetched from PyPI by `scripts/fetch-litellm.sh`
//! (cached between runs) imported and reconciled one into the other with
//! clients converging.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use provider_sync_protocol::{DeprecationStatus, EventPayload, SyncEvent, SyncState, apply_events};
use provider_sync_server::catalog::{LitellmFilter, LoadOptions};
use provider_sync_server::{Catalog, catalog};
use serde_json::json;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/litellm/model_prices_sample.json"
);

/// A LiteLLM release's catalog, fetched once and cached.
fn release(version: &str) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fetch-litellm.sh");
    let output = std::process::Command::new("bash")
        .arg(script)
        .arg(version)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "fetching LiteLLM {version}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A copy of `from` at `to` with the given modification time (a plain
/// LiteLLM file's revision).
fn copy_with_mtime(from: &Path, to: &Path, secs: u64) {
    std::fs::copy(from, to).unwrap();
    let file = std::fs::File::options().write(true).open(to).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn the_sample_maps_field_by_field() {
    let catalog = Catalog::load(Path::new(SAMPLE)).expect("the sample imports");
    let gpt = catalog.model("gpt-4o").expect("gpt-4o");
    assert_eq!(gpt.provider_id, "openai");
    assert_eq!(gpt.name, "gpt-4o");
    assert_eq!(gpt.context_window, 128_000);
    assert_eq!(gpt.max_input_tokens, 128_000);
    assert_eq!(gpt.max_output_tokens, 16_384);
    let pricing = gpt.pricing.expect("priced");
    assert_eq!(pricing.input_per_million, 2.5);
    assert_eq!(pricing.output_per_million, 10.0);
    assert_eq!(pricing.cached_input_per_million, Some(1.25));
    assert!(gpt.supports_vision && gpt.supports_function_calling && gpt.supports_json_mode);
    assert!(gpt.supports_streaming, "no supports_native_streaming: true");
    assert!(!gpt.supports_reasoning);
    // LiteLLM's deprecation_date is the day it stops working.
    assert_eq!(gpt.deprecation_status, DeprecationStatus::Deprecated);
    assert_eq!(gpt.sunset_date.as_deref(), Some("2027-01-14"));
    assert_eq!(gpt.deprecation_date, None);
    assert_eq!(gpt.replacement_model_id.as_deref(), Some("gpt-6-luna"));

    let claude = catalog.model("claude-sonnet-4-5-20250929").unwrap();
    assert!(claude.supports_reasoning);
    assert_eq!(claude.pricing.unwrap().cached_input_per_million, Some(0.3));
    assert_eq!(
        claude.replacement_model_id.as_deref(),
        Some("claude-sonnet-5-5")
    );

    // Odd ids are kept as LiteLLM writes them.
    let starred = catalog
        .model("bedrock/*/1-month-commitment/cohere.command-text-v14")
        .expect("an id with *");
    assert_eq!(starred.pricing, None, "no prices: none");
    assert!(
        catalog
            .model("openrouter/~anthropic/claude-opus-latest")
            .is_some()
    );
    // An output limit above the input limit is kept as given.
    let llama = catalog
        .model("bedrock/us-gov-west-1/meta.llama3-8b-instruct-v1:0")
        .unwrap();
    assert!(llama.max_output_tokens > llama.max_input_tokens);
    // DeepSeek says it does not stream natively... it says true here.
    assert!(
        catalog
            .model("deepseek/deepseek-chat")
            .unwrap()
            .supports_streaming
    );

    // One provider per litellm_provider, with a readable name.
    let ids: Vec<&str> = catalog.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "anthropic",
            "bedrock",
            "deepseek",
            "gemini",
            "openai",
            "openrouter"
        ]
    );
    assert_eq!(catalog.provider("openai").unwrap().display_name, "OpenAI");
    // The kind of API, by LiteLLM's provider family.
    for (id, kind) in [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gemini", "google"),
        ("bedrock", "bedrock"),
    ] {
        assert_eq!(catalog.provider(id).unwrap().provider_type, kind, "{id}");
    }
    assert_eq!(
        catalog.provider("bedrock").unwrap().display_name,
        "Amazon Bedrock"
    );

    // Skipped: the example entry, the model without any limit and the
    // alias (it was counted as filtered out: it has no mode); the
    // embedding model is filtered out.
    let report = &catalog.report;
    assert_eq!(report.entries, 13);
    assert_eq!(report.filtered, 1);
    let skipped: Vec<(&str, usize)> = report
        .skipped
        .iter()
        .map(|(reason, n, _)| (reason.as_str(), *n))
        .collect();
    assert_eq!(
        skipped,
        [
            ("no max_input_tokens or max_tokens", 1),
            (
                "an alias of another entry (alias_of): imported under that entry's id",
                1
            ),
            ("the format's own example (sample_spec)", 1)
        ]
    );
    assert_eq!(catalog.models.len(), 9);
}

/// Imported entries that do not pass the checks are left out with the
/// reason, and so are the models of a provider left out; the rest imports.
#[test]
fn entries_that_do_not_pass_the_checks_are_skipped_with_their_models() {
    let dir = tempfile::tempdir().unwrap();
    let chat = |provider: &str| {
        json!({"litellm_provider": provider, "mode": "chat",
               "max_input_tokens": 1000, "max_output_tokens": 100})
    };
    let load = |entries: serde_json::Value| {
        let path = dir.path().join("prices.json");
        std::fs::write(&path, entries.to_string()).unwrap();
        Catalog::load(&path).unwrap()
    };
    // A reason with its count (1) and its entry.
    let entry = |reason: &str, id: &str| (reason.to_owned(), 1, vec![id.to_owned()]);
    let ids = |catalog: &Catalog| -> (Vec<String>, Vec<String>) {
        (
            catalog.providers.iter().map(|p| p.id.clone()).collect(),
            catalog.models.iter().map(|m| m.id.clone()).collect(),
        )
    };

    // A model alone: its id has a space.
    let catalog = load(json!({"good": chat("openai"), "bad model": chat("openai")}));
    assert_eq!(ids(&catalog), (vec!["openai".into()], vec!["good".into()]));
    assert_eq!(
        catalog.report.skipped,
        [entry("model does not pass the checks: id", "bad model")]
    );

    // A provider, and with it its model (which would pass by itself).
    let catalog = load(json!({"good": chat("openai"), "fine": chat("bad provider")}));
    assert_eq!(ids(&catalog), (vec!["openai".into()], vec!["good".into()]));
    assert_eq!(
        catalog.report.skipped,
        [
            entry("provider does not pass the checks: id", "bad provider"),
            entry("model of a provider left out", "fine")
        ]
    );
}

/// What cannot be taken as LiteLLM gives it is left out of the entry,
/// which imports, and reported as an adjustment: a date that is not one,
/// a price without its other half. An entry with no prices at all is not
/// adjusted (it has none to lose).
#[test]
fn what_cannot_be_taken_is_left_out_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.json");
    let chat = |extra: serde_json::Value| {
        let mut entry =
            json!({"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 1000});
        entry
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        entry
    };
    let entries = json!({
        "bad-date": chat(json!({"deprecation_date": "2026-02-30"})),
        "good-date": chat(json!({"deprecation_date": "2026-02-28"})),
        "half-priced": chat(json!({"input_cost_per_token": 1e-06})),
        "unpriced": chat(json!({})),
        "negative-price": chat(json!({"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06})),
        "string-limits": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": "1000", "max_tokens": 0},
    });
    std::fs::write(&path, entries.to_string()).unwrap();
    let catalog = Catalog::load(&path).unwrap();
    assert_eq!(catalog.models.len(), 5);
    let bad = catalog.model("bad-date").unwrap();
    assert_eq!(
        (bad.sunset_date.as_deref(), &bad.deprecation_status),
        (None, &DeprecationStatus::Active)
    );
    let good = catalog.model("good-date").unwrap();
    assert_eq!(
        (good.sunset_date.as_deref(), &good.deprecation_status),
        (Some("2026-02-28"), &DeprecationStatus::Deprecated)
    );
    assert_eq!(catalog.model("half-priced").unwrap().pricing, None);
    assert_eq!(catalog.model("negative-price").unwrap().pricing, None);
    // Each named for what it is.
    assert_eq!(
        catalog.report.adjusted,
        [
            (
                "deprecation_date not a YYYY-MM-DD date: left out".to_owned(),
                1,
                vec!["bad-date".to_owned()]
            ),
            (
                "only one of input and output price: no pricing".to_owned(),
                1,
                vec!["half-priced".to_owned()]
            ),
            (
                "a price not a number of zero or more: no pricing".to_owned(),
                1,
                vec!["negative-price".to_owned()]
            ),
        ]
    );
    assert_eq!(
        catalog.report.skipped,
        [(
            "max_input_tokens and max_tokens not whole numbers from 1 to 4294967295".to_owned(),
            1,
            vec!["string-limits".to_owned()]
        )]
    );
}

#[test]
fn modes_and_providers_choose_what_to_import() {
    let options = LoadOptions {
        litellm: LitellmFilter {
            modes: vec!["chat".into(), "embedding".into()],
            providers: vec!["openai".into()],
        },
        ..LoadOptions::default()
    };
    let catalog = Catalog::load_with(Path::new(SAMPLE), &options).unwrap();
    let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["gpt-4o", "gpt-6-luna", "text-embedding-3-small"]);
    assert_eq!(catalog.providers.len(), 1);
    // Every entry is read; those of other modes or providers are counted
    // as left out (not as skipped).
    assert_eq!(catalog.report.entries, 13);
    assert_eq!(catalog.report.skipped_count(), 2, "{:?}", catalog.report);
    assert_eq!(catalog.report.filtered, 13 - 3 - 2);

    // One mode alone.
    let options = LoadOptions {
        litellm: LitellmFilter {
            modes: vec!["embedding".into()],
            providers: Vec::new(),
        },
        ..LoadOptions::default()
    };
    let catalog = Catalog::load_with(Path::new(SAMPLE), &options).unwrap();
    let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["text-embedding-3-small"]);
}

/// A filter value that no entry has is refused, naming it and the name
/// it resembles (a misspelt provider removed everything it was meant to
/// keep, silently).
#[test]
fn a_filter_value_that_matches_nothing_is_refused() {
    for (modes, providers, named, hint) in [
        (
            vec![],
            vec!["openai", "anthropc"],
            "'anthropc'",
            "did you mean 'anthropic'?",
        ),
        (
            vec!["chat", "chatt"],
            vec![],
            "'chatt'",
            "did you mean 'chat'?",
        ),
        (
            vec![],
            vec!["no-such-provider-at-all"],
            "'no-such-provider-at-all'",
            "refused",
        ),
    ] {
        let options = LoadOptions {
            litellm: LitellmFilter {
                modes: modes.into_iter().map(String::from).collect(),
                providers: providers.into_iter().map(String::from).collect(),
            },
            ..LoadOptions::default()
        };
        let err = Catalog::load_with(Path::new(SAMPLE), &options).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(named) && text.contains(hint), "{text}");
    }
}

#[test]
fn a_file_that_is_not_litellms_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\n  \"gpt-4o\": {\"mode\": \"chat\",}\n}\n").unwrap();
    let err = Catalog::load(&path).unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(
        err.message
            .starts_with("not JSON text, so no entry can be read"),
        "{err}"
    );
    // NaN (Python's json.dump writes it) makes the text no JSON: said so,
    // not "not LiteLLM's catalog".
    std::fs::write(&path, "{\n  \"m\": {\"input_cost_per_token\": NaN}\n}\n").unwrap();
    let err = Catalog::load(&path).unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.message.starts_with("not JSON text"), "{err}");
    // A number past a double's range is JSON (Python reads it as
    // infinity): its entry is skipped, not the file (one odd entry never
    // refuses the file; the whole release was refused).
    let entry = r#"{"mode": "chat", "litellm_provider": "openai", "max_input_tokens": 1000}"#;
    std::fs::write(
        &path,
        format!("{{\n  \"m\": {{\"input_cost_per_token\": 1e400}},\n  \"n\": {entry}\n}}\n"),
    )
    .unwrap();
    let catalog = Catalog::load(&path).unwrap();
    let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["n"]);
    assert_eq!(catalog.report.skipped_count(), 1);
    let path = dir.path().join("list.json");
    std::fs::write(&path, "[1, 2]").unwrap();
    let err = Catalog::load(&path).unwrap_err().to_string();
    assert!(err.contains("not LiteLLM's catalog"), "{err}");
    // A key given twice: its last copy is taken, as LiteLLM's loader takes
    // it, and reported (it was taken silently).
    let path = dir.path().join("twice.json");
    let entry = r#"{"mode": "chat", "litellm_provider": "openai", "max_input_tokens": 1000}"#;
    let more = r#"{"mode": "chat", "litellm_provider": "openai", "max_input_tokens": 999}"#;
    std::fs::write(
        &path,
        format!("{{\n\"a\": {entry},\n\"b\": {entry},\n\"a\": {more}\n}}\n"),
    )
    .unwrap();
    let catalog = Catalog::load(&path).unwrap();
    assert_eq!(catalog.model("a").unwrap().context_window, 999);
    assert_eq!(
        catalog.report.adjusted,
        [(
            "key given more than once: its last copy taken".to_owned(),
            1,
            vec!["a".to_owned()]
        )]
    );
}

#[test]
fn a_toml_file_can_take_litellm_as_a_base_and_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(SAMPLE, dir.path().join("litellm.json")).unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        r#"
revision = 3
active_provider_id = "openai"

[litellm]
file = "litellm.json"
providers = ["openai", "anthropic", "deepseek"]

# Overrides of imported providers: only the fields given change.
[[providers]]
id = "openai"
base_url = "https://api.openai.com/v1"
fallback_provider_id = "anthropic"
priority = 10

# A provider of the team's own.
[[providers]]
id = "internal"
name = "Internal Gateway"

[[models]]
id = "gpt-4o"
name = "GPT-4o"
# One price of a nested table: the other stays as imported.
pricing = { input_per_million = 1.25 }

[[models]]
id = "internal-chat"
name = "Internal Chat"
provider_id = "internal"
context_window = 32000
"#,
    )
    .unwrap();
    let catalog = Catalog::load(&path).unwrap();
    assert_eq!(catalog.revision, Some(3));
    assert_eq!(catalog.active_provider_id.as_deref(), Some("openai"));
    let openai = catalog.provider("openai").unwrap();
    assert_eq!(openai.display_name, "OpenAI", "kept from the import");
    assert_eq!(openai.fallback_provider_id.as_deref(), Some("anthropic"));
    assert_eq!(openai.priority, 10);
    let gpt = catalog.model("gpt-4o").unwrap();
    assert_eq!(gpt.name, "GPT-4o");
    assert_eq!(gpt.context_window, 128_000, "kept from the import");
    let imported = Catalog::load(Path::new(SAMPLE)).unwrap();
    let imported = imported.model("gpt-4o").unwrap().pricing.unwrap();
    let pricing = gpt.pricing.unwrap();
    assert_eq!(pricing.input_per_million, 1.25);
    assert_ne!(imported.input_per_million, 1.25);
    assert_eq!(
        pricing.output_per_million, imported.output_per_million,
        "kept from the import"
    );
    assert!(catalog.model("internal-chat").is_some());
    assert!(
        catalog.model("gemini/gemini-2.5-pro").is_none(),
        "not chosen"
    );
    // A date given over an active imported model, without a status: the
    // date makes it deprecated, as for the file's own entries (it was
    // refused, an active model with a date; found by a black-box check).
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "name = \"GPT-4o\"\n",
            "name = \"GPT-4o\"\nsunset_date = \"2027-05-01\"\n",
        ),
    )
    .unwrap();
    let dated = Catalog::load(&path).unwrap();
    let gpt = dated.model("gpt-4o").unwrap();
    assert_eq!(gpt.sunset_date.as_deref(), Some("2027-05-01"));
    assert_eq!(gpt.deprecation_status, DeprecationStatus::Deprecated);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(catalog.sources.len(), 2, "both files are watched");

    // A table given twice is refused with its line and field, as in a file
    // without `[litellm]`: an override of an imported entry, and an entry
    // of the team's own (the last copy won, the first dropped unsaid).
    let text = std::fs::read_to_string(&path).unwrap();
    for (table, field) in [
        (
            "[[models]]\nid = \"gpt-4o\"\nname = \"GPT-4o\"\n",
            "models[2].id",
        ),
        (
            "[[providers]]\nid = \"internal\"\nname = \"Internal Gateway\"\n",
            "providers[2].id",
        ),
    ] {
        std::fs::write(&path, format!("{text}\n{table}")).unwrap();
        let err = Catalog::load(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("is listed twice"), "{message}");
        assert!(message.contains(field), "{message}");
        // The second table's `id` line: after the file's, a blank one
        // and its header.
        assert_eq!(err.line, Some(text.matches('\n').count() + 3), "{message}");
    }

    // A typo in an override is refused with its line.
    std::fs::write(&path, text.replace("priority = 10", "priorty = 10")).unwrap();
    let err = Catalog::load(&path).unwrap_err();
    assert_eq!(err.line, Some(10), "{err}");
    assert!(err.to_string().contains("priorty"), "{err}");
    // So is one in a nested table of an override (it was skipped: the
    // price left out without a word).
    std::fs::write(
        &path,
        text.replace(
            "pricing = { input_per_million = 1.25 }",
            "pricing = { input_per_million = 1.25, cached_input_per_milion = 0.5 }",
        ),
    )
    .unwrap();
    let err = Catalog::load(&path).unwrap_err();
    assert_eq!(err.line, Some(21), "{err}"); // the entry's table
    assert!(
        err.to_string()
            .contains("pricing.cached_input_per_milion: unknown field `cached_input_per_milion`"),
        "{err}"
    );

    // Whole numbers written as floats are integers in overrides and new
    // entries too (they were refused: "expected u32").
    let floats = text
        .replace("priority = 10", "priority = 10.0")
        .replace("context_window = 32000", "context_window = 32e3");
    std::fs::write(&path, floats).unwrap();
    let catalog = Catalog::load(&path).unwrap();
    assert_eq!(catalog.provider("openai").unwrap().priority, 10);
    assert_eq!(
        catalog.model("internal-chat").unwrap().context_window,
        32_000
    );

    // An override of a model the filters leave out (gemini is not among
    // the providers chosen) says why it is taken as a new entry, rather
    // than only that a field is missing.
    let filtered =
        format!("{text}\n[[models]]\nid = \"gemini/gemini-2.5-pro\"\nname = \"Gemini\"\n");
    std::fs::write(&path, filtered).unwrap();
    let err = Catalog::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("'gemini/gemini-2.5-pro' is no entry imported from the LiteLLM file")
            && err.contains("filters leave it out")
            && err.contains("missing field `provider_id`"),
        "{err}"
    );
}

#[tokio::test]
async fn odd_ids_are_served_url_encoded() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.catalog = Some(SAMPLE.into());
    let server = TestServer::start(config).await;
    for id in [
        "bedrock/*/1-month-commitment/cohere.command-text-v14",
        "openrouter/~anthropic/claude-opus-latest",
        "bedrock/us-gov-west-1/meta.llama3-8b-instruct-v1:0",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let response = server.get(&format!("/models/{encoded}")).await;
        assert_eq!(response.status(), 200, "{id}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], id);
    }
    // The admin API takes such ids too.
    let response = server
        .admin(reqwest::Method::POST, "/models")
        .json(&json!({"id": "openrouter/~openai/gpt-*-latest", "name": "x", "provider_id": "openrouter", "context_window": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    server.stop().await;
}

#[test]
fn a_real_release_maps_well_known_models() {
    let catalog = Catalog::load(&release("1.110.2")).expect("1.110.2 imports");
    assert!(catalog.providers.len() > 90, "{}", catalog.providers.len());
    assert!(catalog.models.len() > 3_000, "{}", catalog.models.len());
    let gpt = catalog.model("gpt-4o").unwrap();
    assert_eq!(gpt.context_window, 128_000);
    assert_eq!(gpt.max_output_tokens, 16_384);
    assert_eq!(gpt.pricing.unwrap().input_per_million, 2.5);
    assert_eq!(gpt.pricing.unwrap().output_per_million, 10.0);
    assert_eq!(gpt.sunset_date.as_deref(), Some("2027-01-14"));
    let gemini = catalog.model("gemini/gemini-2.5-pro").unwrap();
    assert_eq!(gemini.context_window, 1_048_576);
    assert_eq!(
        gemini.pricing.unwrap().cached_input_per_million,
        Some(0.125)
    );
    assert!(gemini.supports_reasoning);
    let deepseek = catalog.model("deepseek/deepseek-chat").unwrap();
    assert_eq!(deepseek.pricing.unwrap().input_per_million, 0.28);
    assert_eq!(deepseek.pricing.unwrap().output_per_million, 0.42);
    assert_eq!(
        deepseek.pricing.unwrap().cached_input_per_million,
        Some(0.028)
    );
    // Every price is the per-token price moved six places, with no float
    // noise: as many significant digits as LiteLLM wrote, never more.
    let digits = |v: f64| {
        let text = format!("{v:e}");
        let mantissa = text.split('e').next().unwrap();
        mantissa.chars().filter(char::is_ascii_digit).count()
    };
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(release("1.110.2")).unwrap()).unwrap();
    let mut priced = 0;
    for model in &catalog.models {
        let Some(p) = model.pricing else { continue };
        let entry = &raw[&model.id];
        for (mapped, key) in [
            (p.input_per_million, "input_cost_per_token"),
            (p.output_per_million, "output_cost_per_token"),
        ] {
            let per_token = entry[key].as_f64().unwrap();
            assert!(
                (mapped / 1e6 - per_token).abs() <= per_token * 1e-12,
                "{}",
                model.id
            );
            assert!(
                digits(mapped) <= digits(per_token),
                "{}: {mapped} from {per_token}",
                model.id
            );
            priced += 1;
        }
    }
    assert!(priced > 5_000, "{priced}");
    // Nothing in 1.110.2 is refused for an odd id.
    assert!(
        catalog
            .report
            .skipped
            .iter()
            .all(|(reason, ..)| !reason.contains("checks")),
        "{:?}",
        catalog.report.skipped
    );
}

/// A client that follows `/sync` from its version.
async fn sync_client(server: &TestServer, state: &mut SyncState) -> &'static str {
    let body = server
        .sync(
            json!({"client_version": state.metadata.version, "client_epoch": state.metadata.epoch}),
        )
        .await;
    match body["sync_type"].as_str().unwrap() {
        "none" => "none",
        "incremental" => {
            let events: Vec<SyncEvent> = serde_json::from_value(body["events"].clone()).unwrap();
            apply_events(state, &events).expect("the events apply");
            "incremental"
        }
        _ => {
            *state = serde_json::from_value(body["state"].clone()).unwrap();
            "full"
        }
    }
}

#[tokio::test]
async fn one_release_reconciles_into_the_next_and_clients_converge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let path = dir.path().join("model_prices_and_context_window.json");
    copy_with_mtime(&release("1.105.0"), &path, 1_700_000_000);
    let mut config = config(&db);
    config.catalog = Some(path.clone());
    config.event_retention = 20_000;
    config.ws_queue = 16;
    let server = TestServer::start(config).await;
    let before = server.state().await;
    assert!(before.all_models.len() > 3_000);

    // An operator's edit the new release does not touch stays.
    let kept = "zai/glm-4.5";
    assert!(before.model(kept).is_some());
    let response = server
        .admin(
            reqwest::Method::PATCH,
            &format!("/models/{}", "zai%2Fglm-4.5"),
        )
        .json(&json!({"name": "GLM 4.5 (house default)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut follower = server.state().await;
    let mut ws = server
        .connect(&format!(
            "?since={}&epoch={}",
            follower.metadata.version, follower.metadata.epoch
        ))
        .await;
    let hello = next_event(&mut ws).await;
    assert!(matches!(hello.payload, EventPayload::Hello(_)), "{hello:?}");

    copy_with_mtime(&release("1.110.2"), &path, 1_800_000_000);
    let started = std::time::Instant::now();
    catalog::watch::reload(
        server.server.service(),
        &path,
        &LoadOptions::default(),
        "test",
    )
    .await;
    let took = started.elapsed();
    let after = server.state().await;
    let events = after.metadata.version - follower.metadata.version;
    eprintln!(
        "reconcile 1.105.0 -> 1.110.2: {events} events in {} ms",
        took.as_millis()
    );
    assert!(events > 1_000, "{events} events");
    assert_eq!(
        after.model(kept).unwrap().name,
        "GLM 4.5 (house default)",
        "the admin edit survives the reconcile"
    );

    // A polling client catches up incrementally (the log holds it all).
    let mut poller = follower.clone();
    assert_eq!(sync_client(&server, &mut poller).await, "incremental");
    assert_eq!(poller.metadata.checksum, after.metadata.checksum);
    assert_eq!(poller.all_models, after.all_models);

    // The WebSocket client, with a small queue, either follows every event
    // or is told to resync; either way it ends at the server's checksum.
    loop {
        let event = next_non_heartbeat(&mut ws).await;
        match &event.payload {
            EventPayload::ResyncRequired(_) => {
                sync_client(&server, &mut follower).await;
                break;
            }
            _ => {
                apply_events(&mut follower, std::slice::from_ref(&event)).expect("in order");
                if follower.metadata.version == after.metadata.version {
                    break;
                }
            }
        }
    }
    assert_eq!(follower.metadata.checksum, after.metadata.checksum);

    // Reloading the same file again emits nothing.
    catalog::watch::reload(
        server.server.service(),
        &path,
        &LoadOptions::default(),
        "test",
    )
    .await;
    assert_eq!(server.version().await, after.metadata.version);
    server.stop().await;
}

#[tokio::test]
async fn moving_from_a_plain_litellm_file_to_a_toml_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let start = |catalog: PathBuf| {
        let mut cfg = config(&db);
        cfg.catalog = Some(catalog);
        TestServer::start(cfg)
    };
    copy_with_mtime(Path::new(SAMPLE), &json, 1_800_000_000);
    let server = start(json.clone()).await;
    let version = server.version().await;
    server.stop().await;

    // A revision is never compared with a modification time.
    let toml = dir.path().join("catalog.toml");
    std::fs::write(
        &toml,
        "revision = 7\n[litellm]\nfile = \"litellm.json\"\n[[models]]\nid = \"gpt-4o\"\nname = \"GPT-4o\"\n",
    )
    .unwrap();
    let server = start(toml).await;
    assert_eq!(server.version().await, version + 1);
    assert_eq!(server.state().await.model("gpt-4o").unwrap().name, "GPT-4o");
    server.stop().await;

    // Back to the plain file: it applies (the name it gives comes back).
    let server = start(json.clone()).await;
    assert_eq!(server.version().await, version + 2);
    assert_eq!(server.state().await.model("gpt-4o").unwrap().name, "gpt-4o");
    server.stop().await;

    // A plain file dated before the one applied applies nothing.
    let older = std::fs::read_to_string(SAMPLE).unwrap().replace(
        "\"max_output_tokens\": 16384",
        "\"max_output_tokens\": 9999",
    );
    assert!(older.contains("9999"));
    std::fs::write(&json, older).unwrap();
    let file = std::fs::File::options().write(true).open(&json).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    let server = start(json).await;
    assert_eq!(
        server.version().await,
        version + 2,
        "older than the applied file"
    );
    server.stop().await;
}

/// From a TOML file without a revision that names a LiteLLM file back to a
/// plain LiteLLM file dated before it: another kind of file, which applies
/// (it was taken for an older plain file and refused).
#[tokio::test]
async fn from_an_unnumbered_toml_file_back_to_a_plain_litellm_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let older = dir.path().join("older.json");
    let toml = dir.path().join("catalog.toml");
    let start = |catalog: PathBuf| {
        let mut cfg = config(&db);
        cfg.catalog = Some(catalog);
        TestServer::start(cfg)
    };
    copy_with_mtime(Path::new(SAMPLE), &json, 1_800_000_000);
    std::fs::write(
        &toml,
        "[litellm]\nfile = \"litellm.json\"\n[[models]]\nid = \"gpt-4o\"\nname = \"GPT-4o\"\n",
    )
    .unwrap();
    let server = start(toml).await;
    assert_eq!(server.state().await.model("gpt-4o").unwrap().name, "GPT-4o");
    server.stop().await;
    copy_with_mtime(Path::new(SAMPLE), &older, 1_700_000_000);
    let server = start(older).await;
    assert_eq!(server.state().await.model("gpt-4o").unwrap().name, "gpt-4o");
    server.stop().await;
}

/// A TOML file whose revision stays while the LiteLLM file it names is
/// replaced by an older one applies nothing (it applied, undoing LiteLLM's
/// newer values); a raised revision applies whatever file it names.
#[tokio::test]
async fn an_older_litellm_file_under_the_same_toml_revision_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let toml = dir.path().join("catalog.toml");
    let start = || {
        let mut cfg = config(&db);
        cfg.catalog = Some(toml.clone());
        TestServer::start(cfg)
    };
    let combined = |revision: u32| {
        std::fs::write(
            &toml,
            format!("revision = {revision}\n[litellm]\nfile = \"litellm.json\"\n"),
        )
        .unwrap();
    };
    copy_with_mtime(Path::new(SAMPLE), &json, 1_800_000_000);
    combined(3);
    let server = start().await;
    let version = server.version().await;
    let output = |state: &SyncState| state.model("gpt-4o").unwrap().max_output_tokens;
    assert_eq!(output(&server.state().await), 16_384);
    server.stop().await;

    let older = std::fs::read_to_string(SAMPLE).unwrap().replace(
        "\"max_output_tokens\": 16384",
        "\"max_output_tokens\": 9999",
    );
    assert!(older.contains("9999"));
    std::fs::write(&json, older).unwrap();
    let file = std::fs::File::options().write(true).open(&json).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    let server = start().await;
    assert_eq!(
        server.version().await,
        version,
        "older than the applied file"
    );
    assert_eq!(output(&server.state().await), 16_384);
    server.stop().await;

    // The operator raises the revision: the older file is what they want.
    combined(4);
    let server = start().await;
    assert_eq!(output(&server.state().await), 9999);
    server.stop().await;
}

/// A store and a plain LiteLLM file of one model, `m`, written anew (each
/// time with a later modification time, so it applies) by the tests of
/// admin edits against the file's changes.
struct OneModel {
    _dir: tempfile::TempDir,
    db: PathBuf,
    json: PathBuf,
    secs: u64,
}

impl OneModel {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: dir.path().join("sync.db"),
            json: dir.path().join("litellm.json"),
            _dir: dir,
            secs: 1_800_000_000,
        }
    }

    /// `m` with a context window of `window` and, unless empty, a
    /// deprecation date.
    fn write(&mut self, window: u32, date: &str) {
        let date = if date.is_empty() {
            String::new()
        } else {
            format!(r#", "deprecation_date": "{date}""#)
        };
        std::fs::write(
            &self.json,
            format!(
                r#"{{"m": {{"litellm_provider": "openai", "mode": "chat", "max_tokens": {window}, "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06{date}}}}}"#
            ),
        )
        .unwrap();
        self.secs += 100;
        let handle = std::fs::File::options()
            .write(true)
            .open(&self.json)
            .unwrap();
        handle
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(self.secs))
            .unwrap();
    }

    async fn start(&self) -> TestServer {
        let mut cfg = config(&self.db);
        cfg.catalog = Some(self.json.clone());
        TestServer::start(cfg).await
    }
}

/// An admin write's status.
async fn admin(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> u16 {
    let request = server.admin(method, path);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap().status().as_u16()
}

/// An admin's edit of `m`, then its deprecation from 2027-01-01.
async fn edit_and_deprecate(server: &TestServer, edit: serde_json::Value) {
    assert_eq!(
        admin(server, reqwest::Method::PATCH, "/models/m", Some(edit)).await,
        200
    );
    let date = json!({"deprecation_date": "2027-01-01"});
    assert_eq!(
        admin(
            server,
            reqwest::Method::POST,
            "/models/m/deprecate",
            Some(date)
        )
        .await,
        200
    );
}

/// Found by a black-box check (2026-12-02): an admin renamed, priced and
/// deprecated a model of a LiteLLM file; the file then dated it as well,
/// and later dropped the date (upstream made it active again). The merge
/// (the admin's date, the file's status) broke the rule that an active
/// model has no dates, and the file's whole entry replaced the admin's:
/// the name and the price went back too, with a warning that did not say
/// so. The file's retirement fields win, alone.
#[tokio::test]
async fn a_conflict_in_the_retirement_fields_keeps_the_admins_other_edits() {
    let mut file = OneModel::new();
    file.write(8000, "");
    let server = file.start().await;
    let edit = json!({"name": "Team name", "pricing": {"input_per_million": 9.0, "output_per_million": 9.0}});
    edit_and_deprecate(&server, edit).await;
    server.stop().await;
    file.write(8000, "2027-06-01");
    let server = file.start().await;
    assert_eq!(server.state().await.model("m").unwrap().name, "Team name");
    server.stop().await;
    file.write(8000, "");
    let server = file.start().await;
    let m = server.state().await.model("m").unwrap().clone();
    assert_eq!(m.name, "Team name", "{m:?}");
    assert_eq!(m.pricing.unwrap().input_per_million, 9.0, "{m:?}");
    assert_eq!(m.deprecation_status, DeprecationStatus::Active, "{m:?}");
    assert_eq!(m.deprecation_date, None, "{m:?}");
    server.stop().await;
}

/// Found by a black-box check (2026-12-02): an admin's input limit that a
/// shrinking window cut was taken, once the window grew again, for one that
/// follows the window (both equal the window by then): the admin's 6,000
/// became the window's 8,000, with no warning. The cut is remembered in the
/// record: the limit comes back up to the admin's value, and an admin's
/// later edit of it stands.
#[tokio::test]
async fn an_admin_input_limit_cut_by_a_smaller_window_comes_back_when_it_grows() {
    let mut file = OneModel::new();
    let limit = |input: u32| Some(json!({ "max_input_tokens": input }));
    file.write(8000, "");
    let server = file.start().await;
    assert_eq!(
        admin(&server, reqwest::Method::PATCH, "/models/m", limit(6000)).await,
        200
    );
    server.stop().await;
    let mut steps = Vec::new();
    for window in [4000, 8000, 5000, 10000] {
        file.write(window, "");
        let server = file.start().await;
        steps.push(window_and_input(&server).await);
        server.stop().await;
    }
    assert_eq!(
        steps,
        [(4000, 4000), (8000, 6000), (5000, 5000), (10000, 6000)]
    );
    // Cut again, then the admin renames the model and changes its price:
    // writes that neither change nor name its limits carry the cut, and
    // the 6,000 comes back when the window grows (until 2026-12-04 any
    // write to the model ended the cut).
    file.write(3000, "");
    let server = file.start().await;
    assert_eq!(window_and_input(&server).await, (3000, 3000));
    let rename = json!({"name": "Team name"});
    assert_eq!(
        admin(&server, reqwest::Method::PATCH, "/models/m", Some(rename)).await,
        200
    );
    let price = json!({"pricing": {"input_per_million": 3.0, "output_per_million": 4.0}});
    assert_eq!(
        admin(&server, reqwest::Method::PATCH, "/models/m", Some(price)).await,
        200
    );
    server.stop().await;
    file.write(9000, "");
    let server = file.start().await;
    assert_eq!(window_and_input(&server).await, (9000, 6000));
    assert_eq!(server.state().await.model("m").unwrap().name, "Team name");
    server.stop().await;
    // Cut again, then the admin edits the model, setting the limit it was
    // cut to (a form that sends every field): the 6,000 no longer comes
    // back over that write (from the review). A write that changes nothing
    // is none: the limit is still the cut one.
    file.write(3000, "");
    let server = file.start().await;
    assert_eq!(window_and_input(&server).await, (3000, 3000));
    let edit = json!({"max_input_tokens": 3000, "name": "renamed"});
    assert_eq!(
        admin(&server, reqwest::Method::PATCH, "/models/m", Some(edit)).await,
        200
    );
    server.stop().await;
    file.write(9000, "");
    let server = file.start().await;
    // Not the 6,000; the admin's 3,000 equals the window it was set
    // under, which the README's rule takes for a limit that follows it.
    assert_eq!(window_and_input(&server).await, (9000, 9000));
    // Cut once more, then deleted and made again through the API: the new
    // model's limit is its own, not the deleted one's.
    assert_eq!(
        admin(&server, reqwest::Method::PATCH, "/models/m", limit(7000)).await,
        200
    );
    server.stop().await;
    file.write(3000, "");
    let server = file.start().await;
    assert_eq!(window_and_input(&server).await, (3000, 3000));
    assert_eq!(
        admin(&server, reqwest::Method::DELETE, "/models/m", None).await,
        204
    );
    let made = json!({"id": "m", "name": "m", "provider_id": "openai", "context_window": 3000});
    assert_eq!(
        admin(&server, reqwest::Method::POST, "/models", Some(made)).await,
        201
    );
    server.stop().await;
    file.write(9000, "");
    let server = file.start().await;
    let (_, input) = window_and_input(&server).await;
    assert_ne!(input, 7000, "the deleted model's limit");
    server.stop().await;
}

/// From the review of the above: a retirement conflict (the file's
/// retirement fields taken, the merge's limits kept) kept the cut limit
/// but forgot it was the admin's; the window's growth then replaced it.
#[tokio::test]
async fn a_cut_limit_is_remembered_through_a_retirement_conflict() {
    let mut file = OneModel::new();
    file.write(8000, "");
    let server = file.start().await;
    let edit = json!({"name": "Team name", "max_input_tokens": 6000});
    edit_and_deprecate(&server, edit).await;
    server.stop().await;
    let mut steps = Vec::new();
    for (window, date) in [(4000, "2027-06-01"), (5000, ""), (10000, "")] {
        file.write(window, date);
        let server = file.start().await;
        let m = server.state().await.model("m").unwrap().clone();
        steps.push((m.context_window, m.max_input_tokens, m.name));
        server.stop().await;
    }
    assert_eq!(
        steps,
        [
            (4000, 4000, "Team name".to_owned()),
            (5000, 5000, "Team name".to_owned()),
            (10000, 6000, "Team name".to_owned()),
        ]
    );
}

/// Model `m`'s context window and input limit.
async fn window_and_input(server: &TestServer) -> (u32, u32) {
    let m = server.state().await.model("m").unwrap().clone();
    (m.context_window, m.max_input_tokens)
}

/// Found by a black-box check (2026-12-05): a value the import cannot take
/// in a model the store already has. A price past what the checks allow
/// (the entry skipped) removed the model for every client, as if the file
/// had dropped it; an unreadable price (the entry imported without
/// pricing) cleared its prices. Both now keep the store's values: the
/// skipped model stays as it is (pending) and the unreadable field keeps
/// the store's value, while the rest of the file's changes apply; a file
/// that can be read again applies as usual.
#[tokio::test]
async fn a_value_the_import_cannot_take_keeps_what_the_store_has() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let start = || {
        let mut cfg = config(&db);
        cfg.catalog = Some(json.clone());
        TestServer::start(cfg)
    };
    let sample: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SAMPLE).unwrap()).unwrap();
    let write_at = |value: &serde_json::Value, secs: u64| {
        std::fs::write(&json, serde_json::to_string(value).unwrap()).unwrap();
        let file = std::fs::File::options().write(true).open(&json).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    let claude = "claude-sonnet-4-5-20250929";
    write_at(&sample, 1_800_000_000);
    let server = start().await;
    let before = server.state().await;
    let gpt = before.model("gpt-4o").unwrap().clone();
    let sonnet = before.model(claude).unwrap().clone();
    assert!(gpt.pricing.is_some() && sonnet.pricing.is_some());
    let version = server.version().await;
    server.stop().await;

    let mut bad = sample.clone();
    bad["gpt-4o"]["input_cost_per_token"] = json!(-1);
    bad["gpt-4o"]["max_output_tokens"] = json!(8000);
    bad[claude]["input_cost_per_token"] = json!(1e305);
    write_at(&bad, 1_800_000_100);
    let server = start().await;
    let state = server.state().await;
    let sonnet_now = state.model(claude).expect("the skipped model stays");
    assert_eq!(sonnet_now, &sonnet);
    let gpt_now = state.model("gpt-4o").unwrap();
    assert_eq!(gpt_now.pricing, gpt.pricing, "the unreadable price kept");
    assert_eq!(gpt_now.max_output_tokens, 8000, "the rest applies");
    assert_eq!(server.version().await, version + 1);
    server.stop().await;

    // Readable again, with a new price for the model that was skipped.
    let mut fixed = bad.clone();
    fixed["gpt-4o"]["input_cost_per_token"] = json!(3e-06);
    fixed[claude]["input_cost_per_token"] = json!(4e-06);
    write_at(&fixed, 1_800_000_200);
    let server = start().await;
    let state = server.state().await;
    let price = |id: &str| {
        state
            .model(id)
            .unwrap()
            .pricing
            .as_ref()
            .unwrap()
            .input_per_million
    };
    assert_eq!((price("gpt-4o"), price(claude)), (3.0, 4.0));
    server.stop().await;
}

/// From a review (2026-12-05), four ways a file with values the import
/// cannot read lost or reverted what it should have kept:
/// - a provider named only by entries that cannot be read was taken as
///   removed, with its models;
/// - an unreadable capability kept its live value, but the record took the
///   file's placeholder (`false`): the file's readable `false` later never
///   applied;
/// - a readable limit held back with an unreadable sibling was recorded as
///   applied, and never applied;
/// - an admin's deletion of an entry the file could not read was undone by
///   the next file that could;
/// - a replacement (`successor_model`) whose entry could not be read, or
///   did not pass the checks, was cleared.
#[tokio::test]
async fn what_a_file_cannot_read_is_neither_lost_nor_recorded_as_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let start = || {
        let mut cfg = config(&db);
        cfg.catalog = Some(json.clone());
        TestServer::start(cfg)
    };
    let write_at = |value: &serde_json::Value, secs: u64| {
        std::fs::write(&json, serde_json::to_string(value).unwrap()).unwrap();
        let file = std::fs::File::options().write(true).open(&json).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    let chat = |provider: &str, extra: serde_json::Value| {
        let mut entry = json!({"litellm_provider": provider, "mode": "chat"});
        entry
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        entry
    };
    let readable = |vision: bool, output: u32| {
        json!({
            "a1": chat("openai", json!({"max_input_tokens": 1000, "max_tokens": 1000,
                "max_output_tokens": output, "supports_vision": vision})),
            "b1": chat("mistral", json!({"max_tokens": 500})),
            "c1": chat("openai", json!({"max_tokens": 800})),
            "d1": chat("openai", json!({"max_tokens": 900, "deprecation_date": "2027-01-01",
                "successor_model": "b1"})),
            "e1": chat("openai", json!({"max_tokens": 900, "deprecation_date": "2027-01-01",
                "successor_model": "f1"})),
            "f1": chat("openai", json!({"max_tokens": 900, "input_cost_per_token": 1e-06,
                "output_cost_per_token": 2e-06})),
        })
    };
    write_at(&readable(true, 100), 1_800_000_000);
    let server = start().await;
    assert_eq!(
        admin(&server, reqwest::Method::DELETE, "/models/c1", None).await,
        204
    );
    let before = server.state().await;
    server.stop().await;

    // `a1`'s capability and input limit cannot be read, and its output
    // limit changes; `b1` (all `mistral` has) and `c1` cannot be read.
    let unreadable = json!({
        "a1": chat("openai", json!({"max_input_tokens": "lots", "max_tokens": 1000,
            "max_output_tokens": 200, "supports_vision": "yes"})),
        "b1": chat("mistral", json!({"max_tokens": "x"})),
        "c1": chat("openai", json!({"max_tokens": "x"})),
        "d1": chat("openai", json!({"max_tokens": 900, "deprecation_date": "2027-01-01",
            "successor_model": "b1"})),
        // A price past what the checks allow: skipped after the mapping.
        "e1": chat("openai", json!({"max_tokens": 900, "deprecation_date": "2027-01-01",
            "successor_model": "f1"})),
        "f1": chat("openai", json!({"max_tokens": 900, "input_cost_per_token": 1e305,
            "output_cost_per_token": 2e-06})),
    });
    write_at(&unreadable, 1_800_000_100);
    let server = start().await;
    let state = server.state().await;
    assert!(state.provider("mistral").is_some(), "the provider stays");
    assert_eq!(state.model("b1"), before.model("b1"), "its model stays");
    let a1 = state.model("a1").unwrap();
    assert!(a1.supports_vision, "the unreadable capability kept");
    assert_eq!(a1.max_output_tokens, 100, "held with the unreadable limit");
    assert!(state.model("c1").is_none());
    assert_eq!(
        state.model("d1").unwrap().replacement_model_id.as_deref(),
        Some("b1"),
        "a replacement the file cannot read is not cleared"
    );
    assert_eq!(state.model("f1"), before.model("f1"));
    assert_eq!(
        state.model("e1").unwrap().replacement_model_id.as_deref(),
        Some("f1"),
        "nor one that does not pass the checks"
    );
    server.stop().await;

    // Readable again: no vision, the output limit raised, `c1` as it was.
    write_at(&readable(false, 200), 1_800_000_200);
    let server = start().await;
    let state = server.state().await;
    let a1 = state.model("a1").unwrap();
    assert!(!a1.supports_vision, "the file's readable false applies");
    assert_eq!(a1.max_output_tokens, 200, "the held limit applies");
    assert!(state.model("c1").is_none(), "the admin's deletion stands");
    assert!(state.model("b1").is_some());
    server.stop().await;
}
