//! Stage 3: dialog tracking. One [`Tracker`] per shard thread owns every call whose Call-ID hashes
//! to it, so it needs no locks. Time comes only from the messages and ticks it is given.

mod calls;
mod dialog;

pub use dialog::{Endpoint, Leg, Limits, MediaState, Phase, TRANSACTION_SECS, session_uuid};

use crate::capture::route::{Batch, Item, Msg};
use crate::cdr::cause::q850_name;
use crate::cdr::{
    Cdr, Direction, Disposition, EndReason, Field, LegRole, LegText, RecordType, Row,
};
use crate::config::Cidr;
use crate::correlate::Note;
use crate::metrics::Metrics;
use crate::sip::sdp::{audio_on_hold, find_sdp};
use crate::sip::value::{
    NameAddr, cseq, delta_seconds, first_entry, fold_ws, history_info_redirect, lossy, q850_cause,
    replaces_call_id, session_id_key, text, uri_user,
};
use crate::sip::{Bare, Framing, HeaderName, Message, Method, StartLine};
use crate::time::Timestamp;
use crate::timers::Timers;
use calls::{Call, Calls, Slot};
use crossbeam_channel::{Receiver, Sender};
use dialog::Ending;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Records ahead of the one being encoded whose text is prefetched.
const TEXT_AHEAD: usize = 2;

/// What the tracker needs to know.
#[derive(Clone, Debug, Default)]
pub struct TrackerConfig {
    /// Our networks: a leg whose INVITE arrives into them is inbound, one that leaves is outbound.
    pub local_nets: Vec<Cidr>,
    /// Open legs this shard may hold (`--max-dialogs` split over the shards); past it the
    /// oldest unanswered legs are ended as `evicted`.
    pub max_legs: Option<usize>,
    /// Guard text fields against spreadsheet formula injection (`--csv-safe`).
    pub csv_safe: bool,
    /// `--setup-timeout` and `--max-duration`.
    pub limits: Limits,
    /// Also write an `attempt` record at the initial INVITE and a `start` record at the answer
    /// (`--records`).
    pub attempt_records: bool,
    pub start_records: bool,
    /// Hangup causes that write no stop record (`--skip-causes`), upper case.
    pub skip_causes: Vec<String>,
    /// Headers whose value (on the initial INVITE) names the session: the Call-ID of the leg
    /// this one belongs with (`--correlate-header`), lower case.
    pub correlate_headers: Vec<String>,
    /// Tell the correlation stage about incoming and outgoing INVITEs (`--correlate-heuristic`).
    pub correlate_heuristic: bool,
}

/// Counters of one shard; summed over shards at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackerStats {
    pub messages: u64,
    pub malformed: u64,
    pub retransmissions: u64,
    /// Requests and responses for a Call-ID whose INVITE was never seen (REGISTER, OPTIONS,
    /// calls already running when the capture started).
    pub without_invite: u64,
    /// Messages for a leg that had already ended (late retransmissions, the 200 to a BYE).
    pub after_end: u64,
    pub legs: u64,
    /// Legs ended as `evicted` to stay under `--max-dialogs`.
    pub evicted: u64,
    /// Ended legs that had been answered (for the answer-seizure ratio).
    pub answered: u64,
    /// 2xx responses and BYEs of a second fork's dialog after another fork answered.
    pub forked: u64,
    /// Stop records not written because of `--skip-causes`.
    pub skipped: u64,
    pub by_reason: [u64; EndReason::ALL.len()],
}

impl TrackerStats {
    pub fn add(&mut self, o: &TrackerStats) {
        self.messages += o.messages;
        self.malformed += o.malformed;
        self.retransmissions += o.retransmissions;
        self.without_invite += o.without_invite;
        self.after_end += o.after_end;
        self.legs += o.legs;
        self.evicted += o.evicted;
        self.answered += o.answered;
        self.forked += o.forked;
        self.skipped += o.skipped;
        for (a, b) in self.by_reason.iter_mut().zip(o.by_reason) {
            *a += b;
        }
    }
}

/// The CDRs one shard sends the writer.
#[derive(Debug)]
pub struct RowBatch {
    pub shard: usize,
    /// No row with a sequence number up to this one will come from this shard any more.
    pub upto: u64,
    pub rows: Vec<Row>,
}

pub struct Tracker {
    rules: Rules,
    /// Calls by the keyed hash of their Call-ID, in slots that do not move (`calls.rs`).
    calls: Calls,
    /// Deadlines: (time, slot of the call) on a wheel of seconds (`timers.rs`). Eight bytes and
    /// no allocation per call; the deadline holds if the call in that slot is armed for that
    /// time. A deadline a later one superseded stays until its time, when it is passed over, or
    /// until [`Tracker::compact_timers`] drops it. Should a slot be reused by a call armed for
    /// the same time, firing it only runs that call's expiry check, which fires nothing not yet
    /// due.
    timers: Timers<Slot>,
    /// The deadlines one tick is firing (kept for its allocation).
    due: Vec<(Timestamp, Slot)>,
    /// Notes for the correlation stage, with their packets' sequence numbers.
    pub notes: Vec<(u64, Timestamp, Note)>,
    pub stats: TrackerStats,
}

/// What applying a message needs besides the call itself: configuration and the tag hasher.
struct Rules {
    cfg: TrackerConfig,
    tags: ahash::RandomState,
    /// First letters (lower case) of the headers read by name on initial INVITEs.
    initials: [bool; 256],
}

/// Whether two slices are the same view of the same bytes.
fn same_view(a: &[u8], b: &[u8]) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

