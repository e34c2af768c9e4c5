//! The server's notion of now, in the formats the protocol uses.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now as RFC 3339 in UTC, to the millisecond.
pub(crate) fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Today's date in UTC, for sunset arithmetic.
pub(crate) fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// Now as milliseconds since the Unix epoch (audit records, their trim).
pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A time in milliseconds since the Unix epoch as RFC 3339 in UTC.
pub(crate) fn rfc3339_of_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
