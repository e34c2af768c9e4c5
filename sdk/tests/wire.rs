//! The SDK's JSON reader and writer against serde_json, on every wire type
//! the SDK reads or writes: the same values, both ways.

use provider_sync_protocol::*;
use provider_sync_sdk::cache::{CACHE_SCHEMA, CacheRecord};
use provider_sync_sdk::json;
use provider_sync_sdk::wire::{WireEvent, WireResponse};

fn provider(id: &str) -> ProviderSyncInfo {
    ProviderSyncInfo {
        id: id.to_owned(),
        name: format!("{id} \"quoted\" \\ back\nslash é 🦀 \u{1}"),
        display_name: id.to_uppercase(),
        provider_type: "openai_compatible".into(),
        base_url: Some(format!("https://{id}.example/v1")),
        health_url: None,
        enabled: true,
        priority: -3,
        status: ProviderStatus::Degraded,
        health: ProviderHealth {
            last_check: Some("2026-01-01T00:00:00Z".into()),
            latency_ms: Some(120),
            error_rate: 0.30000000000000004,
            consecutive_failures: 2,
            message: None,
        },
        fallback_provider_id: None,
        capabilities: vec!["chat".into(), "embeddings".into()],
        model_ids: vec![format!("{id}-m")],
        revision: u64::from(u32::MAX) * 1000,
    }
}

fn model(id: &str, provider_id: &str, price: f64) -> ModelSpecification {
    ModelSpecification {
        id: id.to_owned(),
        name: id.to_uppercase(),
        provider_id: provider_id.to_owned(),
        context_window: 200_000,
        max_input_tokens: 8192,
        max_output_tokens: 4096,
        supports_streaming: true,
        supports_vision: false,
        supports_function_calling: true,
        supports_json_mode: false,
        supports_reasoning: false,
        pricing: Some(ModelPricing {
            input_per_million: price,
            output_per_million: 15.0,
            cached_input_per_million: None,
        }),
        deprecation_status: DeprecationStatus::Deprecated,
        deprecation_date: Some("2026-02-01".into()),
        sunset_date: None,
        replacement_model_id: Some("next".into()),
        revision: 7,
    }
}

fn state() -> SyncState {
    let mut state = SyncState {
        providers: vec![provider("a"), provider("b")],
        all_models: vec![
            model("a-m", "a", 0.15),
            model("b-m", "b", 1e-7),
            model("c-m", "b", 123456.789),
        ],
        active_provider_id: Some("a".into()),
        default_provider_id: None,
        metadata: SyncMetadata {
            version: 42,
            epoch: "epoch-1".into(),
            server_time: "2026-01-01T00:00:00Z".into(),
            ..SyncMetadata::default()
        },
    };
    state.all_models[2].pricing = None;
    state.normalize();
    state
}

fn events() -> Vec<SyncEvent> {
    let payloads = vec![
        EventPayload::FullSync(state()),
        EventPayload::ProviderAdded(provider("c")),
        EventPayload::ProviderUpdated(provider("a")),
        EventPayload::ProviderRemoved(ProviderRemoved {
            provider_id: "b".into(),
            model_ids: vec!["b-m".into()],
        }),
        EventPayload::ProviderStatusChanged(ProviderStatusChanged {
            provider_id: "a".into(),
            previous_status: ProviderStatus::Available,
            status: ProviderStatus::Maintenance,
            health: ProviderHealth::default(),
            revision: 3,
            automatic: true,
        }),
        EventPayload::ModelAdded(model("x", "a", 2.5)),
        EventPayload::ModelUpdated(model("x", "a", 3.0)),
        EventPayload::ModelRemoved(ModelRemoved {
            model_id: "x".into(),
            provider_id: "a".into(),
        }),
        EventPayload::ModelDeprecated(model("y", "a", 0.1)),
        EventPayload::ActiveProviderChanged(ActiveProviderChanged {
            active_provider_id: None,
            default_provider_id: Some("a".into()),
        }),
        EventPayload::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            epoch: "e".into(),
            version: 9,
            sync_type: SyncType::Incremental,
            heartbeat_interval_ms: 25_000,
            client_timeout_ms: 60_000,
        }),
        EventPayload::Heartbeat(Heartbeat {
            epoch: "e".into(),
            version: 9,
            checksum: "00".into(),
            server_time: "t".into(),
            store_reachable: true,
        }),
        EventPayload::Heartbeat(Heartbeat {
            epoch: "e".into(),
            version: 9,
            checksum: "00".into(),
            server_time: "t".into(),
            store_reachable: false,
        }),
        EventPayload::ProviderStatusChanged(ProviderStatusChanged {
            provider_id: "a".into(),
            previous_status: ProviderStatus::Other("on_fire".into()),
            status: ProviderStatus::Available,
            health: ProviderHealth::default(),
            revision: 4,
            automatic: false,
        }),
        EventPayload::ResyncRequired(ResyncRequired {
            reason: "lagged".into(),
            missed: 12,
        }),
        EventPayload::Error(ErrorData {
            code: "bad".into(),
            message: "no".into(),
            field: Some("f".into()),
        }),
        EventPayload::Error(ErrorData {
            code: "bad".into(),
            message: "no".into(),
            field: None,
        }),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| SyncEvent {
            id: format!("ev-{i}"),
            version: i as u64 + 1,
            timestamp: "2026-01-01T00:00:00Z".into(),
            payload,
        })
        .collect()
}

