//! Header names: the ones the tracker reads, by full or compact form (RFC 3261 7.3.3, RFC 4028
//! `x`), compared ASCII case-insensitively. Every other name is `Other`.
//!
//! Two ways in: [`HeaderName::from_bytes`] classifies a name already cut out of its line, and
//! [`LineName::of`] classifies the start of a header line straight from one 16-byte load, without
//! first scanning for the colon (the header scan's hot path).

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
        if let [c] = name {
            return match c.to_ascii_lowercase() {
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

/// What the start of a header line says about its name, read from one 16-byte load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineName {
    /// A wanted name, any case, directly followed by the colon at this offset (`Via:`, `i:`).
    Known(HeaderName, usize),
    /// The name is `Other`, whatever the rest of the line holds.
    Other,
    /// Cannot tell without scanning the line: whitespace before the name or between a wanted name
    /// and what follows it, or fewer than 16 bytes left.
    Unsure,
}

impl LineName {
    /// Classifies the line at the start of `rest` (which need not end with the line). Agrees with
    /// [`HeaderName::from_bytes`] on the trimmed text before the line's first `:` or LF whenever
    /// it answers `Known` or `Other`.
    #[inline]
    pub(crate) fn of(rest: &[u8]) -> LineName {
        let Some(chunk) = rest.first_chunk::<16>() else {
            return LineName::Unsure;
        };
        if chunk[0].is_ascii_whitespace() {
            return LineName::Unsure;
        }
        let word = u128::from_le_bytes(*chunk);
        for key in candidates(chunk[0]) {
            if (word | key.fold) & key.mask != key.lower {
                continue;
            }
            // The line starts with this name; the byte after it decides. Names are at most 15
            // bytes long, so it is in the chunk.
            match chunk.get(key.len) {
                Some(b':') => return LineName::Known(key.name, key.len),
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') => return LineName::Unsure,
                _ => {} // a longer name (`Via-X`, `Fromage`, `To2`)
            }
        }
        LineName::Other
    }
}

/// The wanted names a line may start with, by its first byte.
fn candidates(first: u8) -> &'static [Key] {
    // `| 0x20` lowercases letters; a byte that is not a letter cannot become one.
    match first | 0x20 {
        b'c' => &C,
        b'f' => &F,
        b't' => &T,
        b'v' => &V,
        b'i' => &I,
        b'm' => &M,
        b'l' => &L,
        b's' => &S,
        b'u' => &U,
        b'r' => &R,
        b'x' => &X,
        _ => &[],
    }
}

// Most frequent first; the order does not change the result (see `LineName::of`).
const C: [Key; 6] = [
    Key::new(HeaderName::CallId, b"call-id"),
    Key::new(HeaderName::CSeq, b"cseq"),
    Key::new(HeaderName::Contact, b"contact"),
    Key::new(HeaderName::ContentLength, b"content-length"),
    Key::new(HeaderName::ContentType, b"content-type"),
    Key::new(HeaderName::ContentType, b"c"),
];
const F: [Key; 2] = [
    Key::new(HeaderName::From, b"from"),
    Key::new(HeaderName::From, b"f"),
];
const T: [Key; 2] = [
    Key::new(HeaderName::To, b"to"),
    Key::new(HeaderName::To, b"t"),
];
const V: [Key; 2] = [
    Key::new(HeaderName::Via, b"via"),
    Key::new(HeaderName::Via, b"v"),
];
const I: [Key; 1] = [Key::new(HeaderName::CallId, b"i")];
const M: [Key; 1] = [Key::new(HeaderName::Contact, b"m")];
const L: [Key; 1] = [Key::new(HeaderName::ContentLength, b"l")];
const S: [Key; 2] = [
    Key::new(HeaderName::Server, b"server"),
    Key::new(HeaderName::SessionExpires, b"session-expires"),
];
const U: [Key; 1] = [Key::new(HeaderName::UserAgent, b"user-agent")];
const R: [Key; 1] = [Key::new(HeaderName::Reason, b"reason")];
const X: [Key; 1] = [Key::new(HeaderName::SessionExpires, b"x")];

/// A lowercase name as a little-endian `u128`, for a case-insensitive prefix test in three
/// operations: `(word | fold) & mask == lower`. `fold` sets the 0x20 bit on the name's letters
/// only, so `C` and `c` both match `c` but CR (0x0D) does not match `-` (0x2D).
struct Key {
    name: HeaderName,
    len: usize,
    lower: u128,
    fold: u128,
    mask: u128,
}

