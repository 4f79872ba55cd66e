//! pcap and pcapng files, read into a buffer that is reused for every packet: legacy pcap by a
//! small loop of our own over its 16-byte record headers (`legacy`, `records`), pcapng (and
//! the rare "modified" pcap format) with pcap-parser. `--mmap` maps legacy pcap into memory
//! instead and runs the same record loop over the mapping ([`read_file_mapped`]).

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

impl FileError {
    fn at(path: &Path, offset: u64, packets: u64, kind: FileErrorKind) -> FileError {
        FileError {
            path: path.to_owned(),
            offset,
            packets,
            kind,
        }
    }
}

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
    on_packet: impl FnMut(Packet<'_>),
) -> Result<u64, FileError> {
    let stopped = || follow.is_some_and(|s| s.load(Ordering::Relaxed));
    loop {
        let Ok(mut file) = File::open(path) else {
            break; // the error is pcap-parser's path's to report
        };
        let mut head = [0u8; LEGACY_HEADER];
        let got = read_full(&mut file, &mut head);
        match (LegacyHeader::parse(&head), got) {
            (Some(h), LEGACY_HEADER) if h.big_endian => {
                return legacy::<true, _>(path, file, h, follow, on_packet);
            }
            (Some(h), LEGACY_HEADER) => {
                return legacy::<false, _>(path, file, h, follow, on_packet);
            }
            // Following: the writer has not finished the file header (or even its magic) yet.
            (Some(_), _) | (None, 0..4) if follow.is_some() => {
                if stopped() {
                    return Ok(0);
                }
                std::thread::sleep(FOLLOW_POLL);
            }
            _ => break,
        }
    }
    read_with_pcap_parser(path, follow, on_packet)
}

/// Bytes of the legacy pcap file header, and of each record header.
const LEGACY_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// What the legacy pcap file header says about the records after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LegacyHeader {
    big_endian: bool,
    /// Magic `a1b23c4d`: the second field of each record's time stamp counts nanoseconds.
    nanos: bool,
    snaplen: u32,
    linktype: u32,
}

impl LegacyHeader {
    /// The header, when `head` starts with one of the four legacy magics (micro- or nanosecond
    /// time stamps, either byte order); `None` for pcapng, the "modified" format and anything else.
    fn parse(head: &[u8; LEGACY_HEADER]) -> Option<LegacyHeader> {
        // The four bytes at `at` (constant offsets inside the 24-byte header).
        let bytes = |at| four(head, at);
        let (big_endian, nanos) = match u32::from_le_bytes(bytes(0)) {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let u32_of = |b| {
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Some(LegacyHeader {
            big_endian,
            nanos,
            snaplen: u32_of(bytes(16)),
            linktype: u32_of(bytes(20)),
        })
    }
}

/// The four bytes at `at` of a file or record header (constant offsets inside it).
#[inline]
fn four(head: &[u8], at: usize) -> [u8; 4] {
    head.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

/// Reads into `buf` until it is full or the file ends; returns the bytes read (0 on an error,
/// which the caller then meets again and reports).
fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
    use std::io::Read;
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return 0,
        }
    }
    got
}

