//! parse(render(message)) round trip (issue #7): SIP requests and responses are generated as
//! values, rendered with arbitrary header order, name case, full or compact names (`i f t v m l
//! c x`), whitespace before and after the colon, folded lines (CRLF or LF then SP or HT), bare-LF
//! line ends and leading keep-alive CRLFs, then parsed in both framings; every accessor the
//! tracker reads must give back the generated value.

use super::value::{NameAddr, cseq, delta_seconds, fold_ws, q850_cause, uri_user, via_branch};
use super::{Framing, Message, Method, find_call_id};
use proptest::prelude::*;

/// A From or To value.
#[derive(Clone, Debug)]
struct Party {
    /// Words of a quoted display name (may hold `"` and `\`, rendered escaped).
    display: Option<Vec<String>>,
    user: String,
    host: String,
    tag: Option<String>,
    /// `sip:user@host;tag=…` without angle brackets (only without a display name).
    bare: bool,
}

impl Party {
    fn pieces(&self) -> Vec<String> {
        let tag = self
            .tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let uri = format!("sip:{}@{}", self.user, self.host);
        match &self.display {
            Some(words) => {
                let esc = |w: &String| w.replace('\\', "\\\\").replace('"', "\\\"");
                let name: Vec<String> = words.iter().map(esc).collect();
                vec![format!("\"{}\"", name.join(" ")), format!("<{uri}>{tag}")]
            }
            None if self.bare => vec![format!("{uri}{tag}")],
            None => vec![format!("<{uri}>{tag}")],
        }
    }
}

fn party() -> impl Strategy<Value = Party> {
    (
        prop::option::of(prop::collection::vec("[A-Za-z0-9\"\\\\é]{1,6}", 1..4)),
        "[a-z0-9+*#._-]{1,12}",
        "[a-z0-9]{1,8}(\\.[a-z]{2,5}){0,2}",
        prop::option::of("[A-Za-z0-9-]{1,12}"),
        any::<bool>(),
    )
        .prop_map(|(display, user, host, tag, bare)| Party {
            bare: bare && display.is_none(),
            display,
            user,
            host,
            tag,
        })
}

#[derive(Clone, Debug)]
enum Start {
    Request { method: String, user: String },
    Response { code: u16, reason: String },
}

/// A generated message: the values the accessors must return.
#[derive(Clone, Debug)]
struct Sip {
    start: Start,
    call_id: String,
    from: Party,
    to: Party,
    cseq: (u32, String),
    branch: String,
    second_via: bool,
    contact: Option<(String, String)>,
    user_agent: Option<Vec<String>>,
    session_expires: Option<u32>,
    cause: Option<u16>,
    others: Vec<(String, Vec<String>)>,
    body: String,
}

fn sip() -> impl Strategy<Value = Sip> {
    let method = prop::sample::select(vec![
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO", "REFER", "NOTIFY",
        "X-CUSTOM",
    ]);
    let start = prop_oneof![
        (method.clone(), "[a-z0-9+]{1,10}").prop_map(|(m, user)| Start::Request {
            method: m.to_string(),
            user
        }),
        (100u16..700, "[A-Za-z ]{0,20}")
            .prop_map(|(code, reason)| Start::Response { code, reason }),
    ];
    let words = || prop::collection::vec("[A-Za-z0-9/().:;=_-]{1,8}", 1..5);
    (
        (
            start,
            "[A-Za-z0-9][A-Za-z0-9.!%*_+~-]{0,15}@[a-z0-9.]{1,12}",
            party(),
            party(),
            (any::<u32>(), method),
            "[A-Za-z0-9.-]{1,16}",
            any::<bool>(),
        ),
        (
            prop::option::of(("[a-z0-9]{1,8}", "[a-z0-9.]{1,12}")),
            prop::option::of(words()),
            prop::option::of(any::<u32>()),
            prop::option::of(0u16..1000),
            prop::collection::vec(("X-[A-Za-z]{1,8}|Subject|Max-Forwards", words()), 0..4),
            "[a-z0-9=. \r\n]{0,60}",
        ),
    )
        .prop_map(
            |(
                (start, call_id, from, to, (n, m), branch, second_via),
                (contact, user_agent, session_expires, cause, others, body),
            )| Sip {
                start,
                call_id,
                from,
                to,
                cseq: (n, m.to_string()),
                branch,
                second_via,
                contact,
                user_agent,
                session_expires,
                cause,
                others,
                body,
            },
        )
}

