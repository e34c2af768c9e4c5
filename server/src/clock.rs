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
///
/// Written digit by digit: every `GET /version` carries the server's time,
/// and `format!` took about 3,200 instructions of a request's 58,000
/// (callgrind, BENCHMARKS.md "REST against nginx"). A year before 0 is
/// written as `format!` writes it.
fn fixed(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return by_format(t);
    }
    let mut out = [0u8; 24];
    let mut put = |at: usize, width: usize, value: u32| {
        let mut value = value;
        for place in (at..at + width).rev() {
            out[place] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, u32::from(u8::from(t.month())));
    put(8, 2, u32::from(t.day()));
    put(11, 2, u32::from(t.hour()));
    put(14, 2, u32::from(t.minute()));
    put(17, 2, u32::from(t.second()));
    put(20, 3, u32::from(t.millisecond()));
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = separator;
    }
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&out).into_owned()
}

/// [`fixed`] as `format!` writes it: years before 0, and the reference its
/// test holds the digit-by-digit writer to.
fn by_format(t: OffsetDateTime) -> String {
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

    /// The digit-by-digit writer against `format!`, over four centuries of
    /// instants a prime number of milliseconds apart, and both ends of the
    /// years `time` holds (-9999 and 9999) and of 0..=9999.
    #[test]
    fn the_written_time_is_what_format_writes() {
        let reference = |t: OffsetDateTime| by_format(t.to_offset(time::UtcOffset::UTC));
        let first = -2_208_988_800_000_i64; // 1900-01-01
        let last = 7_258_118_400_000_i64; // 2200-01-01
        let mut ms = first;
        let mut checked = 0;
        while ms < last {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            assert_eq!(fixed(t), reference(t), "{ms}");
            ms += 999_983_777; // about 11.6 days, a prime
            checked += 1;
        }
        assert!(checked > 9_000, "{checked}");
        for ms in [
            253_402_300_799_999_i64,
            -377_705_116_800_000,
            -62_167_219_200_000,
            -62_167_219_200_001,
        ] {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            assert_eq!(fixed(t), reference(t), "{ms}");
        }
        let offset = OffsetDateTime::from_unix_timestamp(1_764_833_855)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(fixed(offset), "2025-12-04T07:37:35.000Z");
    }

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
