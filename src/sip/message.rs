//! Framing and the header scan: one pass over the start line and headers.

use super::header::LineName;
use super::scan::find;
use super::{Error, HeaderName, Method};

/// How the message arrived, which decides what Content-Length means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One UDP (or SCTP, WebSocket) payload is one message. A Content-Length larger than what
    /// arrived is tolerated (snaplen, broken senders) and flagged; headers still count.
    Datagram,
    /// Bytes from a TCP stream: the message ends where Content-Length says, and a message whose
    /// headers or body have not fully arrived is [`Error::Incomplete`].
    Stream,
}

/// The first line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: Method<'a>, uri: &'a [u8] },
    Response { code: u16, reason: &'a [u8] },
}

/// A parsed SIP message: views into the bytes it was parsed from. Values are trimmed of
/// surrounding whitespace; a folded value keeps its inner line breaks (accessors treat them as
/// whitespace).
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub call_id: Option<&'a [u8]>,
    pub cseq: Option<&'a [u8]>,
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    /// The value of the first Via header line (its first comma-separated entry is the top Via).
    pub via: Option<&'a [u8]>,
    pub contact: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    /// The first Reason header; [`Message::reasons`] walks all of them.
    pub reason: Option<&'a [u8]>,
    pub session_expires: Option<&'a [u8]>,
    /// The headers only an initial INVITE's record reads, found by the same scan.
    pub invite: InviteLines<'a>,
    pub body: &'a [u8],
    /// All header lines, for the rare header read by name ([`Message::reasons`]).
    headers: &'a [u8],
    /// Bytes of the input this message spans (leading CRLF keep-alives included).
    pub len: usize,
    /// The headers did not end, or Content-Length promised more than the datagram held.
    pub truncated: bool,
}

/// The first value of each header that only an initial INVITE's record reads (identity, privacy,
/// redirection, session). `repeated`: one of them appeared twice, and the reader that needs every
/// occurrence (or the last) scans the headers again.
#[derive(Clone, Copy, Debug)]
pub struct InviteLines<'a> {
    pub asserted_identity: Option<&'a [u8]>,
    pub remote_party_id: Option<&'a [u8]>,
    pub privacy: Option<&'a [u8]>,
    pub diversion: Option<&'a [u8]>,
    pub history_info: Option<&'a [u8]>,
    pub session_id: Option<&'a [u8]>,
    pub replaces: Option<&'a [u8]>,
    pub referred_by: Option<&'a [u8]>,
    pub repeated: bool,
}

impl InviteLines<'_> {
    pub const NONE: InviteLines<'static> = InviteLines {
        asserted_identity: None,
        remote_party_id: None,
        privacy: None,
        diversion: None,
        history_info: None,
        session_id: None,
        replaces: None,
        referred_by: None,
        repeated: false,
    };
}