/// Where records go: (sequence number of the event that made them, record).
pub type Out = Vec<(u64, Cdr)>;

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker {
            rules: Rules {
                initials: initials(&cfg.correlate_headers),
                cfg,
                tags: ahash::RandomState::new(),
            },
            calls: Calls::with_hasher(ahash::RandomState::new()),
            timers: Timers::default(),
            due: Vec::new(),
            notes: Vec::new(),
            stats: TrackerStats::default(),
        }
    }

    /// Hash Call-IDs with the router's keys, so a message's hash from the router can be used
    /// (see [`crate::capture::route::Batch::call_id_of`]).
    pub fn with_keys(mut self, hasher: ahash::RandomState) -> Tracker {
        self.calls = Calls::with_hasher(hasher);
        self
    }

    /// Legs not yet ended.
    pub fn open_legs(&self) -> usize {
        self.calls
            .iter()
            .flat_map(|(_, c)| &c.legs)
            .filter(|l| l.phase != Phase::Ended)
            .count()
    }

    /// Applies one SIP message.
    pub fn handle(&mut self, bytes: &[u8], meta: &Msg, out: &mut Out) {
        let mut parsed = Message::EMPTY;
        self.handle_hinted(bytes, &mut parsed, meta, None, out);
    }

    /// Applies one SIP message whose Call-ID and hash the router may have given (`hint`),
    /// parsed into `parsed`: one slot for a whole batch, parsed in place rather than copied out
    /// of a `Result` (see `Message::parse_into`), and not filled anew from `Message::EMPTY`
    /// for every message (a ~280-byte `memcpy` call each: 0.8 % of a run's samples).
    fn handle_hinted<'b>(
        &mut self,
        bytes: &'b [u8],
        parsed: &mut Message<'b>,
        meta: &Msg,
        hint: Option<(&[u8], u64)>,
        out: &mut Out,
    ) {
        self.stats.messages += 1;
        // The call of the router's Call-ID, looked up before the parse: a message of no known
        // call that is not an INVITE cannot start one, and is counted without being parsed
        // (one in twenty on the bench mix: REGISTER, OPTIONS and their answers).
        let early = hint.map(|(id, h)| (id, h, self.calls.find(h, id)));
        match early {
            Some((_, _, None)) if !meta.invite => {
                self.stats.without_invite += 1;
                return;
            }
            // A call whose legs have all ended (kept a while to absorb stragglers: one message
            // in eight on the bench mix, the answers to BYEs and ACKs of failures): no timer of
            // it can fire, and a message that is not an INVITE would only be counted, as
            // `open_leg` counts it. Counted so without the parse.
            Some((_, _, Some(slot))) if !meta.invite => {
                let limits = self.rules.cfg.limits;
                let Some(call) = self.calls.get_mut(slot) else {
                    return;
                };
                if call.all_ended() {
                    // Counts the message and finds no open leg, as the handler's would.
                    // (Nothing its deadline depends on changes: no re-arming.)
                    let none = open_leg(call, &mut self.stats, meta.src, meta.dst);
                    debug_assert!(none.is_none());
                    return;
                }
                // A 100 Trying to a leg being set up, or an ACK without a body to a leg not
                // ended, only shows the dialog alive (`request`, `response`): read from the
                // start line (one message in four on the bench mix).
                // So is a provisional response without a body to a leg being set up, but for
                // the progress time it marks when its CSeq is the leg's INVITE's.
                let bare = crate::sip::bare(bytes).and_then(|kind| match kind {
                    Bare::Provisional => {
                        let c = crate::sip::find_cseq(bytes).and_then(cseq)?;
                        Some((kind, Some(c)))
                    }
                    _ => Some((kind, None)),
                });
                if let Some((kind, cseq)) = bare {
                    let stats = &mut self.stats;
                    let expiring = self.rules.expire_before(call, meta, stats, out);
                    let leg = find_leg(&call.legs, meta.src, meta.dst, false)
                        .and_then(|i| call.legs.get_mut(i))
                        .filter(|l| match kind {
                            Bare::Trying | Bare::Provisional => l.phase == Phase::Setup,
                            Bare::Ack => l.phase != Phase::Ended,
                        });
                    if let Some(leg) = leg {
                        leg.last_seen = meta.ts;
                        if let Some((n, Method::Invite)) = cseq
                            && n == leg.invite_cseq
                        {
                            leg.progress.get_or_insert(meta.ts);
                        }
                        // The times seen and of progress are no deadline's: only expiries
                        // can have moved the call's.
                        if expiring {
                            rearm(call, slot, limits, &mut self.timers, meta.ts);
                            self.compact_timers_if_stale();
                        }
                        return;
                    }
                    // Else what the handler does depends on more than the start line.
                }
            }
            _ => {}
        }
        if Message::parse_into(bytes, Framing::Datagram, parsed).is_err() {
            self.stats.malformed += 1;
            return;
        }
        let m = &*parsed;
        let (Some(call_id), Some((cseq_num, cseq_method))) = (m.call_id, m.cseq.and_then(cseq))
        else {
            self.stats.malformed += 1;
            return;
        };
        // An INVITE without a To tag; the To header is read only for INVITEs.
        // (Its To header, read once: the new leg's text takes its URI.)
        let to = (m.method() == Some(Method::Invite)).then(|| m.to.map(NameAddr::parse));
        let initial = to.is_some_and(|t| t.and_then(|n| n.tag()).is_none());
        // One lookup per message; only an initial INVITE creates a call. The router's, unless
        // it read the Call-ID differently (malformed headers).
        let (hash, found) = match early {
            // Both views of the same bytes, nearly always: compared by place before by content.
            Some((id, h, found)) if same_view(id, call_id) || id == call_id => (h, found),
            _ => {
                let h = self.calls.hash(call_id);
                (h, self.calls.find(h, call_id))
            }
        };
        let slot = match found {
            Some(s) => s,
            None if initial => self.calls.insert(hash, Call::new(call_id)),
            None => {
                self.stats.without_invite += 1;
                return;
            }
        };
        let Some(call) = self.calls.get_mut(slot) else {
            return;
        };
        let legs_before = self.stats.legs;
        let stats = &mut self.stats;
        let limits = self.rules.cfg.limits;
        self.rules.expire_before(call, meta, stats, out);
        let note = match m.start {
            StartLine::Request { uri, .. } if initial => self.rules.initial_invite(
                call,
                stats,
                m,
                to.flatten(),
                call_id,
                uri,
                cseq_num,
                meta,
                out,
            ),
            StartLine::Request { method, .. } => self
                .rules
                .request(call, stats, m, call_id, method, meta, out),
            StartLine::Response { code, .. } => {
                let cseq = (cseq_num, cseq_method);
                self.rules
                    .response(call, stats, m, call_id, code, cseq, meta, out);
                None
            }
        };
        if let Some(n) = note {
            self.notes.push((meta.seq, meta.ts, n));
        }
        rearm(call, slot, limits, &mut self.timers, meta.ts);
        if self.stats.legs != legs_before {
            self.enforce_cap(meta.seq, meta.ts, out);
        }
        self.compact_timers_if_stale();
    }

    fn compact_timers_if_stale(&mut self) {
        if self.timers.len() > 2 * self.calls.len() + TIMER_SLACK {
            self.compact_timers();
        }
    }

    /// Drops the deadlines no call is armed for any more. A superseded deadline stays in the heap
    /// until its time, and an ended call's `--max-duration` deadline is hours away: without this,
    /// the 10 M-call soak's RSS grew by ~120 MiB. Run when the heap holds more than twice as many
    /// deadlines as there are calls, so its cost per message stays constant. Nothing fires
    /// differently: a call armed again later pushes its deadline again.
    fn compact_timers(&mut self) {
        let calls = &self.calls;
        self.timers
            .retain(|t, slot| calls.get(slot).is_some_and(|c| c.armed == Some(t)));
    }

    /// Legs opened and not yet ended.
    fn open(&self) -> u64 {
        self.stats.legs - self.stats.by_reason.iter().sum::<u64>()
    }

    /// Past `max_legs`, ends the oldest unanswered legs (then the oldest answered ones, if that
    /// is not enough) as `evicted`: the overflow plus 1 % of the cap at once, so that a flood
    /// costs one scan per 1 % of the cap rather than one per INVITE. No memory per leg is spent
    /// on this; which legs go depends only on their start times (ties: Call-ID, hop).
    fn enforce_cap(&mut self, seq: u64, now: Timestamp, out: &mut Out) {
        let Some(max) = self.rules.cfg.max_legs else {
            return;
        };
        let open = self.open();
        if open <= max as u64 {
            return;
        }
        let want = (open - max as u64) as usize + max / 100;
        // (answered?, start, slot, leg index): unanswered sort first, then oldest, then by
        // Call-ID and hop.
        let mut victims: Vec<(bool, Timestamp, Slot, usize)> = self
            .calls
            .iter()
            .flat_map(|(slot, c)| {
                c.legs
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, l)| match l.phase {
                        Phase::Ended => None,
                        p => Some((p != Phase::Setup, l.start, slot, i)),
                    })
            })
            .collect();
        let calls = &self.calls;
        let id = |s: Slot| calls.get(s).map(|c| c.id.as_bytes());
        let order = |a: &(bool, Timestamp, Slot, usize), b: &(bool, Timestamp, Slot, usize)| {
            (a.0, a.1, id(a.2), a.3).cmp(&(b.0, b.1, id(b.2), b.3))
        };
        if victims.len() > want {
            victims.select_nth_unstable_by(want, order);
            victims.truncate(want);
        }
        victims.sort_unstable_by(order);
        let limits = self.rules.cfg.limits;
        for (_, _, slot, i) in victims {
            let Some(call) = self.calls.get_mut(slot) else {
                continue;
            };
            let Call { id, legs, .. } = &mut *call;
            if let Some(leg) = legs.get_mut(i) {
                let e = leg.end(Ending::evicted());
                self.stats.evicted += 1;
                self.rules
                    .emit(out, &mut self.stats, seq, id.as_bytes(), legs, i, &e);
            }
            rearm(call, slot, limits, &mut self.timers, now);
        }
    }
}

