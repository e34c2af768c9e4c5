//! A content checksum of a state that does not depend on list order.
//!
//! Each entity is hashed (xxh3-128) over a canonical encoding of its fields,
//! and the state's checksum is the wrapping sum of those hashes plus one for
//! the active/default provider pair. A sum can be kept up to date as events
//! are applied (subtract the old entity, add the new), so `apply` never
//! rehashes the whole catalog. `ProviderSyncInfo::model_ids` is left out: it
//! is derived from the models, which are hashed themselves.
//!
//! The encoding is part of protocol version 1: clients and servers of the
//! same protocol version must compute the same value.

use xxhash_rust::xxh3::xxh3_128;

use crate::model::{ModelSpecification, ProviderHealth, ProviderSyncInfo};
use crate::state::SyncState;

/// A state checksum; shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Checksum(pub u128);

impl Checksum {
    pub fn to_hex(self) -> String {
        // Digit by digit rather than by `format!`: the wasm client then
        // needs no `core::fmt` (and its `u128` formatting) for it.
        // A loop of pushes into a string of its size, not an iterator
        // collected (its `FromIterator` grows the wasm more).
        let mut hex = String::with_capacity(32);
        for at in (0..32).rev() {
            hex.push(char::from(
                b"0123456789abcdef"[(self.0 >> (at * 4)) as usize & 0xF],
            ));
        }
        hex
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(hex, 16).ok().map(Self)
    }

    pub(crate) fn add(&mut self, part: u128) {
        self.0 = self.0.wrapping_add(part);
    }

    pub(crate) fn sub(&mut self, part: u128) {
        self.0 = self.0.wrapping_sub(part);
    }
}

/// The checksum of a state's content, computed from scratch.
pub fn state_checksum(state: &SyncState) -> Checksum {
    let mut sum = Checksum(pointers_digest(
        state.active_provider_id.as_deref(),
        state.default_provider_id.as_deref(),
    ));
    for provider in &state.providers {
        sum.add(provider_digest(provider));
    }
    for model in &state.all_models {
        sum.add(model_digest(model));
    }
    sum
}

/// Feeds fields into the hasher so that no two different field sequences
/// produce the same bytes (strings and options are length- or tag-prefixed).
/// The bytes are gathered, then hashed at once: the same xxh3-128 value as
/// streaming them, with the one-shot code only (streaming's weighs about
/// 3 KB more in the wasm client).
struct Canon(Bytes);

struct Bytes(Vec<u8>);

