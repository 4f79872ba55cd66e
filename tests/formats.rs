//! Link types and file formats on real packets: a sipp capture (Ethernet, pcap) rewritten as one
//! pcapng with three interfaces of different link types (Ethernet, raw IP with nanosecond
//! timestamps, Linux SLL2) must give the same CDRs as the original.

use crate::{capture, sipcdr};

/// (timestamp µs, frame) of every record of a little-endian microsecond pcap.
pub fn read_pcap(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let ts = u64::from(u32_at(off)) * 1_000_000 + u64::from(u32_at(off + 4));
        let caplen = u32_at(off + 8) as usize;
        out.push((ts, bytes[off + 16..off + 16 + caplen].to_vec()));
        off += 16 + caplen;
    }
    out
}

/// A pcapng block: type, total length, body padded to 32 bits, total length again.
pub fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (12 + body.len()) as u32;
    [
        &kind.to_le_bytes()[..],
        &len.to_le_bytes(),
        &body,
        &len.to_le_bytes(),
    ]
    .concat()
}

fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut b = [
        &linktype.to_le_bytes()[..],
        &[0, 0],
        &65535u32.to_le_bytes(),
    ]
    .concat();
    if let Some(r) = tsresol {
        b.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]); // if_tsresol
        b.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    }
    block(1, &b)
}

fn epb(iface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
    let b = [
        &iface.to_le_bytes()[..],
        &((ticks >> 32) as u32).to_le_bytes(),
        &(ticks as u32).to_le_bytes(),
        &(data.len() as u32).to_le_bytes(),
        &(data.len() as u32).to_le_bytes(),
        data,
    ]
    .concat();
    block(6, &b)
}

#[test]
fn multi_interface_pcapng_with_raw_and_sll2_equals_the_ethernet_pcap() {
    for name in [
        "udp_reinvite_hold_resume.pcap",
        "tcp_answered_caller_bye.pcap",
    ] {
        let src = capture(name);
        let packets = read_pcap(&std::fs::read(&src).unwrap());
        let shb = block(
            0x0A0D_0D0A,
            &[
                &0x1A2B_3C4Du32.to_le_bytes()[..],
                &[1, 0, 0, 0],
                &(-1i64).to_le_bytes(),
            ]
            .concat(),
        );
        let mut file = [shb, idb(1, None), idb(101, Some(9)), idb(276, None)].concat();
        for (i, (ts, frame)) in packets.iter().enumerate() {
            let ip = &frame[14..];
            file.extend(match i % 3 {
                0 => epb(0, *ts, frame),
                1 => epb(1, ts * 1000, ip),
                _ => {
                    let mut sll2 = vec![
                        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
                    ];
                    sll2.extend_from_slice(ip);
                    epb(2, *ts, &sll2)
                }
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let ng = dir.path().join("mixed.pcapng");
        std::fs::write(&ng, file).unwrap();
        let want = sipcdr(&["-q", "-o", "-", "-r", src.to_str().unwrap()]);
        let got = sipcdr(&["-q", "-o", "-", "-r", ng.to_str().unwrap()]);
        assert!(got.status.success(), "{got:?}");
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "{name}"
        );
        // A BPF filter compiles for each of the three link types.
        let filtered = sipcdr(&[
            "-q",
            "-o",
            "-",
            "-r",
            ng.to_str().unwrap(),
            "udp",
            "or",
            "tcp",
        ]);
        assert_eq!(filtered.stdout, want.stdout, "{name} filtered");
    }
}

/// A real TLS connection (OpenSSL on 127.0.0.1:5061, scripts/record-tls.sh) carrying an INVITE:
/// counted as TLS in the summary, never guessed at, no CDR.
#[test]
fn tls_is_counted_never_decoded() {
    let out = sipcdr(&[
        "-o",
        "-",
        "-r",
        capture("tls_sip_5061.pcap").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("tls              1 connections"),
        "{summary}"
    );
    assert!(summary.contains("sip messages     0 "), "{summary}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "header only"
    );
}
