//! Command-line flags and their environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::catalog::{CatalogFormat, LitellmFilter, LoadOptions};

/// `--ws-threads` past this is a mistake (and past what the OS gives, an
/// abort rather than an error).
const MAX_WS_THREADS: usize = 256;

/// The authoritative provider-sync server: REST, WebSocket and admin API over
/// an embedded SQLite store, or PostgreSQL for several instances.
#[derive(Debug, Clone, Parser)]
#[command(name = "provider-sync-server", version, about)]
pub struct Config {
    /// Address to listen on: an IP address and port (`localhost:PORT` is
    /// 127.0.0.1's).
    #[arg(long, env = "PROVIDER_SYNC_BIND", default_value = "127.0.0.1:8080", value_parser = bind_address)]
    pub bind: SocketAddr,

    /// Store URL: `sqlite://FILE` (created if missing), a plain file path, or
    /// `postgres://…` (several instances on one database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://provider-sync.db"
    )]
    pub database: String,

    /// A catalog file (TOML, or LiteLLM's model_prices_and_context_window.json)
    /// reconciled into the store at start: what the file changed since it was
    /// last applied becomes events; admin-API edits of anything else stay.
    #[arg(long, env = "PROVIDER_SYNC_CATALOG")]
    pub catalog: Option<PathBuf>,

    #[command(flatten)]
    pub catalog_source: CatalogSource,

    /// Reconcile the catalog again whenever its file changes (SIGHUP always
    /// does).
    #[arg(long, env = "PROVIDER_SYNC_CATALOG_WATCH", value_parser = BoolishValueParser::new())]
    pub catalog_watch: bool,

    /// Start a new epoch (after restoring the database from a backup): every
    /// client takes a full state instead of trusting its version.
    #[arg(long, env = "PROVIDER_SYNC_NEW_EPOCH", value_parser = BoolishValueParser::new())]
    pub new_epoch: bool,

    /// Bearer token for the admin API, at least 32 bytes; the audit log
    /// names it `admin`. Without it (and without `--admin-tokens-file`) the
    /// admin API answers 401.
    #[arg(long, env = "PROVIDER_SYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A file of named admin tokens, one `name:token` per line (blank lines
    /// and `#` comments allowed; each token at least 32 bytes): several
    /// operators, each named in the audit log. Read at start.
    #[arg(long, env = "PROVIDER_SYNC_ADMIN_TOKENS_FILE")]
    pub admin_tokens_file: Option<PathBuf>,

    /// A file of named read tokens, in the same format. When set, the read
    /// API and the WebSocket answer only requests with a token (read or
    /// admin): `Authorization: Bearer <token>`, or on the WebSocket the
    /// `access_token` query parameter. Operations endpoints stay open.
    #[arg(long, env = "PROVIDER_SYNC_READ_TOKENS_FILE")]
    pub read_tokens_file: Option<PathBuf>,

    /// Days an admin write's audit record is kept (`GET /admin/audit`).
    #[arg(long, env = "PROVIDER_SYNC_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    pub audit_retention_days: u32,

    /// Path prefix every endpoint is mounted under (starts with `/`, or is
    /// empty for the root; letters, digits, `/`, `-._~!$&'()*+,;=:@` and
    /// `%XX` escapes).
    #[arg(
        long,
        env = "PROVIDER_SYNC_PREFIX",
        default_value = "/api/provider-sync"
    )]
    pub prefix: String,

    /// A directory served at `/` (for example `examples/plain-html`).
    #[arg(long, env = "PROVIDER_SYNC_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// The origins (`https://app.example.com`) whose pages may use the API,
    /// comma-separated: they govern CORS and the WebSocket upgrade's
    /// `Origin` alike, and a request from any other origin is refused with
    /// 403. Empty allows every origin (a warning at start when the server
    /// listens beyond loopback).
    #[arg(
        long,
        visible_alias = "allowed-origins",
        env = "PROVIDER_SYNC_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// How long (ms) a version must stay current before `GET /state` is
    /// compressed for it once at the best brotli and gzip levels (in the
    /// background; until then answers are compressed on the fly).
    #[arg(
        long,
        env = "PROVIDER_SYNC_PRECOMPRESS_AFTER_MS",
        default_value_t = 1_000
    )]
    pub precompress_after_ms: u64,

    /// Open connections (WebSocket sessions included) served; past it every
    /// request but `/healthz` and `/readyz` is answered 503 with
    /// `Retry-After`, and past 125% of it new connections are closed at once.
    #[arg(long, env = "PROVIDER_SYNC_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,

    /// Open connections from one client address (IPv6: its /64; the
    /// `--trusted-proxies` excepted), so that one address cannot hold every
    /// connection; past it a new one is closed at once. `0`: no limit.
    /// Default: 1024, or a quarter of `--max-connections` (as fitted to the
    /// open-file limit) when that is less.
    #[arg(long, env = "PROVIDER_SYNC_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,

    /// Open WebSocket sessions; past it an upgrade is answered 503 with
    /// `Retry-After` (the SDK then backs off or polls).
    #[arg(long, env = "PROVIDER_SYNC_MAX_WS_SESSIONS", default_value_t = 10_000)]
    pub max_ws_sessions: usize,

    /// Open WebSocket sessions from one client address (IPv6: its /64),
    /// so that one address cannot take every session; past it an upgrade
    /// is answered 429 with `Retry-After`. `0`: no limit per address.
    #[arg(
        long,
        env = "PROVIDER_SYNC_MAX_WS_SESSIONS_PER_ADDRESS",
        default_value_t = 1_000
    )]
    pub max_ws_sessions_per_address: usize,

    /// How long (ms) a client may take to send a request's headers; a
    /// slow-header client does not hold a socket longer.
    #[arg(
        long,
        env = "PROVIDER_SYNC_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// A connection on which neither side has sent a byte for this long (ms)
    /// is closed (idle keep-alive connections; WebSocket sessions have their
    /// heartbeats instead). Must exceed --request-timeout-ms.
    #[arg(long, env = "PROVIDER_SYNC_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// Requests per second each client address may make to the read API
    /// (`/state`, `/sync`, `/version`, `/providers`, `/models`,
    /// availability, `/ws`),
    /// with bursts of five seconds' worth; past it: 429 with `Retry-After`.
    /// 0 turns the limit off.
    #[arg(long, env = "PROVIDER_SYNC_READ_RATE_LIMIT", default_value_t = 100)]
    pub read_rate_limit: u32,

    /// Requests per second each client address may make to the admin API,
    /// failed authentications included, with bursts of five seconds' worth;
    /// past it: 429 with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "PROVIDER_SYNC_ADMIN_RATE_LIMIT", default_value_t = 20)]
    pub admin_rate_limit: u32,

    /// Load balancers and proxies (addresses or CIDR ranges, comma-separated)
    /// whose `X-Forwarded-For` names the client; from any other peer the
    /// header is ignored and the peer's address is the client's.
    #[arg(
        long,
        env = "PROVIDER_SYNC_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_net
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Change events kept for incremental sync; older clients get a full state.
    #[arg(long, env = "PROVIDER_SYNC_EVENT_RETENTION", default_value_t = 1000)]
    pub event_retention: u64,

    /// Bytes of change events kept (the newest that fit), beside the count.
    #[arg(
        long,
        env = "PROVIDER_SYNC_EVENT_RETENTION_BYTES",
        default_value_t = 16 * 1024 * 1024
    )]
    pub event_retention_bytes: u64,

    /// A SQLite store is written by one process at a time: how long (ms) a
    /// second process waits for the first to let go before it refuses to
    /// start (a redeploy that starts the new process first). On PostgreSQL:
    /// how long it waits at start for a database that does not answer yet.
    #[arg(
        long,
        env = "PROVIDER_SYNC_STORE_LOCK_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub store_lock_timeout_ms: u64,

    /// PostgreSQL: how often (ms) an instance reads the events other
    /// instances committed when no notification woke it.
    #[arg(
        long,
        env = "PROVIDER_SYNC_FOLLOW_INTERVAL_MS",
        default_value_t = 1_000
    )]
    pub follow_interval_ms: u64,

    /// How often the server sends a heartbeat on every WebSocket, in ms.
    #[arg(long, env = "PROVIDER_SYNC_HEARTBEAT_MS", default_value_t = 25_000)]
    pub heartbeat_ms: u64,

    /// A WebSocket silent for this long (ms) is closed.
    #[arg(
        long,
        env = "PROVIDER_SYNC_CLIENT_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub client_timeout_ms: u64,

    /// Frames queued for all WebSocket clients; a session that falls further
    /// behind sends what its client missed from the event log, or, when the
    /// log no longer reaches back, tells it to resync.
    #[arg(long, env = "PROVIDER_SYNC_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,

    /// Largest WebSocket message accepted from a client, in bytes.
    #[arg(long, env = "PROVIDER_SYNC_WS_MAX_MESSAGE", default_value_t = 64 * 1024)]
    pub ws_max_message: usize,

    /// Threads that run the WebSocket sessions, apart from the threads that
    /// answer HTTP: a change broadcast to thousands of sockets then never
    /// queues an admin write's answer or a `/sync` behind it. 0 runs the
    /// sessions on the serving threads. Default: one per CPU.
    #[arg(long, env = "PROVIDER_SYNC_WS_THREADS")]
    pub ws_threads: Option<usize>,

    /// A WebSocket client that takes no bytes of what is sent to it for this
    /// long (ms) is dropped; a slow but moving one keeps its session.
    #[arg(
        long,
        env = "PROVIDER_SYNC_WS_WRITE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub ws_write_timeout_ms: u64,

    /// Largest request body, in bytes (413 past it).
    #[arg(long, env = "PROVIDER_SYNC_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// HTTP requests that take longer (ms) are answered 504 (code `timeout`).
    #[arg(
        long,
        env = "PROVIDER_SYNC_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub request_timeout_ms: u64,

    /// On SIGTERM or Ctrl-C, how long (ms) requests in flight may take to
    /// finish before the process exits anyway (WebSocket clients get their
    /// close frame first).
    #[arg(
        long,
        env = "PROVIDER_SYNC_SHUTDOWN_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub shutdown_timeout_ms: u64,

    /// How often providers with a `health_url` are probed, in ms.
    #[arg(
        long,
        env = "PROVIDER_SYNC_HEALTH_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub health_interval_ms: u64,

    /// A probe that takes longer (ms) fails.
    #[arg(long, env = "PROVIDER_SYNC_HEALTH_TIMEOUT_MS", default_value_t = 5_000)]
    pub health_timeout_ms: u64,

    /// A successful probe slower than this (ms) marks the provider degraded.
    #[arg(
        long,
        env = "PROVIDER_SYNC_HEALTH_DEGRADED_MS",
        default_value_t = 2_000
    )]
    pub health_degraded_ms: u64,

    /// Consecutive failed probes that mark a provider unavailable (fewer mark
    /// it degraded).
    #[arg(long, env = "PROVIDER_SYNC_HEALTH_FAILURES", default_value_t = 2)]
    pub health_failures: u32,

    /// Let health probes reach loopback, private, link-local and other
    /// non-public addresses (an in-cluster model server, tests). Without it
    /// such targets are refused, whether written as an address or resolved
    /// from a name, so a `health_url` cannot be turned against the network
    /// the server runs in.
    #[arg(long, env = "PROVIDER_SYNC_HEALTH_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub health_allow_private: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// For an application that mounts provider-sync's router behind its own
    /// authentication ([`crate::ProviderSync`]): the admin API then takes
    /// every request that reaches it, without a token. Not a flag: the
    /// server binary always checks the token.
    #[arg(skip)]
    pub admin_trust_caller: bool,
}

