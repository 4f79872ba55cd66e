//! HEP, the HOMER encapsulation protocol (<https://github.com/sipcapture/HEP>): capture agents
//! (Kamailio/OpenSIPS siptrace, heplify, captagent, sngrep `-H`, FreeSWITCH) send each captured
//! SIP message to a collector in one UDP datagram, with the original addresses, ports, transport
//! and capture time. [`parse`] is a borrow-only view over one datagram: no allocation.
//!
//! Versions 1 and 2 have a fixed header (all fields in network order except v2's time):
//!
//! ```text
//! 0 version (1|2)  1 header length (16 or 40; not checked: sngrep 1.6 writes 2 there)
//! 2 family (2 IPv4, 10 IPv6)  3 IP protocol
//! 4 source port    6 destination port   8 source address, destination address (4 or 16 bytes each)
//! v2 only: seconds u32, microseconds u32, capture id u16 (little-endian, host order of the
//!          senders), then 2 bytes of C struct padding; the payload follows.
//! ```
//!
//! Version 3 is `"HEP3"`, a total length (u16, the whole packet), then chunks
//! `vendor u16, type u16, length u16 (with these 6 bytes), value`, in any order, all big-endian.
//! Generic types used here: 1 family, 2 IP protocol, 3/4 IPv4 source/destination, 5/6 IPv6
//! source/destination, 7/8 source/destination port, 9 seconds, 10 microseconds, 11 protocol type
//! (1 = SIP), 15 payload, 16 compressed payload. Other types are skipped. The vendor id is not
//! checked (as OpenSIPS' and heplify-server's decoders do): agents differ in what they put there.

use super::Transport;
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The collector port HEP agents send to unless configured otherwise.
pub const DEFAULT_PORT: u16 = 9060;

/// HEP v3 protocol type of a SIP payload.
const PROTO_TYPE_SIP: u8 = 1;

/// One decoded HEP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hep<'a> {
    /// 1, 2 or 3.
    pub version: u8,
    /// Where the captured message came from and went to.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IP protocol of the captured message (17 UDP, 6 TCP, 132 SCTP).
    pub ip_proto: u8,
    /// The agent's capture time (v2, and v3 when it sends the time chunks).
    pub ts: Option<Timestamp>,
    /// v3 protocol type (1 SIP, 5 RTCP, 100 log, …); v1 and v2 carry SIP only.
    pub proto_type: Option<u8>,
    /// The captured message. `None` when a v3 packet has only a compressed payload.
    pub payload: Option<&'a [u8]>,
}

impl Hep<'_> {
    /// A plain SIP message (not another protocol type, not compressed).
    pub fn is_sip(&self) -> bool {
        self.payload.is_some() && self.proto_type.is_none_or(|t| t == PROTO_TYPE_SIP)
    }
}

/// Why a datagram is not a HEP packet this decoder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepError {
    /// Fewer bytes than the field at this offset needs.
    Short { at: usize },
    /// Not version 1, 2 or 3.
    Version(u8),
    /// An address family other than 2 (IPv4) and 10 (IPv6).
    Family(u8),
    /// A v3 chunk whose length is below 6, at this offset.
    Chunk { at: usize },
    /// A v3 packet without this required chunk.
    Missing(&'static str),
}

/// The transport of the captured message, from its IP protocol number.
pub fn transport(ip_proto: u8) -> Transport {
    match ip_proto {
        6 => Transport::Tcp,
        super::sctp::IP_PROTO => Transport::Sctp,
        _ => Transport::Udp,
    }
}

/// Cheap test on the first bytes, so that non-HEP traffic on the HEP port stays plain UDP.
pub fn looks_like_hep(b: &[u8]) -> bool {
    b.starts_with(b"HEP3") || matches!(b, [1 | 2, _, 2 | 10, 6 | 17 | 132, ..])
}

/// Decodes one HEP packet (a whole UDP payload). A packet cut short by the capture's snaplen
/// yields the part of the payload that arrived.
pub fn parse(b: &[u8]) -> Result<Hep<'_>, HepError> {
    if b.starts_with(b"HEP3") {
        return parse_v3(b);
    }
    match b.first() {
        Some(&v @ (1 | 2)) => parse_v12(v, b),
        Some(&v) => Err(HepError::Version(v)),
        None => Err(HepError::Short { at: 0 }),
    }
}

