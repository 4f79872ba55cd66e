use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn main() -> ExitCode {
    let args = sipcdr::cli::Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    // SIGTERM/SIGINT: stop capturing, end open legs, flush and rename every file. A second one
    // exits at once (files already renamed stay valid; the current one stays `.part`).
    for sig in [SIGTERM, SIGINT] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("sipcdr: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let run = sipcdr::config::Config::from_args(&args)
        .and_then(|cfg| sipcdr::pipeline::run(&cfg, Arc::clone(&stop)));
    match run {
        Ok(summary) => {
            if !args.quiet {
                eprintln!("{summary}");
            }
            if summary.capture.file_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                if args.quiet {
                    for e in &summary.capture.file_errors {
                        eprintln!("sipcdr: {e}");
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