/// How to read a catalog file.
#[derive(Debug, Clone, Default, Args)]
pub struct CatalogSource {
    /// The catalog file's format; `auto` goes by extension (.json is
    /// LiteLLM's), then content.
    #[arg(long, env = "PROVIDER_SYNC_CATALOG_FORMAT", value_enum, default_value_t = CatalogFormat::Auto)]
    pub catalog_format: CatalogFormat,

    /// LiteLLM's catalog: the `mode`s to import, comma-separated (default:
    /// chat).
    #[arg(long, env = "PROVIDER_SYNC_CATALOG_MODES", value_delimiter = ',')]
    pub catalog_modes: Vec<String>,

    /// LiteLLM's catalog: the `litellm_provider`s to import, comma-separated
    /// (default: all).
    #[arg(long, env = "PROVIDER_SYNC_CATALOG_PROVIDERS", value_delimiter = ',')]
    pub catalog_providers: Vec<String>,
}

impl CatalogSource {
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            format: self.catalog_format,
            litellm: LitellmFilter {
                modes: self.catalog_modes.clone(),
                providers: self.catalog_providers.clone(),
            },
        }
    }
}

/// Tools that run instead of the server.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Catalog file tools.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Store tools.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Writes a consistent copy of a store to OUT, a new SQLite file, while
    /// servers go on writing it. A server that opens the copy starts a new
    /// epoch by itself (every client takes a full state); restore by
    /// running a server on it, or, for PostgreSQL, by `store copy --from
    /// OUT --to` an empty database. Exit code 0: written; 2: refused.
    Backup {
        /// The store to copy (`sqlite://FILE`, a path, or `postgres://…`).
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "sqlite://provider-sync.db"
        )]
        database: String,
        /// The file to write; it must not exist.
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum StoreCommand {
    /// Copies a SQLite store into a new PostgreSQL database: the same epoch,
    /// versions, event log and applied catalog, so clients carry on without
    /// a full state. Stop the server that writes the SQLite store first. A
    /// backup (from `backup`) is copied in a new epoch, without its log.
    Copy {
        /// The SQLite store (`sqlite://FILE` or a path).
        #[arg(long)]
        from: String,
        /// The PostgreSQL database (`postgres://…`); it must be empty (no
        /// tables in its schema).
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum CatalogCommand {
    /// Checks a catalog file. Exit code 0: valid; 2: refused (the line and
    /// field are named).
    Check {
        file: PathBuf,
        #[command(flatten)]
        source: CatalogSource,
    },
    /// Prints the events that reconciling FILE into the store would emit,
    /// changing nothing. Exit code 0: nothing to change; 1: changes; 2: the
    /// file is refused (or the store cannot be read).
    Diff {
        file: PathBuf,
        /// The store (`sqlite://FILE`, a file path or `postgres://…`), read
        /// without any change.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "sqlite://provider-sync.db"
        )]
        database: String,
        #[command(flatten)]
        source: CatalogSource,
    },
}

