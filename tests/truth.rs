#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every capture, ours in `captures/` and the public ones in `../shared/captures/` (see its
//! README), runs through the sipcdr binary without a crash or an error exit, and its CDRs agree
//! with the tshark-decoded truth file (`truth/NAME.csv`, made by `oracle.py`) on call_id,
//! start/answer/end times and the final response code.
//!
//! A custom harness: on a clone without `../shared` it prints that every case was SKIPPED (never
//! that it passed); captures that need a decoder a later issue adds are listed in `KNOWN_GAPS`
//! and reported as skipped with the reason, and the run fails if one of them starts to agree
//! (so the list cannot go stale).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Captures whose calls this version cannot decode yet, with the reason.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Flags a capture needs so that sipcdr's CDRs can be compared with tshark's view, which has no
/// timers, with the reason.
const EXTRA_ARGS: &[(&str, &[&str], &str)] = &[(
    "heplify_sip_ipv6_udp.pcap",
    &["--setup-timeout", "0", "--max-duration", "0"],
    "its clock jumps by years between packets (INVITE in 2012, 100 Trying in 2018, BYE in 2071): \
     with the default 300 s setup timeout and 4 h idle limit the leg rightly ends as `timeout`",
)];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut t = Tally::default();
    // Our own sipp captures, with the tshark truth committed beside them: always present.
    check_dir(&root.join("captures"), &root.join("captures/truth"), &mut t);
    let shared = root.join("../shared/captures");
    if shared.is_dir() {
        check_dir(&shared, &shared.join("truth"), &mut t);
        match direction_of_proxy_legs(&shared.join("sngrep_ipv6frag.pcap")) {
            Ok(()) => {
                println!("ok      --local-net on the two legs of a proxied call");
                t.passed += 1;
            }
            Err(e) => {
                println!("FAILED  --local-net on the two legs of a proxied call: {e}");
                t.failed += 1;
            }
        }
    } else {
        println!(
            "SKIPPED {}: not found: NONE of the public-capture tests ran",
            shared.display()
        );
        t.skipped += 1;
    }
    println!(
        "truth: {} passed, {} failed, {} skipped",
        t.passed, t.failed, t.skipped
    );
    if t.failed > 0 || t.passed == 0 {
        std::process::exit(1);
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn check_dir(dir: &Path, truth_dir: &Path, t: &mut Tally) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
    files.sort();
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let gap = KNOWN_GAPS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, why)| *why);
        match check(f, &truth_dir.join(format!("{name}.csv"))) {
            Ok(n) if gap.is_none() => {
                println!("ok      {name}: {n} calls agree");
                t.passed += 1;
            }
            Ok(_) => {
                println!(
                    "FAILED  {name}: listed as a known gap but now agrees: remove it from KNOWN_GAPS"
                );
                t.failed += 1;
            }
            Err(e) if e.starts_with("crash") => {
                println!("FAILED  {name}: {e}");
                t.failed += 1;
            }
            Err(e) => match gap {
                Some(why) => {
                    println!("skipped {name}: known gap ({why}): {e}");
                    t.skipped += 1;
                }
                None => {
                    println!("FAILED  {name}: {e}");
                    t.failed += 1;
                }
            },
        }
    }
}

/// A proxy capture (caller → proxy → callee, one Call-ID): with the proxy's address as our
/// network, the leg into it is inbound and the leg out of it outbound; they share a session id.
fn direction_of_proxy_legs(pcap: &Path) -> Result<(), String> {
    let proxy = "fd17:625c:f037:2:a00:27ff:feb9:3519";
    let out = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args([
            "-q",
            "-o",
            "-",
            "--local-net",
            &format!("{proxy}/128"),
            "-r",
        ])
        .arg(pcap)
        .output()
        .map_err(|e| e.to_string())?;
    let rows = parse_csv(&String::from_utf8_lossy(&out.stdout));
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["direction"].as_str(),
                r["src_ip"].as_str(),
                r["dst_ip"].as_str(),
            )
        })
        .collect();
    let inbound = got
        .iter()
        .any(|&(d, _, dst)| d == "inbound" && dst == proxy);
    let outbound = got
        .iter()
        .any(|&(d, src, _)| d == "outbound" && src == proxy);
    let one_session = rows.len() == 2 && rows[0]["session_id"] == rows[1]["session_id"];
    // The leg into the proxy is its UAS side, the one it forwards its UAC side.
    let roles = |rows: &[HashMap<String, String>]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r["leg_role"].clone(), r["dst_ip"].clone()))
            .collect()
    };
    let want_roles = |got: &[(String, String)]| {
        got.len() == 2
            && got
                .iter()
                .all(|(role, dst)| (role == "proxy-uas") == (dst == proxy))
            && got.iter().any(|(role, _)| role == "proxy-uac")
    };
    // The same roles without --local-net: the proxy is recognised by the second hop leaving the
    // host the first one arrived at.
    let plain = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args(["-q", "-o", "-", "-r"])
        .arg(pcap)
        .output()
        .map_err(|e| e.to_string())?;
    let plain_rows = parse_csv(&String::from_utf8_lossy(&plain.stdout));
    let (with_net, without_net) = (roles(&rows), roles(&plain_rows));
    if inbound && outbound && one_session && want_roles(&with_net) && want_roles(&without_net) {
        Ok(())
    } else {
        Err(format!("{got:?} roles {with_net:?} / {without_net:?}"))
    }
}

