#!/usr/bin/env bash
# usage: ram-copy.sh PATH...   (inside a VM of e2e/vm/run.sh, as root)
# The VM's root is 9p without a page cache: every exec of a big binary (ctr, containerd, the
# shim, a test binary) reads it again across the emulated bus. Copies each PATH (a file, or a
# directory's files) into RAM once, debug info stripped, and binds the copy over the original,
# so callers keep using the paths they know. Missing paths are left alone.
set -euo pipefail
ram=/run/wasmpod-ram
mkdir -p "$ram"
for p; do
  [[ -e $p ]] || continue
  mountpoint -q "$p" 2>/dev/null && continue   # copied already (a directory bound over)
  mkdir -p "$ram$(dirname "$p")"
  if [[ -d $p ]]; then
    cp -a "$p" "$ram$p"
    for f in "$ram$p"/*; do [[ -f $f && -x $f ]] && objcopy --strip-debug "$f" 2>/dev/null || true; done
  else
    [[ -e $ram$p ]] && continue
    objcopy --strip-debug "$p" "$ram$p" 2>/dev/null || cp -a "$p" "$ram$p"
  fi
  mount --bind "$ram$p" "$p"
done
