#![deny(clippy::indexing_slicing)] // as in the library (src/lib.rs)

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = match sipcdr::cli::parse() {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let ctl = sipcdr::pipeline::Control::default();
    let stop = &ctl.stop;
    // SIGTERM/SIGINT: stop capturing, end open legs, flush and rename every file. A second one
    // exits at once (files already renamed stay valid; the current one stays `.part`).
    // SIGHUP: close the current file now (the next record opens a new one).
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        let registered = if sig == SIGHUP {
            signal_hook::flag::register(sig, Arc::clone(&ctl.rotate))
        } else {
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(stop))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(stop)))
        };
        if let Err(e) = registered {
            eprintln!("sipcdr: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let run =
        sipcdr::config::Config::from_args(&args).and_then(|cfg| sipcdr::pipeline::run(&cfg, &ctl));
    match run {
        Ok(summary) => {
            if !args.quiet {
                eprintln!("{summary}");
            }
            if summary.capture.file_errors.is_empty() && summary.capture.interrupted.is_none() {
                ExitCode::SUCCESS
            } else {
                if args.quiet {
                    for e in &summary.capture.file_errors {
                        eprintln!("sipcdr: {e}");
                    }
                    if let Some(n) = summary.capture.interrupted {
                        eprintln!("sipcdr: interrupted by a signal after packet #{n}");
                    }
                }
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("sipcdr: {e:#}");
            ExitCode::FAILURE
        }
    }
}
