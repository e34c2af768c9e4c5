//! Reconciling the store with a catalog file, the way `kubectl apply` does:
//! a three-way merge of the file, the file as last applied (kept in the
//! store) and the live catalog.
//!
//! - A field the file changed since the last applied version takes the
//!   file's value; a field it did not change keeps its live value, including
//!   an admin-API edit. Nested objects (`pricing`) merge field by field.
//! - Entities the file never had (created through the API) stay; entities
//!   removed from the file are removed; an entity deleted through the API
//!   stays deleted unless the file changes it.
//! - A provider's status and health are runtime state: the file's `status`
//!   only sets the status of a provider it creates.
//! - An unchanged file emits nothing; a file whose `revision` is below the
//!   applied one applies nothing.
//! - A store that holds a catalog but no record of an applied file (one
//!   written before this record existed) adopts the file: existing entities
//!   keep their values, missing ones are added.

use std::collections::HashSet;
use std::sync::Arc;

use provider_sync_protocol::{
    ActiveProviderChanged, EventPayload, ModelSpecification, ProviderSyncInfo, SyncEventType,
    SyncState,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Catalog;
use crate::commands;
use crate::service::Draft;
use crate::validate::{self, Fields};

/// Provider fields that are runtime state, never taken from the file for an
/// existing provider.
const PROVIDER_RUNTIME: &[&str] = &["status", "health", "model_ids", "revision"];
const MODEL_RUNTIME: &[&str] = &["revision"];

/// What a reconcile did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// The file changed since it was last applied; its changes were applied.
    Applied,
    /// The file is the one last applied: nothing to do.
    #[default]
    Unchanged,
    /// The file's revision is older than the applied one: nothing applied.
    Older { file: u64, stored: u64 },
}

/// What a reconcile changed and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub outcome: Outcome,
    /// Change events emitted.
    pub events: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Admin-API edits the file did not override: fields whose live value
    /// differs from an unchanged file value, and entities deleted through the
    /// API that the file still lists unchanged.
    pub kept_edits: usize,
    /// The store had no record of an applied file: existing entities were
    /// adopted with their current values.
    pub adopted: bool,
}

/// One entity's wanted state after the merge, with what to fall back to if
/// it does not pass the checks.
struct Planned<T> {
    id: String,
    /// Merged (file changes over live values), then the file's own version,
    /// then nothing (keep the live entity as it is).
    choices: Vec<T>,
}

