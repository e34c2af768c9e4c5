//! The admin API's writes, each turned into the events it emits on a draft.
//! Every function checks before it emits, so an error leaves the draft empty
//! and nothing is committed.

use provider_sync_protocol::{
    ActiveProviderChanged, DeprecateModel, DeprecationStatus, EventPayload, ModelPatch,
    ModelRemoved, ModelSpecification, NewModel, NewProvider, ProviderHealth, ProviderPatch,
    ProviderRemoved, ProviderStatus, ProviderStatusChanged, ProviderSyncInfo, SetActiveProvider,
    StatusUpdate,
};

use crate::error::{Error, Result};
use crate::revision;
use crate::service::Draft;
use crate::validate::{self, Fields};

const BODY: Fields<'static> = Fields("");

/// Refuses a provider write whose `If-Match` names a revision the provider
/// has changed since, other than by the health probes.
fn check_provider(draft: &Draft, if_match: Option<u64>, current: &ProviderSyncInfo) -> Result<()> {
    let operator = draft.operator_revisions().of(current);
    revision::check(if_match, operator, current.revision, current)
}

/// Refuses a model write whose `If-Match` names another revision.
fn check_model(if_match: Option<u64>, current: &ModelSpecification) -> Result<()> {
    revision::check(if_match, current.revision, current.revision, current)
}

/// The checks of a provider write, each with the status that fits it: a
/// field that is not acceptable on its own 422, a fallback that does not
/// exist 404 (naming the field), a fallback that is the provider itself 422.
/// `current`: the provider an update starts from; the fields that keep its
/// values are not checked again (an earlier release's store may hold
/// values the checks refuse now).
fn check_provider_write(
    draft: &Draft,
    next: &ProviderSyncInfo,
    current: Option<&ProviderSyncInfo>,
) -> Result<()> {
    validate::provider_fields_since(next, current, BODY)?;
    if let Some(fallback) = &next.fallback_provider_id
        && fallback != &next.id
        && draft.state().provider(fallback).is_none()
    {
        return Err(Error::missing("fallback_provider_id", "provider", fallback));
    }
    validate::provider_references(draft.state(), next, BODY)
}

/// The checks of a model write, each with the status that fits it: a field
/// that is not acceptable on its own 422; a provider or replacement that
/// does not exist 404 (naming the field); a rule between two fields (the
/// input limit within the context window, the sunset not before the
/// deprecation) 422 when the request set both, and 409 with the current
/// model when it contradicts a value the model keeps (`sent` tells which
/// fields the request set; `current` is the model before the write).
fn check_model_write(
    draft: &Draft,
    next: &ModelSpecification,
    current: Option<&ModelSpecification>,
    sent: impl Fn(&str) -> bool,
) -> Result<()> {
    validate::model_fields_since(next, current, BODY)?;
    if draft.state().provider(&next.provider_id).is_none() {
        return Err(Error::missing("provider_id", "provider", &next.provider_id));
    }
    if let Some(replacement) = &next.replacement_model_id
        && replacement != &next.id
        && draft.state().model(replacement).is_none()
    {
        return Err(Error::missing("replacement_model_id", "model", replacement));
    }
    validate::model_references(draft.state(), next, BODY)?;
    let Some(broken) = validate::model_relations(next) else {
        return Ok(());
    };
    let [field, other] = broken.fields;
    match current {
        // A model that broke this rule already (stored by an earlier
        // release) still takes edits of its other fields.
        Some(current)
            if !sent(field)
                && !sent(other)
                && validate::model_relations(current)
                    .is_some_and(|c| c.fields == broken.fields) =>
        {
            Ok(())
        }
        Some(current) if !(sent(field) && sent(other)) => {
            let kept = if sent(field) { other } else { field };
            Err(Error::contradicts(
                if sent(field) { field } else { other },
                format!(
                    "{field} {}: the model keeps its {kept}; change both in one request",
                    broken.message
                ),
                current,
            ))
        }
        _ => Err(Error::invalid(field, broken.message)),
    }
}

fn provider_of(draft: &Draft, id: &str) -> Result<ProviderSyncInfo> {
    draft
        .state()
        .provider(id)
        .cloned()
        .ok_or_else(|| Error::not_found("provider", id))
}

