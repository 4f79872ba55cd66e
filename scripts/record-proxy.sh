#!/usr/bin/env bash
# Record the multi-party SIP captures of issue #5 (call semantics): calls
# through a real Kamailio proxy, a 302 from Kamailio as a redirect server,
# and the transfer calls (attended, with Replaces, and blind) between three
# sipp peers.
#
#   bash scripts/record-proxy.sh [NAME]      # e.g. udp_fork; default: all
#   bash scripts/record-proxy.sh --readme-section
#
# For each capture this script:
#   1. starts tcpdump on lo, filtered to the sipp peers' UDP ports (every
#      packet to or from the proxy involves one of them),
#   2. if the capture goes through a proxy: starts Debian's kamailio (5.6) in
#      the foreground (-DD -E) with scripts/kamailio/proxy.cfg, listening on
#      127.0.0.2:5060, runtime files in a temporary directory (the system
#      service is never touched); the -A defines choose where INVITEs go,
#      parallel forking, and topoh (Call-ID masking); redirect_302 uses
#      scripts/kamailio/redirect.cfg instead (a stateless 302 whose Contact
#      is the TARGET define),
#   3. starts the sipp UASs, then the sipp UACs (each after its delay), all
#      on 127.0.0.1 with fixed ports, Call-IDs (-cid_str) and call counts,
#   4. waits for every sipp process and checks its exit code, stops
#      kamailio (SIGTERM) and tcpdump (SIGINT), so the pcap is complete,
#   5. checks the per-Call-ID message ladder in the pcap with tshark.
# Finally it rewrites captures/README.md (scripts/record-captures.sh
# --readme-only), whose last section comes from --readme-section here.
#
# Everything stays on 127.0.0.1 and 127.0.0.2 (both on lo). Needs root
# (tcpdump on lo, apt-get for missing tools). KEEP_WORK=1 keeps the sipp,
# kamailio and tcpdump logs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Helpers (process bookkeeping, waits, tshark ladders): not its main.
# shellcheck source=record-captures.sh
source "$HERE/record-captures.sh"
PROXY=127.0.0.2:5060

# --------------------------------------------------------------------------
# Captures
#   name | kamailio -A defines (space separated; "-" = no proxy) | processes
# A process is "role:scenario:port[/ip]:calls:delay_ms:extra sipp args",
# separated by ";" (ip defaults to 127.0.0.1). role uas starts first (and must
# open its port); role uac is started delay_ms after the previous process,
# sends to the proxy (or, without one, to the first UAS) and gets -cid_str
# "<n>-udp-<scenario>@sipcdr.test" unless its extra args set -cid_str.
# --------------------------------------------------------------------------
PROXY_CAPTURES=(
    "proxy_hop|UAS_A=\"127.0.0.1:5401\"|uas:proxy:5401:1:0:;uac:proxy_hop:5400:1:0:"
    "fork|UAS_A=\"127.0.0.1:5411\" UAS_B=\"127.0.0.1:5412\"|uas:proxy:5411:1:0:;uas:fork_ring:5412:1:0:;uac:fork:5410:1:0:"
    "fork_two_hosts|UAS_A=\"127.0.0.1:5441\" UAS_B=\"127.0.0.3:5442\"|uas:proxy:5441:1:0:;uas:fork_ring:5442/127.0.0.3:1:0:;uac:fork:5440:1:0:-cid_str %u-udp-fork-two-hosts@sipcdr.test"
    "fork_race|UAS_A=\"127.0.0.1:5451\" UAS_B=\"127.0.0.3:5452\"|uas:proxy:5451:1:0:;uas:fork_race:5452/127.0.0.3:1:0:;uac:fork_race:5450:1:0:"
    "b2bua_session_id|UAS_A=\"127.0.0.1:5421\" WITH_TOPOH|uas:proxy:5421:2:0:;uac:b2bua_session_id:5420:1:0:-key session_uuid 8bd7a0e5c3f94b2f9a6e1d0c4b3a2f19;uac:b2bua_x_cid:5422:1:500:"
    "transfer|-|uas:transfer:5431:2:0:;uac:transfer:5430:1:0:;uac:transfer_replaces:5432:1:1500:-key replaces_call_id 1-udp-transfer@sipcdr.test"
    "blind_transfer|-|uas:blind_transfer:5461:1:0:-key carol_port 5463;uas:blind_transfer_target:5463:1:0:;uac:blind_transfer:5460:1:0:"
    "redirect_302|TARGET=\"127.0.0.1:5462\"|uas:redirect_302:5462:1:0:;uac:redirect_302:5460:1:0:"
)