impl Catalog {
    /// Emits the fewest events that bring the draft's state to the file, as
    /// the module documentation describes, and records the file as applied.
    pub fn reconcile(&self, draft: &mut Draft) -> Reconciled {
        let last = draft.applied_catalog().cloned();
        if let (Some(file), Some(stored)) = (self.revision, last.as_ref().and_then(|l| l.revision))
            && file < stored
        {
            return Reconciled {
                outcome: Outcome::Older { file, stored },
                ..Reconciled::default()
            };
        }
        if last.as_ref().is_some_and(|l| l.same_content(self)) {
            return Reconciled::default();
        }
        let live = draft.state();
        let fresh = live.providers.is_empty() && live.all_models.is_empty();
        let adopted = last.is_none() && !fresh;
        // The version of an entity the file is compared with: the last
        // applied one; when adopting, the file itself for what exists (so its
        // current values stay).
        let base_provider = |id: &str, exists: bool| -> Option<&ProviderSyncInfo> {
            match &last {
                Some(l) => l.provider(id),
                None if adopted && exists => self.provider(id),
                None => None,
            }
        };
        let base_model = |id: &str, exists: bool| -> Option<&ModelSpecification> {
            match &last {
                Some(l) => l.model(id),
                None if adopted && exists => self.model(id),
                None => None,
            }
        };

        let mut kept = 0;
        let mut providers = Vec::new();
        for wanted in &self.providers {
            let current = live.provider(&wanted.id);
            let base = base_provider(&wanted.id, current.is_some());
            match current {
                None => {
                    if base.is_some_and(|b| same_fields(b, wanted, PROVIDER_RUNTIME)) {
                        kept += 1;
                        continue;
                    }
                    let mut new = wanted.clone();
                    new.model_ids.clear();
                    new.revision = 1;
                    providers.push(Planned {
                        id: wanted.id.clone(),
                        choices: vec![new],
                    });
                }
                Some(current) => {
                    let merged = merge(wanted, base, current, PROVIDER_RUNTIME, &mut kept);
                    if &merged != current {
                        let file_wins = merge(wanted, None, current, PROVIDER_RUNTIME, &mut 0);
                        providers.push(Planned {
                            id: wanted.id.clone(),
                            choices: vec![merged, file_wins],
                        });
                    }
                }
            }
        }
        let mut models = Vec::new();
        for wanted in &self.models {
            let current = live.model(&wanted.id);
            let base = base_model(&wanted.id, current.is_some());
            match current {
                None => {
                    if base.is_some_and(|b| same_fields(b, wanted, MODEL_RUNTIME)) {
                        kept += 1;
                        continue;
                    }
                    let mut new = wanted.clone();
                    new.revision = 1;
                    models.push(Planned {
                        id: wanted.id.clone(),
                        choices: vec![new],
                    });
                }
                Some(current) => {
                    let merged = merge(wanted, base, current, MODEL_RUNTIME, &mut kept);
                    if &merged != current {
                        let file_wins = merge(wanted, None, current, MODEL_RUNTIME, &mut 0);
                        models.push(Planned {
                            id: wanted.id.clone(),
                            choices: vec![merged, file_wins],
                        });
                    }
                }
            }
        }
        // Removed from the file since it was last applied, and still here.
        let (gone_providers, gone_models): (Vec<String>, Vec<String>) = match &last {
            None => (Vec::new(), Vec::new()),
            Some(last) => {
                let providers: Vec<String> = last
                    .providers
                    .iter()
                    .filter(|p| self.provider(&p.id).is_none() && live.provider(&p.id).is_some())
                    .map(|p| p.id.clone())
                    .collect();
                let models = last
                    .models
                    .iter()
                    .filter(|m| self.model(&m.id).is_none())
                    .filter_map(|m| live.model(&m.id))
                    .filter(|m| !providers.contains(&m.provider_id))
                    .map(|m| m.id.clone())
                    .collect();
                (providers, models)
            }
        };

        settle(
            live,
            &mut providers,
            &mut models,
            &gone_providers,
            &gone_models,
        );

        let start = draft.events().len();
        for planned in providers {
            let Some(mut next) = planned.choices.into_iter().next() else {
                continue;
            };
            match draft.state().provider(&planned.id) {
                None => draft.emit(EventPayload::ProviderAdded(next)),
                Some(current) => {
                    next.revision = current.revision + 1;
                    draft.emit(EventPayload::ProviderUpdated(next));
                }
            }
        }
        for planned in models {
            let Some(mut next) = planned.choices.into_iter().next() else {
                continue;
            };
            match draft.state().model(&planned.id) {
                None => draft.emit(EventPayload::ModelAdded(next)),
                Some(current) => {
                    let deprecated = !current.is_deprecated() && next.is_deprecated();
                    next.revision = current.revision + 1;
                    draft.emit(if deprecated {
                        EventPayload::ModelDeprecated(next)
                    } else {
                        EventPayload::ModelUpdated(next)
                    });
                }
            }
        }
        for id in &gone_models {
            commands::delete_model(draft, id, None).expect("the model exists");
        }
        for id in &gone_providers {
            commands::delete_provider(draft, id, None).expect("the provider exists");
        }
        self.reconcile_pointers(draft, last.as_deref(), adopted, &mut kept);

        draft.record_catalog(Arc::new(self.clone()));
        let mut done = Reconciled {
            outcome: Outcome::Applied,
            kept_edits: kept,
            adopted,
            ..Reconciled::default()
        };
        for event in &draft.events()[start..] {
            done.events += 1;
            match event.event_type() {
                SyncEventType::ProviderAdded | SyncEventType::ModelAdded => done.added += 1,
                SyncEventType::ProviderRemoved | SyncEventType::ModelRemoved => done.removed += 1,
                _ => done.updated += 1,
            }
        }
        done
    }

    /// The active and default provider: a value the file does not give, or
    /// did not change since it was last applied, stays as it is.
    fn reconcile_pointers(
        &self,
        draft: &mut Draft,
        last: Option<&Catalog>,
        adopted: bool,
        kept: &mut usize,
    ) {
        let state = draft.state();
        let pick =
            |file: &Option<String>, applied: Option<&Option<String>>, live: &Option<String>| {
                let Some(wanted) = file else {
                    return live.clone();
                };
                let unchanged = match applied {
                    Some(applied) => applied.as_ref() == Some(wanted),
                    None => adopted && live.is_some(),
                };
                if unchanged {
                    live.clone()
                } else {
                    Some(wanted.clone())
                }
            };
        let active = pick(
            &self.active_provider_id,
            last.map(|l| &l.active_provider_id),
            &state.active_provider_id,
        );
        let default = pick(
            &self.default_provider_id,
            last.map(|l| &l.default_provider_id),
            &state.default_provider_id,
        );
        for (file, chosen) in [
            (&self.active_provider_id, &active),
            (&self.default_provider_id, &default),
        ] {
            if file.is_some() && chosen != file {
                *kept += 1;
            }
        }
        let exists = |id: &Option<String>| id.clone().filter(|id| state.provider(id).is_some());
        let next = ActiveProviderChanged {
            active_provider_id: exists(&active),
            default_provider_id: exists(&default),
        };
        if next.active_provider_id != state.active_provider_id
            || next.default_provider_id != state.default_provider_id
        {
            draft.emit(EventPayload::ActiveProviderChanged(next));
        }
    }
}

