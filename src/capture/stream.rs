//! SIP over TCP, and over WebSocket on TCP: one byte stream per direction of a connection,
//! reassembled by sequence number and cut into messages.
//!
//! - Segments that arrive ahead of a hole wait (bounded, [`StreamConfig::reorder_secs`]) for the
//!   missing bytes; retransmitted and overlapping bytes are dropped (the first copy wins), so a
//!   retransmission never makes a second message.
//! - A hole that is never filled is a gap: the damaged message is dropped and the stream
//!   re-synchronises on the next SIP start line (or WebSocket frame carrying one).
//! - What the stream carries is decided by content: SIP (framed by Content-Length), an HTTP
//!   Upgrade then WebSocket frames, or TLS records (counted, never decoded).
//! - FIN and RST end a flow, idle flows are forgotten, and buffers are capped per flow and in
//!   total; every cap reached is counted, never an abort.

use super::Transport;
use super::decode::TcpSegment;
use super::ws;
use crate::sip::{Error as SipError, Framing, Message, looks_like_sip};
use crate::time::Timestamp;
use crate::timers::Timers;
use hashbrown::hash_table::{Entry, HashTable};
use std::net::SocketAddr;

/// One direction of a TCP connection: (source, destination).
pub type FlowKey = (SocketAddr, SocketAddr);

/// A [`FlowKey`] as the flow table and the wheel of checks hold it: 40 bytes instead of 64 (no
/// flow label or scope id, which decoded packets never carry). Ordered as the pair of addresses
/// it stands for, so what is sorted by it comes out in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    src: Addr,
    dst: Addr,
}

/// An address and port; IPv4 in the first 4 bytes. (Field order: `SocketAddr`'s ordering.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Addr {
    v6: bool,
    ip: [u8; 16],
    port: u16,
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        let mut ip = [0u8; 16];
        let v6 = match a {
            SocketAddr::V4(a) => {
                if let Some(head) = ip.get_mut(..4) {
                    head.copy_from_slice(&a.ip().octets());
                }
                false
            }
            SocketAddr::V6(a) => {
                ip = a.ip().octets();
                true
            }
        };
        Addr {
            v6,
            ip,
            port: a.port(),
        }
    }
}

impl From<Addr> for SocketAddr {
    fn from(a: Addr) -> SocketAddr {
        if a.v6 {
            SocketAddr::new(std::net::Ipv6Addr::from(a.ip).into(), a.port)
        } else {
            let [o0, o1, o2, o3, ..] = a.ip;
            SocketAddr::new(std::net::Ipv4Addr::new(o0, o1, o2, o3).into(), a.port)
        }
    }
}