impl<'a> Message<'a> {
    /// A message of no headers, for [`Message::parse_into`] to fill.
    pub const EMPTY: Message<'static> = Message {
        start: StartLine::Response {
            code: 0,
            reason: &[],
        },
        call_id: None,
        cseq: None,
        from: None,
        to: None,
        via: None,
        contact: None,
        content_type: None,
        user_agent: None,
        server: None,
        reason: None,
        session_expires: None,
        invite: InviteLines::NONE,
        body: &[],
        headers: &[],
        len: 0,
        truncated: false,
    };

    /// Parses one message from the start of `buf`. Leading CR/LF (keep-alives) are skipped.
    pub fn parse(buf: &'a [u8], framing: Framing) -> Result<Message<'a>, Error> {
        let mut m = Message::EMPTY;
        Message::parse_into(buf, framing, &mut m)?;
        Ok(m)
    }

    /// [`Message::parse`] into `m`, which the caller owns: the hot path (the trackers) parses
    /// into its own stack slot instead of receiving a ~280-byte message copied out of a
    /// `Result`. That copy's wide loads read fields just written by narrower stores, and each
    /// waited for the stores to retire: perf put 2.7 % of a run's samples in it. On an error,
    /// `m` holds what was read so far and must not be used.
    // In bounds (hot path, checked once): `skip` counts bytes of `buf` (`start_of`), `it.pos` is clamped, `body_at` <= len (HeaderIter) and `body_len` <= `avail`.
    #[allow(clippy::indexing_slicing)]
    pub fn parse_into(buf: &'a [u8], framing: Framing, m: &mut Message<'a>) -> Result<(), Error> {
        let (skip, start, rest_at) = start_of(buf, framing)?;
        let data = &buf[skip..];
        *m = Message {
            start,
            ..Message::EMPTY
        };
        let mut it = HeaderIter::new(data, rest_at);
        let mut content_length: Option<&[u8]> = None;
        for (name, value) in it.by_ref() {
            let slot = match name {
                HeaderName::CallId => &mut m.call_id,
                HeaderName::CSeq => &mut m.cseq,
                HeaderName::From => &mut m.from,
                HeaderName::To => &mut m.to,
                HeaderName::Via => &mut m.via,
                HeaderName::Contact => &mut m.contact,
                HeaderName::ContentType => &mut m.content_type,
                HeaderName::UserAgent => &mut m.user_agent,
                HeaderName::Server => &mut m.server,
                HeaderName::Reason => &mut m.reason,
                HeaderName::SessionExpires => &mut m.session_expires,
                HeaderName::ContentLength => &mut content_length,
                HeaderName::AssertedIdentity => &mut m.invite.asserted_identity,
                HeaderName::RemotePartyId => &mut m.invite.remote_party_id,
                HeaderName::Privacy => &mut m.invite.privacy,
                HeaderName::Diversion => &mut m.invite.diversion,
                HeaderName::HistoryInfo => &mut m.invite.history_info,
                HeaderName::SessionId => &mut m.invite.session_id,
                HeaderName::Replaces => &mut m.invite.replaces,
                HeaderName::ReferredBy => &mut m.invite.referred_by,
                HeaderName::Other => continue,
            };
            // The first occurrence wins (the top Via, the first Reason).
            if slot.is_none() {
                *slot = Some(value);
            } else if name.invite_only() {
                m.invite.repeated = true;
            }
        }
        m.headers = &data[rest_at..it.pos.min(data.len())];
        let Some(body_at) = it.body_at else {
            // Headers never ended.
            if framing == Framing::Stream {
                return Err(Error::Incomplete);
            }
            m.truncated = true;
            m.len = buf.len();
            return Ok(());
        };
        let avail = data.len() - body_at;
        let body_len = match framing {
            Framing::Stream => stream_body_len(content_length, avail, skip + body_at)?,
            Framing::Datagram => match content_length.map(parse_u32) {
                None => avail,
                Some(Some(n)) => {
                    m.truncated |= n as usize > avail;
                    (n as usize).min(avail)
                }
                Some(None) => {
                    m.truncated = true;
                    avail
                }
            },
        };
        m.body = &data[body_at..body_at + body_len];
        m.len = match framing {
            Framing::Stream => skip + body_at + body_len,
            Framing::Datagram => buf.len(),
        };
        Ok(())
    }

    /// The bytes the message at the start of a TCP stream's `buf` spans: what
    /// [`Message::parse`] with [`Framing::Stream`] gives as `len`, or its error, without reading
    /// the headers framing does not need. Only a line starting with `c`, `l` (Content-Length,
    /// `l`), whitespace or a line break is looked at; every other line is skipped with one
    /// search for its end. The framing scan of TCP stream reassembly, whose messages the
    /// trackers parse again in full.
    // In bounds: `skip` counts bytes of `buf` (`start_of`), `body_at` <= len (HeaderIter).
    #[allow(clippy::indexing_slicing)]
    pub fn stream_len(buf: &[u8]) -> Result<usize, Error> {
        let (skip, _, rest_at) = start_of(buf, Framing::Stream)?;
        let data = &buf[skip..];
        let mut it = HeaderIter::new(data, rest_at);
        let mut content_length: Option<&[u8]> = None;
        while let Some(&first) = data.get(it.pos) {
            match first {
                // What `Message::parse` would do for this line, and for lines without a colon
                // after it.
                b'c' | b'C' | b'l' | b'L' | b' ' | b'\t' | b'\r' | b'\n' | 0x0c => {
                    match it.next_any() {
                        Some((HeaderName::ContentLength, v)) => {
                            content_length = content_length.or(Some(v));
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                // A name that starts with another byte is not Content-Length, trimmed or not.
                _ => {
                    if it.end_of_line(it.pos).is_none() {
                        break;
                    }
                }
            }
        }
        let body_at = it.body_at.ok_or(Error::Incomplete)?;
        let body_len = stream_body_len(content_length, data.len() - body_at, skip + body_at)?;
        Ok(skip + body_at + body_len)
    }

    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Request-URI of a request.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Every Reason header value, in order. Rescans the headers only when there is one.
    pub fn reasons(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let headers = if self.reason.is_some() {
            self.headers
        } else {
            &[]
        };
        HeaderIter::new(headers, 0)
            .filter(|&(n, _)| n == HeaderName::Reason)
            .map(|(_, v)| v)
    }

    /// Every header line as (name, value), names and values trimmed (a folded value keeps its line
    /// breaks), in order. A second scan of the headers: for the headers read by name on initial INVITEs and
    /// answers only (identity, Session-ID, Replaces, Diversion, `--correlate-header`).
    pub fn all_headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.headers_starting(&[true; 256])
    }

    /// Like [`Message::all_headers`], but only the lines whose first byte, lower-cased, is marked
    /// in `initials`; the others are skipped with one search for their line end.
    pub fn headers_starting<'i>(
        &self,
        initials: &'i [bool; 256],
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'i
    where
        'a: 'i,
    {
        let mut it = HeaderIter::new(self.headers, 0);
        std::iter::from_fn(move || it.next_named(initials))
    }
}

/// The CR and LF bytes (keep-alives) before a message's start line.
#[inline(always)]
fn keep_alive_len(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Whether `buf` holds an INVITE request, as far as its first bytes tell: every message that
/// [`Message::parse`] reads as an INVITE starts so (the method token is case-sensitive), so a
/// `false` here is final. For the router, which has the bytes in its cache.
pub fn may_be_invite(buf: &[u8]) -> bool {
    buf.get(keep_alive_len(buf)..)
        .is_some_and(|b| b.starts_with(b"INVITE "))
}

/// A datagram whose handling needs its start line (and at most its CSeq) alone (see [`bare`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    /// `100 Trying`: it only shows the dialog is alive.
    Trying,
    /// A provisional response 101 to 199 without a body (no early media).
    Provisional,
    /// An ACK without a body: no SDP (a late offer's answer would be its body).
    Ack,
}

/// Whether the datagram `buf` is a [`Bare`] message, read from its start line (parsed as
/// [`Message::parse`] parses it) and, but for a 100, the place of its first empty line: every
/// `Some` here is a message the parser reads with that status or method, and but for a 100 with
/// an empty body. Its other headers are not read, so a 100 or ACK without a CSeq is not found
/// malformed.
pub fn bare(buf: &[u8]) -> Option<Bare> {
    let (skip, start, rest_at) = start_of(buf, Framing::Datagram).ok()?;
    let no_body = || buf.get(skip..).is_some_and(|data| no_body(data, rest_at));
    match start {
        StartLine::Response { code: 100, .. } => Some(Bare::Trying),
        StartLine::Response {
            code: 101..=199, ..
        } => no_body().then_some(Bare::Provisional),
        StartLine::Request {
            method: Method::Ack,
            ..
        } => no_body().then_some(Bare::Ack),
        _ => None,
    }
}

/// Whether a datagram whose start line ends at `rest_at` in `data` has an empty body: its first
/// empty line ends it, or there is none (the headers never end). `false` for a start line
/// without a line break, which [`Message::parse`] is left to read. The header scan's line walk
/// ([`HeaderIter`]) puts the empty line after the first LF that is followed by LF or CR LF
/// (every LF starts a line; a line that continues a header starts with SP or HT), so that is
/// searched for in bit masks instead (`scan::find_headers_end`); a proptest holds the two
/// together.
fn no_body(data: &[u8], rest_at: usize) -> bool {
    let Some(nl) = rest_at.checked_sub(1) else {
        return false;
    };
    if data.get(nl) != Some(&b'\n') {
        return false;
    }
    match super::scan::find_headers_end(data, nl) {
        None => true,
        Some(p) => {
            let body_at = if data.get(p + 1) == Some(&b'\n') {
                p + 2
            } else {
                p + 3
            };
            body_at == data.len()
        }
    }
}

/// The start of a message in `buf`: leading CR/LF (keep-alives) skipped and the start line
/// parsed. Returns the bytes skipped, the start line, and where the header lines begin in the
/// rest. Without a line break, a datagram's whole payload is the start line; a stream waits for
/// more bytes while they may still complete one.
// In bounds: `skip` counts bytes of `buf`, `nl` is from `find` in `data`.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn start_of(buf: &[u8], framing: Framing) -> Result<(usize, StartLine<'_>, usize), Error> {
    let skip = keep_alive_len(buf);
    let data = &buf[skip..];
    let (first, rest_at) = match find(b'\n', data) {
        Some(nl) => (trim_cr(&data[..nl]), nl + 1),
        None if framing == Framing::Stream => {
            return if may_start_start_line(data) {
                Err(Error::Incomplete)
            } else {
                Err(Error::NotSip)
            };
        }
        None => (trim_cr(data), data.len()),
    };
    let start = parse_start_line(first).ok_or(Error::NotSip)?;
    Ok((skip, start, rest_at))
}

/// In a stream, the body's length that Content-Length gives (none: 0), with `avail` bytes after
/// the headers; `offset`, where the body starts in the input, goes into the error.
fn stream_body_len(
    content_length: Option<&[u8]>,
    avail: usize,
    offset: usize,
) -> Result<usize, Error> {
    match content_length.map(parse_u32) {
        None => Ok(0),
        Some(Some(n)) if n as usize > avail => Err(Error::Incomplete),
        Some(Some(n)) => Ok(n as usize),
        Some(None) => Err(Error::BadContentLength { offset }),
    }
}

/// Fast test, before any parsing, that a payload may start with a SIP start line: rejects RTP,
/// RTCP, DNS and most other UDP payloads on their first byte.
#[inline]
// In bounds: `i` is a position in `p`; `p[..i]` with `i` from `position` over the first 20 bytes.
#[allow(clippy::indexing_slicing)]
pub fn looks_like_sip(p: &[u8]) -> bool {
    let p = match p.iter().position(|&b| b != b'\r' && b != b'\n') {
        Some(i) => &p[i..],
        None => return false,
    };
    match p.first() {
        Some(b'A'..=b'Z') => {}
        _ => return false,
    }
    if p.starts_with(b"SIP/2.0 ") {
        return true;
    }
    // A request: a method token then a space, within the first 20 bytes.
    p.iter()
        .take(20)
        .position(|&b| b == b' ')
        .is_some_and(|i| p[..i].iter().all(|&b| is_token(b)))
}

/// Whether `p`, which holds no line break yet, can still become a start line.
// In bounds: `method_end` is from `find` in `p`, or its length.
#[allow(clippy::indexing_slicing)]
fn may_start_start_line(p: &[u8]) -> bool {
    if b"SIP/2.0 ".starts_with(p) || p.starts_with(b"SIP/2.0 ") {
        return true;
    }
    let method_end = find(b' ', p).unwrap_or(p.len());
    p.first().is_some_and(u8::is_ascii_uppercase) && p[..method_end].iter().all(|&b| is_token(b))
}

/// Finds the Call-ID value without parsing the rest (used to route a message to its shard). Only
/// lines that start with `c` or `i` can be a Call-ID header; the others are skipped with one
/// search for the line end each.
pub fn find_call_id(buf: &[u8]) -> Option<&[u8]> {
    first_header(buf, HeaderName::CallId, |b, _| {
        matches!(b, b'c' | b'C' | b'i' | b'I')
    })
}

/// The first CSeq value of a message whose start line parses, as [`Message::parse`] keeps it.
/// Unlike [`find_call_id`], it also reads the lines whose name the parser finds after trimming:
/// those that start with CR (not followed by LF) or FF, and a first header line that starts with
/// a space or tab (later, such a line continues the one before).
pub fn find_cseq(buf: &[u8]) -> Option<&[u8]> {
    first_header(buf, HeaderName::CSeq, |b, first| match b {
        b'c' | b'C' | b'\r' | 0x0c => true,
        b' ' | b'\t' => first,
        _ => false,
    })
}

/// The value of the first `wanted` header (what [`Message::parse`] keeps of it), looking only at
/// lines whose first byte passes `initial` (given whether the line is the first header line):
/// every byte any name of `wanted` starts with. A line of CR LF or LF ends the headers; so does
/// any line starting with CR unless `initial` takes CR.
// In bounds: `pos` is checked by `buf.get(pos)?` before each `buf[pos..]`.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn first_header(
    buf: &[u8],
    wanted: HeaderName,
    initial: impl Fn(u8, bool) -> bool,
) -> Option<&[u8]> {
    // CRLF keep-alives before the start line are skipped, as `Message::parse` skips them (found by
    // the round-trip proptest: such a UDP message was dropped as having no Call-ID).
    let buf = buf.trim_ascii_start();
    let first = find(b'\n', buf)? + 1;
    let mut pos = first;
    loop {
        match *buf.get(pos)? {
            b'\n' => return None, // end of headers
            b'\r' if !initial(b'\r', pos == first) || buf.get(pos + 1) == Some(&b'\n') => {
                return None;
            }
            b if initial(b, pos == first) => {
                let mut it = HeaderIter::new(buf, pos);
                let (name, value) = it.next_any()?;
                if name == wanted {
                    return Some(value);
                }
                pos = it.pos;
            }
            _ => pos += find(b'\n', &buf[pos..])? + 1,
        }
    }
}

