//! The state machine, one scenario per test, driven with literal SIP messages.

use super::*;
use crate::capture::Transport;
use crate::capture::route::Batch;
use crate::cdr::{Disposition, EndReason, Field};

const A: &str = "10.0.0.1:5060";
const B: &str = "10.0.0.2:5060";
const P: &str = "10.0.0.3:5060";
const SDP: &str =
    "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 8\n";

struct Harness {
    t: Tracker,
    out: Out,
    seq: u64,
    /// Each message comes with its Call-ID and hash, as the router gives them to `Tracker::run`:
    /// the paths that skip the parse are open (`handle` alone always parses).
    hinted: bool,
}

impl Harness {
    fn new() -> Self {
        Harness {
            t: Tracker::new(TrackerConfig::default()),
            out: Out::new(),
            seq: 0,
            hinted: false,
        }
    }

    /// Sends `text` (lines joined with CRLF) at `ms` milliseconds from `src` to `dst`.
    fn at(&mut self, ms: i64, src: &str, dst: &str, text: &str) {
        self.seq += 1;
        let bytes = text.replace('\n', "\r\n");
        let mut b = Batch::default();
        let ts = Timestamp::from_micros(1_000_000_000_000_000 + ms * 1000);
        b.push_msg(
            self.seq,
            ts,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            Transport::Udp,
            bytes.as_bytes(),
        );
        let Item::Msg(m) = b.items[0] else {
            unreachable!()
        };
        let bytes = b.bytes_of(&m);
        if self.hinted {
            let hint = crate::sip::find_call_id(bytes).map(|id| (id, self.t.calls.hash(id)));
            let mut parsed = crate::sip::Message::EMPTY;
            self.t
                .handle_hinted(bytes, &mut parsed, &m, hint, &mut self.out);
        } else {
            self.t.handle(bytes, &m, &mut self.out);
        }
    }

    fn tick(&mut self, ms: i64) {
        self.seq += 1;
        self.t.tick(
            self.seq,
            Timestamp::from_micros(1_000_000_000_000_000 + ms * 1000),
            &mut self.out,
        );
    }

    fn finish(&mut self) -> Vec<Cdr> {
        self.t.finish(&mut self.out);
        self.out.drain(..).map(|(_, c)| c).collect()
    }

    fn one(&mut self) -> Cdr {
        let mut v = self.finish();
        assert_eq!(v.len(), 1, "{v:#?}");
        v.remove(0)
    }
}

fn ms(c: Option<Timestamp>) -> Option<i64> {
    c.map(|t| (t.as_micros() - 1_000_000_000_000_000) / 1000)
}

fn invite(cseq: u32, branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:2002@b.example SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch={branch}\nFrom: \"Alice\" <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>\nCall-ID: c1\nCSeq: {cseq} INVITE\nUser-Agent: phone/1\n{extra}Content-Type: application/sdp\nContent-Length: {}\n\n{SDP}",
        SDP.len() + SDP.matches('\n').count()
    )
}

fn resp(code: u16, cseq: &str, extra: &str) -> String {
    format!(
        "SIP/2.0 {code} X\nVia: SIP/2.0/UDP 10.0.0.1;branch=b1\nFrom: \"Alice\" <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: c1\nCSeq: {cseq}\n{extra}Content-Length: 0\n\n"
    )
}

fn req(method: &str, cseq: u32, from_tag: &str, to_tag: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:x@y SIP/2.0\nVia: SIP/2.0/UDP h;branch=z{cseq}{method}\nFrom: <sip:1001@a.example>;tag={from_tag}\nTo: <sip:2002@b.example>;tag={to_tag}\nCall-ID: c1\nCSeq: {cseq} {method}\n{extra}Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
        body.len() + body.matches('\n').count()
    )
}

#[test]
fn answered_call_hung_up_by_caller() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(10, B, A, &resp(100, "1 INVITE", ""));
    h.at(200, B, A, &resp(180, "1 INVITE", ""));
    h.at(2200, B, A, &resp(200, "1 INVITE", ""));
    h.at(2210, A, B, &req("ACK", 1, "ft", "tt", "", ""));
    h.at(62_200, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    h.at(62_210, B, A, &resp(200, "2 BYE", ""));
    let c = h.one();
    assert_eq!(
        (ms(Some(c.start)), ms(c.progress), ms(c.answer), ms(c.end)),
        (Some(0), Some(200), Some(2200), Some(62_200))
    );
    assert_eq!(
        (c.duration_ms(), c.pdd_ms(), c.ring_ms(), c.talk_ms()),
        (Some(62_200), Some(200), Some(2000), Some(60_000))
    );
    assert_eq!(
        (c.reason.unwrap(), c.sip_code, c.hangup_cause, c.disposition),
        (
            EndReason::NormalRelease,
            Some(200),
            Some("NORMAL_CLEARING"),
            Some(Disposition::Caller)
        )
    );
    assert_eq!(
        (
            c.text.get(Field::CallerName),
            c.text.get(Field::CallerNumber),
            c.text.get(Field::DestinationNumber)
        ),
        ("Alice", "1001", "2002")
    );
    assert_eq!(
        (
            c.text.get(Field::FromUri),
            c.text.get(Field::ToUri),
            c.text.get(Field::UserAgent)
        ),
        ("sip:1001@a.example", "sip:2002@b.example", "phone/1")
    );
    assert_eq!(h.t.stats.after_end, 1); // the 200 to the BYE
}

#[test]
fn callee_bye_with_q850_reason() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(200, "1 INVITE", ""));
    h.at(
        5000,
        B,
        A,
        &req(
            "BYE",
            7,
            "tt",
            "ft",
            "Reason: Q.850;cause=31;text=\"x\"\n",
            "",
        ),
    );
    let c = h.one();
    assert_eq!(
        (c.disposition, c.hangup_cause),
        (Some(Disposition::Callee), Some("NORMAL_UNSPECIFIED"))
    );
    assert_eq!(c.ring_ms(), None); // no ringing seen
}

#[test]
fn busy_is_rejected_at_the_response() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(300, B, A, &resp(180, "1 INVITE", ""));
    h.at(900, B, A, &resp(486, "1 INVITE", ""));
    h.at(910, A, B, &req("ACK", 1, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), c.sip_code, c.hangup_cause, c.disposition),
        (
            EndReason::CallRejected,
            Some(486),
            Some("USER_BUSY"),
            Some(Disposition::Callee)
        )
    );
    assert_eq!(
        (ms(c.end), c.ring_ms(), c.talk_ms()),
        (Some(900), Some(600), None)
    );
}

