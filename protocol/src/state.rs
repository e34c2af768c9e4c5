//! The whole catalog as one value, and where it stands in history.

use serde::{Deserialize, Serialize};

use crate::model::{ModelSpecification, ProviderSyncInfo};

/// Everything a client holds. `providers` and `all_models` are sorted by id
/// (`apply` keeps them so), which makes lookups a binary search and lets two
/// copies of the same history compare equal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncState {
    pub providers: Vec<ProviderSyncInfo>,
    pub all_models: Vec<ModelSpecification>,
    /// The provider the application should use now.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub active_provider_id: Option<String>,
    /// The provider to use when nothing else is chosen.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub default_provider_id: Option<String>,
    pub metadata: SyncMetadata,
}

/// Where a state stands: which history (`epoch`), how far along it
/// (`version`), and a content checksum to verify a copy against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncMetadata {
    /// Grows by exactly one per committed change.
    pub version: u64,
    /// Names one history of versions; a client of another epoch must take a
    /// full state.
    pub epoch: String,
    /// RFC 3339 time this version of the state was made (its last change,
    /// or the server's start): one copy per version is served, compressed
    /// once. The server's time now is in `GET /version` and in heartbeats.
    pub server_time: String,
    /// `checksum::state_checksum` of the content, as 32 hex digits.
    pub checksum: String,
    pub provider_count: u32,
    pub model_count: u32,
}

impl SyncState {
    pub fn provider(&self, id: &str) -> Option<&ProviderSyncInfo> {
        self.provider_index(id).ok().map(|i| &self.providers[i])
    }

    pub fn model(&self, id: &str) -> Option<&ModelSpecification> {
        self.model_index(id).ok().map(|i| &self.all_models[i])
    }

    /// The models of one provider, in id order.
    pub fn models_of<'a>(
        &'a self,
        provider_id: &'a str,
    ) -> impl Iterator<Item = &'a ModelSpecification> + 'a {
        self.all_models
            .iter()
            .filter(move |m| m.provider_id == provider_id)
    }

    pub(crate) fn provider_index(&self, id: &str) -> Result<usize, usize> {
        self.providers.binary_search_by(|p| p.id.as_str().cmp(id))
    }

    pub(crate) fn model_index(&self, id: &str) -> Result<usize, usize> {
        self.all_models.binary_search_by(|m| m.id.as_str().cmp(id))
    }

    /// Sorts the lists and derives `model_ids`, counts and checksum: turns a
    /// state assembled by hand (from storage, a file) into a canonical one.
    pub fn normalize(&mut self) {
        self.providers.sort_by(|a, b| a.id.cmp(&b.id));
        self.all_models.sort_by(|a, b| a.id.cmp(&b.id));
        for provider in &mut self.providers {
            provider.model_ids.clear();
        }
        for i in 0..self.all_models.len() {
            if let Ok(p) = self.provider_index(&self.all_models[i].provider_id) {
                let id = self.all_models[i].id.clone();
                self.providers[p].model_ids.push(id);
            }
        }
        self.refresh_metadata();
    }

    /// Recomputes the derived parts of `metadata` (counts and checksum).
    pub fn refresh_metadata(&mut self) {
        self.metadata.provider_count = self.providers.len() as u32;
        self.metadata.model_count = self.all_models.len() as u32;
        self.metadata.checksum = crate::checksum::state_checksum(self).to_hex();
    }
}
