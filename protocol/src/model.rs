//! The catalog's entities: providers and the models they serve.

use serde::{Deserialize, Serialize};

/// Whether a provider can take requests right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Available,
    /// Answers, but slowly or with errors: usable, with care.
    Degraded,
    Unavailable,
    /// Taken out of service on purpose; health probes leave it alone.
    Maintenance,
    /// Never checked.
    #[default]
    Unknown,
}

impl ProviderStatus {
    /// Whether requests may be sent to a provider in this status.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Available | Self::Degraded)
    }
}

/// What the last health check saw. It travels with status changes only, so it
/// is the health as of the last change of status, not of the last probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderHealth {
    /// RFC 3339 time of the check.
    pub last_check: Option<String>,
    pub latency_ms: Option<u32>,
    /// Share of failed checks among the recent ones, 0.0 to 1.0.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// What went wrong, or why an operator changed the status.
    pub message: Option<String>,
}

/// One AI provider as clients see it. Never carries secrets: `base_url` is
/// checked to hold no credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderSyncInfo {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `openai`, `anthropic`, `google`, `mistral`, `openai_compatible`, …:
    /// a string so that new kinds need no protocol change.
    pub provider_type: String,
    pub base_url: Option<String>,
    /// Probed by the server's health checker when set.
    pub health_url: Option<String>,
    pub enabled: bool,
    /// Higher is preferred when a fallback is chosen.
    pub priority: i32,
    pub status: ProviderStatus,
    pub health: ProviderHealth,
    /// Where to send traffic while this provider is unusable.
    pub fallback_provider_id: Option<String>,
    pub capabilities: Vec<String>,
    /// Ids of this provider's models, sorted; kept in step with the models by
    /// `apply`, so it is not part of the checksum.
    pub model_ids: Vec<String>,
    /// Bumped on every change of this provider; the admin API's `If-Match`.
    pub revision: u64,
}

/// Price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelPricing {
    pub input_per_million: f64,
    pub output_per_million: f64,
    /// Price of input tokens read from the provider's prompt cache, where the
    /// provider has one. Absent on the wire when unknown, so clients of an
    /// older release read the same object as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "tsify", tsify(optional))]
    pub cached_input_per_million: Option<f64>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Where a model stands in its provider's retirement schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeprecationStatus {
    #[default]
    Active,
    /// Still served, with a retirement announced.
    Deprecated,
    /// No longer served.
    Sunset,
}

/// One model and what it can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelSpecification {
    pub id: String,
    pub name: String,
    pub provider_id: String,
    pub context_window: u32,
    pub max_input_tokens: u32,
    pub max_output_tokens: u32,
    pub supports_streaming: bool,
    pub supports_vision: bool,
    pub supports_function_calling: bool,
    pub supports_json_mode: bool,
    /// Thinks before it answers (reasoning effort, thinking tokens). Absent on
    /// the wire when false, so clients of an older release read the same
    /// object as before.
    #[serde(default, skip_serializing_if = "is_false")]
    #[cfg_attr(feature = "tsify", tsify(optional))]
    pub supports_reasoning: bool,
    pub pricing: Option<ModelPricing>,
    pub deprecation_status: DeprecationStatus,
    /// `YYYY-MM-DD`.
    pub deprecation_date: Option<String>,
    /// `YYYY-MM-DD`: the day the provider stops serving it.
    pub sunset_date: Option<String>,
    pub replacement_model_id: Option<String>,
    pub revision: u64,
}

/// A model capability that `GET /models` can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelCapability {
    Streaming,
    Vision,
    FunctionCalling,
    JsonMode,
    Reasoning,
}

impl ModelSpecification {
    pub fn has_capability(&self, capability: ModelCapability) -> bool {
        match capability {
            ModelCapability::Streaming => self.supports_streaming,
            ModelCapability::Vision => self.supports_vision,
            ModelCapability::FunctionCalling => self.supports_function_calling,
            ModelCapability::JsonMode => self.supports_json_mode,
            ModelCapability::Reasoning => self.supports_reasoning,
        }
    }

    pub fn is_deprecated(&self) -> bool {
        self.deprecation_status != DeprecationStatus::Active
    }
}