impl Config {
    /// Refuses durations and sizes that cannot work, naming the flag.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("--heartbeat-ms", self.heartbeat_ms),
            ("--client-timeout-ms", self.client_timeout_ms),
            ("--ws-write-timeout-ms", self.ws_write_timeout_ms),
            ("--request-timeout-ms", self.request_timeout_ms),
            ("--shutdown-timeout-ms", self.shutdown_timeout_ms),
            ("--health-interval-ms", self.health_interval_ms),
            ("--health-timeout-ms", self.health_timeout_ms),
            ("--follow-interval-ms", self.follow_interval_ms),
            ("--event-retention", self.event_retention),
            ("--event-retention-bytes", self.event_retention_bytes),
            ("--ws-queue", self.ws_queue as u64),
            ("--ws-max-message", self.ws_max_message as u64),
            ("--body-limit", self.body_limit as u64),
            ("--max-connections", self.max_connections as u64),
            ("--max-ws-sessions", self.max_ws_sessions as u64),
            ("--header-read-timeout-ms", self.header_read_timeout_ms),
            ("--idle-timeout-ms", self.idle_timeout_ms),
            (
                "--audit-retention-days",
                u64::from(self.audit_retention_days),
            ),
            ("--health-failures", u64::from(self.health_failures)),
            ("--health-degraded-ms", self.health_degraded_ms),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(format!("{flag} must be greater than 0"));
            }
        }
        if self.idle_timeout_ms <= self.request_timeout_ms {
            return Err(format!(
                "--idle-timeout-ms ({}) must exceed --request-timeout-ms ({}): a request still being worked on would be cut",
                self.idle_timeout_ms, self.request_timeout_ms
            ));
        }
        if self.client_timeout_ms < self.heartbeat_ms {
            return Err(format!(
                "--client-timeout-ms ({}) must not be below --heartbeat-ms ({}): clients would be dropped between heartbeats",
                self.client_timeout_ms, self.heartbeat_ms
            ));
        }
        crate::store::normalized_url(&self.database)
            .map_err(|err| format!("--database (DATABASE_URL): {err}"))?;
        self.origins()?;
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            return Err(format!("--static-dir {}: not a directory", dir.display()));
        }
        if let Some(threads) = self.ws_threads
            && threads > MAX_WS_THREADS
        {
            return Err(format!(
                "--ws-threads ({threads}) must not exceed {MAX_WS_THREADS}: a thread or two per CPU is what helps"
            ));
        }
        if !self.prefix().is_empty() && !self.prefix().starts_with('/') {
            return Err(format!(
                "--prefix must start with / (or be empty), not {:?}",
                self.prefix
            ));
        }
        // What a request's path can hold as it is: a space, `?`, `#` or a
        // non-ASCII character would be sent encoded (or start the query),
        // and no request would ever reach the endpoints (written encoded,
        // `%20`, `%C3%A9`, they do: routes match the path as sent); `{` `}`
        // would be taken as a route's parameter.
        let prefix = self.prefix();
        let bad = prefix.char_indices().find(|&(i, c)| {
            !(prefix_char(c)
                || c == '%'
                    && prefix
                        .get(i + 1..i + 3)
                        .is_some_and(|hex| hex.chars().all(|h| h.is_ascii_hexdigit())))
        });
        if let Some((_, bad)) = bad {
            return Err(format!(
                "--prefix {:?}: {bad:?} cannot be in it as it is (letters, digits, / and -._~!$&'()*+,;=:@ can, and %XX escapes)",
                self.prefix
            ));
        }
        if prefix.len() > 1 {
            for segment in prefix[1..].split('/') {
                if matches!(segment, "." | "..") {
                    return Err(format!(
                        "--prefix {:?}: a `.` or `..` segment is not a path a browser keeps",
                        self.prefix
                    ));
                }
                if segment.starts_with([':', '*']) {
                    return Err(format!(
                        "--prefix {:?}: a segment may not start with `:` or `*` (the router's old parameter syntax)",
                        self.prefix
                    ));
                }
            }
        }
        Ok(())
    }

    /// The allowed origins (`--cors-origins`) as browsers send them:
    /// `scheme://host[:port]`, in lower case, without a default port or a
    /// trailing slash. `*` and anything that is not an origin (a path, a
    /// query, no host) are refused naming the value.
    pub fn origins(&self) -> Result<Vec<String>, String> {
        let mut origins = Vec::new();
        for given in &self.cors_origins {
            let given = given.trim();
            if given.is_empty() {
                continue;
            }
            let refuse = |why: &str| Err(format!("--cors-origins: {given:?} {why}"));
            if given == "*" {
                return refuse(
                    "is not an origin: leave --cors-origins empty to allow every origin, or name each (https://app.example.com)",
                );
            }
            let Ok(url) = url::Url::parse(given) else {
                return refuse(
                    "is not an origin (scheme://host[:port], such as https://app.example.com)",
                );
            };
            let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
                return refuse("is not an origin: it has no host (https://app.example.com)");
            };
            if host.contains('*') {
                return refuse(
                    "names no one origin: a wildcard never matches what browsers send; name each origin",
                );
            }
            if !matches!(url.path(), "" | "/")
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return refuse(
                    "is not an origin: a scheme, a host and an optional port, nothing else (https://app.example.com)",
                );
            }
            // As browsers send it: http(s) by the URL standard (lower case,
            // no default port); an app's own scheme (capacitor://localhost,
            // tauri://localhost, chrome-extension://id) in lower case.
            let origin = url.origin();
            origins.push(if origin.is_tuple() {
                origin.ascii_serialization()
            } else {
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}://{}{port}", url.scheme(), host.to_ascii_lowercase())
            });
        }
        Ok(origins)
    }

    /// [`Config::origins`], or where a config that was never checked has
    /// a value that is not an origin, the values as given, in lower case
    /// (still a list: never every origin by mistake).
    pub fn allowed_origins(&self) -> Vec<String> {
        self.origins().unwrap_or_else(|_| {
            self.cors_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect()
        })
    }

    /// The connection-level limits.
    pub fn connection_limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies.clone(),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }

    /// The defaults, as if no flag and no variable were given.
    pub fn defaults() -> Self {
        Self::parse_from(["provider-sync-server"])
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    pub fn ws_write_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_write_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The prefix without a trailing slash ("" mounts at the root).
    pub fn prefix(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }
}

