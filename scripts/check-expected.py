#!/usr/bin/env python3
"""Checks sipcdr's CDRs against the generator's expected CDRs (examples/gen.rs --expected).

Usage: scripts/check-expected.py EXPECTED.csv GOT.csv
Every expected row must appear exactly once in GOT (matched by call_id) with the same value in
each column the expected file has, and GOT must hold no other rows. Exit 0 when equal, 1 with
the first differences otherwise.
"""
import csv
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    exp_path, got_path = sys.argv[1], sys.argv[2]
    with open(exp_path, newline="") as f:
        expected = list(csv.DictReader(f))
    if not expected:
        print(f"check-expected: {exp_path}: no rows", file=sys.stderr)
        return 1
    cols = list(expected[0].keys())
    # Only the compared columns of each row are kept: whole rows of a 1.5 M-call capture took
    # more memory than a machine holding two growth captures in tmpfs had left.
    got: dict[str, list[dict[str, str | None]]] = {}
    rows = 0
    with open(got_path, newline="") as f:
        for r in csv.DictReader(f):
            rows += 1
            got.setdefault(r.get("call_id", ""), []).append({c: r.get(c) for c in cols})
    bad = 0
    for e in expected:
        g = got.get(e["call_id"], [])
        if len(g) != 1 or any(g[0].get(c) != e[c] for c in cols):
            bad += 1
            if bad <= 5:
                have = [{c: x.get(c) for c in cols} for x in g]
                print(f"check-expected: call {e['call_id']}: expected {e}, got {have}", file=sys.stderr)
    if bad or rows != len(expected):
        print(f"check-expected: {bad} of {len(expected)} expected rows differ; {rows} rows in {got_path}", file=sys.stderr)
        return 1
    print(f"CDRs equal the expected: {rows} rows, columns {','.join(cols)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
