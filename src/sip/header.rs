//! Header names: the ones the tracker reads, by full or compact form (RFC 3261 7.3.3, RFC 4028
//! `x`), compared ASCII case-insensitively. Every other name is `Other` and costs one length test.

/// The headers [`super::Message`] remembers. `Other` is everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderName {
    CallId,
    CSeq,
    From,
    To,
    Via,
    Contact,
    ContentLength,
    ContentType,
    UserAgent,
    Server,
    Reason,
    SessionExpires,
    Other,
}

impl HeaderName {
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'i' => HeaderName::CallId,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'v' => HeaderName::Via,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'x' => HeaderName::SessionExpires,
                _ => HeaderName::Other,
            };
        }
        let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
        match name.len() {
            2 if eq(b"to") => HeaderName::To,
            3 if eq(b"via") => HeaderName::Via,
            4 if eq(b"cseq") => HeaderName::CSeq,
            4 if eq(b"from") => HeaderName::From,
            6 if eq(b"reason") => HeaderName::Reason,
            6 if eq(b"server") => HeaderName::Server,
            7 if eq(b"call-id") => HeaderName::CallId,
            7 if eq(b"contact") => HeaderName::Contact,
            10 if eq(b"user-agent") => HeaderName::UserAgent,
            12 if eq(b"content-type") => HeaderName::ContentType,
            14 if eq(b"content-length") => HeaderName::ContentLength,
            15 if eq(b"session-expires") => HeaderName::SessionExpires,
            _ => HeaderName::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_any_case() {
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"I"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"CALL-ID"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"call-Id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b"x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"X-Foo"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
    }
}
