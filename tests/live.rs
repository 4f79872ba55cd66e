//! Live capture against real peers: sipcdr captures on `lo` while sipp UACs and UASs on 127.0.0.1
//! run a fixed number of answered, rejected and canceled calls over UDP and TCP; then SIGTERM.
//! The CDRs must match what sipp did: every Call-ID once, the right outcome, no drops, every file
//! renamed, exit within 2 s.
//!
//! A custom harness (like `truth`): without root or sipp it prints SKIPPED, never "passed".

// A live test measures real time: the wall clock is what it checks.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// (scenario in scripts/sipp/, expected reason, expected code)
const SCENARIOS: &[(&str, &str, &str)] = &[
    ("answered_caller_bye", "normal-release", "200"),
    ("busy_486", "call-rejected", "486"),
    ("cancel_after_180", "call-canceled", "487"),
];
const CALLS: usize = 6;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(why) = cannot_run() {
        println!("SKIPPED live capture tests: {why}: NONE of the live tests ran");
        println!("live: 0 passed, 0 failed, 1 skipped");
        return;
    }
    type Case<'a> = (&'a str, Box<dyn Fn() -> Result<String, String> + 'a>);
    let cases: Vec<Case> = vec![
        ("udp", Box::new(|| run(root, "udp", 5700))),
        ("tcp", Box::new(|| run(root, "tcp", 5800))),
        ("--user", Box::new(|| as_another_user(root))),
        ("--hep-listen", Box::new(|| hep_collector(root))),
        ("signals", Box::new(|| signals_under_load(root))),
        ("quiet wire", Box::new(|| timers_on_a_quiet_wire(root))),
    ];
    let mut failed = 0;
    for (name, case) in &cases {
        match case() {
            Ok(msg) => println!("ok      live {name}: {msg}"),
            Err(e) => {
                println!("FAILED  live {name}: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "live: {} passed, {failed} failed, 0 skipped",
        cases.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn cannot_run() -> Option<String> {
    if Command::new("sipp").arg("-v").output().is_err() {
        return Some("sipp is not installed (scripts/setup.sh installs sip-tester)".into());
    }
    if Command::new("sngrep").arg("-V").output().is_err() {
        return Some("sngrep is not installed (scripts/setup.sh --test installs it)".into());
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: cannot capture on lo".into());
    }
    None
}

/// Kills the children it holds when dropped, so a failed test leaves nothing running.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(root: &Path, transport: &str, base: u16) -> Result<String, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let filter: Vec<String> = (0..SCENARIOS.len())
        .flat_map(|i| {
            let p = base + 10 * i as u16;
            [format!("port {p}"), format!("port {}", p + 1)]
        })
        .collect();
    let filter = filter.join(" or ");
    let metrics_addr = format!("127.0.0.1:{}", base + 3000);
    let extra = [
        "--stats-interval",
        "1s",
        "--metrics-listen",
        metrics_addr.as_str(),
    ];
    let (mut procs, rx, mut log) = start_sipcdr(out.path(), &filter, &extra)?;

    let sipp_t = if transport == "udp" { "u1" } else { "t1" };
    let mut sipps = Vec::new();
    for (i, (name, _, _)) in SCENARIOS.iter().enumerate() {
        let uac_port = base + 10 * i as u16;
        let cid = format!("%u-live-{transport}-{name}@sipcdr.test");
        let (uas, uac) = sipp_pair(root, out.path(), name, sipp_t, uac_port, CALLS, &cid)?;
        sipps.push((format!("{name} uas"), uas));
        sipps.push((format!("{name} uac"), uac));
    }
    for (what, mut child) in sipps {
        let status = wait_timeout(&mut child, Duration::from_secs(40))
            .ok_or_else(|| format!("sipp {what} did not finish"))?;
        if !status.success() {
            return Err(format!("sipp {what} failed: {status}"));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    // The Prometheus endpoint counts what the CDRs will say.
    let metrics = scrape(&metrics_addr)?;
    for (_, reason, _) in SCENARIOS {
        let want = format!("sipcdr_legs_ended_total{{reason=\"{reason}\"}} {CALLS}\n");
        if !metrics.contains(&want) {
            return Err(format!("metrics lack '{want}':\n{metrics}"));
        }
    }
    if !metrics.contains("sipcdr_open_legs 0\n")
        || !metrics.contains("sipcdr_channel_drops_total 0\n")
    {
        return Err(format!("metrics:\n{metrics}"));
    }

    let pid = procs.0[0].id().to_string();
    let term = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    let status = wait_timeout(&mut procs.0[0], Duration::from_secs(5))
        .ok_or("sipcdr did not exit within 5 s of SIGTERM")?;
    let took = term.elapsed();
    log.extend(rx.try_iter());
    let summary = log.join("\n");
    if !status.success() {
        return Err(format!("sipcdr exited with {status}:\n{summary}"));
    }
    if took > Duration::from_secs(2) {
        return Err(format!("exit took {took:?} after SIGTERM (limit 2 s)"));
    }
    for want in [
        "0 dropped by the kernel, 0 by the interface, 0 SIP messages dropped",
        "unterminated 0",
        "sipcdr stats: ",
    ] {
        if !summary.contains(want) {
            return Err(format!("summary lacks '{want}':\n{summary}"));
        }
    }

    // Every file renamed; every call once, with its outcome.
    let files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("cdr-"))
        .collect();
    if files
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "part"))
    {
        return Err(format!("a .part file was left: {files:?}"));
    }
    let mut calls: BTreeMap<String, (String, String)> = BTreeMap::new();
    for f in &files {
        let mut rdr = csv::Reader::from_path(f).map_err(|e| e.to_string())?;
        let h = rdr.headers().map_err(|e| e.to_string())?.clone();
        let col = |n: &str| {
            h.iter()
                .position(|x| x == n)
                .ok_or(format!("no column {n}"))
        };
        let (cid, reason, code, tr) = (
            col("call_id")?,
            col("reason")?,
            col("sip_resp_code")?,
            col("transport")?,
        );
        for r in rdr.records() {
            let r = r.map_err(|e| e.to_string())?;
            if &r[tr] != transport {
                return Err(format!("transport {} for {}", &r[tr], &r[cid]));
            }
            let prev = calls.insert(
                r[cid].to_owned(),
                (r[reason].to_owned(), r[code].to_owned()),
            );
            if prev.is_some() {
                return Err(format!("{} written twice", &r[cid]));
            }
        }
    }
    for (name, reason, code) in SCENARIOS {
        for n in 1..=CALLS {
            let cid = format!("{n}-live-{transport}-{name}@sipcdr.test");
            match calls.remove(&cid) {
                Some((r, c)) if r == *reason && c == *code => {}
                Some(got) => return Err(format!("{cid}: {got:?}, expected ({reason}, {code})")),
                None => return Err(format!("{cid}: no CDR\n{summary}")),
            }
        }
    }
    if !calls.is_empty() {
        return Err(format!("unexpected CDRs: {calls:?}"));
    }
    Ok(format!(
        "{} calls in {} scenarios, exit {took:.0?} after SIGTERM",
        CALLS * SCENARIOS.len(),
        SCENARIOS.len()
    ))
}

/// Starts `sipcdr -i lo` writing into `dir`, and waits until it listens. Its stderr lines arrive
/// on the returned channel; the lines read so far are returned too.
fn start_sipcdr(
    dir: &Path,
    filter: &str,
    extra: &[&str],
) -> Result<(Procs, mpsc::Receiver<String>, Vec<String>), String> {
    let mut sipcdr = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args(extra)
        .args(["-i", "lo", "--rotate-interval", "0", "-o"])
        .arg(dir)
        .arg(filter)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start sipcdr: {e}"))?;
    let stderr = sipcdr.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let procs = Procs(vec![sipcdr]);
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.iter().any(|l: &String| l.contains("listening on")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => log.push(l),
            Err(_) => return Err(format!("sipcdr did not start listening: {log:?}")),
        }
    }

    Ok((procs, rx, log))
}

/// SIGHUP while calls run rotates the file; SIGTERM while calls run ends the open legs as
/// unterminated and leaves only renamed files whose rows add up to the summary's count.
fn signals_under_load(root: &Path) -> Result<String, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (uac_port, uas_port) = (5900u16, 5901u16);
    let filter = format!("port {uac_port} or port {uas_port}");
    let (mut procs, rx, mut log) = start_sipcdr(out.path(), &filter, &[])?;
    let cid = "%u-live-signals@sipcdr.test";
    let (uas, uac) = sipp_pair(
        root,
        out.path(),
        "answered_caller_bye",
        "u1",
        uac_port,
        40,
        cid,
    )?;
    procs.0.extend([uas, uac]);
    let pid = procs.0[0].id().to_string();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .map_err(|e| e.to_string())
    };
    // SIGHUP once the first file is being written; it must be renamed soon after.
    let exists = |ext: &str| {
        std::fs::read_dir(out.path()).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(ext))
        })
    };
    let poll = |what: &dyn Fn() -> bool| {
        let until = Instant::now() + Duration::from_secs(10);
        while !what() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        what()
    };
    if !poll(&|| exists(".part")) {
        return Err("no CDR file was started".into());
    }
    signal("-HUP")?;
    let renamed_after_hup = poll(&|| exists(".csv"));
    std::thread::sleep(Duration::from_millis(300));
    signal("-TERM")?;
    let status = wait_timeout(&mut procs.0[0], Duration::from_secs(5))
        .ok_or("sipcdr did not exit within 5 s of SIGTERM")?;
    log.extend(rx.try_iter());
    let summary = log.join("\n");
    if !status.success() {
        return Err(format!("sipcdr exited with {status}:\n{summary}"));
    }
    if !renamed_after_hup {
        return Err(format!("SIGHUP did not close the file:\n{summary}"));
    }
    let files = csv_files(out.path())?;
    if files.len() < 2 {
        return Err(format!(
            "expected a file before and after SIGHUP: {files:?}"
        ));
    }
    let mut rows = 0;
    let mut unterminated = 0;
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let mut rdr = csv::Reader::from_path(f).map_err(|e| e.to_string())?;
        let h = rdr.headers().map_err(|e| e.to_string())?.clone();
        let col = |n: &str| {
            h.iter()
                .position(|x| x == n)
                .ok_or(format!("no column {n}"))
        };
        let (cid, reason) = (col("call_id")?, col("reason")?);
        for r in rdr.records() {
            let r = r.map_err(|e| format!("{f:?}: {e}"))?;
            rows += 1;
            unterminated += usize::from(&r[reason] == "unterminated");
            if !seen.insert(r[cid].to_owned()) {
                return Err(format!("{} written twice", &r[cid]));
            }
        }
    }
    let written = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("cdrs written"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or(format!("no count in summary:\n{summary}"))?;
    if rows != written || unterminated == 0 || rows == unterminated {
        return Err(format!(
            "{rows} rows ({unterminated} unterminated), summary says {written}:\n{summary}"
        ));
    }
    Ok(format!(
        "{} files after SIGHUP and SIGTERM mid-load, {rows} CDRs ({unterminated} unterminated), each once",
        files.len()
    ))
}

