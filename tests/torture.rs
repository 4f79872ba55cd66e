//! TCP torture: the SIP messages of every UDP sipp capture in `captures/` (real peers), replayed as
//! one TCP connection whose segments are split at every byte, shuffled, duplicated, overlapping,
//! or missing the stream's first N bytes, must give the CDRs that the same messages give over UDP
//! (apart from the transport and the leg id that hashes it, and the calls whose INVITE was lost).

use crate::formats::read_pcap;
use crate::{capture, sipcdr};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::collections::BTreeMap;

const UAC: ([u8; 4], u16) = ([127, 0, 0, 1], 5060);
const UAS: ([u8; 4], u16) = ([127, 0, 0, 2], 5062);

/// A SIP message of the replay: capture time (µs), whether the UAC sent it, its bytes.
struct Msg {
    ts: u64,
    from_uac: bool,
    bytes: Vec<u8>,
}

/// Every UDP message of the sipp UDP captures, in time order; each capture's UAC (the sender of
/// its first message) and UAS are mapped onto one address pair.
const TWO_PARTY: [&str; 7] = [
    "answered_callee_bye",
    "answered_caller_bye",
    "auth_407_then_answer",
    "busy_486",
    "cancel_after_180",
    "reinvite_hold_resume",
    "session_timer_no_bye",
];

fn messages() -> Vec<Msg> {
    let mut out = Vec::new();
    // The two-party sipp scenarios recorded over both UDP and TCP (captures with a proxy, a fork
    // or a transfer have several hops and are tested on their own in `semantics`).
    let mut names: Vec<_> = std::fs::read_dir(capture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("udp_") && n.ends_with(".pcap"))
        .filter(|n| TWO_PARTY.iter().any(|s| n == &format!("udp_{s}.pcap")))
        .collect();
    names.sort();
    assert_eq!(names.len(), TWO_PARTY.len(), "{names:?}");
    for name in names {
        let mut uac = None;
        for (ts, frame) in read_pcap(&std::fs::read(capture(&name)).unwrap()) {
            let p = SlicedPacket::from_ethernet(&frame).unwrap();
            let Some(TransportSlice::Udp(u)) = p.transport else {
                continue;
            };
            let src = u.source_port();
            let uac_port = *uac.get_or_insert(src);
            out.push(Msg {
                ts,
                from_uac: src == uac_port,
                bytes: u.payload().to_vec(),
            });
        }
    }
    out.sort_by_key(|m| m.ts);
    out
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// One TCP segment to write: time, direction, stream offset, bytes, flags.
struct Seg {
    ts: u64,
    from_uac: bool,
    offset: usize,
    data: Vec<u8>,
    syn: bool,
}

/// How the stream is cut into segments.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// One segment per message, after a SYN.
    Clean,
    /// Every byte its own segment.
    EveryByte,
    /// Each message in up to 6 pieces, in random order, some sent twice, some re-sent
    /// overlapping their neighbours.
    Shuffled(u64),
    /// No SYN, and the UAC's stream starts at byte N.
    Missing(usize),
}

/// The same messages as SIP over WebSocket (RFC 7118): an HTTP Upgrade each way, then one
/// message per WebSocket message, masked from the UAC (a browser), every third one fragmented
/// into three frames with a ping between; segments cut at random.
fn websocket(msgs: &[Msg]) -> Vec<Msg> {
    let upgrade_req = b"GET / HTTP/1.1\r\nHost: 127.0.0.2:5062\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let upgrade_resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n";
    let first = msgs[0].ts;
    let mut out = vec![
        Msg {
            ts: first - 2,
            from_uac: true,
            bytes: upgrade_req.to_vec(),
        },
        Msg {
            ts: first - 1,
            from_uac: false,
            bytes: upgrade_resp.to_vec(),
        },
    ];
    for (i, m) in msgs.iter().enumerate() {
        let mask = m.from_uac.then_some([0xA5, i as u8, 0x3C, 0x5A]);
        let b = &m.bytes;
        let bytes = if i % 3 == 0 {
            let (x, y) = (b.len() / 3, 2 * b.len() / 3);
            [
                ws_frame(false, 1, mask, &b[..x]),
                ws_frame(false, 0, mask, &b[x..y]),
                ws_frame(true, 9, mask, b"ping"),
                ws_frame(true, 0, mask, &b[y..]),
            ]
            .concat()
        } else {
            ws_frame(true, 1, mask, b)
        };
        out.push(Msg {
            ts: m.ts,
            from_uac: m.from_uac,
            bytes,
        });
    }
    out
}