/// The raw values [`InviteHeaders`] is made from.
#[derive(Default)]
struct InviteFound<'a> {
    pai: Option<&'a [u8]>,
    rpid: Option<&'a [u8]>,
    /// The last Privacy.
    privacy: Option<&'a [u8]>,
    diversion: Option<&'a [u8]>,
    /// Every History-Info entry, in order.
    history: Cow<'a, [u8]>,
    session_id: Option<[u8; 32]>,
    /// The last Replaces.
    replaces: Option<&'a [u8]>,
    referred: bool,
    /// The value of the highest-ranked `--correlate-header` present.
    correlated: Option<&'a [u8]>,
}

/// What the initial INVITE's headers read by name say.
#[derive(Debug, Default, PartialEq)]
struct InviteHeaders<'a> {
    asserted: Cow<'a, [u8]>,
    privacy: Cow<'a, [u8]>,
    redirect: Cow<'a, [u8]>,
    session: Option<uuid::Uuid>,
    original_session: Option<uuid::Uuid>,
    /// `Referred-By` was present (a transfer's new call).
    referred: bool,
}

impl Rules {
    /// A dialog tag as 32 bits (never 0): only compared within one call.
    fn tag_hash(&self, tag: &[u8]) -> u32 {
        (self.tags.hash_one(tag) as u32) | 1
    }

