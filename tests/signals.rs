//! Signals during a run: SIGKILL at any moment leaves only whole `.csv` files plus at most one
//! `.part` file whose complete lines are valid CSV; SIGTERM stops reading, and every record
//! processed so far is in renamed files, counted exactly once.

use crate::generated::gen_binary;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// sipcdr reading a generated all-SIP capture from a pipe (no large file on disk), writing small
/// rotating files into `dir`.
fn start(dir: &Path, calls: &str) -> (Child, Child) {
    start_with(dir, calls, &[])
}

/// [`start`], with variables added to sipcdr's environment.
fn start_with(dir: &Path, calls: &str, env: &[(&str, &str)]) -> (Child, Child) {
    let mut gen_ = Command::new(gen_binary())
        .args(["--calls", calls, "--seed", "3", "--rtp-share", "0"])
        .args([
            "--concurrency",
            "3000",
            "--cps",
            "500",
            "--out",
            "/dev/stdout",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = gen_.stdout.take().unwrap();
    let sipcdr = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args([
            "-r",
            "/dev/stdin",
            "--rotate-size",
            "64k",
            "--shards",
            "2",
            "-o",
        ])
        .arg(dir)
        .envs(env.iter().copied())
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (gen_, sipcdr)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

/// Parses `text` as a CDR file: the header, then rows of every column. Returns the row count.
fn check_csv(text: &[u8], what: &Path) -> usize {
    let mut rdr = csv::Reader::from_reader(text);
    assert_eq!(
        rdr.headers().unwrap().len(),
        sipcdr::cdr::COLUMNS.len(),
        "{what:?}"
    );
    assert!(
        rdr.headers().unwrap().iter().next() == Some("leg_id"),
        "{what:?}"
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{what:?}: {e}"));
            assert_eq!(r.len(), sipcdr::cdr::COLUMNS.len(), "{what:?}");
        })
        .count()
}

fn kill(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn sigkill_at_any_moment_leaves_whole_csv_files() {
    // Killed 0, 150 and 400 ms after the first file was finished (waiting for it first keeps the
    // test meaningful on a loaded machine: a kill before any output proves nothing).
    for delay_ms in [0, 150, 400] {
        let dir = tempfile::tempdir().unwrap();
        let (mut gen_, mut sipcdr) = start(dir.path(), "200000");
        for _ in 0..12_000 {
            if !files(dir.path(), ".csv").is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(&sipcdr, "-KILL");
        sipcdr.wait().unwrap();
        let _ = gen_.kill();
        let _ = gen_.wait();
        let done = files(dir.path(), ".csv");
        let parts = files(dir.path(), ".part");
        assert!(parts.len() <= 1, "{parts:?}");
        for f in &done {
            let text = std::fs::read(f).unwrap();
            assert!(text.ends_with(b"\n"), "{f:?} ends mid-line");
            check_csv(&text, f);
        }
        for f in &parts {
            let text = std::fs::read(f).unwrap();
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if whole > 0 {
                check_csv(&text[..whole], f);
            }
        }
        assert!(
            !done.is_empty(),
            "killed after {delay_ms} ms before any file was finished"
        );
    }
}

#[test]
fn sigterm_stops_reading_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gen_, sipcdr) = start(dir.path(), "200000");
    std::thread::sleep(Duration::from_millis(500));
    kill(&sipcdr, "-TERM");
    let out = sipcdr.wait_with_output().unwrap();
    let _ = gen_.kill();
    let _ = gen_.wait();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{summary}");
    assert!(
        summary.contains("interrupted      by a signal"),
        "{summary}"
    );
    assert!(files(dir.path(), ".part").is_empty(), "every file renamed");
    let rows: usize = files(dir.path(), ".csv")
        .iter()
        .map(|f| check_csv(&std::fs::read(f).unwrap(), f))
        .sum();
    let written = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("cdrs written"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap();
    assert_eq!(rows, written, "{summary}");
    assert!(rows > 0 && rows < 200_000, "stopped part-way: {rows}");
}

/// The kernel's word on whether `pid` may have transparent huge pages (`THP_enabled` in its
/// status, since Linux 5.0).
fn thp_enabled(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(|v| v.trim().to_owned())
}

/// sipcdr turns transparent huge pages off for itself (src/main.rs, `no_huge_pages`), unless
/// `MIMALLOC_ALLOW_THP` is set; either way the run goes on and ends cleanly.
#[test]
fn huge_pages_are_off_unless_asked_for() {
    for (env, want) in [(&[][..], "0"), (&[("MIMALLOC_ALLOW_THP", "1")][..], "1")] {
        let dir = tempfile::tempdir().unwrap();
        let (mut gen_, sipcdr) = start_with(dir.path(), "200000", env);
        std::thread::sleep(Duration::from_millis(300));
        let seen = thp_enabled(sipcdr.id());
        kill(&sipcdr, "-TERM");
        let out = sipcdr.wait_with_output().unwrap();
        let _ = gen_.kill();
        let _ = gen_.wait();
        assert_eq!(out.status.code(), Some(3), "{env:?}");
        match seen {
            Some(v) => assert_eq!(v, want, "{env:?}"),
            None => eprintln!(
                "SKIPPED huge_pages_are_off_unless_asked_for: no THP_enabled line in \
                 /proc/PID/status (Linux before 5.0?)"
            ),
        }
    }
}