#[test]
fn cancel_ends_at_the_cancel_when_the_487_comes() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(300, B, A, &resp(180, "1 INVITE", ""));
    h.at(3000, A, B, &req("CANCEL", 1, "ft", "", "", ""));
    assert!(h.out.is_empty());
    h.at(3010, B, A, &resp(200, "1 CANCEL", ""));
    h.at(3020, B, A, &resp(487, "1 INVITE", ""));
    assert_eq!(h.out.len(), 1);
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), c.sip_code, c.hangup_cause, c.disposition),
        (
            EndReason::CallCanceled,
            Some(487),
            Some("ORIGINATOR_CANCEL"),
            Some(Disposition::Caller)
        )
    );
    assert_eq!((ms(c.end), c.ring_ms()), (Some(3000), Some(2700)));
}

#[test]
fn cancel_without_final_response_times_out_as_canceled() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(3000, A, B, &req("CANCEL", 1, "ft", "", "", ""));
    h.tick(30_000);
    assert!(h.out.is_empty());
    h.tick(36_000);
    assert_eq!(h.out.len(), 1);
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), c.sip_code, ms(c.end)),
        (EndReason::CallCanceled, Some(487), Some(3000))
    );
}

#[test]
fn cancel_that_loses_the_race_to_a_200_is_an_answered_call() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(3000, A, B, &req("CANCEL", 1, "ft", "", "", ""));
    h.at(3001, B, A, &resp(200, "1 INVITE", ""));
    h.at(3002, B, A, &resp(481, "1 CANCEL", ""));
    h.at(9000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), ms(c.answer), c.talk_ms()),
        (EndReason::NormalRelease, Some(3001), Some(5999))
    );
}

#[test]
fn challenge_then_retry_is_one_leg_from_the_first_invite() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(50, B, A, &resp(407, "1 INVITE", ""));
    h.at(60, A, B, &req("ACK", 1, "ft", "tt", "", ""));
    h.at(
        40_000,
        A,
        B,
        &invite(2, "b2", "Proxy-Authorization: Digest x\n"),
    );
    h.at(40_100, B, A, &resp(180, "2 INVITE", ""));
    h.at(41_000, B, A, &resp(200, "2 INVITE", ""));
    h.at(51_000, A, B, &req("BYE", 3, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (
            ms(Some(c.start)),
            ms(c.answer),
            c.sip_code,
            c.reason.unwrap()
        ),
        (Some(0), Some(41_000), Some(200), EndReason::NormalRelease)
    );
    assert_eq!(h.t.stats.legs, 1);
}

#[test]
fn challenge_never_retried_is_a_rejection() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(50, B, A, &resp(401, "1 INVITE", ""));
    h.tick(1000);
    assert!(h.out.is_empty(), "a challenge is not a rejection yet");
    h.tick(301_000);
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), c.sip_code, ms(c.end), c.hangup_cause),
        (
            EndReason::CallRejected,
            Some(401),
            Some(50),
            Some("CALL_REJECTED")
        )
    );
}

#[test]
fn retransmissions_change_nothing() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(500, A, B, &invite(1, "b1", ""));
    h.at(600, B, A, &resp(180, "1 INVITE", ""));
    h.at(700, B, A, &resp(180, "1 INVITE", ""));
    h.at(800, B, A, &resp(200, "1 INVITE", ""));
    h.at(1300, B, A, &resp(200, "1 INVITE", ""));
    h.at(2000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    h.at(2500, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (ms(c.progress), ms(c.answer), ms(c.end)),
        (Some(600), Some(800), Some(2000))
    );
    assert_eq!(h.t.stats.retransmissions, 2);
    assert_eq!(h.t.stats.legs, 1);
}

#[test]
fn hold_and_resume_by_reinvite_sum_into_hold_ms() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(200, "1 INVITE", ""));
    h.at(
        1100,
        A,
        B,
        &req("INVITE", 2, "ft", "tt", "", &format!("{SDP}a=sendonly\n")),
    );
    h.at(1110, B, A, &resp(200, "2 INVITE", ""));
    h.at(
        4100,
        A,
        B,
        &req("INVITE", 3, "ft", "tt", "", &format!("{SDP}a=sendrecv\n")),
    );
    h.at(
        5000,
        B,
        A,
        &req(
            "UPDATE",
            8,
            "tt",
            "ft",
            "",
            &SDP.replace("IN IP4 10.0.0.1\nt", "IN IP4 0.0.0.0\nt"),
        ),
    );
    h.at(6000, A, B, &req("BYE", 4, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(c.hold_ms(), 3000 + 1000); // re-INVITE hold, then UPDATE hold with c=0.0.0.0 until the BYE
    assert_eq!(
        ms(c.answer),
        Some(100),
        "a re-INVITE's 200 is not an answer"
    );
}

#[test]
fn session_timer_expiry_without_refresh() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", "Session-Expires: 90\n"));
    h.at(
        100,
        B,
        A,
        &resp(200, "1 INVITE", "Session-Expires: 90;refresher=uac\n"),
    );
    h.at(45_100, A, B, &req("UPDATE", 2, "ft", "tt", "", ""));
    h.tick(100_000);
    assert!(h.out.is_empty(), "refreshed at 45.1 s, expires at 135.1 s");
    h.tick(136_000);
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), ms(c.end), c.hangup_cause, c.disposition),
        (
            EndReason::SessionExpired,
            Some(135_100),
            None,
            Some(Disposition::Timeout)
        )
    );
    assert_eq!(c.talk_ms(), Some(135_000));
}

#[test]
fn session_expiry_fires_before_a_late_bye() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(200, "1 INVITE", "x: 30\n"));
    h.at(40_000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), ms(c.end)),
        (EndReason::SessionExpired, Some(30_100))
    );
    assert_eq!(h.t.stats.after_end, 1);
}

#[test]
fn open_legs_are_unterminated_at_the_end() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(
        100,
        B,
        A,
        &resp(183, "1 INVITE", "Content-Type: application/sdp\n").replace(
            "Content-Length: 0\n\n",
            &format!("Content-Length: {}\n\n{SDP}", SDP.len() + 6),
        ),
    );
    h.at(200, B, A, &resp(200, "1 INVITE", ""));
    let c = h.one();
    assert_eq!(
        (c.reason.unwrap(), c.end, c.hangup_cause, c.disposition),
        (EndReason::Unterminated, None, None, None)
    );
    assert_eq!(
        (
            ms(c.progress),
            ms(c.progress_media),
            c.pdd_ms(),
            c.ring_ms(),
            c.talk_ms()
        ),
        (None, Some(100), Some(100), Some(100), None)
    );
}

