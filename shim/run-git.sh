# shellcheck shell=sh
# git-token-keeper shim: process plumbing for network commands. Sourced by git-network.sh.
# Runs git with stdout, stdin and the environment untouched and its stderr streamed live and
# copied for the retry decision; passes SIGTERM, SIGINT and SIGHUP on to git at once.
# shellcheck disable=SC2154

# git's stderr is copied to a file, in a private folder of this shim's own, which only it
# removes (on exit). Nothing goes in the daemon's state dir: that is shared with the group, and
# the daemon may run in another container.
gtk_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/git-token-keeper.XXXXXX") || exec_git "$@"
trap 'rm -rf "$gtk_tmpdir"' EXIT
gtk_tmp=$gtk_tmpdir/shim
# git's stderr reaches tee through a FIFO, so that git runs as a child of this shell whose pid
# it knows (a pipeline's first process it would not).
mkfifo "$gtk_tmp.fifo" || exec_git "$@"

# git runs in the background so that a signal sent to the shim is handled at once (a shell
# runs traps only when its foreground child has ended). The shell makes a background job
# ignore SIGINT and SIGQUIT, so a Ctrl-C reaches git as SIGTERM (git cleans up the same way
# for both) and the shim then exits 130, as after a Ctrl-C.
# git's own children (git-remote-https, index-pack) do not end with git: in CI, where nobody
# types at a terminal, git runs as the leader of a process group of its own (setsid), and a
# signal goes to that whole group, as a terminal's Ctrl-C would. At a terminal it stays in the
# terminal's session (ssh may need to ask for a passphrase there).
gtk_child=''
gtk_group=''
gtk_signal=''
gtk_setsid=''
if [ ! -t 0 ] && command -v setsid >/dev/null 2>&1; then gtk_setsid=setsid; fi
forward_signal() {
  gtk_signal=$1
  if [ -n "$gtk_child" ]; then
    gtk_sig=$1
    [ "$1" = INT ] && gtk_sig=TERM
    kill "-$gtk_sig" "$gtk_group$gtk_child" 2>/dev/null || kill "-$gtk_sig" "$gtk_child" 2>/dev/null
  else
    exit_for_signal
  fi
}
exit_for_signal() {
  case $gtk_signal in HUP) exit 129 ;; INT) exit 130 ;; *) exit 143 ;; esac
}
trap 'forward_signal HUP' HUP
trap 'forward_signal INT' INT
trap 'forward_signal TERM' TERM

# Waits for the background child $1 (git, or a backoff's sleep); sets gtk_rc to its status.
# A trapped signal interrupts `wait` with a status over 128 while the child still runs: wait
# again, for the status the child really ends with.
wait_child() {
  gtk_child=$1
  gtk_rc=0
  while kill -0 "$gtk_child" 2>/dev/null; do
    wait "$gtk_child"
    gtk_rc=$?
  done
  gtk_child=''
  gtk_group=''
}

# The caller's stdin, kept on fd 4: a background job's stdin would be /dev/null. (`command`:
# a failed redirection on a special built-in would end the shell; a closed stdin stays closed.)
{ command exec 4<&0; } 2>/dev/null || exec 4<&-

# Runs git once: stdout and stdin untouched, stderr streamed live and copied for
# classify_failure.
run_git_once() {
  tee "$gtk_tmp.err" <"$gtk_tmp.fifo" >&2 &
  gtk_tee=$!
  if [ -n "$gtk_setsid" ]; then
    setsid "$gtk_real_git" "$@" 2>"$gtk_tmp.fifo" <&4 4<&- &
    gtk_group=-
  else
    "$gtk_real_git" "$@" 2>"$gtk_tmp.fifo" <&4 4<&- &
  fi
  wait_child "$!"
  gtk_git_rc=$gtk_rc
  wait_child "$gtk_tee"
  gtk_rc=$gtk_git_rc
  [ -n "$gtk_signal" ] && exit_for_signal_or "$gtk_rc"
  return 0
}

# After a signal was passed on: git's own status when it died of it, else the signal's.
exit_for_signal_or() {
  [ "$gtk_signal" = INT ] && exit 130
  [ "$1" -gt 128 ] && exit "$1"
  exit_for_signal
}

# Capped exponential backoff with jitter: about 1 s, 2 s, 4 s … at most 16 s.
backoff_sleep() {
  gtk_ms=$((1000 << ($1 > 4 ? 4 : $1)))
  gtk_rand=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null) || gtk_rand=32768
  gtk_rand=${gtk_rand##* }
  gtk_ms=$((gtk_ms / 2 + gtk_ms * gtk_rand / 131070))
  gtk_delay=$((gtk_ms / 1000)).$(printf '%03d' $((gtk_ms % 1000)))
  sleep "$gtk_delay" &
  wait_child "$!"
  [ -n "$gtk_signal" ] && exit_for_signal
  return 0
}

# Runs the real git with the caller's global options (-C, -c, --git-dir …: the first
# gtk_globals of the caller's arguments), so that it reads the repository the way the command
# will: git_with_globals N ARG1 … ARGN CALLER-ARGUMENTS… runs git GLOBALS… ARG1 … ARGN.
git_with_globals() {
  gtk_nc=$1
  shift
  gtk_all=$#
  gtk_i=0
  for gtk_a do
    [ "$gtk_i" -ge "$gtk_nc" ] && [ "$gtk_i" -lt $((gtk_nc + gtk_globals)) ] && set -- "$@" "$gtk_a"
    gtk_i=$((gtk_i + 1))
  done
  gtk_i=0
  for gtk_a do
    [ "$gtk_i" -lt "$gtk_nc" ] && set -- "$@" "$gtk_a"
    gtk_i=$((gtk_i + 1))
  done
  shift "$gtk_all"
  "$gtk_real_git" "$@"
}

# Calls function $1 with each argument after the subcommand; stops when it returns non-zero.
each_command_arg() {
  gtk_fn=$1
  shift
  gtk_skip_n=$((gtk_globals + 1))
  for gtk_a do
    if [ "$gtk_skip_n" -gt 0 ]; then
      gtk_skip_n=$((gtk_skip_n - 1))
      continue
    fi
    "$gtk_fn" "$gtk_a" || return 1
  done
}
