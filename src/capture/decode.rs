//! Link layer → IP → UDP/TCP/SCTP, with IPv4/IPv6 reassembly and the common encapsulations:
//! 802.1Q/802.1ad tags, IP-in-IP, GRE (with ERSPAN II/III, PPP, MPLS), MPLS label stacks (with
//! Ethernet pseudowires), VXLAN, and HEP (the original addresses and time of each message).
//! etherparse slices the headers; this file adds what it lacks (Linux SLL2, BSD null and loop,
//! GRE/ERSPAN, MPLS, VXLAN; HEP and SCTP in their own modules) and bounds the reassembly pool.
//!
//! Every layer is a borrowed view: nothing is copied or allocated per packet (only IP
//! reassembly buffers, which etherparse's pool reuses). A frame cut by the capture's snaplen fails
//! etherparse's strict length checks; it is then sliced again with `LaxSlicedPacket`, which uses
//! what arrived (a truncated UDP payload keeps its SIP headers), and counted.

use super::Transport;
use super::hep;
use super::sctp;
use crate::time::Timestamp;
use etherparse::defrag::{IpDefragPayloadVec, IpDefragPool};
use etherparse::err::packet::SliceError;
use etherparse::{
    EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, LinkExtSlice, NetSlice, SlicedPacket,
    TcpSlice, TransportSlice, UdpSlice,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// libpcap link types this decoder reads (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSD: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// Most nested encapsulations followed (tunnel in tunnel in …).
const MAX_DEPTH: u8 = 6;
/// Most MPLS labels popped before giving up.
const MAX_MPLS_LABELS: usize = 8;
/// IANA's VXLAN port (RFC 7348), the one cloud traffic mirroring sends to.
pub const VXLAN_PORT: u16 = 4789;
/// IP datagrams under reassembly at once; past it the pool is emptied and the loss counted.
const MAX_REASSEMBLIES: usize = 4096;
/// Capture-time seconds a datagram may wait for its missing fragments.
const REASSEMBLY_TIMEOUT_SECS: u32 = 30;

/// A transport payload with its addresses.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub l4: L4<'a>,
}

#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    Udp(&'a [u8]),
    Tcp(TcpSegment<'a>),
    /// The chunks of an SCTP packet (after the common header); see [`sctp::Sctp`].
    Sctp(&'a [u8]),
    /// A SIP message delivered by HEP; `Decoded`'s addresses are the original ones.
    Hep(HepMessage<'a>),
}

#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// What a HEP packet says about the message it carries.
#[derive(Clone, Copy, Debug)]
pub struct HepMessage<'a> {
    /// The agent's capture time, when the packet has one.
    pub ts: Option<Timestamp>,
    /// How the message travelled (the HEP IP protocol: 6 TCP, 132 SCTP, else UDP).
    pub transport: Transport,
    pub payload: &'a [u8],
}

/// Why a packet yields no transport payload. Counted per kind, never printed per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A link type this decoder does not read.
    LinkType(u32),
    /// Headers cut short or inconsistent.
    Malformed,
    /// Not IP (ARP, LLDP, …).
    NotIp,
    /// An IP protocol other than UDP, TCP and SCTP (ICMP, ESP, …).
    OtherTransport,
    /// A fragment kept for reassembly; the datagram is not complete yet.
    FragmentPending,
    /// A fragment the reassembly rejected (overlap, too large).
    FragmentBad,
    /// An encapsulation this decoder does not open.
    Tunnel,
    /// A HEP packet that carries no plain SIP (another protocol type, or a compressed payload).
    HepNotSip,
}

/// Link types, as counted in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    RawIp,
    Null,
    Loop,
    Other,
}

impl Link {
    pub const ALL: [Link; 7] = [
        Link::Ethernet,
        Link::LinuxSll,
        Link::LinuxSll2,
        Link::RawIp,
        Link::Null,
        Link::Loop,
        Link::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Link::Ethernet => "ethernet",
            Link::LinuxSll => "linux-sll",
            Link::LinuxSll2 => "linux-sll2",
            Link::RawIp => "raw-ip",
            Link::Null => "null",
            Link::Loop => "loop",
            Link::Other => "other",
        }
    }

    fn of(linktype: u32) -> Link {
        use linktype::*;
        match linktype {
            ETHERNET => Link::Ethernet,
            LINUX_SLL => Link::LinuxSll,
            LINUX_SLL2 => Link::LinuxSll2,
            RAW | RAW_BSD | RAW_OPENBSD | IPV4 | IPV6 => Link::RawIp,
            NULL => Link::Null,
            LOOP => Link::Loop,
            _ => Link::Other,
        }
    }
}

/// Encapsulations opened, as counted in the summary (once per layer opened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// One 802.1Q tag.
    Vlan,
    /// Two or more tags (802.1ad QinQ).
    QinQ,
    Gre,
    ErspanII,
    ErspanIII,
    /// PPP in GRE (PPTP).
    Ppp,
    Vxlan,
    Mpls,
    /// IPv4 in IPv4, IPv4 or IPv6 in IPv6.
    IpIp,
    /// IPv6 in IPv4 (protocol 41).
    Ip6In4,
    /// HEP version 1 or 2.
    Hep2,
    Hep3,
}

impl Encap {
    pub const ALL: [Encap; 12] = [
        Encap::Vlan,
        Encap::QinQ,
        Encap::Gre,
        Encap::ErspanII,
        Encap::ErspanIII,
        Encap::Ppp,
        Encap::Vxlan,
        Encap::Mpls,
        Encap::IpIp,
        Encap::Ip6In4,
        Encap::Hep2,
        Encap::Hep3,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Encap::Vlan => "vlan",
            Encap::QinQ => "qinq",
            Encap::Gre => "gre",
            Encap::ErspanII => "erspan-ii",
            Encap::ErspanIII => "erspan-iii",
            Encap::Ppp => "ppp",
            Encap::Vxlan => "vxlan",
            Encap::Mpls => "mpls",
            Encap::IpIp => "ipip",
            Encap::Ip6In4 => "ip6-in-ip4",
            Encap::Hep2 => "hep2",
            Encap::Hep3 => "hep3",
        }
    }
}

