//! Time helpers shared by the model and the engine.

use chrono::{DateTime, Utc};

/// A point in time as the engine records it (UTC, millisecond precision in renderings).
pub type Timestamp = DateTime<Utc>;

/// The current wall-clock time.
pub fn now() -> Timestamp {
    Utc::now()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or `YYYY-MM-DDTHH:MM:SS.mmmZ` with `millis` (the fraction
/// truncated), written directly rather than through a chrono format string (which costs a few
/// thousand instructions a call on the request path). `None` for the times whose chrono
/// rendering differs from that fixed shape (years outside 0 to 9999, leap seconds): render
/// those with chrono. Where it answers, the text is exactly chrono's
/// `format("%Y-%m-%dT%H:%M:%SZ")` and `to_rfc3339_opts(SecondsFormat::Millis, true)`.
pub fn format_utc(t: &Timestamp, millis: bool) -> Option<String> {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&t.year()) || t.nanosecond() >= 1_000_000_000 {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, t.year() as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    let len = if millis {
        put(20, 3, t.nanosecond() / 1_000_000);
        b.len()
    } else {
        b[19] = b'Z';
        20
    };
    std::str::from_utf8(&b[..len]).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone};

    #[test]
    fn the_direct_rendering_is_chronos() {
        let times = [
            Utc.with_ymd_and_hms(2026, 11, 21, 14, 18, 38).unwrap(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
                + chrono::Duration::nanoseconds(999_999_999),
            Utc.timestamp_opt(1_700_000_000, 7_654_321).unwrap(),
            Utc.timestamp_opt(0, 999_000_000).unwrap(),
        ];
        for t in times {
            assert_eq!(
                format_utc(&t, false).unwrap(),
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
            assert_eq!(
                format_utc(&t, true).unwrap(),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        assert_eq!(format_utc(&leap, true), None);
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(format_utc(&far, false), None);
    }
}