fn parse_v12(version: u8, b: &[u8]) -> Result<Hep<'_>, HepError> {
    let (family, proto) = match b {
        [_, _, family, proto, ..] => (*family, *proto),
        _ => return Err(HepError::Short { at: b.len() }),
    };
    let alen = match family {
        2 => 4,
        10 => 16,
        f => return Err(HepError::Family(f)),
    };
    let sport = be16(b, 4)?;
    let dport = be16(b, 6)?;
    let src = addr(b, 8, alen)?;
    let dst = addr(b, 8 + alen, alen)?;
    let mut at = 8 + 2 * alen;
    let mut ts = None;
    if version == 2 {
        let secs = le32(b, at)?;
        let usecs = le32(b, at + 4)?;
        ts = Some(timestamp(secs, usecs));
        // sizeof(struct hep_timehdr) is 12 with the C padding every known sender has; a packed
        // 10-byte header is recognised by a SIP start line right after it (the padding bytes
        // cannot be the start of one: no start line begins 2 bytes into another).
        at += if b.get(at + 10..).is_some_and(sip_start) {
            10
        } else {
            12
        };
    }
    let payload = b.get(at..).ok_or(HepError::Short { at })?;
    Ok(Hep {
        version,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        ip_proto: proto,
        ts,
        proto_type: None,
        payload: Some(payload),
    })
}

fn parse_v3(b: &[u8]) -> Result<Hep<'_>, HepError> {
    let total = usize::from(be16(b, 4)?);
    if total < 6 {
        return Err(HepError::Chunk { at: 4 });
    }
    // A cut packet: use what arrived.
    let end = total.min(b.len());
    let mut family = None;
    let mut proto = None;
    let (mut src4, mut dst4, mut src6, mut dst6) = (None, None, None, None);
    let (mut sport, mut dport) = (None, None);
    let (mut secs, mut usecs) = (None, None);
    let mut proto_type = None;
    let mut payload = None;
    let mut compressed = false;
    let mut at = 6;
    while at + 6 <= end {
        let ty = be16(b, at + 2)?;
        let len = usize::from(be16(b, at + 4)?);
        if len < 6 {
            return Err(HepError::Chunk { at });
        }
        let value = b.get(at + 6..(at + len).min(end)).unwrap_or_default();
        let whole = at + len <= end;
        match ty {
            0x0001 => family = value.first().copied(),
            0x0002 => proto = value.first().copied(),
            0x0003 => src4 = ipv4(value),
            0x0004 => dst4 = ipv4(value),
            0x0005 => src6 = ipv6(value),
            0x0006 => dst6 = ipv6(value),
            0x0007 => sport = be16(value, 0).ok(),
            0x0008 => dport = be16(value, 0).ok(),
            0x0009 => secs = be32(value, 0).ok(),
            0x000a => usecs = be32(value, 0).ok(),
            0x000b => proto_type = value.first().copied(),
            // The payload may be cut by the snaplen; any other chunk must be whole.
            0x000f => payload = Some(value),
            0x0010 => compressed = true,
            _ => {}
        }
        if !whole && ty != 0x000f {
            return Err(HepError::Short { at: end });
        }
        at += len;
    }
    let (src, dst) = match family {
        Some(10) => (src6, dst6),
        Some(2) => (src4, dst4),
        Some(f) => return Err(HepError::Family(f)),
        None => (src4.or(src6), dst4.or(dst6)),
    };
    let src = src.ok_or(HepError::Missing("source address"))?;
    let dst = dst.ok_or(HepError::Missing("destination address"))?;
    let sport = sport.ok_or(HepError::Missing("source port"))?;
    let dport = dport.ok_or(HepError::Missing("destination port"))?;
    if payload.is_none() && !compressed {
        return Err(HepError::Missing("payload"));
    }
    Ok(Hep {
        version: 3,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        ip_proto: proto.unwrap_or(17),
        ts: secs.map(|s| timestamp(s, usecs.unwrap_or(0))),
        proto_type,
        payload,
    })
}

