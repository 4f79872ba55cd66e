//! Request methods, keeping unknown ones as their bytes.

/// A SIP request method. `Other` keeps the bytes of a method this crate does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Update,
    Refer,
    Subscribe,
    Notify,
    Info,
    Message,
    Publish,
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Methods are case-sensitive (RFC 3261 7.1): `invite` is not `INVITE`.
    pub fn from_bytes(b: &'a [u8]) -> Method<'a> {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"REFER" => Method::Refer,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"INFO" => Method::Info,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(other),
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Options => b"OPTIONS",
            Method::Register => b"REGISTER",
            Method::Prack => b"PRACK",
            Method::Update => b"UPDATE",
            Method::Refer => b"REFER",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Notify => b"NOTIFY",
            Method::Info => b"INFO",
            Method::Message => b"MESSAGE",
            Method::Publish => b"PUBLISH",
            Method::Other(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown() {
        for m in [&b"INVITE"[..], b"BYE", b"PRACK", b"UPDATE", b"FOO"] {
            assert_eq!(Method::from_bytes(m).as_bytes(), m);
        }
        assert_eq!(Method::from_bytes(b"invite"), Method::Other(b"invite"));
    }
}
