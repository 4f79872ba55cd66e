//! Bodies of the fuzz targets (`fuzz/fuzz_targets/`), kept in the library so that the test suite
//! replays the committed corpus and every crash found (`fuzz/regressions/`) through exactly the
//! code the fuzzers run, on stable Rust, in every CI run. Each function takes arbitrary bytes and
//! must neither panic nor hang.

use crate::capture::CaptureConfig;
use crate::capture::decode::{Decoder, TcpSegment, linktype};
use crate::capture::stream::{StreamConfig, Streams};
use crate::capture::{hep, ws};
use crate::config::Config;
use crate::pipeline::{Control, run};
use crate::sip::sdp::{audio_on_hold, find_sdp};
use crate::sip::value::{NameAddr, cseq, delta_seconds, fold_ws, q850_cause, uri_user, via_branch};
use crate::sip::{Framing, Message, find_call_id, looks_like_sip};
use crate::time::Timestamp;
use crate::tracker::TrackerConfig;
use crate::writer::{Output, WriterConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The SIP parser with every accessor the tracker uses, in both framings.
pub fn sip_message(data: &[u8]) {
    let _ = looks_like_sip(data);
    let _ = find_call_id(data);
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(m) = Message::parse(data, framing) else {
            continue;
        };
        assert!(m.len <= data.len());
        let _ = (m.method(), m.status(), m.request_uri().map(uri_user));
        for v in [m.from, m.to, m.contact].into_iter().flatten() {
            let n = NameAddr::parse(v);
            let _ = (n.tag(), n.display_name(), uri_user(n.uri));
        }
        let _ = m.cseq.and_then(cseq);
        let _ = m.via.and_then(via_branch);
        let _ = m.session_expires.and_then(delta_seconds);
        let _ = m.user_agent.map(fold_ws);
        for r in m.reasons() {
            let _ = q850_cause(r);
        }
        if let Some(sdp) = find_sdp(m.content_type, m.body) {
            let _ = audio_on_hold(sdp);
        }
    }
}

const LINKTYPES: [u32; 10] = [
    linktype::ETHERNET,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NULL,
    linktype::LOOP,
    linktype::RAW_BSD,
    147, // a link type the decoder does not read
];

/// The packet decoder from each link type down: the first byte picks the link type, the rest is
/// the frame. The fuzzer keeps one decoder across inputs, so reassembly state is exercised too.
pub fn decode(d: &mut Decoder, data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let Some(&lt) = LINKTYPES.get(usize::from(pick) % LINKTYPES.len()) else {
        return;
    };
    let _ = d.decode(lt, frame, Timestamp::from_secs(i64::from(pick)));
    d.expire(Timestamp::from_secs(i64::from(pick) * 10));
}

/// TCP reassembly (SIP, WebSocket and TLS detection, caps, timeouts): the input is a list of
/// segments `[flags, seq (2 bytes), length, payload…]` on the two directions of one connection.
pub fn tcp_stream(data: &[u8]) {
    let cfg = StreamConfig {
        max_flow_bytes: 4096,
        max_total_bytes: 6000,
        ..StreamConfig::default()
    };
    let mut s = Streams::new(cfg);
    let a: SocketAddr = ([10, 0, 0, 1], 5060).into();
    let b: SocketAddr = ([10, 0, 0, 2], 5060).into();
    let mut emitted = 0usize;
    let mut emit = |_, _, _, m: &[u8]| emitted += m.len();
    let mut rest = data;
    let mut t = 0;
    while let [flags, s0, s1, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let seg = TcpSegment {
            seq: u32::from(u16::from_be_bytes([*s0, *s1])).wrapping_mul(7),
            syn: flags & 1 != 0,
            fin: flags & 2 != 0,
            rst: flags & 12 == 12,
            payload,
        };
        let key = if flags & 16 != 0 { (a, b) } else { (b, a) };
        t += i64::from(flags >> 5);
        s.push(key, &seg, Timestamp::from_secs(t), &mut emit);
        if flags & 0x80 != 0 {
            s.expire(Timestamp::from_secs(t + 5), &mut emit);
        }
        assert!(s.held_bytes() <= cfg.max_total_bytes + usize::from(u8::MAX));
    }
    s.finish(&mut emit);
}

/// The WebSocket framing and upgrade readers and the HEP decoder.
pub fn ws_hep(data: &[u8]) {
    if let Ok(Some(f)) = ws::frame(data) {
        let end = (f.header_len + f.payload_len).min(data.len());
        let mut out = Vec::new();
        let payload = data.get(f.header_len.min(end)..end).unwrap_or_default();
        ws::unmask_into(payload, f.mask, &mut out);
    }
    let _ = ws::upgrade(data);
    let _ = ws::find_sip_frame(data);
    let _ = hep::looks_like_hep(data);
    if let Ok(h) = hep::parse(data) {
        let _ = (h.is_sip(), hep::transport(h.ip_proto));
    }
}

/// The whole pipeline on bytes read as a capture file: capture, decode, reassembly, routing, two
/// shards, the writer. Whatever the bytes, no panic and an end.
pub fn pipeline(data: &[u8]) {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sipcdr-fuzz-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let file = dir.join("in.pcap");
    if std::fs::write(&file, data).is_ok() {
        let cfg = Config {
            capture: CaptureConfig {
                files: vec![file],
                hep_port: Some(hep::DEFAULT_PORT),
                ..CaptureConfig::default()
            },
            tracker: TrackerConfig::default(),
            writer: WriterConfig {
                output: Output::Dir(dir.join("cdr")),
                rotate_interval: Some(3600),
                rotate_size: None,
                prefix: "cdr-".into(),
                compress: None,
                wall_clock: false,
            },
            shards: 2,
            stats_interval: None,
            metrics_listen: None,
            realtime: false,
        };
        let _ = run(&cfg, &Control::default());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
