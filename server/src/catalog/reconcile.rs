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

use std::collections::{HashMap, HashSet};
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
    /// The file's revision is older than the applied one (or, `by_time`,
    /// its LiteLLM file's modification time, in seconds): nothing applied.
    Older {
        file: u64,
        stored: u64,
        by_time: bool,
    },
}

/// What a reconcile changed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The file's entries not applied in full (they did not pass the
    /// checks, named what is not there, or would take a provider past its
    /// bound on models): tried again by the next reconcile.
    pub pending: usize,
    /// The ids of the first ten of those, sorted (providers first), for the
    /// log and `catalog diff` to name.
    pub pending_ids: Vec<String>,
    /// Applied, though the file gives the revision (above 0) last applied
    /// and, if it names a LiteLLM file, one of the same age: its content
    /// changed with no new revision. Said with a warning: an instance
    /// restarted with another copy of that revision cannot tell which is
    /// newer, and a file cut short that still reads (a copy stopped half
    /// way) is applied as an edit, removing what its lost half held.
    pub revision_unchanged: bool,
}

/// How many of the entries a reconcile could not apply in full it names.
const PENDING_NAMED: usize = 10;

/// One entity's wanted state after the merge, with what to fall back to if
/// it does not pass the checks.
struct Planned<T> {
    id: String,
    /// In order of preference: merged (file changes over live values), the
    /// file's own version, then (for a changed reference to what is not
    /// there) those two with the live reference in place of the file's,
    /// and the file's version without references to other entities. Empty:
    /// no choice passes; the live entity stays as it is.
    choices: Vec<T>,
    /// Admin edits each choice keeps (counted for the one taken).
    kept: Vec<usize>,
    /// Whether each choice has the file's limits in place of the merge's
    /// (a model's; an admin's cut input limit is then no longer theirs).
    file_limits: Vec<bool>,
    /// How much of the file's version each choice applies.
    applies: Vec<Applies>,
}

/// How much of the file's version a choice applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    All,
    /// All but a changed reference, whose live value it keeps.
    AllButTheReference,
    /// Not the file's references (the last choice, unless it is the only
    /// one).
    NotTheReferences,
}

impl<T> Planned<T> {
    /// `kept`: the admin edits the first choice keeps; the others keep none.
    fn new(id: &str, choices: Vec<T>, kept: usize) -> Self {
        let mut each = vec![0; choices.len()];
        if let Some(first) = each.first_mut() {
            *first = kept;
        }
        let file_limits = vec![false; choices.len()];
        Self::with_kept(id, choices, each, file_limits)
    }

    fn with_kept(id: &str, choices: Vec<T>, kept: Vec<usize>, file_limits: Vec<bool>) -> Self {
        let len = choices.len();
        Self {
            id: id.to_owned(),
            choices,
            kept,
            file_limits,
            applies: (0..len)
                .map(|at| {
                    if at == 0 || at + 1 < len {
                        Applies::All
                    } else {
                        Applies::NotTheReferences
                    }
                })
                .collect(),
        }
    }

    /// Marks the choices from `from` on but the last as keeping the live
    /// reference in place of the file's.
    fn holding_from(mut self, from: usize) -> Self {
        let last = self.applies.len().saturating_sub(1);
        for applies in self.applies.iter_mut().take(last).skip(from.max(1)) {
            *applies = Applies::AllButTheReference;
        }
        self
    }

    fn fall_back(&mut self) {
        self.choices.remove(0);
        if !self.kept.is_empty() {
            self.kept.remove(0);
        }
        if !self.file_limits.is_empty() {
            self.file_limits.remove(0);
        }
        if !self.applies.is_empty() {
            self.applies.remove(0);
        }
    }

    /// Whether the choice that will be taken has the file's limits, or no
    /// choice is taken.
    fn takes_file_limits(&self) -> bool {
        self.file_limits.first().copied().unwrap_or(true)
    }

    /// The admin edits the choice that will be taken keeps.
    fn kept(&self) -> usize {
        if self.choices.is_empty() {
            0
        } else {
            self.kept.first().copied().unwrap_or(0)
        }
    }

    /// Whether the file's version is not what is applied in full: no choice
    /// passed, or one without the file's references to other entities.
    fn unapplied(&self) -> bool {
        self.applies.first() != Some(&Applies::All)
    }

    /// Whether the choice that will be taken keeps the live reference in
    /// place of the file's changed one.
    fn holds_reference(&self) -> bool {
        self.applies.first() == Some(&Applies::AllButTheReference)
    }
}

/// References to entities this reconcile removes are cleared, as removing
/// them would clear them anyway (`gone_models`: every model removed, with
/// its provider or alone); a model of a removed provider goes back to the
/// file's provider.
fn without_gone_provider(mut p: ProviderSyncInfo, gone: &HashSet<&str>) -> ProviderSyncInfo {
    if p.fallback_provider_id
        .as_deref()
        .is_some_and(|f| gone.contains(f))
    {
        p.fallback_provider_id = None;
    }
    p
}

fn without_gone_model(
    mut m: ModelSpecification,
    wanted: &ModelSpecification,
    gone_providers: &HashSet<&str>,
    gone_models: &HashSet<&str>,
) -> ModelSpecification {
    if gone_providers.contains(m.provider_id.as_str()) {
        m.provider_id = wanted.provider_id.clone();
    }
    if m.replacement_model_id
        .as_deref()
        .is_some_and(|r| gone_models.contains(r))
    {
        m.replacement_model_id = None;
    }
    m
}

impl Catalog {
    /// Emits the fewest events that bring the draft's state to the file, as
    /// the module documentation describes, and records what was applied.
    pub fn reconcile(&self, draft: &mut Draft) -> Reconciled {
        let last = draft.applied_catalog().cloned();
        if let Some(last) = &last {
            // A TOML file without a `revision` counts as revision 0 against
            // one that had a revision (the shipped sample has none): an
            // older copy never undoes a numbered one. The LiteLLM file's
            // modification time counts between two plain LiteLLM files, and
            // between two TOML files of one revision that name one (a
            // revision raised applies whatever LiteLLM file it names).
            let revision = self.revision.or((!self.plain_litellm).then_some(0));
            let older = match (revision, last.revision) {
                (Some(file), Some(stored)) if file != stored => {
                    (file < stored).then_some(Outcome::Older {
                        file,
                        stored,
                        by_time: false,
                    })
                }
                (Some(_), Some(_)) | (None, None) => match (self.modified, last.modified) {
                    (Some(file), Some(stored)) if file < stored => Some(Outcome::Older {
                        file,
                        stored,
                        by_time: true,
                    }),
                    _ => None,
                },
                _ => None,
            };
            if let Some(outcome) = older {
                return Reconciled {
                    outcome,
                    ..Reconciled::default()
                };
            }
            if last.same_content(self) {
                // Nothing to apply, and nothing is written; what a reconcile
                // would keep of the admin edits is still counted (it said 0).
                let mut scratch = Draft::scratch(draft.state().clone(), Some(last.clone()));
                let kept = self.apply(&mut scratch, Some(last.clone())).kept_edits;
                return Reconciled {
                    kept_edits: kept,
                    ..Reconciled::default()
                };
            }
        }
        let unchanged_revision = last.as_ref().is_some_and(|last| {
            self.revision.is_some_and(|r| r > 0)
                && self.revision == last.revision
                && self.modified == last.modified
        });
        let mut done = self.apply(draft, last);
        done.revision_unchanged = unchanged_revision && done.outcome == Outcome::Applied;
        done
    }

