//! Request-level guards: who the client is (its address, through trusted
//! proxies only), how often it may call (per-address rate limits: 429 with
//! `Retry-After`), which origins' pages may call at all (403), and how many
//! WebSocket sessions may be open (503 with `Retry-After`; 429 past one
//! address's share).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;

use crate::app::AppState;
use crate::config::Config;
use crate::error::Error;
use crate::serve::Connection;

/// The address of the client that sent `request`: the peer's, unless the
/// peer is a trusted proxy, in which case the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy. The one place the
/// client's address is worked out (rate limits and the audit log use it).
pub fn client_addr<B>(request: &axum::http::Request<B>, trusted: &[IpNet]) -> Option<IpAddr> {
    if let Some(ClientAddr(ip)) = request.extensions().get::<ClientAddr>() {
        return Some(*ip);
    }
    let peer = request
        .extensions()
        .get::<Connection>()
        .map(|c| c.peer.ip())
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())
        })?;
    Some(forwarded_client(peer, request.headers(), trusted))
}

/// The client's address as worked out once per request (by
/// [`identify_client`]), for everything after it: rate limits, the audit,
/// the logs.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Guard ([`crate::http::guard`]): works out the client's address
/// (through trusted proxies only) and keeps it in the request's extensions;
/// then refuses a foreign origin ([`foreign_origin`]).
pub fn identify_client(app: &AppState, request: &mut Request) -> Option<Response> {
    if let Some(ip) = app.guards.client_addr(request) {
        request.extensions_mut().insert(ClientAddr(ip));
    }
    foreign_origin(app, request)
}

pub(crate) fn trusted_ip(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// An IPv4 address seen as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port
/// (`1.2.3.4:5678`, `[::1]:5678`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    entry.rsplit_once(':')?.0.parse().ok()
}

fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !trusted_ip(peer, trusted) {
        return canonical(peer);
    }
    let mut client = canonical(peer);
    // Every header, in order, entries right to left: each hop appends.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            // A value that is not an address: nothing further left of it
            // can be trusted either.
            break;
        };
        client = canonical(ip);
        if !trusted_ip(client, trusted) {
            break;
        }
    }
    client
}

/// The key a client is limited by: its address, or for IPv6 its /64 (one
/// host usually holds a whole /64).
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A per-address limiter, or none when the limit is 0.
#[derive(Debug)]
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimit {
    /// `per_second` requests a second, in bursts of five seconds' worth.
    pub fn new(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(5).expect("5 is not 0"));
            governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// `Ok` if `ip` may make a request now; else how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&rate_key(ip))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses whose allowance is full again, so the table does
    /// not grow with every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The guards one server shares across its requests.
#[derive(Debug)]
pub struct Guards {
    pub read: RateLimit,
    pub admin: RateLimit,
    trusted_proxies: Vec<IpNet>,
    origins: Vec<String>,
    ws_sessions: Arc<AtomicUsize>,
    max_ws_sessions: usize,
    /// Open sessions by client address.
    ws_by_address: Arc<PerAddress>,
}

/// Why an upgrade gets no session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    /// Every one of `--max-ws-sessions` is taken.
    Full,
    /// This address holds `--max-ws-sessions-per-address` already.
    AddressFull,
}

impl Guards {
    pub fn new(config: &Config) -> Self {
        Self {
            read: RateLimit::new(config.read_rate_limit),
            admin: RateLimit::new(config.admin_rate_limit),
            trusted_proxies: config.trusted_proxies.clone(),
            origins: config.allowed_origins(),
            ws_sessions: Arc::new(AtomicUsize::new(0)),
            max_ws_sessions: config.max_ws_sessions,
            ws_by_address: PerAddress::new(config.max_ws_sessions_per_address),
        }
    }

    pub fn client_addr(&self, request: &Request) -> Option<IpAddr> {
        client_addr(request, &self.trusted_proxies)
    }

    /// A WebSocket session slot for a client at `ip` (when known), held
    /// until the session ends; none when every slot is taken, or every one
    /// this address may hold.
    pub fn ws_session(&self, ip: Option<IpAddr>) -> Result<SessionSlot, NoSession> {
        let taken = self.ws_sessions.fetch_add(1, Ordering::AcqRel);
        let mut slot = SessionSlot {
            all: self.ws_sessions.clone(),
            address: None,
        };
        if taken >= self.max_ws_sessions {
            return Err(NoSession::Full);
        }
        if let Some(ip) = ip {
            slot.address = self
                .ws_by_address
                .take(ip)
                .map_err(|AddressFull| NoSession::AddressFull)?;
        }
        Ok(slot)
    }

