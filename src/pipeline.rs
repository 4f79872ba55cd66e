//! The only place that spawns threads or creates channels.
//!
//! ```text
//!  files ─► [capture] ─Batch─► [track-0] ─RowBatch─┐
//!               │     ─Batch─► [track-1] ─RowBatch─┼─► [write] ─► cdr-*.csv
//!               └──── …  (one bounded channel per shard; one shared channel to the writer)
//! ```
//! Channels are bounded and carry batches; in file mode every send blocks, so nothing is dropped
//! and a replay is repeatable. Shutdown runs downstream: the capture returns and drops its
//! senders, each shard writes its open legs and drops its sender, the writer flushes and renames.

use crate::capture::route::{Batch, Router};
use crate::capture::{self, CaptureStats};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::tracker::{RowBatch, Tracker, TrackerStats};
use crate::writer::{self, WriterStats};
use anyhow::{Context, Result, anyhow};
use crossbeam_channel::bounded;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Batches waiting for each shard, live or reading files: 16 × up to 256 KiB, about 4 ms of a
/// tracker's work. Live, it absorbs a burst while a shard is busy (past it, the router drops and
/// counts). Reading files, every send blocks, and the queue must cover the time the capture
/// thread is off its core: with 4 threads on 2 cores the scheduler's slices are milliseconds
/// long, and a shallower queue leaves the trackers starved and a core idle. On the 1 GB all-SIP
/// file, medians of 6 alternating runs: 4 batches 0.875 s, 16 0.785 s (~4 x fewer context
/// switches; peak RSS +5 MiB); in another set, writer queues 4 times as deep: 4 0.985 s,
/// 16 0.825 s, 64 0.89 s. 64 KiB or 128 KiB batches in queues of the same bytes were no faster.
const SHARD_QUEUE: usize = 16;
/// Row batches waiting for the writer, live.
const WRITER_QUEUE: usize = 64;
/// Reading files, every send blocks until there is room; 16 or 64 row batches made no
/// difference in wall time, and fewer keep fewer batches alive.
const FILE_WRITER_QUEUE: usize = 16;

/// What a run did, merged from every thread.
#[derive(Debug)]
pub struct RunSummary {
    pub capture: CaptureStats,
    pub tracker: TrackerStats,
    pub writer: WriterStats,
    /// `--realtime`: the pipeline threads that asked for real-time scheduling, and got it.
    pub realtime: Option<(usize, usize)>,
    pub elapsed: Duration,
}

/// `--realtime`: each pipeline thread puts itself under SCHED_FIFO at the lowest real-time
/// priority, the same for all, so that each runs until it waits for another stage and the
/// kernel gives a waiting one any idle CPU at once. On the 1 GB all-SIP file under normal
/// scheduling the CPUs were idle 5.5-6.7 % of the run (perf sched) while threads waited,
/// runnable, on the other CPU; see README, design decisions, for the measurements.
#[derive(Debug, Default)]
struct Realtime {
    /// `--realtime` was given; otherwise [`Realtime::enter`] does nothing.
    on: bool,
    asked: AtomicUsize,
    granted: AtomicUsize,
    /// The first refusal was reported.
    warned: AtomicBool,
}

impl Realtime {
    /// Puts the calling thread under SCHED_FIFO; on refusal, warns once and carries on.
    fn enter(&self) {
        use thread_priority::{
            Error, RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        if !self.on {
            return;
        }
        self.asked.fetch_add(1, Ordering::Relaxed);
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, fifo) {
            Ok(()) => {
                self.granted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if !self.warned.swap(true, Ordering::Relaxed) => {
                let why = match e {
                    Error::OS(code) => std::io::Error::from_raw_os_error(code).to_string(),
                    other => format!("{other:?}"),
                };
                eprintln!(
                    "sipcdr: --realtime: SCHED_FIFO refused ({why}; it needs root, CAP_SYS_NICE \
                     or an RLIMIT_RTPRIO limit): normal scheduling"
                );
            }
            Err(_) => {}
        }
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.asked.load(Ordering::Relaxed),
            self.granted.load(Ordering::Relaxed),
        )
    }
}

/// Requests from outside (signals): stop capturing (SIGTERM, SIGINT), rotate files now (SIGHUP).
#[derive(Clone, Debug, Default)]
pub struct Control {
    pub stop: Arc<AtomicBool>,
    pub rotate: Arc<AtomicBool>,
}