/// The records of a legacy pcap file, `file` positioned just after its header `h`; `BE`: the
/// file is big-endian. One buffer, reused: records are handed out where they lie in it, and only
/// the unread tail (part of one record) moves to its front before the next read. This replaced
/// pcap-parser's `LegacyPcapReader` for legacy pcap: 169 -> 18 instructions per record (floor).
fn legacy<const BE: bool, F: FnMut(Packet<'_>)>(
    path: &Path,
    mut file: File,
    h: LegacyHeader,
    follow: Option<&AtomicBool>,
    mut on_packet: F,
) -> Result<u64, FileError> {
    use std::io::Read;
    let err = |offset: u64, packets: u64, kind| FileError::at(path, offset, packets, kind);
    let mut buf = vec![0u8; READ_BUFFER];
    // Unread bytes are buf[start..end]; buf[start] is at byte `offset` of the file.
    let (mut start, mut end) = (0usize, 0usize);
    let mut offset = LEGACY_HEADER as u64;
    let mut packets: u64 = 0;
    loop {
        // Every whole record in the buffer.
        let unread = buf.get(start..end).unwrap_or_default();
        let (used, needed) =
            records::<BE, false, F>(path, h, unread, offset, &mut packets, &mut on_packet)?;
        offset += used as u64;
        start += used;
        // The unread tail (at most one record) to the front, room for the record it starts.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if needed > buf.len() {
            buf.resize(needed, 0);
        }
        let n = loop {
            match file.read(buf.get_mut(end..).unwrap_or_default()) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(err(offset, packets, FileErrorKind::Read)),
            }
        };
        end += n;
        if n == 0 {
            if let Some(stop) = follow {
                // Following: wait for the writer at the end and at a partial record.
                if stop.load(Ordering::Relaxed) {
                    return Ok(packets);
                }
                std::thread::sleep(FOLLOW_POLL);
            } else if end == 0 {
                return Ok(packets);
            } else {
                return Err(err(offset, packets, FileErrorKind::Truncated));
            }
        }
    }
}

/// `--mmap`: how far ahead of the record being handed out the mapping's bytes are prefetched.
const PREFETCH_AHEAD: usize = 4096;

