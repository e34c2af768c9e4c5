//! Revisions, and what an admin write's `If-Match` is checked against.
//!
//! - An entity's `revision` is the version of the last event that changed it
//!   ([`stamp`], called for every event a write emits). Versions only grow
//!   within an epoch, so a revision never repeats: an id deleted and created
//!   again starts above every revision it had. Every change moves it, the
//!   health probes' too: clients keep one object per entity and revision, and
//!   the checksum leaves out fields that only the revision covers.
//! - `If-Match: "R"` passes when nothing but the health probes changed the
//!   entity after revision R: R is at most its revision and at least its
//!   *operator revision*, the revision of its last change by anything else
//!   (the admin API, a catalog file; an operator's status change counts).
//!   Only providers are probed; a model's operator revision is its revision.
//!   A provider's operator revision is stored in its row's `revision` column
//!   and follows the events (probes mark theirs `automatic`), so every
//!   instance of a cluster checks against the same one.

use std::collections::BTreeMap;

use provider_sync_protocol::{EventPayload, ProviderSyncInfo, SyncState};
use serde::Serialize;

use crate::error::{Error, Result};

/// The operator revisions that differ from the revision: providers whose
/// latest changes all came from the health probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorRevisions {
    /// By provider id: the revision before the first of those changes.
    probed: BTreeMap<String, u64>,
}

impl OperatorRevisions {
    /// From what a store holds: the operator revisions below the revision.
    pub fn new(probed: BTreeMap<String, u64>) -> Self {
        Self { probed }
    }

    /// The revision of the provider's last change not made by a probe.
    pub fn of(&self, provider: &ProviderSyncInfo) -> u64 {
        self.probed
            .get(&provider.id)
            .copied()
            .unwrap_or(provider.revision)
    }

    /// Follows one change event; `before` is the state it applies to.
    pub fn note(&mut self, before: &SyncState, payload: &EventPayload) {
        match payload {
            EventPayload::ProviderStatusChanged(change) if change.automatic => {
                if let Some(provider) = before.provider(&change.provider_id) {
                    let operator = self.of(provider);
                    self.probed.insert(change.provider_id.clone(), operator);
                }
            }
            EventPayload::ProviderStatusChanged(change) => {
                self.probed.remove(&change.provider_id);
            }
            EventPayload::ProviderAdded(p) | EventPayload::ProviderUpdated(p) => {
                self.probed.remove(&p.id);
            }
            EventPayload::ProviderRemoved(removed) => {
                self.probed.remove(&removed.provider_id);
            }
            _ => {}
        }
    }
}

/// Gives the entity an event carries the event's version as its revision.
pub(crate) fn stamp(payload: &mut EventPayload, version: u64) {
    match payload {
        EventPayload::ProviderAdded(p) | EventPayload::ProviderUpdated(p) => p.revision = version,
        EventPayload::ModelAdded(m)
        | EventPayload::ModelUpdated(m)
        | EventPayload::ModelDeprecated(m) => m.revision = version,
        EventPayload::ProviderStatusChanged(change) => change.revision = version,
        _ => {}
    }
}

/// Refuses a write whose `If-Match` names a revision that `current` has
/// changed since (other than by the probes), or has not reached.
pub(crate) fn check<T: Serialize>(
    if_match: Option<u64>,
    operator_revision: u64,
    revision: u64,
    current: &T,
) -> Result<()> {
    match if_match {
        Some(expected) if expected < operator_revision || expected > revision => {
            Err(Error::precondition_failed(expected, revision, current))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use provider_sync_protocol::{ProviderHealth, ProviderStatus, ProviderStatusChanged};

    use super::*;

    fn provider(revision: u64) -> ProviderSyncInfo {
        let mut p = crate::commands::provider_from(provider_sync_protocol::NewProvider {
            id: "p".into(),
            name: "P".into(),
            ..Default::default()
        });
        p.revision = revision;
        p
    }

    fn status(automatic: bool, revision: u64) -> EventPayload {
        EventPayload::ProviderStatusChanged(ProviderStatusChanged {
            provider_id: "p".into(),
            previous_status: ProviderStatus::Available,
            status: ProviderStatus::Degraded,
            health: ProviderHealth::default(),
            revision,
            automatic,
        })
    }

    #[test]
    fn probes_keep_the_operator_revision_and_operators_move_it() {
        let mut state = SyncState::default();
        state.providers.push(provider(4));
        let mut revisions = OperatorRevisions::default();
        revisions.note(&state, &status(true, 6));
        state.providers[0].revision = 6;
        revisions.note(&state, &status(true, 9));
        state.providers[0].revision = 9;
        assert_eq!(revisions.of(&state.providers[0]), 4);
        assert!(check(Some(4), 4, 9, &()).is_ok());
        assert!(check(Some(6), 4, 9, &()).is_ok());
        assert!(check(Some(3), 4, 9, &()).is_err());
        assert!(check(Some(10), 4, 9, &()).is_err());
        revisions.note(&state, &status(false, 12));
        state.providers[0].revision = 12;
        assert_eq!(revisions.of(&state.providers[0]), 12);
    }
}
