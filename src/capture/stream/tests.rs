use super::*;

const A: &[u8] = b"INVITE sip:b@h SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n";
const B: &[u8] = b"SIP/2.0 180 Ringing\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";
const C: &[u8] = b"BYE sip:a@h SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";

fn key() -> FlowKey {
    (
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5060".parse().unwrap(),
    )
}

fn seg(seq: u32, payload: &[u8]) -> TcpSegment<'_> {
    TcpSegment {
        seq,
        syn: false,
        fin: false,
        rst: false,
        payload,
    }
}

type Out = Vec<(Transport, Vec<u8>)>;

fn push(s: &mut Streams, out: &mut Out, seq: u32, payload: &[u8]) {
    s.push(
        key(),
        &seg(seq, payload),
        Timestamp::ZERO,
        &mut |_, _, t, m: &[u8]| out.push((t, m.to_vec())),
    );
}

fn msgs(out: &Out) -> Vec<Vec<u8>> {
    out.iter().map(|(_, m)| m.clone()).collect()
}

/// Feeds `chunks` as consecutive segments, returns the messages emitted.
fn run(s: &mut Streams, start: u32, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut seq = start;
    for c in chunks {
        push(s, &mut out, seq, c);
        seq = seq.wrapping_add(c.len() as u32);
    }
    msgs(&out)
}

#[test]
fn two_messages_in_one_segment_and_split_at_every_byte() {
    let both = [A, B].concat();
    let mut s = Streams::new(StreamConfig::default());
    assert_eq!(run(&mut s, 1000, &[&both]), vec![A.to_vec(), B.to_vec()]);
    for cut in 1..both.len() {
        let mut s = Streams::new(StreamConfig::default());
        let got = run(&mut s, u32::MAX - 3, &[&both[..cut], &both[cut..]]);
        assert_eq!(got, vec![A.to_vec(), B.to_vec()], "cut at {cut}");
    }
}

#[test]
fn retransmission_adds_nothing() {
    let mut s = Streams::new(StreamConfig::default());
    let mut out = Vec::new();
    push(&mut s, &mut out, 1, &A[..20]);
    push(&mut s, &mut out, 1, &A[..20]);
    push(&mut s, &mut out, 11, &A[10..]);
    push(&mut s, &mut out, 1, A);
    assert_eq!(msgs(&out), vec![A.to_vec()]);
    assert_eq!(s.stats.retransmitted, 2);
    assert_eq!(s.stats.overlapping, 1);
}

#[test]
fn out_of_order_segments_wait_for_the_missing_one() {
    let all = [A, B, C].concat();
    // Every permutation of four pieces gives the three messages, in stream order, once.
    let cuts = [0, 17, 70, 101, all.len()];
    let pieces: Vec<(u32, &[u8])> = cuts
        .windows(2)
        .map(|w| (100 + w[0] as u32, &all[w[0]..w[1]]))
        .collect();
    let mut perms = vec![vec![0usize, 1, 2, 3]];
    for _ in 0..23 {
        let mut p = perms.last().unwrap().clone();
        // next lexicographic permutation
        let i = (0..3).rev().find(|&i| p[i] < p[i + 1]).unwrap();
        let j = (i + 1..4).rev().find(|&j| p[j] > p[i]).unwrap();
        p.swap(i, j);
        p[i + 1..].reverse();
        perms.push(p);
    }
    for perm in perms {
        let mut s = Streams::new(StreamConfig::default());
        let mut out = Vec::new();
        // The first piece opens the flow (a capture starting mid-stream starts where it starts).
        push(&mut s, &mut out, pieces[0].0, pieces[0].1);
        for &i in &perm {
            push(&mut s, &mut out, pieces[i].0, pieces[i].1);
        }
        assert_eq!(
            msgs(&out),
            vec![A.to_vec(), B.to_vec(), C.to_vec()],
            "{perm:?}"
        );
        assert_eq!(s.stats.gaps, 0);
        assert_eq!(s.held_bytes(), 0);
    }
}