impl Key {
    fn new((src, dst): FlowKey) -> Key {
        Key {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn addrs(self) -> FlowKey {
        (self.src.into(), self.dst.into())
    }

    fn reverse(self) -> Key {
        Key {
            src: self.dst,
            dst: self.src,
        }
    }
}

/// The flow table. hashbrown's `HashTable` rather than a `HashMap` for the one thing a map does
/// not offer: where a key's entry lies can be found without reading the entry, so a lookup known
/// in advance can start loading it ([`Table::prefetch`], for [`Streams::expire`]'s checks). At
/// 1 M open legs (~200 000 flows, a table of ~40 MB) each lookup missed the cache: the table's
/// lookups were 5 % of all CPU (perf, the 1 M-open-leg capture), 1 % at 1 k. (Segments are not
/// prefetched: a prefetch one packet ahead only moved the wait to the control bytes it reads.)
#[derive(Default)]
struct Table {
    hasher: ahash::RandomState,
    flows: HashTable<(Key, Flow)>,
}

impl Table {
    fn hash(&self, key: &Key) -> u64 {
        self.hasher.hash_one(key)
    }

    fn len(&self) -> usize {
        self.flows.len()
    }

    fn get(&self, key: &Key) -> Option<&Flow> {
        let h = self.hash(key);
        self.flows.find(h, |(k, _)| k == key).map(|(_, f)| f)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Flow> {
        let h = self.hash(key);
        self.flows.find_mut(h, |(k, _)| k == key).map(|(_, f)| f)
    }

    fn remove(&mut self, key: &Key) -> Option<Flow> {
        let h = self.hash(key);
        let e = self.flows.find_entry(h, |(k, _)| k == key).ok()?;
        Some(e.remove().0.1)
    }

    fn entry(&mut self, key: Key) -> Entry<'_, (Key, Flow)> {
        let Table { hasher, flows } = self;
        flows.entry(
            hasher.hash_one(key),
            |(k, _)| *k == key,
            |(k, _)| hasher.hash_one(k),
        )
    }

    fn iter(&self) -> impl Iterator<Item = &(Key, Flow)> {
        self.flows.iter()
    }

    /// Starts loading the entry of `key`, if it is held: the first entry on its probe path
    /// whose 7 bits of hash match, most likely its own (a wrong guess costs a wasted load). Reads
    /// the table's control bytes, not the entries; at 1 M open legs those bytes miss the cache
    /// too, so a prefetch pays off only issued well ahead, as a tick's batch of checks allows.
    fn prefetch(&self, key: &Key) {
        let h = self.hash(key);
        if let Some((k, f)) = self
            .flows
            .find_bucket_index(h, |_| true)
            .and_then(|i| self.flows.get_bucket(i))
        {
            // An entry is 80 bytes: two lines when it straddles a boundary.
            safe_arch::prefetch_t0(k);
            safe_arch::prefetch_t0(&f.bufs);
        }
    }
}

/// How many checks ahead [`Streams::expire`] starts loading a flow's entry: far enough for it to
/// arrive while the checks before it are handled.
const CHECKS_AHEAD: usize = 8;

/// How long a flow stays in the table after its FIN, so that segments retransmitted after it
/// open no new flow (TCP's retransmission timer starts at 1 s, RFC 6298). Kept until the idle
/// timeout instead, closed connections filled the table at ~110 new connections per second
/// (65 536 flows, 300 s) and later connections were refused: the 10 M-call soak lost 7 % of its
/// calls.
pub const CLOSED_LINGER_SECS: u32 = 5;

/// Flows held at once by default: a connection is two, so 524 288 connections. At 65 536 the
/// 1 M-open-leg benchmark (10 % of calls on TCP, one connection each, a few hundred thousand flows
/// open at the peak) had 486 478 segments refused and lost or cut 75 292 of its 1 500 000 CDRs. An
/// idle flow costs its 177-byte table entry (`open_flows_cost_no_buffer_while_idle`) plus a
/// 68-byte check on the wheel and the table's slack: ~300 MiB at the cap.
pub const DEFAULT_MAX_FLOWS: usize = 1 << 20;

/// Limits for TCP reassembly.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    /// Bytes one flow may hold (unfinished message plus out-of-order segments).
    pub max_flow_bytes: usize,
    /// Bytes all flows together may hold.
    pub max_total_bytes: usize,
    /// Flows (connection directions) tracked at once; a new flow past this is not reassembled
    /// (counted). `--tcp-max-flows`.
    pub max_flows: usize,
    /// Capture-time seconds after which a silent flow is forgotten.
    pub idle_secs: u32,
    /// Capture-time seconds out-of-order segments wait for a missing one before it counts as lost.
    pub reorder_secs: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_flow_bytes: 256 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_flows: DEFAULT_MAX_FLOWS,
            idle_secs: 300,
            reorder_secs: 3,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct StreamStats {
    pub segments: u64,
    /// Segments that brought no new byte (retransmissions).
    pub retransmitted: u64,
    /// Segments that partly repeated bytes already had.
    pub overlapping: u64,
    /// Segments that arrived ahead of a missing one.
    pub out_of_order: u64,
    /// Holes given up on (lost segments, or a capture that started mid-stream).
    pub gaps: u64,
    pub bytes_skipped: u64,
    /// A flow's buffer passed `max_flow_bytes`.
    pub flow_overflows: u64,
    /// All flows' buffers together passed `max_total_bytes`.
    pub total_overflows: u64,
    /// Segments of new flows not read because `max_flows` flows were held (`--tcp-max-flows`).
    pub segments_refused: u64,
    pub flows_closed: u64,
    pub flows_expired: u64,
    pub bad_content_length: u64,
    /// Connections that switched to WebSocket, and the SIP messages they carried.
    pub ws_flows: u64,
    pub ws_messages: u64,
    /// WebSocket frames that could not be read (bad header, compressed, protocol error).
    pub ws_bad_frames: u64,
    /// Connections carrying TLS records: encrypted, not decodable passively.
    pub tls_flows: u64,
    pub tls_bytes: u64,
}

/// What a flow's bytes are, as far as we know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Looking for a place to start: a SIP start line, an HTTP Upgrade, TLS, or (`ws`, after a
    /// WebSocket flow lost its place) a frame carrying SIP.
    Lost {
        ws: bool,
    },
    Sip,
    Ws,
    Tls,
    /// FIN seen and every byte before it read: later segments are retransmissions.
    Closed,
}

/// A segment that arrived ahead of the next expected byte.
struct Pending {
    seq: u32,
    ts: Timestamp,
    data: Vec<u8>,
}

struct Flow {
    next_seq: u32,
    mode: Mode,
    /// Sequence number just after the FIN, once seen.
    fin_at: Option<u32>,
    last: Timestamp,
    /// The time of this flow's check in [`Streams::checks`]: never later than [`Flow::due`].
    check: Timestamp,
    /// What the flow holds between segments, if anything: boxed, as most flows hold nothing
    /// most of the time (a flow is 40 bytes instead of 112; at 1 M open legs, with a few hundred
    /// thousand flows, the table was 46 MB).
    bufs: Option<Box<Bufs>>,
}

#[derive(Default)]
struct Bufs {
    /// In-order bytes not yet cut into messages.
    buf: Vec<u8>,
    /// Segments ahead of `next_seq`, sorted by sequence number, not overlapping.
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// WebSocket message being assembled from frames (unmasked).
    ws_msg: Vec<u8>,
}

impl Flow {
    fn new(next_seq: u32, mode: Mode, ts: Timestamp) -> Flow {
        Flow {
            next_seq,
            mode,
            fin_at: None,
            last: ts,
            check: Timestamp::from_micros(i64::MAX),
            bufs: None,
        }
    }

