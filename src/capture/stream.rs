//! SIP over TCP: one byte buffer per direction of a connection, cut into messages by
//! Content-Length. Segments are taken in order; a retransmitted segment adds nothing, a gap drops
//! the damaged message and the stream re-synchronises on the next start line. Memory is capped per
//! flow and in flow count.

use crate::sip::{Error as SipError, Framing, Message, looks_like_sip};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::SocketAddr;

use super::decode::TcpSegment;

/// One direction of a TCP connection.
pub type FlowKey = (SocketAddr, SocketAddr);

/// Limits and counters for TCP reassembly.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    /// Bytes a flow may buffer while waiting for the end of a message.
    pub max_flow_bytes: usize,
    /// Flows tracked at once; a new flow past this is not reassembled (counted).
    pub max_flows: usize,
    /// Capture-time seconds after which a silent flow is forgotten.
    pub idle_secs: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_flow_bytes: 256 * 1024,
            max_flows: 65_536,
            idle_secs: 300,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct StreamStats {
    pub segments: u64,
    pub retransmitted: u64,
    pub gaps: u64,
    pub bytes_skipped: u64,
    pub overflows: u64,
    pub flows_refused: u64,
    pub bad_content_length: u64,
}

struct Flow {
    next_seq: u32,
    buf: Vec<u8>,
    /// False after a gap or at a mid-stream start: bytes are skipped up to a start line.
    synced: bool,
    last: Timestamp,
}

pub struct Streams {
    cfg: StreamConfig,
    flows: HashMap<FlowKey, Flow, ahash::RandomState>,
    pub stats: StreamStats,
}

impl Streams {
    pub fn new(cfg: StreamConfig) -> Self {
        Streams {
            cfg,
            flows: HashMap::default(),
            stats: StreamStats::default(),
        }
    }

    /// Adds a segment; calls `emit` with each complete SIP message it finishes.
    pub fn push(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        mut emit: impl FnMut(&[u8]),
    ) {
        self.stats.segments += 1;
        if seg.rst || (seg.fin && seg.payload.is_empty()) {
            self.flows.remove(&key);
            return;
        }
        if seg.syn {
            // A new connection: start clean after the SYN's sequence number.
            self.flows.remove(&key);
            if seg.payload.is_empty() {
                if self.flows.len() < self.cfg.max_flows {
                    let flow = Flow {
                        next_seq: seg.seq.wrapping_add(1),
                        buf: Vec::new(),
                        synced: true,
                        last: ts,
                    };
                    self.flows.insert(key, flow);
                }
                return;
            }
        }
        if seg.payload.is_empty() {
            return;
        }
        if !self.flows.contains_key(&key) && self.flows.len() >= self.cfg.max_flows {
            self.stats.flows_refused += 1;
            return;
        }
        let flow = self.flows.entry(key).or_insert_with(|| Flow {
            next_seq: seg.seq,
            buf: Vec::new(),
            synced: false,
            last: ts,
        });
        flow.last = ts;
        let mut data = seg.payload;
        let ahead = seg.seq.wrapping_sub(flow.next_seq) as i32;
        if ahead < 0 {
            // Retransmission or overlap: keep only bytes we have not had (first copy wins).
            let old = (-(ahead as i64)) as usize;
            if old >= data.len() {
                self.stats.retransmitted += 1;
                return;
            }
            data = &data[old..];
        } else if ahead > 0 {
            // A gap: the message being assembled is damaged.
            self.stats.gaps += 1;
            self.stats.bytes_skipped += flow.buf.len() as u64;
            flow.buf.clear();
            flow.synced = false;
        }
        flow.next_seq = seg.seq.wrapping_add(seg.payload.len() as u32);
        let stats = &mut self.stats;
        if flow.buf.is_empty() && flow.synced {
            // Fast path: messages entirely inside this segment are emitted without a copy.
            let used = frame(data, stats, &mut emit);
            data = &data[used..];
        }
        if data.is_empty() && flow.synced {
            return;
        }
        let segment_starts_message = !flow.synced && find_start_line(data) == Some(0);
        flow.buf.extend_from_slice(data);
        if !flow.synced {
            match find_start_line(&flow.buf) {
                Some(0) => flow.synced = true,
                // Segments usually start at a message: prefer that to a guess in damaged bytes.
                _ if segment_starts_message => {
                    let old = flow.buf.len() - data.len();
                    stats.bytes_skipped += old as u64;
                    flow.buf.drain(..old);
                    flow.synced = true;
                }
                Some(at) => {
                    stats.bytes_skipped += at as u64;
                    flow.buf.drain(..at);
                    flow.synced = true;
                }
                None => {
                    // Keep a possible partial start line (after the last line break).
                    let keep_from = flow
                        .buf
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1);
                    stats.bytes_skipped += keep_from as u64;
                    flow.buf.drain(..keep_from);
                }
            }
        }
        if flow.synced {
            let used = frame(&flow.buf, stats, &mut emit);
            flow.buf.drain(..used);
        }
        if flow.buf.len() > self.cfg.max_flow_bytes {
            stats.overflows += 1;
            stats.bytes_skipped += flow.buf.len() as u64;
            flow.buf.clear();
            flow.synced = false;
        }
    }

    /// Forgets flows idle for longer than the configured time. Call on ticks.
    pub fn expire(&mut self, now: Timestamp) {
        let idle = self.cfg.idle_secs;
        self.flows.retain(|_, f| f.last.plus_secs(idle) >= now);
    }

    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }
}

