//! The CSV schema: column names in order, and the encoder of one record into one CSV line.

use super::{Cdr, Field};
use std::fmt::Write as _;

/// Column names, in output order.
pub const COLUMNS: [&str; 42] = [
    "leg_id",
    "session_id",
    "original_session_id",
    "record_type",
    "call_id",
    "leg_role",
    "direction",
    "transport",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "caller_name",
    "caller_number",
    "destination_number",
    "asserted_number",
    "privacy",
    "redirect_number",
    "from_uri",
    "to_uri",
    "user_agent",
    "callee_user_agent",
    "start_time",
    "progress_time",
    "progress_media_time",
    "answer_time",
    "end_time",
    "duration_ms",
    "pdd_ms",
    "ring_ms",
    "talk_ms",
    "hold_ms",
    "hold_events",
    "sip_resp_code",
    "reason",
    "hangup_cause",
    "disposition",
    "caller_media",
    "callee_media",
    "codec",
    "video",
    "srtp",
];

/// Encodes records into CSV lines. A field is quoted only when it holds a comma, a quote, CR or
/// LF, and its quotes are then doubled: byte for byte what the csv crate writes with
/// `QuoteStyle::Necessary` (a test holds the two together). Written by hand because the csv
/// crate's record and writer buffers cost ~4,000 instructions per record (callgrind), more than
/// building the fields; only the text that came off the wire is checked for quoting.
#[derive(Default)]
pub struct Encoder {
    /// Length of the previous line: the next one gets its buffer in one allocation.
    last_len: usize,
    scratch: String,
    /// The minute of the last time written, and its `YYYY-MM-DDTHH:MM:`: a record's times
    /// nearly always share their day and often their minute, and working the date out is most of
    /// the cost of a time.
    minute: Option<(i64, [u8; 17])>,
    /// `--csv-safe`: a text field from the wire that starts with `=`, `+`, `-`, `@`, TAB or CR
    /// gets a leading `'`, so that a spreadsheet shows it as text instead of running it as a
    /// formula (CSV injection).
    pub csv_safe: bool,
}

impl Encoder {
    pub fn new(csv_safe: bool) -> Encoder {
        Encoder {
            csv_safe,
            ..Encoder::default()
        }
    }

    /// The header line.
    pub fn header(&mut self) -> Vec<u8> {
        let mut line = Line(Vec::new(), false);
        for c in COLUMNS {
            line.plain(c.as_bytes());
        }
        line.finish()
    }

    /// One record as a CSV line, newline included.
    pub fn encode(&mut self, c: &Cdr) -> Vec<u8> {
        let mut l = Line(
            Vec::with_capacity(self.last_len.max(256) + 128),
            self.csv_safe,
        );
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        // The whole 36-byte buffer: a copy of a size known when compiling, not a `memcpy` call.
        c.leg_id.hyphenated().encode_lower(&mut uuid);
        l.plain(&uuid);
        c.session_id.hyphenated().encode_lower(&mut uuid);
        l.plain(&uuid);
        match c.original_session_id {
            Some(u) => {
                u.hyphenated().encode_lower(&mut uuid);
                l.plain(&uuid);
            }
            None => l.plain(b""),
        }
        l.plain(c.record.as_str().as_bytes());
        l.text(c.call_id.as_bytes());
        l.plain(c.role.map_or("", |r| r.as_str()).as_bytes());
        l.plain(c.direction.map_or("", |d| d.as_str()).as_bytes());
        l.plain(c.transport.as_str().as_bytes());
        push_ip(&mut l, &mut self.scratch, c.src.ip());
        l.plain(Digits::new(i64::from(c.src.port())).as_bytes());
        push_ip(&mut l, &mut self.scratch, c.dst.ip());
        l.plain(Digits::new(i64::from(c.dst.port())).as_bytes());
        // One search of the leg's text for what needs quotes, instead of one per field: a field
        // is searched on its own only when the whole text has something (callgrind: 11 searches
        // of short fields cost ~550 instructions a record, one of the whole ~200 bytes ~80).
        let clean = !needs_quotes(c.text.as_str().as_bytes());
        let text = |l: &mut Line, f: Field| {
            let v = c.text.get(f).as_bytes();
            l.text_quoted_if(v, !clean && needs_quotes(v));
        };
        for f in Field::ALL.iter().take(Field::CalleeUserAgent as usize + 1) {
            text(&mut l, *f);
        }
        for t in [Some(c.start), c.progress, c.progress_media, c.answer, c.end] {
            match t {
                Some(t) => l.plain(&self.rfc3339(t)),
                None => l.plain(b""),
            }
        }
        let nums = [
            c.duration_ms(),
            c.pdd_ms(),
            c.ring_ms(),
            c.talk_ms(),
            Some(c.hold_ms()),
        ];
        for n in nums {
            match n {
                Some(n) => l.plain(Digits::new(n).as_bytes()),
                None => l.plain(b""),
            }
        }
        push_hold_events(&mut l, &c.holds);
        match c.sip_code {
            Some(n) => l.plain(Digits::new(i64::from(n)).as_bytes()),
            None => l.plain(b""),
        }
        l.plain(c.reason.map_or("", |r| r.as_str()).as_bytes());
        l.text(c.hangup_cause.unwrap_or("").as_bytes());
        l.plain(c.disposition.map_or("", |d| d.as_str()).as_bytes());
        for m in [c.caller_media, c.callee_media] {
            match m {
                Some(a) => push_addr(&mut l, &mut self.scratch, a),
                None => l.plain(b""),
            }
        }
        text(&mut l, Field::Codec);
        l.plain(if c.video { b"true" } else { b"false" });
        l.plain(c.srtp.map_or("", |s| s.as_str()).as_bytes());
        let line = l.finish();
        self.last_len = line.len();
        line
    }
}