/// Runs sipcdr on `pcap` and compares with the truth file; returns the number of calls checked.
fn check(pcap: &Path, truth: &Path) -> Result<usize, String> {
    let name = pcap
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let extra = EXTRA_ARGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(&[][..], |(_, a, _)| *a);
    let out = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args(["-q", "-o", "-", "--shards", "2"])
        .args(extra)
        .arg("-r")
        .arg(pcap)
        .output()
        .map_err(|e| format!("crash: cannot run sipcdr: {e}"))?;
    if out.status.code() != Some(0) {
        return Err(format!(
            "crash: exit status {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let ours = parse_csv(&String::from_utf8_lossy(&out.stdout));
    let truth = parse_csv(&std::fs::read_to_string(truth).map_err(|e| format!("truth file: {e}"))?);
    // tshark's truth has one row per Call-ID; a proxy capture has two legs with one Call-ID, a
    // fork a canceled branch, a redirect a rejected leg and then an answered one. Fold our legs the
    // way the oracle does: earliest start and answer, every final code, and the earliest end that
    // is not before the answer (a 302 before the answer does not end the call; the CANCEL of a
    // losing fork after it does), or the earliest end of an unanswered call.
    let mut by_call: HashMap<&str, Call> = HashMap::new();
    for r in &ours {
        let c = by_call.entry(&r["call_id"]).or_default();
        let min = |a: Option<i64>, b: Option<i64>| a.into_iter().chain(b).min();
        c.start = min(c.start, rfc3339_us(&r["start_time"]));
        c.answer = min(c.answer, rfc3339_us(&r["answer_time"]));
        c.ends.extend(rfc3339_us(&r["end_time"]));
        c.codes.extend(r["sip_resp_code"].parse::<u16>().ok());
    }
    for c in by_call.values_mut() {
        let from = c.answer.unwrap_or(i64::MIN);
        c.end = c.ends.iter().copied().filter(|&e| e >= from).min();
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for t in &truth {
        let id = t["call_id"].as_str();
        let seen = t["invite_seen"] == "1";
        match (seen, by_call.get(id)) {
            (false, None) => continue,
            (false, Some(_)) => problems.push(format!(
                "{id}: a CDR although the capture has no INVITE for it"
            )),
            (true, None) => problems.push(format!("{id}: no CDR")),
            (true, Some(c)) => {
                checked += 1;
                let mut cmp = |what: &str, truth_v: Option<i64>, ours_v: Option<i64>| {
                    if truth_v != ours_v {
                        problems.push(format!("{id}: {what} tshark {truth_v:?} sipcdr {ours_v:?}"));
                    }
                };
                cmp("start", epoch_us(&t["first_invite_time"]), c.start);
                cmp("answer", epoch_us(&t["answer_time"]), c.answer);
                if !t["end_time"].is_empty() {
                    cmp("end", epoch_us(&t["end_time"]), c.end);
                }
                if let Ok(code) = t["final_code"].parse::<u16>()
                    && !c.codes.contains(&code)
                {
                    problems.push(format!(
                        "{id}: final code tshark {code} sipcdr {:?}",
                        c.codes
                    ));
                }
            }
        }
    }
    let calls_in_truth = truth.iter().filter(|t| t["invite_seen"] == "1").count();
    if by_call.len() != calls_in_truth {
        problems.push(format!(
            "{} Call-IDs with CDRs, tshark has {calls_in_truth}",
            by_call.len()
        ));
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(problems.join("; "))
    }
}

#[derive(Default)]
struct Call {
    start: Option<i64>,
    answer: Option<i64>,
    /// End times of all legs.
    ends: Vec<i64>,
    end: Option<i64>,
    codes: Vec<u16>,
}

fn parse_csv(text: &str) -> Vec<HashMap<String, String>> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().cloned().unwrap_or_default();
    rdr.records()
        .filter_map(Result::ok)
        .map(|r| {
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// `1340495109.792454` → microseconds.
fn epoch_us(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<6}");
    Some(secs.parse::<i64>().ok()? * 1_000_000 + frac.get(..6)?.parse::<i64>().ok()?)
}

/// `2012-06-23T23:45:09.792454Z` → microseconds.
fn rfc3339_us(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss, us) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?);
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + us)
}
