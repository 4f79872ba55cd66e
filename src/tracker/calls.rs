//! The calls of one shard: a hash table of slot numbers over slots that never move.
//!
//! A message finds its call with one probe of a small table (4-byte entries) and one read of the
//! slot, which holds the Call-ID itself (when short, as nearly all are) and the first leg: the
//! bytes a message needs are together, instead of behind three pointers (`Box<Call>`, its
//! Call-ID, its legs). Timers name a call by its slot number, so firing one
//! needs no hash lookup.

use super::dialog::{Leg, Limits, Phase, TRANSACTION_SECS};
use crate::time::Timestamp;
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// Slots per chunk: as many as fit in 512 KiB. A chunk is allocated whole and never moves, so slot
/// numbers stay valid while the store grows, and growing copies nothing. (Sized in bytes because
/// the allocator rounds a large block up to 64 KiB: 1 024 slots of 288 bytes wasted 32 bytes per
/// call, `examples/open_legs`.)
const CHUNK: usize = (512 << 10) / std::mem::size_of::<Option<Call>>();

/// Call-IDs up to this long are kept in the slot itself.
const INLINE: usize = 46;

/// A Call-ID's bytes: in place when short, else on the heap.
#[derive(Debug)]
pub enum CallId {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl CallId {
    pub fn new(id: &[u8]) -> CallId {
        let mut bytes = [0u8; INLINE];
        match bytes.get_mut(..id.len()) {
            Some(head) => {
                head.copy_from_slice(id);
                CallId::Inline {
                    len: id.len() as u8, // <= INLINE
                    bytes,
                }
            }
            None => CallId::Heap(id.into()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CallId::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            CallId::Heap(b) => b,
        }
    }
}

/// One Call-ID's legs (one per hop; nearly always one, held in place).
pub struct Call {
    pub id: CallId,
    pub legs: SmallVec<[Leg; 1]>,
    /// The deadline this call has on the timer wheel, if any. Every message to the call and
    /// every deadline that fires re-arms it (`tracker::rearm`), so between those it is its legs'
    /// earliest deadline ([`Call::next_deadline`]), or none when no leg has one.
    pub armed: Option<Timestamp>,
}

impl Call {
    pub fn new(id: &[u8]) -> Call {
        Call {
            id: CallId::new(id),
            legs: SmallVec::new(),
            armed: None,
        }
    }

    /// When a timer of this call fires next: its legs' earliest deadline or, once all have
    /// ended, the time to forget it (stragglers are absorbed until then).
    pub fn next_deadline(&self, limits: Limits) -> Option<Timestamp> {
        let live = self.legs.iter().filter_map(|l| l.deadline(limits)).min();
        if live.is_some() || !self.all_ended() {
            return live;
        }
        self.legs
            .iter()
            .filter_map(|l| l.ended_at)
            .max()
            .map(|t| t.plus_secs(TRANSACTION_SECS))
    }

    /// Prefetches the line of the legs' length (with the deadline field beside it), the one
    /// line [`Call::prefetch_leg`] reads. (Through references to fields: this crate has no
    /// `unsafe` for pointer arithmetic.)
    fn prefetch_legs_len(&self) {
        safe_arch::prefetch_t0(&self.armed);
    }

    /// Prefetches the lines of the first leg's fields; reads the legs' length, which
    /// [`Call::prefetch_legs_len`] loaded. (A line named twice costs one instruction.)
    fn prefetch_leg(&self) {
        use safe_arch::prefetch_t0 as p;
        if let Some(l) = self.legs.first() {
            p(&l.text);
            p(&l.src);
            p(&l.dst);
            p(&l.start);
            p(&l.answer);
            p(&l.wait);
            p(&l.last_seen);
            p(&l.phase);
            p(&l.media.caller);
            p(&l.media.callee);
            p(&l.media.video);
            p(&l.media.holds);
        }
    }

