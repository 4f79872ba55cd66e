//! Stage 4: the call detail record of one leg, and its CSV form.

pub mod cause;
mod columns;

pub use columns::{COLUMNS, Encoder};

use crate::capture::Transport;
use crate::time::Timestamp;
use std::net::SocketAddr;
use uuid::Uuid;

/// Why a leg ended (`reason` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndReason {
    NormalRelease,
    CallRejected,
    CallCanceled,
    SessionExpired,
    Unterminated,
    /// Ended by sipcdr to stay under `--max-dialogs` (the oldest unanswered legs go first).
    Evicted,
    /// No final response within `--setup-timeout`, or an answered leg without session timer
    /// and without signalling for `--max-duration`.
    Timeout,
}

impl EndReason {
    pub const ALL: [EndReason; 7] = [
        EndReason::NormalRelease,
        EndReason::CallRejected,
        EndReason::CallCanceled,
        EndReason::SessionExpired,
        EndReason::Unterminated,
        EndReason::Evicted,
        EndReason::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::NormalRelease => "normal-release",
            EndReason::CallRejected => "call-rejected",
            EndReason::CallCanceled => "call-canceled",
            EndReason::SessionExpired => "session-expired",
            EndReason::Unterminated => "unterminated",
            EndReason::Evicted => "evicted",
            EndReason::Timeout => "timeout",
        }
    }
}

/// Who ended the leg (`disposition` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Caller,
    Callee,
    Timeout,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Caller => "caller",
            Disposition::Callee => "callee",
            Disposition::Timeout => "timeout",
        }
    }
}

/// Which record of a leg this is (`--records`, drachtio's attempt/start/stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// At the initial INVITE.
    Attempt,
    /// At the answer.
    Start,
    /// When the leg ends: the complete record.
    Stop,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Attempt => "attempt",
            RecordType::Start => "start",
            RecordType::Stop => "stop",
        }
    }
}

/// The leg's role seen from our host (drachtio's names): `uas` when our host received its
/// INVITE, `uac` when our host sent it, `proxy-uas` / `proxy-uac` for the incoming and the
/// outgoing leg of a Call-ID a host forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegRole {
    Uas,
    Uac,
    ProxyUas,
    ProxyUac,
}

impl LegRole {
    pub fn as_str(self) -> &'static str {
        match self {
            LegRole::Uas => "uas",
            LegRole::Uac => "uac",
            LegRole::ProxyUas => "proxy-uas",
            LegRole::ProxyUac => "proxy-uac",
        }
    }
}

/// Whether the leg's INVITE entered or left our network (`--local-net`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// The text columns of a leg, packed in one allocation (the tracker keeps one per open leg, and
/// each record clones it: one allocation per record instead of six).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegText {
    buf: Box<str>,
    ends: [u16; Field::ALL.len()],
}

impl LegText {
    /// Starts loading the text into the cache (see `tracker::calls`).
    pub fn prefetch(&self) {
        if let Some(b) = self.buf.as_bytes().first() {
            safe_arch::prefetch_t0(b);
        }
    }

    /// Starts loading every cache line of the text (the CSV encoder reads all its fields).
    pub fn prefetch_all(&self) {
        self.buf
            .as_bytes()
            .iter()
            .step_by(64)
            .for_each(safe_arch::prefetch_t0);
    }
}

/// Longest text field, in bytes: longer values from the wire are cut (at a character boundary).
/// Real names, numbers and URIs are far shorter; the cap keeps a leg's text small and bounded.
pub const MAX_FIELD: usize = 2048;

/// How much of the UTF-8 text `f` a field keeps: at most [`MAX_FIELD`] bytes, cut at a character
/// boundary (before a byte that does not continue a character).
fn cut(f: &[u8]) -> usize {
    let mut n = f.len().min(MAX_FIELD);
    while n > 0 && f.get(n).is_some_and(|&b| b & 0xc0 == 0x80) {
        n -= 1;
    }
    n
}

/// The fields' kept bytes, one after the other, and where each ends.
fn pack<F: AsRef<[u8]>>(fields: &[F; Field::ALL.len()]) -> (Vec<u8>, [u16; Field::ALL.len()]) {
    let fields = fields.each_ref().map(|f| f.as_ref());
    let mut buf = Vec::with_capacity(fields.iter().map(|f| cut(f)).sum());
    let mut ends = [0u16; Field::ALL.len()];
    for (end, f) in ends.iter_mut().zip(fields) {
        buf.extend_from_slice(f.get(..cut(f)).unwrap_or_default());
        // At most 11 fields of MAX_FIELD bytes: fits in u16.
        *end = u16::try_from(buf.len()).unwrap_or(u16::MAX);
    }
    (buf, ends)
}

