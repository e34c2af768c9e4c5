//! Property tests: for random histories, applying the events from any earlier
//! version to that version's state gives exactly the final state and checksum.

use proptest::prelude::*;
use provider_sync_protocol::*;

#[derive(Debug, Clone)]
enum Op {
    AddProvider(u8),
    UpdateProvider(u8, i32),
    RemoveProvider(u8),
    Status(u8, u8),
    AddModel(u8, u8),
    UpdateModel(u8, u32),
    MoveModel(u8, u8),
    RemoveModel(u8),
    Deprecate(u8, u8),
    SetActive(Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..6u8).prop_map(Op::AddProvider),
        (0..6u8, -5..5i32).prop_map(|(p, n)| Op::UpdateProvider(p, n)),
        (0..6u8).prop_map(Op::RemoveProvider),
        (0..6u8, 0..5u8).prop_map(|(p, s)| Op::Status(p, s)),
        (0..20u8, 0..6u8).prop_map(|(m, p)| Op::AddModel(m, p)),
        (0..20u8, 1..200_000u32).prop_map(|(m, c)| Op::UpdateModel(m, c)),
        (0..20u8, 0..6u8).prop_map(|(m, p)| Op::MoveModel(m, p)),
        (0..20u8).prop_map(Op::RemoveModel),
        (0..20u8, 0..20u8).prop_map(|(m, r)| Op::Deprecate(m, r)),
        proptest::option::of(0..6u8).prop_map(Op::SetActive),
    ]
}

fn provider(id: &str) -> ProviderSyncInfo {
    ProviderSyncInfo {
        id: id.to_owned(),
        name: id.to_owned(),
        display_name: id.to_uppercase(),
        provider_type: "openai_compatible".into(),
        base_url: Some(format!("https://{id}.example/v1")),
        health_url: None,
        enabled: true,
        priority: 0,
        status: ProviderStatus::Unknown,
        health: ProviderHealth::default(),
        fallback_provider_id: None,
        capabilities: vec!["chat".into()],
        model_ids: vec![],
        revision: 1,
    }
}

fn model(id: &str, provider_id: &str) -> ModelSpecification {
    ModelSpecification {
        id: id.to_owned(),
        name: id.to_uppercase(),
        provider_id: provider_id.to_owned(),
        context_window: 8192,
        max_input_tokens: 8192,
        max_output_tokens: 4096,
        supports_streaming: true,
        supports_vision: false,
        supports_function_calling: true,
        supports_json_mode: false,
        supports_reasoning: false,
        pricing: Some(ModelPricing {
            input_per_million: 1.5,
            output_per_million: 2.0,
            cached_input_per_million: None,
        }),
        deprecation_status: DeprecationStatus::Active,
        deprecation_date: None,
        sunset_date: None,
        replacement_model_id: None,
        revision: 1,
    }
}

const STATUSES: [ProviderStatus; 5] = [
    ProviderStatus::Available,
    ProviderStatus::Degraded,
    ProviderStatus::Unavailable,
    ProviderStatus::Maintenance,
    ProviderStatus::Unknown,
];

