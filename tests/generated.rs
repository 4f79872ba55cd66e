//! The synthetic benchmark capture (examples/gen.rs, independent of sipcdr's code) gives exactly
//! the CDRs the generator says it contains: the check that no benchmark figure is met by skipping
//! work. A small capture here; `scripts/bench.sh` runs the large ones.

use crate::sipcdr;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The generator example, built by `cargo test` beside this test binary.
pub fn gen_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let generator = profile_dir.join("examples").join("gen");
    assert!(
        generator.exists(),
        "{} not built: run the tests with `cargo test` (it builds the examples)",
        generator.display()
    );
    generator
}

fn columns(csv_text: &str, names: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let idx: Vec<usize> = names
        .iter()
        .map(|n| headers.iter().position(|h| h == *n).unwrap())
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            let v: Vec<String> = idx.iter().map(|&i| r[i].to_owned()).collect();
            (v[0].clone(), v)
        })
        .collect()
}

#[test]
fn generated_capture_gives_the_generators_expected_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("gen.pcap");
    let expected = dir.path().join("expected.csv");
    let status = Command::new(gen_binary())
        .args([
            "--calls",
            "3000",
            "--seed",
            "7",
            "--rtp-share",
            "0.5",
            "--concurrency",
            "400",
            "--cps",
            "100",
        ])
        .arg("--out")
        .arg(&pcap)
        .arg("--expected")
        .arg(&expected)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let names = [
        "call_id",
        "transport",
        "start_time",
        "answer_time",
        "end_time",
        "sip_resp_code",
        "reason",
        "disposition",
    ];
    let want = columns(&std::fs::read_to_string(&expected).unwrap(), &names);
    assert_eq!(want.len(), 3000);
    for shards in ["1", "2"] {
        let out = sipcdr(&[
            "-q",
            "-o",
            "-",
            "--shards",
            shards,
            "-r",
            pcap.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let got = columns(&String::from_utf8(out.stdout).unwrap(), &names);
        assert_eq!(got.len(), want.len());
        for (id, w) in &want {
            assert_eq!(got.get(id), Some(w), "call {id}");
        }
    }
}
