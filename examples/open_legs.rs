//! Memory per open leg: feeds N initial INVITEs (distinct Call-IDs, realistic headers) to one
//! tracker and reports the resident set size before and after.
//! `cargo run --release --example open_legs -- 1000000 [--sdp]` (`--sdp`: each INVITE carries an
//! SDP offer, as real ones do, and its leg keeps the offer until the answer)

// The allocator of the sipcdr binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use sipcdr::capture::Transport;
use sipcdr::capture::route::{Batch, Item};
use sipcdr::time::Timestamp;
use sipcdr::tracker::{Out, Tracker, TrackerConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let sdp = std::env::args().any(|a| a == "--sdp");
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Out::new();
    let before = rss_kib();
    let src = "10.1.2.3:5060"
        .parse()
        .unwrap_or_else(|_| std::process::exit(1));
    let dst = "10.9.8.7:5060"
        .parse()
        .unwrap_or_else(|_| std::process::exit(1));
    let mut seq = 0;
    for chunk in 0..n.div_ceil(10_000) {
        let mut b = Batch::default();
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(n) {
            seq += 1;
            let body = if sdp {
                format!(
                    "v=0\r\no=pbx {i} 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio {} RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
                    10_000 + (i % 50_000) * 2
                )
            } else {
                String::new()
            };
            let ct = if sdp {
                "Content-Type: application/sdp\r\n"
            } else {
                ""
            };
            let msg = format!(
                "INVITE sip:+4930{i:08}@carrier.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK-{i}\r\nMax-Forwards: 70\r\nFrom: \"Caller {i}\" <sip:+4940{i:08}@pbx.example>;tag=f{i}\r\nTo: <sip:+4930{i:08}@carrier.example>\r\nCall-ID: {i:016x}-3c2a@10.1.2.3\r\nCSeq: 1 INVITE\r\nUser-Agent: PBX/1.0\r\n{ct}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            b.push_msg(
                seq,
                Timestamp::from_secs(1_767_225_600 + i64::from(i) / 1000),
                src,
                dst,
                Transport::Udp,
                msg.as_bytes(),
            );
        }
        for item in &b.items {
            if let Item::Msg(m) = item {
                t.handle(b.bytes_of(m), m, &mut out);
            }
        }
    }
    let after = rss_kib();
    let open = t.open_legs();
    println!(
        "{open} open legs: RSS {before} KiB before, {after} KiB after, {:.0} bytes per open leg",
        (after.saturating_sub(before) as f64 * 1024.0) / open.max(1) as f64
    );
}
