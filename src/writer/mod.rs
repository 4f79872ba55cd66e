//! Stage 5: the sink. Merges the shards' rows into one order that depends only on the input
//! (never on shard count or thread timing), then appends them to rotating CSV files or stdout.

mod rotate;

use crate::cdr::{Encoder, EndReason, Row};
use crate::metrics::Metrics;
use crate::tracker::RowBatch;
use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rotate::RotatingDir;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Output {
    Stdout,
    Dir(PathBuf),
}

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub output: Output,
    /// Seconds per file, by record time (`None`: no time rotation).
    pub rotate_interval: Option<u64>,
    /// Bytes after which a file is closed and the next one opened.
    pub rotate_size: Option<u64>,
    /// File name prefix, before the UTC time stamp.
    pub prefix: String,
    /// Compress each file (rotation sizes count uncompressed bytes).
    pub compress: Option<Compression>,
    /// Live mode: close the current file when the wall clock passes the end of its interval,
    /// even if no later record arrives (offline, only record times decide); and when the disk is
    /// full, hold rows in memory and retry (offline, a full disk ends the run with an error).
    pub wall_clock: bool,
}

/// How output files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Zstandard, one frame per file (`NAME.csv.zst`; read with `zstdcat`).
    Zstd,
}

#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows: u64,
    /// Legs the correlation stage linked.
    pub correlated: crate::correlate::CorrelatorStats,
    pub by_reason: [u64; EndReason::ALL.len()],
    pub files: Vec<PathBuf>,
    /// Live mode: times the output filled up (each ended when space returned).
    pub disk_full: u64,
    /// Live mode: rows dropped because the disk stayed full and the hold was at its cap.
    pub lost: u64,
}

/// Reorders rows from all shards: a row is released once every shard has said it will send
/// nothing with a smaller sequence number.
pub struct Merge {
    queues: Vec<VecDeque<Row>>,
    upto: Vec<u64>,
}

impl Merge {
    pub fn new(shards: usize) -> Merge {
        Merge {
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            upto: vec![0; shards],
        }
    }

    /// Takes a batch; returns the rows now safe to write, in output order.
    pub fn push(&mut self, b: RowBatch) -> Vec<Row> {
        let Some(q) = self.queues.get_mut(b.shard) else {
            return Vec::new();
        };
        q.extend(b.rows);
        if let Some(upto) = self.upto.get_mut(b.shard) {
            *upto = (*upto).max(b.upto);
        }
        let watermark = self.upto.iter().copied().min().unwrap_or(0);
        self.release(|r| r.seq <= watermark)
    }

    /// Everything still held, in output order (when all shards are done).
    pub fn drain(&mut self) -> Vec<Row> {
        self.release(|_| true)
    }

    fn release(&mut self, ready: impl Fn(&Row) -> bool) -> Vec<Row> {
        let mut out = Vec::new();
        for q in &mut self.queues {
            while q.front().is_some_and(&ready) {
                out.extend(q.pop_front());
            }
        }
        out.sort_unstable_by_key(Row::key);
        out
    }
}

enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    Dir(Box<RotatingDir>),
}

/// How often the writer looks at the clock and at a rotation request while no row arrives.
const POLL: Duration = Duration::from_millis(200);
/// Live mode, disk full: how often writing is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Live mode, disk full: most bytes of rows held in memory (about 200,000 CDRs); rows past it
/// are dropped and counted.
const HOLD_BYTES: usize = 64 << 20;

/// True when `e` comes from a full disk or an exhausted quota.
fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    })
}

/// Live mode's rows waiting for disk space, in output order.
#[derive(Default)]
struct Hold {
    rows: VecDeque<Row>,
    bytes: usize,
    /// When writing was last tried.
    tried: Option<Instant>,
}

/// Writes rows, counts them, and in live mode rides out a full disk.
struct Out {
    sink: Sink,
    live: bool,
    hold: Hold,
    /// Live: the output is full (reported once per episode, until a write succeeds again).
    full: bool,
    stats: WriterStats,
    metrics: Arc<Metrics>,
}

impl Out {
    /// Writes `rows` in order, or (live, disk full) holds them.
    fn write(&mut self, rows: Vec<Row>) -> Result<()> {
        for r in rows {
            if !self.hold.rows.is_empty() {
                self.keep(r);
                continue;
            }
            match self.put(&r) {
                Ok(()) => {}
                Err(e) if self.live && is_disk_full(&e) => {
                    self.now_full(&e);
                    #[allow(clippy::disallowed_methods)] // retry pacing only; rows keep their times
                    let now = Instant::now();
                    self.hold.tried = Some(now);
                    self.keep(r);
                }
                Err(e) => return Err(e),
            }
        }
        self.publish();
        Ok(())
    }

