//! What each fuzz target checks, defined once. cargo-fuzz's targets
//! (`fuzz/fuzz_targets/`) call `<target>::check` on generated input; the
//! replay test (`tests/replay.rs`) calls the same function on every file of
//! the kept corpus (`fuzz/corpus/<target>/`), so a finding fixed once stays
//! fixed in the ordinary test run. A check panics when it fails.
//!
//! # Layout
//!
//! - `ws_client_frame`: a WebSocket client's text frame, read as a session reads it.
//! - `sync_request`: a `POST /sync` body, read as the handler reads it, and the plan for it.
//! - `catalog_toml`: the catalog loader on TOML text, then reconciled into a store's state.
//! - `sdk_json`: the SDK's JSON reader against serde_json's answer on the same text.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod catalog_toml;
pub mod sdk_json;
pub mod sync_request;
pub mod ws_client_frame;

/// A target's check: returns if the input passes, panics if not.
pub type Check = fn(&[u8]);

/// The targets, by the name of their binary and corpus directory.
pub const TARGETS: &[(&str, Check)] = &[
    ("ws_client_frame", ws_client_frame::check),
    ("sync_request", sync_request::check),
    ("catalog_toml", catalog_toml::check),
    ("sdk_json", sdk_json::check),
];
