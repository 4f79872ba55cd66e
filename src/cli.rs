//! Command-line flags, exactly as typed. [`crate::config::Config::from_args`] validates them.

use clap::Parser;
use std::path::PathBuf;

/// Turns SIP signalling in pcap/pcapng captures into per-leg call detail records (CSV).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "sipcdr",
    version,
    after_help = "Examples:\n  \
        sipcdr -r trace.pcap                       CDRs into ./cdr/cdr-<time>.csv\n  \
        sipcdr -r a.pcapng -r b.pcap -o - port 5060   both files as one capture, CSV on stdout, BPF filter\n  \
        sipcdr -r day.pcap --rotate-interval 15m --local-net 10.0.0.0/8\n  \
        sipcdr -i eth1 -o /var/lib/sipcdr 'port 5060'  live, until SIGTERM/SIGINT\n\n\
        Exit status: 0 success; 1 error; 2 usage error; 3 some input could not be read to its end, or\n\
        reading files was interrupted by SIGTERM/SIGINT (CDRs for everything read before were still\n\
        written). Live capture stops on SIGTERM/SIGINT with status 0."
)]
pub struct Args {
    /// Read packets from FILE (pcap or pcapng; repeat to read several files in order, as one capture).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        required_unless_present_any = ["interface", "hep_listen"],
        conflicts_with_all = ["interface", "hep_listen"]
    )]
    pub read: Vec<PathBuf>,

    /// Capture live on IFACE (repeat for several, or 'any'); runs until SIGTERM or SIGINT.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,

    /// Receive HEP v1-v3 from capture agents (Kamailio siptrace, OpenSIPS, FreeSWITCH, heplify) on
    /// ADDR:PORT over UDP and TCP; alone or beside -i. Runs until SIGTERM or SIGINT.
    #[arg(long, value_name = "ADDR:PORT")]
    pub hep_listen: Option<String>,

    /// Kernel capture buffer per interface in live mode.
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub buffer_size: String,

    /// Do not put the interfaces into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Live: after opening the interfaces, run as USER (like tcpdump -Z); --out-dir must be
    /// writable by USER.
    #[arg(short = 'Z', long, value_name = "USER")]
    pub user: Option<String>,

    /// Directory for CDR files, or '-' for standard output.
    #[arg(
        short = 'o',
        long = "out-dir",
        value_name = "DIR",
        default_value = "./cdr"
    )]
    pub out_dir: String,

    /// Tracker threads; calls are sharded over them by Call-ID [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,

    /// Start a new file for each interval of CDR end time (e.g. 15m, 1h, 1d; 0 = never).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub rotate_interval: String,

    /// Also start a new file once a file reaches SIZE (e.g. 100M).
    #[arg(long, value_name = "SIZE")]
    pub rotate_size: Option<String>,

    /// Compress each CDR file (written as NAME.csv.zst; only with --out-dir).
    #[arg(long, value_name = "ALGORITHM")]
    pub compress: Option<crate::writer::Compression>,

    /// Our networks (CIDR, comma-separated or repeated): sets the direction column.
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    pub local_net: Vec<String>,

    /// Most bytes one TCP flow may buffer (an unfinished message plus out-of-order segments).
    #[arg(long, value_name = "SIZE", default_value = "256K")]
    pub tcp_max_flow_bytes: String,

    /// Most bytes all TCP flows together may buffer.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub tcp_max_bytes: String,

    /// Decode HEP (HOMER encapsulation, v1-v3) sent to this UDP port: the CDRs get the original
    /// addresses, transport and time of each message (0 = do not decode HEP).
    #[arg(long, value_name = "PORT", default_value_t = crate::capture::hep::DEFAULT_PORT)]
    pub hep_port: u16,

    /// Print a stats line on standard error this often (packets/s, SIP messages/s, drops, open
    /// legs, CDRs written, memory; 0 = never).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub stats_interval: String,

    /// Serve Prometheus metrics (the stats line's counters, calls by reason, answer-seizure ratio)
    /// over HTTP on ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// Do not print the summary on standard error.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Capture filter in tcpdump (BPF) syntax, e.g. 'udp port 5060 or tcp port 5060'.
    #[arg(
        value_name = "FILTER",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub filter: Vec<String>,
}
