//! The floor for end-to-end throughput: reads every packet of the given capture files with the
//! same reader sipcdr uses, and does nothing else but count them. `--mmap` first: the reader of
//! sipcdr's `--mmap` (the file mapped into memory instead of read).
//! `cargo run --release --example floor -- [--mmap] FILE…`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut packets = 0u64;
    let mut bytes = 0u64;
    let mut args = std::env::args_os().skip(1).peekable();
    let mapped = args.next_if(|a| a == "--mmap").is_some();
    for path in args {
        let on_packet = |p: sipcdr::capture::file::Packet<'_>| {
            packets += 1;
            bytes += p.data.len() as u64;
        };
        let r = if mapped {
            sipcdr::capture::file::read_file_mapped(path.as_ref(), on_packet)
        } else {
            sipcdr::capture::file::read_file(path.as_ref(), on_packet)
        };
        if let Err(e) = r {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{packets} packets, {bytes} bytes");
    ExitCode::SUCCESS
}
