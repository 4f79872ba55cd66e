#!/usr/bin/env bash
# Before/after on a shared, noisy machine: runs two or more sipcdr binaries alternately on one
# capture, RUNS rounds (each round runs every binary once, in turn), and prints for each the
# median wall time and the median CPU time (user + system), with every run's figure. Keep copies
# of the builds to compare (cp target/release/sipcdr /tmp/before ...). Files are written and then
# removed, as bench.sh does; OUT=- writes to /dev/null instead. Extra sipcdr arguments after `--`.
# Usage: scripts/ab.sh FILE RUNS BINARY BINARY… [-- sipcdr args…]
set -euo pipefail
file=$1; runs=$2; shift 2
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#bins[@]} -ge 2 ] || { echo "usage: scripts/ab.sh FILE RUNS BINARY BINARY… [-- args]" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
bash "$(dirname "$0")/warm.sh" "$file"   # as bench.sh (KEEP=1: the cached pages as they are)
for _ in $(seq "$runs"); do
  for i in "${!bins[@]}"; do
    rm -rf "$out/cdr"
    if [ "${OUT:-}" = - ]; then dest=(-o -); else dest=(-o "$out/cdr" --rotate-interval 0); fi
    /usr/bin/time -f "$i %e %U %S" -o "$out/t" "${bins[$i]}" -q "${dest[@]}" -r "$file" "$@" > /dev/null
    cat "$out/t"
  done
done | awk -v names="${bins[*]}" '
  { wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " ($3 + $4) }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END { split(names, b, " "); for (i = 0; i < length(b); i++)
    printf "%s\n  wall median %.3f s:%s\n  CPU  median %.3f s:%s\n", b[i + 1], median(wall[i]), wall[i], median(cpu[i]), cpu[i] }'
