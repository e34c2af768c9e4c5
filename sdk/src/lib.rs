//! The provider-sync browser client. This is the skeleton the SDK issue
//! builds on: for now it re-exports the protocol it will speak.
//!
//! # Layout
//!
//! - `protocol`: the shared wire types and sync logic.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub use provider_sync_protocol as protocol;
