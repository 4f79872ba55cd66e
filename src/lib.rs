//! sipcdr: a passive SIP sniffer that turns signalling seen on the wire into per-leg call detail
//! records.
//!
//! # Layout
//! The modules follow the pipeline, one stage each:
//! - [`capture`]: reads pcap/pcapng files, decodes link, IP (with reassembly and tunnels), UDP
//!   and TCP (with stream reassembly), and routes each SIP message to a shard by Call-ID.
//! - [`sip`]: the zero-copy SIP parser: pure functions over bytes.
//! - [`tracker`]: per-shard dialog state machines; emits a [`cdr::Cdr`] when a leg ends.
//! - [`cdr`]: the record, its Q.850 causes and its CSV schema.
//! - [`correlate`]: after the shards, links legs with different Call-IDs (B2BUA heuristic, blind
//!   transfers) by rewriting their ids.
//! - [`writer`]: merges the shards' output into input order and writes rotating CSV files.
//! - [`pipeline`]: the one file that spawns threads and creates channels.
//!
//! [`time`] (packet time) is the only leaf shared by all stages; [`cli`] and [`config`] turn flags
//! into one validated configuration per stage.

// No `unsafe` but one: `capture::file::map`, the opt-in `--mmap` (the crate-wide lint in
// Cargo.toml denies it everywhere else).
#![deny(unsafe_code)]
// Bytes from the wire and from files must never panic the process: no `a[i]` or `a[x..y]` that
// can be out of bounds. Each exception is an `#[allow]` with the reason it cannot fail. Tests may
// index (clippy.toml).
#![deny(clippy::indexing_slicing)]

pub mod capture;
pub mod cdr;
pub mod cli;
pub mod config;
pub mod correlate;
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod pipeline;
pub mod sip;
pub mod time;
pub mod timers;
pub mod tracker;
pub mod writer;
