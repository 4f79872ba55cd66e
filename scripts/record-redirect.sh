#!/usr/bin/env bash
# Record captures/udp_redirect_302.pcap: a real 302 redirect followed by the
# caller's new INVITE to the Contact (same Call-ID).
#
#   bash scripts/record-redirect.sh                  # record and check the ladder
#   bash scripts/record-redirect.sh --readme-section # print the captures/README.md section
#
# Parties, all on lo:
#   caller    sipp UAC  127.0.0.1:5460  scripts/sipp/redirect_302_uac.xml
#   redirect  Kamailio  127.0.0.2:5060  scripts/kamailio/redirect.cfg (sl, stateless):
#             every INVITE gets "302 Moved Temporarily" with
#             Contact: <sip:3003@127.0.0.1:5462>
#   target    sipp UAS  127.0.0.1:5462  scripts/sipp/redirect_302_uas.xml
# The caller ACKs the 302 to the redirect server, reads user, host and port
# from the 302's Contact (sipp ereg) and sends everything after that there
# (sipp setdest): INVITE sip:3003@127.0.0.1:5462 with the same Call-ID and
# CSeq 2 / 100 / 180 / 200 / ACK, ~1 s, BYE / 200.
#
# Content is fixed (Call-ID, tags, branches, CSeqs, SDP, ports) except the
# timestamps and the To tag Kamailio's sl puts in the 302.
#
# Like scripts/record-proxy.sh (whose helpers come from record-captures.sh):
#   1. tcpdump on lo, filtered to the caller's and the target's UDP ports
#      (every packet to or from the redirect server involves the caller),
#   2. Debian's kamailio (5.6) in the foreground (-DD -E), runtime files in a
#      temporary directory (the system service is never touched),
#   3. the sipp UAS, then the sipp UAC (-m 1, fixed Call-ID via -cid_str),
#   4. waits for both sipp processes and checks their exit codes, stops
#      kamailio (SIGTERM) and tcpdump (SIGINT),
#   5. checks the per-Call-ID, per-hop message ladder with tshark.
# It does not rewrite captures/README.md (record-captures.sh --readme-only
# would drop the section); --readme-section prints the section to paste.
# Then `bash scripts/update-golden.sh` writes captures/udp_redirect_302.csv
# and captures/truth/udp_redirect_302.pcap.csv.
#
# Needs root (tcpdump on lo, apt-get for missing tools). KEEP_WORK=1 keeps the
# sipp, kamailio and tcpdump logs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Helpers (process bookkeeping, waits, tshark ladders): not its main.
# shellcheck source=record-captures.sh
source "$HERE/record-captures.sh"

NAME=redirect_302
PCAP="$OUT_DIR/udp_${NAME}.pcap"
KAM_CFG="$ROOT/scripts/kamailio/redirect.cfg"
REDIRECTOR_IP=127.0.0.2
REDIRECTOR_PORT=5060
UAC_PORT=5460
TARGET_PORT=5462
CALL_ID="1-udp-redirect-302@sipcdr.test"

# Per Call-ID and hop ("R" = the redirect server 127.0.0.2:5060), in capture order.
EXPECTED="$CALL_ID $UAC_PORT-R: INVITE 302 ACK
$CALL_ID $UAC_PORT-$TARGET_PORT: INVITE 100 180 200 ACK BYE 200"

PARTIES="UAC 127.0.0.1:$UAC_PORT -> Kamailio redirect server $REDIRECTOR_IP:$REDIRECTOR_PORT (302), then UAC -> UAS (Contact) 127.0.0.1:$TARGET_PORT"
LADDER_TEXT="INVITE(SDP) -> redirect server / 302 Moved Temporarily (Contact: <sip:3003@127.0.0.1:$TARGET_PORT>, sent statelessly, no 100) / ACK (same branch); the caller then sends INVITE sip:3003@127.0.0.1:$TARGET_PORT (same Call-ID, From tag and To, CSeq 2, new branch) to the Contact / 100 / 180, ~0.5 s, 200(SDP: PCMA) / ACK, ~1 s, BYE (caller, CSeq 3) / 200"
OUTCOME_TEXT="1 call, 2 legs, one session_id (same Call-ID), different leg_ids: the leg to the redirect server call-rejected, sip_resp_code 302, end = the 302; the leg to the Contact answered, ~1 s talk, normal-release, hung up by caller"

