//! SDP, as much as a CDR needs: is the audio stream offered on hold, where does the audio go,
//! which codecs are offered, is there video, is the media encrypted.

use super::message::trim;

/// The SDP inside a body with the given Content-Type: the body itself for `application/sdp`, the
/// SDP part of a `multipart/*` body (SIP-I carries ISUP beside it), else none.
pub fn find_sdp<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Option<&'a [u8]> {
    let ct = trim(content_type?);
    // Exact bytes first: nearly every sender writes the type in lower case.
    let starts = |p: &[u8]| {
        ct.get(..p.len())
            .is_some_and(|h| h == p || h.eq_ignore_ascii_case(p))
    };
    if starts(b"application/sdp") {
        return (!body.is_empty()).then_some(body);
    }
    if starts(b"multipart/") {
        let at = memchr::memmem::find(body, b"\nv=0")?;
        let sdp = body.get(at + 1..)?;
        let end = memchr::memmem::find(sdp, b"\n--").map_or(sdp.len(), |e| e + 1);
        return sdp.get(..end);
    }
    None
}

/// Whether the first active audio stream is put on hold by this offer: direction `sendonly` or
/// `inactive` (media level overrides session level), or connection address `0.0.0.0` (RFC 2543
/// hold). `None` when the SDP has no active audio stream.
pub fn audio_on_hold(sdp: &[u8]) -> Option<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum Dir {
        Unset,
        Hold,
        Active,
    }
    let mut session = (Dir::Unset, false); // (direction, c=0.0.0.0)
    let mut media: Option<(Dir, Option<bool>)> = None; // current audio section
    let mut in_audio = false;
    let mut seen_media = false;
    let verdict = |s: (Dir, bool), m: (Dir, Option<bool>)| {
        let dir = if m.0 == Dir::Unset { s.0 } else { m.0 };
        dir == Dir::Hold || m.1.unwrap_or(s.1)
    };
    for line in sdp.split(|&b| b == b'\n') {
        let line = trim(line);
        if let Some(m) = line.strip_prefix(b"m=") {
            if in_audio {
                break; // only the first active audio stream counts
            }
            seen_media = true;
            let mut f = m.split(|&b| b == b' ');
            in_audio = f.next() == Some(b"audio") && f.next().is_some_and(|p| p != b"0");
            if in_audio {
                media = Some((Dir::Unset, None));
            }
            continue;
        }
        let dir = match line {
            b"a=sendonly" | b"a=inactive" => Some(Dir::Hold),
            b"a=sendrecv" | b"a=recvonly" => Some(Dir::Active),
            _ => None,
        };
        let zero = line.strip_prefix(b"c=").map(|c| c.ends_with(b" 0.0.0.0"));
        match (seen_media, in_audio) {
            (false, _) => {
                if let Some(d) = dir {
                    session.0 = d;
                }
                if let Some(z) = zero {
                    session.1 = z;
                }
            }
            (true, true) => {
                if let Some(m) = media.as_mut() {
                    if let Some(d) = dir {
                        m.0 = d;
                    }
                    if zero.is_some() {
                        m.1 = zero;
                    }
                }
            }
            (true, false) => {}
        }
    }
    media.map(|m| verdict(session, m))
}

/// What a CDR takes from one SDP body (RFC 4566): views into it, nothing copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Media<'a> {
    /// The first audio stream with a port other than 0.
    pub audio: Option<Stream<'a>>,
    /// A video stream with a port other than 0.
    pub video: bool,
    /// `a=fingerprint` at session level (DTLS-SRTP).
    session_fingerprint: bool,
    /// `c=` address at session level.
    session_addr: &'a [u8],
    /// The `o=` line's `<sess-id> <sess-version>` (empty without one among the first four
    /// lines): an SDP sent again unchanged keeps it.
    pub origin: &'a [u8],
}