/// Runs the pipeline to the end of the files, or in live mode until a stop is requested.
pub fn run(cfg: &Config, ctl: &Control) -> Result<RunSummary> {
    #[allow(clippy::disallowed_methods)] // elapsed time for the summary only; CDRs never see it
    let started = Instant::now();
    let live = cfg.capture.live();
    let writer_queue = if live {
        WRITER_QUEUE
    } else {
        FILE_WRITER_QUEUE
    };
    let (row_tx, row_rx) = bounded::<RowBatch>(writer_queue);
    let wcfg = cfg.writer.clone();
    let shards = cfg.shards;
    let metrics = Metrics::new(shards);
    let done = Arc::new(AtomicBool::new(false));
    let observers = start_observers(cfg, &metrics, &done)?;
    // Entered first thing in each pipeline thread.
    let realtime = Arc::new(Realtime {
        on: cfg.realtime,
        ..Realtime::default()
    });
    let writer = thread::Builder::new()
        .name("write-0".into())
        .spawn({
            let rotate = Arc::clone(&ctl.rotate);
            let metrics = Arc::clone(&metrics);
            let realtime = Arc::clone(&realtime);
            move || {
                realtime.enter();
                writer::run(wcfg, shards, row_rx, rotate, metrics)
            }
        })
        .context("cannot start the writer thread")?;
    let mut txs = Vec::with_capacity(shards);
    let mut trackers = Vec::with_capacity(shards);
    // Emptied batches on their way back to the router: as many as can be in flight.
    let (spare_tx, spare_rx) = bounded::<Batch>(SHARD_QUEUE * shards + shards);
    // Call-ID hash keys, random per process, shared by the router and the shards' tables.
    let keys = ahash::RandomState::new();
    for shard in 0..shards {
        let (tx, rx) = bounded::<Batch>(SHARD_QUEUE);
        let tracker = Tracker::new(cfg.tracker.clone()).with_keys(keys.clone());
        let out = row_tx.clone();
        let metrics = Arc::clone(&metrics);
        let spares = spare_tx.clone();
        let realtime = Arc::clone(&realtime);
        let h = thread::Builder::new()
            .name(format!("track-{shard}"))
            .spawn(move || {
                realtime.enter();
                tracker.run(shard, rx, out, spares, metrics)
            })
            .context("cannot start a tracker thread")?;
        txs.push(tx);
        trackers.push(h);
    }
    drop(row_tx);
    let ccfg = cfg.capture.clone();
    let stop = Arc::clone(&ctl.stop);
    let capture_metrics = Arc::clone(&metrics);
    let capture_realtime = Arc::clone(&realtime);
    let capture = thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            capture_realtime.enter();
            if !live {
                capture::run_files(
                    &ccfg,
                    Router::with_keys(txs, keys).recycling(spare_rx),
                    &stop,
                    capture_metrics,
                )
            } else {
                let router = Router::with_keys(txs, keys).lossy().recycling(spare_rx);
                capture::live::run(&ccfg, router, &stop, capture_metrics)
            }
        })
        .context("cannot start the capture thread")?;

    let capture_result = capture
        .join()
        .map_err(|_| anyhow!("the capture thread panicked"))?;
    let mut tracker = TrackerStats::default();
    for h in trackers {
        tracker.add(&h.join().map_err(|_| anyhow!("a tracker thread panicked"))?);
    }
    let writer_result = writer
        .join()
        .map_err(|_| anyhow!("the writer thread panicked"))?;
    done.store(true, Ordering::Relaxed);
    for h in observers {
        // They wait in park_timeout: woken now, they see `done` at once (a sleep here held every
        // run's end back by up to 100 ms, so wall times came in steps of 0.1 s).
        h.thread().unpark();
        let _ = h.join();
    }
    // A writer error explains a capture abort, so it is reported first.
    let writer = writer_result?;
    let capture = capture_result?;
    Ok(RunSummary {
        capture,
        tracker,
        writer,
        realtime: cfg.realtime.then(|| realtime.counts()),
        elapsed: started.elapsed(),
    })
}

