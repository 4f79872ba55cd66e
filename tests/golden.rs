use crate::{root, sipcdr};

/// Captures with their expected CDRs (`NAME.pcap` → `NAME.csv`).
fn golden_pairs() -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("captures"))
        .expect("captures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| (p.clone(), p.with_extension("csv")))
        .collect();
    v.sort();
    v
}

#[test]
fn every_capture_gives_its_expected_cdrs_with_any_shard_count() {
    let pairs = golden_pairs();
    assert!(pairs.len() >= 14, "the sipp captures are missing");
    for (pcap, csv) in pairs {
        let expected = std::fs::read_to_string(&csv).unwrap_or_else(|e| {
            panic!(
                "{}: expected CSV missing ({e}); regenerate with scripts/update-golden.sh",
                csv.display()
            )
        });
        for shards in ["1", "4"] {
            let out = sipcdr(&[
                "-q",
                "-o",
                "-",
                "--shards",
                shards,
                "-r",
                pcap.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}: {:?}", pcap.display(), out);
            let got = String::from_utf8(out.stdout).unwrap();
            assert_eq!(got, expected, "{} with --shards {shards}", pcap.display());
        }
    }
}

/// `--mmap` (the files mapped into memory instead of read) gives every capture's expected CDRs,
/// one file at a time and all in one run.
#[test]
fn every_capture_gives_its_expected_cdrs_with_mmap() {
    let mut all: Vec<String> = vec!["-q".into(), "-o".into(), "-".into(), "--mmap".into()];
    for (pcap, csv) in golden_pairs() {
        let expected = std::fs::read_to_string(&csv).unwrap();
        let path = pcap.to_str().unwrap();
        let out = sipcdr(&["-q", "-o", "-", "--mmap", "--shards", "2", "-r", path]);
        assert!(out.status.success(), "{}: {:?}", pcap.display(), out);
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(got, expected, "{} with --mmap", pcap.display());
        all.extend(["-r".into(), path.into()]);
    }
    let a: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = sipcdr(&a);
    assert!(out.status.success(), "{out:?}");
    let read: Vec<&str> = a.iter().copied().filter(|x| *x != "--mmap").collect();
    assert_eq!(out.stdout, sipcdr(&read).stdout, "all captures in one run");
}

#[test]
fn all_captures_in_one_run_are_identical_across_shard_counts() {
    let mut args: Vec<String> = vec!["-q".into(), "-o".into(), "-".into()];
    for (pcap, _) in golden_pairs() {
        args.push("-r".into());
        args.push(pcap.to_str().unwrap().into());
    }
    let run = |shards: &str| {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["--shards", shards]);
        let out = sipcdr(&a);
        assert!(out.status.success());
        out.stdout
    };
    let one = run("1");
    assert!(one.iter().filter(|&&b| b == b'\n').count() > 14);
    assert_eq!(one, run("4"));
    assert_eq!(one, run("3"));
}