    /// [`Catalog::reconcile`] past its checks of the file against `last`,
    /// the file applied last.
    fn apply(&self, draft: &mut Draft, last: Option<Arc<Catalog>>) -> Reconciled {
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

        // Removed from the file since it was last applied, and still here.
        let (gone_providers, gone_models): (Vec<String>, Vec<String>) = match &last {
            None => (Vec::new(), Vec::new()),
            Some(last) => {
                // A provider that holds models the file never had (made
                // through the admin API) stays, with them: entities the
                // file never had are not the file's to remove. Its models
                // that were the file's go one by one.
                let file_had = |id: &str| last.model(id).is_some() || self.model(id).is_some();
                let providers: Vec<String> = last
                    .providers
                    .iter()
                    .filter(|p| self.provider(&p.id).is_none() && live.provider(&p.id).is_some())
                    // An entry the file has but could not read stays.
                    .filter(|p| !self.report.unreadable_providers.contains(&p.id))
                    .filter(|p| {
                        let own: Vec<&str> = live
                            .all_models
                            .iter()
                            .filter(|m| m.provider_id == p.id && !file_had(&m.id))
                            .map(|m| m.id.as_str())
                            .collect();
                        if !own.is_empty() {
                            tracing::warn!(provider = %p.id, models = ?own, "catalog: the file removes a provider that holds models it never had (made through the admin API); the provider stays with them");
                        }
                        own.is_empty()
                    })
                    .map(|p| p.id.clone())
                    .collect();
                let models = last
                    .models
                    .iter()
                    .filter(|m| self.model(&m.id).is_none())
                    .filter(|m| !self.report.unreadable_models.contains(&m.id))
                    .filter_map(|m| live.model(&m.id))
                    .filter(|m| !providers.contains(&m.provider_id))
                    .map(|m| m.id.clone())
                    .collect();
                (providers, models)
            }
        };
        let gone_p: HashSet<&str> = gone_providers.iter().map(String::as_str).collect();
        let gone_m: HashSet<&str> = gone_models.iter().map(String::as_str).collect();
        // Every model this reconcile removes: those above, and those that go
        // with a removed provider (unless the file keeps them elsewhere).
        let going_m: HashSet<&str> = live
            .all_models
            .iter()
            .filter(|m| gone_p.contains(m.provider_id.as_str()) && self.model(&m.id).is_none())
            .map(|m| m.id.as_str())
            .chain(gone_m.iter().copied())
            .collect();
        let mut kept = 0;
        let mut providers = Vec::new();
        for wanted in &self.providers {
            let current = live.provider(&wanted.id);
            let base = base_provider(&wanted.id, current.is_some());
            let mut bare = wanted.clone();
            bare.fallback_provider_id = None;
            match current {
                None => {
                    if base.is_some_and(|b| same_fields(b, wanted, PROVIDER_RUNTIME)) {
                        kept += 1;
                        continue;
                    }
                    let choices = [wanted.clone(), bare]
                        .into_iter()
                        .map(|mut p| {
                            p.model_ids.clear();
                            without_gone_provider(p, &gone_p)
                        })
                        .collect();
                    providers.push(Planned::new(&wanted.id, choices, 0));
                }
                Some(current) => {
                    let mut edits = 0;
                    let merged = match (base, self.given.providers.get(&wanted.id)) {
                        (None, Some(given)) => {
                            merge_given(wanted, given, current, PROVIDER_RUNTIME, &mut edits)
                        }
                        _ => merge(wanted, base, current, PROVIDER_RUNTIME, &mut edits),
                    };
                    let merged = without_gone_provider(merged, &gone_p);
                    if &merged != current {
                        let file_wins = merge(wanted, None, current, PROVIDER_RUNTIME, &mut 0);
                        let mut choices = vec![(merged.clone(), edits), (file_wins.clone(), 0)];
                        // A changed fallback that is not there (an admin
                        // deleted it): the change waits for the next
                        // reconcile with the live fallback, rather than
                        // clearing it.
                        let held_from = choices.len();
                        if merged.fallback_provider_id != current.fallback_provider_id {
                            // The live fallback, kept, is an admin's edit
                            // when it is not what the file last gave.
                            let admins = usize::from(base.is_some_and(|b| {
                                b.fallback_provider_id != current.fallback_provider_id
                            }));
                            for (choice, keeps) in [(merged, edits), (file_wins, 0)] {
                                let mut held = choice;
                                held.fallback_provider_id = current.fallback_provider_id.clone();
                                // Not kept when this reconcile removes it.
                                let held = without_gone_provider(held, &gone_p);
                                let admins =
                                    if held.fallback_provider_id == current.fallback_provider_id {
                                        admins
                                    } else {
                                        0
                                    };
                                if choices.iter().all(|(c, _)| *c != held) {
                                    choices.push((held, keeps + admins));
                                }
                            }
                        }
                        choices.push((merge(&bare, None, current, PROVIDER_RUNTIME, &mut 0), 0));
                        let (choices, kept): (Vec<_>, Vec<_>) = choices
                            .into_iter()
                            .map(|(p, keeps)| (without_gone_provider(p, &gone_p), keeps))
                            .unzip();
                        let limits = vec![false; choices.len()];
                        providers.push(
                            Planned::with_kept(&wanted.id, choices, kept, limits)
                                .holding_from(held_from),
                        );
                    } else {
                        kept += edits;
                    }
                }
            }
        }
        let mut models = Vec::new();
        // The admin limits the merges cut (recorded once the merge is what
        // is applied).
        let mut cuts = std::collections::BTreeMap::new();
        for wanted in &self.models {
            let current = live.model(&wanted.id);
            // Fields whose values the file gives but could not be read
            // keep the store's values (the file does not change them).
            // One an admin deleted is compared with what was last applied
            // of them (the file's placeholders read as a change, and the
            // model came back).
            let held;
            let known = current.or_else(|| last.as_ref().and_then(|l| l.model(&wanted.id)));
            let wanted = match (known, self.report.unreadable_fields.get(&wanted.id)) {
                (Some(known), Some(fields)) => {
                    held = with_fields_of(wanted, known, &[fields]);
                    &held
                }
                _ => wanted,
            };
            let base = base_model(&wanted.id, current.is_some());
            let mut bare = wanted.clone();
            bare.replacement_model_id = None;
            match current {
                None => {
                    if base.is_some_and(|b| same_fields(b, wanted, MODEL_RUNTIME)) {
                        kept += 1;
                        continue;
                    }
                    let choices = [wanted.clone(), bare]
                        .into_iter()
                        .map(|m| without_gone_model(m, wanted, &gone_p, &going_m))
                        .collect();
                    models.push(Planned::new(&wanted.id, choices, 0));
                }
                Some(current) => {
                    let mut edits = 0;
                    let given = self.given.models.get(&wanted.id);
                    let was_cut = last.as_ref().and_then(|l| l.cut_limits.get(&wanted.id));
                    let (merged, cut) =
                        merge_model(wanted, base, given, current, was_cut, &mut edits);
                    if let Some(cut) = cut {
                        cuts.insert(wanted.id.clone(), cut);
                    }
                    let merged = without_gone_model(merged, wanted, &gone_p, &going_m);
                    if &merged != current {
                        let file_wins = without_gone_model(
                            merge(wanted, None, current, MODEL_RUNTIME, &mut 0),
                            wanted,
                            &gone_p,
                            &going_m,
                        );
                        // Between the merge and the file's version: the
                        // merge with the file's values for one group of
                        // fields that must agree (the retirement, the
                        // limits), then both, so that a conflict there
                        // does not take the admin's other edits (a name, a
                        // price) with it. The retirement also without the
                        // file's replacement, for one that is not there (an
                        // admin deleted it, or it is left out).
                        // Each with the admin edits it keeps, and whether
                        // it has the file's limits.
                        let mut choices = vec![(merged.clone(), edits, false)];
                        for groups in [
                            &[RETIREMENT][..],
                            &[RETIREMENT_DATES][..],
                            &[LIMITS][..],
                            &[RETIREMENT, LIMITS][..],
                            &[RETIREMENT_DATES, LIMITS][..],
                        ] {
                            let partial = with_fields_of(&merged, &file_wins, groups);
                            if partial != file_wins
                                && choices.iter().all(|(choice, _, _)| *choice != partial)
                            {
                                let kept = edits.saturating_sub(differing_fields(
                                    &merged,
                                    &partial,
                                    MODEL_RUNTIME,
                                ));
                                choices.push((partial, kept, groups.contains(&LIMITS)));
                            }
                        }
                        choices.push((file_wins.clone(), 0, true));
                        // A changed replacement that is not there (an admin
                        // deleted it, or the file's model could not be
                        // added): the change waits for the next reconcile
                        // with the live replacement, rather than clearing
                        // it.
                        let held_from = choices.len();
                        if merged.replacement_model_id != current.replacement_model_id {
                            // The live replacement, kept, is an admin's edit
                            // when it is not what the file last gave.
                            let admins = usize::from(base.is_some_and(|b| {
                                b.replacement_model_id != current.replacement_model_id
                            }));
                            for (choice, keeps, limits) in
                                [(merged, edits, false), (file_wins, 0, true)]
                            {
                                let mut held = choice;
                                held.replacement_model_id = current.replacement_model_id.clone();
                                let held = without_gone_model(held, wanted, &gone_p, &going_m);
                                // Not kept when this reconcile removes it.
                                let admins =
                                    if held.replacement_model_id == current.replacement_model_id {
                                        admins
                                    } else {
                                        0
                                    };
                                if choices.iter().all(|(c, _, _)| *c != held) {
                                    choices.push((held, keeps + admins, limits));
                                }
                            }
                        }
                        choices.push((
                            without_gone_model(
                                merge(&bare, None, current, MODEL_RUNTIME, &mut 0),
                                wanted,
                                &gone_p,
                                &going_m,
                            ),
                            0,
                            true,
                        ));
                        let mut kept = Vec::new();
                        let mut file_limits = Vec::new();
                        let choices = choices
                            .into_iter()
                            .map(|(choice, keeps, limits)| {
                                kept.push(keeps);
                                file_limits.push(limits);
                                choice
                            })
                            .collect();
                        models.push(
                            Planned::with_kept(&wanted.id, choices, kept, file_limits)
                                .holding_from(held_from),
                        );
                    } else {
                        kept += edits;
                    }
                }
            }
        }

        settle(live, &mut providers, &mut models, &gone_p, &gone_m);
        // A cut the merge made is the admin's only where the merge's limits
        // are what is applied (not the file's, taken for a conflict).
        for m in models.iter().filter(|m| m.takes_file_limits()) {
            cuts.remove(&m.id);
        }

        // What is recorded as applied is what was applied: an entity no
        // choice of which passed, or one applied without its references
        // (its last choice, taken when what it names is not there: a model
        // the bound on a provider's models left out), keeps its last
        // applied version in the record, so the next reconcile tries the
        // file's change again.
        let mut record = self.clone();
        // Entries the file has but could not read: those the store has
        // stay as they are, and as last applied in the record.
        // One an admin deleted stays deleted: the record keeps its last
        // applied version (without it, the next file that can read it would
        // add it back as new), but it is not pending.
        let unreadable_providers: Vec<&String> = (self.report.unreadable_providers.iter())
            .filter(|id| self.provider(id).is_none())
            .filter(|id| {
                live.provider(id).is_some()
                    || last.as_ref().is_some_and(|l| l.provider(id).is_some())
            })
            .collect();
        // One whose provider the file removes goes with it (`going_m`):
        // neither pending nor in the record, where it would read as an
        // admin's deletion once the file has it whole again.
        // The same for a deleted one, unless its provider is not in the
        // record either (the file removes it, or an admin deleted it).
        let unreadable_models: Vec<&String> = (self.report.unreadable_models.iter())
            .filter(|id| self.model(id).is_none())
            .filter(|id| !going_m.contains(id.as_str()))
            .filter(|id| {
                live.model(id).is_some()
                    || last.as_ref().and_then(|l| l.model(id)).is_some_and(|m| {
                        self.provider(&m.provider_id).is_some()
                            || unreadable_providers.contains(&&m.provider_id)
                    })
            })
            .collect();
        for id in &unreadable_providers {
            let entry = last.as_ref().and_then(|l| l.provider(id)).cloned();
            put(&mut record.providers, id, entry, |p| &p.id);
        }
        for id in &unreadable_models {
            let entry = last.as_ref().and_then(|l| l.model(id)).cloned();
            put(&mut record.models, id, entry, |m| &m.id);
        }
        // The file's entries not applied in full, and those it could not
        // read that the store still holds, by kind.
        fn pending_of<'a, T>(
            planned: &'a [Planned<T>],
            unreadable: &[&'a String],
            held: impl Fn(&str) -> bool,
        ) -> Vec<&'a str> {
            (planned
                .iter()
                .filter(|p| p.unapplied())
                .map(|p| p.id.as_str()))
            .chain(
                unreadable
                    .iter()
                    .map(|id| id.as_str())
                    .filter(|id| held(id)),
            )
            .collect()
        }
        let mut pending_providers = pending_of(&providers, &unreadable_providers, |id| {
            live.provider(id).is_some()
        });
        let mut pending_models =
            pending_of(&models, &unreadable_models, |id| live.model(id).is_some());
        let pending = pending_providers.len() + pending_models.len();
        pending_providers.sort_unstable();
        pending_models.sort_unstable();
        let pending_ids: Vec<String> = pending_providers
            .into_iter()
            .chain(pending_models)
            .take(PENDING_NAMED)
            .map(str::to_owned)
            .collect();
        // One that keeps its live reference in place of the file's changed
        // one is recorded as the file has it but that reference, as it
        // was: the next reconcile tries the reference again, and not the
        // rest (an admin's later edit of another field stays).
        for planned in providers.iter().filter(|p| p.unapplied()) {
            let entry = if planned.holds_reference() {
                self.provider(&planned.id).map(|file| ProviderSyncInfo {
                    fallback_provider_id: live
                        .provider(&planned.id)
                        .and_then(|p| p.fallback_provider_id.clone()),
                    ..file.clone()
                })
            } else {
                last.as_ref().and_then(|l| l.provider(&planned.id)).cloned()
            };
            put(&mut record.providers, &planned.id, entry, |p| &p.id);
        }
        for planned in models.iter().filter(|m| m.unapplied()) {
            let entry = if planned.holds_reference() {
                self.model(&planned.id).map(|file| ModelSpecification {
                    replacement_model_id: live
                        .model(&planned.id)
                        .and_then(|m| m.replacement_model_id.clone()),
                    ..file.clone()
                })
            } else {
                last.as_ref().and_then(|l| l.model(&planned.id)).cloned()
            };
            put(&mut record.models, &planned.id, entry, |m| &m.id);
        }
        // Fields the file gives but could not read kept their live values:
        // the record keeps what was last applied of them (the last file's,
        // or, for a model the file had not given, the store's). With the
        // file's placeholder (`false`, none) recorded, a later readable
        // value equal to it never applied, and a readable limit held back
        // with an unreadable one read as applied.
        for (id, fields) in &self.report.unreadable_fields {
            let Ok(at) = (record.models).binary_search_by(|m| m.id.as_str().cmp(id)) else {
                continue;
            };
            let applied = last.as_ref().and_then(|l| l.model(id)).or(live.model(id));
            if let Some(applied) = applied {
                record.models[at] = with_fields_of(&record.models[at], applied, &[fields]);
            }
        }
        // An admin's deletion of an entry the file could not read is kept.
        kept += (unreadable_providers.iter())
            .filter(|id| live.provider(id).is_none())
            .count()
            + (unreadable_models.iter())
                .filter(|id| live.model(id).is_none())
                .count();