/// `-Z nobody`: after opening `lo` the process runs as nobody, and the CDR files it writes into
/// a directory of nobody's are nobody's.
fn as_another_user(root: &Path) -> Result<String, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let dir = tmp.path().join("cdr");
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    let chown = Command::new("chown")
        .arg("nobody")
        .arg(&dir)
        .status()
        .map_err(|e| e.to_string())?;
    if !chown.success() {
        return Err("chown nobody failed".into());
    }
    let (uac_port, uas_port) = (5950u16, 5951u16);
    let filter = format!("port {uac_port} or port {uas_port}");
    let (mut procs, rx, mut log) = start_sipcdr(&dir, &filter, &["-Z", "nobody"])?;
    if !log.iter().any(|l| l.contains("running as nobody")) {
        return Err(format!("no privilege drop reported: {log:?}"));
    }
    let cid = "%u-live-user@sipcdr.test";
    let (mut uas, mut uac) = sipp_pair(root, tmp.path(), "busy_486", "u1", uac_port, 2, cid)?;
    for (what, child) in [("uac", &mut uac), ("uas", &mut uas)] {
        let st = wait_timeout(child, Duration::from_secs(30)).ok_or(format!("sipp {what} hung"))?;
        if !st.success() {
            return Err(format!("sipp {what}: {st}"));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = procs.0[0].id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    let status = wait_timeout(&mut procs.0[0], Duration::from_secs(5)).ok_or("no exit")?;
    log.extend(rx.try_iter());
    if !status.success() {
        return Err(format!("exit {status}: {log:?}"));
    }
    let files = csv_files(&dir)?;
    let mut rows = 0;
    for f in &files {
        let uid = std::fs::metadata(f).map_err(|e| e.to_string())?.uid();
        if uid != 65534 {
            return Err(format!("{f:?} belongs to uid {uid}, not nobody"));
        }
        rows += csv::Reader::from_path(f)
            .map_err(|e| e.to_string())?
            .records()
            .count();
    }
    if rows != 2 {
        return Err(format!("{rows} CDRs, expected 2: {log:?}"));
    }
    Ok("2 CDRs written by nobody after the privilege drop".into())
}

/// The HEP collector fed by a real agent: sngrep sends a sipp capture as HEP v2 and as HEP v3 over
/// UDP, and the HEP3 packets sngrep recorded (captures/hep/) are replayed over one TCP
/// connection in uneven writes. Each run's CDRs must be byte-identical to the capture's golden
/// file: HEP's addresses, transport and times, not the collector's.
fn hep_collector(root: &Path) -> Result<String, String> {
    use std::io::Write;
    let golden = std::fs::read_to_string(root.join("captures/udp_answered_caller_bye.csv"))
        .map_err(|e| e.to_string())?;
    let mut runs = Vec::new();
    for (i, how) in ["udp v2", "udp v3", "tcp v3"].iter().enumerate() {
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = work.path().join("cdr");
        let addr = format!("127.0.0.1:{}", 19060 + i);
        let start = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
            .args(["--hep-listen", &addr, "--rotate-interval", "0", "-o"])
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut procs = Procs(vec![start]);
        let stderr = procs.0[0].stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "sipcdr did not start")?;
        if !first.contains("listening on HEP") {
            return Err(format!("{how}: {first}"));
        }
        if how.starts_with("udp") {
            std::fs::write(
                work.path().join(".sngreprc"),
                format!("set eep.send.version {}\n", &how[5..]),
            )
            .map_err(|e| e.to_string())?;
            let st = Command::new("timeout")
                .args(["30", "sngrep", "-N", "-q", "-I"])
                .arg(root.join("captures/udp_answered_caller_bye.pcap"))
                .args(["-H", &format!("udp:{addr}")])
                .env("HOME", work.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("{how}: sngrep failed: {st}"));
            }
        } else {
            let pcap = std::fs::read(root.join("captures/hep/hep3_udp_answered_caller_bye.pcap"))
                .map_err(|e| e.to_string())?;
            let mut stream = Vec::new();
            for p in pcap_udp_payloads(&pcap) {
                stream.extend_from_slice(p);
            }
            let mut conn =
                std::net::TcpStream::connect(&addr).map_err(|e| format!("{how}: {e}"))?;
            let chunks: Vec<&[u8]> = stream.chunks(97).collect();
            for (n, chunk) in chunks.iter().enumerate() {
                conn.write_all(chunk).map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(2));
                if n == chunks.len() / 2 {
                    // A pause mid-call: quiet-wire ticks come while calls are open. The agent's
                    // times are days behind the wall clock; ticks must follow capture time, or
                    // the calls time out here (before the fix, ~1 run in 15 failed by chance).
                    std::thread::sleep(Duration::from_millis(1500));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let pid = procs.0[0].id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| e.to_string())?;
        let st = wait_timeout(&mut procs.0[0], Duration::from_secs(5)).ok_or("no exit")?;
        let log: Vec<String> = rx.try_iter().collect();
        if !st.success() {
            return Err(format!("{how}: exit {st}: {log:?}"));
        }
        let mut got = String::new();
        for f in csv_files(&out)? {
            got.push_str(&std::fs::read_to_string(f).map_err(|e| e.to_string())?);
        }
        if got != golden {
            return Err(format!(
                "{how}: CDRs differ from the golden file:\n{got}\n{log:?}"
            ));
        }
        runs.push(*how);
    }
    Ok(format!("{} runs gave the golden CDRs", runs.join(", ")))
}

