//! Crashes at the worst moment, against the real binary: SIGKILL while a
//! stream of admin writes is in flight, on SQLite (or PostgreSQL with
//! PROVIDER_SYNC_TEST_STORE=postgres). Every acknowledged write is there
//! after the restart, and versions only ever grow.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use provider_sync_protocol::SyncState;
use serde_json::json;

/// The binary on `database`, with the test token.
fn start(database: &str) -> (std::process::Child, String) {
    spawn_binary(&[
        "--database",
        database,
        "--admin-token",
        TOKEN,
        "--admin-rate-limit",
        "0",
    ])
}

/// Writes providers `w<writer>-<n>` one after another until the server
/// stops answering; records each acknowledged one with its version.
async fn writer(base: String, writer: usize, acked: Arc<Mutex<BTreeMap<String, u64>>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for n in 0.. {
        let id = format!("w{writer}-{n:05}");
        let answer = http
            .post(format!("{base}/admin/providers"))
            .bearer_auth(TOKEN)
            .json(&json!({"id": id, "name": id}))
            .send()
            .await;
        let Ok(answer) = answer else { return };
        if answer.status() != 201 {
            return;
        }
        let version: u64 = answer.headers()["x-sync-version"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        acked.lock().unwrap().insert(id, version);
    }
}

async fn state(base: &str) -> SyncState {
    reqwest::get(format!("{base}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_a_stream_of_writes_loses_no_acknowledged_write() {
    let (_dir, db) = temp_db();
    let database = config(&db).database;
    let mut highest = 0;
    // Three crashes in a row, each under four concurrent writers.
    for round in 0..3 {
        let (mut child, base) = start(&database);
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(base.clone(), round * 10 + w, acked.clone())))
            .collect();
        // Let the writes flow, then kill mid-stream.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if acked.lock().unwrap().len() >= 150 {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for writer in writers {
            writer.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();

        // Versions of acknowledged writes are distinct and above every
        // version of an earlier life of the store.
        let mut versions: Vec<u64> = acked.values().copied().collect();
        versions.sort_unstable();
        versions.dedup();
        assert_eq!(
            versions.len(),
            acked.len(),
            "two writes acknowledged one version"
        );
        assert!(
            versions[0] > highest,
            "a version was handed out twice across a crash"
        );

        let (mut child, base) = start(&database);
        let after = state(&base).await;
        for (id, version) in &acked {
            assert!(
                after.provider(id).is_some(),
                "round {round}: {id} (version {version}) was acknowledged, then lost"
            );
        }
        let last = *versions.last().unwrap();
        assert!(
            after.metadata.version >= last,
            "{} < {last}",
            after.metadata.version
        );
        // The next write continues the sequence.
        let next = reqwest::Client::new()
            .post(format!("{base}/admin/providers"))
            .bearer_auth(TOKEN)
            .json(&json!({"id": format!("after-{round}"), "name": "after"}))
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 201);
        let version: u64 = next.headers()["x-sync-version"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(version, after.metadata.version + 1);
        highest = version;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