/// One `m=audio` section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stream<'a> {
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF` …
    pub proto: &'a [u8],
    /// The payload type numbers, space separated, in preference order.
    pub formats: &'a [u8],
    /// `c=` address of the section (else the session's, see [`Media::audio_socket`]).
    addr: &'a [u8],
    /// The section's lines after the `m=` line (for `a=rtpmap`).
    attrs: &'a [u8],
    crypto: bool,
    fingerprint: bool,
}

/// Media encryption negotiated for the audio stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Srtp {
    /// Keys in the signalling (`a=crypto`, RFC 4568).
    Sdes,
    /// Keys from a DTLS handshake on the media path (RFC 5763): `UDP/TLS/…` or `a=fingerprint`.
    Dtls,
}

impl Srtp {
    pub fn as_str(self) -> &'static str {
        match self {
            Srtp::Sdes => "sdes",
            Srtp::Dtls => "dtls",
        }
    }
}

impl<'a> Media<'a> {
    pub fn parse(sdp: &'a [u8]) -> Media<'a> {
        let mut m = Media::default();
        // (kind is audio and first, start of its section)
        let mut section: Option<(bool, usize)> = None;
        let mut at = 0; // where the line starts
        // Lines before this one, while the origin may still come (the first `o=` line of the
        // first four).
        let mut before = 0;
        loop {
            let rest = sdp.get(at..).unwrap_or_default();
            let (raw, next) = match super::scan::find(b'\n', rest) {
                Some(i) => (rest.get(..i).unwrap_or_default(), at + i + 1),
                None => (rest, sdp.len() + 1),
            };
            // A line is dispatched on its first two bytes (`m=`, `c=`, `a=`); only the lines
            // used are trimmed.
            let line = match raw.first() {
                Some(b) if !b.is_ascii_whitespace() => raw,
                _ => trim(raw),
            };
            match line {
                [b'm', b'=', desc @ ..] => {
                    m.close(sdp, section, at);
                    let mut audio = false;
                    let (kind, rest) = field(desc.trim_ascii_end());
                    let (is_audio, is_video) = (kind == b"audio", kind == b"video");
                    if is_audio || is_video {
                        let (port, rest) = field(rest.unwrap_or_default());
                        let port = port_of(port).unwrap_or(0);
                        m.video |= is_video && port != 0;
                        if is_audio && port != 0 && m.audio.is_none() {
                            let (proto, formats) = field(rest.unwrap_or_default());
                            m.audio = Some(Stream {
                                port,
                                proto,
                                formats: formats.map(trim).unwrap_or_default(),
                                ..Stream::default()
                            });
                            audio = true;
                        }
                    }
                    section = Some((audio, next.min(sdp.len())));
                }
                [b'c', b'=', c @ ..] => match section {
                    None => m.session_addr = conn_addr(c.trim_ascii_end()),
                    Some((true, _)) => {
                        if let Some(s) = m.audio.as_mut() {
                            s.addr = conn_addr(c.trim_ascii_end());
                        }
                    }
                    Some((false, _)) => {}
                },
                // `crypto:` and `fingerprint:` end in a non-space: no need to trim.
                [b'a', b'=', a @ ..] => match section {
                    None => m.session_fingerprint |= a.starts_with(b"fingerprint:"),
                    Some((true, _)) => {
                        if let Some(s) = m.audio.as_mut() {
                            match a.first() {
                                Some(b'c') => s.crypto |= a.starts_with(b"crypto:"),
                                Some(b'f') => s.fingerprint |= a.starts_with(b"fingerprint:"),
                                _ => {}
                            }
                        }
                    }
                    Some((false, _)) => {}
                },
                [b'o', b'=', o @ ..] if before < 4 => {
                    m.origin = origin_fields(o);
                    before = 4;
                }
                _ => {}
            }
            before += 1;
            if next > sdp.len() {
                break;
            }
            at = next;
        }
        m.close(sdp, section, sdp.len());
        m
    }

    /// Records where the audio section's attribute lines end.
    fn close(&mut self, sdp: &'a [u8], section: Option<(bool, usize)>, end: usize) {
        if let (Some((true, start)), Some(s)) = (section, self.audio.as_mut()) {
            s.attrs = sdp.get(start..end.max(start)).unwrap_or_default();
        }
    }

    /// The audio stream's address; `None` without one, or on hold by `c=0.0.0.0`.
    pub fn audio_socket(&self) -> Option<std::net::SocketAddr> {
        let s = self.audio?;
        let addr = if s.addr.is_empty() {
            self.session_addr
        } else {
            s.addr
        };
        let ip = ip_of(addr)?;
        (!ip.is_unspecified()).then_some(std::net::SocketAddr::new(ip, s.port))
    }

    /// The audio stream's codecs in preference order (from `a=rtpmap`, else the static payload
    /// types of RFC 3551). No allocation.
    pub fn codecs(&self) -> impl Iterator<Item = Codec<'a>> + 'a {
        let s = self.audio.unwrap_or_default();
        s.formats
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .filter_map(move |pt| codec_name(s.attrs, pt))
    }

    /// SRTP keying of the audio stream.
    pub fn srtp(&self) -> Option<Srtp> {
        let s = self.audio?;
        let proto = s.proto;
        if proto
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"UDP/TLS"))
            || s.fingerprint
            || (self.session_fingerprint && contains_ci(proto, b"SAVP"))
        {
            return Some(Srtp::Dtls);
        }
        (s.crypto || contains_ci(proto, b"SAVP")).then_some(Srtp::Sdes)
    }
}

/// An address as `IpAddr::from_str` reads it: dotted-quad IPv4 by hand, anything else (IPv6,
/// leading zeros, odd forms) by the std parser.
fn ip_of(addr: &[u8]) -> Option<std::net::IpAddr> {
    if let Some(v4) = ipv4(addr) {
        return Some(v4.into());
    }
    if let Some(v6) = ipv6(addr) {
        return Some(v6.into());
    }
    std::str::from_utf8(addr).ok()?.parse().ok()
}

/// IPv6 as hex groups of 1 to 4 digits with at most one `::`, else `None` (not a verdict: the
/// caller asks the std parser, which also reads the dotted-quad tail form). The std parser took
/// ~2 500 instructions an address; one SDP in ten carries IPv6 on the bench mix.
fn ipv6(s: &[u8]) -> Option<std::net::Ipv6Addr> {
    let mut groups = [0u16; 8];
    let (mut n, mut gap) = (0usize, None);
    let mut at = 0;
    if s.starts_with(b"::") {
        gap = Some(0);
        at = 2;
    }
    while at < s.len() {
        // One group: 1 to 4 hex digits.
        let (mut v, mut digits) = (0u16, 0);
        while let Some(d) = s.get(at).and_then(|&b| char::from(b).to_digit(16)) {
            if digits == 4 {
                return None;
            }
            // `as`: a hex digit < 16.
            v = v << 4 | d as u16;
            digits += 1;
            at += 1;
        }
        if digits == 0 {
            return None;
        }
        *groups.get_mut(n)? = v;
        n += 1;
        match (s.get(at), s.get(at + 1), s.get(at + 2)) {
            (None, ..) => break,
            (Some(b':'), Some(b':'), _) if gap.is_none() => {
                gap = Some(n);
                at += 2;
                if at == s.len() {
                    break;
                }
            }
            (Some(b':'), Some(_), _) => at += 1,
            _ => return None,
        }
    }
    let out = match gap {
        None if n == 8 => groups,
        Some(g) if n < 8 => {
            // The groups after the gap move to the end.
            let mut out = [0u16; 8];
            out.get_mut(..g)?.copy_from_slice(groups.get(..g)?);
            out.get_mut(8 - (n - g)..)?
                .copy_from_slice(groups.get(g..n)?);
            out
        }
        _ => return None,
    };
    Some(std::net::Ipv6Addr::from(out))
}

/// `a.b.c.d`, each part 0 to 255 in decimal without a leading zero, else `None` (which is not
/// a verdict: the caller asks the std parser).
fn ipv4(s: &[u8]) -> Option<std::net::Ipv4Addr> {
    let (mut acc, mut part, mut digits, mut dots) = (0u32, 0u32, 0u32, 0u32);
    for &b in s {
        if b.is_ascii_digit() {
            if digits == 1 && part == 0 {
                return None; // leading zero
            }
            part = part * 10 + u32::from(b - b'0');
            if part > 255 {
                return None;
            }
            digits += 1;
        } else if b == b'.' && digits > 0 && dots < 3 {
            acc = acc << 8 | part;
            (part, digits, dots) = (0, 0, dots + 1);
        } else {
            return None;
        }
    }
    (digits > 0 && dots == 3).then(|| std::net::Ipv4Addr::from(acc << 8 | part))
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The bytes before the first space, and those after it (`None` without a space): one step of
/// `split(' ')`.
fn field(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match super::scan::find(b' ', s) {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..)),
        None => (s, None),
    }
}

/// The port of an `m=` line, as `str::parse::<u16>` reads it (an optional `+`, then decimal
/// digits); `port/count` is allowed.
fn port_of(p: &[u8]) -> Option<u16> {
    let digits = p.strip_prefix(b"+").unwrap_or(p);
    let mut v: u32 = 0;
    let mut n = 0;
    for &b in digits {
        if b == b'/' {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
        if v > u32::from(u16::MAX) {
            return None;
        }
        n += 1;
    }
    if n == 0 {
        return None;
    }
    u16::try_from(v).ok()
}

/// The address of `c=IN IP4 10.0.0.1` (a multicast `/ttl` suffix is dropped): the third field,
/// up to a `/`, trimmed.
fn conn_addr(c: &[u8]) -> &[u8] {
    let (_, rest) = field(c);
    let Some((_, Some(rest))) = rest.map(field) else {
        return &[];
    };
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'/')
        .unwrap_or(rest.len());
    trim(rest.get(..end).unwrap_or_default())
}

/// The lines of `sdp` split at LF.
fn lines(sdp: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(sdp);
    std::iter::from_fn(move || {
        let r = rest?;
        match super::scan::find(b'\n', r) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A codec as `name/rate`, viewed in the SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec<'a> {
    pub name: &'a [u8],
    pub rate: &'a [u8],
}

impl Codec<'_> {
    /// Hash of `name/rate`, case folded (names compare without case, RFC 4855): FNV-1a, as the
    /// names are a few bytes and only compared within one offer/answer.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [self.name, b"/", self.rate] {
            for &b in part {
                h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// `name/rate` written into `buf` (`None` if not UTF-8 or too long).
    pub fn text<'b>(&self, buf: &'b mut [u8; 64]) -> Option<&'b str> {
        let mut w = Writer { buf, len: 0 };
        w.push(self.name);
        w.push(b"/");
        w.push(self.rate);
        w.done()
    }
}

/// Bytes appended to a fixed buffer; `done` fails if they did not fit or are not UTF-8.
struct Writer<'b> {
    buf: &'b mut [u8; 64],
    len: usize,
}

impl<'b> Writer<'b> {
    fn push(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(b);
            self.len = end;
        } else {
            self.len = usize::MAX / 2; // overflowed
        }
    }

    fn done(self) -> Option<&'b str> {
        std::str::from_utf8(self.buf.get(..self.len)?).ok()
    }
}

/// `<sess-id> <sess-version>` of an `o=` line's text after `o=`: `<user> <sess-id>
/// <sess-version> …`, from the first space to the end of the third field (empty without both).
fn origin_fields(o: &[u8]) -> &[u8] {
    let o = o.trim_ascii_end();
    let (_, Some(ids)) = field(o) else {
        return &[];
    };
    let Some(ver) = field(ids).1 else {
        return &[];
    };
    let end = ids.len() - ver.len() + field(ver).0.len();
    ids.get(..end).unwrap_or_default()
}