/// The UDP payloads of a little-endian µs pcap of Ethernet/IPv4/UDP frames.
fn pcap_udp_payloads(b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut off = 24;
    while let Some(h) = b.get(off..off + 16) {
        let caplen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let Some(frame) = b.get(off + 16..off + 16 + caplen) else {
            break;
        };
        let ihl = usize::from(frame.get(14).map_or(5, |v| v & 0x0F)) * 4;
        if let Some(p) = frame.get(14 + ihl + 8..) {
            out.push(p);
        }
        off += 16 + caplen;
    }
    out
}

/// Session timers fire on wall-clock ticks while no packet arrives: sipp's session-timer
/// scenario (Session-Expires: 2, then 4 s of silence, no BYE) must show a `session-expired` leg
/// in the metrics before any later packet or the end of the capture.
fn timers_on_a_quiet_wire(root: &Path) -> Result<String, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (uac_port, uas_port) = (5960u16, 5961u16);
    let filter = format!("port {uac_port} or port {uas_port}");
    let metrics_addr = "127.0.0.1:19190";
    let extra = ["--metrics-listen", metrics_addr];
    let (mut procs, rx, mut log) = start_sipcdr(&work.path().join("cdr"), &filter, &extra)?;
    let cid = "%u-live-timer@sipcdr.test";
    let (uas, mut uac) = sipp_pair(
        root,
        work.path(),
        "session_timer_no_bye",
        "u1",
        uac_port,
        1,
        cid,
    )?;
    procs.0.push(uas);
    // The call is answered within ~0.3 s; the timer expires 2 s later, in the silence.
    std::thread::sleep(Duration::from_millis(3500));
    let metrics = scrape(metrics_addr)?;
    let expired = metrics.contains("sipcdr_legs_ended_total{reason=\"session-expired\"} 1\n");
    let _ = uac.kill();
    let _ = uac.wait();
    let pid = procs.0[0].id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    wait_timeout(&mut procs.0[0], Duration::from_secs(5)).ok_or("no exit")?;
    log.extend(rx.try_iter());
    if !expired {
        return Err(format!(
            "no session-expired leg while the wire was quiet:\n{metrics}\n{log:?}"
        ));
    }
    Ok("the session timer fired 2 s into a silent wire".into())
}