#[test]
fn duplicated_and_overlapping_out_of_order_segments() {
    let all = [A, B, C].concat();
    let mut s = Streams::new(StreamConfig::default());
    let mut out = Vec::new();
    push(&mut s, &mut out, 1, &all[..10]);
    push(&mut s, &mut out, 41, &all[40..90]);
    push(&mut s, &mut out, 41, &all[40..90]); // duplicate, held
    push(&mut s, &mut out, 31, &all[30..120]); // overlaps both ends of the held one
    push(&mut s, &mut out, 6, &all[5..35]); // fills the hole, overlapping
    push(&mut s, &mut out, 100, &all[99..]);
    assert_eq!(msgs(&out), vec![A.to_vec(), B.to_vec(), C.to_vec()]);
    assert_eq!(s.stats.retransmitted, 1);
    assert!(s.stats.overlapping >= 2);
}

#[test]
fn a_hole_never_filled_drops_only_the_damaged_message() {
    let all = [A, B, C].concat();
    let cfg = StreamConfig::default();
    let mut s = Streams::new(cfg);
    let mut out = Vec::new();
    let mut emit = |_, _, t, m: &[u8]| out.push((t, m.to_vec()));
    let at = |secs| Timestamp::from_secs(secs);
    let lost = A.len() + 10..A.len() + 20; // inside B's start line
    s.push(key(), &seg(1, &all[..lost.start]), at(10), &mut emit);
    s.push(
        key(),
        &seg(1 + lost.end as u32, &all[lost.end..]),
        at(10),
        &mut emit,
    );
    s.expire(at(11), &mut emit);
    assert_eq!(s.stats.gaps, 0, "still waiting");
    s.expire(at(10 + i64::from(cfg.reorder_secs) + 1), &mut emit);
    assert_eq!(msgs(&out), vec![A.to_vec(), C.to_vec()]);
    assert_eq!(s.stats.gaps, 1);
    assert_eq!(s.held_bytes(), 0);
}

#[test]
fn end_of_input_reads_what_waits_behind_a_hole() {
    let all = [A, B].concat();
    let mut s = Streams::new(StreamConfig::default());
    let mut out = Vec::new();
    push(&mut s, &mut out, 1, &all[..10]);
    push(&mut s, &mut out, 1 + A.len() as u32, B);
    assert!(out.is_empty());
    s.finish(&mut |_, _, t, m: &[u8]| out.push((t, m.to_vec())));
    assert_eq!(msgs(&out), vec![B.to_vec()]);
}

#[test]
fn mid_stream_start_and_gap_resynchronise() {
    let mut s = Streams::new(StreamConfig::default());
    // Starts in the middle of A's body, then B arrives whole.
    let got = run(&mut s, 50, &[&A[40..], B]);
    assert_eq!(got, vec![B.to_vec()]);
    // The stream's first bytes missing at every offset of A: B and C always come out.
    let all = [A, B, C].concat();
    for n in 1..A.len() {
        let mut s = Streams::new(StreamConfig::default());
        let mut got = run(&mut s, 7, &[&all[n..n + 3], &all[n + 3..]]);
        let tail = got.split_off(got.len() - 2);
        assert_eq!(
            tail,
            vec![B.to_vec(), C.to_vec()],
            "first {n} bytes missing"
        );
        // What is left of A may still read as a request of some unknown method, never an INVITE.
        assert!(
            got.len() <= 1
                && got
                    .iter()
                    .all(|m| A.ends_with(m) && !m.starts_with(b"INVITE"))
        );
    }
}

#[test]
fn fin_closes_and_a_late_retransmission_makes_no_message() {
    let mut s = Streams::new(StreamConfig::default());
    let mut out = Vec::new();
    let mut emit = |_, _, t, m: &[u8]| out.push((t, m.to_vec()));
    let mut fin = seg(1, A);
    fin.fin = true;
    s.push(key(), &fin, Timestamp::ZERO, &mut emit);
    s.push(key(), &fin, Timestamp::ZERO, &mut emit);
    assert_eq!(s.stats.flows_closed, 1);
    assert_eq!(s.stats.retransmitted, 1);
    let mut rst = seg(1 + A.len() as u32, &[]);
    rst.rst = true;
    s.push(key(), &rst, Timestamp::ZERO, &mut emit);
    assert_eq!(s.open_flows(), 0);
    assert_eq!(msgs(&out), vec![A.to_vec()]);
}