// In bounds: `sp1`, `sp2` come from `find` in the slices they cut.
#[allow(clippy::indexing_slicing)]
fn parse_start_line(line: &[u8]) -> Option<StartLine<'_>> {
    if let Some(rest) = line
        .split_first_chunk::<8>()
        .and_then(|(head, rest)| sip_version(u64::from_le_bytes(*head), b' ').then_some(rest))
    {
        let digits = rest.get(..3)?;
        if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
            return None;
        }
        let code = digits
            .iter()
            .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
        if !(100..700).contains(&code) {
            return None;
        }
        return Some(StartLine::Response {
            code,
            reason: rest.get(4..).unwrap_or(&[]),
        });
    }
    let sp1 = find(b' ', line)?;
    let method = &line[..sp1];
    let known = Method::from_bytes(method);
    // A method this crate knows is a token; only another one is checked byte by byte.
    if method.is_empty()
        || matches!(known, Method::Other(_)) && !method.iter().all(|&b| is_token(b))
    {
        return None;
    }
    let rest = &line[sp1 + 1..];
    let sp2 = find(b' ', rest)?;
    let uri = &rest[..sp2];
    let version = match *trim(&rest[sp2 + 1..]) {
        [a, b, c, d, e, f, g] => u64::from_le_bytes([a, b, c, d, e, f, g, 0]),
        _ => return None,
    };
    if uri.is_empty() || !sip_version(version, 0) {
        return None;
    }
    Some(StartLine::Request { method: known, uri })
}

/// Iterates the header lines from `pos` whose names [`HeaderName`] knows, joining folded
/// continuation lines, until the empty line. `Other` headers and lines without a colon are
/// skipped. Records where the body starts, if it does.
struct HeaderIter<'a> {
    buf: &'a [u8],
    pos: usize,
    body_at: Option<usize>,
}

impl<'a> HeaderIter<'a> {
    fn new(buf: &'a [u8], pos: usize) -> Self {
        HeaderIter {
            buf,
            pos,
            body_at: None,
        }
    }

    /// The next header line of any name, `Other` included (lines without a colon are still
    /// skipped): what [`find_call_id`] steps through.
    // Inlined into both callers (the router's Call-ID search and the TCP framing scan): out of
    // line it cost the router more than the framing scan saved (callgrind).
    #[inline(always)]
    fn next_any(&mut self) -> Option<(HeaderName, &'a [u8])> {
        loop {
            if self.body_at.is_some() {
                return None;
            }
            let start = self.pos;
            // As in `next`: `Known` means the line starts with neither CR nor LF.
            if let LineName::Known(name, len) = LineName::of(self.buf.get(start..)?) {
                return self.header(name, start + len);
            }
            let start = self.line_start()?;
            if let Some(header) = self.scan_line(start)? {
                return Some(header);
            }
        }
    }

