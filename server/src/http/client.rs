//! Where a request comes from, for the audit and the logs.
//!
//! One function, so that a rule for trusted proxies (reading
//! `X-Forwarded-For` when the peer is one of them) can replace it in one
//! place.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

/// The client's address: the connection's peer (its IP address), or
/// `unknown` where the server does not know it (a router mounted in an
/// application that serves without `ConnectInfo`).
pub fn address<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.0.ip().to_string())
}