/// Hands every whole record at the start of `bytes` (byte `offset` of a legacy pcap file with
/// header `h`; `BE`: big-endian) to `on_packet`, counting them in `packets`. Returns how many
/// bytes they took, and how many the record after them needs to be whole (its header, or its
/// header and data). Records longer than the header's snaplen are read, as libpcap, Wireshark
/// and pcap-parser read them (some writers put a nominal snaplen in the header); only
/// [`MAX_BLOCK`] bounds them.
///
/// `MAPPED`: `bytes` is the mapped file, not a read buffer the kernel has just filled, and every
/// cache line of it is prefetched [`PREFETCH_AHEAD`] bytes before the loop reaches it. Without
/// that, a loop that reads only the records' headers waits on memory at each one (the hardware
/// prefetchers do not follow reads ~650 bytes apart): the floor took 0.24 s on the 1 GB
/// benchmark file, 0.04 s with it. (sipcdr's capture thread reads every packet from its start,
/// which the hardware prefetchers do follow: no change there beyond the noise.) One prefetch a
/// record, as far ahead, did not help: most of the lines it fetched hold no record header.
#[inline]
fn records<const BE: bool, const MAPPED: bool, F: FnMut(Packet<'_>)>(
    path: &Path,
    h: LegacyHeader,
    bytes: &[u8],
    offset: u64,
    packets: &mut u64,
    on_packet: &mut F,
) -> Result<(usize, usize), FileError> {
    let u32_of = |b: [u8; 4]| {
        if BE {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let frac_div = if h.nanos { 1000 } else { 1 };
    let mut rest = bytes;
    let mut fetched = 0; // MAPPED: the lines of `bytes` before this one are prefetched
    while let Some((head, after)) = rest.split_first_chunk::<RECORD_HEADER>() {
        if MAPPED {
            // (Past a record longer than the distance, from where the loop is.)
            let at = bytes.len() - rest.len();
            fetched = fetched.max(at);
            let upto = at.saturating_add(PREFETCH_AHEAD);
            while fetched < upto
                && let Some(b) = bytes.get(fetched)
            {
                safe_arch::prefetch_t0(b);
                fetched += 64;
            }
        }
        let word = |at| u32_of(four(head, at));
        let caplen = word(8) as usize;
        if caplen > MAX_BLOCK {
            let what = format!(
                "a record of {caplen} bytes, larger than {} MiB",
                MAX_BLOCK >> 20
            );
            let at = offset + (bytes.len() - rest.len()) as u64;
            return Err(FileError::at(
                path,
                at,
                *packets,
                FileErrorKind::Corrupt(what),
            ));
        }
        let Some((data, next)) = after.split_at_checked(caplen) else {
            return Ok((bytes.len() - rest.len(), RECORD_HEADER + caplen));
        };
        let secs = i64::from(word(0));
        let frac = i64::from(word(4) / frac_div);
        *packets += 1;
        on_packet(Packet {
            linktype: h.linktype,
            ts: Timestamp::from_micros(secs * 1_000_000 + frac),
            data,
            orig_len: word(12),
        });
        rest = next;
    }
    Ok((bytes.len() - rest.len(), RECORD_HEADER))
}

/// `--mmap`: [`read_file`], but a legacy pcap file is mapped into memory and its records handed
/// out where they lie in the mapping, with no copy into a read buffer (the kernel's copy was
/// ~10 % of all CPU on the 1 GB benchmark file). The same packets, counts and errors as
/// [`read_file`]; a file that cannot be mapped (a pipe, say) or is not legacy pcap is read by
/// [`read_file`]. The file must not change while it is read (see `map`).
pub fn read_file_mapped(
    path: &Path,
    mut on_packet: impl FnMut(Packet<'_>),
) -> Result<u64, FileError> {
    let Some(map) = mappable(path)
        .then(|| File::open(path).ok().and_then(|f| map(&f).ok()))
        .flatten()
    else {
        return read_file(path, on_packet);
    };
    let head = map
        .first_chunk::<LEGACY_HEADER>()
        .and_then(LegacyHeader::parse);
    let (Some(h), Some(body)) = (head, map.get(LEGACY_HEADER..)) else {
        return read_file(path, on_packet);
    };
    let mut packets = 0;
    let offset = LEGACY_HEADER as u64;
    let (used, _) = if h.big_endian {
        records::<true, true, _>(path, h, body, offset, &mut packets, &mut on_packet)?
    } else {
        records::<false, true, _>(path, h, body, offset, &mut packets, &mut on_packet)?
    };
    if used < body.len() {
        // What is left is the start of a record cut short.
        let at = offset + used as u64;
        return Err(FileError::at(path, at, packets, FileErrorKind::Truncated));
    }
    Ok(packets)
}

/// Whether `--mmap` tries to map `path`: a regular file only. A pipe (`-r /dev/stdin`, `<(…)`)
/// opened to be mapped and closed again could lose its writer and its bytes.
fn mappable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The file mapped read-only into memory: the crate's one `unsafe` (`--mmap` only). A mapping
/// is `unsafe` because its bytes are the file's: were the file changed while mapped, the
/// program would see the bytes change under a shared reference, and were it cut shorter, a read
/// past its new end would kill the process with SIGBUS. Nothing here writes the mapping, every
/// byte of it goes through the same checks as bytes from the wire, and `--mmap` is the user's
/// word that the file stays as it is (a capture being written goes through `--follow`, which
/// reads with `read(2)`).
#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: read-only mapping of a file the user vouches does not change while it is read
    // (see above); the mapping lives as long as every slice handed out of it.
    unsafe { memmap2::Mmap::map(file) }
}

/// pcapng, and legacy pcap that [`read`] does not take itself, read with pcap-parser.
fn read_with_pcap_parser(
    path: &Path,
    follow: Option<&AtomicBool>,
    mut on_packet: impl FnMut(Packet<'_>),
) -> Result<u64, FileError> {
    let err = |offset: u64, packets: u64, kind| FileError::at(path, offset, packets, kind);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    /// One record: seconds, fraction (micro- or nanoseconds), captured bytes, length on the wire.
    type Rec<'a> = (u32, u32, &'a [u8], u32);

    /// A legacy pcap file of link type Ethernet.
    fn pcap(big_endian: bool, nanos: bool, snaplen: u32, recs: &[Rec<'_>]) -> Vec<u8> {
        let put = |out: &mut Vec<u8>, v: u32| {
            out.extend(if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let mut out = vec![];
        put(&mut out, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        let version: u32 = if big_endian { 0x0002_0004 } else { 0x0004_0002 };
        out.extend(version.to_le_bytes());
        put(&mut out, 0); // thiszone
        put(&mut out, 0); // sigfigs
        put(&mut out, snaplen);
        put(&mut out, 1);
        for &(s, f, data, orig) in recs {
            put(&mut out, s);
            put(&mut out, f);
            put(&mut out, data.len() as u32);
            put(&mut out, orig);
            out.extend_from_slice(data);
        }
        out
    }

    /// A packet as read: time in microseconds, data, length on the wire, link type.
    type Got = (i64, Vec<u8>, u32, u32);

    /// Every packet of the file at `path`, read by [`read_file`] or, `mapped`, by
    /// [`read_file_mapped`].
    fn read_path(path: &Path, mapped: bool) -> (Vec<Got>, Result<u64, FileError>) {
        let mut got = vec![];
        let on_packet =
            |p: Packet<'_>| got.push((p.ts.as_micros(), p.data.to_vec(), p.orig_len, p.linktype));
        let r = if mapped {
            read_file_mapped(path, on_packet)
        } else {
            read_file(path, on_packet)
        };
        (got, r)
    }

    /// Every packet of the file at `path`, read by [`read_file`]. `--mmap`'s reader must read
    /// the same packets and end the same way (the same count, or the same error, offset and
    /// packet number).
    fn read_both(path: &Path) -> (Vec<Got>, Result<u64, FileError>) {
        let (got, r) = read_path(path, false);
        let (mapped, m) = read_path(path, true);
        assert_eq!(mapped, got, "{}: --mmap read other packets", path.display());
        let text = |r: &Result<u64, FileError>| r.as_ref().map_err(|e| e.to_string()).cloned();
        assert_eq!(
            text(&m),
            text(&r),
            "{}: --mmap ended otherwise",
            path.display()
        );
        (got, r)
    }

    /// Every packet of `bytes` written as a file, read both ways ([`read_both`]), so every test
    /// here holds `--mmap`'s reader too.
    fn read_bytes(bytes: &[u8]) -> (Vec<Got>, Result<u64, FileError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, bytes).unwrap();
        read_both(&path)
    }

    /// On every capture shipped in captures/ (legacy pcap of both resolutions from tcpdump,
    /// pcapng, HEP), `--mmap`'s reader hands out the same packets as the reading one; pcapng
    /// goes through the reading one.
    #[test]
    fn mapped_reads_every_shipped_capture_as_read() {
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path
                    .extension()
                    .is_some_and(|e| e == "pcap" || e == "pcapng")
                {
                    let (got, r) = read_both(&path);
                    assert_eq!(r.unwrap(), got.len() as u64, "{}", path.display());
                    files += 1;
                }
            }
        }
        assert!(files >= 20, "only {files} captures found");
    }

    /// A pipe is never opened to be mapped (and closed again, which could lose its writer), and
    /// `--mmap`'s reader reads every packet a writer puts into it.
    #[test]
    fn mapped_reads_a_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!mappable(&fifo) && !mappable(dir.path()));
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(mappable(&file));
        let bytes = pcap(false, false, 65535, &RECS);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, bytes))
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_path(&fifo, true)));
        let (got, r) = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading the pipe hung");
        writer.join().unwrap().unwrap();
        assert_eq!((got, r.unwrap()), (expected(false), 3));
    }

    /// A file that is empty, not a capture at all, or cannot be mapped (a directory) ends as
    /// it does when read.
    #[test]
    fn mapped_falls_back_to_reading_and_its_errors() {
        for bytes in [&b""[..], b"not a capture at all, but long enough"] {
            let (got, r) = read_bytes(bytes);
            assert!(got.is_empty() && r.is_err(), "{r:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_both(dir.path()).1.is_err(),
            "a directory read as a capture"
        );
    }

    const RECS: [Rec<'static>; 3] = [
        (1_700_000_000, 123_456, b"first frame", 11),
        (1_700_000_001, 0, b"", 0),
        (1_700_000_002, 999_999, b"cut by the snaplen", 1500),
    ];

    fn expected(nanos: bool) -> Vec<Got> {
        RECS.iter()
            .map(|&(s, f, d, o)| {
                let us = if nanos { f / 1000 } else { f };
                (i64::from(s) * 1_000_000 + i64::from(us), d.to_vec(), o, 1)
            })
            .collect()
    }

    #[test]
    fn both_byte_orders_and_both_time_resolutions() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let (got, r) = read_bytes(&pcap(big_endian, nanos, 65535, &RECS));
                assert_eq!(r.unwrap(), 3, "big endian {big_endian}, nanos {nanos}");
                assert_eq!(
                    got,
                    expected(nanos),
                    "big endian {big_endian}, nanos {nanos}"
                );
            }
        }
    }

    #[test]
    fn legacy_magics_are_recognised_and_others_are_not() {
        let head = |m: [u8; 4]| {
            let mut h = [0u8; LEGACY_HEADER];
            h[..4].copy_from_slice(&m);
            h[16..20].copy_from_slice(&[0, 0, 1, 0]);
            h[20..24].copy_from_slice(&[0, 0, 0, 1]);
            LegacyHeader::parse(&h)
        };
        let le = head([0xd4, 0xc3, 0xb2, 0xa1]).unwrap();
        assert_eq!((le.big_endian, le.nanos), (false, false));
        assert_eq!((le.snaplen, le.linktype), (0x0001_0000, 0x0100_0000));
        let be = head([0xa1, 0xb2, 0x3c, 0x4d]).unwrap();
        assert_eq!((be.big_endian, be.nanos), (true, true));
        assert_eq!((be.snaplen, be.linktype), (256, 1));
        assert!(head([0x34, 0xcd, 0xb2, 0xa1]).is_none(), "modified format");
        assert!(head([0x0a, 0x0d, 0x0d, 0x0a]).is_none(), "pcapng");
    }

    #[test]
    fn a_zero_length_record_is_a_packet() {
        let (got, r) = read_bytes(&pcap(false, false, 0, &[(5, 6, b"", 60)]));
        assert_eq!(r.unwrap(), 1);
        assert_eq!(got, vec![(5_000_006, vec![], 60, 1)]);
    }

    #[test]
    fn a_file_of_only_a_header_has_no_packets() {
        let (got, r) = read_bytes(&pcap(true, false, 65535, &[]));
        assert_eq!(r.unwrap(), 0);
        assert!(got.is_empty());
    }

    #[test]
    fn a_cut_record_header_or_record_is_truncated_at_its_start() {
        let whole = pcap(false, false, 65535, &RECS);
        let second = 24 + 16 + 11; // where the second record starts
        for (cut, packets, at) in [
            (24 + 7, 0, 24),          // inside the first record header
            (24 + 16, 0, 24),         // the first header whole, none of its data
            (24 + 16 + 5, 0, 24),     // the first record's data cut
            (second + 15, 1, second), // the second (empty) record's header cut
            (whole.len() - 1, 2, second + 16),
        ] {
            let (got, r) = read_bytes(&whole[..cut]);
            assert_eq!(got.len(), packets, "cut at {cut}");
            let e = r.unwrap_err();
            assert!(
                matches!(e.kind, FileErrorKind::Truncated),
                "cut at {cut}: {e}"
            );
            assert_eq!((e.offset, e.packets), (at as u64, packets as u64), "{e}");
            assert!(
                e.to_string().contains(&format!(
                    "t.pcap: truncated at byte offset {at} (after packet #{packets})"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn a_caplen_over_the_snaplen_is_read_over_the_limit_is_corrupt() {
        // Longer than the header's snaplen: read whole, as libpcap and Wireshark read it.
        let mut f = pcap(
            true,
            false,
            64,
            &[(1, 2, &[7; 64], 64), (1, 2, &[7; 65], 65)],
        );
        let (got, r) = read_bytes(&f);
        assert_eq!((got.len(), r.unwrap()), (2, 2));
        assert_eq!(got[1].1.len(), 65);
        // snaplen 0 is no different.
        f[16..20].copy_from_slice(&[0; 4]);
        let (got, r) = read_bytes(&f);
        assert_eq!((got.len(), r.unwrap()), (2, 2));
        // Over MAX_BLOCK: corrupt, with where and after which packet.
        let caplen = 24 + 16 + 64 + 8;
        f[caplen..caplen + 4].copy_from_slice(&(MAX_BLOCK as u32 + 1).to_be_bytes());
        let (got, r) = read_bytes(&f);
        assert_eq!(got.len(), 1);
        let e = r.unwrap_err();
        assert_eq!((e.offset, e.packets), (24 + 16 + 64, 1));
        assert!(matches!(e.kind, FileErrorKind::Corrupt(_)), "{e}");
        assert!(
            e.to_string().contains(
                "t.pcap: corrupt record at byte offset 104 (after packet #1): a record of 268435457 \
                 bytes, larger than 256 MiB"
            ),
            "{e}"
        );
    }

    #[test]
    fn records_larger_than_the_read_buffer_and_across_its_end() {
        let big = vec![0x5a; READ_BUFFER + 3];
        let small = [1u8; 1000];
        let mut recs: Vec<Rec<'_>> = vec![];
        for i in 0..2000 {
            recs.push((i, 0, &small, 1000));
        }
        recs.push((3, 4, &big, big.len() as u32));
        recs.push((5, 6, b"after", 5));
        let (got, r) = read_bytes(&pcap(false, false, 0, &recs));
        assert_eq!(r.unwrap(), 2002);
        assert!(got[..2000].iter().all(|g| g.1 == small));
        assert_eq!(got[2000].1, big);
        assert_eq!(got[2001], (5_000_006, b"after".to_vec(), 5, 1));
    }

    #[test]
    fn follow_reads_a_file_growing_in_pieces_until_stopped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.pcap");
        let whole = pcap(true, true, 65535, &RECS);
        std::fs::write(&path, &whole[..2]).unwrap(); // not even the whole magic
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut got = vec![];
                let r = read(&path, Some(&stop), |p| {
                    got.push((p.ts.as_micros(), p.data.to_vec(), p.orig_len, p.linktype))
                });
                (got, r)
            });
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            // Cuts inside the file header, a record header, a record's data, and between records.
            let mut at = 2;
            for cut in [10, 24, 30, 40, 45, 51, 60, 67, whole.len()] {
                std::thread::sleep(FOLLOW_POLL * 2);
                f.write_all(&whole[at..cut]).unwrap();
                f.flush().unwrap();
                at = cut;
            }
            std::thread::sleep(FOLLOW_POLL * 4);
            assert!(
                !reader.is_finished(),
                "stopped at the end of a followed file"
            );
            stop.store(true, Ordering::Relaxed);
            let (got, r) = reader.join().unwrap();
            assert_eq!(r.unwrap(), 3);
            assert_eq!(got, expected(true));
        });
    }

    #[test]
    fn follow_stopped_before_the_header_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.pcap");
        std::fs::write(&path, &pcap(false, false, 65535, &[])[..20]).unwrap();
        let stop = AtomicBool::new(true);
        assert_eq!(read(&path, Some(&stop), |_| panic!()).unwrap(), 0);
    }
}