/// What the decoder saw, for the summary: fixed arrays indexed by the small enums above.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeCounts {
    /// Frames per [`Link`] (`Link as usize`).
    pub links: [u64; Link::ALL.len()],
    /// Layers opened per [`Encap`] (`Encap as usize`).
    pub encaps: [u64; Encap::ALL.len()],
    /// Frames that failed the strict length checks (cut by the snaplen, or a length field
    /// larger than what arrived) and were decoded from the bytes that arrived.
    pub cut_decoded: u64,
}

/// Where slicing starts.
#[derive(Clone, Copy)]
enum Start<'a> {
    Ethernet(&'a [u8]),
    LinuxSll(&'a [u8]),
    EtherType(u16, &'a [u8]),
    Ip(&'a [u8]),
}

/// Stateful decoder: owns the IP reassembly pool.
pub struct Decoder {
    pool: IpDefragPool<Timestamp, ()>,
    /// The last reassembled datagram, borrowed by the `Decoded` returned for it.
    reassembled: Option<IpDefragPayloadVec>,
    /// UDP destination port of HEP packets; `None`: HEP is not decoded.
    hep_port: Option<u16>,
    /// The current frame needed the lax slicer.
    lax: bool,
    pub reassembled_count: u64,
    pub reassembly_dropped: u64,
    pub counts: DecodeCounts,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Some(hep::DEFAULT_PORT))
    }
}

impl Decoder {
    /// A decoder that reads HEP packets sent to UDP port `hep_port` (`None`: no HEP).
    pub fn new(hep_port: Option<u16>) -> Self {
        Decoder {
            pool: IpDefragPool::new(),
            reassembled: None,
            hep_port,
            lax: false,
            reassembled_count: 0,
            reassembly_dropped: 0,
            counts: DecodeCounts::default(),
        }
    }

    /// Decodes one captured frame of link type `linktype`.
    // Inlined with the short path below into the capture loop, so that the decoded addresses and
    // payload stay in registers: returned through memory, they were copied twice with wide loads
    // of fields just written by narrow stores, each copy waiting for the stores.
    #[inline(always)]
    pub fn decode<'s>(
        &'s mut self,
        linktype: u32,
        data: &'s [u8],
        ts: Timestamp,
    ) -> Result<Decoded<'s>, Skip> {
        if let Some(old) = self.reassembled.take() {
            self.pool.return_buf(old);
        }
        if let Some(n) = self.counts.links.get_mut(Link::of(linktype) as usize) {
            *n += 1;
        }
        if linktype == linktype::ETHERNET
            && let Some(d) = ethernet_ip(data, self.hep_port)
        {
            return Ok(d);
        }
        self.decode_general(linktype, data, ts)
    }

    /// Any frame, through etherparse's slicers (strict, then lax for a cut frame).
    fn decode_general<'s>(
        &'s mut self,
        linktype: u32,
        data: &'s [u8],
        ts: Timestamp,
    ) -> Result<Decoded<'s>, Skip> {
        use linktype::*;
        let start = match linktype {
            ETHERNET => Start::Ethernet(data),
            LINUX_SLL => Start::LinuxSll(data),
            // 20-byte header; the protocol (an EtherType) comes first.
            LINUX_SLL2 => Start::EtherType(be16(data, 0)?, data.get(20..).ok_or(Skip::Malformed)?),
            // 4-byte address family (host order for NULL, network order for LOOP); the IP
            // version nibble says the rest.
            NULL | LOOP => Start::Ip(data.get(4..).ok_or(Skip::Malformed)?),
            RAW | RAW_BSD | RAW_OPENBSD | IPV4 | IPV6 => Start::Ip(data),
            other => return Err(Skip::LinkType(other)),
        };
        self.lax = false;
        let walk = self.open(start, ts, 0);
        if self.lax && walk.is_ok() {
            self.counts.cut_decoded += 1;
        }
        match walk? {
            Walk::Done(d) => Ok(d),
            Walk::Reassembled(src, dst) => {
                let Some(vec) = self.reassembled.as_ref() else {
                    return Err(Skip::Malformed);
                };
                transport(
                    self.hep_port,
                    &mut self.counts,
                    src,
                    dst,
                    vec.ip_number,
                    &vec.payload,
                )
            }
        }
    }

    fn count(&mut self, e: Encap) {
        if let Some(n) = self.counts.encaps.get_mut(e as usize) {
            *n += 1;
        }
    }

    /// Slices from `start` with etherparse's strict checks, or, when a length does not fit
    /// (the frame was cut), with its lax slicer.
    fn open<'a>(&mut self, start: Start<'a>, ts: Timestamp, depth: u8) -> Result<Walk<'a>, Skip> {
        if depth > MAX_DEPTH {
            return Err(Skip::Tunnel);
        }
        let strict = match start {
            Start::Ethernet(b) => SlicedPacket::from_ethernet(b),
            Start::LinuxSll(b) => SlicedPacket::from_linux_sll(b),
            Start::EtherType(t, b) => SlicedPacket::from_ether_type(EtherType(t), b),
            Start::Ip(b) => SlicedPacket::from_ip(b),
        };
        match strict {
            Ok(p) => self.walk(p, ts, depth),
            Err(SliceError::Len(_)) => {
                self.lax = true;
                self.walk_lax(start, ts, depth)
            }
            Err(_) => Err(Skip::Malformed),
        }
    }

    fn count_vlans(&mut self, tags: usize) {
        match tags {
            0 => {}
            1 => self.count(Encap::Vlan),
            _ => self.count(Encap::QinQ),
        }
    }

    fn walk<'a>(
        &mut self,
        p: SlicedPacket<'a>,
        ts: Timestamp,
        depth: u8,
    ) -> Result<Walk<'a>, Skip> {
        let tags = p
            .link_exts
            .iter()
            .filter(|e| matches!(e, LinkExtSlice::Vlan(_)))
            .count();
        self.count_vlans(tags);
        let (src, dst, ip_payload, fragmented) = match &p.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    v4.payload().clone(),
                    v4.is_payload_fragmented(),
                )
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    v6.payload().clone(),
                    v6.is_payload_fragmented(),
                )
            }
            Some(NetSlice::Arp(_)) => return Err(Skip::NotIp),
            // An EtherType etherparse does not know (MPLS, …).
            None => {
                return match p.ether_payload() {
                    Some(e) => self.ether(e.ether_type.0, e.payload, ts, depth),
                    None => Err(Skip::NotIp),
                };
            }
        };
        if fragmented {
            return match self.pool.process_sliced_packet(&p, ts, ()) {
                Ok(Some(vec)) => {
                    self.reassembled_count += 1;
                    self.reassembled = Some(vec);
                    Ok(Walk::Reassembled(src, dst))
                }
                Ok(None) => Err(Skip::FragmentPending),
                Err(_) => Err(Skip::FragmentBad),
            };
        }
        self.l4(
            src,
            dst,
            ip_payload.ip_number,
            ip_payload.payload,
            p.transport,
            ts,
            depth,
        )
    }

    /// The same walk over a frame that failed the strict length checks.
    fn walk_lax<'a>(
        &mut self,
        start: Start<'a>,
        ts: Timestamp,
        depth: u8,
    ) -> Result<Walk<'a>, Skip> {
        let p = match start {
            Start::Ethernet(b) => LaxSlicedPacket::from_ethernet(b).map_err(|_| Skip::Malformed)?,
            // etherparse has no lax SLL slicer: the 16-byte header ends with the EtherType.
            Start::LinuxSll(b) => LaxSlicedPacket::from_ether_type(
                EtherType(be16(b, 14)?),
                b.get(16..).ok_or(Skip::Malformed)?,
            ),
            Start::EtherType(t, b) => LaxSlicedPacket::from_ether_type(EtherType(t), b),
            Start::Ip(b) => LaxSlicedPacket::from_ip(b).map_err(|_| Skip::Malformed)?,
        };
        self.count_vlans(p.vlan_ids().len());
        let (src, dst, ip_payload) = match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    v4.payload().clone(),
                )
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    v6.payload().clone(),
                )
            }
            Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotIp),
            None => {
                return match p.ether_payload() {
                    Some(e) => self.ether(e.ether_type.0, e.payload, ts, depth),
                    None => Err(Skip::Malformed),
                };
            }
        };
        // A cut fragment cannot be reassembled.
        if ip_payload.fragmented {
            return Err(Skip::Malformed);
        }
        self.l4(
            src,
            dst,
            ip_payload.ip_number,
            ip_payload.payload,
            p.transport,
            ts,
            depth,
        )
    }

    /// The payload of an EtherType etherparse does not slice.
    fn ether<'a>(
        &mut self,
        t: u16,
        b: &'a [u8],
        ts: Timestamp,
        depth: u8,
    ) -> Result<Walk<'a>, Skip> {
        match t {
            0x8847 | 0x8848 => self.mpls(b, ts, depth),
            // IP that etherparse could not slice even laxly.
            0x0800 | 0x86DD => Err(Skip::Malformed),
            _ => Err(Skip::NotIp),
        }
    }

    /// An MPLS label stack (RFC 3032): pop labels until bottom-of-stack, then IPv4/IPv6 by the
    /// version nibble, or an Ethernet pseudowire after its control word when the nibble is 0
    /// (RFC 4448).
    fn mpls<'a>(&mut self, b: &'a [u8], ts: Timestamp, depth: u8) -> Result<Walk<'a>, Skip> {
        self.count(Encap::Mpls);
        let mut off = 0;
        loop {
            let s = b.get(off + 2).ok_or(Skip::Malformed)? & 0x01 != 0;
            off += 4;
            if s {
                break;
            }
            if off >= 4 * MAX_MPLS_LABELS {
                return Err(Skip::Malformed);
            }
        }
        let rest = b.get(off..).ok_or(Skip::Malformed)?;
        match rest.first().map(|x| x >> 4) {
            Some(4 | 6) => self.open(Start::Ip(rest), ts, depth + 1),
            Some(0) => self.open(
                Start::Ethernet(rest.get(4..).ok_or(Skip::Malformed)?),
                ts,
                depth + 1,
            ),
            Some(_) => Err(Skip::Tunnel),
            None => Err(Skip::Malformed),
        }
    }

    /// Above IP: UDP (with VXLAN and HEP), TCP, SCTP, or IP/GRE tunnels.
    #[allow(clippy::too_many_arguments)]
    fn l4<'a>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: IpNumber,
        payload: &'a [u8],
        t: Option<TransportSlice<'a>>,
        ts: Timestamp,
        depth: u8,
    ) -> Result<Walk<'a>, Skip> {
        match t {
            Some(TransportSlice::Udp(u)) => {
                let payload = u.payload();
                if u.destination_port() == VXLAN_PORT
                    && let Some(inner) = vxlan_inner(payload)
                {
                    self.count(Encap::Vxlan);
                    return self.open(Start::Ethernet(inner), ts, depth + 1);
                }
                udp(
                    self.hep_port,
                    &mut self.counts,
                    SocketAddr::new(src, u.source_port()),
                    SocketAddr::new(dst, u.destination_port()),
                    payload,
                )
                .map(Walk::Done)
            }
            Some(TransportSlice::Tcp(t)) => Ok(Walk::Done(tcp(src, dst, &t))),
            Some(_) => Err(Skip::OtherTransport),
            None => match proto {
                IpNumber::IPV4 | IpNumber::IPV6 => {
                    self.count(if src.is_ipv4() && proto == IpNumber::IPV6 {
                        Encap::Ip6In4
                    } else {
                        Encap::IpIp
                    });
                    self.open(Start::Ip(payload), ts, depth + 1)
                }
                IpNumber::GRE => self.gre(payload, ts, depth),
                IpNumber::UDP | IpNumber::TCP => Err(Skip::Malformed),
                _ => transport(self.hep_port, &mut self.counts, src, dst, proto, payload)
                    .map(Walk::Done),
            },
        }
    }

    /// GRE (RFC 2784/2890, and PPTP's enhanced GRE) carrying IP, Ethernet, ERSPAN, PPP or MPLS.
    fn gre<'a>(&mut self, b: &'a [u8], ts: Timestamp, depth: u8) -> Result<Walk<'a>, Skip> {
        self.count(Encap::Gre);
        let (flags, proto) = (be16(b, 0)?, be16(b, 2)?);
        let version = flags & 0x7;
        let mut off = 4;
        for (bit, len) in [(0x8000, 4), (0x2000, 4), (0x1000, 4)] {
            if flags & bit != 0 {
                off += len; // checksum+reserved, key, sequence
            }
        }
        if version == 1 && flags & 0x0080 != 0 {
            off += 4; // acknowledgement
        }
        let payload = b.get(off..).ok_or(Skip::Malformed)?;
        let inner = match proto {
            0x0800 | 0x86DD => Start::Ip(payload),
            0x6558 => Start::Ethernet(payload),
            0x8847 | 0x8848 => return self.mpls(payload, ts, depth + 1),
            // ERSPAN type II carries an 8-byte header when GRE has a sequence number (type I has none).
            0x88BE => {
                self.count(Encap::ErspanII);
                let skip = if flags & 0x1000 != 0 { 8 } else { 0 };
                Start::Ethernet(payload.get(skip..).ok_or(Skip::Malformed)?)
            }
            // ERSPAN type III: 12-byte header, plus 8 bytes of platform data when O is set.
            0x22EB => {
                self.count(Encap::ErspanIII);
                let o = payload.get(11).ok_or(Skip::Malformed)? & 0x01 != 0;
                let skip = if o { 20 } else { 12 };
                Start::Ethernet(payload.get(skip..).ok_or(Skip::Malformed)?)
            }
            0x880B => {
                self.count(Encap::Ppp);
                let ppp = payload.strip_prefix(&[0xFF, 0x03]).unwrap_or(payload);
                let (proto, rest) = match ppp {
                    [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
                    [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
                    _ => return Err(Skip::Malformed),
                };
                match proto {
                    0x21 | 0x57 => Start::Ip(rest),
                    0x281 => return self.mpls(rest, ts, depth + 1),
                    _ => return Err(Skip::NotIp),
                }
            }
            _ => return Err(Skip::Tunnel),
        };
        self.open(inner, ts, depth + 1)
    }

    /// Drops reassemblies older than the timeout, and all of them past the cap. Call on ticks.
    pub fn expire(&mut self, now: Timestamp) {
        let cutoff = Timestamp::from_micros(
            now.as_micros() - i64::from(REASSEMBLY_TIMEOUT_SECS) * 1_000_000,
        );
        let before = self.pending();
        if before == 0 {
            return;
        }
        self.pool.retain(|t| *t >= cutoff);
        if self.pending() > MAX_REASSEMBLIES {
            self.pool.retain(|_| false);
        }
        self.reassembly_dropped += (before - self.pending()) as u64;
    }

    /// Datagrams under reassembly. (The pool has no length; a predicate that keeps everything
    /// visits each entry once and changes nothing.)
    fn pending(&mut self) -> usize {
        let n = std::cell::Cell::new(0usize);
        self.pool.retain(|_| {
            n.set(n.get() + 1);
            true
        });
        n.get()
    }
}