    /// What the leg's record takes from an initial INVITE's headers. The parse found the first
    /// of each; only a repeated one, or `--correlate-header`, needs a second scan.
    fn invite_headers<'a>(&self, m: &Message<'a>) -> InviteHeaders<'a> {
        let l = &m.invite;
        if l.repeated || !self.cfg.correlate_headers.is_empty() {
            return self.invite_headers_scan(m);
        }
        self.invite_headers_from(InviteFound {
            pai: l.asserted_identity,
            rpid: l.remote_party_id,
            privacy: l.privacy,
            diversion: l.diversion,
            history: Cow::Borrowed(l.history_info.unwrap_or_default()),
            session_id: l.session_id.and_then(session_id_key),
            replaces: l.replaces,
            referred: l.referred_by.is_some(),
            correlated: None,
        })
    }

    /// [`Rules::invite_headers`] by a scan of every header line: all History-Info entries, the
    /// last Privacy and Replaces, the first Session-ID that holds a key, the correlation headers.
    fn invite_headers_scan<'a>(&self, m: &Message<'a>) -> InviteHeaders<'a> {
        let mut f = InviteFound::default();
        let mut history: Vec<u8> = Vec::new();
        let mut correlated: Option<(usize, &[u8])> = None;
        for (name, value) in m.headers_starting(&self.initials) {
            match HeaderName::from_bytes(name) {
                HeaderName::AssertedIdentity => {
                    f.pai.get_or_insert(value);
                }
                HeaderName::RemotePartyId => {
                    f.rpid.get_or_insert(value);
                }
                HeaderName::Privacy => f.privacy = Some(value),
                HeaderName::Diversion => {
                    f.diversion.get_or_insert(value);
                }
                HeaderName::HistoryInfo => {
                    if !history.is_empty() {
                        history.push(b',');
                    }
                    history.extend_from_slice(value);
                }
                HeaderName::SessionId => {
                    f.session_id = f.session_id.or_else(|| session_id_key(value));
                }
                HeaderName::Replaces => f.replaces = Some(value),
                HeaderName::ReferredBy => f.referred = true,
                _ => {
                    let is = |n: &String| name.eq_ignore_ascii_case(n.as_bytes());
                    if let Some(rank) = self.cfg.correlate_headers.iter().position(is)
                        && correlated.is_none_or(|(r, _)| rank < r)
                        && !value.is_empty()
                    {
                        correlated = Some((rank, value));
                    }
                }
            }
        }
        f.history = Cow::Owned(history);
        f.correlated = correlated.map(|(_, v)| v);
        self.invite_headers_from(f)
    }

    fn invite_headers_from<'a>(&self, f: InviteFound<'a>) -> InviteHeaders<'a> {
        let user_of = |v: &'a [u8]| text(uri_user(NameAddr::parse(first_entry(v)).uri));
        let redirect = match (f.diversion, &f.history) {
            (Some(d), _) => user_of(d),
            (None, Cow::Borrowed(h)) => text(history_info_redirect(h).unwrap_or_default()),
            (None, Cow::Owned(h)) => {
                Cow::Owned(text(history_info_redirect(h).unwrap_or_default()).into_owned())
            }
        };
        InviteHeaders {
            asserted: f.pai.or(f.rpid).map(user_of).unwrap_or_default(),
            privacy: f.privacy.map(fold_ws).unwrap_or_default(),
            redirect,
            session: match (f.session_id, f.correlated) {
                (Some(key), _) => Some(session_uuid(&key)),
                (None, Some(v)) => Some(session_uuid(v)),
                (None, None) => None,
            },
            original_session: f.replaces.and_then(replaces_call_id).map(session_uuid),
            referred: f.referred,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn initial_invite(
        &self,
        call: &mut Call,
        stats: &mut TrackerStats,
        m: &Message<'_>,
        to: Option<NameAddr<'_>>,
        call_id: &[u8],
        ruri: &[u8],
        cseq_num: u32,
        meta: &Msg,
        out: &mut Out,
    ) -> Option<Note> {
        if let Some(leg) =
            find_leg(&call.legs, meta.src, meta.dst, true).and_then(|i| call.legs.get_mut(i))
        {
            if cseq_num <= leg.invite_cseq {
                stats.retransmissions += 1;
                return None;
            }
            if leg.phase == Phase::Setup {
                // The retry after a 401/407 challenge (or any new INVITE before a final answer)
                // continues the same leg: start stays at the first INVITE.
                leg.invite_cseq = cseq_num;
                leg.challenged = None;
                leg.final_code = None;
                leg.last_seen = meta.ts;
                if let Some(sdp) = find_sdp(m.content_type, m.body) {
                    leg.sdp(true, sdp, |o| self.tags.hash_one(o));
                }
                return None;
            }
            if leg.phase == Phase::Answered {
                stats.retransmissions += 1;
                return None;
            }
            // Ended: a new attempt on the same hop is a new leg.
        }
        let from = m.from.map(NameAddr::parse).unwrap_or_default();
        let to = to.unwrap_or_default();
        let h = self.invite_headers(m);
        let columns = LegText::new([
            &*from.display_name(),
            &text(uri_user(from.uri)),
            &text(uri_user(ruri)),
            &h.asserted,
            &h.privacy,
            &h.redirect,
            &text(from.uri),
            &text(to.uri),
            &m.user_agent.map(fold_ws).unwrap_or_default(),
            b"",
            b"",
        ]);
        let direction = direction(&self.cfg.local_nets, meta.src, meta.dst);
        let mut leg = Leg {
            text: columns,
            src: meta.src.into(),
            dst: meta.dst.into(),
            transport: meta.transport,
            direction,
            from_tag: from.tag().map_or(0, |t| self.tag_hash(t)),
            answer_tag: 0,
            late_fork_tag: 0,
            invite_cseq: cseq_num,
            start: meta.ts,
            progress: None,
            progress_media: None,
            answer: None,
            phase: Phase::Setup,
            final_code: None,
            hold_since: None,
            wait: None,
            canceled: None,
            cancel_cause: None,
            challenged: None,
            ended_at: None,
            last_seen: meta.ts,
            links: (h.session.is_some() || h.original_session.is_some())
                .then(|| Box::new([h.session, h.original_session])),
            media: MediaState::default(),
        };
        if let Some(sdp) = find_sdp(m.content_type, m.body) {
            leg.sdp(true, sdp, |o| self.tags.hash_one(o));
        }
        // What the correlation stage needs: incoming and outgoing INVITEs for the heuristic,
        // and the new call of a blind transfer.
        let inbound = direction.map(|d| d == Direction::Inbound);
        let referred = h.referred && h.original_session.is_none();
        let note = ((self.cfg.correlate_heuristic && inbound.is_some()) || referred).then(|| {
            Note::Invite {
                leg_id: leg.leg_id(call_id),
                session: leg.session_id(call_id),
                start: leg.start,
                inbound,
                caller: leg.text.get(Field::CallerNumber).into(),
                dest: leg.text.get(Field::DestinationNumber).into(),
                src_host: meta.src.ip(),
                explicit_session: h.session.is_some(),
                referred,
            }
        });
        call.legs.push(leg);
        stats.legs += 1;
        if self.cfg.attempt_records {
            let i = call.legs.len() - 1;
            self.record(out, meta.seq, call_id, &call.legs, i, RecordType::Attempt);
        }
        note
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        call: &mut Call,
        stats: &mut TrackerStats,
        m: &Message<'_>,
        call_id: &[u8],
        method: Method<'_>,
        meta: &Msg,
        out: &mut Out,
    ) -> Option<Note> {
        let i = open_leg(call, stats, meta.src, meta.dst)?;
        let leg = call.legs.get_mut(i)?;
        leg.last_seen = meta.ts;
        let from_caller = leg.from_caller(meta.src);
        let sdp = find_sdp(m.content_type, m.body);
        if let Some(sdp) = sdp
            && matches!(
                method,
                Method::Invite | Method::Update | Method::Ack | Method::Prack
            )
        {
            leg.sdp(from_caller, sdp, |o| self.tags.hash_one(o));
        }
        match method {
            Method::Bye => {
                let tag = |v: Option<&[u8]>| {
                    let t = v.map(NameAddr::parse).and_then(|n| n.tag());
                    t.map_or(0, |t| self.tag_hash(t))
                };
                let (from_tag, to_tag) = (tag(m.from), tag(m.to));
                // A BYE for a late fork's dialog (the caller hanging up a second fork's 2xx)
                // does not end the answered one.
                // (Set only to a tag other than the answer's.)
                if leg.late_fork_tag != 0
                    && (from_tag == leg.late_fork_tag || to_tag == leg.late_fork_tag)
                {
                    stats.forked += 1;
                    return None;
                }
                let by_caller = if from_tag != 0 && leg.from_tag != 0 {
                    from_tag == leg.from_tag
                } else {
                    leg.src.same_host(meta.src.into())
                };
                let cause = m.reasons().find_map(q850_cause);
                let e = leg.end(Ending {
                    at: Some(meta.ts),
                    reason: EndReason::NormalRelease,
                    cause: Some(cause.and_then(q850_name).unwrap_or("NORMAL_CLEARING")),
                    disposition: Some(if by_caller {
                        Disposition::Caller
                    } else {
                        Disposition::Callee
                    }),
                });
                self.emit(out, stats, meta.seq, call_id, &mut call.legs, i, &e);
            }
            Method::Cancel if leg.phase == Phase::Setup && leg.canceled.is_none() => {
                let cause = m.reasons().find_map(q850_cause);
                leg.canceled = Some(meta.ts);
                leg.cancel_cause = cause;
            }
            Method::Invite | Method::Update if leg.phase == Phase::Answered => {
                let hold = sdp.and_then(audio_on_hold);
                leg.refreshed(hold, meta.ts);
            }
            Method::Refer => {
                // A blind transfer: the REFER's receiver will call the Refer-To user. (With
                // Replaces in the Refer-To, the new INVITE carries Replaces and links itself.)
                let refer_to = m
                    .all_headers()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"refer-to") || n == b"r")
                    .map(|(_, v)| NameAddr::parse(v).uri)?;
                let lower = refer_to.to_ascii_lowercase();
                if memchr::memmem::find(&lower, b"replaces=").is_some() {
                    return None;
                }
                return Some(Note::Refer {
                    session: leg.session_id(call_id),
                    at: meta.ts,
                    transferee: meta.dst.ip(),
                    target: lossy(uri_user(refer_to)).into(),
                });
            }
            _ => {}
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn response(
        &self,
        call: &mut Call,
        stats: &mut TrackerStats,
        m: &Message<'_>,
        call_id: &[u8],
        code: u16,
        (cseq_num, cseq_method): (u32, Method<'_>),
        meta: &Msg,
        out: &mut Out,
    ) {
        // A response travels against its INVITE: look the leg up the other way round.
        let Some(i) = open_leg(call, stats, meta.dst, meta.src) else {
            return;
        };
        let Some(leg) = call.legs.get_mut(i) else {
            return;
        };
        leg.last_seen = meta.ts;
        let session_expires = m.session_expires.and_then(delta_seconds);
        let is_2xx = (200..300).contains(&code);
        let initial = cseq_method == Method::Invite && cseq_num == leg.invite_cseq;
        let sdp = find_sdp(m.content_type, m.body);
        let sdp_answers = matches!(cseq_method, Method::Invite | Method::Update | Method::Prack);
        if !initial {
            // A 2xx to a re-INVITE or UPDATE may renegotiate the session interval.
            let refresh = matches!(cseq_method, Method::Invite | Method::Update);
            if refresh
                && is_2xx
                && leg.phase == Phase::Answered
                && let Some(interval) = session_expires.filter(|&s| s > 0)
            {
                let last_refresh = match leg.wait {
                    Some(dialog::Wait::Session { last_refresh, .. }) => last_refresh,
                    _ => meta.ts,
                };
                leg.wait = Some(dialog::Wait::Session {
                    interval,
                    last_refresh,
                });
            }
            if let Some(sdp) = sdp.filter(|_| sdp_answers && code > 100) {
                leg.sdp(leg.from_caller(meta.src), sdp, |o| self.tags.hash_one(o));
            }
            return;
        }
        if leg.phase != Phase::Setup {
            // A repeated 2xx, or a 2xx from a second fork (another To tag).
            let tag = m.to.map(NameAddr::parse).and_then(|n| n.tag());
            let tag = tag.map_or(0, |t| self.tag_hash(t));
            if is_2xx && leg.answer_tag != 0 && tag != 0 && tag != leg.answer_tag {
                stats.forked += 1;
                leg.late_fork_tag = tag;
            } else {
                stats.retransmissions += 1;
            }
            return;
        }
        if let Some(sdp) = sdp.filter(|_| code > 100) {
            leg.sdp(leg.from_caller(meta.src), sdp, |o| self.tags.hash_one(o));
        }
        match code {
            100 => {}
            101..=199 => {
                if sdp.is_some() {
                    leg.progress_media.get_or_insert(meta.ts);
                } else {
                    leg.progress.get_or_insert(meta.ts);
                }
            }
            200..=299 => {
                leg.answered(code, session_expires, meta.ts);
                let tag = m.to.map(NameAddr::parse).and_then(|n| n.tag());
                leg.answer_tag = tag.map_or(0, |t| self.tag_hash(t));
                if let Some(ua) = m.server.or(m.user_agent) {
                    leg.text.set(Field::CalleeUserAgent, &lossy(&fold_ws(ua)));
                }
                if self.cfg.start_records {
                    self.record(out, meta.seq, call_id, &call.legs, i, RecordType::Start);
                }
            }
            _ => {
                let cause = m.reasons().find_map(q850_cause);
                if let Some(e) = leg.rejected(code, cause, meta.ts) {
                    self.emit(out, stats, meta.seq, call_id, &mut call.legs, i, &e);
                }
            }
        }
    }

    /// Timers of `call` that have passed fire before message `meta` is applied; the walk over its
    /// legs only when one may have (`Call::may_expire`). Returns whether it walked. (Inlined:
    /// nearly every message skips the walk, and a call for it cost ~2 M instructions on the
    /// bench capture.)
    #[inline(always)]
    fn expire_before(
        &self,
        call: &mut Call,
        meta: &Msg,
        stats: &mut TrackerStats,
        out: &mut Out,
    ) -> bool {
        let due = call.may_expire(meta.ts);
        if due {
            self.expire_call(call, meta.ts, meta.seq, stats, out);
        }
        due
    }

    /// Fires the timers of one call that have passed by `now`.
    fn expire_call(
        &self,
        call: &mut Call,
        now: Timestamp,
        seq: u64,
        stats: &mut TrackerStats,
        out: &mut Out,
    ) {
        let Call { id, legs, .. } = call;
        for i in 0..legs.len() {
            let Some(leg) = legs.get_mut(i) else {
                break;
            };
            if let Some(e) = leg.expire(now, self.cfg.limits) {
                self.emit(out, stats, seq, id.as_bytes(), legs, i, &e);
            }
        }
    }

    /// The stop record of leg `i`, which has just ended as `e` (none when `--skip-causes` names
    /// its cause).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        out: &mut Out,
        stats: &mut TrackerStats,
        seq: u64,
        call_id: &[u8],
        legs: &mut [Leg],
        i: usize,
        e: &Ending,
    ) {
        let role = leg_role(legs, i, &self.cfg.local_nets);
        let Some(leg) = legs.get_mut(i) else {
            return;
        };
        if let Some(n) = EndReason::ALL
            .iter()
            .position(|r| *r == e.reason)
            .and_then(|r| stats.by_reason.get_mut(r))
        {
            *n += 1;
        }
        stats.answered += u64::from(leg.answer.is_some());
        if let Some(cause) = e.cause
            && self.cfg.skip_causes.iter().any(|c| c == cause)
        {
            stats.skipped += 1;
            return;
        }
        out.push((seq, leg.stop_cdr(call_id, e, role)));
    }

    /// An attempt or start record of leg `i`.
    fn record(
        &self,
        out: &mut Out,
        seq: u64,
        call_id: &[u8],
        legs: &[Leg],
        i: usize,
        kind: RecordType,
    ) {
        if let Some(leg) = legs.get(i) {
            let role = leg_role(legs, i, &self.cfg.local_nets);
            out.push((seq, leg.to_cdr(call_id, kind, None, role)));
        }
    }
}

