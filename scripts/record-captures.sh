#!/usr/bin/env bash
# Record the SIP test captures used by sipcdr.
#
#   bash scripts/record-captures.sh
#
# For every scenario in scripts/sipp/ (one *_uac.xml + one *_uas.xml each) and
# for both UDP (-t u1) and TCP (-t t1), or only the transports its table entry
# names, this script:
#   1. starts tcpdump on lo, filtered to the scenario's two ports,
#   2. starts a sipp UAS, then a sipp UAC, on 127.0.0.1 with fixed ports and a
#      fixed, small number of calls (-m N); if NAME_options_uac.xml exists
#      (session_timer_no_bye) a second UAC runs right after the first,
#   3. waits for both sipp processes and checks their exit codes,
#   4. stops tcpdump with SIGINT and waits for it, so the pcap is complete,
#   5. checks the per-Call-ID message ladder in the pcap with tshark.
# Finally it (re)writes captures/README.md with the ladders of all captures
# (including those of scripts/record-proxy.sh: Kamailio and multi-party calls).
#
# Everything stays on 127.0.0.1; sipp runs in a temporary directory so no log
# files end up in the repository (KEEP_WORK=1 keeps that directory for
# debugging). Needs root (tcpdump on lo, apt-get).
# An optional argument records a single capture, e.g. `udp_busy_486` (the
# README is then not rewritten); `--readme-only` only rewrites the README
# from the pcaps already in captures/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCEN_DIR="$ROOT/scripts/sipp"
OUT_DIR="$ROOT/captures"

# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
    command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
    command -v tshark >/dev/null 2>&1 || missing+=(tshark)
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}"
    fi
}

# --------------------------------------------------------------------------
# Process bookkeeping: only ever signal PIDs this script started.
# --------------------------------------------------------------------------
WORK=""
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null || true
            sleep 0.2
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ -n "${KEEP_WORK:-}" ]]; then
            echo "sipp/tcpdump logs kept in $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local pid=$1 i
    for i in "${!PIDS[@]}"; do
        [[ "${PIDS[$i]}" == "$pid" ]] && unset 'PIDS[i]'
    done
    return 0
}