#[test]
fn idle_flows_are_forgotten() {
    let cfg = StreamConfig::default();
    let mut s = Streams::new(cfg);
    let mut out = Vec::new();
    let mut emit = |_, _, t, m: &[u8]| out.push((t, m.to_vec()));
    s.push(key(), &seg(1, &A[..10]), Timestamp::from_secs(1), &mut emit);
    assert_eq!((s.open_flows(), s.held_bytes()), (1, 10));
    s.expire(
        Timestamp::from_secs(2 + i64::from(cfg.idle_secs)),
        &mut emit,
    );
    assert_eq!((s.open_flows(), s.held_bytes()), (0, 0));
    assert_eq!(s.stats.flows_expired, 1);
}

/// Hundreds of flows due at one tick, many more than the flows loaded ahead of their check:
/// each idle one is forgotten with what it held, each active one is kept.
#[test]
fn one_tick_checks_hundreds_of_flows() {
    let cfg = StreamConfig::default();
    let mut s = Streams::new(cfg);
    let mut out = Vec::new();
    let mut emit = |_, _, t, m: &[u8]| out.push((t, m.to_vec()));
    let flow = |i: u16| -> FlowKey {
        (
            SocketAddr::from(([10, 0, 0, 1], 10_000 + i)),
            "10.0.0.2:5060".parse().unwrap(),
        )
    };
    for i in 0..300 {
        s.push(
            flow(i),
            &seg(1, &A[..10]),
            Timestamp::from_secs(1),
            &mut emit,
        );
    }
    // A third of them stay active.
    let later = Timestamp::from_secs(100);
    for i in (0..300).step_by(3) {
        s.push(flow(i), &seg(11, &A[10..20]), later, &mut emit);
    }
    assert_eq!((s.open_flows(), s.held_bytes()), (300, 300 * 10 + 100 * 10));
    s.expire(
        Timestamp::from_secs(2 + i64::from(cfg.idle_secs)),
        &mut emit,
    );
    assert_eq!((s.open_flows(), s.held_bytes()), (100, 100 * 20));
    assert_eq!(s.stats.flows_expired, 200);
    for i in 0..300 {
        let held = s.flows.get(&Key::new(flow(i))).is_some();
        assert_eq!(held, i % 3 == 0, "flow {i}");
    }
    assert!(out.is_empty());
}

/// A flow with traffic is kept however long it lives; it is forgotten `idle_secs` after its last
/// segment, not after its first check (which activity moved back).
#[test]
fn an_active_flow_is_kept_and_forgotten_after_its_last_segment() {
    let cfg = StreamConfig::default();
    let idle = i64::from(cfg.idle_secs);
    let mut s = Streams::new(cfg);
    let mut out = Vec::new();
    let mut emit = |_, _, t, m: &[u8]| out.push((t, m.to_vec()));
    let mut seq = 1;
    // One segment every idle/2 seconds, ticks every second, for five idle periods.
    let mut last = 0;
    for sec in 0..5 * idle {
        s.expire(Timestamp::from_secs(sec), &mut emit);
        if sec % (idle / 2) == 0 {
            s.push(
                key(),
                &seg(seq, &A[..4]),
                Timestamp::from_secs(sec),
                &mut emit,
            );
            seq += 4;
            last = sec;
        }
        assert_eq!(s.open_flows(), 1, "second {sec}");
    }
    // Checks are not piling up: one per flow plus those superseded and not yet passed.
    assert!(s.checks.len() <= 3, "{} checks", s.checks.len());
    s.expire(Timestamp::from_secs(last + idle), &mut emit);
    assert_eq!(s.open_flows(), 1, "due only after last + idle");
    s.expire(Timestamp::from_secs(last + idle + 1), &mut emit);
    assert_eq!((s.open_flows(), s.stats.flows_expired), (0, 1));
}

