//! Issue #4 encapsulations end to end: the two calls of a sipp capture (INVITE/100/180/200/ACK,
//! BYE/200, over UDP on Ethernet) are rewritten packet by packet inside VXLAN (also with QinQ
//! inside), an MPLS label stack, GRE carrying MPLS, HEP v2 and v3 (with the outer capture time 5 s
//! later than the HEP time), SCTP, and with the INVITEs cut by a snaplen; each must give the CDRs
//! of the plain capture (same call_id, times, codes, inner addresses; for SCTP the transport and
//! so the leg id differ). IPv6-in-IPv4 is checked against the same calls sent plainly over IPv6.
//! The real HEP captures recorded from sngrep (`scripts/record-hep.sh`) must agree as well.

use crate::formats::read_pcap;
use crate::{capture, root, sipcdr};
use etherparse::{IpNumber, PacketBuilder, SlicedPacket, TransportSlice};

const SOURCE: &str = "udp_answered_caller_bye.pcap";

/// One UDP packet of the source capture.
struct Pkt {
    ts: u64,
    frame: Vec<u8>,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

fn source_packets() -> Vec<Pkt> {
    read_pcap(&std::fs::read(capture(SOURCE)).unwrap())
        .into_iter()
        .map(|(ts, frame)| {
            let p = SlicedPacket::from_ethernet(&frame).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                panic!("IPv4 expected")
            };
            let Some(TransportSlice::Udp(u)) = &p.transport else {
                panic!("UDP expected")
            };
            Pkt {
                ts,
                src: ip.header().source(),
                dst: ip.header().destination(),
                sport: u.source_port(),
                dport: u.destination_port(),
                payload: u.payload().to_vec(),
                frame: frame.clone(),
            }
        })
        .collect()
}

/// A record: timestamp (µs), captured bytes, original length.
type Rec = (u64, Vec<u8>, u32);

/// A little-endian microsecond pcap of link type Ethernet.
fn write_pcap(path: &std::path::Path, recs: &[Rec]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (ts, data, orig) in recs {
        out.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&orig.to_le_bytes());
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).unwrap();
}

fn whole(ts: u64, frame: Vec<u8>) -> Rec {
    let n = frame.len() as u32;
    (ts, frame, n)
}

/// Runs sipcdr on `recs` written as a pcap: (CDR CSV, summary).
fn run(recs: &[Rec]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pcap");
    write_pcap(&path, recs);
    run_file(&path)
}

fn run_file(path: &std::path::Path) -> (String, String) {
    let out = sipcdr(&["--shards", "2", "-o", "-", "-r", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn plain_cdrs() -> String {
    run_file(&capture(SOURCE)).0
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Ethernet/IPv4 172.16.0.1 → 172.16.0.2 of protocol `proto`.
fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([0x0a; 6], [0x0b; 6])
        .ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64)
        .write(&mut v, IpNumber(proto), payload)
        .unwrap();
    v
}

/// Ethernet/IPv4/UDP 172.16.0.1:40000 → 172.16.0.2:`dport`.
fn outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([0x0a; 6], [0x0b; 6])
        .ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64)
        .udp(40000, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Two MPLS labels, the second with bottom-of-stack.
const LABELS: [u8; 8] = [0x00, 0x3e, 0x80, 0x40, 0x00, 0x01, 0x01, 0x40];

fn check_same(name: &str, recs: &[Rec], encap_line: &str) {
    let (got, summary) = run(recs);
    assert_eq!(got, plain_cdrs(), "{name}");
    assert!(
        summary.contains(encap_line),
        "{name}: no '{encap_line}' in\n{summary}"
    );
    assert!(got.lines().count() == 3, "{name}: two calls expected");
}

#[test]
fn a_call_inside_vxlan_mpls_and_gre_mpls_gives_the_plain_cdrs() {
    let pkts = source_packets();
    let vxlan = |inner: &[u8]| {
        let mut v = vec![0x08, 0, 0, 0, 0, 0x01, 0x00, 0];
        v.extend_from_slice(inner);
        outer_udp(4789, &v)
    };
    let recs: Vec<Rec> = pkts.iter().map(|p| whole(p.ts, vxlan(&p.frame))).collect();
    check_same("vxlan", &recs, "encapsulations   vxlan 14");

    let qinq = |f: &[u8]| {
        [
            &f[..12],
            &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8][..],
            &f[12..],
        ]
        .concat()
    };
    let recs: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts, vxlan(&qinq(&p.frame))))
        .collect();
    check_same("qinq in vxlan", &recs, "encapsulations   qinq 14, vxlan 14");

    let recs: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts, eth(0x8847, &[&LABELS[..], &p.frame[14..]].concat())))
        .collect();
    check_same("mpls", &recs, "encapsulations   mpls 14");

    let gre = |ip: &[u8]| [&[0, 0, 0x88, 0x47][..], &LABELS, ip].concat();
    let recs: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts, outer_ip(47, &gre(&p.frame[14..]))))
        .collect();
    check_same("gre+mpls", &recs, "encapsulations   gre 14, mpls 14");
}

