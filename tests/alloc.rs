//! The SIP parser and the accessors the tracker uses allocate nothing: counted with a global
//! allocator over every SIP message of the captures in captures/.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A counting global allocator must implement the unsafe GlobalAlloc trait; it only forwards to System.
#![allow(unsafe_code)]

use sipcdr::capture::decode::{Decoder, L4};
use sipcdr::capture::file::read_file;
use sipcdr::sip::sdp::{audio_on_hold, find_sdp};
use sipcdr::sip::value::{NameAddr, cseq, delta_seconds, q850_cause, uri_user, via_branch};
use sipcdr::sip::{Framing, Message, find_call_id, looks_like_sip};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut payloads = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let mut d = Decoder::default();
    for f in &files {
        read_file(f, |p| {
            if let Ok(x) = d.decode(p.linktype, p.data, p.ts)
                && let L4::Udp(u) = x.l4
                && looks_like_sip(u)
            {
                payloads.push(u.to_vec());
            }
        })
        .unwrap();
    }
    assert!(
        payloads.len() > 50,
        "too few SIP messages: {}",
        payloads.len()
    );
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut sink = 0usize;
    for p in &payloads {
        sink += find_call_id(p).map_or(0, <[u8]>::len);
        let m = Message::parse(p, Framing::Datagram).unwrap();
        sink += m.cseq.and_then(cseq).map_or(0, |(n, _)| n as usize);
        for v in [m.from, m.to].into_iter().flatten() {
            let n = NameAddr::parse(v);
            sink += n.tag().map_or(0, <[u8]>::len) + uri_user(n.uri).len();
        }
        sink += m.via.and_then(via_branch).map_or(0, <[u8]>::len);
        sink += m.reasons().filter_map(q850_cause).count();
        sink += m.session_expires.and_then(delta_seconds).unwrap_or(0) as usize;
        sink += find_sdp(m.content_type, m.body)
            .and_then(audio_on_hold)
            .map_or(0, usize::from);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    std::hint::black_box(sink);
    if allocs != 0 {
        println!(
            "alloc: FAILED: {allocs} allocations while parsing {} messages",
            payloads.len()
        );
        println!("alloc: 0 passed, 1 failed");
        std::process::exit(1);
    }
    println!(
        "alloc: parsed {} messages with 0 heap allocations",
        payloads.len()
    );
    println!("alloc: 1 passed, 0 failed");
}