/// Connections reset right after they open leave their checks behind; the heap is pruned so it
/// stays proportional to the flows held.
#[test]
fn checks_of_reset_flows_do_not_pile_up() {
    let mut s = Streams::new(StreamConfig::default());
    let mut emit = |_, _, _, _: &[u8]| {};
    for i in 0..50_000u32 {
        let now = Timestamp::from_micros(i64::from(i) * 10_000); // 100 connections a second
        s.expire(now, &mut emit);
        let k: FlowKey = (
            SocketAddr::from(([10, 0, (i >> 16) as u8, (i >> 8) as u8], i as u16)),
            "10.0.0.2:5060".parse().unwrap(),
        );
        let mut syn = seg(1, &[]);
        syn.syn = true;
        s.push(k, &syn, now, &mut emit);
        let mut rst = seg(2, &[]);
        rst.rst = true;
        s.push(k, &rst, now, &mut emit);
        assert!(
            s.checks.len() <= 2 * s.open_flows() + 4096 + 1,
            "{} checks for {} flows",
            s.checks.len(),
            s.open_flows()
        );
    }
    assert_eq!(s.open_flows(), 0);
}

/// Closed connections leave the table a few seconds after their FIN, so a steady stream of
/// short connections never fills it: 200 connections, one every 2 s, with room for 8 flows.
#[test]
fn closed_flows_leave_the_table_and_new_ones_are_not_refused() {
    let cfg = StreamConfig {
        max_flows: 8,
        ..StreamConfig::default()
    };
    let mut s = Streams::new(cfg);
    let mut out = 0;
    let mut emit = |_, _, _, _: &[u8]| out += 1;
    for i in 0..200u16 {
        let now = Timestamp::from_secs(2 * i64::from(i));
        s.expire(now, &mut emit);
        let k: FlowKey = (
            SocketAddr::from(([10, 0, 0, 1], 10_000 + i)),
            "10.0.0.2:5060".parse().unwrap(),
        );
        let mut fin = seg(1, A);
        fin.fin = true;
        s.push(k, &fin, now, &mut emit);
        // A retransmitted FIN a second later opens nothing new.
        s.push(k, &fin, now.plus_secs(1), &mut emit);
    }
    assert_eq!(s.stats.segments_refused, 0);
    assert_eq!((s.stats.flows_closed, s.stats.flows_expired), (200, 0));
    assert!(s.open_flows() <= 4, "{} flows left", s.open_flows());
    // An unfinished connection still waits for the idle timeout.
    s.push(
        key(),
        &seg(1, &A[..10]),
        Timestamp::from_secs(1000),
        &mut emit,
    );
    s.expire(
        Timestamp::from_secs(1000 + i64::from(CLOSED_LINGER_SECS) + 1),
        &mut emit,
    );
    assert!(s.flows.get(&Key::new(key())).is_some());
    assert_eq!(out, 200);
}

#[test]
fn garbage_is_skipped_and_caps_are_counted() {
    let cfg = StreamConfig {
        max_flow_bytes: 1000,
        ..StreamConfig::default()
    };
    let mut s = Streams::new(cfg);
    let junk = vec![b'x'; 5000];
    assert!(run(&mut s, 1, &[&junk, b"\r\n", B]).len() == 1);
    // A header that never ends is dropped at the cap.
    let mut s = Streams::new(cfg);
    let mut long = b"INVITE sip:b@h SIP/2.0\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 2000));
    assert!(run(&mut s, 1, &[&long]).is_empty());
    assert_eq!(s.stats.flow_overflows, 1);
    // Out-of-order data past the per-flow cap gives up the hole.
    let mut s = Streams::new(cfg);
    let mut out = Vec::new();
    push(&mut s, &mut out, 1, &A[..5]);
    push(&mut s, &mut out, 900, &[b'y'; 1200]);
    assert!(s.stats.flow_overflows >= 1);
    assert!(s.held_bytes() <= 1000);
    // The total cap across flows.
    let cfg = StreamConfig {
        max_total_bytes: 50,
        ..StreamConfig::default()
    };
    let mut s = Streams::new(cfg);
    assert!(run(&mut s, 1, &[&A[..60], &A[60..]]).is_empty());
    assert_eq!(s.stats.total_overflows, 1);
    assert_eq!(s.held_bytes(), 0);
}

