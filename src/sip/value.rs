//! Header values, parsed on demand: name-addr (display name, URI, tag), URI user part, CSeq,
//! Via branch, Reason cause, delta-seconds. All return views and never panic.

use super::Method;
use super::message::{parse_u32, trim};
use super::scan::find;
use std::borrow::Cow;

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, P-Asserted-Identity …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written, quotes included.
    pub display: &'a [u8],
    pub uri: &'a [u8],
    /// Header parameters after the URI, starting at the first `;` (or empty).
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    // In bounds: `search_from` <= len (closing_quote), `lt`, `gt`, `sc` found by `find` in the slice they index.
    #[allow(clippy::indexing_slicing)]
    pub fn parse(v: &'a [u8]) -> NameAddr<'a> {
        let v = trim(v);
        // Skip a quoted display name first: it may contain '<' or ';'.
        let quoted_end = if v.first() == Some(&b'"') {
            closing_quote(v)
        } else {
            Some(0)
        };
        let Some(search_from) = quoted_end else {
            // Unterminated quote: all of it is display name.
            return NameAddr {
                display: v,
                uri: &[],
                params: &[],
            };
        };
        match find(b'<', &v[search_from..]).map(|i| i + search_from) {
            Some(lt) => {
                let inner = &v[lt + 1..];
                let (uri, params) = match find(b'>', inner) {
                    Some(gt) => (&inner[..gt], &inner[gt + 1..]),
                    None => (inner, &[][..]),
                };
                NameAddr {
                    display: trim(&v[..lt]),
                    uri: trim(uri),
                    params: trim(params),
                }
            }
            None => {
                let (uri, params) = match find(b';', v) {
                    Some(sc) => (&v[..sc], &v[sc..]),
                    None => (v, &[][..]),
                };
                NameAddr {
                    display: &[],
                    uri: trim(uri),
                    params,
                }
            }
        }
    }

    pub fn tag(&self) -> Option<&'a [u8]> {
        param(self.params, b"tag")
    }

    /// The display name without quotes and backslash escapes, whitespace folded, lossy UTF-8.
    /// Borrows when nothing needs changing (the usual case).
    pub fn display_name(&self) -> Cow<'a, [u8]> {
        let d = self.display;
        let quoted = d.first() == Some(&b'"');
        let inner = match d {
            [b'"', rest @ ..] => rest.strip_suffix(b"\"").unwrap_or(rest),
            _ => d,
        };
        if !quoted || !inner.contains(&b'\\') {
            return fold_ws(inner);
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut escaped = false;
        for &b in inner {
            if escaped {
                out.push(b);
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else {
                out.push(b);
            }
        }
        Cow::Owned(fold_ws(&out).into_owned())
    }
}

