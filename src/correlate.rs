//! Stage 4b: correlation across shards. Legs of one call with different Call-IDs live on
//! different shards; this stage, in the writer thread after the shards' rows are merged into
//! input order, links them:
//!
//! - `--correlate-heuristic`: an outgoing INVITE from our host (`--local-net`) with the same caller
//!   and destination numbers as an incoming one started at most [`HEURISTIC_SECS`] before it gets
//!   the incoming leg's session id (a B2BUA's two sides).
//! - A blind transfer: a REFER in one session, then an INVITE with `Referred-By` from the REFER's
//!   receiver (the transferee) to the Refer-To user within [`REFER_SECS`]: the new leg's
//!   `original_session_id` is the REFER's session.
//!
//! The shards send a small [`Note`] at every initial INVITE the stage may need (and at every
//! REFER), ordered with the records by the sequence number of the packet. A note is always merged
//! before any record of a later packet, so when an outgoing leg's records arrive, the incoming
//! INVITE it belongs with has already been seen: no record waits for its partner, and the result
//! depends only on the input. Linked records get their ids rewritten in place in the CSV line.

use crate::cdr::{COLUMNS, Row};
use crate::time::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use uuid::Uuid;

/// Most time between an incoming INVITE and the outgoing one it causes (issue #5: 2 s).
pub const HEURISTIC_SECS: u32 = 2;
/// Most time between a REFER and the INVITE of the transfer (Timer B, 64·T1).
pub const REFER_SECS: u32 = 32;

/// What the correlation stage is told about a leg or a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// An initial INVITE that started a leg.
    Invite {
        leg_id: Uuid,
        session: Uuid,
        start: Timestamp,
        /// `Some(true)`: into `--local-net`; `Some(false)`: out of it.
        inbound: Option<bool>,
        caller: Box<str>,
        dest: Box<str>,
        src_host: IpAddr,
        /// The session id came from Session-ID or `--correlate-header`: keep it.
        explicit_session: bool,
        /// The INVITE had `Referred-By` and no `Replaces`.
        referred: bool,
    },
    /// A REFER in `session`, received by `transferee`, asking it to call `target` (user part).
    Refer {
        session: Uuid,
        at: Timestamp,
        transferee: IpAddr,
        target: Box<str>,
    },
}

/// Byte offsets in every CSV line: `leg_id` is a 36-byte UUID and a comma, so is `session_id`,
/// and `original_session_id` follows.
const SESSION_AT: usize = 37;
const ORIGINAL_AT: usize = 74;
const UUID_LEN: usize = 36;

/// Most incoming INVITEs and REFERs remembered at once (a flood inside the 2 s or 32 s window
/// drops the oldest, counted).
pub const MAX_RECENT: usize = 65_536;
/// Most links of open legs kept (the oldest are forgotten first, counted): a leg whose stop record
/// is never written (`--skip-causes`) would otherwise keep its link for ever.
pub const MAX_LINKS: usize = 1_000_000;

#[derive(Default)]
pub struct Correlator {
    /// Incoming INVITEs of the last [`HEURISTIC_SECS`]: (start, caller, destination, session).
    incoming: VecDeque<(Timestamp, Box<str>, Box<str>, Uuid)>,
    /// REFERs of the last [`REFER_SECS`]: (time, transferee, target, session).
    refers: VecDeque<(Timestamp, IpAddr, Box<str>, Uuid)>,
    /// Decided links of open legs: leg id → (session id, original session id).
    links: HashMap<Uuid, (Option<Uuid>, Option<Uuid>)>,
    /// Leg ids in the order their links were made, for [`MAX_LINKS`].
    order: VecDeque<Uuid>,
    pub stats: CorrelatorStats,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Legs whose session came from the heuristic.
    pub heuristic: u64,
    /// Legs linked to a transfer's REFER.
    pub transfers: u64,
    /// Remembered INVITEs, REFERs and links dropped at the caps.
    pub dropped: u64,
}

