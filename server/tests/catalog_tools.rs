//! The binary's catalog tools (`catalog check`, `catalog diff`) with their
//! exit codes, live reload of a running server on a file change and on
//! SIGHUP, and its bounded shutdown.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use common::TOKEN;

const BIN: &str = env!("CARGO_BIN_EXE_provider-sync-server");

const CATALOG: &str = r#"
revision = 1

[[providers]]
id = "alpha"
name = "Alpha"

[[models]]
id = "alpha-large"
provider_id = "alpha"
name = "Alpha Large"
context_window = 128000

[[models]]
id = "alpha-small"
provider_id = "alpha"
name = "Alpha Small"
context_window = 32000
"#;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn catalog_check_answers_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, CATALOG).unwrap();
    let (code, out, _) = run(&["catalog", "check", s(&good)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 1 providers, 2 models"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        CATALOG.replace("context_window = 32000", "context_window = 0"),
    )
    .unwrap();
    let (code, _, err) = run(&["catalog", "check", s(&bad)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:18:") && err.contains("models[1].context_window"),
        "{err}"
    );

    // A provider's own fields are checked as an admin write's are.
    let bad = dir.path().join("bad-provider.toml");
    std::fs::write(
        &bad,
        CATALOG.replace("name = \"Alpha\"", "name = \"Al\\u0007pha\""),
    )
    .unwrap();
    let (code, _, err) = run(&["catalog", "check", s(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad-provider.toml:") && err.contains("providers[0].name"),
        "{err}"
    );

    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/litellm/model_prices_sample.json"
    );
    let (code, out, _) = run(&["catalog", "check", sample, "--catalog-providers", "openai"]);
    assert_eq!(code, 0);
    assert!(out.contains("valid: 1 providers, 2 models"), "{out}");
    assert!(
        out.contains("sample_spec"),
        "the skipped entries are named: {out}"
    );

    // LiteLLM's filters given for a TOML file (which has no LiteLLM
    // entries) are refused, not dropped without a word.
    for flag in ["--catalog-providers", "--catalog-modes"] {
        let (code, out, err) = run(&["catalog", "check", s(&good), flag, "openai"]);
        assert_eq!(code, 2, "{flag}: {out}");
        assert!(
            err.contains("good.toml: --catalog-modes and --catalog-providers choose entries of LiteLLM's catalog"),
            "{flag}: {err}"
        );
    }
    // A path that never ends was read until memory ran out (a black-box
    // check, 2026-12-04).
    let (code, out, err) = run(&["catalog", "check", "/dev/zero"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("larger than 64 MiB"), "{err}");
    // A regular file past it is refused by its size, before it is read (a
    // sparse file: nothing written to the disk).
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let (code, out, err) = run(&["catalog", "check", s(&huge)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("larger than 64 MiB"), "{err}");
}

/// A store whose head row was deleted by hand while its rows stay is read
/// as a server opening it would have it (its rows, in a new epoch), not as
/// no store at all (a new one to seed, every entity to add); and it is
/// left as it was (the server would make the head row, not the dry run).
#[tokio::test]
async fn catalog_diff_reads_a_store_without_its_head_row_as_a_server_would() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    let mut server = Server::start(&db, &file, &[]);
    server.stop();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("DELETE FROM sync_meta")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let before = std::fs::read(&db).unwrap();
    let files_before = listing(dir.path());

    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("a new store would be seeded"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 0 to change, 0 to remove"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is unchanged"
    );
    assert_eq!(listing(dir.path()), files_before, "no file added beside it");
}

#[test]
fn catalog_diff_prints_the_plan_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();

    // No store yet: everything would be added; no file is created.
    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("+ provider_added alpha"), "{out}");
    assert!(
        out.contains("Plan: 3 to add, 0 to change, 0 to remove"),
        "{out}"
    );
    assert!(!db.exists(), "a dry run creates nothing");

    // Seed the store by running the server once.
    let mut server = Server::start(&db, &file, &[]);
    server.stop();
    let (code, out, _) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Plan: 0 to add, 0 to change, 0 to remove"),
        "{out}"
    );

    let before = std::fs::read(&db).unwrap();
    let files_before = listing(dir.path());
    let edited = CATALOG
        .replace("revision = 1", "revision = 2")
        .replace("context_window = 128000", "context_window = 200000")
        .replace(
            "[[models]]\nid = \"alpha-small\"\nprovider_id = \"alpha\"\nname = \"Alpha Small\"\ncontext_window = 32000\n",
            "",
        );
    std::fs::write(&file, &edited).unwrap();
    let (code, out, _) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("~ model_updated alpha-large: context_window: 128000 -> 200000"),
        "{out}"
    );
    assert!(out.contains("- model_removed alpha-small"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 1 to remove (2 events)"),
        "{out}"
    );
    assert!(!out.contains("Warning"), "the revision was raised: {out}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is unchanged"
    );
    assert_eq!(listing(dir.path()), files_before, "no file added beside it");

    // A revision older than the applied one applies nothing, and says so.
    std::fs::write(&file, CATALOG.replace("revision = 1", "revision = 0")).unwrap();
    let (code, out, _) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("revision 0 is older than the applied revision 1"),
        "{out}"
    );
    // The applied revision with other content (an edit that did not raise
    // it, or a copy cut short that still reads): planned, with a warning.
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha Large\"", "name = \"Alpha XL\""),
    )
    .unwrap();
    let (code, out, _) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("~ model_updated alpha-large"), "{out}");
    assert!(
        out.contains("Warning: the catalog's content changed but its `revision` did not"),
        "{out}"
    );

    std::fs::write(&file, "[[providers]]\nid = \"x\"\n").unwrap();
    let (code, _, err) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 2, "{err}");

    // A SQLite database of another application, which the server refuses,
    // was planned as a new store to seed (a black-box check, 2026-12-04).
    std::fs::write(&file, CATALOG).unwrap();
    let other = dir.path().join("other.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE foo (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", s(&other)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("is a SQLite database of something else (its tables: foo)"),
        "{err}"
    );
    assert!(!out.contains("would be seeded"), "{out}");
    // The other tools refuse it too, and leave no lock file beside it
    // (`store copy` and `backup` left `other.db.lock`: a review,
    // 2026-12-04).
    let backup = dir.path().join("b.db");
    let tools: [(&[&str], &str); 2] = [
        (
            &[
                "store",
                "copy",
                "--from",
                s(&other),
                "--to",
                "postgres://u@127.0.0.1:9/x",
            ],
            "is a SQLite database of something else (its tables: foo)",
        ),
        (&["backup", "--database", s(&other), s(&backup)], "no store"),
    ];
    for (args, says) in tools {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        let lock = dir.path().join("other.db.lock");
        assert!(!lock.exists(), "{args:?} left {}", lock.display());
        assert!(!backup.exists());
    }
    // Nor beside a file that is no database at all (`backup` left
    // `notes.txt.lock`: a review, 2026-12-05).
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database\n".repeat(100)).unwrap();
    let (code, out, err) = run(&["backup", "--database", s(&notes), s(&backup)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("file is not a database"), "{err}");
    assert!(!dir.path().join("notes.txt.lock").exists());
    assert!(!backup.exists());
    // A directory is named as one (it was "disk I/O error").
    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", s(dir.path())]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is a directory, not a SQLite file"), "{err}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The server binary on a free loopback port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path, catalog: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["--database", s(db), "--catalog", s(catalog)];
        args.extend(["--admin-token", TOKEN, "--health-interval-ms", "3600000"]);
        args.extend(extra);
        let (child, base) = common::spawn_binary(&args);
        Self { child, base }
    }

    fn get(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    fn version(&self) -> u64 {
        let response = self.get("/version");
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        value["version"].as_u64().unwrap()
    }

    fn metric(&self, name: &str) -> String {
        self.get("/metrics")
            .lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the catalog reloads with `result` were counted `count`
    /// times (10 s at most).
    fn wait_for_reloads(&self, result: &str, count: u32) {
        let name = format!("provider_sync_catalog_reloads_total{{result=\"{result}\"}}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.metric(&name).ends_with(&format!(" {count}")) {
            assert!(
                Instant::now() < deadline,
                "no {count} {result} reloads: {}",
                self.metric("provider_sync_catalog_reloads")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the version is `want` (10 s at most).
    fn wait_for_version(&self, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.version() != want {
            assert!(
                Instant::now() < deadline,
                "version {} never became {want}",
                self.version()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(&mut self) {
        self.signal("TERM");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server of `catalog`, written to `catalog.toml` in a new folder (with
/// the store beside it), started with `extra` options; at version 3.
fn serving(catalog: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Server) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, catalog).unwrap();
    let server = Server::start(&dir.path().join("sync.db"), &file, extra);
    assert_eq!(server.version(), 3);
    (dir, file, server)
}

/// SIGHUP reloads the catalog; a server without one ignores it (its
/// default action ended the process: a service manager's `kill -HUP`
/// reload took the server down).
#[test]
fn sighup_without_a_catalog_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let (child, base) = common::spawn_binary(&["--database", s(&db), "--admin-token", TOKEN]);
    let mut server = Server { child, base };
    assert_eq!(server.version(), 0);
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server ended on SIGHUP"
    );
    assert_eq!(server.version(), 0);
    server.stop();
}

/// Catalog options given without a catalog (a deployment that forgot
/// `--catalog`, or left `PROVIDER_SYNC_CATALOG` empty) are said to do
/// nothing, naming them (they were dropped without a word).
#[test]
fn catalog_options_without_a_catalog_are_warned_of() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let mut command = Command::new(BIN);
    command
        .args(["--database", s(&db), "--catalog-watch"])
        .args(["--catalog-providers", "openai"])
        .env("PROVIDER_SYNC_CATALOG", "")
        .stderr(std::process::Stdio::piped());
    let (mut child, base) = common::spawn_listening(command);
    let mut stderr = child.stderr.take().unwrap();
    let mut server = Server { child, base };
    assert_eq!(server.version(), 0);
    server.stop();
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("catalog options given without --catalog"),
        "{log}"
    );
    assert!(
        log.contains("--catalog-watch, --catalog-providers"),
        "{log}"
    );
}

#[test]
fn a_watched_file_is_reloaded_and_a_broken_edit_refused() {
    let (dir, file, mut server) = serving(CATALOG, &["--catalog-watch"]);

    // An edit: one event.
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha Large\"", "name = \"Alpha XL\""),
    )
    .unwrap();
    server.wait_for_version(4);
    assert!(server.get("/models/alpha-large").contains("Alpha XL"));

    // A broken edit is refused; the running catalog stays.
    std::fs::write(
        &file,
        CATALOG.replace("context_window = 32000", "context_window = -1"),
    )
    .unwrap();
    server.wait_for_reloads("refused", 1);
    assert_eq!(server.version(), 4);
    assert!(server.get("/models/alpha-large").contains("Alpha XL"));

    // Fixed again: the difference from the last applied file.
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha Small\"", "name = \"Alpha S\""),
    )
    .unwrap();
    server.wait_for_version(6);
    assert!(server.get("/models/alpha-large").contains("Alpha Large"));
    assert!(server.get("/models/alpha-small").contains("Alpha S"));

    // Saved the way editors save: a new file renamed over the old one.
    let next = dir.path().join(".catalog.toml.swp");
    std::fs::write(
        &next,
        CATALOG.replace("name = \"Alpha\"", "name = \"Alpha Renamed\""),
    )
    .unwrap();
    std::fs::rename(&next, &file).unwrap();
    server.wait_for_version(8);
    assert!(server.get("/providers/alpha").contains("Alpha Renamed"));
    server.stop();
}