#[test]
fn messages_without_an_invite_make_no_cdr() {
    let mut h = Harness::new();
    h.at(0, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    h.at(1, B, A, &resp(200, "2 BYE", ""));
    h.at(
        2,
        A,
        B,
        &req("REGISTER", 1, "ft", "", "", "").replace("Call-ID: c1", "Call-ID: r1"),
    );
    assert!(h.finish().is_empty());
    assert_eq!(h.t.stats.without_invite, 3);
}

#[test]
fn two_hops_of_one_call_are_two_legs_of_one_session() {
    let mut h = Harness::new();
    h.at(0, A, P, &invite(1, "b1", ""));
    h.at(5, P, B, &invite(1, "b2", ""));
    h.at(100, B, P, &resp(200, "1 INVITE", ""));
    h.at(105, P, A, &resp(200, "1 INVITE", ""));
    h.at(9000, B, P, &req("BYE", 5, "tt", "ft", "", ""));
    h.at(9005, P, A, &req("BYE", 5, "tt", "ft", "", ""));
    let v = h.finish();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].session_id, v[1].session_id);
    assert_ne!(v[0].leg_id, v[1].leg_id);
    assert_eq!(
        (v[0].dst.to_string(), ms(v[0].answer), ms(v[0].end)),
        (B.to_string(), Some(100), Some(9000))
    );
    assert_eq!(
        (v[1].dst.to_string(), ms(v[1].answer), ms(v[1].end)),
        (P.to_string(), Some(105), Some(9005))
    );
    assert!(v.iter().all(|c| c.disposition == Some(Disposition::Callee)));
}

#[test]
fn direction_from_local_nets() {
    let nets = vec!["10.0.0.2/32".parse().unwrap()];
    assert_eq!(
        direction(&nets, A.parse().unwrap(), B.parse().unwrap()),
        Some(Direction::Inbound)
    );
    assert_eq!(
        direction(&nets, B.parse().unwrap(), A.parse().unwrap()),
        Some(Direction::Outbound)
    );
    assert_eq!(
        direction(&nets, A.parse().unwrap(), P.parse().unwrap()),
        None
    );
    assert_eq!(direction(&[], A.parse().unwrap(), B.parse().unwrap()), None);
}

#[test]
fn leg_ids_are_deterministic() {
    let run = || {
        let mut h = Harness::new();
        h.at(0, A, B, &invite(1, "b1", ""));
        h.one().leg_id
    };
    assert_eq!(run(), run());
}

/// `--max-dialogs`: past the cap the oldest unanswered legs are ended as `evicted` (answered ones
/// are kept while unanswered ones remain), counted, and calls that follow still get correct CDRs.
#[test]
fn past_the_cap_the_oldest_unanswered_legs_are_evicted() {
    let mut h = Harness::new();
    h.t = Tracker::new(TrackerConfig {
        max_legs: Some(3),
        ..TrackerConfig::default()
    });
    let inv = |id: &str| invite(1, id, "").replace("Call-ID: c1", &format!("Call-ID: {id}"));
    // c0 is the oldest leg, but answered: it must survive the flood.
    h.at(0, A, B, &inv("c0"));
    h.at(
        5,
        B,
        A,
        &resp(200, "1 INVITE", "").replace("Call-ID: c1", "Call-ID: c0"),
    );
    for i in 1..=5 {
        h.at(10 * i, A, B, &inv(&format!("c{i}")));
    }
    assert_eq!(h.t.stats.evicted, 3);
    let evicted: Vec<String> = h.out.drain(..).map(|(_, c)| c.call_id).collect();
    assert_eq!(evicted, ["c1", "c2", "c3"], "oldest unanswered first");
    // A real call after the flood is still tracked to its end.
    h.at(
        100,
        B,
        A,
        &resp(486, "1 INVITE", "").replace("Call-ID: c1", "Call-ID: c5"),
    );
    let rest = h.finish();
    let by_id = |id: &str| rest.iter().find(|c| c.call_id == id).unwrap();
    assert_eq!(by_id("c5").reason, Some(EndReason::CallRejected));
    assert_eq!(by_id("c0").reason, Some(EndReason::Unterminated));
    assert_eq!(by_id("c4").reason, Some(EndReason::Unterminated));
    assert!(
        rest.iter()
            .all(|c| !["c1", "c2", "c3"].contains(&c.call_id.as_str()))
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One step of a random exchange: (call 0..3, which message, which direction, ms to wait).
    fn step() -> impl Strategy<Value = (u8, u8, bool, u16)> {
        (0u8..3, 0u8..14, any::<bool>(), 0u16..40_000)
    }

    fn message(call: u8, kind: u8, cseq: u32) -> String {
        let id = format!("p{call}");
        let m = match kind {
            0 | 1 => invite(1, "zb", ""),
            2 => invite(2, "zb2", ""), // a retry, as after a 407
            3 => resp(100, "1 INVITE", ""),
            4 => resp(180, "1 INVITE", ""),
            5 => resp(183, "1 INVITE", ""),
            6 => resp(200, "1 INVITE", "Session-Expires: 30;refresher=uac\n"),
            7 => resp(486, "1 INVITE", ""),
            8 => req("CANCEL", 1, "ft", "", "", ""),
            9 => req("BYE", cseq, "ft", "tt", "", ""),
            10 => req("INVITE", cseq, "ft", "tt", "", SDP), // re-INVITE
            11 => resp(200, "1 INVITE", ""),                // answered without a session timer
            12 => req("ACK", 1, "ft", "tt", "", ""),
            _ => resp(200, &format!("{cseq} BYE"), ""),
        };
        m.replace("Call-ID: c1", &format!("Call-ID: {id}"))
    }

    /// What `Call::may_expire` and the messages that skip re-arming rely on: every call is
    /// armed for its next deadline, its legs' earliest (none when no leg has one).
    fn armed_covers_every_deadline(t: &Tracker) -> bool {
        let limits = t.rules.cfg.limits;
        t.calls
            .iter()
            .all(|(_, c)| c.armed == c.next_deadline(limits))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Whatever messages arrive in whatever order: every leg opened is closed exactly once
        /// (one CDR per leg, at end of input at the latest), and no CDR's times go backwards.
        #[test]
        fn every_leg_is_closed_once_and_times_never_go_backwards(steps in proptest::collection::vec(step(), 1..60), short in any::<bool>()) {
            // The default timeouts, or short ones that fire between most messages.
            let harness = |hinted| {
                let mut h = if short {
                    let limits = crate::tracker::dialog::Limits { setup: 3, idle: 10 };
                    with_cfg(TrackerConfig { limits, ..TrackerConfig::default() })
                } else {
                    Harness::new()
                };
                h.hinted = hinted;
                h
            };
            // Every message parsed, and with the router's hints (the shortcuts that skip the
            // parse, the expiry walk or the re-arming): the same records.
            let (mut h, mut fast) = (harness(false), harness(true));
            let mut now = 0i64;
            for (i, (call, kind, forward, wait)) in steps.into_iter().enumerate() {
                now += i64::from(wait);
                let (src, dst) = if forward { (A, B) } else { (B, A) };
                for t in [&mut h, &mut fast] {
                    t.at(now, src, dst, &message(call, kind, 10 + i as u32));
                    prop_assert!(armed_covers_every_deadline(&t.t), "after step {}", i);
                    if i % 7 == 0 {
                        t.tick(now);
                        prop_assert!(armed_covers_every_deadline(&t.t), "after the tick of step {}", i);
                    }
                }
            }
            let fast_cdrs: Vec<String> = fast.finish().iter().map(|c| format!("{c:?}")).collect();
            let cdrs = h.finish();
            let all: Vec<String> = cdrs.iter().map(|c| format!("{c:?}")).collect();
            prop_assert_eq!(&fast_cdrs, &all);
            prop_assert_eq!(fast.t.stats.messages, h.t.stats.messages);
            prop_assert_eq!(cdrs.len() as u64, h.t.stats.legs);
            let mut ids: Vec<_> = cdrs.iter().map(|c| c.leg_id).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), cdrs.len(), "a leg written twice");
            for c in &cdrs {
                let ring = c.progress.or(c.progress_media);
                for t in [ring, c.answer, c.end].into_iter().flatten() {
                    prop_assert!(t >= c.start, "{c:?}");
                }
                if let (Some(a), Some(e)) = (c.answer, c.end) {
                    prop_assert!(e >= a, "{c:?}");
                }
                if let (Some(r), Some(a)) = (ring, c.answer) {
                    prop_assert!(a >= r, "{c:?}");
                }
                for d in [c.duration_ms(), c.pdd_ms(), c.ring_ms(), c.talk_ms()].into_iter().flatten() {
                    prop_assert!(d >= 0, "{c:?}");
                }
            }
        }
    }
}

