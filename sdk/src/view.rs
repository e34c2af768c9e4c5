//! What `getState()` returns: the copy and where it stands, in the shape
//! JavaScript code reads (camelCase), built once per change.

use provider_sync_protocol::{
    DeprecationStatus, EventPayload, ModelFilter, ModelSpecification, ProviderStatus,
    ProviderSyncInfo, SunsetUrgency, SyncEvent, sunset_outlook,
};
use serde::{Deserialize, Serialize};
use tsify::Tsify;

use crate::machine::{Core, SyncStatus, Transport};

/// The service's state as `getState()` and `subscribe` listeners see it.
/// The object keeps its identity until something in it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Tsify, provider_sync_wire::Write)]
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
    /// `Date.now()` of the last successful sync; for a copy from the cache
    /// not yet confirmed by the server, when it was saved or last confirmed.
    pub last_sync_time: Option<f64>,
    /// Why there is nothing to show (status `error`); null otherwise.
    pub error: Option<String>,
    /// Why the last attempt to reach the server failed, until one succeeds:
    /// also set while a copy is shown (status `stale`).
    pub last_error: Option<String>,
    pub providers: Vec<ProviderSyncInfo>,
    /// Deprecated and sunset models only with `includeDeprecated`.
    pub models: Vec<ModelSpecification>,
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
    /// The data came from the IndexedDB cache and is not yet confirmed.
    pub from_cache: bool,
}

/// How soon a model stops working, as `sunsetOutlook()` tells JavaScript:
/// the server's rule (critical within 7 days, high within 30, medium within
/// 90, `sunset` once passed), so no page restates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Tsify, provider_sync_wire::Write)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct SunsetOutlook {
    pub urgency: SunsetUrgency,
    /// Negative once the sunset date has passed; null without a date.
    pub days_until_sunset: Option<i64>,
}