        let start = draft.events().len();
        for planned in providers {
            kept += planned.kept();
            let Some(next) = planned.choices.into_iter().next() else {
                continue;
            };
            // `emit` gives the entity its revision. A choice that is the
            // live entity already (the reference-free one of an entity still
            // pending) emits nothing.
            match draft.state().provider(&planned.id) {
                None => draft.emit(EventPayload::ProviderAdded(next)),
                Some(current) if same_fields(&next, current, PROVIDER_RUNTIME) => {}
                Some(_) => draft.emit(EventPayload::ProviderUpdated(next)),
            }
        }
        for planned in models {
            kept += planned.kept();
            let Some(next) = planned.choices.into_iter().next() else {
                continue;
            };
            match draft.state().model(&planned.id) {
                None => draft.emit(EventPayload::ModelAdded(next)),
                Some(current) if same_fields(&next, current, MODEL_RUNTIME) => {}
                Some(current) => {
                    let deprecated = !current.is_deprecated() && next.is_deprecated();
                    draft.emit(if deprecated {
                        EventPayload::ModelDeprecated(next)
                    } else {
                        EventPayload::ModelUpdated(next)
                    });
                }
            }
        }
        // The pointers first, knowing which providers go: a file that
        // removes the active provider and names another moves it in one
        // event (the removal cleared it in an event of its own first).
        self.reconcile_pointers(
            draft,
            last.as_deref(),
            adopted,
            &gone_providers,
            &mut kept,
            &mut record,
        );
        for id in &gone_models {
            commands::delete_model(draft, id, None).expect("the model exists");
        }
        for id in &gone_providers {
            commands::delete_provider(draft, id, None).expect("the provider exists");
        }