/// A SIP status line or a request line of a known method.
fn sip_start(b: &[u8]) -> bool {
    const STARTS: [&[u8]; 15] = [
        b"SIP/2.0 ",
        b"INVITE ",
        b"ACK ",
        b"BYE ",
        b"CANCEL ",
        b"OPTIONS ",
        b"REGISTER ",
        b"PRACK ",
        b"UPDATE ",
        b"INFO ",
        b"REFER ",
        b"NOTIFY ",
        b"SUBSCRIBE ",
        b"MESSAGE ",
        b"PUBLISH ",
    ];
    STARTS.iter().any(|s| b.starts_with(s))
}

fn timestamp(secs: u32, usecs: u32) -> Timestamp {
    Timestamp::from_micros(i64::from(secs) * 1_000_000 + i64::from(usecs))
}

fn addr(b: &[u8], at: usize, len: usize) -> Result<IpAddr, HepError> {
    let v = b.get(at..at + len).ok_or(HepError::Short { at })?;
    ipv4(v).or_else(|| ipv6(v)).ok_or(HepError::Short { at })
}

fn ipv4(v: &[u8]) -> Option<IpAddr> {
    let a: [u8; 4] = v.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(a)))
}

fn ipv6(v: &[u8]) -> Option<IpAddr> {
    let a: [u8; 16] = v.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(a)))
}

fn be16(b: &[u8], at: usize) -> Result<u16, HepError> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(HepError::Short { at }),
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, HepError> {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => Ok(u32::from_be_bytes([w, x, y, z])),
        _ => Err(HepError::Short { at }),
    }
}

fn le32(b: &[u8], at: usize) -> Result<u32, HepError> {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => Ok(u32::from_le_bytes([w, x, y, z])),
        _ => Err(HepError::Short { at }),
    }
}

