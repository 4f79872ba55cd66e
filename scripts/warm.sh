#!/usr/bin/env bash
# Puts a capture in the page cache in one known state before it is timed: its cached pages are
# dropped (dd's `nocache`, clean pages only, no privileges needed) and the file is read once, so
# the kernel caches it as a sequential read from the disk does, in large folios (ext4 and others
# since Linux 6.x), whatever wrote the file and whatever of it the kernel reclaimed since. Without
# it, the same 1 GB file read 0.226 s or 0.124 s in the floor (examples/floor.rs) on the same host,
# as its pages were cached small (left by a writer, or read back one by one after reclaim) or large:
# the kernel's per-page lookup (`filemap_get_read_batch`) was 21 % of the floor's time in the first.
# KEEP=1 leaves the cached pages as they are and only reads the file.
# Usage: [KEEP=1] scripts/warm.sh FILE
set -euo pipefail
file=$1
if [ -z "${KEEP:-}" ]; then
  dd if="$file" iflag=nocache count=0 status=none
fi
cat "$file" > /dev/null
