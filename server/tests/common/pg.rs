//! A PostgreSQL server of the tests' own: Debian's binaries (installed by
//! `scripts/setup.sh`), `initdb` in a temporary directory, a free loopback
//! port, stopped when the test process ends (a watchdog shell waits for it)
//! or when dropped. Nothing assumes a running service.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Debian's PostgreSQL binaries, newest version first.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup.sh installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn root() -> bool {
    // SAFETY-free: read our own uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root).
fn as_postgres(program: &Path) -> Command {
    if root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl PgServer {
    /// Initialises and starts a server; a watchdog stops it and removes its
    /// directory when this process ends.
    // The watchdog is meant to outlive this process (it is not waited on:
    // it ends only after this process has).
    #[allow(clippy::zombie_processes)]
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "provider-sync-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let output = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = Self {
            dir,
            port: free_port(),
            bin,
        };
        server.start_again();
        // Stops the server once this process is gone, however it ends.
        let watchdog = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = server.stop_command(),
            dir = server.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        server
    }

    fn stop_command(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        if root() {
            format!(
                "runuser -u postgres -- '{}' -D '{}' -m immediate stop >/dev/null 2>&1",
                pg_ctl.display(),
                data.display()
            )
        } else {
            format!(
                "'{}' -D '{}' -m immediate stop >/dev/null 2>&1",
                pg_ctl.display(),
                data.display()
            )
        }
    }

    /// Starts (again) on the same port and data.
    pub fn start_again(&self) {
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c full_page_writes=off",
                self.port,
                self.dir.display()
            ))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&output.stdout),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Stops at once, as a crash would.
    pub fn stop_immediate(&self) {
        let status = Command::new("sh")
            .args(["-c", &self.stop_command()])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let output = Command::new("psql")
            .arg(self.url("postgres"))
            .args(["-q", "-c", &format!("CREATE DATABASE \"{name}\"")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || stderr.contains("already exists"),
            "CREATE DATABASE: {stderr}"
        );
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_command()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One server for the whole test binary, started on first use.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

fn name_for(key: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    format!("t_{:016x}", hasher.finish())
}

/// A fresh database on the shared server; the same `key` gives the same
/// database (a restart of one store).
pub fn database_for(key: &Path) -> String {
    shared().database(&name_for(key))
}

/// Drops the database of `key` (a wiped store).
pub fn drop_database_for(key: &Path) {
    let output = Command::new("psql")
        .arg(shared().url("postgres"))
        .args([
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", name_for(key)),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "DROP DATABASE: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether the suites run on PostgreSQL (`PROVIDER_SYNC_TEST_STORE=postgres`,
/// set by `scripts/test.sh` for its second pass) instead of SQLite.
pub fn selected() -> bool {
    std::env::var("PROVIDER_SYNC_TEST_STORE").is_ok_and(|v| v == "postgres")
}