    /// Prefetches the first leg's text; reads its pointer, which [`Call::prefetch_leg`] loaded.
    fn prefetch_text(&self) {
        if let Some(l) = self.legs.first() {
            l.text.prefetch();
        }
    }

    /// Whether a leg's timer may have passed by `now` (a leg expires when its deadline is
    /// before `now`): without, applying the expiries would change nothing, and a message skips
    /// that walk over the legs (~140 instructions a message).
    pub fn may_expire(&self, now: Timestamp) -> bool {
        self.armed.is_some_and(|t| t < now)
    }

    pub fn all_ended(&self) -> bool {
        self.legs.iter().all(|l| l.phase == Phase::Ended)
    }
}

/// A call's place in the store.
pub type Slot = u32;

/// How many lookups apart the stages of [`Calls::prefetch_step`] are: far enough for a line to
/// arrive (a lookup and its message's handling take ~250 ns, a miss ~100 ns), near enough that
/// the lines are still cached when used.
const AHEAD: usize = 4;

/// The stages of [`Calls::prefetch_step`], each reading only what the one before loaded.
const STAGES: usize = 5;

/// How many steps of [`Calls::prefetch_step`] a lookup's prefetches start before it.
pub const LEAD: usize = STAGES * AHEAD;

/// The stages of [`Calls::prefetch_slots_step`].
const SLOT_STAGES: usize = 4;

/// How many steps of [`Calls::prefetch_slots_step`] a call's prefetches start before it.
pub const SLOT_LEAD: usize = SLOT_STAGES * AHEAD;

/// The slots [`Calls::prefetch_step`]'s second stage found (the table probe's guess), for the
/// stages after it: the last `RING` lookups' (they need the last `(STAGES - 2) * AHEAD + 1`);
/// and how many of the batch's lookups so far found nothing for an INVITE, each of which will
/// take the next free slot.
pub struct Found {
    slots: [Slot; RING],
    inserts: usize,
}

const RING: usize = 16;
const _: () = assert!(RING > (STAGES - 2) * AHEAD);

impl Default for Found {
    fn default() -> Found {
        Found {
            slots: [Slot::MAX; RING],
            inserts: 0,
        }
    }
}

impl Found {
    fn set(&mut self, lookup: usize, slot: Option<Slot>) {
        if let Some(s) = self.slots.get_mut(lookup % RING) {
            *s = slot.unwrap_or(Slot::MAX);
        }
    }

