//! The limits of an exposed server, against a real server process on
//! loopback: slow headers and idle connections, the connection and
//! WebSocket session caps, per-address rate limits (through trusted proxies
//! only), foreign origins, and the WebSocket write deadline on progress.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(
    tune: impl FnOnce(&mut provider_sync_server::Config),
) -> (tempfile::TempDir, TestServer) {
    let (dir, db) = temp_db();
    let mut config = config(&db);
    tune(&mut config);
    (dir, TestServer::start(config).await)
}

/// Waits (at most 20 s) until the server closes `stream`; false if it never does.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    waited.is_ok()
}

/// One request on a raw socket; the status line's code.
async fn raw_request(stream: &mut TcpStream, path: &str, extra: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before an answer");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if answer.len() >= head_end + 4 + length {
                let code = head[9..12].parse().unwrap();
                return (code, text.into_owned());
            }
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let (_dir, server) = start(|c| {
        c.header_read_timeout_ms = 300;
        c.request_timeout_ms = 500;
        c.idle_timeout_ms = 1_000;
    })
    .await;
    let addr = server.server.addr();
    // Half a request's headers, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/provider-sync/version HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A connection that never says anything.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // A keep-alive connection that made one request and went quiet.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let (code, _) = raw_request(&mut idle, "/api/provider-sync/version", "").await;
    assert_eq!(code, 200);
    assert!(
        closed_by_server(&mut slow).await,
        "a slow-header client kept its socket"
    );
    assert!(
        closed_by_server(&mut silent).await,
        "a silent client kept its socket"
    );
    assert!(
        closed_by_server(&mut idle).await,
        "an idle keep-alive connection stayed open"
    );
    // The server still answers.
    assert_eq!(server.get("/version").await.status(), 200);
    server.stop().await;
}

