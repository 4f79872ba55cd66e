use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = sipcdr::cli::Args::parse();
    let run = sipcdr::config::Config::from_args(&args).and_then(|cfg| sipcdr::pipeline::run(&cfg));
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
