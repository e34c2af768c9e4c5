//! Serving the router on a listener, with the limits an exposed server
//! needs at the connection level: a cap on open connections (past it, every
//! request but the health probes is answered 503 with `Retry-After`; far
//! past it, connections are closed at once), a header-read timeout (slow
//! headers do not hold a socket), an idle timeout (a keep-alive connection
//! that says nothing is closed), and the write progress of every socket,
//! which a WebSocket session's write deadline measures.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::Error;
use crate::metrics::Metrics;

/// The connection-level limits (`--max-connections`,
/// `--header-read-timeout-ms`, `--idle-timeout-ms`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections (WebSocket sessions included) served normally.
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// Past this many open connections a new one is closed without a word:
    /// a quarter more than the cap, so the 503s themselves cannot exhaust
    /// the process's file descriptors.
    pub fn ceiling(&self) -> usize {
        self.max_connections
            .saturating_add(self.max_connections / 4)
            .max(self.max_connections.saturating_add(16))
    }
}

static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    BASE.elapsed().as_millis() as u64
}

/// When a connection last moved bytes each way.
#[derive(Debug)]
pub struct Activity {
    read: AtomicU64,
    written: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        let now = now_ms();
        Self {
            read: AtomicU64::new(now),
            written: AtomicU64::new(now),
        }
    }

    /// How long ago the socket last accepted bytes from the server.
    pub fn since_write(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.written.load(Ordering::Relaxed)))
    }

    /// How long neither side has moved a byte.
    fn idle(&self) -> Duration {
        let last = self
            .read
            .load(Ordering::Relaxed)
            .max(self.written.load(Ordering::Relaxed));
        Duration::from_millis(now_ms().saturating_sub(last))
    }
}

/// What a request knows about the connection it came on (a request
/// extension; absent when the routes are served by an application's own
/// server).
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
}

/// A socket that records its progress, and counts itself open until it is
/// dropped (after a WebSocket upgrade, when the session ends).
struct Tracked {
    io: TcpStream,
    activity: Arc<Activity>,
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.metrics.connections.dec();
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.written.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.written.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The paths answered even past the connection cap: the probes that tell
/// a load balancer this instance is alive.
fn is_probe(path: &str) -> bool {
    path.ends_with("/healthz") || path.ends_with("/readyz")
}

/// The answer past the connection cap, made before the router: it carries
/// a request id as every answer does.
fn over_capacity(request: &Request<Incoming>) -> axum::response::Response {
    let mut response =
        Error::Unavailable("the server is at its connection limit: try again shortly".into())
            .into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    headers.insert(
        &crate::http::trace::REQUEST_ID,
        crate::http::trace::id_for(request.headers()),
    );
    response
}

/// Accept errors that concern one connection only; others (out of file
/// descriptors) are waited out.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` until `stop` resolves, then lets the
/// connections in flight finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept connections; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let count = open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.connections.inc();
        let activity = Arc::new(Activity::new());
        let io = Tracked {
            io: stream,
            activity: activity.clone(),
            open: open.clone(),
            metrics: metrics.clone(),
        };
        if count > limits.ceiling() {
            metrics.refused("connections").inc();
            drop(io);
            continue;
        }
        let _ = io.io.set_nodelay(true);
        let over = count > limits.max_connections;
        if over {
            metrics.refused("connections").inc();
        }
        let connection = Connection {
            peer,
            activity: activity.clone(),
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(connection.clone());
            let router = router.clone();
            async move {
                if over && !is_probe(request.uri().path()) {
                    return Ok::<_, std::convert::Infallible>(over_capacity(&request));
                }
                router.oneshot(request.map(Body::new)).await
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            loop {
                let wait = idle_timeout.saturating_sub(activity.idle());
                tokio::select! {
                    _ = &mut connection => return,
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {
                        if activity.idle() >= idle_timeout {
                            // Dropping the connection closes the socket.
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