/// The server speaks HTTP/1.1 only: a client that opens with HTTP/2's
/// preface (prior knowledge) is not answered in HTTP/2, whose request heads
/// escaped the header-read timeout (a head left unfinished held the
/// connection until the idle timeout) and were capped at 16 KiB, not 64.
#[tokio::test]
async fn http2_is_not_spoken() {
    use tokio::io::AsyncReadExt;
    let (_dir, server) = start(|c| {
        c.header_read_timeout_ms = 300;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    let mut h2 = TcpStream::connect(server.server.addr()).await.unwrap();
    // The preface, then an empty SETTINGS frame.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), h2.read_to_end(&mut answer))
        .await
        .expect("the connection is ended within the header timeout, not the idle one");
    // Closed with the client's bytes unread: a reset, or an end.
    if let Err(err) = read {
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "answered in HTTP/2: {answer:?}"
    );
    assert_eq!(server.get("/version").await.status(), 200);
    // Counted (a black-box check, 2026-12-07: refused without a trace).
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("provider_sync_refused_total{reason=\"http2\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

/// Found by a black-box check (2026-12-07): `Transfer-Encoding: gzip,
/// chunked` was read as chunked and its gzipped bytes as the body. A
/// coding other than `chunked` gets 501 and changes nothing (RFC 9112,
/// 6.1), `chunked` twice 400; `chunked` alone is read.
#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused_with_501() {
    let (_dir, server) = start(|_| {}).await;
    let addr = server.server.addr();
    let post = |codings: &str, id: &str| {
        let body = format!(r#"{{"id":"{id}","name":"P"}}"#);
        format!(
            "POST /api/provider-sync/admin/providers HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: {codings}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    for (codings, status, code) in [
        ("gzip, chunked", 501, "not_implemented"),
        ("x-custom,chunked", 501, "not_implemented"),
        ("chunked, chunked", 400, "bad_request"),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(post(codings, "refused").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("answered and closed")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{codings}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains(&format!(r#""code":"{code}""#)), "{answer}");
    }
    // An empty element of the list is none (RFC 9110, 5.6.1).
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(post(" , chunked", "taken").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    let state = server.state().await;
    assert!(state.provider("taken").is_some() && state.provider("refused").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_waits_the_idle_timeout_and_a_slow_head_does_not() {
    let (_dir, server) = start(|c| {
        c.header_read_timeout_ms = 300;
        c.request_timeout_ms = 500;
        c.idle_timeout_ms = 5_000;
    })
    .await;
    let addr = server.server.addr();
    // Quiet between two requests for longer than the header timeout (it
    // was closed at 300 ms: hyper's header timer ran while it waited).
    let mut pooled = TcpStream::connect(addr).await.unwrap();
    let (code, _) = raw_request(&mut pooled, "/api/provider-sync/version", "").await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (code, _) = raw_request(&mut pooled, "/api/provider-sync/version", "").await;
    assert_eq!(code, 200, "the pooled connection was closed while idle");
    // The next request's head, begun and not finished: cut at the header
    // timeout from its first byte, long before the idle timeout.
    let started = std::time::Instant::now();
    pooled
        .write_all(b"GET /api/provider-sync/version HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut pooled).await,
        "the slow head kept its socket"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2_000), "cut after {took:?}");
    server.stop().await;
}

/// A head begun just before the idle timeout has its whole header time
/// (hyper's own header timer, a backstop until 2026-12-06, cut it at the
/// idle timeout).
#[tokio::test]
async fn a_head_begun_near_the_idle_timeout_is_still_read() {
    let (_dir, server) = start(|c| {
        c.header_read_timeout_ms = 1_500;
        c.request_timeout_ms = 2_000;
        c.idle_timeout_ms = 5_000;
    })
    .await;
    let mut pooled = TcpStream::connect(server.server.addr()).await.unwrap();
    let (code, _) = raw_request(&mut pooled, "/api/provider-sync/version", "").await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    pooled
        .write_all(b"GET /api/provider-sync/ver")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The connection may be gone by now: a write error or EOF says so.
    let rest = pooled
        .write_all(b"sion HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while rest.is_ok() && !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match pooled.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "cut: {rest:?} {text:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_declared_body_past_the_limit_is_refused_before_it_comes() {
    let (_dir, server) = start(|c| c.body_limit = 1024).await;
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /api/provider-sync/sync HTTP/1.1\r\nHost: x\r\n\
              content-type: application/json\r\ncontent-length: 999999999999\r\n\r\n{",
        )
        .await
        .unwrap();
    let text = too_large_answer(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    server.stop().await;
}

/// Found by a black-box check (2026-12-07): with `--body-limit` under
/// `POST /sync`'s own 16 KiB, a chunked body past it got 400 ("failed to
/// buffer the request body"), not 413: read through both limits, its error
/// was wrapped twice. With a larger limit, a chunked body past 16 KiB gets
/// 413 too.
#[tokio::test]
async fn a_chunked_sync_body_past_either_limit_gets_413() {
    for (limit, size) in [(2_000, 3_000), (1024 * 1024, 20_000)] {
        let (_dir, server) = start(|c| c.body_limit = limit).await;
        let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
        let body = format!(r#"{{"client_version":1,"pad":"{}"}}"#, "x".repeat(size));
        let request = format!(
            "POST /api/provider-sync/sync HTTP/1.1\r\nHost: x\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let text = too_large_answer(&mut stream).await;
        assert!(text.starts_with("HTTP/1.1 413"), "limit {limit}: {text}");
        server.stop().await;
    }
}

/// What the server answers within 5 s, read until it says
/// `payload_too_large`; fails if it does not answer while the body is
/// awaited.
async fn too_large_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !String::from_utf8_lossy(&answer).contains("payload_too_large") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(read.is_ok(), "no answer while the body was awaited: {text}");
    text
}

/// Found by a black-box check (2026-12-02): a request head could grow to
/// hyper's default buffer (about 400 KB) before it was refused, held for
/// the header time limit: 1000 unfinished heads from one address took the
/// server from 22 MB to 532 MB. A head is taken up to 64 KiB (cookies and
/// tokens fit); past that it gets 431 as it comes.
#[tokio::test]
async fn a_head_past_64_kib_is_refused_as_it_comes() {
    let (_dir, server) = start(|_| {}).await;
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    let head = format!(
        "GET /api/provider-sync/version HTTP/1.1\r\nHost: x\r\nx-big: {}",
        "a".repeat(100_000)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while answer.len() < 12 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer while the head was awaited");
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // A head of 40 KB (a large cookie) is still read.
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    let cookie = format!("Cookie: c={}\r\n", "b".repeat(40_000));
    let (code, text) = raw_request(&mut stream, "/api/provider-sync/version", &cookie).await;
    assert_eq!(code, 200, "{text}");
    server.stop().await;
}

/// Found by a black-box check (2026-12-02): `POST /sync`, which needs no
/// token, took bodies up to `--body-limit` (1 MiB) and held what came of
/// them until the request timeout: 400 unfinished bodies from one address
/// took the server from 22 MB to 712 MB. A sync request is a few hundred
/// bytes: past 16 KiB it is refused, declared or as it comes.
#[tokio::test]
async fn a_sync_request_past_its_own_small_limit_is_refused() {
    let (_dir, server) = start(|_| {}).await;
    let head = "POST /api/provider-sync/sync HTTP/1.1\r\nHost: x\r\n\
                content-type: application/json\r\n";
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    let declared = format!("{head}content-length: 20000\r\n\r\n{{");
    stream.write_all(declared.as_bytes()).await.unwrap();
    let text = too_large_answer(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // Chunked: refused once 16 KiB have come, the body still open.
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    let chunk = " ".repeat(20_000);
    let streamed = format!(
        "{head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    stream.write_all(streamed.as_bytes()).await.unwrap();
    let text = too_large_answer(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // A real one still syncs.
    let answer = reqwest::Client::new()
        .post(server.url("/sync"))
        .json(&serde_json::json!({"client_version": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn past_the_connection_cap_requests_get_503_and_the_probes_answer() {
    let (_dir, server) = start(|c| {
        c.max_connections = 3;
        // One loopback address stands in for many clients.
        c.max_connections_per_address = Some(0);
    })
    .await;
    let addr = server.server.addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (code, _) = raw_request(&mut stream, "/api/provider-sync/version", "").await;
        assert_eq!(code, 200);
        held.push(stream);
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let (code, text) = raw_request(
        &mut extra,
        "/api/provider-sync/state",
        "Origin: https://app.example.com\r\n",
    )
    .await;
    assert_eq!(code, 503, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("retry-after: "), "{text}");
    // A page of another origin can read it (and its Retry-After).
    assert!(lower.contains("access-control-allow-origin: *"), "{text}");
    assert!(lower.contains("access-control-expose-headers: "), "{text}");
    assert!(lower.contains("x-request-id: "), "{text}");
    assert!(lower.contains("connection: close"), "{text}");
    assert!(text.contains(r#""code":"unavailable""#), "{text}");
    for probe in ["/healthz", "/api/provider-sync/readyz"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (code, text) = raw_request(&mut stream, probe, "").await;
        assert_eq!(code, 200, "{probe}: {text}");
    }
    // Connections closed free their places.
    drop(held);
    drop(extra);
    let mut served = false;
    for _ in 0..100 {
        if server.get("/state").await.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the cap never freed up");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("provider_sync_refused_total{reason=\"connections\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_503_past_the_connection_cap_carries_a_request_id() {
    let (_dir, server) = start(|c| {
        c.max_connections = 1;
        // One loopback address stands in for many clients.
        c.max_connections_per_address = Some(0);
    })
    .await;
    let addr = server.server.addr();
    let mut held = TcpStream::connect(addr).await.unwrap();
    let (code, _) = raw_request(&mut held, "/api/provider-sync/version", "").await;
    assert_eq!(code, 200);
    // Every answer carries one, as the README and the OpenAPI document say:
    // the client's own when usable, else one the server makes.
    for (sent, echoed) in [
        (Some("cap-42"), true),
        (Some("two words"), false),
        (None, false),
    ] {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let header = sent.map_or(String::new(), |id| format!("X-Request-Id: {id}\r\n"));
        let (code, text) = raw_request(&mut extra, "/api/provider-sync/state", &header).await;
        assert_eq!(code, 503, "{text}");
        let id = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-request-id:")
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no request id: {text}"));
        assert_eq!(id == "cap-42", echoed, "{text}");
        assert!(!id.is_empty() && id.len() <= 128, "{id}");
    }
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn websocket_sessions_past_the_cap_get_503() {
    let (_dir, server) = start(|c| c.max_ws_sessions = 2).await;
    let first = server.connect("").await;
    let _second = server.connect("").await;
    let refused = tokio_tungstenite::connect_async(server.ws_url(""))
        .await
        .expect_err("a third session past the cap");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP answer, got {refused:?}");
    };
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    // REST is unaffected.
    assert_eq!(server.get("/state").await.status(), 200);
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        if tokio_tungstenite::connect_async(server.ws_url(""))
            .await
            .is_ok()
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a closed session's place was not freed");
    server.stop().await;
}

/// One address may hold `--max-ws-sessions-per-address` sessions; past it
/// its upgrades get 429 with `Retry-After`, while other addresses (here
/// through a trusted proxy's `X-Forwarded-For`) still connect; a closed
/// session frees its address's place.
#[tokio::test]
async fn one_address_cannot_take_every_websocket_session() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (_dir, server) = start(|c| {
        c.max_ws_sessions_per_address = 2;
        // The test's own address is the proxy; the clients it names are
        // other loopback addresses (nothing is sent to them).
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |client: &str| {
        let mut request = server.ws_url("").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    let first = from("127.0.0.7").await.expect("first session");
    let _second = from("127.0.0.7").await.expect("second session");
    let refused = from("127.0.0.7")
        .await
        .expect_err("a third from one address");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP answer, got {refused:?}");
    };
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "10");
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(body.contains("--max-ws-sessions-per-address"), "{body}");
    // Others are served. (An IPv6 client counts by its /64, the key the
    // rate limits use: `rate_key`, tested with them.)
    let _other = from("127.0.0.8").await.expect("another address");
    let _local = server.connect("").await;
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        if from("127.0.0.7").await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        admitted,
        "a closed session's place was not freed for its address"
    );
    server.stop().await;
}

async fn get_with(server: &TestServer, path: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(server.url(path));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn reads_past_the_rate_limit_get_429_with_retry_after() {
    // One request a second, bursts of five.
    let (_dir, server) = start(|c| c.read_rate_limit = 1).await;
    for _ in 0..5 {
        assert_eq!(get_with(&server, "/state", None).await.status(), 200);
    }
    let limited = get_with(&server, "/sync", None).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    assert_eq!(
        get_with(&server, "/state", Some("198.51.100.7"))
            .await
            .status(),
        429
    );
    // Operations endpoints are not limited.
    assert_eq!(server.get("/healthz").await.status(), 200);
    // After the wait, the address may read again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(get_with(&server, "/state", None).await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let (_dir, server) = start(|c| {
        c.read_rate_limit = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..5 {
        let answer = get_with(&server, "/state", Some("198.51.100.7")).await;
        assert_eq!(answer.status(), 200);
    }
    assert_eq!(
        get_with(&server, "/state", Some("198.51.100.7"))
            .await
            .status(),
        429
    );
    // Another client behind the same proxy, and one that prepends a forged
    // address (the proxy appends the real one, which is what counts).
    assert_eq!(
        get_with(&server, "/state", Some("198.51.100.8"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with(&server, "/state", Some("198.51.100.99, 198.51.100.7"))
            .await
            .status(),
        429
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_requests_past_the_limit_get_429_and_failed_authentication_counts() {
    let (_dir, server) = start(|c| c.admin_rate_limit = 1).await;
    for _ in 0..5 {
        let answer = server
            .http
            .post(server.url("/admin/providers"))
            .bearer_auth("not-the-token")
            .json(&serde_json::json!({"id": "x", "name": "X"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    // Now even the right token waits: the guesses used the allowance.
    let answer = server
        .admin(Method::POST, "/providers")
        .json(&serde_json::json!({"id": "x", "name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert!(answer.headers().contains_key("retry-after"));
    assert!(server.state().await.provider("x").is_none());
    // Reads have their own allowance.
    assert_eq!(server.get("/state").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn pages_of_foreign_origins_are_refused_over_http_and_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    // Written with capitals and a trailing slash, as operators do: the
    // allowed page still gets its header (it got 200 without one before).
    let (_dir, server) = start(|c| c.cors_origins = vec!["http://APP.test/".into()]).await;
    let with_origin = |origin: &'static str| {
        server
            .http
            .get(server.url("/state"))
            .header("origin", origin)
            .send()
    };
    let allowed = with_origin("http://app.test").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    let foreign = with_origin("http://evil.test").await.unwrap();
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    // The preflight of a foreign page, too.
    let preflight = server
        .http
        .request(Method::OPTIONS, server.url("/admin/providers"))
        .header("origin", "http://evil.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    // Without an Origin (not a browser): served.
    assert_eq!(server.get("/state").await.status(), 200);

    // The WebSocket upgrade: cross-site WebSocket hijacking.
    let upgrade = |origin: &'static str| {
        let mut request = server.ws_url("").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    let refused = upgrade("http://evil.test")
        .await
        .expect_err("a foreign origin's upgrade");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP answer, got {refused:?}");
    };
    assert_eq!(response.status(), 403);
    assert!(upgrade("http://app.test").await.is_ok());
    server.stop().await;
}

/// A socket that reads at most `chunk` bytes, then pauses `pause`: a client
/// on a slow link, still moving.
struct Throttled {
    inner: TcpStream,
    chunk: usize,
    pause: Duration,
    resting: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl tokio::io::AsyncRead for Throttled {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if let Some(rest) = self.resting.as_mut() {
            if rest.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.resting = None;
        }
        let room = buf.remaining().min(self.chunk);
        let mut limited = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(room));
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = polled {
            let n = limited.filled().len();
            buf.advance(n);
            let pause = self.pause;
            self.resting = Some(Box::pin(tokio::time::sleep(pause)));
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Throttled {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn small_buffer_socket(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A new session's `hello`, then its `full_sync` (a minute at most each:
/// the readers here are slow): the state.
async fn hello_and_state<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
) -> provider_sync_protocol::SyncState
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use provider_sync_protocol::EventPayload;
    assert!(matches!(
        next_event_within(socket, Duration::from_secs(60))
            .await
            .payload,
        EventPayload::Hello(_)
    ));
    let EventPayload::FullSync(state) = next_event_within(socket, Duration::from_secs(60))
        .await
        .payload
    else {
        panic!("expected the full state");
    };
    state
}

/// A server's config whose catalog has `providers` providers of about 4 KB
/// each (64 long capabilities), in a new folder.
fn big_catalog(providers: usize) -> (tempfile::TempDir, provider_sync_server::Config) {
    let (dir, db) = temp_db();
    let mut text = String::new();
    for p in 0..providers {
        let capabilities: Vec<String> = (0..64)
            .map(|c| format!("\"{p:04}-{c:02}-{}\"", "x".repeat(56)))
            .collect();
        text.push_str(&format!(
            "[[providers]]\nid = \"p{p}\"\nname = \"p{p}\"\ncapabilities = [{}]\n\n",
            capabilities.join(", ")
        ));
    }
    let catalog = dir.path().join("big.toml");
    write(&catalog, &text);
    let mut config = config(&db);
    config.catalog = Some(catalog);
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_write_deadline_measures_progress() {
    use provider_sync_protocol::EventPayload;

    // A catalog of about 14 MB: its full_sync is far more than the socket
    // buffers on both sides hold (4 MiB at most for a send buffer here).
    const PROVIDERS: usize = 3_300;
    let (_dir, mut config) = big_catalog(PROVIDERS);
    // A deadline shorter than the transfer of what the socket buffers do
    // not hold (about 10 MB at 1.6 MB/s: 6 s), and several times the
    // kernel's pauses between wake-ups of a writer whose buffer drains (a
    // third of a 4 MiB buffer: under a second at that rate).
    config.ws_write_timeout_ms = 4_000;
    let server = TestServer::start(config).await;
    let addr = server.server.addr();

    // Stalled: connects, then never reads.
    let (stalled, _) =
        tokio_tungstenite::client_async(server.ws_url(""), small_buffer_socket(addr).await)
            .await
            .unwrap();
    // Slow but moving: 32 KiB every 20 ms (about 1.6 MB/s: seconds for the state).
    let throttled = Throttled {
        inner: small_buffer_socket(addr).await,
        chunk: 32 * 1024,
        pause: Duration::from_millis(20),
        resting: None,
    };
    let (mut moving, _) = tokio_tungstenite::client_async(server.ws_url(""), throttled)
        .await
        .unwrap();
    let state = hello_and_state(&mut moving).await;
    assert_eq!(state.providers.len(), PROVIDERS);
    // Still connected: a later change arrives.
    server.add_provider("after").await;
    loop {
        if let EventPayload::ProviderAdded(p) =
            next_event_within(&mut moving, Duration::from_secs(60))
                .await
                .payload
        {
            assert_eq!(p.id, "after");
            break;
        }
    }
    // The stalled one was dropped (and only it).
    let mut dropped = String::new();
    for _ in 0..200 {
        let metrics = server.get("/metrics").await.text().await.unwrap();
        if metrics.contains("provider_sync_ws_dropped_total 1") {
            dropped = metrics;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!dropped.is_empty(), "the stalled client was not dropped");
    assert!(
        dropped.contains("provider_sync_ws_connections 1"),
        "{dropped}"
    );
    drop(stalled);
    server.stop().await;
}

/// A client that stops reading its `full_sync` at once is dropped about
/// one write deadline later (within a quarter more), not two: the progress
/// of its first moments (its buffers filling) was seen only as the first
/// deadline came, and counted then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_full_state_is_dropped_after_one_deadline() {
    // About 7 MB of state: more than the socket buffers on both sides hold.
    const PROVIDERS: usize = 1_650;
    let (_dir, mut config) = big_catalog(PROVIDERS);
    config.ws_write_timeout_ms = 2_000;
    let server = TestServer::start(config).await;
    let socket = small_buffer_socket(server.server.addr()).await;
    let started = tokio::time::Instant::now();
    let (stalled, _) = tokio_tungstenite::client_async(server.ws_url(""), socket)
        .await
        .unwrap();
    loop {
        let metrics = server.get("/metrics").await.text().await.unwrap();
        if metrics.contains("provider_sync_ws_dropped_total 1") {
            break;
        }
        // Two deadlines and more: it was about two.
        assert!(
            started.elapsed() < Duration::from_millis(3_500),
            "not dropped 3.5 s after it stopped reading, with a 2 s deadline"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(2_000),
        "dropped before its deadline: {:?}",
        started.elapsed()
    );
    drop(stalled);
    server.stop().await;
}

/// A client that takes the state steadily but slower than the kernel
/// wakes a writer (it waits until a good part of a send queue of up to
/// megabytes has gone) keeps its session: what it takes from the kernel's
/// queue counts as progress. It was dropped in the middle of its
/// `full_sync` once a wake-up took longer than the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slower_than_the_kernels_wake_ups_keeps_its_session() {
    // About 7 MB of state.
    const PROVIDERS: usize = 1_650;
    let (_dir, mut config) = big_catalog(PROVIDERS);
    // Shorter than the kernel's pauses between wake-ups at this client's
    // pace (a third of a send queue of up to 4 MiB at 640 KB/s: seconds),
    // far longer than the client's own pauses (100 ms).
    config.ws_write_timeout_ms = 1_000;
    let server = TestServer::start(config).await;
    let throttled = Throttled {
        inner: small_buffer_socket(server.server.addr()).await,
        chunk: 64 * 1024,
        pause: Duration::from_millis(100),
        resting: None,
    };
    let (mut moving, _) = tokio_tungstenite::client_async(server.ws_url(""), throttled)
        .await
        .unwrap();
    let state = hello_and_state(&mut moving).await;
    assert_eq!(state.providers.len(), PROVIDERS);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("provider_sync_ws_dropped_total 0"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_audit_names_the_forwarded_client_only_behind_a_trusted_proxy() {
    for (trusted, expected) in [(true, "198.51.100.7"), (false, "127.0.0.1")] {
        let (_dir, server) = start(|c| {
            if trusted {
                c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let answer = server
            .admin(Method::POST, "/providers")
            .header("x-forwarded-for", "198.51.100.7")
            .json(&serde_json::json!({"id": "x", "name": "X"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let page: Value = server
            .admin(Method::GET, "/audit")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["entries"][0]["client"], expected, "{page}");
        server.stop().await;
    }
}

#[tokio::test]
async fn admin_paths_no_route_has_answer_401_without_a_token() {
    let (_dir, server) = start(|_| {}).await;
    // Without a token every /admin path is alike: which exist is not told.
    for path in [
        "/admin/providers",
        "/admin/nonexistent",
        "/admin/models/x/y/z",
    ] {
        let response = server
            .http
            .post(server.url(path))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, 401, "{path}: {}", response.text().await.unwrap());
    }
    let response = server
        .http
        .get(server.url("/admin/nonexistent"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await;
}

#[tokio::test]
async fn the_static_directory_serves_its_own_files_only() {
    let outside = tempfile::tempdir().unwrap();
    let www = outside.path().join("www");
    std::fs::create_dir_all(www.join(".well-known")).unwrap();
    std::fs::create_dir_all(www.join(".git")).unwrap();
    std::fs::write(www.join("index.html"), "<p>page</p>").unwrap();
    std::fs::write(www.join(".env"), "SECRET=1").unwrap();
    std::fs::write(www.join(".git/config"), "[core]").unwrap();
    std::fs::write(www.join(".well-known/security.txt"), "Contact: x").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), www.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), www.join("up")).unwrap();
    std::fs::write(www.join("inside.txt"), "inside").unwrap();
    // Links inside it to its hidden files.
    std::os::unix::fs::symlink(www.join(".env"), www.join("visible-env")).unwrap();
    std::os::unix::fs::symlink(www.join(".git"), www.join("gitdir")).unwrap();
    std::os::unix::fs::symlink(www.join("inside.txt"), www.join("alias.txt")).unwrap();
    // Served through a link, as deploys swap `current -> releases/N`.
    let current = outside.path().join("current");
    std::os::unix::fs::symlink(&www, &current).unwrap();
    let (_dir, server) = start(|c| c.static_dir = Some(current.clone())).await;
    let root = format!("http://{}", server.server.addr());
    let get = |path: &'static str| {
        let url = format!("{root}{path}");
        let http = server.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/").await, (200, "<p>page</p>".into()));
    assert_eq!(get("/.well-known/security.txt").await.0, 200);
    assert_eq!(get("/alias.txt").await, (200, "inside".into()));
    for hidden in [
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/leak.txt",
        "/up/secret.txt",
        "/visible-env",
        "/gitdir/config",
    ] {
        let (status, body) = get(hidden).await;
        assert_eq!(status, 404, "{hidden}: {body}");
        assert!(
            !body.contains("SECRET") && !body.contains("[core]"),
            "{hidden}: {body}"
        );
    }
    // A path with an empty segment is no file: `//sub` was redirected to
    // `//sub/`, which a browser reads as another host (found by a
    // black-box check, 2026-12-02). Raw requests: nothing follows a
    // redirect off loopback.
    std::fs::create_dir(www.join("sub")).unwrap();
    std::fs::write(www.join("sub/index.html"), "<p>sub</p>").unwrap();
    for path in [
        "//sub",
        "//sub/",
        "/sub//",
        "//inside.txt",
        "/%5Csub",
        "/%2F%2Fsub",
    ] {
        let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
        let (code, text) = raw_request(&mut stream, path, "").await;
        assert_eq!(code, 404, "{path}: {text}");
        assert!(
            !text.to_ascii_lowercase().contains("location:"),
            "{path}: {text}"
        );
    }
    let mut stream = TcpStream::connect(server.server.addr()).await.unwrap();
    let (code, text) = raw_request(&mut stream, "/sub", "").await;
    assert_eq!(code, 307, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("location: /sub/\r\n"),
        "{text}"
    );
    // The next release: the link swapped, the new files served.
    let next = outside.path().join("next");
    std::fs::create_dir(&next).unwrap();
    std::fs::write(next.join("index.html"), "<p>next</p>").unwrap();
    let swapped = outside.path().join("current.new");
    std::os::unix::fs::symlink(&next, &swapped).unwrap();
    std::fs::rename(&swapped, &current).unwrap();
    assert_eq!(get("/").await, (200, "<p>next</p>".into()));
    server.stop().await;
}

/// Under an open-file limit lower than `--max-connections` allows for, the
/// cap is lowered to fit (with a warning): past it clients get 503 with
/// `Retry-After` and `/healthz` still answers, where the process ran out of
/// descriptors and accepted nothing at all (the cap of 16,384 was never
/// reached). The binary runs under `ulimit -n 200`: room for 56.
#[test]
fn the_connection_cap_fits_under_the_open_file_limit() {
    use std::io::{Read, Write};
    let (_dir, db) = temp_db();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n 200 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_provider-sync-server"))
        .args(["--database", db.to_str().unwrap()])
        // One loopback address stands in for many clients here.
        .args([
            "--read-rate-limit",
            "0",
            "--max-connections-per-address",
            "0",
        ])
        .stderr(std::process::Stdio::piped());
    let (mut child, base) = spawn_listening(command);
    let mut stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let addr = host_of(&base);
    let path = format!(
        "/{}",
        base.trim_start_matches("http://")
            .split_once('/')
            .unwrap()
            .1
    );
    // 60 idle connections: past the fitted cap of 56, under its ceiling of 72.
    let held: Vec<std::net::TcpStream> = (0..60)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let get = |target: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {path}{target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("an answer, not a hang");
        answer.to_ascii_lowercase()
    };
    let version = get("/version");
    assert!(version.starts_with("http/1.1 503"), "{version}");
    assert!(version.contains("\r\nretry-after: "), "{version}");
    let health = get("/healthz");
    assert!(health.starts_with("http/1.1 200"), "{health}");
    drop(held);
    drop(child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("--max-connections lowered from 16384 to 56"),
        "{log}"
    );
    // A refusal is counted, not logged as an error per request (a flood
    // of them was a flood of ERROR lines; found by a black-box check).
    assert!(!log.contains("ERROR"), "{log}");
}

/// One address may hold `--max-connections-per-address` connections; past
/// it a new one is closed at once, while other addresses are served; a
/// closed connection frees its address's place.
#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let (_dir, server) = start(|c| c.max_connections_per_address = Some(3)).await;
    let addr: std::net::SocketAddr = server
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let path = format!(
        "/{}/version",
        server
            .base
            .trim_start_matches("http://")
            .split_once('/')
            .unwrap()
            .1
    );
    let from = |source: &str| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(addr)
    };
    // An answer to GET /version on a new connection from `source`, or
    // none if the server closes it unanswered.
    let version_from = |source: &'static str| {
        let path = path.clone();
        async move {
            let mut stream = from(source).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
                .await
                .expect("answered or closed in time");
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(from("127.0.0.7").await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = version_from("127.0.0.7").await;
    assert_eq!(
        refused, "",
        "a fourth from one address is closed unanswered"
    );
    let other = version_from("127.0.0.8").await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    held.pop();
    let mut admitted = false;
    for _ in 0..100 {
        if version_from("127.0.0.7").await.starts_with("HTTP/1.1 200") {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a closed connection's place was not freed");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"reason="connections_per_address""#),
        "{metrics}"
    );
    server.stop().await;
}
