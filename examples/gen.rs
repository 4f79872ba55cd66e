//! Deterministic synthetic SIP capture generator for benchmarks (issue #3).
//!
//! Writes a classic little-endian microsecond pcap (LINKTYPE_ETHERNET) of `--calls` SIP calls
//! started at a steady `--cps` rate from 2026-01-01T00:00:00Z, with RTP and REGISTER/OPTIONS noise
//! interleaved in time order, streaming through a `BufWriter` with memory bounded by the number of
//! open calls. The same arguments always give a byte-identical file (own splitmix64 PRNG, no clock).
//!
//! Each call is one leg: unique Call-ID `gen-<n>@bench.test` (n zero-padded so that byte order is
//! call order), tags, branches, numbers and a unique pair of 10.x.y.z addresses (IPv6 `fd00::` for
//! ~10% of calls), port 5060 on both sides. Scenarios: 55% answered + BYE by the caller, 10%
//! answered + BYE by the callee, 8% 486, 4% 404, 3% 503, 8% CANCEL after 180 (200, 487, ACK), 6% 407
//! challenge then retried INVITE then answered, 6% answered with a hold/resume re-INVITE pair. ~10%
//! of calls run over TCP (one connection each; a third coalesce back-to-back messages in one
//! segment, a third split the INVITE over two segments); ~2% of UDP/IPv4 calls send a ~2000-byte
//! INVITE as two IPv4 fragments. A message carried by several packets (fragments, segments) takes
//! the time of the packet that completes it. No call has a session timer and every call ends
//! within the capture. RTP (12-byte header + 160 bytes PCMU, between the SDP's even media ports)
//! is spread evenly over the talk time of answered calls (only the caller sends while on hold),
//! in such numbers that `--rtp-share` of all packets are RTP.
//!
//! Arguments:
//! - `--out FILE`          pcap to write (required)
//! - `--calls N`           number of calls (default 1000)
//! - `--seed S`            PRNG seed (default 1)
//! - `--rtp-share F`       fraction of all packets that are RTP, 0 <= F < 1 (default 0.8)
//! - `--concurrency C`     cap on simultaneously open calls; calls last ~C / cps on average, so
//!   about C are open in steady state (default 2000)
//! - `--cps R`             call attempts per second of capture time (default 200)
//! - `--expected FILE`     also write the CDRs sipcdr must produce: `call_id,transport,start_time,
//!   answer_time,end_time,sip_resp_code,reason,disposition`, one line per leg, sorted by call_id
//!
//! A summary (packets, SIP, RTP, calls by scenario, bytes) goes to standard error.
//!
//! Example:
//! ```sh
//! cargo run --release --example gen -- --out /tmp/big.pcap --calls 200000 --seed 1 \
//!     --rtp-share 0.8 --concurrency 10000 --expected /tmp/big.expected.csv
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use etherparse::{
    IpFragOffset, IpHeaders, Ipv4Header, PacketBuilder, PacketBuilderStep, UdpHeader, ip_number,
};

/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch.
const EPOCH_US: u64 = 1_767_225_600 * 1_000_000;
const SIP_PORT: u16 = 5060;
/// IPv4 payload bytes per fragment for a 1500-byte MTU (a multiple of 8).
const FRAG_PAYLOAD: usize = 1480;
const NOISE_SHARE: f64 = 0.05;

#[derive(Parser)]
#[command(about = "Deterministic synthetic SIP/RTP pcap generator for sipcdr benchmarks")]
struct Args {
    /// pcap file to write
    #[arg(long)]
    out: PathBuf,
    /// number of calls
    #[arg(long, default_value_t = 1000)]
    calls: u64,
    /// PRNG seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// fraction of all packets that are RTP (0 <= F < 1)
    #[arg(long, default_value_t = 0.8)]
    rtp_share: f64,
    /// cap on simultaneously open calls (mean call length = concurrency / cps)
    #[arg(long, default_value_t = 2000)]
    concurrency: usize,
    /// call attempts per second of capture time
    #[arg(long, default_value_t = 200.0)]
    cps: f64,
    /// CSV of the CDRs sipcdr must write for this capture
    #[arg(long)]
    expected: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64: small, fast, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses

#[derive(Clone, Copy)]
enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    /// The address of side `side` (0 caller, 1 callee) of call `n`: unique per call and side.
    fn of_call(n: u64, side: u64, v6: bool) -> Addr {
        let i = 2 * n + side;
        if v6 {
            let mut a = [0u8; 16];
            a[0] = 0xfd;
            a[7] = 0xbe;
            a[9] = side as u8 + 1;
            a[10..16].copy_from_slice(&n.to_be_bytes()[2..8]);
            Addr::V6(a)
        } else {
            let host = (i % 254 + 1) as u8;
            let net = (i / 254) as u16; // unique up to ~8.3 M calls, wraps after
            let [hi, lo] = net.to_be_bytes();
            Addr::V4([10, hi, lo, host])
        }
    }
    fn text(&self) -> String {
        match self {
            Addr::V4(a) => Ipv4Addr::from(*a).to_string(),
            Addr::V6(a) => Ipv6Addr::from(*a).to_string(),
        }
    }
    /// The host part of a SIP URI (IPv6 in brackets).
    fn host(&self) -> String {
        match self {
            Addr::V4(_) => self.text(),
            Addr::V6(_) => format!("[{}]", self.text()),
        }
    }
    fn sdp(&self) -> String {
        match self {
            Addr::V4(_) => format!("IN IP4 {}", self.text()),
            Addr::V6(_) => format!("IN IP6 {}", self.text()),
        }
    }
    fn mac(&self) -> [u8; 6] {
        let b = match self {
            Addr::V4(a) => *a,
            Addr::V6(a) => [a[12], a[13], a[14], a[15]],
        };
        [0x02, 0x00, b[0], b[1], b[2], b[3]]
    }
}

// ---------------------------------------------------------------------------------------------
// Calls and their messages

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    CallerBye,
    CalleeBye,
    Busy486,
    NotFound404,
    Unavailable503,
    Cancel,
    Auth407,
    Hold,
}

const SCENARIOS: [(Scenario, &str); 8] = [
    (Scenario::CallerBye, "answered, caller BYE"),
    (Scenario::CalleeBye, "answered, callee BYE"),
    (Scenario::Busy486, "rejected 486"),
    (Scenario::NotFound404, "rejected 404"),
    (Scenario::Unavailable503, "rejected 503"),
    (Scenario::Cancel, "CANCEL after 180"),
    (Scenario::Auth407, "407 then answered"),
    (Scenario::Hold, "answered, hold/resume"),
];

