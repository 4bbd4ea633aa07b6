#!/usr/bin/env bash
# usage: scripts/ci-freshness.sh   (from .ci/run, in CI's fresh clone, before anything builds)
#
# cargo decides freshness by mtime, and every file of a fresh clone is new: each CI run would
# recompile every workspace crate (about 5 minutes here) although nothing changed. So CI builds
# into a target dir of its own, and a file whose content is what the previous CI run had gets
# back the mtime it had then; any other file keeps its new mtime, and what depends on it is
# rebuilt.
#
# Why this is sound: only CI runs build in $CI_TARGET_DIR, and each run records the content
# (sha256) and mtime of every file here *before* it builds. An artifact there was therefore built
# from recorded content, after the recorded mtime; a file whose content differs from the record
# keeps a newer mtime than any artifact, so cargo rebuilds its crate. Developer builds use the
# ordinary target dir and never mix in. The record names the clone's path too: crates compile in
# their own path (`env!("CARGO_MANIFEST_DIR")`: the tests find fixtures and scripts through it),
# so a clone elsewhere restores nothing and every workspace crate is rebuilt where it now is.
#
# Prints the target dir to use. Seeds it once from the ordinary one (dependencies built already).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=paths.sh
source "$root/scripts/paths.sh"
CI_TARGET_DIR=$WASMPOD_CACHE/target-ci
stamps=$CI_TARGET_DIR/.wasmpod-source-stamps
if [[ ! -d $CI_TARGET_DIR ]]; then
  mkdir -p "$WASMPOD_CACHE"
  if [[ -d $CARGO_TARGET_DIR ]]; then
    echo "[ci-freshness] seeding $CI_TARGET_DIR from $CARGO_TARGET_DIR" >&2
    cp -a --reflink=auto "$CARGO_TARGET_DIR" "$CI_TARGET_DIR.tmp.$$" && mv "$CI_TARGET_DIR.tmp.$$" "$CI_TARGET_DIR"
    rm -f "$stamps"
  else
    mkdir -p "$CI_TARGET_DIR"
  fi
fi
cd "$root"
# The root workspace only: the Wasm components and oci-pack build in target dirs that developer
# builds share, where an old mtime could hide a developer's different build.
python3 - "$stamps" "$root" <<'PY'
import hashlib, json, os, subprocess, sys
stamps, root = sys.argv[1], sys.argv[2]
# Every member of the workspace, as cargo lists them: a crate left out of a list kept here by hand
# (the activator, e2e/bench/native-hello were) is recompiled by every CI run.
meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1"],
    check=True, capture_output=True, cwd=root).stdout)
members = sorted(os.path.relpath(os.path.dirname(p["manifest_path"]), root) for p in meta["packages"])
files = subprocess.run(
    ["git", "ls-files", "-z", "--", "Cargo.toml", "Cargo.lock", ".cargo", "clippy.toml", *members],
    check=True, capture_output=True).stdout.decode().split("\0")
old = {}
if os.path.exists(stamps):
    lines = open(stamps).read().splitlines()
    if lines and lines[0] == f"root {root}":
        for line in lines[1:]:
            digest, mtime_ns, path = line.split(" ", 2)
            old[path] = (digest, int(mtime_ns))
    else:
        print(f"[ci-freshness] the last CI run built another clone ({lines[0] if lines else 'none'}): restoring nothing",
              file=sys.stderr)
restored, new = 0, [f"root {root}\n"]
for path in filter(None, files):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if path in old and old[path][0] == digest:
        os.utime(path, ns=(old[path][1], old[path][1]))
        restored += 1
    new.append(f"{digest} {os.stat(path).st_mtime_ns} {path}\n")
tmp = stamps + ".tmp"
with open(tmp, "w") as f:
    f.writelines(new)
os.replace(tmp, stamps)
print(f"[ci-freshness] {restored} of {len(new) - 1} files as in the last CI run, {len(new) - 1 - restored} new or changed",
      file=sys.stderr)
PY
echo "$CI_TARGET_DIR"