    fn buf(&self) -> &[u8] {
        self.bufs.as_ref().map_or(&[], |b| &b.buf)
    }

    fn pending(&self) -> &[Pending] {
        self.bufs.as_ref().map_or(&[], |b| &b.pending)
    }

    fn ws_msg(&self) -> &[u8] {
        self.bufs.as_ref().map_or(&[], |b| &b.ws_msg)
    }

    /// The buffers, made when first needed.
    fn bufs(&mut self) -> &mut Bufs {
        self.bufs.get_or_insert_default()
    }

    /// Drops the buffers once they hold nothing.
    fn tidy(&mut self) {
        if self.held() == 0 && self.bufs.as_ref().is_some_and(|b| b.pending.is_empty()) {
            self.bufs = None;
        }
    }

    /// How long the flow stays after its last segment: a closed one briefly, others until idle.
    fn linger(&self, cfg: &StreamConfig) -> u32 {
        match self.mode {
            Mode::Closed => CLOSED_LINGER_SECS,
            _ => cfg.idle_secs,
        }
    }

    /// When [`Streams::expire`] has work for this flow: its oldest out-of-order segment has waited
    /// `reorder_secs`, or it has been silent for its linger time.
    fn due(&self, cfg: &StreamConfig) -> Timestamp {
        let idle = self.last.plus_secs(self.linger(cfg));
        match self.pending().first() {
            Some(p) => idle.min(p.ts.plus_secs(cfg.reorder_secs)),
            None => idle,
        }
    }