fn model_of(draft: &Draft, id: &str) -> Result<ModelSpecification> {
    draft
        .state()
        .model(id)
        .cloned()
        .ok_or_else(|| Error::not_found("model", id))
}

/// A new provider from a create body (admin API or catalog file): the
/// defaults of the contract applied. Unmonitored providers (no health URL)
/// are assumed available; monitored ones are unknown until probed.
pub fn provider_from(body: NewProvider) -> ProviderSyncInfo {
    let status = body.status.unwrap_or(if body.health_url.is_some() {
        ProviderStatus::Unknown
    } else {
        ProviderStatus::Available
    });
    ProviderSyncInfo {
        display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
        id: body.id,
        name: body.name,
        provider_type: body
            .provider_type
            .unwrap_or_else(|| "openai_compatible".into()),
        base_url: body.base_url,
        health_url: body.health_url,
        enabled: body.enabled.unwrap_or(true),
        priority: body.priority.unwrap_or(0),
        status,
        health: ProviderHealth::default(),
        fallback_provider_id: body.fallback_provider_id,
        capabilities: body.capabilities.unwrap_or_default(),
        model_ids: Vec::new(),
        // `Draft::emit` gives the provider its revision when it is added.
        revision: 1,
    }
}

/// A new model from a create body, with the contract's defaults.
pub fn model_from(body: NewModel) -> ModelSpecification {
    let deprecation_status = body.deprecation_status.unwrap_or(
        if body.deprecation_date.is_some() || body.sunset_date.is_some() {
            DeprecationStatus::Deprecated
        } else {
            DeprecationStatus::Active
        },
    );
    ModelSpecification {
        id: body.id,
        name: body.name,
        provider_id: body.provider_id,
        context_window: body.context_window,
        max_input_tokens: body.max_input_tokens.unwrap_or(body.context_window),
        max_output_tokens: body.max_output_tokens.unwrap_or(body.context_window),
        supports_streaming: body.supports_streaming.unwrap_or(false),
        supports_vision: body.supports_vision.unwrap_or(false),
        supports_function_calling: body.supports_function_calling.unwrap_or(false),
        supports_json_mode: body.supports_json_mode.unwrap_or(false),
        supports_reasoning: body.supports_reasoning.unwrap_or(false),
        pricing: body.pricing,
        deprecation_status,
        deprecation_date: body.deprecation_date,
        sunset_date: body.sunset_date,
        replacement_model_id: body.replacement_model_id,
        // `Draft::emit` gives the model its revision when it is added.
        revision: 1,
    }
}

pub fn create_provider(draft: &mut Draft, body: NewProvider) -> Result<ProviderSyncInfo> {
    if draft.state().provider(&body.id).is_some() {
        return Err(Error::Conflict(format!(
            "provider '{}' already exists",
            body.id
        )));
    }
    let provider = provider_from(body);
    check_provider_write(draft, &provider, None)?;
    draft.emit(EventPayload::ProviderAdded(provider.clone()));
    provider_of(draft, &provider.id)
}

pub fn update_provider(
    draft: &mut Draft,
    id: &str,
    if_match: Option<u64>,
    patch: ProviderPatch,
) -> Result<ProviderSyncInfo> {
    let current = provider_of(draft, id)?;
    check_provider(draft, if_match, &current)?;
    let mut next = current.clone();
    if let Some(v) = patch.name {
        next.name = v;
    }
    if let Some(v) = patch.display_name {
        next.display_name = v;
    }
    if let Some(v) = patch.provider_type {
        next.provider_type = v;
    }
    if let Some(v) = patch.base_url {
        next.base_url = v;
    }
    if let Some(v) = patch.health_url {
        next.health_url = v;
    }
    if let Some(v) = patch.enabled {
        next.enabled = v;
    }
    if let Some(v) = patch.priority {
        next.priority = v;
    }
    if let Some(v) = patch.fallback_provider_id {
        next.fallback_provider_id = v;
    }
    if let Some(v) = patch.capabilities {
        next.capabilities = v;
    }
    // Another endpoint, or probes starting again: the probes' failure
    // streak (which they go on from after a restart) starts again too.
    if next.health_url != current.health_url || (next.enabled && !current.enabled) {
        next.health.consecutive_failures = 0;
    }
    if next == current {
        return Ok(current);
    }
    check_provider_write(draft, &next, Some(&current))?;
    draft.emit(EventPayload::ProviderUpdated(next));
    provider_of(draft, id)
}

