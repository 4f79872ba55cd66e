//! Stage 2: the SIP parser. Pure functions over `&[u8]`: no I/O, no threads, no allocation.
//!
//! [`Message::parse`] checks the framing once (start line, end of headers, Content-Length) and
//! records where the headers the tracker needs are. Everything after that is a view into the
//! original bytes; the accessors in [`value`] and [`sdp`] parse a header value only when asked and
//! never panic, whatever the bytes are (they need not be UTF-8).
//!
//! ```
//! use sipcdr::sip::{Message, Framing, Method};
//! let m = Message::parse(b"BYE sip:bob@b SIP/2.0\r\ni: abc@h\r\nCSeq: 2 BYE\r\n\r\n", Framing::Datagram).unwrap();
//! assert_eq!(m.method(), Some(Method::Bye));
//! assert_eq!(m.call_id, Some(&b"abc@h"[..]));
//! ```

mod header;
mod message;
mod method;
pub(crate) mod scan;
pub mod sdp;
pub mod value;

#[cfg(test)]
mod roundtrip;

pub use header::HeaderName;
pub use message::{
    Bare, Framing, Message, StartLine, bare, find_call_id, find_cseq, looks_like_sip, may_be_invite,
};
pub use method::Method;

/// Why bytes are not a SIP message. Small and `Copy`: counted on the hot path, never printed per
/// packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The first line is not a SIP request or status line.
    NotSip,
    /// The headers (or, in [`Framing::Stream`], the body) are not complete yet; more bytes may
    /// complete them.
    Incomplete,
    /// The Content-Length header is not a number.
    BadContentLength { offset: usize },
    /// The message has no Call-ID header.
    NoCallId,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotSip => write!(f, "not a SIP start line"),
            Error::Incomplete => write!(f, "incomplete SIP message"),
            Error::BadContentLength { offset } => {
                write!(f, "bad Content-Length at byte {offset}")
            }
            Error::NoCallId => write!(f, "no Call-ID header"),
        }
    }
}

impl std::error::Error for Error {}
