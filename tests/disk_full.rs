//! A full disk in live mode: the writer holds CDRs in memory, retries, and once space returns
//! writes every one of them exactly once, in order, in whole `.csv` files. Offline, the same full
//! disk is an error. Runs the writer stage on a small tmpfs (needs root to mount it). And an
//! output directory that cannot be written (a read-only mount: even root cannot write there).

use sipcdr::cdr::{EndReason, Row};
use sipcdr::metrics::Metrics;
use sipcdr::time::Timestamp;
use sipcdr::tracker::RowBatch;
use sipcdr::writer::{self, Output, WriterConfig, WriterStats};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop; `None` when not root.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        Tmpfs::mount_with(&format!("size={size}"))
    }

    fn mount_with(options: &str) -> Option<Tmpfs> {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small");
        fs::create_dir(&path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs");
        Some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// Fills the file system holding `path` to the last byte.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let block = vec![b'x'; 4096];
    while f.write_all(&block).is_ok() {}
    while f.write_all(b"x").is_ok() {}
}

fn row(i: u64) -> Row {
    Row {
        seq: i,
        time: Timestamp::from_secs(1_700_000_000 + i as i64),
        leg_id: uuid::Uuid::from_u128(u128::from(i)),
        record: sipcdr::cdr::RecordType::Stop,
        reason: Some(EndReason::NormalRelease),
        line: format!("row-{i:05},{}\n", "c".repeat(60)).into_bytes(),
        note: None,
    }
}

fn batch(rows: std::ops::Range<u64>) -> RowBatch {
    RowBatch {
        shard: 0,
        upto: rows.end - 1,
        rows: rows.map(row).collect(),
    }
}

fn start(
    out: &Path,
    live: bool,
) -> (
    crossbeam_channel::Sender<RowBatch>,
    Arc<Metrics>,
    std::thread::JoinHandle<anyhow::Result<WriterStats>>,
) {
    let cfg = WriterConfig {
        output: Output::Dir(out.to_owned()),
        rotate_interval: None,
        rotate_size: Some(8 * 1024),
        prefix: "cdr-".into(),
        compress: None,
        wall_clock: live,
    };
    let (tx, rx) = crossbeam_channel::bounded(4);
    let metrics = Metrics::new(1);
    let m = Arc::clone(&metrics);
    let h =
        std::thread::spawn(move || writer::run(cfg, 1, rx, Arc::new(AtomicBool::new(false)), m));
    (tx, metrics, h)
}

#[allow(clippy::disallowed_methods)] // a test's own time limit
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rows of every file in `dir` (each must be a whole `.csv` that starts with the header).
fn rows_in(dir: &Path) -> Vec<String> {
    let header = String::from_utf8(sipcdr::cdr::Encoder::default().header()).unwrap();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "filler")
        .collect();
    files.sort();
    let mut rows = vec![];
    for f in files {
        assert_eq!(f.extension().unwrap(), "csv", "{f:?} left unfinished");
        let text = fs::read_to_string(&f).unwrap();
        let body = text
            .strip_prefix(&header)
            .expect("file starts with the header");
        assert!(body.ends_with('\n'), "{f:?} ends mid-row");
        rows.extend(body.lines().map(str::to_owned));
    }
    rows
}

const N: u64 = 3000;

#[test]
fn live_writer_holds_cdrs_while_the_disk_is_full_and_writes_each_once_when_space_returns() {
    let Some(fs_) = Tmpfs::mount("1m") else {
        println!("SKIPPED disk_full live: not root, cannot mount a tmpfs");
        return;
    };
    let out = fs_.path.join("cdr");
    fs::create_dir(&out).unwrap();
    let filler = out.join("filler");
    fill(&filler);
    let (tx, metrics, h) = start(&out, true);
    tx.send(batch(1..N / 2)).unwrap();
    wait_for("rows held", || {
        metrics.cdrs_held.load(Ordering::Relaxed) > 0
    });
    // More rows arrive while the disk is still full.
    tx.send(batch(N / 2..N * 3 / 4)).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // at least one failed retry
    assert!(metrics.cdrs_held.load(Ordering::Relaxed) > 0);
    fs::remove_file(&filler).unwrap();
    wait_for("held rows written", || {
        metrics.cdrs_held.load(Ordering::Relaxed) == 0
    });
    tx.send(batch(N * 3 / 4..N + 1)).unwrap();
    drop(tx);
    let stats = h.join().unwrap().unwrap();
    assert!(stats.disk_full >= 1, "{stats:?}");
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.rows, N);
    let want: Vec<String> = (1..=N)
        .map(|i| {
            String::from_utf8(row(i).line)
                .unwrap()
                .trim_end()
                .to_owned()
        })
        .collect();
    assert_eq!(rows_in(&out), want, "every CDR exactly once, in order");
}

#[test]
fn offline_writer_stops_with_a_clear_error_when_the_disk_is_full() {
    let Some(fs_) = Tmpfs::mount("64k") else {
        println!("SKIPPED disk_full offline: not root, cannot mount a tmpfs");
        return;
    };
    let out = fs_.path.join("cdr");
    fs::create_dir(&out).unwrap();
    fill(&out.join("filler"));
    let (tx, _metrics, h) = start(&out, false);
    let _ = tx.send(batch(1..N));
    drop(tx);
    let err = h.join().unwrap().unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot write") && text.contains("No space left on device"),
        "{text}"
    );
}

/// `-o` on a read-only file system, as a directory to create and as an existing directory: exit
/// status 1 and an error naming the path and the reason; nothing is left behind.
#[test]
fn unwritable_output_directory_is_a_clear_error() {
    let Some(fs_) = Tmpfs::mount_with("size=64k,ro") else {
        println!("SKIPPED unwritable output: not root, cannot mount a tmpfs");
        return;
    };
    let pcap = crate::capture("udp_busy_486.pcap");
    let sub = fs_.path.join("cdr");
    for (out, want) in [
        (
            &sub,
            format!("cannot create output directory {}", sub.display()),
        ),
        (&fs_.path, format!("cannot create {}", fs_.path.display())),
    ] {
        let res = crate::sipcdr(&[
            "-q",
            "-r",
            pcap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&want) && err.contains("Read-only file system"),
            "{err}"
        );
    }
    assert_eq!(fs::read_dir(&fs_.path).unwrap().count(), 0);
}
