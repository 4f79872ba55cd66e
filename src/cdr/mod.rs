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
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::NormalRelease,
        EndReason::CallRejected,
        EndReason::CallCanceled,
        EndReason::SessionExpired,
        EndReason::Unterminated,
        EndReason::Evicted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::NormalRelease => "normal-release",
            EndReason::CallRejected => "call-rejected",
            EndReason::CallCanceled => "call-canceled",
            EndReason::SessionExpired => "session-expired",
            EndReason::Unterminated => "unterminated",
            EndReason::Evicted => "evicted",
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegText {
    buf: Box<str>,
    ends: [u32; 6],
}

/// Indices into [`LegText`], in column order.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    CallerName,
    CallerNumber,
    DestinationNumber,
    FromUri,
    ToUri,
    UserAgent,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::CallerName,
        Field::CallerNumber,
        Field::DestinationNumber,
        Field::FromUri,
        Field::ToUri,
        Field::UserAgent,
    ];
}

impl LegText {
    /// The fields in [`Field`] order.
    pub fn new(fields: [&str; 6]) -> LegText {
        let mut buf = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; 6];
        for (i, f) in fields.iter().enumerate() {
            buf.push_str(f);
            ends[i] = buf.len() as u32;
        }
        LegText {
            buf: buf.into_boxed_str(),
            ends,
        }
    }

    pub fn get(&self, f: Field) -> &str {
        let i = f as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..self.ends[i] as usize).unwrap_or("")
    }
}

/// One leg's record. Durations are derived from the times, so they cannot disagree with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Cdr {
    pub leg_id: Uuid,
    pub session_id: Uuid,
    pub call_id: String,
    pub direction: Option<Direction>,
    pub transport: Transport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Caller name and number, destination number, From and To URIs, User-Agent.
    pub text: LegText,
    pub start: Timestamp,
    pub progress: Option<Timestamp>,
    pub progress_media: Option<Timestamp>,
    pub answer: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub hold_ms: i64,
    pub sip_code: Option<u16>,
    pub reason: EndReason,
    pub hangup_cause: Option<&'static str>,
    pub disposition: Option<Disposition>,
}

impl Cdr {
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
    /// when it never ended.
    pub fn record_time(&self) -> Timestamp {
        self.end.unwrap_or(self.start)
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
    pub reason: EndReason,
    pub line: Vec<u8>,
}

impl Row {
    pub fn new(seq: u64, cdr: &Cdr, enc: &mut Encoder) -> Row {
        Row {
            seq,
            time: cdr.record_time(),
            leg_id: cdr.leg_id,
            reason: cdr.reason,
            line: enc.encode(cdr),
        }
    }

    /// Output order: by the event that ended the leg, then time, then leg id. It depends only on
    /// the input, never on the number of shards or thread timing.
    pub fn key(&self) -> (u64, Timestamp, Uuid) {
        (self.seq, self.time, self.leg_id)
    }
}