    fn put(&mut self, r: &Row) -> Result<()> {
        match &mut self.sink {
            Sink::Stdout(o) => o
                .write_all(&r.line)
                .context("cannot write to standard output")?,
            Sink::Dir(d) => d.write(r.time, &r.line)?,
        }
        self.stats.rows += 1;
        if let Some(i) = EndReason::ALL.iter().position(|x| Some(*x) == r.reason)
            && let Some(n) = self.stats.by_reason.get_mut(i)
        {
            *n += 1;
        }
        Ok(())
    }

    fn keep(&mut self, r: Row) {
        if self.hold.bytes + r.line.len() > HOLD_BYTES {
            self.stats.lost += 1;
            return;
        }
        self.hold.bytes += r.line.len();
        self.hold.rows.push_back(r);
    }

    /// Live, disk full: once per [`RETRY`] (or at once when `now`), writes what is held, in
    /// order, until it is all out or the disk is full again.
    fn retry(&mut self, now: bool) -> Result<()> {
        if self.hold.rows.is_empty() {
            return Ok(());
        }
        #[allow(clippy::disallowed_methods)] // retry pacing only; rows keep their times
        let t = Instant::now();
        if !now
            && self
                .hold
                .tried
                .is_some_and(|at| t.duration_since(at) < RETRY)
        {
            return Ok(());
        }
        self.hold.tried = Some(t);
        let mut written = 0;
        while let Some(r) = self.hold.rows.pop_front() {
            match self.put(&r) {
                Ok(()) => {
                    self.hold.bytes -= r.line.len();
                    written += 1;
                }
                Err(e) => {
                    self.hold.rows.push_front(r);
                    if is_disk_full(&e) {
                        self.publish();
                        return Ok(());
                    }
                    return Err(e);
                }
            }
        }
        self.full = false;
        eprintln!(
            "sipcdr: output writable again: {written} held CDRs written, {} lost while full",
            self.stats.lost
        );
        self.publish();
        Ok(())
    }

    /// Reports a full output once per episode.
    fn now_full(&mut self, e: &anyhow::Error) {
        if !self.full {
            self.full = true;
            self.stats.disk_full += 1;
            eprintln!(
                "sipcdr: {e:#}; holding CDRs in memory (up to {} MiB) and retrying every {} s",
                HOLD_BYTES >> 20,
                RETRY.as_secs()
            );
        }
    }

    /// A close or rotation; in live mode a full disk only postpones it to the next retry.
    fn soft(&mut self, r: Result<()>) -> Result<()> {
        match r {
            Err(e) if self.live && is_disk_full(&e) => {
                self.now_full(&e);
                Ok(())
            }
            Ok(()) if self.hold.rows.is_empty() => {
                self.full = false;
                Ok(())
            }
            r => r,
        }
    }

    fn publish(&self) {
        let m = &self.metrics;
        m.cdrs_written.store(self.stats.rows, Ordering::Relaxed);
        m.cdrs_held
            .store(self.hold.rows.len() as u64, Ordering::Relaxed);
        m.cdrs_lost.store(self.stats.lost, Ordering::Relaxed);
    }
}

/// The writer thread's loop. `rotate` set (SIGHUP) closes the current file now.
pub fn run(
    cfg: WriterConfig,
    shards: usize,
    rx: Receiver<RowBatch>,
    rotate: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> Result<WriterStats> {
    let header = Encoder::default().header();
    let sink = match &cfg.output {
        Output::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            out.write_all(&header)
                .context("cannot write to standard output")?;
            Sink::Stdout(out)
        }
        Output::Dir(d) => Sink::Dir(Box::new(RotatingDir::new(d, &cfg, header)?)),
    };
    let mut out = Out {
        sink,
        live: cfg.wall_clock,
        hold: Hold::default(),
        full: false,
        stats: WriterStats::default(),
        metrics,
    };
    let mut merge = Merge::new(shards);
    let mut correlate = crate::correlate::Correlator::default();
    loop {
        match rx.recv_timeout(POLL) {
            Ok(batch) => {
                let rows = correlate.apply(merge.push(batch));
                out.write(rows)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        out.retry(false)?;
        if let Sink::Dir(d) = &mut out.sink {
            let r = if rotate.swap(false, Ordering::Relaxed) {
                d.close()
            } else if cfg.wall_clock {
                d.close_if_past(crate::time::wall_clock())
            } else {
                Ok(())
            };
            out.soft(r)?;
        }
    }
    out.write(correlate.apply(merge.drain()))?;
    out.retry(true)?;
    if !out.hold.rows.is_empty() {
        anyhow::bail!(
            "the output is still full at exit: {} CDRs held in memory could not be written ({} lost before)",
            out.hold.rows.len(),
            out.stats.lost
        );
    }
    let mut stats = out.stats;
    stats.correlated = correlate.stats;
    match out.sink {
        Sink::Stdout(mut o) => o.flush().context("cannot write to standard output")?,
        Sink::Dir(mut d) => {
            d.close()?;
            stats.files = d.closed;
        }
    }
    Ok(stats)
}
