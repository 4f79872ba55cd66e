#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Per-stage benchmarks on real packets from captures/: decode (link → UDP/TCP), parse (SIP
//! message plus the dialog fields the tracker reads), track (the state machine over many calls).
//! `cargo bench --bench stages`; throughput is in elements (frames or messages) per second.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use sipcdr::capture::Transport;
use sipcdr::capture::decode::{Decoder, L4};
use sipcdr::capture::file::read_file;
use sipcdr::capture::route::{Batch, Item};
use sipcdr::sip::value::{NameAddr, cseq, via_branch};
use sipcdr::sip::{Framing, Message};
use sipcdr::time::Timestamp;
use sipcdr::tracker::{Out, Tracker, TrackerConfig};
use std::path::Path;

fn frames() -> Vec<(u32, Timestamp, Vec<u8>)> {
    let mut v = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
    {
        read_file(f, |p| v.push((p.linktype, p.ts, p.data.to_vec()))).unwrap();
    }
    v
}

fn sip_payloads(frames: &[(u32, Timestamp, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut d = Decoder::default();
    frames
        .iter()
        .filter_map(|(lt, ts, data)| match d.decode(*lt, data, *ts).ok()?.l4 {
            L4::Udp(p) if p.len() > 100 => Some(p.to_vec()),
            _ => None,
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let frames = frames();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("frames", |b| {
        let mut d = Decoder::default();
        b.iter(|| {
            let mut n = 0usize;
            for (lt, ts, data) in &frames {
                if let Ok(x) = d.decode(*lt, data, *ts) {
                    n += x.src.port() as usize;
                }
            }
            black_box(n)
        })
    });
}

fn parse(c: &mut Criterion) {
    let msgs = sip_payloads(&frames());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("message+dialog fields", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for m in &msgs {
                let Ok(m) = Message::parse(m, Framing::Datagram) else {
                    continue;
                };
                n += m.call_id.map_or(0, <[u8]>::len);
                n += m.cseq.and_then(cseq).map_or(0, |(c, _)| c as usize);
                n += m
                    .from
                    .map(NameAddr::parse)
                    .and_then(|f| f.tag())
                    .map_or(0, <[u8]>::len);
                n +=
                    m.to.map(NameAddr::parse)
                        .and_then(|f| f.tag())
                        .map_or(0, <[u8]>::len);
                n += m.via.and_then(via_branch).map_or(0, <[u8]>::len);
            }
            black_box(n)
        })
    });
}

fn track(c: &mut Criterion) {
    // One real call (6 messages) replayed as 10 000 calls with distinct Call-IDs.
    let frames = frames();
    let mut d = Decoder::default();
    let call: Vec<(
        Timestamp,
        std::net::SocketAddr,
        std::net::SocketAddr,
        Vec<u8>,
    )> = frames
        .iter()
        .filter_map(|(lt, ts, data)| {
            let x = d.decode(*lt, data, *ts).ok()?;
            match x.l4 {
                L4::Udp(p) if p.windows(26).any(|w| w == b"1-udp-answered-caller-bye@") => {
                    Some((*ts, x.src, x.dst, p.to_vec()))
                }
                _ => None,
            }
        })
        .collect();
    let mut batch = Batch::default();
    let mut seq = 0;
    for i in 0..10_000u32 {
        for (ts, src, dst, p) in &call {
            seq += 1;
            let id = format!("{i:08}-udp-answered-caller-bye@");
            let text = String::from_utf8_lossy(p).replace("1-udp-answered-caller-bye@", &id);
            let ts = Timestamp::from_micros(ts.as_micros() + i64::from(i) * 1000);
            batch.push_msg(seq, ts, *src, *dst, Transport::Udp, text.as_bytes());
        }
    }
    let mut g = c.benchmark_group("track");
    g.throughput(Throughput::Elements(batch.items.len() as u64));
    g.sample_size(20);
    g.bench_function("10k calls", |b| {
        b.iter(|| {
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Out::new();
            for item in &batch.items {
                if let Item::Msg(m) = item {
                    t.handle(batch.bytes_of(m), m, &mut out);
                }
            }
            t.finish(&mut out);
            black_box(out.len())
        })
    });
}

fn encode(c: &mut Criterion) {
    // Every CDR of the sipp captures, encoded as CSV lines.
    let mut cdrs = Vec::new();
    let mut d = Decoder::default();
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Out::new();
    let mut batch = Batch::default();
    for (seq, (lt, ts, data)) in frames().iter().enumerate() {
        if let Ok(x) = d.decode(*lt, data, *ts)
            && let L4::Udp(p) = x.l4
        {
            batch.push_msg(seq as u64, *ts, x.src, x.dst, Transport::Udp, p);
        }
    }
    for item in &batch.items {
        if let Item::Msg(m) = item {
            t.handle(batch.bytes_of(m), m, &mut out);
        }
    }
    t.finish(&mut out);
    cdrs.extend(out.into_iter().map(|(_, c)| c));
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(cdrs.len() as u64));
    g.bench_function("csv rows", |b| {
        let mut enc = sipcdr::cdr::Encoder::default();
        b.iter(|| {
            let mut n = 0;
            for c in &cdrs {
                n += enc.encode(c).len();
            }
            black_box(n)
        })
    });
}

criterion_group!(benches, decode, parse, track, encode);
criterion_main!(benches);
