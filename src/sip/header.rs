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
    // Read on initial INVITEs only (the leg's identity, privacy, redirection and session).
    AssertedIdentity,
    RemotePartyId,
    Privacy,
    Diversion,
    HistoryInfo,
    SessionId,
    Replaces,
    ReferredBy,
    Other,
}

impl HeaderName {
    /// The headers only an initial INVITE's record reads.
    pub fn invite_only(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            AssertedIdentity
                | RemotePartyId
                | Privacy
                | Diversion
                | HistoryInfo
                | SessionId
                | Replaces
                | ReferredBy
        )
    }

    /// The names, full and compact, of the headers only an initial INVITE's record reads.
    pub fn invite_only_names() -> impl Iterator<Item = &'static [u8]> {
        WANTED
            .iter()
            .filter(|(h, _)| h.invite_only())
            .map(|&(_, n)| n)
    }

    pub fn from_bytes(name: &[u8]) -> HeaderName {
        WANTED
            .iter()
            .find(|(_, wanted)| name.eq_ignore_ascii_case(wanted))
            .map_or(HeaderName::Other, |&(h, _)| h)
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
    /// it answers `Known` or `Other`, and answers either only when the first byte is not ASCII
    /// whitespace (so the header scan tests for the empty line only after `Unsure`).
    ///
    /// One compare finds the first `:` or LF among the 16 bytes; its offset is the name's length,
    /// which with the first two bytes picks the one wanted name the line can hold ([`slot`]), and
    /// one masked compare of that name and its colon decides.
    #[inline]
    pub(crate) fn of(rest: &[u8]) -> LineName {
        let Some(chunk) = rest.first_chunk::<16>() else {
            return LineName::Unsure;
        };
        let colon = super::scan::mask_of_either(b':', b'\n', chunk).trailing_zeros() as usize;
        let first = chunk[0];
        match chunk.get(colon) {
            Some(b':') => {
                // `slot` is `% SLOTS`, the table's length: always in bounds.
                #[allow(clippy::indexing_slicing)]
                let key = &KEYS[slot(first, chunk[1], colon)];
                // The key's mask covers its name and the colon after it: a match means the name
                // is exactly the text before this (first) colon, untrimmed.
                if (u128::from_le_bytes(*chunk) | key.fold) & key.mask == key.lower {
                    return LineName::Known(key.name, colon);
                }
                match colon.checked_sub(1).and_then(|last| chunk.get(last)) {
                    // Trimmed, the name might still be a wanted one (` Via:`, `To :`).
                    Some(&last) if is_space(first) || is_space(last) => LineName::Unsure,
                    _ => LineName::Other,
                }
            }
            // An LF before any colon: a line without a colon, or a name folded onto the next line.
            Some(_) => LineName::Unsure,
            // No colon in 16 bytes: the name, trimmed, is at least 16 bytes long and so not a
            // wanted one but `P-Asserted-Identity` (tested over 32 bytes, its colon included),
            // unless whitespace may end it within them.
            None if first | 0x20 == b'p' && LONG.may_start(rest) => match rest.get(LONG.len) {
                Some(b':') if rest.len() >= 32 => LineName::Known(LONG.name, LONG.len),
                _ => LineName::Unsure,
            },
            None if is_space(first) || is_space(chunk[15]) => LineName::Unsure,
            None => LineName::Other,
        }
    }
}

/// What [`super::message::trim`] removes.
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// The [`KEYS`] slot of a name `len` bytes long starting with `first`, `second` (`:` for a
/// one-letter name). Case-insensitive; no two wanted names share a slot (checked when `KEYS` is
/// built).
#[inline]
const fn slot(first: u8, second: u8, len: usize) -> usize {
    // `as`: widening (`usize::from` is not `const`).
    ((first | 0x20) as usize ^ ((second | 0x20) as usize ^ len) << 2) % SLOTS
}

const SLOTS: usize = 128;

