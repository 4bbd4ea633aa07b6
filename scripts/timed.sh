#!/usr/bin/env bash
# usage: scripts/timed.sh NAME COMMAND...
# Runs COMMAND and prints one line with its wall time ("[time] NAME: 83 s, ok"), so the output of
# `make test` says where a CI run's minutes went. The exit status is COMMAND's.
set -uo pipefail
name=$1; shift
t0=$(date +%s)
"$@"; rc=$?
verdict=ok; ((rc == 0)) || verdict="failed (exit $rc)"
echo "[time] $name: $(( $(date +%s) - t0 )) s, $verdict"
exit $rc