    fn held(&self) -> usize {
        self.bufs
            .as_ref()
            .map_or(0, |b| b.buf.len() + b.pending_bytes + b.ws_msg.len())
    }
}

/// Where a finished message goes: (flow, time of the packet that completed it, transport, bytes).
pub trait Emit: FnMut(FlowKey, Timestamp, Transport, &[u8]) {}
impl<F: FnMut(FlowKey, Timestamp, Transport, &[u8])> Emit for F {}

pub struct Streams {
    cfg: StreamConfig,
    flows: Table,
    /// When to look at which flow, earliest first, so a tick visits only the flows with work
    /// instead of every flow (at 1 M open calls the every-second scan of ~100 000 TCP flows took
    /// 5 % of all CPU). A flow's check comes no later than it is due; as its activity pushes the
    /// due time back, the check is moved only when it fires. Checks of flows that are gone, or
    /// that a sooner check superseded, are passed over.
    ///
    /// On a wheel of seconds (`crate::timers`), not a heap: with a few hundred thousand open
    /// flows the heap's pops, each a walk down ~18 levels of cold 72-byte entries, were 3 % of
    /// all CPU (perf, the 1 M-open-leg capture).
    checks: Timers<Key>,
    /// The checks a tick found due ([`Streams::expire`]), kept for the next tick's.
    due: Vec<(Timestamp, Key)>,
    /// Bytes held by all flows.
    held: usize,
    pub stats: StreamStats,
}

impl Streams {
    pub fn new(cfg: StreamConfig) -> Self {
        Streams {
            cfg,
            flows: Table::default(),
            checks: Timers::default(),
            due: Vec::new(),
            held: 0,
            stats: StreamStats::default(),
        }
    }

    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes held by all flows (unfinished messages and out-of-order segments).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Adds one segment of flow `key`; emits each message it completes.
    pub fn push(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        emit: &mut impl Emit,
    ) {
        self.stats.segments += 1;
        let k = Key::new(key);
        if seg.rst {
            // The connection is gone in both directions.
            for k in [k, k.reverse()] {
                if let Some(f) = self.flows.remove(&k) {
                    self.held -= f.held();
                    self.stats.flows_closed += 1;
                }
            }
            return;
        }
        let mut seq = seg.seq;
        if seg.syn {
            // A new connection: start clean after the SYN's sequence number (in the place of a
            // flow with the same addresses, which needs no room).
            seq = seq.wrapping_add(1);
            let fresh = Flow::new(seq, Mode::Lost { ws: false }, ts);
            let full = self.flows.len() >= self.cfg.max_flows;
            let flow = match self.flows.entry(k) {
                Entry::Occupied(e) => {
                    let flow = &mut e.into_mut().1;
                    self.held -= flow.held();
                    *flow = fresh;
                    flow
                }
                Entry::Vacant(_) if full => {
                    self.stats.segments_refused += 1;
                    return;
                }
                Entry::Vacant(e) => &mut e.insert((k, fresh)).into_mut().1,
            };
            arm(&mut self.checks, k, flow, &self.cfg, ts);
            if seg.payload.is_empty() && !seg.fin {
                return;
            }
        }
        if seg.payload.is_empty() && !seg.fin {
            return; // a bare ACK
        }
        // One lookup: a flow already running when the capture started is created here, and
        // bytes before its first start line are skipped.
        let full = self.flows.len() >= self.cfg.max_flows;
        let flow = match self.flows.entry(k) {
            Entry::Occupied(e) => &mut e.into_mut().1,
            Entry::Vacant(_) if full => {
                self.stats.segments_refused += 1;
                return;
            }
            Entry::Vacant(e) => {
                let fresh = Flow::new(seq, Mode::Lost { ws: false }, ts);
                &mut e.insert((k, fresh)).into_mut().1
            }
        };
        let before = flow.held();
        flow.last = ts;
        if seg.fin {
            flow.fin_at = Some(seq.wrapping_add(seg.payload.len() as u32));
        }
        let cfg = &self.cfg;
        let stats = &mut self.stats;
        let (tls, ws) = (stats.tls_flows, stats.ws_flows);
        accept(flow, key, seq, seg.payload, ts, cfg, stats, emit);
        let mode = flow.mode;
        let after = flow.held();
        self.held = self.held - before + after;
        if self.held > cfg.max_total_bytes {
            // Over the global cap: this flow gives up what it holds.
            stats.total_overflows += 1;
            stats.bytes_skipped += after as u64;
            reset(flow);
            self.held -= after;
        }
        arm(&mut self.checks, k, flow, cfg, ts);
        if self.stats.tls_flows == tls && self.stats.ws_flows == ws {
            return;
        }
        // Connections are counted once, not once per direction.
        let reverse = self.flows.get(&k.reverse()).map(|f| f.mode);
        if self.stats.tls_flows > tls && reverse == Some(Mode::Tls) {
            self.stats.tls_flows -= 1;
        }
        if self.stats.ws_flows > ws
            && mode == Mode::Ws
            && matches!(reverse, Some(Mode::Ws | Mode::Lost { ws: true }))
        {
            self.stats.ws_flows -= 1;
        }
    }