// ---- issue #5: forks, sessions, identities, records, timeouts, media ----

fn with_cfg(cfg: TrackerConfig) -> Harness {
    let mut h = Harness::new();
    h.t = Tracker::new(cfg);
    h
}

/// A response with a To tag and an optional SDP body.
fn resp_sdp(code: u16, cseq: &str, to_tag: &str, extra: &str, sdp: &str) -> String {
    let ct = if sdp.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "SIP/2.0 {code} X\nVia: SIP/2.0/UDP 10.0.0.1;branch=b1\nFrom: \"Alice\" <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag={to_tag}\nCall-ID: c1\nCSeq: {cseq}\n{extra}{ct}Content-Length: {}\n\n{sdp}",
        sdp.len() + sdp.matches('\n').count()
    )
}

const ANSWER_SDP: &str = "v=0\no=bob 7 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\n";

#[test]
fn a_second_fork_answering_is_counted_not_a_new_call() {
    let mut h = Harness::new();
    h.at(0, A, P, &invite(1, "b1", ""));
    h.at(100, P, A, &resp_sdp(180, "1 INVITE", "t1", "", ""));
    h.at(150, P, A, &resp_sdp(180, "1 INVITE", "t2", "", ""));
    h.at(1000, P, A, &resp_sdp(200, "1 INVITE", "t1", "", ANSWER_SDP));
    h.at(1010, A, P, &req("ACK", 1, "ft", "t1", "", ""));
    h.at(1050, P, A, &resp_sdp(200, "1 INVITE", "t2", "", ANSWER_SDP));
    h.at(1060, P, A, &resp_sdp(200, "1 INVITE", "t1", "", ANSWER_SDP)); // retransmission
    // The caller acknowledges and hangs up the late fork's dialog: the call goes on.
    h.at(1070, A, P, &req("ACK", 1, "ft", "t2", "", ""));
    h.at(1080, A, P, &req("BYE", 2, "ft", "t2", "", ""));
    h.at(9000, P, A, &req("BYE", 5, "t1", "ft", "", ""));
    assert_eq!((h.t.stats.forked, h.t.stats.retransmissions), (2, 1));
    let c = h.one();
    assert_eq!(
        (ms(c.progress), ms(c.answer), ms(c.end), c.disposition),
        (Some(100), Some(1000), Some(9000), Some(Disposition::Callee))
    );
}

#[test]
fn identity_headers_fill_their_columns() {
    let mut h = Harness::new();
    let extra = "P-Asserted-Identity: \"Alice\" <sip:+494012345@carrier.example>, <tel:+494012345>\nRemote-Party-ID: <sip:999@x>;party=calling\nPrivacy: id;critical\nDiversion: <sip:3003@c.example>;reason=unconditional,<sip:4004@d>\n";
    h.at(0, A, B, &invite(1, "b1", extra));
    h.at(100, B, A, &resp(200, "1 INVITE", "Server: pbx/2.1\n"));
    let c = h.one();
    assert_eq!(c.text.get(Field::AssertedNumber), "+494012345");
    assert_eq!(c.text.get(Field::Privacy), "id;critical");
    assert_eq!(c.text.get(Field::RedirectNumber), "3003");
    assert_eq!(c.text.get(Field::CalleeUserAgent), "pbx/2.1");

    // Remote-Party-ID without P-Asserted-Identity; History-Info without Diversion.
    let mut h = Harness::new();
    let extra = "Remote-Party-ID: \"Bob\" <sip:5555@x>;party=calling;privacy=full\nHistory-Info: <sip:2002@b.example>;index=1\nHistory-Info: <sip:6006@c.example?Reason=SIP%3Bcause%3D302>;index=1.1\n";
    h.at(0, A, B, &invite(1, "b1", extra));
    let c = h.one();
    assert_eq!(c.text.get(Field::AssertedNumber), "5555");
    assert_eq!(c.text.get(Field::RedirectNumber), "2002");
    assert_eq!(c.text.get(Field::CalleeUserAgent), "");
}

