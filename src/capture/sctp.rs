//! SIP over SCTP (RFC 4168): each SIP message is one SCTP user message, carried by DATA chunks
//! (RFC 9260 §3.3.1). A chunk with both B(eginning) and E(nd) flags is a whole message and is
//! passed on borrowed, with no copy. A message fragmented over several chunks (consecutive TSNs,
//! same stream, B … E) is reassembled in a buffer per association direction and stream, bounded in
//! size, number and age; a fragment that does not continue its buffer (loss, reordering) drops
//! the message and is counted. Other chunk types (INIT, SACK, HEARTBEAT, …) are skipped.

use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::SocketAddr;

/// IP protocol number of SCTP.
pub const IP_PROTO: u8 = 132;
/// Largest reassembled message; a longer one is dropped and counted.
const MAX_MESSAGE: usize = 256 * 1024;
/// Messages under reassembly at once; past it they are all dropped and counted.
const MAX_PENDING: usize = 1024;
/// Capture-time seconds a message may wait for its next fragment.
const TIMEOUT_SECS: u32 = 30;

/// Splits an SCTP packet into (source port, destination port, chunks) after the 12-byte common
/// header (ports, verification tag, checksum; the checksum is not verified).
pub fn split(b: &[u8]) -> Option<(u16, u16, &[u8])> {
    match b {
        [s0, s1, d0, d1, _, _, _, _, _, _, _, _, chunks @ ..] => Some((
            u16::from_be_bytes([*s0, *s1]),
            u16::from_be_bytes([*d0, *d1]),
            chunks,
        )),
        _ => None,
    }
}

/// One DATA chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data<'a> {
    pub tsn: u32,
    pub stream: u16,
    pub unordered: bool,
    pub begin: bool,
    pub end: bool,
    /// The chunk was cut by the snaplen: `payload` is what arrived.
    pub cut: bool,
    pub payload: &'a [u8],
}

/// The DATA chunks of a packet, in order. Stops at a malformed chunk and sets `bad`.
pub struct DataChunks<'a> {
    rest: &'a [u8],
    pub bad: bool,
}

impl<'a> DataChunks<'a> {
    pub fn new(chunks: &'a [u8]) -> Self {
        DataChunks {
            rest: chunks,
            bad: false,
        }
    }
}

impl<'a> Iterator for DataChunks<'a> {
    type Item = Data<'a>;

    fn next(&mut self) -> Option<Data<'a>> {
        loop {
            // Fewer than 4 bytes left: padding (or nothing).
            let [ty, flags, l0, l1, ..] = *self.rest else {
                return None;
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            if len < 4 {
                self.bad = true;
                return None;
            }
            let cut = len > self.rest.len();
            let chunk = self.rest.get(..len).unwrap_or(self.rest);
            // Chunks are padded to a multiple of 4 bytes.
            self.rest = self.rest.get((len + 3) & !3..).unwrap_or_default();
            if ty != 0 {
                continue;
            }
            let [
                _,
                _,
                _,
                _,
                t0,
                t1,
                t2,
                t3,
                s0,
                s1,
                _,
                _,
                _,
                _,
                _,
                _,
                payload @ ..,
            ] = chunk
            else {
                if !cut {
                    self.bad = true;
                }
                return None;
            };
            return Some(Data {
                tsn: u32::from_be_bytes([*t0, *t1, *t2, *t3]),
                stream: u16::from_be_bytes([*s0, *s1]),
                unordered: flags & 0x04 != 0,
                begin: flags & 0x02 != 0,
                end: flags & 0x01 != 0,
                cut,
                payload,
            });
        }
    }
}

/// Counters of SCTP decoding, shown in the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct SctpStats {
    pub packets: u64,
    pub data_chunks: u64,
    /// Whole user messages passed on (single-chunk and reassembled).
    pub messages: u64,
    /// Of `messages`, those put together from several chunks.
    pub reassembled: u64,
    /// Messages lost to a missing, reordered or cut fragment, the size cap, the pending cap or
    /// the timeout.
    pub dropped: u64,
    /// Packets with a malformed chunk (the chunks before it were used).
    pub malformed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: SocketAddr,
    dst: SocketAddr,
    stream: u16,
    unordered: bool,
}

struct Partial {
    next_tsn: u32,
    buf: Vec<u8>,
    last: Timestamp,
}

/// SCTP user-message assembly for every association in the capture.
#[derive(Default)]
pub struct Sctp {
    pending: HashMap<Key, Partial, ahash::RandomState>,
    pub stats: SctpStats,
}

impl Sctp {
    /// Feeds the chunks of one SCTP packet; `emit` gets every complete user message.
    pub fn push(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        chunks: &[u8],
        ts: Timestamp,
        mut emit: impl FnMut(&[u8]),
    ) {
        self.stats.packets += 1;
        let mut it = DataChunks::new(chunks);
        for c in &mut it {
            self.stats.data_chunks += 1;
            let key = Key {
                src,
                dst,
                stream: c.stream,
                unordered: c.unordered,
            };
            if c.begin && c.end {
                self.stats.messages += 1;
                emit(c.payload);
                continue;
            }
            if c.begin {
                if c.cut {
                    self.stats.dropped += 1;
                    continue;
                }
                if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&key) {
                    self.stats.dropped += self.pending.len() as u64;
                    self.pending.clear();
                }
                let p = self.pending.entry(key).or_insert_with(|| Partial {
                    next_tsn: 0,
                    buf: Vec::new(),
                    last: ts,
                });
                if !p.buf.is_empty() {
                    self.stats.dropped += 1; // the previous message never got its end
                    p.buf.clear();
                }
                p.buf.extend_from_slice(c.payload);
                p.next_tsn = c.tsn.wrapping_add(1);
                p.last = ts;
                continue;
            }
            let Some(p) = self.pending.get_mut(&key) else {
                self.stats.dropped += 1; // a continuation whose beginning was not seen
                continue;
            };
            if p.next_tsn != c.tsn || p.buf.len() + c.payload.len() > MAX_MESSAGE || c.cut {
                self.pending.remove(&key);
                self.stats.dropped += 1;
                continue;
            }
            p.buf.extend_from_slice(c.payload);
            p.next_tsn = c.tsn.wrapping_add(1);
            p.last = ts;
            if c.end
                && let Some(p) = self.pending.remove(&key)
            {
                self.stats.messages += 1;
                self.stats.reassembled += 1;
                emit(&p.buf);
            }
        }
        if it.bad {
            self.stats.malformed += 1;
        }
    }

    /// Drops messages that have waited longer than the timeout for a fragment. Call on ticks.
    pub fn expire(&mut self, now: Timestamp) {
        if self.pending.is_empty() {
            return;
        }
        let before = self.pending.len();
        let cutoff = Timestamp::from_micros(now.as_micros() - i64::from(TIMEOUT_SECS) * 1_000_000);
        self.pending.retain(|_, p| p.last >= cutoff);
        self.stats.dropped += (before - self.pending.len()) as u64;
    }
}