/// Turns an operation into the event a server would emit for it, or None
/// where it does not apply to the state.
fn event_for(state: &SyncState, op: &Op) -> Option<EventPayload> {
    let pid = |n: u8| format!("p{n}");
    let mid = |n: u8| format!("m{n}");
    Some(match *op {
        Op::AddProvider(p) if state.provider(&pid(p)).is_none() => {
            EventPayload::ProviderAdded(provider(&pid(p)))
        }
        Op::UpdateProvider(p, priority) => {
            let mut next = state.provider(&pid(p))?.clone();
            next.priority = priority;
            next.fallback_provider_id = Some(pid((p + 1) % 6));
            next.revision += 1;
            EventPayload::ProviderUpdated(next)
        }
        Op::RemoveProvider(p) => {
            let current = state.provider(&pid(p))?;
            EventPayload::ProviderRemoved(ProviderRemoved {
                provider_id: current.id.clone(),
                model_ids: current.model_ids.clone(),
            })
        }
        Op::Status(p, s) => {
            let current = state.provider(&pid(p))?;
            EventPayload::ProviderStatusChanged(ProviderStatusChanged {
                provider_id: current.id.clone(),
                previous_status: current.status.clone(),
                status: STATUSES[s as usize].clone(),
                health: ProviderHealth {
                    latency_ms: Some(u32::from(s) * 10),
                    error_rate: f64::from(s) / 4.0,
                    ..ProviderHealth::default()
                },
                revision: current.revision + 1,
                automatic: s % 2 == 0,
            })
        }
        Op::AddModel(m, p) if state.model(&mid(m)).is_none() => {
            state.provider(&pid(p))?;
            EventPayload::ModelAdded(model(&mid(m), &pid(p)))
        }
        Op::UpdateModel(m, context) => {
            let mut next = state.model(&mid(m))?.clone();
            next.context_window = context;
            next.revision += 1;
            EventPayload::ModelUpdated(next)
        }
        Op::MoveModel(m, p) => {
            let mut next = state.model(&mid(m))?.clone();
            next.provider_id = state.provider(&pid(p))?.id.clone();
            next.revision += 1;
            EventPayload::ModelUpdated(next)
        }
        Op::RemoveModel(m) => {
            let current = state.model(&mid(m))?;
            EventPayload::ModelRemoved(ModelRemoved {
                model_id: current.id.clone(),
                provider_id: current.provider_id.clone(),
            })
        }
        Op::Deprecate(m, r) => {
            let mut next = state.model(&mid(m))?.clone();
            next.deprecation_status = DeprecationStatus::Deprecated;
            next.deprecation_date = Some("2026-01-01".into());
            next.sunset_date = Some("2027-01-01".into());
            next.replacement_model_id = Some(mid(r));
            next.revision += 1;
            EventPayload::ModelDeprecated(next)
        }
        Op::SetActive(p) => EventPayload::ActiveProviderChanged(ActiveProviderChanged {
            active_provider_id: p.map(pid),
            default_provider_id: Some(pid(0)),
        }),
        Op::AddProvider(_) | Op::AddModel(..) => return None,
    })
}

/// Runs a history; returns the state at every version and the events.
fn run(ops: &[Op]) -> (Vec<SyncState>, Vec<SyncEvent>) {
    let mut state = SyncState::default();
    state.metadata.epoch = "e1".into();
    state.refresh_metadata();
    let mut states = vec![state.clone()];
    let mut events = vec![];
    for op in ops {
        if let Some(payload) = event_for(&state, op) {
            let version = state.metadata.version + 1;
            let event = SyncEvent {
                id: format!("e1:{version}"),
                version,
                timestamp: "2026-11-25T00:00:00Z".into(),
                payload,
            };
            assert_eq!(apply_event(&mut state, &event), Ok(Applied::Changed));
            states.push(state.clone());
            events.push(event);
        }
    }
    (states, events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn catching_up_from_any_version_converges(ops in proptest::collection::vec(op(), 1..60)) {
        let (states, events) = run(&ops);
        let last = states.last().unwrap();
        // The running checksum equals one computed from scratch.
        prop_assert_eq!(&last.metadata.checksum, &state_checksum(last).to_hex());
        for (from, earlier) in states.iter().enumerate() {
            let mut copy = earlier.clone();
            apply_events(&mut copy, &events[from..]).unwrap();
            prop_assert_eq!(&copy, last);
        }
        // A replay that overlaps what the client has is harmless.
        let mut copy = states[states.len() / 2].clone();
        apply_events(&mut copy, &events).unwrap();
        prop_assert_eq!(&copy, last);
    }

    #[test]
    fn checksum_ignores_list_order(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        let (states, _) = run(&ops);
        let mut shuffled = states.last().unwrap().clone();
        let n = shuffled.all_models.len();
        if n > 1 {
            shuffled.all_models.rotate_left((seed as usize) % n);
        }
        shuffled.providers.reverse();
        prop_assert_eq!(state_checksum(&shuffled), state_checksum(states.last().unwrap()));
        shuffled.normalize();
        prop_assert_eq!(&shuffled, states.last().unwrap());
    }
}

#[test]
fn a_gap_is_refused_and_changes_nothing() {
    let (states, events) = run(&[Op::AddProvider(1), Op::AddProvider(2), Op::AddProvider(3)]);
    let mut copy = states[0].clone();
    let err = apply_event(&mut copy, &events[1]).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Gap {
            expected: 1,
            received: 2
        }
    );
    assert_eq!(copy, states[0]);
}

#[test]
fn any_content_change_changes_the_checksum() {
    let (states, _) = run(&[Op::AddProvider(1), Op::AddModel(1, 1)]);
    let base = states.last().unwrap().clone();
    let mut priced = base.clone();
    priced.all_models[0]
        .pricing
        .as_mut()
        .unwrap()
        .input_per_million = 1.25;
    let mut renamed = base.clone();
    renamed.providers[0].display_name = "Other".into();
    let mut active = base.clone();
    active.active_provider_id = Some("p1".into());
    for changed in [priced, renamed, active] {
        assert_ne!(state_checksum(&changed), state_checksum(&base));
    }
}