#[test]
fn tls_is_counted_never_decoded() {
    let mut s = Streams::new(StreamConfig::default());
    let mut rec = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    rec.extend([0xAB; 0x40]);
    let mut with_sip_inside = rec.clone();
    with_sip_inside.extend_from_slice(A); // never read in a TLS flow
    let got = run(&mut s, 1, &[&rec, &with_sip_inside]);
    assert!(got.is_empty());
    assert_eq!(s.stats.tls_flows, 1);
    assert_eq!(s.stats.tls_bytes as usize, rec.len() * 2 + A.len());
    assert_eq!(s.held_bytes(), 0);
}

mod websocket {
    use super::*;
    use crate::capture::ws::tests::encode;
    use crate::capture::ws::{BINARY, CONTINUATION, TEXT};

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    const MASK: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

    fn stream() -> Vec<u8> {
        let mut v = UPGRADE.to_vec();
        v.extend(encode(true, TEXT, MASK, A));
        v.extend(encode(true, 0x9, MASK, b"ping")); // control frames are skipped
        // B in three fragments, with a ping between them
        v.extend(encode(false, BINARY, MASK, &B[..10]));
        v.extend(encode(false, CONTINUATION, MASK, &B[10..30]));
        v.extend(encode(true, 0xA, MASK, b""));
        v.extend(encode(true, CONTINUATION, MASK, &B[30..]));
        v.extend(encode(true, TEXT, MASK, C));
        v
    }

