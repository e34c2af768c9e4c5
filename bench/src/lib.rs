//! Shared pieces of the benchmarks.
//!
//! # Layout
//!
//! - `catalog`: a generated catalog of any size, as a catalog file.
//! - `compressed`: bytes at the best gzip and brotli levels.
//! - `stats`: medians and percentiles.
//! - `bin/sync-sizes`: bytes of full and incremental syncs on a large catalog.
//! - `bin/loadgen`: WebSocket fan-out latency and memory per connection.
//! - `bin/median-rows`: median (range) of the rows of repeated runs.
//! - `bin/gen-catalog`: prints a generated catalog file.
//! - `bin/litellm-catalog`: LiteLLM's catalog as the server's workload.
//! - `bin/cluster`: several instances on one PostgreSQL.

#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod catalog;
pub mod compressed;
pub mod stats;
