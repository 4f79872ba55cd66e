//! Stage 1: packets in, SIP messages out. Reads capture files, decodes each frame down to UDP or
//! TCP, reassembles TCP streams, and routes every SIP message to the shard that owns its Call-ID.
//! Packet bytes are borrowed from the read buffer until the one copy into a shard's batch.

pub mod collector;
pub mod decode;
pub mod file;
pub mod filter;
pub mod hep;
pub mod live;
pub mod route;
pub mod sctp;
pub mod stream;
pub mod ws;

use crate::metrics::Metrics;
use crate::sip::looks_like_sip;
use crate::time::Timestamp;
use decode::{DecodeCounts, Decoder, L4, Skip};
use file::FileError;
use route::{Closed, Router};
use sctp::{Sctp, SctpStats};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use stream::{FlowKey, StreamConfig, StreamStats, Streams};

/// How a SIP message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over WebSocket (RFC 7118), on TCP.
    Ws,
    /// SIP in SCTP DATA chunks (RFC 4168).
    Sctp,
}

impl Transport {
    /// Every transport, in the order of per-transport counters (`Transport as usize`).
    pub const ALL: [Transport; 4] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Ws,
        Transport::Sctp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Sctp => "sctp",
        }
    }
}

/// What the capture stage needs.
#[derive(Clone, Debug, Default)]
pub struct CaptureConfig {
    /// Files read in this order, as one continuous capture.
    pub files: Vec<PathBuf>,
    /// `--follow`: the last file is still being written; read it until a stop request.
    pub follow: bool,
    /// `--mmap`: files (but a followed one) are mapped into memory instead of read.
    pub mmap: bool,
    /// Interfaces captured live (instead of files).
    pub interfaces: Vec<String>,
    /// Kernel capture buffer per interface, in bytes.
    pub buffer_size: usize,
    pub promisc: bool,
    /// HEP collector address (`--hep-listen`), UDP and TCP.
    pub hep_listen: Option<String>,
    /// Live: once the interfaces are open, run as this user (and its groups), like tcpdump -Z.
    pub user: Option<String>,
    /// tcpdump filter expression, applied to every frame.
    pub filter: Option<String>,
    pub stream: StreamConfig,
    /// UDP destination port of HEP packets to decapsulate (`--hep-port`); `None`: no HEP.
    pub hep_port: Option<u16>,
}

impl CaptureConfig {
    /// Live capture (interfaces or a HEP collector) rather than reading files.
    pub fn live(&self) -> bool {
        !self.interfaces.is_empty() || self.hep_listen.is_some()
    }
}

/// Counters of the capture stage, returned when it ends.
#[derive(Debug, Default)]
pub struct CaptureStats {
    pub packets: u64,
    pub bytes: u64,
    pub filtered_out: u64,
    pub snaplen_cut: u64,
    pub skipped_link_type: u64,
    pub skipped_malformed: u64,
    pub skipped_not_ip: u64,
    pub skipped_other_transport: u64,
    pub skipped_tunnel: u64,
    pub fragments_pending: u64,
    pub fragments_bad: u64,
    pub reassembled: u64,
    pub reassembly_dropped: u64,
    pub udp_datagrams: u64,
    pub not_sip: u64,
    pub sip_messages: u64,
    pub no_call_id: u64,
    pub tcp: StreamStats,
    /// Live capture: what libpcap received and dropped.
    pub live: Option<live::LiveStats>,
    /// Live capture: SIP messages lost because a shard fell behind (its queue was full).
    pub channel_drops: u64,
    /// Frames by link type, encapsulations opened, frames decoded from a cut packet.
    pub decode: DecodeCounts,
    /// HEP packets that carry no plain SIP (another protocol type, or compressed).
    pub hep_not_sip: u64,
    pub sctp: SctpStats,
    /// SIP messages routed, per `Transport as usize`.
    pub sip_by_transport: [u64; Transport::ALL.len()],
    /// One error per file that could not be read to its end.
    pub file_errors: Vec<FileError>,
    /// The HEP collector's counters, when it ran.
    pub collector: Option<collector::CollectorStats>,
    /// HEP packets (collector) that could not be decoded.
    pub hep_malformed: u64,
    /// File input stopped early by a signal, after this many packets.
    pub interrupted: Option<u64>,
}

