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
use std::time::Duration;

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
    /// even if no later record arrives (offline, only record times decide).
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
        self.upto[b.shard] = self.upto[b.shard].max(b.upto);
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

/// The writer thread's loop. `rotate` set (SIGHUP) closes the current file now.
pub fn run(
    cfg: WriterConfig,
    shards: usize,
    rx: Receiver<RowBatch>,
    rotate: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> Result<WriterStats> {
    let header = Encoder::default().header();
    let mut sink = match &cfg.output {
        Output::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            out.write_all(&header)
                .context("cannot write to standard output")?;
            Sink::Stdout(out)
        }
        Output::Dir(d) => Sink::Dir(Box::new(RotatingDir::new(d, &cfg, header)?)),
    };
    let mut stats = WriterStats::default();
    let mut merge = Merge::new(shards);
    let mut correlate = crate::correlate::Correlator::default();
    let mut write = |rows: Vec<Row>, sink: &mut Sink| -> Result<()> {
        for r in rows {
            match sink {
                Sink::Stdout(o) => o
                    .write_all(&r.line)
                    .context("cannot write to standard output")?,
                Sink::Dir(d) => d.write(r.time, &r.line)?,
            }
            stats.rows += 1;
            if let Some(i) = EndReason::ALL.iter().position(|x| Some(*x) == r.reason) {
                stats.by_reason[i] += 1;
            }
        }
        metrics.cdrs_written.store(stats.rows, Ordering::Relaxed);
        Ok(())
    };
    loop {
        match rx.recv_timeout(POLL) {
            Ok(batch) => {
                let rows = correlate.apply(merge.push(batch));
                write(rows, &mut sink)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Sink::Dir(d) = &mut sink {
            if rotate.swap(false, Ordering::Relaxed) {
                d.close()?;
            } else if cfg.wall_clock {
                d.close_if_past(crate::time::wall_clock())?;
            }
        }
    }
    write(correlate.apply(merge.drain()), &mut sink)?;
    stats.correlated = correlate.stats;
    match sink {
        Sink::Stdout(mut o) => o.flush().context("cannot write to standard output")?,
        Sink::Dir(mut d) => {
            d.close()?;
            stats.files = d.closed;
        }
    }
    Ok(stats)
}