#[test]
fn events_use_the_documented_json_shape() {
    let (_, events) = run(&[Op::AddProvider(1), Op::RemoveProvider(1)]);
    let json = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(json["type"], "provider_removed");
    assert_eq!(json["version"], 2);
    assert_eq!(json["data"]["provider_id"], "p1");
    let back: SyncEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, events[1]);
    let added = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(added["data"]["status"], "unknown");
    assert_eq!(added["data"]["display_name"], "P1");
}

#[test]
fn removing_a_provider_removes_its_models() {
    let (states, _) = run(&[
        Op::AddProvider(1),
        Op::AddProvider(2),
        Op::AddModel(1, 1),
        Op::AddModel(2, 1),
        Op::AddModel(3, 2),
        Op::RemoveProvider(1),
    ]);
    let last = states.last().unwrap();
    let ids: Vec<_> = last.all_models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m3"]);
    assert_eq!(last.providers[0].model_ids, ["m3"]);
    assert_eq!(last.metadata.model_count, 1);
}

#[test]
fn moving_a_model_moves_its_id_between_providers() {
    let (states, _) = run(&[
        Op::AddProvider(1),
        Op::AddProvider(2),
        Op::AddModel(1, 1),
        Op::MoveModel(1, 2),
    ]);
    let last = states.last().unwrap();
    assert!(last.provider("p1").unwrap().model_ids.is_empty());
    assert_eq!(last.provider("p2").unwrap().model_ids, ["m1"]);
}

/// Applies `payload` as the next version of `state`.
fn apply_next(state: &mut SyncState, payload: EventPayload) -> Applied {
    let event = SyncEvent {
        id: "e".into(),
        version: state.metadata.version + 1,
        timestamp: "t".into(),
        payload,
    };
    apply_event(state, &event).unwrap()
}

/// Each change lands in the content itself, and the running checksum equals
/// one computed from scratch (checked against content, not only against the
/// incremental checksum, which a no-op would keep consistent).
#[test]
fn each_change_event_changes_the_content_it_names() {
    let (states, _) = run(&[Op::AddProvider(1), Op::AddProvider(2), Op::AddModel(1, 1)]);
    let mut state = states.last().unwrap().clone();

    let applied = apply_next(
        &mut state,
        EventPayload::ProviderStatusChanged(ProviderStatusChanged {
            provider_id: "p1".into(),
            previous_status: ProviderStatus::Unknown,
            status: ProviderStatus::Degraded,
            health: ProviderHealth {
                latency_ms: Some(900),
                ..ProviderHealth::default()
            },
            revision: 7,
            automatic: false,
        }),
    );
    assert_eq!(applied, Applied::Changed);
    let p1 = state.provider("p1").unwrap();
    assert_eq!(p1.status, ProviderStatus::Degraded);
    assert_eq!(p1.health.latency_ms, Some(900));
    assert_eq!(p1.revision, 7);
    assert_eq!(state.metadata.checksum, state_checksum(&state).to_hex());

    apply_next(
        &mut state,
        EventPayload::ActiveProviderChanged(ActiveProviderChanged {
            active_provider_id: Some("p2".into()),
            default_provider_id: Some("p1".into()),
        }),
    );
    assert_eq!(state.active_provider_id.as_deref(), Some("p2"));
    assert_eq!(state.default_provider_id.as_deref(), Some("p1"));
    assert_eq!(state.metadata.checksum, state_checksum(&state).to_hex());

    apply_next(
        &mut state,
        EventPayload::ModelRemoved(ModelRemoved {
            model_id: "m1".into(),
            provider_id: "p1".into(),
        }),
    );
    assert!(state.model("m1").is_none());
    assert!(state.provider("p1").unwrap().model_ids.is_empty());
    assert_eq!(state.metadata.model_count, 0);
    assert_eq!(state.metadata.checksum, state_checksum(&state).to_hex());
}

#[test]
fn apply_events_counts_the_events_that_changed_the_state() {
    let (states, events) = run(&[Op::AddProvider(1), Op::AddProvider(2), Op::AddProvider(3)]);
    let mut state = states[0].clone();
    assert_eq!(apply_events(&mut state, &events).unwrap(), 3);
    // Replayed: already applied, nothing counted.
    assert_eq!(apply_events(&mut state, &events).unwrap(), 0);
    assert_eq!(&state, states.last().unwrap());
}