enum Walk<'a> {
    Done(Decoded<'a>),
    /// The datagram is in `Decoder::reassembled`.
    Reassembled(IpAddr, IpAddr),
}

/// The Ethernet frame inside a VXLAN header (RFC 7348: flags with the I bit, 24-bit VNI, 8
/// bytes in all), or `None` when the payload is not VXLAN.
fn vxlan_inner(b: &[u8]) -> Option<&[u8]> {
    match b {
        [flags, _, _, _, _, _, _, _, inner @ ..] if flags & 0x08 != 0 => Some(inner),
        _ => None,
    }
}

/// The common case: Ethernet II, IPv4 (not a fragment) or IPv6 (no extension headers), UDP or
/// TCP. `None` for anything else (VLAN tags, IPv6 extension headers and jumbograms, tunnels,
/// VXLAN and HEP ports, errors), which the general path then decodes. The fixed header fields
/// are read where they lie, with the checks etherparse's strict slicers (`Ethernet2Slice`,
/// `Ipv4Slice`, `Ipv6Slice`, `UdpSlice`) make, so the answer is the general path's
/// (`short_path_agrees_with_the_general_one`); TCP goes through `TcpSlice` (options, flags).
#[inline(always)]
fn ethernet_ip(data: &[u8], hep_port: Option<u16>) -> Option<Decoded<'_>> {
    // Ethernet II: destination, source, EtherType.
    match data {
        [_, _, _, _, _, _, _, _, _, _, _, _, 0x08, 0x00, ip @ ..] => ipv4(ip, hep_port),
        [_, _, _, _, _, _, _, _, _, _, _, _, 0x86, 0xdd, ip @ ..] => ipv6(ip, hep_port),
        _ => None,
    }
}

