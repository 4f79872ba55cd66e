#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests: the sipcdr binary on real captures.
//! - `golden`: every `captures/*.pcap` recorded from real sipp peers (scripts/record-captures.sh)
//!   gives exactly its committed `captures/*.csv`, with 1 and with 4 shards.
//! - `cli`: errors name the file and offset and keep what was read; rotation; BPF filters.
//! - `broken_files`: wrong magic, unknown pcapng blocks, snaplen 0, truncated and corrupt pcapng.
//! - `disk_full`: live mode holds CDRs while the disk is full and writes each once when space returns.
//! - `signals`: SIGKILL leaves valid files; SIGTERM keeps every record.
//! - `torture`: the sipp calls replayed over TCP cut, shuffled, duplicated and truncated.
//! - `encaps`: a call inside each encapsulation of issue #4 gives the CDRs of the plain call.
//! - `semantics`: issue #5's columns (leg roles, sessions, transfers, media, holds) on the proxy,
//!   fork, B2BUA, transfer, early-media, UPDATE-hold and PRACK captures, read by column name.
//! - `follow`: `--follow` reads a capture while the test is still writing it, until a signal.

mod broken_files;
mod cli;
mod disk_full;
mod encaps;
mod follow;
mod formats;
mod formulas;
mod fuzz_corpus;
mod generated;
mod golden;
mod hostile;
mod redirect;
mod semantics;
mod signals;
mod torture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn sipcdr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args(args)
        .output()
        .expect("run sipcdr")
}

pub fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}