/// Index just past the closing quote of the quoted string `v` starts with.
// In bounds: `v[i]` only while `i < v.len()`.
#[allow(clippy::indexing_slicing)]
fn closing_quote(v: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < v.len() {
        // The next quote or backslash, searched for 16 bytes at a time where there are 16.
        if let Some(chunk) = v.get(i..).and_then(<[u8]>::first_chunk::<16>) {
            let m = super::scan::mask_of_either(b'"', b'\\', chunk);
            if m == 0 {
                i += 16;
                continue;
            }
            i += m.trailing_zeros() as usize;
        }
        match v[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Value of the `;name=value` parameter in `params` (name compared case-insensitively). A
/// parameter without `=` gives an empty value.
// In bounds: `eq` is found by `find` in `p`.
#[allow(clippy::indexing_slicing)]
pub fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    params
        .split(|&b| b == b';')
        .skip_while(|p| p.is_empty())
        .find_map(|p| {
            let (n, v) = match find(b'=', p) {
                Some(eq) => (&p[..eq], &p[eq + 1..]),
                None => (p, &[][..]),
            };
            let n = trim(n);
            // Exact bytes first: names are nearly always written in lower case.
            (n == name || n.eq_ignore_ascii_case(name)).then(|| trim(v))
        })
}

/// The user part of a `sip:`/`sips:` URI (empty when it has none), or the number of a `tel:` URI.
// In bounds: each prefix is sliced off only after `lower_starts` checked the length; `at` and `;` come from `find` in the slice.
#[allow(clippy::indexing_slicing)]
pub fn uri_user(uri: &[u8]) -> &[u8] {
    let lower_starts = |p: &[u8]| uri.len() >= p.len() && uri[..p.len()].eq_ignore_ascii_case(p);
    if lower_starts(b"tel:") {
        let rest = &uri[4..];
        return &rest[..find(b';', rest).unwrap_or(rest.len())];
    }
    let rest = if lower_starts(b"sip:") {
        &uri[4..]
    } else if lower_starts(b"sips:") {
        &uri[5..]
    } else {
        return &[];
    };
    match find(b'@', rest) {
        Some(at) => &rest[..at],
        None => &[],
    }
}

/// `CSeq: 4711 INVITE` → (4711, INVITE).
// In bounds: `digits` < `v.len()` (the byte there was read).
#[allow(clippy::indexing_slicing)]
pub fn cseq(v: &[u8]) -> Option<(u32, Method<'_>)> {
    // The number is the digits before the first whitespace, and must be all of them: one walk
    // over the digits, which must end at whitespace (~135 -> ~60 instructions a CSeq from a
    // search for the whitespace, then `parse_u32` trimming and checking the digits again).
    let v = trim(v);
    let mut n = 0u64;
    let mut digits = 0;
    while let Some(d) = v.get(digits).filter(|d| d.is_ascii_digit()) {
        n = n * 10 + u64::from(d - b'0');
        digits += 1;
        if digits > 10 {
            return None;
        }
    }
    if digits == 0 || !v.get(digits)?.is_ascii_whitespace() {
        return None;
    }
    // Trimmed at the end already.
    let method = v[digits..].trim_ascii_start();
    Some((u32::try_from(n).ok()?, Method::from_bytes(method)))
}

/// The branch parameter of the top Via entry.
// In bounds: both offsets come from `find` in the slice they cut.
#[allow(clippy::indexing_slicing)]
pub fn via_branch(via: &[u8]) -> Option<&[u8]> {
    let top = &via[..find(b',', via).unwrap_or(via.len())];
    let params = &top[find(b';', top)?..];
    param(params, b"branch")
}

/// The cause of a `Reason: Q.850;cause=16;text="…"` value (other protocols are skipped).
// In bounds: `sc` comes from `find` in `entry`.
#[allow(clippy::indexing_slicing)]
pub fn q850_cause(reason: &[u8]) -> Option<u16> {
    reason.split(|&b| b == b',').find_map(|entry| {
        let sc = find(b';', entry)?;
        if !trim(&entry[..sc]).eq_ignore_ascii_case(b"Q.850") {
            return None;
        }
        let n = parse_u32(param(&entry[sc..], b"cause")?)?;
        u16::try_from(n).ok()
    })
}

/// Leading delta-seconds of a value such as `Session-Expires: 1800;refresher=uac`.
// In bounds: the `;` comes from `find` in `v`.
#[allow(clippy::indexing_slicing)]
pub fn delta_seconds(v: &[u8]) -> Option<u32> {
    parse_u32(&v[..find(b';', v).unwrap_or(v.len())])
}

/// The session key of an RFC 7989 `Session-ID: <local-uuid>[;remote=<uuid>]` value: the
/// sender's UUID (32 hex digits), lowercased. The null UUID means "not yet known": `None`.
pub fn session_id_key(v: &[u8]) -> Option<[u8; 32]> {
    let uuid = trim(v.split(|&b| b == b';').next().unwrap_or_default());
    let hex: [u8; 32] = uuid.try_into().ok()?;
    if !hex.iter().all(u8::is_ascii_hexdigit) || hex.iter().all(|&b| b == b'0') {
        return None;
    }
    Some(hex.map(|b| b.to_ascii_lowercase()))
}

/// The Call-ID of an RFC 3891 `Replaces: <call-id>;to-tag=…;from-tag=…` value.
pub fn replaces_call_id(v: &[u8]) -> Option<&[u8]> {
    let id = trim(v.split(|&b| b == b';').next().unwrap_or_default());
    (!id.is_empty()).then_some(id)
}

/// The redirecting number of an RFC 7044 `History-Info` value (all entries, comma separated):
/// the user of the last entry that was retargeted (its URI carries a `cause` parameter, RFC
/// 4458), else of the entry before the last.
pub fn history_info_redirect(v: &[u8]) -> Option<&[u8]> {
    let entries: Vec<&[u8]> = split_entries(v).collect();
    let cause = |e: &&[u8]| {
        let uri = NameAddr::parse(e).uri;
        uri.windows(6).any(|w| w.eq_ignore_ascii_case(b"cause="))
    };
    let e = match entries.iter().rposition(cause) {
        Some(i) => entries.get(i)?,
        None if entries.len() >= 2 => entries.get(entries.len() - 2)?,
        None => return None,
    };
    let user = uri_user(NameAddr::parse(e).uri);
    (!user.is_empty()).then_some(user)
}

/// The entries of a comma-separated header value, commas inside quotes and `<…>` ignored.
pub fn split_entries(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = v;
    std::iter::from_fn(move || {
        let (mut quoted, mut angle) = (false, false);
        let mut i = 0;
        while let Some(&b) = rest.get(i) {
            match b {
                b'"' => quoted = !quoted,
                b'\\' if quoted => i += 1,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => break,
                _ => {}
            }
            i += 1;
        }
        let i = i.min(rest.len());
        let entry = trim(rest.get(..i).unwrap_or_default());
        rest = rest.get(i + 1..).unwrap_or_default();
        (!entry.is_empty() || !rest.is_empty()).then_some(entry)
    })
    .filter(|e| !e.is_empty())
}

/// The first entry of [`split_entries`] (empty when there is none); a value without a comma, as
/// nearly every identity header is, is its one entry without the walk.
pub fn first_entry(v: &[u8]) -> &[u8] {
    if find(b',', v).is_none() {
        return trim(v);
    }
    split_entries(v).next().unwrap_or_default()
}

/// `String::from_utf8_lossy`, validated first with `std::str::from_utf8`, which checks ASCII a
/// word at a time (`from_utf8_lossy` walks byte by byte). Same result.
pub fn lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// The bytes of [`lossy`]: `b` itself when it is ASCII, as nearly every value from the wire is,
/// else `String::from_utf8_lossy`'s (borrowed when `b` is UTF-8 already). The ASCII test reads a
/// word at a time with no set-up, where `std::str::from_utf8` spent ~100 instructions on each
/// short value (callgrind: 2.5 % of an all-SIP run, ten values per leg). The leg's text columns
/// take these and are checked as UTF-8 once, together ([`crate::cdr::LegText::new`]).
pub fn text(b: &[u8]) -> Cow<'_, [u8]> {
    if b.is_ascii() {
        return Cow::Borrowed(b);
    }
    match lossy(b) {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// [`text`] with every run of whitespace (folded lines included) made one space. Borrows when
/// nothing needs changing.
pub fn fold_ws(b: &[u8]) -> Cow<'_, [u8]> {
    let s = text(trim(b));
    // The whitespace `str::split_ascii_whitespace` splits at: SP, HT, LF, FF, CR.
    if !super::scan::has_ws_to_fold(&s) {
        return s;
    }
    let words = s.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty());
    Cow::Owned(words.collect::<Vec<_>>().join(&b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_is_from_utf8_lossy() {
        for b in [
            &b""[..],
            b"plain ascii",
            b"\xc3\xa9t\xc3\xa9",
            b"\xe9t\xe9",
            b"a\xffb\xc3",
            b"\xf0\x9f\x98\x80 ok",
        ] {
            assert_eq!(lossy(b), String::from_utf8_lossy(b));
            // `text`: the same bytes, borrowed unless they had to change.
            let t = text(b);
            assert_eq!(&*t, String::from_utf8_lossy(b).as_bytes());
            assert_eq!(
                matches!(t, Cow::Borrowed(_)),
                std::str::from_utf8(b).is_ok()
            );
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            b"\"Alice \\\"A\\\" <x>\" <sip:alice@atlanta.com;user=phone>;tag=88sja8x",
        );
        assert_eq!(&*n.display_name(), b"Alice \"A\" <x>");
        assert_eq!(n.uri, b"sip:alice@atlanta.com;user=phone");
        assert_eq!(n.tag(), Some(&b"88sja8x"[..]));
        let n = NameAddr::parse(b"sip:+4930123@carrier.net;tag=abc;foo");
        assert_eq!(n.uri, b"sip:+4930123@carrier.net");
        assert_eq!(n.tag(), Some(&b"abc"[..]));
        assert_eq!(&*n.display_name(), b"");
        let n = NameAddr::parse(b"Bob   Smith <sip:bob@b>");
        assert_eq!(&*n.display_name(), b"Bob Smith");
        assert_eq!(n.tag(), None);
        let n = NameAddr::parse(b"\"never closed <sip:x@y>;tag=1");
        assert_eq!(n.uri, b"");
        let n = NameAddr::parse(b"<sip:x@y");
        assert_eq!(n.uri, b"sip:x@y");
    }

    #[test]
    fn uri_users() {
        assert_eq!(uri_user(b"sip:1001@10.0.0.1:5060;transport=udp"), b"1001");
        assert_eq!(uri_user(b"SIPS:bob@b"), b"bob");
        assert_eq!(uri_user(b"sip:10.0.0.1"), b"");
        assert_eq!(
            uri_user(b"tel:+1-201-555-0123;phone-context=x"),
            b"+1-201-555-0123"
        );
        assert_eq!(uri_user(b"mailto:x@y"), b"");
        assert_eq!(uri_user(b""), b"");
    }

    #[test]
    fn cseq_via_reason_expires() {
        assert_eq!(cseq(b"4711 INVITE"), Some((4711, Method::Invite)));
        assert_eq!(cseq(b" 2   BYE "), Some((2, Method::Bye)));
        assert_eq!(cseq(b"x INVITE"), None);
        assert_eq!(cseq(b"99999999999 INVITE"), None);
        assert_eq!(
            via_branch(b"SIP/2.0/UDP h:5060;rport;branch=z9hG4bK-1, SIP/2.0/UDP g;branch=2"),
            Some(&b"z9hG4bK-1"[..])
        );
        assert_eq!(via_branch(b"SIP/2.0/UDP h"), None);
        assert_eq!(
            q850_cause(b"SIP;cause=200;text=\"x\", Q.850 ;cause=17;text=\"busy\""),
            Some(17)
        );
        assert_eq!(q850_cause(b"Q.850;text=\"no cause\""), None);
        assert_eq!(delta_seconds(b"1800;refresher=uac"), Some(1800));
        assert_eq!(delta_seconds(b"soon"), None);
    }

    #[test]
    fn params_are_case_insensitive() {
        assert_eq!(param(b";TAG=x;lr", b"tag"), Some(&b"x"[..]));
        assert_eq!(param(b";tag=x;lr", b"lr"), Some(&b""[..]));
        assert_eq!(param(b"", b"tag"), None);
    }

    #[test]
    fn session_id_replaces_and_history_info() {
        assert_eq!(
            session_id_key(
                b"AB30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000"
            ),
            Some(*b"ab30317f1a784dc48ff824d0d3715d86")
        );
        assert_eq!(session_id_key(b"00000000000000000000000000000000"), None);
        assert_eq!(session_id_key(b"xyz"), None);
        assert_eq!(session_id_key(b"ab30317f1a784dc48ff824d0d3715d8g"), None);
        assert_eq!(
            replaces_call_id(b" 425928@bobster.example.org;to-tag=7743;from-tag=6472"),
            Some(&b"425928@bobster.example.org"[..])
        );
        assert_eq!(replaces_call_id(b";to-tag=1"), None);
        let hi = b"<sip:2002@b.example;cause=302>;index=1, \"x,y\" <sip:3003@c.example>;index=1.1";
        assert_eq!(history_info_redirect(hi), Some(&b"2002"[..]));
        let hi = b"<sip:2002@b.example>;index=1,<sip:3003@c.example>;index=1.1";
        assert_eq!(history_info_redirect(hi), Some(&b"2002"[..]));
        assert_eq!(history_info_redirect(b"<sip:2002@b>;index=1"), None);
        assert_eq!(
            split_entries(b"a, <b,c>, \"d,e\" f,,").collect::<Vec<_>>(),
            [&b"a"[..], b"<b,c>", b"\"d,e\" f"]
        );
    }

    /// The CSeq reader before its one-walk form: the number before the first whitespace, read
    /// by `parse_u32`, and the trimmed method after it.
    fn cseq_by_search(v: &[u8]) -> Option<(u32, Method<'_>)> {
        let v = trim(v);
        let sp = v.iter().position(|b| b.is_ascii_whitespace())?;
        Some((parse_u32(&v[..sp])?, Method::from_bytes(trim(&v[sp..]))))
    }

    /// The closing-quote walk before its 16-byte search: a byte at a time.
    fn closing_quote_by_bytes(v: &[u8]) -> Option<usize> {
        let mut i = 1;
        while i < v.len() {
            match v[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    }

    proptest::proptest! {
        /// Quoted strings of every length around the 16-byte steps, escapes at their ends.
        #[test]
        fn closing_quote_same_as_by_bytes(b in proptest::collection::vec(proptest::sample::select(b"\"\\aaaaaa ".to_vec()), 0..70)) {
            let mut v = vec![b'"'];
            v.extend_from_slice(&b);
            proptest::prop_assert_eq!(closing_quote(&v), closing_quote_by_bytes(&v));
        }

        /// Whatever the bytes, `cseq` reads what the search-then-parse form read.
        #[test]
        fn cseq_same_as_by_search(b in proptest::collection::vec(proptest::sample::select(b" \t\r\n0123456789INVITEBYx\x0c".to_vec()), 0..16)) {
            proptest::prop_assert_eq!(cseq(&b), cseq_by_search(&b));
        }

        /// Numbers near the limits of ten digits and of u32.
        #[test]
        fn cseq_numbers_same_as_by_search(n in proptest::prop_oneof![0u64..100, 4_294_967_000u64..4_294_967_400, 9_999_999_990u64..10_000_000_010], ws in "[ \t]{1,2}", zeros in 0usize..3) {
            let text = format!("{}{n}{ws}INVITE", "0".repeat(zeros));
            proptest::prop_assert_eq!(cseq(text.as_bytes()), cseq_by_search(text.as_bytes()));
        }

        /// Every run of whitespace one space, borrowed when the text had none to fold.
        #[test]
        fn fold_ws_joins_whitespace(b in proptest::collection::vec(proptest::prop_oneof![proptest::prelude::Just(b' '), proptest::prelude::Just(b'\t'), proptest::prelude::Just(b'\r'), proptest::prelude::Just(b'\n'), proptest::prelude::Just(0xc3u8), proptest::prelude::any::<u8>()], 0..40)) {
            let text = String::from_utf8_lossy(&b);
            let want = text.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            let got = fold_ws(&b);
            proptest::prop_assert_eq!(&*got, want.as_bytes());
            let unchanged = want.as_bytes() == trim(&b);
            proptest::prop_assert_eq!(matches!(got, Cow::Borrowed(_)), unchanged);
        }

        /// The shortcut for a value without a comma gives the walk's first entry.
        #[test]
        fn first_entry_is_the_first_of_split_entries(b in proptest::collection::vec(proptest::sample::select(b" \t,\"<>\\ab;".to_vec()), 0..24)) {
            let want = split_entries(&b).next().unwrap_or_default();
            proptest::prop_assert_eq!(first_entry(&b), want);
        }
    }
}
