//! The CSV schema: column names in order, and the encoder of one record into one CSV line.

use super::{Cdr, Field};
use std::fmt::Write as _;

/// Column names, in output order.
pub const COLUMNS: [&str; 29] = [
    "leg_id",
    "session_id",
    "call_id",
    "direction",
    "transport",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "caller_name",
    "caller_number",
    "destination_number",
    "from_uri",
    "to_uri",
    "user_agent",
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
    "sip_resp_code",
    "reason",
    "hangup_cause",
    "disposition",
];

/// Encodes records into CSV lines with the csv crate (quoting only where needed), reusing one
/// record and one scratch string for every row.
pub struct Encoder {
    out: csv::Writer<Lines>,
    lines: Lines,
    record: csv::ByteRecord,
    scratch: String,
}

impl Default for Encoder {
    fn default() -> Self {
        let lines = Lines::default();
        Encoder {
            out: csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(lines.clone()),
            lines,
            record: csv::ByteRecord::new(),
            scratch: String::new(),
        }
    }
}

impl Encoder {
    /// The header line.
    pub fn header(&mut self) -> Vec<u8> {
        self.record.clear();
        for c in COLUMNS {
            self.record.push_field(c.as_bytes());
        }
        self.finish()
    }

    /// One record as a CSV line, newline included.
    pub fn encode(&mut self, c: &Cdr) -> Vec<u8> {
        self.record.clear();
        let s = &mut self.scratch;
        let r = &mut self.record;
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        r.push_field(c.leg_id.hyphenated().encode_lower(&mut uuid).as_bytes());
        r.push_field(c.session_id.hyphenated().encode_lower(&mut uuid).as_bytes());
        r.push_field(c.call_id.as_bytes());
        r.push_field(c.direction.map_or("", |d| d.as_str()).as_bytes());
        r.push_field(c.transport.as_str().as_bytes());
        push_ip(r, s, c.src.ip());
        r.push_field(Digits::new(i64::from(c.src.port())).as_bytes());
        push_ip(r, s, c.dst.ip());
        r.push_field(Digits::new(i64::from(c.dst.port())).as_bytes());
        for f in Field::ALL {
            r.push_field(c.text.get(f).as_bytes());
        }
        for t in [Some(c.start), c.progress, c.progress_media, c.answer, c.end] {
            match t {
                Some(t) => r.push_field(&t.rfc3339_bytes()),
                None => r.push_field(b""),
            }
        }
        let nums = [
            c.duration_ms(),
            c.pdd_ms(),
            c.ring_ms(),
            c.talk_ms(),
            Some(c.hold_ms),
            c.sip_code.map(i64::from),
        ];
        for n in nums {
            match n {
                Some(n) => r.push_field(Digits::new(n).as_bytes()),
                None => r.push_field(b""),
            }
        }
        r.push_field(c.reason.as_str().as_bytes());
        r.push_field(c.hangup_cause.unwrap_or("").as_bytes());
        r.push_field(c.disposition.map_or("", |d| d.as_str()).as_bytes());
        self.finish()
    }

    fn finish(&mut self) -> Vec<u8> {
        // Writing into a Vec cannot fail; an error here would be a csv crate bug, and it then
        // yields an empty line rather than a panic.
        if self.out.write_byte_record(&self.record).is_err() || self.out.flush().is_err() {
            return Vec::new();
        }
        // One exact allocation for the line; the buffer keeps its capacity for the next one.
        let mut buf = self.lines.0.borrow_mut();
        let line = buf.clone();
        buf.clear();
        line
    }
}

/// An IP address as text; IPv4 (nearly all traffic) without the formatting machinery.
fn push_ip(r: &mut csv::ByteRecord, scratch: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut b = [0u8; 15];
            let mut n = 0;
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    b[n] = b'.';
                    n += 1;
                }
                let d = Digits::new(i64::from(o));
                b[n..n + d.as_bytes().len()].copy_from_slice(d.as_bytes());
                n += d.as_bytes().len();
            }
            r.push_field(&b[..n]);
        }
        std::net::IpAddr::V6(v6) => {
            scratch.clear();
            let _ = write!(scratch, "{v6}");
            r.push_field(scratch.as_bytes());
        }
    }
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
        loop {
            d.start -= 1;
            d.buf[d.start] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 || d.start == 1 {
                break;
            }
        }
        if neg {
            d.start -= 1;
            d.buf[d.start] = b'-';
        }
        d
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The csv writer's output: a buffer the encoder takes each line from.
#[derive(Clone, Default)]
struct Lines(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Transport;
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
                "sip:1001@a",
                "sip:2002@b",
                "",
            ]),
            start: Timestamp::from_micros(1_000_000),
            progress: Some(Timestamp::from_micros(1_500_000)),
            progress_media: None,
            answer: Some(Timestamp::from_micros(3_000_000)),
            end: Some(Timestamp::from_micros(10_000_999)),
            hold_ms: 0,
            sip_code: Some(200),
            reason: EndReason::NormalRelease,
            hangup_cause: Some("NORMAL_CLEARING"),
            disposition: Some(Disposition::Caller),
        }
    }

    #[test]
    fn digits() {
        for n in [0, 7, -5, 1_234_567, i64::MIN, i64::MAX] {
            assert_eq!(Digits::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn encodes_a_row_with_quoting_and_durations() {
        let mut e = Encoder::default();
        let h = String::from_utf8(e.header()).unwrap();
        assert_eq!(h.trim_end().split(',').count(), COLUMNS.len());
        let row = String::from_utf8(e.encode(&sample())).unwrap();
        assert!(row.starts_with("00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000000,\"a,b\"\"c\",,udp,10.0.0.1,5060,2001:db8::1,5080,\"Alice\nSmith\",1001,"), "{row}");
        assert!(row.ends_with(",1970-01-01T00:00:01.000000Z,1970-01-01T00:00:01.500000Z,,1970-01-01T00:00:03.000000Z,1970-01-01T00:00:10.000999Z,9000,500,1500,7000,0,200,normal-release,NORMAL_CLEARING,caller\n"), "{row}");
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(row.as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(rec.len(), COLUMNS.len());
    }
}
