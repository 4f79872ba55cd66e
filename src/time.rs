//! Packet time. Everything downstream of capture measures time from packet timestamps only, so a
//! replay of the same file gives the same CDRs (no wall clock in offline mode).

use std::fmt;

/// Microseconds since the Unix epoch, UTC, taken from the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// `self + secs` seconds, saturating.
    pub const fn plus_secs(self, secs: u32) -> Self {
        Timestamp(self.0.saturating_add(secs as i64 * 1_000_000))
    }

    /// Whole milliseconds from `earlier` to `self`, never negative (captures can hold packets
    /// whose timestamps step backwards; a duration is then 0, not negative).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        (self.0 - earlier.0).max(0) / 1000
    }

    /// Start of the `interval_secs`-long bucket this time falls in.
    pub fn floor_to(self, interval_secs: u64) -> Timestamp {
        let step = (interval_secs as i64).saturating_mul(1_000_000).max(1);
        Timestamp(self.0.div_euclid(step) * step)
    }

    /// Writes RFC 3339 UTC with microseconds: `2026-01-01T01:56:40.019566Z`.
    pub fn write_rfc3339(self, out: &mut impl fmt::Write) -> fmt::Result {
        let (y, mo, d, h, mi, s, us) = self.civil();
        write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
    }

    /// Compact form for file names: `20260101T015640Z`.
    pub fn file_stamp(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.civil();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(1_000_000);
        let us = self.0.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, mo, d) = civil_from_days(days);
        (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60, us)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_rfc3339(f)
    }
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        // 1767232600.019566 = 2026-01-01T01:56:40.019566Z (checked with `date -u -d @1767232600`)
        let t = Timestamp::from_micros(1_767_232_600_019_566);
        assert_eq!(t.to_string(), "2026-01-01T01:56:40.019566Z");
        assert_eq!(Timestamp::ZERO.to_string(), "1970-01-01T00:00:00.000000Z");
        // a leap day
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(t.file_stamp(), "20260101T015640Z");
    }

    #[test]
    fn durations_never_negative() {
        let a = Timestamp::from_micros(2_500_000);
        let b = Timestamp::from_micros(1_000_000);
        assert_eq!(a.millis_since(b), 1500);
        assert_eq!(b.millis_since(a), 0);
        assert_eq!(a.floor_to(1), Timestamp::from_secs(2));
    }
}
