//! Counters every thread publishes while it runs, for the periodic stats line on stderr
//! (`--stats-interval`) and the Prometheus endpoint (`--metrics-listen`). Each thread owns its
//! slots and stores plain totals with relaxed atomics, once per batch or per second, never per
//! packet; readers add them up.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::cdr::EndReason;

const R: Ordering = Ordering::Relaxed;

#[derive(Debug, Default)]
pub struct CaptureGauges {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub sip_messages: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub interface_drops: AtomicU64,
    pub channel_drops: AtomicU64,
}

#[derive(Debug, Default)]
pub struct ShardGauges {
    pub legs_opened: AtomicU64,
    pub answered: AtomicU64,
    pub by_reason: [AtomicU64; EndReason::ALL.len()],
}

#[derive(Debug)]
pub struct Metrics {
    pub capture: CaptureGauges,
    pub shards: Vec<ShardGauges>,
    pub cdrs_written: AtomicU64,
    /// Live mode, disk full: CDRs held in memory waiting for space.
    pub cdrs_held: AtomicU64,
    /// Live mode, disk full: CDRs dropped because the hold was full.
    pub cdrs_lost: AtomicU64,
}

/// One reading of every counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub packets: u64,
    pub bytes: u64,
    pub sip_messages: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub channel_drops: u64,
    pub legs_opened: u64,
    pub answered: u64,
    pub by_reason: [u64; EndReason::ALL.len()],
    pub cdrs_written: u64,
    pub cdrs_held: u64,
    pub cdrs_lost: u64,
    /// Resident memory in bytes (Linux), 0 where unknown.
    pub rss: u64,
}

impl Snapshot {
    pub fn legs_ended(&self) -> u64 {
        self.by_reason.iter().sum()
    }

    pub fn open_legs(&self) -> u64 {
        self.legs_opened.saturating_sub(self.legs_ended())
    }

    /// Answer-seizure ratio: answered legs over ended legs.
    pub fn asr(&self) -> f64 {
        match self.legs_ended() {
            0 => 0.0,
            n => self.answered as f64 / n as f64,
        }
    }
}

impl Metrics {
    pub fn new(shards: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            capture: CaptureGauges::default(),
            shards: (0..shards).map(|_| ShardGauges::default()).collect(),
            cdrs_written: AtomicU64::new(0),
            cdrs_held: AtomicU64::new(0),
            cdrs_lost: AtomicU64::new(0),
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = &self.capture;
        let mut s = Snapshot {
            packets: c.packets.load(R),
            bytes: c.bytes.load(R),
            sip_messages: c.sip_messages.load(R),
            kernel_drops: c.kernel_drops.load(R),
            interface_drops: c.interface_drops.load(R),
            channel_drops: c.channel_drops.load(R),
            cdrs_written: self.cdrs_written.load(R),
            cdrs_held: self.cdrs_held.load(R),
            cdrs_lost: self.cdrs_lost.load(R),
            rss: rss_bytes(),
            ..Snapshot::default()
        };
        for sh in &self.shards {
            s.legs_opened += sh.legs_opened.load(R);
            s.answered += sh.answered.load(R);
            for (a, b) in s.by_reason.iter_mut().zip(&sh.by_reason) {
                *a += b.load(R);
            }
        }
        s
    }
}

/// The stats line: rates over the last interval, totals and gauges.
pub fn stats_line(now: &Snapshot, before: &Snapshot, secs: f64) -> String {
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs.max(1e-9);
    format!(
        "sipcdr stats: {:.0} packets/s, {:.0} SIP messages/s, {} kernel drops, {} interface drops, \
         {} channel drops, {} open legs, {} CDRs written, ASR {:.1}%, RSS {} MiB",
        rate(now.packets, before.packets),
        rate(now.sip_messages, before.sip_messages),
        now.kernel_drops,
        now.interface_drops,
        now.channel_drops,
        now.open_legs(),
        now.cdrs_written,
        now.asr() * 100.0,
        now.rss >> 20
    ) + &if now.cdrs_held + now.cdrs_lost > 0 {
        format!(
            ", disk full: {} CDRs held, {} lost",
            now.cdrs_held, now.cdrs_lost
        )
    } else {
        String::new()
    }
}

