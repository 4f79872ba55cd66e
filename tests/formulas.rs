//! The references' formulas hold on every row sipcdr writes, for every capture we have (ours and,
//! when present, the shared public ones): talk = end − answer, duration = end − start,
//! pdd = ring start − start and ring = (answer, else end) − ring start with ring start = progress,
//! else progress_media (FreeSWITCH), hold_ms = the sum of hold_events, times in order.

use crate::semantics::us;
use crate::{root, sipcdr};
use std::collections::HashMap;

fn ms(v: &str) -> Option<i64> {
    (!v.is_empty()).then(|| v.parse().unwrap())
}

/// Whole milliseconds between two microsecond times, as sipcdr rounds them (toward zero).
fn diff(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some((a? - b?) / 1000)
}

fn check_rows(name: &str, csv_text: &str) -> usize {
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let r: HashMap<&str, &str> = headers.iter().zip(rec.iter()).collect();
        let t = |k: &str| us(r[k]);
        let (start, progress, media, answer, end) = (
            t("start_time"),
            t("progress_time"),
            t("progress_media_time"),
            t("answer_time"),
            t("end_time"),
        );
        let ring = progress.or(media);
        let what = format!("{name}: {:?}", rec);
        assert_eq!(ms(r["duration_ms"]), diff(end, start), "duration {what}");
        assert_eq!(ms(r["talk_ms"]), diff(end, answer), "talk {what}");
        assert_eq!(ms(r["pdd_ms"]), diff(ring, start), "pdd {what}");
        assert_eq!(ms(r["ring_ms"]), diff(answer.or(end), ring), "ring {what}");
        for later in [progress, media, answer, end].into_iter().flatten() {
            assert!(later >= start.unwrap(), "time before start: {what}");
        }
        let holds: i64 = r["hold_events"]
            .trim_matches(|c| c == '{' || c == '}')
            .split("},{")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (a, b) = p.split_once(',').unwrap();
                (b.parse::<i64>().unwrap() - a.parse::<i64>().unwrap()) / 1000
            })
            .sum();
        let hold_ms = ms(r["hold_ms"]).unwrap();
        // hold_ms sums the periods in microseconds: it may exceed the sum of rounded parts by
        // less than one millisecond per period.
        let periods = r["hold_events"].matches("},{").count() as i64 + 1;
        assert!(
            hold_ms >= holds && hold_ms - holds <= periods,
            "hold_ms {hold_ms} vs hold_events {holds}: {what}"
        );
        n += 1;
    }
    n
}

#[test]
fn formulas_hold_on_every_row_of_every_capture() {
    let mut pcaps: Vec<_> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    let shared = root().join("../shared/captures");
    match std::fs::read_dir(&shared) {
        Ok(dir) => pcaps.extend(dir.map(|e| e.unwrap().path()).filter(|p| {
            p.to_str()
                .is_some_and(|s| s.ends_with(".pcap") || s.ends_with(".pcapng"))
        })),
        Err(_) => eprintln!(
            "SKIPPED the shared public captures: {} not found (only our own captures checked)",
            shared.display()
        ),
    }
    pcaps.sort();
    let mut rows = 0;
    for p in &pcaps {
        let out = sipcdr(&["-q", "-o", "-", "-r", p.to_str().unwrap()]);
        rows += check_rows(
            &p.display().to_string(),
            &String::from_utf8_lossy(&out.stdout),
        );
    }
    assert!(rows >= 20, "only {rows} rows checked");
    eprintln!("formulas: {rows} rows of {} captures checked", pcaps.len());
}
