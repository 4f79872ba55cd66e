//! What a first touch of memory costs on this host: writes one byte in every 4 KiB page of a fresh
//! MiB-sized block, frees it, then does the same with a second block at once, and prints both
//! times per MiB. Where the pages are at hand both are the kernel zeroing them (0.4-0.8 ms a MiB
//! for the second block on this project's VM). In a VM whose host takes freed guest memory back
//! (virtio-balloon free page reporting), the first can cost tens of times more (1.9-12 ms a MiB
//! there): every page the guest had given back is faulted in on the host again. The second
//! block reuses the pages the first just freed, before they are reported.
//! Every figure in the README's performance table that touches a lot of memory (the 1 M open
//! legs above all, and the CSV written into the page cache) moves with it.
//! `cargo run --release --example touch -- [MiB]` (default 256)

use std::time::Instant;

fn touch(mib: usize) -> f64 {
    let len = mib << 20;
    #[allow(clippy::disallowed_methods)] // a wall-clock probe of the host, not product code
    let t0 = Instant::now();
    // Zeroed memory from the kernel (calloc maps it): no page is touched until written.
    let mut block = vec![0u8; len];
    for i in (0..len).step_by(4096) {
        if let Some(b) = block.get_mut(i) {
            *b = 1;
        }
    }
    std::hint::black_box(&block);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(block);
    ms
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
        .max(1);
    let first = touch(mib);
    let again = touch(mib);
    let per = |ms: f64| ms / mib as f64;
    println!(
        "first touch of {mib} MiB: {first:.0} ms ({:.2} ms/MiB); again at once: {again:.0} ms ({:.2} ms/MiB)",
        per(first),
        per(again)
    );
}
