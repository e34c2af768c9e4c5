//! Request bodies of the admin API. Only the identifying fields are required;
//! everything else has a default (see the server's docs for each).

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::{DeprecationStatus, ModelPricing, ProviderStatus};

/// Tells a field that is absent (leave it) from one that is `null` (clear it).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A field that may be left out (to keep it) but not cleared: `null` is
/// refused like any other value of the wrong type.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `POST /admin/providers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub id: String,
    pub name: String,
    /// Defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Defaults to `openai_compatible`.
    #[serde(default)]
    pub provider_type: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub health_url: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Defaults to 0.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Defaults to `available` without a `health_url` (an unmonitored
    /// provider is assumed usable); with one, `unknown` until the health
    /// probe's first reading.
    #[serde(default)]
    pub status: Option<ProviderStatus>,
    #[serde(default)]
    pub fallback_provider_id: Option<String>,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

/// `PATCH /admin/providers/{id}`: absent fields stay, `null` clears an
/// optional one (and is refused for the others).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub display_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub provider_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub base_url: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub health_url: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub priority: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub fallback_provider_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub capabilities: Option<Vec<String>>,
}

/// `PUT /admin/providers/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub status: ProviderStatus,
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /admin/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    pub id: String,
    pub name: String,
    pub provider_id: String,
    pub context_window: u32,
    /// Defaults to `context_window`.
    #[serde(default)]
    pub max_input_tokens: Option<u32>,
    /// Defaults to `context_window`.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub supports_streaming: Option<bool>,
    #[serde(default)]
    pub supports_vision: Option<bool>,
    #[serde(default)]
    pub supports_function_calling: Option<bool>,
    #[serde(default)]
    pub supports_json_mode: Option<bool>,
    /// Defaults to false.
    #[serde(default)]
    pub supports_reasoning: Option<bool>,
    #[serde(default)]
    pub pricing: Option<ModelPricing>,
    #[serde(default)]
    pub deprecation_status: Option<DeprecationStatus>,
    #[serde(default)]
    pub deprecation_date: Option<String>,
    #[serde(default)]
    pub sunset_date: Option<String>,
    #[serde(default)]
    pub replacement_model_id: Option<String>,
}

/// `PATCH /admin/models/{id}`: absent fields stay, `null` clears an optional
/// one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub provider_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub context_window: Option<u32>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub max_input_tokens: Option<u32>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub max_output_tokens: Option<u32>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub supports_streaming: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub supports_vision: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub supports_function_calling: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub supports_json_mode: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub supports_reasoning: Option<bool>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "ModelPricing | null"))]
    pub pricing: Option<Option<ModelPricing>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub deprecation_status: Option<DeprecationStatus>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub deprecation_date: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub sunset_date: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "tsify", tsify(type = "string | null"))]
    pub replacement_model_id: Option<Option<String>>,
}

/// `POST /admin/models/{id}/deprecate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeprecateModel {
    /// `YYYY-MM-DD`.
    pub deprecation_date: String,
    /// Absent keeps the current one; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub sunset_date: Option<Option<String>>,
    /// Absent keeps the current one; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub replacement_model_id: Option<Option<String>>,
}

/// `PUT /admin/active-provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetActiveProvider {
    /// Required; `null` clears it.
    #[serde(deserialize_with = "Option::deserialize")]
    pub provider_id: Option<String>,
    /// Absent leaves the default provider as it is; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub default_provider_id: Option<Option<String>>,
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: crate::event::ErrorData,
}