fn hep3(p: &Pkt) -> Vec<u8> {
    let chunk = |ty: u16, v: &[u8]| {
        [
            &[0, 0][..],
            &ty.to_be_bytes(),
            &((v.len() + 6) as u16).to_be_bytes(),
            v,
        ]
        .concat()
    };
    // Unusual order, an unknown chunk type, the payload first.
    let body = [
        chunk(0x000f, &p.payload),
        chunk(0x00ff, b"?"),
        chunk(0x000a, &((p.ts % 1_000_000) as u32).to_be_bytes()),
        chunk(0x0004, &p.dst),
        chunk(0x0003, &p.src),
        chunk(0x0008, &p.dport.to_be_bytes()),
        chunk(0x0007, &p.sport.to_be_bytes()),
        chunk(0x0009, &((p.ts / 1_000_000) as u32).to_be_bytes()),
        chunk(0x0002, &[17]),
        chunk(0x0001, &[2]),
        chunk(0x000b, &[1]),
    ]
    .concat();
    [b"HEP3", &((body.len() + 6) as u16).to_be_bytes()[..], &body].concat()
}

fn hep2(p: &Pkt) -> Vec<u8> {
    [
        &[2u8, 16, 2, 17][..],
        &p.sport.to_be_bytes(),
        &p.dport.to_be_bytes(),
        &p.src,
        &p.dst,
        &((p.ts / 1_000_000) as u32).to_le_bytes(),
        &((p.ts % 1_000_000) as u32).to_le_bytes(),
        &[1, 0, 0, 0],
        &p.payload,
    ]
    .concat()
}

#[test]
fn a_call_in_hep_takes_the_hep_addresses_and_time_not_the_outer_ones() {
    let pkts = source_packets();
    // Outer capture 5 s after the HEP time; a non-SIP HEP packet (RTCP report) in between.
    let mut recs: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts + 5_000_000, outer_udp(9060, &hep3(p))))
        .collect();
    let mut rtcp = hep3(&pkts[0]);
    let at = rtcp.len() - 1;
    rtcp[at] = 5; // protocol type 5: RTCP
    recs.insert(3, whole(pkts[2].ts + 5_000_000, outer_udp(9060, &rtcp)));
    check_same("hep3", &recs, "encapsulations   hep3 15");
    let (_, summary) = run(&recs);
    assert!(summary.contains("1 HEP packets not SIP"), "{summary}");

    let recs: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts + 5_000_000, outer_udp(9060, &hep2(p))))
        .collect();
    check_same("hep2", &recs, "encapsulations   hep2 14");

    // With --hep-port 0 the same file is plain UDP to port 9060: no call.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hep.pcap");
    write_pcap(&path, &recs);
    let out = sipcdr(&[
        "-q",
        "--hep-port",
        "0",
        "-o",
        "-",
        "-r",
        path.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}

#[test]
fn real_hep_captures_recorded_from_sngrep_give_the_plain_cdrs() {
    for v in [2, 3] {
        let f = root()
            .join("captures/hep")
            .join(format!("hep{v}_{}", SOURCE));
        let (got, summary) = run_file(&f);
        assert_eq!(got, plain_cdrs(), "{}", f.display());
        assert!(
            summary.contains(&format!("encapsulations   hep{v} 14")),
            "{summary}"
        );
    }
}

#[test]
fn ipv6_in_ipv4_gives_the_cdrs_of_the_same_call_over_ipv6() {
    let v6 = |a: [u8; 4]| {
        let mut x = [0u8; 16];
        x[0] = 0xfd;
        x[12..].copy_from_slice(&a);
        x
    };
    let ip6 = |p: &Pkt| {
        let mut v = Vec::new();
        PacketBuilder::ipv6(v6(p.src), v6(p.dst), 64)
            .udp(p.sport, p.dport)
            .write(&mut v, &p.payload)
            .unwrap();
        v
    };
    let pkts = source_packets();
    let plain: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts, eth(0x86dd, &ip6(p))))
        .collect();
    let tunnelled: Vec<Rec> = pkts
        .iter()
        .map(|p| whole(p.ts, outer_ip(41, &ip6(p))))
        .collect();
    let (want, _) = run(&plain);
    let (got, summary) = run(&tunnelled);
    assert_eq!(got, want);
    assert!(
        want.contains(",udp,fd00::7f00:1,5100,fd00::7f00:1,5101,"),
        "{want}"
    );
    assert!(
        summary.contains("encapsulations   ip6-in-ip4 14"),
        "{summary}"
    );
}

