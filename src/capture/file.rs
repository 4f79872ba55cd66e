//! pcap and pcapng files, read with pcap-parser into a buffer that is reused for every packet.

use crate::time::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Read buffer; grown up to [`MAX_BLOCK`] for a packet that does not fit.
const READ_BUFFER: usize = 1 << 20;
/// Largest pcap record or pcapng block accepted.
const MAX_BLOCK: usize = 256 << 20;

/// One captured frame, borrowed from the read buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub linktype: u32,
    pub ts: Timestamp,
    pub data: &'a [u8],
    /// Length on the wire (larger than `data` when the snaplen cut it).
    pub orig_len: u32,
}

/// What went wrong with a capture file, and where.
#[derive(Debug)]
pub struct FileError {
    pub path: PathBuf,
    /// Byte offset of the record or block that could not be read.
    pub offset: u64,
    /// Packets read from the file before the error.
    pub packets: u64,
    pub kind: FileErrorKind,
}

#[derive(Debug)]
pub enum FileErrorKind {
    Open(std::io::Error),
    Empty,
    NotPcap,
    Truncated,
    Corrupt(String),
    Read,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            FileErrorKind::Open(e) => write!(f, "{p}: cannot open: {e}"),
            FileErrorKind::Empty => write!(f, "{p}: empty file, not a pcap or pcapng capture"),
            FileErrorKind::NotPcap => write!(
                f,
                "{p}: not a pcap or pcapng file (unknown magic at byte 0)"
            ),
            FileErrorKind::Truncated => write!(
                f,
                "{p}: truncated at byte offset {} (after packet #{}): the last record is incomplete",
                self.offset, self.packets
            ),
            FileErrorKind::Corrupt(what) => write!(
                f,
                "{p}: corrupt record at byte offset {} (after packet #{}): {what}",
                self.offset, self.packets
            ),
            FileErrorKind::Read => write!(f, "{p}: read error at byte offset {}", self.offset),
        }
    }
}

impl std::error::Error for FileError {}

#[derive(Clone, Copy)]
struct Iface {
    linktype: u32,
    units_per_sec: u64,
    offset_secs: i64,
}

