//! Deadlines on a wheel of one-second buckets: the calls of one tracker shard (keyed by slot)
//! and the checks of the capture thread's TCP flows (keyed by flow).
//!
//! Timers fire on ticks, once per second of capture time, so a deadline only needs its second to
//! be found and its exact time to be checked. Arming is a push onto the bucket of its second (no
//! heap to sift: at 1 M open legs a binary heap's pop walked ~20 levels of cold memory), and an
//! entry is the key and 4 bytes (microseconds into its second): 8 bytes for a call's slot instead
//! of 16. Deadlines beyond the wheel (session timers of hours) wait in a small heap and move onto
//! the wheel as time nears them.
//!
//! An entry does not say whether it still holds: what it names does (a call's `armed`, a flow's
//! `check`). Entries a later deadline superseded are passed over when they come due, or dropped
//! by [`Timers::retain`].

use crate::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Seconds the wheel spans: more than 4 h 30 min, so `--max-duration`'s default (4 h), the setup
/// timeout and the transaction waits all land on it.
const WHEEL: usize = 1 << 14;
const US: i64 = 1_000_000;

/// `K` names what a deadline is for: a call's slot, a flow's key.
pub struct Timers<K> {
    /// Bucket `s % WHEEL` holds the deadlines in second `s`, for `s` in `cursor..cursor + WHEEL`,
    /// as (microseconds into that second, key).
    wheel: Vec<Vec<(u32, K)>>,
    /// The first second whose bucket may hold deadlines (`None` until the first is armed).
    cursor: Option<i64>,
    /// Deadlines past the wheel, earliest first.
    far: BinaryHeap<Reverse<(Timestamp, K)>>,
    /// Deadlines found due, to be handed out by [`Timers::pop_due`].
    ready: Vec<(Timestamp, K)>,
    /// Latest tick time seen: a deadline before it is due at once.
    now: Option<Timestamp>,
    /// The tick time for which the cursor's own bucket was last searched for due deadlines.
    searched: Option<Timestamp>,
    /// Entries on the wheel, and in all.
    on_wheel: usize,
    len: usize,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            wheel: (0..WHEEL).map(|_| Vec::new()).collect(),
            cursor: None,
            far: BinaryHeap::new(),
            ready: Vec::new(),
            now: None,
            searched: None,
            on_wheel: 0,
            len: 0,
        }
    }
}

fn second(t: Timestamp) -> i64 {
    t.as_micros().div_euclid(US)
}

fn micros_into(t: Timestamp) -> u32 {
    t.as_micros().rem_euclid(US) as u32 // < 1 000 000
}

fn bucket(s: i64) -> usize {
    s.rem_euclid(WHEEL as i64) as usize
}

impl<K: Copy + Ord> Timers<K> {
    /// Entries held, superseded ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a deadline for `key` (a call's slot, a flow), at capture time `now` (of the message or
    /// tick that armed it: the wheel starts at the first).
    pub fn push(&mut self, t: Timestamp, key: K, now: Timestamp) {
        self.len += 1;
        if self.now.is_some_and(|now| t < now) {
            self.ready.push((t, key));
            return;
        }
        // Before the cursor's second means before every tick to come: the first tick comes after
        // the packet that set the cursor, later ones only move it up to their own second.
        let cursor = *self.cursor.get_or_insert(second(now));
        self.place(cursor, t, key);
    }

    /// Onto the wheel, or past it. `t` is not before the cursor's second unless it is due (then
    /// it is ready).
    fn place(&mut self, cursor: i64, t: Timestamp, key: K) {
        let s = second(t);
        if s < cursor {
            self.ready.push((t, key));
        } else if s - cursor < WHEEL as i64 {
            if let Some(b) = self.wheel.get_mut(bucket(s)) {
                b.push((micros_into(t), key));
                self.on_wheel += 1;
            }
        } else {
            self.far.push(Reverse((t, key)));
        }
    }

