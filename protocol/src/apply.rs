//! Applying events to a state: the one function client and server both use,
//! so that the same history gives the same state everywhere.

use crate::checksum::{self, Checksum};
use crate::event::{EventPayload, SyncEvent};
use crate::model::{ModelSpecification, ProviderSyncInfo};
use crate::state::SyncState;

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A change event moved the state to its version.
    Changed,
    /// A full sync replaced the state.
    Replaced,
    /// The state already had this version (a replay overlap): nothing done.
    AlreadyApplied,
    /// A control event (hello, heartbeat, resync, error): nothing to apply.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Events were missed: the state is at `expected - 1`. Repair with
    /// `POST /sync`.
    #[error("version gap: expected event {expected}, received {received}")]
    Gap { expected: u64, received: u64 },
}

/// Applies one event. Change events must come in version order; one the state
/// already has is skipped, one that skips a version is refused and changes
/// nothing. Keeps lists sorted, `model_ids`, counts and checksum up to date.
pub fn apply_event(state: &mut SyncState, event: &SyncEvent) -> Result<Applied, ApplyError> {
    if let EventPayload::FullSync(full) = &event.payload {
        *state = full.clone();
        return Ok(Applied::Replaced);
    }
    if !event.payload.is_change() {
        return Ok(Applied::Ignored);
    }
    let current = state.metadata.version;
    if event.version <= current {
        return Ok(Applied::AlreadyApplied);
    }
    if event.version != current + 1 {
        return Err(ApplyError::Gap {
            expected: current + 1,
            received: event.version,
        });
    }

    let mut sum = Checksum::from_hex(&state.metadata.checksum)
        .unwrap_or_else(|| checksum::state_checksum(state));
    let mut edit = Edit {
        state: &mut *state,
        sum: &mut sum,
    };
    match &event.payload {
        EventPayload::ProviderAdded(p) | EventPayload::ProviderUpdated(p) => {
            edit.upsert_provider(p)
        }
        EventPayload::ProviderRemoved(removed) => edit.remove_provider(&removed.provider_id),
        EventPayload::ProviderStatusChanged(change) => {
            edit.with_provider(&change.provider_id, |p| {
                p.status = change.status.clone();
                p.health = change.health.clone();
                p.revision = change.revision;
            })
        }
        EventPayload::ModelAdded(m)
        | EventPayload::ModelUpdated(m)
        | EventPayload::ModelDeprecated(m) => edit.upsert_model(m),
        EventPayload::ModelRemoved(removed) => edit.remove_model(&removed.model_id),
        EventPayload::ActiveProviderChanged(change) => {
            edit.set_pointers(
                change.active_provider_id.clone(),
                change.default_provider_id.clone(),
            );
        }
        EventPayload::FullSync(_)
        | EventPayload::Hello(_)
        | EventPayload::Heartbeat(_)
        | EventPayload::ResyncRequired(_)
        | EventPayload::Error(_) => unreachable!("not a change event"),
    }
    state.metadata.version = event.version;
    state.metadata.provider_count = state.providers.len() as u32;
    state.metadata.model_count = state.all_models.len() as u32;
    state.metadata.checksum = sum.to_hex();
    Ok(Applied::Changed)
}

/// Applies events in order; stops at the first gap, leaving the state at the
/// last version it reached. Returns how many events changed the state.
pub fn apply_events<'a>(
    state: &mut SyncState,
    events: impl IntoIterator<Item = &'a SyncEvent>,
) -> Result<usize, ApplyError> {
    let mut changed = 0;
    for event in events {
        if matches!(
            apply_event(state, event)?,
            Applied::Changed | Applied::Replaced
        ) {
            changed += 1;
        }
    }
    Ok(changed)
}

/// A state being changed together with its running checksum.
struct Edit<'a> {
    state: &'a mut SyncState,
    sum: &'a mut Checksum,
}