impl Encoder {
    /// [`Timestamp::rfc3339_bytes`], the date, hour and minute kept from the last time of the
    /// same minute; the seconds and microseconds written two digits at a time.
    fn rfc3339(&mut self, t: crate::time::Timestamp) -> [u8; 27] {
        let us = t.as_micros();
        let secs = us.div_euclid(1_000_000);
        let minute = secs.div_euclid(60);
        let head = match self.minute {
            Some((m, head)) if m == minute => head,
            _ => {
                let full = t.rfc3339_bytes();
                let head = full.first_chunk::<17>().copied().unwrap_or_default();
                self.minute = Some((minute, head));
                head
            }
        };
        // `as`: remainders, 0 to 59 and 0 to 999 999.
        let sec = secs.rem_euclid(60) as usize;
        let frac = us.rem_euclid(1_000_000) as usize;
        let pair = |v: usize| PAIRS.get(v).copied().unwrap_or(*b"00");
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        if let Some(dst) = out.get_mut(..17) {
            dst.copy_from_slice(&head);
        }
        let digits = [
            (17, sec),
            (20, frac / 10_000),
            (22, frac / 100 % 100),
            (24, frac % 100),
        ];
        for (at, v) in digits {
            if let Some(dst) = out.get_mut(at..at + 2) {
                dst.copy_from_slice(&pair(v));
            }
        }
        out
    }
}

/// The two decimal digits of 0 to 99.
static PAIRS: [[u8; 2]; 100] = pairs();