# Kamailio configuration per capture (in scripts/kamailio/; default proxy.cfg).
declare -A PROXY_CONFIG=(
    [redirect_302]=redirect.cfg
)

# Expected ladder per Call-ID and hop (the two ports of the UDP exchange,
# "P" for the proxy's 127.0.0.2:5060), each in capture order; topoh's masked
# Call-IDs show as MASKED-<n>. Per hop, because the order of messages on
# different hops a few microseconds apart is not fixed.
declare -A PROXY_EXPECTED=(
    [proxy_hop]="1-udp-proxy-hop@sipcdr.test 5400-P: INVITE 100 180 200 ACK BYE 200
1-udp-proxy-hop@sipcdr.test P-5401: INVITE 100 180 200 ACK BYE 200"
    [fork]="1-udp-fork@sipcdr.test 5410-P: INVITE 100 180 180 200 ACK BYE 200
1-udp-fork@sipcdr.test P-5411: INVITE 100 180 200 ACK BYE 200
1-udp-fork@sipcdr.test P-5412: INVITE 100 180 CANCEL 200 487 ACK"
    [fork_two_hosts]="1-udp-fork-two-hosts@sipcdr.test 5440-P: INVITE 100 180 180 200 ACK BYE 200
1-udp-fork-two-hosts@sipcdr.test P-5441: INVITE 100 180 200 ACK BYE 200
1-udp-fork-two-hosts@sipcdr.test P-5442: INVITE 100 180 CANCEL 200 487 ACK"
    [fork_race]="1-udp-fork-race@sipcdr.test 5450-P: INVITE 100 180 180 200 ACK 200 ACK BYE 200 BYE 200
1-udp-fork-race@sipcdr.test P-5451: INVITE 100 180 200 ACK BYE 200
1-udp-fork-race@sipcdr.test P-5452: INVITE 100 180 CANCEL 200 200 ACK BYE 200"
    [b2bua_session_id]="1-udp-b2bua-session-id@sipcdr.test 5420-P: INVITE 100 180 200 ACK BYE 200
MASKED-1 P-5421: INVITE 100 180 200 ACK BYE 200
1-udp-b2bua-x-cid@sipcdr.test 5422-P: INVITE 100 180 200 ACK BYE 200
MASKED-2 P-5421: INVITE 100 180 200 ACK BYE 200"
    [transfer]="1-udp-transfer@sipcdr.test 5430-5431: INVITE 100 180 200 ACK REFER 202 NOTIFY 200 BYE 200
1-udp-transfer-replaces@sipcdr.test 5432-5431: INVITE 100 200 ACK BYE 200"
    [blind_transfer]="1-udp-blind-transfer@sipcdr.test 5460-5461: INVITE 100 180 200 ACK REFER 202 NOTIFY 200 NOTIFY 200 BYE 200
2-udp-blind-transfer///1-udp-blind-transfer@sipcdr.test 5460-5463: INVITE 100 180 200 ACK BYE 200"
    [redirect_302]="1-udp-redirect-302@sipcdr.test 5460-P: INVITE 302 ACK
1-udp-redirect-302@sipcdr.test 5460-5462: INVITE 100 180 200 ACK BYE 200"
)

declare -A PROXY_PARTIES=(
    [proxy_hop]="UAC 127.0.0.1:5400 -> Kamailio 127.0.0.2:5060 -> UAS 127.0.0.1:5401"
    [fork]="UAC 127.0.0.1:5410 -> Kamailio 127.0.0.2:5060 -> UAS A 127.0.0.1:5411 and UAS B 127.0.0.1:5412 (parallel fork)"
    [fork_two_hosts]="as udp_fork, but branch B on another host: UAC 127.0.0.1:5440 -> Kamailio 127.0.0.2:5060 -> UAS A 127.0.0.1:5441 and UAS B 127.0.0.3:5442"
    [fork_race]="UAC 127.0.0.1:5450 -> Kamailio 127.0.0.2:5060 -> UAS A 127.0.0.1:5451 and UAS B 127.0.0.3:5452 (parallel fork, both answer)"
    [b2bua_session_id]="UAC 127.0.0.1:5420 (call 1) and UAC 127.0.0.1:5422 (call 2) -> Kamailio (topoh, mask_callid=1) 127.0.0.2:5060 -> UAS 127.0.0.1:5421"
    [transfer]="Alice (UAC) 127.0.0.1:5430 -> Bob (UAS) 127.0.0.1:5431 <- Carol (UAC) 127.0.0.1:5432"
    [blind_transfer]="Alice (UAC, the transferee) 127.0.0.1:5460 -> Bob (UAS, the transferor) 127.0.0.1:5461; then Alice -> Carol (UAS, the target) 127.0.0.1:5463, from the same sipp call"
    [redirect_302]="UAC 127.0.0.1:5460 -> Kamailio redirect server 127.0.0.2:5060 (302, scripts/kamailio/redirect.cfg), then UAC -> UAS (Contact) 127.0.0.1:5462"
)