/// Indices into [`LegText`], in column order.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    CallerName,
    CallerNumber,
    DestinationNumber,
    AssertedNumber,
    Privacy,
    RedirectNumber,
    FromUri,
    ToUri,
    UserAgent,
    CalleeUserAgent,
    Codec,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::CallerName,
        Field::CallerNumber,
        Field::DestinationNumber,
        Field::AssertedNumber,
        Field::Privacy,
        Field::RedirectNumber,
        Field::FromUri,
        Field::ToUri,
        Field::UserAgent,
        Field::CalleeUserAgent,
        Field::Codec,
    ];

    /// The field's column name.
    pub fn column(self) -> &'static str {
        match self {
            Field::CallerName => "caller_name",
            Field::CallerNumber => "caller_number",
            Field::DestinationNumber => "destination_number",
            Field::AssertedNumber => "asserted_number",
            Field::Privacy => "privacy",
            Field::RedirectNumber => "redirect_number",
            Field::FromUri => "from_uri",
            Field::ToUri => "to_uri",
            Field::UserAgent => "user_agent",
            Field::CalleeUserAgent => "callee_user_agent",
            Field::Codec => "codec",
        }
    }
}

impl LegText {
    /// The fields in [`Field`] order, as UTF-8 text (`sip::value::text` makes bytes from the wire
    /// so): they are checked once, together, and a field that is not UTF-8 after all is taken as
    /// `String::from_utf8_lossy` gives it.
    pub fn new<F: AsRef<[u8]>>(fields: [F; Field::ALL.len()]) -> LegText {
        let (buf, ends) = pack(&fields);
        match String::from_utf8(buf) {
            Ok(buf) => LegText {
                buf: buf.into_boxed_str(),
                ends,
            },
            Err(_) => {
                let fields = fields.map(|f| String::from_utf8_lossy(f.as_ref()).into_owned());
                let (buf, ends) = pack(&fields);
                LegText {
                    // Whole characters of UTF-8 strings: valid.
                    buf: String::from_utf8_lossy(&buf).into(),
                    ends,
                }
            }
        }
    }

    /// All the fields, one after the other.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    pub fn get(&self, f: Field) -> &str {
        self.buf.get(self.span(f)).unwrap_or("")
    }

    /// Where field `f` lies in `buf`.
    fn span(&self, f: Field) -> std::ops::Range<usize> {
        let i = f as usize;
        let end_of = |i: usize| self.ends.get(i).map_or(0, |&e| usize::from(e));
        i.checked_sub(1).map_or(0, end_of)..end_of(i)
    }

    /// Sets one field (a new allocation; done when a leg is answered or its media changes, not
    /// per message). Nothing happens when the value is already there.
    pub fn set(&mut self, f: Field, value: &str) {
        if self.get(f) == value {
            return;
        }
        // The text before the field, the new value, the text after it; the later ends move by
        // the difference in length.
        let value = value.get(..cut(value.as_bytes())).unwrap_or_default();
        let std::ops::Range { start, end } = self.span(f);
        let (Some(before), Some(after)) = (self.buf.get(..start), self.buf.get(end..)) else {
            return;
        };
        let mut buf = String::with_capacity(before.len() + value.len() + after.len());
        buf.push_str(before);
        buf.push_str(value);
        buf.push_str(after);
        let old = end - start;
        for e in self.ends.iter_mut().skip(f as usize) {
            // At most 11 fields of MAX_FIELD bytes: fits in u16.
            let moved = usize::from(*e) + value.len() - old;
            *e = u16::try_from(moved).unwrap_or(u16::MAX);
        }
        self.buf = buf.into_boxed_str();
    }
}

/// One leg's record. Durations are derived from the times, so they cannot disagree with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Cdr {
    pub leg_id: Uuid,
    pub session_id: Uuid,
    /// The session this leg was transferred from (INVITE with Replaces).
    pub original_session_id: Option<Uuid>,
    pub record: RecordType,
    pub call_id: String,
    pub role: Option<LegRole>,
    pub direction: Option<Direction>,
    pub transport: Transport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Caller name and numbers, URIs, user agents, media addresses and codec.
    pub text: LegText,
    pub start: Timestamp,
    pub progress: Option<Timestamp>,
    pub progress_media: Option<Timestamp>,
    pub answer: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Hold periods (start, stop); the sum is `hold_ms`.
    pub holds: Vec<(Timestamp, Timestamp)>,
    pub sip_code: Option<u16>,
    /// Why the leg ended; `None` in attempt and start records.
    pub reason: Option<EndReason>,
    pub hangup_cause: Option<&'static str>,
    pub disposition: Option<Disposition>,
    /// Audio addresses from the caller's and the callee's SDP.
    pub caller_media: Option<SocketAddr>,
    pub callee_media: Option<SocketAddr>,
    pub video: bool,
    pub srtp: Option<crate::sip::sdp::Srtp>,
}

impl Cdr {
    pub fn hold_ms(&self) -> i64 {
        self.holds.iter().map(|(a, b)| b.millis_since(*a)).sum()
    }

