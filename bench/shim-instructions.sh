#!/usr/bin/env bash
# The shim's own work on the way to git, counted in CPU instructions (valgrind's callgrind):
# unlike a timing, the same on a busy machine. The shim at REV (default e5795eb) against the
# working tree's and the floor (`exec git "$@"`), git replaced by `exit 0` at each exec, the
# shim's folder first on PATH as installed. Usage: bench/shim-instructions.sh [REV]
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-e5795eb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old" "$work/new" "$work/floor" "$work/state"
git archive "$rev" shim | tar -x -C "$work/old"
cp -r shim "$work/new/"
printf '#!/bin/sh\nexec /usr/bin/git "$@"\n' >"$work/floor/git"
printf 'https://github.com - /acme/\n' >"$work/state/origins"
git init -q "$work/repo"
git -C "$work/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m one
export GIT_TOKEN_KEEPER_DIR=$work/state GIT_CONFIG_NOSYSTEM=1

# Instructions dash runs for FILE ARGS… up to git's exec.
count() {
  local file=$1 dir
  shift
  dir=$(dirname "$file")
  # shellcheck disable=SC2016
  sed 's/^\( *\)exec "\$gtk_real_git" "\$@"/\1exit 0/; s/^exec \/usr\/bin\/git "\$@"/exit 0/' "$file" >"$dir/git.counted"
  (cd "$work/repo" && PATH=$dir:$PATH valgrind --tool=callgrind --callgrind-out-file="$work/out" /bin/dash "$dir/git.counted" "$@" >/dev/null 2>&1) || true
  sed -n 's/^summary: //p' "$work/out"
}

printf '%-16s %12s %14s %14s\n' command floor "shim $rev" "shim now"
for args in "rev-parse HEAD" "status" "config user.name" "branch" "log -1" "checkout -q HEAD"; do
  # shellcheck disable=SC2086
  printf '%-16s %12s %14s %14s\n' "$args" "$(count "$work/floor/git" $args)" "$(count "$work/old/shim/git" $args)" "$(count "$work/new/shim/git" $args)"
done