impl Tracker {
    /// Capture time reached `now`: fire every timer that has passed.
    pub fn tick(&mut self, seq: u64, now: Timestamp, out: &mut Out) {
        let limits = self.rules.cfg.limits;
        let mut due = std::mem::take(&mut self.due);
        loop {
            // The deadlines due, in rounds (firing one may arm another for before `now`): each
            // round's calls, and the table entries of those to be forgotten, are prefetched a
            // few calls ahead, so their cache misses overlap.
            due.clear();
            due.extend(std::iter::from_fn(|| self.timers.pop_due(now)));
            if due.is_empty() {
                break;
            }
            let slot_at = |i: usize| due.get(i).map(|&(_, slot)| slot);
            (0..calls::SLOT_LEAD).for_each(|j| self.calls.prefetch_slots_step(slot_at, j));
            for (k, &(t, slot)) in due.iter().enumerate() {
                self.calls
                    .prefetch_slots_step(slot_at, k + calls::SLOT_LEAD);
                // Passed over if a later deadline superseded this one, or the call is gone.
                let Some(call) = self.calls.get_mut(slot).filter(|c| c.armed == Some(t)) else {
                    continue;
                };
                if call.all_ended() {
                    self.calls.remove(slot);
                    continue;
                }
                call.armed = None;
                self.rules.expire_call(call, now, seq, &mut self.stats, out);
                rearm(call, slot, limits, &mut self.timers, now);
            }
        }
        self.due = due;
    }

