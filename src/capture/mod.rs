//! Stage 1: packets in, SIP messages out. Reads capture files, decodes each frame down to UDP or
//! TCP, reassembles TCP streams, and routes every SIP message to the shard that owns its Call-ID.
//! Packet bytes are borrowed from the read buffer until the one copy into a shard's batch.

pub mod decode;
pub mod file;
pub mod filter;
pub mod live;
pub mod route;
pub mod stream;
pub mod ws;

use crate::sip::looks_like_sip;
use crate::time::Timestamp;
use decode::{Decoder, L4, Skip};
use file::FileError;
use route::{Closed, Router};
use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// Interfaces captured live (instead of files).
    pub interfaces: Vec<String>,
    /// Kernel capture buffer per interface, in bytes.
    pub buffer_size: usize,
    pub promisc: bool,
    /// tcpdump filter expression, applied to every frame.
    pub filter: Option<String>,
    pub stream: StreamConfig,
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
    /// One error per file that could not be read to its end.
    pub file_errors: Vec<FileError>,
}

/// Reads every file, sending SIP messages through `router`. A file that fails is reported in the
/// stats and the next one is read; everything read before the failure has been routed.
pub fn run_files(cfg: &CaptureConfig, mut router: Router) -> anyhow::Result<CaptureStats> {
    let mut filter = cfg.filter.as_deref().map(filter::Filter::new).transpose()?;
    let mut stats = CaptureStats::default();
    let mut decoder = Decoder::default();
    let mut streams = Streams::new(cfg.stream);
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
    finish(&mut stats, &mut router, &mut decoder, &mut streams)?;
    Ok(stats)
}

/// End of input: reads what TCP reassembly still holds, sends everything, copies the counters.
fn finish(
    stats: &mut CaptureStats,
    router: &mut Router,
    decoder: &mut Decoder,
    streams: &mut Streams,
) -> anyhow::Result<()> {
    let mut res = Ok(());
    streams.finish(&mut route_to(router, &mut res));
    res.map_err(|_| anyhow::anyhow!("a tracker thread stopped early"))?;
    router
        .flush_all()
        .map_err(|_| anyhow::anyhow!("a tracker thread stopped early"))?;
    stats.tcp = streams.stats;
    stats.reassembled = decoder.reassembled_count;
    stats.reassembly_dropped = decoder.reassembly_dropped;
    stats.sip_messages = router.stats.messages;
    stats.no_call_id = router.stats.no_call_id;
    stats.channel_drops = router.stats.dropped;
    Ok(())
}

fn on_packet(
    router: &mut Router,
    decoder: &mut Decoder,
    streams: &mut Streams,
    stats: &mut CaptureStats,
    linktype: u32,
    ts: Timestamp,
    data: &[u8],
) -> Result<(), Closed> {
    if router.observe(ts)? {
        decoder.expire(ts);
        let mut res = Ok(());
        streams.expire(ts, &mut route_to(router, &mut res));
        res?;
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
            streams.push((d.src, d.dst), &seg, ts, &mut route_to(router, &mut res));
            res?;
        }
    }
    Ok(())
}

/// Routes messages that TCP reassembly finishes; the first failure is kept in `res`.
fn route_to<'a>(
    router: &'a mut Router,
    res: &'a mut Result<(), Closed>,
) -> impl FnMut(FlowKey, Timestamp, Transport, &[u8]) + 'a {
    move |(src, dst): (SocketAddr, SocketAddr), ts, transport, msg| {
        if res.is_ok() {
            *res = router.route(ts, src, dst, transport, msg);
        }
    }
}
