//! Live capture from network interfaces with libpcap (the `pcap` crate). One capture thread
//! polls every interface without blocking, so a stop request is honoured within milliseconds
//! even when the wire is quiet, and wall-clock ticks keep timers running while no packet
//! arrives. The router never blocks here: a shard that falls behind loses batches, counted.

use super::collector::Collector;
use super::{CaptureConfig, CaptureStats, Stage, route::Router};
use crate::metrics::Metrics;
use crate::time::Timestamp;
use anyhow::{Context, Result};
use pcap::{Active, Capture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Packets read from one interface before looking at the next (fairness between interfaces).
const BURST: usize = 256;
/// Sleep when no interface had a packet.
const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Kernel and interface drops reported by libpcap, summed over interfaces.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveStats {
    pub received: u64,
    pub kernel_dropped: u64,
    pub interface_dropped: u64,
}

struct Iface {
    name: String,
    cap: Capture<Active>,
    linktype: u32,
}

/// Opens every interface: snaplen 65535, the kernel buffer, promiscuous mode, immediate mode,
/// the BPF filter (in the kernel), non-blocking reads. Errors name the interface.
fn open(cfg: &CaptureConfig) -> Result<Vec<Iface>> {
    cfg.interfaces
        .iter()
        .map(|name| {
            let ctx = || format!("interface {name}");
            let buffer = i32::try_from(cfg.buffer_size).unwrap_or(i32::MAX);
            let mut cap = Capture::from_device(name.as_str())
                .with_context(ctx)?
                .snaplen(65535)
                .buffer_size(buffer)
                .promisc(cfg.promisc)
                .immediate_mode(true)
                .open()
                .with_context(|| format!("cannot capture on interface {name}"))?;
            if let Some(f) = &cfg.filter {
                cap.filter(f, true).with_context(|| {
                    format!("interface {name}: invalid filter expression '{f}'")
                })?;
            }
            let cap = cap.setnonblock().with_context(ctx)?;
            let linktype = cap.get_datalink().0 as u32;
            Ok(Iface {
                name: name.clone(),
                cap,
                linktype,
            })
        })
        .collect()
}

/// Captures until `stop` is set, then hands over what is buffered and returns.
pub fn run(
    cfg: &CaptureConfig,
    router: Router,
    stop: &AtomicBool,
    metrics: Arc<Metrics>,
) -> Result<CaptureStats> {
    let mut ifaces = open(cfg)?;
    let mut hep = cfg.hep_listen.as_deref().map(Collector::bind).transpose()?;
    if let Some(user) = &cfg.user {
        drop_privileges(user)?;
    }
    let mut sources: Vec<String> = ifaces.iter().map(|i| i.name.clone()).collect();
    if let Some(a) = hep.as_ref().and_then(Collector::local_addr) {
        sources.push(format!("HEP udp+tcp {a}"));
    }
    eprintln!("sipcdr: listening on {}", sources.join(", "));
    let mut stage = Stage::new(cfg, router, Arc::clone(&metrics));
    let mut last_second = 0;
    let mut clock = TickClock::default();
    let closed = || anyhow::anyhow!("a tracker thread stopped early; capture aborted");
    while !stop.load(Ordering::Relaxed) {
        // Once a second: the kernel's and the interfaces' drop counts, for the stats line.
        let second = crate::time::wall_clock().as_micros() / 1_000_000;
        if second != last_second {
            last_second = second;
            // Time passes for timers on a quiet wire too, in capture time.
            if let Some(now) = clock.now(crate::time::wall_clock()) {
                stage.tick(now).map_err(|_| closed())?;
            }
            let live = drops(&mut ifaces);
            let g = &metrics.capture;
            g.kernel_drops.store(live.kernel_dropped, Ordering::Relaxed);
            g.interface_drops
                .store(live.interface_dropped, Ordering::Relaxed);
        }
        let mut got = 0;
        for i in &mut ifaces {
            for _ in 0..BURST {
                let p = match i.cap.next_packet() {
                    Ok(p) => p,
                    Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => break,
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading interface {}", i.name));
                    }
                };
                got += 1;
                let h = p.header;
                // time_t and suseconds_t are 32-bit on some targets.
                #[allow(clippy::useless_conversion)]
                let ts = Timestamp::from_micros(
                    i64::from(h.ts.tv_sec) * 1_000_000 + i64::from(h.ts.tv_usec),
                );
                let stats = &mut stage.stats;
                stats.packets += 1;
                stats.bytes += p.data.len() as u64;
                if (h.len as usize) > p.data.len() {
                    stats.snaplen_cut += 1;
                }
                stage.packet(i.linktype, ts, p.data).map_err(|_| closed())?;
            }
        }
        if let Some(c) = hep.as_mut() {
            let now = crate::time::wall_clock();
            got += c.poll(BURST, |b| stage.hep(b, now).map_err(|_| closed()))?;
        }
        if got == 0 {
            // Quiet wire: time still passes for session timers and reassembly timeouts.
            if let Some(now) = clock.now(crate::time::wall_clock()) {
                stage.tick(now).map_err(|_| closed())?;
            }
            std::thread::sleep(IDLE_SLEEP);
        } else if let Some(c) = stage.router.clock() {
            clock.saw(c, crate::time::wall_clock());
        }
    }
    stage.stats.live = Some(drops(&mut ifaces));
    stage.stats.collector = hep.map(|c| c.stats);
    stage.finish()
}