redirect_signature() {
    tshark_q -r "$1" -Y sip -T fields -E separator=$'\t' \
        -e sip.Call-ID -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e _ws.col.Info |
        awk -F'\t' -v rip="$REDIRECTOR_IP" -v rport="$REDIRECTOR_PORT" '
        function ep(ip, port) { return ip == rip && port == rport ? "R" : port }
        {
            a = ep($2, $3); b = ep($4, $5)
            # a hop is named by its INVITE direction: the first message seen on it
            if (($1 " " a "-" b) in seq) key = $1 " " a "-" b
            else if (($1 " " b "-" a) in seq) key = $1 " " b "-" a
            else { key = $1 " " a "-" b; order[++n] = key; seq[key] = "" }
            split($6, w, " ")
            seq[key] = seq[key] " " w[2]
        }
        END { for (i = 1; i <= n; i++) print order[i] ":" seq[order[i]] }'
}

record_redirect() {
    local dir="$WORK/udp_${NAME}"
    mkdir -p "$dir"
    echo "== udp_${NAME}: $PARTIES"

    rm -f "$PCAP"
    tcpdump -i lo -n -U --immediate-mode -Z root -s 0 -w "$PCAP" \
        "udp port $UAC_PORT or udp port $TARGET_PORT" >"$dir/tcpdump.log" 2>&1 &
    local tcpdump_pid=$!
    PIDS+=("$tcpdump_pid")
    if ! wait_for_text "$dir/tcpdump.log" "listening on" 50; then
        echo "tcpdump did not start:" >&2
        cat "$dir/tcpdump.log" >&2
        return 1
    fi
    sleep 0.2

    kamailio -f "$KAM_CFG" -DD -E -Y "$dir" -P "$dir/kamailio.pid" -m 32 -M 8 \
        -A "TARGET=\"127.0.0.1:$TARGET_PORT\"" >"$dir/kamailio.log" 2>&1 &
    local kam_pid=$!
    PIDS+=("$kam_pid")
    if ! wait_for_port udp "$REDIRECTOR_PORT" 50 ||
        ! ss -lunH "src $REDIRECTOR_IP:$REDIRECTOR_PORT" | grep -q .; then
        echo "kamailio did not open $REDIRECTOR_IP:$REDIRECTOR_PORT:" >&2
        tail -20 "$dir/kamailio.log" >&2
        return 1
    fi

    local common=(-i 127.0.0.1 -t u1 -nostdin -nd -timeout 30s -timeout_error -m 1)
    (cd "$dir" && exec sipp -sf "$SCEN_DIR/${NAME}_uas.xml" "${common[@]}" \
        -p "$TARGET_PORT" -mp $((20000 + (TARGET_PORT - 5000) * 10)) \
        >"$dir/uas_$TARGET_PORT.log" 2>&1) &
    local uas_pid=$!
    PIDS+=("$uas_pid")
    if ! wait_for_port udp "$TARGET_PORT" 50; then
        echo "sipp UAS did not open udp/$TARGET_PORT" >&2
        return 1
    fi
    sleep 0.3

    (cd "$dir" && exec sipp -sf "$SCEN_DIR/${NAME}_uac.xml" "$REDIRECTOR_IP:$REDIRECTOR_PORT" \
        "${common[@]}" -p "$UAC_PORT" -mp $((20000 + (UAC_PORT - 5000) * 10)) \
        -cid_str "%u-udp-redirect-302@sipcdr.test" \
        >"$dir/uac_$UAC_PORT.log" 2>&1) &
    local uac_pid=$!
    PIDS+=("$uac_pid")

    # Both sipp exit by themselves (-m 1 done, or -timeout 30s).
    local pid rc failed=0
    for pid in "$uac_pid" "$uas_pid"; do
        rc=0
        wait "$pid" || rc=$?
        forget_pid "$pid"
        if ((rc != 0)); then
            echo "sipp (pid $pid) failed with exit $rc" >&2
            failed=1
        fi
    done

    sleep 0.3
    kill -TERM "$kam_pid" 2>/dev/null || true
    wait "$kam_pid" || true
    forget_pid "$kam_pid"
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    forget_pid "$tcpdump_pid"

    if ((failed)); then
        local log
        for log in "$dir"/*.log; do
            echo "--- $log" >&2
            grep -v '^\s*$' "$log" | tail -30 >&2 || true
        done
        return 1
    fi

    local got
    got=$(redirect_signature "$PCAP")
    if [[ "$got" != "$EXPECTED" ]]; then
        echo "unexpected ladder in $PCAP" >&2
        echo "--- expected" >&2
        echo "$EXPECTED" >&2
        echo "--- got" >&2
        echo "$got" >&2
        return 1
    fi
    echo "   ok: $(stat -c %s "$PCAP") bytes, $(tshark_q -r "$PCAP" | wc -l) frames"
    ladder_table "$PCAP" udp
}

readme_section() {
    cat <<EOF

## Redirect capture (302)

Recorded by \`scripts/record-redirect.sh\` (UDP only): a sipp caller on
127.0.0.1, Debian's Kamailio 5.6 as a stateless redirect server on
127.0.0.2:5060 (\`scripts/kamailio/redirect.cfg\`: \`append_to_reply\` +
\`sl_send_reply("302", ...)\`), and a sipp UAS at the Contact. The caller
(\`scripts/sipp/redirect_302_uac.xml\`) takes the new target's user, host and
port from the 302's Contact (sipp \`ereg\`) and sends its second INVITE there
(sipp \`setdest\`). The script checks both sipp exit codes and the ladder per
Call-ID and hop. \`tests/redirect.rs\` asserts the two legs by column name
(README "What a leg is": a 3xx is \`call-rejected\` with its code; a new
INVITE to the Contact that keeps the Call-ID is a new leg in the same
session). The tshark truth (\`captures/truth/udp_redirect_302.pcap.csv\`)
has one row per Call-ID, answered and ended by the BYE; \`tests/truth.rs\`
folds sipcdr's legs of a Call-ID by their earliest end, which here is the
302 of the first leg, so it reports this capture as a mismatch on \`end\`
(a limit of that fold, like the one that keeps \`race/udp_fork_race.pcap\`
out of \`captures/\`). This section is not written by
\`record-captures.sh --readme-only\`; \`bash scripts/record-redirect.sh
--readme-section\` prints it.

| File | Parties | Message ladder | Expected outcome |
|------|---------|----------------|------------------|
| \`udp_${NAME}.pcap\` | $PARTIES | $LADDER_TEXT | $OUTCOME_TEXT |

### udp_${NAME}.pcap

\`\`\`
EOF
    ladder_table "$PCAP" udp
    printf '```\n'
}

redirect_main() {
    if [[ ${1:-} == --readme-section ]]; then
        readme_section
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "run as root (tcpdump on lo, apt-get)" >&2
        exit 1
    fi
    ensure_tools
    if ! command -v kamailio >/dev/null 2>&1; then
        echo "installing: kamailio"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq kamailio
    fi
    mkdir -p "$OUT_DIR"
    WORK=$(mktemp -d /tmp/sipcdr-redirect.XXXXXX)
    record_redirect
    echo "done"
}

redirect_main "$@"