/// Builders for tests here and in `decode`.
#[cfg(test)]
pub(crate) mod build {
    /// A DATA chunk (padded to 4 bytes) with flags B = 2, E = 1, U = 4.
    pub fn data(flags: u8, tsn: u32, stream: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, flags];
        v.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // stream sequence number, PPID 0
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// Common header + chunks.
    pub fn packet(sport: u16, dport: u16, chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0x13, 0x8d, 0x67, 0xa4, 0, 0, 0, 0]);
        for c in chunks {
            v.extend_from_slice(c);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn run(s: &mut Sctp, pkt: &[u8], ts: i64) -> Vec<Vec<u8>> {
        let (_, _, chunks) = split(pkt).unwrap();
        let mut out = Vec::new();
        s.push(
            addr("10.0.0.1:5060"),
            addr("10.0.0.2:5060"),
            chunks,
            Timestamp::from_secs(ts),
            |m| out.push(m.to_vec()),
        );
        out
    }

    #[test]
    fn two_data_chunks_and_a_sack_in_one_packet() {
        let sack = vec![3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 0];
        let pkt = packet(
            5060,
            5060,
            &[
                data(3, 1, 0, b"BYE a"),
                sack,
                data(7, 2, 1, b"SIP/2.0 200 OK"),
            ],
        );
        let mut s = Sctp::default();
        assert_eq!(
            run(&mut s, &pkt, 0),
            vec![b"BYE a".to_vec(), b"SIP/2.0 200 OK".to_vec()]
        );
        assert_eq!((s.stats.data_chunks, s.stats.messages), (2, 2));
    }

    #[test]
    fn fragments_are_reassembled_in_tsn_order_per_stream() {
        let mut s = Sctp::default();
        assert!(run(&mut s, &packet(1, 2, &[data(6, 10, 0, b"INVITE ")]), 0).is_empty());
        // Another stream's whole message in between does not disturb it.
        assert_eq!(
            run(&mut s, &packet(1, 2, &[data(3, 100, 1, b"X")]), 0).len(),
            1
        );
        assert!(run(&mut s, &packet(1, 2, &[data(4, 11, 0, b"sip:b ")]), 0).is_empty());
        let got = run(&mut s, &packet(1, 2, &[data(5, 12, 0, b"SIP/2.0")]), 0);
        assert_eq!(got, vec![b"INVITE sip:b SIP/2.0".to_vec()]);
        assert_eq!(s.stats.reassembled, 1);
        // A gap in the TSNs drops the message.
        run(&mut s, &packet(1, 2, &[data(2, 20, 0, b"A")]), 0);
        assert!(run(&mut s, &packet(1, 2, &[data(1, 22, 0, b"C")]), 0).is_empty());
        assert_eq!(s.stats.dropped, 1);
        // An end without a beginning is dropped too; an old beginning expires.
        run(&mut s, &packet(1, 2, &[data(1, 30, 0, b"C")]), 0);
        run(&mut s, &packet(1, 2, &[data(2, 40, 0, b"A")]), 0);
        s.expire(Timestamp::from_secs(31));
        assert_eq!(s.stats.dropped, 3);
        assert!(s.pending.is_empty());
    }

    #[test]
    fn the_size_cap_bounds_a_message() {
        let mut s = Sctp::default();
        let big = vec![b'a'; 60_000];
        run(&mut s, &packet(1, 2, &[data(2, 0, 0, &big)]), 0);
        for tsn in 1..10 {
            run(&mut s, &packet(1, 2, &[data(0, tsn, 0, &big)]), 0);
        }
        assert!(s.pending.is_empty());
        assert_eq!(s.stats.dropped, 1 + 5); // the message, then the orphaned continuations
    }

    #[test]
    fn every_prefix_of_a_packet_never_panics() {
        let pkt = packet(
            5060,
            5060,
            &[data(3, 1, 0, b"BYE a"), data(2, 2, 0, b"INV")],
        );
        for n in 0..=pkt.len() {
            let mut s = Sctp::default();
            if let Some((_, _, chunks)) = split(&pkt[..n]) {
                s.push(
                    addr("10.0.0.1:1"),
                    addr("10.0.0.2:2"),
                    chunks,
                    Timestamp::ZERO,
                    |_| {},
                );
            }
        }
        let mut bad = packet(1, 2, &[data(3, 1, 0, b"x")]);
        bad[15] = 2; // chunk length 2
        let mut s = Sctp::default();
        run(&mut s, &bad, 0);
        assert_eq!(s.stats.malformed, 1);
    }
}
