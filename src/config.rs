//! Validated configuration, split into one part per stage. `cli::Args` holds the flags as typed;
//! [`Config::from_args`] checks them and fills in defaults.

use crate::capture::CaptureConfig;
use crate::capture::stream::StreamConfig;
use crate::tracker::TrackerConfig;
use crate::writer::{Output, WriterConfig};
use anyhow::{Context, Result, bail};
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Debug)]
pub struct Config {
    pub capture: CaptureConfig,
    pub tracker: TrackerConfig,
    pub writer: WriterConfig,
    /// Tracker threads (Call-ID shards).
    pub shards: usize,
    /// Print a stats line on stderr this often.
    pub stats_interval: Option<std::time::Duration>,
    /// Serve Prometheus metrics on this address.
    pub metrics_listen: Option<String>,
    /// Pipeline threads under real-time scheduling (`--realtime`).
    pub realtime: bool,
}

impl Config {
    pub fn from_args(a: &crate::cli::Args) -> Result<Config> {
        let shards = match a.shards {
            Some(0) => bail!("--shards must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let filter = (!a.filter.is_empty()).then(|| a.filter.join(" "));
        let local_nets = a
            .local_net
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .with_context(|| format!("--local-net: bad CIDR '{s}'"))
            })
            .collect::<Result<Vec<_>>>()?;
        let rotate_interval = parse_duration(&a.rotate_interval)
            .with_context(|| format!("--rotate-interval: bad duration '{}'", a.rotate_interval))?;
        let secs = |flag: &str, v: &str| -> Result<u32> {
            let n = parse_duration(v).with_context(|| format!("{flag}: bad duration '{v}'"))?;
            u32::try_from(n).with_context(|| format!("{flag}: '{v}' is too long"))
        };
        let limits = crate::tracker::Limits {
            setup: secs("--setup-timeout", &a.setup_timeout)?,
            idle: secs("--max-duration", &a.max_duration)?,
        };
        let (mut attempt_records, mut start_records, mut stop_records) = (false, false, false);
        for r in &a.records {
            match r.trim() {
                "attempt" => attempt_records = true,
                "start" => start_records = true,
                "stop" => stop_records = true,
                other => bail!("--records: unknown record type '{other}' (attempt, start, stop)"),
            }
        }
        if !stop_records {
            bail!("--records must include 'stop' (the complete record of each leg)");
        }
        let skip_causes = a
            .skip_causes
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        let correlate_headers = a
            .correlate_header
            .iter()
            .map(|h| h.trim().trim_end_matches(':').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if a.correlate_heuristic && local_nets.is_empty() {
            bail!(
                "--correlate-heuristic needs --local-net: it links INVITEs our networks receive to those they send"
            );
        }
        let stats_interval = parse_duration(&a.stats_interval)
            .with_context(|| format!("--stats-interval: bad duration '{}'", a.stats_interval))?;
        let rotate_size = a
            .rotate_size
            .as_deref()
            .map(|s| parse_size(s).with_context(|| format!("--rotate-size: bad size '{s}'")))
            .transpose()?;
        let size = |flag: &str, v: &str| -> Result<usize> {
            let n = parse_size(v).with_context(|| format!("{flag}: bad size '{v}'"))?;
            usize::try_from(n).with_context(|| format!("{flag}: '{v}' is too large"))
        };
        let stream = StreamConfig {
            max_flow_bytes: size("--tcp-max-flow-bytes", &a.tcp_max_flow_bytes)?,
            max_total_bytes: size("--tcp-max-bytes", &a.tcp_max_bytes)?,
            max_flows: a.tcp_max_flows as usize,
            ..StreamConfig::default()
        };
        if a.out_dir == "-" && a.compress.is_some() {
            bail!(
                "--compress applies to files in --out-dir, not to standard output (pipe it through zstd)"
            );
        }
        let output = if a.out_dir == "-" {
            Output::Stdout
        } else {
            Output::Dir(a.out_dir.clone().into())
        };
        let capture = CaptureConfig {
            files: a.read.clone(),
            follow: a.follow,
            mmap: a.mmap,
            interfaces: a.interface.clone(),
            buffer_size: size("--buffer-size", &a.buffer_size)?,
            promisc: !a.no_promisc,
            user: a.user.clone(),
            hep_listen: a.hep_listen.clone(),
            filter,
            stream,
            hep_port: (a.hep_port != 0).then_some(a.hep_port),
        };
        if capture.user.is_some() && !capture.live() {
            bail!("--user applies to live capture (-i or --hep-listen)");
        }
        Ok(Config {
            tracker: TrackerConfig {
                local_nets,
                // The cap is split over the shards (each owns its legs, without locks).
                max_legs: (a.max_dialogs > 0).then(|| a.max_dialogs.div_ceil(shards).max(1)),
                csv_safe: a.csv_safe,
                limits,
                attempt_records,
                start_records,
                skip_causes,
                correlate_headers,
                correlate_heuristic: a.correlate_heuristic,
            },
            writer: WriterConfig {
                output,
                rotate_interval: (rotate_interval > 0).then_some(rotate_interval),
                rotate_size,
                prefix: "cdr-".into(),
                compress: a.compress,
                wall_clock: capture.live(),
            },
            capture,
            shards,
            stats_interval: (stats_interval > 0)
                .then(|| std::time::Duration::from_secs(stats_interval)),
            metrics_listen: a.metrics_listen.clone(),
            realtime: a.realtime,
        })
    }
}

/// An IPv4 or IPv6 network, `10.0.0.0/8` or a bare address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let p = u32::from(self.prefix);
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - p).unwrap_or(0);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX.checked_shl(128 - p).unwrap_or(0);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().context("not an IP address")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .context("bad prefix length")?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// `90`, `90s`, `15m`, `1h`, `1d` → seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .context("expected a number with an optional unit s, m, h or d")?;
    n.checked_mul(mult).context("too large")
}

/// `1000000`, `500k`, `100M`, `2G` (powers of 1024) → bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .context("expected a number with an optional unit k, M or G")?;
    let bytes = n.checked_mul(mult).context("too large")?;
    if bytes == 0 {
        bail!("must be larger than 0");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(argv: &[&str]) -> Result<Config> {
        let args = crate::cli::Args::try_parse_from(argv).expect("flags parse");
        Config::from_args(&args)
    }

    #[test]
    fn live_capture_is_interfaces_or_a_hep_collector() {
        let files = config(&["sipcdr", "-r", "x.pcap"]).unwrap();
        assert!(!files.capture.live() && !files.writer.wall_clock);
        for argv in [
            &["sipcdr", "-i", "lo"][..],
            &["sipcdr", "--hep-listen", "127.0.0.1:9060"],
        ] {
            let c = config(argv).unwrap();
            assert!(c.capture.live() && c.writer.wall_clock, "{argv:?}");
            let mut with_user = argv.to_vec();
            with_user.extend(["-Z", "nobody"]);
            assert!(config(&with_user).is_ok(), "{with_user:?}");
        }
        let err = config(&["sipcdr", "-r", "x.pcap", "-Z", "nobody"]).unwrap_err();
        assert!(
            err.to_string().contains("--user applies to live capture"),
            "{err}"
        );
    }

    #[test]
    fn cidrs() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let h: Cidr = "192.168.1.5".parse().unwrap();
        assert!(h.contains("192.168.1.5".parse().unwrap()));
        assert!(!h.contains("192.168.1.6".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("30").unwrap(), 30);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1").is_err());
    }
}