/// The stats-line thread (every `--stats-interval`) and the metrics endpoint, if configured.
/// Both end when `done` is set.
fn start_observers(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    done: &Arc<AtomicBool>,
) -> Result<Vec<thread::JoinHandle<()>>> {
    let mut handles = Vec::new();
    if let Some(addr) = &cfg.metrics_listen {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("--metrics-listen: cannot listen on {addr}"))?;
        let (m, d) = (Arc::clone(metrics), Arc::clone(done));
        handles.push(
            thread::Builder::new()
                .name("metrics".into())
                .spawn(move || crate::metrics::serve(listener, m, d))
                .context("cannot start the metrics thread")?,
        );
    }
    if let Some(every) = cfg.stats_interval {
        let (m, d) = (Arc::clone(metrics), Arc::clone(done));
        handles.push(
            thread::Builder::new()
                .name("stats".into())
                .spawn(move || {
                    // Operational output only: the wall clock never reaches a CDR.
                    #[allow(clippy::disallowed_methods)]
                    let mut last = (Instant::now(), m.snapshot());
                    while !d.load(Ordering::Relaxed) {
                        thread::park_timeout(Duration::from_millis(100));
                        #[allow(clippy::disallowed_methods)]
                        let now = Instant::now();
                        if now.duration_since(last.0) >= every {
                            let snap = m.snapshot();
                            let secs = now.duration_since(last.0).as_secs_f64();
                            eprintln!("{}", crate::metrics::stats_line(&snap, &last.1, secs));
                            last = (now, snap);
                        }
                    }
                })
                .context("cannot start the stats thread")?,
        );
    }
    Ok(handles)
}