/// Every column but leg_id and transport.
fn without_leg_id_and_transport(csv: &str) -> Vec<String> {
    without(csv, &["leg_id", "transport"])
}

/// The rows of a CDR file (header included) without the named columns.
fn without(text: &str, names: &[&str]) -> Vec<String> {
    let drop: Vec<usize> = names
        .iter()
        .map(|n| sipcdr::cdr::COLUMNS.iter().position(|c| c == n).unwrap())
        .collect();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            r.iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn a_call_over_sctp_with_a_fragmented_invite_and_two_messages_in_one_packet() {
    let pkts = source_packets();
    let data = |flags: u8, tsn: u32, payload: &[u8]| {
        let mut v = vec![0, flags];
        v.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    };
    let sctp = |p: &Pkt, chunks: &[Vec<u8>]| {
        let mut s = Vec::new();
        s.extend_from_slice(&p.sport.to_be_bytes());
        s.extend_from_slice(&p.dport.to_be_bytes());
        s.extend_from_slice(&[0; 8]);
        s.extend(chunks.concat());
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(p.src, p.dst, 64)
            .write(&mut v, IpNumber(132), &s)
            .unwrap();
        v
    };
    let mut recs = Vec::new();
    let mut tsn = 100;
    let mut i = 0;
    while i < pkts.len() {
        let p = &pkts[i];
        tsn += 2;
        if p.payload.starts_with(b"INVITE") {
            let (a, b) = p.payload.split_at(300);
            recs.push(whole(p.ts, sctp(p, &[data(2, tsn, a)])));
            recs.push(whole(p.ts, sctp(p, &[data(1, tsn + 1, b)])));
        } else if p.payload.starts_with(b"SIP/2.0 100") {
            // 100 and 180 in one packet, at the 180's time.
            let q = &pkts[i + 1];
            assert!(q.payload.starts_with(b"SIP/2.0 180"));
            let chunks = [data(3, tsn, &p.payload), data(3, tsn + 1, &q.payload)];
            recs.push(whole(q.ts, sctp(p, &chunks)));
            i += 1;
        } else {
            recs.push(whole(p.ts, sctp(p, &[data(3, tsn, &p.payload)])));
        }
        i += 1;
    }
    let (got, summary) = run(&recs);
    let want = plain_cdrs();
    assert_eq!(
        without_leg_id_and_transport(&got),
        without_leg_id_and_transport(&want)
    );
    assert_eq!(got.matches(",sctp,").count(), 2, "{got}");
    assert!(
        summary.contains("14 packets, 16 DATA chunks, 14 messages (2 reassembled)"),
        "{summary}"
    );
    assert!(
        summary.contains("sip by transport udp 0, tcp 0, ws 0, sctp 14"),
        "{summary}"
    );
}

#[test]
fn invites_cut_by_the_snaplen_still_give_the_cdrs() {
    let pkts = source_packets();
    let recs: Vec<Rec> = pkts
        .iter()
        .map(|p| {
            let n = p.frame.len() as u32;
            if p.payload.starts_with(b"INVITE") {
                (p.ts, p.frame[..p.frame.len() - 100].to_vec(), n)
            } else {
                (p.ts, p.frame.clone(), n)
            }
        })
        .collect();
    let (got, summary) = run(&recs);
    // The INVITEs lost the end of their SDP (the audio stream), so the caller's media address and
    // the codec are unknown; everything else is the plain call's.
    let media = ["caller_media", "codec"];
    assert_eq!(without(&got, &media), without(&plain_cdrs(), &media));
    assert_ne!(got, plain_cdrs());
    assert!(summary.contains("2 cut by snaplen"), "{summary}");
    assert!(
        summary.contains("2 decoded from the bytes that arrived"),
        "{summary}"
    );
}
