//! Routing: each SIP message goes to the shard that owns its Call-ID, in batches. The router also
//! numbers every message and clock tick, so that the writer can put the shards' output back in one
//! order that does not depend on the number of shards.

use super::Transport;
use crate::sip::find_call_id;
use crate::time::Timestamp;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::net::SocketAddr;

/// A batch is sent when it holds this many items…
const BATCH_ITEMS: usize = 512;
/// …or this many message bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// Every shard hears from the router at least once per this many messages, so the writer's
/// merge never waits long on a quiet shard.
const WATERMARK_EVERY: u64 = 16_384;

/// One SIP message in a batch: where its bytes are and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct Msg {
    /// Position in the whole input, counting messages and ticks.
    pub seq: u64,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    at: u32,
    len: u32,
    /// Where the router found the Call-ID in the message (offset, length; 0, 0: not given) and
    /// its keyed hash, which the shard's calls table shares with the router: the shard neither
    /// hashes the Call-ID again nor waits for its lookup (`Tracker::run` prefetches the batch's
    /// calls before handling them).
    id_at: u16,
    id_len: u16,
    id_hash: u64,
    /// The message may be an INVITE ([`crate::sip::may_be_invite`]; `false` is final), told
    /// from bytes the router has in its cache: a tracker drops a message of no known call that
    /// cannot start one without parsing it, and prefetches the slot of a call about to start.
    pub invite: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Item {
    Msg(Msg),
    /// Capture time reached `now` (sent to every shard): timers up to `now` may fire.
    Tick {
        seq: u64,
        now: Timestamp,
    },
}

/// What travels from the capture thread to a shard.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub items: Vec<Item>,
    /// Every item with a sequence number up to this one that belongs to this shard has been sent.
    pub upto: u64,
}

impl Batch {
    pub fn bytes_of(&self, m: &Msg) -> &[u8] {
        self.bytes
            .get(m.at as usize..(m.at as usize + m.len as usize))
            .unwrap_or(&[])
    }

    /// The Call-ID as the router found it, and its hash (`None` when the router did not say).
    pub fn call_id_of(&self, m: &Msg) -> Option<(&[u8], u64)> {
        if m.id_len == 0 {
            return None;
        }
        let at = m.at as usize + usize::from(m.id_at);
        let id = self.bytes.get(at..at + usize::from(m.id_len))?;
        Some((id, m.id_hash))
    }

    /// Empties the batch, keeping its buffers, and offers it back to the router on `spares`
    /// (dropped if the router has enough).
    pub fn recycle(mut self, spares: &Sender<Batch>) {
        self.bytes.clear();
        self.items.clear();
        self.upto = 0;
        let _ = spares.try_send(self);
    }

    /// Appends a message (used by the router, and by tests that drive a shard directly).
    pub fn push_msg(
        &mut self,
        seq: u64,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        msg: &[u8],
    ) {
        self.push_routed(seq, ts, &src, &dst, transport, msg, 0..0, 0);
    }

    /// Appends a message whose Call-ID lies at `call_id` in it.
    #[allow(clippy::too_many_arguments)]
    fn push_routed(
        &mut self,
        seq: u64,
        ts: Timestamp,
        src: &SocketAddr,
        dst: &SocketAddr,
        transport: Transport,
        msg: &[u8],
        call_id: std::ops::Range<usize>,
        id_hash: u64,
    ) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(msg);
        let (id_at, id_len) = match (u16::try_from(call_id.start), u16::try_from(call_id.len())) {
            (Ok(a), Ok(l)) => (a, l),
            _ => (0, 0), // a hint only: none past 64 KiB
        };
        self.items.push(Item::Msg(Msg {
            seq,
            ts,
            src: *src,
            dst: *dst,
            transport,
            at,
            len: msg.len() as u32,
            id_at,
            id_len,
            id_hash,
            invite: crate::sip::may_be_invite(msg),
        }));
        self.upto = seq;
    }
}

/// The receiving side hung up (a shard died); the capture stops.
#[derive(Debug)]
pub struct Closed;

