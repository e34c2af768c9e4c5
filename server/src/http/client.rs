//! Where a request comes from, for the audit and the logs: the address
//! worked out once per request through `--trusted-proxies`
//! ([`crate::limits::ClientAddr`]), else the connection's peer.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

/// The client's address: `X-Forwarded-For`'s client behind a trusted proxy,
/// else the connection's peer, or `unknown` where the server does not know
/// it (a router mounted in an application that serves without
/// `ConnectInfo`).
pub fn address<B>(request: &axum::http::Request<B>) -> String {
    if let Some(crate::limits::ClientAddr(ip)) = request.extensions().get() {
        return ip.to_string();
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.0.ip().to_string())
}
