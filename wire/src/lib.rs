//! JSON text ↔ provider-sync's wire types, in the little code the wasm
//! client can afford.
//!
//! - Reading: [`Read`], derived from the types themselves
//!   (`#[derive(provider_sync_wire::Read)]`, which follows their
//!   `#[serde(...)]` attributes), read by one table-driven decoder
//!   ([`read`]). The same text reads to the same value as with serde's
//!   derived readers; the test suite and the fuzz checks hold the two side
//!   by side.
//! - Writing: [`Write`], derived the same way (`#[derive(Write)]`), written
//!   by one table-driven encoder ([`write()`]).
//! - [`from_str`] / [`to_string`]: a serde reader and writer of exactly the
//!   JSON the protocol uses, for types that only derive serde's traits (and
//!   the tests, which hold the derived tables to serde's derives).
//!
//! Numbers with a fraction are read and written by the browser
//! (`parseFloat`, `JSON.stringify`) in the wasm, so no float parsing or
//! formatting is compiled into it.

mod json;
mod read;
mod write;

pub use json::{
    Error, Raw, Reader, Result, Writer, concat, from_str, from_str_seed, push_decimal, push_hex,
    to_string,
};
pub use provider_sync_wire_derive::{Read, Write};
pub use read::{Read, read, read_with};
pub use write::{Write, write};

/// What `#[derive(Read)]` expands to uses; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::json::{Reader, Result};
    pub use crate::read::{
        Field, Read, default_at, drop_at, missing_at, read_fields, read_struct, read_variant,
    };
    pub use crate::write::{Member, write_at, write_struct};
}