/// Emits every complete message at the start of `buf`; returns the bytes used. Stops at an
/// incomplete message, or skips to the next start line after a broken one.
fn frame(buf: &[u8], stats: &mut StreamStats, emit: &mut impl FnMut(&[u8])) -> usize {
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        if rest.iter().all(|&b| b == b'\r' || b == b'\n') {
            return buf.len(); // nothing, or keep-alive CRLFs only
        }
        match Message::parse(rest, Framing::Stream) {
            Ok(m) => {
                let skip = rest.len() - rest.trim_ascii_start().len();
                emit(&rest[skip..m.len]);
                at += m.len;
            }
            Err(SipError::Incomplete) => return at,
            Err(e) => {
                if matches!(e, SipError::BadContentLength { .. }) {
                    stats.bad_content_length += 1;
                }
                // Not a message here: skip to the next start line.
                let next = find_start_line(&rest[1..]).map_or(rest.len(), |i| i + 1);
                stats.bytes_skipped += next as u64;
                at += next;
            }
        }
    }
}

/// Offset of the first line in `buf` that parses as a SIP start line.
fn find_start_line(buf: &[u8]) -> Option<usize> {
    let mut line = 0;
    loop {
        let rest = &buf[line..];
        let end = memchr::memchr(b'\n', rest)?;
        if looks_like_sip(&rest[..end + 1])
            && !matches!(
                Message::parse(&rest[..end + 1], Framing::Datagram),
                Err(SipError::NotSip)
            )
        {
            return Some(line);
        }
        line += end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"INVITE sip:b@h SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nhello";
    const B: &[u8] = b"SIP/2.0 180 Ringing\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";

    fn key() -> FlowKey {
        (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap(),
        )
    }

    fn seg(seq: u32, payload: &[u8]) -> TcpSegment<'_> {
        TcpSegment {
            seq,
            syn: false,
            fin: false,
            rst: false,
            payload,
        }
    }

    /// Feeds `chunks` as consecutive segments, returns the messages emitted.
    fn run(s: &mut Streams, start: u32, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut seq = start;
        for c in chunks {
            s.push(key(), &seg(seq, c), Timestamp::ZERO, |m| {
                out.push(m.to_vec())
            });
            seq = seq.wrapping_add(c.len() as u32);
        }
        out
    }

    #[test]
    fn two_messages_in_one_segment_and_split_at_every_byte() {
        let both = [A, B].concat();
        let mut s = Streams::new(StreamConfig::default());
        assert_eq!(run(&mut s, 1000, &[&both]), vec![A.to_vec(), B.to_vec()]);
        for cut in 1..both.len() {
            let mut s = Streams::new(StreamConfig::default());
            let got = run(&mut s, u32::MAX - 3, &[&both[..cut], &both[cut..]]);
            assert_eq!(got, vec![A.to_vec(), B.to_vec()], "cut at {cut}");
        }
    }

    #[test]
    fn retransmission_adds_nothing() {
        let mut s = Streams::new(StreamConfig::default());
        let mut out = Vec::new();
        s.push(key(), &seg(1, &A[..20]), Timestamp::ZERO, |m| {
            out.push(m.to_vec())
        });
        s.push(key(), &seg(1, &A[..20]), Timestamp::ZERO, |m| {
            out.push(m.to_vec())
        });
        s.push(key(), &seg(11, &A[10..]), Timestamp::ZERO, |m| {
            out.push(m.to_vec())
        });
        s.push(key(), &seg(1, A), Timestamp::ZERO, |m| out.push(m.to_vec()));
        assert_eq!(out, vec![A.to_vec()]);
        assert_eq!(s.stats.retransmitted, 2);
    }

    #[test]
    fn mid_stream_start_and_gap_resynchronise() {
        let mut s = Streams::new(StreamConfig::default());
        // Starts in the middle of A's body, then B arrives whole.
        let got = run(&mut s, 50, &[&A[40..], B]);
        assert_eq!(got, vec![B.to_vec()]);
        // A gap inside A drops A only.
        let mut s = Streams::new(StreamConfig::default());
        let mut out = Vec::new();
        s.push(key(), &seg(1, &A[..30]), Timestamp::ZERO, |m| {
            out.push(m.to_vec())
        });
        let after = 1 + A.len() as u32;
        s.push(key(), &seg(after, B), Timestamp::ZERO, |m| {
            out.push(m.to_vec())
        });
        assert_eq!(out, vec![B.to_vec()]);
        assert_eq!(s.stats.gaps, 1);
    }

    #[test]
    fn garbage_is_skipped_and_capped() {
        let cfg = StreamConfig {
            max_flow_bytes: 1000,
            ..StreamConfig::default()
        };
        let mut s = Streams::new(cfg);
        let junk = vec![b'x'; 5000];
        assert!(run(&mut s, 1, &[&junk, b"\r\n", B]).len() == 1);
        // A header that never ends is dropped at the cap.
        let mut s = Streams::new(cfg);
        let mut long = b"INVITE sip:b@h SIP/2.0\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 2000));
        assert!(run(&mut s, 1, &[&long]).is_empty());
        assert_eq!(s.stats.overflows, 1);
    }
}