/// Reads every file, sending SIP messages through `router`. A file that fails is reported in the
/// stats and the next one is read; everything read before the failure has been routed.
/// A stop request (SIGTERM, SIGINT) ends the reading early; what was read is still processed.
pub fn run_files(
    cfg: &CaptureConfig,
    router: Router,
    stop: &AtomicBool,
    metrics: Arc<Metrics>,
) -> anyhow::Result<CaptureStats> {
    let mut filter = cfg.filter.as_deref().map(filter::Filter::new).transpose()?;
    let mut stage = Stage::new(cfg, router, metrics);
    let mut closed = false;
    for (i, path) in cfg.files.iter().enumerate() {
        // Following, a stop request is the normal end, not an interruption.
        let follow = cfg.follow && i + 1 == cfg.files.len();
        let on_packet = |p: file::Packet<'_>| {
            if closed || stage.stats.interrupted.is_some() {
                return;
            }
            if stop.load(Ordering::Relaxed) {
                if !cfg.follow {
                    stage.stats.interrupted = Some(stage.stats.packets);
                }
                return;
            }
            let stats = &mut stage.stats;
            stats.packets += 1;
            stats.bytes += p.data.len() as u64;
            if (p.orig_len as usize) > p.data.len() {
                stats.snaplen_cut += 1;
            }
            if let Some(f) = filter.as_mut()
                && !f.matches(p.linktype, p.data)
            {
                stats.filtered_out += 1;
                return;
            }
            closed = stage.packet(p.linktype, p.ts, p.data).is_err();
        };
        let r = if cfg.mmap && !follow {
            file::read_file_mapped(path, on_packet)
        } else {
            file::read(path, follow.then_some(stop), on_packet)
        };
        if let Err(e) = r {
            stage.stats.file_errors.push(e);
        }
        if closed {
            anyhow::bail!("a tracker thread stopped early; capture aborted");
        }
    }
    stage.finish()
}

/// The capture stage's state between packets, the same for files and live interfaces.
struct Stage {
    router: Router,
    decoder: Decoder,
    streams: Streams,
    sctp: Sctp,
    stats: CaptureStats,
    metrics: Arc<Metrics>,
}

impl Stage {
    fn new(cfg: &CaptureConfig, router: Router, metrics: Arc<Metrics>) -> Stage {
        Stage {
            router,
            decoder: Decoder::new(cfg.hep_port),
            streams: Streams::new(cfg.stream),
            sctp: Sctp::default(),
            stats: CaptureStats::default(),
            metrics,
        }
    }

    /// Publishes the counters for the stats line and the metrics endpoint.
    fn publish(&self) {
        let g = &self.metrics.capture;
        g.packets.store(self.stats.packets, Ordering::Relaxed);
        g.bytes.store(self.stats.bytes, Ordering::Relaxed);
        g.sip_messages
            .store(self.router.stats.messages, Ordering::Relaxed);
        g.channel_drops
            .store(self.router.stats.dropped, Ordering::Relaxed);
    }

    /// Capture time is `now`: on a new second, timers and reassembly timeouts run. Inlined into
    /// the per-packet path, the second's work kept out of line.
    #[inline]
    fn tick(&mut self, now: Timestamp) -> Result<(), Closed> {
        if self.router.observe(now)? {
            self.new_second(now)?;
        }
        Ok(())
    }

    #[cold]
    fn new_second(&mut self, now: Timestamp) -> Result<(), Closed> {
        self.publish();
        self.decoder.expire(now);
        let mut res = Ok(());
        self.streams
            .expire(now, &mut route_to(&mut self.router, &mut res));
        res?;
        self.sctp.expire(now);
        Ok(())
    }

    /// One HEP packet from the collector, received at `now`: routed with the agent's addresses,
    /// transport and time (`now` when the agent sends none).
    fn hep(&mut self, b: &[u8], now: Timestamp) -> Result<(), Closed> {
        match hep::parse(b) {
            Ok(h) => match h.payload {
                Some(p) if h.is_sip() && looks_like_sip(p) => {
                    let ts = h.ts.unwrap_or(now);
                    let t = hep::transport(h.ip_proto);
                    self.router.route(ts, &h.src, &h.dst, t, p)?;
                }
                _ => self.stats.hep_not_sip += 1,
            },
            Err(_) => self.stats.hep_malformed += 1,
        }
        Ok(())
    }