    /// End of input: every leg still open gets its record.
    pub fn finish(&mut self, out: &mut Out) {
        for call in self.calls.iter_mut() {
            let Call { id, legs, .. } = call;
            for i in 0..legs.len() {
                let Some(leg) = legs.get_mut(i) else {
                    break;
                };
                if leg.phase == Phase::Ended {
                    continue;
                }
                let e = leg.end_of_input();
                self.rules
                    .emit(out, &mut self.stats, u64::MAX, id.as_bytes(), legs, i, &e);
            }
        }
        self.calls.clear();
        self.timers.clear();
    }

    /// The shard thread's loop: batches in, rows out, until the capture side hangs up.
    pub fn run(
        mut self,
        shard: usize,
        rx: Receiver<Batch>,
        tx: Sender<RowBatch>,
        spares: Sender<Batch>,
        metrics: Arc<Metrics>,
    ) -> TrackerStats {
        let publish = |s: &TrackerStats| {
            if let Some(g) = metrics.shards.get(shard) {
                g.legs_opened.store(s.legs, Ordering::Relaxed);
                g.answered.store(s.answered, Ordering::Relaxed);
                for (a, b) in g.by_reason.iter().zip(s.by_reason) {
                    a.store(b, Ordering::Relaxed);
                }
            }
        };
        let mut enc = crate::cdr::Encoder::new(self.rules.cfg.csv_safe);
        let mut out = Out::new();
        let to_rows = |out: &mut Out,
                       notes: &mut Vec<(u64, Timestamp, Note)>,
                       enc: &mut crate::cdr::Encoder|
         -> Vec<Row> {
            // A record's text was written when its leg began, often seconds ago, and is cold:
            // it is prefetched a few records ahead of its encoding.
            let mut rows: Vec<Row> = Vec::with_capacity(out.len());
            for (i, (seq, cdr)) in out.iter().enumerate() {
                if let Some((_, ahead)) = out.get(i + TEXT_AHEAD) {
                    ahead.text.prefetch_all();
                }
                rows.push(Row::new(*seq, cdr, enc));
            }
            out.clear();
            if !notes.is_empty() {
                rows.extend(notes.drain(..).map(|(seq, t, n)| Row::note(seq, t, n)));
                // The writer's merge needs each shard's rows in order.
                rows.sort_by_key(Row::key);
            }
            rows
        };
        let mut hashes: Vec<u64> = Vec::new();
        let mut invites: Vec<bool> = Vec::new();
        for batch in rx {
            // The batch's calls are looked up ahead of handling them, in prefetch stages a few
            // messages apart (the table entry, the slot's first line, the legs' length, the
            // leg, its text), so the cache misses of a large calls table overlap instead of
            // stalling each message in turn, and no stage reads a line that is not loaded yet.
            hashes.clear();
            invites.clear();
            for item in &batch.items {
                if let Item::Msg(m) = item
                    && let Some((_, hash)) = batch.call_id_of(m)
                {
                    hashes.push(hash);
                    invites.push(m.invite);
                }
            }
            let mut found = calls::Found::default();
            let step = |calls: &calls::Calls, found: &mut calls::Found, j| {
                calls.prefetch_step(&hashes, &invites, found, j)
            };
            (0..calls::LEAD).for_each(|j| step(&self.calls, &mut found, j));
            let mut k = 0;
            let mut parsed = Message::EMPTY;
            for item in &batch.items {
                match item {
                    Item::Msg(m) => {
                        let hint = batch.call_id_of(m);
                        if hint.is_some() {
                            step(&self.calls, &mut found, k + calls::LEAD);
                            k += 1;
                        }
                        let bytes = batch.bytes_of(m);
                        self.handle_hinted(bytes, &mut parsed, m, hint, &mut out);
                    }
                    Item::Tick { seq, now } => self.tick(*seq, *now, &mut out),
                }
            }
            let rows = to_rows(&mut out, &mut self.notes, &mut enc);
            publish(&self.stats);
            let upto = batch.upto;
            batch.recycle(&spares);
            if tx.send(RowBatch { shard, upto, rows }).is_err() {
                return self.stats; // the writer failed; it reports why
            }
        }
        self.finish(&mut out);
        publish(&self.stats);
        let rows = to_rows(&mut out, &mut self.notes, &mut enc);
        let _ = tx.send(RowBatch {
            shard,
            upto: u64::MAX,
            rows,
        });
        self.stats
    }
}