fn ws_frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        v.push(m | payload.len() as u8);
    } else {
        v.push(m | 126);
        v.extend((payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            v.extend(k);
            v.extend(payload.iter().zip(k.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

fn segments(msgs: &[Msg], v: Variant) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut offset = [0usize; 2];
    let mut rng = Rng(match v {
        Variant::Shuffled(seed) => seed,
        _ => 1,
    });
    if !matches!(v, Variant::Missing(_)) {
        for from_uac in [true, false] {
            let ts = msgs.iter().find(|m| m.from_uac == from_uac).unwrap().ts;
            out.push(Seg {
                ts,
                from_uac,
                offset: 0,
                data: Vec::new(),
                syn: true,
            });
        }
    }
    for m in msgs {
        let dir = usize::from(m.from_uac);
        let start = offset[dir];
        offset[dir] += m.bytes.len();
        let len = m.bytes.len();
        let mut cuts: Vec<usize> = match v {
            Variant::Clean | Variant::Missing(_) => vec![0, len],
            Variant::EveryByte => (0..=len).collect(),
            Variant::Shuffled(_) => {
                let mut c: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len)).collect();
                c.extend([0, len]);
                c
            }
        };
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        if let Variant::Shuffled(_) = v {
            for i in (1..pieces.len()).rev() {
                pieces.swap(i, rng.below(i + 1));
            }
            for i in 0..pieces.len() {
                match rng.below(4) {
                    0 => pieces.push(pieces[i]),
                    1 => {
                        let (a, b) = pieces[i];
                        let wider = (
                            a.saturating_sub(rng.below(40)),
                            (b + rng.below(40)).min(len),
                        );
                        let at = rng.below(pieces.len() + 1);
                        pieces.insert(at, wider);
                    }
                    _ => {}
                }
            }
        }
        for (a, b) in pieces {
            let (mut a, b) = (start + a, start + b);
            if let Variant::Missing(n) = v
                && m.from_uac
            {
                if b <= n {
                    continue;
                }
                a = a.max(n);
            }
            out.push(Seg {
                ts: m.ts,
                from_uac: m.from_uac,
                offset: a,
                data: m.bytes[a - start..b - start].to_vec(),
                syn: false,
            });
        }
    }
    out
}

fn write_tcp_pcap(path: &std::path::Path, segs: &[Seg]) {
    const ISN: [u32; 2] = [0xFFFF_FF00, 7]; // the UAC's wraps around 2^32
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend([0; 8]);
    file.extend(65535u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    for s in segs {
        let (src, dst) = if s.from_uac { (UAC, UAS) } else { (UAS, UAC) };
        let isn = ISN[usize::from(s.from_uac)];
        let seq = if s.syn {
            isn
        } else {
            isn.wrapping_add(1).wrapping_add(s.offset as u32)
        };
        let mut tcp = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        if s.syn {
            tcp = tcp.syn();
        } else {
            tcp = tcp.ack(1).psh();
        }
        let mut frame = Vec::new();
        tcp.write(&mut frame, &s.data).unwrap();
        push_record(&mut file, s.ts, &frame);
    }
    std::fs::write(path, file).unwrap();
}

fn write_udp_pcap(path: &std::path::Path, msgs: &[Msg]) {
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend([0; 8]);
    file.extend(65535u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    for m in msgs {
        let (src, dst) = if m.from_uac { (UAC, UAS) } else { (UAS, UAC) };
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src.0, dst.0, 64)
            .udp(src.1, dst.1)
            .write(&mut frame, &m.bytes)
            .unwrap();
        push_record(&mut file, m.ts, &frame);
    }
    std::fs::write(path, file).unwrap();
}

fn push_record(file: &mut Vec<u8>, ts: u64, frame: &[u8]) {
    file.extend(((ts / 1_000_000) as u32).to_le_bytes());
    file.extend(((ts % 1_000_000) as u32).to_le_bytes());
    file.extend((frame.len() as u32).to_le_bytes());
    file.extend((frame.len() as u32).to_le_bytes());
    file.extend_from_slice(frame);
}

/// CDRs by Call-ID, without the columns a transport changes (leg_id, transport).
fn cdrs(path: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    cdrs_over(path, "tcp")
}

/// The same, checking that every leg's transport is `transport`.
fn cdrs_over(path: &std::path::Path, transport: &str) -> BTreeMap<String, Vec<String>> {
    let out = sipcdr(&["-q", "-o", "-", "-r", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut rdr = csv::Reader::from_reader(&out.stdout[..]);
    let headers = rdr.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|&i| !matches!(&headers[i], "leg_id" | "transport"))
        .collect();
    let call_id = headers.iter().position(|h| h == "call_id").unwrap();
    let tcol = headers.iter().position(|h| h == "transport").unwrap();
    let mut by_call = BTreeMap::new();
    for r in rdr.records() {
        let r = r.unwrap();
        if path.extension().is_some_and(|e| e == "pcap") && !path.ends_with("udp.pcap") {
            assert_eq!(&r[tcol], transport, "{path:?}");
        }
        let row: Vec<String> = keep.iter().map(|&i| r[i].to_owned()).collect();
        let prev = by_call.insert(r[call_id].to_owned(), row);
        assert!(prev.is_none(), "two legs for {} in {path:?}", &r[call_id]);
    }
    by_call
}

#[test]
fn tcp_segments_split_shuffled_duplicated_or_cut_give_the_udp_cdrs() {
    let msgs = messages();
    let dir = tempfile::tempdir().unwrap();
    let udp = dir.path().join("udp.pcap");
    write_udp_pcap(&udp, &msgs);
    let want = cdrs(&udp);
    assert_eq!(want.len(), 8, "the sipp captures hold 8 calls");

    let mut variants = vec![Variant::Clean, Variant::EveryByte];
    variants.extend((1..=6).map(Variant::Shuffled));
    for v in variants {
        let path = dir.path().join(format!("{v:?}.pcap"));
        write_tcp_pcap(&path, &segments(&msgs, v));
        assert_eq!(cdrs(&path), want, "{v:?}");
    }

    // Only one direction captured (the UAC's): every call is still found, and nothing breaks.
    let path = dir.path().join("one-direction.pcap");
    let one_way: Vec<Seg> = segments(&msgs, Variant::Shuffled(9))
        .into_iter()
        .filter(|s| s.from_uac)
        .collect();
    write_tcp_pcap(&path, &one_way);
    let got = cdrs(&path);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );

    // The UAC's stream missing its first N bytes: every call whose INVITE began before byte N is
    // lost (no CDR, or a CDR started by a later INVITE); every other call is unchanged.
    let mut invite_at = Vec::new(); // (stream offset, Call-ID) of each call's first INVITE
    let mut offset = 0;
    for m in msgs.iter().filter(|m| m.from_uac) {
        if m.bytes.starts_with(b"INVITE ") {
            let text = String::from_utf8_lossy(&m.bytes);
            let cid = text
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: "))
                .unwrap()
                .to_owned();
            if !invite_at.iter().any(|(_, c)| *c == cid) {
                invite_at.push((offset, cid));
            }
        }
        offset += m.bytes.len();
    }
    let mut ns: Vec<usize> = invite_at
        .iter()
        .flat_map(|&(at, _)| [at.saturating_sub(1), at, at + 1, at + 200])
        .collect();
    ns.extend([offset / 2, offset - 1]);
    for n in ns {
        let path = dir.path().join(format!("missing-{n}.pcap"));
        write_tcp_pcap(&path, &segments(&msgs, Variant::Missing(n)));
        let got = cdrs(&path);
        for (at, cid) in &invite_at {
            if *at >= n {
                assert_eq!(
                    got.get(cid),
                    want.get(cid),
                    "first {n} bytes missing: {cid}"
                );
            }
        }
        let lost = invite_at.iter().filter(|(at, _)| *at < n).count();
        assert!(got.len() >= want.len() - lost, "first {n} bytes missing");
    }
}

#[test]
fn the_same_calls_over_websocket_give_the_udp_cdrs() {
    let msgs = messages();
    let dir = tempfile::tempdir().unwrap();
    let udp = dir.path().join("udp.pcap");
    write_udp_pcap(&udp, &msgs);
    let want = cdrs(&udp);
    let framed = websocket(&msgs);
    for v in [Variant::Clean, Variant::Shuffled(7), Variant::EveryByte] {
        let path = dir.path().join(format!("ws-{v:?}.pcap"));
        write_tcp_pcap(&path, &segments(&framed, v));
        assert_eq!(cdrs_over(&path, "ws"), want, "{v:?}");
    }
}
