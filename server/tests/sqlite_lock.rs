//! One writer per SQLite file: a second process waits for the lock up to a
//! configurable time (a redeploy that starts the new process first), then
//! refuses to start with a clear message; it never serves beside another
//! writer. And a store of the first release opens with this one. (SQLite
//! only: PostgreSQL takes several instances.)

mod common;

use common::*;

/// Runs one statement on the SQLite file `db` (made if missing), as
/// another program would.
async fn execute_on(db: &std::path::Path, sql: &str) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

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

/// Found by a black-box check (2026-12-04): with the lock file removed
/// under a running server (a cleaner of temporary files, or by hand as
/// "stale"), a second process made a new one and served the same store
/// beside the first, never seeing its writes. The file's own lock stays.
/// Both for a store the first server found and for one it made.
#[tokio::test]
async fn a_removed_lock_file_does_not_let_a_second_process_in() {
    for made_first in [false, true] {
        let (_dir, db) = temp_db();
        if made_first {
            // A store that was there when the first server started.
            let made = TestServer::start(config(&db)).await;
            made.stop().await;
        }
        let first = TestServer::start(config(&db)).await;
        first.add_provider("p").await;
        std::fs::remove_file(format!("{}.lock", db.display())).unwrap();
        let mut second = config(&db);
        second.store_lock_timeout_ms = 200;
        let err = provider_sync_server::start(second)
            .await
            .expect_err("a second writer is refused");
        let message = err.to_string();
        assert!(
            message.contains("another process holds the store")
                && message.contains("its lock file beside it is free"),
            "{message}"
        );
        assert_eq!(first.version().await, 1);
        first.stop().await;
        // Once the first has let go, the store opens again.
        let again = TestServer::start(config(&db)).await;
        assert_eq!(again.version().await, 1);
        again.stop().await;
    }
}