/// [`ethernet_ip`]'s IPv4: version and IHL, total length, flags and fragment offset, protocol,
/// addresses.
#[inline(always)]
fn ipv4(ip: &[u8], hep_port: Option<u16>) -> Option<Decoded<'_>> {
    let &[
        vihl,
        _,
        l0,
        l1,
        _,
        _,
        f0,
        f1,
        _,
        proto,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
        ..,
    ] = ip
    else {
        return None;
    };
    let header_len = usize::from(vihl & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([l0, l1]));
    // More fragments (0x20) or a fragment offset: reassembly, on the general path.
    if vihl >> 4 != 4 || header_len < 20 || total_len < header_len || f0 & 0x3f != 0 || f1 != 0 {
        return None;
    }
    // Within the IP total length: Ethernet padding after it is not payload.
    let payload = ip.get(header_len..total_len)?;
    let src = IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3));
    let dst = IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3));
    short_l4(src, dst, proto, payload, hep_port)
}

/// [`ethernet_ip`]'s IPv6: version, payload length, next header (UDP or TCP, so no extension
/// headers), addresses.
#[inline(always)]
fn ipv6(ip: &[u8], hep_port: Option<u16>) -> Option<Decoded<'_>> {
    let (fixed, rest) = ip.split_first_chunk::<40>()?;
    let [v, _, _, _, l0, l1, next, _, addrs @ ..] = fixed;
    let (src, dst) = addrs.split_first_chunk::<16>()?;
    let dst: [u8; 16] = dst.try_into().ok()?;
    // Payload length 0 (a jumbogram) is left to the general path.
    let len = usize::from(u16::from_be_bytes([*l0, *l1]));
    if v >> 4 != 6 || len == 0 {
        return None;
    }
    let payload = rest.get(..len)?;
    let src = IpAddr::V6(Ipv6Addr::from(*src));
    let dst = IpAddr::V6(Ipv6Addr::from(dst));
    short_l4(src, dst, *next, payload, hep_port)
}