    /// On clock ticks: gives up on holes older than `reorder_secs`, forgets flows idle for
    /// `idle_secs` (after reading what they hold), and closed flows [`CLOSED_LINGER_SECS`] after
    /// their last segment.
    pub fn expire(&mut self, now: Timestamp, emit: &mut impl Emit) {
        let cfg = self.cfg;
        let mut late: Vec<Key> = Vec::new();
        // The due checks first, then their flows, each flow's entry loaded a few checks ahead:
        // at 1 M open legs a tick's thousand-odd lookups each missed the cache (perf: 2 % of
        // all CPU). No check armed below is due before `now`, so none is left out.
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        while let Some(check) = self.checks.pop_due(now) {
            due.push(check);
        }
        for (i, &(t, key)) in due.iter().enumerate() {
            if let Some((_, ahead)) = due.get(i + CHECKS_AHEAD) {
                self.flows.prefetch(ahead);
            }
            let Some(flow) = self.flows.get_mut(&key).filter(|f| f.check == t) else {
                continue;
            };
            if flow.due(&cfg) < now {
                late.push(key);
            } else {
                // Activity since the check was set: look again when the flow is due.
                rearm(&mut self.checks, key, flow, &cfg, now);
            }
        }
        self.due = due;
        // Emission order must not depend on the order of the checks.
        late.sort_unstable();
        for key in late {
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            let before = flow.held();
            while !flow.pending().is_empty() {
                skip_hole(flow, key.addrs(), &cfg, &mut self.stats, emit);
            }
            let idle = flow.last.plus_secs(flow.linger(&cfg)) < now;
            let closed = flow.mode == Mode::Closed; // counted in flows_closed already
            self.held = self.held - before + flow.held();
            if idle {
                self.held -= flow.held();
                self.flows.remove(&key);
                self.stats.flows_expired += u64::from(!closed);
            } else {
                rearm(&mut self.checks, key, flow, &cfg, now);
            }
        }
        // Checks of flows that are gone (RST, a new SYN) wait for their time; when they outnumber
        // the flows, drop them, so the wheel stays proportional to the flows held.
        if self.checks.len() > 2 * self.flows.len() + 4096 {
            let flows = &self.flows;
            self.checks
                .retain(|t, k| flows.get(&k).is_some_and(|f| f.check == t));
        }
    }

    /// At the end of the input: reads what waits behind holes, so that no complete message is lost.
    pub fn finish(&mut self, emit: &mut impl Emit) {
        let mut keys: Vec<Key> = self
            .flows
            .iter()
            .filter(|(_, f)| !f.pending().is_empty())
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(flow) = self.flows.get_mut(&key) {
                while !flow.pending().is_empty() {
                    skip_hole(flow, key.addrs(), &self.cfg, &mut self.stats, emit);
                }
            }
        }
    }
}

/// Sets a check for the time `flow` is due, unless one at least as soon is set.
fn arm(checks: &mut Timers<Key>, key: Key, flow: &mut Flow, cfg: &StreamConfig, now: Timestamp) {
    let due = flow.due(cfg);
    if due < flow.check {
        flow.check = due;
        checks.push(due, key, now);
    }
}

/// Sets a check for the time `flow` is due, whatever check it had (that one has fired).
fn rearm(checks: &mut Timers<Key>, key: Key, flow: &mut Flow, cfg: &StreamConfig, now: Timestamp) {
    flow.check = Timestamp::from_micros(i64::MAX);
    arm(checks, key, flow, cfg, now);
}

/// Takes the bytes of one segment starting at sequence number `seq`.
#[allow(clippy::too_many_arguments)]
fn accept(
    flow: &mut Flow,
    key: FlowKey,
    seq: u32,
    payload: &[u8],
    ts: Timestamp,
    cfg: &StreamConfig,
    stats: &mut StreamStats,
    emit: &mut impl Emit,
) {
    let ahead = seq.wrapping_sub(flow.next_seq) as i32;
    if ahead > 0 {
        if payload.is_empty() {
            return; // a FIN after a hole: noted in fin_at
        }
        stats.out_of_order += 1;
        if ahead as usize > cfg.max_flow_bytes {
            // Too far ahead to be reordering: the bytes in between are lost.
            hold(flow, seq, payload, ts, stats);
            skip_hole(flow, key, cfg, stats, emit);
        } else {
            hold(flow, seq, payload, ts, stats);
            while flow.held() > cfg.max_flow_bytes && !flow.pending().is_empty() {
                stats.flow_overflows += 1;
                skip_hole(flow, key, cfg, stats, emit);
            }
        }
        return;
    }
    let old = (-ahead) as usize;
    if ahead < 0 {
        if old >= payload.len() {
            if !payload.is_empty() {
                stats.retransmitted += 1;
            }
            close_if_done(flow, stats);
            return;
        }
        stats.overlapping += 1;
    }
    let data = payload.get(old..).unwrap_or_default();
    flow.next_seq = flow.next_seq.wrapping_add(data.len() as u32);
    feed(flow, key, data, ts, cfg, stats, emit);
    drain_pending(flow, key, ts, cfg, stats, emit);
    close_if_done(flow, stats);
    flow.tidy();
}

