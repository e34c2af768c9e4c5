//! The provider-sync browser client: keeps a copy of the server's catalog in
//! step over a WebSocket (or by polling), starts from an IndexedDB cache, and
//! tells JavaScript listeners what changed.
//!
//! # Layout
//!
//! - `config`: `ProviderSyncConfig`, its defaults and checks.
//! - `machine`: the sync state machine, free of I/O (tested natively).
//! - `backoff`: reconnect delays with full jitter.
//! - `cache`: what is cached and when a cached copy may be used; IndexedDB.
//! - `error`: the SDK's errors.
//! - `json`: JSON text ↔ Rust values, with floats left to the browser.
//! - `wire`: reading the server's events and sync answers without buffering.
//! - `view`: what `getState()` returns.
//! - `idb` (wasm): the IndexedDB calls the cache needs.
//! - `service` (wasm): `ProviderSyncService`, the JavaScript class.
//! - `driver` (wasm): carries out the machine's commands in the browser.
//! - `auth` (wasm): headers, tokens and credentials for apps behind a login.
//! - `fields` (wasm): reading the config and filter objects a page passes.
//! - `transport` (wasm): fetch with timeouts, the WebSocket.
//! - `listeners` (wasm): callbacks, delivered after the state is released.
//! - `page` (wasm): visibility, online/offline, pagehide/pageshow events.
//! - `tabs` (wasm): one connection per browser, shared by its tabs.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

/// The wasm allocator: Talc instead of Rust's default dlmalloc, measured
/// about 3 KB (brotli) smaller and faster for the SDK's allocation pattern
/// (BENCHMARKS.md, "wasm size").
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub mod backoff;
pub mod cache;
pub mod config;
pub mod error;
/// JSON text ↔ the wire types: the crate `provider-sync-wire`.
pub use provider_sync_wire as json;
pub mod machine;
pub mod view;
pub mod wire;

// wasm-bindgen reads `js/host.js` (the snippet the glue imports) while
// compiling this crate; including it here makes cargo rebuild the crate
// when it changes. The constant itself is not used.
#[cfg(target_arch = "wasm32")]
const _HOST_JS: &str = include_str!("../js/host.js");
#[cfg(target_arch = "wasm32")]
mod auth;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod fields;
#[cfg(target_arch = "wasm32")]
mod idb;
#[cfg(target_arch = "wasm32")]
mod listeners;
#[cfg(target_arch = "wasm32")]
mod page;
#[cfg(target_arch = "wasm32")]
mod service;
#[cfg(target_arch = "wasm32")]
mod tabs;
#[cfg(target_arch = "wasm32")]
mod transport;

#[cfg(target_arch = "wasm32")]
pub use service::{
    ProviderSyncService, get_provider_sync_service, reset_provider_sync_service,
    shared_provider_sync_service, sunset_outlook,
};
