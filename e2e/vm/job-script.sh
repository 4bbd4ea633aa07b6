# Sourced by e2e/vm/run.sh and e2e/cluster/node-v2.sh (run-job): the one way a command of the
# host travels into a VM, whose guest sees the host's files but not its environment.
# shellcheck shell=bash

# vm_job_script set|exec COMMAND [ARG...]: prints a bash script that runs COMMAND in the VM as
# it would run here: the caller's WASMPOD_*, CI, RUST_* and CARGO_TARGET_DIR variables exported,
# its working directory, then `set -- COMMAND...` (for a guest that sources the script and runs
# "$@" after its own set-up) or `exec COMMAND...`. Every word is quoted with %q: a value with a
# quote or a space arrives as it left.
vm_job_script() {
  local mode=$1 var
  shift
  case $mode in
    set) mode='set --' ;;
    exec) ;;
    *) echo "vm_job_script: mode '$mode', want set or exec" >&2; return 2 ;;
  esac
  for var in $(compgen -e); do
    if [[ $var =~ ^(WASMPOD_[A-Z0-9_]*|CI|RUST_[A-Z_]*|CARGO_TARGET_DIR)$ ]]; then
      printf 'export %s=%q\n' "$var" "${!var}"
    fi
  done
  printf 'cd %q\n' "$PWD"
  printf '%s' "$mode"
  printf ' %q' "$@"
  printf '\n'
}