#[test]
fn events_read_as_serde_json_reads_them_in_either_key_order() {
    for event in events() {
        let text = serde_json::to_string(&event).unwrap();
        let read = json::read::<WireEvent>(&text).unwrap().known().unwrap();
        assert_eq!(read, event, "{text}");
        // A JSON value's keys come sorted: `data` before `type`.
        let sorted = serde_json::to_string(&serde_json::to_value(&event).unwrap()).unwrap();
        assert!(
            sorted.find("\"data\"") < sorted.find("\"type\""),
            "{sorted}"
        );
        let read = json::read::<WireEvent>(&sorted).unwrap().known().unwrap();
        assert_eq!(read, event, "{sorted}");
    }
}

#[test]
fn sync_answers_read_whole() {
    let response = SyncResponse {
        sync_type: SyncType::Incremental,
        version: 15,
        epoch: "e".into(),
        events: events(),
        state: Some(state()),
        reason: Some(FullSyncReason::EpochMismatch),
        checksum: "abc".into(),
    };
    let text = serde_json::to_string(&response).unwrap();
    let read: WireResponse = json::read(&text).unwrap();
    assert_eq!(read.into_parts().0, response);
}

#[test]
fn what_the_sdk_writes_serde_json_reads_back_the_same() {
    let record = CacheRecord {
        schema: CACHE_SCHEMA,
        source: "http://h/api".into(),
        saved_at: 1_764_000_000_123.0,
        state: state(),
    };
    let text = json::write(&record);
    assert_eq!(
        serde_json::from_str::<CacheRecord>(&text).unwrap(),
        record,
        "{text}"
    );
    for event in events() {
        let text = json::write(&event);
        // Whole floats are written as integers: the same number in JS.
        assert_eq!(serde_json::from_str::<SyncEvent>(&text).unwrap(), event);
    }
    let request = SyncRequest {
        client_version: 3,
        client_epoch: Some("e".into()),
        include_deprecated: None,
        force_full: Some(true),
    };
    assert_eq!(
        json::write(&request),
        r#"{"client_version":3,"client_epoch":"e","include_deprecated":null,"force_full":true}"#
    );
}

#[test]
fn what_serde_json_writes_the_sdk_reads_back_the_same() {
    let state = state();
    let text = serde_json::to_string_pretty(&state).unwrap();
    assert_eq!(json::read::<SyncState>(&text).unwrap(), state);
    let info = VersionInfo {
        version: u64::MAX,
        epoch: "e".into(),
        server_time: "t".into(),
        checksum: "c".into(),
    };
    let text = serde_json::to_string(&info).unwrap();
    assert_eq!(json::read::<VersionInfo>(&text).unwrap(), info);
}

