//! Serving the router on a listener, with the limits an exposed server
//! needs at the connection level: a cap on open connections (past it, every
//! request but the health probes is answered 503 with `Retry-After`; far
//! past it, connections are closed at once), a header-read timeout (slow
//! headers do not hold a socket), an idle timeout (a keep-alive connection
//! that says nothing is closed), and the write progress of every socket,
//! which a WebSocket session's write deadline measures.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
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
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections (WebSocket sessions included) served normally.
    pub max_connections: usize,
    /// Open connections from one address (IPv6: its /64), the trusted
    /// proxies' excepted; past it a new one is closed at once. 0: no cap;
    /// none given: [`Limits::per_address`]'s default.
    pub max_connections_per_address: Option<usize>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// Past this many open connections a new one is closed without a word:
    /// a quarter more than the cap, so the 503s themselves cannot exhaust
    /// the process's file descriptors.
    pub fn ceiling(&self) -> usize {
        ceiling_of(self.max_connections)
    }

    /// The cap per address: as given, else 1024 or a quarter of the cap on
    /// all connections when that is less (one address never holds them
    /// all); 0 for none.
    pub fn per_address(&self) -> usize {
        self.max_connections_per_address
            .unwrap_or_else(|| (self.max_connections / 4).clamp(1, 1024))
    }
}

/// Descriptors kept for what is not a client's connection: the store's
/// files or connections, the listener, the runtime's, health probes.
const RESERVED_FILES: u64 = 128;

impl Limits {
    /// These limits as the process's open-file limit allows them: the soft
    /// limit raised to the hard one first, then `max_connections` lowered
    /// (with a warning) until its ceiling fits under it with
    /// [`RESERVED_FILES`] to spare. Past the open-file limit a server can
    /// accept nothing at all (not even `/healthz`, nor the 503 that says to
    /// come back), while its own cap was never reached.
    pub fn within_open_files(self) -> Self {
        #[cfg(unix)]
        {
            let open_files = match rlimit::increase_nofile_limit(u64::MAX) {
                Ok(open_files) => open_files,
                // Not raised (a sandbox may refuse it): the limit as it is.
                Err(err) => match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                    Ok((soft, _)) => {
                        tracing::warn!(error = %err, open_files = soft, "cannot raise the open-file limit: the connection cap fits the current one");
                        soft
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read the open-file limit: --max-connections taken as given");
                        return self;
                    }
                },
            };
            let fitting = fitting_connections(open_files);
            if fitting < self.max_connections {
                tracing::warn!(
                    open_files,
                    "the open-file limit ({open_files}) leaves room for {fitting} connections: --max-connections lowered from {} to {fitting}; raise the limit (`ulimit -n`, LimitNOFILE= in a systemd unit) to serve more",
                    self.max_connections
                );
                return Self {
                    max_connections: fitting,
                    ..self
                };
            }
        }
        self
    }
}

fn ceiling_of(max_connections: usize) -> usize {
    max_connections
        .saturating_add(max_connections / 4)
        .max(max_connections.saturating_add(16))
}