    /// Ring start as FreeSWITCH defines it: progress, else progress with media.
    pub fn ring_start(&self) -> Option<Timestamp> {
        self.progress.or(self.progress_media)
    }

    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.end?.millis_since(self.start))
    }

    pub fn pdd_ms(&self) -> Option<i64> {
        Some(self.ring_start()?.millis_since(self.start))
    }

    pub fn ring_ms(&self) -> Option<i64> {
        Some(self.answer.or(self.end)?.millis_since(self.ring_start()?))
    }

    pub fn talk_ms(&self) -> Option<i64> {
        Some(self.end?.millis_since(self.answer?))
    }

    /// The time the record belongs to, for ordering and file rotation: its end, or its start
    /// when it never ended; for attempt and start records, the INVITE and the answer.
    pub fn record_time(&self) -> Timestamp {
        match self.record {
            RecordType::Attempt => self.start,
            RecordType::Start => self.answer.unwrap_or(self.start),
            RecordType::Stop => self.end.unwrap_or(self.start),
        }
    }
}

/// A record encoded as its CSV line, with what the writer needs to order and file it.
#[derive(Clone, Debug)]
pub struct Row {
    /// Sequence number of the event that ended the leg (`u64::MAX`: end of input).
    pub seq: u64,
    /// [`Cdr::record_time`].
    pub time: Timestamp,
    pub leg_id: Uuid,
    pub record: RecordType,
    /// Why the leg ended (stop records).
    pub reason: Option<EndReason>,
    pub line: Vec<u8>,
    /// Not a record but a note for the correlation stage (`line` is empty).
    pub note: Option<Box<crate::correlate::Note>>,
}

impl Row {
    pub fn new(seq: u64, cdr: &Cdr, enc: &mut Encoder) -> Row {
        Row {
            seq,
            time: cdr.record_time(),
            leg_id: cdr.leg_id,
            record: cdr.record,
            reason: cdr.reason,
            line: enc.encode(cdr),
            note: None,
        }
    }

    /// A note for the correlation stage, ordered with the records by its packet's sequence
    /// number.
    pub fn note(seq: u64, time: Timestamp, note: crate::correlate::Note) -> Row {
        Row {
            seq,
            time,
            leg_id: Uuid::nil(),
            record: RecordType::Stop,
            reason: None,
            line: Vec::new(),
            note: Some(Box::new(note)),
        }
    }

    /// Output order: by the event that made the record, then time, then leg id. It depends only
    /// on the input, never on the number of shards or thread timing. Notes go before the records
    /// of the same event.
    pub fn key(&self) -> (u64, bool, Timestamp, Uuid, RecordType) {
        (
            self.seq,
            self.note.is_none(),
            self.time,
            self.leg_id,
            self.record,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are not UTF-8 (a field is expected to be, as `value::text` makes it) are taken
    /// as `String::from_utf8_lossy` gives them, and the other fields keep their places; a field
    /// cut at `MAX_FIELD` is cut before a whole character.
    #[test]
    fn bytes_not_utf8_are_taken_lossy() {
        let mut fields: [&[u8]; 11] = [
            b"a",
            b"\xe9t\xe9",
            b"c",
            b"",
            b"",
            b"",
            b"",
            b"",
            b"",
            b"",
            b"z",
        ];
        let t = LegText::new(fields);
        assert_eq!(t.get(Field::CallerName), "a");
        assert_eq!(t.get(Field::CallerNumber), "\u{fffd}t\u{fffd}");
        assert_eq!(t.get(Field::DestinationNumber), "c");
        assert_eq!(t.get(Field::Codec), "z");
        let long = "\u{e9}".repeat(MAX_FIELD);
        let mut odd = b"x".to_vec();
        odd.extend_from_slice(long.as_bytes());
        fields[0] = &odd;
        let t = LegText::new(fields);
        assert_eq!(t.get(Field::CallerName).len(), MAX_FIELD - 1);
        assert_eq!(t.get(Field::CallerNumber), "\u{fffd}t\u{fffd}");
        // Nothing but continuation bytes, longer than a field: no character boundary to cut at
        // before the lossy reading, which makes each a replacement character.
        let odd = vec![0x80u8; MAX_FIELD + 5];
        fields[0] = &odd;
        let t = LegText::new(fields);
        assert!(t.get(Field::CallerName).chars().all(|c| c == '\u{fffd}'));
        assert!(t.get(Field::CallerName).len() <= MAX_FIELD);
        assert_eq!(t.get(Field::Codec), "z");
    }

    /// Setting a field in place gives what building the text anew with that value gives:
    /// shorter, longer, empty, multibyte and over-long values, in every field.
    #[test]
    fn set_equals_new_with_the_value() {
        let base = [
            "Alice",
            "+4930123",
            "+4940999",
            "",
            "id",
            "",
            "sip:a@x",
            "sip:b@y",
            "UA/1",
            "",
            "PCMA/8000",
        ];
        let long = "é".repeat(MAX_FIELD); // cut at a character boundary
        for f in Field::ALL {
            for value in [
                "",
                "x",
                "a much longer value than before",
                "ünïcödé",
                long.as_str(),
            ] {
                let mut t = LegText::new(base);
                t.set(f, value);
                let mut fields = base;
                fields[f as usize] = value;
                assert_eq!(t, LegText::new(fields), "{f:?} = {value:.20}");
                for g in Field::ALL {
                    assert_eq!(t.get(g), LegText::new(fields).get(g));
                }
            }
        }
    }
}