impl SunsetOutlook {
    /// For a model in `status` with `sunset_date`, on the UTC day of `now_ms`
    /// (ms since the Unix epoch).
    pub fn of(status: &str, sunset_date: Option<&str>, now_ms: f64) -> Self {
        let today = (now_ms / 86_400_000.0).floor() as i64;
        let (urgency, days_until_sunset) =
            sunset_outlook(&DeprecationStatus::from(status), sunset_date, today);
        Self {
            urgency,
            days_until_sunset,
        }
    }
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

/// The properties of an entity (or of an event's data) that JavaScript sees
/// differently from the copy: a status this release does not know, shown as
/// its documented fallback (`unknown` for a provider, `deprecated` for a
/// model). Empty for known values, which is almost always.
pub fn fallbacks(event: &EventPayload) -> Vec<(&'static str, &'static str)> {
    use EventPayload as P;
    let mut shown = Vec::new();
    let mut provider = |field, status: &ProviderStatus| {
        if !status.is_known() {
            shown.push((field, "unknown"));
        }
    };
    match event {
        P::ProviderAdded(p) | P::ProviderUpdated(p) => provider("status", &p.status),
        P::ProviderStatusChanged(c) => {
            provider("status", &c.status);
            provider("previous_status", &c.previous_status);
        }
        P::ModelAdded(m) | P::ModelUpdated(m) | P::ModelDeprecated(m) => {
            shown.extend(model_fallback(m));
        }
        _ => {}
    }
    shown
}

/// A provider's property shown through its fallback, if any.
pub fn provider_fallback(p: &ProviderSyncInfo) -> Option<(&'static str, &'static str)> {
    (!p.status.is_known()).then_some(("status", "unknown"))
}

/// A model's property shown through its fallback, if any.
pub fn model_fallback(m: &ModelSpecification) -> Option<(&'static str, &'static str)> {
    (!m.deprecation_status.is_known()).then_some(("deprecation_status", "deprecated"))
}

/// The provider and the model a change event touched, for the lists of
/// `getState()` (providers first): `Some(None)` when it touched none of that
/// list, `None` when it may have touched any of it (a provider's removal
/// takes its models; a model's change may move it from one provider's
/// `model_ids` to another's).
#[allow(clippy::type_complexity)]
pub fn touched(event: &EventPayload) -> (Option<Option<&str>>, Option<Option<&str>>) {
    use EventPayload as P;
    match event {
        P::ProviderAdded(p) | P::ProviderUpdated(p) => (Some(Some(&p.id)), Some(None)),
        P::ProviderStatusChanged(c) => (Some(Some(&c.provider_id)), Some(None)),
        P::ProviderRemoved(r) => (Some(Some(&r.provider_id)), None),
        P::ModelAdded(m) | P::ModelUpdated(m) | P::ModelDeprecated(m) => (None, Some(Some(&m.id))),
        P::ModelRemoved(r) => (None, Some(Some(&r.model_id))),
        P::ActiveProviderChanged(_) => (Some(None), Some(None)),
        P::FullSync(_) | P::Hello(_) | P::Heartbeat(_) | P::ResyncRequired(_) | P::Error(_) => {
            (None, None)
        }
    }
}

/// The providers and models an event removes: their objects must not come
/// back if they are created again (starting over at revision 1). Any other
/// change moves the entity's revision, which a kept object is checked
/// against.
pub fn removed(event: &SyncEvent) -> (Option<&str>, &[String], Option<&str>) {
    match &event.payload {
        EventPayload::ProviderRemoved(r) => (Some(&r.provider_id), &r.model_ids, None),
        EventPayload::ModelRemoved(r) => (None, &[], Some(&r.model_id)),
        _ => (None, &[], None),
    }
}

impl ProviderSyncClientState {
    /// What `getState()` shows before any data: also the React layer's state
    /// before a service exists (generated from this at build time).
    pub fn initial() -> Self {
        // Written out rather than read from a new `Core`: building one (its
        // settings, their strings) would cost the wasm more than this. A
        // test checks they agree.
        Self {
            status: SyncStatus::Syncing,
            is_connected: false,
            transport: Transport::Offline,
            version: 0,
            epoch: None,
            checksum: None,
            last_sync_time: None,
            error: None,
            last_error: None,
            providers: Vec::new(),
            models: Vec::new(),
            active_provider_id: None,
            default_provider_id: None,
            from_cache: false,
        }
    }

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
            last_error: core.last_error().map(str::to_owned),
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
    use provider_sync_protocol::{ModelRemoved, ProviderRemoved, ProviderStatusChanged};

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
    fn the_sunset_outlook_is_the_servers_rule() {
        // 2026-11-25T12:00:00Z
        let now = 1_795_608_000_000.0;
        let at = |date: &str| SunsetOutlook::of("deprecated", Some(date), now);
        assert_eq!(at("2026-11-25").days_until_sunset, Some(0));
        assert_eq!(at("2026-11-25").urgency, SunsetUrgency::Critical);
        assert_eq!(at("2026-12-25").urgency, SunsetUrgency::High);
        assert_eq!(at("2027-01-25").urgency, SunsetUrgency::Medium);
        assert_eq!(at("2027-11-25").urgency, SunsetUrgency::Low);
        assert_eq!(at("2026-11-24").urgency, SunsetUrgency::Sunset);
        assert_eq!(at("2026-11-24").days_until_sunset, Some(-1));
        assert_eq!(
            SunsetOutlook::of("active", None, now).urgency,
            SunsetUrgency::None
        );
        assert_eq!(
            SunsetOutlook::of("sunset", None, now).urgency,
            SunsetUrgency::Sunset
        );
        // A status this release does not know counts as deprecated.
        assert_eq!(
            SunsetOutlook::of("retiring", None, now).urgency,
            SunsetUrgency::Low
        );
    }

    #[test]
    fn the_initial_state_is_a_new_services() {
        let core = Core::new(
            crate::config::ProviderSyncConfig::default()
                .settings()
                .unwrap(),
        );
        assert_eq!(
            ProviderSyncClientState::initial(),
            ProviderSyncClientState::scalars(&core)
        );
    }

    fn provider(status: &str) -> ProviderSyncInfo {
        ProviderSyncInfo {
            id: "p".into(),
            name: "p".into(),
            display_name: "P".into(),
            provider_type: "openai".into(),
            base_url: None,
            health_url: None,
            enabled: true,
            priority: 0,
            status: ProviderStatus::from(status),
            health: Default::default(),
            fallback_provider_id: None,
            capabilities: vec![],
            model_ids: vec![],
            revision: 1,
        }
    }

    fn model(status: &str) -> ModelSpecification {
        ModelSpecification {
            id: "m".into(),
            name: "M".into(),
            provider_id: "p".into(),
            context_window: 1,
            max_input_tokens: 1,
            max_output_tokens: 1,
            supports_streaming: false,
            supports_vision: false,
            supports_function_calling: false,
            supports_json_mode: false,
            supports_reasoning: false,
            pricing: None,
            deprecation_status: DeprecationStatus::from(status),
            deprecation_date: None,
            sunset_date: None,
            replacement_model_id: None,
            revision: 1,
        }
    }

