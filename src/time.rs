//! Packet time. Everything downstream of capture measures time from packet timestamps only, so a
//! replay of the same file gives the same CDRs (no wall clock in offline mode).

use std::cmp::Ordering;
use std::fmt;
use std::num::NonZeroI64;

/// Microseconds since the Unix epoch, UTC, taken from the capture.
///
/// Stored with its sign bit flipped in a `NonZeroI64`, so that `Option<Timestamp>` takes 8 bytes
/// instead of 16 (a leg holds several optional times; memory per open leg is a target). The one
/// value this cannot hold, `i64::MIN` µs, is 292 000 years before the epoch.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp(NonZeroI64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp::from_micros(0);

    pub const fn from_micros(us: i64) -> Self {
        let us = if us == i64::MIN { i64::MIN + 1 } else { us };
        match NonZeroI64::new(us ^ i64::MIN) {
            Some(v) => Timestamp(v),
            None => Timestamp(NonZeroI64::MAX), // unreachable: only i64::MIN maps to 0
        }
    }

    pub const fn from_secs(s: i64) -> Self {
        Timestamp::from_micros(s.saturating_mul(1_000_000))
    }

    pub const fn as_micros(self) -> i64 {
        self.0.get() ^ i64::MIN
    }

    /// `self + secs` seconds, saturating.
    pub const fn plus_secs(self, secs: u32) -> Self {
        Timestamp::from_micros(self.as_micros().saturating_add(secs as i64 * 1_000_000))
    }

    /// Whole milliseconds from `earlier` to `self`, never negative (captures can hold packets
    /// whose timestamps step backwards; a duration is then 0, not negative).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.as_micros().saturating_sub(earlier.as_micros()).max(0) / 1000
    }

    /// Start of the `interval_secs`-long bucket this time falls in.
    pub fn floor_to(self, interval_secs: u64) -> Timestamp {
        let step = i64::try_from(interval_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000)
            .max(1);
        Timestamp::from_micros(self.as_micros().div_euclid(step) * step)
    }

    /// Writes RFC 3339 UTC with microseconds: `2026-01-01T01:56:40.019566Z`.
    pub fn write_rfc3339(self, out: &mut impl fmt::Write) -> fmt::Result {
        let (y, mo, d, h, mi, s, us) = self.civil();
        write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
    }

    /// RFC 3339 as bytes without formatting machinery (the CSV encoder's hot path). Years
    /// outside 0..=9999 are clamped to 0000 or 9999.
    pub fn rfc3339_bytes(self) -> [u8; 27] {
        let (y, mo, d, h, mi, s, us) = self.civil();
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for digit in b.iter_mut().skip(at).take(width).rev() {
                *digit = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y.clamp(0, 9999) as u32);
        put(5, 2, mo);
        put(8, 2, d);
        put(11, 2, h);
        put(14, 2, mi);
        put(17, 2, s);
        put(20, 6, us);
        b
    }

    /// Compact form for file names: `20260101T015640Z`.
    pub fn file_stamp(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.civil();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.as_micros().div_euclid(1_000_000);
        let us = self.as_micros().rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, mo, d) = civil_from_days(days);
        (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60, us)
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_micros().cmp(&other.as_micros())
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.as_micros())
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

/// The wall clock, in live mode only: offline runs never read it (CDRs come from capture time).
pub fn wall_clock() -> Timestamp {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    let micros = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Timestamp::from_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        // 1767232600.019566 = 2026-01-01T01:56:40.019566Z (checked with `date -u -d @1767232600`)
        let t = Timestamp::from_micros(1_767_232_600_019_566);
        assert_eq!(t.to_string(), "2026-01-01T01:56:40.019566Z");
        assert_eq!(&t.rfc3339_bytes(), b"2026-01-01T01:56:40.019566Z");
        assert_eq!(Timestamp::ZERO.to_string(), "1970-01-01T00:00:00.000000Z");
        // a leap day
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(t.file_stamp(), "20260101T015640Z");
    }

    #[test]
    fn option_is_small_and_order_is_numeric() {
        assert_eq!(std::mem::size_of::<Option<Timestamp>>(), 8);
        let v = [-5_000_000, -1, 0, 1, 1_767_232_600_019_566, i64::MAX];
        for w in v.windows(2) {
            let (a, b) = (Timestamp::from_micros(w[0]), Timestamp::from_micros(w[1]));
            assert!(a < b, "{w:?}");
            assert_eq!(a.as_micros(), w[0]);
        }
        assert_eq!(Timestamp::from_micros(i64::MIN).as_micros(), i64::MIN + 1);
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
