//! Replays the committed fuzz corpus and every crashing input the fuzzers found
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the fuzz targets' code
//! (`sipcdr::fuzzing`), so each CI run checks them without nightly or cargo-fuzz.

use sipcdr::capture::decode::Decoder;
use std::path::Path;

fn each_input(target: &str, mut f: impl FnMut(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            f(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn corpus_and_regressions_replay_without_panic() {
    let mut decoder = Decoder::new(Some(9060));
    let counts = [
        each_input("sip_message", sipcdr::fuzzing::sip_message),
        each_input("decode", |d| sipcdr::fuzzing::decode(&mut decoder, d)),
        each_input("tcp_stream", sipcdr::fuzzing::tcp_stream),
        each_input("ws_hep", sipcdr::fuzzing::ws_hep),
        each_input("pipeline", sipcdr::fuzzing::pipeline),
    ];
    assert!(
        counts.iter().all(|&n| n > 0),
        "every target has inputs: {counts:?}"
    );
}