    #[test]
    fn statuses_this_release_does_not_know_are_shown_through_their_fallbacks() {
        use EventPayload as P;
        assert_eq!(provider_fallback(&provider("available")), None);
        assert_eq!(
            provider_fallback(&provider("overloaded")),
            Some(("status", "unknown"))
        );
        assert_eq!(model_fallback(&model("sunset")), None);
        assert_eq!(
            model_fallback(&model("retiring")),
            Some(("deprecation_status", "deprecated"))
        );

        for event in [
            P::ProviderAdded(provider("overloaded")),
            P::ProviderUpdated(provider("overloaded")),
        ] {
            assert_eq!(fallbacks(&event), [("status", "unknown")], "{event:?}");
        }
        assert!(fallbacks(&P::ProviderUpdated(provider("degraded"))).is_empty());
        let change = |previous: &str, status: &str| {
            P::ProviderStatusChanged(ProviderStatusChanged {
                provider_id: "p".into(),
                previous_status: ProviderStatus::from(previous),
                status: ProviderStatus::from(status),
                health: Default::default(),
                revision: 2,
                automatic: false,
            })
        };
        assert_eq!(
            fallbacks(&change("overloaded", "warming")),
            [("status", "unknown"), ("previous_status", "unknown")]
        );
        assert_eq!(
            fallbacks(&change("available", "warming")),
            [("status", "unknown")]
        );
        assert!(fallbacks(&change("available", "degraded")).is_empty());
        for event in [
            P::ModelAdded(model("retiring")),
            P::ModelUpdated(model("retiring")),
            P::ModelDeprecated(model("retiring")),
        ] {
            assert_eq!(
                fallbacks(&event),
                [("deprecation_status", "deprecated")],
                "{event:?}"
            );
        }
        assert!(fallbacks(&P::ModelDeprecated(model("deprecated"))).is_empty());
    }

    #[test]
    fn removals_name_what_they_remove() {
        let event = |payload| SyncEvent {
            id: "e:1".into(),
            version: 1,
            timestamp: "t".into(),
            payload,
        };
        let gone = event(EventPayload::ProviderRemoved(ProviderRemoved {
            provider_id: "p".into(),
            model_ids: vec!["m1".into(), "m2".into()],
        }));
        assert_eq!(
            removed(&gone),
            (Some("p"), &["m1".to_owned(), "m2".to_owned()][..], None)
        );
        let gone = event(EventPayload::ModelRemoved(ModelRemoved {
            model_id: "m1".into(),
            provider_id: "p".into(),
        }));
        assert_eq!(removed(&gone), (None, &[][..], Some("m1")));
        let kept = event(EventPayload::ModelUpdated(model("active")));
        assert_eq!(removed(&kept), (None, &[][..], None));
    }

    #[test]
    fn changes_name_the_entries_of_the_lists_they_touch() {
        use EventPayload as P;
        use provider_sync_protocol::ActiveProviderChanged;
        let provider = provider("available");
        assert_eq!(
            touched(&P::ProviderUpdated(provider.clone())),
            (Some(Some("p")), Some(None))
        );
        assert_eq!(
            touched(&P::ProviderAdded(provider)),
            (Some(Some("p")), Some(None))
        );
        let status = P::ProviderStatusChanged(ProviderStatusChanged {
            provider_id: "p".into(),
            previous_status: ProviderStatus::Available,
            status: ProviderStatus::Degraded,
            health: Default::default(),
            revision: 2,
            automatic: false,
        });
        assert_eq!(touched(&status), (Some(Some("p")), Some(None)));
        // A provider's removal takes its models: the models' list is walked.
        let gone = P::ProviderRemoved(ProviderRemoved {
            provider_id: "p".into(),
            model_ids: vec!["m".into()],
        });
        assert_eq!(touched(&gone), (Some(Some("p")), None));
        // A model's change may move it between providers' `model_ids`.
        for event in [
            P::ModelAdded(model("active")),
            P::ModelUpdated(model("active")),
            P::ModelDeprecated(model("deprecated")),
        ] {
            assert_eq!(touched(&event), (None, Some(Some("m"))), "{event:?}");
        }
        let gone = P::ModelRemoved(ModelRemoved {
            model_id: "m".into(),
            provider_id: "p".into(),
        });
        assert_eq!(touched(&gone), (None, Some(Some("m"))));
        let pointers = P::ActiveProviderChanged(ActiveProviderChanged {
            active_provider_id: Some("p".into()),
            default_provider_id: None,
        });
        assert_eq!(touched(&pointers), (Some(None), Some(None)));
        assert_eq!(
            touched(&P::FullSync(provider_sync_protocol::SyncState::default())),
            (None, None)
        );
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
