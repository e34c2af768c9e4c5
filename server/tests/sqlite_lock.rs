//! One writer per SQLite file: a second process waits for the lock up to a
//! configurable time (a redeploy that starts the new process first), then
//! refuses to start with a clear message; it never serves beside another
//! writer. (SQLite only: PostgreSQL takes several instances.)

mod common;

use common::*;

#[tokio::test]
async fn a_second_process_on_one_sqlite_file_waits_then_refuses() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    let mut second = config(&db);
    second.store_lock_timeout_ms = 300;
    let started = std::time::Instant::now();
    let err = provider_sync_server::start(second)
        .await
        .expect_err("a second writer is refused");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let message = err.to_string();
    assert!(
        message.contains("another provider-sync-server holds the store"),
        "{message}"
    );
    // The first one is untouched.
    assert_eq!(first.version().await, 1);
    first.stop().await;
}

#[tokio::test]
async fn a_redeploy_that_starts_the_new_process_first_works() {
    let (_dir, db) = temp_db();
    let old = TestServer::start(config(&db)).await;
    old.add_provider("p").await;
    let mut next = config(&db);
    next.store_lock_timeout_ms = 10_000;
    let starting = tokio::spawn(TestServer::start(next));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !starting.is_finished(),
        "the new process waits for the lock"
    );
    old.stop().await;
    let new = starting.await.unwrap();
    assert_eq!(new.version().await, 1);
    assert!(new.state().await.provider("p").is_some());
    new.stop().await;
}

#[test]
fn the_binary_refuses_a_locked_store_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let bin = env!("CARGO_BIN_EXE_provider-sync-server");
    let mut first = std::process::Command::new(bin)
        .arg("--database")
        .arg(&db)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening"), "{line}");
    let output = std::process::Command::new(bin)
        .arg("--database")
        .arg(&db)
        .args(["--bind", "127.0.0.1:0", "--store-lock-timeout-ms", "200"])
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another provider-sync-server holds the store")
            && stderr.contains("db.sqlite.lock"),
        "{stderr}"
    );
}