/// [`ethernet_ip`]'s UDP (source and destination ports, length) or TCP.
#[inline(always)]
fn short_l4(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    hep_port: Option<u16>,
) -> Option<Decoded<'_>> {
    match IpNumber(proto) {
        IpNumber::UDP => {
            let &[p0, p1, q0, q1, u0, u1, _, _, ..] = payload else {
                return None;
            };
            let (sport, dport) = (u16::from_be_bytes([p0, p1]), u16::from_be_bytes([q0, q1]));
            if dport == VXLAN_PORT || Some(dport) == hep_port {
                return None;
            }
            // UDP length 0: the rest of the IP payload (as etherparse reads it); under 8: broken.
            let body = match usize::from(u16::from_be_bytes([u0, u1])) {
                0 => payload.get(8..)?,
                len @ 8.. => payload.get(8..len)?,
                _ => return None,
            };
            Some(Decoded {
                src: SocketAddr::new(src, sport),
                dst: SocketAddr::new(dst, dport),
                l4: L4::Udp(body),
            })
        }
        IpNumber::TCP => Some(tcp(src, dst, &TcpSlice::from_slice(payload).ok()?)),
        _ => None,
    }
}

/// A UDP payload: HEP when sent to the HEP port and shaped like HEP, else plain.
fn udp<'a>(
    hep_port: Option<u16>,
    counts: &mut DecodeCounts,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &'a [u8],
) -> Result<Decoded<'a>, Skip> {
    if hep_port != Some(dst.port()) || !hep::looks_like_hep(payload) {
        return Ok(Decoded {
            src,
            dst,
            l4: L4::Udp(payload),
        });
    }
    let h = hep::parse(payload).map_err(|_| Skip::Malformed)?;
    let encap = if h.version == 3 {
        Encap::Hep3
    } else {
        Encap::Hep2
    };
    if let Some(n) = counts.encaps.get_mut(encap as usize) {
        *n += 1;
    }
    match h.payload {
        Some(p) if h.is_sip() => Ok(Decoded {
            src: h.src,
            dst: h.dst,
            l4: L4::Hep(HepMessage {
                ts: h.ts,
                transport: hep::transport(h.ip_proto),
                payload: p,
            }),
        }),
        _ => Err(Skip::HepNotSip),
    }
}

/// The transport of a reassembled datagram (or of an IP protocol etherparse does not slice).
fn transport<'a>(
    hep_port: Option<u16>,
    counts: &mut DecodeCounts,
    src: IpAddr,
    dst: IpAddr,
    proto: IpNumber,
    b: &'a [u8],
) -> Result<Decoded<'a>, Skip> {
    match proto {
        IpNumber::UDP => {
            let u = UdpSlice::from_slice(b).map_err(|_| Skip::Malformed)?;
            udp(
                hep_port,
                counts,
                SocketAddr::new(src, u.source_port()),
                SocketAddr::new(dst, u.destination_port()),
                u.payload(),
            )
        }
        IpNumber::TCP => {
            let t = TcpSlice::from_slice(b).map_err(|_| Skip::Malformed)?;
            Ok(tcp(src, dst, &t))
        }
        IpNumber(sctp::IP_PROTO) => {
            let (sport, dport, chunks) = sctp::split(b).ok_or(Skip::Malformed)?;
            Ok(Decoded {
                src: SocketAddr::new(src, sport),
                dst: SocketAddr::new(dst, dport),
                l4: L4::Sctp(chunks),
            })
        }
        _ => Err(Skip::OtherTransport),
    }
}