/// Capture time for the ticks of a live run while no packet comes: the newest capture time moved
/// on by the wall time since it was seen (none before the first packet: nothing waits yet). A
/// packet's time is the capture's (the kernel's, or the HEP agent's, which need not agree with
/// ours): ticks in plain wall time fired the setup and `--max-duration` timers of calls stamped
/// more than 300 s behind it between two of their messages (seen in the HEP-over-TCP live test,
/// whose recorded agent times are days old).
#[derive(Default)]
struct TickClock {
    /// (capture time, wall time when it was seen).
    anchor: Option<(Timestamp, Timestamp)>,
}

impl TickClock {
    fn saw(&mut self, capture: Timestamp, wall: Timestamp) {
        self.anchor = Some((capture, wall));
    }

    fn now(&self, wall: Timestamp) -> Option<Timestamp> {
        let (capture, at) = self.anchor?;
        let passed = wall.as_micros().saturating_sub(at.as_micros()).max(0);
        Some(Timestamp::from_micros(
            capture.as_micros().saturating_add(passed),
        ))
    }
}

/// libpcap's counters, summed over the interfaces.
fn drops(ifaces: &mut [Iface]) -> LiveStats {
    let mut live = LiveStats::default();
    for i in ifaces {
        if let Ok(s) = i.cap.stats() {
            live.received += u64::from(s.received);
            live.kernel_dropped += u64::from(s.dropped);
            live.interface_dropped += u64::from(s.if_dropped);
        }
    }
    live
}

/// Switches the whole process (every thread) to `name`'s user and groups. Capture handles already
/// open keep working; nothing later can open a new one or write where that user cannot.
fn drop_privileges(name: &str) -> Result<()> {
    use nix::unistd::{User, initgroups, setgid, setuid};
    let user = User::from_name(name)
        .with_context(|| format!("--user {name}: cannot look up the user"))?
        .with_context(|| format!("--user {name}: no such user"))?;
    let cname = std::ffi::CString::new(name).context("--user: a name with a NUL byte")?;
    initgroups(&cname, user.gid).with_context(|| format!("--user {name}: cannot set groups"))?;
    setgid(user.gid).with_context(|| format!("--user {name}: cannot set group id"))?;
    setuid(user.uid).with_context(|| format!("--user {name}: cannot set user id"))?;
    eprintln!(
        "sipcdr: running as {name} (uid {}, gid {})",
        user.uid, user.gid
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_capture_clock_from_the_newest_packet() {
        let t = Timestamp::from_secs;
        let mut c = TickClock::default();
        assert_eq!(c.now(t(1000)), None); // no packet yet: no tick
        // An agent stamping packets 9 days behind our clock: ticks stay on its time.
        let behind = 1000 - 9 * 86_400;
        c.saw(t(behind), t(1000));
        assert_eq!(c.now(t(1002)), Some(t(behind + 2)));
        // The wall clock stepping back moves nothing back.
        assert_eq!(c.now(t(990)), Some(t(behind)));
    }
}