/// The largest `max_connections` whose [`Limits::ceiling`] stays
/// [`RESERVED_FILES`] under `open_files`.
fn fitting_connections(open_files: u64) -> usize {
    let budget = usize::try_from(open_files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    // Four fifths, less the rounding of the quarter: a few steps up.
    let mut fitting = (budget / 5 * 4).min(budget.saturating_sub(16));
    while fitting < budget && ceiling_of(fitting + 1) <= budget {
        fitting += 1;
    }
    fitting
}

static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds since the first call, from 1: `head_since` takes 0 for "no
/// head yet", so a head whose first byte came in the clock's first
/// millisecond would otherwise never be timed.
fn now_ms() -> u64 {
    BASE.elapsed().as_millis() as u64 + 1
}

/// When a connection last moved bytes each way.
#[derive(Debug)]
pub struct Activity {
    read: AtomicU64,
    written: AtomicU64,
    /// Where an HTTP/1 connection stands between requests (`HEAD_*`), for
    /// `--header-read-timeout-ms`, timed from a head's first byte (hyper's
    /// header timer, off, would also run while a keep-alive connection
    /// waits for its next request: closing pooled connections after 10 s,
    /// not 60).
    head: std::sync::atomic::AtomicU8,
    /// When the first byte of a request's head came (ms; 0: none yet).
    head_since: AtomicU64,
    /// How many of the first bytes of HTTP/2's preface the connection's
    /// first bytes matched; [`NOT_HTTP2`] once one did not.
    preface: std::sync::atomic::AtomicU8,
}

/// What an HTTP/2 connection opens with (prior knowledge). The server
/// speaks HTTP/1.1 only: HTTP/2's request heads escaped the header-read
/// timeout (a head trickled in CONTINUATION frames held a connection until
/// the idle timeout) and were capped at 16 KiB rather than 64. HTTP/2 and
/// HTTP/3 belong to the proxy in front.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
const NOT_HTTP2: u8 = u8::MAX;
/// The whole preface came: refused.
const HTTP2: u8 = u8::MAX - 1;

/// Waiting for a request's head (its bytes are timed from the first).
const HEAD_AWAITED: u8 = 0;
/// A request is being read or answered.
const HEAD_READ: u8 = 1;
/// A connection upgraded to a WebSocket: no heads to time.
const HEAD_NONE: u8 = 2;

impl Activity {
    pub(crate) fn new() -> Self {
        let now = now_ms();
        Self {
            read: AtomicU64::new(now),
            written: AtomicU64::new(now),
            head: std::sync::atomic::AtomicU8::new(HEAD_AWAITED),
            head_since: AtomicU64::new(0),
            preface: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Bytes came: the first while a head is awaited starts its clock.
    /// False when the connection opened with HTTP/2's preface.
    fn bytes_read(&self, bytes: &[u8]) -> bool {
        let matched = self.preface.load(Ordering::Relaxed);
        if matched == HTTP2 {
            return false;
        }
        if matched != NOT_HTTP2 {
            let matched = usize::from(matched);
            let take = (HTTP2_PREFACE.len() - matched).min(bytes.len());
            if bytes[..take] != HTTP2_PREFACE[matched..matched + take] {
                self.preface.store(NOT_HTTP2, Ordering::Relaxed);
            } else if matched + take == HTTP2_PREFACE.len() {
                self.preface.store(HTTP2, Ordering::Relaxed);
                return false;
            } else {
                self.preface
                    .store((matched + take) as u8, Ordering::Relaxed);
            }
        }
        self.timed_read();
        true
    }

    /// Whether the connection opened with HTTP/2's preface (and was
    /// refused).
    fn spoke_http2(&self) -> bool {
        self.preface.load(Ordering::Relaxed) == HTTP2
    }

    fn timed_read(&self) {
        let now = now_ms();
        self.read.store(now, Ordering::Relaxed);
        if self.head.load(Ordering::Relaxed) == HEAD_AWAITED {
            let _ = self
                .head_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// A request's head was read whole.
    fn request_began(&self) {
        let _ = self.head.compare_exchange(
            HEAD_AWAITED,
            HEAD_READ,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.head_since.store(0, Ordering::Relaxed);
    }

    /// Its answer is on its way: the next bytes are the next request's
    /// (none after a switch of protocols).
    fn request_answered(&self, upgraded: bool) {
        if upgraded {
            self.head.store(HEAD_NONE, Ordering::Relaxed);
        } else {
            let _ = self.head.compare_exchange(
                HEAD_READ,
                HEAD_AWAITED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// How long the connection's timer is to sleep: until the idle
    /// timeout or the header timeout of a head being read, whichever comes
    /// first, and never longer than one header timeout (10 ms at least). A
    /// head that begins while it sleeps has its deadline no sooner than the
    /// timer's, so nothing needs to wake the timer for it: the timer wakes
    /// once a header timeout (10 s by default) however many requests the
    /// connection carries, where a wake-up at each head's first byte cost
    /// every request a new timer.
    fn timer_due(&self, idle_timeout: Duration, head_timeout: Duration) -> Duration {
        let head_left = match self.head_taking() {
            Some(taking) => head_timeout.saturating_sub(taking),
            None => head_timeout,
        };
        idle_timeout
            .saturating_sub(self.idle())
            .min(head_left)
            .max(Duration::from_millis(10))
    }

    /// How long the head being read has taken so far, if one is.
    fn head_taking(&self) -> Option<Duration> {
        let since = self.head_since.load(Ordering::Relaxed);
        (since != 0 && self.head.load(Ordering::Relaxed) == HEAD_AWAITED)
            .then(|| Duration::from_millis(now_ms().saturating_sub(since)))
    }

    /// The socket took bytes from the server (or the client took bytes
    /// from the kernel's queue) now.
    pub(crate) fn note_written(&self) {
        self.written.store(now_ms(), Ordering::Relaxed);
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
    /// The socket itself, which a WebSocket session's fan-out lane writes
    /// frames to directly (`crate::ws`).
    pub socket: Arc<Socket>,
}

/// A hint to the processor to fetch the cache line of `at` (no read:
/// any address will do).
#[inline(always)]
pub(crate) fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the
    // address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// One connection's socket, shared by the task that serves it (through
/// [`Tracked`]) and, after a WebSocket upgrade, the fan-out lane that
/// writes the session's frames without waking its task. Writes are
/// serialised by a lock; in whole-write mode (set for a session in a lane)
/// a write is never taken in part: what the socket cannot take at once is
/// kept, in order, and written first by the next write or flush, so the
/// frames of two writers never interleave.
#[derive(Debug)]
pub struct Socket {
    tcp: TcpStream,
    activity: Arc<Activity>,
    out: std::sync::Mutex<Out>,
}

/// Bytes kept for a socket: copied from a write, or shared with other
/// sockets (a frame many clients are sent whole, such as a full state:
/// kept by reference, so a thousand clients that do not read it hold one
/// copy, not a thousand).
#[derive(Debug)]
enum Kept {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Kept {
    fn bytes(&self) -> &[u8] {
        match self {
            Kept::Owned(bytes) => bytes,
            Kept::Shared(bytes) => bytes,
        }
    }
}

/// Shared bytes shorter than this are copied when kept, with what is kept
/// beside them: an event of a few hundred bytes kept by reference was a
/// piece of its own, and a system call of its own to write.
const SHARED_AT_LEAST: usize = 16 << 10;

/// An owned piece's buffer up to this size is kept for the next, not freed.
const SPARE_AT_MOST: usize = 64 << 10;

#[derive(Debug, Default)]
struct Out {
    /// Their count (read first by every write).
    waiting: usize,
    /// Bytes written to the socket so far: a flush waits for the bytes
    /// accepted before it, not for later ones.
    written: u64,
    whole: bool,
    /// Bytes accepted and not yet written, in order, from `start` in the
    /// first.
    kept: VecDeque<Kept>,
    start: usize,
    /// A written owned piece's buffer, empty, for the next one.
    spare: Vec<u8>,
    /// The kernel's send queue as last seen while a flush waited.
    queued: Option<u32>,
}

impl Out {
    fn waiting(&self) -> usize {
        self.waiting
    }

    /// The first bytes kept.
    fn front(&self) -> &[u8] {
        self.kept
            .front()
            .map_or(&[][..], |kept| &kept.bytes()[self.start..])
    }

    /// `n` kept bytes were written.
    fn advance(&mut self, n: usize) {
        self.start += n;
        self.waiting -= n;
        let Some(front) = self.kept.front_mut() else {
            return;
        };
        let length = front.bytes().len();
        if self.start >= length {
            // Written whole: a large write's leftover (a full state) is
            // not kept allocated for the rest of a long session; a small
            // buffer is kept for the next piece.
            if let Some(Kept::Owned(mut bytes)) = self.kept.pop_front()
                && bytes.capacity() <= SPARE_AT_MOST
            {
                bytes.clear();
                self.spare = bytes;
            }
            self.start = 0;
        } else if let Kept::Owned(bytes) = front
            && self.start >= 64 << 10
            && self.start >= length / 2
        {
            // Bytes keep coming while earlier ones leave: what was written
            // is dropped, so the buffer holds at most about twice what waits.
            bytes.drain(..self.start);
            self.start = 0;
        }
    }

    /// Keeps `parts` from byte `skip` on; the last one by reference when
    /// `shared` is it.
    fn keep(&mut self, parts: &[io::IoSlice<'_>], mut skip: usize, shared: Option<&Bytes>) {
        let last = parts.len().saturating_sub(1);
        for (at, part) in parts.iter().enumerate() {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            let rest = &part[skip..];
            self.waiting += rest.len();
            match shared {
                Some(shared) if at == last && rest.len() >= SHARED_AT_LEAST => {
                    self.kept.push_back(Kept::Shared(shared.slice(skip..)));
                }
                _ => match self.kept.back_mut() {
                    Some(Kept::Owned(bytes)) => bytes.extend_from_slice(rest),
                    _ => {
                        let mut bytes = std::mem::take(&mut self.spare);
                        bytes.extend_from_slice(rest);
                        self.kept.push_back(Kept::Owned(bytes));
                    }
                },
            }
            skip = 0;
        }
    }
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            tcp,
            activity,
            out: std::sync::Mutex::new(Out::default()),
        }
    }

    fn out(&self) -> std::sync::MutexGuard<'_, Out> {
        // A panic while holding it cannot leave `Out` half-changed in a way
        // that matters more than the panic itself.
        self.out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wrote(&self, out: &mut Out, n: usize) {
        out.written += n as u64;
        if n > 0 {
            self.activity.note_written();
        }
    }

    /// While a flush waits: bytes the client took from the kernel's send
    /// queue count as progress too. The socket is only woken for more once
    /// a good part of that queue (up to megabytes) has gone, which takes a
    /// slow but moving client longer than the write deadline: it was
    /// dropped in the middle of a large `full_sync`.
    fn note_queue(&self, out: &mut Out) {
        let queued = self.unsent();
        if let (Some(before), Some(now)) = (out.queued, queued)
            && now < before
        {
            self.activity.note_written();
        }
        out.queued = queued;
    }

    /// Bytes in the kernel's send queue not yet taken by the client.
    #[cfg(target_os = "linux")]
    fn unsent(&self) -> Option<u32> {
        use std::os::fd::AsRawFd;
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int through the pointer, which lives
        // for the call; the descriptor is this socket's, open while `self`
        // is.
        let done = unsafe { libc::ioctl(self.tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        (done == 0).then(|| queued.max(0) as u32)
    }

    #[cfg(not(target_os = "linux"))]
    fn unsent(&self) -> Option<u32> {
        None
    }

    /// Writes what is kept, as far as the socket takes it now.
    fn drain(&self, out: &mut Out) -> io::Result<()> {
        while out.waiting() > 0 {
            match self.tcp.try_write(out.front()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wrote(out, n);
                    out.advance(n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// From now on, every write is taken whole (see [`Socket`]).
    pub fn write_whole(&self) {
        self.out().whole = true;
    }

    /// Writes `parts` whole, without waiting: what the socket does not take
    /// now is kept and written, in order, before anything written later.
    /// Returns the bytes kept, which whoever owns the session flushes.
    pub fn send(&self, parts: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.send_whole(&mut self.out(), parts, None)
    }

    /// [`Socket::send`] of `head` then `body`, where `body` is shared with
    /// other sockets: what of it the socket does not take now is kept by
    /// reference, not copied.
    pub fn send_shared(&self, head: &[u8], body: &Bytes) -> io::Result<usize> {
        self.send_whole(
            &mut self.out(),
            &[io::IoSlice::new(head), io::IoSlice::new(body)],
            Some(body),
        )
    }

    /// `shared`, when given, is the last of `parts`.
    fn send_whole(
        &self,
        out: &mut Out,
        parts: &[io::IoSlice<'_>],
        shared: Option<&Bytes>,
    ) -> io::Result<usize> {
        if out.waiting() > 0 {
            self.drain(out)?;
        }
        if out.waiting() > 0 {
            out.keep(parts, 0, shared);
            return Ok(out.waiting());
        }
        // One part goes out with `send` rather than `writev`: the kernel's
        // vectored path costs more per call (perf, 10k clients: `writev`'s
        // own work and its file-position lock were about 6% of the server's
        // CPU).
        let tried = match parts {
            [one] => self.send_now(one),
            _ => self.tcp.try_write_vectored(parts),
        };
        let written = match tried {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
            Err(err) => return Err(err),
        };
        out.written += written as u64;
        out.keep(parts, written, shared);
        // Progress is what the write deadline measures, and it runs only
        // while bytes wait: a write taken whole is not noted (a fan-out
        // lane's usual write, where the clock and the connection's
        // activity were two more cache lines per delivery). After an
        // upgrade nothing else reads it (the idle timeout is HTTP's).
        if written > 0 && out.waiting() > 0 {
            self.activity.note_written();
        }
        Ok(out.waiting())
    }

    /// Asks the processor for the lines a [`Socket::send`] to the socket
    /// at `socket` reads first (its reference counts, its lock), ahead of
    /// the send: a fan-out lane's loop over thousands of sockets otherwise
    /// waits on a cache miss for each. Only addresses are worked out;
    /// nothing is read, so any pointer will do.
    pub(crate) fn prefetch(socket: *const Socket) {
        let at = socket.cast::<u8>();
        // An `Arc`'s two counts come just before its value.
        prefetch(at.wrapping_sub(2 * std::mem::size_of::<usize>()));
        prefetch(at.wrapping_add(std::mem::offset_of!(Socket, out)));
    }

    /// One non-blocking `send`, straight to the socket: tokio's readiness
    /// check (one more cache line per delivery in a fan-out lane) is left
    /// out. Safe beside tokio's own writes: a `send` refused here leaves
    /// its readiness set, and its next write finds out itself; one taken
    /// here while tokio holds the socket unwritable changes nothing, since
    /// the kernel's edge that made it so still wakes it.
    #[cfg(target_os = "linux")]
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: the pointer and length are those of `bytes`, which
            // outlives the call; the descriptor is this socket's, open while
            // `self` is.
            let sent = unsafe {
                libc::send(
                    self.tcp.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if sent >= 0 {
                return Ok(sent as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        self.tcp.try_write(bytes)
    }

    /// Bytes kept, not yet written.
    pub fn waiting(&self) -> usize {
        self.out().waiting()
    }

    /// Where a flush of every byte accepted so far ends.
    pub fn flush_target(&self) -> u64 {
        let out = self.out();
        out.written + out.waiting() as u64
    }

    /// Writes what is kept until the socket has taken every byte up to
    /// `target` ([`Socket::flush_target`]); bytes accepted later (a lane
    /// writing to a slow socket all along) do not hold it.
    pub fn poll_flush_to(&self, cx: &mut Context<'_>, target: u64) -> Poll<io::Result<()>> {
        loop {
            let mut out = self.out();
            self.drain(&mut out)?;
            if out.written >= target {
                out.queued = None;
                return Poll::Ready(Ok(()));
            }
            self.note_queue(&mut out);
            drop(out);
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.tcp.poll_read_ready(cx))?;
            // Read into the buffer's uninitialised room as tokio's own
            // `TcpStream` does, rather than zeroing it first
            // (`initialize_unfilled`: hyper's whole spare buffer, several
            // KB a read, about 2% of a `GET /version`).
            // SAFETY: nothing here de-initialises the slice; `try_read_buf`
            // only writes to it.
            let mut unfilled = unsafe { buf.unfilled_mut() };
            match self.tcp.try_read_buf(&mut unfilled) {
                Ok(n) => {
                    // SAFETY: `try_read_buf` wrote the first `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 {
                        let filled = buf.filled();
                        if !self.activity.bytes_read(&filled[filled.len() - n..]) {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "HTTP/2 is not served: HTTP/1.1 only",
                            )));
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    fn poll_write(
        &self,
        cx: &mut Context<'_>,
        parts: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = parts.iter().map(|part| part.len()).sum();
        loop {
            let mut out = self.out();
            if out.whole {
                return Poll::Ready(self.send_whole(&mut out, parts, None).map(|_| total));
            }
            if out.waiting() > 0 {
                self.drain(&mut out)?;
            }
            if out.waiting() == 0 {
                match self.tcp.try_write_vectored(parts) {
                    Ok(n) => {
                        self.wrote(&mut out, n);
                        return Poll::Ready(Ok(n));
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
            drop(out);
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
        }
    }

    /// Writes everything kept; pending until the socket has taken it.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut out = self.out();
            self.drain(&mut out)?;
            if out.waiting() == 0 {
                out.queued = None;
                return Poll::Ready(Ok(()));
            }
            self.note_queue(&mut out);
            drop(out);
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
        }
    }
}

/// A socket that records its progress, and counts itself open until it is
/// dropped (after a WebSocket upgrade, when the session ends).
struct Tracked {
    socket: Arc<Socket>,
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    /// Its place under its address's cap, given back when it closes.
    _address: Option<crate::limits::AddressSlot>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.metrics.connections.dec();
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.socket.poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_write(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_write(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.socket.poll_flush(cx))?;
        // What `TcpStream`'s own shutdown does, through the shared handle.
        Poll::Ready(socket2::SockRef::from(&self.socket.tcp).shutdown(std::net::Shutdown::Write))
    }
}

/// The paths answered even past the connection cap: the probes that tell
/// a load balancer this instance is alive.
fn is_probe(path: &str) -> bool {
    path.ends_with("/healthz") || path.ends_with("/readyz")
}

/// Marks a request that came past the connection cap (a request
/// extension): [`refuse_over_capacity`] answers it.
#[derive(Debug, Clone, Copy)]
pub struct OverCapacity;

/// Guard ([`crate::http::guard`]): answers a request past the connection
/// cap with 503 (and `Retry-After`), as a layer inside CORS and the request
/// id, so the answer carries both.
pub fn refuse_over_capacity(
    _: &(),
    request: &mut axum::extract::Request,
) -> Option<axum::response::Response> {
    request.extensions().get::<OverCapacity>()?;
    Some(
        Error::Unavailable("the server is at its connection limit: try again shortly".into())
            .into_response(),
    )
}

/// 501 for a request whose body is sent in a transfer coding other than
/// `chunked` (`Transfer-Encoding: gzip, chunked`): hyper reads the chunks
/// and hands on the bytes still gzipped, which were then read as if they
/// were the body (RFC 9112, 6.1: a server answers a coding it does not
/// understand with 501). `chunked` named twice gets 400. The body is left
/// unread, and the connection closed after the answer ([`CloseUnread`]).
pub fn refuse_transfer_codings(
    _: &(),
    request: &mut axum::extract::Request,
) -> Option<axum::response::Response> {
    let mut codings = request
        .headers()
        .get_all(axum::http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        // Empty elements of a list are ignored (RFC 9110, 5.6.1).
        .filter(|coding| !coding.is_empty());
    let mut chunked = 0;
    let unknown = codings.find(|coding| {
        chunked += usize::from(coding.eq_ignore_ascii_case(b"chunked"));
        !coding.eq_ignore_ascii_case(b"chunked")
    });
    if let Some(unknown) = unknown {
        return Some(
            Error::NotImplemented(format!(
                "transfer coding '{}' is not supported: send the body as it is, or chunked",
                crate::validate::shown(&String::from_utf8_lossy(unknown))
            ))
            .into_response(),
        );
    }
    // Chunked twice is never sent (RFC 9112, 6.1): the message is unsound.
    (chunked > 1).then(|| {
        Error::BadRequest("Transfer-Encoding names chunked more than once".into()).into_response()
    })
}

/// Says `Connection: close` on an HTTP/1 answer given before its request's
/// body was read to its end (a 401, 404, 413, 415 or 429 answered from the
/// headers): hyper closes such a connection, since what is left of the body
/// would otherwise be read as the next request, and a client told nothing
/// sends its next request on it and gets a broken pipe instead of an
/// answer (RFC 9112, 9.6). Outside every layer but the `nosniff` header, so
/// that every answer of the router is seen. A request without a body passes
/// straight through (no clone of the layers inside, no box: see
/// [`crate::http::guard`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CloseUnreadLayer;

impl<S> tower::Layer<S> for CloseUnreadLayer {
    type Service = CloseUnread<S>;

    fn layer(&self, inner: S) -> CloseUnread<S> {
        CloseUnread { inner }
    }
}

/// The service [`CloseUnreadLayer`] makes.
#[derive(Debug, Clone)]
pub struct CloseUnread<S> {
    inner: S,
}

impl<S, B> tower::Service<axum::extract::Request> for CloseUnread<S>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::http::Response<B>,
            Error = std::convert::Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = axum::http::Response<B>;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        S::Future,
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use futures_util::future::Either;
        use hyper::body::Body as _;
        if request.version() > axum::http::Version::HTTP_11 || request.body().is_end_stream() {
            return Either::Left(self.inner.call(request));
        }
        let read = Arc::new(AtomicBool::new(false));
        let (parts, body) = request.into_parts();
        let body = Body::new(ReadToEnd {
            inner: body,
            read: read.clone(),
        });
        let answer = self.inner.call(Request::from_parts(parts, body));
        Either::Right(Box::pin(async move {
            let mut response = answer.await?;
            if !read.load(Ordering::Acquire) {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok(response)
        }))
    }
}

/// A request body that notes when it was read to its end.
struct ReadToEnd {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl hyper::body::Body for ReadToEnd {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
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

/// The longest HTTP/1 request head read (hyper's read buffer).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `router` on `listener` until `stop` resolves, then lets the
/// connections in flight finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    mut handed: Option<Handed>,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    // HTTP/1.1 only (a connection that opens with HTTP/2's preface is
    // closed as it is read: `Activity::bytes_read`).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's header timer runs from when a connection waits for its next
    // request, so it would close idle keep-alive connections too, and it is
    // set again for every request (a timer entry moved each time): it is
    // off. Each connection's own timer below times the head from its first
    // byte, and idleness (a head begun just before the idle timeout still
    // has its whole header time).
    // A head past 64 KiB gets 431 as it comes (hyper's default buffer,
    // about 400 KB, let each unfinished head hold that much until its time
    // limit).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let open = Arc::new(AtomicUsize::new(0));
    let per_address = crate::limits::PerAddress::new(limits.per_address());
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
            // Accepted while the server started (`answer_while_starting`).
            given = async { handed.as_mut()?.recv().await }, if handed.is_some() => match given {
                Some(given) => given,
                None => {
                    handed = None;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // One address may not hold every connection: past its share a new
        // one is closed without a word, as past the ceiling (a trusted
        // proxy's carry many clients).
        let address = if crate::limits::trusted_ip(peer.ip(), &limits.trusted_proxies) {
            Ok(None)
        } else {
            per_address.take(peer.ip())
        };
        let Ok(address) = address else {
            metrics.refused("connections_per_address").inc();
            drop(stream);
            continue;
        };
        let count = open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.connections.inc();
        let activity = Arc::new(Activity::new());
        let _ = stream.set_nodelay(true);
        let socket = Arc::new(Socket::new(stream, activity.clone()));
        let io = Tracked {
            socket: socket.clone(),
            open: open.clone(),
            metrics: metrics.clone(),
            _address: address,
        };
        if count > limits.ceiling() {
            metrics.refused("connections").inc();
            drop(io);
            drop(socket);
            continue;
        }
        let over = count > limits.max_connections;
        if over {
            metrics.refused("connections").inc();
        }
        let connection = Connection {
            peer,
            activity: activity.clone(),
            socket,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(connection.clone());
            let router = router.clone();
            let activity = connection.activity.clone();
            async move {
                activity.request_began();
                let refused = over && !is_probe(request.uri().path());
                if refused {
                    // Answered 503 inside the router's layers
                    // (`refuse_over_capacity`): with the CORS headers a page
                    // of another origin needs to read its `Retry-After`.
                    request.extensions_mut().insert(OverCapacity);
                }
                let mut answer = router.oneshot(request.map(Body::new)).await;
                if let Ok(response) = &mut answer {
                    activity.request_answered(
                        response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS,
                    );
                    if refused {
                        response.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                }
                answer
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let (idle_timeout, head_timeout) = (limits.idle_timeout, limits.header_read_timeout);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            loop {
                let wait = activity.timer_due(idle_timeout, head_timeout);
                tokio::select! {
                    _ = &mut connection => {
                        if activity.spoke_http2() {
                            metrics.refused("http2").inc();
                        }
                        return;
                    }
                    _ = tokio::time::sleep(wait) => {
                        // Silent both ways too long, or a head taking too
                        // long from its first byte: dropping the
                        // connection closes the socket.
                        if activity.idle() >= idle_timeout
                            || activity.head_taking().is_some_and(|t| t >= head_timeout)
                        {
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

/// Connections answered at once while the server starts, at most (and no
/// more than `--max-connections`, as fitted to the open-file limit).
const STARTING_CONNECTIONS: usize = 256;

/// Connections accepted while the server started that had sent nothing by
/// the time it runs: the server serves them as if it had accepted them.
pub(crate) type Handed = tokio::sync::mpsc::UnboundedReceiver<(TcpStream, SocketAddr)>;

/// Answers every request on `listener` with `router`'s answer
/// ([`crate::app::starting`]'s `503`), saying `Connection: close`, until
/// `ready` resolves, then gives the listener back, with the connections
/// that had sent nothing yet ([`Handed`]: a browser's preconnected socket
/// is served by the server that runs, not answered 503 later). The port is
/// bound before the store opens (a port in use stops the start before
/// anything runs), and the open may take long: another process's lock
/// waited for (`--store-lock-timeout-ms`), a large catalog imported.
/// Without this, requests sent then waited, unanswered, in the listener's
/// queue. Each request gets one answer, and its connection is closed; one
/// silent for the idle timeout is closed; past [`STARTING_CONNECTIONS`]
/// open at once, a new one is closed without a word.
pub(crate) async fn answer_while_starting(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    ready: impl Future<Output = ()>,
) -> (TcpListener, Handed) {
    let header_read_timeout = limits.header_read_timeout;
    let mut ready = std::pin::pin!(ready);
    let open = Arc::new(tokio::sync::Semaphore::new(
        STARTING_CONNECTIONS.min(limits.max_connections),
    ));
    let (started, running) = tokio::sync::watch::channel(false);
    let (hand, handed) = tokio::sync::mpsc::unbounded_channel();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut ready => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept connections; retrying in 1 s");
                    tokio::select! {
                        () = &mut ready => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answer = router.clone().oneshot(request.map(Body::new));
            async move {
                let mut answer = answer.await?;
                answer.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                Ok::<_, std::convert::Infallible>(answer)
            }
        });
        let http = http.clone();
        let (mut running, hand) = (running.clone(), hand.clone());
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut byte = [0u8; 1];
            tokio::select! {
                biased;
                // Silent until the server runs (or its bytes not yet looked
                // at then): the server's now. Also when the start failed:
                // then dropped there.
                _ = running.wait_for(|running| *running) => {
                    let _ = hand.send((stream, peer));
                    return;
                }
                // A byte come (`readable` woke for none on a new
                // connection, which was then answered 503 after the start).
                peeked = stream.peek(&mut byte) => {
                    if !matches!(peeked, Ok(1..)) {
                        return;
                    }
                }
                // Silent as long as the server lets a connection be
                // (`--idle-timeout-ms`): closed, its place freed.
                () = tokio::time::sleep(idle_timeout) => return,
            }
            let connection = http.serve_connection(TokioIo::new(stream), service);
            // Never longer than a head's time and a little to answer.
            let _ = tokio::time::timeout(header_read_timeout + Duration::from_secs(5), connection)
                .await;
        });
    }
    let _ = started.send(true);
    (listener, handed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The connection's timer sleeps until the idle timeout or the head's
    /// deadline, whichever is first, never past one header timeout (so a
    /// head begun while it sleeps is never due before it wakes), and at
    /// least 10 ms.
    #[test]
    fn the_connection_timer_wakes_no_later_than_any_deadline() {
        let (idle, head) = (Duration::from_secs(60), Duration::from_secs(10));
        let activity = Activity::new();
        assert_eq!(activity.timer_due(idle, head), head, "idle, no head");
        let near = activity.timer_due(Duration::from_secs(5), head);
        assert!(near <= Duration::from_secs(5) && near > Duration::from_millis(4900));
        assert_eq!(
            activity.timer_due(Duration::ZERO, head),
            Duration::from_millis(10)
        );
        // A head's first bytes: its deadline, from then (even in the
        // clock's first millisecond).
        assert!(activity.bytes_read(b"GET /ver"));
        assert!(activity.head_taking().is_some());
        let due = activity.timer_due(idle, head);
        assert!(
            due <= head && due > head - Duration::from_millis(100),
            "{due:?}"
        );
        // Read whole and answered: the next head is not timed yet.
        activity.request_began();
        activity.request_answered(false);
        assert_eq!(activity.timer_due(idle, head), head);
        // HTTP/2's preface, in one read or several, is refused; the same
        // bytes later in a connection are only bytes.
        let h2 = Activity::new();
        assert!(h2.bytes_read(b"PRI * HT"));
        assert!(!h2.bytes_read(b"TP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(h2.spoke_http2() && !h2.bytes_read(b"\0\0\0\x04"));
        assert!(!Activity::new().bytes_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        let h1 = Activity::new();
        assert!(h1.bytes_read(b"POST /sync HTTP/1.1\r\n"));
        assert!(h1.bytes_read(b"PRI * HTTP/2.0"));
        assert!(!h1.spoke_http2());
    }

    /// The cap fitted to an open-file limit is the largest whose ceiling
    /// (the cap, then a quarter or 16 more closed at once) leaves the
    /// reserve free.
    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        let limits = |max_connections| Limits {
            max_connections,
            max_connections_per_address: None,
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        };
        for open_files in [0, 100, 128, 144, 145, 200, 1024, 4096, 20_000, 1 << 20] {
            let fitting = fitting_connections(open_files);
            let room = open_files.saturating_sub(RESERVED_FILES) as usize;
            if fitting > 0 {
                assert!(limits(fitting).ceiling() <= room, "{open_files}");
            }
            assert!(
                limits(fitting + 1).ceiling() > room,
                "{open_files}: {fitting} is not the largest"
            );
        }
        assert_eq!(fitting_connections(1024), 717);
        assert_eq!(fitting_connections(200), 56);
        // The default cap per address is at most a quarter of the fitted
        // cap: one address cannot take every connection there either.
        assert_eq!(limits(16_384).per_address(), 1024);
        assert_eq!(limits(fitting_connections(1024)).per_address(), 179);
        assert_eq!(limits(2).per_address(), 1);
        let mut given = limits(100);
        given.max_connections_per_address = Some(0);
        assert_eq!(given.per_address(), 0);
    }

    /// A connected pair on loopback: the server's side as a [`Socket`], and
    /// the client's.
    pub(crate) async fn pair() -> (Arc<Socket>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (client, accepted) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let (server, client) = (accepted.unwrap().0, client.unwrap());
        // Small buffers: a test fills them with little.
        socket2::SockRef::from(&server)
            .set_send_buffer_size(64 << 10)
            .unwrap();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(64 << 10)
            .unwrap();
        let socket = Socket::new(server, Arc::new(Activity::new()));
        (Arc::new(socket), client)
    }

    /// Whole writes larger than the socket takes at once: what it does not
    /// take is kept and goes out first, so the peer reads every byte in
    /// the order written, across writers (`send`, and `Tracked`'s
    /// `poll_write`, which the WebSocket's own writes go through).
    #[tokio::test]
    async fn whole_writes_keep_what_the_socket_does_not_take_in_order() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (socket, mut client) = pair().await;
        socket.write_whole();
        // 1 MiB each: more than the buffers take at once.
        let chunks: Vec<Vec<u8>> = (1..=3u8).map(|i| vec![i; 1 << 20]).collect();
        socket.send(&[io::IoSlice::new(&chunks[0])]).unwrap();
        assert!(socket.waiting() > 0, "the socket took 1 MiB at once");
        let mut tracked = Tracked {
            socket: socket.clone(),
            open: Arc::new(AtomicUsize::new(1)),
            metrics: Arc::new(Metrics::new()),
            _address: None,
        };
        tracked.metrics.connections.inc();
        // Taken whole although the socket is full.
        let taken = tokio::time::timeout(Duration::from_secs(2), tracked.write(&chunks[1]))
            .await
            .expect("a whole write waited for the socket");
        assert_eq!(taken.unwrap(), chunks[1].len());
        socket
            .send(&[
                io::IoSlice::new(&chunks[2][..1]),
                io::IoSlice::new(&chunks[2][1..]),
            ])
            .unwrap();
        let total = chunks.iter().map(Vec::len).sum::<usize>();
        let reader = tokio::spawn(async move {
            let mut received = vec![0u8; total];
            client.read_exact(&mut received).await.unwrap();
            received
        });
        tracked.flush().await.unwrap();
        assert_eq!(socket.waiting(), 0);
        let received = reader.await.unwrap();
        assert!(received == chunks.concat(), "bytes lost or out of order");
    }

    /// A shared body the socket does not take at once is kept by
    /// reference, not copied (a full state to clients that do not read it:
    /// a copy each held the server's memory), and goes out in order with
    /// what is written before and after it.
    #[tokio::test]
    async fn a_shared_body_is_kept_by_reference_and_sent_in_order() {
        use tokio::io::AsyncReadExt;
        let (socket, mut client) = pair().await;
        socket.write_whole();
        let before = vec![1u8; 1000];
        socket.send(&[io::IoSlice::new(&before)]).unwrap();
        let body = Bytes::from(vec![2u8; 4 << 20]);
        let waiting = socket.send_shared(b"head", &body).unwrap();
        assert!(waiting > 0, "the socket took 4 MiB at once");
        {
            let out = socket.out();
            let Some(Kept::Shared(kept)) = out.kept.iter().find(|k| matches!(k, Kept::Shared(_)))
            else {
                panic!("the body was copied: {:?}", out.kept.len());
            };
            let offset = kept.as_ptr() as usize - body.as_ptr() as usize;
            assert!(offset < body.len(), "not the body's own bytes");
            assert_eq!(kept.len(), body.len() - offset);
        }
        let after = vec![3u8; 1000];
        socket.send(&[io::IoSlice::new(&after)]).unwrap();
        // A small shared body is copied with what waits beside it: one
        // piece, not one per event.
        let small = Bytes::from(vec![4u8; 300]);
        let pieces = socket.out().kept.len();
        socket.send_shared(b"hd", &small).unwrap();
        assert_eq!(socket.out().kept.len(), pieces, "a piece of its own");
        let total = before.len() + 4 + body.len() + after.len() + 2 + small.len();
        let reader = tokio::spawn(async move {
            let mut received = vec![0u8; total];
            client.read_exact(&mut received).await.unwrap();
            received
        });
        std::future::poll_fn(|cx| socket.poll_flush(cx))
            .await
            .unwrap();
        assert_eq!(socket.waiting(), 0);
        assert!(socket.out().kept.is_empty(), "nothing held once written");
        let received = reader.await.unwrap();
        let expected = [
            &before[..],
            b"head",
            &body[..],
            &after[..],
            b"hd",
            &small[..],
        ]
        .concat();
        assert!(received == expected, "bytes lost or out of order");
    }

    /// A socket that never empties (bytes keep coming as others leave):
    /// what was written is dropped, the buffer holds about twice what waits.
    #[test]
    fn the_kept_bytes_stay_bounded_while_never_all_written() {
        let mut out = Out::default();
        let chunk = vec![1u8; 1000];
        let held = |out: &Out| out.kept.iter().map(|k| k.bytes().len()).sum::<usize>();
        for _ in 0..10_000 {
            out.keep(&[io::IoSlice::new(&chunk)], 0, None);
            out.advance(999);
            assert!(out.waiting() > 0);
            assert!(
                held(&out) <= 2 * out.waiting() + (64 << 10) + chunk.len(),
                "{} bytes held for {} waiting",
                held(&out),
                out.waiting()
            );
        }
        assert_eq!(out.waiting(), 10_000);
        assert_eq!(held(&out) - out.start, 10_000);
        assert!(out.front().iter().all(|&b| b == 1));
    }

    /// A flush waits for the bytes accepted before it, not for those a lane
    /// keeps adding to a slow socket.
    #[tokio::test]
    async fn a_flush_ends_with_the_bytes_before_it() {
        use tokio::io::AsyncReadExt;
        let (socket, mut client) = pair().await;
        socket.write_whole();
        let first = vec![1u8; 1 << 20];
        socket.send(&[io::IoSlice::new(&first)]).unwrap();
        let target = socket.flush_target();
        assert_eq!(target, first.len() as u64);
        let later = vec![2u8; 1 << 20];
        socket.send(&[io::IoSlice::new(&later)]).unwrap();
        // The client reads the first MiB only, then holds the connection.
        let (done, hold) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            let mut received = vec![0u8; 1 << 20];
            client.read_exact(&mut received).await.unwrap();
            let _ = hold.await;
            received
        });
        tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| socket.poll_flush_to(cx, target)),
        )
        .await
        .expect("the flush waited for bytes accepted after it")
        .unwrap();
        assert!(socket.waiting() > 0, "the later bytes wait for the client");
        drop(done);
        assert!(reader.await.unwrap() == first);
    }
}