/// The RFC 3551 name of a static payload type, else `a=rtpmap:<pt> <name>/<rate>[/<channels>]`
/// of the section.
fn codec_name<'a>(attrs: &'a [u8], pt: &'a [u8]) -> Option<Codec<'a>> {
    // The static payload types (RFC 3551) need no search: an rtpmap for them must agree.
    let name: &'static [u8] = match pt {
        b"0" => b"PCMU",
        b"3" => b"GSM",
        b"4" => b"G723",
        b"8" => b"PCMA",
        b"9" => b"G722",
        b"13" => b"CN",
        b"18" => b"G729",
        _ => {
            for line in lines(attrs) {
                let Some(map) = trim(line).strip_prefix(b"a=rtpmap:") else {
                    continue;
                };
                let mut f = map.splitn(2, |&b| b == b' ');
                if f.next() != Some(pt) {
                    continue;
                }
                let enc = trim(f.next()?);
                // name/rate, without the channel count
                let mut parts = enc.splitn(3, |&b| b == b'/');
                let (name, rate) = (parts.next()?, parts.next()?);
                return Some(Codec { name, rate });
            }
            return None;
        }
    };
    Some(Codec {
        name,
        rate: b"8000",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";

    fn with(tail: &str) -> Vec<u8> {
        [OFFER, tail.as_bytes()].concat()
    }

    #[test]
    fn hold_by_direction_and_by_zero_address() {
        assert_eq!(
            audio_on_hold(&with("m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n")),
            Some(false)
        );
        assert_eq!(
            audio_on_hold(&with("m=audio 4000 RTP/AVP 0\r\n")),
            Some(false)
        );
        assert_eq!(
            audio_on_hold(&with("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n")),
            Some(true)
        );
        assert_eq!(
            audio_on_hold(&with("a=inactive\r\nm=audio 4000 RTP/AVP 0\r\n")),
            Some(true)
        );
        // media level overrides session level
        assert_eq!(
            audio_on_hold(&with(
                "a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
            )),
            Some(false)
        );
        assert_eq!(
            audio_on_hold(&with("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n")),
            Some(true)
        );
        // a video stream's direction does not matter
        assert_eq!(
            audio_on_hold(&with(
                "m=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\na=inactive\r\n"
            )),
            Some(false)
        );
        assert_eq!(audio_on_hold(&with("m=audio 0 RTP/AVP 0\r\n")), None);
        assert_eq!(audio_on_hold(b"garbage"), None);
    }

    #[test]
    fn finds_sdp_in_multipart() {
        let body = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nm=audio 1 RTP/AVP 8\r\n--b\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b--";
        let sdp = find_sdp(Some(b"multipart/mixed;boundary=b"), body).unwrap();
        assert!(sdp.starts_with(b"v=0") && sdp.ends_with(b"8\r\n"));
        assert_eq!(
            find_sdp(Some(b"Application/SDP"), b"v=0"),
            Some(&b"v=0"[..])
        );
        assert_eq!(find_sdp(Some(b"text/plain"), b"v=0"), None);
        assert_eq!(find_sdp(None, b"v=0"), None);
    }

    fn addr(m: &Media<'_>) -> Option<String> {
        m.audio_socket().map(|a| a.to_string())
    }

    fn names(m: &Media<'_>) -> Vec<String> {
        m.codecs()
            .map(|c| c.text(&mut [0; 64]).unwrap().to_string())
            .collect()
    }

    const ANSWER: &[u8] = b"v=0\r\no=bob 42 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\nm=video 0 RTP/AVP 96\r\n";

    #[test]
    fn ipv6_forms_as_std() {
        for text in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8",
            "2001:db8::1",
            "2001:DB8:0:0:8:800:200C:417A",
            "fe80::1:2",
            ":::",
            "1:::2",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "12345::",
            ":1::",
            "1::2:",
            "1:",
            ":",
            "",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "g::1",
        ] {
            let std = text.parse::<std::net::Ipv6Addr>().ok();
            match ipv6(text.as_bytes()) {
                Some(got) => assert_eq!(Some(got), std, "{text}"),
                None => assert!(std.is_none() || text.contains('.'), "{text}: std reads it"),
            }
            assert_eq!(ip_of(text.as_bytes()), std.map(Into::into), "{text}");
        }
    }

    #[test]
    fn media_address_codecs_and_origin() {
        let m = Media::parse(ANSWER);
        assert_eq!(Media::parse(ANSWER).origin, b"42 7");
        assert_eq!(addr(&m).as_deref(), Some("10.0.0.2:30000"));
        assert_eq!(names(&m), ["PCMA/8000", "telephone-event/8000"]);
        let c = m.codecs().next().unwrap();
        let upper = Codec {
            name: b"pcma",
            rate: b"8000",
        };
        assert_eq!(c.hash(), upper.hash(), "names compare without case");
        assert!(!m.video, "a video stream with port 0 is declined");
        assert_eq!(m.srtp(), None);
        let offer_sdp = with("m=audio 4000 RTP/AVP 0 8 18\r\nm=video 4002 RTP/AVP 96\r\n");
        let offer = Media::parse(&offer_sdp);
        assert!(offer.video);
        assert_eq!(names(&offer), ["PCMU/8000", "PCMA/8000", "G729/8000"]);
    }

    #[test]
    fn media_level_address_ipv6_and_hold() {
        let m_sdp = with("m=audio 4000 RTP/AVP 0\r\nc=IN IP6 2001:db8::5\r\n");
        let m = Media::parse(&m_sdp);
        assert_eq!(addr(&m).as_deref(), Some("[2001:db8::5]:4000"));
        let m_sdp = with("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n");
        let m = Media::parse(&m_sdp);
        assert_eq!(addr(&m), None);
        assert_eq!(addr(&Media::parse(b"junk\r\nm=audio x")), None);
    }

    /// The new parser's view of `sdp` equals the reference's.
    fn same_as_reference(sdp: &[u8]) -> Result<(), String> {
        let (m, r) = (Media::parse(sdp), reference::parse(sdp));
        let mine = m.audio.map(|s| (s.port, s.proto, s.formats));
        let theirs = r.audio.map(|s| (s.0, s.1, s.2));
        let check = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{what} differs for {:?}",
                    String::from_utf8_lossy(sdp)
                ))
            }
        };
        check("audio", mine == theirs)?;
        check("video", m.video == r.video)?;
        check("socket", m.audio_socket() == reference::audio_socket(&r))?;
        check(
            "codecs",
            m.codecs().collect::<Vec<_>>() == reference::codecs(&r),
        )?;
        let srtp = r.audio.and_then(|s| {
            let proto = s.1;
            if proto
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"UDP/TLS"))
                || s.6
                || (r.session_fingerprint && contains_ci(proto, b"SAVP"))
            {
                return Some(Srtp::Dtls);
            }
            (s.5 || contains_ci(proto, b"SAVP")).then_some(Srtp::Sdes)
        });
        check("srtp", m.srtp() == srtp)?;
        check("origin", Media::parse(sdp).origin == reference::origin(sdp))
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for a in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.168.1.254",
            "010.0.0.1",
            "1.2.3.04",
            "00.1.2.3",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1000.1.1.1",
            "1..2.3",
            ".1.2.3",
            "1.2.3.4.",
            "+1.2.3.4",
            "1.2.3.-4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "",
            ".",
            "...",
            "2001:db8::5",
            "::ffff:1.2.3.4",
            "::",
            "fe80::1%eth0",
            "1.2.3.4/24",
        ] {
            let std = a.parse::<std::net::IpAddr>().ok();
            assert_eq!(ip_of(a.as_bytes()), std, "{a:?}");
            if let Some(v4) = ipv4(a.as_bytes()) {
                assert_eq!(Some(std::net::IpAddr::V4(v4)), std, "fast path, {a:?}");
            }
        }
        assert!(
            ipv4(b"10.0.0.1").is_some(),
            "the common case takes the fast path"
        );
        assert_eq!(ip_of(b"1.2.3.\xff"), None);
    }

    #[test]
    fn origin_fields() {
        for (sdp, want) in [
            (&b"v=0\r\no=- 1 2 IN IP4 x\r\n"[..], &b"1 2"[..]),
            (b"v=0\no=alice 42 7\n", b"42 7"),
            (b"v=0\r\n o=a  1 2\t\r\n", b" 1"),
            (b"o=alice 5\r\n", b""),
            (b"o=alice\r\n", b""),
            (b"o=\r\n", b""),
            (b"v=0\r\ns=-\r\nt=0 0\r\nc=x\r\no=- 1 2\r\n", b""),
            (b"v=0\r\ns=-\r\nt=0 0\r\no=- 1 2\r\n", b"1 2"),
            (b"\n\n\no=- 1 2", b"1 2"),
            (b"", b""),
        ] {
            let got = Media::parse(sdp).origin;
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(sdp));
            assert_eq!(got, reference::origin(sdp));
        }
    }

    #[test]
    fn port_edge_cases() {
        for (p, want) in [
            (&b"4000"[..], Some(4000)),
            (b"+4000", Some(4000)),
            (b"04000", Some(4000)),
            (b"4000/2", Some(4000)),
            (b"65535", Some(65535)),
            (b"65536", None),
            (b"99999999999", None),
            (b"0", Some(0)),
            (b"", None),
            (b"+", None),
            (b"++1", None),
            (b"-1", None),
            (b"/2", None),
            (b"+/2", None),
            (b"4x", None),
            (b"4000 ", None),
        ] {
            assert_eq!(port_of(p), want, "{:?}", String::from_utf8_lossy(p));
            let line = [&b"m=audio "[..], p, b" RTP/AVP 0\r\n"].concat();
            same_as_reference(&with(std::str::from_utf8(&line).unwrap())).unwrap();
        }
    }

    #[test]
    fn line_ends_and_whitespace() {
        for sdp in [
            &b"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0 96\na=rtpmap:96 opus/48000/2\n"[..],
            b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 opus/48000/2\r\n",
            b"v=0\r\n c=IN IP4 10.0.0.1 \r\n\tm=audio 4000 RTP/AVP 96 \t\r\n a=rtpmap:96 opus/48000\r\n",
            b"c=IN IP4 10.0.0.1\r\r\nm=audio 4000\r\n",
            b"c=IN IP4 10.0.0.1\r\nm=audio 4000 \r\n",
            b"c=IN IP4 \r\nm=audio 4000 RTP/AVP 0\r\n",
            b"c=IN IP4 1.2.3.4/127/3 \r\nm=audio 4000 RTP/AVP 0\r\n",
            b"c=IN  IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"c=IN\r\nm=audio 4000 RTP/AVP 0\r\n",
            b"m=\r\nm=audio\r\nm=audio 1\r\nm=audio 2 RTP/SAVP\r\na=crypto:1\r\n",
            b"m=video 5 RTP/AVP 96\r\nm=audio 6 RTP/AVP 96\r\nc=IN IP6 ::1\r\n",
            b"\r\n\r\n",
            b"",
            b"m=audio 4000 RTP/AVP 0",
        ] {
            same_as_reference(sdp).unwrap();
        }
        let m = Media::parse(
            b"v=0\n c=IN IP4 10.0.0.1 \n\tm=audio 4000 RTP/AVP 0 96 \n a=rtpmap:96 opus/48000/2\n",
        );
        assert_eq!(addr(&m).as_deref(), Some("10.0.0.1:4000"));
        assert_eq!(names(&m), ["PCMU/8000", "opus/48000"]);
    }

    /// SDP-like text: lines from a few templates with odd tokens, odd line ends, whitespace.
    fn sdp_like() -> impl Strategy<Value = Vec<u8>> {
        let tok = |v: &'static [&'static str]| proptest::sample::select(v);
        let addr = prop_oneof![
            tok(&[
                "10.0.0.1",
                "010.0.0.1",
                "1.2.3",
                "1.2.3.4.5",
                "256.1.1.1",
                "0.0.0.0",
                "2001:db8::5",
                "::ffff:1.2.3.4",
                "1.2.3.4/127",
                "",
                "255.255.255.255",
                "1.2.3.4.",
                ".1.2.3",
                "1..2.3",
                "00.1.2.3",
                "1.2.3.04",
                "::",
                "fe80::1%eth0",
                "1.2.3.-4",
                "+1.2.3.4",
            ])
            .prop_map(str::to_owned),
            "[0-9.]{0,17}",
            "[0-9a-f:.]{0,12}",
        ];
        let port = prop_oneof![
            tok(&[
                "0", "4000", "+4000", "65535", "65536", "04000", "4000/2", "+", "", "-1", "x"
            ])
            .prop_map(str::to_owned),
            "[0-9+/]{0,7}",
        ];
        let pt = prop_oneof![
            tok(&[
                "0", "8", "9", "18", "96", "101", "08", "127", "3", "13", "4"
            ])
            .prop_map(str::to_owned),
            "[0-9a-z]{0,3}",
        ];
        let kind = tok(&["audio", "video", "audio", "application", "Audio", ""]);
        let proto = tok(&["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "RTP/AVPF", ""]);
        let line = prop_oneof![
            Just("v=0".to_owned()),
            ("[a-z-]{1,3}", "[0-9]{0,3}", "[0-9]{0,3}")
                .prop_map(|(u, i, v)| format!("o={u} {i} {v} IN IP4 x")),
            "o=[a-z0-9 ]{0,12}",
            addr.clone().prop_map(|a| format!("c=IN IP4 {a}")),
            addr.prop_map(|a| format!("c=IN IP6 {a}")),
            (
                kind,
                port,
                proto,
                proptest::collection::vec(pt.clone(), 0..9)
            )
                .prop_map(|(k, p, pr, f)| format!("m={k} {p} {pr} {}", f.join(" "))),
            (
                pt.clone(),
                "[a-zA-Z0-9-]{0,8}",
                "[0-9]{0,5}",
                proptest::option::of("[0-9]")
            )
                .prop_map(|(p, n, r, c)| match c {
                    Some(c) => format!("a=rtpmap:{p} {n}/{r}/{c}"),
                    None => format!("a=rtpmap:{p} {n}/{r}"),
                }),
            pt.prop_map(|p| format!("a=rtpmap:{p}")),
            tok(&[
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
                "a=fingerprint:sha-256 AB",
                "a=sendonly",
                "a=rtpmap:96 noslash",
                "a=rtpmap:96  spaced/8000",
                "a=rtpmap:",
                "s=-",
                "t=0 0",
                "m=audio 4000 RTP/AVP 96",
            ])
            .prop_map(str::to_owned),
            "[ -~\t]{0,20}",
        ];
        let pre = tok(&["", "", "", " ", "\t", "\r"]);
        let end = tok(&[
            "\r\n", "\r\n", "\n", " \r\n", "\t\n", "\r\r\n", "", "\x0c\n",
        ]);
        proptest::collection::vec((pre, line, end), 0..24).prop_map(|ls| {
            let mut out = Vec::new();
            for (p, l, e) in ls {
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(e.as_bytes());
                if e.is_empty() {
                    out.push(b'\n');
                }
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Where the hand parser answers, std agrees; it answers for every address std writes.
        #[test]
        fn ipv6_as_std_reads_it(text in "[0-9a-fA-F:]{0,45}", g in proptest::array::uniform8(prop_oneof![Just(0u16), Just(1u16), any::<u16>()])) {
            if let Some(got) = ipv6(text.as_bytes()) {
                prop_assert_eq!(Ok(got), text.parse::<std::net::Ipv6Addr>(), "{}", text);
            }
            let a = std::net::Ipv6Addr::from(g);
            let shown = a.to_string();
            prop_assert_eq!(ip_of(shown.as_bytes()), Some(a.into()));
            if !shown.contains('.') {
                prop_assert_eq!(ipv6(shown.as_bytes()), Some(a), "{}", shown);
            }
            let full = g.iter().map(|x| format!("{x:04X}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(ipv6(full.as_bytes()), Some(a), "{}", full);
        }

        #[test]
        fn same_as_reference_on_sdp_like_text(sdp in sdp_like()) {
            if let Err(e) = same_as_reference(&sdp) {
                return Err(TestCaseError::fail(e));
            }
        }

        #[test]
        fn same_as_reference_on_bytes(sdp in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b' '), Just(b'='), Just(b'm'), Just(b'c'), Just(b'a'),
            Just(b'/'), Just(b':'), Just(b'.'), any::<u8>(), 0x30u8..0x3a,
        ], 0..120)) {
            if let Err(e) = same_as_reference(&sdp) {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    #[test]
    fn srtp_kinds() {
        let sdes_sdp =
            with("m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\n");
        let sdes = Media::parse(&sdes_sdp);
        assert_eq!(sdes.srtp(), Some(Srtp::Sdes));
        let dtls_sdp = with(
            "a=fingerprint:sha-256 AB:CD\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n",
        );
        let dtls = Media::parse(&dtls_sdp);
        assert_eq!(dtls.srtp(), Some(Srtp::Dtls));
        assert_eq!(names(&dtls), ["opus/48000"]);
    }
}

/// The parser as it was before it dispatched lines on their first bytes (trim every line, try
/// each prefix, one scan of the section per payload type): the reference the proptests compare
/// with.
#[cfg(test)]
mod reference {
    use super::{Codec, lines, trim};

    /// port, proto, formats, addr, attrs, crypto, fingerprint
    type Audio<'a> = (u16, &'a [u8], &'a [u8], &'a [u8], &'a [u8], bool, bool);

    #[derive(Debug, Default)]
    pub struct Ref<'a> {
        pub audio: Option<Audio<'a>>,
        pub video: bool,
        pub session_fingerprint: bool,
        pub session_addr: &'a [u8],
    }

    pub fn parse<'a>(sdp: &'a [u8]) -> Ref<'a> {
        let mut m = Ref::default();
        let mut section: Option<(bool, usize)> = None;
        let mut offset = 0;
        let close = |m: &mut Ref<'a>, section: Option<(bool, usize)>, end: usize| {
            if let (Some((true, start)), Some(s)) = (section, m.audio.as_mut()) {
                s.4 = sdp.get(start..end.max(start)).unwrap_or_default();
            }
        };
        for raw in lines(sdp) {
            let at = offset;
            offset += raw.len() + 1;
            let line = trim(raw);
            if let Some(desc) = line.strip_prefix(b"m=") {
                close(&mut m, section, at);
                let mut f = desc.splitn(4, |&b| b == b' ');
                let kind = f.next().unwrap_or_default();
                let port = f.next().and_then(port_of).unwrap_or(0);
                let proto = f.next().unwrap_or_default();
                let formats = f.next().map(trim).unwrap_or_default();
                let audio = kind == b"audio" && port != 0 && m.audio.is_none();
                m.video |= kind == b"video" && port != 0;
                if audio {
                    m.audio = Some((port, proto, formats, &[], &[], false, false));
                }
                section = Some((audio, offset.min(sdp.len())));
                continue;
            }
            match section {
                None => {
                    if let Some(c) = line.strip_prefix(b"c=") {
                        m.session_addr = conn_addr(c);
                    } else if line.starts_with(b"a=fingerprint:") {
                        m.session_fingerprint = true;
                    }
                }
                Some((true, _)) => {
                    if let Some(s) = m.audio.as_mut() {
                        if let Some(c) = line.strip_prefix(b"c=") {
                            s.3 = conn_addr(c);
                        }
                        s.5 |= line.starts_with(b"a=crypto:");
                        s.6 |= line.starts_with(b"a=fingerprint:");
                    }
                }
                Some((false, _)) => {}
            }
        }
        close(&mut m, section, sdp.len());
        m
    }

    fn port_of(p: &[u8]) -> Option<u16> {
        let p = p.split(|&b| b == b'/').next()?;
        std::str::from_utf8(p).ok()?.parse().ok()
    }

    fn conn_addr(c: &[u8]) -> &[u8] {
        let addr = c.split(|&b| b == b' ').nth(2).unwrap_or_default();
        addr.split(|&b| b == b'/')
            .next()
            .map(trim)
            .unwrap_or_default()
    }

    pub fn audio_socket(m: &Ref<'_>) -> Option<std::net::SocketAddr> {
        let s = m.audio?;
        let addr = if s.3.is_empty() { m.session_addr } else { s.3 };
        let ip: std::net::IpAddr = std::str::from_utf8(addr).ok()?.parse().ok()?;
        (!ip.is_unspecified()).then_some(std::net::SocketAddr::new(ip, s.0))
    }

    pub fn codecs<'a>(m: &Ref<'a>) -> Vec<Codec<'a>> {
        let Some(s) = m.audio else {
            return Vec::new();
        };
        s.2.split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .filter_map(|pt| codec_name(s.4, pt))
            .collect()
    }

    fn codec_name<'a>(attrs: &'a [u8], pt: &'a [u8]) -> Option<Codec<'a>> {
        let name: &'static [u8] = match pt {
            b"0" => b"PCMU",
            b"3" => b"GSM",
            b"4" => b"G723",
            b"8" => b"PCMA",
            b"9" => b"G722",
            b"13" => b"CN",
            b"18" => b"G729",
            _ => {
                for line in lines(attrs) {
                    let Some(map) = trim(line).strip_prefix(b"a=rtpmap:") else {
                        continue;
                    };
                    let mut f = map.splitn(2, |&b| b == b' ');
                    if f.next() != Some(pt) {
                        continue;
                    }
                    let enc = trim(f.next()?);
                    let mut parts = enc.splitn(3, |&b| b == b'/');
                    let (name, rate) = (parts.next()?, parts.next()?);
                    return Some(Codec { name, rate });
                }
                return None;
            }
        };
        Some(Codec {
            name,
            rate: b"8000",
        })
    }

    pub fn origin(sdp: &[u8]) -> &[u8] {
        for line in lines(sdp).take(4) {
            if let Some(o) = trim(line).strip_prefix(b"o=") {
                let mut f = o.split(|&b| b == b' ').skip(1);
                let (id, ver) = (f.next().unwrap_or_default(), f.next().unwrap_or_default());
                let start = (id.as_ptr() as usize).wrapping_sub(o.as_ptr() as usize);
                let end = (ver.as_ptr() as usize)
                    .wrapping_sub(o.as_ptr() as usize)
                    .wrapping_add(ver.len());
                return o.get(start..end).unwrap_or_default();
            }
        }
        &[]
    }
}
