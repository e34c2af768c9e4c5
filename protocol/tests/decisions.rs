//! The full-vs-incremental decision and availability rules.

use provider_sync_protocol::*;

const WINDOW: LogWindow<'static> = LogWindow {
    epoch: "e1",
    version: 10,
    oldest_resumable: 4,
};

#[test]
fn plan_sync_follows_the_contract() {
    let plan = |v, e, force| plan_sync(v, e, force, WINDOW);
    assert_eq!(plan(10, Some("e1"), false), SyncPlan::UpToDate);
    assert_eq!(
        plan(7, Some("e1"), false),
        SyncPlan::Incremental { since: 7 }
    );
    assert_eq!(
        plan(4, Some("e1"), false),
        SyncPlan::Incremental { since: 4 }
    );
    assert_eq!(
        plan(3, Some("e1"), false),
        SyncPlan::Full(FullSyncReason::TooOld)
    );
    assert_eq!(
        plan(11, Some("e1"), false),
        SyncPlan::Full(FullSyncReason::FutureVersion)
    );
    assert_eq!(
        plan(7, Some("e0"), false),
        SyncPlan::Full(FullSyncReason::EpochMismatch)
    );
    assert_eq!(
        plan(7, None, false),
        SyncPlan::Full(FullSyncReason::EpochMismatch)
    );
    assert_eq!(
        plan(0, None, false),
        SyncPlan::Full(FullSyncReason::Requested)
    );
    assert_eq!(
        plan(10, Some("e1"), true),
        SyncPlan::Full(FullSyncReason::Requested)
    );
    assert!(prefer_full(2000, 1000));
    assert!(!prefer_full(1000, 1000));
}

fn provider(id: &str, priority: i32, status: ProviderStatus) -> ProviderSyncInfo {
    ProviderSyncInfo {
        id: id.into(),
        name: id.into(),
        display_name: id.to_uppercase(),
        provider_type: "openai".into(),
        base_url: None,
        health_url: None,
        enabled: true,
        priority,
        status,
        health: ProviderHealth::default(),
        fallback_provider_id: None,
        capabilities: vec![],
        model_ids: vec![],
        revision: 1,
    }
}

#[test]
fn fallback_prefers_the_configured_one_then_priority() {
    let mut down = provider("a", 100, ProviderStatus::Unavailable);
    down.fallback_provider_id = Some("c".into());
    let mut state = SyncState {
        providers: vec![
            down,
            provider("b", 50, ProviderStatus::Available),
            provider("c", 10, ProviderStatus::Degraded),
            provider("d", 90, ProviderStatus::Maintenance),
        ],
        ..SyncState::default()
    };
    state.normalize();
    let a = provider_availability(&state, "a").unwrap();
    assert!(!a.is_available);
    assert_eq!(a.fallback_provider_id.as_deref(), Some("c"));
    // Configured fallback unusable: the highest-priority usable one.
    state.providers[2].status = ProviderStatus::Unavailable;
    let a = provider_availability(&state, "a").unwrap();
    assert_eq!(a.fallback_provider_id.as_deref(), Some("b"));
    assert_eq!(a.fallback_provider_name.as_deref(), Some("B"));
    // An available provider needs no fallback.
    let b = provider_availability(&state, "b").unwrap();
    assert!(b.is_available);
    assert_eq!(b.fallback_provider_id, None);
    assert!(provider_availability(&state, "zzz").is_none());
}

#[test]
fn sunset_urgency_by_days_left() {
    use DeprecationStatus::*;
    use SunsetUrgency as U;
    assert_eq!(sunset_urgency(&Active, None), U::None);
    assert_eq!(sunset_urgency(&Deprecated, None), U::Low);
    assert_eq!(sunset_urgency(&Deprecated, Some(200)), U::Low);
    assert_eq!(sunset_urgency(&Deprecated, Some(90)), U::Medium);
    assert_eq!(sunset_urgency(&Deprecated, Some(30)), U::High);
    assert_eq!(sunset_urgency(&Deprecated, Some(7)), U::Critical);
    assert_eq!(sunset_urgency(&Deprecated, Some(0)), U::Critical);
    assert_eq!(sunset_urgency(&Deprecated, Some(-1)), U::Sunset);
    assert_eq!(sunset_urgency(&Sunset, Some(100)), U::Sunset);
}

