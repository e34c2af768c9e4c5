//! Shared pieces of the benchmarks.
//!
//! # Layout
//!
//! - `catalog`: a generated catalog of any size, as a catalog file.
//! - `stats`: medians and percentiles.
//! - `bin/sync-sizes`: bytes of full and incremental syncs on a large catalog.
//! - `bin/loadgen`: WebSocket fan-out latency and memory per connection.
//! - `bin/median-rows`: median (range) of the rows of repeated runs.
//! - `bin/gen-catalog`: prints a generated catalog file.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod catalog;
pub mod stats;