/// Every name of the wanted headers, full and compact, lowercase: the one list both
/// [`HeaderName::from_bytes`] and [`KEYS`] are made from.
const WANTED: [(HeaderName, &[u8]); 29] = [
    (HeaderName::CallId, b"call-id"),
    (HeaderName::CallId, b"i"),
    (HeaderName::CSeq, b"cseq"),
    (HeaderName::From, b"from"),
    (HeaderName::From, b"f"),
    (HeaderName::To, b"to"),
    (HeaderName::To, b"t"),
    (HeaderName::Via, b"via"),
    (HeaderName::Via, b"v"),
    (HeaderName::Contact, b"contact"),
    (HeaderName::Contact, b"m"),
    (HeaderName::ContentLength, b"content-length"),
    (HeaderName::ContentLength, b"l"),
    (HeaderName::ContentType, b"content-type"),
    (HeaderName::ContentType, b"c"),
    (HeaderName::UserAgent, b"user-agent"),
    (HeaderName::Server, b"server"),
    (HeaderName::Reason, b"reason"),
    (HeaderName::SessionExpires, b"session-expires"),
    (HeaderName::SessionExpires, b"x"),
    (HeaderName::AssertedIdentity, b"p-asserted-identity"),
    (HeaderName::RemotePartyId, b"remote-party-id"),
    (HeaderName::Privacy, b"privacy"),
    (HeaderName::Diversion, b"diversion"),
    (HeaderName::HistoryInfo, b"history-info"),
    (HeaderName::SessionId, b"session-id"),
    (HeaderName::Replaces, b"replaces"),
    (HeaderName::ReferredBy, b"referred-by"),
    (HeaderName::ReferredBy, b"b"),
];

/// Every wanted name in its [`slot`]; the other slots never match.
static KEYS: [Key; SLOTS] = keys();

// Only evaluated at compile time (`KEYS`): an index out of bounds, or two names in one slot, would
// be a build error, never a panic at run time.
#[allow(clippy::indexing_slicing)]
const fn keys() -> [Key; SLOTS] {
    let mut keys = [Key::NONE; SLOTS];
    let mut i = 0;
    while i < WANTED.len() {
        let (name, lower) = WANTED[i];
        if lower.len() >= 16 {
            // Too long for one 16-byte load: `LONG`.
            i += 1;
            continue;
        }
        let second = if lower.len() > 1 { lower[1] } else { b':' };
        let at = slot(lower[0], second, lower.len());
        assert!(keys[at].mask == 0, "two wanted names share a slot");
        keys[at] = Key::new(name, lower);
        i += 1;
    }
    keys
}

/// The one wanted name of 16 bytes or more, as two 16-byte words.
static LONG: LongKey = LongKey::new(HeaderName::AssertedIdentity, b"p-asserted-identity");

/// [`Key`] for a name of 16 to 30 bytes, without its colon: the same test on each half of a
/// 32-byte load.
struct LongKey {
    name: HeaderName,
    /// The name's length: where its colon must be.
    len: usize,
    lower: [u128; 2],
    fold: [u128; 2],
    mask: [u128; 2],
}

impl LongKey {
    // Only evaluated at compile time (`LONG`): an index out of bounds would be a build error.
    #[allow(clippy::indexing_slicing)]
    const fn new(name: HeaderName, lower_name: &[u8]) -> LongKey {
        let len = lower_name.len();
        assert!(len >= 16 && len < 31);
        let (mut lower, mut fold, mut mask) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        let mut i = 0;
        while i < len {
            let b = lower_name[i];
            assert!(!b.is_ascii_uppercase() && b != b':' && b != b'\n' && !b.is_ascii_whitespace());
            lower[i] = b;
            fold[i] = if b.is_ascii_lowercase() { 0x20 } else { 0 };
            mask[i] = 0xff;
            i += 1;
        }
        LongKey {
            name,
            len,
            lower: halves(&lower),
            fold: halves(&fold),
            mask: halves(&mask),
        }
    }

    /// Whether `rest` may start with the name: it does, in any case, or it is too short to tell.
    #[inline]
    fn may_start(&self, rest: &[u8]) -> bool {
        let Some(wide) = rest.first_chunk::<32>() else {
            return true;
        };
        let [lo, hi] = halves(wide);
        (lo | self.fold[0]) & self.mask[0] == self.lower[0]
            && (hi | self.fold[1]) & self.mask[1] == self.lower[1]
    }
}

/// 32 bytes as two little-endian words.
#[allow(clippy::indexing_slicing)] // constant indices below 32
const fn halves(b: &[u8; 32]) -> [u128; 2] {
    let (mut lo, mut hi) = ([0u8; 16], [0u8; 16]);
    let mut i = 0;
    while i < 16 {
        lo[i] = b[i];
        hi[i] = b[16 + i];
        i += 1;
    }
    [u128::from_le_bytes(lo), u128::from_le_bytes(hi)]
}

/// A lowercase name and the colon after it as a little-endian `u128`, for a case-insensitive
/// prefix test in three operations: `(word | fold) & mask == lower`. `fold` sets the 0x20 bit on
/// the name's letters only, so `C` and `c` both match `c` but CR (0x0D) does not match `-` (0x2D).
struct Key {
    name: HeaderName,
    lower: u128,
    fold: u128,
    mask: u128,
}

impl Key {
    /// An empty slot: `x & 0 != 1` for every line.
    const NONE: Key = Key {
        name: HeaderName::Other,
        lower: 1,
        fold: 0,
        mask: 0,
    };