impl Correlator {
    /// Takes rows in output order; returns the CSV rows (notes removed), linked ones rewritten.
    pub fn apply(&mut self, rows: Vec<Row>) -> Vec<Row> {
        if self.links.is_empty() && rows.iter().all(|r| r.note.is_none()) {
            return rows; // nothing to do: no notes and no linked leg open
        }
        let mut out = Vec::with_capacity(rows.len());
        for mut row in rows {
            if let Some(note) = row.note.take() {
                self.note(*note);
                continue;
            }
            let link = if row.record == crate::cdr::RecordType::Stop {
                self.links.remove(&row.leg_id)
            } else {
                self.links.get(&row.leg_id).copied()
            };
            if let Some((session, original)) = link {
                rewrite(&mut row.line, session, original);
            }
            out.push(row);
        }
        out
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::Invite {
                leg_id,
                session,
                start,
                inbound,
                caller,
                dest,
                src_host,
                explicit_session,
                referred,
            } => {
                // Notes come in packet order, so the oldest entries are at the front.
                while self
                    .incoming
                    .front()
                    .is_some_and(|(t, ..)| t.plus_secs(HEURISTIC_SECS) < start)
                {
                    self.incoming.pop_front();
                }
                while self
                    .refers
                    .front()
                    .is_some_and(|(t, ..)| t.plus_secs(REFER_SECS) < start)
                {
                    self.refers.pop_front();
                }
                let mut link = (None, None);
                match inbound {
                    Some(true) => {
                        self.incoming
                            .push_back((start, caller, dest.clone(), session));
                        if self.incoming.len() > MAX_RECENT {
                            self.incoming.pop_front();
                            self.stats.dropped += 1;
                        }
                    }
                    Some(false) if !explicit_session && !caller.is_empty() => {
                        // The latest incoming INVITE with the same numbers, started at most
                        // HEURISTIC_SECS before.
                        link.0 = self
                            .incoming
                            .iter()
                            .rev()
                            .find(|(t, c, d, _)| {
                                *c == caller && *d == dest && t.plus_secs(HEURISTIC_SECS) >= start
                            })
                            .map(|(.., s)| *s);
                        self.stats.heuristic += u64::from(link.0.is_some());
                    }
                    _ => {}
                }
                if referred {
                    link.1 = self
                        .refers
                        .iter()
                        .rev()
                        .find(|(_, host, target, _)| *host == src_host && *target == dest)
                        .map(|(.., s)| *s);
                    self.stats.transfers += u64::from(link.1.is_some());
                }
                if link != (None, None) {
                    self.links.insert(leg_id, link);
                    self.order.push_back(leg_id);
                    if self.order.len() > MAX_LINKS
                        && let Some(old) = self.order.pop_front()
                        && self.links.remove(&old).is_some()
                    {
                        self.stats.dropped += 1;
                    }
                }
            }
            Note::Refer {
                session,
                at,
                transferee,
                target,
            } => {
                self.refers.push_back((at, transferee, target, session));
                if self.refers.len() > MAX_RECENT {
                    self.refers.pop_front();
                    self.stats.dropped += 1;
                }
            }
        }
    }
}