/// How one header line is written.
#[derive(Clone, Debug)]
struct Style {
    compact: bool,
    /// Upper-case the name's n-th letter when set (cycled).
    upper: Vec<bool>,
    before_colon: &'static str,
    after_colon: &'static str,
    /// Between value pieces: fold onto a new line (else one space).
    fold: Vec<bool>,
    fold_with: &'static str,
    eol: &'static str,
    trailing: &'static str,
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 1..8),
        prop::sample::select(vec!["", "", " ", "\t"]),
        prop::sample::select(vec!["", " ", " ", "  ", "\t"]),
        prop::collection::vec(any::<bool>(), 1..6),
        prop::sample::select(vec![" ", "\t", "   "]),
        prop::sample::select(vec!["\r\n", "\r\n", "\n"]),
        prop::sample::select(vec!["", "", " ", "\t"]),
    )
        .prop_map(
            |(compact, upper, before_colon, after_colon, fold, fold_with, eol, trailing)| Style {
                compact,
                upper,
                before_colon,
                after_colon,
                fold,
                fold_with,
                eol,
                trailing,
            },
        )
}

fn render_line(out: &mut String, full: &str, compact: Option<&str>, pieces: &[String], s: &Style) {
    let name = match compact {
        Some(c) if s.compact => c,
        _ => full,
    };
    for (i, ch) in name.chars().enumerate() {
        let up = s.upper.get(i % s.upper.len()).copied().unwrap_or(false);
        out.push(if up {
            ch.to_ascii_uppercase()
        } else {
            ch.to_ascii_lowercase()
        });
    }
    out.push_str(s.before_colon);
    out.push(':');
    out.push_str(s.after_colon);
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            if s.fold.get(i % s.fold.len()).copied().unwrap_or(false) {
                out.push_str(s.eol);
                out.push_str(s.fold_with);
            } else {
                out.push(' ');
            }
        }
        out.push_str(p);
    }
    out.push_str(s.trailing);
    out.push_str(s.eol);
}

/// Renders `m`: header lines in the order `order` gives (a permutation), one style each.
fn render(m: &Sip, order: &[usize], styles: &[Style], keepalive: bool) -> String {
    let mut lines: Vec<(&str, Option<&str>, Vec<String>)> = vec![
        ("Call-ID", Some("i"), vec![m.call_id.clone()]),
        ("From", Some("f"), m.from.pieces()),
        ("To", Some("t"), m.to.pieces()),
        ("CSeq", None, vec![m.cseq.0.to_string(), m.cseq.1.clone()]),
        ("Via", Some("v"), {
            let mut v = vec![
                "SIP/2.0/UDP".into(),
                format!("192.0.2.1:5060;rport;branch={}", m.branch),
            ];
            if m.second_via {
                v.push(", SIP/2.0/TCP 198.51.100.7;branch=z9hG4bK-second".into());
            }
            v
        }),
        ("Content-Type", Some("c"), vec!["application/sdp".into()]),
        ("Content-Length", Some("l"), vec![m.body.len().to_string()]),
    ];
    if let Some((user, host)) = &m.contact {
        lines.push((
            "Contact",
            Some("m"),
            vec![format!("<sip:{user}@{host}>;expires=60")],
        ));
    }
    if let Some(words) = &m.user_agent {
        lines.push(("User-Agent", None, words.clone()));
    }
    if let Some(n) = m.session_expires {
        lines.push((
            "Session-Expires",
            Some("x"),
            vec![format!("{n};refresher=uac")],
        ));
    }
    if let Some(c) = m.cause {
        lines.push((
            "Reason",
            None,
            vec!["Q.850".into(), format!(";cause={c}"), ";text=\"x\"".into()],
        ));
    }
    for (name, words) in &m.others {
        lines.push((name, None, words.clone()));
    }
    let mut out = String::new();
    if keepalive {
        out.push_str("\r\n\r\n");
    }
    match &m.start {
        Start::Request { method, user } => {
            out.push_str(&format!("{method} sip:{user}@sipcdr.test SIP/2.0\r\n"));
        }
        Start::Response { code, reason } => out.push_str(&format!("SIP/2.0 {code} {reason}\r\n")),
    }
    let mut idx: Vec<usize> = (0..lines.len()).collect();
    idx.sort_by_key(|&i| order.get(i).copied().unwrap_or(i));
    for (k, i) in idx.into_iter().enumerate() {
        let (full, compact, pieces) = &lines[i];
        render_line(&mut out, full, *compact, pieces, &styles[k % styles.len()]);
    }
    out.push_str("\r\n");
    out.push_str(&m.body);
    out
}

