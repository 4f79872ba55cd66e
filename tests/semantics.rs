//! Issue #5 (call semantics) on real-peer captures: the new columns read by name from sipcdr's CSV
//! (csv crate), not compared as bytes. The captures come from `scripts/record-captures.sh`
//! (early media, UPDATE hold, PRACK) and `scripts/record-proxy.sh` (Kamailio proxy hop, parallel
//! fork, topoh B2BUA with Session-ID, transfer with Replaces, blind transfer); `captures/README.md`
//! shows their ladders. Times are checked as relations between columns (so a re-recording keeps
//! passing); the golden files hold the exact values, which were checked by hand against tshark.

use crate::{capture, sipcdr};
use std::collections::HashMap;

pub(crate) type Row = HashMap<String, String>;

/// sipcdr's rows for `captures/NAME.pcap`, with extra flags.
pub(crate) fn rows(name: &str, extra: &[&str]) -> Vec<Row> {
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
pub(crate) fn one<'a>(rows: &'a [Row], what: &str, pred: impl Fn(&Row) -> bool) -> &'a Row {
    let m: Vec<&Row> = rows.iter().filter(|r| pred(r)).collect();
    assert_eq!(m.len(), 1, "{what}: {} matching rows in {rows:#?}", m.len());
    m[0]
}

pub(crate) fn session(call_id: &str) -> String {
    sipcdr::tracker::session_uuid(call_id.as_bytes()).to_string()
}