/// Writes `session` over the line's session id and `original` into its empty
/// `original_session_id`.
fn rewrite(line: &mut Vec<u8>, session: Option<Uuid>, original: Option<Uuid>) {
    debug_assert_eq!(COLUMNS[1], "session_id");
    debug_assert_eq!(COLUMNS[2], "original_session_id");
    let mut buf = [0u8; UUID_LEN];
    if let Some(s) = session
        && let Some(field) = line.get_mut(SESSION_AT..SESSION_AT + UUID_LEN)
    {
        field.copy_from_slice(s.hyphenated().encode_lower(&mut buf).as_bytes());
    }
    if let Some(o) = original
        && line.get(ORIGINAL_AT) == Some(&b',')
    {
        let text = o.hyphenated().encode_lower(&mut buf).as_bytes().to_vec();
        line.splice(ORIGINAL_AT..ORIGINAL_AT, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::RecordType;

    fn invite(n: u128, start_ms: i64, inbound: Option<bool>, caller: &str, dest: &str) -> Note {
        Note::Invite {
            leg_id: Uuid::from_u128(n),
            session: Uuid::from_u128(100 + n),
            start: Timestamp::from_micros(start_ms * 1000),
            inbound,
            caller: caller.into(),
            dest: dest.into(),
            src_host: "10.0.0.9".parse().unwrap(),
            explicit_session: false,
            referred: false,
        }
    }

    fn note_row(seq: u64, n: Note) -> Row {
        Row {
            seq,
            time: Timestamp::from_micros(0),
            leg_id: Uuid::nil(),
            record: RecordType::Stop,
            reason: None,
            line: Vec::new(),
            note: Some(Box::new(n)),
        }
    }

    /// A real encoded line for leg `n` with its own session id.
    fn record(seq: u64, n: u128) -> Row {
        // The start of a real line: leg id, session id, empty original session id.
        let text = format!(
            "{},{},,stop,call-{n},,,udp\n",
            Uuid::from_u128(n).hyphenated(),
            Uuid::from_u128(100 + n).hyphenated()
        );
        Row {
            seq,
            time: Timestamp::from_micros(0),
            leg_id: Uuid::from_u128(n),
            record: RecordType::Stop,
            reason: None,
            line: text.into_bytes(),
            note: None,
        }
    }

    fn ids(line: &[u8]) -> (String, String) {
        let s = String::from_utf8(line.to_vec()).unwrap();
        let f: Vec<&str> = s.split(',').collect();
        (f[1].to_string(), f[2].to_string())
    }

    #[test]
    fn an_outgoing_invite_within_two_seconds_joins_the_incoming_session() {
        let mut c = Correlator::default();
        let out = c.apply(vec![
            note_row(1, invite(1, 0, Some(true), "1001", "2002")),
            note_row(2, invite(2, 1500, Some(false), "1001", "2002")),
            note_row(3, invite(3, 1600, Some(false), "1001", "9999")), // other number
            note_row(4, invite(4, 3600, Some(false), "1001", "2002")), // 3.6 s: too late
            record(5, 2),
            record(6, 3),
            record(7, 4),
            record(8, 1),
        ]);
        assert_eq!(out.len(), 4, "notes are not written");
        let s1 = Uuid::from_u128(101).to_string();
        assert_eq!(ids(&out[0].line).0, s1);
        assert_eq!(ids(&out[1].line).0, Uuid::from_u128(103).to_string());
        assert_eq!(ids(&out[2].line).0, Uuid::from_u128(104).to_string());
        assert_eq!(ids(&out[3].line).0, s1);
        assert_eq!(c.stats.heuristic, 1);
        assert!(c.links.is_empty(), "a stop record forgets its link");
    }

    #[test]
    fn a_referred_invite_gets_the_refer_session_as_original() {
        let mut c = Correlator::default();
        let mut inv = invite(2, 1000, None, "2002", "3003");
        if let Note::Invite { referred, .. } = &mut inv {
            *referred = true;
        }
        let out = c.apply(vec![
            note_row(
                1,
                Note::Refer {
                    session: Uuid::from_u128(777),
                    at: Timestamp::from_micros(500_000),
                    transferee: "10.0.0.9".parse().unwrap(),
                    target: "3003".into(),
                },
            ),
            note_row(2, inv),
            record(3, 2),
        ]);
        let (session, original) = ids(&out[0].line);
        assert_eq!(session, Uuid::from_u128(102).to_string());
        assert_eq!(original, Uuid::from_u128(777).to_string());
        assert_eq!(c.stats.transfers, 1);
    }

    #[test]
    fn rows_without_notes_pass_untouched() {
        let mut c = Correlator::default();
        let rows = vec![record(1, 1), record(2, 2)];
        let lines: Vec<_> = rows.iter().map(|r| r.line.clone()).collect();
        let out = c.apply(rows);
        assert_eq!(
            out.iter().map(|r| r.line.clone()).collect::<Vec<_>>(),
            lines
        );
    }

    #[test]
    fn remembered_invites_are_capped_and_counted() {
        let mut c = Correlator::default();
        let notes: Vec<Row> = (0..MAX_RECENT as u128 + 10)
            .map(|n| note_row(n as u64, invite(n, 0, Some(true), "1", "2")))
            .collect();
        assert!(c.apply(notes).is_empty());
        assert_eq!(c.incoming.len(), MAX_RECENT);
        assert_eq!(c.stats.dropped, 10);
        // The window still applies after the cap.
        let late = c.apply(vec![note_row(
            1,
            invite(999_999, 2500, Some(false), "1", "2"),
        )]);
        assert!(late.is_empty());
        assert_eq!(
            c.stats.heuristic, 0,
            "2.5 s after the incoming INVITEs: no link"
        );
    }
}
