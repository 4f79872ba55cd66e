//! Broken capture files (issue #7): wrong magic, pcapng with block types sipcdr does not know,
//! snaplen 0, a pcapng cut at every offset and one with a corrupt block. Each gives either exactly
//! the golden CDRs, or an error naming the file and byte offset with exit status 3 and the CDRs of
//! everything read before the damage.
//!
//! `tests/data/udp_answered_caller_bye.pcapng` is `captures/udp_answered_caller_bye.pcap`
//! converted by Wireshark's writer: `editcap -F pcapng` (section header with options, one
//! interface, 14 enhanced packet blocks).

use crate::formats::block;
use crate::{capture, root, sipcdr};
use std::fs;
use std::ops::Range;
use std::path::Path;

fn pcapng() -> Vec<u8> {
    fs::read(root().join("tests/data/udp_answered_caller_bye.pcapng")).unwrap()
}

fn golden() -> String {
    fs::read_to_string(capture("udp_answered_caller_bye.csv")).unwrap()
}

/// (block type, byte range) of every block of a little-endian pcapng file.
fn blocks(b: &[u8]) -> Vec<(u32, Range<usize>)> {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let mut out = vec![];
    let mut off = 0;
    while off < b.len() {
        let len = u32_at(off + 4) as usize;
        out.push((u32_at(off), off..off + len));
        off += len;
    }
    assert_eq!(off, b.len());
    out
}

fn run(files: &[&Path]) -> std::process::Output {
    let mut args = vec!["-o", "-"];
    for f in files {
        args.extend(["-r", f.to_str().unwrap()]);
    }
    sipcdr(&args)
}

/// Blocks a reader must skip (pcapng spec: "a reader that does not understand a block type
/// skips it"): custom blocks (copiable and not), a name resolution block, interface statistics,
/// decryption secrets, and types nobody has assigned, before every packet and at the end.
#[test]
fn pcapng_with_unknown_and_custom_blocks_gives_the_golden_cdrs() {
    let src = pcapng();
    let extra = [
        block(0x0000_0BAD, b"\x00\x00\x7f\x7fcustom, may be copied"), // PEN + data
        block(0x4000_0BAD, b"\x00\x00\x7f\x7fcustom, do not copy"),
        block(0x0000_0004, &[0, 0, 0, 0]), // NRB: nrb_record_end only
        block(0x0000_0005, &[0; 12]),      // ISB: interface 0, time 0, no options
        block(
            0x0000_000A,
            &[0x4b, 0x53, 0x4c, 0x54, 4, 0, 0, 0, 1, 2, 3, 4],
        ), // DSB (TLS key log)
        block(0x0000_7F01, b"a block type nobody assigned"),
        block(0x8000_0001, b"local use, high bit set"),
    ];
    let mut out = vec![];
    let mut inserted = 0;
    for (kind, r) in blocks(&src) {
        if kind == 6 {
            for e in &extra {
                out.extend_from_slice(e);
                inserted += 1;
            }
        }
        out.extend_from_slice(&src[r]);
    }
    out.extend(extra.concat());
    assert!(inserted > 14 * 6, "blocks inserted before every packet");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("odd-blocks.pcapng");
    fs::write(&f, &out).unwrap();
    let res = run(&[&f]);
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    assert_eq!(String::from_utf8(res.stdout).unwrap(), golden());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("packets          14 "), "{err}");
}

/// Snaplen 0 in the pcap file header and in a pcapng interface block ("no limit" in pcapng; a
/// meaningless value in pcap) changes nothing: the records carry their own lengths.
#[test]
fn snaplen_zero_gives_the_golden_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let mut pcap = fs::read(capture("udp_answered_caller_bye.pcap")).unwrap();
    assert_ne!(pcap[16..20], [0; 4]);
    pcap[16..20].copy_from_slice(&[0; 4]);
    let mut ng = pcapng();
    let (kind, idb) = blocks(&ng)[1].clone();
    assert_eq!(kind, 1, "the second block describes the interface");
    ng[idb.start + 12..idb.start + 16].copy_from_slice(&[0; 4]);
    for (name, bytes) in [("snap0.pcap", pcap), ("snap0.pcapng", ng)] {
        let f = dir.path().join(name);
        fs::write(&f, bytes).unwrap();
        let res = run(&[&f]);
        assert_eq!(res.status.code(), Some(0), "{name}: {res:?}");
        assert_eq!(String::from_utf8(res.stdout).unwrap(), golden(), "{name}");
    }
}