/// A file written in two steps with a pause between (a script's `cat >
/// file` of a slow source, a copy) is read once it stays still: its first
/// half parses, and was applied (removing what the second half holds, and
/// admin edits on it with it), then the whole.
#[test]
fn a_watched_file_written_in_steps_is_read_once_still() {
    let (_dir, file, server) = serving(CATALOG, &["--catalog-watch"]);
    let whole = CATALOG
        .replace("revision = 1", "revision = 2")
        .replace("name = \"Alpha Large\"", "name = \"Alpha XL\"");
    let half = &whole[..whole.rfind("[[models]]").unwrap()];
    std::fs::write(&file, half).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&file, &whole).unwrap();
    // The rename alone: nothing removed and added back.
    server.wait_for_version(4);
    server.wait_for_reloads("applied", 1);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(server.version(), 4);
    assert!(server.get("/models/alpha-small").contains("Alpha Small"));
    assert!(server.get("/models/alpha-large").contains("Alpha XL"));
}

/// A file event that changes no content (a touch, a save of the same text,
/// another file in the folder) reloads nothing; SIGHUP reloads even then,
/// also when it comes in one burst with file events.
#[test]
fn only_a_change_of_content_or_sighup_reloads_a_watched_catalog() {
    let (dir, file, mut server) = serving(CATALOG, &["--catalog-watch"]);
    let unchanged = "provider_sync_catalog_reloads_total{result=\"unchanged\"}";

    // A touch, a save of the same text (written beside it and renamed
    // over it, as editors save) and another file in the folder.
    std::fs::File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let same = dir.path().join(".catalog.toml.new");
    std::fs::write(&same, CATALOG).unwrap();
    std::fs::rename(&same, &file).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not the catalog").unwrap();
    // Past the settle time (200 ms), so that these are a burst of their
    // own, reloaded (wrongly) before the change below if at all.
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha Large\"", "name = \"Alpha XL\""),
    )
    .unwrap();
    server.wait_for_version(4);
    assert_eq!(server.metric(unchanged), "", "a touch reloaded the catalog");

    // The same content saved and a SIGHUP at once: reloaded.
    std::fs::write(
        &same,
        CATALOG.replace("name = \"Alpha Large\"", "name = \"Alpha XL\""),
    )
    .unwrap();
    std::fs::rename(&same, &file).unwrap();
    server.signal("HUP");
    server.wait_for_reloads("unchanged", 1);
    assert_eq!(server.version(), 4);
    server.stop();
}

