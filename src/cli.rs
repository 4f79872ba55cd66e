//! Command-line flags, exactly as typed. [`crate::config::Config::from_args`] validates them.

use clap::{CommandFactory, Parser};
use std::path::PathBuf;

/// Turns SIP signalling in pcap/pcapng captures into per-leg call detail records (CSV).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "sipcdr",
    version,
    args_override_self = true,
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

    /// Keep reading the last -r FILE while it grows (written by tcpdump -w, -U): wait at its end
    /// and at a partial record until SIGTERM or SIGINT, then end open legs and exit 0.
    #[arg(long, requires = "read")]
    pub follow: bool,

    /// Map the -r files into memory instead of copying them with read(2): 0-6 % faster on a
    /// warm page cache here. The files must not change while sipcdr reads them: one cut
    /// shorter kills it with SIGBUS. A file being written goes through --follow, which reads.
    #[arg(long, requires = "read", conflicts_with = "follow")]
    pub mmap: bool,

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

    /// Most legs open at once (split evenly over the shards); past it the oldest unanswered
    /// legs are ended with reason 'evicted' and counted (0 = no cap).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_dialogs: usize,

    /// Records to write, comma-separated: 'stop' (one per leg when it ends, the complete row),
    /// 'attempt' (at the initial INVITE) and 'start' (at the answer) for real-time consumers.
    #[arg(
        long,
        value_name = "TYPES",
        value_delimiter = ',',
        default_value = "stop"
    )]
    pub records: Vec<String>,

    /// A leg without a final response this long after its INVITE ends with reason 'timeout'
    /// (capture time; 0 = never).
    #[arg(long, value_name = "DURATION", default_value = "300s")]
    pub setup_timeout: String,

    /// An answered leg without session timer and without signalling this long ends with reason
    /// 'timeout' (capture time; 0 = never).
    #[arg(long, value_name = "DURATION", default_value = "4h")]
    pub max_duration: String,

    /// Hangup causes (Q.850 names, comma-separated, e.g. NO_ANSWER,USER_BUSY) that write no
    /// stop record, like FreeSWITCH's skip_cdr_causes.
    #[arg(long, value_name = "CAUSES", value_delimiter = ',')]
    pub skip_causes: Vec<String>,

    /// A header of the initial INVITE whose value is the Call-ID (or any token) of the session
    /// the leg belongs to, e.g. X-CID from a B2BUA; repeat for several, in order of preference.
    /// An RFC 7989 Session-ID header is used before these.
    #[arg(long, value_name = "HEADER")]
    pub correlate_header: Vec<String>,

    /// Link a B2BUA's two sides: an outgoing INVITE from our networks (--local-net) with the same
    /// caller and destination numbers as an incoming one at most 2 s before it joins its session.
    #[arg(long)]
    pub correlate_heuristic: bool,

    /// Prefix text fields from the wire that start with =, +, -, @, TAB or CR with ' so that
    /// spreadsheets show them as text, not as formulas (CSV injection).
    #[arg(long)]
    pub csv_safe: bool,

    /// Most bytes one TCP flow may buffer (an unfinished message plus out-of-order segments).
    #[arg(long, value_name = "SIZE", default_value = "256K")]
    pub tcp_max_flow_bytes: String,

    /// Most bytes all TCP flows together may buffer.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub tcp_max_bytes: String,

    /// Most TCP flows (one direction of a connection each) reassembled at once; segments of
    /// further new flows are not read (counted as refused).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          default_value_t = crate::capture::stream::DEFAULT_MAX_FLOWS as u32)]
    pub tcp_max_flows: u32,

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

    /// Run the capture, tracker and writer threads under real-time scheduling (SCHED_FIFO,
    /// priority 1): each runs until it waits for the next stage, and none waits for a CPU while
    /// another is idle. Needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO limit; without, a warning
    /// and normal scheduling. Other programs get a CPU only when these threads wait (or the
    /// kernel's 5 % reserve): for dedicated machines and offline runs.
    #[arg(long)]
    pub realtime: bool,

    /// Read options from a TOML file first (keys are the long flag names, e.g. interface = ["eth1"],
    /// rotate-interval = "15m", filter = "port 5060"); flags on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

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