        // The cuts made whose merge's limits were applied (the merge's, or a
        // partial choice that kept them), where the limit applied is still
        // the cut one, with the revision the model has now; and the last
        // record's cuts of models no write has touched since (one whose
        // change is still pending).
        let now = draft.state();
        let still_cut = |id: &str, cut: &super::CutLimit| {
            now.model(id)
                .filter(|m| m.max_input_tokens == cut.to && m.context_window == cut.to)
        };
        let mut kept_cuts: std::collections::BTreeMap<String, super::CutLimit> = cuts
            .into_iter()
            .filter_map(|(id, cut)| {
                let revision = still_cut(&id, &cut)?.revision;
                Some((id, super::CutLimit { revision, ..cut }))
            })
            .collect();
        if let Some(last) = &last {
            for id in last.cut_limits.keys() {
                // As this reconcile's own events left it: carried through a
                // change of the model's other fields, ended by one of its
                // limits (`Draft::emit`).
                let Some(cut) = draft.cut_of(id) else {
                    continue;
                };
                if !kept_cuts.contains_key(id)
                    && still_cut(id, &cut).is_some_and(|m| m.revision == cut.revision)
                {
                    kept_cuts.insert(id.clone(), cut);
                }
            }
        }
        record.cut_limits = kept_cuts;
        draft.record_catalog(Arc::new(record));
        let mut done = Reconciled {
            outcome: Outcome::Applied,
            kept_edits: kept,
            adopted,
            pending,
            pending_ids,
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
        if done.events == 0 {
            done.outcome = Outcome::Unchanged;
        }
        done
    }

    /// The active and default provider: a value the file does not give, or
    /// did not change since it was last applied, stays as it is; a value
    /// naming a provider that is not there stays as it is too (and is not
    /// recorded as applied).
    fn reconcile_pointers(
        &self,
        draft: &mut Draft,
        last: Option<&Catalog>,
        adopted: bool,
        going: &[String],
        kept: &mut usize,
        record: &mut Catalog,
    ) {
        let state = draft.state();
        let exists = |id: &str| state.provider(id).is_some() && !going.iter().any(|g| g == id);
        let mut pick = |file: &Option<String>,
                        applied: Option<&Option<String>>,
                        live: &Option<String>,
                        recorded: &mut Option<String>| {
            let Some(wanted) = file else {
                return live.clone();
            };
            let unchanged = match applied {
                Some(applied) => applied.as_ref() == Some(wanted),
                None => adopted && live.is_some(),
            };
            // The admin's choice, where the file did not change its own:
            // unless this reconcile removes the admin's provider, when the
            // file's stands in for it (rather than none).
            let displaced = live.as_deref().is_some_and(|id| !exists(id)) && exists(wanted);
            if unchanged && displaced {
                Some(wanted.clone())
            } else if unchanged {
                if live.as_ref() != Some(wanted) {
                    *kept += 1;
                }
                live.clone()
            } else if exists(wanted) {
                Some(wanted.clone())
            } else {
                tracing::warn!(provider = %validate::shown(wanted), "catalog: the active or default provider it names is not there; kept the current one");
                *recorded = applied.cloned().flatten();
                // The current one, unless this reconcile removes it: then
                // the file's choice as last applied, if that is there.
                if live.as_deref().is_some_and(|id| !exists(id)) {
                    recorded.clone().filter(|id| exists(id))
                } else {
                    live.clone()
                }
            }
        };
        let active = pick(
            &self.active_provider_id,
            last.map(|l| &l.active_provider_id),
            &state.active_provider_id,
            &mut record.active_provider_id,
        );
        let default = pick(
            &self.default_provider_id,
            last.map(|l| &l.default_provider_id),
            &state.default_provider_id,
            &mut record.default_provider_id,
        );
        let still = |id: Option<String>| id.filter(|id| exists(id));
        let next = ActiveProviderChanged {
            active_provider_id: still(active),
            default_provider_id: still(default),
        };
        if next.active_provider_id != state.active_provider_id
            || next.default_provider_id != state.default_provider_id
        {
            draft.emit(EventPayload::ActiveProviderChanged(next));
        }
    }
}

/// Sets (or, with `None`, removes) the entity with `id` in a list sorted by
/// id.
fn put<T>(list: &mut Vec<T>, id: &str, value: Option<T>, id_of: impl Fn(&T) -> &String) {
    match (list.binary_search_by(|e| id_of(e).as_str().cmp(id)), value) {
        (Ok(at), Some(value)) => list[at] = value,
        (Ok(at), None) => {
            list.remove(at);
        }
        (Err(at), Some(value)) => list.insert(at, value),
        (Err(_), None) => {}
    }
}

