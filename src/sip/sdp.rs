//! SDP, as much as a CDR needs: is the audio stream offered on hold?

use super::message::trim;

/// The SDP inside a body with the given Content-Type: the body itself for `application/sdp`, the
/// SDP part of a `multipart/*` body (SIP-I carries ISUP beside it), else none.
pub fn find_sdp<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Option<&'a [u8]> {
    let ct = trim(content_type?);
    let starts = |p: &[u8]| ct.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
