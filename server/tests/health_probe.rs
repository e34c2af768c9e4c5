//! Health probes against a real HTTP endpoint standing in for a provider.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use provider_sync_protocol::{EventPayload, ProviderStatus};
use reqwest::Method;
use serde_json::{Value, json};

async fn wait_for_status(server: &TestServer, id: &str, want: ProviderStatus) {
    for _ in 0..100 {
        if server.state().await.provider(id).unwrap().status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("provider {id} never became {want:?}");
}

#[tokio::test]
async fn probes_change_status_and_emit_events() {
    let (health_url, answer) = health_endpoint().await;
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.health_interval_ms = 100;
    config.health_failures = 2;
    let server = TestServer::start(config).await;
    server.add_provider("backup").await;
    let response = server
        .admin(Method::POST, "/providers")
        .json(&json!({"id": "watched", "name": "Watched", "health_url": health_url, "fallback_provider_id": "backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "unknown");
    let mut ws = server
        .connect(&format!(
            "?since=2&epoch={}",
            server.state().await.metadata.epoch
        ))
        .await;
    next_event(&mut ws).await; // hello

    wait_for_status(&server, "watched", ProviderStatus::Available).await;
    let event = next_non_heartbeat(&mut ws).await;
    let EventPayload::ProviderStatusChanged(change) = event.payload else {
        panic!("expected a status change, got {event:?}")
    };
    assert_eq!(
        (change.previous_status, change.status),
        (ProviderStatus::Unknown, ProviderStatus::Available)
    );
    assert!(change.health.latency_ms.is_some());

    // Failing: degraded after one failure, unavailable after two.
    answer.store(503, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Unavailable).await;
    let mut seen = vec![];
    while seen.last() != Some(&ProviderStatus::Unavailable) {
        if let EventPayload::ProviderStatusChanged(change) =
            next_non_heartbeat(&mut ws).await.payload
        {
            seen.push(change.status);
        }
    }
    assert_eq!(
        seen,
        [ProviderStatus::Degraded, ProviderStatus::Unavailable]
    );
    let availability: Value = server
        .get("/providers/watched/availability")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(availability["is_available"], false);
    assert_eq!(availability["fallback_provider_id"], "backup");
    assert!(
        availability["health"]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert!(
        availability["health"]["message"]
            .as_str()
            .unwrap()
            .contains("503")
    );

    // Recovery.
    answer.store(200, Ordering::SeqCst);
    wait_for_status(&server, "watched", ProviderStatus::Available).await;

    // Maintenance set by an operator is left alone by the probes.
    server
        .admin(Method::PUT, "/providers/watched/status")
        .json(&json!({"status": "maintenance", "message": "upgrading"}))
        .send()
        .await
        .unwrap();
    answer.store(500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.state().await.provider("watched").unwrap().status,
        ProviderStatus::Maintenance
    );
    // The probe's last reading is not shown for a provider it no longer probes.
    let availability: Value = server
        .get("/providers/watched/availability")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(availability["health"]["message"], "upgrading");
    server.stop().await;
}
