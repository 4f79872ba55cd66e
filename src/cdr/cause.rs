//! Q.850 cause names as FreeSWITCH spells them (switch_types.h `switch_call_cause_t`), and the
//! SIP-response-to-cause mapping FreeSWITCH's mod_sofia uses (after RFC 3398 section 8.2.6.1).

/// FreeSWITCH's name for a Q.850 cause value; `None` for values it has no name for.
pub fn q850_name(cause: u16) -> Option<&'static str> {
    Some(match cause {
        0 => "UNSPECIFIED",
        1 => "UNALLOCATED_NUMBER",
        2 => "NO_ROUTE_TRANSIT_NET",
        3 => "NO_ROUTE_DESTINATION",
        6 => "CHANNEL_UNACCEPTABLE",
        7 => "CALL_AWARDED_DELIVERED",
        16 => "NORMAL_CLEARING",
        17 => "USER_BUSY",
        18 => "NO_USER_RESPONSE",
        19 => "NO_ANSWER",
        20 => "SUBSCRIBER_ABSENT",
        21 => "CALL_REJECTED",
        22 => "NUMBER_CHANGED",
        23 => "REDIRECTION_TO_NEW_DESTINATION",
        25 => "EXCHANGE_ROUTING_ERROR",
        27 => "DESTINATION_OUT_OF_ORDER",
        28 => "INVALID_NUMBER_FORMAT",
        29 => "FACILITY_REJECTED",
        30 => "RESPONSE_TO_STATUS_ENQUIRY",
        31 => "NORMAL_UNSPECIFIED",
        34 => "NORMAL_CIRCUIT_CONGESTION",
        38 => "NETWORK_OUT_OF_ORDER",
        41 => "NORMAL_TEMPORARY_FAILURE",
        42 => "SWITCH_CONGESTION",
        43 => "ACCESS_INFO_DISCARDED",
        44 => "REQUESTED_CHAN_UNAVAIL",
        45 => "PRE_EMPTED",
        50 => "FACILITY_NOT_SUBSCRIBED",
        52 => "OUTGOING_CALL_BARRED",
        54 => "INCOMING_CALL_BARRED",
        57 => "BEARERCAPABILITY_NOTAUTH",
        58 => "BEARERCAPABILITY_NOTAVAIL",
        63 => "SERVICE_UNAVAILABLE",
        65 => "BEARERCAPABILITY_NOTIMPL",
        66 => "CHAN_NOT_IMPLEMENTED",
        69 => "FACILITY_NOT_IMPLEMENTED",
        79 => "SERVICE_NOT_IMPLEMENTED",
        81 => "INVALID_CALL_REFERENCE",
        88 => "INCOMPATIBLE_DESTINATION",
        95 => "INVALID_MSG_UNSPECIFIED",
        96 => "MANDATORY_IE_MISSING",
        97 => "MESSAGE_TYPE_NONEXIST",
        98 => "WRONG_MESSAGE",
        99 => "IE_NONEXIST",
        100 => "INVALID_IE_CONTENTS",
        101 => "WRONG_CALL_STATE",
        102 => "RECOVERY_ON_TIMER_EXPIRE",
        103 => "MANDATORY_IE_LENGTH_ERROR",
        111 => "PROTOCOL_ERROR",
        127 => "INTERWORKING",
        _ => return None,
    })
}

/// The cause FreeSWITCH records for a final SIP response code.
pub fn sip_code_cause(code: u16) -> &'static str {
    match code {
        200..=299 => "NORMAL_CLEARING",
        401 | 402 | 403 | 407 | 603 | 608 => "CALL_REJECTED",
        404 => "UNALLOCATED_NUMBER",
        485 | 604 => "NO_ROUTE_DESTINATION",
        408 | 504 => "RECOVERY_ON_TIMER_EXPIRE",
        410 => "NUMBER_CHANGED",
        413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => "INTERWORKING",
        480 => "NO_USER_RESPONSE",
        400 | 481 | 500 | 503 => "NORMAL_TEMPORARY_FAILURE",
        486 | 600 => "USER_BUSY",
        484 => "INVALID_NUMBER_FORMAT",
        488 | 606 => "INCOMPATIBLE_DESTINATION",
        502 => "NETWORK_OUT_OF_ORDER",
        405 => "SERVICE_UNAVAILABLE",
        406 | 415 | 501 => "SERVICE_NOT_IMPLEMENTED",
        482 | 483 => "EXCHANGE_ROUTING_ERROR",
        487 => "ORIGINATOR_CANCEL",
        _ => "NORMAL_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_examples() {
        assert_eq!(sip_code_cause(486), "USER_BUSY");
        assert_eq!(sip_code_cause(404), "UNALLOCATED_NUMBER");
        assert_eq!(sip_code_cause(480), "NO_USER_RESPONSE");
        assert_eq!(sip_code_cause(487), "ORIGINATOR_CANCEL");
        assert_eq!(sip_code_cause(503), "NORMAL_TEMPORARY_FAILURE");
        assert_eq!(sip_code_cause(603), "CALL_REJECTED");
        assert_eq!(sip_code_cause(302), "NORMAL_UNSPECIFIED");
        assert_eq!(q850_name(16), Some("NORMAL_CLEARING"));
        assert_eq!(q850_name(17), Some("USER_BUSY"));
        assert_eq!(q850_name(200), None);
    }
}