/// Finished CDR files in `dir`; fails if a `.part` file is left.
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("cdr-"))
        .collect();
    Ok(all
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect())
}

/// `GET /metrics` from the endpoint at `addr`.
fn scrape(addr: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    if !text.starts_with("HTTP/1.1 200 OK") {
        return Err(format!("metrics answer: {text}"));
    }
    Ok(text)
}

/// A sipp UAS on `uac_port + 1`, then (once it listens) a sipp UAC on `uac_port` calling it:
/// `calls` calls of `scripts/sipp/SCENARIO_{uas,uac}.xml` over `t` (`u1` or `t1`) at 10 calls/s,
/// Call-IDs from `cid` (sipp's `-cid_str`), working directory `dir`. Returns (UAS, UAC).
fn sipp_pair(
    root: &Path,
    dir: &Path,
    scenario: &str,
    t: &str,
    uac_port: u16,
    calls: usize,
    cid: &str,
) -> Result<(Child, Child), String> {
    let scen = root.join("scripts/sipp");
    let uas_port = uac_port + 1;
    let sipp = |role: &str, port: u16| {
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scen.join(format!("{scenario}_{role}.xml")))
            .args(["-i", "127.0.0.1", "-t", t, "-nostdin", "-nd"])
            .args(["-timeout", "30s", "-timeout_error"])
            .args(["-p", &port.to_string()])
            .args(["-mp", &(30000 + (port - 5000) * 10).to_string()])
            .args(["-m", &calls.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let uas = spawn(&mut sipp("uas", uas_port))?;
    std::thread::sleep(Duration::from_millis(300));
    let mut uac = sipp("uac", uac_port);
    uac.arg(format!("127.0.0.1:{uas_port}"))
        .args(["-r", "10", "-cid_str", cid]);
    Ok((uas, spawn(&mut uac)?))
}

fn spawn(cmd: &mut Command) -> Result<Child, String> {
    cmd.spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
