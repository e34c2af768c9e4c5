//! The host application with provider-sync mounted: its routes and
//! provider-sync's side by side, its authentication in front of the admin
//! API, a WebSocket under the mount, and its shutdown closing the socket.

use futures_util::StreamExt;
use provider_sync_embedded_example::{PREFIX, build};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn provider_sync_mounts_inside_an_application() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sync) = build(&dir.path().join("e.db").display().to_string())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stopped = sync.shutdown_signal();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
    });
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    // The application's own route and fallback.
    let home = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(home.text().await.unwrap(), "the host application");
    let missing = http.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.text().await.unwrap(),
        "no such page in the host application"
    );

    // provider-sync under the mount.
    let version: Value = http
        .get(format!("{base}{PREFIX}/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], 0);

    // The application decides who may write: no provider-sync token.
    let body = json!({"id": "acme", "name": "Acme"});
    let refused = http
        .post(format!("{base}{PREFIX}/admin/providers"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        sync.service().snapshot().version(),
        0,
        "refused: nothing written"
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{PREFIX}/ws"))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    let mut next_kind = async || loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                return event["type"].as_str().unwrap().to_owned();
            }
            Some(Ok(_)) => continue,
            other => panic!("the socket ended: {other:?}"),
        }
    };
    // Caught up before the write, so that the write comes as an event.
    kinds.push(next_kind().await);
    kinds.push(next_kind().await);
    let created = http
        .post(format!("{base}{PREFIX}/admin/providers"))
        .header("x-user", "operator")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The audit names the application's user.
    let audit: Value = http
        .get(format!("{base}{PREFIX}/admin/audit"))
        .header("x-user", "operator")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["token"], "operator", "{audit}");
    assert_eq!(audit["entries"][0]["first_version"], 1, "{audit}");

    // The WebSocket under the mount: hello, the full state, the new provider.
    kinds.push(next_kind().await);
    assert_eq!(kinds, ["hello", "full_sync", "provider_added"]);

    // The application's shutdown closes the socket with a close frame.
    sync.begin_shutdown();
    let closed = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert!(closed.is_some());
    serving.await.unwrap().unwrap();
    sync.shutdown().await;
}