    /// Decodes one frame and routes the SIP messages it completes.
    fn packet(&mut self, linktype: u32, ts: Timestamp, data: &[u8]) -> Result<(), Closed> {
        self.tick(ts)?;
        // Read in place, not moved out of the `Result`: the move copied it with wide loads of
        // fields the inlined short path had just written with narrow stores, and each copy waited
        // for those stores (perf: ~40 % of this function's samples on that copy).
        let decoded = self.decoder.decode(linktype, data, ts);
        let d = match &decoded {
            Ok(d) => d,
            Err(skip) => {
                *match skip {
                    Skip::LinkType(_) => &mut self.stats.skipped_link_type,
                    Skip::Malformed => &mut self.stats.skipped_malformed,
                    Skip::NotIp => &mut self.stats.skipped_not_ip,
                    Skip::OtherTransport => &mut self.stats.skipped_other_transport,
                    Skip::Tunnel => &mut self.stats.skipped_tunnel,
                    Skip::FragmentPending => &mut self.stats.fragments_pending,
                    Skip::FragmentBad => &mut self.stats.fragments_bad,
                    Skip::HepNotSip => &mut self.stats.hep_not_sip,
                } += 1;
                return Ok(());
            }
        };
        match d.l4 {
            L4::Udp(payload) => {
                self.stats.udp_datagrams += 1;
                if looks_like_sip(payload) {
                    self.router
                        .route(ts, &d.src, &d.dst, Transport::Udp, payload)?;
                } else {
                    self.stats.not_sip += 1;
                }
            }
            L4::Tcp(seg) => {
                let mut res = Ok(());
                self.streams.push(
                    (d.src, d.dst),
                    &seg,
                    ts,
                    &mut route_to(&mut self.router, &mut res),
                );
                res?;
            }
            // The agent's time is the message's time; the clock (ticks, expiry) stays on capture
            // time, which only moves forward (see `Router::observe`).
            L4::Hep(h) => {
                if looks_like_sip(h.payload) {
                    self.router.route(
                        h.ts.unwrap_or(ts),
                        &d.src,
                        &d.dst,
                        h.transport,
                        h.payload,
                    )?;
                } else {
                    self.stats.not_sip += 1;
                }
            }
            L4::Sctp(chunks) => {
                let mut res = Ok(());
                let not_sip = &mut self.stats.not_sip;
                let router = &mut self.router;
                self.sctp.push(d.src, d.dst, chunks, ts, |msg| {
                    if res.is_err() {
                        return;
                    }
                    if looks_like_sip(msg) {
                        res = router.route(ts, &d.src, &d.dst, Transport::Sctp, msg);
                    } else {
                        *not_sip += 1;
                    }
                });
                res?;
            }
        }
        Ok(())
    }

    /// End of input: reads what TCP reassembly still holds, sends everything, returns the counters.
    fn finish(mut self) -> anyhow::Result<CaptureStats> {
        let mut res = Ok(());
        self.streams
            .finish(&mut route_to(&mut self.router, &mut res));
        res.map_err(|_| anyhow::anyhow!("a tracker thread stopped early"))?;
        self.router
            .flush_all()
            .map_err(|_| anyhow::anyhow!("a tracker thread stopped early"))?;
        self.publish();
        let (mut stats, router, decoder) = (self.stats, self.router, self.decoder);
        stats.tcp = self.streams.stats;
        stats.reassembled = decoder.reassembled_count;
        stats.reassembly_dropped = decoder.reassembly_dropped;
        stats.decode = decoder.counts;
        stats.sctp = self.sctp.stats;
        stats.sip_by_transport = router.stats.by_transport;
        stats.sip_messages = router.stats.messages;
        stats.no_call_id = router.stats.no_call_id;
        stats.channel_drops = router.stats.dropped;
        Ok(stats)
    }
}

/// Routes messages that TCP reassembly finishes; the first failure is kept in `res`.
fn route_to<'a>(
    router: &'a mut Router,
    res: &'a mut Result<(), Closed>,
) -> impl FnMut(FlowKey, Timestamp, Transport, &[u8]) + 'a {
    move |(src, dst): (SocketAddr, SocketAddr), ts, transport, msg| {
        if res.is_ok() {
            *res = router.route(ts, &src, &dst, transport, msg);
        }
    }
}