/// An address or a CIDR range (`10.0.0.1`, `10.0.0.0/8`, `::1`).
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an address nor a CIDR range"))
}

/// A character a `--prefix` may hold as it is: an unreserved or
/// sub-delimiter character of a URL path (RFC 3986's `pchar` but `%`, which
/// only starts an escape), or `/`.
fn prefix_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(c)
}

/// `--bind`: an IP address and port, or `localhost:PORT` (read as
/// 127.0.0.1, not looked up: it is the loopback address whatever a
/// resolver says). Any other name is refused: which of its addresses to
/// listen on is the operator's choice.
fn bind_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if let Some(port) = text
        .get(..10)
        .filter(|host| host.eq_ignore_ascii_case("localhost:"))
        .and_then(|_| text.get(10..))
    {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' is not a port (0 to 65535)"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err("an IP address and port, such as 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080 or localhost:8080".into())
}

/// The flags an error message names that were given by their environment
/// variable rather than on the command line (`args`), each with the
/// variable's name: "--read-rate-limit" alone sends an operator to a
/// command line that lacks it. `set` says whether a variable is set (and
/// not empty: an empty one counts as unset).
pub fn from_environment(
    message: &str,
    args: &[std::ffi::OsString],
    set: impl Fn(&str) -> bool,
) -> Vec<String> {
    fn walk(command: &clap::Command, found: &mut Vec<(String, String)>) {
        for arg in command.get_arguments() {
            if let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) {
                found.push((format!("--{long}"), env.to_string_lossy().into_owned()));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, found);
        }
    }
    let mut flags = Vec::new();
    walk(&<Config as clap::CommandFactory>::command(), &mut flags);
    let named = |flag: &str| {
        message.match_indices(flag).any(|(at, _)| {
            !message[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let on_line = |flag: &str| {
        args.iter().filter_map(|a| a.to_str()).any(|a| {
            a == flag
                || a.strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let mut notes: Vec<String> = flags
        .into_iter()
        .filter(|(flag, env)| {
            named(flag) && !on_line(flag) && set(env) && !message.contains(env.as_str())
        })
        .map(|(flag, env)| format!("{flag} was given by the environment variable {env}"))
        .collect();
    notes.dedup();
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error about a flag set by its environment variable names the
    /// variable; one given on the command line, or not set, does not.
    #[test]
    fn an_error_names_the_environment_variable_that_gave_its_flag() {
        let args = |list: &[&str]| list.iter().map(Into::into).collect::<Vec<_>>();
        let message = "invalid value 'abc' for '--read-rate-limit <READ_RATE_LIMIT>'";
        let set = |name: &str| name == "PROVIDER_SYNC_READ_RATE_LIMIT";
        assert_eq!(
            from_environment(message, &args(&["s"]), set),
            [
                "--read-rate-limit was given by the environment variable PROVIDER_SYNC_READ_RATE_LIMIT"
            ]
        );
        assert!(
            from_environment(message, &args(&["s", "--read-rate-limit", "abc"]), set).is_empty()
        );
        assert!(from_environment(message, &args(&["s", "--read-rate-limit=abc"]), set).is_empty());
        assert!(from_environment(message, &args(&["s"]), |_| false).is_empty());
        // A message that names the variable already needs no note.
        let named = "--admin-token (PROVIDER_SYNC_ADMIN_TOKEN): the token is 5 bytes";
        assert!(from_environment(named, &args(&["s"]), |_| true).is_empty());
        // A flag whose name begins another's is not taken for it.
        let token = "--admin-token must be at least 32 bytes";
        let both = |name: &str| name.starts_with("PROVIDER_SYNC_ADMIN_TOKEN");
        assert_eq!(
            from_environment(token, &args(&["s"]), both),
            ["--admin-token was given by the environment variable PROVIDER_SYNC_ADMIN_TOKEN"]
        );
        let file = "--admin-tokens-file line 4: too short";
        assert_eq!(
            from_environment(file, &args(&["s"]), both),
            [
                "--admin-tokens-file was given by the environment variable PROVIDER_SYNC_ADMIN_TOKENS_FILE"
            ]
        );
    }

    /// Found by a black-box check (2026-12-07): `--bind localhost:8080`
    /// was refused ("invalid socket address syntax").
    #[test]
    fn bind_takes_addresses_and_localhost() {
        let bind = |text: &str| Config::try_parse_from(["s", "--bind", text]).map(|c| c.bind);
        assert_eq!(
            bind("localhost:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(bind("LOCALHOST:0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(bind("[::1]:9000").unwrap(), "[::1]:9000".parse().unwrap());
        assert_eq!(bind("0.0.0.0:80").unwrap(), "0.0.0.0:80".parse().unwrap());
        for refused in [
            "localhost:99999",
            "localhost:",
            "example.com:80",
            "8080",
            "localhost",
        ] {
            let err = bind(refused).unwrap_err().to_string();
            assert!(err.contains("--bind"), "{refused}: {err}");
        }
    }

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let mut config = Config::defaults();
        config.cors_origins = vec![
            "https://APP.example.com/".into(),
            " http://localhost:5173 ".into(),
            "https://b.example.com:443".into(),
            "".into(),
        ];
        assert_eq!(
            config.origins().unwrap(),
            [
                "https://app.example.com",
                "http://localhost:5173",
                "https://b.example.com"
            ]
        );
        assert_eq!(config.allowed_origins(), config.origins().unwrap());
        config.cors_origins = vec![
            "capacitor://localhost".into(),
            "tauri://LOCALHOST".into(),
            "chrome-extension://abcdefghijklmnop".into(),
        ];
        assert_eq!(
            config.origins().unwrap(),
            [
                "capacitor://localhost",
                "tauri://localhost",
                "chrome-extension://abcdefghijklmnop"
            ]
        );
        for bad in [
            "*",
            "https://*.example.com",
            "https://a.example.com/x",
            "null",
            "file:///home/x",
            "https://u:p@a.example.com",
            "https://a.example.com?x",
            "app.example.com",
        ] {
            config.cors_origins = vec![bad.into()];
            let err = config.origins().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
            // Never every origin by mistake.
            assert!(!config.allowed_origins().is_empty(), "{bad}");
        }
    }
}
