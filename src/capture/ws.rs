//! SIP over WebSocket (RFC 7118, framing by RFC 6455): the HTTP Upgrade that starts it, and the
//! frames that follow. Each WebSocket message (one frame, or a data frame plus continuations)
//! carries one whole SIP message, which is then read like a UDP datagram.

use crate::sip::looks_like_sip;
use memchr::memmem;

/// Largest frame payload accepted; anything larger is not SIP (and would be a memory hazard).
pub const MAX_FRAME: u64 = 1 << 20;

/// What an HTTP message at the start of a stream means for the bytes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Not an HTTP request or response line.
    NotHttp,
    /// HTTP, but its headers have not all arrived.
    Incomplete,
    /// An HTTP message that is not a WebSocket upgrade.
    Plain,
    /// A WebSocket upgrade request (`GET … Upgrade: websocket`) or its `101` answer: frames start
    /// at this offset.
    WebSocket(usize),
}

/// Whether `buf` starts with an HTTP Upgrade to WebSocket, in either direction.
pub fn upgrade(buf: &[u8]) -> Upgrade {
    let request = buf.starts_with(b"GET ");
    let response = buf.starts_with(b"HTTP/1.1 101") || buf.starts_with(b"HTTP/1.0 101");
    if !request && !response {
        let head = |n: usize| buf.get(..buf.len().min(n)).unwrap_or_default();
        return if b"GET ".starts_with(head(4)) || b"HTTP/1.".starts_with(head(7)) {
            // Too short to tell (or another HTTP response): decide when more arrives.
            if buf.len() >= 7 {
                Upgrade::Plain
            } else {
                Upgrade::Incomplete
            }
        } else {
            Upgrade::NotHttp
        };
    }
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        return Upgrade::Incomplete;
    };
    let headers = buf.get(..end).unwrap_or_default();
    let upgrades = headers.split(|&b| b == b'\n').any(|line| {
        line.trim_ascii()
            .split_at_checked(8)
            .is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case(b"upgrade:")
                    && value.trim_ascii().eq_ignore_ascii_case(b"websocket")
            })
    });
    if upgrades {
        Upgrade::WebSocket(end + 4)
    } else {
        Upgrade::Plain
    }
}

/// A frame header (RFC 6455 section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: the payload is compressed (permessage-deflate), which a passive reader cannot undo
    /// without the whole connection's history.
    pub compressed: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// Bytes of header, then of payload.
    pub header_len: usize,
    pub payload_len: usize,
}

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;

/// Bytes that cannot be a frame header (reserved bits or opcode, or an absurd length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAFrame;

/// Reads a frame header at the start of `b`: `Ok(None)` when more bytes are needed.
pub fn frame(b: &[u8]) -> Result<Option<Frame>, NotAFrame> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    let opcode = b0 & 0x0F;
    // RSV2 and RSV3 have no registered use; opcodes 3-7 and 11-15 are reserved.
    if b0 & 0x30 != 0 || !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
        return Err(NotAFrame);
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(&[x, y]) => (u64::from(u16::from_be_bytes([x, y])), 4),
            _ => return Ok(None),
        },
        127 => match b.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
            Some(x) => (u64::from_be_bytes(x), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME || (opcode >= 8 && len > 125) {
        return Err(NotAFrame);
    }
    let mask = if b1 & 0x80 != 0 {
        let Some(m) = b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
            return Ok(None);
        };
        at += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Frame {
        fin: b0 & 0x80 != 0,
        compressed: b0 & 0x40 != 0,
        opcode,
        mask,
        header_len: at,
        payload_len: len as usize,
    }))
}

/// Appends `payload`, unmasked, to `out`.
pub fn unmask_into(payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    match mask {
        None => out.extend_from_slice(payload),
        Some(m) => out.extend(payload.iter().zip(m.iter().cycle()).map(|(b, k)| b ^ k)),
    }
}

/// Finds, for a stream that lost its place (capture started mid-connection, or a gap), the first
/// offset where a data frame carrying the start of a SIP message begins.
pub fn find_sip_frame(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&at| {
        let Some(rest @ [b0, ..]) = buf.get(at..) else {
            return false;
        };
        if b0 & 0x70 != 0 || !matches!(b0 & 0x0F, TEXT | BINARY) {
            return false;
        }
        let Ok(Some(f)) = frame(rest) else {
            return false;
        };
        let start = at + f.header_len;
        let head = buf
            .get(start.min(buf.len())..(start + f.payload_len.min(24)).min(buf.len()))
            .unwrap_or_default();
        let mut plain = Vec::with_capacity(head.len());
        unmask_into(head, f.mask, &mut plain);
        plain.len() >= 8 && looks_like_sip(&plain)
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A frame as a browser (masked) or a server (unmasked) sends it.
    pub fn encode(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => v.push(m | n as u8),
            n @ 126..=0xFFFF => {
                v.push(m | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(m | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if let Some(k) = mask {
            v.extend_from_slice(&k);
        }
        unmask_into(payload, mask, &mut v);
        v
    }

    #[test]
    fn headers_of_every_length_form() {
        for (len, hl) in [(5usize, 2usize), (300, 4), (70_000, 10)] {
            let p = vec![b'a'; len];
            for mask in [None, Some([1, 2, 3, 4])] {
                let f = encode(true, TEXT, mask, &p);
                let h = frame(&f).unwrap().unwrap();
                let extra = if mask.is_some() { 4 } else { 0 };
                assert_eq!((h.header_len, h.payload_len), (hl + extra, len));
                let mut out = Vec::new();
                unmask_into(&f[h.header_len..], h.mask, &mut out);
                assert_eq!(out, p);
                // Every prefix of the header asks for more bytes, never errs or panics.
                for cut in 0..h.header_len {
                    assert_eq!(frame(&f[..cut]), Ok(None), "cut {cut}");
                }
            }
        }
        assert_eq!(frame(&[0x83, 0]), Err(NotAFrame), "reserved opcode");
        assert_eq!(
            frame(&[0x89, 126, 0, 200]),
            Err(NotAFrame),
            "long control frame"
        );
        let huge = [0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(frame(&huge), Err(NotAFrame), "larger than MAX_FRAME");
    }

    #[test]
    fn upgrade_in_both_directions() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n\x81\x05hello";
        let at = req.len() - 7;
        assert_eq!(upgrade(req), Upgrade::WebSocket(at));
        assert_eq!(upgrade(&req[..40]), Upgrade::Incomplete);
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nupgrade:  WebSocket \r\n\r\n";
        assert_eq!(upgrade(resp), Upgrade::WebSocket(resp.len()));
        assert_eq!(
            upgrade(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
            Upgrade::Plain
        );
        assert_eq!(upgrade(b"HTTP/1.1 200 OK\r\n\r\n"), Upgrade::Plain);
        assert_eq!(upgrade(b"GE"), Upgrade::Incomplete);
        assert_eq!(upgrade(b"INVITE sip:a@b SIP/2.0\r\n"), Upgrade::NotHttp);
    }

    #[test]
    fn finds_a_sip_frame_after_garbage() {
        let sip = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
        for mask in [None, Some([0x37, 0xfa, 0x21, 0x3d])] {
            let mut buf = b"\x81garbage in the middle of a body".to_vec();
            let at = buf.len();
            buf.extend(encode(true, TEXT, mask, sip));
            assert_eq!(find_sip_frame(&buf), Some(at));
        }
        assert_eq!(
            find_sip_frame(&encode(true, TEXT, None, b"hello there")),
            None
        );
    }
}