fn check_party(v: Option<&[u8]>, p: &Party) -> Result<(), TestCaseError> {
    let n = NameAddr::parse(v.ok_or_else(|| TestCaseError::fail("header missing"))?);
    let uri = format!("sip:{}@{}", p.user, p.host);
    prop_assert_eq!(n.uri, uri.as_bytes());
    prop_assert_eq!(uri_user(n.uri), p.user.as_bytes());
    prop_assert_eq!(n.tag(), p.tag.as_deref().map(str::as_bytes));
    let display = p.display.as_ref().map(|w| w.join(" ")).unwrap_or_default();
    prop_assert_eq!(&*n.display_name(), display.as_bytes());
    Ok(())
}

fn check(m: &Message<'_>, g: &Sip) -> Result<(), TestCaseError> {
    match &g.start {
        Start::Request { method, user } => {
            prop_assert_eq!(m.method(), Some(Method::from_bytes(method.as_bytes())));
            let uri = m.request_uri().unwrap_or_default();
            prop_assert_eq!(uri_user(uri), user.as_bytes());
            prop_assert_eq!(m.status(), None);
        }
        Start::Response { code, .. } => {
            prop_assert_eq!(m.status(), Some(*code));
            prop_assert_eq!(m.method(), None);
        }
    }
    prop_assert_eq!(m.call_id, Some(g.call_id.as_bytes()));
    check_party(m.from, &g.from)?;
    check_party(m.to, &g.to)?;
    prop_assert_eq!(
        m.cseq.and_then(cseq),
        Some((g.cseq.0, Method::from_bytes(g.cseq.1.as_bytes())))
    );
    prop_assert_eq!(m.via.and_then(via_branch), Some(g.branch.as_bytes()));
    let content_type = m.content_type.map(fold_ws);
    prop_assert_eq!(content_type.as_deref(), Some(&b"application/sdp"[..]));
    match &g.contact {
        Some((user, host)) => {
            let c = NameAddr::parse(m.contact.unwrap_or_default());
            let uri = format!("sip:{user}@{host}");
            prop_assert_eq!(c.uri, uri.as_bytes());
        }
        None => prop_assert_eq!(m.contact, None),
    }
    prop_assert_eq!(
        m.user_agent.map(|v| fold_ws(v).into_owned()),
        g.user_agent.as_ref().map(|w| w.join(" ").into_bytes())
    );
    prop_assert_eq!(m.session_expires.and_then(delta_seconds), g.session_expires);
    prop_assert_eq!(m.reason.and_then(q850_cause), g.cause);
    prop_assert_eq!(m.reasons().count(), usize::from(g.cause.is_some()));
    prop_assert_eq!(m.body, g.body.as_bytes());
    prop_assert!(!m.truncated);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn parse_render_round_trips(
        g in sip(),
        order in prop::collection::vec(any::<u16>(), 16),
        styles in prop::collection::vec(style(), 1..6),
        keepalive in any::<bool>(),
    ) {
        let order: Vec<usize> = order.into_iter().map(usize::from).collect();
        let text = render(&g, &order, &styles, keepalive);
        let bytes = text.as_bytes();
        prop_assert_eq!(find_call_id(bytes), Some(g.call_id.as_bytes()), "{}", text);
        let m = Message::parse(bytes, Framing::Datagram)
            .map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;
        check(&m, &g).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(m.len, bytes.len());
        // On a stream, the next message follows: Content-Length alone ends this one.
        let stream = format!("{text}OPTIONS sip:x SIP/2.0\r\ni: next\r\n\r\n");
        let m = Message::parse(stream.as_bytes(), Framing::Stream)
            .map_err(|e| TestCaseError::fail(format!("{e}: {stream:?}")))?;
        check(&m, &g).map_err(|e| TestCaseError::fail(format!("{e}\n{stream:?}")))?;
        prop_assert_eq!(m.len, bytes.len());
    }
}