/// Deadlines beyond twice the number of calls before the timer heap is compacted.
const TIMER_SLACK: usize = 4096;

/// Puts the call's next deadline in the timer set, unless it is there already.
fn rearm(call: &mut Call, slot: Slot, limits: Limits, timers: &mut Timers<Slot>, now: Timestamp) {
    let next = call.next_deadline(limits);
    if next != call.armed {
        call.armed = next;
        if let Some(t) = next {
            timers.push(t, slot, now);
        }
    }
}

/// Marks the first letters of the headers only initial INVITEs are read for
/// ([`HeaderName::invite_only_names`]) and of the correlation headers.
fn initials(extra: &[String]) -> [bool; 256] {
    let mut set = [false; 256];
    let extra = extra.iter().map(String::as_bytes);
    let names = HeaderName::invite_only_names()
        .map(|n| -> &[u8] { n })
        .chain(extra);
    for n in names {
        if let Some(slot) = n
            .first()
            .and_then(|b| set.get_mut(usize::from(b.to_ascii_lowercase())))
        {
            *slot = true;
        }
    }
    set
}

/// The role of leg `i` among the legs of its Call-ID. A host that received leg A and then sent
/// leg B of the same Call-ID (B leaves the host A arrived at) forwarded it: A is `proxy-uas`, B
/// `proxy-uac`. Otherwise `--local-net` tells: INVITE into our networks `uas`, out `uac`.
fn leg_role(legs: &[Leg], i: usize, nets: &[Cidr]) -> Option<LegRole> {
    let me = legs.get(i)?;
    let same_hop =
        |l: &Leg| (l.src == me.src && l.dst == me.dst) || (l.src == me.dst && l.dst == me.src);
    let other_hop = |l: &Leg| !same_hop(l);
    let forwarded = legs
        .iter()
        .skip(i + 1)
        .any(|l| other_hop(l) && l.src.same_host(me.dst));
    let forwarding = legs
        .iter()
        .take(i)
        .any(|l| other_hop(l) && l.dst.same_host(me.src));
    let ours = |e: Endpoint| nets.iter().any(|n| n.contains(e.ip()));
    match (forwarded, forwarding) {
        (true, false) => Some(LegRole::ProxyUas),
        (false, true) => Some(LegRole::ProxyUac),
        (true, true) if ours(me.dst) && !ours(me.src) => Some(LegRole::ProxyUas),
        (true, true) if ours(me.src) && !ours(me.dst) => Some(LegRole::ProxyUac),
        (true, true) => None,
        (false, false) => match (ours(me.src), ours(me.dst)) {
            (false, true) => Some(LegRole::Uas),
            (true, false) => Some(LegRole::Uac),
            _ => None,
        },
    }
}