impl Scenario {
    fn pick(rng: &mut Rng) -> Scenario {
        match rng.below(100) {
            0..55 => Scenario::CallerBye,
            55..65 => Scenario::CalleeBye,
            65..73 => Scenario::Busy486,
            73..77 => Scenario::NotFound404,
            77..80 => Scenario::Unavailable503,
            80..88 => Scenario::Cancel,
            88..94 => Scenario::Auth407,
            _ => Scenario::Hold,
        }
    }
    fn index(self) -> usize {
        SCENARIOS.iter().position(|(s, _)| *s == self).unwrap_or(0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
        }
    }
}

/// Which tag the To header carries (for messages of the caller's transactions).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ToTag {
    None,
    Dialog,
    Challenge,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SdpDir {
    None,
    SendRecv,
    SendOnly,
    RecvOnly,
}

/// One SIP message of a call, rendered to bytes only when it is written.
#[derive(Clone, Copy)]
struct Msg {
    /// The request's originator is the caller (for a response: the request it answers).
    by_caller: bool,
    /// 0 for a request, else the status code.
    code: u16,
    /// Request method, or the CSeq method of a response.
    method: Method,
    cseq: u32,
    branch: u8,
    to_tag: ToTag,
    /// In-dialog request: the Request-URI is the peer's Contact.
    in_dialog: bool,
    sdp: SdpDir,
    /// Proxy-Authorization on a request, Proxy-Authenticate on a 407.
    auth: bool,
    /// An INVITE padded to ~2000 bytes (ICE candidates in the SDP).
    big: bool,
}