/// A watched file that goes missing is refused once, not again at every
/// other event in its folder (the store's own files beside it changed
/// several times a second: an error logged and counted each time), and
/// read again when it is back.
#[test]
fn a_missing_watched_file_is_refused_once_until_it_is_back() {
    let (dir, file, mut server) = serving(CATALOG, &["--catalog-watch"]);
    std::fs::remove_file(&file).unwrap();
    server.wait_for_reloads("refused", 1);
    // Other files in the folder change, in bursts past the settle time.
    for n in 0..4 {
        std::fs::write(dir.path().join("notes.txt"), format!("note {n}")).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha Large\"", "name = \"Alpha XL\""),
    )
    .unwrap();
    server.wait_for_version(4);
    let refused = "provider_sync_catalog_reloads_total{result=\"refused\"}";
    assert_eq!(server.metric(refused), format!("{refused} 1"));
    server.stop();
}

#[test]
fn a_litellm_base_file_is_watched_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let base = dir.path().join("litellm.json");
    let entry = |price: &str| {
        format!(
            r#"{{"m-1": {{"litellm_provider": "p", "mode": "chat", "max_input_tokens": 1000, "input_cost_per_token": {price}, "output_cost_per_token": 1e-06}}}}"#
        )
    };
    std::fs::write(&base, entry("2e-06")).unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, "revision = 1\n[litellm]\nfile = \"litellm.json\"\n").unwrap();
    let mut server = Server::start(&db, &file, &["--catalog-watch"]);
    assert_eq!(server.version(), 2);
    assert!(
        server
            .get("/models/m-1")
            .contains("\"input_per_million\":2.0")
    );
    std::fs::write(&base, entry("3e-06")).unwrap();
    server.wait_for_version(3);
    assert!(
        server
            .get("/models/m-1")
            .contains("\"input_per_million\":3.0")
    );

    // The LiteLLM file renamed: refused once; the TOML file then pointed
    // at its new name is read (it was not: the missing file stopped every
    // later change from counting as one).
    let renamed = dir.path().join("prices.json");
    std::fs::rename(&base, &renamed).unwrap();
    server.wait_for_reloads("refused", 1);
    std::fs::write(&renamed, entry("4e-06")).unwrap();
    std::fs::write(&file, "revision = 2\n[litellm]\nfile = \"prices.json\"\n").unwrap();
    server.wait_for_version(4);
    assert!(
        server
            .get("/models/m-1")
            .contains("\"input_per_million\":4.0")
    );
    server.stop();
}

