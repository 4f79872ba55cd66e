//! The floor for end-to-end throughput: reads every packet of the given capture files with the
//! same reader sipcdr uses, and does nothing else but count them.
//! `cargo run --release --example floor -- FILE…`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut packets = 0u64;
    let mut bytes = 0u64;
    for path in std::env::args_os().skip(1) {
        let r = sipcdr::capture::file::read_file(path.as_ref(), |p| {
            packets += 1;
            bytes += p.data.len() as u64;
        });
        if let Err(e) = r {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{packets} packets, {bytes} bytes");
    ExitCode::SUCCESS
}