/// Checks every planned entity against the state it will be part of; one
/// that does not pass falls back to its next choice, until everything
/// passes.
fn settle(
    live: &SyncState,
    providers: &mut [Planned<ProviderSyncInfo>],
    models: &mut [Planned<ModelSpecification>],
    gone_p: &HashSet<&str>,
    gone_m: &HashSet<&str>,
) {
    loop {
        let mut target = live.clone();
        // The live lists are sorted by id: each planned entity (one per id)
        // is found by a binary search among them (a linear one made a
        // reconcile quadratic: 8 s for 40k models), a new one appended.
        let live_providers = target.providers.len();
        for p in providers.iter() {
            if let Some(next) = p.choices.first() {
                match target.providers[..live_providers].binary_search_by(|x| x.id.cmp(&p.id)) {
                    Ok(at) => target.providers[at] = next.clone(),
                    Err(_) => target.providers.push(next.clone()),
                }
            }
        }
        let live_models = target.all_models.len();
        for m in models.iter() {
            if let Some(next) = m.choices.first() {
                match target.all_models[..live_models].binary_search_by(|x| x.id.cmp(&m.id)) {
                    Ok(at) => target.all_models[at] = next.clone(),
                    Err(_) => target.all_models.push(next.clone()),
                }
            }
        }
        target.providers.retain(|p| !gone_p.contains(p.id.as_str()));
        target.all_models.retain(|m| {
            !gone_m.contains(m.id.as_str()) && !gone_p.contains(m.provider_id.as_str())
        });
        target.providers.sort_by(|a, b| a.id.cmp(&b.id));
        target.all_models.sort_by(|a, b| a.id.cmp(&b.id));

        let mut fell_back = false;
        // A provider's models, the file's and the API's together, within
        // the most one provider may have: past it, the file's models that
        // would join it (the last first) are left out, as a write through
        // the API would be refused.
        let mut held: HashMap<&str, usize> = HashMap::new();
        for m in &target.all_models {
            *held.entry(m.provider_id.as_str()).or_default() += 1;
        }
        for m in models.iter_mut().rev() {
            let Some(next) = m.choices.first() else {
                continue;
            };
            let joins = live
                .model(&m.id)
                .is_none_or(|old| old.provider_id != next.provider_id);
            let Some(count) = held.get_mut(next.provider_id.as_str()) else {
                continue;
            };
            if joins && *count > validate::MAX_MODELS_PER_PROVIDER {
                tracing::warn!(model = %validate::shown(&m.id), provider = %validate::shown(&next.provider_id), "catalog: the provider would have more than {} models; the model is left out", validate::MAX_MODELS_PER_PROVIDER);
                *count -= 1;
                m.choices.clear();
                m.applies.clear();
                fell_back = true;
            }
        }
        for p in providers.iter_mut() {
            if let Some(next) = p.choices.first()
                && let Err(err) = validate::provider(&target, next, Fields(""))
            {
                tracing::warn!(provider = %validate::shown(&p.id), error = %err, "catalog: a provider does not pass the checks; trying the next choice");
                p.fall_back();
                fell_back = true;
            }
        }
        for m in models.iter_mut() {
            if let Some(next) = m.choices.first()
                && let Err(err) = validate::model(&target, next, Fields(""))
            {
                // Which of the admin's values the next choice gives up for
                // the file's.
                let taken = m.choices.get(1).map_or_else(String::new, |then| {
                    differing_field_names(next, then, MODEL_RUNTIME).join(", ")
                });
                tracing::warn!(model = %validate::shown(&m.id), error = %err, file_values_taken_for = %taken, "catalog: a model does not pass the checks; trying the next choice");
                m.fall_back();
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

/// A model's fields that must agree with each other, taken from the file
/// together when the merge breaks their rules.
const RETIREMENT: &[&str] = &[
    "deprecation_status",
    "deprecation_date",
    "sunset_date",
    "replacement_model_id",
];
/// [`RETIREMENT`] but the replacement.
pub(super) const RETIREMENT_DATES: &[&str] =
    &["deprecation_status", "deprecation_date", "sunset_date"];
pub(super) const LIMITS: &[&str] = &["context_window", "max_input_tokens", "max_output_tokens"];

/// `merged` with the fields of `groups` as `file` has them.
fn with_fields_of(
    merged: &ModelSpecification,
    file: &ModelSpecification,
    groups: &[&[&str]],
) -> ModelSpecification {
    let (mut out, file) = (json(merged), json(file));
    for key in groups.iter().flat_map(|group| group.iter()) {
        match file.get(*key) {
            Some(value) => out.insert((*key).to_owned(), value.clone()),
            None => out.remove(*key),
        };
    }
    serde_json::from_value(Value::Object(out)).expect("a model with another's fields is one")
}

/// The fields (but the runtime ones) in which two versions of an entity
/// differ, by name.
fn differing_field_names<T: Serialize>(a: &T, b: &T, runtime: &[&str]) -> Vec<String> {
    let (a, b) = (json(a), json(b));
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| !runtime.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    names.sort();
    names
}

fn differing_fields<T: Serialize>(a: &T, b: &T, runtime: &[&str]) -> usize {
    differing_field_names(a, b, runtime).len()
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

/// The merge of an entity the file adds while the store has it already
/// (made through the admin API; the file never had it): the fields the file
/// gave apply, the others keep the store's values (they were set to the
/// contract's defaults: a base_url, pricing or flags given through the API
/// were wiped).
fn merge_given<T: Serialize + DeserializeOwned>(
    file: &T,
    given: &HashSet<String>,
    live: &T,
    runtime: &[&str],
    kept: &mut usize,
) -> T {
    let file = json(file);
    let base = given_base(&file, given);
    let merged = merge_maps(&file, Some(&base), &json(live), runtime, kept);
    serde_json::from_value(Value::Object(merged)).expect("a merge of two entities is one")
}

/// The base `merge_given` merges against: a field not given is its own
/// base (unchanged: the store's value stays); in a given object
/// (`pricing`), so is each member it leaves empty (a
/// `cached_input_per_million` set through the API stays).
fn given_base(file: &Map<String, Value>, given: &HashSet<String>) -> Map<String, Value> {
    file.iter()
        .filter_map(|(key, value)| match value {
            _ if !given.contains(key) => Some((key.clone(), value.clone())),
            Value::Object(members) => Some((
                key.clone(),
                Value::Object(
                    members
                        .iter()
                        .filter(|(_, member)| member.is_null())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
            )),
            _ => None,
        })
        .collect()
}

/// A model's token limits, which the contract makes the context window's
/// when a file leaves them out.
const WINDOW_LIMITS: [&str; 2] = ["max_input_tokens", "max_output_tokens"];

/// A model's merge: `merge` against the file as last applied, or
/// `merge_given` for a model the file adds while the store has it (made
/// through the API). With one rule of its own: a token limit the file
/// leaves out is not the file setting it. It follows the file's window
/// where the live limit followed the window (it is still the one last
/// applied; with no record, it equals the live window), and keeps what an
/// admin set otherwise; an input limit past the merged window is cut to it
/// (what a limit left out would be), and given with the cut (`was_cut` of
/// the next reconcile) so that it comes back once the window grows again.
fn merge_model(
    file: &ModelSpecification,
    base: Option<&ModelSpecification>,
    given: Option<&HashSet<String>>,
    live: &ModelSpecification,
    was_cut: Option<&super::CutLimit>,
    kept: &mut usize,
) -> (ModelSpecification, Option<super::CutLimit>) {
    let Some(given) = given else {
        // A date the file brings to a model an admin made active is a
        // conflict in the retirement's fields: the merge fails the checks
        // and the file's retirement is taken whole (with the warning), not
        // its status alone beside the admin's dates.
        return (merge(file, base, live, MODEL_RUNTIME, kept), None);
    };
    let file_map = json(file);
    let mut live_map = json(live);
    // An admin's input limit that a smaller window cut, still as it was cut:
    // the admin's value is the live one (up to the window again below).
    let restored = was_cut.filter(|cut| {
        !given.contains("max_input_tokens")
            && live.max_input_tokens == cut.to
            && live.revision == cut.revision
    });
    if let Some(cut) = restored {
        live_map.insert("max_input_tokens".into(), cut.admin.into());
    }
    // Whether the input limit is the admin's (not the window's).
    let mut admins_input = false;
    let mut base_map = match base {
        Some(base) => json(base),
        None => given_base(&file_map, given),
    };
    for key in WINDOW_LIMITS
        .into_iter()
        .filter(|key| !given.contains(*key))
    {
        let follows = match base {
            _ if key == "max_input_tokens" && restored.is_some() => false,
            Some(_) => base_map.get(key) == live_map.get(key),
            None => live_map.get(key) == live_map.get("context_window"),
        };
        if key == "max_input_tokens" {
            admins_input = !follows;
        }
        if follows {
            // The file's value (the window's) is taken where it differs.
            if base.is_none() {
                base_map.remove(key);
            }
        } else if let Some(value) = file_map.get(key) {
            // As if the file had not changed it: the live value stays.
            base_map.insert(key.to_owned(), value.clone());
        }
    }
    let merged = merge_maps(&file_map, Some(&base_map), &live_map, MODEL_RUNTIME, kept);
    let mut merged: ModelSpecification =
        serde_json::from_value(Value::Object(merged)).expect("a merge of two entities is one");
    let mut cut = None;
    if !given.contains("max_input_tokens") && merged.max_input_tokens > merged.context_window {
        // Past the window: cut; an admin's limit is remembered.
        if admins_input {
            cut = Some(super::CutLimit {
                admin: merged.max_input_tokens,
                to: merged.context_window,
                // The revision the model has once applied (`Catalog::apply`).
                revision: 0,
            });
        }
        merged.max_input_tokens = merged.context_window;
    }
    (merged, cut)
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

#[cfg(test)]
mod tests {
    use provider_sync_protocol::{ModelPatch, NewModel, SyncEvent, SyncState};

    use super::*;

    const FILE: &str = r#"
active_provider_id = "a"

[[providers]]
id = "a"
name = "A"

[[providers]]
id = "b"
name = "B"

[[models]]
id = "m"
provider_id = "a"
name = "M"
context_window = 1000

[[models]]
id = "n"
provider_id = "a"
name = "N"
context_window = 1000
"#;

    /// What a reconcile reports (the start-up log, `catalog diff`): the
    /// store adopted only when it has entries and no record of a file, and
    /// every admin edit the file left alone counted.
    #[test]
    fn the_report_says_when_a_store_was_adopted_and_counts_kept_edits() {
        let file = Catalog::parse("c.toml", FILE).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        let done = file.reconcile(&mut draft);
        assert_eq!(
            (done.outcome, done.added, done.kept_edits, done.adopted),
            (Outcome::Applied, 4, 0, false),
            "an empty store is filled, not adopted"
        );
        // An admin renames the provider and the model `m`, deletes the
        // provider `b` and the model `n`, and clears the active provider.
        let mut edited = draft.state().clone();
        assert_eq!(edited.active_provider_id.as_deref(), Some("a"));
        edited.active_provider_id = None;
        edited.providers.retain(|p| p.id != "b");
        edited.all_models.retain(|m| m.id != "n");
        edited.providers[0].display_name = "Edited A".into();
        edited.all_models[0].name = "Edited".into();

        // The file changes `m`'s window only: applied over the record, the
        // five edits kept.
        let changed = Catalog::parse("c.toml", &FILE.replacen("1000", "2000", 1)).unwrap();
        let mut draft = Draft::scratch(edited.clone(), Some(Arc::new(file.clone())));
        let done = changed.reconcile(&mut draft);
        assert_eq!(
            (done.outcome, done.updated, done.kept_edits, done.adopted),
            (Outcome::Applied, 1, 5, false)
        );
        let state = draft.state();
        assert_eq!(
            (
                state.all_models[0].name.as_str(),
                state.all_models[0].context_window
            ),
            ("Edited", 2000)
        );
        assert_eq!((state.providers.len(), state.all_models.len()), (1, 1));
        assert_eq!(state.active_provider_id, None);

        // The same file again: nothing to apply (no event), and the
        // edits it keeps still counted (it said 0).
        let mut again = Draft::scratch(edited.clone(), Some(Arc::new(file.clone())));
        let done = file.reconcile(&mut again);
        assert_eq!(
            (done.outcome, done.events, done.kept_edits),
            (Outcome::Unchanged, 0, 5)
        );
        assert!(again.events().is_empty());

        // A file that deprecates `m`: a `model_deprecated` event (the one
        // clients announce), not an update; undeprecating it, an update.
        let deprecating = FILE.replacen(
            "context_window = 1000",
            "context_window = 1000\ndeprecation_status = \"deprecated\"",
            1,
        );
        let deprecating = Catalog::parse("c.toml", &deprecating).unwrap();
        let mut draft = Draft::scratch(state.clone(), Some(Arc::new(changed.clone())));
        deprecating.reconcile(&mut draft);
        assert!(
            matches!(draft.events(), [SyncEvent { payload: EventPayload::ModelDeprecated(m), .. }] if m.id == "m"),
            "{:?}",
            draft.events()
        );
        let deprecated = draft.state().clone();
        let mut draft = Draft::scratch(deprecated, Some(Arc::new(deprecating)));
        file.reconcile(&mut draft);
        assert!(
            matches!(draft.events(), [SyncEvent { payload: EventPayload::ModelUpdated(m), .. }] if !m.is_deprecated()),
            "{:?}",
            draft.events()
        );

        // The same store without a record: adopted, its values kept (two
        // edits); `b` and `n`, which it cannot know were deleted, added, and
        // the active provider, which it has none of, set (an update).
        let mut draft = Draft::scratch(edited, None);
        let done = file.reconcile(&mut draft);
        assert_eq!(
            (done.added, done.updated, done.kept_edits, done.adopted),
            (2, 1, 2, true)
        );
    }

    /// A token limit the file leaves out is the context window's (the
    /// contract's default), not the file setting it: it follows the file's
    /// window where the store's limit followed the window, and an admin's
    /// limit stays (an input limit cut to a window that shrank below it).
    /// Before, the window's value replaced every admin-set limit.
    #[test]
    fn token_limits_the_file_leaves_out_keep_what_an_admin_set() {
        let model = |id: &str, window: u32| -> NewModel {
            serde_json::from_value(serde_json::json!({
                "id": id, "name": id, "provider_id": "a", "context_window": window
            }))
            .unwrap()
        };
        let limits = |draft: &Draft, id: &str| {
            let m = draft.state().model(id).unwrap();
            (m.context_window, m.max_input_tokens, m.max_output_tokens)
        };
        let file = Catalog::parse("c.toml", FILE).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        file.reconcile(&mut draft);
        // Through the API: `m`'s output limit narrowed; `x` and `y` made
        // with limits of their own, `z` with none (the window's).
        let narrowed = ModelPatch {
            max_output_tokens: Some(500),
            ..ModelPatch::default()
        };
        commands::update_model(&mut draft, "m", None, narrowed).unwrap();
        let mut x = model("x", 128_000);
        x.max_input_tokens = Some(100_000);
        x.max_output_tokens = Some(4096);
        commands::create_model(&mut draft, x).unwrap();
        let mut y = model("y", 8000);
        y.max_input_tokens = Some(6000);
        commands::create_model(&mut draft, y).unwrap();
        commands::create_model(&mut draft, model("z", 8000)).unwrap();
        let live = draft.state().clone();

        // The file widens `m` and `n` and adds `x`, `y` (narrower than its
        // input limit) and `z`, none with limits.
        let mut text = FILE.replace("context_window = 1000", "context_window = 2000");
        for (id, window) in [("x", 128_000), ("y", 4000), ("z", 16_000)] {
            text.push_str(&format!(
                "\n[[models]]\nid = \"{id}\"\nprovider_id = \"a\"\nname = \"{id} from file\"\ncontext_window = {window}\n"
            ));
        }
        let changed = Catalog::parse("c.toml", &text).unwrap();
        let mut draft = Draft::scratch(live, Some(Arc::new(file)));
        changed.reconcile(&mut draft);
        assert_eq!(
            limits(&draft, "m"),
            (2000, 2000, 500),
            "the admin's output limit kept"
        );
        assert_eq!(
            limits(&draft, "n"),
            (2000, 2000, 2000),
            "untouched limits follow the window"
        );
        assert_eq!(limits(&draft, "x"), (128_000, 100_000, 4096));
        assert_eq!(
            limits(&draft, "y"),
            (4000, 4000, 4000),
            "the input limit cut to the window"
        );
        assert_eq!(limits(&draft, "z"), (16_000, 16_000, 16_000));
        assert_eq!(draft.state().model("x").unwrap().name, "x from file");

        // A file that gives a limit sets it, over an admin's.
        let given = text.replacen(
            "context_window = 2000",
            "context_window = 2000\nmax_output_tokens = 700",
            1,
        );
        let given = Catalog::parse("c.toml", &given).unwrap();
        let mut draft = Draft::scratch(draft.state().clone(), Some(Arc::new(changed)));
        given.reconcile(&mut draft);
        assert_eq!(limits(&draft, "m"), (2000, 2000, 700));
    }

    /// A provider's models, the file's and the API's together, stay within
    /// the most one provider may have: the file's models past it are left
    /// out (the last first) and tried again by the next reconcile, once
    /// there is room. Before, the reconcile went past the bound.
    #[test]
    fn a_reconcile_keeps_a_provider_within_its_most_models() {
        let most = validate::MAX_MODELS_PER_PROVIDER;
        // The second file's first model names its last as its replacement.
        let file_of = |models: usize| {
            let mut text = String::from("[[providers]]\nid = \"a\"\nname = \"A\"\n");
            for i in 0..models {
                text.push_str(&format!(
                    "[[models]]\nid = \"m{i:05}\"\nprovider_id = \"a\"\nname = \"M\"\ncontext_window = 8\n"
                ));
                if i == 0 && models == most {
                    text.push_str(&format!("replacement_model_id = \"m{:05}\"\n", most - 1));
                }
            }
            Catalog::parse("c.toml", &text).unwrap()
        };
        let replacement = |draft: &Draft| {
            draft
                .state()
                .model("m00000")
                .unwrap()
                .replacement_model_id
                .clone()
        };
        let count = |draft: &Draft| draft.state().provider("a").unwrap().model_ids.len();
        let first = file_of(most - 2);
        let mut draft = Draft::scratch(SyncState::default(), None);
        first.reconcile(&mut draft);
        for id in ["x", "y"] {
            let api: NewModel = serde_json::from_value(serde_json::json!({
                "id": id, "name": "X", "provider_id": "a", "context_window": 8
            }))
            .unwrap();
            commands::create_model(&mut draft, api).unwrap();
        }
        assert_eq!(count(&draft), most);

        // Two more in the file: both left out.
        let second = file_of(most);
        let mut draft = Draft::scratch(draft.state().clone(), Some(Arc::new(first)));
        let done = second.reconcile(&mut draft);
        assert_eq!(
            (done.added, done.pending),
            (0, 3),
            "two left out, one without its replacement"
        );
        assert_eq!(
            done.pending_ids,
            [
                "m00000".to_owned(),
                format!("m{:05}", most - 2),
                format!("m{:05}", most - 1)
            ]
        );
        assert_eq!(count(&draft), most);
        let record = draft.recorded_catalog().unwrap();
        assert_eq!(
            record.models.len(),
            most - 2,
            "the record keeps them unapplied"
        );

        // One of the API's models goes: the same file again adds the first
        // of the two, not the second.
        commands::delete_model(&mut draft, "x", None).unwrap();
        let mut draft = Draft::scratch(draft.state().clone(), Some(record));
        let done = second.reconcile(&mut draft);
        assert_eq!(done.added, 1);
        assert_eq!(count(&draft), most);
        let (added, left_out) = (format!("m{:05}", most - 2), format!("m{:05}", most - 1));
        assert!(draft.state().model(&added).is_some(), "{added}");
        assert!(draft.state().model(&left_out).is_none(), "{left_out}");
        // The model that names it as its replacement was applied without
        // the reference, and kept unapplied in the record.
        assert_eq!(replacement(&draft), None);
        // Again with no room: nothing emitted (the model without its
        // replacement was sent again, unchanged, by every reconcile).
        let record = draft.recorded_catalog().unwrap();
        let mut again = Draft::scratch(draft.state().clone(), Some(record));
        let done = second.reconcile(&mut again);
        assert_eq!((done.events, done.pending), (0, 2), "{:?}", again.events());

        // The other goes too: the last model is added, and the reference
        // to it set (it stayed unset: the record said it was applied).
        let record = draft.recorded_catalog().unwrap();
        commands::delete_model(&mut draft, "y", None).unwrap();
        let mut draft = Draft::scratch(draft.state().clone(), Some(record));
        let done = second.reconcile(&mut draft);
        assert_eq!(done.added, 1);
        assert!(draft.state().model(&left_out).is_some(), "{left_out}");
        assert_eq!(replacement(&draft), Some(left_out));
        let record = draft.recorded_catalog().unwrap();
        assert!(record.same_content(&second), "all of the file applied");
    }

    /// A file that removes the active provider and names another moves the
    /// pointer in one event: the removal no longer clears it in an event of
    /// its own first.
    #[test]
    fn removing_the_active_provider_for_another_is_one_pointer_event() {
        let file = Catalog::parse("c.toml", FILE).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        file.reconcile(&mut draft);
        let state = draft.state().clone();
        assert_eq!(state.active_provider_id.as_deref(), Some("a"));
        let without_a = r#"
active_provider_id = "b"

[[providers]]
id = "b"
name = "B"
"#;
        let next = Catalog::parse("c.toml", without_a).unwrap();
        let mut draft = Draft::scratch(state, Some(Arc::new(file)));
        next.reconcile(&mut draft);
        let pointers: Vec<&ActiveProviderChanged> = draft
            .events()
            .iter()
            .filter_map(|e| match &e.payload {
                EventPayload::ActiveProviderChanged(change) => Some(change),
                _ => None,
            })
            .collect();
        assert_eq!(
            pointers,
            [&ActiveProviderChanged {
                active_provider_id: Some("b".into()),
                default_provider_id: None,
            }],
            "{:?}",
            draft.events()
        );
        assert_eq!(draft.state().active_provider_id.as_deref(), Some("b"));
        assert!(draft.state().provider("a").is_none());
    }

    /// A changed model is checked against the state it will be part of:
    /// its replacement, which the file keeps, is there, so the change
    /// applies whole (not its fallback without the reference).
    #[test]
    fn a_changed_model_keeps_a_replacement_the_file_keeps() {
        let file = r#"
[[providers]]
id = "a"
name = "A"

[[models]]
id = "m-new"
provider_id = "a"
name = "New"
context_window = 1000

[[models]]
id = "m-old"
provider_id = "a"
name = "Old"
context_window = 1000
replacement_model_id = "m-new"
"#;
        let first = Catalog::parse("c.toml", file).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        first.reconcile(&mut draft);
        let state = draft.state().clone();
        let renamed = Catalog::parse("c.toml", &file.replace("\"Old\"", "\"Older\"")).unwrap();
        let mut draft = Draft::scratch(state, Some(Arc::new(first)));
        let done = renamed.reconcile(&mut draft);
        assert_eq!(done.updated, 1);
        let old = draft.state().model("m-old").unwrap();
        assert_eq!(old.name, "Older");
        assert_eq!(old.replacement_model_id.as_deref(), Some("m-new"));
    }

    /// A reference to a model that goes with a provider the file removes is
    /// cleared like one to a model the file removes: the admin's other edits
    /// of the referring model stay, and so do references to models the
    /// file never had.
    #[test]
    fn a_reference_to_a_model_of_a_removed_provider_costs_no_other_edit() {
        let model = |id: &str, provider: &str| {
            format!(
                "[[models]]\nid = \"{id}\"\nprovider_id = \"{provider}\"\nname = \"{id}\"\ncontext_window = 1000\n"
            )
        };
        let a = "[[providers]]\nid = \"a\"\nname = \"A\"\n";
        let x = "[[providers]]\nid = \"x\"\nname = \"X\"\n";
        let text = [a, x, &model("m", "a"), &model("p", "a"), &model("w", "x")].concat();
        let first = Catalog::parse("c.toml", &text).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        first.reconcile(&mut draft);
        // The admin renames `m` and names `w` its replacement, adds a model
        // of its own, and names that `p`'s replacement.
        let mut edited = draft.state().clone();
        let mut own = edited.model("p").unwrap().clone();
        own.id = "own".into();
        edited.all_models.push(own);
        edited.all_models.sort_by(|x, y| x.id.cmp(&y.id));
        edited.providers[0].model_ids.push("own".into());
        edited.providers[0].model_ids.sort();
        for model in &mut edited.all_models {
            match model.id.as_str() {
                "m" => {
                    model.name = "Renamed".into();
                    model.replacement_model_id = Some("w".into());
                }
                "p" => model.replacement_model_id = Some("own".into()),
                _ => {}
            }
        }

        // The file drops `x` (and `w` with it) and widens `m`.
        let text = [
            a,
            &model("m", "a").replace("1000", "2000"),
            &model("p", "a"),
        ]
        .concat();
        let next = Catalog::parse("c.toml", &text).unwrap();
        let mut draft = Draft::scratch(edited, Some(Arc::new(first)));
        let done = next.reconcile(&mut draft);
        let state = draft.state();
        assert!(state.provider("x").is_none() && state.model("w").is_none());
        let m = state.model("m").unwrap();
        assert_eq!(
            (
                m.name.as_str(),
                m.context_window,
                m.replacement_model_id.as_deref()
            ),
            ("Renamed", 2000, None)
        );
        let p = state.model("p").unwrap();
        assert_eq!(p.replacement_model_id.as_deref(), Some("own"));
        // The rename, `p`'s reference, and `m`'s reference, which the merge
        // kept before the removal cleared it.
        assert_eq!(done.kept_edits, 3);
    }

    /// From a review (2026-12-04): a reference the file changes to what an
    /// admin deleted waits with the live one; where that live one is an
    /// admin's own choice, keeping it keeps an admin edit, and the report
    /// counts it (it did not).
    #[test]
    fn a_held_reference_an_admin_chose_counts_as_a_kept_edit() {
        let model = |id: &str, extra: &str| {
            format!(
                "[[models]]\nid = \"{id}\"\nprovider_id = \"a\"\nname = \"{id}\"\ncontext_window = 1000\n{extra}"
            )
        };
        let provider = |id: &str, extra: &str| {
            format!("[[providers]]\nid = \"{id}\"\nname = \"{id}\"\n{extra}")
        };
        let retired = |to: &str| {
            format!("deprecation_date = \"2026-01-01\"\nreplacement_model_id = \"{to}\"\n")
        };
        // Without the provider `c` and the model `z` when `whole` is false.
        let text_of = |fallback: &str, to: &str, whole: bool| {
            [
                provider("a", &format!("fallback_provider_id = \"{fallback}\"\n")),
                provider("b", ""),
                if whole {
                    provider("c", "")
                } else {
                    String::new()
                },
                provider("d", ""),
                model("m", &retired(to)),
                model("n", ""),
                model("y", ""),
                if whole { model("z", "") } else { String::new() },
            ]
            .concat()
        };
        let text = |fallback: &str, to: &str| text_of(fallback, to, true);
        let first = Catalog::parse("c.toml", &text("b", "n")).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        first.reconcile(&mut draft);
        // The admin points both references elsewhere, and deletes the
        // provider `d` and the model `y`.
        let mut edited = draft.state().clone();
        edited.providers.retain(|p| p.id != "d");
        edited.all_models.retain(|m| m.id != "y");
        for p in &mut edited.providers {
            p.model_ids.retain(|id| id != "y");
            if p.id == "a" {
                p.fallback_provider_id = Some("c".into());
            }
        }
        for m in &mut edited.all_models {
            if m.id == "m" {
                m.replacement_model_id = Some("z".into());
            }
        }
        // The file points them at what the admin deleted.
        let next = Catalog::parse("c.toml", &text("d", "y")).unwrap();
        let mut draft = Draft::scratch(edited.clone(), Some(Arc::new(first.clone())));
        let done = next.reconcile(&mut draft);
        let state = draft.state();
        assert_eq!(
            state.provider("a").unwrap().fallback_provider_id.as_deref(),
            Some("c")
        );
        assert_eq!(
            state.model("m").unwrap().replacement_model_id.as_deref(),
            Some("z")
        );
        assert_eq!(done.pending, 2);
        // Named, for the log and `catalog diff` (they were only counted).
        assert_eq!(done.pending_ids, ["a", "m"]);
        // The two deletions and the two references the admin chose.
        assert_eq!(done.kept_edits, 4);

        // From a review (2026-12-05): the same file, but removing the
        // admin's choices (`c` and `z`), clears both references; they are
        // not kept, and were counted as kept.
        let next = Catalog::parse("c.toml", &text_of("d", "y", false)).unwrap();
        let mut draft = Draft::scratch(edited, Some(Arc::new(first)));
        let done = next.reconcile(&mut draft);
        let state = draft.state();
        assert_eq!(state.provider("a").unwrap().fallback_provider_id, None);
        assert_eq!(state.model("m").unwrap().replacement_model_id, None);
        assert!(state.provider("c").is_none() && state.model("z").is_none());
        assert_eq!(done.kept_edits, 2, "the two deletions only");
    }

    /// A model the file has but cannot read stays where the store has it,
    /// unless the file removes its provider: then it goes with it, is not
    /// counted as pending, and is not kept in the record (where it read as
    /// an admin's deletion, so the file having it whole again did not
    /// bring it back).
    #[test]
    fn an_unreadable_model_of_a_removed_provider_goes_with_it() {
        let file = Catalog::parse("c.toml", FILE).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        file.reconcile(&mut draft);
        let live = draft.state().clone();
        // Provider `a` is gone from the file; its model `m` is in it, but
        // cannot be read.
        let mut next =
            Catalog::parse("c.toml", "[[providers]]\nid = \"b\"\nname = \"B\"\n").unwrap();
        next.report.unreadable_models.insert("m".to_owned());
        let mut draft = Draft::scratch(live, Some(Arc::new(file.clone())));
        let done = next.reconcile(&mut draft);
        assert!(draft.state().provider("a").is_none());
        assert!(draft.state().model("m").is_none());
        assert_eq!(done.pending, 0);
        let record = draft.recorded_catalog().unwrap();
        assert!(record.model("m").is_none());
        // The file whole again brings both models back.
        let live = draft.state().clone();
        let mut draft = Draft::scratch(live, Some(record));
        let done = file.reconcile(&mut draft);
        assert!(draft.state().model("m").is_some(), "{done:?}");
        assert!(draft.state().model("n").is_some(), "{done:?}");
    }

    /// From a review (2026-12-05): a model an admin deleted, in a file
    /// that cannot read one of its fields, came back: the field's
    /// placeholder (`false`) read as the file's change. It stays deleted;
    /// a readable change of another field still brings it back, with the
    /// last applied value of the unreadable one.
    #[test]
    fn a_deleted_model_with_an_unreadable_field_stays_deleted() {
        let vision = |on: bool, window: u32| {
            FILE.replacen(
                "context_window = 1000",
                &format!("context_window = {window}\nsupports_vision = {on}"),
                1,
            )
        };
        let file = Catalog::parse("c.toml", &vision(true, 1000)).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        file.reconcile(&mut draft);
        let mut edited = draft.state().clone();
        edited.all_models.retain(|m| m.id != "m");
        for p in &mut edited.providers {
            p.model_ids.retain(|id| id != "m");
        }
        let unreadable = |window: u32| {
            let mut next = Catalog::parse("c.toml", &vision(false, window)).unwrap();
            next.report
                .unreadable_fields
                .insert("m".to_owned(), vec!["supports_vision"]);
            next
        };
        let mut draft = Draft::scratch(edited.clone(), Some(Arc::new(file.clone())));
        let done = unreadable(1000).reconcile(&mut draft);
        assert!(draft.state().model("m").is_none(), "{done:?}");
        assert_eq!(done.kept_edits, 1, "the deletion");
        let record = draft.recorded_catalog().unwrap();
        assert!(record.model("m").unwrap().supports_vision);
        let mut draft = Draft::scratch(edited, Some(Arc::new(file)));
        unreadable(2000).reconcile(&mut draft);
        let m = draft.state().model("m").expect("the file's change");
        assert!(m.supports_vision && m.context_window == 2000, "{m:?}");
    }

    /// A remembered cut follows the writes to its model (`Draft::emit`):
    /// carried, with the model's new revision, through one that leaves the
    /// limits alone and does not name them; ended by one that changes or
    /// names them, or removes the model; and not carried once it no longer
    /// stands (the model written since by a write that did not carry it).
    #[test]
    fn a_remembered_cut_is_carried_or_ended_by_the_writes_to_its_model() {
        let file = Catalog::parse("c.toml", FILE).unwrap();
        let mut draft = Draft::scratch(SyncState::default(), None);
        file.reconcile(&mut draft);
        let state = draft.state().clone();
        let revision = |id: &str| state.model(id).unwrap().revision;
        let mut record = file.clone();
        for id in ["m", "n"] {
            let cut = super::super::CutLimit {
                admin: 6000,
                to: 1000,
                revision: revision(id),
            };
            record.cut_limits.insert(id.to_owned(), cut);
        }
        let record = Arc::new(record);
        let fresh = || Draft::scratch(state.clone(), Some(record.clone()));
        let patch = |json: serde_json::Value| serde_json::from_value::<ModelPatch>(json).unwrap();
        let rename = |draft: &mut Draft| {
            let renamed = patch(serde_json::json!({"name": "Team"}));
            commands::update_model(draft, "m", None, renamed).unwrap();
        };

        // A rename carries the cut: the record written has the new revision.
        let mut draft = fresh();
        rename(&mut draft);
        let carried = draft.cut_of("m").unwrap();
        assert_eq!(carried.revision, draft.state().model("m").unwrap().revision);
        assert_ne!(carried.revision, revision("m"));
        assert_eq!(
            draft.cut_of("n").unwrap().revision,
            revision("n"),
            "the other untouched"
        );
        // A write that changes nothing writes no record.
        let mut draft = fresh();
        commands::update_model(
            &mut draft,
            "m",
            None,
            patch(serde_json::json!({"name": "M"})),
        )
        .unwrap();
        assert!(draft.is_empty());
        assert!(draft.recorded_catalog().is_none());

        // Ends it: naming the limits (even as they are, beside a rename),
        // changing them, deleting the model, deleting its provider.
        let ends: [&dyn Fn(&mut Draft); 4] = [
            &|d| {
                let named = patch(serde_json::json!({"name": "Team", "max_input_tokens": 1000}));
                commands::update_model(d, "m", None, named).unwrap();
            },
            &|d| {
                let narrowed = patch(serde_json::json!({"max_output_tokens": 10}));
                commands::update_model(d, "m", None, narrowed).unwrap();
            },
            &|d| commands::delete_model(d, "m", None).unwrap(),
            &|d| commands::delete_provider(d, "a", None).unwrap(),
        ];
        for (i, end) in ends.iter().enumerate() {
            let mut draft = fresh();
            end(&mut draft);
            assert!(draft.cut_of("m").is_none(), "write {i}");
            let written = draft.recorded_catalog().expect("the record written again");
            assert!(!written.cut_limits.contains_key("m"), "write {i}");
        }

        // A cut whose model was written since without it being carried (by
        // an instance holding an older record) does not stand: a rename
        // now ends it rather than carrying it.
        let mut moved = state.clone();
        moved
            .all_models
            .iter_mut()
            .find(|m| m.id == "m")
            .unwrap()
            .revision += 100;
        let mut draft = Draft::scratch(moved, Some(record.clone()));
        rename(&mut draft);
        assert!(draft.cut_of("m").is_none());
    }
}