#[test]
fn sighup_reloads_the_catalog() {
    let (_dir, file, mut server) = serving(CATALOG, &[]);
    std::fs::write(
        &file,
        CATALOG.replace("name = \"Alpha\"", "name = \"Alpha Inc\""),
    )
    .unwrap();
    // Without --catalog-watch nothing happens until the signal.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.version(), 3);
    server.signal("HUP");
    server.wait_for_version(4);
    assert!(server.get("/providers/alpha").contains("Alpha Inc"));
    let applied = server.metric("provider_sync_catalog_reloads_total{result=\"applied\"}");
    assert!(applied.ends_with(" 1"), "{applied}");
    // The same file again: nothing.
    server.signal("HUP");
    server.wait_for_reloads("unchanged", 1);
    assert_eq!(server.version(), 4);
    server.stop();
}

/// SIGHUP while the server starts (here while it waits for another
/// process's store lock) neither ends it (the signal's default action did,
/// exit 129: a service manager's reload during a rollout took the new
/// process down) nor is lost: once the server runs, the catalog is read
/// again.
#[test]
fn sighup_during_the_start_is_heard_once_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    let (holder, _) = common::spawn_binary(&["--database", s(&db), "--admin-token", TOKEN]);
    let mut holder = Server {
        child: holder,
        base: String::new(),
    };
    let mut waiting = Command::new(BIN);
    waiting.args(["--database", s(&db), "--catalog", s(&file)]);
    waiting.args(["--admin-token", TOKEN, "--health-interval-ms", "3600000"]);
    waiting.args(["--store-lock-timeout-ms", "60000"]);
    let mut waiting = waiting
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "it waits for the lock"
    );
    let status = Command::new("kill")
        .args(["-HUP", &waiting.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    let ended = waiting.try_wait().unwrap();
    if ended.is_some() {
        let _ = waiting.kill();
    }
    assert_eq!(ended, None, "SIGHUP during the start ended the server");
    holder.stop();
    // Now it starts: its first line says where it listens.
    let base = common::listening_at(&mut waiting);
    let mut server = Server {
        child: waiting,
        base,
    };
    assert_eq!(server.version(), 3);
    // The signal heard during the start: one reload of the file, which
    // the start had just applied.
    server.wait_for_reloads("unchanged", 1);
    assert_eq!(server.version(), 3);
    server.stop();
}

/// A plain LiteLLM file taken out of a wheel with `unzip` keeps the date
/// the archive holds (1980-01-01 for some releases): judged older than the
/// one applied by its modification time, it applies nothing, and
/// `catalog diff` says why and what to do (it said only "older").
#[test]
fn a_litellm_file_dated_by_unzip_is_older_and_the_diff_says_what_to_do() {
    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/litellm/model_prices_sample.json"
    );
    let dated = |path: &Path, text: &str, secs: u64| {
        std::fs::write(path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let json = dir.path().join("litellm.json");
    let sample = std::fs::read_to_string(SAMPLE).unwrap();
    dated(&json, &sample, 1_800_000_000);
    Server::start(&db, &json, &[]).stop();
    let newer = sample.replace(
        "\"max_output_tokens\": 16384",
        "\"max_output_tokens\": 9999",
    );
    assert_ne!(newer, sample);
    // unzip's date for a release built reproducibly.
    dated(&json, &newer, 315_532_800);
    let (code, out, err) = run(&["catalog", "diff", s(&json), "--database", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(modified at 315532800, Unix seconds) is older than the one applied"),
        "{out}"
    );
    assert!(out.contains("`unzip` keeps the archive's"), "{out}");
    assert!(out.contains("`touch` it"), "{out}");
}

/// `catalog diff` names the entries it cannot apply in full (it counted
/// them and said the log would tell, which it did not): here a replacement
/// the file gives that an admin deleted.
#[test]
fn catalog_diff_names_what_it_cannot_apply_in_full() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    let mut server = Server::start(&db, &file, &[]);
    let host = common::host_of(&server.base);
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "DELETE /api/provider-sync/admin/models/alpha-small HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    server.stop();
    std::fs::write(
        &file,
        CATALOG.replace("revision = 1", "revision = 2").replace(
            "context_window = 128000",
            "context_window = 128000\nreplacement_model_id = \"alpha-small\"",
        ),
    )
    .unwrap();
    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 of the file's entries not applied in full (alpha-large): "),
        "{out}"
    );
}

#[test]
fn shutdown_drains_for_a_bounded_time() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.db");
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    let mut server = Server::start(
        &db,
        &file,
        &[
            "--shutdown-timeout-ms",
            "300",
            "--request-timeout-ms",
            "120000",
            "--idle-timeout-ms",
            "180000",
        ],
    );
    // A request that never finishes sending its body.
    let host = server
        .base
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stuck = std::net::TcpStream::connect(&host).unwrap();
    write!(
        stuck,
        "POST /api/provider-sync/sync HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    // It exits within its drain bound, not after the request's 120 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            // 1: a request in flight was cut short.
            assert_eq!(status.code(), Some(1), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stuck);
}

/// A PostgreSQL store that cannot be reached: the tools say why (it said
/// only "pool timed out") and never print the URL's password.
#[test]
fn the_tools_say_why_a_postgresql_store_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://sync:s3cret-pw@127.0.0.1:{port}/catalog");
    let (code, out, err) = run(&["catalog", "diff", s(&file), "--database", &url]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("sync:***@"), "{err}");
    let backup = dir.path().join("b.db");
    let (code, out, err) = run(&["backup", "--database", &url, s(&backup)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Connection refused"), "{err}");
    for text in [&out, &err] {
        assert!(!text.contains("s3cret-pw"), "{text}");
    }
    assert!(!backup.exists());
}

/// Found by a black-box check (2026-12-04): a store URL of another scheme
/// (`postgress://…` misspelt, `mysql://…`) was opened as a SQLite file of
/// that name, by the server and by the tools, which printed its password
/// ("no store at postgress://u:PASSWORD@… yet", a diff planning a new store
/// and exiting 1). Each refuses it now, naming the scheme alone, and
/// creates nothing.
#[test]
fn a_store_url_of_another_scheme_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, CATALOG).unwrap();
    let backup = dir.path().join("b.db");
    let url = "postgress://u:hunter2secret@127.0.0.1:9/x";
    let runs: [(&[&str], i32); 4] = [
        (&["catalog", "diff", s(&file), "--database", url], 2),
        (&["backup", "--database", url, s(&backup)], 2),
        (
            &[
                "store",
                "copy",
                "--from",
                url,
                "--to",
                "postgres://u@127.0.0.1:9/x",
            ],
            2,
        ),
        // The server itself, before it listens or opens anything: an
        // invalid configuration (exit code 1, as every one).
        (&["--bind", "127.0.0.1:0", "--database", url], 1),
    ];
    for (args, code) in runs {
        let output = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert_eq!(output.status.code(), Some(code), "{args:?}: {out}{err}");
        assert!(
            err.contains("`postgress://` is no store this server opens"),
            "{args:?}: {err}"
        );
        assert!(!format!("{out}{err}").contains("hunter2secret"), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["catalog.toml"], "nothing created");
}