    /// The next deadline before `now`, earliest second first (within a second in no set order);
    /// `None` when none is left. Call until `None` at each tick; a deadline armed meanwhile
    /// for before `now` is handed out too.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, K)> {
        if self.now.is_none_or(|n| now > n) {
            self.now = Some(now);
        }
        loop {
            if let Some(e) = self.ready.pop() {
                self.len -= 1;
                return Some(e);
            }
            let cursor = self.cursor?;
            let target = second(now);
            if cursor < target {
                self.advance(cursor, target, now);
                continue;
            }
            if self.searched == Some(now) {
                return None;
            }
            // The cursor's own second: only what lies before `now` is due.
            self.searched = Some(now);
            let cut = micros_into(now);
            let b = self.wheel.get_mut(bucket(cursor))?;
            let before = b.len();
            let base = cursor * US;
            let ready = &mut self.ready;
            b.retain(|&(us, key)| {
                let due = us < cut;
                if due {
                    ready.push((Timestamp::from_micros(base + i64::from(us)), key));
                }
                !due
            });
            self.on_wheel -= before - b.len();
            if self.ready.is_empty() {
                return None;
            }
        }
    }

    /// Moves the cursor one second on (to `target` at once when the wheel is empty), making the
    /// second it leaves ready, and brings far deadlines onto the wheel as it comes to them.
    fn advance(&mut self, cursor: i64, target: i64, now: Timestamp) {
        let next = if self.on_wheel == 0 {
            let far = self.far.peek().map(|Reverse((t, _))| second(*t));
            target.min(far.unwrap_or(target)).max(cursor + 1)
        } else {
            cursor + 1
        };
        if let Some(b) = self.wheel.get_mut(bucket(cursor)) {
            // Taken whole, so a bucket does not keep its largest size for ever.
            let b = std::mem::take(b);
            self.on_wheel -= b.len();
            let base = cursor * US;
            self.ready.extend(
                b.into_iter()
                    .map(|(us, key)| (Timestamp::from_micros(base + i64::from(us)), key)),
            );
        }
        self.cursor = Some(next);
        while let Some(&Reverse((t, key))) = self.far.peek() {
            if second(t) - next >= WHEEL as i64 {
                break;
            }
            self.far.pop();
            if t < now {
                self.ready.push((t, key));
            } else {
                self.place(next, t, key);
            }
        }
    }

    /// Keeps the entries `keep` approves of (the ones whose call or flow is still armed for them).
    pub fn retain(&mut self, mut keep: impl FnMut(Timestamp, K) -> bool) {
        let mut kept = 0;
        if let Some(cursor) = self.cursor {
            for s in cursor..cursor + WHEEL as i64 {
                let Some(b) = self.wheel.get_mut(bucket(s)) else {
                    continue;
                };
                let base = s * US;
                b.retain(|&(us, key)| keep(Timestamp::from_micros(base + i64::from(us)), key));
                if b.is_empty() {
                    *b = Vec::new();
                }
                kept += b.len();
            }
        }
        self.on_wheel = kept;
        self.ready.retain(|&(t, key)| keep(t, key));
        self.far.retain(|&Reverse((t, key))| keep(t, key));
        self.len = kept + self.ready.len() + self.far.len();
    }

    pub fn clear(&mut self) {
        for b in &mut self.wheel {
            *b = Vec::new();
        }
        self.far.clear();
        self.ready.clear();
        self.on_wheel = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Slot = u32;
    type Timers = super::Timers<Slot>;

    fn t(us: i64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    /// What a plain list of (deadline, slot) hands out at a tick: everything before `now`, sorted.
    fn due_in(all: &mut Vec<(Timestamp, Slot)>, now: Timestamp) -> Vec<(Timestamp, Slot)> {
        let (mut due, rest): (Vec<_>, Vec<_>) = all.iter().partition(|(d, _)| *d < now);
        *all = rest;
        due.sort();
        due
    }

    fn drain(timers: &mut Timers, now: Timestamp) -> Vec<(Timestamp, Slot)> {
        let mut got: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        got.sort();
        got
    }

    #[test]
    fn deadlines_fire_at_the_first_tick_after_them_near_and_far() {
        let mut w = Timers::default();
        let base = 1_767_225_600 * US;
        let deadlines = [
            base + 32 * US,
            base + 300 * US + 5,
            base + 4 * 3600 * US,
            base + 2 * 86_400 * US, // past the wheel
            base + 300 * US + 5,    // same time, another slot
        ];
        for (i, &d) in deadlines.iter().enumerate() {
            w.push(t(d), i as Slot, t(base));
        }
        assert_eq!(w.len(), 5);
        assert_eq!(drain(&mut w, t(base + 32 * US)), vec![]); // not before it
        assert_eq!(
            drain(&mut w, t(base + 32 * US + 1)),
            vec![(t(base + 32 * US), 0)]
        );
        assert_eq!(
            drain(&mut w, t(base + 301 * US)),
            vec![(t(base + 300 * US + 5), 1), (t(base + 300 * US + 5), 4)]
        );
        // A jump of days hands out everything before it, the far deadline included.
        assert_eq!(
            drain(&mut w, t(base + 3 * 86_400 * US)),
            vec![(t(base + 4 * 3600 * US), 2), (t(base + 2 * 86_400 * US), 3)]
        );
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_deadline_armed_for_the_past_is_due_at_once() {
        let mut w = Timers::default();
        w.push(t(10 * US), 1, t(0));
        assert_eq!(drain(&mut w, t(20 * US)), vec![(t(10 * US), 1)]);
        // Armed while handling the tick at 20 s, for 15 s (time went back): due at once.
        w.push(t(15 * US), 2, t(20 * US));
        assert_eq!(w.pop_due(t(20 * US)), Some((t(15 * US), 2)));
        w.push(t(5 * US), 3, t(20 * US));
        assert_eq!(drain(&mut w, t(21 * US)), vec![(t(5 * US), 3)]);
    }

    /// The wheel starts at the first packet's second: a deadline armed later for a time before
    /// the first deadline (a call rejected at once, forgotten 32 s later, while the first call
    /// waits 300 s) is not due before its time.
    #[test]
    fn an_earlier_deadline_armed_after_a_later_one_waits_for_its_time() {
        let mut w = Timers::default();
        w.push(t(300 * US), 1, t(0));
        w.push(t(33 * US), 2, t(US));
        assert_eq!(drain(&mut w, t(2 * US)), vec![]);
        assert_eq!(drain(&mut w, t(34 * US)), vec![(t(33 * US), 2)]);
        assert_eq!(drain(&mut w, t(301 * US)), vec![(t(300 * US), 1)]);
    }

    #[test]
    fn retain_drops_what_is_not_kept() {
        let mut w = Timers::default();
        for i in 0..1000 {
            w.push(t(i64::from(i) * 7_777_777), i, t(0));
        }
        w.push(t(400 * 86_400 * US), 5000, t(0));
        w.retain(|_, slot| slot % 2 == 0);
        assert_eq!(w.len(), 501);
        let got = drain(&mut w, t(500 * 86_400 * US));
        assert_eq!(got.len(), 501);
        assert!(got.iter().all(|&(_, s)| s % 2 == 0));
    }

    proptest! {
        /// Against a plain list: any pushes (deadlines near, far, before the tick, from packets
        /// a little behind it) and ticks that move on by up to days hand out the same deadlines
        /// at the same ticks.
        #[test]
        fn same_as_a_plain_list(ops in proptest::collection::vec(
            (0u8..5, 0i64..20_000_000_000, 0u32..64), 1..300)) {
            let mut w = Timers::default();
            let mut all = Vec::new();
            let mut now = 1_700_000_000 * US;
            // Packets come between ticks: the next tick is later than all of them.
            let mut packet = now;
            for (op, x, slot) in ops {
                match op {
                    0 | 1 => {
                        let d = packet - 5 * US + x % (6 * 3600 * US); // mostly ahead, some behind
                        w.push(t(d), slot, t(packet));
                        all.push((t(d), slot));
                    }
                    2 => {
                        let d = packet + x % (40 * 86_400 * US); // up to weeks ahead
                        w.push(t(d), slot, t(packet));
                        all.push((t(d), slot));
                    }
                    3 => packet += x % (2 * US),
                    _ => {
                        now = packet.max(now) + 1 + x % (if slot < 48 { 3 * US } else { 10 * 86_400 * US });
                        packet = now;
                        let want = due_in(&mut all, t(now));
                        prop_assert_eq!(drain(&mut w, t(now)), want);
                    }
                }
                prop_assert_eq!(w.len(), all.len());
            }
        }
    }
}