/// Checks every planned entity against the state it will be part of; one
/// that does not pass falls back to its next choice (the file's own version,
/// then no change), until everything passes.
fn settle(
    live: &SyncState,
    providers: &mut [Planned<ProviderSyncInfo>],
    models: &mut [Planned<ModelSpecification>],
    gone_providers: &[String],
    gone_models: &[String],
) {
    loop {
        let mut target = live.clone();
        for p in providers.iter() {
            if let Some(next) = p.choices.first() {
                match target.providers.iter_mut().find(|x| x.id == p.id) {
                    Some(slot) => *slot = next.clone(),
                    None => target.providers.push(next.clone()),
                }
            }
        }
        for m in models.iter() {
            if let Some(next) = m.choices.first() {
                match target.all_models.iter_mut().find(|x| x.id == m.id) {
                    Some(slot) => *slot = next.clone(),
                    None => target.all_models.push(next.clone()),
                }
            }
        }
        let gone_p: HashSet<&str> = gone_providers.iter().map(String::as_str).collect();
        let gone_m: HashSet<&str> = gone_models.iter().map(String::as_str).collect();
        target.providers.retain(|p| !gone_p.contains(p.id.as_str()));
        target.all_models.retain(|m| {
            !gone_m.contains(m.id.as_str()) && !gone_p.contains(m.provider_id.as_str())
        });
        target.providers.sort_by(|a, b| a.id.cmp(&b.id));
        target.all_models.sort_by(|a, b| a.id.cmp(&b.id));

        let mut fell_back = false;
        for p in providers.iter_mut() {
            if let Some(next) = p.choices.first()
                && let Err(err) = validate::provider(&target, next, Fields(""))
            {
                tracing::warn!(provider = %p.id, error = %err, "catalog: merged provider does not pass the checks; falling back");
                p.choices.remove(0);
                fell_back = true;
            }
        }
        for m in models.iter_mut() {
            if let Some(next) = m.choices.first()
                && let Err(err) = validate::model(&target, next, Fields(""))
            {
                tracing::warn!(model = %m.id, error = %err, "catalog: merged model does not pass the checks; falling back");
                m.choices.remove(0);
                fell_back = true;
            }
        }
        if !fell_back {
            return;
        }
    }
}

fn json<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value).expect("entities serialise") {
        Value::Object(map) => map,
        _ => unreachable!("entities are objects"),
    }
}

/// Whether two versions of an entity agree on every field but the runtime
/// ones.
fn same_fields<T: Serialize>(a: &T, b: &T, runtime: &[&str]) -> bool {
    let (a, b) = (json(a), json(b));
    a.keys()
        .chain(b.keys())
        .filter(|k| !runtime.contains(&k.as_str()))
        .all(|k| a.get(k) == b.get(k))
}

/// The three-way merge of one entity: `file` over `live`, field by field,
/// where the file differs from `base` (all fields when there is no base).
fn merge<T: Serialize + DeserializeOwned>(
    file: &T,
    base: Option<&T>,
    live: &T,
    runtime: &[&str],
    kept: &mut usize,
) -> T {
    let merged = merge_maps(
        &json(file),
        base.map(json).as_ref(),
        &json(live),
        runtime,
        kept,
    );
    serde_json::from_value(Value::Object(merged)).expect("a merge of two entities is one")
}

fn merge_maps(
    file: &Map<String, Value>,
    base: Option<&Map<String, Value>>,
    live: &Map<String, Value>,
    runtime: &[&str],
    kept: &mut usize,
) -> Map<String, Value> {
    let mut out = live.clone();
    let keys: Vec<&String> = file
        .keys()
        .chain(live.keys().filter(|k| !file.contains_key(*k)))
        .collect();
    for key in keys {
        if runtime.contains(&key.as_str()) {
            continue;
        }
        let (f, l) = (file.get(key), live.get(key));
        let b = base.map(|b| b.get(key));
        match b {
            Some(b) if b == f => {
                if l != f {
                    *kept += 1;
                }
            }
            Some(Some(Value::Object(b))) => match (f, l) {
                (Some(Value::Object(f)), Some(Value::Object(l))) => {
                    out.insert(
                        key.clone(),
                        Value::Object(merge_maps(f, Some(b), l, &[], kept)),
                    );
                }
                _ => set(&mut out, key, f),
            },
            _ => set(&mut out, key, f),
        }
    }
    out
}

fn set(out: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    match value {
        Some(value) => {
            out.insert(key.to_owned(), value.clone());
        }
        None => {
            out.remove(key);
        }
    }
}