    /// Whether a request with this `Origin` may be served: no allowlist, no
    /// `Origin` (not a browser, or a same-origin GET), an origin on the
    /// list, or the server's own origin (a page it serves itself).
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        if self.origins.is_empty() {
            return true;
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin_key(origin);
        if self.origins.contains(&origin) {
            return true;
        }
        // Same origin: the page came from this server (scheme aside, which
        // a proxy may have changed), named by its address. Not by a name:
        // any site can point its own name at this server's address (DNS
        // rebinding), and its pages then send that name as both `Host` and
        // `Origin`. A page this server serves under a name is listed.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        matches!((host, origin_host), (Some(host), Some(o)) if host == o && names_an_address(o))
    }
}

/// An `Origin` as the allowlist has it (`Config::origins`): case and a
/// trailing slash do not matter. The CORS answer and the 403 check compare
/// the same way.
pub(crate) fn origin_key(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether a `Host` (with or without its port) is an IP address or
/// `localhost`: a name no other site can point here.
fn names_an_address(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next(),
        None => host.split(':').next(),
    };
    name.is_some_and(|name| name == "localhost" || name.parse::<IpAddr>().is_ok())
}

/// One open WebSocket session's place under `--max-ws-sessions`, and under
/// its address's `--max-ws-sessions-per-address`.
#[derive(Debug)]
pub struct SessionSlot {
    all: Arc<AtomicUsize>,
    address: Option<AddressSlot>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.all.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many of something (open connections, WebSocket sessions) each
/// client address holds, under a cap per address (IPv6: per /64, as the
/// rate limits count); an address leaves the table with its last one.
#[derive(Debug)]
pub struct PerAddress {
    held: Mutex<HashMap<IpAddr, usize>>,
    /// 0: no cap, nothing counted.
    cap: usize,
}

impl PerAddress {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::default(),
            cap,
        })
    }

    /// A place for one more at `ip`, held until dropped: `Ok(None)` without
    /// a cap, `Err` when the address holds its cap already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Option<AddressSlot>, AddressFull> {
        if self.cap == 0 {
            return Ok(None);
        }
        let key = rate_key(canonical(ip));
        let mut held = self.lock();
        let count = held.entry(key).or_default();
        if *count >= self.cap {
            return Err(AddressFull);
        }
        *count += 1;
        Ok(Some(AddressSlot {
            table: self.clone(),
            key,
        }))
    }

    /// The table's lock; a panic while it was held left only counts, which
    /// stay usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The address holds its [`PerAddress`] cap already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressFull;

/// One place of an address under its [`PerAddress`] cap.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.table.lock();
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = Error::TooManyRequests(format!(
        "too many requests from this address: try again in {seconds} s"
    ))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Guard: an instance of several (a shared store) that cannot reach
/// the store does not know whether its copy is current, so it serves no
/// reads (nor new WebSocket sessions) until it reaches the store again:
/// 503 with `Retry-After`, which a load balancer or the SDK takes as "ask
/// again, maybe elsewhere", rather than its last copy as if current (a
/// client told "none" while other instances had moved on, or rolled back
/// by a full state older than its own). Its open sessions' heartbeats say
/// `store_reachable: false`. One process on SQLite holds the only copy
/// there is: it always serves.
pub fn require_current(app: &AppState, _request: &mut Request) -> Option<Response> {
    if !app.service.vouches() {
        return Some(Error::Store(crate::store::StoreError::Unreachable).into_response());
    }
    None
}

/// Guard: the read API's per-address rate limit.
pub fn limit_reads(app: &AppState, request: &mut Request) -> Option<Response> {
    limit(app, &app.guards.read, request, "read")
}

/// Guard: the admin API's per-address rate limit, applied before the token
/// is checked, so failed authentications count.
pub fn limit_admin(app: &AppState, request: &mut Request) -> Option<Response> {
    limit(app, &app.guards.admin, request, "admin")
}

fn limit(
    app: &AppState,
    limit: &RateLimit,
    request: &Request,
    api: &'static str,
) -> Option<Response> {
    if let Some(ip) = app.guards.client_addr(request)
        && let Err(wait) = limit.check(ip)
    {
        tracing::debug!(client = %ip, api, "rate limited");
        app.service.metrics().refused("rate_limit").inc();
        return Some(too_many(wait));
    }
    None
}