impl Edit<'_> {
    fn upsert_provider(&mut self, incoming: &ProviderSyncInfo) {
        let mut provider = incoming.clone();
        match self.state.provider_index(&provider.id) {
            Ok(i) => {
                let old = &mut self.state.providers[i];
                self.sum.sub(checksum::provider_digest(old));
                provider.model_ids = std::mem::take(&mut old.model_ids);
                self.sum.add(checksum::provider_digest(&provider));
                *old = provider;
            }
            Err(i) => {
                provider.model_ids = self
                    .state
                    .models_of(&provider.id)
                    .map(|m| m.id.clone())
                    .collect();
                self.sum.add(checksum::provider_digest(&provider));
                self.state.providers.insert(i, provider);
            }
        }
    }

    fn with_provider(&mut self, id: &str, change: impl FnOnce(&mut ProviderSyncInfo)) {
        if let Ok(i) = self.state.provider_index(id) {
            let provider = &mut self.state.providers[i];
            self.sum.sub(checksum::provider_digest(provider));
            change(provider);
            self.sum.add(checksum::provider_digest(provider));
        }
    }

    fn remove_provider(&mut self, id: &str) {
        if let Ok(i) = self.state.provider_index(id) {
            let provider = self.state.providers.remove(i);
            self.sum.sub(checksum::provider_digest(&provider));
        }
        let sum = &mut *self.sum;
        self.state.all_models.retain(|m| {
            let keep = m.provider_id != id;
            if !keep {
                sum.sub(checksum::model_digest(m));
            }
            keep
        });
    }

    fn upsert_model(&mut self, incoming: &ModelSpecification) {
        let model = incoming.clone();
        match self.state.model_index(&model.id) {
            Ok(i) => {
                let old_provider = {
                    let old = &self.state.all_models[i];
                    self.sum.sub(checksum::model_digest(old));
                    old.provider_id.clone()
                };
                if old_provider != model.provider_id {
                    self.unlist_model(&old_provider, &model.id);
                    self.list_model(&model.provider_id, &model.id);
                }
                self.sum.add(checksum::model_digest(&model));
                self.state.all_models[i] = model;
            }
            Err(i) => {
                self.list_model(&model.provider_id, &model.id);
                self.sum.add(checksum::model_digest(&model));
                self.state.all_models.insert(i, model);
            }
        }
    }

    fn remove_model(&mut self, id: &str) {
        if let Ok(i) = self.state.model_index(id) {
            let model = self.state.all_models.remove(i);
            self.sum.sub(checksum::model_digest(&model));
            self.unlist_model(&model.provider_id, &model.id);
        }
    }

    fn set_pointers(&mut self, active: Option<String>, default: Option<String>) {
        let state = &mut *self.state;
        self.sum.sub(checksum::pointers_digest(
            state.active_provider_id.as_deref(),
            state.default_provider_id.as_deref(),
        ));
        state.active_provider_id = active;
        state.default_provider_id = default;
        self.sum.add(checksum::pointers_digest(
            state.active_provider_id.as_deref(),
            state.default_provider_id.as_deref(),
        ));
    }

    /// `model_ids` is not hashed, so these leave the checksum alone.
    fn list_model(&mut self, provider_id: &str, model_id: &str) {
        if let Ok(p) = self.state.provider_index(provider_id) {
            let ids = &mut self.state.providers[p].model_ids;
            if let Err(at) = ids.binary_search_by(|id| id.as_str().cmp(model_id)) {
                ids.insert(at, model_id.to_owned());
            }
        }
    }

    fn unlist_model(&mut self, provider_id: &str, model_id: &str) {
        if let Ok(p) = self.state.provider_index(provider_id) {
            let ids = &mut self.state.providers[p].model_ids;
            if let Ok(at) = ids.binary_search_by(|id| id.as_str().cmp(model_id)) {
                ids.remove(at);
            }
        }
    }
}
