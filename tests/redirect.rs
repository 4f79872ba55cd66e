//! A real 302 redirect (`captures/udp_redirect_302.pcap`, recorded by `scripts/record-proxy.sh`;
//! ladder in `captures/README.md`): the sipp caller 127.0.0.1:5460 sends INVITE to a Kamailio
//! redirect server on 127.0.0.2:5060, which answers `302 Moved Temporarily` with
//! `Contact: <sip:3003@127.0.0.1:5462>`; the caller ACKs it, then sends a new INVITE (same Call-ID,
//! CSeq 2, Request-URI = the Contact) to the sipp UAS at 127.0.0.1:5462, which answers; the caller
//! hangs up ~1 s later.
//!
//! README "What a leg is": a 3xx redirect is `call-rejected` with its code; a new INVITE to the
//! Contact that keeps the Call-ID is a new leg in the same session. The columns are read by name
//! (csv crate); times are checked against the packets' own capture times, read from the pcap, so a
//! re-recording keeps passing. Rows are read and the formulas checked by `tests/semantics.rs`'s
//! helpers.

use crate::capture;
use crate::formats::read_pcap;
use crate::semantics::{Row, n, one, rows, session, t};

const NAME: &str = "udp_redirect_302";
const CALL_ID: &str = "1-udp-redirect-302@sipcdr.test";
const REDIRECTOR: &str = "127.0.0.2";
const TARGET: &str = "127.0.0.1";
const TARGET_PORT: &str = "5462";

// ---- the packets' capture times, from the pcap itself ----

/// Capture time (µs since the epoch) of every UDP payload in a classic little-endian,
/// microsecond pcap (tcpdump -w on lo: Ethernet, IPv4, UDP), with the payload.
fn packets(name: &str) -> Vec<(i64, Vec<u8>)> {
    let data = std::fs::read(capture(&format!("{name}.pcap"))).unwrap();
    read_pcap(&data)
        .into_iter()
        .map(|(ts, frame)| {
            // Ethernet (14) + IPv4 (IHL) + UDP (8)
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            assert_eq!(frame[14 + 9], 17, "{name}: only UDP expected");
            (ts as i64, frame[14 + ihl + 8..].to_vec())
        })
        .collect()
}

/// Capture time of the one SIP message whose first line starts with `first_line` and that
/// carries `cseq` (e.g. `CSeq: 1 INVITE`).
fn time_of(pkts: &[(i64, Vec<u8>)], first_line: &str, cseq: &str) -> i64 {
    let m: Vec<i64> = pkts
        .iter()
        .filter(|(_, p)| {
            let s = String::from_utf8_lossy(p);
            s.starts_with(first_line) && s.lines().any(|l| l == cseq)
        })
        .map(|(ts, _)| *ts)
        .collect();
    assert_eq!(m.len(), 1, "{first_line} / {cseq}: {} packets", m.len());
    m[0]
}

// ---- the two legs ----

fn check_redirect(rows: &[Row]) {
    assert_eq!(rows.len(), 2, "two legs: {rows:#?}");
    let redirected = one(rows, "leg to the redirect server", |r| {
        r["dst_ip"] == REDIRECTOR
    });
    let followed = one(rows, "leg to the Contact", |r| {
        r["dst_ip"] == TARGET && r["dst_port"] == TARGET_PORT
    });
    let pkts = packets(NAME);

    // One session (the Call-ID's), two legs.
    for r in [redirected, followed] {
        assert_eq!(r["call_id"], CALL_ID);
        assert_eq!(r["record_type"], "stop");
        assert_eq!(
            r["session_id"],
            session(CALL_ID),
            "session from the Call-ID"
        );
        assert_eq!(r["original_session_id"], "");
        assert_eq!(
            (r["src_ip"].as_str(), r["src_port"].as_str()),
            ("127.0.0.1", "5460")
        );
        assert_eq!(r["caller_number"], "1001");
        assert_eq!(r["from_uri"], "sip:1001@sipcdr.test");
    }
    assert_ne!(redirected["leg_id"], followed["leg_id"]);
    assert_eq!(redirected["session_id"], followed["session_id"]);

    // The first leg: rejected by the 302, which ends it.
    assert_eq!(redirected["dst_port"], "5060");
    assert_eq!(
        (
            redirected["sip_resp_code"].as_str(),
            redirected["reason"].as_str()
        ),
        ("302", "call-rejected"),
        "{redirected:#?}"
    );
    assert_eq!(redirected["destination_number"], "2002");
    let invite1 = time_of(&pkts, "INVITE sip:2002@127.0.0.2:5060 ", "CSeq: 1 INVITE");
    let moved = time_of(&pkts, "SIP/2.0 302 Moved Temporarily", "CSeq: 1 INVITE");
    assert_eq!(t(redirected, "start_time"), Some(invite1));
    assert_eq!(t(redirected, "end_time"), Some(moved), "ends at the 302");
    for col in ["progress_time", "progress_media_time", "answer_time"] {
        assert_eq!(redirected[col], "", "{col}: {redirected:#?}");
    }
    assert_eq!(redirected["talk_ms"], "");
    assert_eq!(redirected["callee_media"], "");

    // The second leg: the INVITE to the Contact, answered, the caller hangs up.
    assert_eq!(
        (
            followed["sip_resp_code"].as_str(),
            followed["reason"].as_str(),
            followed["hangup_cause"].as_str(),
            followed["disposition"].as_str()
        ),
        ("200", "normal-release", "NORMAL_CLEARING", "caller"),
        "{followed:#?}"
    );
    assert_eq!(followed["destination_number"], "3003", "the Contact's user");
    let invite2 = time_of(&pkts, "INVITE sip:3003@127.0.0.1:5462 ", "CSeq: 2 INVITE");
    let ringing = time_of(&pkts, "SIP/2.0 180 ", "CSeq: 2 INVITE");
    let ok = time_of(&pkts, "SIP/2.0 200 ", "CSeq: 2 INVITE");
    let bye = time_of(&pkts, "BYE ", "CSeq: 3 BYE");
    assert_eq!(t(followed, "start_time"), Some(invite2));
    assert_eq!(t(followed, "progress_time"), Some(ringing));
    assert_eq!(t(followed, "answer_time"), Some(ok));
    assert_eq!(t(followed, "end_time"), Some(bye));
    assert_eq!(followed["callee_user_agent"], "sipcdr-test-uas");
    assert_eq!(followed["codec"], "PCMA/8000");
    let talk = n(followed, "talk_ms").unwrap();
    assert!((900..2000).contains(&talk), "~1 s of talk: {talk}");

    // The redirect comes first: the second leg starts after the first one ended.
    assert!(t(redirected, "end_time") < t(followed, "start_time"));
}

#[test]
fn redirect_302_then_invite_to_the_contact_is_a_second_leg_of_the_same_session() {
    check_redirect(&rows(NAME, &["--shards", "1"]));
}

#[test]
fn redirect_302_legs_with_four_shards() {
    check_redirect(&rows(NAME, &["--shards", "4"]));
}