/// Stores an out-of-order segment; bytes that overlap what is already held are dropped.
fn hold(flow: &mut Flow, seq: u32, payload: &[u8], ts: Timestamp, stats: &mut StreamStats) {
    let base = flow.next_seq;
    let rel = |s: u32| s.wrapping_sub(base) as usize;
    let (mut start, end) = (rel(seq), rel(seq) + payload.len());
    // The parts of [start, end) that no held segment covers.
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    for p in flow.pending() {
        let (ps, pe) = (rel(p.seq), rel(p.seq) + p.data.len());
        if pe <= start {
            continue;
        }
        if ps >= end {
            break;
        }
        if start < ps {
            pieces.push((start, ps));
        }
        start = start.max(pe);
    }
    if start < end {
        pieces.push((start, end));
    }
    let new: usize = pieces.iter().map(|(s, e)| e - s).sum();
    if new == 0 {
        stats.retransmitted += 1;
        return;
    }
    if new < payload.len() {
        stats.overlapping += 1;
    }
    let first = rel(seq);
    let b = flow.bufs();
    for (s, e) in pieces {
        let at = b
            .pending
            .iter()
            .position(|q| rel(q.seq) > s)
            .unwrap_or(b.pending.len());
        let p = Pending {
            seq: base.wrapping_add(s as u32),
            ts,
            data: payload
                .get(s - first..e - first)
                .unwrap_or_default()
                .to_vec(),
        };
        b.pending.insert(at, p);
        b.pending_bytes += e - s;
    }
}

/// Feeds held segments that have become contiguous.
fn drain_pending(
    flow: &mut Flow,
    key: FlowKey,
    ts: Timestamp,
    cfg: &StreamConfig,
    stats: &mut StreamStats,
    emit: &mut impl Emit,
) {
    while let Some(p) = flow.pending().first() {
        let ahead = p.seq.wrapping_sub(flow.next_seq) as i32;
        if ahead > 0 {
            return;
        }
        let b = flow.bufs();
        let p = b.pending.remove(0);
        b.pending_bytes -= p.data.len();
        let old = (-ahead) as usize;
        if old < p.data.len() {
            let data = p.data.get(old..).unwrap_or_default();
            flow.next_seq = flow.next_seq.wrapping_add(data.len() as u32);
            // The message is complete now, with the packet that filled the hole.
            feed(flow, key, data, ts.max(p.ts), cfg, stats, emit);
        }
    }
}

/// Gives up on the hole before the first held segment: what was being assembled is damaged.
fn skip_hole(
    flow: &mut Flow,
    key: FlowKey,
    cfg: &StreamConfig,
    stats: &mut StreamStats,
    emit: &mut impl Emit,
) {
    let Some(first) = flow.pending().first() else {
        return;
    };
    let (seq, ts) = (first.seq, first.ts);
    stats.gaps += 1;
    stats.bytes_skipped += (flow.buf().len() + flow.ws_msg().len()) as u64;
    let b = flow.bufs();
    b.buf.clear();
    b.ws_msg.clear();
    flow.mode = match flow.mode {
        Mode::Ws | Mode::Lost { ws: true } => Mode::Lost { ws: true },
        Mode::Tls => Mode::Tls,
        _ => Mode::Lost { ws: false },
    };
    flow.next_seq = seq;
    drain_pending(flow, key, ts, cfg, stats, emit);
    close_if_done(flow, stats);
    flow.tidy();
}

fn close_if_done(flow: &mut Flow, stats: &mut StreamStats) {
    if flow.mode != Mode::Closed && flow.fin_at == Some(flow.next_seq) && flow.pending().is_empty()
    {
        stats.flows_closed += 1;
        stats.bytes_skipped += (flow.buf().len() + flow.ws_msg().len()) as u64;
        flow.mode = Mode::Closed;
        flow.bufs = None; // nothing is pending
    }
}

/// Drops what a flow holds; it re-synchronises on what comes next.
fn reset(flow: &mut Flow) {
    flow.bufs = None;
    if flow.mode != Mode::Tls {
        flow.mode = Mode::Lost {
            ws: matches!(flow.mode, Mode::Ws | Mode::Lost { ws: true }),
        };
    }
}