#[test]
fn b2bua_legs_share_a_session_by_session_id_or_a_named_header() {
    let cfg = TrackerConfig {
        correlate_headers: vec!["x-cid".into()],
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    let sid =
        "Session-ID: AB30317F1A784DC48FF824D0D3715D86;remote=00000000000000000000000000000000\n";
    h.at(0, A, P, &invite(1, "b1", sid));
    // The B2BUA's outgoing leg: another Call-ID, the same Session-ID.
    h.at(
        50,
        P,
        B,
        &invite(1, "b2", sid).replace("Call-ID: c1", "Call-ID: out-1"),
    );
    // A third leg correlated by X-CID naming the first leg's Call-ID.
    h.at(
        60,
        P,
        B,
        &invite(1, "b3", "X-CID: c9\n").replace("Call-ID: c1", "Call-ID: out-2"),
    );
    h.at(
        70,
        A,
        P,
        &invite(1, "b4", "").replace("Call-ID: c1", "Call-ID: c9"),
    );
    let rows = h.finish();
    let session = |id: &str| rows.iter().find(|c| c.call_id == id).unwrap().session_id;
    assert_eq!(session("c1"), session("out-1"));
    assert_eq!(
        session("c1"),
        session_uuid(b"ab30317f1a784dc48ff824d0d3715d86")
    );
    assert_eq!(session("out-2"), session("c9"));
    assert_ne!(session("c1"), session("c9"));
}

#[test]
fn an_invite_with_replaces_points_at_the_original_session() {
    let mut h = Harness::new();
    h.at(
        0,
        A,
        B,
        &invite(
            1,
            "b1",
            "Replaces: old-call@h;to-tag=x;from-tag=y\nReferred-By: <sip:1001@a>\n",
        ),
    );
    let c = h.one();
    assert_eq!(c.original_session_id, Some(session_uuid(b"old-call@h")));
    assert_eq!(c.session_id, session_uuid(b"c1"));
}

#[test]
fn attempt_and_start_records_come_before_the_stop_record() {
    let cfg = TrackerConfig {
        attempt_records: true,
        start_records: true,
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(180, "1 INVITE", ""));
    h.at(2000, B, A, &resp_sdp(200, "1 INVITE", "tt", "", ANSWER_SDP));
    h.at(5000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    let kinds: Vec<_> = h
        .out
        .iter()
        .map(|(seq, c)| (*seq, c.record, c.reason, ms(c.answer), ms(c.end)))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, RecordType::Attempt, None, None, None),
            (3, RecordType::Start, None, Some(2000), None),
            (
                4,
                RecordType::Stop,
                Some(EndReason::NormalRelease),
                Some(2000),
                Some(5000)
            ),
        ]
    );
    let ids: Vec<_> = h.out.iter().map(|(_, c)| c.leg_id).collect();
    assert!(ids.iter().all(|&i| i == ids[0]));
    assert_eq!(h.t.stats.by_reason.iter().sum::<u64>(), 1);
}

#[test]
fn setup_timeout_ends_a_leg_without_final_response() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(180, "1 INVITE", ""));
    h.tick(299_000);
    assert!(h.out.is_empty());
    h.tick(300_500);
    let c = h.one();
    assert_eq!(
        (
            c.reason,
            ms(c.end),
            c.hangup_cause,
            c.disposition,
            c.sip_code
        ),
        (
            Some(EndReason::Timeout),
            Some(300_000),
            Some("RECOVERY_ON_TIMER_EXPIRE"),
            Some(Disposition::Timeout),
            None
        )
    );
}

/// A call answered at 1 s and acknowledged at 1.01 s, under a 60 s limit on an answered leg's
/// silence (`--max-duration`), its messages sent with the router's hints or without.
fn answered_under_a_60_s_idle_limit(hinted: bool) -> Harness {
    let cfg = TrackerConfig {
        limits: Limits {
            setup: 300,
            idle: 60,
        },
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    h.hinted = hinted;
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(1000, B, A, &resp(200, "1 INVITE", ""));
    h.at(1010, A, B, &req("ACK", 1, "ft", "tt", "", ""));
    h
}

#[test]
fn max_duration_counts_from_the_last_signalling() {
    let mut h = answered_under_a_60_s_idle_limit(false);
    h.at(30_000, A, B, &req("INFO", 2, "ft", "tt", "", ""));
    h.tick(62_000); // 60 s after the answer, but there was signalling at 30 s
    assert!(h.out.is_empty());
    h.tick(90_500);
    let c = h.one();
    assert_eq!(
        (c.reason, ms(c.end), c.talk_ms()),
        (Some(EndReason::Timeout), Some(90_000), Some(89_000))
    );
}

/// A leg idle past its limit counted from its last message ends then, even when the first
/// wait to pass (counted from the answer) only moved the wait to that message: a message that
/// comes after both is too late to keep it alive. The same record with the router's hints (the
/// bare path, which expired the call a second time) and without (which missed it: found by
/// `every_leg_is_closed_once_and_times_never_go_backwards`).
#[test]
fn idle_limit_from_the_last_signalling_that_has_passed_too() {
    for hinted in [false, true] {
        let mut h = answered_under_a_60_s_idle_limit(hinted);
        // 60 s after the answer and after the ACK: both waits are over.
        h.at(61_020, B, A, &resp(100, "1 INVITE", ""));
        let c = h.one();
        assert_eq!(
            (c.reason, ms(c.end)),
            (Some(EndReason::Timeout), Some(61_010)),
            "hinted: {hinted}"
        );
    }
}

#[test]
fn skip_causes_write_no_stop_record() {
    let cfg = TrackerConfig {
        skip_causes: vec!["USER_BUSY".into()],
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(500, B, A, &resp(486, "1 INVITE", ""));
    h.at(
        600,
        A,
        B,
        &invite(1, "b1", "").replace("Call-ID: c1", "Call-ID: c2"),
    );
    h.at(
        700,
        B,
        A,
        &resp(603, "1 INVITE", "").replace("Call-ID: c1", "Call-ID: c2"),
    );
    let rows = h.finish();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].hangup_cause, Some("CALL_REJECTED"));
    assert_eq!((h.t.stats.skipped, h.t.stats.by_reason[1]), (1, 2));
}

