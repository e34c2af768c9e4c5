//! The catalog file: parse and check it (naming the line and field at
//! fault), then reconcile a store with it so that only the differences become
//! events.
//!
//! The file is TOML: optional `active_provider_id` / `default_provider_id`,
//! then `[[providers]]` tables (the admin API's create-provider fields) and
//! `[[models]]` tables (its create-model fields, `provider_id` included).
//! The file is authoritative for every provider and model: entries missing
//! from it are removed. A provider's status is runtime state: the file's
//! `status` only sets the status of a provider it creates.

use std::path::Path;

use provider_sync_protocol::{
    ActiveProviderChanged, EventPayload, ModelRemoved, ModelSpecification, NewModel, NewProvider,
    ProviderRemoved, ProviderSyncInfo, SyncState,
};
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::commands::{model_from, provider_from};
use crate::error::Error;
use crate::service::Draft;
use crate::validate::{self, Fields};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    active_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    default_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    providers: Vec<Spanned<NewProvider>>,
    #[serde(default)]
    models: Vec<Spanned<NewModel>>,
}

/// A checked catalog, ready to reconcile.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub providers: Vec<ProviderSyncInfo>,
    pub models: Vec<ModelSpecification>,
    /// `None`: the file does not say; the store's value stays.
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct CatalogError {
    pub path: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

/// What a reconcile changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub events: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
            path: path.display().to_string(),
            line: None,
            field: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Self, CatalogError> {
        let refuse =
            |span: Option<std::ops::Range<usize>>, field: Option<String>, message| CatalogError {
                path: path.to_owned(),
                line: span.map(|s| line_of(text, s.start)),
                field,
                message,
            };
        let file: CatalogFile = toml::from_str(text)
            .map_err(|e| refuse(e.span(), None, e.message().trim().to_owned()))?;

        let mut state = SyncState::default();
        let mut seen = std::collections::HashSet::new();
        for (i, entry) in file.providers.iter().enumerate() {
            if !seen.insert(entry.get_ref().id.as_str()) {
                return Err(refuse(
                    Some(entry.span()),
                    Some(format!("providers[{i}].id")),
                    format!("provider '{}' is listed twice", entry.get_ref().id),
                ));
            }
            state.providers.push(provider_from(entry.get_ref().clone()));
        }
        seen.clear();
        for (i, entry) in file.models.iter().enumerate() {
            if !seen.insert(entry.get_ref().id.as_str()) {
                return Err(refuse(
                    Some(entry.span()),
                    Some(format!("models[{i}].id")),
                    format!("model '{}' is listed twice", entry.get_ref().id),
                ));
            }
            state.all_models.push(model_from(entry.get_ref().clone()));
        }
        state.normalize();

        let as_catalog_error = |span, err: Error| match err {
            Error::Invalid { field, message } => refuse(Some(span), Some(field), message),
            other => refuse(Some(span), None, other.to_string()),
        };
        for (i, entry) in file.providers.iter().enumerate() {
            let provider = state.provider(&entry.get_ref().id).expect("just added");
            let at = format!("providers[{i}].");
            validate::provider(&state, provider, Fields(&at))
                .map_err(|e| as_catalog_error(entry.span(), e))?;
        }
        for (i, entry) in file.models.iter().enumerate() {
            let model = state.model(&entry.get_ref().id).expect("just added");
            let at = format!("models[{i}].");
            validate::model(&state, model, Fields(&at))
                .map_err(|e| as_catalog_error(entry.span(), e))?;
        }
        for (field, pointer) in [
            ("active_provider_id", &file.active_provider_id),
            ("default_provider_id", &file.default_provider_id),
        ] {
            if let Some(id) = pointer
                && state.provider(id.get_ref()).is_none()
            {
                return Err(refuse(
                    Some(id.span()),
                    Some(field.to_owned()),
                    format!("no provider '{}' in the file", id.get_ref()),
                ));
            }
        }
        Ok(Self {
            providers: state.providers,
            models: state.all_models,
            active_provider_id: file.active_provider_id.map(Spanned::into_inner),
            default_provider_id: file.default_provider_id.map(Spanned::into_inner),
        })
    }

    /// Emits the fewest events that make the draft's state match the file.
    pub fn reconcile(&self, draft: &mut Draft) -> Reconciled {
        let before = draft.state().metadata.version;
        for wanted in &self.providers {
            match draft.state().provider(&wanted.id) {
                None => draft.emit(EventPayload::ProviderAdded(wanted.clone())),
                Some(current) => {
                    let mut next = wanted.clone();
                    next.status = current.status;
                    next.health = current.health.clone();
                    next.revision = current.revision;
                    next.model_ids = current.model_ids.clone();
                    if &next != current {
                        next.revision += 1;
                        draft.emit(EventPayload::ProviderUpdated(next));
                    }
                }
            }
        }
        for wanted in &self.models {
            match draft.state().model(&wanted.id) {
                None => draft.emit(EventPayload::ModelAdded(wanted.clone())),
                Some(current) => {
                    let mut next = wanted.clone();
                    next.revision = current.revision;
                    if &next != current {
                        next.revision += 1;
                        let deprecated = !current.is_deprecated() && next.is_deprecated();
                        draft.emit(if deprecated {
                            EventPayload::ModelDeprecated(next)
                        } else {
                            EventPayload::ModelUpdated(next)
                        });
                    }
                }
            }
        }
        let in_file_provider = |id: &str| self.providers.iter().any(|p| p.id == id);
        let in_file_model = |id: &str| {
            self.models
                .binary_search_by(|m| m.id.as_str().cmp(id))
                .is_ok()
        };
        // Models of removed providers go with their provider's event.
        let stale_models: Vec<ModelRemoved> = draft
            .state()
            .all_models
            .iter()
            .filter(|m| !in_file_model(&m.id) && in_file_provider(&m.provider_id))
            .map(|m| ModelRemoved {
                model_id: m.id.clone(),
                provider_id: m.provider_id.clone(),
            })
            .collect();
        for removed in stale_models {
            draft.emit(EventPayload::ModelRemoved(removed));
        }
        let stale_providers: Vec<ProviderRemoved> = draft
            .state()
            .providers
            .iter()
            .filter(|p| !in_file_provider(&p.id))
            .map(|p| ProviderRemoved {
                provider_id: p.id.clone(),
                model_ids: p.model_ids.clone(),
            })
            .collect();
        for removed in stale_providers {
            draft.emit(EventPayload::ProviderRemoved(removed));
        }
        let state = draft.state();
        let keep_if_unset = |from_file: &Option<String>, current: &Option<String>| {
            from_file
                .clone()
                .or_else(|| current.clone().filter(|id| in_file_provider(id)))
        };
        let next = ActiveProviderChanged {
            active_provider_id: keep_if_unset(&self.active_provider_id, &state.active_provider_id),
            default_provider_id: keep_if_unset(
                &self.default_provider_id,
                &state.default_provider_id,
            ),
        };
        if next.active_provider_id != state.active_provider_id
            || next.default_provider_id != state.default_provider_id
        {
            draft.emit(EventPayload::ActiveProviderChanged(next));
        }
        Reconciled {
            events: (draft.state().metadata.version - before) as usize,
        }
    }
}