    #[test]
    fn upgrade_then_frames_split_at_every_byte() {
        let v = stream();
        let want = vec![A.to_vec(), B.to_vec(), C.to_vec()];
        let mut s = Streams::new(StreamConfig::default());
        let mut out = Vec::new();
        push(&mut s, &mut out, 1, &v);
        assert_eq!(msgs(&out), want);
        assert!(out.iter().all(|(t, _)| *t == Transport::Ws));
        assert_eq!((s.stats.ws_flows, s.stats.ws_messages), (1, 3));
        for cut in 1..v.len() {
            let mut s = Streams::new(StreamConfig::default());
            assert_eq!(
                run(&mut s, 1, &[&v[..cut], &v[cut..]]),
                want,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn server_side_unmasked_and_mid_stream_start() {
        let mut v = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        v.extend(encode(true, TEXT, None, B));
        let mut s = Streams::new(StreamConfig::default());
        assert_eq!(run(&mut s, 1, &[&v]), vec![B.to_vec()]);
        // No upgrade captured, and the first frame cut: the next frame carrying SIP is found.
        let body = stream();
        let from = UPGRADE.len() + 7;
        let mut s = Streams::new(StreamConfig::default());
        let got = run(&mut s, 1, &[&body[from..from + 40], &body[from + 40..]]);
        assert_eq!(got, vec![B.to_vec(), C.to_vec()]);
    }

    #[test]
    fn a_gap_in_a_websocket_flow_resynchronises_on_frames() {
        let v = stream();
        let frame_a = UPGRADE.len()..UPGRADE.len() + encode(true, TEXT, MASK, A).len();
        let mut s = Streams::new(StreamConfig::default());
        let mut out = Vec::new();
        push(&mut s, &mut out, 1, &v[..frame_a.start + 10]);
        // bytes frame_a.start+10 .. +20 are lost
        let resume = frame_a.start + 20;
        push(&mut s, &mut out, 1 + resume as u32, &v[resume..]);
        s.finish(&mut |_, _, t, m: &[u8]| out.push((t, m.to_vec())));
        assert_eq!(msgs(&out), vec![B.to_vec(), C.to_vec()]);
        assert_eq!(s.stats.gaps, 1);
    }
}

/// 150 000 connections open at once (300 000 flows, as at ~1.5 M open legs with 10 % of calls on
/// TCP) are all reassembled with the default cap; a smaller cap refuses exactly the flows past
/// it, counted, and the flows it holds still work.
#[test]
fn hundreds_of_thousands_of_flows_fit_the_default_cap_and_a_small_cap_refuses_the_rest() {
    let conn = |i: u32| -> FlowKey {
        let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5060));
        (a, "10.255.0.1:5060".parse().unwrap())
    };
    for (cap, n) in [(DEFAULT_MAX_FLOWS, 150_000u32), (1000, 1500)] {
        let mut s = Streams::new(StreamConfig {
            max_flows: cap,
            ..StreamConfig::default()
        });
        let out = std::cell::Cell::new(0usize);
        let mut emit = |_, _, _, _: &[u8]| out.set(out.get() + 1);
        for i in 0..n {
            let (a, b) = conn(i);
            s.push((a, b), &seg(1, A), Timestamp::ZERO, &mut emit);
            s.push((b, a), &seg(1, B), Timestamp::ZERO, &mut emit);
        }
        let want = (2 * n as usize).min(cap);
        assert_eq!(s.open_flows(), want, "cap {cap}");
        assert_eq!(s.stats.segments_refused, 2 * u64::from(n) - want as u64);
        assert_eq!(out.get(), want);
        // A held flow's next message is still read.
        s.push(
            conn(0),
            &seg(1 + A.len() as u32, C),
            Timestamp::ZERO,
            &mut emit,
        );
        assert_eq!(out.get(), want + 1);
    }
}

/// A flow keeps no buffer once the message that was split over its segments is read, so idle
/// connections cost only their table entry.
#[test]
fn open_flows_cost_no_buffer_while_idle() {
    let mut s = Streams::new(StreamConfig::default());
    let got = run(&mut s, 1, &[&A[..20], &A[20..]]);
    assert_eq!(got, vec![A.to_vec()]);
    let f = s.flows.get(&Key::new(key())).unwrap();
    assert!(f.bufs.is_none(), "an idle flow holds buffers");
    // Per flow: the key, the state and the table's control byte; a check on the wheel besides.
    let entry = std::mem::size_of::<(Key, Flow)>() + 1;
    assert!(entry <= 81, "{entry} bytes per flow");
    let check = std::mem::size_of::<(u32, Key)>();
    assert!(check <= 44, "{check} bytes per check");
}

/// The compact key stands for its pair of addresses exactly, and sorts as they do: flows that
/// expire at one tick emit in that order, so the output does not depend on the representation.
#[test]
fn flow_keys_round_trip_and_sort_as_addresses() {
    let addrs: Vec<SocketAddr> = [
        "10.0.0.1:5060",
        "10.0.0.1:5061",
        "10.0.0.2:1",
        "9.255.255.255:65535",
        "255.255.255.255:0",
        "[::1]:5060",
        "[::ffff:10.0.0.1]:5060",
        "[2001:db8::1]:5060",
        "[2001:db8::1]:1",
        "[fe80::1]:5060",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let mut pairs: Vec<FlowKey> = Vec::new();
    for &a in &addrs {
        for &b in &addrs {
            pairs.push((a, b));
        }
    }
    for &p in &pairs {
        let k = Key::new(p);
        assert_eq!(k.addrs(), p);
        assert_eq!(k.reverse().addrs(), (p.1, p.0));
    }
    let mut by_addr = pairs.clone();
    by_addr.sort_unstable();
    let mut by_key: Vec<Key> = pairs.iter().map(|&p| Key::new(p)).collect();
    by_key.sort_unstable();
    let by_key: Vec<FlowKey> = by_key.into_iter().map(Key::addrs).collect();
    assert_eq!(by_key, by_addr);
}

/// Out-of-order segments make a flow hold buffers; once the hole is filled and the message
/// read, the flow gives them back.
#[test]
fn a_flow_gives_its_buffers_back_after_reordering() {
    let mut s = Streams::new(StreamConfig::default());
    let mut out = Vec::new();
    let all = [A, B].concat();
    push(&mut s, &mut out, 1, &all[..10]);
    push(&mut s, &mut out, 31, &all[30..]); // ahead of a hole: held
    let held = |s: &Streams| s.flows.get(&Key::new(key())).map(|f| f.bufs.is_some());
    assert_eq!(held(&s), Some(true));
    push(&mut s, &mut out, 11, &all[10..30]);
    assert_eq!(msgs(&out), vec![A.to_vec(), B.to_vec()]);
    assert_eq!(held(&s), Some(false));
    assert_eq!(s.held_bytes(), 0);
}