# wait_for_text FILE PATTERN TIMEOUT_TENTHS
wait_for_text() {
    local file=$1 pattern=$2 tries=$3
    while ((tries-- > 0)); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait_for_port PROTO(udp|tcp) PORT TIMEOUT_TENTHS
wait_for_port() {
    local proto=$1 port=$2 tries=$3 flag
    if ! command -v ss >/dev/null 2>&1; then
        sleep 0.5
        return 0
    fi
    [[ $proto == tcp ]] && flag=-ltnH || flag=-lunH
    while ((tries-- > 0)); do
        ss "$flag" "sport = :$port" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

tshark_q() {
    # tshark warns on stderr when run as root; keep the output clean.
    tshark "$@" 2>/dev/null
}

# --------------------------------------------------------------------------
# Scenario table
#   name | UDP UAC port | UAC calls (-m) | UAS calls (-m) | extra UAC args
#        [| transports, default "udp tcp"]
# UAS port = UAC port + 1; TCP ports = UDP ports + 100. In the extra args
# {UAS_PORT} is replaced by the UAS port.
# RTP/echo ports (-mp, never used for traffic) are derived from the SIP port.
# --------------------------------------------------------------------------
SCENARIOS=(
    "answered_caller_bye|5100|2|2|-r 2"
    "answered_callee_bye|5110|1|1|"
    "busy_486|5120|1|1|"
    "cancel_after_180|5130|1|1|"
    "auth_407_then_answer|5140|1|1|-au 1001 -ap secret -auth_uri 2002@127.0.0.1:{UAS_PORT}"
    "reinvite_hold_resume|5150|1|1|"
    "session_timer_no_bye|5160|1|2|"
    # issue #5 (call semantics): UDP only
    "early_media_answer|5170|1|1||udp"
    "update_hold|5180|1|1||udp"
    "prack_100rel|5190|1|1||udp"
)

# Expected message ladder per Call-ID (Call-ID with the "<n>-<transport>-"
# prefix replaced by "<n>-T-"), in capture order.
declare -A EXPECTED=(
    [answered_caller_bye]="1-T-answered-caller-bye@sipcdr.test: INVITE 100 180 200 ACK BYE 200
2-T-answered-caller-bye@sipcdr.test: INVITE 100 180 200 ACK BYE 200"
    [answered_callee_bye]="1-T-answered-callee-bye@sipcdr.test: INVITE 100 180 200 ACK BYE 200"
    [busy_486]="1-T-busy-486@sipcdr.test: INVITE 100 180 486 ACK"
    [cancel_after_180]="1-T-cancel-after-180@sipcdr.test: INVITE 100 180 CANCEL 200 487 ACK"
    [auth_407_then_answer]="1-T-auth-407-then-answer@sipcdr.test: INVITE 100 407 ACK INVITE 100 180 200 ACK BYE 200"
    [reinvite_hold_resume]="1-T-reinvite-hold-resume@sipcdr.test: INVITE 100 180 200 ACK INVITE 200 ACK INVITE 200 ACK BYE 200"
    [session_timer_no_bye]="1-T-session-timer-no-bye@sipcdr.test: INVITE 100 180 200 ACK
options-1-T-session-timer-no-bye@sipcdr.test: OPTIONS 200"
    [early_media_answer]="1-T-early-media-answer@sipcdr.test: INVITE 100 183 200 ACK BYE 200"
    [update_hold]="1-T-update-hold@sipcdr.test: INVITE 100 180 200 ACK UPDATE 200 UPDATE 200 BYE 200"
    [prack_100rel]="1-T-prack-100rel@sipcdr.test: INVITE 100 183 PRACK 200 200 ACK BYE 200"
)

declare -A LADDER_TEXT=(
    [answered_caller_bye]="INVITE(SDP) / 100 / 180 / 200(SDP) / ACK, ~1 s, BYE (caller) / 200; two overlapping calls started 0.5 s apart"
    [answered_callee_bye]="INVITE(SDP) / 100 / 180 / 200(SDP) / ACK, ~1 s, BYE (callee, From/To swapped) / 200"
    [busy_486]="INVITE(SDP) / 100 / 180, ~0.5 s, 486 Busy Here / ACK"
    [cancel_after_180]="INVITE(SDP) / 100 / 180, ~0.5 s, CANCEL / 200 (CANCEL) / 487 (INVITE) / ACK"
    [auth_407_then_answer]="INVITE / 100 / 407 (Proxy-Authenticate) / ACK, INVITE (CSeq 2, Proxy-Authorization) / 100 / 180 / 200 / ACK, ~1 s, BYE / 200"
    [reinvite_hold_resume]="INVITE / 100 / 180 / 200 / ACK, ~1 s, re-INVITE a=sendonly (CSeq 2) / 200 a=recvonly / ACK, ~1 s, re-INVITE a=sendrecv (CSeq 3) / 200 / ACK, ~1 s, BYE (CSeq 4) / 200"
    [session_timer_no_bye]="INVITE (Session-Expires: 2;refresher=uac, Supported: timer) / 100 / 180 / 200 (Session-Expires: 2;refresher=uac, Require: timer) / ACK, no refresh, no BYE; ~4 s after the ACK an out-of-dialog OPTIONS / 200 (Call-ID options-..., sent by a second sipp from the same port; over TCP on a new connection)"
    [early_media_answer]="INVITE(SDP: PCMU, PCMA, telephone-event; P-Asserted-Identity, Privacy: id, Diversion) / 100, ~0.2 s, 183 Session Progress (SDP: PCMA, telephone-event), ~1 s, 200 (same SDP, Server header) / ACK, ~1 s, BYE (caller) / 200"
    [update_hold]="INVITE(SDP) / 100 / 180, ~0.2 s, 200(SDP) / ACK, ~1 s, UPDATE a=sendonly (CSeq 2, o= version 1001) / 200 a=recvonly, ~1 s, UPDATE a=sendrecv (CSeq 3, o= version 1002) / 200 a=sendrecv, ~1 s, BYE (CSeq 4) / 200"
    [prack_100rel]="INVITE(SDP, Supported: 100rel) / 100, ~0.2 s, 183 (Require: 100rel, RSeq: 1, SDP: PCMA) / PRACK (CSeq 2, RAck: 1 1 INVITE) / 200 (PRACK), ~1 s, 200 (INVITE, SDP) / ACK, ~1 s, BYE (CSeq 3) / 200"
)

declare -A OUTCOME_TEXT=(
    [answered_caller_bye]="2 calls, both answered (~0.2 s ringing), ~1 s talk, hung up by caller"
    [answered_callee_bye]="1 call, answered, ~1 s talk, hung up by callee"
    [busy_486]="1 call, not answered: busy (486), ~0.5 s ringing"
    [cancel_after_180]="1 call, not answered: cancelled by caller after ~0.5 s ringing (487)"
    [auth_407_then_answer]="1 call (one Call-ID, two INVITE transactions), answered after the auth challenge, ~1 s talk, hung up by caller"
    [reinvite_hold_resume]="1 call, answered, held ~1 s then resumed, ~3 s total talk, hung up by caller; the re-INVITEs are not new calls"
    [session_timer_no_bye]="1 call, answered, never hung up: ends by session-timer expiry 2 s after the 200; the OPTIONS is not a call"
    [early_media_answer]="1 call with early media: progress_media at the 183 (no progress_time), pdd = 183 - INVITE, ring = 200 - 183, codec PCMA/8000 from the 183's answer, ~1 s talk, hung up by caller; asserted_number +4940123456, privacy id, redirect_number 3003, callee_user_agent from Server"
    [update_hold]="1 call, answered, held ~1 s by UPDATE then resumed: hold_ms = resume UPDATE - hold UPDATE, hold_events {{hold,resume}} in microseconds, hung up by caller"
    [prack_100rel]="1 call (PRACK and its 200 are not a new leg), progress_media at the reliable 183, pdd from it, codec PCMA/8000, ~1 s talk, hung up by caller"
)

# --------------------------------------------------------------------------
# Capture analysis
# --------------------------------------------------------------------------
tshark_opts() {
    local transport=$1
    if [[ $transport == tcp ]]; then
        echo "-o tcp.desegment_tcp_streams:TRUE"
    fi
}

# Print "<call-id>: <msg> <msg> ..." per Call-ID, in order of first appearance.
# Works even when one TCP segment carries several SIP messages: tshark's Info
# column lists them in order ("Request: INVITE ... | Status: 100 Trying | ").
ladder_signature() {
    local pcap=$1 transport=$2
    # shellcheck disable=SC2046
    tshark_q -r "$pcap" $(tshark_opts "$transport") -Y sip -T fields \
        -E separator=$'\t' -E occurrence=a -E aggregator=',' \
        -e sip.Call-ID -e _ws.col.Info |
        awk -F'\t' '
        {
            ncid = split($1, cids, ",")
            nmsg = split($2, parts, / \| ?/)
            k = 0
            for (i = 1; i <= nmsg; i++) {
                p = parts[i]
                sub(/^ +/, "", p)
                if (p !~ /^(Request|Status): /) continue
                k++
                cid = (k <= ncid) ? cids[k] : cids[ncid]
                split(p, w, " ")
                m = w[2]
                if (!(cid in seq)) order[++n] = cid
                seq[cid] = seq[cid] " " m
            }
        }
        END { for (i = 1; i <= n; i++) print order[i] ":" seq[order[i]] }'
}

# The human-readable ladder used in the README and by reviewers: one line per
# SIP message (a TCP segment carrying several messages gives several lines).
ladder_table() {
    local pcap=$1 transport=$2
    # shellcheck disable=SC2046
    tshark_q -r "$pcap" $(tshark_opts "$transport") -Y sip -T fields \
        -E separator=$'\t' -E occurrence=a -E aggregator=',' \
        -e frame.time_epoch -e ip.src -e "$transport.srcport" -e ip.dst -e "$transport.dstport" \
        -e sip.Call-ID -e sip.CSeq -e _ws.col.Info |
        awk -F'\t' '{
            t = $1
            # frame.time_epoch has nanosecond digits; pcap resolution is microseconds.
            sub(/000$/, "", t)
            ncid = split($6, cids, ",")
            ncseq = split($7, cseqs, ",")
            nmsg = split($8, parts, / \| ?/)
            k = 0
            for (i = 1; i <= nmsg; i++) {
                p = parts[i]
                sub(/^ +/, "", p)
                if (p !~ /^(Request|Status): /) continue
                k++
                split(p, w, " ")
                printf "%s  %s:%s -> %s:%s  %-48s %-8s CSeq: %s\n", t, $2, $3, $4, $5,
                    cids[k <= ncid ? k : ncid], w[2], cseqs[k <= ncseq ? k : ncseq]
            }
        }'
}

# --------------------------------------------------------------------------
# Recording one scenario over one transport
# --------------------------------------------------------------------------
record() {
    local name=$1 transport=$2 uac_port=$3 uac_calls=$4 uas_calls=$5 extra=$6
    local uas_port=$((uac_port + 1))
    local sipp_t pcap cid_str dash_name
    [[ $transport == udp ]] && sipp_t=u1 || sipp_t=t1
    pcap="$OUT_DIR/${transport}_${name}.pcap"
    dash_name=${name//_/-}
    cid_str="%u-${transport}-${dash_name}@sipcdr.test"
    local dir="$WORK/${transport}_${name}"
    extra=${extra//\{UAS_PORT\}/$uas_port}
    mkdir -p "$dir"

    echo "== ${transport}_${name}: UAC 127.0.0.1:$uac_port -> UAS 127.0.0.1:$uas_port, $uac_calls call(s)"

    rm -f "$pcap"
    tcpdump -i lo -n -U --immediate-mode -Z root -s 0 -w "$pcap" \
        "$transport port $uac_port or $transport port $uas_port" \
        >"$dir/tcpdump.log" 2>&1 &
    local tcpdump_pid=$!
    PIDS+=("$tcpdump_pid")
    if ! wait_for_text "$dir/tcpdump.log" "listening on" 50; then
        echo "tcpdump did not start:" >&2
        cat "$dir/tcpdump.log" >&2
        return 1
    fi
    sleep 0.2

    local common=(-i 127.0.0.1 -t "$sipp_t" -nostdin -nd -timeout 30s -timeout_error)

    # UAS first; it must be listening before the UAC sends.
    (cd "$dir" && exec sipp -sf "$SCEN_DIR/${name}_uas.xml" "${common[@]}" \
        -p "$uas_port" -mp $((20000 + (uas_port - 5000) * 10)) -m "$uas_calls" \
        >"$dir/uas.log" 2>&1) &
    local uas_pid=$!
    PIDS+=("$uas_pid")
    if ! wait_for_port "$transport" "$uas_port" 50; then
        echo "sipp UAS did not open $transport/$uas_port" >&2
        return 1
    fi
    sleep 0.3

    # UAC runs, one after the other: the main one, then, if the scenario has
    # one, a follow-up UAC (${name}_options_uac.xml) from the same port with
    # its own Call-IDs ("options-" prefix).
    local runs=("uac|$cid_str|$uac_calls")
    if [[ -r "$SCEN_DIR/${name}_options_uac.xml" ]]; then
        runs+=("options_uac|options-$cid_str|1")
    fi

    local run role run_cid run_calls uac_pid uac_rc=0 uas_rc=0 uas_done=0 stop_at ticks
    for run in "${runs[@]}"; do
        IFS='|' read -r role run_cid run_calls <<<"$run"
        # shellcheck disable=SC2086
        (cd "$dir" && exec sipp -sf "$SCEN_DIR/${name}_${role}.xml" "127.0.0.1:$uas_port" "${common[@]}" \
            -p "$uac_port" -mp $((20000 + (uac_port - 5000) * 10)) -m "$run_calls" \
            -cid_str "$run_cid" $extra \
            >"$dir/$role.log" 2>&1) &
        uac_pid=$!
        PIDS+=("$uac_pid")

        # Wait for this UAC. If it fails, or the UAS dies early, stop the
        # other side shortly after instead of waiting for its -timeout.
        stop_at=0 ticks=0
        while :; do
            if ! kill -0 "$uac_pid" 2>/dev/null; then
                wait "$uac_pid" || uac_rc=$?
                forget_pid "$uac_pid"
                break
            fi
            if ((!uas_done)) && ! kill -0 "$uas_pid" 2>/dev/null; then
                wait "$uas_pid" || uas_rc=$?
                uas_done=1
                forget_pid "$uas_pid"
                ((uas_rc == 0)) || stop_at=$((ticks + 5))
            fi
            if ((stop_at && ticks >= stop_at)); then
                kill -INT "$uac_pid" 2>/dev/null || true
            fi
            sleep 0.1
            ticks=$((ticks + 1))
        done
        if ((uac_rc != 0)); then
            echo "sipp UAC ($role) failed with exit $uac_rc" >&2
            break
        fi
    done

    # Then the UAS, which exits by itself after its -m calls.
    ticks=0
    while ((!uas_done)); do
        if ! kill -0 "$uas_pid" 2>/dev/null; then
            wait "$uas_pid" || uas_rc=$?
            uas_done=1
            forget_pid "$uas_pid"
            break
        fi
        # After a UAC failure the UAS may never see its last call: stop it.
        if ((uac_rc != 0 && ticks == 5)); then
            kill -INT "$uas_pid" 2>/dev/null || true
        fi
        sleep 0.1
        ticks=$((ticks + 1))
    done

    # Let the last packets reach the capture, then stop tcpdump cleanly.
    sleep 0.3
    kill -INT "$tcpdump_pid"
    wait "$tcpdump_pid" || true
    forget_pid "$tcpdump_pid"

    if ((uac_rc != 0 || uas_rc != 0)); then
        echo "sipp failed: UAC exit $uac_rc, UAS exit $uas_rc" >&2
        local log
        for log in "$dir"/*uac.log "$dir/uas.log"; do
            [[ -r $log ]] || continue
            echo "--- $log" >&2
            grep -v '^\s*$' "$log" | tail -30 >&2 || true
        done
        return 1
    fi

    local got want
    got=$(ladder_signature "$pcap" "$transport" | sed "s/^\(options-\)\{0,1\}\([0-9]*\)-$transport-/\1\2-T-/")
    want=${EXPECTED[$name]}
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
# README
# --------------------------------------------------------------------------
write_readme() {
    local readme="$OUT_DIR/README.md"
    {
        cat <<'EOF'
# SIP test captures

Generated by `scripts/record-captures.sh` with sipp (scenarios in
`scripts/sipp/`), tcpdump and tshark, all on 127.0.0.1. Each scenario is
recorded once over UDP (`sipp -t u1`) and once over TCP (`sipp -t t1`, one
connection from the UAC's port to the UAS's port), except the issue-#5 ones
(early media, UPDATE hold, PRACK), which are UDP only. The captures with a
Kamailio proxy or three parties are at the end (`scripts/record-proxy.sh`).
`tests/semantics.rs` checks the issue-#5 columns of those captures by name;
`captures/NAME.csv` is the exact expected output of every capture.

Regenerate (as root; installs sip-tester, tcpdump and tshark if missing,
takes well under 2 minutes):

```sh
bash scripts/record-captures.sh
```

The script checks both sipp exit codes and the per-Call-ID message ladder of
every capture, and rewrites this file (the ladders below) from the new pcaps.
Content is fixed as far as sipp allows: Call-IDs (`-cid_str`), tags
(`uac-<n>`, `uas-<n>`), Via branches, CSeqs, SDP and ports are constant
between runs; only timestamps (and TCP sequence numbers) change.

Parties: caller `"Alice" <sip:1001@sipcdr.test>` (sipp UAC, tag `uac-<n>`),
callee `"Bob" <sip:2002@sipcdr.test>` (sipp UAS, tag `uas-<n>`). Ports: UAS
port = UAC port + 1; TCP ports = UDP ports + 100. TCP checksums on lo are
offloaded and show as invalid in tshark; that is expected.

`tls_sip_5061.pcap` is recorded by `scripts/record-tls.sh` instead: one real
TLS 1.3 connection (OpenSSL s_server/s_client, throw-away key) carrying an
INVITE. It must give no CDR and count one TLS connection in the summary.

| File | Transport | UAC -> UAS port | Message ladder | Calls | Expected outcome |
|------|-----------|-----------------|----------------|-------|------------------|
EOF
        local entry name port uac_calls uas_calls extra transports transport p
        for transport in udp tcp; do
            for entry in "${SCENARIOS[@]}"; do
                IFS='|' read -r name port uac_calls uas_calls extra transports <<<"$entry"
                [[ " ${transports:-udp tcp} " == *" $transport "* ]] || continue
                p=$port
                [[ $transport == tcp ]] && p=$((port + 100))
                printf '| `%s_%s.pcap` | %s | %s -> %s | %s | %s | %s |\n' \
                    "$transport" "$name" "${transport^^}" "$p" "$((p + 1))" \
                    "${LADDER_TEXT[$name]}" "$uac_calls" "${OUTCOME_TEXT[$name]}"
            done
        done
        cat <<'EOF'

## Ladders

Produced from the output of (TCP files additionally with
`-o tcp.desegment_tcp_streams:TRUE` and `tcp.srcport`/`tcp.dstport`):

```sh
tshark -r captures/udp_answered_caller_bye.pcap -Y sip -T fields \
  -e frame.time_epoch -e ip.src -e udp.srcport -e ip.dst -e udp.dstport \
  -e sip.Call-ID -e sip.CSeq -e sip.Method -e sip.Status-Code
```

reformatted into columns: epoch time (microseconds), source -> destination,
Call-ID, method or status code, CSeq.
EOF
        for transport in udp tcp; do
            for entry in "${SCENARIOS[@]}"; do
                IFS='|' read -r name port uac_calls uas_calls extra transports <<<"$entry"
                [[ " ${transports:-udp tcp} " == *" $transport "* ]] || continue
                printf '\n### %s_%s.pcap\n\n```\n' "$transport" "$name"
                ladder_table "$OUT_DIR/${transport}_${name}.pcap" "$transport"
                printf '```\n'
            done
        done
        # Kamailio and multi-party captures (scripts/record-proxy.sh).
        bash "$ROOT/scripts/record-proxy.sh" --readme-section
    } >"$readme.tmp"
    mv "$readme.tmp" "$readme"
}

# --------------------------------------------------------------------------
main() {
    if [[ ${1:-} == --readme-only ]]; then
        write_readme
        echo "wrote $OUT_DIR/README.md"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "run as root (tcpdump on lo, apt-get)" >&2
        exit 1
    fi
    ensure_tools
    for f in "$SCEN_DIR"/*.xml; do [[ -r $f ]] || { echo "missing scenarios in $SCEN_DIR" >&2; exit 1; }; done
    mkdir -p "$OUT_DIR"
    WORK=$(mktemp -d /tmp/sipcdr-captures.XXXXXX)

    local only=${1:-} entry name port uac_calls uas_calls extra transports transport
    for transport in udp tcp; do
        for entry in "${SCENARIOS[@]}"; do
            IFS='|' read -r name port uac_calls uas_calls extra transports <<<"$entry"
            [[ " ${transports:-udp tcp} " == *" $transport "* ]] || continue
            [[ -z $only || $only == "$name" || $only == "${transport}_$name" ]] || continue
            [[ $transport == tcp ]] && port=$((port + 100))
            record "$name" "$transport" "$port" "$uac_calls" "$uas_calls" "$extra"
        done
    done

    if [[ -z $only ]]; then
        write_readme
        echo "wrote $OUT_DIR/README.md"
    fi
    echo "done"
}

# scripts/record-proxy.sh sources this file for its helpers.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