const fn pairs() -> [[u8; 2]; 100] {
    let mut t = [[0u8; 2]; 100];
    let mut v = 0;
    while v < 100 {
        // `as`: each digit < 10. (Only evaluated at compile time: an index out of bounds would
        // be a build error.)
        #[allow(clippy::indexing_slicing)]
        {
            t[v] = [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        }
        v += 1;
    }
    t
}

/// A CSV line being built: every field is followed by a comma, and the last comma becomes the
/// newline. (A record of one empty field would need `""`; records here have 42 fields.)
struct Line(Vec<u8>, bool);

impl Line {
    /// A field from the wire: quoted if it holds a comma, a quote, CR or LF.
    fn text(&mut self, f: &[u8]) {
        self.text_quoted_if(f, needs_quotes(f));
    }

    /// A field from the wire, quoted when `special` (it holds a comma, a quote, CR or LF).
    fn text_quoted_if(&mut self, f: &[u8], special: bool) {
        let guard = self.1 && matches!(f.first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
        if special {
            self.0.push(b'"');
            if guard {
                self.0.push(b'\'');
            }
            // Each quote doubled: the bytes up to and with it, then one more.
            let mut rest = f;
            while let Some(q) = crate::sip::scan::find(b'"', rest) {
                let (upto, after) = rest.split_at(q + 1);
                self.0.extend_from_slice(upto);
                self.0.push(b'"');
                rest = after;
            }
            self.0.extend_from_slice(rest);
            self.0.push(b'"');
            self.0.push(b',');
        } else {
            if guard {
                self.0.push(b'\'');
            }
            self.plain(f);
        }
    }

    /// A field this program formatted (numbers, times, addresses, fixed names): never quoted.
    fn plain(&mut self, f: &[u8]) {
        debug_assert!(!f.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n')));
        self.0.extend_from_slice(f);
        self.0.push(b',');
    }

    fn finish(mut self) -> Vec<u8> {
        if let Some(last) = self.0.last_mut() {
            *last = b'\n';
        }
        self.0
    }
}

/// FreeSWITCH's `hold_events`: a PostgreSQL array literal of microsecond epochs,
/// `{{start,stop},{start,stop}}`; empty when the leg was never held. The commas make the csv
/// quote it.
fn push_hold_events(l: &mut Line, holds: &[(crate::time::Timestamp, crate::time::Timestamp)]) {
    if holds.is_empty() {
        l.plain(b"");
        return;
    }
    let mut v = Vec::with_capacity(2 + holds.len() * 36);
    v.push(b'{');
    for (i, (a, b)) in holds.iter().enumerate() {
        if i > 0 {
            v.push(b',');
        }
        v.push(b'{');
        v.extend_from_slice(Digits::new(a.as_micros()).as_bytes());
        v.push(b',');
        v.extend_from_slice(Digits::new(b.as_micros()).as_bytes());
        v.push(b'}');
    }
    v.push(b'}');
    l.text(&v);
}

/// `ip:port`, `[v6]:port`.
/// Written straight into the line, as `push_ip` writes: no buffer of its own.
fn push_addr(l: &mut Line, scratch: &mut String, a: std::net::SocketAddr) {
    if a.is_ipv6() {
        l.0.push(b'[');
    }
    push_ip(l, scratch, a.ip());
    l.0.pop(); // the comma after the address: the port follows
    if a.is_ipv6() {
        l.0.push(b']');
    }
    l.0.push(b':');
    l.plain(Digits::new(i64::from(a.port())).as_bytes());
}

/// An IP address as text; IPv4 (nearly all traffic) without the formatting machinery.
// In bounds: an octet indexes the 256-entry `OCTETS`.
#[allow(clippy::indexing_slicing)]
fn push_ip(l: &mut Line, scratch: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Each octet's digits and dot from a table, into a stack buffer, then one copy.
            let mut buf = [0u8; 16];
            let mut n = 0;
            for o in v4.octets() {
                let (text, len) = OCTETS[usize::from(o)];
                if let Some(dst) = buf.get_mut(n..n + 4) {
                    dst.copy_from_slice(&text);
                }
                n += len;
            }
            // The last dot is the field's comma.
            if let Some(last) = buf.get_mut(n.saturating_sub(1)) {
                *last = b',';
            }
            // All 16 bytes (a copy of a size known when compiling, not a `memcpy` call), then
            // the line cut back to the address's.
            let start = l.0.len();
            l.0.extend_from_slice(&buf);
            l.0.truncate(start + n);
        }
        std::net::IpAddr::V6(v6) => {
            if !push_v6(&mut l.0, v6) {
                scratch.clear();
                let _ = write!(scratch, "{v6}");
                l.0.extend_from_slice(scratch.as_bytes());
            }
            l.0.push(b',');
        }
    }
}

/// Each octet's decimal digits and a dot, left-aligned in 4 bytes, and how many of them count.
static OCTETS: [([u8; 4], usize); 256] = octets();

// Only evaluated at compile time (`OCTETS`): an index out of bounds would be a build error.
#[allow(clippy::indexing_slicing)]
const fn octets() -> [([u8; 4], usize); 256] {
    let mut t = [([0u8; 4], 0); 256];
    let mut o = 0;
    while o < 256 {
        // `as`: `o` < 256 and each digit < 10.
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 4)
        } else if o >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 3)
        } else {
            ([b'0' + u, b'.', 0, 0], 2)
        };
        o += 1;
    }
    t
}