impl Bytes {
    fn update(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

impl Canon {
    fn new(domain: u8) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.push(domain);
        Self(Bytes(bytes))
    }

    fn str(&mut self, value: &str) -> &mut Self {
        self.0.update(&(value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => self.0.update(&[0]),
            Some(v) => {
                self.0.update(&[1]);
                self.str(v);
            }
        }
        self
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.update(&value.to_le_bytes());
        self
    }

    fn i64(&mut self, value: i64) -> &mut Self {
        self.0.update(&value.to_le_bytes());
        self
    }

    fn f64(&mut self, value: f64) -> &mut Self {
        // -0.0 and 0.0 are the same price.
        let value = if value == 0.0 { 0.0 } else { value };
        self.0.update(&value.to_bits().to_le_bytes());
        self
    }

    fn bool(&mut self, value: bool) -> &mut Self {
        self.0.update(&[value as u8]);
        self
    }

    fn opt_u64(&mut self, value: Option<u64>) -> &mut Self {
        match value {
            None => self.0.update(&[0]),
            Some(v) => {
                self.0.update(&[1]);
                self.u64(v);
            }
        }
        self
    }

    fn finish(&self) -> u128 {
        xxh3_128(&self.0.0)
    }
}

const DOMAIN_POINTERS: u8 = 1;
const DOMAIN_PROVIDER: u8 = 2;
const DOMAIN_MODEL: u8 = 3;

pub(crate) fn pointers_digest(active: Option<&str>, default: Option<&str>) -> u128 {
    Canon::new(DOMAIN_POINTERS)
        .opt_str(active)
        .opt_str(default)
        .finish()
}

/// A provider's share of the checksum: a digest of its content.
pub fn provider_digest(p: &ProviderSyncInfo) -> u128 {
    let mut c = Canon::new(DOMAIN_PROVIDER);
    c.str(&p.id)
        .str(&p.name)
        .str(&p.display_name)
        .str(&p.provider_type)
        .opt_str(p.base_url.as_deref())
        .opt_str(p.health_url.as_deref())
        .bool(p.enabled)
        .i64(p.priority.into())
        .str(p.status.as_str())
        .opt_str(p.fallback_provider_id.as_deref())
        .u64(p.capabilities.len() as u64);
    for capability in &p.capabilities {
        c.str(capability);
    }
    health(&mut c, &p.health);
    c.u64(p.revision).finish()
}

fn health(c: &mut Canon, h: &ProviderHealth) {
    c.opt_str(h.last_check.as_deref())
        .opt_u64(h.latency_ms.map(u64::from))
        .f64(h.error_rate)
        .u64(h.consecutive_failures.into())
        .opt_str(h.message.as_deref());
}

/// A model's share of the checksum: a digest of its content (less the fields
/// added after the first release; their changes move the revision).
pub fn model_digest(m: &ModelSpecification) -> u128 {
    let mut c = Canon::new(DOMAIN_MODEL);
    c.str(&m.id)
        .str(&m.name)
        .str(&m.provider_id)
        .u64(m.context_window.into())
        .u64(m.max_input_tokens.into())
        .u64(m.max_output_tokens.into())
        .bool(m.supports_streaming)
        .bool(m.supports_vision)
        .bool(m.supports_function_calling)
        .bool(m.supports_json_mode);
    match &m.pricing {
        None => c.bool(false),
        Some(p) => c
            .bool(true)
            .f64(p.input_per_million)
            .f64(p.output_per_million),
    };
    c.str(m.deprecation_status.as_str())
        .opt_str(m.deprecation_date.as_deref())
        .opt_str(m.sunset_date.as_deref())
        .opt_str(m.replacement_model_id.as_deref())
        .u64(m.revision)
        .finish()
    // `supports_reasoning` and `pricing.cached_input_per_million` came after
    // the first release and are left out, so that its clients, which drop
    // them, still compute the server's checksum. Any change to them changes
    // the model's `revision`, which is in, so a missed or extra update is
    // still caught.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeprecationStatus, ModelPricing, ProviderStatus};

    #[test]
    fn hex_reads_back_what_it_wrote_and_nothing_else() {
        for sum in [
            Checksum(0),
            Checksum(1),
            Checksum(u128::MAX),
            Checksum(0xabc << 64),
        ] {
            assert_eq!(Checksum::from_hex(&sum.to_hex()), Some(sum));
        }
        let hex = Checksum(0xabc).to_hex();
        for bad in [&hex[1..], &format!("{hex}0"), &hex.replace('a', "g"), ""] {
            assert_eq!(Checksum::from_hex(bad), None, "{bad}");
        }
    }

    /// The checksum is part of protocol version 1: released clients compute
    /// it, so its value for a given state may never change. Pinned here from
    /// the first release's implementation.
    #[test]
    fn the_checksum_of_a_known_state_never_changes() {
        let mut state = SyncState {
            active_provider_id: Some("openai".into()),
            ..SyncState::default()
        };
        state.providers.push(ProviderSyncInfo {
            id: "openai".into(),
            name: "OpenAI".into(),
            display_name: "OpenAI — GPT".into(),
            provider_type: "openai".into(),
            base_url: Some("https://api.openai.com/v1".into()),
            health_url: None,
            enabled: true,
            priority: -3,
            status: ProviderStatus::Degraded,
            health: ProviderHealth {
                last_check: Some("2026-01-01T00:00:00Z".into()),
                latency_ms: Some(120),
                error_rate: 0.25,
                consecutive_failures: 2,
                message: None,
            },
            fallback_provider_id: None,
            capabilities: vec!["chat".into(), "x".repeat(300)],
            model_ids: vec!["gpt-4o".into()],
            revision: 7,
        });
        state.all_models.push(ModelSpecification {
            id: "gpt-4o".into(),
            name: "GPT-4o".into(),
            provider_id: "openai".into(),
            context_window: 128_000,
            max_input_tokens: 128_000,
            max_output_tokens: 16_384,
            supports_streaming: true,
            supports_vision: true,
            supports_function_calling: true,
            supports_json_mode: false,
            supports_reasoning: false,
            pricing: Some(ModelPricing {
                input_per_million: 2.5,
                output_per_million: 10.0,
                cached_input_per_million: None,
            }),
            deprecation_status: DeprecationStatus::Deprecated,
            deprecation_date: Some("2026-06-01".into()),
            sunset_date: None,
            replacement_model_id: None,
            revision: 3,
        });
        assert_eq!(
            state_checksum(&state).to_hex(),
            "40824c7e0eb31e8504f46ba79a0f60cf"
        );
        assert_eq!(
            format!("{:032x}", provider_digest(&state.providers[0])),
            "3da41eaca1fba8cb6b11ce8c2dfe432f"
        );
    }
}
