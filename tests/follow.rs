//! `--follow`: a capture that is still being written. The test is the writer: it appends a real
//! capture to the file in uneven chunks (the first cuts the file header, later ones cut records),
//! so sipcdr meets the end of the file and partial records many times. It must keep waiting, and
//! on SIGTERM or SIGINT end with exit 0 and exactly the CDRs of the whole capture.

use crate::{capture, root};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn follow(src: &[u8], name: &str, signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let growing = dir.path().join(name);
    fs::write(&growing, &src[..10]).unwrap(); // not even the whole file header yet
    let child = Command::new(env!("CARGO_BIN_EXE_sipcdr"))
        .args(["-o", "-", "--follow", "-r"])
        .arg(&growing)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // sipcdr meets the cut header first (whatever the machine's speed), then the rest.
    std::thread::sleep(Duration::from_millis(300));
    let mut f = OpenOptions::new().append(true).open(&growing).unwrap();
    let mut at = 10;
    for chunk in [7, 300, 1, 901, 33, 1500, 64].iter().cycle() {
        if at >= src.len() {
            break;
        }
        let end = (at + chunk).min(src.len());
        f.write_all(&src[at..end]).unwrap();
        f.flush().unwrap();
        at = end;
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "sipcdr stopped at the end of a file it was told to follow"
    );
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{name}: {err}");
    assert!(!err.contains("error"), "{err}");
    let golden = fs::read_to_string(capture("udp_answered_caller_bye.csv")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), golden, "{name}");
}

#[test]
fn follow_a_growing_pcap_until_sigterm() {
    let src = fs::read(capture("udp_answered_caller_bye.pcap")).unwrap();
    follow(&src, "growing.pcap", "-TERM");
}

#[test]
fn follow_a_growing_pcapng_until_sigint() {
    let src = fs::read(root().join("tests/data/udp_answered_caller_bye.pcapng")).unwrap();
    follow(&src, "growing.pcapng", "-INT");
}