fn tcp<'a>(src: IpAddr, dst: IpAddr, t: &TcpSlice<'a>) -> Decoded<'a> {
    Decoded {
        src: SocketAddr::new(src, t.source_port()),
        dst: SocketAddr::new(dst, t.destination_port()),
        l4: L4::Tcp(TcpSegment {
            seq: t.sequence_number(),
            syn: t.syn(),
            fin: t.fin(),
            rst: t.rst(),
            payload: t.payload(),
        }),
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(Skip::Malformed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(7.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5060, 5080);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn plain_udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5060, 5080)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// Everything a `Decoded` says, comparable.
    type Parts = (
        SocketAddr,
        SocketAddr,
        Option<(u32, bool, bool, bool)>,
        Vec<u8>,
    );

    fn parts(d: &Decoded<'_>) -> Parts {
        match d.l4 {
            L4::Udp(p) => (d.src, d.dst, None, p.to_vec()),
            L4::Tcp(t) => (
                d.src,
                d.dst,
                Some((t.seq, t.syn, t.fin, t.rst)),
                t.payload.to_vec(),
            ),
            L4::Sctp(p) => (d.src, d.dst, Some((0, false, false, false)), p.to_vec()),
            L4::Hep(h) => (
                d.src,
                d.dst,
                Some((1, false, false, false)),
                h.payload.to_vec(),
            ),
        }
    }

    fn plain_tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(5060, 5080, 1234, 4000)
            .syn()
            .write(&mut out, payload)
            .unwrap();
        out
    }

    const V6_SRC: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_DST: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn v6_udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(V6_SRC, V6_DST, 64)
            .udp(5060, 5080)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn v6_tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(V6_SRC, V6_DST, 64)
            .tcp(5060, 5080, 1234, 4000)
            .fin()
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn ethernet_ip_takes_the_short_path() {
        let f = plain_udp_frame(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let fast = ethernet_ip(&f, None).unwrap();
        assert_eq!(fast.src.to_string(), "10.0.0.1:5060");
        assert_eq!(fast.dst.to_string(), "10.0.0.2:5080");
        assert!(matches!(fast.l4, L4::Udp(p) if p.starts_with(b"OPTIONS")));
        // Ethernet padding after the IP datagram is not payload.
        let mut padded = plain_udp_frame(b"x");
        padded.extend_from_slice(&[0; 20]);
        assert!(matches!(
            ethernet_ip(&padded, None).unwrap().l4,
            L4::Udp(b"x")
        ));
        assert!(ethernet_ip(&udp_frame(b"x"), None).is_none()); // VLAN: the general path
        let f = plain_tcp_frame(b"BYE");
        let t = ethernet_ip(&f, None).unwrap();
        assert!(matches!(t.l4, L4::Tcp(s) if s.syn && s.seq == 1234 && s.payload == b"BYE"));
        let mut f = v6_udp_frame(b"OPTIONS");
        f.extend_from_slice(&[0; 3]);
        let v6 = ethernet_ip(&f, None).unwrap();
        assert_eq!(v6.src.to_string(), "[2001:db8::1]:5060");
        assert_eq!(v6.dst.to_string(), "[2001:db8::2]:5080");
        assert!(matches!(v6.l4, L4::Udp(b"OPTIONS")));
        let f = v6_tcp_frame(b"BYE");
        let t = ethernet_ip(&f, None).unwrap();
        assert!(matches!(t.l4, L4::Tcp(s) if s.fin && s.payload == b"BYE"));
        // Not taken: a UDP length under 8, a jumbogram's payload length 0, an extension header.
        for edits in [
            &[(14 + 40 + 5, 7)][..],
            &[(14 + 4, 0), (14 + 5, 0)],
            &[(14 + 6, 0)],
        ] {
            let mut f = v6_udp_frame(b"x");
            for &(at, b) in edits {
                f[at] = b;
            }
            assert!(ethernet_ip(&f, None).is_none(), "{edits:?}");
        }
    }

    proptest::proptest! {
        /// Whenever the short path answers, it answers as the general path does: UDP and TCP frames
        /// over IPv4 and IPv6 with any header byte changed (lengths, IHL, flags, protocol, next
        /// header, EtherType), cut or padded.
        #[test]
        fn short_path_agrees_with_the_general_one(
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            tcp in proptest::bool::ANY,
            v6 in proptest::bool::ANY,
            edits in proptest::collection::vec((0usize..80, proptest::num::u8::ANY), 0..3),
            cut in 0usize..8,
            pad in 0usize..8,
        ) {
            let mut f = match (v6, tcp) {
                (false, false) => plain_udp_frame(&payload),
                (false, true) => plain_tcp_frame(&payload),
                (true, false) => v6_udp_frame(&payload),
                (true, true) => v6_tcp_frame(&payload),
            };
            for (at, b) in edits {
                if let Some(x) = f.get_mut(at) {
                    *x = b;
                }
            }
            f.truncate(f.len().saturating_sub(cut));
            f.extend(std::iter::repeat_n(0xAA, pad));
            if let Some(fast) = ethernet_ip(&f, None) {
                let mut d = Decoder::default();
                let general = d.decode_general(linktype::ETHERNET, &f, Timestamp::ZERO);
                proptest::prop_assert_eq!(Some(parts(&fast)), general.ok().as_ref().map(parts));
            }
        }
    }

    #[test]
    fn ethernet_vlan_udp() {
        let f = udp_frame(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let mut d = Decoder::default();
        let got = d.decode(linktype::ETHERNET, &f, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "10.0.0.1:5060");
        assert_eq!(got.dst.to_string(), "10.0.0.2:5080");
        assert!(matches!(got.l4, L4::Udp(p) if p.starts_with(b"OPTIONS")));
    }

    #[test]
    fn sll2_null_and_raw() {
        let f = udp_frame(b"x");
        let ip = &f[18..]; // after Ethernet + one VLAN tag
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        let mut d = Decoder::default();
        for (lt, bytes) in [
            (linktype::LINUX_SLL2, &sll2[..]),
            (linktype::NULL, &null[..]),
            (linktype::RAW, ip),
        ] {
            let got = d.decode(lt, bytes, Timestamp::ZERO).unwrap();
            assert_eq!(got.dst.port(), 5080, "link type {lt}");
        }
        assert_eq!(
            d.decode(147, ip, Timestamp::ZERO).unwrap_err(),
            Skip::LinkType(147)
        );
    }

    #[test]
    fn ip_in_ip_and_gre() {
        let inner = {
            let mut v = Vec::new();
            PacketBuilder::ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
                .udp(5060, 5060)
                .write(&mut v, b"SIP/2.0 200 OK\r\n\r\n")
                .unwrap();
            v
        };
        let outer = |proto: u8, payload: &[u8]| {
            let mut v = Vec::new();
            PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
                .write(&mut v, IpNumber(proto), payload)
                .unwrap();
            v
        };
        let mut d = Decoder::default();
        let ipip = outer(4, &inner);
        let got = d.decode(linktype::RAW, &ipip, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "192.168.1.1:5060");
        let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42]; // key present, IPv4
        gre.extend_from_slice(&inner);
        let gre_packet = outer(47, &gre);
        let got = d
            .decode(linktype::RAW, &gre_packet, Timestamp::ZERO)
            .unwrap();
        assert_eq!(got.dst.to_string(), "192.168.1.2:5060");
    }

    const INVITE: &[u8] =
        b"INVITE sip:2002@b SIP/2.0\r\nCall-ID: 1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    /// IPv4/UDP 192.168.1.1:5060 → 192.168.1.2:5070 carrying `payload`.
    fn inner_ip(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
            .udp(5060, 5070)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        v.extend_from_slice(&ether_type.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// An outer IPv4 packet 1.1.1.1 → 2.2.2.2 of protocol `proto`.
    fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .write(&mut v, IpNumber(proto), payload)
            .unwrap();
        v
    }

    /// Ethernet/IPv4/UDP 1.1.1.1:`sport` → 2.2.2.2:`dport`.
    fn outer_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// Two MPLS labels (16, then 17 with bottom-of-stack).
    fn labels() -> Vec<u8> {
        vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40]
    }

    fn udp_payload<'a>(d: &Decoded<'a>) -> &'a [u8] {
        match d.l4 {
            L4::Udp(p) => p,
            other => panic!("not UDP: {other:?}"),
        }
    }

    fn encaps(d: &Decoder) -> Vec<(&'static str, u64)> {
        Encap::ALL
            .iter()
            .map(|e| (e.as_str(), d.counts.encaps[*e as usize]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Every frame the tests build, for the never-panics test.
    fn all_frames() -> Vec<(u32, Vec<u8>)> {
        vec![
            (linktype::ETHERNET, vxlan_qinq_frame()),
            (
                linktype::ETHERNET,
                eth(0x8847, &[labels(), inner_ip(INVITE)].concat()),
            ),
            (linktype::ETHERNET, mpls_pseudowire_frame()),
            (linktype::RAW, gre_mpls_packet()),
            (linktype::RAW, ip6_in_ip4_packet()),
            (
                linktype::ETHERNET,
                outer_udp(
                    40000,
                    9060,
                    &hep::build::v3_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, 9, 8, INVITE),
                ),
            ),
            (
                linktype::ETHERNET,
                outer_udp(
                    40000,
                    9060,
                    &hep::build::v2_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, 9, 8, INVITE),
                ),
            ),
            (linktype::RAW, sctp_packet()),
            (linktype::ETHERNET, udp_frame(INVITE)),
        ]
    }

    fn vxlan_qinq_frame() -> Vec<u8> {
        let mut inner = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .double_vlan(100.try_into().unwrap(), 200.try_into().unwrap())
            .ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
            .udp(5060, 5070)
            .write(&mut inner, INVITE)
            .unwrap();
        let mut vx = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
        vx.extend_from_slice(&inner);
        outer_udp(51234, VXLAN_PORT, &vx)
    }

    fn mpls_pseudowire_frame() -> Vec<u8> {
        let mut inner = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .udp(5060, 5070)
            .write(&mut inner, INVITE)
            .unwrap();
        eth(0x8847, &[labels(), vec![0, 0, 0, 7], inner].concat())
    }

    fn gre_mpls_packet() -> Vec<u8> {
        outer4(
            47,
            &[vec![0, 0, 0x88, 0x47], labels(), inner_ip(INVITE)].concat(),
        )
    }

    fn ip6_in_ip4_packet() -> Vec<u8> {
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .udp(5060, 5070)
            .write(&mut v6, INVITE)
            .unwrap();
        outer4(41, &v6)
    }

    fn sctp_packet() -> Vec<u8> {
        use super::sctp::build::{data, packet};
        outer4(
            132,
            &packet(
                5060,
                5070,
                &[
                    data(3, 1, 0, INVITE),
                    data(3, 2, 0, b"SIP/2.0 100 Trying\r\n\r\n"),
                ],
            ),
        )
    }

    #[test]
    fn vxlan_with_qinq_inside() {
        let mut d = Decoder::default();
        let f = vxlan_qinq_frame();
        let got = d.decode(linktype::ETHERNET, &f, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "192.168.1.1:5060");
        assert_eq!(got.dst.to_string(), "192.168.1.2:5070");
        assert_eq!(udp_payload(&got), INVITE);
        assert_eq!(encaps(&d), [("qinq", 1), ("vxlan", 1)]);
        // Not VXLAN (no I flag): plain UDP on port 4789.
        let plain = outer_udp(1, VXLAN_PORT, b"\0\0\0\0\0\0\0\0");
        let got = d
            .decode(linktype::ETHERNET, &plain, Timestamp::ZERO)
            .unwrap();
        assert_eq!(got.dst.to_string(), "2.2.2.2:4789");
    }

    #[test]
    fn mpls_stacks_over_ethernet_pseudowire_and_gre() {
        let mut d = Decoder::default();
        let f = eth(0x8847, &[labels(), inner_ip(INVITE)].concat());
        let got = d.decode(linktype::ETHERNET, &f, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "192.168.1.1:5060");
        assert_eq!(udp_payload(&got), INVITE);
        let pw = mpls_pseudowire_frame();
        let got = d.decode(linktype::ETHERNET, &pw, Timestamp::ZERO).unwrap();
        assert_eq!(got.dst.to_string(), "[2001:db8::2]:5070");
        let gre = gre_mpls_packet();
        let got = d.decode(linktype::RAW, &gre, Timestamp::ZERO).unwrap();
        assert_eq!(got.dst.to_string(), "192.168.1.2:5070");
        // MPLS under an 802.1Q tag, and multicast MPLS.
        let mut tagged = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(5.try_into().unwrap())
            .ipv4([9, 9, 9, 9], [8, 8, 8, 8], 1)
            .write(&mut tagged, IpNumber(0), b"")
            .unwrap();
        tagged.truncate(18);
        tagged[16..18].copy_from_slice(&[0x88, 0x48]);
        tagged.extend_from_slice(&labels());
        tagged.extend_from_slice(&inner_ip(INVITE));
        let got = d
            .decode(linktype::ETHERNET, &tagged, Timestamp::ZERO)
            .unwrap();
        assert_eq!(got.src.to_string(), "192.168.1.1:5060");
        assert_eq!(encaps(&d), [("vlan", 1), ("gre", 1), ("mpls", 4)]);
        // A stack with no bottom-of-stack bit is malformed.
        let endless = eth(0x8847, &[0u8; 64]);
        assert_eq!(
            d.decode(linktype::ETHERNET, &endless, Timestamp::ZERO)
                .unwrap_err(),
            Skip::Malformed
        );
    }

    #[test]
    fn ipv6_in_ipv4() {
        let mut d = Decoder::default();
        let p = ip6_in_ip4_packet();
        let got = d.decode(linktype::RAW, &p, Timestamp::ZERO).unwrap();
        assert_eq!(
            got.src.to_string(),
            "[fdfd:fdfd:fdfd:fdfd:fdfd:fdfd:fdfd:fdfd]:5060"
        );
        assert_eq!(udp_payload(&got), INVITE);
        assert_eq!(encaps(&d), [("ip6-in-ip4", 1)]);
    }

    #[test]
    fn hep_gives_the_original_addresses_transport_and_time() {
        let mut d = Decoder::default();
        let v3 = hep::build::v3_sip(
            [10, 0, 0, 1],
            5060,
            [10, 0, 0, 2],
            5080,
            1_700_000_000,
            5,
            INVITE,
        );
        let f = outer_udp(40000, 9060, &v3);
        let got = d.decode(linktype::ETHERNET, &f, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "10.0.0.1:5060");
        assert_eq!(got.dst.to_string(), "10.0.0.2:5080");
        let L4::Hep(h) = got.l4 else {
            panic!("not HEP: {got:?}")
        };
        assert_eq!(h.ts, Some(Timestamp::from_micros(1_700_000_000_000_005)));
        assert_eq!(h.transport, Transport::Udp);
        assert_eq!(h.payload, INVITE);
        let v2 = hep::build::v2_sip([10, 0, 0, 3], 5060, [10, 0, 0, 4], 5060, 7, 0, INVITE);
        let f2 = outer_udp(40000, 9060, &v2);
        let got = d.decode(linktype::ETHERNET, &f2, Timestamp::ZERO).unwrap();
        assert!(
            matches!(got.l4, L4::Hep(h) if h.payload == INVITE && h.ts == Some(Timestamp::from_secs(7)))
        );
        // Not SIP: counted, not routed.
        let rtcp = hep::build::v3(&[
            hep::build::chunk(3, &[1, 1, 1, 1]),
            hep::build::chunk(4, &[2, 2, 2, 2]),
            hep::build::chunk(7, &[0, 1]),
            hep::build::chunk(8, &[0, 2]),
            hep::build::chunk(11, &[5]),
            hep::build::chunk(15, b"{}"),
        ]);
        let f3 = outer_udp(40000, 9060, &rtcp);
        assert_eq!(
            d.decode(linktype::ETHERNET, &f3, Timestamp::ZERO)
                .unwrap_err(),
            Skip::HepNotSip
        );
        assert_eq!(encaps(&d), [("hep2", 1), ("hep3", 2)]);
        // HEP off, or another port: plain UDP.
        let mut off = Decoder::new(None);
        let got = off.decode(linktype::ETHERNET, &f, Timestamp::ZERO).unwrap();
        assert_eq!(udp_payload(&got), &v3[..]);
        let mut other = Decoder::new(Some(9999));
        let got = other
            .decode(linktype::ETHERNET, &f, Timestamp::ZERO)
            .unwrap();
        assert_eq!(got.dst.port(), 9060);
    }

    #[test]
    fn sctp_chunks_are_handed_over() {
        let mut d = Decoder::default();
        let p = sctp_packet();
        let got = d.decode(linktype::RAW, &p, Timestamp::ZERO).unwrap();
        assert_eq!(got.src.to_string(), "1.1.1.1:5060");
        assert_eq!(got.dst.to_string(), "2.2.2.2:5070");
        let L4::Sctp(chunks) = got.l4 else {
            panic!("not SCTP: {got:?}")
        };
        let msgs: Vec<&[u8]> = sctp::DataChunks::new(chunks).map(|c| c.payload).collect();
        assert_eq!(msgs, [INVITE, b"SIP/2.0 100 Trying\r\n\r\n"]);
    }

    #[test]
    fn a_cut_packet_yields_what_arrived() {
        let mut d = Decoder::default();
        for (lt, f, header) in [
            (linktype::ETHERNET, udp_frame(INVITE), 18 + 20 + 8),
            (
                linktype::ETHERNET,
                vxlan_qinq_frame(),
                14 + 20 + 8 + 8 + 22 + 20 + 8,
            ),
            (linktype::RAW, ip6_in_ip4_packet(), 20 + 40 + 8),
        ] {
            let cut = &f[..f.len() - 20];
            let got = d.decode(lt, cut, Timestamp::ZERO).unwrap();
            assert_eq!(
                udp_payload(&got),
                &INVITE[..INVITE.len() - 20],
                "{lt} {header}"
            );
            assert_eq!(header + INVITE.len(), f.len());
        }
        assert_eq!(d.counts.cut_decoded, 3);
        // Cut inside the UDP header: nothing to use.
        let f = udp_frame(INVITE);
        assert_eq!(
            d.decode(linktype::ETHERNET, &f[..18 + 20 + 4], Timestamp::ZERO)
                .unwrap_err(),
            Skip::Malformed
        );
        // A cut HEP packet still gives the start of its message.
        let v3 = hep::build::v3_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5080, 1, 5, INVITE);
        let f = outer_udp(40000, 9060, &v3);
        let got = d
            .decode(linktype::ETHERNET, &f[..f.len() - 30], Timestamp::ZERO)
            .unwrap();
        assert!(matches!(got.l4, L4::Hep(h) if h.payload == &INVITE[..INVITE.len() - 30]));
    }

    #[test]
    fn every_prefix_and_corruption_of_every_encapsulation_never_panics() {
        let mut d = Decoder::default();
        let mut decoded = 0;
        for (lt, f) in all_frames() {
            assert!(d.decode(lt, &f, Timestamp::ZERO).is_ok(), "{lt} {f:?}");
            for n in 0..f.len() {
                decoded += usize::from(d.decode(lt, &f[..n], Timestamp::ZERO).is_ok());
            }
            for i in 0..f.len() {
                for x in [0u8, 0x01, 0x08, 0x45, 0x60, 0x88, 0xff] {
                    let mut g = f.clone();
                    g[i] = x;
                    let _ = d.decode(lt, &g, Timestamp::ZERO);
                }
            }
        }
        assert!(decoded > 0);
    }

    #[test]
    fn reassembles_ipv4_fragments() {
        let payload = vec![b'A'; 3000];
        let mut whole = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5060, 5060)
            .write(&mut whole, &payload)
            .unwrap();
        // Split the UDP datagram (header + payload) into two fragments of 1480 + rest.
        let ip_payload = &whole[20..];
        let frag = |off: usize, data: &[u8], more: bool| {
            let mut h = etherparse::Ipv4Header::new(
                data.len() as u16,
                64,
                IpNumber::UDP,
                [10, 0, 0, 1],
                [10, 0, 0, 2],
            )
            .unwrap();
            h.identification = 99;
            h.more_fragments = more;
            h.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).unwrap();
            let mut v = Vec::new();
            h.write(&mut v).unwrap();
            v.extend_from_slice(data);
            v
        };
        let f1 = frag(0, &ip_payload[..1480], true);
        let f2 = frag(1480, &ip_payload[1480..], false);
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(linktype::RAW, &f1, Timestamp::ZERO).unwrap_err(),
            Skip::FragmentPending
        );
        let got = d.decode(linktype::RAW, &f2, Timestamp::ZERO).unwrap();
        assert!(matches!(got.l4, L4::Udp(p) if p.len() == 3000));
        // A lone first fragment is dropped after the timeout.
        assert_eq!(
            d.decode(linktype::RAW, &f1, Timestamp::ZERO).unwrap_err(),
            Skip::FragmentPending
        );
        d.expire(Timestamp::from_secs(31));
        assert_eq!(d.reassembly_dropped, 1);
    }
}
