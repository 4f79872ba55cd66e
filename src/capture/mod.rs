//! Stage 1: packets in, SIP messages out. Reads capture files, decodes each frame down to UDP or
//! TCP, reassembles TCP streams, and routes every SIP message to the shard that owns its Call-ID.
//! Packet bytes are borrowed from the read buffer until the one copy into a shard's batch.

pub mod decode;
pub mod file;
pub mod filter;
pub mod hep;
pub mod route;
pub mod sctp;
pub mod stream;

use crate::sip::looks_like_sip;
use crate::time::Timestamp;
use decode::{DecodeCounts, Decoder, L4, Skip};
use file::FileError;
use route::{Closed, Router};
use sctp::{Sctp, SctpStats};
use std::path::PathBuf;
use stream::{StreamConfig, StreamStats, Streams};

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
    /// tcpdump filter expression, applied to every frame.
    pub filter: Option<String>,
    pub stream: StreamConfig,
    /// UDP destination port of HEP packets to decapsulate (`--hep-port`); `None`: no HEP.
    pub hep_port: Option<u16>,
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
    /// Frames by link type, encapsulations opened, frames decoded from a cut packet.
    pub decode: DecodeCounts,
    /// HEP packets that carry no plain SIP (another protocol type, or compressed).
    pub hep_not_sip: u64,
    pub sctp: SctpStats,
    /// SIP messages routed, per `Transport as usize`.
    pub sip_by_transport: [u64; Transport::ALL.len()],
    /// One error per file that could not be read to its end.
    pub file_errors: Vec<FileError>,
}

/// Reads every file, sending SIP messages through `router`. A file that fails is reported in the
/// stats and the next one is read; everything read before the failure has been routed.
pub fn run_files(cfg: &CaptureConfig, mut router: Router) -> anyhow::Result<CaptureStats> {
    let mut filter = cfg.filter.as_deref().map(filter::Filter::new).transpose()?;
    let mut stats = CaptureStats::default();
    let mut decoder = Decoder::new(cfg.hep_port);
    let mut streams = Streams::new(cfg.stream);
    let mut sctp = Sctp::default();
    let mut closed = false;
    for path in &cfg.files {
        let r = file::read_file(path, |p| {
            if closed {
                return;
            }
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
            let res = on_packet(
                &mut router,
                &mut decoder,
                &mut streams,
                &mut sctp,
                &mut stats,
                p.linktype,
                p.ts,
                p.data,
            );
            closed = res.is_err();
        });
        if let Err(e) = r {
            stats.file_errors.push(e);
        }
        if closed {
            anyhow::bail!("a tracker thread stopped early; capture aborted");
        }
    }
    router
        .flush_all()
        .map_err(|_| anyhow::anyhow!("a tracker thread stopped early"))?;
    stats.tcp = streams.stats;
    stats.reassembled = decoder.reassembled_count;
    stats.reassembly_dropped = decoder.reassembly_dropped;
    stats.decode = decoder.counts;
    stats.sctp = sctp.stats;
    stats.sip_by_transport = router.stats.by_transport;
    stats.sip_messages = router.stats.messages;
    stats.no_call_id = router.stats.no_call_id;
    Ok(stats)
}

// One argument per piece of capture-stage state; a struct for them would only move the list.
#[allow(clippy::too_many_arguments)]
fn on_packet(
    router: &mut Router,
    decoder: &mut Decoder,
    streams: &mut Streams,
    sctp: &mut Sctp,
    stats: &mut CaptureStats,
    linktype: u32,
    ts: Timestamp,
    data: &[u8],
) -> Result<(), Closed> {
    if router.observe(ts)? {
        decoder.expire(ts);
        streams.expire(ts);
        sctp.expire(ts);
    }
    let d = match decoder.decode(linktype, data, ts) {
        Ok(d) => d,
        Err(skip) => {
            *match skip {
                Skip::LinkType(_) => &mut stats.skipped_link_type,
                Skip::Malformed => &mut stats.skipped_malformed,
                Skip::NotIp => &mut stats.skipped_not_ip,
                Skip::OtherTransport => &mut stats.skipped_other_transport,
                Skip::Tunnel => &mut stats.skipped_tunnel,
                Skip::FragmentPending => &mut stats.fragments_pending,
                Skip::FragmentBad => &mut stats.fragments_bad,
                Skip::HepNotSip => &mut stats.hep_not_sip,
            } += 1;
            return Ok(());
        }
    };
    match d.l4 {
        L4::Udp(payload) => {
            stats.udp_datagrams += 1;
            if looks_like_sip(payload) {
                router.route(ts, d.src, d.dst, Transport::Udp, payload)?;
            } else {
                stats.not_sip += 1;
            }
        }
        L4::Tcp(seg) => {
            let mut res = Ok(());
            streams.push((d.src, d.dst), &seg, ts, |msg| {
                if res.is_ok() {
                    res = router.route(ts, d.src, d.dst, Transport::Tcp, msg);
                }
            });
            res?;
        }
        // The agent's time is the message's time; the clock (ticks, expiry) stays on capture
        // time, which only moves forward (see `Router::observe`).
        L4::Hep(h) => {
            if looks_like_sip(h.payload) {
                router.route(h.ts.unwrap_or(ts), d.src, d.dst, h.transport, h.payload)?;
            } else {
                stats.not_sip += 1;
            }
        }
        L4::Sctp(chunks) => {
            let mut res = Ok(());
            let not_sip = &mut stats.not_sip;
            sctp.push(d.src, d.dst, chunks, ts, |msg| {
                if res.is_err() {
                    return;
                }
                if looks_like_sip(msg) {
                    res = router.route(ts, d.src, d.dst, Transport::Sctp, msg);
                } else {
                    *not_sip += 1;
                }
            });
            res?;
        }
    }
    Ok(())
}