#[test]
fn a_patch_tells_an_absent_field_from_a_null_one() {
    let patch: ProviderPatch = serde_json::from_str(r#"{"base_url": null}"#).unwrap();
    assert_eq!(patch.base_url, Some(None));
    assert_eq!(patch.health_url, None);
    let patch: ProviderPatch =
        serde_json::from_str(r#"{"health_url": "https://h.example/health"}"#).unwrap();
    assert_eq!(
        patch.health_url,
        Some(Some("https://h.example/health".to_owned()))
    );
    // A field the entity always has is left out to keep it, never cleared.
    for field in ["name", "enabled", "priority", "capabilities"] {
        let refused = serde_json::from_str::<ProviderPatch>(&format!(r#"{{"{field}": null}}"#));
        assert!(refused.is_err(), "{field}: null");
    }
    for field in [
        "name",
        "context_window",
        "max_input_tokens",
        "supports_vision",
    ] {
        let refused = serde_json::from_str::<ModelPatch>(&format!(r#"{{"{field}": null}}"#));
        assert!(refused.is_err(), "{field}: null");
    }
    let patch: ModelPatch = serde_json::from_str(r#"{"pricing": null, "name": "N"}"#).unwrap();
    assert_eq!(patch.pricing, Some(None));
    // Written back the same way: absent stays absent, a clearing stays null.
    assert_eq!(
        serde_json::to_string(&patch).unwrap(),
        r#"{"name":"N","pricing":null}"#
    );
    assert_eq!(
        serde_json::to_string(&ProviderPatch::default()).unwrap(),
        "{}"
    );
}

/// Fields added after the first release are left out of the JSON while
/// they hold their old meaning, so an older client reads the same objects;
/// a missing one reads as that meaning.
#[test]
fn fields_added_later_are_left_out_while_unset() {
    let mut m = model("m1", "p1");
    let json = serde_json::to_value(&m).unwrap();
    assert!(json.get("supports_reasoning").is_none(), "{json}");
    m.supports_reasoning = true;
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["supports_reasoning"], true);

    let mut change = ProviderStatusChanged {
        provider_id: "p1".into(),
        previous_status: ProviderStatus::Available,
        status: ProviderStatus::Degraded,
        health: ProviderHealth::default(),
        revision: 2,
        automatic: false,
    };
    let json = serde_json::to_value(&change).unwrap();
    assert!(json.get("automatic").is_none(), "{json}");
    change.automatic = true;
    let json = serde_json::to_value(&change).unwrap();
    assert_eq!(json["automatic"], true);

    let mut beat = Heartbeat {
        epoch: "e1".into(),
        version: 3,
        checksum: "0".repeat(32),
        server_time: "t".into(),
        store_reachable: true,
    };
    let json = serde_json::to_value(&beat).unwrap();
    assert!(json.get("store_reachable").is_none(), "{json}");
    let back: Heartbeat = serde_json::from_value(json).unwrap();
    assert!(back.store_reachable, "absent means reachable");
    beat.store_reachable = false;
    let json = serde_json::to_value(&beat).unwrap();
    assert_eq!(json["store_reachable"], false);
    assert_eq!(serde_json::from_value::<Heartbeat>(json).unwrap(), beat);
}

/// Only committed changes have versions of their own: the others never
/// count as a gap nor as already applied.
#[test]
fn only_committed_changes_are_change_events() {
    let (states, events) = run(&[Op::AddProvider(1)]);
    assert!(events[0].payload.is_change());
    let beat = EventPayload::Heartbeat(Heartbeat {
        epoch: states[1].metadata.epoch.clone(),
        version: 5,
        checksum: states[1].metadata.checksum.clone(),
        server_time: "t".into(),
        store_reachable: true,
    });
    let resync = EventPayload::ResyncRequired(ResyncRequired {
        reason: "lagged".into(),
        missed: 4,
    });
    for payload in [beat, resync] {
        assert!(!payload.is_change(), "{payload:?}");
        // Past the state's next version: not a gap, ignored.
        let mut state = states[1].clone();
        let event = SyncEvent {
            id: "x".into(),
            version: 5,
            timestamp: "t".into(),
            payload,
        };
        assert_eq!(apply_event(&mut state, &event), Ok(Applied::Ignored));
        assert_eq!(state, states[1]);
    }
}

#[test]
fn models_of_lists_one_providers_models_in_id_order() {
    let mut state = SyncState {
        providers: vec![provider("p1"), provider("p2")],
        all_models: vec![model("b", "p1"), model("a", "p2"), model("c", "p1")],
        ..SyncState::default()
    };
    state.normalize();
    let ids = |p: &str| -> Vec<String> { state.models_of(p).map(|m| m.id.clone()).collect() };
    assert_eq!(ids("p1"), ["b", "c"]);
    assert_eq!(ids("p2"), ["a"]);
    assert!(ids("p3").is_empty());
}