/// `2026-11-23T14:51:56.819465Z` → microseconds since the epoch; None when empty.
pub(crate) fn us(s: &str) -> Option<i64> {
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

pub(crate) fn t(r: &Row, col: &str) -> Option<i64> {
    us(&r[col])
}

pub(crate) fn n(r: &Row, col: &str) -> Option<i64> {
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

/// The issue's formulas, on every row of every capture here: duration = end − start, talk = end −
/// answer, pdd = ring start − start and ring = (answer, else end) − ring start, where ring start =
/// progress, else progress_media (FreeSWITCH); hold_ms = sum of hold_events.
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

fn answered_by_caller_bye(r: &Row) {
    assert_eq!(
        (
            r["sip_resp_code"].as_str(),
            r["reason"].as_str(),
            r["hangup_cause"].as_str(),
            r["disposition"].as_str()
        ),
        ("200", "normal-release", "NORMAL_CLEARING", "caller"),
        "{r:#?}"
    );
}

// ---- 1. proxy hop: sipp UAC → Kamailio (127.0.0.2:5060, tm + record_route) → sipp UAS ----

const PROXY: &str = "127.0.0.2";

fn check_proxy_hop(rows: &[Row]) {
    let call_id = "1-udp-proxy-hop@sipcdr.test";
    assert_eq!(rows.len(), 2, "one leg per hop: {rows:#?}");
    let into = one(rows, "leg into the proxy", |r| r["dst_ip"] == PROXY);
    let out = one(rows, "leg out of the proxy", |r| r["src_ip"] == PROXY);
    for r in [into, out] {
        assert_eq!(r["call_id"], call_id);
        assert_eq!(
            r["session_id"],
            session(call_id),
            "one session, from the Call-ID"
        );
        assert_eq!(r["original_session_id"], "");
        answered_by_caller_bye(r);
        assert_eq!(r["callee_user_agent"], "sipcdr-test-uas");
        assert_eq!(r["codec"], "PCMA/8000");
        assert_eq!(r["caller_media"], "127.0.0.1:24000");
        assert_eq!(r["callee_media"], "127.0.0.1:24010");
        assert_eq!((r["video"].as_str(), r["srtp"].as_str()), ("false", ""));
    }
    assert_ne!(into["leg_id"], out["leg_id"]);
    assert_eq!(into["leg_role"], "proxy-uas");
    assert_eq!(out["leg_role"], "proxy-uac");
    assert_eq!(
        (into["src_port"].as_str(), out["dst_port"].as_str()),
        ("5400", "5401")
    );
    // The proxy forwards after it received; the callee's 200 reaches the proxy before the caller.
    assert!(t(into, "start_time") < t(out, "start_time"));
    assert!(t(out, "answer_time") < t(into, "answer_time"));
    assert!(
        t(into, "end_time") < t(out, "end_time"),
        "the BYE goes caller → proxy → callee"
    );
}

#[test]
fn proxy_hop_two_legs_one_session_proxy_roles() {
    let rows = rows("udp_proxy_hop", &[]);
    check_proxy_hop(&rows);
    assert!(rows.iter().all(|r| r["direction"].is_empty()));
}

#[test]
fn proxy_hop_with_local_net_keeps_the_roles_and_sets_direction() {
    let rows = rows("udp_proxy_hop", &["--local-net", "127.0.0.2/32"]);
    check_proxy_hop(&rows);
    let into = one(&rows, "into", |r| r["dst_ip"] == PROXY);
    let out = one(&rows, "out", |r| r["src_ip"] == PROXY);
    assert_eq!(
        (into["direction"].as_str(), out["direction"].as_str()),
        ("inbound", "outbound")
    );
}

// ---- 2. forking: Kamailio forks in parallel to UAS A (answers) and UAS B (rings, is canceled) ----
// udp_fork: A on 127.0.0.1:5411, B on 127.0.0.1:5412; udp_fork_two_hosts: A on 127.0.0.1:5441,
// B on 127.0.0.3:5442; race/udp_fork_race: A on 127.0.0.1:5451, B on 127.0.0.3:5452, both answer.

/// The caller's leg is one CDR, answered once (by A), though two 180s with different To tags
/// reached it; the leg to A is an answered proxy-uac leg of the same session.
fn check_fork_caller_and_a(name: &str, call_id: &str, a_port: &str) {
    let rows = rows(name, &[]);
    let caller = one(&rows, "the caller's leg", |r| r["dst_ip"] == PROXY);
    answered_by_caller_bye(caller);
    assert_eq!(caller["leg_role"], "proxy-uas");
    assert_eq!(caller["session_id"], session(call_id));
    assert!(
        t(caller, "progress_time").is_some(),
        "ringing from the first 180"
    );
    assert_eq!(caller["codec"], "PCMA/8000");
    let a = one(&rows, "the leg to branch A", |r| r["dst_port"] == a_port);
    answered_by_caller_bye(a);
    assert_eq!(a["leg_role"], "proxy-uac");
    assert_eq!(a["session_id"], caller["session_id"]);
    assert_eq!(caller["callee_media"], a["callee_media"], "A's answer");
}

/// Three legs of one session; the leg to B is a proxy-uac leg that rang and was canceled by the
/// proxy after A's 200.
fn check_fork_canceled_branch(name: &str, a_port: &str, b_port: &str) {
    let rows = rows(name, &[]);
    assert_eq!(rows.len(), 3, "caller leg + one leg per branch: {rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["session_id"] == rows[0]["session_id"])
    );
    let a = one(&rows, "branch A", |r| r["dst_port"] == a_port);
    let b = one(&rows, "branch B", |r| r["dst_port"] == b_port);
    assert_eq!(b["leg_role"], "proxy-uac");
    assert_eq!(
        (
            b["sip_resp_code"].as_str(),
            b["reason"].as_str(),
            b["hangup_cause"].as_str(),
            b["disposition"].as_str(),
            b["answer_time"].as_str(),
            b["codec"].as_str()
        ),
        (
            "487",
            "call-canceled",
            "ORIGINATOR_CANCEL",
            "caller",
            "",
            ""
        )
    );
    assert!(t(b, "progress_time").is_some(), "branch B rang");
    assert!(
        t(b, "end_time") > t(a, "answer_time"),
        "canceled after A's 200"
    );
}

#[test]
fn fork_the_callers_leg_is_answered_once() {
    check_fork_caller_and_a("udp_fork", "1-udp-fork@sipcdr.test", "5411");
    check_fork_caller_and_a(
        "udp_fork_two_hosts",
        "1-udp-fork-two-hosts@sipcdr.test",
        "5441",
    );
}

#[test]
fn fork_the_canceled_branch_on_another_host_is_its_own_proxy_uac_leg() {
    check_fork_canceled_branch("udp_fork_two_hosts", "5441", "5442");
}

#[test]
fn fork_the_canceled_branch_on_the_same_host_is_its_own_proxy_uac_leg() {
    check_fork_canceled_branch("udp_fork", "5411", "5412");
}

/// race/udp_fork_race: B answers too (its 200 after the proxy's CANCEL, as in a race) and the proxy
/// relays that second 2xx; the caller ACKs it and BYEs B's dialog at once, then BYEs A's.
#[test]
fn fork_race_a_second_answer_is_counted_not_a_second_call() {
    let rows = rows("race/udp_fork_race", &[]);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["session_id"] == session("1-udp-fork-race@sipcdr.test"))
    );
    let caller = one(&rows, "the caller's leg", |r| r["dst_ip"] == PROXY);
    let a = one(&rows, "branch A", |r| r["dst_port"] == "5451");
    let b = one(&rows, "branch B", |r| r["dst_port"] == "5452");
    for r in [caller, a, b] {
        answered_by_caller_bye(r);
    }
    assert_eq!(caller["leg_role"], "proxy-uas");
    assert_eq!(
        (a["leg_role"].as_str(), b["leg_role"].as_str()),
        ("proxy-uac", "proxy-uac")
    );
    // The caller's leg: answered by A's 200 (the first), its media from A's answer, ended by the
    // BYE of A's dialog, not by the earlier BYE of B's.
    assert!(t(caller, "answer_time") < t(b, "answer_time"));
    assert_eq!(caller["callee_media"], a["callee_media"]);
    assert_eq!(b["callee_media"], "127.0.0.3:24520");
    assert!(t(caller, "end_time") > t(b, "end_time"));
    assert!(t(caller, "end_time") < t(a, "end_time"));
    // The summary counts B's 200 and the BYE of B's dialog on the caller's hop.
    let pcap = capture("race/udp_fork_race.pcap");
    let out = sipcdr(&["-o", "-", "-r", pcap.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&out.stderr);
    let forks = summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("forks"))
        .unwrap_or_else(|| panic!("no forks line in {summary}"));
    assert_eq!(forks.split_whitespace().next(), Some("2"), "{summary}");
    // Outside captures/*.pcap (no tshark truth), so its expected CSV is checked here.
    let want = std::fs::read_to_string(capture("race/udp_fork_race.csv")).unwrap();
    for shards in ["1", "4"] {
        let out = sipcdr(&[
            "-q",
            "-o",
            "-",
            "--shards",
            shards,
            "-r",
            pcap.to_str().unwrap(),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "--shards {shards}"
        );
    }
}

// ---- 3. B2BUA: Kamailio with topoh (mask_callid=1): another Call-ID on the far side ----

const SID_UUID: &str = "8bd7a0e5c3f94b2f9a6e1d0c4b3a2f19";
const CALL1: &str = "1-udp-b2bua-session-id@sipcdr.test";
const CALL2: &str = "1-udp-b2bua-x-cid@sipcdr.test";

/// (call 1 near, call 1 far, call 2 near, call 2 far): the far legs carry topoh's Call-IDs, in
/// order of start (call 2 starts 0.5 s after call 1).
fn b2bua_legs(rows: &[Row]) -> [&Row; 4] {
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let near1 = one(rows, "call 1 near", |r| r["call_id"] == CALL1);
    let near2 = one(rows, "call 2 near", |r| r["call_id"] == CALL2);
    let mut far: Vec<&Row> = rows.iter().filter(|r| r["src_ip"] == PROXY).collect();
    far.sort_by_key(|r| t(r, "start_time"));
    assert_eq!(far.len(), 2);
    for f in &far {
        assert!(
            f["call_id"].starts_with("!!:"),
            "topoh masks the Call-ID: {f:#?}"
        );
    }
    [near1, far[0], near2, far[1]]
}

#[test]
fn b2bua_legs_with_one_session_id_header_share_its_session() {
    let rows = rows("udp_b2bua_session_id", &[]);
    let [near1, far1, near2, far2] = b2bua_legs(&rows);
    assert_ne!(near1["call_id"], far1["call_id"]);
    assert_eq!(
        near1["session_id"],
        session(SID_UUID),
        "the Session-ID's UUID"
    );
    assert_eq!(far1["session_id"], near1["session_id"]);
    // Call 2 has no Session-ID: without --correlate-header its legs are two sessions.
    assert_eq!(near2["session_id"], session(CALL2));
    assert_eq!(far2["session_id"], session(&far2["call_id"]));
    for r in [near1, far1, near2, far2] {
        answered_by_caller_bye(r);
        assert_eq!(r["leg_role"], "", "different Call-IDs: no proxy role");
        assert_eq!(r["codec"], "PCMA/8000");
    }
}

#[test]
fn b2bua_correlate_header_links_the_legs_without_session_id() {
    let rows = rows("udp_b2bua_session_id", &["--correlate-header", "X-CID"]);
    let [near1, far1, near2, far2] = b2bua_legs(&rows);
    // The proxy's X-CID names the caller's Call-ID.
    assert_eq!(near2["session_id"], session(CALL2));
    assert_eq!(far2["session_id"], near2["session_id"]);
    // Session-ID comes first: call 1's far leg carries both and keeps the Session-ID's session.
    assert_eq!(near1["session_id"], session(SID_UUID));
    assert_eq!(far1["session_id"], near1["session_id"]);
}

// ---- 4. transfer: REFER inside call 1, then call 2 with Replaces: call 1 ----

#[test]
fn transfer_the_replacing_call_points_at_the_original_session() {
    let rows = rows("udp_transfer", &[]);
    assert_eq!(rows.len(), 2, "REFER and NOTIFY make no leg: {rows:#?}");
    let c1 = one(&rows, "call 1", |r| {
        r["call_id"] == "1-udp-transfer@sipcdr.test"
    });
    let c2 = one(&rows, "call 2", |r| {
        r["call_id"] == "1-udp-transfer-replaces@sipcdr.test"
    });
    assert_eq!(c1["session_id"], session(&c1["call_id"]));
    assert_eq!(c1["original_session_id"], "");
    assert_eq!(c2["session_id"], session(&c2["call_id"]));
    assert_eq!(c2["original_session_id"], c1["session_id"]);
    assert_eq!(c2["caller_number"], "3003");
    // The REFER (202, NOTIFY) did not end call 1: it was still up when call 2 was answered and
    // ended with Bob's BYE.
    assert_eq!(
        (
            c1["sip_resp_code"].as_str(),
            c1["reason"].as_str(),
            c1["disposition"].as_str()
        ),
        ("200", "normal-release", "callee")
    );
    assert!(t(c1, "end_time") > t(c2, "answer_time"));
    answered_by_caller_bye(c2);
    assert_eq!(c2["progress_time"], "", "answered at once, no ringing");
}

// ---- 4b. blind transfer: Bob REFERs Alice to Carol (no Replaces), Alice calls Carol ----

#[test]
fn blind_transfer_the_referred_call_points_at_the_referring_session() {
    let rows = rows("udp_blind_transfer", &[]);
    assert_eq!(rows.len(), 2, "REFER and NOTIFYs make no leg: {rows:#?}");
    let c1 = one(&rows, "call 1", |r| {
        r["call_id"] == "1-udp-blind-transfer@sipcdr.test"
    });
    // sipp's one call for both dialogs: it ignores what precedes "///" in the Call-ID.
    let c2 = one(&rows, "call 2", |r| {
        r["call_id"] == "2-udp-blind-transfer///1-udp-blind-transfer@sipcdr.test"
    });
    assert_eq!(c1["session_id"], session(&c1["call_id"]));
    assert_eq!(c1["original_session_id"], "");
    // Call 2 keeps its own session and points at the REFER's: Alice (127.0.0.1, the REFER's
    // receiver) sent the INVITE with Referred-By to the Refer-To user 3003 within 32 s.
    assert_eq!(c2["session_id"], session(&c2["call_id"]));
    assert_ne!(c2["session_id"], c1["session_id"]);
    assert_eq!(c2["original_session_id"], c1["session_id"]);
    assert_eq!(
        (
            c2["caller_number"].as_str(),
            c2["destination_number"].as_str(),
            c2["dst_port"].as_str()
        ),
        ("1001", "3003", "5463")
    );
    // The REFER (202, two NOTIFYs) did not end call 1: Alice hung it up after call 2 was
    // answered.
    answered_by_caller_bye(c1);
    assert!(t(c1, "end_time") > t(c2, "answer_time"));
    answered_by_caller_bye(c2);
    assert!(t(c2, "end_time") > t(c1, "end_time"));
}

// ---- 5.–7. sipp UAC ↔ UAS ----

#[test]
fn early_media_then_answer() {
    let rows = rows("udp_early_media_answer", &[]);
    let r = one(&rows, "the call", |_| true);
    answered_by_caller_bye(r);
    assert_eq!(r["progress_time"], "", "the only 18x is a 183 with SDP");
    let (start, pm, answer) = (
        t(r, "start_time"),
        t(r, "progress_media_time"),
        t(r, "answer_time"),
    );
    assert!(pm.is_some() && pm < answer);
    assert_eq!(n(r, "pdd_ms"), ms_between(start, pm));
    assert!(
        (900..1200).contains(&n(r, "ring_ms").unwrap()),
        "~1 s of early media"
    );
    // Offer PCMU, PCMA, telephone-event; the 183's answer PCMA, telephone-event.
    assert_eq!(r["codec"], "PCMA/8000");
    assert_eq!(r["caller_media"], "127.0.0.1:21700");
    assert_eq!(r["callee_media"], "127.0.0.1:21710");
    assert_eq!(r["asserted_number"], "+4940123456");
    assert_eq!(r["privacy"], "id");
    assert_eq!(r["redirect_number"], "3003");
    assert_eq!(r["callee_user_agent"], "sipcdr-test-uas");
    assert_eq!(r["user_agent"], "sipcdr-test-uac");
}

#[test]
fn hold_and_resume_by_update() {
    let rows = rows("udp_update_hold", &[]);
    let r = one(&rows, "the call", |_| true);
    answered_by_caller_bye(r);
    let holds = hold_events(r);
    assert_eq!(holds.len(), 1, "{}", r["hold_events"]);
    let (on, off) = holds[0];
    // From the UPDATE with a=sendonly to the UPDATE with a=sendrecv, ~1 s apart, both after the
    // answer and before the BYE.
    assert!(t(r, "answer_time").unwrap() < on && off < t(r, "end_time").unwrap());
    assert!((900..1200).contains(&n(r, "hold_ms").unwrap()));
    assert_eq!(r["codec"], "PCMU/8000");
    assert_eq!(r["callee_media"], "127.0.0.1:21810");
}

#[test]
fn prack_reliable_183_is_early_media_of_one_leg() {
    let rows = rows("udp_prack_100rel", &[]);
    let r = one(&rows, "the call (PRACK makes no leg)", |_| true);
    answered_by_caller_bye(r);
    assert_eq!(r["progress_time"], "");
    let (start, pm) = (t(r, "start_time"), t(r, "progress_media_time"));
    assert!(pm.is_some() && pm < t(r, "answer_time"));
    assert_eq!(n(r, "pdd_ms"), ms_between(start, pm));
    assert_eq!(r["codec"], "PCMA/8000", "from the reliable 183's answer");
    assert_eq!(r["caller_media"], "127.0.0.1:21900");
    assert_eq!(r["callee_media"], "127.0.0.1:21910");
}

#[test]
fn b2bua_heuristic_links_the_outgoing_leg_to_the_incoming_one() {
    // Our host is the B2BUA at 127.0.0.2: its outgoing INVITE (topoh's Call-ID) carries the
    // same caller and destination numbers as the incoming one it received just before.
    let rows = rows(
        "udp_b2bua_session_id",
        &["--correlate-heuristic", "--local-net", "127.0.0.2/32"],
    );
    let [near1, far1, near2, far2] = b2bua_legs(&rows);
    assert_eq!(near2["direction"], "inbound");
    assert_eq!(far2["direction"], "outbound");
    assert_eq!(near2["session_id"], session(CALL2));
    assert_eq!(
        far2["session_id"], near2["session_id"],
        "joined by the heuristic"
    );
    // Call 1's legs keep the Session-ID's session: the heuristic never overrides a header.
    assert_eq!(near1["session_id"], session(SID_UUID));
    assert_eq!(far1["session_id"], session(SID_UUID));
    // Without --local-net the flag is refused.
    let pcap = capture("udp_b2bua_session_id.pcap");
    let out = sipcdr(&[
        "-q",
        "-o",
        "-",
        "--correlate-heuristic",
        "-r",
        pcap.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--local-net"));
}

// ---- records, timeouts and skipped causes on the two-party captures ----

#[test]
fn attempt_start_and_stop_records_of_real_calls() {
    let rows = rows(
        "udp_answered_caller_bye",
        &["--records", "attempt,start,stop"],
    );
    let kinds: Vec<&str> = rows.iter().map(|r| r["record_type"].as_str()).collect();
    // Two overlapping calls: both INVITEs (0.5 s apart) and answers come before the first BYE.
    assert_eq!(
        kinds,
        ["attempt", "start", "attempt", "start", "stop", "stop"]
    );
    for r in &rows {
        let same_leg: Vec<&Row> = rows.iter().filter(|x| x["leg_id"] == r["leg_id"]).collect();
        assert_eq!(same_leg.len(), 3, "one attempt, start and stop per leg");
        match r["record_type"].as_str() {
            "attempt" => assert!(r["answer_time"].is_empty() && r["reason"].is_empty()),
            "start" => assert!(!r["answer_time"].is_empty() && r["end_time"].is_empty()),
            _ => assert_eq!(r["reason"], "normal-release"),
        }
    }
    // The stop rows are exactly the default output.
    let stops: Vec<&Row> = rows.iter().filter(|r| r["record_type"] == "stop").collect();
    let default = self::rows("udp_answered_caller_bye", &[]);
    assert_eq!(stops.len(), default.len());
    for (a, b) in stops.iter().zip(&default) {
        assert_eq!(*a, b);
    }
}

#[test]
fn setup_timeout_ends_a_ringing_leg_in_capture_time() {
    // The 200 comes 1.2 s after the INVITE: with --setup-timeout 1s the leg ends 1 s after it.
    let rows = rows("udp_early_media_answer", &["--setup-timeout", "1s"]);
    let r = one(&rows, "leg", |_| true);
    assert_eq!(r["reason"], "timeout");
    assert_eq!(r["hangup_cause"], "RECOVERY_ON_TIMER_EXPIRE");
    assert_eq!(r["disposition"], "timeout");
    assert_eq!(t(r, "end_time"), t(r, "start_time").map(|s| s + 1_000_000));
    assert!(r["answer_time"].is_empty());
    assert!(!r["progress_media_time"].is_empty());
}

#[test]
fn max_duration_ends_an_answered_leg_after_a_quiet_second() {
    // Answered, ACK, then 1.004 s without signalling before the hold re-INVITE: with
    // --max-duration 1s the leg ends 1 s after the ACK; the re-INVITEs and the BYE come too late.
    let rows = rows("udp_reinvite_hold_resume", &["--max-duration", "1s"]);
    let r = one(&rows, "leg", |_| true);
    assert_eq!(r["reason"], "timeout");
    assert_eq!(r["disposition"], "timeout");
    let talk = n(r, "talk_ms").unwrap();
    assert!((1000..1010).contains(&talk), "talk {talk} ms");
    assert_eq!(n(r, "hold_ms"), Some(0));
    // The default keeps the whole call.
    let full = self::rows("udp_reinvite_hold_resume", &[]);
    assert_eq!(full[0]["reason"], "normal-release");
}

#[test]
fn skip_causes_drop_the_busy_call_and_count_it() {
    let pcap = capture("udp_busy_486.pcap");
    let out = sipcdr(&[
        "-o",
        "-",
        "--skip-causes",
        "NO_ANSWER,USER_BUSY",
        "-r",
        pcap.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "header only"
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("skipped          1 stop records"),
        "{summary}"
    );
    assert_eq!(
        rows("udp_busy_486", &["--skip-causes", "NO_ANSWER"]).len(),
        1
    );
}