/// The open leg of `call` an in-dialog message from `src` to `dst` belongs to; a message with
/// none is counted (its hop has no INVITE, or the leg already ended).
fn open_leg(
    call: &Call,
    stats: &mut TrackerStats,
    src: SocketAddr,
    dst: SocketAddr,
) -> Option<usize> {
    let Some(i) = find_leg(&call.legs, src, dst, false) else {
        stats.without_invite += 1;
        return None;
    };
    if call.legs.get(i)?.phase == Phase::Ended {
        stats.after_end += 1;
        return None;
    }
    Some(i)
}

/// The leg of a call that a message from `src` to `dst` belongs to: the same address pair (in the
/// INVITE's direction, or either direction unless `forward_only`), else the same pair of hosts,
/// else the only leg of the call. The newest leg wins a tie. For an initial INVITE
/// (`forward_only`) a host pair matches only with the same destination port: a forking proxy may
/// send the same INVITE to two phones on one host, and each is a leg of its own.
fn find_leg(legs: &[Leg], src: SocketAddr, dst: SocketAddr, forward_only: bool) -> Option<usize> {
    // The only leg of a call is the answer whatever the addresses (the last rule below): the
    // usual case, decided without comparing them.
    if !forward_only && legs.len() == 1 {
        return Some(0);
    }
    let (src, dst) = (Endpoint::from(src), Endpoint::from(dst));
    let fwd = |l: &Leg| l.src == src && l.dst == dst;
    let rev = |l: &Leg| !forward_only && l.src == dst && l.dst == src;
    let hosts = |l: &Leg| {
        if forward_only {
            return l.src.same_host(src) && l.dst == dst;
        }
        (l.src.same_host(src) && l.dst.same_host(dst))
            || (l.src.same_host(dst) && l.dst.same_host(src))
    };
    legs.iter()
        .rposition(|l| fwd(l) || rev(l))
        .or_else(|| legs.iter().rposition(hosts))
        .or_else(|| (!forward_only && legs.len() == 1).then_some(0))
}

fn direction(nets: &[Cidr], src: SocketAddr, dst: SocketAddr) -> Option<Direction> {
    let ours = |a: SocketAddr| nets.iter().any(|n| n.contains(a.ip()));
    match (ours(src), ours(dst)) {
        (false, true) => Some(Direction::Inbound),
        (true, false) => Some(Direction::Outbound),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