    // Only evaluated at compile time (the `KEYS` table): an index out of bounds would be a build
    // error, never a panic at run time.
    #[allow(clippy::indexing_slicing)]
    const fn new(name: HeaderName, lower_name: &[u8]) -> Key {
        assert!(!lower_name.is_empty() && lower_name.len() < 16);
        let len = lower_name.len();
        let mut key = Key {
            name,
            lower: (b':' as u128) << (8 * len),
            fold: 0,
            mask: u128::MAX >> (8 * (15 - len)),
        };
        let mut i = 0;
        while i < len {
            let b = lower_name[i];
            assert!(!b.is_ascii_uppercase() && b != b':' && b != b'\n' && !b.is_ascii_whitespace());
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
            (b"P-Asserted-Identity: <sip:1@h>", AssertedIdentity),
            (b"p-asserted-IDENTITY:<sip:1@h>", AssertedIdentity),
            (b"Remote-Party-ID: 1", RemotePartyId),
            (b"Privacy: id", Privacy),
            (b"Diversion: 1", Diversion),
            (b"History-Info: 1", HistoryInfo),
            (b"Session-ID: 1", SessionId),
            (b"Replaces: 1", Replaces),
            (b"Referred-By: 1", ReferredBy),
            (b"b: 1", ReferredBy),
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
            b"P-Asserted-Identitx: x", // no colon in the first 16 bytes
            b"P-Preferred-Identity: x",
            b"Session-Expiresx: 1",
            b"Via\x00: 1",     // NUL where the key has no byte
            b"Call-ID\x0b: 1", // VT is not trimmed
            b"Call ID: 1",
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
            b"Via",               // then CR LF: a line without a colon
            b"Session-Expires :", // the colon past the 16 bytes, whitespace before it
            b"Content-Length  : 1",
            b"Call-ID \t\r\x0c   : 1",
            b"P-Asserted-Identity : 1", // the long name, then whitespace
            b"P-Asserted-Identity\n folded",
        ] {
            assert_eq!(of(text), LineName::Unsure, "{text:?}");
        }
        // Too short for the 32-byte load that tests the long name.
        assert_eq!(
            LineName::of(b"P-Asserted-Identity: 1\r\n"),
            LineName::Unsure
        );
        assert_eq!(
            LineName::of(b"P-Xsserted-Identity: 1\r\n"),
            LineName::Unsure
        );
        assert_eq!(LineName::of(b"Via: 1\r\n\r\n"), LineName::Unsure);
        assert_eq!(LineName::of(b""), LineName::Unsure);
    }

    /// Every wanted name, `:` and padding, with each byte in turn (the colon's too, and the two
    /// after it) replaced by every value: wherever `LineName::of` decides, it decides as the scan.
    #[test]
    fn every_single_byte_change_of_a_wanted_name() {
        for (_, name) in WANTED {
            let mut line = name.to_vec();
            line.extend_from_slice(b": value that is long enough\r\n");
            for at in 0..name.len() + 3 {
                for b in 0..=255 {
                    let mut changed = line.clone();
                    changed[at] = b;
                    let scan = by_scan(&changed);
                    let of = LineName::of(&changed);
                    if of != LineName::Unsure {
                        assert!(!changed[0].is_ascii_whitespace(), "{changed:?}");
                    }
                    match of {
                        LineName::Known(n, colon) => {
                            assert_eq!(n, scan, "{changed:?}");
                            assert_eq!(changed[colon], b':', "{changed:?}");
                            assert!(!changed[..colon].contains(&b'\n'), "{changed:?}");
                            assert!(!changed[..colon].contains(&b':'), "{changed:?}");
                        }
                        LineName::Other => assert_eq!(scan, HeaderName::Other, "{changed:?}"),
                        LineName::Unsure => {}
                    }
                }
            }
        }
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
                " via", "\tcall-id", "\r", "\n", "\rto", "\x0cp-asserted-identity",
                "p-asserted-identity", "p-asserted-identit", "p-asserted-identityy", "privacy",
                "history-info", "b", "referred-by", "remote-party-id", "diversion", "session-id",
                "replaces",
            ]),
            upper in proptest::collection::vec(proptest::bool::ANY, 16),
            sep in proptest::sample::select(vec![":", " :", "\t:", "\r:", "\x0c:", "\n", "-:", "x", "\r\n :", "\x00:", "\x0b:", "   \t :", "s:"]),
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
            let of = LineName::of(&line);
            if of != LineName::Unsure {
                proptest::prop_assert!(!line[0].is_ascii_whitespace());
            }
            match of {
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
