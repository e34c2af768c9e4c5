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

/// Writes that fail on the disk (the store's files made immutable: as an
/// I/O error, a file system remounted read-only) are refused, and the
/// writes after the disk is back are kept across a restart. They were
/// acknowledged and then lost: the failed write's connection stayed inside
/// a transaction its rollback could not end, the next write committed only
/// a savepoint in it (acknowledged at a version handed out again after the
/// restart, with other content), and every write after that was refused
/// ("database is locked") while the server said it was ready. Needs
/// `chattr +i` (root on ext4, as CI runs); without it the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_failed_disk_writes_are_kept() {
    if std::env::var("PROVIDER_SYNC_TEST_STORE").as_deref() == Ok("postgres") {
        return; // The file system of SQLite's files.
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let files = [db.clone(), dir.path().join("sync.db-wal")];
    let chattr = |flag: &str| {
        std::process::Command::new("chattr")
            .arg(flag)
            .args(&files)
            .status()
            .is_ok_and(|s| s.success())
    };
    let (mut child, base) = start(db.to_str().unwrap());
    let http = reqwest::Client::new();
    let status = |message: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let answer = http
                .post(format!("{base}/admin/providers"))
                .bearer_auth(TOKEN)
                .json(&json!({"id": message, "name": message}))
                .send()
                .await
                .unwrap();
            let version = answer
                .headers()
                .get("x-sync-version")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let code = answer.status().as_u16();
            if code >= 300 {
                eprintln!(
                    "{message}: {code} {}",
                    answer.text().await.unwrap_or_default()
                );
            }
            (code, version)
        }
    };
    assert_eq!(status("a1").await.0, 201);
    if !chattr("+i") {
        eprintln!(
            "writes_after_failed_disk_writes_are_kept: not run: `chattr +i` is not allowed here (it needs root on ext4)"
        );
        let _ = child.kill();
        return;
    }
    let refused = [status("b1").await, status("b2").await];
    assert!(chattr("-i"), "chattr -i");
    for (code, _) in refused {
        assert!(
            code >= 500,
            "a write the disk refused was acknowledged: {code}"
        );
    }
    // The disk is back: writes go through again (the first may still meet
    // the error; none is acknowledged unless it is kept).
    let mut c1 = None;
    for _ in 0..40 {
        if let (201, version) = status("c1").await {
            c1 = version;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c1 = c1.expect("writes go through again once the disk is back");
    let (code, version) = status("c2").await;
    assert_eq!((code, version), (201, Some(c1 + 1)));
    let _ = child.kill();
    let _ = child.wait();

    let (mut child, base) = start(db.to_str().unwrap());
    let state = state(&base).await;
    assert_eq!(
        state.metadata.version,
        c1 + 1,
        "acknowledged writes were lost"
    );
    for id in ["a1", "c1", "c2"] {
        assert!(state.provider(id).is_some(), "{id} was lost");
    }
    assert!(state.provider("b1").is_none() && state.provider("b2").is_none());
    let _ = child.kill();
    let _ = child.wait();
}