/// Parses the command line, first reading `--config FILE` if it is given: the file's options come
/// before the command line's, so a flag typed on the command line overrides the file's value
/// (list options, such as `interface`, add to it).
pub fn parse() -> Result<Args, clap::Error> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let Some(path) = config_path(&argv) else {
        return Args::try_parse_from(argv);
    };
    let from_file = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| config_args(&text))
    {
        Ok(a) => a,
        Err(e) => {
            let msg = format!("--config {}: {e}", path.display());
            return Err(Args::command().error(clap::error::ErrorKind::InvalidValue, msg));
        }
    };
    let (mut flags, mut filter) = (Vec::new(), Vec::new());
    for (is_filter, word) in from_file {
        if is_filter {
            filter.push(word);
        } else {
            flags.push(word);
        }
    }
    let mut all: Vec<std::ffi::OsString> = argv.iter().take(1).cloned().collect();
    all.extend(flags.into_iter().map(Into::into));
    all.extend(argv.iter().skip(1).cloned());
    let mut args = Args::try_parse_from(all)?;
    if args.filter.is_empty() {
        args.filter = filter;
    }
    Ok(args)
}

fn config_path(argv: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// The flags a TOML config file stands for, as (is the capture filter, word). Unknown keys and
/// values of the wrong kind are errors that name the key.
fn config_args(text: &str) -> Result<Vec<(bool, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let cmd = Args::command();
    let mut out = Vec::new();
    for (key, value) in &table {
        if key == "filter" {
            match value {
                toml::Value::String(s) => {
                    out.extend(s.split_whitespace().map(|w| (true, w.into())))
                }
                _ => return Err("filter: expected a string, e.g. \"port 5060\"".into()),
            }
            continue;
        }
        let arg = cmd
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(key.as_str())
                    && key != "config"
                    && key != "help"
                    && key != "version"
            })
            .ok_or_else(|| format!("unknown key '{key}'"))?;
        let takes_value = arg.get_action().takes_values();
        let flag = format!("--{key}");
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(n) => Ok(n.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                other => Err(format!(
                    "{key}: expected a string or a number, not {}",
                    other.type_str()
                )),
            }
        };
        match (takes_value, value) {
            (false, toml::Value::Boolean(true)) => out.push((false, flag)),
            (false, toml::Value::Boolean(false)) => {}
            (false, other) => {
                return Err(format!(
                    "{key}: expected true or false, not {}",
                    other.type_str()
                ));
            }
            (true, toml::Value::Array(items)) => {
                for v in items {
                    out.push((false, flag.clone()));
                    out.push((false, scalar(v)?));
                }
            }
            (true, v) => {
                out.push((false, flag));
                out.push((false, scalar(v)?));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_become_flags_and_unknown_keys_fail() {
        let text = r#"
interface = ["eth1", "eth2"]
rotate-interval = "15m"
shards = 3
no-promisc = true
quiet = false
filter = "udp port 5060"
"#;
        let words = config_args(text).unwrap();
        let flags: Vec<&str> = words
            .iter()
            .filter(|w| !w.0)
            .map(|w| w.1.as_str())
            .collect();
        assert_eq!(
            flags,
            [
                "--interface",
                "eth1",
                "--interface",
                "eth2",
                "--no-promisc",
                "--rotate-interval",
                "15m",
                "--shards",
                "3"
            ]
        );
        let filter: Vec<&str> = words.iter().filter(|w| w.0).map(|w| w.1.as_str()).collect();
        assert_eq!(filter, ["udp", "port", "5060"]);
        assert_eq!(
            config_args("colour = 1").unwrap_err(),
            "unknown key 'colour'"
        );
        assert!(
            config_args("quiet = 1")
                .unwrap_err()
                .contains("expected true or false")
        );
        assert!(config_args("shards = [").is_err(), "TOML syntax");
        assert_eq!(
            config_args("config = \"x\"").unwrap_err(),
            "unknown key 'config'"
        );
    }
}