/// A file with a wrong magic number after a good one: the error names the file and byte 0, the
/// exit status is 3 and the good file's CDRs are all written.
#[test]
fn wrong_magic_is_named_and_the_earlier_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good = capture("udp_busy_486.pcap");
    let mut pcap = fs::read(&good).unwrap();
    pcap[0] ^= 0x01; // a1b2c3d4 → a1b2c3d5: close to, but not, a pcap magic
    let mut ng = pcapng();
    ng[8] ^= 0x01; // section header's byte-order magic 1a2b3c4d broken
    let mut zeros = pcapng();
    zeros[..4].copy_from_slice(&[0; 4]);
    let expected = fs::read_to_string(capture("udp_busy_486.csv")).unwrap();
    for (name, bytes) in [
        ("magic.pcap", pcap),
        ("magic.pcapng", ng),
        ("zeros.pcapng", zeros),
    ] {
        let f = dir.path().join(name);
        fs::write(&f, bytes).unwrap();
        let res = run(&[&good, &f]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(3), "{name}: {err}");
        assert!(err.contains(&format!("{name}: ")), "{err}");
        assert!(
            err.contains("byte 0") || err.contains("byte offset 0"),
            "{err}"
        );
        assert_eq!(String::from_utf8(res.stdout).unwrap(), expected, "{name}");
    }
}

/// The pcapng cut at every byte offset of its first 1200 bytes (section header, interface and
/// two packets) and at both ends, the inside of the length fields and the middle of every later
/// block: the reader never panics, returns every whole packet block before the cut, and reports a
/// truncation at the offset of the block it could not finish.
#[test]
fn pcapng_cut_at_every_offset() {
    use sipcdr::capture::file::{FileErrorKind, read_file};
    let src = pcapng();
    let ends: Vec<(u32, usize)> = blocks(&src).iter().map(|(k, r)| (*k, r.end)).collect();
    let shb_end = ends[0].1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcapng");
    let mut cuts: Vec<usize> = (0..1200).collect();
    for (_, r) in blocks(&src) {
        let mid = (r.start + r.end) / 2;
        cuts.extend([
            r.start,
            r.start + 1,
            r.start + 7,
            r.start + 8,
            mid,
            r.end - 4,
            r.end - 1,
        ]);
    }
    cuts.push(src.len());
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        fs::write(&path, &src[..cut]).unwrap();
        let mut packets = 0;
        let r = read_file(&path, |_| packets += 1);
        let whole = ends.iter().filter(|(k, e)| *k == 6 && *e <= cut).count() as u64;
        assert_eq!(packets, whole, "cut at {cut}");
        let boundary = ends.iter().any(|(_, e)| *e == cut);
        match r {
            Ok(n) => assert!(boundary && n == whole, "cut at {cut}: Ok({n})"),
            Err(e) => {
                assert!(!boundary, "cut at {cut} is a block boundary: {e}");
                let last = ends
                    .iter()
                    .map(|(_, e)| *e)
                    .filter(|&e| e <= cut)
                    .max()
                    .unwrap_or(0);
                match e.kind {
                    FileErrorKind::Truncated => {
                        assert_eq!(e.offset as usize, last, "cut at {cut}: {e}");
                        assert!(
                            e.to_string()
                                .contains("cut.pcapng: truncated at byte offset")
                        );
                    }
                    FileErrorKind::Empty => assert_eq!(cut, 0),
                    FileErrorKind::NotPcap => assert!(cut < shb_end, "cut at {cut}: {e}"),
                    _ => panic!("cut at {cut}: unexpected {e}"),
                }
            }
        }
    }
}

/// The binary on a pcapng cut inside the second call's BYE, and on one whose fourth block has a
/// wrong trailing length: exit 3, the error names the file and the block's offset, and the
/// CDRs of what came before are written (the first call exactly as in the golden file).
#[test]
fn truncated_and_corrupt_pcapng_keep_what_was_read() {
    let src = pcapng();
    let bl = blocks(&src);
    let golden = golden();
    let first_row = golden.lines().nth(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The last four packets: BYE, 200, BYE, 200. Cut in the middle of the second BYE.
    let (kind, bye2) = bl[bl.len() - 2].clone();
    assert_eq!(kind, 6);
    let cut = dir.path().join("cut.pcapng");
    fs::write(&cut, &src[..bye2.start + 40]).unwrap();
    let res = run(&[&cut]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{err}");
    let before = bl
        .iter()
        .filter(|(k, r)| *k == 6 && r.end <= bye2.start)
        .count();
    assert_eq!(before, 12);
    assert!(
        err.contains(&format!(
            "cut.pcapng: truncated at byte offset {} (after packet #{before})",
            bye2.start
        )),
        "{err}"
    );
    let out = String::from_utf8(res.stdout).unwrap();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0], first_row);
    assert!(rows[1].contains(",unterminated,"), "{out}");

    let mut bad = src.clone();
    let (_, r) = bl[3].clone();
    bad[r.end - 4..r.end].copy_from_slice(&7u32.to_le_bytes());
    let corrupt = dir.path().join("corrupt.pcapng");
    fs::write(&corrupt, &bad).unwrap();
    let res = run(&[&corrupt]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "corrupt.pcapng: corrupt record at byte offset {}",
            r.start
        )),
        "{err}"
    );
}