/// Another name of the same file is the same store: a symbolic link (to
/// the file or to its directory) shares the lock; a hard link, which SQLite
/// cannot keep whole (its journal goes beside the name it was opened by),
/// is refused. Both started a second writer beside the first, which then
/// never saw the other's writes.
#[tokio::test]
async fn another_name_of_the_file_is_the_same_store() {
    let (dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let linked_dir = dir.path().join("linked-dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
    for name in [link.clone(), linked_dir.join(db.file_name().unwrap())] {
        let mut second = config(&name);
        second.store_lock_timeout_ms = 100;
        let err = provider_sync_server::start(second)
            .await
            .expect_err("a second writer through a symbolic link is refused");
        let message = err.to_string();
        assert!(
            message.contains("another provider-sync-server holds the store"),
            "{}: {message}",
            name.display()
        );
    }
    first.stop().await;
    let hard = dir.path().join("hard.db");
    std::fs::hard_link(&db, &hard).unwrap();
    for name in [&db, &hard] {
        let err = provider_sync_server::start(config(name))
            .await
            .expect_err("a file with two names is refused");
        assert!(err.to_string().contains("hard links"), "{err}");
    }
    // Nothing was opened through the second name (its `-wal` and `-shm`
    // were left beside it: a black-box check, 2026-12-04).
    for suffix in ["-wal", "-shm"] {
        let beside = format!("{}{suffix}", hard.display());
        assert!(!std::path::Path::new(&beside).exists(), "{beside}");
    }
    std::fs::remove_file(&hard).unwrap();
    let again = TestServer::start(config(&link)).await;
    assert_eq!(again.version().await, 1);
    again.stop().await;
}

/// A database URL that names no file is refused, not opened as a database
/// per pooled connection (which failed with "no such table").
#[tokio::test]
async fn a_store_url_without_a_file_is_refused() {
    for url in ["", "sqlite://"] {
        let (_dir, db) = temp_db();
        let mut config = config(&db);
        config.database = url.into();
        let err = provider_sync_server::start(config)
            .await
            .expect_err("no file named");
        assert!(
            err.to_string().contains("unsupported store URL"),
            "{url:?}: {err}"
        );
    }
}

/// A store the process may read but not write (SQLite then opens it
/// read-only without a word) stops the start, naming the file: it started,
/// said it was ready, and answered every write with 500. In WAL mode and
/// in rollback-journal mode (as `backup` writes them: switching it to WAL
/// failed with SQLite's bare "attempt to write a readonly database").
#[tokio::test]
async fn a_store_that_cannot_be_written_stops_the_start() {
    for journal in ["WAL", "DELETE"] {
        let (_dir, db) = temp_db();
        let first = TestServer::start(config(&db)).await;
        first.add_provider("p").await;
        first.stop().await;
        execute_on(&db, &format!("PRAGMA journal_mode = {journal}")).await;
        let mut read_only = config(&db);
        read_only.database = format!("sqlite://{}?mode=ro", db.display());
        let err = provider_sync_server::start(read_only)
            .await
            .expect_err("a read-only store is refused");
        let message = err.to_string();
        assert!(
            message.contains("cannot be written") && message.contains(db.to_str().unwrap()),
            "{journal}: {message}"
        );
        let again = TestServer::start(config(&db)).await;
        assert_eq!(again.version().await, 1);
        again.stop().await;
    }
    // A file that is not there, read-only: named, and no lock file left
    // behind (a black-box check, 2026-12-04: SQLite's bare "unable to open
    // database file", and `m.db.lock` beside nothing).
    let (dir, db) = temp_db();
    let mut missing = config(&db);
    missing.database = format!("sqlite://{}?mode=ro", db.display());
    let err = provider_sync_server::start(missing)
        .await
        .expect_err("no store to read");
    let message = err.to_string();
    assert!(
        message.contains("no such file") && message.contains(db.to_str().unwrap()),
        "{message}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A SQLite file of another application is refused, left as it was (this
/// store's tables were added beside its own).
#[tokio::test]
async fn a_sqlite_file_of_something_else_is_left_alone() {
    let (_dir, db) = temp_db();
    execute_on(&db, "CREATE TABLE invoices (id INTEGER)").await;
    let err = provider_sync_server::start(config(&db))
        .await
        .expect_err("another application's database is refused");
    assert!(
        err.to_string()
            .contains("SQLite database of something else (its tables: invoices)"),
        "{err}"
    );
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(tables, ["invoices"]);
    // Not switched to WAL, no lock file beside it.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "delete");
    pool.close().await;
    let mut lock = db.as_os_str().to_owned();
    lock.push(".lock");
    assert!(!std::path::Path::new(&lock).exists());
    // A table whose name only looks like SQLite's own (`LIKE 'sqlite_%'`
    // took it for one, and the file for a store to make: a review).
    let (_dir, db) = temp_db();
    execute_on(&db, "CREATE TABLE sqlite1 (id INTEGER)").await;
    let err = provider_sync_server::start(config(&db))
        .await
        .expect_err("another application's database is refused");
    assert!(err.to_string().contains("(its tables: sqlite1)"), "{err}");
}

/// A symbolic link to a store not made yet names the file it will be: a
/// second server on that file's own name waits for the same lock.
#[tokio::test]
async fn a_link_to_a_store_not_made_yet_shares_its_lock() {
    let (dir, db) = temp_db();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    assert!(!db.exists());
    let first = TestServer::start(config(&link)).await;
    assert!(db.exists(), "made through the link");
    let mut second = config(&db);
    second.store_lock_timeout_ms = 100;
    let err = provider_sync_server::start(second)
        .await
        .expect_err("a second writer on the file's own name is refused");
    assert!(
        err.to_string()
            .contains("another provider-sync-server holds the store"),
        "{err}"
    );
    first.stop().await;
}

/// A release that locked only the name it was given (a link) still
/// excludes this one on that name: a redeploy that starts the new process
/// first does not make two writers.
#[tokio::test]
async fn the_given_name_is_locked_as_well_as_the_file() {
    let (dir, db) = temp_db();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let held = std::fs::File::create(dir.path().join("link.db.lock")).unwrap();
    held.try_lock().unwrap();
    let mut next = config(&link);
    next.store_lock_timeout_ms = 100;
    let err = provider_sync_server::start(next)
        .await
        .expect_err("the older process holds the link's lock");
    assert!(err.to_string().contains("link.db.lock"), "{err}");
    drop(held);
    let started = TestServer::start(config(&link)).await;
    started.stop().await;
}

/// From a review (2026-12-05): a name whose directory is a symbolic link
/// (and not the file) took the one lock file twice, by both of its names,
/// and waited on itself: the server refused to start, "another
/// provider-sync-server holds the store", with none running. For a store
/// it makes and for one it finds.
#[tokio::test]
async fn a_store_through_a_linked_directory_takes_its_lock_once() {
    let (dir, db) = temp_db();
    let linked_dir = dir.path().join("linked-dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
    let through = linked_dir.join(db.file_name().unwrap());
    for provider in ["made", "found"] {
        let mut cfg = config(&through);
        cfg.store_lock_timeout_ms = 2_000;
        let server = TestServer::start(cfg).await;
        server.add_provider(provider).await;
        // A second server by the file's own name is refused.
        let mut second = config(&db);
        second.store_lock_timeout_ms = 100;
        let err = provider_sync_server::start(second)
            .await
            .expect_err("one writer");
        assert!(
            err.to_string()
                .contains("another provider-sync-server holds the store"),
            "{err}"
        );
        server.stop().await;
    }
}

/// From a review (2026-12-05): a tool that refuses a file removes the
/// lock files it made, holding them. A server that had opened one and
/// waited then held the lock of a file no longer there, and the next
/// process to make the lock file took it as well (with the database
/// file's own lock not taken, as where it is not known to be harmless, two
/// writers). The server now takes the lock again by its name.
#[tokio::test]
async fn a_lock_file_removed_by_its_holder_is_taken_again_by_its_name() {
    let (_dir, db) = temp_db();
    let lock = format!("{}.lock", db.display());
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    let mut next = config(&db);
    next.store_lock_timeout_ms = 10_000;
    let starting = tokio::spawn(TestServer::start(next));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!starting.is_finished(), "it waits for the lock");
    std::fs::remove_file(&lock).unwrap();
    drop(held);
    let server = starting.await.unwrap();
    let again = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    assert!(
        matches!(again.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the server holds the lock file its name names"
    );
    drop(again);
    server.stop().await;
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

/// Found by a black-box check (2026-12-07): a server waiting for another
/// process's lock had its port bound (a port in use stops the start first)
/// and left every request sent to it waiting, unanswered, as long as it
/// waited (30 s by default). Until it runs they get 503 with
/// `Retry-After`, probes included; then it answers.
#[tokio::test]
async fn a_server_waiting_for_the_lock_answers_503_until_it_runs() {
    let (_dir, db) = temp_db();
    let old = TestServer::start(config(&db)).await;
    old.add_provider("p").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut next = config(&db);
    next.bind = ([127, 0, 0, 1], port).into();
    next.store_lock_timeout_ms = 20_000;
    // Short, so that a connection silent during the start is seen closed.
    next.request_timeout_ms = 1_000;
    next.idle_timeout_ms = 1_500;
    let starting = tokio::spawn(TestServer::start(next));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut answered = None;
    for _ in 0..50 {
        let request = client
            .get(format!("{base}/state"))
            .header("origin", "https://app.example.com")
            .header("x-request-id", "mine-1");
        match request.send().await {
            Ok(answer) => {
                answered = Some(answer);
                break;
            }
            // Not bound yet: connection refused at once.
            Err(err) if err.is_connect() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(err) => panic!("a request to a server waiting for the lock: {err}"),
        }
    }
    let answer = answered.expect("the port is bound while the server waits");
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    assert_eq!(answer.headers()["connection"], "close");
    // As every answer: the request's id, and CORS (a page of another
    // origin reads the 503 rather than a CORS failure).
    assert_eq!(answer.headers()["x-request-id"], "mine-1");
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("starting"),
        "{body}"
    );
    for path in ["/readyz", "/healthz"] {
        let answer = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), 503, "{path}");
    }
    // A request with a body is answered too (and nothing is written).
    let refused = client
        .post(format!("{base}/api/provider-sync/admin/providers"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"id": "q", "name": "Q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    // A connection silent for the idle timeout is closed, its place freed
    // (it held one until the server ran: found by a re-read).
    {
        use tokio::io::AsyncReadExt;
        let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut byte))
            .await
            .expect("closed within the idle timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    // A connection opened now and silent until the server runs (a
    // browser's preconnected socket) is served by it, not answered 503
    // (found by a review).
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert!(!starting.is_finished(), "it still waits for the lock");
    old.stop().await;
    let new = starting.await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        silent
            .write_all(b"GET /api/provider-sync/version HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), silent.read(&mut answer))
            .await
            .expect("answered")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }
    assert_eq!(new.server.addr().port(), port);
    let state = new.state().await;
    assert_eq!(state.metadata.version, 1);
    assert!(state.provider("p").is_some() && state.provider("q").is_none());
    assert_eq!(new.get("/readyz").await.status(), 200);
    new.stop().await;
}

/// From a review (2026-12-04): a server that waited for the lock while
/// the store file was made (by the process before it) locked the file once
/// it had the lock, then again as if it had made the file itself, and
/// refused itself ("waited 0 ms").
#[tokio::test]
async fn a_store_made_while_waiting_for_the_lock_is_opened() {
    let (dir, db) = temp_db();
    let elsewhere = dir.path().join("made.db");
    let made = TestServer::start(config(&elsewhere)).await;
    made.add_provider("p").await;
    made.stop().await;
    // Another process holds the lock, and no store is there yet.
    let held = std::fs::File::create(format!("{}.lock", db.display())).unwrap();
    held.lock().unwrap();
    let mut next = config(&db);
    next.store_lock_timeout_ms = 10_000;
    let starting = tokio::spawn(TestServer::start(next));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!starting.is_finished(), "it waits for the lock");
    std::fs::copy(&elsewhere, &db).unwrap();
    drop(held);
    let server = starting.await.unwrap();
    assert_eq!(server.version().await, 1);
    server.stop().await;
}

#[test]
fn the_binary_refuses_a_locked_store_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let bin = env!("CARGO_BIN_EXE_provider-sync-server");
    let (mut first, _) = spawn_binary(&["--database", db.to_str().unwrap()]);
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

/// A store written by the first release (its schema is migration 0001
/// alone) opens with this one: the data stays, the new table is added, and
/// a catalog file is adopted without reverting what is there.
#[tokio::test]
async fn a_store_of_the_first_release_keeps_working() {
    let (dir, db) = temp_db();
    let first_release = dir.path().join("migrations");
    std::fs::create_dir(&first_release).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql"),
        first_release.join("0001_init.sql"),
    )
    .unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(first_release.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let provider = serde_json::json!({
            "id": "old", "name": "Old", "display_name": "Old (edited)", "provider_type": "openai",
            "base_url": null, "health_url": null, "enabled": true, "priority": 0,
            "status": "available", "health": {"last_check": null, "latency_ms": null,
            "error_rate": 0.0, "consecutive_failures": 0, "message": null},
            "fallback_provider_id": null, "capabilities": [], "model_ids": [], "revision": 2
        });
        sqlx::query("INSERT INTO sync_meta (id, epoch, version) VALUES (1, 'wave1', 2)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO providers (id, revision, body) VALUES ('old', 2, ?)")
            .bind(provider.to_string())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[[providers]]\nid = \"old\"\nname = \"Old\"\nprovider_type = \"openai\"\n\n[[providers]]\nid = \"new\"\nname = \"New\"\n",
    )
    .unwrap();
    let mut config = config(&db);
    config.catalog = Some(catalog);
    let server = TestServer::start(config).await;
    let state = server.state().await;
    assert_eq!(state.metadata.epoch, "wave1");
    assert_eq!(
        state.provider("old").unwrap().display_name,
        "Old (edited)",
        "kept"
    );
    assert!(state.provider("new").is_some(), "added");
    assert_eq!(state.metadata.version, 3);
    server.stop().await;
}

/// An application that embeds the server may keep its service (in its
/// router's state, say) after stopping it: the store is let go all the same.
#[tokio::test]
async fn stopping_lets_go_of_the_lock_while_the_service_is_still_held() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    let held = first.server.service().clone();
    first.stop().await;
    let mut next = config(&db);
    next.store_lock_timeout_ms = 500;
    let second = TestServer::start(next).await;
    assert_eq!(second.version().await, 1);
    second.stop().await;
    drop(held);
}

#[tokio::test]
async fn stopping_lets_go_of_the_lock_even_with_a_websocket_open() {
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    let _ws = first.connect("").await;
    first.stop().await;
    let mut next = config(&db);
    next.store_lock_timeout_ms = 500;
    let second = TestServer::start(next).await;
    assert_eq!(second.version().await, 0);
    second.stop().await;
}

/// A model an earlier release let be active with a retirement date still
/// takes edits of its other fields; an edit of its status or dates is held
/// to the rule (409 with the model).
#[tokio::test]
async fn a_model_stored_active_with_a_date_still_takes_other_edits() {
    use reqwest::Method;
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    first.add_model("m", "p").await;
    first.stop().await;
    execute_on(
        &db,
        "UPDATE models SET body = json_set(body, '$.sunset_date', '2025-01-01') WHERE id = 'm'",
    )
    .await;
    let server = TestServer::start(config(&db)).await;
    let model = server.state().await.model("m").cloned().unwrap();
    assert_eq!(model.sunset_date.as_deref(), Some("2025-01-01"));
    assert_eq!(
        model.deprecation_status,
        provider_sync_protocol::DeprecationStatus::Active
    );
    for (body, status) in [
        (serde_json::json!({"name": "Renamed"}), 200),
        (serde_json::json!({"sunset_date": "2025-02-01"}), 409),
    ] {
        let answer = server
            .admin(Method::PATCH, "/models/m")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{}", answer.text().await.unwrap());
    }
    server.stop().await;
}

/// Ids and names that an earlier release accepted and the checks now
/// refuse (`//` in an id, a control character in a name) do not block edits
/// of other fields: before, every PATCH of such an entity answered 422
/// naming the id. A new value is still held to the checks.
#[tokio::test]
async fn entities_stored_with_values_now_refused_still_take_other_edits() {
    use reqwest::Method;
    let (_dir, db) = temp_db();
    let first = TestServer::start(config(&db)).await;
    first.add_provider("p").await;
    first.add_provider("q").await;
    first.add_model("m", "q").await;
    first.stop().await;
    for sql in [
        "UPDATE providers SET id = 'a//b', \
         body = json_set(body, '$.id', 'a//b', '$.name', 'Bell' || char(7)) WHERE id = 'p'",
        "UPDATE models SET id = 'm//x', body = json_set(body, '$.id', 'm//x', '$.name', 'Tab' || char(9)) \
         WHERE id = 'm'",
        "UPDATE providers SET body = json_set(body, '$.model_ids', json_array('m//x')) WHERE id = 'q'",
    ] {
        execute_on(&db, sql).await;
    }
    let server = TestServer::start(config(&db)).await;
    let state = server.state().await;
    assert_eq!(state.provider("a//b").unwrap().name, "Bell\u{7}");
    assert_eq!(state.model("m//x").unwrap().name, "Tab\t");
    for (path, body, status) in [
        (
            "/providers/a%2F%2Fb",
            serde_json::json!({"priority": 5}),
            200,
        ),
        (
            "/providers/a%2F%2Fb",
            serde_json::json!({"display_name": "Kept"}),
            200,
        ),
        (
            "/providers/a%2F%2Fb",
            serde_json::json!({"name": "Bell\u{7}2"}),
            422,
        ),
        (
            "/providers/a%2F%2Fb",
            serde_json::json!({"name": "Renamed"}),
            200,
        ),
        (
            "/models/m%2F%2Fx",
            serde_json::json!({"context_window": 16384}),
            200,
        ),
        (
            "/models/m%2F%2Fx",
            serde_json::json!({"name": "Line\nbreak"}),
            422,
        ),
    ] {
        let answer = server
            .admin(Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            status,
            "{path} {body}: {}",
            answer.text().await.unwrap()
        );
    }
    let state = server.state().await;
    let provider = state.provider("a//b").unwrap();
    assert_eq!(
        (
            provider.priority,
            provider.display_name.as_str(),
            provider.name.as_str()
        ),
        (5, "Kept", "Renamed")
    );
    let model = state.model("m//x").unwrap();
    assert_eq!(
        (model.context_window, model.name.as_str()),
        (16384, "Tab\t")
    );
    server.stop().await;
}

/// A store file removed (or replaced) under the running server takes no
/// more writes: they went into the unlinked file, acknowledged and lost at
/// the restart, while `/readyz` said ready. Now 503 naming the file, and
/// not ready.
#[tokio::test]
async fn a_store_file_removed_under_the_server_takes_no_writes() {
    let (dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    server.add_provider("kept").await;
    let before = server.version().await;
    assert_eq!(server.get("/readyz").await.status(), 200);
    for name in ["sync.db", "sync.db-wal", "sync.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let answer = server
        .admin(reqwest::Method::POST, "/providers")
        .json(&serde_json::json!({"id": "lost", "name": "Lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    // No Retry-After: trying again changes nothing until a restart (a
    // black-box check, 2026-12-04: it said one second).
    assert!(answer.headers().get("retry-after").is_none());
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("was removed or replaced"), "{message}");
    assert_eq!(server.version().await, before);
    assert_eq!(server.get("/readyz").await.status(), 503);
    // Another file put in its place is not this store either.
    std::fs::write(&db, b"").unwrap();
    assert_eq!(server.get("/readyz").await.status(), 503);
    server.stop().await;
}

/// From a review (2026-12-05): an admin write refused because the SQLite
/// store was busy (another program held its write lock past the busy
/// timeout) kept its audit record in the log only, with the reason "the
/// store takes no writes now", which is a read-only database's. The
/// warning gives the reason that holds.
#[tokio::test]
async fn a_refusal_by_a_busy_store_is_logged_with_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (child, base) = spawn_binary_with(
        &["--database", db.to_str().unwrap(), "--admin-token", TOKEN],
        &[("NO_COLOR", "1")],
        log.into(),
    );
    let _child = KillOnDrop(child);
    let http = reqwest::Client::new();
    let write = |id: &str| {
        http.post(format!("{base}/admin/providers"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"id": id, "name": "P"}))
            .send()
    };
    assert_eq!(write("p0").await.unwrap().status(), 201);
    // Another program takes the database's write lock and keeps it.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut other = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(write("p1").await.unwrap().status(), 503);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let logged = loop {
        let logged = std::fs::read_to_string(&log_path).unwrap();
        if logged.contains("is in the log only") {
            break logged;
        }
        assert!(std::time::Instant::now() < deadline, "{logged}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert!(
        logged.contains("is in the log only: the store does not answer now"),
        "{logged}"
    );
    assert!(!logged.contains("takes no writes"), "{logged}");
    // Free again, the store takes writes.
    assert_eq!(write("p2").await.unwrap().status(), 201);
}