/// Removes a provider and its models; what pointed at them (fallbacks,
/// replacements, the active and default provider) is cleared first, so
/// nothing is left dangling.
pub fn delete_provider(draft: &mut Draft, id: &str, if_match: Option<u64>) -> Result<()> {
    let current = provider_of(draft, id)?;
    check_provider(draft, if_match, &current)?;
    let referrers: Vec<ProviderSyncInfo> = draft
        .state()
        .providers
        .iter()
        .filter(|p| p.id != id && p.fallback_provider_id.as_deref() == Some(id))
        .cloned()
        .collect();
    for mut provider in referrers {
        provider.fallback_provider_id = None;
        draft.emit(EventPayload::ProviderUpdated(provider));
    }
    clear_replacements(
        draft,
        |m| current.model_ids.iter().any(|gone| gone == m),
        id,
    );
    draft.emit(EventPayload::ProviderRemoved(ProviderRemoved {
        provider_id: id.to_owned(),
        model_ids: current.model_ids.clone(),
    }));
    clear_pointers(draft, id);
    Ok(())
}

/// Clears `replacement_model_id` on models of other providers than
/// `except_provider` whose replacement is going away.
fn clear_replacements(draft: &mut Draft, going: impl Fn(&str) -> bool, except_provider: &str) {
    let referrers: Vec<ModelSpecification> = draft
        .state()
        .all_models
        .iter()
        .filter(|m| {
            m.provider_id != except_provider
                && m.replacement_model_id.as_deref().is_some_and(&going)
        })
        .cloned()
        .collect();
    for mut model in referrers {
        model.replacement_model_id = None;
        draft.emit(EventPayload::ModelUpdated(model));
    }
}

fn clear_pointers(draft: &mut Draft, id: &str) {
    let state = draft.state();
    let active = state.active_provider_id.clone().filter(|p| p != id);
    let default = state.default_provider_id.clone().filter(|p| p != id);
    if active != state.active_provider_id || default != state.default_provider_id {
        draft.emit(EventPayload::ActiveProviderChanged(ActiveProviderChanged {
            active_provider_id: active,
            default_provider_id: default,
        }));
    }
}

/// Sets a provider's status by hand (for example `maintenance`).
pub fn set_status(
    draft: &mut Draft,
    id: &str,
    if_match: Option<u64>,
    update: StatusUpdate,
) -> Result<ProviderSyncInfo> {
    let current = provider_of(draft, id)?;
    check_provider(draft, if_match, &current)?;
    if let Some(message) = &update.message {
        validate::text_within(BODY, "message", message, validate::MAX_MESSAGE)?;
    }
    validate::known(
        BODY,
        "status",
        update.status.as_str(),
        ProviderStatus::KNOWN,
    )?;
    if current.status == update.status && current.health.message == update.message {
        return Ok(current);
    }
    // The operator's word starts the probes' failure streak again (they go
    // on from the stored one after a restart: not from before it).
    let health = ProviderHealth {
        message: update.message,
        consecutive_failures: 0,
        ..current.health.clone()
    };
    change_status(draft, &current, update.status, health, false);
    provider_of(draft, id)
}

/// Emits a status change: an operator's, or (`automatic`) the health
/// probes', which leaves what `If-Match` accepts as it was.
pub fn change_status(
    draft: &mut Draft,
    current: &ProviderSyncInfo,
    status: ProviderStatus,
    health: ProviderHealth,
    automatic: bool,
) {
    draft.emit(EventPayload::ProviderStatusChanged(ProviderStatusChanged {
        provider_id: current.id.clone(),
        previous_status: current.status.clone(),
        status,
        health,
        // Set by `emit`, as every revision is.
        revision: current.revision,
        automatic,
    }));
}

pub fn create_model(draft: &mut Draft, body: NewModel) -> Result<ModelSpecification> {
    if draft.state().model(&body.id).is_some() {
        return Err(Error::Conflict(format!(
            "model '{}' already exists",
            body.id
        )));
    }
    let model = model_from(body);
    check_model_write(draft, &model, None, |_| true)?;
    draft.emit(EventPayload::ModelAdded(model.clone()));
    model_of(draft, &model.id)
}