/// Requests from a page of a foreign origin are refused (CORS alone would
/// let a simple request through, and does not apply to the WebSocket
/// upgrade at all: cross-site WebSocket hijacking): the answer, if so.
fn foreign_origin(app: &AppState, request: &Request) -> Option<Response> {
    if !app.guards.origin_allowed(request.headers()) {
        app.service.metrics().refused("origin").inc();
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        tracing::debug!(%origin, path = %request.uri().path(), "foreign origin refused");
        return Some(
            Error::Forbidden(format!("requests from the origin {origin} are not allowed"))
                .into_response(),
        );
    }
    None
}

/// Forgets idle rate-limit entries every minute until shutdown.
pub fn spawn_cleanup(
    guards: Arc<Guards>,
    mut shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    guards.read.forget_idle();
                    guards.admin.forget_idle();
                }
                _ = shutdown.wait() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        forwarded_client(peer.parse().unwrap(), &headers(forwarded), &nets(trusted)).to_string()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        // An untrusted peer's header is ignored: anyone can write one.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"], &[]), "203.0.113.9");
        assert_eq!(
            client("203.0.113.9", &["1.2.3.4"], &["10.0.0.0/8"]),
            "203.0.113.9"
        );
        // A trusted proxy's header names the client.
        assert_eq!(client("10.0.0.2", &["1.2.3.4"], &["10.0.0.0/8"]), "1.2.3.4");
        // The right-most untrusted entry: what a client prepends is ignored.
        assert_eq!(
            client("10.0.0.2", &["6.6.6.6, 1.2.3.4, 10.0.0.7"], &["10.0.0.0/8"]),
            "1.2.3.4"
        );
        assert_eq!(
            client("10.0.0.2", &["6.6.6.6", "1.2.3.4"], &["10.0.0.0/8"]),
            "1.2.3.4"
        );
        // Ports and brackets; IPv4 seen as IPv6.
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4:5555"], &["10.0.0.0/8"]),
            "1.2.3.4"
        );
        assert_eq!(
            client("10.0.0.2", &["[2001:db8::1]:443"], &["10.0.0.0/8"]),
            "2001:db8::1"
        );
        assert_eq!(
            client("::ffff:10.0.0.2", &["1.2.3.4"], &["10.0.0.2/32"]),
            "1.2.3.4"
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(client("10.0.0.2", &[], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(
            client("10.0.0.2", &["unknown"], &["10.0.0.0/8"]),
            "10.0.0.2"
        );
    }

    #[test]
    fn a_limit_refuses_past_its_burst_and_names_the_wait() {
        let limit = RateLimit::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert!(limit.check(ip).is_ok());
        }
        let wait = limit.check(ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another address has its own allowance; IPv6 counts by /64.
        assert!(limit.check("192.0.2.2".parse().unwrap()).is_ok());
        let v6 = RateLimit::new(1);
        for i in 0..5 {
            assert!(v6.check(format!("2001:db8::{i}").parse().unwrap()).is_ok());
        }
        assert!(v6.check("2001:db8::ff".parse().unwrap()).is_err());
        assert!(v6.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
        // 0: no limit.
        let off = RateLimit::new(0);
        for _ in 0..1000 {
            assert!(off.check(ip).is_ok());
        }
    }

    #[test]
    fn origins_on_the_list_or_the_servers_own_are_allowed() {
        let mut config = Config::defaults();
        config.cors_origins = vec!["https://app.example.com".into()];
        let guards = Guards::new(&config);
        let with = |origin: Option<&str>, host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap());
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, origin.parse().unwrap());
            }
            guards.origin_allowed(&headers)
        };
        assert!(with(Some("https://app.example.com"), "api.example.com"));
        assert!(with(Some("https://APP.example.com/"), "api.example.com"));
        assert!(with(None, "api.example.com"));
        // The server's own page, named by its address.
        assert!(with(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"));
        assert!(with(Some("https://[::1]:8443"), "[::1]:8443"));
        assert!(with(Some("http://localhost:8080"), "localhost:8080"));
        assert!(!with(Some("http://127.0.0.1:8080"), "127.0.0.1:9090"));
        // Found by a black-box check (2026-12-02): by a name, any site's
        // page whose name points here (DNS rebinding) passed as the
        // server's own; such a page is listed if it is one.
        assert!(!with(
            Some("http://api.example.com:8080"),
            "api.example.com:8080"
        ));
        assert!(!with(Some("http://evil.example:8080"), "evil.example:8080"));
        assert!(!with(Some("https://evil.example"), "api.example.com"));
        assert!(!with(Some("null"), "api.example.com"));
        assert!(!with(
            Some("https://app.example.com.evil.example"),
            "api.example.com"
        ));
        // No list: every origin.
        let open = Guards::new(&Config::defaults());
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(open.origin_allowed(&headers));
    }
}