    /// The next header line with a colon whose first byte is marked in `initials`, as (name,
    /// value).
    fn next_named(&mut self, initials: &[bool; 256]) -> Option<(&'a [u8], &'a [u8])> {
        loop {
            let start = self.line_start()?;
            let buf = self.buf;
            let first = buf.get(start).map_or(0, u8::to_ascii_lowercase);
            if initials.get(usize::from(first)) != Some(&true) {
                self.end_of_line(start)?;
                continue;
            }
            let line = buf.get(start..).unwrap_or_default();
            let colon = find(b':', line).unwrap_or(line.len());
            let end = self.end_of_line(start)? - start;
            if colon < end {
                let name = line.get(..colon).unwrap_or_default();
                let value = line.get(colon + 1..end).unwrap_or_default();
                return Some((trim(name), trim(value)));
            }
        }
    }

    /// Where the next header line starts; `None` at the empty line (the body starts after it)
    /// or at the end of the input.
    // In bounds: `buf[start]` after the check `start >= buf.len()` returned.
    #[allow(clippy::indexing_slicing)]
    fn line_start(&mut self) -> Option<usize> {
        let buf = self.buf;
        let start = self.pos;
        if self.body_at.is_some() || start >= buf.len() {
            return None;
        }
        let body_at = match (buf[start], buf.get(start + 1)) {
            (b'\n', _) => start + 1,
            (b'\r', Some(b'\n')) => start + 2,
            _ => return Some(start),
        };
        self.body_at = Some(body_at);
        self.pos = body_at;
        None
    }

    /// The header whose name ends at the colon at `colon`: its trimmed value, folded lines
    /// included.
    // In bounds: `colon` < `end` <= len (`end_of_line` returns an index of the buffer or its length, past the colon).
    #[allow(clippy::indexing_slicing)]
    #[inline(always)]
    fn header(&mut self, name: HeaderName, colon: usize) -> Option<(HeaderName, &'a [u8])> {
        let end = self.end_of_line(colon)?;
        let mut value = &self.buf[colon + 1..end];
        // The usual `: value\r`, before the general trim.
        if let [b' ', rest @ ..] = value {
            value = rest;
        }
        if let [rest @ .., b'\r'] = value {
            value = rest;
        }
        Some((name, trim(value)))
    }

    /// The general case: scans the line at `start` for its colon and compares the trimmed name.
    /// `Some(None)` for a line without a colon.
    // In bounds: `buf[colon]` only while `colon < buf.len()`; the name and value ranges are cut only when `colon < end` <= len.
    #[allow(clippy::indexing_slicing)]
    #[inline(always)]
    fn scan_line(&mut self, start: usize) -> Option<Option<(HeaderName, &'a [u8])>> {
        let buf = self.buf;
        // The name is short: a plain loop to the colon beats a `find` call.
        let mut colon = start;
        while colon < buf.len() && buf[colon] != b':' && buf[colon] != b'\n' {
            colon += 1;
        }
        let end = self.end_of_line(colon)?;
        // A line without a colon (and without continuation lines) is skipped.
        Some((colon < end).then(|| {
            let name = HeaderName::from_bytes(trim(&buf[start..colon]));
            (name, trim(&buf[colon + 1..end]))
        }))
    }

    /// Finds the LF that ends the line holding `from`, or its last continuation line (which
    /// start with SP or HT), and moves past it. That index may be the input's length when a
    /// continuation line is unterminated; `None` when the line itself is: the headers did not
    /// end.
    // In bounds: `from` <= len (a colon or line start in the buffer) and every `end` is a `find` hit in it.
    #[allow(clippy::indexing_slicing)]
    #[inline(always)]
    fn end_of_line(&mut self, from: usize) -> Option<usize> {
        let buf = self.buf;
        let Some(nl) = find(b'\n', &buf[from..]) else {
            self.pos = buf.len();
            return None;
        };
        let mut end = from + nl;
        while matches!(buf.get(end + 1), Some(b' ' | b'\t')) {
            match find(b'\n', &buf[end + 1..]) {
                Some(n) => end = end + 1 + n,
                None => {
                    end = buf.len();
                    break;
                }
            }
        }
        self.pos = (end + 1).min(buf.len());
        Some(end)
    }
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (HeaderName, &'a [u8]);

    // Inlined into `Message::parse`'s loop: callgrind -0.5 % on an all-SIP capture.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.body_at.is_some() {
                return None;
            }
            let start = self.pos;
            // `Known` and `Other` are answered only for a line whose first byte is not whitespace,
            // so neither CR nor LF: the test for the empty line (`line_start`) waits for `Unsure`.
            // `pos` never passes the end: `get` does not fail (were it to, `line_start` would
            // end the scan there too).
            let rest = self.buf.get(start..)?;
            match LineName::of(rest) {
                LineName::Known(name, len) => return self.header(name, start + len),
                // Skipped without looking for its colon or trimming its value.
                LineName::Other => {
                    self.end_of_line(start)?;
                }
                LineName::Unsure => {
                    let start = self.line_start()?;
                    match self.scan_line(start)? {
                        Some((HeaderName::Other, _)) | None => {}
                        Some(header) => return Some(header),
                    }
                }
            }
        }
    }
}

/// Whether `word` holds the 8 bytes `SIP/2.0` (letters in any case) and `then`, as a
/// little-endian `u64`: one compare instead of eight case-folding byte compares.
fn sip_version(word: u64, then: u8) -> bool {
    // Sets the case bit of the three letters only: `x | 0x20 == b's'` holds for `s` and `S` alone.
    const FOLD: u64 = u64::from_le_bytes([0x20, 0x20, 0x20, 0, 0, 0, 0, 0]);
    const LOWER: u64 = u64::from_le_bytes(*b"sip/2.0\0");
    word | FOLD == LOWER | u64::from(then) << 56
}

fn is_token(b: u8) -> bool {
    TOKEN.get(usize::from(b)) == Some(&true)
}

/// The bytes [`is_token`] accepts: letters, digits and `-.!%*_+`'~` (RFC 3261 25.1).
static TOKEN: [bool; 256] = token_table();

// Only evaluated at compile time (`TOKEN`): `b` < 256, the table's length.
#[allow(clippy::indexing_slicing)]
const fn token_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `as`: `b` < 256.
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    table
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Trims ASCII whitespace (SP, HT, CR, LF, FF: `u8::is_ascii_whitespace`) at both ends. A value
/// from the wire nearly always has none at either end: one test of each end's byte decides.
#[inline]
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    match s {
        [first, .., last] if *first > b' ' && *last > b' ' => s,
        _ => s.trim_ascii(),
    }
}