#[test]
fn bad_text_is_an_error_that_says_where() {
    let missing = json::read::<VersionInfo>(r#"{"version":1}"#).unwrap_err();
    assert!(
        missing.to_string().contains("missing field `epoch`"),
        "{missing}"
    );
    let wrong = json::read::<VersionInfo>(r#"{"version":1.5}"#).unwrap_err();
    assert!(wrong.to_string().contains("at byte 14"), "{wrong}");
    let typed = json::read::<Vec<u32>>(r#"["1"]"#).unwrap_err();
    assert!(typed.to_string().contains("expected a number"), "{typed}");
    let variant = json::read::<SyncType>(r#""sideways""#).unwrap_err();
    assert!(variant.to_string().contains("unknown variant"), "{variant}");
    for bad in [
        "",
        "[1,]",
        "[1 2]",
        "{\"a\" 1}",
        "\"open",
        "[1] x",
        "tru",
        "-",
        "\"\u{1}\"",
    ] {
        assert!(json::from_str::<serde_json::Value>(bad).is_err(), "{bad:?}");
    }
}

/// Runs `check` on a thread with a 1 MiB stack, the wasm's whole stack.
fn on_a_wasm_sized_stack(check: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(check)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    on_a_wasm_sized_stack(|| {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let info = |extra: &str| {
            format!(r#"{{"version":1,"epoch":"e","server_time":"t","checksum":"c","x":{extra}}}"#)
        };
        // An unknown field is stepped over.
        let error = json::read::<VersionInfo>(&info(&deep)).unwrap_err();
        assert!(error.to_string().contains("nested too deeply"), "{error}");
        // `data` before `type` is kept as text, stepped over first.
        let heartbeat = r#"{"epoch":"e","version":1,"checksum":"c","server_time":"t"}"#;
        for event in [
            format!(r#"{{"id":"e","version":1,"timestamp":"t","data":{deep},"type":"heartbeat"}}"#),
            format!(
                r#"{{"id":"e","version":1,"timestamp":"t","x":{deep},"type":"heartbeat","data":{heartbeat}}}"#
            ),
        ] {
            let error = json::read::<WireEvent>(&event).unwrap_err();
            assert!(error.to_string().contains("nested too deeply"), "{error}");
        }
        // Arrays and objects a visitor reads count too.
        let objects = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
        for text in [&deep, &objects] {
            let error = json::from_str::<serde_json::Value>(text).unwrap_err();
            assert!(error.to_string().contains("nested too deeply"), "{error}");
        }
        // Nesting as deep as real data goes and well beyond is read.
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        json::read::<VersionInfo>(&info(&fine)).unwrap();
        json::from_str::<serde_json::Value>(&fine).unwrap();
        let event = format!(
            r#"{{"id":"e","version":1,"timestamp":"t","x":{fine},"data":{heartbeat},"type":"heartbeat"}}"#
        );
        json::read::<WireEvent>(&event).unwrap();
    });
}

#[test]
fn an_event_with_a_key_twice_or_without_type_or_data_is_an_error() {
    let data = r#"{"epoch":"e","version":1,"checksum":"c","server_time":"t"}"#;
    let head = r#""id":"e","version":1,"timestamp":"t""#;
    let read = |body: String| json::read::<WireEvent>(&format!("{{{body}}}"));
    read(format!(r#"{head},"type":"heartbeat","data":{data}"#)).unwrap();
    for (body, field) in [
        (
            format!(r#"{head},"type":"heartbeat","type":"heartbeat","data":{data}"#),
            "type",
        ),
        (
            format!(r#"{head},"type":"heartbeat","data":{data},"type":"heartbeat""#),
            "type",
        ),
        (
            format!(r#"{head},"data":{data},"type":"heartbeat","data":{data}"#),
            "data",
        ),
        (
            format!(r#"{head},"data":{data},"data":{data},"type":"heartbeat""#),
            "data",
        ),
        (
            format!(r#"{head},"type":"heartbeat","data":{data},"data":{data}"#),
            "data",
        ),
        (
            format!(r#"{head},"id":"f","type":"heartbeat","data":{data}"#),
            "id",
        ),
        (
            format!(r#"{head},"version":2,"type":"heartbeat","data":{data}"#),
            "version",
        ),
        (
            format!(r#"{head},"timestamp":"u","type":"heartbeat","data":{data}"#),
            "timestamp",
        ),
    ] {
        let error = read(body.clone()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("duplicate field `{field}`")),
            "{body}: {error}"
        );
    }
    for (body, expected) in [
        (format!(r#"{head},"data":{data}"#), "missing field `type`"),
        (
            format!(r#"{head},"type":"heartbeat""#),
            "missing field `data`",
        ),
        (
            format!(r#""id":"e","type":"heartbeat","data":{data}"#),
            "missing field `version`",
        ),
    ] {
        let error = read(body.clone()).unwrap_err().to_string();
        assert!(error.contains(expected), "{body}: {error}");
    }
}

#[test]
fn data_before_type_is_kept_whole_whatever_its_strings_and_keys_hold() {
    // Pretty-printed, `data` first, holding a nested "type", strings with
    // brackets and escaped quotes, and an unknown field of each kind.
    let text = r#"{
      "data": {
        "id": "p}\"{",
        "name": "a \"}\" b ]",
        "display_name": "{\"type\":\"x\"}",
        "provider_type": "x",
        "extra": { "type": "x", "list": [ "}", "\\", { "type": [] } ], "n": -1.5e-3 },
        "enabled": true,
        "priority": 1,
        "status": "available",
        "health": { "error_rate": 0.5, "consecutive_failures": 0 },
        "capabilities": [ "chat" ],
        "model_ids": [ ],
        "revision": 2
      },
      "id": "ev",
      "timestamp": "t",
      "type": "provider_added",
      "version": 3
    }"#;
    let read = json::read::<WireEvent>(text).unwrap().known().unwrap();
    assert_eq!(read, serde_json::from_str::<SyncEvent>(text).unwrap());
    let EventPayload::ProviderAdded(provider) = read.payload else {
        panic!("{read:?}")
    };
    assert_eq!(provider.id, "p}\"{");
    assert_eq!(provider.name, "a \"}\" b ]");
    assert_eq!(provider.display_name, r#"{"type":"x"}"#);
}

#[test]
fn sync_answers_with_nothing_new_or_an_empty_state_read_whole() {
    for response in [
        SyncResponse {
            sync_type: SyncType::None,
            version: 7,
            epoch: "e".into(),
            events: vec![],
            state: None,
            reason: None,
            checksum: "c".into(),
        },
        SyncResponse {
            sync_type: SyncType::Full,
            version: 0,
            epoch: "e".into(),
            events: vec![],
            state: Some(SyncState::default()),
            reason: Some(FullSyncReason::EpochMismatch),
            checksum: String::new(),
        },
    ] {
        let text = serde_json::to_string(&response).unwrap();
        let read: WireResponse = json::read(&text).unwrap();
        assert_eq!(read.into_parts().0, response, "{text}");
    }
    let none = r#"{"sync_type":"none","version":7,"epoch":"e","events":[],"state":null,"reason":null,"checksum":"c"}"#;
    let read: WireResponse = json::read(none).unwrap();
    assert_eq!(read.into_parts().0.sync_type, SyncType::None);
}

#[test]
fn an_event_of_a_type_this_release_does_not_know_is_named_not_an_error() {
    for text in [
        r#"{"id":"e:9","version":9,"timestamp":"t","type":"model_rated","data":{"model_id":"m","stars":[1,{"x":2}]}}"#,
        r#"{"data":{"model_id":"m"},"id":"e:9","timestamp":"t","type":"model_rated","version":9}"#,
        r#"{"id":"e:9","version":9,"timestamp":"t","type":"model_rated","data":null,"extra":1}"#,
    ] {
        let read = json::read::<WireEvent>(text).unwrap();
        assert_eq!(
            read,
            WireEvent::Unknown {
                kind: "model_rated".into(),
                version: 9
            },
            "{text}"
        );
    }
    // Still an error: no version to place it by, or a type that is no string.
    json::read::<WireEvent>(r#"{"id":"e","timestamp":"t","type":"x","data":1}"#).unwrap_err();
    json::read::<WireEvent>(r#"{"id":"e","version":1,"timestamp":"t","type":7,"data":1}"#)
        .unwrap_err();
}

#[test]
fn the_seeds_incremental_update_is_read_as_an_unknown_type() {
    // A name of `SyncEventType` (the seed's) that no event carries: a frame
    // of it is one the client cannot apply, whatever its data.
    for text in [
        r#"{"id":"e:9","version":9,"timestamp":"t","type":"incremental_update","data":{"events":[]}}"#,
        r#"{"data":null,"id":"e:9","timestamp":"t","type":"incremental_update","version":9}"#,
    ] {
        assert_eq!(
            json::read::<WireEvent>(text).unwrap(),
            WireEvent::Unknown {
                kind: "incremental_update".into(),
                version: 9
            },
            "{text}"
        );
    }
    assert_eq!(
        serde_json::from_str::<SyncEventType>(r#""incremental_update""#).unwrap(),
        SyncEventType::IncrementalUpdate
    );
}

#[test]
fn a_sync_answer_with_an_unknown_event_keeps_the_events_before_it() {
    let known = |version: u64| {
        serde_json::to_string(&SyncEvent {
            id: format!("e:{version}"),
            version,
            timestamp: "t".into(),
            payload: EventPayload::ModelRemoved(ModelRemoved {
                model_id: format!("m{version}"),
                provider_id: "p".into(),
            }),
        })
        .unwrap()
    };
    let text = format!(
        r#"{{"sync_type":"incremental","version":4,"epoch":"e","events":[{},{},{{"id":"e:3","version":3,"timestamp":"t","type":"model_rated","data":{{}}}},{}],"state":null,"reason":"a_reason_from_the_future","checksum":"c"}}"#,
        known(1),
        known(2),
        known(4)
    );
    let (response, unknown) = json::read::<WireResponse>(&text).unwrap().into_parts();
    assert_eq!(unknown.as_deref(), Some("model_rated"));
    assert_eq!(
        response
            .events
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(response.reason, None);
}

#[test]
fn statuses_this_release_does_not_know_are_kept_verbatim() {
    let mut state = SyncState::default();
    state.metadata.epoch = "e".into();
    let mut provider = serde_json::to_value(self::provider("p")).unwrap();
    provider["status"] = "on_fire".into();
    let mut model = serde_json::to_value(model("m", "p", 1.0)).unwrap();
    model["deprecation_status"] = "retiring".into();
    let mut value = serde_json::to_value(&state).unwrap();
    value["providers"] = serde_json::json!([provider]);
    value["all_models"] = serde_json::json!([model]);
    let text = value.to_string();

    let mut read: SyncState = json::read(&text).unwrap();
    assert_eq!(
        read.providers[0].status,
        ProviderStatus::Other("on_fire".into())
    );
    assert_eq!(
        read.all_models[0].deprecation_status,
        DeprecationStatus::Other("retiring".into())
    );
    // Written back as read: the cache holds what the server sent.
    let back: serde_json::Value = serde_json::from_str(&json::write(&read)).unwrap();
    assert_eq!(back["providers"][0]["status"], "on_fire");
    assert_eq!(back["all_models"][0]["deprecation_status"], "retiring");
    // The checksum is the one a server that knows the values computes (the
    // text hashed, not the fallback).
    read.refresh_metadata();
    let mut as_fallback = read.clone();
    as_fallback.providers[0].status = ProviderStatus::Unknown;
    as_fallback.refresh_metadata();
    assert_ne!(read.metadata.checksum, as_fallback.metadata.checksum);
    // Shown through the documented fallbacks.
    assert_eq!(
        read.providers[0].status.presented(),
        ProviderStatus::Unknown
    );
    assert!(!read.providers[0].status.is_usable());
    assert_eq!(
        read.all_models[0].deprecation_status.presented(),
        DeprecationStatus::Deprecated
    );
    assert!(read.all_models[0].is_deprecated());
}

/// Found by fuzzing (fuzz/corpus/sdk_json/regression-response-without-reason):
/// an answer without `reason`, which serde_json reads as the protocol's
/// `SyncResponse` with none, was refused as a whole ("missing field").
#[test]
fn an_answer_without_a_reason_reads_as_one_with_none() {
    let text =
        r#"{"sync_type":"none","version":7,"epoch":"e","events":[],"state":null,"checksum":"c"}"#;
    let theirs: SyncResponse = serde_json::from_str(text).unwrap();
    let ours = json::read::<WireResponse>(text).unwrap().into_parts();
    assert_eq!(ours, (theirs, None));
    // A reason this release does not know reads as none; a reason that is
    // no string at all is an error, as for any `Option<String>`.
    let with =
        |reason: &str| text.replace(r#""checksum""#, &format!(r#""reason":{reason},"checksum""#));
    let unknown = json::read::<WireResponse>(&with(r#""sideways""#)).unwrap();
    assert_eq!(unknown.into_parts().0.reason, None);
    let known = json::read::<WireResponse>(&with(r#""too_old""#)).unwrap();
    assert_eq!(known.into_parts().0.reason, Some(FullSyncReason::TooOld));
    for bad in ["5", "{}", "[\"too_old\"]", "true"] {
        let error = json::read::<WireResponse>(&with(bad)).unwrap_err();
        assert!(
            error.to_string().contains("expected a string"),
            "{bad}: {error}"
        );
    }
}

/// JSON text as its tokens in order: keys, brackets, strings as written,
/// and numbers by value (`15` and `15.0` alike: the table writer writes
/// whole floats as `JSON.stringify` does), integers exactly.
fn tokens(text: &str) -> Vec<String> {
    fn walk(text: &str, out: &mut Vec<String>) {
        let mut r = json::Reader::new(text);
        match text.trim_start().as_bytes().first() {
            Some(b'{') => {
                out.push("{".into());
                r.object(&mut |r, key| {
                    out.push(format!("{key:?}:"));
                    walk(r.raw()?, out);
                    Ok(())
                })
                .unwrap();
                out.push("}".into());
            }
            Some(b'[') => {
                out.push("[".into());
                r.array(&mut |r| {
                    walk(r.raw()?, out);
                    Ok(())
                })
                .unwrap();
                out.push("]".into());
            }
            Some(b'-' | b'0'..=b'9') => {
                let text = text.trim();
                out.push(match text.parse::<i128>() {
                    Ok(n) => n.to_string(),
                    Err(_) => {
                        let x: f64 = text.parse().unwrap();
                        if x.fract() == 0.0 && x.abs() < 1e21 {
                            format!("{x:.0}")
                        } else {
                            format!("{x:?}")
                        }
                    }
                });
            }
            _ => out.push(text.trim().to_owned()),
        }
    }
    let mut out = Vec::new();
    walk(text, &mut out);
    out
}

/// The table writer (`json::write`) against serde's derived writer of the
/// same type, for every type the SDK writes: the same members in the same
/// order at every level, the same values.
fn writes_as_serde<T: json::Write + serde::Serialize>(value: &T) {
    let ours = json::write(value);
    let theirs = serde_json::to_string(value).unwrap();
    assert_eq!(tokens(&ours), tokens(&theirs), "{ours}");
}

#[test]
fn the_table_writer_writes_what_serde_writes() {
    use provider_sync_sdk::machine::{ConnectionEvent, SyncStatus, Transport};
    use provider_sync_sdk::view::{ProviderSyncClientState, SunsetOutlook};
    let state = state();
    writes_as_serde(&state);
    writes_as_serde(&CacheRecord {
        schema: CACHE_SCHEMA,
        source: "http://h/api \"q\"".into(),
        saved_at: 1_764_000_000_123.5,
        state: state.clone(),
    });
    let mut unknown = model("m", "p", 0.1);
    unknown.deprecation_status = DeprecationStatus::Other("retiring".into());
    unknown.supports_reasoning = true;
    unknown.pricing = Some(ModelPricing {
        input_per_million: 1e-7,
        output_per_million: 1e21,
        cached_input_per_million: Some(0.5),
    });
    writes_as_serde(&unknown);
    let mut on_fire = provider("p");
    on_fire.status = ProviderStatus::Other("on_fire".into());
    writes_as_serde(&on_fire);
    for event in events() {
        writes_as_serde(&event);
    }
    for request in [
        SyncRequest::default(),
        SyncRequest {
            client_version: u64::MAX,
            client_epoch: Some("e".into()),
            include_deprecated: Some(false),
            force_full: Some(true),
        },
    ] {
        writes_as_serde(&request);
        // No floats: the very same text.
        assert_eq!(
            json::write(&request),
            serde_json::to_string(&request).unwrap()
        );
    }
    for event in [
        ConnectionEvent::Connected {
            transport: Transport::Websocket,
        },
        ConnectionEvent::Disconnected { reason: "r".into() },
        ConnectionEvent::FallbackToPolling { attempts: 3 },
        ConnectionEvent::Resynced {
            reason: "gap".into(),
        },
        ConnectionEvent::SyncError {
            message: "m".into(),
        },
        ConnectionEvent::CacheError {
            message: "c".into(),
        },
    ] {
        assert_eq!(json::write(&event), serde_json::to_string(&event).unwrap());
    }
    let client = ProviderSyncClientState {
        status: SyncStatus::Stale,
        is_connected: true,
        transport: Transport::Polling,
        version: 9,
        epoch: Some("e".into()),
        checksum: None,
        last_sync_time: Some(1.5),
        error: None,
        last_error: Some("x".into()),
        providers: state.providers.clone(),
        models: state.all_models.clone(),
        active_provider_id: Some("p".into()),
        default_provider_id: None,
        from_cache: true,
    };
    writes_as_serde(&client);
    for (status, sunset) in [("deprecated", Some("2026-01-01")), ("active", None)] {
        writes_as_serde(&SunsetOutlook::of(status, sunset, 1.7e12));
    }
}
