//! Hostile input (issue #7): two real sipp calls with hostile traffic around them. Each hostile
//! INVITE is its own call (answered by a 486), so its row shows what became of its fields. The
//! run must not crash, every row must be valid CSV with the 29 columns, and the real calls' rows
//! must be exactly their golden rows.

use crate::formats::read_pcap;
use crate::{capture, sipcdr};
use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

const A: [u8; 4] = [10, 7, 0, 1];
const B: [u8; 4] = [10, 7, 0, 2];

fn invite(call_id: &str, from: &str, extra: &str, body: &str, content_length: &str) -> Vec<u8> {
    format!(
        "INVITE sip:2002@victim SIP/2.0\r\nVia: SIP/2.0/UDP 10.7.0.1;branch=z9hG4bK-{call_id}\r\n\
From: {from};tag=f1\r\nTo: <sip:2002@victim>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
{extra}Content-Length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

fn busy(call_id: &[u8]) -> Vec<u8> {
    let mut v = b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 10.7.0.1\r\nFrom: <sip:x@y>;tag=f1\r\n\
To: <sip:2002@victim>;tag=t1\r\nCall-ID: "
        .to_vec();
    v.extend_from_slice(call_id);
    v.extend_from_slice(b"\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    v
}

fn udp(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .udp(5060, 5060)
        .write(&mut f, payload)
        .unwrap();
    f
}

fn tcp(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(A, B, 64)
        .tcp(40000, 5060, seq, 65535)
        .ack(1)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// An IPv4 fragment of a UDP datagram (offset in 8-byte units).
fn fragment(id: u16, offset8: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(data.len() as u16, 64, IpNumber::UDP, A, B).unwrap();
    h.identification = id;
    h.more_fragments = more;
    h.fragment_offset = etherparse::IpFragOffset::try_new(offset8).unwrap();
    let mut f = vec![2; 6];
    f.extend([1; 6]);
    f.extend([0x08, 0x00]);
    h.write(&mut f).unwrap();
    f.extend_from_slice(data);
    f
}

#[test]
fn hostile_messages_crash_nothing_and_spoil_no_other_call() {
    let real = read_pcap(&std::fs::read(capture("udp_answered_caller_bye.pcap")).unwrap());
    let mut t = real[0].0 - 1_000_000; // hostile traffic starts 1 s before the real calls
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut push = |f: Vec<u8>| {
        frames.push((t, f));
        t += 10;
    };
    let big = "a".repeat(100_000);
    let many: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_id = "L".repeat(10_000);
    let hostile_udp: Vec<(String, Vec<u8>)> = vec![
        (
            "cl-larger".into(),
            invite("cl-larger", "<sip:1@a>", "", "v=0\r\n", "5000"),
        ),
        (
            "cl-negative".into(),
            invite("cl-negative", "<sip:1@a>", "", "", "-5"),
        ),
        (
            "cl-text".into(),
            invite("cl-text", "<sip:1@a>", "", "", "abc"),
        ),
        (
            "nul".into(),
            invite(
                "nul",
                "\"A\0B\" <sip:1\0@a>",
                "User-Agent: x\0y\r\n",
                "",
                "0",
            ),
        ),
        (long_id.clone(), invite(&long_id, "<sip:1@a>", "", "", "0")),
        (
            "quotes-nested".into(),
            invite("quotes-nested", &"\"\\\"".repeat(2000), "", "", "0"),
        ),
        (
            "quotes-open".into(),
            invite("quotes-open", "\"never closed <sip:1@a>", "", "", "0"),
        ),
        (
            "csv-hostile".into(),
            invite(
                "csv-hostile",
                "\"=HYPERLINK(\"\"x\"\"),\r\n +1\" <sip:@evil,\"x\"@a>",
                "User-Agent: -2+3 @SUM(A1)\r\n",
                "",
                "0",
            ),
        ),
    ];
    for (id, msg) in &hostile_udp {
        push(udp(A, B, msg));
        push(udp(B, A, &busy(id.as_bytes())));
    }
    // Invalid UTF-8 in every text field.
    let mut bad = invite(
        "bad-utf8",
        "\"\u{1}X\" <sip:U@a>",
        "User-Agent: UA\r\n",
        "",
        "0",
    );
    for (from, to) in [
        (&b"X"[..], &[0xff, 0xfe][..]),
        (b"U@a", &[0xc3, 0x28, b'@', b'a']),
        (b"UA", &[0xe2, 0x82]),
    ] {
        let at = bad.windows(from.len()).position(|w| w == from).unwrap();
        bad.splice(at..at + from.len(), to.iter().copied());
    }
    push(udp(A, B, &bad));
    push(udp(B, A, &busy(b"bad-utf8")));
    // Over TCP: a 100 KB header and 10 000 headers, cut in 1400-byte segments; then garbage.
    let mut seq = 1u32;
    for (id, extra) in [
        ("big-header", format!("X-Big: {big}\r\n")),
        ("many-headers", many),
    ] {
        for chunk in invite(id, "<sip:1@a>", &extra, "", "0").chunks(1400) {
            push(tcp(seq, chunk));
            seq = seq.wrapping_add(chunk.len() as u32);
        }
        push(udp(B, A, &busy(id.as_bytes())));
    }
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for chunk in garbage.chunks(1400) {
        push(tcp(seq, chunk));
        seq = seq.wrapping_add(chunk.len() as u32);
    }
    // IPv4 fragments that overlap, and a first fragment whose rest never comes.
    let dgram = invite("frag", "<sip:1@a>", "", "", "0");
    push(fragment(7, 0, true, &dgram[..64]));
    push(fragment(7, 4, true, &dgram[24..96])); // overlaps the first
    push(fragment(8, 0, true, &dgram[..64])); // never completed
    let mut all = frames;
    all.extend(real.iter().cloned());
    all.sort_by_key(|(ts, _)| *ts);

    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend([0; 8]);
    file.extend(262_144u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    for (ts, f) in &all {
        file.extend(((ts / 1_000_000) as u32).to_le_bytes());
        file.extend(((ts % 1_000_000) as u32).to_le_bytes());
        file.extend((f.len() as u32).to_le_bytes());
        file.extend((f.len() as u32).to_le_bytes());
        file.extend_from_slice(f);
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hostile.pcap");
    std::fs::write(&pcap, file).unwrap();
    let out = sipcdr(&["-o", "-", "-r", pcap.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");

    let mut rdr = csv::ReaderBuilder::new().from_reader(&out.stdout[..]);
    let header = rdr.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::ByteRecord> = rdr.byte_records().map(|r| r.unwrap()).collect();
    assert!(rows.iter().all(|r| r.len() == sipcdr::cdr::COLUMNS.len()));
    let by_id = |id: &[u8]| rows.iter().find(|r| &r[col("call_id")] == id);
    // Every hostile INVITE that reads as an INVITE is a rejected call with its own row.
    for id in [
        "cl-larger",
        "cl-negative",
        "cl-text",
        "nul",
        "quotes-nested",
        "quotes-open",
        "csv-hostile",
        "bad-utf8",
        "big-header",
        "many-headers",
    ] {
        let r = by_id(id.as_bytes()).unwrap_or_else(|| panic!("no row for {id}\n{summary}"));
        assert_eq!(&r[col("sip_resp_code")], b"486", "{id}");
    }
    assert!(by_id(long_id.as_bytes()).is_some(), "10 KB Call-ID");
    // Text fields are valid UTF-8 (replacement characters), whatever the bytes were.
    let bad = by_id(b"bad-utf8").unwrap();
    for c in ["caller_name", "caller_number", "user_agent", "from_uri"] {
        assert!(std::str::from_utf8(&bad[col(c)]).is_ok(), "{c}");
        assert!(
            String::from_utf8_lossy(&bad[col(c)]).contains('\u{fffd}'),
            "{c}"
        );
    }
    // CSV-hostile values survive as values: quotes and commas inside one field.
    let evil = by_id(b"csv-hostile").unwrap();
    assert!(evil[col("caller_name")].starts_with(b"=HYPERLINK"));
    assert_eq!(&evil[col("user_agent")], b"-2+3 @SUM(A1)");
    // --csv-safe: formula starts get a leading quote; nothing else changes.
    let safe = sipcdr(&["--csv-safe", "-q", "-o", "-", "-r", pcap.to_str().unwrap()]);
    let mut rdr = csv::Reader::from_reader(&safe.stdout[..]);
    let safe_rows: Vec<csv::ByteRecord> = rdr.byte_records().map(|r| r.unwrap()).collect();
    let guarded = safe_rows
        .iter()
        .find(|r| &r[col("call_id")] == b"csv-hostile")
        .unwrap();
    assert!(guarded[col("caller_name")].starts_with(b"'=HYPERLINK"));
    assert_eq!(&guarded[col("user_agent")], b"'-2+3 @SUM(A1)");
    assert_eq!(safe_rows.len(), rows.len());
    // The real calls are untouched.
    let golden = std::fs::read_to_string(capture("udp_answered_caller_bye.csv")).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for row in golden.lines().skip(1) {
        assert!(
            text.lines().any(|l| l == row),
            "real call's row changed: {row}"
        );
    }
    // The garbage stream is skipped byte for byte; the fragments are held, never a datagram.
    assert!(summary.contains("20000 bytes skipped"), "{summary}");
    assert!(
        summary.contains("0 datagrams reassembled from 3 fragments held"),
        "{summary}"
    );
}
