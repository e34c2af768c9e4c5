//! Applying an event to a large state (50 providers × 2,000 models), and
//! the checksum from scratch, for comparison with the incremental one.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use provider_sync_protocol::*;

fn provider(i: usize) -> ProviderSyncInfo {
    ProviderSyncInfo {
        id: format!("provider-{i:03}"),
        name: format!("provider-{i:03}"),
        display_name: format!("Provider {i}"),
        provider_type: "openai_compatible".into(),
        base_url: Some(format!("https://api.provider-{i:03}.example/v1")),
        health_url: None,
        enabled: true,
        priority: i as i32,
        status: ProviderStatus::Available,
        health: ProviderHealth::default(),
        fallback_provider_id: None,
        capabilities: vec!["chat".into(), "streaming".into()],
        model_ids: vec![],
        revision: 1,
    }
}

fn model(i: usize, providers: usize) -> ModelSpecification {
    ModelSpecification {
        id: format!("model-{i:05}"),
        name: format!("Model {i} Large"),
        provider_id: format!("provider-{:03}", i % providers),
        context_window: 128_000,
        max_input_tokens: 128_000,
        max_output_tokens: 8192,
        supports_streaming: true,
        supports_vision: i.is_multiple_of(2),
        supports_function_calling: true,
        supports_json_mode: i.is_multiple_of(3),
        supports_reasoning: false,
        pricing: Some(ModelPricing {
            input_per_million: 1.25,
            output_per_million: 10.0,
            cached_input_per_million: None,
        }),
        deprecation_status: DeprecationStatus::Active,
        deprecation_date: None,
        sunset_date: None,
        replacement_model_id: None,
        revision: 1,
    }
}

fn event(version: u64, payload: EventPayload) -> SyncEvent {
    SyncEvent {
        id: format!("e:{version}"),
        version,
        timestamp: "2026-11-25T00:00:00Z".into(),
        payload,
    }
}

fn large_state(providers: usize, models: usize) -> SyncState {
    let mut state = SyncState::default();
    state.metadata.epoch = "bench".into();
    state.refresh_metadata();
    let mut version = 0;
    for p in 0..providers {
        version += 1;
        apply_event(
            &mut state,
            &event(version, EventPayload::ProviderAdded(provider(p))),
        )
        .unwrap();
    }
    for m in 0..models {
        version += 1;
        apply_event(
            &mut state,
            &event(version, EventPayload::ModelAdded(model(m, providers))),
        )
        .unwrap();
    }
    state
}

fn bench(c: &mut Criterion) {
    let state = large_state(50, 2000);
    let next = state.metadata.version + 1;
    let mut changed = model(1234, 50);
    changed.pricing = Some(ModelPricing {
        input_per_million: 2.5,
        output_per_million: 12.0,
        cached_input_per_million: None,
    });
    changed.revision = 2;
    let update = event(next, EventPayload::ModelUpdated(changed));
    c.bench_function("apply model_updated to 2,000 models", |b| {
        b.iter_batched_ref(
            || state.clone(),
            |s| apply_event(s, &update).unwrap(),
            BatchSize::LargeInput,
        )
    });
    c.bench_function("checksum of 2,000 models from scratch", |b| {
        b.iter(|| state_checksum(std::hint::black_box(&state)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