declare -A PROXY_LADDER_TEXT=(
    [proxy_hop]="INVITE(SDP) -> proxy / 100 (proxy) / INVITE (Record-Route) -> UAS / 100 / 180 / 180 / ~1 s, 200(SDP: PCMA) / 200 / ACK / ACK (route set), ~1 s, BYE / BYE / 200 / 200 (caller hangs up)"
    [fork]="INVITE -> proxy / 100, proxy forks: INVITE -> A, INVITE -> B, both 100 and 180 (To tags uas-1, uas-b-1; both 180s reach the caller), ~1 s, A: 200 -> proxy, proxy: CANCEL -> B, 200 to the caller, B: 200 (CANCEL) / 487 / ACK (hop by hop), caller ACK -> proxy -> A, ~1 s, BYE caller -> proxy -> A / 200 / 200"
    [fork_two_hosts]="as udp_fork (branch B's To tag uas-b-1, its 180 and 487 from 127.0.0.3)"
    [fork_race]="as udp_fork_two_hosts until A's 200 and the proxy's CANCEL to B; B answers anyway (200 for the CANCEL, then 200 for the INVITE, as if the answer had crossed the CANCEL); the proxy relays B's 200 to the caller, who ACKs it and BYEs B's dialog at once (CSeq 2), ~1 s later BYE A's dialog (CSeq 3); all through the proxy"
    [b2bua_session_id]="two calls 0.5 s apart; each: INVITE -> proxy (call 1 with Session-ID: 8bd7a0e5c3f94b2f9a6e1d0c4b3a2f19;remote=00000000000000000000000000000000, call 2 without), the proxy forwards it with the Call-ID masked by topoh and X-CID: <caller's Call-ID>; 100 / 180 / ~1 s 200 / ACK, ~1 s, BYE / 200, each on both hops"
    [transfer]="call 1 Alice -> Bob: INVITE / 100 / 180 / 200 / ACK, ~0.5 s, REFER (Refer-To, Referred-By) / 202 / NOTIFY (sipfrag 200) / 200; ~1.5 s after the ACK call 2 Carol -> Bob: INVITE (Replaces: call 1;to-tag=uas-1;from-tag=uac-1, Referred-By) / 100 / 200 / ACK; Bob: BYE call 1 / 200; ~1 s later Carol: BYE call 2 / 200"
    [blind_transfer]="call 1 Alice -> Bob: INVITE / 100 / 180 / 200 / ACK, ~0.5 s, Bob: REFER (Refer-To: <sip:3003@127.0.0.1:5463>, no Replaces; Referred-By: <sip:2002@sipcdr.test>) / 202, Alice: NOTIFY (sipfrag 100 Trying) / 200; call 2 Alice -> Carol: INVITE sip:3003@127.0.0.1:5463 (Referred-By copied from the REFER, Call-ID 2-udp-blind-transfer///<call 1's>: sipp ignores what precedes /// when it matches a call) / 100 / 180 / ~0.5 s 200 / ACK; Alice: NOTIFY (sipfrag 200 OK, terminated) / 200, BYE call 1 / 200; ~1 s later Alice: BYE call 2 / 200"
    [redirect_302]="INVITE(SDP) -> redirect server / 302 Moved Temporarily (Contact: <sip:3003@127.0.0.1:5462>, sent statelessly, no 100) / ACK (same branch); the caller then sends INVITE sip:3003@127.0.0.1:5462 (same Call-ID, From tag and To, CSeq 2, new branch) to the Contact / 100 / 180, ~0.5 s, 200(SDP: PCMA) / ACK, ~1 s, BYE (caller, CSeq 3) / 200"
)

