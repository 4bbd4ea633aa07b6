#!/usr/bin/env bash
# usage: scripts/beside.sh 'BACKGROUND COMMAND' -- FOREGROUND COMMAND...
# Runs BACKGROUND (a shell command line) while FOREGROUND runs, so a tier that mostly waits on an
# emulated VM overlaps tiers that mostly wait on daemons. BACKGROUND's output is kept and printed
# in one piece when both are done; the exit status fails if either failed. A failing FOREGROUND
# stops BACKGROUND at once (the run has failed anyway).
set -uo pipefail
bg=$1; shift
[[ ${1:-} == -- ]] && shift
(($#)) || { echo "usage: $0 'BACKGROUND' -- FOREGROUND..." >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
setsid bash -c "$bg" > "$log" 2>&1 < /dev/null &
bg_pid=$!
echo "[beside] started in the background: $bg (output at the end)"
"$@"; fg_rc=$?
if ((fg_rc != 0)); then
  echo "[beside] stopping the background command: the foreground failed (exit $fg_rc)"
  kill -TERM -- "-$bg_pid" 2>/dev/null
fi
wait "$bg_pid"; bg_rc=$?
echo "[beside] ---- output of: $bg (exit $bg_rc) ----"
cat "$log"
echo "[beside] ---- end of: $bg ----"
((fg_rc == 0 && bg_rc == 0))