/// Builders for tests here and in `decode`: HEP packets as the agents write them.
#[cfg(test)]
pub(crate) mod build {
    /// One v3 chunk (vendor 0).
    pub fn chunk(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(&((value.len() + 6) as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    /// "HEP3" + total length + the chunks in the order given.
    pub fn v3(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut v = b"HEP3".to_vec();
        v.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
        v.extend_from_slice(&body);
        v
    }

    /// A v3 SIP packet over UDP/IPv4, chunks in the order sngrep sends them.
    pub fn v3_sip(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        secs: u32,
        usecs: u32,
        sip: &[u8],
    ) -> Vec<u8> {
        v3(&[
            chunk(1, &[2]),
            chunk(2, &[17]),
            chunk(7, &sport.to_be_bytes()),
            chunk(8, &dport.to_be_bytes()),
            chunk(9, &secs.to_be_bytes()),
            chunk(10, &usecs.to_be_bytes()),
            chunk(11, &[1]),
            chunk(12, &2002u32.to_be_bytes()),
            chunk(3, &src),
            chunk(4, &dst),
            chunk(15, sip),
        ])
    }

    /// A v2 packet over UDP/IPv4 as Kamailio's siptrace writes it (12-byte time header).
    pub fn v2_sip(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        secs: u32,
        usecs: u32,
        sip: &[u8],
    ) -> Vec<u8> {
        let mut v = vec![2, 16, 2, 17];
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&secs.to_le_bytes());
        v.extend_from_slice(&usecs.to_le_bytes());
        v.extend_from_slice(&7u16.to_le_bytes());
        v.extend_from_slice(&[0xAA, 0x55]); // padding, uninitialised in the senders
        v.extend_from_slice(sip);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const SIP: &[u8] = b"INVITE sip:b@x SIP/2.0\r\nCall-ID: 1@x\r\n\r\n";

    #[test]
    fn v3_in_sngrep_order() {
        let p = v3_sip(
            [10, 0, 0, 1],
            5060,
            [10, 0, 0, 2],
            5080,
            1_700_000_000,
            250,
            SIP,
        );
        let h = parse(&p).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.src.to_string(), "10.0.0.1:5060");
        assert_eq!(h.dst.to_string(), "10.0.0.2:5080");
        assert_eq!(h.ip_proto, 17);
        assert_eq!(h.ts, Some(Timestamp::from_micros(1_700_000_000_000_250)));
        assert_eq!(h.payload, Some(SIP));
        assert!(h.is_sip());
        assert!(looks_like_hep(&p));
    }

    #[test]
    fn v3_unusual_order_unknown_and_vendor_chunks_ipv6_tcp() {
        let src: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let dst: [u8; 16] = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        let mut vendor = chunk(3, &[9, 9, 9, 9]); // a vendor's type 3 is read like a generic one
        vendor[1] = 0x21;
        let p = v3(&[
            chunk(15, SIP),
            chunk(0x0123, b"unknown chunk"),
            chunk(6, &dst),
            chunk(8, &5061u16.to_be_bytes()),
            chunk(0x0011, b"correlation"),
            chunk(5, &src),
            chunk(7, &40000u16.to_be_bytes()),
            chunk(2, &[6]),
            chunk(1, &[10]),
            vendor,
        ]);
        let h = parse(&p).unwrap();
        assert_eq!(h.src.to_string(), "[2001:db8::1]:40000");
        assert_eq!(h.dst.to_string(), "[2001:db8::2]:5061");
        assert_eq!(h.ip_proto, 6);
        assert_eq!(h.ts, None);
        assert_eq!(h.proto_type, None);
        assert!(h.is_sip());
    }

    #[test]
    fn v3_other_protocol_types_and_compressed_are_not_sip() {
        let rtcp = v3(&[
            chunk(1, &[2]),
            chunk(3, &[1, 1, 1, 1]),
            chunk(4, &[2, 2, 2, 2]),
            chunk(7, &[0, 1]),
            chunk(8, &[0, 2]),
            chunk(11, &[5]),
            chunk(15, b"{\"rtcp\":1}"),
        ]);
        assert!(!parse(&rtcp).unwrap().is_sip());
        let gz = v3(&[
            chunk(3, &[1, 1, 1, 1]),
            chunk(4, &[2, 2, 2, 2]),
            chunk(7, &[0, 1]),
            chunk(8, &[0, 2]),
            chunk(16, &[0x1f, 0x8b, 8]),
        ]);
        let h = parse(&gz).unwrap();
        assert_eq!(h.payload, None);
        assert!(!h.is_sip());
        let no_ports = v3(&[
            chunk(3, &[1, 1, 1, 1]),
            chunk(4, &[2, 2, 2, 2]),
            chunk(15, SIP),
        ]);
        assert_eq!(
            parse(&no_ports).unwrap_err(),
            HepError::Missing("source port")
        );
        let bad_chunk = v3(&[vec![0, 0, 0, 1, 0, 2]]);
        assert_eq!(parse(&bad_chunk).unwrap_err(), HepError::Chunk { at: 6 });
    }

    #[test]
    fn v2_kamailio_layout_and_packed_layout() {
        let p = v2_sip(
            [10, 0, 0, 1],
            5060,
            [10, 0, 0, 2],
            5060,
            1_600_000_000,
            999_999,
            SIP,
        );
        let h = parse(&p).unwrap();
        assert_eq!(h.version, 2);
        assert_eq!(h.ts, Some(Timestamp::from_micros(1_600_000_000_999_999)));
        assert_eq!(h.payload, Some(SIP));
        assert!(h.is_sip());
        let mut packed = p.clone();
        packed.drain(26..28); // no padding after the capture id
        assert_eq!(parse(&packed).unwrap().payload, Some(SIP));
        // sngrep 1.6 writes 2 as the header length.
        let mut sngrep = p.clone();
        sngrep[1] = 2;
        assert_eq!(parse(&sngrep).unwrap().payload, Some(SIP));
        let mut v1 = p[..16].to_vec();
        v1[0] = 1;
        v1.extend_from_slice(SIP);
        let h = parse(&v1).unwrap();
        assert_eq!((h.version, h.ts, h.payload), (1, None, Some(SIP)));
    }

    #[test]
    fn cut_v3_keeps_the_payload_that_arrived() {
        let p = v3_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5080, 1, 2, SIP);
        let cut = &p[..p.len() - 10];
        assert_eq!(parse(cut).unwrap().payload, Some(&SIP[..SIP.len() - 10]));
    }

    #[test]
    fn every_prefix_and_every_corruption_is_an_error_or_a_view_never_a_panic() {
        let v3p = v3_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5080, 1, 2, SIP);
        let v2p = v2_sip([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, 1, 2, SIP);
        for p in [&v3p, &v2p] {
            for n in 0..=p.len() {
                let _ = parse(&p[..n]);
            }
            for i in 0..p.len() {
                for x in [0u8, 1, 5, 0x7f, 0xff] {
                    let mut q = p.clone();
                    q[i] = x;
                    let _ = parse(&q);
                }
            }
        }
    }
}