#[derive(Clone, Copy, Debug, Default)]
pub struct RouteStats {
    pub messages: u64,
    /// `messages` per `Transport as usize`.
    pub by_transport: [u64; Transport::ALL.len()],
    pub no_call_id: u64,
    pub ticks: u64,
    /// Live mode: messages lost with batches a full shard queue could not take.
    pub dropped: u64,
}

/// The shard of a Call-ID's hash: from bits 32..56, which the shards' tables do not use (their
/// bucket comes from the low bits, their tag from the top seven), so every shard's table sees
/// hashes as spread as the router's.
fn shard_of(hash: u64, shards: usize) -> usize {
    ((((hash >> 32) & 0xFF_FFFF) * shards as u64) >> 24) as usize
}

pub struct Router {
    txs: Vec<Sender<Batch>>,
    pending: Vec<Batch>,
    hasher: ahash::RandomState,
    seq: u64,
    clock: Option<Timestamp>,
    /// The start of the second after the clock's: a packet at or after it starts a new second.
    next_second: Timestamp,
    since_watermark: u64,
    /// Live mode: never wait for a shard; drop (and count) what a full queue cannot take.
    lossy: bool,
    /// Batches the shards are done with, emptied, to fill again (see [`Router::recycling`]).
    spares: Option<Receiver<Batch>>,
    pub stats: RouteStats,
}

impl Router {
    /// A router hashing Call-IDs with per-process random keys.
    pub fn new(txs: Vec<Sender<Batch>>) -> Router {
        Router::with_keys(txs, ahash::RandomState::new())
    }

    /// A router hashing Call-IDs with `hasher`, which the shards' trackers share (the hash
    /// travels with each message). Keyed per process: Call-IDs come from strangers, and routing
    /// does not affect the output order (the writer restores it from sequence numbers).
    pub fn with_keys(txs: Vec<Sender<Batch>>, hasher: ahash::RandomState) -> Router {
        let pending = txs.iter().map(|_| Batch::default()).collect();
        Router {
            txs,
            pending,
            hasher,
            seq: 0,
            clock: None,
            next_second: Timestamp::ZERO,
            since_watermark: 0,
            lossy: false,
            spares: None,
            stats: RouteStats::default(),
        }
    }

    /// Fills batches the shards send back on `spares` (emptied by [`Batch::recycle`]) before
    /// allocating new ones. A new 256 KiB buffer per batch cost the capture thread ~5 % of the
    /// run's CPU in page faults (the allocator returns freed large blocks to the kernel).
    pub fn recycling(self, spares: Receiver<Batch>) -> Router {
        Router {
            spares: Some(spares),
            ..self
        }
    }

    /// A router for live capture, which must never block: a batch a shard's full queue cannot
    /// take is dropped and its messages counted in [`RouteStats::dropped`].
    pub fn lossy(self) -> Router {
        Router {
            lossy: true,
            ..self
        }
    }