#[test]
fn model_availability_counts_days_and_names_the_replacement() {
    let mut old = ModelSpecification {
        id: "old".into(),
        name: "Old".into(),
        provider_id: "a".into(),
        context_window: 1000,
        max_input_tokens: 1000,
        max_output_tokens: 100,
        supports_streaming: true,
        supports_vision: false,
        supports_function_calling: false,
        supports_json_mode: false,
        supports_reasoning: false,
        pricing: None,
        deprecation_status: DeprecationStatus::Deprecated,
        deprecation_date: Some("2026-11-01".into()),
        sunset_date: Some("2026-12-05".into()),
        replacement_model_id: Some("new".into()),
        revision: 1,
    };
    let mut new = old.clone();
    new.id = "new".into();
    new.name = "New".into();
    new.deprecation_status = DeprecationStatus::Active;
    new.sunset_date = None;
    old.provider_id = "a".into();
    let mut state = SyncState {
        providers: vec![provider("a", 1, ProviderStatus::Available)],
        all_models: vec![old, new],
        ..SyncState::default()
    };
    state.normalize();
    let today = parse_date("2026-11-25").unwrap();
    let a = model_availability(&state, "old", today).unwrap();
    assert_eq!(a.days_until_sunset, Some(10));
    assert_eq!(a.urgency, SunsetUrgency::High);
    assert_eq!(a.replacement_model_name.as_deref(), Some("New"));
    assert!(a.is_available);
    let after = parse_date("2026-12-06").unwrap();
    let a = model_availability(&state, "old", after).unwrap();
    assert_eq!(a.urgency, SunsetUrgency::Sunset);
    assert!(!a.is_available);
}

#[test]
fn model_filter_combines_every_field() {
    let spec = |id: &str, provider: &str, vision: bool, status| ModelSpecification {
        id: id.into(),
        name: id.to_uppercase(),
        provider_id: provider.into(),
        context_window: 1,
        max_input_tokens: 1,
        max_output_tokens: 1,
        supports_streaming: false,
        supports_vision: vision,
        supports_function_calling: false,
        supports_json_mode: false,
        supports_reasoning: false,
        pricing: None,
        deprecation_status: status,
        deprecation_date: None,
        sunset_date: None,
        replacement_model_id: None,
        revision: 1,
    };
    let models = [
        spec("gpt-4o", "openai", true, DeprecationStatus::Active),
        spec("gpt-3.5", "openai", false, DeprecationStatus::Deprecated),
        spec("claude", "anthropic", true, DeprecationStatus::Active),
    ];
    let ids = |f: ModelFilter| -> Vec<&str> {
        models
            .iter()
            .filter(|m| f.matches(m))
            .map(|m| m.id.as_str())
            .collect()
    };
    assert_eq!(ids(ModelFilter::default()).len(), 3);
    let openai_vision = ModelFilter {
        provider_id: Some("openai".into()),
        capability: Some(ModelCapability::Vision),
        ..ModelFilter::default()
    };
    assert_eq!(ids(openai_vision), ["gpt-4o"]);
    let deprecated = ModelFilter {
        deprecated: Some(true),
        ..ModelFilter::default()
    };
    assert_eq!(ids(deprecated), ["gpt-3.5"]);
    let search = ModelFilter {
        search: Some("CLAU".into()),
        ..ModelFilter::default()
    };
    assert_eq!(ids(search), ["claude"]);
    // Found in the name alone (or the id alone) is enough.
    let mut named = models.to_vec();
    named[2].name = "Claude Opus".into();
    let search = ModelFilter {
        search: Some("opus".into()),
        ..ModelFilter::default()
    };
    let found: Vec<&str> = named
        .iter()
        .filter(|m| search.matches(m))
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(found, ["claude"]);
}

#[test]
fn full_sync_reasons_are_named_as_on_the_wire() {
    for reason in [
        FullSyncReason::Requested,
        FullSyncReason::EpochMismatch,
        FullSyncReason::TooOld,
        FullSyncReason::FutureVersion,
        FullSyncReason::Smaller,
    ] {
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            reason.as_str(),
            "{reason:?}"
        );
    }
}

#[test]
fn a_provider_status_is_presented_as_itself_or_unknown() {
    for status in [
        ProviderStatus::Available,
        ProviderStatus::Degraded,
        ProviderStatus::Unavailable,
        ProviderStatus::Maintenance,
        ProviderStatus::Unknown,
    ] {
        assert_eq!(status.presented(), status);
    }
    assert_eq!(
        ProviderStatus::from("overloaded").presented(),
        ProviderStatus::Unknown
    );
}

#[test]
fn day_numbers_agree_with_the_calendar_of_time() {
    // Every day over four centuries (leap years of every kind), against
    // `time`'s parser and calendar.
    let mut date = parse_date("1900-01-01").unwrap();
    let end = parse_date("2300-12-31").unwrap();
    while date <= end {
        let text = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        assert_eq!(day_number(&text), Some(day_number_of(date)), "{text}");
        date = date.next_day().unwrap();
    }
    assert_eq!(day_number("1970-01-01"), Some(0));
    for bad in [
        "2026-02-29",
        // Centuries are leap years only every 400 years.
        "1900-02-29",
        "2100-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "2026-4-01",
        "20260401xx",
        "2026-04-0a",
        "",
        "+026-04-01",
    ] {
        assert_eq!(day_number(bad), None, "{bad}");
        assert!(parse_date(bad).is_err(), "{bad}");
    }
    assert_eq!(
        day_number("2024-02-29"),
        Some(day_number_of(parse_date("2024-02-29").unwrap()))
    );
}
