//! The sync invariant against the real server: for random histories of admin
//! writes, a client that starts from any earlier version and applies what
//! `POST /sync` returns ends with exactly the server's state and checksum.

mod common;

use common::*;
use proptest::prelude::*;
use provider_sync_protocol::{SyncState, apply_events, state_checksum};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Write {
    AddProvider(u8),
    AddModel(u8, u8),
    Price(u8, u16),
    Deprecate(u8, u8),
    DeleteModel(u8),
    DeleteProvider(u8),
    Status(u8, bool),
    Active(u8),
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        2 => (0..4u8).prop_map(Write::AddProvider),
        4 => (0..12u8, 0..4u8).prop_map(|(m, p)| Write::AddModel(m, p)),
        3 => (0..12u8, 1..5000u16).prop_map(|(m, c)| Write::Price(m, c)),
        1 => (0..12u8, 0..12u8).prop_map(|(m, r)| Write::Deprecate(m, r)),
        1 => (0..12u8).prop_map(Write::DeleteModel),
        1 => (0..4u8).prop_map(Write::DeleteProvider),
        1 => (0..4u8, any::<bool>()).prop_map(|(p, up)| Write::Status(p, up)),
        1 => (0..4u8).prop_map(Write::Active),
    ]
}

/// Sends one write; refusals (unknown ids, duplicates) are part of the test:
/// they must change nothing.
async fn send(server: &TestServer, write: &Write) -> u16 {
    let (method, path, body) = match write {
        Write::AddProvider(p) => (
            Method::POST,
            "/providers".to_owned(),
            json!({"id": format!("p{p}"), "name": format!("P{p}")}),
        ),
        Write::AddModel(m, p) => (
            Method::POST,
            "/models".to_owned(),
            json!({"id": format!("m{m}"), "name": format!("M{m}"), "provider_id": format!("p{p}"), "context_window": 1000 + u32::from(*m)}),
        ),
        Write::Price(m, cents) => (
            Method::PATCH,
            format!("/models/m{m}"),
            json!({"pricing": {"input_per_million": f64::from(*cents) / 100.0, "output_per_million": 1.0}}),
        ),
        Write::Deprecate(m, r) => (
            Method::POST,
            format!("/models/m{m}/deprecate"),
            json!({"deprecation_date": "2026-01-01", "replacement_model_id": if m == r { Value::Null } else { json!(format!("m{r}")) }}),
        ),
        Write::DeleteModel(m) => (Method::DELETE, format!("/models/m{m}"), Value::Null),
        Write::DeleteProvider(p) => (Method::DELETE, format!("/providers/p{p}"), Value::Null),
        Write::Status(p, up) => (
            Method::PUT,
            format!("/providers/p{p}/status"),
            json!({"status": if *up { "available" } else { "unavailable" }}),
        ),
        Write::Active(p) => (
            Method::PUT,
            "/active-provider".to_owned(),
            json!({"provider_id": format!("p{p}")}),
        ),
    };
    let mut request = server.admin(method, &path);
    if !body.is_null() {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Brings a client copy up to date with `/sync`, as the SDK does.
async fn catch_up(server: &TestServer, mut copy: SyncState) -> (SyncState, String) {
    let response = server
        .sync(json!({"client_version": copy.metadata.version, "client_epoch": copy.metadata.epoch}))
        .await;
    match response["sync_type"].as_str().unwrap() {
        "none" => {}
        "incremental" => {
            let events: Vec<provider_sync_protocol::SyncEvent> =
                serde_json::from_value(response["events"].clone()).unwrap();
            apply_events(&mut copy, &events).unwrap();
        }
        "full" => copy = serde_json::from_value(response["state"].clone()).unwrap(),
        other => panic!("unknown sync type {other}"),
    }
    let kind = response["sync_type"].as_str().unwrap().to_owned();
    (copy, kind)
}

fn run(writes: Vec<Write>, retention: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (_dir, db) = temp_db();
        let mut config = config(&db);
        config.event_retention = retention;
        let server = TestServer::start(config).await;
        server.add_ballast().await;
        let mut copies = vec![server.state().await];
        for write in &writes {
            let before = server.version().await;
            let status = send(&server, write).await;
            let after = server.version().await;
            if status >= 400 {
                assert_eq!(
                    before, after,
                    "a refused write ({status}) changed the version"
                );
            } else {
                copies.push(server.state().await);
            }
        }
        let truth = server.state().await;
        let mut kinds = std::collections::BTreeSet::new();
        for copy in copies {
            let (mut synced, kind) = catch_up(&server, copy).await;
            kinds.insert(kind);
            assert_eq!(synced.metadata.checksum, truth.metadata.checksum);
            assert_eq!(state_checksum(&synced).to_hex(), truth.metadata.checksum);
            synced
                .metadata
                .server_time
                .clone_from(&truth.metadata.server_time);
            assert_eq!(synced, truth);
        }
        assert!(kinds.contains("none"));
        server.stop().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_client_version_converges(writes in proptest::collection::vec(write(), 1..40), retention in 2..60u64) {
        run(writes, retention);
    }
}
