//! Filtering models, shared by `GET /models` and the SDK's `getModels`.

use serde::{Deserialize, Serialize};

use crate::model::{ModelCapability, ModelSpecification};

/// Every field narrows the result; an empty filter matches every model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ModelFilter {
    #[cfg_attr(feature = "tsify", tsify(optional))]
    #[serde(default)]
    pub provider_id: Option<String>,
    #[cfg_attr(feature = "tsify", tsify(optional))]
    #[serde(default)]
    pub capability: Option<ModelCapability>,
    /// `true`: only deprecated or sunset models; `false`: only active ones.
    #[cfg_attr(feature = "tsify", tsify(optional))]
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// Text found in the model's id or name, ignoring ASCII case.
    #[cfg_attr(feature = "tsify", tsify(optional))]
    #[serde(default)]
    pub search: Option<String>,
}

impl ModelFilter {
    pub fn matches(&self, model: &ModelSpecification) -> bool {
        self.provider_id
            .as_deref()
            .is_none_or(|p| model.provider_id == p)
            && self.capability.is_none_or(|c| model.has_capability(c))
            && self.deprecated.is_none_or(|d| model.is_deprecated() == d)
            && self.search.as_deref().is_none_or(|text| {
                contains_ignoring_ascii_case(&model.id, text)
                    || contains_ignoring_ascii_case(&model.name, text)
            })
    }
}

/// ASCII case-insensitive substring test: model ids and names are ASCII in
/// practice, and full Unicode case folding would weigh on the wasm client.
fn contains_ignoring_ascii_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// One page of `GET /models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelPage {
    pub models: Vec<ModelSpecification>,
    /// Models matching the filter, on every page.
    pub total: u32,
    pub offset: u32,
    pub limit: u32,
    /// The catalog version the page was read at.
    pub version: u64,
}