/// Whether a field holds a comma, a quote, CR or LF (and so is quoted): 16 bytes per step, the
/// last chunk overlapping the one before, or padded when the field is shorter. The compiler's
/// vectorised byte loop spent ~130 instructions a field, most in its byte-at-a-time tail.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn needs_quotes(f: &[u8]) -> bool {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let hit = |c: &[u8; 16]| {
        let v = load_unaligned_m128i(c);
        // `as`: the bytes' bits, reinterpreted for the signed lane type.
        let eq = |b: u8| cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b as i8));
        let any = bitor_m128i(
            bitor_m128i(eq(b','), eq(b'"')),
            bitor_m128i(eq(b'\r'), eq(b'\n')),
        );
        move_mask_i8_m128i(any) != 0
    };
    let (chunks, tail) = f.as_chunks::<16>();
    if chunks.iter().any(hit) {
        return true;
    }
    if tail.is_empty() {
        return false;
    }
    match f.last_chunk::<16>() {
        Some(last) => hit(last),
        None => {
            // NUL is none of the four.
            let mut pad = [0u8; 16];
            if let Some(dst) = pad.get_mut(..tail.len()) {
                dst.copy_from_slice(tail);
            }
            hit(&pad)
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn needs_quotes(f: &[u8]) -> bool {
    f.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// An IPv6 address as `Ipv6Addr`'s `Display` writes it (RFC 5952: lower-case hex without leading
/// zeros, the longest run of two or more zero groups, the first of equals, as `::`), without the
/// formatting machinery (~1 500 instructions an address). Returns false, writing nothing, for
/// addresses whose first five groups are zero: `Display` has forms of its own there (`::`, `::1`,
/// `::ffff:a.b.c.d`), left to it.
fn push_v6(out: &mut Vec<u8>, v6: std::net::Ipv6Addr) -> bool {
    let g = v6.segments();
    if g.iter().take(5).all(|&x| x == 0) {
        return false;
    }
    // The longest run of zero groups (length >= 2; the first of equal runs).
    let (mut best, mut best_len, mut run, mut run_len) = (8, 0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        if x == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    if best_len < 2 {
        best = 8;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (mut i, mut sep) = (0, false);
    while let Some(&x) = g.get(i) {
        if i == best {
            out.extend_from_slice(b"::");
            (i, sep) = (i + best_len, false);
            continue;
        }
        if sep {
            out.push(b':');
        }
        let digits = (16 - x.leading_zeros()).div_ceil(4).max(1);
        for k in (0..digits).rev() {
            out.extend(HEX.get(usize::from((x >> (4 * k)) as u8 & 0xf)));
        }
        (i, sep) = (i + 1, true);
    }
    true
}

/// Decimal digits of an integer, on the stack.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn new(n: i64) -> Digits {
        let mut d = Digits {
            buf: [0; 20],
            start: 20,
        };
        let neg = n < 0;
        let mut v = n.unsigned_abs();
        // u64::MAX has 20 digits: with a sign, i64::MIN's 19 digits and '-' fit too. Two
        // digits a step, from the end.
        while v >= 100 {
            // `as`: below 100.
            if let (Some(pair), Some(slot)) = (
                PAIRS.get((v % 100) as usize),
                d.buf.get_mut(d.start - 2..d.start),
            ) {
                slot.copy_from_slice(pair);
            }
            d.start -= 2;
            v /= 100;
        }
        match PAIRS.get(v as usize) {
            Some(&[tens, ones]) if v >= 10 => {
                if let Some(slot) = d.buf.get_mut(d.start - 2..d.start) {
                    slot.copy_from_slice(&[tens, ones]);
                }
                d.start -= 2;
            }
            Some(&[_, ones]) => {
                if let Some(slot) = d.buf.get_mut(d.start - 1) {
                    *slot = ones;
                }
                d.start -= 1;
            }
            None => {}
        }
        if neg && let Some(slot) = d.start.checked_sub(1).and_then(|s| d.buf.get_mut(s)) {
            *slot = b'-';
            d.start -= 1;
        }
        d
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Transport;
    use proptest::prelude::*;

    fn v6_text(g: [u16; 8]) -> Option<String> {
        let mut v = Vec::new();
        push_v6(&mut v, std::net::Ipv6Addr::from(g)).then(|| String::from_utf8(v).unwrap())
    }

    #[test]
    fn ipv6_as_std_writes_it() {
        let cases: [[u16; 8]; 9] = [
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1],
            [0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], // the longer run
            [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], // equal runs: the first
            [0x2001, 0xdb8, 1, 2, 3, 4, 0, 0], // at the end
            [0, 0, 0, 0, 5, 6, 7, 8],          // at the start
            [0x2001, 0, 1, 2, 3, 4, 5, 6],     // one zero group is not compressed
            [0xfe80, 0, 0, 0, 0xaede, 0x48ff, 0xfe00, 0x1122],
            [0xffff; 8],
            [1, 0x10, 0x100, 0x1000, 0xabcd, 0, 0xf, 0xf0],
        ];
        for g in cases {
            let want = std::net::Ipv6Addr::from(g).to_string();
            assert_eq!(v6_text(g).as_deref(), Some(want.as_str()), "{g:x?}");
        }
        // The special forms are left to std.
        for g in [
            [0; 8],
            [0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0xffff, 0x0a00, 1],
        ] {
            assert_eq!(v6_text(g), None);
        }
    }

    proptest! {
        /// Times in runs of the same minute, the same day and across days, before 1970 and past
        /// 9999: the same bytes as `Timestamp::rfc3339_bytes`.
        #[test]
        fn times_same_as_rfc3339_bytes(base in any::<i64>(), steps in proptest::collection::vec(prop_oneof![0i64..60_000_000, 0i64..200_000_000_000], 1..20)) {
            let mut enc = Encoder::default();
            let mut us = base / 2;
            for step in steps {
                let t = Timestamp::from_micros(us);
                prop_assert_eq!(enc.rfc3339(t), t.rfc3339_bytes(), "{}", us);
                us = us.saturating_add(step);
            }
        }

        /// Any length and position of the four bytes that make a field quoted.
        #[test]
        fn needs_quotes_as_a_byte_loop(f in proptest::collection::vec(prop_oneof![Just(b','), Just(b'"'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()], 0..70)) {
            let want = f.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
            prop_assert_eq!(needs_quotes(&f), want);
            let clean: Vec<u8> = f.iter().map(|&b| if matches!(b, b',' | b'"' | b'\r' | b'\n') { b'x' } else { b }).collect();
            prop_assert!(!needs_quotes(&clean));
        }

        /// Every IPv4 address: the text std writes, then the field's comma.
        #[test]
        fn ipv4_same_as_std(o in proptest::array::uniform4(prop_oneof![Just(0u8), Just(9u8), Just(10u8), Just(99u8), Just(100u8), Just(255u8), any::<u8>()])) {
            let ip = std::net::Ipv4Addr::from(o);
            let mut l = Line(Vec::new(), false);
            push_ip(&mut l, &mut String::new(), ip.into());
            prop_assert_eq!(String::from_utf8(l.0).unwrap(), format!("{ip},"));
        }

        /// Any address, zero groups likely: the same text as std, or left to std.
        #[test]
        fn ipv6_same_as_std(g in proptest::array::uniform8(prop_oneof![Just(0u16), Just(1u16), any::<u16>()])) {
            if let Some(got) = v6_text(g) {
                prop_assert_eq!(got, std::net::Ipv6Addr::from(g).to_string());
            } else {
                prop_assert!(g.iter().take(5).all(|&x| x == 0));
            }
        }
    }
    use crate::cdr::{Disposition, EndReason};
    use crate::time::Timestamp;

    fn sample() -> Cdr {
        Cdr {
            leg_id: uuid::Uuid::nil(),
            session_id: uuid::Uuid::nil(),
            call_id: "a,b\"c".into(),
            direction: None,
            transport: Transport::Udp,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "[2001:db8::1]:5080".parse().unwrap(),
            text: crate::cdr::LegText::new([
                "Alice\nSmith",
                "1001",
                "2002",
                "",
                "",
                "",
                "sip:1001@a",
                "sip:2002@b",
                "",
                "",
                "PCMA/8000",
            ]),
            start: Timestamp::from_micros(1_000_000),
            progress: Some(Timestamp::from_micros(1_500_000)),
            progress_media: None,
            answer: Some(Timestamp::from_micros(3_000_000)),
            end: Some(Timestamp::from_micros(10_000_999)),
            holds: Vec::new(),
            sip_code: Some(200),
            reason: Some(EndReason::NormalRelease),
            hangup_cause: Some("NORMAL_CLEARING"),
            disposition: Some(Disposition::Caller),
            caller_media: Some("10.0.0.1:4000".parse().unwrap()),
            callee_media: Some("[2001:db8::2]:5004".parse().unwrap()),
            video: false,
            srtp: None,
            original_session_id: None,
            record: crate::cdr::RecordType::Stop,
            role: None,
        }
    }

    /// The line parsed back with the csv crate, then written again with it.
    fn round_trip(line: &[u8]) -> (csv::ByteRecord, Vec<u8>) {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line);
        let rec = rdr.byte_records().next().unwrap().unwrap();
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_byte_record(&rec).unwrap();
        (rec, w.into_inner().unwrap())
    }

    proptest::proptest! {
        /// Whatever the text columns hold, the line is what the csv crate writes for the same
        /// fields, and it reads back as those fields.
        #[test]
        fn same_bytes_as_the_csv_crate(
            texts in proptest::collection::vec("[a-z ,\"\r\n\t;=<>@é\u{1F600}]{0,12}", 8),
        ) {
            let mut c = sample();
            c.call_id = texts[0].clone();
            c.text = crate::cdr::LegText::new([
                &texts[1], &texts[2], &texts[3], &texts[4], &texts[5], &texts[6],
                &texts[7], &texts[1], &texts[2], &texts[3], &texts[4],
            ]);
            c.hangup_cause = None;
            let line = Encoder::default().encode(&c);
            let (rec, again) = round_trip(&line);
            proptest::prop_assert_eq!(&line, &again);
            proptest::prop_assert_eq!(rec.len(), COLUMNS.len());
            let col = |n: &str| COLUMNS.iter().position(|c| *c == n).unwrap();
            proptest::prop_assert_eq!(&rec[col("call_id")], texts[0].as_bytes());
            for f in Field::ALL {
                proptest::prop_assert_eq!(&rec[col(f.column())], c.text.get(f).as_bytes());
            }
        }
    }

    #[test]
    fn header_same_bytes_as_the_csv_crate() {
        let h = Encoder::default().header();
        assert_eq!(round_trip(&h).1, h);
    }

    #[test]
    fn hold_events_in_freeswitch_format() {
        let mut c = sample();
        let t = Timestamp::from_micros;
        c.holds = vec![(t(2_000_000), t(3_000_000)), (t(4_000_000), t(4_500_001))];
        let row = String::from_utf8(Encoder::default().encode(&c)).unwrap();
        assert!(
            row.contains(",1500,\"{{2000000,3000000},{4000000,4500001}}\",200,"),
            "{row}"
        );
        assert_eq!(c.hold_ms(), 1500);
    }

    #[test]
    fn ipv4_as_text() {
        for ip in ["0.0.0.0", "9.10.99.100", "255.255.255.255", "192.168.1.254"] {
            let mut l = Line(Vec::new(), false);
            push_ip(&mut l, &mut String::new(), ip.parse().unwrap());
            assert_eq!(l.finish(), format!("{ip}\n").as_bytes());
        }
    }

    #[test]
    fn digits() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            -5,
            -10,
            -100,
            1_234_567,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(Digits::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    proptest! {
        /// Every number as `to_string` writes it (two digits a step, an odd one last).
        #[test]
        fn digits_as_to_string(n in prop_oneof![any::<i64>(), -1000i64..1000]) {
            let (d, text) = (Digits::new(n), n.to_string());
            prop_assert_eq!(d.as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn encodes_a_row_with_quoting_and_durations() {
        let mut e = Encoder::default();
        let h = String::from_utf8(e.header()).unwrap();
        assert_eq!(h.trim_end().split(',').count(), COLUMNS.len());
        let row = String::from_utf8(e.encode(&sample())).unwrap();
        assert!(row.starts_with("00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000000,,stop,\"a,b\"\"c\",,,udp,10.0.0.1,5060,2001:db8::1,5080,\"Alice\nSmith\",1001,2002,,,,sip:1001@a,"), "{row}");
        assert!(row.ends_with(",1970-01-01T00:00:01.000000Z,1970-01-01T00:00:01.500000Z,,1970-01-01T00:00:03.000000Z,1970-01-01T00:00:10.000999Z,9000,500,1500,7000,0,,200,normal-release,NORMAL_CLEARING,caller,10.0.0.1:4000,[2001:db8::2]:5004,PCMA/8000,false,\n"), "{row}");
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(row.as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(rec.len(), COLUMNS.len());
    }

    #[test]
    fn csv_safe_guards_formula_starts_only_when_asked() {
        let mut plain = Line(Vec::new(), false);
        let mut safe = Line(Vec::new(), true);
        for f in [
            &b"=1+2"[..],
            b"-3",
            b"@SUM(A1)",
            b"+x",
            b"=a,b",
            b"ok",
            b"a=b",
            b"",
        ] {
            plain.text(f);
            safe.text(f);
        }
        assert_eq!(plain.finish(), b"=1+2,-3,@SUM(A1),+x,\"=a,b\",ok,a=b,\n");
        assert_eq!(
            safe.finish(),
            b"'=1+2,'-3,'@SUM(A1),'+x,\"'=a,b\",ok,a=b,\n"
        );
    }
}