/// A non-negative decimal that fits in u32, surrounded by optional whitespace.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = trim(s);
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    // Ten digits fit in a u64; one pass checks and adds them.
    let mut n = 0u64;
    for &d in s {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {

    /// `bare` answers only for a 100, or a provisional response or an ACK without a body, as
    /// the parser reads them.
    #[test]
    fn bare_messages() {
        use super::Bare;
        for (text, want) in [
            (
                &b"SIP/2.0 100 Trying\r\nCSeq: 1 INVITE\r\n\r\n"[..],
                Some(Bare::Trying),
            ),
            (b"\r\nSIP/2.0 100 Trying\r\n\r\n", Some(Bare::Trying)),
            (b"SIP/2.0 180 Ringing\r\n\r\n", Some(Bare::Provisional)),
            (
                b"SIP/2.0 183 Progress\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n",
                None,
            ),
            (b"SIP/2.0 200 OK\r\n\r\n", None),
            (b"SIP/2.0 1000 Trying\r\n\r\n", None),
            (
                b"ACK sip:a@b SIP/2.0\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                Some(Bare::Ack),
            ),
            (b"ACK sip:a@b SIP/2.0\nCSeq: 1 ACK\n\n", Some(Bare::Ack)),
            (b"ACK sip:a@b SIP/2.0\r\n\r\n", Some(Bare::Ack)),
            (b"ACK sip:a@b SIP/2.0\r\nCSeq: 1 ACK\r\n", Some(Bare::Ack)), // headers never end
            (b"ACK sip:a@b SIP/2.0\r\nCSeq: 1 ACK\r\n\r\nv=0\r\n", None),
            (b"ACK sip:a@b SIP/2.0\r\nX: a\r\n b\r\n\r\nv=0", None),
            (
                b"ACK sip:a@b SIP/2.0\r\nX: a\r\n\rY: b\r\n\r\n",
                Some(Bare::Ack),
            ),
            (b"ACK sip:a@b SIP/2.0", None), // no line break: left to the parser
            (b"ACK sip:a@b", None),
            (b"ack sip:a@b SIP/2.0\r\n\r\n", None),
            (b"BYE sip:a@b SIP/2.0\r\n\r\n", None),
        ] {
            assert_eq!(bare(text), want, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Whatever `bare` reads, the parser reads so too.
        #[test]
        fn bare_agrees_with_the_parser(
            start in proptest::sample::select(vec!["ACK sip:a@b SIP/2.0", "SIP/2.0 100 Trying", "\r\nACK x SIP/2.0", "ACK x SIP/2.0 ", "SIP/2.0 180 Ringing", "SIP/2.0 183 ", "SIP/2.0 200 OK"]),
            rest in proptest::collection::vec(proptest::sample::select(b"\r\n \tab:v=0".to_vec()), 0..30),
        ) {
            let mut b = start.as_bytes().to_vec();
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(&rest);
            if let Some(kind) = bare(&b) {
                let m = Message::parse(&b, Framing::Datagram).unwrap();
                match kind {
                    super::Bare::Trying => proptest::prop_assert_eq!(m.status(), Some(100)),
                    super::Bare::Provisional => {
                        proptest::prop_assert!(m.status().is_some_and(|c| (101..200).contains(&c)));
                        proptest::prop_assert!(m.body.is_empty(), "{:?}", m.body);
                    }
                    super::Bare::Ack => {
                        proptest::prop_assert_eq!(m.method(), Some(Method::Ack));
                        proptest::prop_assert!(m.body.is_empty(), "{:?}", m.body);
                    }
                }
            } else if let Ok(m) = Message::parse(&b, Framing::Datagram) {
                // An ACK the parser gives an empty body is bare unless its start line stood alone.
                if m.method() == Some(Method::Ack) && b.contains(&b'\n') {
                    proptest::prop_assert!(!m.body.is_empty(), "{:?}", b);
                }
            }
        }
    }

    /// `no_body` as the header scan's line walk had it: where `HeaderIter` finds the empty line.
    fn no_body_by_lines(data: &[u8], rest_at: usize) -> bool {
        if rest_at.checked_sub(1).and_then(|f| data.get(f)) != Some(&b'\n') {
            return false;
        }
        let mut it = HeaderIter::new(data, rest_at);
        while let Some(start) = it.line_start() {
            if it.end_of_line(start).is_none() {
                break;
            }
        }
        it.body_at.is_none_or(|at| at == data.len())
    }

    proptest::proptest! {
        /// The one-pass search finds the body where the line walk does, on long and short
        /// datagrams full of line breaks, folds and stray CRs, from every line start.
        #[test]
        fn no_body_agrees_with_the_line_walk(
            data in proptest::collection::vec(proptest::sample::select(b"\r\n\n \tab:".to_vec()), 0..160),
        ) {
            for rest_at in 0..=data.len() + 1 {
                proptest::prop_assert_eq!(
                    no_body(&data, rest_at),
                    no_body_by_lines(&data, rest_at),
                    "{:?} from {}", data, rest_at
                );
            }
        }
    }

    /// Every message the parser reads as an INVITE is one `may_be_invite` lets through.
    #[test]
    fn may_be_invite_passes_every_invite() {
        for (text, invite) in [
            (&b"INVITE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n"[..], true),
            (
                b"\r\n\r\nINVITE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n",
                true,
            ),
            (b"invite sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n", false),
            (b"INVITEX sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n", false),
            (b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n", false),
            (b"BYE sip:a@b SIP/2.0\r\n\r\n", false),
            (b"", false),
        ] {
            let parsed = Message::parse(text, Framing::Datagram).ok();
            let method = parsed.and_then(|m| m.method());
            assert_eq!(method == Some(Method::Invite), invite, "{text:?}");
            assert_eq!(may_be_invite(text), invite, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn may_be_invite_never_refuses_an_invite(
            pre in proptest::collection::vec(proptest::sample::select(b"\r\n I".to_vec()), 0..4),
            method in proptest::sample::select(vec!["INVITE", "INVITE ", "invite", "INVIT", "BYE"]),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let mut b = pre.clone();
            b.extend_from_slice(method.as_bytes());
            b.extend_from_slice(b" sip:x SIP/2.0\r\n");
            b.extend_from_slice(&rest);
            if let Ok(m) = Message::parse(&b, Framing::Datagram) && m.method() == Some(Method::Invite) {
                proptest::prop_assert!(may_be_invite(&b));
            }
        }
    }
    use super::*;

    static INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP p2;branch=z9hG4bKx\r\n\
Via: SIP/2.0/UDP second;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
User-Agent: Soft\r\n phone 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\nEXTRA";

    #[test]
    fn parses_request_with_folding_and_body() {
        let m = Message::parse(INVITE, Framing::Stream).unwrap();
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri(), Some(&b"sip:bob@biloxi.example.com"[..]));
        assert_eq!(
            m.call_id,
            Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..])
        );
        assert_eq!(m.cseq, Some(&b"314159 INVITE"[..]));
        assert!(m.via.unwrap().starts_with(b"SIP/2.0/UDP pc33"));
        assert_eq!(m.user_agent, Some(&b"Soft\r\n phone 1.0"[..]));
        assert_eq!(m.body, b"v=0\n");
        assert_eq!(m.len, INVITE.len() - 5);
        assert!(!m.truncated);
    }

    #[test]
    fn parse_into_a_used_message_keeps_nothing_of_the_last() {
        // The tracker parses every message of a batch into one slot, reused.
        let bye = b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let mut m = Message::parse(INVITE, Framing::Stream).unwrap();
        Message::parse_into(bye, Framing::Datagram, &mut m).unwrap();
        let fresh = Message::parse(bye, Framing::Datagram).unwrap();
        assert_eq!(format!("{m:?}"), format!("{fresh:?}"));
        assert_eq!((m.from, m.user_agent, m.content_type), (None, None, None));
        assert_eq!(m.body, b"");
    }

    #[test]
    fn stream_framing_waits_for_body_and_headers() {
        let cut = INVITE.len() - 7; // body incomplete
        assert_eq!(
            Message::parse(&INVITE[..cut], Framing::Stream).unwrap_err(),
            Error::Incomplete
        );
        assert_eq!(
            Message::parse(&INVITE[..60], Framing::Stream).unwrap_err(),
            Error::Incomplete
        );
        assert_eq!(
            Message::parse(&INVITE[..10], Framing::Stream).unwrap_err(),
            Error::Incomplete
        );
    }

    #[test]
    fn datagram_keeps_headers_of_a_truncated_message() {
        let cut = memchr::memmem::find(INVITE, b"User-Agent").unwrap();
        let m = Message::parse(&INVITE[..cut], Framing::Datagram).unwrap();
        assert!(m.truncated);
        assert_eq!(m.cseq, Some(&b"314159 INVITE"[..]));
        let cut = INVITE.len() - 7;
        let m = Message::parse(&INVITE[..cut], Framing::Datagram).unwrap();
        assert!(m.truncated);
        assert_eq!(m.body, b"v=");
    }

    #[test]
    fn compact_forms_lowercase_and_bare_lf() {
        let msg = b"SIP/2.0 180 Ringing\nv: SIP/2.0/UDP h;branch=z9hG4bK1\nf: <sip:a@h>;tag=1\nt: <sip:b@h>;tag=2\ni: cid-1\nCSEQ: 1 INVITE\nl: 0\n\n";
        let m = Message::parse(msg, Framing::Stream).unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.call_id, Some(&b"cid-1"[..]));
        assert_eq!(m.to, Some(&b"<sip:b@h>;tag=2"[..]));
        assert_eq!(m.len, msg.len());
    }

    #[test]
    fn two_messages_in_one_stream_buffer() {
        let two = b"\r\nBYE sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\nSIP/2.0 200 OK\r\nCall-ID: 1\r\n\r\n";
        let m = Message::parse(two, Framing::Stream).unwrap();
        assert_eq!(m.method(), Some(Method::Bye));
        let m2 = Message::parse(&two[m.len..], Framing::Stream).unwrap();
        assert_eq!(m2.status(), Some(200));
        assert_eq!(m.len + m2.len, two.len());
    }

    #[test]
    fn rejects_what_is_not_sip() {
        for junk in [
            &b"NOTIFY * HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x80\x00\x12\x34rtp",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"",
        ] {
            assert_eq!(
                Message::parse(junk, Framing::Datagram).unwrap_err(),
                Error::NotSip
            );
        }
        assert!(!looks_like_sip(b"\x80\x08"));
        assert!(looks_like_sip(b"OPTIONS sip:x SIP/2.0"));
    }

    #[test]
    fn parse_u32_bounds() {
        assert_eq!(parse_u32(b" 4294967295\r"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"0000000001"), Some(1));
        assert_eq!(parse_u32(b"99999999999"), None);
        assert_eq!(parse_u32(b"1 2"), None);
        assert_eq!(parse_u32(b""), None);
    }

    #[test]
    fn bad_content_length() {
        let m = b"INVITE sip:x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: -5\r\n\r\nbody";
        assert_eq!(
            Message::parse(m, Framing::Stream).unwrap_err(),
            Error::BadContentLength { offset: 56 }
        );
        let d = Message::parse(m, Framing::Datagram).unwrap();
        assert!(d.truncated);
        assert_eq!(d.body, b"body");
    }

    #[test]
    fn finds_call_id_quickly_and_all_reasons() {
        assert_eq!(
            find_call_id(INVITE),
            Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..])
        );
        assert_eq!(find_call_id(b"BYE x SIP/2.0\r\n\r\ni: late\r\n"), None);
        assert_eq!(
            find_call_id(b"BYE x SIP/2.0\nContact: <sip:x>\n folded\ncall-id:  7 \n"),
            Some(&b"7"[..])
        );
        assert_eq!(
            find_call_id(b"BYE x SIP/2.0\r\nCSeq: 1 BYE\r\nI:x\r\n\r\n"),
            Some(&b"x"[..])
        );
        assert_eq!(find_call_id(b"BYE x SIP/2.0\r\nCSeq: 1 BYE\r\n"), None);
        let m = Message::parse(
            b"BYE sip:x SIP/2.0\r\nReason: SIP;cause=200\r\nreason: Q.850;cause=16\r\n\r\n",
            Framing::Datagram,
        )
        .unwrap();
        assert_eq!(m.reasons().count(), 2);
    }

    #[test]
    fn non_utf8_does_not_break_a_message() {
        let m = b"INVITE sip:\xff@h SIP/2.0\r\nFrom: \"\xe9t\xe9\" <sip:\xe9@h>;tag=\xff\r\nCall-ID: \x00\xfe\r\n\r\n";
        let m = Message::parse(m, Framing::Datagram).unwrap();
        assert_eq!(m.call_id, Some(&b"\x00\xfe"[..]));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::sip::{sdp, value};
    use proptest::prelude::*;

    /// Exercises the parser and every accessor on `bytes`; none may panic.
    fn everything(bytes: &[u8]) {
        for framing in [Framing::Datagram, Framing::Stream] {
            if let Ok(m) = Message::parse(bytes, framing) {
                assert!(m.len <= bytes.len());
                let _ = (m.method(), m.status(), m.request_uri(), m.reasons().count());
                for v in [m.from, m.to, m.contact].into_iter().flatten() {
                    let n = value::NameAddr::parse(v);
                    let _ = (n.display_name(), n.tag(), value::uri_user(n.uri));
                }
                let _ = m.cseq.map(value::cseq);
                let _ = m.via.map(value::via_branch);
                let _ = m.reason.map(value::q850_cause);
                let _ = m.session_expires.map(value::delta_seconds);
                let _ = m.user_agent.map(value::fold_ws);
                let _ = sdp::find_sdp(m.content_type, m.body).and_then(sdp::audio_on_hold);
            }
        }
        let _ = (find_call_id(bytes), looks_like_sip(bytes));
    }

    /// The header scan as it was before `LineName`: a scan for the colon and a name comparison on
    /// every line. The faster scan must give the same headers, stop at the same place and find
    /// the same Call-ID.
    mod reference {
        use super::super::{HeaderName, trim};
        use memchr::memchr;

        pub struct HeaderIter<'a> {
            pub buf: &'a [u8],
            pub pos: usize,
            pub body_at: Option<usize>,
        }

        impl<'a> Iterator for HeaderIter<'a> {
            type Item = (&'a [u8], &'a [u8]);

            fn next(&mut self) -> Option<Self::Item> {
                let buf = self.buf;
                loop {
                    if self.body_at.is_some() || self.pos >= buf.len() {
                        return None;
                    }
                    let start = self.pos;
                    match (buf[start], buf.get(start + 1)) {
                        (b'\n', _) => {
                            self.body_at = Some(start + 1);
                            self.pos = start + 1;
                            return None;
                        }
                        (b'\r', Some(b'\n')) => {
                            self.body_at = Some(start + 2);
                            self.pos = start + 2;
                            return None;
                        }
                        _ => {}
                    }
                    let mut colon = start;
                    while colon < buf.len() && buf[colon] != b':' && buf[colon] != b'\n' {
                        colon += 1;
                    }
                    let Some(nl) = memchr(b'\n', &buf[colon..]) else {
                        self.pos = buf.len();
                        return None;
                    };
                    let mut end = colon + nl;
                    while matches!(buf.get(end + 1), Some(b' ' | b'\t')) {
                        match memchr(b'\n', &buf[end + 1..]) {
                            Some(n) => end = end + 1 + n,
                            None => {
                                end = buf.len();
                                break;
                            }
                        }
                    }
                    self.pos = (end + 1).min(buf.len());
                    if colon < end {
                        let value = &buf[colon + 1..end.min(buf.len())];
                        return Some((trim(&buf[start..colon]), trim(value)));
                    }
                }
            }
        }

        pub fn find_call_id(buf: &[u8]) -> Option<&[u8]> {
            let mut pos = memchr(b'\n', buf)? + 1;
            loop {
                match *buf.get(pos)? {
                    b'\r' | b'\n' => return None,
                    b'c' | b'C' | b'i' | b'I' => {
                        let mut it = HeaderIter {
                            buf,
                            pos,
                            body_at: None,
                        };
                        let (name, value) = it.next()?;
                        if HeaderName::from_bytes(name) == HeaderName::CallId {
                            return Some(value);
                        }
                        pos = it.pos;
                    }
                    _ => pos += memchr(b'\n', &buf[pos..])? + 1,
                }
            }
        }
    }

    /// The start line as it was parsed before `sip_version` and the `TOKEN` table.
    // In bounds: `sp1`, `sp2` come from `find` in the slices they cut.
    #[allow(clippy::indexing_slicing)]
    fn reference_start_line(line: &[u8]) -> Option<StartLine<'_>> {
        fn strip<'s>(s: &'s [u8], prefix: &[u8]) -> Option<&'s [u8]> {
            let head = s.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| &s[prefix.len()..])
        }
        let is_token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
        if let Some(rest) = strip(line, b"SIP/2.0 ") {
            let digits = rest.get(..3)?;
            if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
                return None;
            }
            let code = digits
                .iter()
                .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
            if !(100..700).contains(&code) {
                return None;
            }
            return Some(StartLine::Response {
                code,
                reason: rest.get(4..).unwrap_or(&[]),
            });
        }
        let sp1 = find(b' ', line)?;
        let method = &line[..sp1];
        if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
            return None;
        }
        let rest = &line[sp1 + 1..];
        let sp2 = find(b' ', rest)?;
        let uri = &rest[..sp2];
        let version = trim(&rest[sp2 + 1..]);
        if uri.is_empty() || !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return None;
        }
        Some(StartLine::Request {
            method: Method::from_bytes(method),
            uri,
        })
    }

    /// Start lines near the ones `parse_start_line` accepts: versions in any case and with one
    /// byte off by the case bit or otherwise, methods with every byte value, odd spacing.
    fn start_line() -> impl Strategy<Value = Vec<u8>> {
        let version = (
            prop::sample::select(vec![
                "SIP/2.0",
                "sip/2.0",
                "SiP/2.0",
                "SIP/2.1",
                "SIP/2.0x",
                "SIP/2",
                "SIP/20 ",
                "SIP\x0f2.0",
                "S\x09P/2.0",
                "",
                "SIP/\x122.0",
            ]),
            prop::option::of((0usize..8, any::<u8>())),
        )
            .prop_map(|(v, change)| {
                let mut v = v.as_bytes().to_vec();
                if let Some((at, b)) = change
                    && let Some(x) = v.get_mut(at)
                {
                    *x = b;
                }
                v
            });
        (
            prop::bool::ANY,
            version,
            prop::sample::select(vec![" ", "  ", "\t", " \r", ""]),
            prop::collection::vec(prop_oneof![4 => b'A'..=b'Z', 1 => any::<u8>()], 0..8),
            "[a-z0-9:@. ]{0,12}",
            "[0-9]{0,4}",
            "[ A-Za-z]{0,6}",
        )
            .prop_map(|(response, version, sp, method, uri, code, reason)| {
                let mut line = Vec::new();
                if response {
                    line.extend_from_slice(&version);
                    line.extend_from_slice(sp.as_bytes());
                    line.extend_from_slice(code.as_bytes());
                    line.extend_from_slice(reason.as_bytes());
                } else {
                    line.extend_from_slice(&method);
                    line.push(b' ');
                    line.extend_from_slice(uri.as_bytes());
                    line.extend_from_slice(sp.as_bytes());
                    line.extend_from_slice(&version);
                    line.extend_from_slice(reason.as_bytes().get(..1).unwrap_or_default());
                }
                line
            })
    }

    #[test]
    fn start_line_same_as_reference_on_every_token_byte() {
        for b in 0..=255u8 {
            for line in [
                vec![
                    b'I', b, b' ', b'x', b' ', b'S', b'I', b'P', b'/', b'2', b'.', b'0',
                ],
                vec![
                    b'S', b'I', b'P', b'/', b'2', b'.', b'0', b, b'1', b'8', b'0', b' ', b'R',
                ],
                vec![
                    b'B', b'Y', b'E', b' ', b'x', b' ', b'S', b'I', b, b'/', b'2', b'.', b'0',
                ],
                vec![
                    b'B', b'Y', b'E', b' ', b'x', b' ', b'S', b'I', b'P', b'/', b'2', b'.', b'0', b,
                ],
            ] {
                assert_eq!(
                    parse_start_line(&line),
                    reference_start_line(&line),
                    "{line:?}"
                );
            }
        }
    }

    /// Checks the header scan and the Call-ID search on `bytes` against [`reference`].
    fn same_as_reference(bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut old = reference::HeaderIter {
            buf: bytes,
            pos: 0,
            body_at: None,
        };
        let want: Vec<_> = old
            .by_ref()
            .map(|(n, v)| (HeaderName::from_bytes(n), v))
            .filter(|&(n, _)| n != HeaderName::Other)
            .collect();
        let mut new = HeaderIter::new(bytes, 0);
        let got: Vec<_> = new.by_ref().collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(new.pos, old.pos);
        prop_assert_eq!(new.body_at, old.body_at);
        // find_call_id skips what comes before the start line (CRLF keep-alives), which the
        // reference did not (a seed with a leading LF is in proptest-regressions).
        prop_assert_eq!(
            find_call_id(bytes),
            reference::find_call_id(bytes.trim_ascii_start())
        );
        // The CSeq search (the tracker's bare provisional responses) finds the parser's CSeq.
        if let Ok(m) = Message::parse(bytes, Framing::Datagram) {
            prop_assert_eq!(find_cseq(bytes), m.cseq);
        }
        Ok(())
    }

    /// One header line in many shapes: wanted names, names that only start like one, any case,
    /// whitespace before the colon, no colon, folded values, bare LF, stray CR and FF.
    fn header_line() -> impl Strategy<Value = Vec<u8>> {
        let name = prop::sample::select(vec![
            "i",
            "f",
            "t",
            "v",
            "m",
            "l",
            "c",
            "x",
            "to",
            "via",
            "cseq",
            "from",
            "reason",
            "server",
            "call-id",
            "contact",
            "user-agent",
            "content-type",
            "content-length",
            "session-expires",
            "via-x",
            "fromage",
            "to2",
            "max-forwards",
            "supported",
            "call-info",
            "",
            " call-id",
            "\tvia",
            "\rcall-id",
            "\x0ci",
        ]);
        let sep = prop::sample::select(vec![
            ":", ": ", " :", "\t:", "\r:", "\x0c:", "", "-:", "\r\n :", "\r\n\t",
        ]);
        let end = prop::sample::select(vec!["\r\n", "\n", "\r\n ", "\r\n\t", "\r\n \r\n", ""]);
        (
            name,
            prop::collection::vec(any::<bool>(), 16),
            sep,
            "[a-z0-9 ;=@<>:\t\r\x0c]{0,30}",
            end,
        )
            .prop_map(|(name, upper, sep, value, end)| {
                let mut line: Vec<u8> = name
                    .bytes()
                    .zip(upper)
                    .map(|(b, u)| if u { b.to_ascii_uppercase() } else { b })
                    .collect();
                line.extend_from_slice(sep.as_bytes());
                line.extend_from_slice(value.as_bytes());
                line.extend_from_slice(end.as_bytes());
                line
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn header_scan_same_as_reference(
            start in prop::sample::select(vec!["INVITE sip:a@b SIP/2.0\r\n", "SIP/2.0 200 OK\n", ""]),
            lines in prop::collection::vec(header_line(), 0..12),
            tail in prop::sample::select(vec!["\r\n", "\n", "\r\nv=0\r\n", ""]),
        ) {
            let mut bytes = start.as_bytes().to_vec();
            for l in &lines {
                bytes.extend_from_slice(l);
            }
            bytes.extend_from_slice(tail.as_bytes());
            same_as_reference(&bytes)?;
            // Every truncation too: unterminated lines, rests shorter than 16 bytes.
            for cut in 1..bytes.len().min(40) {
                same_as_reference(&bytes[..bytes.len() - cut])?;
            }
        }

        /// The TCP framing scan agrees with the full parse on every message and every prefix
        /// of it: the same length, or the same error (Incomplete, NotSip, BadContentLength and
        /// its offset). Header lines of any name and shape, a real Content-Length among them or
        /// not, leading keep-alive CRLFs, a body and the next message's start after it.
        #[test]
        fn stream_len_same_as_parse(
            keepalive in prop::sample::select(vec!["", "\r\n", "\n\r\n"]),
            start in prop::sample::select(vec!["INVITE sip:a@b SIP/2.0\r\n", "SIP/2.0 200 OK\n", "", "junk\r\n"]),
            lines in prop::collection::vec(header_line(), 0..10),
            cl in prop::option::of((0..12usize, prop::sample::select(vec!["Content-Length: ", "l:", "content-length :", " L: ", "Content-Length: x"]), 0..40usize)),
            end in prop::sample::select(vec!["\r\n", "\n", ""]),
            body in "[a-z=0-9 \r\n]{0,50}",
        ) {
            let mut bytes = format!("{keepalive}{start}").into_bytes();
            for (i, l) in lines.iter().enumerate() {
                if let Some((at, name, n)) = &cl && *at == i {
                    bytes.extend_from_slice(format!("{name}{n}\r\n").as_bytes());
                }
                bytes.extend_from_slice(l);
            }
            bytes.extend_from_slice(end.as_bytes());
            bytes.extend_from_slice(body.as_bytes());
            bytes.extend_from_slice(b"BYE sip:x SIP/2.0\r\n");
            for cut in 0..bytes.len() {
                let b = &bytes[..bytes.len() - cut];
                prop_assert_eq!(Message::stream_len(b), Message::parse(b, Framing::Stream).map(|m| m.len), "{:?}", String::from_utf8_lossy(b));
            }
        }

        #[test]
        fn stream_len_same_as_parse_on_arbitrary_bytes(bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b'l'), Just(b'c'), Just(b' '), Just(b'5'), any::<u8>()], 0..300)) {
            prop_assert_eq!(Message::stream_len(&bytes), Message::parse(&bytes, Framing::Stream).map(|m| m.len));
        }

        #[test]
        fn start_line_same_as_reference(line in start_line()) {
            prop_assert_eq!(parse_start_line(&line), reference_start_line(&line));
        }

        #[test]
        fn start_line_same_as_reference_on_arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(parse_start_line(&line), reference_start_line(&line));
        }

        /// The two-ends shortcut trims what `trim_ascii` trims (every byte above SP is not
        /// whitespace; FF and the other controls are on both sides of the line).
        #[test]
        fn trim_same_as_trim_ascii(b in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(0x0c), Just(0x0b), Just(0x1f), Just(0x21), Just(b'a'), any::<u8>()], 0..8)) {
            prop_assert_eq!(trim(&b), b.trim_ascii());
        }

        #[test]
        fn parse_u32_same_as_before(s in "[ \t]{0,2}[0-9]{0,12}[ a\r]{0,2}") {
            let t = trim(s.as_bytes());
            let before = (!t.is_empty() && t.len() <= 10 && t.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(t).ok()?.parse::<u32>().ok())
                .flatten();
            prop_assert_eq!(parse_u32(s.as_bytes()), before);
        }

        #[test]
        fn header_scan_same_as_reference_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            same_as_reference(&bytes)?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            everything(&bytes);
        }

        #[test]
        fn never_panics_on_sip_shaped_bytes(
            start in prop::sample::select(vec!["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "BYE x SIP/2.0", "SIP/2.0 18"]),
            lines in proptest::collection::vec("[A-Za-z:;=<>\"\\\\ ,@.0-9\r\n\t-]{0,40}", 0..12),
            body in "[a-z=0-9 .\r\n]{0,80}",
        ) {
            let text = format!("{start}\r\n{}\r\n\r\n{body}", lines.join("\r\n"));
            everything(text.as_bytes());
        }
    }
}
