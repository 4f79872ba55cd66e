//! Routing: each SIP message goes to the shard that owns its Call-ID, in batches. The router also
//! numbers every message and clock tick, so that the writer can put the shards' output back in one
//! order that does not depend on the number of shards.

use super::Transport;
use crate::sip::find_call_id;
use crate::time::Timestamp;
use crossbeam_channel::{Sender, TrySendError};
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
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(msg);
        self.items.push(Item::Msg(Msg {
            seq,
            ts,
            src,
            dst,
            transport,
            at,
            len: msg.len() as u32,
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

pub struct Router {
    txs: Vec<Sender<Batch>>,
    pending: Vec<Batch>,
    hasher: ahash::RandomState,
    seq: u64,
    clock: Option<Timestamp>,
    since_watermark: u64,
    /// Live mode: never wait for a shard; drop (and count) what a full queue cannot take.
    lossy: bool,
    pub stats: RouteStats,
}

impl Router {
    pub fn new(txs: Vec<Sender<Batch>>) -> Router {
        let pending = txs.iter().map(|_| Batch::default()).collect();
        // Keyed with per-process random keys: Call-IDs come from strangers, and routing does not
        // affect the output order (the writer restores it from sequence numbers).
        Router {
            txs,
            pending,
            hasher: ahash::RandomState::new(),
            seq: 0,
            clock: None,
            since_watermark: 0,
            lossy: false,
            stats: RouteStats::default(),
        }
    }

    /// A router for live capture, which must never block: a batch a shard's full queue cannot
    /// take is dropped and its messages counted in [`RouteStats::dropped`].
    pub fn lossy(txs: Vec<Sender<Batch>>) -> Router {
        Router {
            lossy: true,
            ..Router::new(txs)
        }
    }

    /// Advances capture time with every packet (SIP or not). Returns true when a new second of
    /// capture time started: a tick went to every shard.
    pub fn observe(&mut self, ts: Timestamp) -> Result<bool, Closed> {
        let new_second = match self.clock {
            None => {
                self.clock = Some(ts);
                return Ok(false);
            }
            Some(c) if ts > c => {
                self.clock = Some(ts);
                ts.floor_to(1) > c.floor_to(1)
            }
            Some(_) => false,
        };
        if new_second {
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
    pub fn route(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        msg: &[u8],
    ) -> Result<(), Closed> {
        let Some(call_id) = find_call_id(msg) else {
            self.stats.no_call_id += 1;
            return Ok(());
        };
        self.stats.messages += 1;
        self.stats.by_transport[transport as usize] += 1;
        self.seq += 1;
        let shard = (self.hasher.hash_one(call_id) % self.txs.len() as u64) as usize;
        let b = &mut self.pending[shard];
        b.push_msg(self.seq, ts, src, dst, transport, msg);
        if b.items.len() >= BATCH_ITEMS || b.bytes.len() >= BATCH_BYTES {
            self.send(shard)?;
        }
        self.since_watermark += 1;
        if self.since_watermark >= WATERMARK_EVERY {
            self.flush_all()?;
        }
        Ok(())
    }

    /// Sends what is pending to every shard (empty batches too: they carry the watermark).
    pub fn flush_all(&mut self) -> Result<(), Closed> {
        self.since_watermark = 0;
        (0..self.txs.len()).try_for_each(|s| self.send(s))
    }

    fn send(&mut self, shard: usize) -> Result<(), Closed> {
        let mut b = std::mem::take(&mut self.pending[shard]);
        b.upto = self.seq;
        self.pending[shard] = Batch {
            bytes: Vec::with_capacity(b.bytes.capacity()),
            items: Vec::with_capacity(b.items.capacity()),
            upto: 0,
        };
        if !self.lossy {
            return self.txs[shard].send(b).map_err(|_| Closed);
        }
        match self.txs[shard].try_send(b) {
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
            r.route(Timestamp::ZERO, a, a, Transport::Udp, msg.as_bytes())
                .unwrap();
        }
    }

    /// Live mode never waits for a shard: a batch its full queue cannot take is dropped and its
    /// messages counted; file mode would block instead (never drops).
    #[test]
    fn lossy_router_counts_what_a_full_queue_cannot_take() {
        let (tx, rx) = bounded::<Batch>(1);
        let mut r = Router::lossy(vec![tx]);
        route_n(&mut r, BATCH_ITEMS * 3); // three full batches; the queue holds one
        assert_eq!(r.stats.dropped, (BATCH_ITEMS * 2) as u64);
        assert_eq!(rx.len(), 1);
        // Once the shard has caught up, batches go through again.
        let _ = rx.recv().unwrap();
        route_n(&mut r, BATCH_ITEMS);
        assert_eq!(r.stats.dropped, (BATCH_ITEMS * 2) as u64);
        assert_eq!(rx.len(), 1);
    }
}
