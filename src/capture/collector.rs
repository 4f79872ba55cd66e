//! The HEP collector (`--hep-listen ADDR:PORT`): HEP v1-v3 packets from Kamailio's siptrace,
//! OpenSIPS, FreeSWITCH or heplify, over UDP (one packet per datagram) and TCP (HEP3 packets
//! framed by their length field), fed to the same pipeline as captured packets. Sockets are
//! non-blocking and polled by the capture thread, like the interfaces.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

/// TCP connections served at once; more are refused (counted).
const MAX_CONNS: usize = 256;
/// Bytes one TCP connection may hold while a HEP packet is incomplete.
const MAX_CONN_BYTES: usize = 1 << 20;
/// Largest HEP3 packet accepted over TCP (its length field is 16 bits).
const MAX_HEP: usize = 65_535;

/// What the collector saw, for the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct CollectorStats {
    pub udp_packets: u64,
    pub tcp_packets: u64,
    pub tcp_connections: u64,
    /// Connections closed for bytes that are not HEP3 framing, or refused past the cap.
    pub tcp_bad: u64,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
}

pub struct Collector {
    udp: UdpSocket,
    tcp: TcpListener,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    pub stats: CollectorStats,
}

impl Collector {
    /// Binds UDP and TCP on `addr`.
    pub fn bind(addr: &str) -> Result<Collector> {
        let udp = UdpSocket::bind(addr).with_context(|| format!("--hep-listen: UDP {addr}"))?;
        let tcp = TcpListener::bind(udp.local_addr()?)
            .with_context(|| format!("--hep-listen: TCP {addr}"))?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok(Collector {
            udp,
            tcp,
            conns: Vec::new(),
            scratch: vec![0; MAX_HEP],
            stats: CollectorStats::default(),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp.local_addr().ok()
    }

    /// Reads what is waiting (at most `burst` UDP packets), handing each HEP packet to `each`.
    /// Returns how many packets it handed over.
    pub fn poll(
        &mut self,
        burst: usize,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<usize> {
        let mut n = 0;
        for _ in 0..burst {
            match self.udp.recv_from(&mut self.scratch) {
                Ok((len, _)) => {
                    self.stats.udp_packets += 1;
                    n += 1;
                    each(self.scratch.get(..len).unwrap_or_default())?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break, // e.g. ICMP errors reported on the socket: not ours to fix
            }
        }
        while let Ok((stream, peer)) = self.tcp.accept() {
            if self.conns.len() >= MAX_CONNS || stream.set_nonblocking(true).is_err() {
                self.stats.tcp_bad += 1;
                continue;
            }
            self.stats.tcp_connections += 1;
            self.conns.push(Conn {
                stream,
                peer,
                buf: Vec::new(),
            });
        }
        let mut i = 0;
        while i < self.conns.len() {
            let Some(c) = self.conns.get_mut(i) else {
                break;
            };
            let mut open = true;
            loop {
                match c.stream.read(&mut self.scratch) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(len) => c
                        .buf
                        .extend_from_slice(self.scratch.get(..len).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
                if c.buf.len() > MAX_CONN_BYTES {
                    break;
                }
            }
            // Cut HEP3 packets by their length field.
            let mut at = 0;
            while let Some(rest) = c.buf.get(at..) {
                let Some(&[_, _, _, _, hi, lo]) = rest.first_chunk::<6>() else {
                    break;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if !rest.starts_with(b"HEP3") || len < 6 {
                    eprintln!(
                        "sipcdr: HEP over TCP from {}: not HEP3 framing at byte {at}; connection dropped",
                        c.peer
                    );
                    self.stats.tcp_bad += 1;
                    open = false;
                    break;
                }
                let Some(packet) = rest.get(..len) else {
                    break;
                };
                self.stats.tcp_packets += 1;
                n += 1;
                each(packet)?;
                at += len;
            }
            c.buf.drain(..at.min(c.buf.len()));
            if !open || c.buf.len() > MAX_CONN_BYTES {
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        Ok(n)
    }
}