/// In-order bytes: cuts them into messages according to what the flow carries.
fn feed(
    flow: &mut Flow,
    key: FlowKey,
    mut data: &[u8],
    ts: Timestamp,
    cfg: &StreamConfig,
    stats: &mut StreamStats,
    emit: &mut impl Emit,
) {
    match flow.mode {
        Mode::Closed => return,
        Mode::Tls => {
            stats.tls_bytes += data.len() as u64;
            return;
        }
        Mode::Sip if flow.buf().is_empty() => {
            // Fast path: messages entirely inside this segment are emitted without a copy.
            let used = frame_sip(data, stats, &mut |m| emit(key, ts, Transport::Tcp, m));
            data = data.get(used..).unwrap_or_default();
            if data.is_empty() {
                return;
            }
        }
        _ => {}
    }
    let lost = flow.mode == (Mode::Lost { ws: false });
    let b = flow.bufs();
    let old = b.buf.len();
    b.buf.extend_from_slice(data);
    if lost && old > 0 && !starts_something(&b.buf) && starts_something(data) {
        // Segments usually start at a message: prefer that to a guess in damaged bytes.
        stats.bytes_skipped += old as u64;
        b.buf.drain(..old);
    }
    loop {
        match flow.mode {
            Mode::Sip => {
                let b = flow.bufs();
                let used = frame_sip(&b.buf, stats, &mut |m| emit(key, ts, Transport::Tcp, m));
                b.buf.drain(..used);
                break;
            }
            Mode::Ws => {
                let used = frame_ws(flow, stats, &mut |m| emit(key, ts, Transport::Ws, m));
                flow.bufs().buf.drain(..used);
                if flow.mode == Mode::Ws {
                    break;
                }
            }
            Mode::Tls => {
                let b = flow.bufs();
                stats.tls_bytes += b.buf.len() as u64;
                b.buf.clear();
                break;
            }
            Mode::Closed => break,
            Mode::Lost { ws } => match sync(flow.buf(), ws) {
                Sync::At(at, mode) => {
                    stats.bytes_skipped += at as u64;
                    flow.bufs().buf.drain(..at);
                    match mode {
                        Mode::Tls => stats.tls_flows += 1,
                        Mode::Ws if !ws => stats.ws_flows += 1,
                        _ => {}
                    }
                    flow.mode = mode;
                }
                Sync::Upgrade(at) => {
                    flow.bufs().buf.drain(..at);
                    stats.ws_flows += 1;
                    flow.mode = Mode::Ws;
                }
                Sync::Wait(keep_from) => {
                    stats.bytes_skipped += keep_from as u64;
                    flow.bufs().buf.drain(..keep_from);
                    break;
                }
            },
        }
    }
    if let Some(b) = flow.bufs.as_mut()
        && b.buf.is_empty()
    {
        // Most messages fit in one segment: an idle flow keeps no buffer of its last split one
        // (a message's size each, for every connection whose messages get split).
        b.buf = Vec::new();
    }
    if flow.held() > cfg.max_flow_bytes {
        stats.flow_overflows += 1;
        stats.bytes_skipped += (flow.buf().len() + flow.ws_msg().len()) as u64;
        let b = flow.bufs();
        b.buf.clear();
        b.ws_msg.clear();
        if flow.mode != Mode::Tls {
            flow.mode = Mode::Lost {
                ws: flow.mode == Mode::Ws,
            };
        }
    }
}

/// Whether a segment's first bytes begin something we can read from.
fn starts_something(data: &[u8]) -> bool {
    find_start_line(data) == Some(0) || ws::upgrade(data) != ws::Upgrade::NotHttp
}

enum Sync {
    /// Read from this offset in this mode.
    At(usize, Mode),
    /// An HTTP Upgrade to WebSocket: frames start at this offset.
    Upgrade(usize),
    /// Nothing yet: drop bytes before this offset and wait for more.
    Wait(usize),
}