/// Reads every packet of one pcap or pcapng file (several sections and interfaces, mixed link
/// types) and hands each to `on_packet`. Returns the number of packets read.
pub fn read_file(path: &Path, on_packet: impl FnMut(Packet<'_>)) -> Result<u64, FileError> {
    read(path, None, on_packet)
}

/// `--follow`: how often a file that is still being written is looked at again.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// [`read_file`], or with `follow`, reads a file that is still being written (tcpdump -w): at its
/// end, at a partial record and before its header is complete, waits for more bytes until `follow`
/// (the stop flag) is set, then returns what was read.
pub fn read(
    path: &Path,
    follow: Option<&AtomicBool>,
    mut on_packet: impl FnMut(Packet<'_>),
) -> Result<u64, FileError> {
    let err = |offset: u64, packets: u64, kind| FileError {
        path: path.to_owned(),
        offset,
        packets,
        kind,
    };
    let stopped = || follow.is_some_and(|s| s.load(Ordering::Relaxed));
    let mut reader = loop {
        let file = File::open(path).map_err(|e| err(0, 0, FileErrorKind::Open(e)))?;
        match create_reader(READ_BUFFER, file) {
            Ok(r) => break r,
            // The writer has not finished the file header yet.
            Err(
                PcapError::Eof
                | PcapError::Incomplete(_)
                | PcapError::UnexpectedEof
                | PcapError::HeaderNotRecognized,
            ) if follow.is_some() && header_incomplete(path) => {
                if stopped() {
                    return Ok(0);
                }
                std::thread::sleep(FOLLOW_POLL);
            }
            Err(e) => return Err(open_error(path, e)),
        }
    };
    let mut consumed: u64 = 0;
    let mut packets: u64 = 0;
    let mut legacy: Option<(u32, bool)> = None; // (link type, nanosecond timestamps)
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut last_ts = Timestamp::ZERO;
    let mut capacity = READ_BUFFER;
    loop {
        match reader.next() {
            Ok((used, block)) => {
                let packet = match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = Some((h.network.0 as u32, h.is_nanosecond_precision()));
                        None
                    }
                    PcapBlockOwned::Legacy(b) => legacy.map(|(linktype, nanos)| {
                        let frac = if nanos {
                            i64::from(b.ts_usec) / 1000
                        } else {
                            i64::from(b.ts_usec)
                        };
                        let ts = Timestamp::from_micros(i64::from(b.ts_sec) * 1_000_000 + frac);
                        let len = (b.caplen as usize).min(b.data.len());
                        Packet {
                            linktype,
                            ts,
                            data: b.data.get(..len).unwrap_or_default(),
                            orig_len: b.origlen,
                        }
                    }),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        ifaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifaces.push(Iface {
                            linktype: idb.linktype.0 as u32,
                            units_per_sec: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                            offset_secs: idb.if_tsoffset,
                        });
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let Some(iface) = ifaces.get(epb.if_id as usize).copied() else {
                            let e = format!(
                                "packet names interface {} that was never described",
                                epb.if_id
                            );
                            return Err(err(consumed, packets, FileErrorKind::Corrupt(e)));
                        };
                        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let secs = (ticks / iface.units_per_sec) as i64 + iface.offset_secs;
                        let frac = u128::from(ticks % iface.units_per_sec) * 1_000_000
                            / u128::from(iface.units_per_sec);
                        let ts =
                            Timestamp::from_micros(secs.saturating_mul(1_000_000) + frac as i64);
                        let len = (epb.caplen as usize).min(epb.data.len());
                        Some(Packet {
                            linktype: iface.linktype,
                            ts,
                            data: epb.data.get(..len).unwrap_or_default(),
                            orig_len: epb.origlen,
                        })
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => ifaces.first().map(|iface| {
                        // No timestamp in a simple packet block: it gets the previous packet's.
                        let len = (spb.origlen as usize).min(spb.data.len());
                        Packet {
                            linktype: iface.linktype,
                            ts: last_ts,
                            data: spb.data.get(..len).unwrap_or_default(),
                            orig_len: spb.origlen,
                        }
                    }),
                    PcapBlockOwned::NG(_) => None,
                };
                if let Some(p) = packet {
                    packets += 1;
                    last_ts = p.ts;
                    on_packet(p);
                }
                consumed += used as u64;
                // No shift here: `consume` would move half the buffer every time it passes the middle;
                // `refill` moves only the unread tail (measured: 4.6% of all instructions).
                reader.consume_noshift(used);
            }
            // Following: wait for the writer at the end and at a partial record.
            Err(PcapError::Eof | PcapError::UnexpectedEof) if follow.is_some() => {
                if stopped() {
                    return Ok(packets);
                }
                std::thread::sleep(FOLLOW_POLL);
                if reader.refill().is_err() {
                    return Err(err(consumed, packets, FileErrorKind::Read));
                }
            }
            Err(PcapError::Eof) => return Ok(packets),
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    return Err(err(consumed, packets, FileErrorKind::Read));
                }
            }
            Err(PcapError::BufferTooSmall) => {
                capacity *= 2;
                if capacity > MAX_BLOCK || !reader.grow(capacity) || reader.refill().is_err() {
                    let e = format!("a block larger than {} MiB", MAX_BLOCK >> 20);
                    return Err(err(consumed, packets, FileErrorKind::Corrupt(e)));
                }
            }
            Err(PcapError::UnexpectedEof) => {
                return Err(err(consumed, packets, FileErrorKind::Truncated));
            }
            Err(PcapError::ReadError) => return Err(err(consumed, packets, FileErrorKind::Read)),
            Err(e) => {
                let what = match e {
                    PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                        format!("unparsable block ({kind:?})")
                    }
                    other => format!("{other:?}"),
                };
                return Err(err(consumed, packets, FileErrorKind::Corrupt(what)));
            }
        }
    }
}

/// The error for a file whose header could not be read.
fn open_error(path: &Path, e: PcapError<&[u8]>) -> FileError {
    let kind = match e {
        PcapError::Eof => FileErrorKind::Empty,
        PcapError::HeaderNotRecognized => FileErrorKind::NotPcap,
        PcapError::Incomplete(_) => FileErrorKind::Truncated,
        e => FileErrorKind::Corrupt(format!("{e:?}")),
    };
    FileError {
        path: path.to_owned(),
        offset: 0,
        packets: 0,
        kind,
    }
}

/// `--follow`: whether the file is still too short to hold its own header (tcpdump has created
/// it but not written the header, or a pcapng section header block, yet).
fn header_incomplete(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 12];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut got = 0;
    while got < head.len() {
        match f.read(head.get_mut(got..).unwrap_or_default()) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    match (got, head) {
        (0..4, _) => true,
        // pcapng: the section header block's length, in the byte order its magic gives.
        (_, [0x0a, 0x0d, 0x0d, 0x0a, l0, l1, l2, l3, m0, ..]) => {
            got < 12
                || len
                    < u64::from(if m0 == 0x4d {
                        u32::from_le_bytes([l0, l1, l2, l3])
                    } else {
                        u32::from_be_bytes([l0, l1, l2, l3])
                    })
        }
        // pcap: the 24-byte file header.
        _ => len < 24,
    }
}