impl Msg {
    fn request(method: Method, cseq: u32, branch: u8, to_tag: ToTag, in_dialog: bool) -> Msg {
        Msg {
            by_caller: true,
            code: 0,
            method,
            cseq,
            branch,
            to_tag,
            in_dialog,
            sdp: SdpDir::None,
            auth: false,
            big: false,
        }
    }
    fn response(&self, code: u16, to_tag: ToTag, sdp: SdpDir) -> Msg {
        Msg {
            code,
            to_tag,
            sdp,
            auth: code == 407,
            big: false,
            ..*self
        }
    }
    /// Whether the caller sends this packet.
    fn sent_by_caller(&self) -> bool {
        self.by_caller == (self.code == 0)
    }
    fn is_initial_invite(&self) -> bool {
        self.code == 0 && self.method == Method::Invite && !self.in_dialog
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        486 => "Busy Here",
        487 => "Request Terminated",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

const NAMES: &[&str] = &[
    "Alice Smith",
    "Bob Jones",
    "Carol White",
    "Dave Brown",
    "Eve M\u{fc}ller",
    "Frank O'Neil",
    "Grace \\\"Amazing\\\" Hopper",
    "Heidi Klum",
    "Ivan Petrov",
    "Judy Garland",
];
const USER_AGENTS: &[&str] = &[
    "Zoiper 5.6.5",
    "Linphone/5.2.0 (belle-sip/5.2.0)",
    "Yealink SIP-T46U 108.86.0.45",
    "PolycomVVX-VVX_450-UA/6.4.3.5018",
    "MicroSIP/3.21.3",
    "Grandstream GXP2170 1.0.11.23",
    "Cisco-SIPGateway/IOS-16.12.4",
];
const SERVERS: &[&str] = &[
    "Asterisk PBX 20.5.0",
    "FreeSWITCH-mod_sofia/1.10.11-release~64bit",
    "Kamailio (5.7.2 (x86_64/linux))",
    "OpenSIPS (3.4.2 (x86_64/linux))",
];
const ALLOW_EVENTS: &str = "Allow-Events: talk, hold, conference, presence, refer, dialog\r\n";
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE";

struct CallInfo {
    call_id: String,
    tcp: bool,
    caller: Addr,
    callee: Addr,
    caller_num: String,
    callee_num: String,
    name: &'static str,
    ua: &'static str,
    server: &'static str,
    ctag: String,
    dtag: String,
    chtag: String,
    branch_base: String,
    caller_media: u16,
    callee_media: u16,
    sess: u64,
    nonce: String,
}

impl CallInfo {
    fn render(&self, m: &Msg, s: &mut String) {
        s.clear();
        let origin_caller = m.by_caller;
        let (o_addr, r_addr, r_num) = if origin_caller {
            (self.caller, self.callee, &self.callee_num)
        } else {
            (self.callee, self.caller, &self.caller_num)
        };
        let (tp, tp_lc) = if self.tcp {
            ("TCP", "tcp")
        } else {
            ("UDP", "udp")
        };
        let body = self.sdp_body(m);
        let ruri = if m.in_dialog {
            format!("sip:{r_num}@{}:{SIP_PORT};transport={tp_lc}", r_addr.host())
        } else {
            format!("sip:{r_num}@bench.test")
        };
        if m.code == 0 {
            let _ = write!(s, "{} {ruri} SIP/2.0\r\n", m.method.name());
        } else {
            let _ = write!(s, "SIP/2.0 {} {}\r\n", m.code, reason_phrase(m.code));
        }
        let branch = format!("z9hG4bK{}{:02x}", self.branch_base, m.branch);
        if m.code == 0 {
            let _ = write!(
                s,
                "Via: SIP/2.0/{tp} {}:{SIP_PORT};branch={branch};rport\r\nMax-Forwards: 70\r\n",
                o_addr.host()
            );
        } else {
            let _ = write!(
                s,
                "Via: SIP/2.0/{tp} {}:{SIP_PORT};branch={branch};rport={SIP_PORT}\r\n",
                o_addr.host()
            );
        }
        let caller_na = format!("\"{}\" <sip:{}@bench.test>", self.name, self.caller_num);
        let callee_na = format!("<sip:{}@bench.test>", self.callee_num);
        if origin_caller {
            let _ = write!(s, "From: {caller_na};tag={}\r\nTo: {callee_na}", self.ctag);
            match m.to_tag {
                ToTag::None => {}
                ToTag::Dialog => {
                    let _ = write!(s, ";tag={}", self.dtag);
                }
                ToTag::Challenge => {
                    let _ = write!(s, ";tag={}", self.chtag);
                }
            }
            s.push_str("\r\n");
        } else {
            let _ = write!(
                s,
                "From: {callee_na};tag={}\r\nTo: {caller_na};tag={}\r\n",
                self.dtag, self.ctag
            );
        }
        let _ = write!(
            s,
            "Call-ID: {}\r\nCSeq: {} {}\r\n",
            self.call_id,
            m.cseq,
            m.method.name()
        );
        let sender_caller = m.sent_by_caller();
        let (s_addr, s_num) = if sender_caller {
            (self.caller, &self.caller_num)
        } else {
            (self.callee, &self.callee_num)
        };
        let contact = m.method == Method::Invite && (m.code == 0 || (101..300).contains(&m.code));
        if contact {
            let _ = write!(
                s,
                "Contact: <sip:{s_num}@{}:{SIP_PORT};transport={tp_lc}>\r\n",
                s_addr.host()
            );
        }
        if m.code == 0 {
            if m.auth {
                let _ = write!(
                    s,
                    "Proxy-Authorization: Digest username=\"{}\", realm=\"bench.test\", nonce=\"{}\", uri=\"{ruri}\", response=\"{:016x}{:016x}\", algorithm=MD5, cnonce=\"{:08x}\", qop=auth, nc=00000001\r\n",
                    self.caller_num,
                    self.nonce,
                    self.sess,
                    self.sess.rotate_left(17),
                    self.sess as u32
                );
            }
            let agent = if sender_caller { self.ua } else { self.server };
            let _ = write!(s, "User-Agent: {agent}\r\n");
            if m.method == Method::Invite && !m.in_dialog {
                let _ = write!(
                    s,
                    "P-Asserted-Identity: {caller_na}\r\nAccept: application/sdp, application/dtmf-relay\r\n"
                );
            }
            let _ = write!(
                s,
                "Allow: {ALLOW}\r\nSupported: replaces, norefersub\r\n{ALLOW_EVENTS}"
            );
            if m.method == Method::Bye && !origin_caller {
                s.push_str("Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n");
            }
        } else {
            let agent = if sender_caller { self.ua } else { self.server };
            let _ = write!(s, "Server: {agent}\r\n");
            if m.code == 407 {
                let _ = write!(
                    s,
                    "Proxy-Authenticate: Digest realm=\"bench.test\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"\r\n",
                    self.nonce
                );
            }
            let _ = write!(s, "Allow: {ALLOW}\r\nSupported: replaces\r\n{ALLOW_EVENTS}");
        }
        if !body.is_empty() {
            s.push_str("Content-Type: application/sdp\r\n");
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n{body}", body.len());
    }

    fn sdp_body(&self, m: &Msg) -> String {
        let dir = match m.sdp {
            SdpDir::None => return String::new(),
            SdpDir::SendRecv => "sendrecv",
            SdpDir::SendOnly => "sendonly",
            SdpDir::RecvOnly => "recvonly",
        };
        let sender_caller = m.sent_by_caller();
        let (addr, port, user) = if sender_caller {
            (self.caller, self.caller_media, &self.caller_num)
        } else {
            (self.callee, self.callee_media, &self.callee_num)
        };
        let sess = if sender_caller {
            self.sess & 0xffff_ffff
        } else {
            self.sess >> 32
        };
        let mut b = String::with_capacity(2048);
        let _ = write!(
            b,
            "v=0\r\no={user} {sess} {} {}\r\ns=SIP Call\r\nc={}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n",
            m.cseq,
            addr.sdp(),
            addr.sdp()
        );
        if m.big {
            let _ = write!(
                b,
                "a=ice-ufrag:{:08x}\r\na=ice-pwd:{:016x}{:08x}\r\n",
                self.sess as u32,
                self.sess,
                (self.sess >> 16) as u32
            );
            for i in 0..12u32 {
                let _ = write!(
                    b,
                    "a=candidate:{} 1 UDP {} {} {} typ host generation 0 network-id {}\r\n",
                    1_000_000 + i,
                    2_130_706_431 - i * 256,
                    addr.text(),
                    port as u32 + 2 * i,
                    i + 1
                );
            }
        }
        let _ = write!(b, "a={dir}\r\n");
        b
    }
}

/// REGISTER/200 or OPTIONS/200 exchanges between hosts in 172.16.0.0/12: no INVITE, no CDR.
struct NoiseInfo {
    k: u64,
    register: bool,
    ua: Addr,
    server: Addr,
}

impl NoiseInfo {
    fn render(&self, response: bool, s: &mut String) {
        s.clear();
        let ua = self.ua.text();
        let srv = self.server.text();
        let user = format!("7{:06}", self.k % 1_000_000);
        let (method, from_host, ruri) = if self.register {
            ("REGISTER", &ua, "sip:bench.test".to_string())
        } else {
            ("OPTIONS", &srv, format!("sip:{user}@{ua}:{SIP_PORT}"))
        };
        if response {
            s.push_str("SIP/2.0 200 OK\r\n");
        } else {
            let _ = write!(s, "{method} {ruri} SIP/2.0\r\n");
        }
        let _ = write!(
            s,
            "Via: SIP/2.0/UDP {from_host}:{SIP_PORT};branch=z9hG4bKn{:x}{}\r\n",
            self.k,
            if response { ";rport=5060" } else { ";rport" }
        );
        if !response {
            s.push_str("Max-Forwards: 70\r\n");
        }
        let (from, to) = if self.register {
            (
                format!("<sip:{user}@bench.test>;tag=r{:x}", self.k),
                format!("<sip:{user}@bench.test>"),
            )
        } else {
            (
                format!("<sip:ping@{srv}>;tag=o{:x}", self.k),
                format!("<sip:{user}@{ua}>"),
            )
        };
        let to_tag = if response {
            format!(";tag=t{:x}", self.k)
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "From: {from}\r\nTo: {to}{to_tag}\r\nCall-ID: noise-{}@bench.test\r\nCSeq: {} {method}\r\n",
            self.k,
            1 + self.k % 50
        );
        if self.register {
            let _ = write!(
                s,
                "Contact: <sip:{user}@{ua}:{SIP_PORT};transport=udp>;expires=3600\r\n"
            );
        }
        if response {
            s.push_str("Server: Kamailio (5.7.2 (x86_64/linux))\r\n");
            if !self.register {
                let _ = write!(s, "Allow: {ALLOW}\r\nAccept: application/sdp\r\n");
            }
        } else {
            s.push_str("User-Agent: Yealink SIP-T46U 108.86.0.45\r\n");
            if self.register {
                s.push_str("Expires: 3600\r\n");
            }
        }
        s.push_str("Content-Length: 0\r\n\r\n");
    }
}

// ---------------------------------------------------------------------------------------------
// The plan of a flow: its packets with their times

#[derive(Clone, Copy)]
enum Pkt {
    Syn,
    SynAck,
    HandshakeAck,
    /// FIN|ACK from the caller, FIN|ACK from the callee, last ACK from the caller.
    FinCaller,
    FinCallee,
    LastAck,
    /// One message, or two messages in the same direction in one TCP segment.
    Sip(Msg, Option<Msg>),
    /// Part `part` (0 or 1) of a message split over two packets (TCP segments or IPv4
    /// fragments); `cut` per mille of its length goes into the first TCP segment.
    Split {
        m: Msg,
        part: u8,
        cut: u16,
    },
    Noise {
        response: bool,
    },
}

struct Step {
    t: u64,
    pkt: Pkt,
}

struct Rtp {
    /// Packets go at `a + (2i+1)(b-a)/(2 count)`, `i` in `0..count`.
    a: u64,
    b: u64,
    count: u64,
    sent: u64,
    /// While held only the caller sends.
    hold: (u64, u64),
    seq: [u16; 2],
    ts: [u32; 2],
    ssrc: [u32; 2],
}

impl Rtp {
    fn time(&self, i: u64) -> u64 {
        let span = u128::from(self.b - self.a);
        self.a + ((u128::from(2 * i + 1) * span) / u128::from(2 * self.count)) as u64
    }
}

enum Kind {
    Call(Box<CallInfo>),
    Noise(NoiseInfo),
}

struct Flow {
    kind: Kind,
    steps: Vec<Step>,
    next: usize,
    rtp: Option<Rtp>,
    /// Next sequence number of the caller's and of the callee's side of the TCP connection.
    tcp_next: [u32; 2],
    /// IPv4 identification shared by the fragments of one datagram.
    frag_id: u16,
    counts_as_call: bool,
}

impl Flow {
    fn next_rtp(&self) -> Option<u64> {
        self.rtp
            .as_ref()
            .filter(|r| r.sent < r.count)
            .map(|r| r.time(r.sent))
    }
    fn next_time(&self) -> Option<u64> {
        let sip = self.steps.get(self.next).map(|s| s.t);
        match (sip, self.next_rtp()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Collects a call's steps; applies fragmentation, TCP splitting and coalescing.
struct Planner {
    steps: Vec<Step>,
    frag: bool,
    split: bool,
    coalesce: bool,
    split_done: bool,
    sip_packets: u64,
}

impl Planner {
    fn push(&mut self, t: u64, pkt: Pkt) {
        if matches!(pkt, Pkt::Sip(..) | Pkt::Split { .. }) {
            self.sip_packets += 1;
        }
        self.steps.push(Step { t, pkt });
    }
    /// Sends `m` starting at `t`; returns the time of the packet that completes it.
    fn sip(&mut self, t: u64, m: Msg, rng: &mut Rng) -> u64 {
        let split = m.is_initial_invite() && (m.big || (self.split && !self.split_done));
        if !split {
            self.push(t, Pkt::Sip(m, None));
            return t;
        }
        self.split_done = true;
        let cut = rng.range(250, 750) as u16;
        let gap = if self.frag {
            rng.range(1, 40)
        } else {
            rng.range(20, 2000)
        };
        self.push(t, Pkt::Split { m, part: 0, cut });
        self.push(t + gap, Pkt::Split { m, part: 1, cut });
        t + gap
    }
    /// Two messages in the same direction, back to back: in one segment when coalescing
    /// (at the second one's time), else at their own times.
    fn sip2(&mut self, t1: u64, m1: Msg, t2: u64, m2: Msg) {
        if self.coalesce {
            self.push(t2, Pkt::Sip(m1, Some(m2)));
        } else {
            self.push(t1, Pkt::Sip(m1, None));
            self.push(t2, Pkt::Sip(m2, None));
        }
    }
}

/// What sipcdr must write for a call.
struct Expected {
    start: u64,
    answer: Option<u64>,
    end: u64,
    code: u16,
    reason: &'static str,
    disposition: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Output

struct Pcap {
    w: BufWriter<File>,
    buf: Vec<u8>,
    packets: u64,
    bytes: u64,
    last_t: u64,
}

impl Pcap {
    fn create(path: &PathBuf) -> Result<Pcap> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        w.write_all(&h)?;
        Ok(Pcap {
            w,
            buf: Vec::with_capacity(4096),
            packets: 0,
            bytes: 24,
            last_t: 0,
        })
    }
    /// Writes `self.buf` as one record at `t` (µs since the Unix epoch).
    fn record(&mut self, t: u64) -> Result<()> {
        if t < self.last_t {
            bail!("internal error: packet at {t} after {}", self.last_t);
        }
        self.last_t = t;
        let len = self.buf.len() as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&self.buf)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(len);
        Ok(())
    }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("building a packet: {e:?}")
}

/// Ethernet II + IP header builder from `src` to `dst`.
fn ip_layer(src: Addr, dst: Addr, ip_id: u16) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(src.mac(), dst.mac());
    match (src, dst) {
        (Addr::V4(s), Addr::V4(d)) => eth.ip(IpHeaders::Ipv4(
            Ipv4Header {
                source: s,
                destination: d,
                time_to_live: 64,
                identification: ip_id,
                ..Default::default()
            },
            Default::default(),
        )),
        (Addr::V6(s), Addr::V6(d)) => eth.ipv6(s, d, 64),
        // Both sides of a flow always have the same family.
        (s, _) => eth.ipv6(
            match s {
                Addr::V6(a) => a,
                Addr::V4(_) => [0; 16],
            },
            [0; 16],
            64,
        ),
    }
}

#[derive(Default)]
struct Stats {
    sip_packets: u64,
    sip_messages: u64,
    tcp_control: u64,
    rtp_packets: u64,
    noise_packets: u64,
    fragments: u64,
    by_scenario: [u64; 8],
    tcp_calls: u64,
    v6_calls: u64,
    frag_calls: u64,
    tcp_coalesce: u64,
    tcp_split: u64,
    cap_waits: u64,
    /// Largest delay of a call start by the concurrency cap, µs.
    cap_max_delay: u64,
    max_open: usize,
}

struct Gen {
    args: Args,
    rng: Rng,
    pcap: Pcap,
    expected: Option<BufWriter<File>>,
    id_width: usize,
    /// Mean talk time of answered calls, µs.
    talk_mean: f64,
    ip_id: u16,
    text: String,
    rtp_payload: [u8; 160],
    /// Packets that are not RTP so far, and RTP packets handed out to calls.
    non_rtp: u64,
    rtp_given: u64,
    noise_budget: f64,
    noise_count: u64,
    stats: Stats,
}

impl Gen {
    fn new(args: Args) -> Result<Gen> {
        if !(0.0..1.0).contains(&args.rtp_share) {
            bail!("--rtp-share must be in [0, 1)");
        }
        if args.cps <= 0.0 || !args.cps.is_finite() {
            bail!("--cps must be positive");
        }
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let pcap = Pcap::create(&args.out)?;
        let expected = match &args.expected {
            Some(p) => {
                let f = File::create(p).with_context(|| format!("creating {}", p.display()))?;
                let mut w = BufWriter::new(f);
                w.write_all(b"call_id,transport,start_time,answer_time,end_time,sip_resp_code,reason,disposition\n")?;
                Some(w)
            }
            None => None,
        };
        let id_width = args.calls.saturating_sub(1).to_string().len();
        // Little's law: open calls = cps * mean call time. Aim a little below the cap (3 standard
        // deviations of the open count) so that it rarely holds a start back. Setup takes ~4.7 s
        // for answered calls (77%), the others average ~3.1 s (23%): talk time makes up the rest.
        let cap = args.concurrency as f64;
        let target_open = (cap - 3.0 * cap.sqrt()).max(cap / 2.0);
        let mean_s = target_open / args.cps;
        let talk_s = (mean_s - 0.23 * 3.1 - 0.77 * 4.7) / 0.77;
        if talk_s < 1.0 {
            eprintln!(
                "gen: warning: --concurrency {} at --cps {} leaves {mean_s:.1} s per call, less than a call needs (~5 s): the cap will lower the call rate",
                args.concurrency, args.cps
            );
        }
        let talk_s = talk_s.max(1.0);
        let mut rng = Rng(args.seed);
        let mut rtp_payload = [0u8; 160];
        for b in rtp_payload.iter_mut() {
            *b = 0x80 | (rng.next() as u8 & 0x7f); // µ-law, near silence
        }
        Ok(Gen {
            args,
            rng,
            pcap,
            expected,
            id_width,
            talk_mean: talk_s * 1e6,
            ip_id: 0,
            text: String::with_capacity(4096),
            rtp_payload,
            non_rtp: 0,
            rtp_given: 0,
            noise_budget: 0.0,
            noise_count: 0,
            stats: Stats::default(),
        })
    }

    fn nominal_start(&self, n: u64) -> u64 {
        EPOCH_US + (n as f64 * 1e6 / self.args.cps).round() as u64
    }

    fn run(&mut self) -> Result<()> {
        // Heap of (time, sequence, slot); slot usize::MAX is "start the next call".
        let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
        let mut slots: Vec<Option<Flow>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut seq = 0u64;
        let mut next_call = 0u64;
        let mut open_calls = 0usize;
        // When the cap held the next start back: the time it was due.
        let mut held: Option<u64> = None;
        const START: usize = usize::MAX;
        if self.args.calls > 0 {
            heap.push(Reverse((self.nominal_start(0), seq, START)));
            seq += 1;
        }
        while let Some(Reverse((t, _, slot))) = heap.pop() {
            if slot == START {
                if open_calls >= self.args.concurrency {
                    held = Some(t);
                    self.stats.cap_waits += 1;
                    continue;
                }
                let n = next_call;
                next_call += 1;
                let (flow, noise) = self.plan_call(n, t);
                open_calls += 1;
                self.stats.max_open = self.stats.max_open.max(open_calls);
                for f in std::iter::once(flow).chain(noise) {
                    let Some(t0) = f.next_time() else { continue };
                    let idx = match free.pop() {
                        Some(i) => {
                            slots[i] = Some(f);
                            i
                        }
                        None => {
                            slots.push(Some(f));
                            slots.len() - 1
                        }
                    };
                    heap.push(Reverse((t0, seq, idx)));
                    seq += 1;
                }
                if next_call < self.args.calls {
                    let jitter = self.rng.below((5e5 / self.args.cps) as u64);
                    let at = (self.nominal_start(next_call) + jitter).max(t);
                    heap.push(Reverse((at, seq, START)));
                    seq += 1;
                }
                continue;
            }
            let Some(flow) = slots.get_mut(slot).and_then(Option::as_mut) else {
                bail!("internal error: empty slot {slot}");
            };
            self.emit_next(flow, t)?;
            match flow.next_time() {
                Some(tn) => {
                    heap.push(Reverse((tn, seq, slot)));
                    seq += 1;
                }
                None => {
                    let was_call = flow.counts_as_call;
                    slots[slot] = None;
                    free.push(slot);
                    if was_call {
                        open_calls -= 1;
                        if let Some(due) = held.take() {
                            let delay = t - due;
                            self.stats.cap_max_delay = self.stats.cap_max_delay.max(delay);
                            heap.push(Reverse((t, seq, START)));
                            seq += 1;
                        }
                    }
                }
            }
        }
        self.pcap.w.flush()?;
        if let Some(w) = self.expected.as_mut() {
            w.flush()?;
        }
        Ok(())
    }

    /// Plans call `n` starting at `t0`, writes its expected CDR; returns it and the noise
    /// exchanges it brings.
    fn plan_call(&mut self, n: u64, t0: u64) -> (Flow, Vec<Flow>) {
        let rng = &mut self.rng;
        let sc = Scenario::pick(rng);
        let tcp = rng.chance(0.10);
        let v6 = rng.chance(0.10);
        let tcp_mode = if tcp { rng.below(3) } else { 0 };
        let frag = !tcp && !v6 && rng.chance(0.02);
        let caller = Addr::of_call(n, 0, v6);
        let callee = Addr::of_call(n, 1, v6);
        let info = CallInfo {
            call_id: format!("gen-{n:0w$}@bench.test", w = self.id_width),
            tcp,
            caller,
            callee,
            caller_num: format!("49301{n:07}"),
            callee_num: format!("49402{n:07}"),
            name: rng.pick(NAMES),
            ua: rng.pick(USER_AGENTS),
            server: rng.pick(SERVERS),
            ctag: format!("{n:x}c{:08x}", rng.next() as u32),
            dtag: format!("{n:x}d{:08x}", rng.next() as u32),
            chtag: format!("{n:x}p{:08x}", rng.next() as u32),
            branch_base: format!("{n:x}x{:06x}", rng.next() as u32 & 0xff_ffff),
            caller_media: 10000 + 2 * rng.below(25001) as u16,
            callee_media: 10000 + 2 * rng.below(25001) as u16,
            sess: rng.next(),
            nonce: format!("{:016x}", rng.next()),
        };
        let s = &mut self.stats;
        s.by_scenario[sc.index()] += 1;
        s.tcp_calls += u64::from(tcp);
        s.v6_calls += u64::from(v6);
        s.frag_calls += u64::from(frag);
        s.tcp_coalesce += u64::from(tcp_mode == 1);
        s.tcp_split += u64::from(tcp_mode == 2);

        let mut p = Planner {
            steps: Vec::with_capacity(24),
            frag,
            split: tcp_mode == 2,
            coalesce: tcp_mode == 1,
            split_done: false,
            sip_packets: 0,
        };
        let d = rng.range(100, 2000); // one-way network delay, µs
        let mut t = t0;
        if tcp {
            p.push(t, Pkt::Syn);
            t += d;
            p.push(t, Pkt::SynAck);
            t += d;
            p.push(t, Pkt::HandshakeAck);
            t += rng.range(100, 1000);
        }
        let mut cseq = if rng.chance(0.5) {
            1
        } else {
            rng.range(100, 30000) as u32
        };
        let mut branch = 0u8;
        let mut inv = Msg {
            sdp: SdpDir::SendRecv,
            big: frag,
            ..Msg::request(Method::Invite, cseq, branch, ToTag::None, false)
        };
        let start = p.sip(t, inv, rng);
        t = start;
        if sc == Scenario::Auth407 {
            t += d + rng.range(200, 2000);
            p.sip(t, inv.response(407, ToTag::Challenge, SdpDir::None), rng);
            t += d + rng.range(50, 500);
            p.sip(
                t,
                Msg::request(Method::Ack, cseq, branch, ToTag::Challenge, false),
                rng,
            );
            t += rng.range(1000, 5000);
            cseq += 1;
            branch += 1;
            inv = Msg {
                cseq,
                branch,
                auth: true,
                ..inv
            };
            t = p.sip(t, inv, rng);
        }
        t += d + rng.range(50, 1000);
        let t100 = t;
        t += rng.range(20_000, 300_000);
        p.sip2(
            t100,
            inv.response(100, ToTag::None, SdpDir::None),
            t,
            inv.response(180, ToTag::Dialog, SdpDir::None),
        );
        let mut answer = None;
        let mut rtp_window = None;
        let mut hold = (0, 0);
        let (end, code, reason, disposition);
        match sc {
            Scenario::Busy486 | Scenario::NotFound404 | Scenario::Unavailable503 => {
                let (c, ring) = match sc {
                    Scenario::Busy486 => (486, rng.range(500_000, 5_000_000)),
                    Scenario::NotFound404 => (404, rng.range(50_000, 500_000)),
                    _ => (503, rng.range(50_000, 500_000)),
                };
                t += ring;
                end = p.sip(t, inv.response(c, ToTag::Dialog, SdpDir::None), rng);
                t += d + rng.range(50, 500);
                p.sip(
                    t,
                    Msg::request(Method::Ack, cseq, branch, ToTag::Dialog, false),
                    rng,
                );
                (code, reason, disposition) = (c, "call-rejected", "callee");
            }
            Scenario::Cancel => {
                t += rng.range(1_000_000, 10_000_000);
                end = p.sip(
                    t,
                    Msg::request(Method::Cancel, cseq, branch, ToTag::None, false),
                    rng,
                );
                t += d + rng.range(50, 500);
                let t200 = t;
                t += rng.range(100, 1000);
                let cancel_ok = Msg {
                    method: Method::Cancel,
                    ..inv.response(200, ToTag::Dialog, SdpDir::None)
                };
                p.sip2(
                    t200,
                    cancel_ok,
                    t,
                    inv.response(487, ToTag::Dialog, SdpDir::None),
                );
                t += d + rng.range(50, 500);
                p.sip(
                    t,
                    Msg::request(Method::Ack, cseq, branch, ToTag::Dialog, false),
                    rng,
                );
                (code, reason, disposition) = (487, "call-canceled", "caller");
            }
            Scenario::CallerBye | Scenario::CalleeBye | Scenario::Auth407 | Scenario::Hold => {
                t += rng.range(1_000_000, 8_000_000);
                answer = Some(p.sip(t, inv.response(200, ToTag::Dialog, SdpDir::SendRecv), rng));
                t += d + rng.range(50, 2000);
                branch += 1;
                p.sip(
                    t,
                    Msg::request(Method::Ack, cseq, branch, ToTag::Dialog, true),
                    rng,
                );
                let talk0 = t;
                let talk = ((self.talk_mean * (0.5 + rng.unit())) as u64).max(1_000_000);
                let bye_at = talk0 + talk;
                if sc == Scenario::Hold {
                    for (dir, answer_dir, frac) in [
                        (SdpDir::SendOnly, SdpDir::RecvOnly, 0.3),
                        (SdpDir::SendRecv, SdpDir::SendRecv, 0.3),
                    ] {
                        t += ((talk as f64 * frac) as u64).max(100_000);
                        cseq += 1;
                        branch += 1;
                        let re = Msg {
                            sdp: dir,
                            ..Msg::request(Method::Invite, cseq, branch, ToTag::Dialog, true)
                        };
                        p.sip(t, re, rng);
                        if dir == SdpDir::SendOnly {
                            hold.0 = t;
                        }
                        t += d + rng.range(1000, 20_000);
                        p.sip(t, re.response(200, ToTag::Dialog, answer_dir), rng);
                        t += d + rng.range(50, 500);
                        branch += 1;
                        p.sip(
                            t,
                            Msg::request(Method::Ack, cseq, branch, ToTag::Dialog, true),
                            rng,
                        );
                        if dir == SdpDir::SendRecv {
                            hold.1 = t;
                        }
                    }
                }
                t = bye_at.max(t + 100_000);
                let bye = if sc == Scenario::CalleeBye {
                    Msg {
                        by_caller: false,
                        ..Msg::request(
                            Method::Bye,
                            rng.range(1, 20000) as u32,
                            200,
                            ToTag::Dialog,
                            true,
                        )
                    }
                } else {
                    cseq += 1;
                    branch += 1;
                    Msg::request(Method::Bye, cseq, branch, ToTag::Dialog, true)
                };
                end = p.sip(t, bye, rng);
                rtp_window = Some((talk0, end));
                t += d + rng.range(100, 3000);
                p.sip(t, bye.response(200, ToTag::Dialog, SdpDir::None), rng);
                code = 200;
                reason = "normal-release";
                disposition = if sc == Scenario::CalleeBye {
                    "callee"
                } else {
                    "caller"
                };
            }
        }
        if tcp {
            t += rng.range(10_000, 500_000);
            p.push(t, Pkt::FinCaller);
            t += d;
            p.push(t, Pkt::FinCallee);
            t += d;
            p.push(t, Pkt::LastAck);
        }
        p.steps.sort_by_key(|s| s.t); // stable: keeps the order of equal times

        let exp = Expected {
            start,
            answer,
            end,
            code,
            reason,
            disposition,
        };
        self.write_expected(&info, &exp);

        // Noise: ~5% of SIP packets overall.
        let sip_packets = p.sip_packets;
        self.noise_budget += sip_packets as f64 * NOISE_SHARE / (1.0 - NOISE_SHARE);
        let mut noise = Vec::new();
        let interval = (1e6 / self.args.cps) as u64;
        while self.noise_budget >= 2.0 {
            self.noise_budget -= 2.0;
            let k = self.noise_count;
            self.noise_count += 1;
            let at = t0 + self.rng.below(interval.max(1) * 2);
            let gap = self.rng.range(200, 30_000);
            let ua = [
                172,
                16 + (k >> 16 & 0x0f) as u8,
                (k >> 8) as u8,
                (k % 254 + 1) as u8,
            ];
            noise.push(Flow {
                kind: Kind::Noise(NoiseInfo {
                    k,
                    register: self.rng.chance(0.6),
                    ua: Addr::V4(ua),
                    server: Addr::V4([172, 31, 255, 1]),
                }),
                steps: vec![
                    Step {
                        t: at,
                        pkt: Pkt::Noise { response: false },
                    },
                    Step {
                        t: at + gap,
                        pkt: Pkt::Noise { response: true },
                    },
                ],
                next: 0,
                rtp: None,
                tcp_next: [0; 2],
                frag_id: 0,
                counts_as_call: false,
            });
            self.non_rtp += 2;
        }

        // RTP: hand out the share owed for every non-RTP packet so far to calls with media.
        self.non_rtp += p.steps.len() as u64;
        let f = self.args.rtp_share;
        let owed = (self.non_rtp as f64 * f / (1.0 - f)).floor() as u64;
        let rng = &mut self.rng;
        let rtp = match rtp_window {
            Some((a, b)) if owed > self.rtp_given => {
                let count = owed - self.rtp_given;
                self.rtp_given = owed;
                Some(Rtp {
                    a,
                    b,
                    count,
                    sent: 0,
                    hold,
                    seq: [rng.next() as u16, rng.next() as u16],
                    ts: [rng.next() as u32, rng.next() as u32],
                    ssrc: [rng.next() as u32, rng.next() as u32],
                })
            }
            _ => None,
        };
        let isn = [rng.next() as u32, rng.next() as u32];
        let flow = Flow {
            kind: Kind::Call(Box::new(info)),
            steps: p.steps,
            next: 0,
            rtp,
            tcp_next: isn,
            frag_id: 0,
            counts_as_call: true,
        };
        (flow, noise)
    }

    fn write_expected(&mut self, c: &CallInfo, e: &Expected) {
        let Some(w) = self.expected.as_mut() else {
            return;
        };
        let line = format!(
            "{},{},{},{},{},{},{},{}\n",
            c.call_id,
            if c.tcp { "tcp" } else { "udp" },
            rfc3339(e.start),
            e.answer.map(rfc3339).unwrap_or_default(),
            rfc3339(e.end),
            e.code,
            e.reason,
            e.disposition
        );
        // A write error shows again at the final flush.
        let _ = w.write_all(line.as_bytes());
    }

    fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// Writes the flow's next packet (at `t`).
    fn emit_next(&mut self, flow: &mut Flow, t: u64) -> Result<()> {
        let sip_t = flow.steps.get(flow.next).map(|s| s.t);
        let rtp_t = flow.next_rtp();
        let use_rtp = match (sip_t, rtp_t) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if use_rtp {
            return self.emit_rtp(flow, t);
        }
        let Some(step) = flow.steps.get(flow.next) else {
            bail!("internal error: flow without a next packet");
        };
        let pkt = step.pkt;
        flow.next += 1;
        let Flow {
            kind,
            tcp_next,
            frag_id,
            ..
        } = flow;
        match (&*kind, pkt) {
            (Kind::Noise(nz), Pkt::Noise { response }) => {
                nz.render(response, &mut self.text);
                let (src, dst) = match (nz.register, response) {
                    (true, false) | (false, true) => (nz.ua, nz.server),
                    _ => (nz.server, nz.ua),
                };
                let id = self.next_ip_id();
                let payload = std::mem::take(&mut self.text);
                self.pcap.buf.clear();
                ip_layer(src, dst, id)
                    .udp(SIP_PORT, SIP_PORT)
                    .write(&mut self.pcap.buf, payload.as_bytes())
                    .map_err(err)?;
                self.text = payload;
                self.pcap.record(t)?;
                self.stats.noise_packets += 1;
                self.stats.sip_packets += 1;
                self.stats.sip_messages += 1;
            }
            (Kind::Call(c), pkt) => {
                let c = c.as_ref();
                match pkt {
                    Pkt::Syn => self.tcp_segment(c, tcp_next, t, true, TcpKind::Syn, &[])?,
                    Pkt::SynAck => self.tcp_segment(c, tcp_next, t, false, TcpKind::SynAck, &[])?,
                    Pkt::HandshakeAck | Pkt::LastAck => {
                        self.tcp_segment(c, tcp_next, t, true, TcpKind::Ack, &[])?
                    }
                    Pkt::FinCaller => self.tcp_segment(c, tcp_next, t, true, TcpKind::Fin, &[])?,
                    Pkt::FinCallee => self.tcp_segment(c, tcp_next, t, false, TcpKind::Fin, &[])?,
                    Pkt::Sip(m1, m2) => {
                        let mut bytes = Vec::with_capacity(2048);
                        for m in std::iter::once(m1).chain(m2) {
                            c.render(&m, &mut self.text);
                            bytes.extend_from_slice(self.text.as_bytes());
                            self.stats.sip_messages += 1;
                        }
                        let from_caller = m1.sent_by_caller();
                        if c.tcp {
                            self.tcp_segment(c, tcp_next, t, from_caller, TcpKind::Data, &bytes)?;
                        } else {
                            let (src, dst) = ends(c, from_caller);
                            let id = self.next_ip_id();
                            self.pcap.buf.clear();
                            ip_layer(src, dst, id)
                                .udp(SIP_PORT, SIP_PORT)
                                .write(&mut self.pcap.buf, &bytes)
                                .map_err(err)?;
                            self.pcap.record(t)?;
                        }
                        self.stats.sip_packets += 1;
                    }
                    Pkt::Split { m, part, cut } => {
                        c.render(&m, &mut self.text);
                        let bytes = std::mem::take(&mut self.text).into_bytes();
                        let from_caller = m.sent_by_caller();
                        if c.tcp {
                            let at = bytes.len() * usize::from(cut) / 1000;
                            let chunk = if part == 0 {
                                &bytes[..at]
                            } else {
                                &bytes[at..]
                            };
                            self.tcp_segment(c, tcp_next, t, from_caller, TcpKind::Data, chunk)?;
                        } else {
                            self.fragment(c, frag_id, t, from_caller, part, &bytes)?;
                        }
                        self.text = String::from_utf8(bytes).unwrap_or_default();
                        self.stats.sip_packets += 1;
                        self.stats.sip_messages += u64::from(part);
                    }
                    Pkt::Noise { .. } => bail!("internal error: noise packet in a call"),
                }
            }
            (Kind::Noise(_), _) => bail!("internal error: call packet in a noise flow"),
        }
        Ok(())
    }

    fn emit_rtp(&mut self, flow: &mut Flow, t: u64) -> Result<()> {
        let Kind::Call(c) = &flow.kind else {
            bail!("internal error: RTP in a noise flow");
        };
        let Some(r) = flow.rtp.as_mut() else {
            bail!("internal error: no RTP plan");
        };
        let i = r.sent;
        r.sent += 1;
        let held = t >= r.hold.0 && t < r.hold.1;
        let side = if held { 0 } else { (i % 2) as usize };
        let first = i < 2; // each direction's first packet
        r.seq[side] = r.seq[side].wrapping_add(1);
        let ts = r.ts[side].wrapping_add(((t - r.a) * 8 / 1000) as u32);
        let mut pl = [0u8; 172];
        pl[0] = 0x80;
        pl[1] = if first { 0x80 } else { 0x00 }; // marker, PT 0 (PCMU)
        pl[2..4].copy_from_slice(&r.seq[side].to_be_bytes());
        pl[4..8].copy_from_slice(&ts.to_be_bytes());
        pl[8..12].copy_from_slice(&r.ssrc[side].to_be_bytes());
        pl[12..].copy_from_slice(&self.rtp_payload);
        pl[12] = r.seq[side] as u8;
        let from_caller = side == 0;
        let (src, dst) = ends(c, from_caller);
        let (sp, dp) = if from_caller {
            (c.caller_media, c.callee_media)
        } else {
            (c.callee_media, c.caller_media)
        };
        let id = self.next_ip_id();
        self.pcap.buf.clear();
        ip_layer(src, dst, id)
            .udp(sp, dp)
            .write(&mut self.pcap.buf, &pl)
            .map_err(err)?;
        self.pcap.record(t)?;
        self.stats.rtp_packets += 1;
        Ok(())
    }

    fn tcp_segment(
        &mut self,
        c: &CallInfo,
        tcp_next: &mut [u32; 2],
        t: u64,
        from_caller: bool,
        kind: TcpKind,
        data: &[u8],
    ) -> Result<()> {
        let (me, peer) = if from_caller { (0, 1) } else { (1, 0) };
        let (src, dst) = ends(c, from_caller);
        let id = self.next_ip_id();
        // Before the SYNs, the "next" values hold the initial sequence numbers.
        let seq = tcp_next[me];
        let b = ip_layer(src, dst, id).tcp(SIP_PORT, SIP_PORT, seq, 64240);
        let b = match kind {
            TcpKind::Syn => b.syn(),
            TcpKind::SynAck => b.syn().ack(tcp_next[peer]),
            TcpKind::Ack => b.ack(tcp_next[peer]),
            TcpKind::Fin => b.fin().ack(tcp_next[peer]),
            TcpKind::Data => b.psh().ack(tcp_next[peer]),
        };
        self.pcap.buf.clear();
        b.write(&mut self.pcap.buf, data).map_err(err)?;
        self.pcap.record(t)?;
        let used = match kind {
            TcpKind::Syn | TcpKind::SynAck | TcpKind::Fin => 1,
            TcpKind::Ack => 0,
            TcpKind::Data => data.len() as u32,
        };
        tcp_next[me] = tcp_next[me].wrapping_add(used);
        if kind != TcpKind::Data {
            self.stats.tcp_control += 1;
        }
        Ok(())
    }

    /// Part `part` of a UDP datagram carrying `msg`, as an IPv4 fragment of a 1500-byte MTU.
    fn fragment(
        &mut self,
        c: &CallInfo,
        frag_id: &mut u16,
        t: u64,
        from_caller: bool,
        part: u8,
        msg: &[u8],
    ) -> Result<()> {
        let (src, dst) = ends(c, from_caller);
        let (Addr::V4(s), Addr::V4(d)) = (src, dst) else {
            bail!("internal error: IPv6 call chosen for IPv4 fragments");
        };
        if part == 0 {
            *frag_id = self.next_ip_id();
        }
        let udp = UdpHeader::without_ipv4_checksum(SIP_PORT, SIP_PORT, msg.len()).map_err(err)?;
        let udp = UdpHeader {
            checksum: udp.calc_checksum_ipv4_raw(s, d, msg).map_err(err)?,
            ..udp
        };
        let mut datagram = Vec::with_capacity(8 + msg.len());
        datagram.extend_from_slice(&udp.to_bytes());
        datagram.extend_from_slice(msg);
        if datagram.len() <= FRAG_PAYLOAD {
            bail!(
                "internal error: big INVITE of {} bytes fits one packet",
                msg.len()
            );
        }
        let (off, chunk, more) = if part == 0 {
            (0, &datagram[..FRAG_PAYLOAD], true)
        } else {
            (FRAG_PAYLOAD, &datagram[FRAG_PAYLOAD..], false)
        };
        let hdr = Ipv4Header {
            source: s,
            destination: d,
            time_to_live: 64,
            identification: *frag_id,
            dont_fragment: false,
            more_fragments: more,
            fragment_offset: IpFragOffset::try_new((off / 8) as u16).map_err(err)?,
            ..Default::default()
        };
        self.pcap.buf.clear();
        PacketBuilder::ethernet2(src.mac(), dst.mac())
            .ip(IpHeaders::Ipv4(hdr, Default::default()))
            .write(&mut self.pcap.buf, ip_number::UDP, chunk)
            .map_err(err)?;
        self.pcap.record(t)?;
        self.stats.fragments += 1;
        Ok(())
    }

    fn summary(&self, elapsed: f64) {
        let s = &self.stats;
        let total = self.pcap.packets;
        let pct = |x: u64| {
            if total == 0 {
                0.0
            } else {
                100.0 * x as f64 / total as f64
            }
        };
        eprintln!("gen: wrote {}", self.args.out.display());
        eprintln!("  packets total   {total}");
        eprintln!(
            "  SIP packets     {} ({:.1}%), {} messages; of them REGISTER/OPTIONS noise {} packets",
            s.sip_packets,
            pct(s.sip_packets),
            s.sip_messages,
            s.noise_packets
        );
        eprintln!(
            "  RTP packets     {} ({:.1}%)",
            s.rtp_packets,
            pct(s.rtp_packets)
        );
        eprintln!(
            "  TCP control     {} (SYN, SYN-ACK, ACK, FIN)",
            s.tcp_control
        );
        eprintln!("  IPv4 fragments  {}", s.fragments);
        let calls: u64 = s.by_scenario.iter().sum();
        eprintln!(
            "  calls           {calls}: tcp {} (coalesced {}, split INVITE {}), ipv6 {}, fragmented INVITE {}",
            s.tcp_calls, s.tcp_coalesce, s.tcp_split, s.v6_calls, s.frag_calls
        );
        for (i, (_, name)) in SCENARIOS.iter().enumerate() {
            eprintln!("    {name:<24}{}", s.by_scenario[i]);
        }
        eprintln!(
            "  open calls      max {} (cap {}; starts held back by the cap {}, by at most {:.3} s)",
            s.max_open,
            self.args.concurrency,
            s.cap_waits,
            s.cap_max_delay as f64 / 1e6
        );
        eprintln!(
            "  capture time    {} .. {}",
            rfc3339(EPOCH_US),
            rfc3339(self.pcap.last_t.max(EPOCH_US))
        );
        eprintln!(
            "  bytes           {} ({:.1} MiB)",
            self.pcap.bytes,
            self.pcap.bytes as f64 / (1024.0 * 1024.0)
        );
        eprintln!(
            "  elapsed         {elapsed:.2} s ({:.0} packets/s)",
            total as f64 / elapsed.max(1e-9)
        );
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TcpKind {
    Syn,
    SynAck,
    Ack,
    Fin,
    Data,
}

/// (source, destination) of a packet of call `c`.
fn ends(c: &CallInfo, from_caller: bool) -> (Addr, Addr) {
    if from_caller {
        (c.caller, c.callee)
    } else {
        (c.callee, c.caller)
    }
}

/// RFC 3339 UTC with microseconds: `2026-01-01T00:00:01.000123Z`.
fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        us % 1_000_000
    )
}

fn main() -> Result<()> {
    #[allow(clippy::disallowed_methods)] // run time for the summary only; output never sees it
    let started = std::time::Instant::now();
    let mut g = Gen::new(Args::parse())?;
    g.run()?;
    g.summary(started.elapsed().as_secs_f64());
    Ok(())
}