impl Key {
    // Only evaluated at compile time (the `const` tables above): an index out of bounds would be
    // a build error, never a panic at run time.
    #[allow(clippy::indexing_slicing)]
    const fn new(name: HeaderName, lower_name: &[u8]) -> Key {
        assert!(!lower_name.is_empty() && lower_name.len() < 16);
        let mut key = Key {
            name,
            len: lower_name.len(),
            lower: 0,
            fold: 0,
            mask: (1 << (8 * lower_name.len())) - 1,
        };
        let mut i = 0;
        while i < lower_name.len() {
            let b = lower_name[i];
            assert!(!b.is_ascii_uppercase());
            key.lower |= (b as u128) << (8 * i);
            if b.is_ascii_lowercase() {
                key.fold |= 0x20 << (8 * i);
            }
            i += 1;
        }
        key
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

    /// What `LineName::of` must agree with: the trimmed text before the first `:` or LF.
    fn by_scan(line: &[u8]) -> HeaderName {
        let end = line
            .iter()
            .position(|&b| b == b':' || b == b'\n')
            .unwrap_or(line.len());
        HeaderName::from_bytes(crate::sip::message::trim(&line[..end]))
    }

    /// `line` padded so that the 16-byte load always fits.
    fn of(line: &[u8]) -> LineName {
        let mut padded = line.to_vec();
        padded.extend_from_slice(b"\r\nX-Pad: 0123456789abcdef");
        LineName::of(&padded)
    }

    #[test]
    fn line_names_of_every_wanted_length_and_case() {
        use HeaderName::*;
        for (text, name) in [
            (&b"i: 1"[..], CallId),
            (b"F: 1", From),
            (b"t:1", To),
            (b"v: 1", Via),
            (b"m: 1", Contact),
            (b"l: 1", ContentLength),
            (b"c: 1", ContentType),
            (b"x: 1", SessionExpires),
            (b"TO: 1", To),
            (b"vIa: 1", Via),
            (b"CSeq: 1", CSeq),
            (b"fRoM: 1", From),
            (b"Reason: 1", Reason),
            (b"SERVER: 1", Server),
            (b"Call-ID: 1", CallId),
            (b"contact: 1", Contact),
            (b"User-Agent: 1", UserAgent),
            (b"Content-Type: 1", ContentType),
            (b"Content-Length: 1", ContentLength),
            (b"Session-Expires: 1", SessionExpires),
        ] {
            let colon = text.iter().position(|&b| b == b':').unwrap();
            assert_eq!(of(text), LineName::Known(name, colon), "{text:?}");
            assert_eq!(by_scan(text), name, "{text:?}");
        }
    }

    #[test]
    fn line_names_that_only_start_like_a_wanted_one_are_other() {
        for text in [
            &b"Via-X: 1"[..],
            b"Fromage: 1",
            b"To2: 1",
            b"Call-IDs: 1",
            b"Call-I: 1",
            b"Content-Lengths: 1",
            b"Session-Expiress: 1",
            b"Max-Forwards: 70",
            b"Supported: timer",
            b"Allow: INVITE",
            b"ix: 1",
            b": no name",
            b"Call\rID: 1", // CR must not match '-'
            b"Call\x0dID: 1",
            b"\xc3\xa4: 1",
        ] {
            assert_eq!(of(text), LineName::Other, "{text:?}");
            assert_eq!(by_scan(text), HeaderName::Other, "{text:?}");
        }
    }

    #[test]
    fn whitespace_or_a_short_rest_needs_the_scan() {
        for text in [
            &b" Via: 1"[..],
            b"\tVia: 1",
            b"\rVia: 1",
            b"Via : 1",
            b"Via\t: 1",
            b"i\r: 1",
            b"To\x0c: 1",
            b"Call-ID\n folded",
            b"Via", // then CR LF: a line without a colon
        ] {
            assert_eq!(of(text), LineName::Unsure, "{text:?}");
        }
        assert_eq!(LineName::of(b"Via: 1\r\n\r\n"), LineName::Unsure);
        assert_eq!(LineName::of(b""), LineName::Unsure);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        /// Whenever `LineName::of` decides, it decides as the scan does.
        #[test]
        fn line_name_agrees_with_the_scan(
            name in proptest::sample::select(vec![
                "i", "f", "t", "v", "m", "l", "c", "x", "s", "to", "via", "cseq", "from", "reason",
                "server", "call-id", "contact", "user-agent", "content-type", "content-length",
                "session-expires", "Via-X", "Fromage", "To2", "max-forwards", "call-info", "",
            ]),
            upper in proptest::collection::vec(proptest::bool::ANY, 16),
            sep in proptest::sample::select(vec![":", " :", "\t:", "\r:", "\x0c:", "\n", "-:", "x", "\r\n :"]),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
        ) {
            let mut line: Vec<u8> = name
                .bytes()
                .zip(&upper)
                .map(|(b, &u)| if u { b.to_ascii_uppercase() } else { b })
                .collect();
            line.extend_from_slice(sep.as_bytes());
            line.extend_from_slice(&rest);
            let scan = by_scan(&line);
            match LineName::of(&line) {
                LineName::Known(n, colon) => {
                    proptest::prop_assert_eq!(n, scan);
                    proptest::prop_assert_eq!(line.iter().position(|&b| b == b':' || b == b'\n'), Some(colon));
                    proptest::prop_assert_eq!(line[colon], b':');
                }
                LineName::Other => proptest::prop_assert_eq!(scan, HeaderName::Other),
                LineName::Unsure => {}
            }
        }
    }
}