#[test]
fn media_codec_video_and_srtp_from_offer_and_answer() {
    let mut h = Harness::new();
    // Offer: PCMU, PCMA, G.729 and video; the early answer in a reliable 183 picks PCMA and
    // declines video; PRACK and its 200; the 200 repeats the same SDP.
    let offer = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/SAVP 0 8 18\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\nm=video 4002 RTP/AVP 96\n";
    let answer = "v=0\no=bob 7 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/SAVP 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:y\nm=video 0 RTP/AVP 96\n";
    let inv = invite(1, "b1", "Supported: 100rel\n").replace(SDP, offer);
    let inv = inv.replace(
        &format!("Content-Length: {}", SDP.len() + SDP.matches('\n').count()),
        &format!(
            "Content-Length: {}",
            offer.len() + offer.matches('\n').count()
        ),
    );
    h.at(0, A, B, &inv);
    h.at(
        300,
        B,
        A,
        &resp_sdp(183, "1 INVITE", "tt", "Require: 100rel\nRSeq: 1\n", answer),
    );
    h.at(
        310,
        A,
        B,
        &req("PRACK", 2, "ft", "tt", "RAck: 1 1 INVITE\n", ""),
    );
    h.at(320, B, A, &resp_sdp(200, "2 PRACK", "tt", "", ""));
    h.at(3000, B, A, &resp_sdp(200, "1 INVITE", "tt", "", answer));
    h.at(4000, A, B, &req("BYE", 3, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(
        (
            c.caller_media.map(|a| a.to_string()),
            c.callee_media.map(|a| a.to_string()),
            c.text.get(Field::Codec),
        ),
        (
            Some("10.0.0.1:4000".into()),
            Some("10.0.0.2:5000".into()),
            "PCMA/8000"
        )
    );
    assert_eq!(
        (c.video, c.srtp),
        (false, Some(crate::sip::sdp::Srtp::Sdes))
    );
    assert_eq!(
        (ms(c.progress), ms(c.progress_media), ms(c.answer)),
        (None, Some(300), Some(3000))
    );
    assert_eq!((c.pdd_ms(), c.ring_ms()), (Some(300), Some(2700)));
}

#[test]
fn delayed_offer_the_answer_in_the_ack() {
    let mut h = Harness::new();
    let inv = invite(1, "b1", "")
        .replace(SDP, "")
        .replace("Content-Type: application/sdp\n", "");
    let inv = inv.replace(
        &format!("Content-Length: {}", SDP.len() + SDP.matches('\n').count()),
        "Content-Length: 0",
    );
    h.at(0, A, B, &inv);
    h.at(1000, B, A, &resp_sdp(200, "1 INVITE", "tt", "", ANSWER_SDP));
    h.at(1010, A, B, &req("ACK", 1, "ft", "tt", "", SDP));
    h.at(2000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    let c = h.one();
    assert_eq!(c.text.get(Field::Codec), "PCMA/8000");
    assert_eq!(c.caller_media, Some("10.0.0.1:4000".parse().unwrap()));
}

#[test]
fn hold_by_update_gives_hold_events() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(200, "1 INVITE", ""));
    let hold = SDP.replace("o=- 1 1", "o=- 1 2") + "a=sendonly\n";
    let resume = SDP.replace("o=- 1 1", "o=- 1 3") + "a=sendrecv\n";
    h.at(1000, A, B, &req("UPDATE", 2, "ft", "tt", "", &hold));
    h.at(1010, B, A, &resp(200, "2 UPDATE", ""));
    h.at(2500, A, B, &req("UPDATE", 3, "ft", "tt", "", &resume));
    h.at(3000, A, B, &req("BYE", 4, "ft", "tt", "", ""));
    let c = h.one();
    let t0 = 1_000_000_000_000_000;
    assert_eq!(
        c.holds
            .iter()
            .map(|(a, b)| (a.as_micros() - t0, b.as_micros() - t0))
            .collect::<Vec<_>>(),
        [(1_000_000, 2_500_000)]
    );
    assert_eq!(c.hold_ms(), 1500);
}

#[test]
fn leg_roles_from_local_net_and_from_forwarding() {
    let cfg = TrackerConfig {
        local_nets: vec!["10.0.0.2/32".parse().unwrap()],
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(
        10,
        B,
        A,
        &invite(1, "b2", "").replace("Call-ID: c1", "Call-ID: c2"),
    );
    // c3: A -> P -> B, a proxy hop with one Call-ID.
    h.at(
        20,
        A,
        P,
        &invite(1, "b3", "").replace("Call-ID: c1", "Call-ID: c3"),
    );
    h.at(
        30,
        P,
        B,
        &invite(1, "b4", "").replace("Call-ID: c1", "Call-ID: c3"),
    );
    let rows = h.finish();
    let role = |id: &str, dst: &str| {
        rows.iter()
            .find(|c| c.call_id == id && c.dst.to_string() == dst)
            .unwrap()
            .role
    };
    assert_eq!(role("c1", B), Some(LegRole::Uas));
    assert_eq!(role("c2", A), Some(LegRole::Uac));
    assert_eq!(role("c3", P), Some(LegRole::ProxyUas));
    assert_eq!(role("c3", B), Some(LegRole::ProxyUac));
    let legs: Vec<_> = rows.iter().filter(|c| c.call_id == "c3").collect();
    assert_eq!(legs[0].session_id, legs[1].session_id);
}

/// The tracker's records and notes, through the correlation stage, as CSV lines by Call-ID.
fn correlated(h: &mut Harness) -> Vec<(String, String, String)> {
    h.t.finish(&mut h.out);
    let mut enc = crate::cdr::Encoder::default();
    let mut rows: Vec<Row> = h
        .out
        .drain(..)
        .map(|(seq, c)| Row::new(seq, &c, &mut enc))
        .collect();
    rows.extend(h.t.notes.drain(..).map(|(s, t, n)| Row::note(s, t, n)));
    rows.sort_by_key(Row::key);
    let out = crate::correlate::Correlator::default().apply(rows);
    out.iter()
        .map(|r| {
            let line = String::from_utf8(r.line.clone()).unwrap();
            let f: Vec<&str> = line.split(',').collect();
            (f[4].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn a_blind_transfer_links_the_new_call_to_the_referring_session() {
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp(200, "1 INVITE", ""));
    h.at(110, A, B, &req("ACK", 1, "ft", "tt", "", ""));
    // B transfers A to 3003: REFER from B to A, then A calls 3003 with Referred-By.
    h.at(
        5000,
        B,
        A,
        &req(
            "REFER",
            7,
            "tt",
            "ft",
            "Refer-To: <sip:3003@c.example>\nReferred-By: <sip:2002@b.example>\n",
            "",
        ),
    );
    let new_call = invite(1, "b9", "Referred-By: <sip:2002@b.example>\n")
        .replace("Call-ID: c1", "Call-ID: c2")
        .replace("INVITE sip:2002@b.example", "INVITE sip:3003@c.example");
    h.at(5200, A, P, &new_call);
    h.at(6000, A, B, &req("BYE", 2, "ft", "tt", "", ""));
    assert_eq!(h.t.notes.len(), 2);
    let rows = correlated(&mut h);
    let c1 = rows.iter().find(|r| r.0 == "c1").unwrap();
    let c2 = rows.iter().find(|r| r.0 == "c2").unwrap();
    assert_eq!(c1.2, "", "the original call has no original");
    assert_eq!(c2.2, c1.1, "the new call points at the referring session");
    assert_ne!(c2.1, c1.1, "it is a session of its own");
}

#[test]
fn the_heuristic_joins_a_b2bua_outgoing_leg_to_the_incoming_one() {
    let cfg = TrackerConfig {
        local_nets: vec!["10.0.0.3/32".parse().unwrap()],
        correlate_heuristic: true,
        ..TrackerConfig::default()
    };
    let mut h = with_cfg(cfg);
    h.at(0, A, P, &invite(1, "b1", ""));
    // The B2BUA at P tries B twice with new Call-IDs; the first attempt is rejected.
    h.at(
        300,
        P,
        B,
        &invite(1, "o1", "").replace("Call-ID: c1", "Call-ID: out-1"),
    );
    h.at(
        400,
        B,
        P,
        &resp(503, "1 INVITE", "").replace("Call-ID: c1", "Call-ID: out-1"),
    );
    h.at(
        900,
        P,
        B,
        &invite(1, "o2", "").replace("Call-ID: c1", "Call-ID: out-2"),
    );
    // An outgoing call 3 s later with the same numbers is another call.
    h.at(
        3900,
        P,
        B,
        &invite(1, "o3", "").replace("Call-ID: c1", "Call-ID: out-3"),
    );
    let rows = correlated(&mut h);
    let session = |id: &str| rows.iter().find(|r| r.0 == id).unwrap().1.clone();
    assert_eq!(session("out-1"), session("c1"));
    assert_eq!(session("out-2"), session("c1"));
    assert_ne!(session("out-3"), session("c1"));
    assert_eq!(session("out-3"), session_uuid(b"out-3").to_string());
}

#[test]
fn a_bye_with_an_early_dialog_tag_still_ends_the_call() {
    // As in the public capture sngrep_ipv6frag.pcap: the answer carries one To tag, the ACK and
    // BYE another that was only seen in an early 183. No second 2xx: the BYE ends the call.
    let mut h = Harness::new();
    h.at(0, A, B, &invite(1, "b1", ""));
    h.at(100, B, A, &resp_sdp(183, "1 INVITE", "t1", "", ANSWER_SDP));
    h.at(200, B, A, &resp_sdp(183, "1 INVITE", "t2", "", ANSWER_SDP));
    h.at(1000, B, A, &resp_sdp(200, "1 INVITE", "t2", "", ANSWER_SDP));
    h.at(1010, A, B, &req("ACK", 1, "ft", "t1", "", ""));
    h.at(3000, A, B, &req("BYE", 2, "ft", "t1", "", ""));
    assert_eq!(h.t.stats.forked, 0);
    let c = h.one();
    assert_eq!(
        (c.reason, ms(c.end)),
        (Some(EndReason::NormalRelease), Some(3000))
    );
}

#[test]
fn a_redirect_then_a_new_invite_to_the_contact_is_a_second_leg_of_the_session() {
    let mut h = Harness::new();
    h.at(0, A, P, &invite(1, "b1", ""));
    h.at(
        100,
        P,
        A,
        &resp_sdp(
            302,
            "1 INVITE",
            "r1",
            "Contact: <sip:2002@10.0.0.2:5060>\n",
            "",
        ),
    );
    h.at(110, A, P, &req("ACK", 1, "ft", "r1", "", ""));
    // The caller follows the Contact: same Call-ID, next CSeq, another destination.
    h.at(200, A, B, &invite(2, "b2", ""));
    h.at(1000, B, A, &resp_sdp(200, "2 INVITE", "tt", "", ANSWER_SDP));
    h.at(3000, A, B, &req("BYE", 3, "ft", "tt", "", ""));
    let rows = h.finish();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let redirect = rows.iter().find(|c| c.dst.to_string() == P).unwrap();
    let answered = rows.iter().find(|c| c.dst.to_string() == B).unwrap();
    assert_eq!(
        (redirect.reason, redirect.sip_code, ms(redirect.end)),
        (Some(EndReason::CallRejected), Some(302), Some(100))
    );
    assert_eq!(
        (
            answered.reason,
            ms(answered.answer),
            ms(Some(answered.start))
        ),
        (Some(EndReason::NormalRelease), Some(1000), Some(200))
    );
    assert_eq!(redirect.session_id, answered.session_id);
    assert_ne!(redirect.leg_id, answered.leg_id);
}

/// The timer heap stays proportional to the calls held, however many calls have come and gone:
/// 20 000 answered calls that end, each leaving a superseded setup deadline and a `--max-duration`
/// deadline hours away. Every call still gets its record.
#[test]
fn ended_calls_leave_no_deadlines_behind() {
    let mut h = Harness::new();
    let mut records = 0;
    for i in 0..20_000i64 {
        let id = format!("bulk-{i}");
        let at = i * 10;
        h.at(
            at,
            A,
            B,
            &invite(1, "z9hG4bKb", "").replace("Call-ID: c1", &format!("Call-ID: {id}")),
        );
        h.at(at + 1, B, A, &format!("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: {id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"));
        h.at(at + 2, A, B, &format!("BYE sip:2002@b.example SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKy\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: {id}\nCSeq: 2 BYE\nContent-Length: 0\n\n"));
        if i % 100 == 0 {
            h.tick(at);
        }
        records += h.out.drain(..).count();
        assert!(
            h.t.timers.len() <= 2 * h.t.calls.len() + TIMER_SLACK,
            "{} deadlines for {} calls",
            h.t.timers.len(),
            h.t.calls.len()
        );
    }
    records += h.finish().len();
    assert_eq!(records, 20_000);
}

/// One tick that fires hundreds of deadlines, many more than its prefetch stages span (the
/// calls are prefetched a few ahead of their turn): each leg left ringing times out, each ended
/// call is forgotten, in one pass, and a later tick forgets the calls that timed out.
#[test]
fn one_tick_fires_hundreds_of_deadlines() {
    let mut h = Harness::new();
    for i in 0..300i64 {
        let id = format!("Call-ID: many-{i}");
        let call = |m: String| m.replace("Call-ID: c1", &id);
        h.at(i, A, B, &call(invite(1, "z9hG4bKb", "")));
        h.at(i, B, A, &call(resp(180, "1 INVITE", "")));
        if i % 3 == 0 {
            h.at(i, B, A, &call(resp(200, "1 INVITE", "")));
            h.at(i, A, B, &call(req("BYE", 2, "ft", "tt", "", "")));
        }
    }
    let ended: Vec<_> = h.out.drain(..).map(|(_, c)| c.reason).collect();
    assert_eq!(ended.len(), 100);
    assert!(ended.iter().all(|r| *r == Some(EndReason::NormalRelease)));
    assert_eq!(h.t.calls.len(), 300);
    // Past every leg's 300 s setup limit and the ended calls' linger: one tick fires all 300.
    h.tick(301_000);
    let timed_out: Vec<_> = h.out.drain(..).map(|(_, c)| c.reason).collect();
    assert_eq!(timed_out.len(), 200);
    assert!(timed_out.iter().all(|r| *r == Some(EndReason::Timeout)));
    assert_eq!(h.t.calls.len(), 200, "the ended calls are forgotten");
    h.tick(400_000);
    assert!(h.out.is_empty());
    assert_eq!(h.t.calls.len(), 0, "the timed-out calls are forgotten");
}

/// The router hands each message's Call-ID hash to its shard: with the shared keys it is the
/// hash the calls table uses, and handling a batch with those hints (and the prefetch pass)
/// gives the same records and counts as handling each message on its own: messages of no known
/// call that cannot be INVITEs are dropped unparsed, an INVITE after keep-alives is not.
#[test]
fn the_routers_hash_hint_is_the_tables_hash() {
    use crate::capture::route::Router;
    let keys = ahash::RandomState::new();
    let (tx, rx) = crossbeam_channel::bounded::<Batch>(64);
    let mut r = Router::with_keys(vec![tx], keys.clone());
    let (a, b): (std::net::SocketAddr, std::net::SocketAddr) =
        (A.parse().unwrap(), B.parse().unwrap());
    let mut plain = Harness::new();
    let msgs = [
        (0, a, b, "BYE sip:2002@10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=b0\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: c9\nCSeq: 2 BYE\nContent-Length: 0\n\n".to_string()),
        (0, a, b, format!("\n\n{}", invite(1, "b1", ""))),
        (5, a, b, req("REGISTER", 1, "ft", "", "", "").replace("Call-ID: c1", "Call-ID: r1")),
        (6, b, a, "SIP/2.0 100 Trying\nVia: SIP/2.0/UDP 10.0.0.1;branch=b1\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n".to_string()),
        (10, b, a, "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1;branch=b1\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n".to_string()),
        (20, b, a, "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1;branch=b1\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n".to_string()),
        // An ACK without a body (read from its start line), then one with SDP, which moves the
        // caller's media.
        (21, a, b, req("ACK", 1, "ft", "tt", "", "")),
        (22, a, b, req("ACK", 1, "ft", "tt", "", &SDP.replace("1 1 IN", "1 2 IN").replace("4000", "4002"))),
        (30, a, b, "BYE sip:2002@10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=b2\nFrom: <sip:1001@a.example>;tag=ft\nTo: <sip:2002@b.example>;tag=tt\nCall-ID: c1\nCSeq: 2 BYE\nContent-Length: 0\n\n".to_string()),
        // After the leg ended: its BYE's answer, the BYE again, and a message of another hop.
        (31, b, a, resp(200, "2 BYE", "")),
        (32, a, b, req("BYE", 2, "ft", "tt", "", "")),
        (33, P.parse().unwrap(), b, req("BYE", 2, "ft", "tt", "", "")),
    ];
    for (ms, src, dst, text) in &msgs {
        let bytes = text.replace('\n', "\r\n");
        let ts = Timestamp::from_micros(1_000_000_000_000_000 + ms * 1000);
        r.route(ts, src, dst, Transport::Udp, bytes.as_bytes())
            .unwrap();
        plain.at(*ms, &src.to_string(), &dst.to_string(), text);
    }
    r.flush_all().unwrap();
    let mut hinted = Tracker::new(TrackerConfig::default()).with_keys(keys);
    let mut out = Out::new();
    let mut hints = 0;
    for batch in rx.try_iter() {
        // One parse slot for the batch, reused by every message, as `Tracker::run` does.
        let mut parsed = crate::sip::Message::EMPTY;
        for item in &batch.items {
            if let Item::Msg(m) = item {
                let hint = batch.call_id_of(m);
                let (id, hash) = hint.expect("the router gives every message's Call-ID");
                assert_eq!(hash, hinted.calls.hash(id));
                let mut found = calls::Found::default();
                let invite = [m.invite];
                (0..=calls::LEAD)
                    .for_each(|j| hinted.calls.prefetch_step(&[hash], &invite, &mut found, j));
                hinted.handle_hinted(batch.bytes_of(m), &mut parsed, m, hint, &mut out);
                hints += 1;
            }
        }
    }
    assert_eq!(hints, msgs.len());
    assert_eq!(hinted.stats.without_invite, 2);
    assert_eq!(hinted.stats.without_invite, plain.t.stats.without_invite);
    assert_eq!(hinted.stats.after_end, 3);
    assert_eq!(hinted.stats.after_end, plain.t.stats.after_end);
    assert_eq!(hinted.stats.messages, plain.t.stats.messages);
    assert_eq!(hinted.stats.legs, 1);
    hinted.finish(&mut out);
    assert_eq!(
        out.first()
            .and_then(|(_, c)| c.caller_media)
            .map(|a| a.to_string()),
        Some("10.0.0.1:4002".to_string())
    );
    let got: Vec<String> = out.iter().map(|(_, c)| format!("{c:?}")).collect();
    let want: Vec<String> = plain.finish().iter().map(|c| format!("{c:?}")).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got, want);
}

/// The headers the parse found (`Message::invite`) give what a scan of every line gives, and a
/// repeated one falls back to that scan.
#[test]
fn invite_headers_from_the_parse_equal_the_scan() {
    let rules = Tracker::new(TrackerConfig::default()).rules;
    for extra in [
        "",
        "P-Asserted-Identity: \"Bob\" <sip:+4930123@a.example>\n",
        "p-asserted-identity:<tel:+4930123>, <sip:99@x>\n",
        "Remote-Party-ID: <sip:555@x>;party=calling\nPrivacy: id; header\n",
        "Privacy:  none \nPrivacy: id\n",
        "Diversion: <sip:777@x>;reason=unconditional\n",
        "History-Info: <sip:1@x>;index=1\nHistory-Info: <sip:888@x?Reason=SIP%3Bcause%3D302>;index=1.1\n",
        "History-Info: <sip:1@x>;index=1,<sip:888@x?Reason=SIP%3Bcause%3D302>;index=1.1\n",
        "Session-ID: ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000\n",
        "Session-ID: junk\nSession-ID: ab30317f1a784dc48ff824d0d3715d86\n",
        "Replaces: abc@h;to-tag=1;from-tag=2\n",
        "Replaces: abc@h;to-tag=1;from-tag=2\nReplaces: def@h;to-tag=1;from-tag=2\n",
        "Referred-By: <sip:5@x>\n",
        "b: <sip:5@x>\n",
        "Referred-By: <sip:5@x>\nb: <sip:6@x>\n",
        "P-Asserted-Identity : <sip:31@x>\n",
        "P-Asserted-Identity:\n <sip:32@x>\n",
        "P-Preferred-Identity: <sip:33@x>\nPrivacy: id\n",
    ] {
        let text = invite(1, "b1", extra).replace('\n', "\r\n");
        let m = Message::parse(text.as_bytes(), Framing::Datagram).unwrap();
        let scan = rules.invite_headers_scan(&m);
        assert_eq!(rules.invite_headers(&m), scan, "{extra:?}");
        let any = [
            m.invite.asserted_identity,
            m.invite.remote_party_id,
            m.invite.privacy,
            m.invite.diversion,
            m.invite.history_info,
            m.invite.session_id,
            m.invite.replaces,
            m.invite.referred_by,
        ]
        .iter()
        .any(Option::is_some);
        assert_eq!(any, !extra.is_empty(), "{extra:?}");
    }
    // Every path reached: the parse's values, and the scan after a repeat.
    let repeated = invite(1, "b1", "Privacy: none\nPrivacy: id\n").replace('\n', "\r\n");
    let m = Message::parse(repeated.as_bytes(), Framing::Datagram).unwrap();
    assert!(m.invite.repeated);
    assert_eq!(&*rules.invite_headers(&m).privacy, b"id");
}
