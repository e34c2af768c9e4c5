//! The fan-out floor: the least a server can do to deliver one message to N
//! WebSocket clients on this machine, to measure the others against. It
//! speaks what `bench/ws-baseline/server.mjs` speaks (clients upgrade at
//! `/ws`; `POST /broadcast` sends the request body to every client and
//! answers once every socket has taken it), on one thread, with no
//! framework and no runtime: the message is made into one WebSocket frame
//! once, then written to each socket with plain non-blocking `write`s, the
//! sockets still full retried until they take the rest. No allocation per
//! send. What it costs is, near enough, the kernel's cost of the writes.
//!
//!   floor PORT

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// One HTTP request as far as the floor needs it.
struct Request {
    method: String,
    path: String,
    key: Option<String>,
    body: Vec<u8>,
}

/// Reads one request (headers, and a body of `Content-Length` bytes) from
/// a blocking stream; None if the peer sends something else or goes away.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut key = None;
    let mut length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        }
    }
    let mut body = buffer[end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request {
        method,
        path,
        key,
        body,
    })
}

/// A server-to-client text frame (unmasked, final) carrying `payload`.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// Writes `frame` to every client: one pass of non-blocking writes, then
/// more passes over the sockets that did not take all of it. Clients whose
/// socket fails are dropped.
fn broadcast(clients: &mut Vec<TcpStream>, written: &mut Vec<usize>, frame: &[u8]) {
    written.clear();
    written.resize(clients.len(), 0);
    let mut left = clients.len();
    while left > 0 {
        for (client, done) in clients.iter_mut().zip(written.iter_mut()) {
            // Done, or gone (usize::MAX).
            if *done >= frame.len() {
                continue;
            }
            match client.write(&frame[*done..]) {
                Ok(n) => *done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Gone: counted as done, dropped below.
                Err(_) => *done = usize::MAX,
            }
            if *done >= frame.len() {
                left -= 1;
            }
        }
        if left > 0 {
            std::thread::yield_now();
        }
    }
    let mut keep = written.iter().map(|&done| done != usize::MAX);
    clients.retain(|_| keep.next().unwrap_or(true));
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8092);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("floor on {port}");
    serve(listener);
    Ok(())
}

/// Answers connections one after the other, for ever.
fn serve(listener: TcpListener) {
    let mut clients: Vec<TcpStream> = Vec::new();
    let mut written = Vec::new();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(request) = read_request(&mut stream) else {
            continue;
        };
        match (request.method.as_str(), request.path.as_str(), request.key) {
            ("GET", path, Some(key)) if path == "/ws" || path.starts_with("/ws?") => {
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                );
                if stream.write_all(answer.as_bytes()).is_ok()
                    && stream.set_nonblocking(true).is_ok()
                {
                    clients.push(stream);
                }
            }
            ("POST", "/broadcast", _) => {
                let frame = text_frame(&request.body);
                broadcast(&mut clients, &mut written, &frame);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
            _ => {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length_in_the_shortest_form() {
        assert_eq!(text_frame(b"hi"), [0x81, 2, b'h', b'i']);
        let medium = text_frame(&[b'x'; 300]);
        assert_eq!(&medium[..4], [0x81, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        let large = text_frame(&vec![b'x'; 70_000]);
        assert_eq!(&large[..2], [0x81, 127]);
        assert_eq!(u64::from_be_bytes(large[2..10].try_into().unwrap()), 70_000);
    }

    #[test]
    fn a_client_receives_the_broadcast_as_a_text_message() {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || serve(listener));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let url = format!("ws://127.0.0.1:{port}/ws");
                let mut sockets = Vec::new();
                for _ in 0..3 {
                    // The listener is bound already: the first attempt connects.
                    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                        .await
                        .expect("connects");
                    sockets.push(ws);
                }
                let answer = reqwest::Client::new()
                    .post(format!("http://127.0.0.1:{port}/broadcast"))
                    .body("{\"version\":1}")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.text().await.unwrap(), "ok");
                for ws in &mut sockets {
                    let message = ws.next().await.unwrap().unwrap();
                    assert_eq!(message, Message::Text("{\"version\":1}".into()));
                }
            });
    }
}
