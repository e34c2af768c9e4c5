//! The catalog's entities: providers and the models they serve.

use serde::{Deserialize, Serialize};

/// The string enums of the wire whose set of values may grow: known values
/// are variants, any other string is kept as `Other` (never an error, so a
/// newer server cannot break an older client), and `is_known` lets a server
/// refuse values it does not know in requests.
macro_rules! open_enum {
    ($name:ident, $what:literal, $fallback:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value this release knows.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }

            /// Whether this release knows the value.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.into()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                d.deserialize_str(Visit)
            }
        }

        #[cfg(feature = "wire")]
        // SAFETY: the default `read_to`.
        unsafe impl provider_sync_wire::Read for $name {
            fn read(r: &mut provider_sync_wire::Reader<'_>) -> provider_sync_wire::Result<Self> {
                r.string().map(|text| Self::from(&*text))
            }
        }

        #[cfg(feature = "wire")]
        impl provider_sync_wire::Write for $name {
            fn write(&self, out: &mut provider_sync_wire::Writer) {
                out.string(self.as_str());
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::KNOWN.iter().copied()))
                    .description(Some(concat!(
                        "One of the values listed; a client shows a value it does not know as `",
                        $fallback,
                        "`."
                    )))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

/// Whether a provider can take requests right now.
///
/// A status this release does not know (sent by a newer server) is kept
/// verbatim as `Other`, so the copy, its checksum and its cache still match
/// the server's; it is presented as [`ProviderStatus::presented`] says
/// (`unknown`: not usable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "tsify",
    derive(tsify::Tsify),
    tsify(type = "\"available\" | \"degraded\" | \"unavailable\" | \"maintenance\" | \"unknown\"")
)]
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
    /// A status a newer server sent that this release does not know.
    Other(Box<str>),
}

open_enum!(ProviderStatus, "a provider status", "unknown", {
    Available => "available",
    Degraded => "degraded",
    Unavailable => "unavailable",
    Maintenance => "maintenance",
    Unknown => "unknown",
});

impl ProviderStatus {
    /// Whether requests may be sent to a provider in this status.
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Available | Self::Degraded)
    }

    /// How a client shows this status: itself, or `Unknown` for a status it
    /// does not know.
    pub fn presented(&self) -> Self {
        match self {
            Self::Other(_) => Self::Unknown,
            known => known.clone(),
        }
    }
}

/// What the last health check saw. It travels with status changes only, so it
/// is the health as of the last change of status, not of the last probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderHealth {
    /// RFC 3339 time of the check.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_check: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub latency_ms: Option<u32>,
    /// Share of failed checks among the recent ones, 0.0 to 1.0. Always
    /// sent (no serde default: tsify would declare it optional).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error_rate: f64,
    /// Failed checks in a row, 0 after a success. Always sent.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub consecutive_failures: u32,
    /// What went wrong, or why an operator changed the status.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
}

/// One AI provider as clients see it. Never carries secrets: `base_url` is
/// checked to hold no credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderSyncInfo {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `openai`, `anthropic`, `google`, `mistral`, `openai_compatible`, …:
    /// a string so that new kinds need no protocol change.
    pub provider_type: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub base_url: Option<String>,
    /// Probed by the server's health checker when set.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub health_url: Option<String>,
    pub enabled: bool,
    /// Higher is preferred when a fallback is chosen.
    pub priority: i32,
    pub status: ProviderStatus,
    pub health: ProviderHealth,
    /// Where to send traffic while this provider is unusable.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub fallback_provider_id: Option<String>,
    pub capabilities: Vec<String>,
    /// Ids of this provider's models, sorted; kept in step with the models by
    /// `apply`, so it is not part of the checksum.
    pub model_ids: Vec<String>,
    /// Bumped on every change of this provider; the admin API's `If-Match`.
    pub revision: u64,
}

/// Price in US dollars per million tokens. Read from an object only (see
/// the `Deserialize` impl below).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
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

/// serde's derived reader of a struct also takes a list of its fields'
/// values in order (`"pricing": [1, 2]` in JSON or TOML), which no catalog
/// or admin body means: prices are read from an object only, through this
/// mirror of the fields (the compiler holds it to `ModelPricing`'s).
#[derive(Deserialize)]
#[serde(remote = "ModelPricing")]
struct PricingFields {
    input_per_million: f64,
    output_per_million: f64,
    #[serde(default)]
    cached_input_per_million: Option<f64>,
}

impl<'de> Deserialize<'de> for ModelPricing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = ModelPricing;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of prices")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ModelPricing, A::Error> {
                let read =
                    PricingFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                // `-0.0` (a TOML catalog's, Python's negated zero) is 0: a
                // price kept with its sign would be served as `-0.0`.
                // Adding 0 drops the sign and changes no other value.
                Ok(ModelPricing {
                    input_per_million: read.input_per_million + 0.0,
                    output_per_million: read.output_per_million + 0.0,
                    cached_input_per_million: read.cached_input_per_million.map(|p| p + 0.0),
                })
            }
        }
        deserializer.deserialize_map(Object)
    }
}

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Where a model stands in its provider's retirement schedule.
///
/// A status this release does not know is kept verbatim as `Other` and
/// presented as `Deprecated` ([`DeprecationStatus::presented`]): still
/// listed, flagged, left out unless deprecated models are asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "tsify",
    derive(tsify::Tsify),
    tsify(type = "\"active\" | \"deprecated\" | \"sunset\"")
)]
pub enum DeprecationStatus {
    #[default]
    Active,
    /// Still served, with a retirement announced.
    Deprecated,
    /// No longer served.
    Sunset,
    /// A status a newer server sent that this release does not know.
    Other(Box<str>),
}

open_enum!(DeprecationStatus, "a deprecation status", "deprecated", {
    Active => "active",
    Deprecated => "deprecated",
    Sunset => "sunset",
});

impl DeprecationStatus {
    /// How a client shows this status: itself, or `Deprecated` for a status
    /// it does not know.
    pub fn presented(&self) -> Self {
        match self {
            Self::Other(_) => Self::Deprecated,
            known => known.clone(),
        }
    }
}

/// One model and what it can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub pricing: Option<ModelPricing>,
    pub deprecation_status: DeprecationStatus,
    /// `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub deprecation_date: Option<String>,
    /// `YYYY-MM-DD`: the day the provider stops serving it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub sunset_date: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub replacement_model_id: Option<String>,
    pub revision: u64,
}

/// A model capability that `GET /models` can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
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
