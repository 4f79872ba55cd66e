#![deny(clippy::indexing_slicing)] // as in the library (src/lib.rs)

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v2's `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc.h), for which
/// libmimalloc-sys names no constant. (Checked by a test against the option's default, 10 ms.)
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory stays with the allocator instead of going back to the kernel 10 ms after a page
/// empties (mimalloc's default purge): the pages came back at once for new calls, each a fresh
/// page fault with a page to zero. At 1 M open legs a run took 18 869 page faults, 597 without
/// purging; alternating runs: 7.39 -> 6.93 s there, 0.69 -> 0.66 s on the all-SIP file (medians
/// of 3 and 9). The resident size then stays at its high-water mark, which under a steady load is
/// where it is anyway (scripts/rss-run.sh). An explicit `MIMALLOC_PURGE_DELAY` in the environment
/// is left to rule.
#[allow(unsafe_code)] // the one FFI call of the product: an allocator option
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores a value in mimalloc's option table; it has no
        // preconditions and may be called from any thread at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// No transparent huge pages for this process (`PR_SET_THP_DISABLE`, what
/// `MIMALLOC_ALLOW_THP=0` does), unless `MIMALLOC_ALLOW_THP` in the environment says otherwise.
/// On this project's VM a huge page's first touch is a host fault for all its 2 MiB, whether the
/// process uses them or not; with 4 KiB pages, alternating runs (8 and 3 each) went 1.34 -> 1.05 s
/// on the 1 GB all-SIP file (peak RSS 63 -> 37 MiB, sys 0.68 -> 0.23 s) and 14.25 -> 9.90 s at
/// 1 M open legs (sys 7.2 -> 1.8 s; user +6 %, the price in TLB misses). Session 9 had measured
/// the opposite at 1 M open legs (12.90 -> 14.06 s): README, design decisions.
fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none()
        && let Err(e) = nix::sys::prctl::set_thp_disable(true)
    {
        eprintln!("sipcdr: cannot turn transparent huge pages off ({e}); running with them");
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    no_huge_pages();
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

#[cfg(test)]
mod tests {
    /// `MI_OPTION_PURGE_DELAY` names the purge delay: its default is mimalloc v2's 10 ms.
    #[test]
    #[allow(unsafe_code)]
    fn the_option_index_is_the_purge_delay() {
        // SAFETY: mi_option_get reads mimalloc's option table; no preconditions.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(v, 10);
    }
}