pub fn update_model(
    draft: &mut Draft,
    id: &str,
    if_match: Option<u64>,
    patch: ModelPatch,
) -> Result<ModelSpecification> {
    let current = model_of(draft, id)?;
    check_model(if_match, &current)?;
    let sent = [
        ("context_window", patch.context_window.is_some()),
        ("max_input_tokens", patch.max_input_tokens.is_some()),
        ("deprecation_status", patch.deprecation_status.is_some()),
        ("deprecation_date", patch.deprecation_date.is_some()),
        ("sunset_date", patch.sunset_date.is_some()),
    ];
    // An admin's write naming the limits makes them theirs: a cut the file
    // made of their input limit is no longer remembered (`CutLimit`).
    let limits_sent = patch.context_window.is_some()
        || patch.max_input_tokens.is_some()
        || patch.max_output_tokens.is_some();
    let mut next = current.clone();
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(v) = patch.$field { next.$field = v; }
        )*};
    }
    set!(
        name,
        provider_id,
        context_window,
        max_input_tokens,
        max_output_tokens,
        supports_streaming,
        supports_vision,
        supports_function_calling,
        supports_json_mode,
        supports_reasoning,
        pricing,
        deprecation_status,
        deprecation_date,
        sunset_date,
        replacement_model_id
    );
    if next == current {
        return Ok(current);
    }
    check_model_write(draft, &next, Some(&current), |field| {
        sent.iter().any(|&(name, set)| set && name == field)
    })?;
    let newly_deprecated = !current.is_deprecated() && next.is_deprecated();
    draft.emit(if newly_deprecated {
        EventPayload::ModelDeprecated(next)
    } else {
        EventPayload::ModelUpdated(next)
    });
    if limits_sent {
        draft.forget_cut(id);
    }
    model_of(draft, id)
}

/// Removes a model; models that named it as their replacement lose that.
pub fn delete_model(draft: &mut Draft, id: &str, if_match: Option<u64>) -> Result<()> {
    let current = model_of(draft, id)?;
    check_model(if_match, &current)?;
    clear_replacements(draft, |m| m == id, "");
    draft.emit(EventPayload::ModelRemoved(ModelRemoved {
        model_id: current.id,
        provider_id: current.provider_id,
    }));
    Ok(())
}

pub fn deprecate_model(
    draft: &mut Draft,
    id: &str,
    if_match: Option<u64>,
    body: DeprecateModel,
) -> Result<ModelSpecification> {
    let current = model_of(draft, id)?;
    check_model(if_match, &current)?;
    let sunset_sent = body.sunset_date.is_some();
    let mut next = current.clone();
    if next.deprecation_status == DeprecationStatus::Active {
        next.deprecation_status = DeprecationStatus::Deprecated;
    }
    next.deprecation_date = Some(body.deprecation_date);
    if let Some(sunset_date) = body.sunset_date {
        next.sunset_date = sunset_date;
    }
    if let Some(replacement) = body.replacement_model_id {
        next.replacement_model_id = replacement;
    }
    if next == current {
        return Ok(current);
    }
    check_model_write(draft, &next, Some(&current), |field| {
        field == "deprecation_date" || (field == "sunset_date" && sunset_sent)
    })?;
    draft.emit(EventPayload::ModelDeprecated(next));
    model_of(draft, id)
}

pub fn set_active_provider(
    draft: &mut Draft,
    body: SetActiveProvider,
) -> Result<ActiveProviderChanged> {
    for (field, id) in [
        ("provider_id", body.provider_id.as_ref()),
        (
            "default_provider_id",
            body.default_provider_id.as_ref().and_then(Option::as_ref),
        ),
    ] {
        if let Some(id) = id
            && draft.state().provider(id).is_none()
        {
            return Err(Error::missing(field, "provider", id.clone()));
        }
    }
    let state = draft.state();
    let next = ActiveProviderChanged {
        active_provider_id: body.provider_id,
        default_provider_id: body
            .default_provider_id
            .unwrap_or_else(|| state.default_provider_id.clone()),
    };
    if next.active_provider_id != state.active_provider_id
        || next.default_provider_id != state.default_provider_id
    {
        draft.emit(EventPayload::ActiveProviderChanged(next.clone()));
    }
    Ok(next)
}