    /// The newest capture time seen (packets and ticks).
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock
    }

    /// Advances capture time with every packet (SIP or not). Returns true when a new second of
    /// capture time started: a tick went to every shard.
    #[inline]
    pub fn observe(&mut self, ts: Timestamp) -> Result<bool, Closed> {
        // Nearly every packet: within the clock's second (at or before the clock, or after it
        // but before the next second, which is after the clock).
        if let Some(c) = self.clock
            && ts < self.next_second
        {
            if ts > c {
                self.clock = Some(ts);
            }
            return Ok(false);
        }
        self.observe_rest(ts)
    }

    /// [`Router::observe`] for a packet that may start a new second, or the first packet.
    #[cold]
    fn observe_rest(&mut self, ts: Timestamp) -> Result<bool, Closed> {
        // For ts after the clock, "a new second" is floor(ts) > floor(clock), which is
        // ts >= next_second: one compare per packet instead of two divisions.
        let new_second = match self.clock {
            Some(c) if ts <= c => false,
            Some(_) => {
                self.clock = Some(ts);
                ts >= self.next_second
            }
            None => {
                self.clock = Some(ts);
                self.next_second = ts.floor_to(1).plus_secs(1);
                return Ok(false);
            }
        };
        if new_second {
            self.next_second = ts.floor_to(1).plus_secs(1);
            self.seq += 1;
            self.stats.ticks += 1;
            let seq = self.seq;
            for b in &mut self.pending {
                b.items.push(Item::Tick { seq, now: ts });
            }
            self.flush_all()?;
        }
        Ok(new_second)
    }

    /// Sends one SIP message to its shard. Messages without a Call-ID are counted and dropped.
    /// The addresses come by reference and are copied into the batch only after the Call-ID
    /// search: the decoder has just written them with narrow stores, and copying them at once
    /// (as arguments by value) waited for those stores (perf: ~2 % of a run's samples).
    pub fn route(
        &mut self,
        ts: Timestamp,
        src: &SocketAddr,
        dst: &SocketAddr,
        transport: Transport,
        msg: &[u8],
    ) -> Result<(), Closed> {
        let Some(call_id) = find_call_id(msg) else {
            self.stats.no_call_id += 1;
            return Ok(());
        };
        self.stats.messages += 1;
        if let Some(n) = self.stats.by_transport.get_mut(transport as usize) {
            *n += 1;
        }
        self.seq += 1;
        let hash = self.hasher.hash_one(call_id);
        let shard = shard_of(hash, self.txs.len());
        let Some(b) = self.pending.get_mut(shard) else {
            return Ok(()); // shard < txs.len() == pending.len()
        };
        // `call_id` lies within `msg`: its offset is the distance between their starts.
        let at = (call_id.as_ptr() as usize).wrapping_sub(msg.as_ptr() as usize);
        // (The same place, not merely the same bytes: no byte compare needed.)
        let same = |s: &[u8]| std::ptr::eq(s.as_ptr(), call_id.as_ptr());
        let id = if msg.get(at..at + call_id.len()).is_some_and(same) {
            at..at + call_id.len()
        } else {
            0..0
        };
        b.push_routed(self.seq, ts, src, dst, transport, msg, id, hash);
        if b.items.len() >= BATCH_ITEMS || b.bytes.len() >= BATCH_BYTES {
            self.send(shard)?;
        }
        self.since_watermark += 1;
        if self.since_watermark >= WATERMARK_EVERY {
            self.flush_all()?;
        }
        Ok(())
    }

    /// The shard that owns `call_id`: a keyed hash (per-process random keys), so nobody can pick
    /// Call-IDs that all land on one shard.
    #[cfg(test)]
    fn shard_of(&self, call_id: &[u8]) -> usize {
        shard_of(self.hasher.hash_one(call_id), self.txs.len())
    }

    /// Sends what is pending to every shard (empty batches too: they carry the watermark).
    pub fn flush_all(&mut self) -> Result<(), Closed> {
        self.since_watermark = 0;
        (0..self.txs.len()).try_for_each(|s| self.send(s))
    }

    fn send(&mut self, shard: usize) -> Result<(), Closed> {
        let (Some(pending), Some(tx)) = (self.pending.get_mut(shard), self.txs.get(shard)) else {
            return Ok(()); // shard < txs.len() == pending.len()
        };
        let fresh = match self.spares.as_ref().and_then(|r| r.try_recv().ok()) {
            Some(spare) => spare,
            None => Batch {
                bytes: Vec::with_capacity(pending.bytes.capacity()),
                items: Vec::with_capacity(pending.items.capacity()),
                upto: 0,
            },
        };
        let mut b = std::mem::replace(pending, fresh);
        b.upto = self.seq;
        if !self.lossy {
            return tx.send(b).map_err(|_| Closed);
        }
        match tx.try_send(b) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) => {
                let msgs = b.items.iter().filter(|i| matches!(i, Item::Msg(_))).count();
                self.stats.dropped += msgs as u64;
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn route_n(r: &mut Router, n: usize) {
        let a: SocketAddr = ([10, 0, 0, 1], 5060).into();
        for i in 0..n {
            let msg = format!("INVITE sip:x SIP/2.0\r\nCall-ID: {i}\r\n\r\n");
            r.route(Timestamp::ZERO, &a, &a, Transport::Udp, msg.as_bytes())
                .unwrap();
        }
    }

    /// Live mode never waits for a shard: a batch its full queue cannot take is dropped and its
    /// messages counted; file mode would block instead (never drops).
    #[test]
    fn lossy_router_counts_what_a_full_queue_cannot_take() {
        let (tx, rx) = bounded::<Batch>(1);
        let mut r = Router::new(vec![tx]).lossy();
        route_n(&mut r, BATCH_ITEMS * 3); // three full batches; the queue holds one
        assert_eq!(r.stats.dropped, (BATCH_ITEMS * 2) as u64);
        assert_eq!(rx.len(), 1);
        // Once the shard has caught up, batches go through again.
        let _ = rx.recv().unwrap();
        route_n(&mut r, BATCH_ITEMS);
        assert_eq!(r.stats.dropped, (BATCH_ITEMS * 2) as u64);
        assert_eq!(rx.len(), 1);
    }

    /// A batch a shard hands back is filled again: same buffer, emptied, nothing of the old
    /// messages left in it.
    /// A tick whenever capture time enters a later second, as `floor_to(1)` of the new time
    /// against the clock's says: not for a time that steps back, nor within the same second,
    /// also before 1970 (floors go down), and for a jump of many seconds only one.
    #[test]
    fn observe_ticks_on_each_new_second_only() {
        let (tx, _rx) = bounded::<Batch>(64);
        let mut r = Router::new(vec![tx]);
        let mut clock: Option<Timestamp> = None;
        let times = [
            -2_500_000,
            -2_000_001,
            -2_000_000,
            -1,
            0,
            999_999,
            1_000_000,
            500_000,
            1_999_999,
            2_000_000,
            2_000_000,
            9_000_000_000,
            8_000_000_000,
            9_000_000_001,
        ];
        for us in times {
            let ts = Timestamp::from_micros(us);
            let expected = clock.is_some_and(|c| ts > c && ts.floor_to(1) > c.floor_to(1));
            assert_eq!(r.observe(ts).unwrap(), expected, "at {us}");
            clock = Some(clock.map_or(ts, |c| c.max(ts)));
            assert_eq!(r.clock(), clock, "at {us}");
        }
        assert_eq!(r.stats.ticks, 6);
    }

    #[test]
    fn recycled_batches_are_refilled_empty() {
        let (tx, rx) = bounded::<Batch>(4);
        let (spare_tx, spare_rx) = bounded::<Batch>(4);
        let mut r = Router::new(vec![tx]).recycling(spare_rx);
        route_n(&mut r, BATCH_ITEMS);
        let first = rx.try_recv().unwrap();
        assert_eq!(first.items.len(), BATCH_ITEMS);
        let buffer = first.bytes.as_ptr();
        first.recycle(&spare_tx);
        route_n(&mut r, BATCH_ITEMS); // sends the batch filled since, takes the spare
        let second = rx.try_recv().unwrap();
        assert_eq!(second.items.len(), BATCH_ITEMS);
        route_n(&mut r, 1);
        r.flush_all().unwrap();
        let third = rx.try_recv().unwrap();
        assert_eq!(
            third.bytes.as_ptr(),
            buffer,
            "the spare's buffer was not reused"
        );
        assert_eq!(third.items.len(), 1);
        let Some(Item::Msg(m)) = third.items.first() else {
            panic!("no message");
        };
        assert_eq!(
            third.bytes_of(m),
            b"INVITE sip:x SIP/2.0\r\nCall-ID: 0\r\n\r\n"
        );
    }

    /// Child half of `hash_keys_differ_between_processes`: prints one hash of a fixed Call-ID.
    #[test]
    fn hash_child() {
        if std::env::var_os("SIPCDR_HASH_CHILD").is_some() {
            println!("HASH {}", ahash::RandomState::new().hash_one(b"1-1@flood"));
        }
    }

    /// Hash flooding, part 1: `ahash::RandomState::new()`, which the router, the TCP flow table,
    /// SCTP and the tracker's Call-ID map all use, must be keyed at random in every process
    /// (ahash's `runtime-rng`). Two runs of this test binary hash the same Call-ID differently;
    /// with fixed keys (no `runtime-rng`, or a constant-seeded hasher) they would agree, and
    /// Call-IDs crafted offline against one run would collide in every run.
    #[test]
    fn hash_keys_differ_between_processes() {
        let run = || {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "capture::route::tests::hash_child",
                    "--nocapture",
                ])
                .env("SIPCDR_HASH_CHILD", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find_map(|l| l.strip_prefix("HASH "))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no hash from the child: {text}"))
        };
        let (a, b) = (run(), run());
        assert_ne!(
            a, b,
            "the same hash in two processes: the hasher is not randomly keyed"
        );
    }

    /// `n` Call-IDs that all land on shard 0 of `shards` under `shard`, found by trying
    /// candidates (a flooder with the hash function does the same).
    fn crafted(n: usize, shards: u64, shard: impl Fn(&[u8]) -> u64) -> Vec<String> {
        (0u64..)
            .map(|i| format!("{i:x}-flood@10.6.6.6"))
            .filter(|c| shard(c.as_bytes()).is_multiple_of(shards))
            .take(n)
            .collect()
    }

    /// Messages each of `shards` shards of a fresh router gets for these Call-IDs.
    fn spread(call_ids: &[String], shards: usize) -> Vec<usize> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..shards).map(|_| bounded::<Batch>(1024)).unzip();
        let mut r = Router::new(txs);
        let a: SocketAddr = ([10, 6, 6, 6], 5060).into();
        for c in call_ids {
            let msg = format!("INVITE sip:x SIP/2.0\r\nCall-ID: {c}\r\n\r\n");
            r.route(Timestamp::ZERO, &a, &a, Transport::Udp, msg.as_bytes())
                .unwrap();
        }
        r.flush_all().unwrap();
        rxs.iter()
            .map(|rx| {
                rx.try_iter()
                    .flat_map(|b| b.items)
                    .filter(|i| matches!(i, Item::Msg(_)))
                    .count()
            })
            .collect()
    }

    /// Hash flooding, part 2: Call-IDs crafted to fall on one shard under a fixed-key hasher
    /// (ahash with constant seeds; std's SipHash with zero keys; and this process's own router
    /// as an attacker who learnt one instance's keys) are spread evenly by a fresh router. The
    /// check counts messages per shard (no timing): 4000 keys over 8 shards expect 500 each
    /// (σ ≈ 21); the bounds 300..700 are ~10σ away, so a keyed hash never fails and a fixed one
    /// (all 4000 on shard 0) always does.
    #[test]
    fn crafted_call_ids_spread_evenly_over_the_shards() {
        use std::hash::{DefaultHasher, Hasher};
        const SHARDS: usize = 8;
        const N: usize = 4000;
        let fixed = ahash::RandomState::with_seeds(1, 2, 3, 4);
        let unkeyed_sip = |b: &[u8]| {
            let mut h = DefaultHasher::new();
            h.write(b);
            h.finish()
        };
        let (txs, _rxs): (Vec<_>, Vec<_>) = (0..SHARDS).map(|_| bounded::<Batch>(1)).unzip();
        let learnt = Router::new(txs);
        let attacks = [
            (
                "ahash, constant seeds",
                crafted(N, SHARDS as u64, |b| fixed.hash_one(b)),
            ),
            ("SipHash, zero keys", crafted(N, SHARDS as u64, unkeyed_sip)),
            (
                "another router's keys",
                crafted(N, SHARDS as u64, |b| learnt.shard_of(b) as u64),
            ),
        ];
        // The crafting works: under the hasher it targets, every key is on shard 0.
        assert!(
            attacks[0]
                .1
                .iter()
                .all(|c| fixed.hash_one(c.as_bytes()).is_multiple_of(SHARDS as u64))
        );
        for (what, keys) in &attacks {
            let counts = spread(keys, SHARDS);
            assert_eq!(counts.iter().sum::<usize>(), N);
            for (s, n) in counts.iter().enumerate() {
                assert!(
                    (300..=700).contains(n),
                    "keys crafted against {what}: shard {s} got {n} of {N} ({counts:?})"
                );
            }
        }
    }
}
