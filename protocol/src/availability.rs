//! Whether a provider or model can be used now, and what to use instead.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::model::{DeprecationStatus, ProviderHealth, ProviderStatus, ProviderSyncInfo};
use crate::state::SyncState;

/// The answer to `GET /providers/{id}/availability`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderAvailability {
    pub provider_id: String,
    pub display_name: String,
    pub status: ProviderStatus,
    pub enabled: bool,
    /// Enabled and available or degraded.
    pub is_available: bool,
    pub health: ProviderHealth,
    /// Where to go instead, when this provider is not available: its
    /// configured fallback if that one is available, else the available
    /// provider with the highest priority.
    pub fallback_provider_id: Option<String>,
    pub fallback_provider_name: Option<String>,
}

/// How soon a deprecated model stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(
    feature = "wire",
    derive(provider_sync_wire::Read, provider_sync_wire::Write)
)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SunsetUrgency {
    /// Not deprecated.
    None,
    /// Deprecated; sunset more than 90 days away or not announced.
    Low,
    /// Sunset within 90 days.
    Medium,
    /// Sunset within 30 days.
    High,
    /// Sunset within 7 days.
    Critical,
    /// Already gone.
    Sunset,
}

/// The answer to `GET /models/{id}/availability`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "tsify", derive(tsify::Tsify), tsify(missing_as_null))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelAvailability {
    pub model_id: String,
    pub name: String,
    pub provider_id: String,
    /// Not sunset, and its provider is available.
    pub is_available: bool,
    pub deprecation_status: DeprecationStatus,
    pub deprecation_date: Option<String>,
    pub sunset_date: Option<String>,
    /// Negative once the sunset date has passed.
    pub days_until_sunset: Option<i64>,
    pub urgency: SunsetUrgency,
    pub replacement_model_id: Option<String>,
    pub replacement_model_name: Option<String>,
    pub provider_status: Option<ProviderStatus>,
    pub provider_available: bool,
}

/// Parses a `YYYY-MM-DD` date as the catalog writes them.
pub fn parse_date(text: &str) -> Result<Date, time::error::Parse> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
}

fn provider_usable(p: &ProviderSyncInfo) -> bool {
    p.enabled && p.status.is_usable()
}

/// The provider to use instead of `provider`, if it is not usable.
pub fn suggest_fallback<'a>(
    state: &'a SyncState,
    provider: &ProviderSyncInfo,
) -> Option<&'a ProviderSyncInfo> {
    if provider_usable(provider) {
        return None;
    }
    let configured = provider
        .fallback_provider_id
        .as_deref()
        .and_then(|id| state.provider(id))
        .filter(|p| p.id != provider.id && provider_usable(p));
    configured.or_else(|| {
        state
            .providers
            .iter()
            .filter(|p| p.id != provider.id && provider_usable(p))
            // Highest priority first; ties go to the smaller id, as the list
            // is sorted by id and max_by_key keeps the last maximum.
            .rev()
            .max_by_key(|p| p.priority)
    })
}

pub fn provider_availability(state: &SyncState, id: &str) -> Option<ProviderAvailability> {
    let provider = state.provider(id)?;
    let fallback = suggest_fallback(state, provider);
    Some(ProviderAvailability {
        provider_id: provider.id.clone(),
        display_name: provider.display_name.clone(),
        status: provider.status.clone(),
        enabled: provider.enabled,
        is_available: provider_usable(provider),
        health: provider.health.clone(),
        fallback_provider_id: fallback.map(|p| p.id.clone()),
        fallback_provider_name: fallback.map(|p| p.display_name.clone()),
    })
}

/// Urgency of a model's retirement as of `today` (a status this release
/// does not know counts as deprecated).
pub fn sunset_urgency(status: &DeprecationStatus, days_until_sunset: Option<i64>) -> SunsetUrgency {
    match (status.presented(), days_until_sunset) {
        (DeprecationStatus::Sunset, _) => SunsetUrgency::Sunset,
        (_, Some(days)) if days < 0 => SunsetUrgency::Sunset,
        (DeprecationStatus::Active, _) => SunsetUrgency::None,
        (_, None) => SunsetUrgency::Low,
        (_, Some(days)) => match days {
            0..=7 => SunsetUrgency::Critical,
            8..=30 => SunsetUrgency::High,
            31..=90 => SunsetUrgency::Medium,
            _ => SunsetUrgency::Low,
        },
    }
}

/// The day number (days since 1970-01-01) of a `YYYY-MM-DD` date, if it is a
/// real one. The calendar arithmetic without `time`'s parser, which would
/// weigh about 17 KB (brotli) on the wasm client, where this runs too; the
/// server checks dates with [`parse_date`] when they are written.
pub fn day_number(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    // Digits only (no sign), folded by hand: `str::parse` brings its
    // general integer reader into the SDK's wasm.
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        bytes.get(range)?.iter().try_fold(0, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The day number of a date (see [`day_number`]).
pub fn day_number_of(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - 2_440_588
}

/// Days from `today` (a [`day_number`]) to a `YYYY-MM-DD` sunset date
/// (negative once passed), and the urgency that makes: the one rule the
/// server's availability answers and the SDK share.
pub fn sunset_outlook(
    status: &DeprecationStatus,
    sunset_date: Option<&str>,
    today: i64,
) -> (SunsetUrgency, Option<i64>) {
    let days = sunset_date
        .and_then(day_number)
        .map(|sunset| sunset - today);
    (sunset_urgency(status, days), days)
}

pub fn model_availability(state: &SyncState, id: &str, today: Date) -> Option<ModelAvailability> {
    let model = state.model(id)?;
    let (urgency, days_until_sunset) = sunset_outlook(
        &model.deprecation_status,
        model.sunset_date.as_deref(),
        day_number_of(today),
    );
    let provider = state.provider(&model.provider_id);
    let provider_available = provider.is_some_and(provider_usable);
    let replacement = model
        .replacement_model_id
        .as_deref()
        .and_then(|r| state.model(r));
    Some(ModelAvailability {
        model_id: model.id.clone(),
        name: model.name.clone(),
        provider_id: model.provider_id.clone(),
        is_available: provider_available && urgency != SunsetUrgency::Sunset,
        deprecation_status: model.deprecation_status.clone(),
        deprecation_date: model.deprecation_date.clone(),
        sunset_date: model.sunset_date.clone(),
        days_until_sunset,
        urgency,
        replacement_model_id: model.replacement_model_id.clone(),
        replacement_model_name: replacement.map(|m| m.name.clone()),
        provider_status: provider.map(|p| p.status.clone()),
        provider_available,
    })
}
