use crate::{capture, sipcdr};
use std::fs;

fn lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

#[test]
fn truncated_file_keeps_what_was_read_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let src = fs::read(capture("udp_answered_caller_bye.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    fs::write(&cut, &src[..src.len() - 30]).unwrap();
    let out = sipcdr(&["-o", "-", "-r", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap: truncated at byte offset"), "{err}");
    // Both calls started before the cut; their CDRs are still written.
    assert_eq!(
        lines(&out.stdout),
        3,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn not_a_pcap_and_missing_file_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = sipcdr(&[
        "-q",
        "-o",
        "-",
        "-r",
        junk.to_str().unwrap(),
        "-r",
        "/nonexistent.pcap",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.pcap: not a pcap or pcapng file"),
        "{err}"
    );
    assert!(err.contains("/nonexistent.pcap: cannot open"), "{err}");
    assert_eq!(lines(&out.stdout), 1, "header only");
}

#[test]
fn bad_filter_and_bad_flags_fail_before_reading() {
    let f = capture("udp_busy_486.pcap");
    let out = sipcdr(&["-o", "-", "-r", f.to_str().unwrap(), "port", "and", "and"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid filter expression"));
    let out = sipcdr(&["-r", f.to_str().unwrap(), "--local-net", "10.0.0.0/99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--local-net"));
}

#[test]
fn bpf_filter_selects_packets() {
    let f = capture("udp_busy_486.pcap");
    let all = sipcdr(&["-q", "-o", "-", "-r", f.to_str().unwrap()]);
    assert_eq!(lines(&all.stdout), 2);
    let none = sipcdr(&["-q", "-o", "-", "-r", f.to_str().unwrap(), "tcp"]);
    assert!(none.status.success());
    assert_eq!(lines(&none.stdout), 1);
    let udp = sipcdr(&["-o", "-", "-r", f.to_str().unwrap(), "udp"]);
    assert_eq!(udp.stdout, all.stdout);
    assert!(String::from_utf8_lossy(&udp.stderr).contains("0 filtered out"));
}

#[test]
fn directory_output_rotates_by_size_with_headers_and_no_part_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("cdr");
    let mut args = vec![
        "-q",
        "-o",
        out_dir.to_str().unwrap(),
        "--rotate-size",
        "600",
    ];
    let files: Vec<String> = [
        "udp_answered_caller_bye.pcap",
        "udp_busy_486.pcap",
        "udp_cancel_after_180.pcap",
    ]
    .iter()
    .map(|n| capture(n).to_str().unwrap().to_owned())
    .collect();
    for f in &files {
        args.extend(["-r", f.as_str()]);
    }
    let out = sipcdr(&args);
    assert!(out.status.success(), "{out:?}");
    let mut names: Vec<_> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    let mut rows = 0;
    for n in &names {
        assert_eq!(n.extension().unwrap(), "csv", "{n:?}");
        let text = fs::read_to_string(n).unwrap();
        assert!(text.starts_with("leg_id,session_id,original_session_id,record_type,call_id,"));
        rows += lines(text.as_bytes()) - 1;
    }
    assert_eq!(rows, 4);
    // Same input, same directory: nothing is overwritten, new names are used.
    let again = sipcdr(&args);
    assert!(again.status.success());
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), names.len() * 2);
}

#[test]
fn time_rotation_names_files_by_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("cdr");
    let f = capture("udp_answered_caller_bye.pcap");
    let out = sipcdr(&[
        "-q",
        "-o",
        out_dir.to_str().unwrap(),
        "--rotate-interval",
        "1d",
        "-r",
        f.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let names: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with("cdr-") && names[0].ends_with("T000000Z.csv"),
        "{names:?}"
    );
}

#[test]
fn summary_reports_counts() {
    let f = capture("udp_cancel_after_180.pcap");
    let out = sipcdr(&["-o", "-", "-r", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("call-canceled 1"), "{err}");
    assert!(err.contains("cdrs written     1"), "{err}");
    assert!(err.contains("packets/s"), "{err}");
}

#[test]
fn zstd_compressed_files_hold_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, packed) = (dir.path().join("plain"), dir.path().join("zst"));
    let f = capture("udp_answered_caller_bye.pcap");
    let f = f.to_str().unwrap();
    let a = sipcdr(&["-q", "-o", plain.to_str().unwrap(), "-r", f]);
    let b = sipcdr(&[
        "-q",
        "-o",
        packed.to_str().unwrap(),
        "--compress",
        "zstd",
        "-r",
        f,
    ]);
    assert!(a.status.success() && b.status.success(), "{b:?}");
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let (pn, zn) = (names(&plain), names(&packed));
    assert_eq!(zn.len(), 1);
    assert_eq!(zn[0], format!("{}.zst", pn[0]));
    let text = zstd::decode_all(fs::File::open(packed.join(&zn[0])).unwrap()).unwrap();
    assert_eq!(text, fs::read(plain.join(&pn[0])).unwrap());
    // Standard output is never compressed by sipcdr.
    let c = sipcdr(&["-q", "-o", "-", "--compress", "zstd", "-r", f]);
    assert_eq!(c.status.code(), Some(1));
}

/// The shipped systemd unit is valid for systemd (`systemd-analyze verify`, with ExecStart pointed
/// at this build); skipped with a message where systemd-analyze is missing.
#[test]
fn systemd_unit_verifies() {
    let unit =
        std::fs::read_to_string(crate::root().join("scripts/systemd/sipcdr.service")).unwrap();
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED systemd_unit_verifies: systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sipcdr.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/sipcdr", env!("CARGO_BIN_EXE_sipcdr")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--config FILE`: TOML keys are the long flag names; the command line wins; unknown keys and
/// bad values are usage errors naming the file and the key.
#[test]
fn config_file_gives_the_same_cdrs_as_flags() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sipcdr.toml");
    let pcap = capture("udp_busy_486.pcap");
    std::fs::write(
        &conf,
        format!(
            "read = [{:?}]\nout-dir = \"{}\"\nshards = 3\nquiet = true\nfilter = \"udp\"\n",
            pcap.to_str().unwrap(),
            dir.path().join("never-used").display()
        ),
    )
    .unwrap();
    let golden = std::fs::read(capture("udp_busy_486.csv")).unwrap();
    // out-dir from the file is overridden by the command line's '-o -'.
    let out = sipcdr(&["--config", conf.to_str().unwrap(), "-o", "-"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, golden);
    assert!(out.stderr.is_empty(), "quiet = true");
    assert!(!dir.path().join("never-used").exists());
    // The filter from the file applies: 'tcp' matches nothing in a UDP capture.
    std::fs::write(
        &conf,
        format!("read = [{:?}]\nfilter = \"tcp\"\n", pcap.to_str().unwrap()),
    )
    .unwrap();
    let out = sipcdr(&["--config", conf.to_str().unwrap(), "-q", "-o", "-"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "header only"
    );

    std::fs::write(&conf, "read = [\"x.pcap\"]\nrotate_interval = \"1h\"\n").unwrap();
    let out = sipcdr(&["--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sipcdr.toml") && err.contains("unknown key 'rotate_interval'"),
        "{err}"
    );
}

/// A small capture cut at every byte offset: the reader never panics, reads every whole record
/// before the cut, and reports the cut at the offset of the record it could not finish; the
/// binary writes the CDRs of what it read and exits 3.
#[test]
fn capture_cut_at_every_offset() {
    use sipcdr::capture::file::{FileErrorKind, read_file};
    let src = fs::read(capture("udp_busy_486.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    // Record boundaries: 24-byte header, then 16-byte record headers with caplen.
    let mut ends = vec![];
    let mut off = 24;
    while off + 16 <= src.len() {
        let caplen = u32::from_le_bytes(src[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
        ends.push(off);
    }
    assert_eq!(*ends.last().unwrap(), src.len());
    for cut in 0..src.len() {
        fs::write(&path, &src[..cut]).unwrap();
        let mut packets = 0;
        let r = read_file(&path, |_| packets += 1);
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        assert_eq!(packets, whole, "cut at {cut}");
        match r {
            Ok(n) => assert!(
                (cut == 24 || ends.contains(&cut)) && n == whole,
                "cut at {cut}: Ok({n})"
            ),
            Err(e) => {
                let at_boundary = cut == 24 || ends.contains(&cut);
                assert!(
                    !at_boundary || cut == 0,
                    "cut at {cut} is a record boundary: {e}"
                );
                match e.kind {
                    FileErrorKind::Truncated => {
                        let last = match cut {
                            0..24 => 0, // the file header itself is cut
                            _ => ends
                                .iter()
                                .copied()
                                .filter(|&x| x <= cut)
                                .max()
                                .unwrap_or(24),
                        };
                        assert_eq!(e.offset as usize, last, "cut at {cut}: {e}");
                    }
                    FileErrorKind::Empty | FileErrorKind::NotPcap => assert!(cut < 24, "{e}"),
                    _ => panic!("cut at {cut}: unexpected {e}"),
                }
            }
        }
    }
    let golden = fs::read(capture("udp_busy_486.csv")).unwrap();
    for cut in [ends[3] + 5, ends[ends.len() - 2] + 20] {
        fs::write(&path, &src[..cut]).unwrap();
        let out = sipcdr(&["-o", "-", "-r", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "cut at {cut}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cut.pcap: truncated at byte offset"), "{err}");
        assert!(lines(&out.stdout) >= 1 && lines(&out.stdout) <= lines(&golden));
    }
}

/// A full disk (a 64 KiB tmpfs): a clear error naming the file, exit status 1, every `.csv` file
/// complete, the file being written left as `.part`. Needs root to mount the tmpfs.
#[test]
fn disk_full_is_a_clear_error_and_leaves_only_whole_csv_files() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        println!("SKIPPED disk_full: not root, cannot mount a tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("g.pcap");
    let gen_ = std::process::Command::new(crate::generated::gen_binary())
        .args([
            "--calls",
            "3000",
            "--seed",
            "5",
            "--rtp-share",
            "0",
            "--out",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(gen_.status.success());
    let small = dir.path().join("small");
    fs::create_dir(&small).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mount.success(), "mount tmpfs");
    let out = sipcdr(&[
        "-r",
        pcap.to_str().unwrap(),
        "--rotate-size",
        "16k",
        "-o",
        small.to_str().unwrap(),
    ]);
    let mut csv_rows = 0;
    let mut parts = 0;
    for e in fs::read_dir(&small).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "csv") {
            let text = fs::read(&p).unwrap();
            assert!(text.ends_with(b"\n"), "{p:?}");
            csv_rows += csv::Reader::from_reader(&text[..])
                .records()
                .map(|r| assert_eq!(r.unwrap().len(), sipcdr::cdr::COLUMNS.len()))
                .count();
        } else {
            parts += 1;
        }
    }
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        csv_rows > 0 && parts == 1,
        "{csv_rows} rows, {parts} .part files"
    );
}

/// A flood of 100,000 INVITEs with unique Call-IDs and no answer, interleaved with two real sipp
/// calls: with `--max-dialogs 20000` the flood is evicted (counted), memory stays bounded, and
/// the real calls' CDRs are exactly their golden rows.
#[test]
fn invite_flood_is_evicted_and_real_calls_survive() {
    use etherparse::PacketBuilder;
    let real =
        crate::formats::read_pcap(&fs::read(capture("udp_answered_caller_bye.pcap")).unwrap());
    let (t0, t1) = (real[0].0, real[real.len() - 1].0);
    const FLOOD: u64 = 100_000;
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend([0; 8]);
    file.extend(65535u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    let record = |file: &mut Vec<u8>, ts: u64, frame: &[u8]| {
        file.extend(((ts / 1_000_000) as u32).to_le_bytes());
        file.extend(((ts % 1_000_000) as u32).to_le_bytes());
        file.extend((frame.len() as u32).to_le_bytes());
        file.extend((frame.len() as u32).to_le_bytes());
        file.extend_from_slice(frame);
    };
    let mut real_it = real.iter().peekable();
    for i in 0..FLOOD {
        let ts = t0 + (t1 - t0) * i / FLOOD;
        while let Some((rt, frame)) = real_it.next_if(|(rt, _)| *rt <= ts) {
            record(&mut file, *rt, frame);
        }
        let invite = format!(
            "INVITE sip:{i}@victim SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK{i}\r\n\
From: <sip:x@flood>;tag={i}\r\nTo: <sip:{i}@victim>\r\nCall-ID: flood-{i}\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 9, 9, 9], [10, 0, 0, 1], 64)
            .udp(5060, 5060)
            .write(&mut frame, invite.as_bytes())
            .unwrap();
        record(&mut file, ts, &frame);
    }
    for (rt, frame) in real_it {
        record(&mut file, *rt, frame);
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    fs::write(&pcap, file).unwrap();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M", env!("CARGO_BIN_EXE_sipcdr")])
        .args(["--max-dialogs", "20000", "-o", "-", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let evicted: u64 = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("evicted"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(evicted >= FLOOD - 20_000, "{evicted} evicted\n{err}");
    let rss: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rss < 150 * 1024, "max RSS {rss} KiB");
    let text = String::from_utf8(out.stdout).unwrap();
    let golden = fs::read_to_string(capture("udp_answered_caller_bye.csv")).unwrap();
    for row in golden.lines().skip(1) {
        assert!(
            text.lines().any(|l| l == row),
            "real call's row missing: {row}"
        );
    }
    assert_eq!(text.lines().count() as u64, 1 + FLOOD + 2);
}

/// `--tcp-max-flows` on sipp's TCP calls (one connection, two flows): with room for one flow the
/// callee's direction is refused and counted, so no call is answered; with room for two the
/// CDRs are the golden ones. 0 is a clear error before anything is read.
#[test]
fn tcp_flow_cap_refuses_and_counts_the_flows_past_it() {
    let f = capture("tcp_answered_caller_bye.pcap");
    let f = f.to_str().unwrap();
    let golden = fs::read(capture("tcp_answered_caller_bye.csv")).unwrap();
    let one = sipcdr(&["--shards", "1", "--tcp-max-flows", "1", "-o", "-", "-r", f]);
    let err = String::from_utf8_lossy(&one.stderr);
    assert!(
        err.contains(" 10 segments refused (flow table full)"),
        "{err}"
    );
    let rows = String::from_utf8_lossy(&one.stdout);
    assert_eq!(lines(&one.stdout), 3, "{rows}");
    assert_ne!(one.stdout, golden);
    let mut rdr = csv::Reader::from_reader(&one.stdout[..]);
    let answer = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "answer_time")
        .unwrap();
    for r in rdr.records() {
        assert_eq!(r.unwrap().get(answer), Some(""), "{rows}");
    }
    let two = sipcdr(&["--shards", "1", "--tcp-max-flows", "2", "-o", "-", "-r", f]);
    let err = String::from_utf8_lossy(&two.stderr);
    assert!(err.contains(" 0 segments refused"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&two.stdout),
        String::from_utf8_lossy(&golden)
    );
    let zero = sipcdr(&["--tcp-max-flows", "0", "-o", "-", "-r", f]);
    assert_eq!(zero.status.code(), Some(2), "{zero:?}");
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--tcp-max-flows"));
    assert!(zero.stdout.is_empty());
}

/// `--realtime` on every golden capture of `captures/`: the same CDRs as the golden files (made
/// under normal scheduling), and the summary says how many of the three pipeline threads
/// (`--shards 1`: capture, tracker, writer) got SCHED_FIFO: all three where this process may
/// use real-time scheduling (root in CI), none with a warning where it may not. As root, the
/// refusal is also run, as the unprivileged user `nobody` (setpriv, util-linux).
#[test]
fn realtime_gives_the_golden_cdrs_and_says_what_it_got() {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // Whether a thread of this process may take SCHED_FIFO (asked in a thread of its own).
    let permitted = std::thread::spawn(|| {
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, fifo).is_ok()
    })
    .join()
    .unwrap();
    let is_root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let can_drop = is_root
        && std::process::Command::new("setpriv")
            .args(nobody)
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
    let mut goldens = 0;
    for entry in fs::read_dir(capture("")).unwrap() {
        let pcap = entry.unwrap().path();
        if pcap.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let golden = fs::read(pcap.with_extension("csv")).unwrap();
        let args = [
            "--realtime",
            "--shards",
            "1",
            "-o",
            "-",
            "-r",
            pcap.to_str().unwrap(),
        ];
        let mut runs = vec![(permitted, sipcdr(&args))];
        if permitted && can_drop {
            let out = std::process::Command::new("setpriv")
                .args(nobody)
                .arg(env!("CARGO_BIN_EXE_sipcdr"))
                .args(args)
                .output()
                .unwrap();
            runs.push((false, out));
        }
        for (granted, out) in runs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {err}", pcap.display());
            assert!(
                out.stdout == golden,
                "{}: not the golden CDRs",
                pcap.display()
            );
            let (line, warned) = if granted {
                ("SCHED_FIFO for 3 of 3 pipeline threads", false)
            } else {
                ("SCHED_FIFO for 0 of 3 pipeline threads", true)
            };
            assert!(err.contains(line), "{}: {err}", pcap.display());
            assert_eq!(
                err.contains("--realtime: SCHED_FIFO refused"),
                warned,
                "{}: {err}",
                pcap.display()
            );
        }
        goldens += 1;
    }
    assert!(goldens >= 20, "{goldens} golden captures");
    eprintln!(
        "realtime: {goldens} golden captures; SCHED_FIFO permitted: {permitted}, refusal run as nobody: {}",
        permitted && can_drop
    );
}
