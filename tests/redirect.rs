//! A real 302 redirect (`captures/udp_redirect_302.pcap`, recorded by `scripts/record-redirect.sh`;
//! ladder in `captures/README.md`): the sipp caller 127.0.0.1:5460 sends INVITE to a Kamailio
//! redirect server on 127.0.0.2:5060, which answers `302 Moved Temporarily` with
//! `Contact: <sip:3003@127.0.0.1:5462>`; the caller ACKs it, then sends a new INVITE (same Call-ID,
//! CSeq 2, Request-URI = the Contact) to the sipp UAS at 127.0.0.1:5462, which answers; the caller
//! hangs up ~1 s later.
//!
//! README "What a leg is": a 3xx redirect is `call-rejected` with its code; a new INVITE to the
//! Contact that keeps the Call-ID is a new leg in the same session. The columns are read by name
//! (csv crate); times are checked against the packets' own capture times, read from the pcap, so a
//! re-recording keeps passing. The helpers are copied from `tests/semantics.rs`.

use crate::{capture, sipcdr};
use std::collections::HashMap;

type Row = HashMap<String, String>;

const NAME: &str = "udp_redirect_302";
const CALL_ID: &str = "1-udp-redirect-302@sipcdr.test";
const REDIRECTOR: &str = "127.0.0.2";
const TARGET: &str = "127.0.0.1";
const TARGET_PORT: &str = "5462";

/// sipcdr's rows for `captures/NAME.pcap`, with extra flags.
fn rows(name: &str, extra: &[&str]) -> Vec<Row> {
    let pcap = capture(&format!("{name}.pcap"));
    let mut args = vec!["-q", "-o", "-", "-r", pcap.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = sipcdr(&args);
    assert!(out.status.success(), "{name}: {out:?}");
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = rdr.headers().unwrap().clone();
    let rows: Vec<Row> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), headers.len(), "{name}: ragged row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    for r in &rows {
        formulas_hold(name, r);
    }
    rows
}

/// The one row matching `pred`.
fn one<'a>(rows: &'a [Row], what: &str, pred: impl Fn(&Row) -> bool) -> &'a Row {
    let m: Vec<&Row> = rows.iter().filter(|r| pred(r)).collect();
    assert_eq!(m.len(), 1, "{what}: {} matching rows in {rows:#?}", m.len());
    m[0]
}

fn session(call_id: &str) -> String {
    sipcdr::tracker::session_uuid(call_id.as_bytes()).to_string()
}

/// `2026-11-23T14:51:56.819465Z` → microseconds since the epoch; None when empty.
fn us(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss, frac) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?);
    assert_eq!(s.len(), 27, "{s}: not RFC 3339 with microseconds");
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000 + frac)
}

fn t(r: &Row, col: &str) -> Option<i64> {
    us(&r[col])
}

fn n(r: &Row, col: &str) -> Option<i64> {
    (!r[col].is_empty()).then(|| r[col].parse().unwrap())
}

/// Whole milliseconds between two times, as sipcdr writes durations.
fn ms_between(from: Option<i64>, to: Option<i64>) -> Option<i64> {
    Some((to? - from?).div_euclid(1000))
}

/// `{{start,stop},…}` → pairs of microsecond epochs.
fn hold_events(r: &Row) -> Vec<(i64, i64)> {
    let v = &r["hold_events"];
    if v.is_empty() {
        return Vec::new();
    }
    let inner = v
        .strip_prefix("{{")
        .and_then(|v| v.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("hold_events {v:?}"));
    inner
        .split("},{")
        .map(|p| {
            let (a, b) = p.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// The issue's formulas on every stop record: duration = end − start, talk = end − answer,
/// pdd = ring start − start, ring = (answer, else end) − ring start, hold_ms = sum of hold_events.
fn formulas_hold(name: &str, r: &Row) {
    if r["record_type"] != "stop" {
        return; // attempt and start records are partial by design (--records)
    }
    let what = format!("{name} {} {}", r["call_id"], r["dst_port"]);
    let (start, end, answer) = (t(r, "start_time"), t(r, "end_time"), t(r, "answer_time"));
    let ring = t(r, "progress_time").or(t(r, "progress_media_time"));
    assert_eq!(
        n(r, "duration_ms"),
        ms_between(start, end),
        "{what} duration"
    );
    assert_eq!(n(r, "talk_ms"), ms_between(answer, end), "{what} talk");
    assert_eq!(n(r, "pdd_ms"), ms_between(start, ring), "{what} pdd");
    assert_eq!(
        n(r, "ring_ms"),
        ms_between(ring, answer.or(end)),
        "{what} ring"
    );
    let held: i64 = hold_events(r).iter().map(|(a, b)| b - a).sum();
    assert_eq!(n(r, "hold_ms"), Some(held / 1000), "{what} hold_ms");
}

// ---- the packets' capture times, from the pcap itself ----

/// Capture time (µs since the epoch) of every UDP payload in a classic little-endian,
/// microsecond pcap (tcpdump -w on lo: Ethernet, IPv4, UDP), with the payload.
fn packets(name: &str) -> Vec<(i64, Vec<u8>)> {
    let data = std::fs::read(capture(&format!("{name}.pcap"))).unwrap();
    assert_eq!(data[..4], [0xd4, 0xc3, 0xb2, 0xa1], "{name}: not a µs pcap");
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let (sec, usec, caplen) = (u32_at(off), u32_at(off + 4), u32_at(off + 8) as usize);
        let frame = &data[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        // Ethernet (14) + IPv4 (IHL) + UDP (8)
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        assert_eq!(frame[14 + 9], 17, "{name}: only UDP expected");
        let payload = frame[14 + ihl + 8..].to_vec();
        out.push((i64::from(sec) * 1_000_000 + i64::from(usec), payload));
    }
    out
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