/// What the capture contained: link types, encapsulations opened, SCTP, and SIP messages per
/// transport. Counts that are zero are left out of the first two lines.
fn write_capture_breadth(f: &mut std::fmt::Formatter<'_>, c: &CaptureStats) -> std::fmt::Result {
    use crate::capture::Transport;
    use crate::capture::decode::{Encap, Link};
    fn nonzero<'a>(
        f: &mut std::fmt::Formatter<'_>,
        items: impl Iterator<Item = (&'a str, u64)>,
    ) -> std::fmt::Result {
        let mut any = false;
        for (name, n) in items.filter(|(_, n)| *n > 0) {
            write!(f, "{}{name} {n}", if any { ", " } else { "" })?;
            any = true;
        }
        if !any {
            write!(f, "none")?;
        }
        writeln!(f)
    }
    let d = &c.decode;
    write!(f, "  link types       ")?;
    nonzero(
        f,
        Link::ALL.iter().zip(d.links).map(|(l, n)| (l.as_str(), n)),
    )?;
    write!(f, "  encapsulations   ")?;
    nonzero(
        f,
        Encap::ALL
            .iter()
            .zip(d.encaps)
            .map(|(e, n)| (e.as_str(), n)),
    )?;
    writeln!(
        f,
        "  cut packets      {} decoded from the bytes that arrived, {} HEP packets not SIP",
        d.cut_decoded, c.hep_not_sip
    )?;
    let s = &c.sctp;
    writeln!(
        f,
        "  sctp             {} packets, {} DATA chunks, {} messages ({} reassembled), {} dropped, {} malformed",
        s.packets, s.data_chunks, s.messages, s.reassembled, s.dropped, s.malformed
    )?;
    write!(f, "  sip by transport")?;
    for (i, (t, n)) in Transport::ALL.iter().zip(c.sip_by_transport).enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        write!(f, "{sep}{} {n}", t.as_str())?;
    }
    writeln!(f)
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.capture;
        let t = &self.tracker;
        let secs = self.elapsed.as_secs_f64();
        let pps = if secs > 0.0 {
            c.packets as f64 / secs
        } else {
            0.0
        };
        writeln!(f, "sipcdr summary")?;
        writeln!(
            f,
            "  packets          {} ({} bytes), {} filtered out, {} cut by snaplen",
            c.packets, c.bytes, c.filtered_out, c.snaplen_cut
        )?;
        writeln!(
            f,
            "  not decoded      {} unknown link type, {} malformed, {} not IP, {} other transport, {} unknown tunnel",
            c.skipped_link_type,
            c.skipped_malformed,
            c.skipped_not_ip,
            c.skipped_other_transport,
            c.skipped_tunnel
        )?;
        writeln!(
            f,
            "  ip fragments     {} datagrams reassembled from {} fragments held, {} bad fragments, {} reassemblies timed out",
            c.reassembled, c.fragments_pending, c.fragments_bad, c.reassembly_dropped
        )?;
        if let Some(h) = &c.collector {
            writeln!(
                f,
                "  hep collector    {} UDP packets, {} TCP packets over {} connections, {} bad connections; {} not SIP, {} malformed",
                h.udp_packets,
                h.tcp_packets,
                h.tcp_connections,
                h.tcp_bad,
                c.hep_not_sip,
                c.hep_malformed
            )?;
        }
        if let Some(live) = &c.live {
            writeln!(
                f,
                "  live             {} received by libpcap, {} dropped by the kernel, {} by the interface, {} SIP messages dropped at full shard queues",
                live.received, live.kernel_dropped, live.interface_dropped, c.channel_drops
            )?;
        }
        let tcp = &c.tcp;
        writeln!(
            f,
            "  tcp              {} segments: {} out of order, {} retransmitted, {} overlapping; {} gaps, {} bytes skipped, {} bad Content-Length",
            tcp.segments,
            tcp.out_of_order,
            tcp.retransmitted,
            tcp.overlapping,
            tcp.gaps,
            tcp.bytes_skipped,
            tcp.bad_content_length
        )?;
        writeln!(
            f,
            "  tcp flows        {} closed, {} idle timed out, {} segments refused (flow table full); buffer caps reached: {} per flow, {} total",
            tcp.flows_closed,
            tcp.flows_expired,
            tcp.segments_refused,
            tcp.flow_overflows,
            tcp.total_overflows
        )?;
        if tcp.ws_flows + tcp.ws_bad_frames > 0 {
            writeln!(
                f,
                "  websocket        {} connections, {} SIP messages, {} frames unreadable (bad, compressed or not SIP)",
                tcp.ws_flows, tcp.ws_messages, tcp.ws_bad_frames
            )?;
        }
        if tcp.tls_flows > 0 {
            writeln!(
                f,
                "  tls              {} connections, {} bytes: encrypted, not decoded (a passive sniffer cannot read TLS)",
                tcp.tls_flows, tcp.tls_bytes
            )?;
        }
        writeln!(
            f,
            "  udp              {} datagrams, {} not SIP",
            c.udp_datagrams, c.not_sip
        )?;
        write_capture_breadth(f, c)?;
        writeln!(
            f,
            "  sip messages     {} ({} without Call-ID, {} malformed, {} retransmissions, {} without INVITE, {} after the leg ended)",
            c.sip_messages,
            c.no_call_id,
            t.malformed,
            t.retransmissions,
            t.without_invite,
            t.after_end
        )?;
        if t.forked > 0 {
            writeln!(
                f,
                "  forks            {} 2xx responses or BYEs of a second fork's dialog after another fork answered",
                t.forked
            )?;
        }
        let corr = self.writer.correlated;
        if corr.heuristic + corr.transfers + corr.dropped > 0 {
            writeln!(
                f,
                "  correlated       {} outgoing legs joined an incoming session (--correlate-heuristic), {} legs linked to a transfer's REFER, {} dropped at the correlation caps",
                corr.heuristic, corr.transfers, corr.dropped
            )?;
        }
        if t.skipped > 0 {
            writeln!(
                f,
                "  skipped          {} stop records not written (--skip-causes)",
                t.skipped
            )?;
        }
        if t.evicted > 0 {
            writeln!(
                f,
                "  evicted          {} legs ended early to stay under --max-dialogs",
                t.evicted
            )?;
        }
        write!(f, "  legs             {}:", t.legs)?;
        for (r, n) in crate::cdr::EndReason::ALL.iter().zip(t.by_reason) {
            write!(f, " {} {n},", r.as_str())?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  cdrs written     {} in {} files",
            self.writer.rows,
            self.writer.files.len()
        )?;
        if self.writer.disk_full > 0 {
            writeln!(
                f,
                "  disk full        {} times (CDRs held in memory until space returned), {} CDRs lost",
                self.writer.disk_full, self.writer.lost
            )?;
        }
        if let Some(n) = c.interrupted {
            writeln!(
                f,
                "  interrupted      by a signal after packet #{n}: the rest of the input was not read"
            )?;
        }
        for e in &c.file_errors {
            writeln!(f, "  error            {e}")?;
        }
        if let Some((asked, granted)) = self.realtime {
            writeln!(
                f,
                "  scheduling       SCHED_FIFO for {granted} of {asked} pipeline threads (--realtime)"
            )?;
        }
        write!(f, "  elapsed          {secs:.3} s, {pps:.0} packets/s")
    }
}
