#!/usr/bin/env bash
# The shim's own cost, side by side: the shim at REV (default: the commit before HEAD's shim
# changed) against the working tree's, with git replaced by a stand-in that exits at once, so
# that only the shim is measured. Usage: bench/shim-cost.sh [REV] [ROUNDS] [CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-$(git log -n 1 --format=%H -- shim)~1}
rounds=${2:-6}
calls=${3:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old" "$work/state"
git archive "$rev" shim | tar -x -C "$work/old"
git init -q "$work/repo"
git -C "$work/repo" remote add origin https://github.com/acme/app.git
printf 'https://github.com - /acme/\n' >"$work/state/origins"
printf 'https://github.com gh / owner acme\n' >"$work/state/routes"
printf '#!/bin/sh\nexit 0\n' >"$work/git"
chmod +x "$work/git"
export GIT_TOKEN_KEEPER_DIR=$work/state GIT_TOKEN_KEEPER_REAL_GIT=$work/git GIT_CONFIG_NOSYSTEM=1

# Mean microseconds per call of SHIM-DIR/git ARGS…
per_call() {
  local shim=$1
  shift
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$calls"); do (cd "$work/repo" && "$shim/git" "$@" </dev/null >/dev/null 2>&1); done
  end=$(date +%s%N)
  echo $(((end - start) / calls / 1000))
}

for args in "ls-remote origin" "rev-parse HEAD"; do
  old=0 new=0
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    old=$((old + $(per_call "$work/old/shim" $args)))
    # shellcheck disable=SC2086
    new=$((new + $(per_call "$PWD/shim" $args)))
  done
  printf 'git %-16s shim at %.12s: %5d us   working tree: %5d us   (%+d us)\n' "$args" "$rev" $((old / rounds)) $((new / rounds)) $(((new - old) / rounds))
done
