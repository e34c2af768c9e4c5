//! The server's notion of now, in the formats the protocol uses.

use time::OffsetDateTime;

/// Now as RFC 3339 in UTC, to the millisecond ([`fixed`]).
pub(crate) fn now_rfc3339() -> String {
    fixed(OffsetDateTime::now_utc())
}

/// A time as RFC 3339 in UTC with three digits of milliseconds, always
/// (`2026-12-04T07:37:35.840Z`): every timestamp the server writes has the
/// same width. (`time`'s RFC 3339 format leaves trailing zeros out: `.84Z`,
/// no fraction at all on a whole second.)
fn fixed(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
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
        .filter(|t| (0..=9999).contains(&t.year()))
        .map_or_else(|| "1970-01-01T00:00:00.000Z".into(), fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by a black-box check (2026-12-04): timestamps had a fraction
    /// of varying width (`.84Z`, `.5Z`, none on a whole second).
    #[test]
    fn every_timestamp_has_three_digits_of_milliseconds() {
        assert_eq!(rfc3339_of_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_of_ms(1_764_833_855_840), "2025-12-04T07:37:35.840Z");
        assert_eq!(rfc3339_of_ms(1_764_833_855_005), "2025-12-04T07:37:35.005Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-12-04T07:37:35.840Z".len(), "{now}");
        assert!(
            OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }
}