    fn get(&self, lookup: usize) -> Option<Slot> {
        self.slots
            .get(lookup % RING)
            .copied()
            .filter(|&s| s != Slot::MAX)
    }
}

/// The table from a Call-ID's hash to its slot: open addressing with linear probing over 8-byte
/// entries (32 bits of the hash, the slot number), so that where a hash's entry lies is known
/// before the table is read. A batch's lookups can then be prefetched in stages (the entry's
/// cache line, then the slot) without waiting on any of them, and growing the table reads no
/// slot. (hashbrown's `HashTable` keeps tags and values apart and finds either only by reading
/// the other.) Removal shifts later entries of the run back, so there are no tombstones. The hash
/// is keyed per process, so Call-IDs from the wire cannot be made to pile into one run.
struct Index {
    entries: Vec<u64>,
    len: usize,
}

/// An unused entry (slot numbers stay far below `u32::MAX`: a slot is 352 bytes).
const EMPTY: u64 = u64::MAX;

/// The 32 hash bits an entry keeps: both halves folded, so any hasher's bits count.
fn short(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

fn entry(h: u32, slot: Slot) -> u64 {
    (u64::from(h) << 32) | u64::from(slot)
}

fn entry_hash(e: u64) -> u32 {
    (e >> 32) as u32
}

fn entry_slot(e: u64) -> Slot {
    e as u32
}

impl Index {
    const fn new() -> Index {
        Index {
            entries: Vec::new(),
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    fn home(&self, h: u32) -> usize {
        h as usize & self.mask()
    }

    /// Where the first entry stored under `hash` whose slot passes `eq` is: the run from the
    /// hash's home on ends at an empty entry (there always is one).
    fn position(&self, hash: u64, mut eq: impl FnMut(Slot) -> bool) -> Option<usize> {
        let (h, mask) = (short(hash), self.mask());
        let mut i = self.home(h);
        loop {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if entry_hash(e) == h && eq(entry_slot(e)) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first slot stored under `hash` for which `eq` holds.
    fn find(&self, hash: u64, eq: impl FnMut(Slot) -> bool) -> Option<Slot> {
        let i = self.position(hash, eq)?;
        self.entries.get(i).copied().map(entry_slot)
    }

    /// Starts loading the cache line of `hash`'s home entry.
    fn prefetch(&self, hash: u64) {
        if let Some(e) = self.entries.get(self.home(short(hash))) {
            safe_arch::prefetch_t0(e);
        }
    }

    fn insert(&mut self, hash: u64, slot: Slot) {
        // At most three quarters full: runs stay short (a found entry is ~2.5 probes away, a
        // missing one ~8.5, within one or two 64-byte lines).
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        self.place(entry(short(hash), slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let (mut i, mask) = (self.home(entry_hash(e)), self.mask());
        while let Some(cell) = self.entries.get_mut(i) {
            if *cell == EMPTY {
                *cell = e;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(64);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; size]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Removes the entry of `slot` stored under `hash`, then moves back each later entry of the
    /// run that may sit in the gap (its home is not between the gap and itself), so every entry
    /// stays reachable from its home without passing an empty one.
    fn remove(&mut self, hash: u64, slot: Slot) {
        let Some(mut gap) = self.position(hash, |s| s == slot) else {
            return;
        };
        let mask = self.mask();
        let mut i = gap;
        loop {
            i = (i + 1) & mask;
            let e = self.entries.get(i).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                break;
            }
            let home = self.home(entry_hash(e));
            if i.wrapping_sub(home) & mask >= i.wrapping_sub(gap) & mask {
                if let Some(g) = self.entries.get_mut(gap) {
                    *g = e;
                }
                gap = i;
            }
        }
        if let Some(g) = self.entries.get_mut(gap) {
            *g = EMPTY;
        }
        self.len -= 1;
    }

    fn clear(&mut self) {
        self.entries.fill(EMPTY);
        self.len = 0;
    }
}

/// Calls by the keyed hash of their Call-ID (`S`: per-process random keys, so Call-IDs from the
/// wire cannot be crafted to collide).
pub struct Calls<S = ahash::RandomState> {
    table: Index,
    chunks: Vec<Vec<Option<Call>>>,
    /// Emptied slots, reused newest first (so the order slots are used in depends on the input
    /// only).
    free: Vec<Slot>,
    hasher: S,
}

/// The place of `slot`, without reading it.
fn cell(chunks: &[Vec<Option<Call>>], slot: Slot) -> Option<&Option<Call>> {
    let s = slot as usize;
    chunks.get(s / CHUNK)?.get(s % CHUNK)
}

fn at(chunks: &[Vec<Option<Call>>], slot: Slot) -> Option<&Call> {
    cell(chunks, slot)?.as_ref()
}

impl<S: BuildHasher> Calls<S> {
    pub fn with_hasher(hasher: S) -> Calls<S> {
        Calls {
            table: Index::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len
    }

    /// The keyed hash of a Call-ID, as the table uses it.
    pub fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The call with this Call-ID (`hash`: [`Calls::hash`] of it).
    pub fn find(&self, hash: u64, id: &[u8]) -> Option<Slot> {
        let chunks = &self.chunks;
        self.table.find(hash, |s| {
            at(chunks, s).is_some_and(|c| c.id.as_bytes() == id)
        })
    }

    /// One step of the prefetches of a run of lookups (a batch's Call-ID hashes, in the order
    /// they will be looked up), in [`STAGES`] stages [`AHEAD`] lookups apart, so that each
    /// reads only lines the stage before it loaded: lookup `j`'s table entry; the slot's first
    /// line of lookup `j - AHEAD` (its address needs only the entry); the line of the legs'
    /// length of `j - 2 AHEAD` (its address needs the first line, where the slot says it holds
    /// a call); the first leg's lines of `j - 3 AHEAD` (where they are needs the length, for a
    /// call of more legs keeps them on the heap); its text of `j - 4 AHEAD` (a pointer in the
    /// leg). Steps `0..LEAD` start a run; step `k + LEAD` goes just before lookup `k`. (A stage
    /// that read a line only just prefetched would stall on it: reading the legs' length in the
    /// same stage as prefetching its line took 2.6 % of a run's time.)
    ///
    /// A lookup that finds no entry for an INVITE (`invites[i]`, a guess from its first bytes)
    /// will most likely add a call, in the next free slot but one per such lookup before it in
    /// the batch (slots are reused last freed first): that slot's first line, which adding the
    /// call reads, is prefetched instead (perf: 6.6 % of the trackers' own samples waited on it).
    pub fn prefetch_step(&self, hashes: &[u64], invites: &[bool], found: &mut Found, j: usize) {
        let lookup = |stage: usize| j.checked_sub(stage * AHEAD);
        if let Some(h) = lookup(0).and_then(|i| hashes.get(i)) {
            self.prefetch_entry(*h);
        }
        if let Some(i) = lookup(1) {
            let slot = hashes.get(i).and_then(|&h| self.prefetch_head(h));
            found.set(i, slot);
            if slot.is_none() && invites.get(i) == Some(&true) {
                let next = self.free.len().checked_sub(found.inserts + 1);
                if let Some(c) = next
                    .and_then(|n| self.free.get(n))
                    .and_then(|&s| cell(&self.chunks, s))
                {
                    safe_arch::prefetch_t0(c);
                }
                found.inserts += 1;
            }
        }
        let call = |stage: usize| at(&self.chunks, found.get(lookup(stage)?)?);
        if let Some(c) = call(2) {
            c.prefetch_legs_len();
        }
        if let Some(c) = call(3) {
            c.prefetch_leg();
        }
        if let Some(c) = call(4) {
            c.prefetch_text();
        }
    }

    /// One step of the prefetches of a run of calls known by their slots (`slot_at(i)`, the
    /// i-th; a tick's due deadlines), in [`SLOT_STAGES`] stages [`AHEAD`] calls apart, each
    /// reading only lines the stage before it loaded: slot `j`'s first line (whether it holds a
    /// call; its Call-ID); the line of the legs' length and the deadline of `j - AHEAD`; the first
    /// leg's lines of `j - 2 AHEAD`; for a call whose legs have all ended, which the tick will
    /// forget, its table entry, `j - 3 AHEAD`. Steps `0..SLOT_LEAD` start a run; step
    /// `k + SLOT_LEAD` goes just before call `k`. (Prefetching all of a tick's calls first, then
    /// handling them, left them cold again by the time they were read: at 1 M open legs the tick
    /// was ~3 % of all CPU, most of it the first read of each call waiting.)
    pub fn prefetch_slots_step(&self, slot_at: impl Fn(usize) -> Option<Slot>, j: usize) {
        let call = |stage: usize| at(&self.chunks, slot_at(j.checked_sub(stage * AHEAD)?)?);
        if let Some(c) = slot_at(j).and_then(|s| cell(&self.chunks, s)) {
            safe_arch::prefetch_t0(c);
        }
        if let Some(c) = call(1) {
            c.prefetch_legs_len();
        }
        if let Some(c) = call(2) {
            c.prefetch_leg();
        }
        if let Some(c) = call(3).filter(|c| c.all_ended()) {
            self.prefetch_entry(self.hash(c.id.as_bytes()));
        }
    }

    /// The table entry's cache line (all that removing the call reads of the table). Reads
    /// nothing but the table's length.
    pub fn prefetch_entry(&self, hash: u64) {
        self.table.prefetch(hash);
    }

    /// A table probe with no key test and a prefetch of the slot's first line; returns the
    /// slot.
    fn prefetch_head(&self, hash: u64) -> Option<Slot> {
        let s = self.table.find(hash, |_| true)?;
        if let Some(head) = cell(&self.chunks, s) {
            safe_arch::prefetch_t0(head);
        }
        Some(s)
    }

    /// Adds a call for a Call-ID not in the store (`hash`: [`Calls::hash`] of it).
    pub fn insert(&mut self, hash: u64, call: Call) -> Slot {
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(place) = self.place(s) {
                    *place = Some(call);
                }
                s
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let n = self.chunks.len() - 1;
                let chunk = self.chunks.last_mut();
                let i = chunk.as_ref().map_or(0, |c| c.len());
                if let Some(c) = chunk {
                    c.push(Some(call));
                }
                (n * CHUNK + i) as Slot
            }
        };
        self.table.insert(hash, slot);
        slot
    }

    fn place(&mut self, slot: Slot) -> Option<&mut Option<Call>> {
        let s = slot as usize;
        self.chunks.get_mut(s / CHUNK)?.get_mut(s % CHUNK)
    }

    pub fn get(&self, slot: Slot) -> Option<&Call> {
        at(&self.chunks, slot)
    }

    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut Call> {
        self.place(slot)?.as_mut()
    }

    /// Forgets a call; its slot will be reused.
    pub fn remove(&mut self, slot: Slot) {
        let Some(call) = self.place(slot).and_then(Option::take) else {
            return;
        };
        self.table
            .remove(self.hasher.hash_one(call.id.as_bytes()), slot);
        self.free.push(slot);
    }

    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Call)> {
        self.chunks.iter().enumerate().flat_map(|(n, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, c)| Some(((n * CHUNK + i) as Slot, c.as_ref()?)))
        })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Call> {
        self.chunks.iter_mut().flatten().filter_map(Option::as_mut)
    }

    pub fn clear(&mut self) {
        self.table.clear();
        self.chunks.clear();
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_holds_the_lookups_the_later_stages_read() {
        let mut f = Found::default();
        assert_eq!(f.get(0), None, "nothing found yet");
        for i in 0..100usize {
            f.set(i, (i % 7 != 0).then_some(i as Slot * 3));
            // The second stage has just set lookup i; the later ones read back (STAGES - 2) AHEAD.
            for back in 0..=(STAGES - 2) * AHEAD {
                let Some(j) = i.checked_sub(back) else { break };
                let want = (j % 7 != 0).then_some(j as Slot * 3);
                assert_eq!(f.get(j), want, "lookup {j} read at step {i}");
            }
        }
    }

    /// Deliberately weak: many Call-IDs share a hash, and that must not confuse calls.
    #[derive(Default)]
    struct ByLength;
    struct LengthHasher(u64);
    impl std::hash::Hasher for LengthHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0 += bytes.len() as u64;
        }
    }
    fn calls_hash(id: &[u8]) -> u64 {
        ByLength.hash_one(id)
    }
    impl BuildHasher for ByLength {
        type Hasher = LengthHasher;
        fn build_hasher(&self) -> LengthHasher {
            LengthHasher(0)
        }
    }

    #[test]
    fn call_ids_short_and_long_round_trip() {
        for n in [0, 1, 45, 46, 47, 200] {
            let id: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let c = CallId::new(&id);
            assert_eq!(c.as_bytes(), &id[..], "length {n}");
            assert_eq!(
                matches!(c, CallId::Inline { .. }),
                n <= INLINE,
                "length {n}"
            );
        }
    }

    #[test]
    fn find_insert_remove_reuse_across_chunks() {
        let mut calls = Calls::with_hasher(ByLength);
        let hash = |id: &[u8]| calls_hash(id);
        let ids: Vec<Vec<u8>> = (0..3 * CHUNK + 5)
            .map(|i| format!("call-{i}@host").into_bytes())
            .collect();
        let slots: Vec<Slot> = ids
            .iter()
            .map(|id| {
                assert_eq!(calls.find(hash(id), id), None);
                calls.insert(hash(id), Call::new(id))
            })
            .collect();
        assert_eq!(calls.len(), ids.len());
        for (id, &s) in ids.iter().zip(&slots) {
            assert_eq!(calls.find(hash(id), id), Some(s));
            assert_eq!(calls.get(s).map(|c| c.id.as_bytes()), Some(&id[..]));
        }
        // Remove every third call: the others are still found, the removed are not.
        for (id, &s) in ids.iter().zip(&slots).step_by(3) {
            calls.remove(s);
            assert_eq!(calls.find(hash(id), id), None);
            assert!(calls.get(s).is_none());
        }
        let left = ids.len() - ids.len().div_ceil(3);
        assert_eq!(calls.len(), left);
        assert_eq!(calls.iter().count(), left);
        for (k, (id, &s)) in ids.iter().zip(&slots).enumerate() {
            let want = (k % 3 != 0).then_some(s);
            assert_eq!(calls.find(hash(id), id), want);
        }
        // New calls take the freed slots before growing.
        let chunks = calls.chunks.len();
        for i in 0..ids.len().div_ceil(3) {
            let id = format!("new-{i}").into_bytes();
            let s = calls.insert(hash(&id), Call::new(&id));
            assert!((s as usize) < ids.len(), "slot {s} not reused");
        }
        assert_eq!(calls.chunks.len(), chunks);
        assert_eq!(calls.len(), ids.len());
        calls.clear();
        assert_eq!((calls.len(), calls.iter().count()), (0, 0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Remove(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Hashes that pile into the first and the last entries of a small table (so runs
        // collide and wrap around its end), and any others.
        let hash = prop_oneof![0u64..6, 58u64..64, 250u64..256, any::<u64>()];
        prop_oneof![3 => hash.prop_map(Op::Insert), 2 => any::<usize>().prop_map(Op::Remove)]
    }

    proptest::proptest! {
        /// The index against a list of what it holds: after every insert and remove each held
        /// (hash, slot) is found from its hash, a removed one is not, through growth, colliding
        /// hashes and runs that wrap around the table's end.
        #[test]
        fn index_finds_what_a_model_holds(ops in proptest::collection::vec(op(), 1..400)) {
            let mut index = Index::new();
            let mut held: Vec<(u64, Slot)> = Vec::new();
            let mut gone: Vec<(u64, Slot)> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(hash) => {
                        index.insert(hash, n as Slot);
                        held.push((hash, n as Slot));
                    }
                    Op::Remove(k) if !held.is_empty() => {
                        let (hash, slot) = held.swap_remove(k % held.len());
                        index.remove(hash, slot);
                        gone.push((hash, slot));
                    }
                    Op::Remove(_) => {}
                }
                proptest::prop_assert_eq!(index.len, held.len());
                for &(hash, slot) in &held {
                    proptest::prop_assert_eq!(index.find(hash, |s| s == slot), Some(slot));
                }
                for &(hash, slot) in &gone {
                    proptest::prop_assert_eq!(index.find(hash, |s| s == slot), None);
                }
            }
            let empty = index.entries.iter().filter(|&&e| e == EMPTY).count();
            proptest::prop_assert_eq!(empty, index.entries.len() - held.len());
            index.clear();
            proptest::prop_assert_eq!(index.len, 0);
            for &(hash, slot) in &held {
                proptest::prop_assert_eq!(index.find(hash, |s| s == slot), None);
            }
        }
    }
}