declare -A PROXY_OUTCOME_TEXT=(
    [proxy_hop]="1 call, 2 legs (one per hop), one session_id; leg_role proxy-uas for the leg into 127.0.0.2, proxy-uac for the leg out of it (also with --local-net 127.0.0.2/32); answered, ~1 s talk, caller hangs up"
    [fork]="1 call, 3 legs, one session_id: caller -> proxy (proxy-uas) answered once by branch A; proxy -> A (proxy-uac) answered; proxy -> B (proxy-uac) call-canceled 487 at the proxy's CANCEL"
    [fork_two_hosts]="as udp_fork: 3 legs, one session_id; the leg to B (proxy-uac) call-canceled 487, ended at the proxy's CANCEL"
    [fork_race]="1 call, 3 legs, one session_id: the caller's leg answered once by A and ended by the BYE of A's dialog, B's 200 and the BYE of B's dialog counted in the summary's forks line (2); the leg to B answered (the 2xx won the race with the CANCEL), ended by its BYE"
    [b2bua_session_id]="2 calls, 4 legs, 4 Call-IDs: call 1's legs share the session_id of the Session-ID UUID; call 2's legs share one session only with --correlate-header X-CID"
    [transfer]="2 legs: call 1 answered, the REFER/NOTIFY do not end it, Bob hangs up (callee); call 2 answered with original_session_id = call 1's session_id, Carol hangs up"
    [blind_transfer]="2 legs: call 1 answered, the REFER/NOTIFYs do not end it, Alice hangs up (caller, normal-release), original_session_id empty; call 2 (INVITE with Referred-By from the REFER's receiver 127.0.0.1 to the Refer-To user 3003, within 32 s) answered, its own session_id, original_session_id = call 1's session_id, Alice hangs up"
    [redirect_302]="1 call, 2 legs, one session_id (same Call-ID), different leg_ids: the leg to the redirect server call-rejected, sip_resp_code 302, end = the 302; the leg to the Contact answered, ~1 s talk, normal-release, hung up by caller"
)

PROXY_NAMES=(proxy_hop fork fork_two_hosts fork_race b2bua_session_id transfer blind_transfer redirect_302)

# Captures kept out of captures/*.pcap, in a subdirectory, because the tshark truth
# (../shared/captures/oracle.py, tests/truth.rs) cannot model them: in fork_race
# the oracle ends the Call-ID at the proxy's CANCEL, though B's 2xx won the race
# and the call went on (README: "a 2xx that wins the race makes it an answered
# call"). tests/semantics.rs checks them, and their CSV beside them.
declare -A PROXY_SUBDIR=(
    [fork_race]=race/
)

pcap_of() {
    echo "$OUT_DIR/${PROXY_SUBDIR[$1]:-}udp_$1.pcap"
}

# --------------------------------------------------------------------------
# Ladder check: Call-IDs that the capture's own calls do not name (topoh's
# masked ones) are numbered MASKED-<n> in order of appearance.
# --------------------------------------------------------------------------
proxy_signature() {
    tshark_q -r "$1" -Y sip -T fields -E separator=$'\t' \
        -e sip.Call-ID -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e _ws.col.Info |
        awk -F'\t' '
        function ep(ip, port) { return ip == "127.0.0.2" && port == 5060 ? "P" : port }
        {
            cid = $1
            if (cid !~ /@sipcdr\.test$/) {
                if (!(cid in masked)) masked[cid] = "MASKED-" (++m)
                cid = masked[cid]
            }
            a = ep($2, $3); b = ep($4, $5)
            # a hop is named by its INVITE direction: the first message seen on it
            if ((cid " " a "-" b) in seq) key = cid " " a "-" b
            else if ((cid " " b "-" a) in seq) key = cid " " b "-" a
            else { key = cid " " a "-" b; order[++n] = key; seq[key] = "" }
            split($6, w, " ")
            seq[key] = seq[key] " " w[2]
        }
        END { for (i = 1; i <= n; i++) print order[i] ":" seq[order[i]] }'
}