fn sync(buf: &[u8], ws_before: bool) -> Sync {
    if ws_before {
        return match ws::find_sip_frame(buf) {
            Some(at) => Sync::At(at, Mode::Ws),
            // A frame header may be cut at the end: keep the last few bytes.
            None => Sync::Wait(buf.len().saturating_sub(14)),
        };
    }
    if is_tls_record(buf) {
        return Sync::At(0, Mode::Tls);
    }
    match ws::upgrade(buf) {
        ws::Upgrade::WebSocket(at) => return Sync::Upgrade(at),
        ws::Upgrade::Incomplete => return Sync::Wait(0),
        ws::Upgrade::Plain | ws::Upgrade::NotHttp => {}
    }
    if let Some(at) = find_start_line(buf) {
        return Sync::At(at, Mode::Sip);
    }
    if let Some(at) = ws::find_sip_frame(buf) {
        // WebSocket frames carrying SIP, in a connection whose upgrade was not captured.
        return Sync::At(at, Mode::Ws);
    }
    // Keep a possible partial start line (after the last line break).
    let keep_from = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Sync::Wait(keep_from)
}

/// A TLS record header: content type 20-23, version 3.x, a plausible length.
fn is_tls_record(b: &[u8]) -> bool {
    match b {
        [t, 3, minor, hi, lo, ..] => {
            (20..=23).contains(t) && *minor <= 4 && u16::from_be_bytes([*hi, *lo]) <= 16_384 + 2048
        }
        _ => false,
    }
}

/// Emits every complete SIP message at the start of `buf`; returns the bytes used. Stops at an
/// incomplete message, or skips to the next start line after a broken one.
fn frame_sip(buf: &[u8], stats: &mut StreamStats, emit: &mut impl FnMut(&[u8])) -> usize {
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        if rest.iter().all(|&b| b == b'\r' || b == b'\n') {
            return buf.len(); // nothing, or keep-alive CRLFs only
        }
        match Message::stream_len(rest) {
            Ok(len) => {
                let skip = rest.len() - rest.trim_ascii_start().len();
                emit(rest.get(skip..len).unwrap_or_default());
                at += len;
            }
            Err(SipError::Incomplete) => return at,
            Err(e) => {
                if matches!(e, SipError::BadContentLength { .. }) {
                    stats.bad_content_length += 1;
                }
                // Not a message here: skip to the next start line.
                let next = find_start_line(rest.get(1..).unwrap_or_default())
                    .map_or(rest.len(), |i| i + 1);
                stats.bytes_skipped += next as u64;
                at += next;
            }
        }
    }
}

/// Reads complete WebSocket frames from the flow's buffer; returns the bytes used. A frame that
/// cannot be read sends the flow back to looking for its place.
fn frame_ws(flow: &mut Flow, stats: &mut StreamStats, emit: &mut impl FnMut(&[u8])) -> usize {
    let Flow { mode, bufs, .. } = flow;
    let Bufs { buf, ws_msg, .. } = &mut **bufs.get_or_insert_default();
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let f = match ws::frame(rest) {
            Ok(Some(f)) if rest.len() >= f.header_len + f.payload_len => f,
            Ok(_) => return at,
            Err(ws::NotAFrame) => {
                stats.ws_bad_frames += 1;
                ws_msg.clear();
                *mode = Mode::Lost { ws: true };
                return at;
            }
        };
        let payload = rest
            .get(f.header_len..f.header_len + f.payload_len)
            .unwrap_or_default();
        at += f.header_len + f.payload_len;
        match f.opcode {
            ws::TEXT | ws::BINARY | ws::CONTINUATION => {}
            _ => continue, // close, ping, pong
        }
        if f.compressed {
            stats.ws_bad_frames += 1;
            ws_msg.clear();
            continue;
        }
        let continues = f.opcode == ws::CONTINUATION;
        if continues == ws_msg.is_empty() {
            // A continuation with nothing to continue, or a new message before the last ended.
            stats.ws_bad_frames += 1;
            ws_msg.clear();
            if continues {
                continue;
            }
        }
        ws::unmask_into(payload, f.mask, ws_msg);
        if f.fin {
            if looks_like_sip(ws_msg) {
                stats.ws_messages += 1;
                emit(ws_msg);
            } else {
                stats.ws_bad_frames += 1;
            }
            ws_msg.clear();
        }
    }
}

/// Offset of the first line in `buf` that parses as a SIP start line.
fn find_start_line(buf: &[u8]) -> Option<usize> {
    let mut line = 0;
    loop {
        let rest = buf.get(line..)?;
        let end = memchr::memchr(b'\n', rest)?;
        let first = rest.get(..=end)?;
        if looks_like_sip(first)
            && !matches!(
                Message::parse(first, Framing::Datagram),
                Err(SipError::NotSip)
            )
        {
            return Some(line);
        }
        line += end + 1;
    }
}

#[cfg(test)]
mod tests;
