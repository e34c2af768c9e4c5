//! What `getState()` returns: the copy and where it stands, in the shape
//! JavaScript code reads (camelCase), built once per change.

use provider_sync_protocol::{ModelFilter, ModelSpecification, ProviderSyncInfo};
use serde::{Deserialize, Serialize};
use tsify::Tsify;

use crate::machine::{Core, SyncStatus, Transport};

/// The service's state as `getState()` and `subscribe` listeners see it.
/// The object keeps its identity until something in it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct ProviderSyncClientState {
    pub status: SyncStatus,
    pub is_connected: bool,
    pub transport: Transport,
    /// The version held; 0 before the first data.
    pub version: u64,
    pub epoch: Option<String>,
    pub checksum: Option<String>,
    /// `Date.now()` of the last successful sync.
    pub last_sync_time: Option<f64>,
    pub error: Option<String>,
    pub providers: Vec<ProviderSyncInfo>,
    /// Deprecated and sunset models only with `includeDeprecated`.
    pub models: Vec<ModelSpecification>,
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
    /// The data came from the IndexedDB cache and is not yet confirmed.
    pub from_cache: bool,
}

/// The filter a page's `getModels()` call means, with the configured
/// `includeDeprecated` applied when the filter does not say.
pub fn effective_filter(filter: Option<ModelFilter>, include_deprecated: bool) -> ModelFilter {
    let mut filter = filter.unwrap_or_default();
    if filter.deprecated.is_none() && !include_deprecated {
        filter.deprecated = Some(false);
    }
    filter
}

impl ProviderSyncClientState {
    /// Everything but the two lists, which the browser layer fills with JS
    /// objects it reuses across snapshots.
    pub fn scalars(core: &Core) -> Self {
        let state = core.state();
        Self {
            status: core.status(),
            is_connected: core.is_connected(),
            transport: core.transport(),
            version: state.map_or(0, |s| s.metadata.version),
            epoch: state.map(|s| s.metadata.epoch.clone()),
            checksum: state.map(|s| s.metadata.checksum.clone()),
            last_sync_time: core.last_sync_time(),
            error: core.error().map(str::to_owned),
            providers: Vec::new(),
            models: Vec::new(),
            active_provider_id: state.and_then(|s| s.active_provider_id.clone()),
            default_provider_id: state.and_then(|s| s.default_provider_id.clone()),
            from_cache: core.from_cache(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_deprecated_applies_only_when_the_filter_does_not_say() {
        assert_eq!(effective_filter(None, false).deprecated, Some(false));
        assert_eq!(effective_filter(None, true).deprecated, None);
        let asked = ModelFilter {
            deprecated: Some(true),
            ..ModelFilter::default()
        };
        assert_eq!(effective_filter(Some(asked), false).deprecated, Some(true));
    }

    #[test]
    fn scalars_before_any_data() {
        let core = Core::new(
            crate::config::ProviderSyncConfig::default()
                .settings()
                .unwrap(),
        );
        let view = ProviderSyncClientState::scalars(&core);
        assert_eq!(
            (view.version, view.epoch, view.is_connected),
            (0, None, false)
        );
        assert!(view.providers.is_empty() && view.models.is_empty());
    }
}