# --------------------------------------------------------------------------
# Recording one capture
# --------------------------------------------------------------------------
record_proxy() {
    local name=$1 defines=$2 procs=$3
    local pcap dir="$WORK/udp_${name}"
    pcap=$(pcap_of "$name")
    mkdir -p "$dir" "$(dirname "$pcap")"
    echo "== udp_${name}: ${PROXY_PARTIES[$name]}"

    local -a specs ports=() uas_ports=()
    IFS=';' read -r -a specs <<<"$procs"
    local spec role scen port calls delay extra filter=""
    for spec in "${specs[@]}"; do
        IFS=':' read -r role scen port calls delay extra <<<"$spec"
        port=${port%%/*}
        ports+=("$port")
        [[ $role == uas ]] && uas_ports+=("$port")
        filter+="${filter:+ or }udp port $port"
    done

    rm -f "$pcap"
    tcpdump -i lo -n -U --immediate-mode -Z root -s 0 -w "$pcap" "$filter" \
        >"$dir/tcpdump.log" 2>&1 &
    local tcpdump_pid=$!
    PIDS+=("$tcpdump_pid")
    if ! wait_for_text "$dir/tcpdump.log" "listening on" 50; then
        echo "tcpdump did not start:" >&2
        cat "$dir/tcpdump.log" >&2
        return 1
    fi
    sleep 0.2

    local kam_pid="" target
    if [[ $defines != "-" ]]; then
        local cfg="$ROOT/scripts/kamailio/${PROXY_CONFIG[$name]:-proxy.cfg}"
        local -a kargs=(-f "$cfg" -DD -E -Y "$dir" -P "$dir/kamailio.pid" -m 32 -M 8)
        local d
        # shellcheck disable=SC2086
        for d in $defines; do kargs+=(-A "$d"); done
        kamailio "${kargs[@]}" >"$dir/kamailio.log" 2>&1 &
        kam_pid=$!
        PIDS+=("$kam_pid")
        if ! wait_for_port udp 5060 50 || ! ss -lunH "src 127.0.0.2:5060" | grep -q .; then
            echo "kamailio did not open $PROXY:" >&2
            tail -20 "$dir/kamailio.log" >&2
            return 1
        fi
        target=$PROXY
    else
        target="127.0.0.1:${uas_ports[0]}"
    fi

    local common=(-i 127.0.0.1 -t u1 -nostdin -nd -timeout 30s -timeout_error)
    local -a sipp_pids=() sipp_names=()
    local pid dash ip
    for spec in "${specs[@]}"; do
        IFS=':' read -r role scen port calls delay extra <<<"$spec"
        extra=${extra//\{SIPP\}/$SCEN_DIR}
        ip=127.0.0.1
        if [[ $port == */* ]]; then
            ip=${port#*/}
            port=${port%%/*}
        fi
        common[1]=$ip
        ((delay > 0)) && sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        if [[ $role == uas ]]; then
            # shellcheck disable=SC2086
            (cd "$dir" && exec sipp -sf "$SCEN_DIR/${scen}_uas.xml" "${common[@]}" \
                -p "$port" -mp $((20000 + (port - 5000) * 10)) -m "$calls" $extra \
                >"$dir/uas_$port.log" 2>&1) &
            pid=$!
            PIDS+=("$pid")
            if ! wait_for_port udp "$port" 50; then
                echo "sipp UAS did not open udp/$port" >&2
                return 1
            fi
        else
            dash=${scen//_/-}
            [[ $extra == *-cid_str* ]] || extra="-cid_str %u-udp-${dash}@sipcdr.test $extra"
            # shellcheck disable=SC2086
            (cd "$dir" && exec sipp -sf "$SCEN_DIR/${scen}_uac.xml" "$target" "${common[@]}" \
                -p "$port" -mp $((20000 + (port - 5000) * 10)) -m "$calls" $extra \
                >"$dir/uac_$port.log" 2>&1) &
            pid=$!
            PIDS+=("$pid")
        fi
        sipp_pids+=("$pid")
        sipp_names+=("$role:$scen:$port")
        [[ $role == uas ]] && sleep 0.3
    done

    # Every sipp exits by itself (-m calls done, or -timeout 30s).
    local i rc failed=0
    for i in "${!sipp_pids[@]}"; do
        rc=0
        wait "${sipp_pids[$i]}" || rc=$?
        forget_pid "${sipp_pids[$i]}"
        if ((rc != 0)); then
            echo "sipp ${sipp_names[$i]} failed with exit $rc" >&2
            failed=1
        fi
    done

    sleep 0.3
    if [[ -n $kam_pid ]]; then
        kill -TERM "$kam_pid" 2>/dev/null || true
        wait "$kam_pid" || true
        forget_pid "$kam_pid"
    fi
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

    local got want=${PROXY_EXPECTED[$name]}
    got=$(proxy_signature "$pcap")
    if [[ "$got" != "$want" ]]; then
        echo "unexpected ladder in $pcap" >&2
        echo "--- expected" >&2
        echo "$want" >&2
        echo "--- got" >&2
        echo "$got" >&2
        return 1
    fi
    echo "   ok: $(stat -c %s "$pcap") bytes, $(tshark_q -r "$pcap" | wc -l) frames"
}

# --------------------------------------------------------------------------
# README section (appended by record-captures.sh's write_readme)
# --------------------------------------------------------------------------
readme_section() {
    cat <<'EOF'

## Proxy, forking, B2BUA and transfer captures (issue #5)

Recorded by `scripts/record-proxy.sh` (UDP only): sipp peers on 127.0.0.1
(fork branch B on 127.0.0.3 where noted) and, for all but the transfers,
Debian's Kamailio 5.6 run in the foreground by the
script on 127.0.0.2:5060 with the minimal stateful (tm), record-routing
configuration `scripts/kamailio/proxy.cfg` (`-A` defines pick the UAS, a
second parallel branch, and topoh). `race/udp_fork_race.pcap` (with
`race/udp_fork_race.csv`) sits in a subdirectory, outside the golden and
truth tests of `captures/*.pcap`, because the tshark truth cannot model it:
the oracle ends the Call-ID at the proxy's CANCEL although branch B's 2xx won
the race and the call went on; `tests/semantics.rs` checks its CSV and
columns. `udp_redirect_302.pcap` uses `scripts/kamailio/redirect.cfg`
instead: Kamailio answers the INVITE statelessly with `302 Moved
Temporarily` and `Contact: <sip:3003@127.0.0.1:5462>`, and the sipp caller
takes user, host and port from that Contact (sipp `ereg`) and sends its
second INVITE, same Call-ID, there (sipp `setdest`); `tests/redirect.rs`
checks its two legs. The script checks every sipp exit code and the ladder
per Call-ID and hop. `tests/semantics.rs` asserts the issue-#5 columns of
each capture (leg_role, session_id, original_session_id, media, holds...).
Caller `"Alice" <sip:1001@sipcdr.test>` (tag `uac-<n>`), callee `"Bob"
<sip:2002@sipcdr.test>` (tags `uas-<n>`, fork branch B `uas-b-<n>`); the
transfer's third party is `"Carol" <sip:3003@sipcdr.test>`. In the blind
transfer Alice calls the Refer-To URI `sip:3003@127.0.0.1:5463` herself
(From tag `uac-t-<n>`, Carol's tag `uas-c-<n>`) from the same sipp call as
call 1, so call 2's Call-ID is `2-udp-blind-transfer///` followed by call 1's.

| File | Parties | Message ladder | Expected outcome |
|------|---------|----------------|------------------|
EOF
    local name
    for name in "${PROXY_NAMES[@]}"; do
        printf '| `%sudp_%s.pcap` | %s | %s | %s |\n' "${PROXY_SUBDIR[$name]:-}" "$name" "${PROXY_PARTIES[$name]}" \
            "${PROXY_LADDER_TEXT[$name]}" "${PROXY_OUTCOME_TEXT[$name]}"
    done
    for name in "${PROXY_NAMES[@]}"; do
        [[ -r "$(pcap_of "$name")" ]] || continue
        printf '\n### %sudp_%s.pcap\n\n```\n' "${PROXY_SUBDIR[$name]:-}" "$name"
        ladder_table "$(pcap_of "$name")" udp
        printf '```\n'
    done
}

# --------------------------------------------------------------------------
proxy_main() {
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
    WORK=$(mktemp -d /tmp/sipcdr-proxy.XXXXXX)
    local only=${1:-} entry name defines procs
    for entry in "${PROXY_CAPTURES[@]}"; do
        IFS='|' read -r name defines procs <<<"$entry"
        [[ -z $only || $only == "$name" || $only == "udp_$name" ]] || continue
        record_proxy "$name" "$defines" "$procs"
    done
    bash "$ROOT/scripts/record-captures.sh" --readme-only
    echo "done"
}

proxy_main "$@"