/// The Prometheus text exposition of a snapshot.
pub fn prometheus(s: &Snapshot) -> String {
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        o.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{value}\n"
        ));
    };
    let counter = |v: u64| format!(" {v}");
    metric(
        "sipcdr_packets_total",
        "counter",
        "Packets read.",
        counter(s.packets),
    );
    metric(
        "sipcdr_bytes_total",
        "counter",
        "Bytes of packets read.",
        counter(s.bytes),
    );
    metric(
        "sipcdr_sip_messages_total",
        "counter",
        "SIP messages routed to the trackers.",
        counter(s.sip_messages),
    );
    metric(
        "sipcdr_kernel_drops_total",
        "counter",
        "Packets the kernel dropped (libpcap statistics).",
        counter(s.kernel_drops),
    );
    metric(
        "sipcdr_interface_drops_total",
        "counter",
        "Packets the interface or driver dropped.",
        counter(s.interface_drops),
    );
    metric(
        "sipcdr_channel_drops_total",
        "counter",
        "SIP messages dropped because a tracker's queue was full.",
        counter(s.channel_drops),
    );
    metric(
        "sipcdr_open_legs",
        "gauge",
        "Legs not yet ended.",
        counter(s.open_legs()),
    );
    metric(
        "sipcdr_cdrs_written_total",
        "counter",
        "CDR rows written.",
        counter(s.cdrs_written),
    );
    metric(
        "sipcdr_cdrs_held",
        "gauge",
        "CDRs held in memory while the output disk is full (live mode).",
        counter(s.cdrs_held),
    );
    metric(
        "sipcdr_cdrs_lost_total",
        "counter",
        "CDRs dropped because the disk stayed full and the hold was at its cap (live mode).",
        counter(s.cdrs_lost),
    );
    let by_reason: String = EndReason::ALL
        .iter()
        .zip(s.by_reason)
        .map(|(r, n)| format!("sipcdr_legs_ended_total{{reason=\"{}\"}} {n}\n", r.as_str()))
        .collect();
    o.push_str("# HELP sipcdr_legs_ended_total Legs ended, by reason.\n");
    o.push_str("# TYPE sipcdr_legs_ended_total counter\n");
    o.push_str(&by_reason);
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        o.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{value}\n"
        ));
    };
    metric(
        "sipcdr_legs_answered_total",
        "counter",
        "Ended legs that had been answered.",
        format!(" {}", s.answered),
    );
    metric(
        "sipcdr_answer_seizure_ratio",
        "gauge",
        "Answered legs over ended legs.",
        format!(" {:.6}", s.asr()),
    );
    metric(
        "sipcdr_resident_memory_bytes",
        "gauge",
        "Resident set size.",
        format!(" {}", s.rss),
    );
    o
}

/// Serves `GET /metrics` (any path) until `done` is set. Errors on one connection are ignored.
pub fn serve(listener: TcpListener, metrics: Arc<Metrics>, done: Arc<AtomicBool>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !done.load(R) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream, &metrics);
            }
            // Woken at once when the run ends (the pipeline unparks this thread).
            Err(_) => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // Read the request head up to the empty line.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let body = prometheus(&metrics.snapshot());
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Resident set size from /proc/self/statm (pages × 4096), 0 when unavailable.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_adds_shards_and_renders() {
        let m = Metrics::new(2);
        m.capture.packets.store(10, R);
        m.shards[0].legs_opened.store(3, R);
        m.shards[1].legs_opened.store(2, R);
        m.shards[0].by_reason[0].store(2, R);
        m.shards[1].by_reason[1].store(2, R);
        m.shards[0].answered.store(2, R);
        let s = m.snapshot();
        assert_eq!((s.open_legs(), s.legs_ended()), (1, 4));
        assert!((s.asr() - 0.5).abs() < 1e-9);
        let text = prometheus(&s);
        assert!(text.contains("sipcdr_packets_total 10\n"));
        assert!(text.contains("sipcdr_legs_ended_total{reason=\"normal-release\"} 2\n"));
        assert!(text.contains("sipcdr_answer_seizure_ratio 0.500000\n"));
        let line = stats_line(&s, &Snapshot::default(), 2.0);
        assert!(
            line.contains("5 packets/s") && line.contains("1 open legs"),
            "{line}"
        );
    }
}
