# shellcheck shell=sh
# git-token-keeper shim: process plumbing for network commands. Sourced by git-network.sh.
# git runs with the caller's stdin, stdout, stderr, environment and other file descriptors as
# they are: nothing is read from its output (failures are judged from git's trace2 events, in a
# file of the shim's own). SIGTERM, SIGINT and SIGHUP sent to the shim are passed on to git at
# once (SIGQUIT too); when git dies of a signal, the shim dies of the same signal after it. What
# sh cannot give: git and its hooks ignore SIGINT and SIGQUIT, as every background job does.
# shellcheck disable=SC2154,SC2034

# A private folder of this shim's own, which only it removes (on exit): its config files, the
# trace2 events and the helper's marks. Nothing goes in the daemon's state dir: that is shared
# with the group, and the daemon may run in another container.
make_tmpdir() {
  for gtk_t in "${TMPDIR:-/tmp}" /tmp /dev/shm; do
    gtk_tmpdir=$(mktemp -d "$gtk_t/git-token-keeper.XXXXXX" 2>/dev/null) && return 0
  done
  return 1
}
if ! make_tmpdir; then
  printf 'git-token-keeper: cannot make a folder in TMPDIR (%s), /tmp or /dev/shm; git runs without the keeper'"'"'s overrides and retries\n' "${TMPDIR:-/tmp}" >&2
  exec_git "$@"
fi
trap 'rm -rf "$gtk_tmpdir"' EXIT

# git runs in the background so that a signal sent to the shim is handled at once (a shell
# runs traps only when its foreground child has ended). The shell makes a background job
# ignore SIGINT and SIGQUIT, so a Ctrl-C reaches git as SIGTERM (git cleans up the same way
# for both). git's own children (git-remote-https, index-pack) do not end with git: the signal
# goes to every process below git too, found in /proc at that moment; nothing is spent on this
# unless a signal comes.
gtk_child=''
gtk_waiting=''
gtk_signal=''
gtk_sent_signal=''
forward_signal() {
  gtk_signal=$1
  if [ -n "$gtk_child" ]; then
    pass_signal
  else
    die_of_signal "$1"
  fi
}
# Sends the pending signal to git and what runs below it, or ends a backoff.
pass_signal() {
  [ -n "$gtk_signal" ] && [ -z "$gtk_sent_signal" ] || return 0
  gtk_sent_signal=1
  if [ "$gtk_waiting" = backoff ]; then
    kill "$gtk_child" 2>/dev/null
    return 0
  fi
  gtk_sig=$gtk_signal
  # A background job ignores SIGINT and SIGQUIT: git gets SIGTERM for them.
  case $gtk_sig in INT | QUIT) gtk_sig=TERM ;; esac
  kill_tree "$gtk_sig" "$gtk_child"
}

# Sends signal $1 to process $2 and every process below it (from /proc; where there is none,
# to $2 alone). In a subshell: it globs, and the shim runs with globbing off.
kill_tree() (
  set +f
  gtk_tree=" $2 "
  gtk_grown=1
  while [ -n "$gtk_grown" ] && [ -r /proc/self/stat ]; do
    gtk_grown=''
    for gtk_stat in /proc/[0-9]*/stat; do
      { IFS= read -r gtk_line <"$gtk_stat"; } 2>/dev/null || continue
      gtk_pid=${gtk_line%% *}
      case $gtk_tree in *" $gtk_pid "*) continue ;; esac
      # pid (comm) state ppid …: comm may hold spaces and parentheses.
      gtk_ppid=${gtk_line##*) }
      gtk_ppid=${gtk_ppid#* }
      gtk_ppid=${gtk_ppid%% *}
      case $gtk_tree in *" $gtk_ppid "*) gtk_tree="$gtk_tree$gtk_pid " gtk_grown=1 ;; esac
    done
  done
  # shellcheck disable=SC2086
  kill "-$1" $gtk_tree 2>/dev/null
  return 0
)

# Dies of signal $1 (a name, or the number git died of), as git would have: a shell running the
# shim then stops its script on a Ctrl-C, as it does after plain git. The folder goes first: a
# shell that dies of a signal runs no EXIT trap.
die_of_signal() {
  case $1 in
    HUP) gtk_signo=1 ;; INT) gtk_signo=2 ;; QUIT) gtk_signo=3 ;; TERM) gtk_signo=15 ;;
    *) gtk_signo=$1 ;;
  esac
  rm -rf "$gtk_tmpdir"
  trap - EXIT
  # Any signal that ends a process by default (SIGSEGV from a crashed git too); never the
  # ones that stop or are ignored.
  case $gtk_signo in
    1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 24 | 25 | 26 | 27 | 29 | 30 | 31)
      trap - "$gtk_signo"
      kill "-$gtk_signo" "$$"
      ;;
  esac
  exit $((128 + gtk_signo))
}
trap 'forward_signal HUP' HUP
trap 'forward_signal INT' INT
trap 'forward_signal QUIT' QUIT
trap 'forward_signal TERM' TERM

# Waits for the background child $1 (git, or a backoff's sleep); sets gtk_rc to its status. A
# trapped signal interrupts `wait` while the child still runs: pass it on and wait again.
wait_child() {
  gtk_child=$1
  while :; do
    # Always waited for: bash may have reaped a child that ended at once, and only wait gives
    # its status (a test with kill -0 first would take a failed git for a success).
    wait "$gtk_child"
    gtk_rc=$?
    [ -n "$gtk_signal" ] || break
    pass_signal
    # A trapped signal cut the wait short (status > 128): wait again while git still runs.
    if [ "$gtk_rc" -le 128 ] || ! kill -0 "$gtk_child" 2>/dev/null; then
      break
    fi
  done
  gtk_child=''
}

# The caller's stdin, kept on a descriptor the caller does not use (a background job's stdin
# would be /dev/null): 9, 8 or 7. A closed stdin stays closed; with none of the three free, git
# runs in the foreground (signals then reach the shim only after git ends).
fd_in_use() { { true 0<&"$1"; } 2>/dev/null; }
gtk_in=foreground
if ! { true 9<&0; } 2>/dev/null; then
  gtk_in=closed
elif ! fd_in_use 9; then
  gtk_in=9 && exec 9<&0
elif ! fd_in_use 8; then
  gtk_in=8 && exec 8<&0
elif ! fd_in_use 7; then
  gtk_in=7 && exec 7<&0
fi

# git's trace2 events go to a file of the shim's, unless the caller sends them somewhere: then
# failures cannot be judged, and only a refusal of the keeper's token is retried.
case ${GIT_TRACE2_EVENT:-} in
  '' | 0 | false) gtk_trace_events=1 ;;
  *) gtk_trace_events='' ;;
esac

# Runs git once, with the events of this attempt in gtk_trace; sets gtk_rc. A shim on the way
# to git is caught by the guard at the shim's top (its parent is this shim).
run_git_once() {
  gtk_trace=$gtk_tmpdir/trace2.$gtk_attempt
  if [ -n "$gtk_trace_events" ]; then
    GIT_TRACE2_EVENT=$gtk_trace
    export GIT_TRACE2_EVENT
  fi
  GIT_TOKEN_KEEPER_SHIM_PID=$$
  export GIT_TOKEN_KEEPER_SHIM_PID
  gtk_sent_signal=''
  gtk_waiting=git
  case $gtk_in in
    9) "$gtk_real_git" "$@" <&9 9<&- & ;;
    8) "$gtk_real_git" "$@" <&8 8<&- & ;;
    7) "$gtk_real_git" "$@" <&7 7<&- & ;;
    closed) "$gtk_real_git" "$@" <&- & ;;
    *)
      "$gtk_real_git" "$@"
      gtk_rc=$?
      ;;
  esac
  [ "$gtk_in" = foreground ] || wait_child "$!"
  # A signal the shim passed on: die of it once git is gone.
  [ -n "$gtk_signal" ] && die_of_signal "$gtk_signal"
  return 0
}

# Capped exponential backoff with jitter: about 1 s, 2 s, 4 s … at most 16 s.
backoff_sleep() {
  gtk_ms=$((1000 << ($1 > 4 ? 4 : $1)))
  gtk_rand=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null) || gtk_rand=32768
  gtk_rand=${gtk_rand##* }
  gtk_ms=$((gtk_ms / 2 + gtk_ms * gtk_rand / 131070))
  gtk_delay=$((gtk_ms / 1000)).$(printf '%03d' $((gtk_ms % 1000)))
  gtk_waiting=backoff
  sleep "$gtk_delay" &
  wait_child "$!"
  [ -n "$gtk_signal" ] && die_of_signal "$gtk_signal"
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
    [ "$gtk_i" -eq "$gtk_nc" ] && set -- "$@" --
    set -- "$@" "$gtk_a"
    gtk_i=$((gtk_i + 1))
  done
  [ "$gtk_i" -eq "$gtk_nc" ] && set -- "$@" --
  shift "$gtk_all"
  gtk_globals_then "$gtk_globals" "$@"
}

# Calls function $1 with each argument after the subcommand (an alias's own words first);
# stops when it returns non-zero.
each_command_arg() {
  gtk_fn=$1
  shift
  if [ -n "$gtk_alias" ] && [ "$gtk_alias" != shell ]; then
    # shellcheck disable=SC2086
    for gtk_a in $gtk_alias; do
      "$gtk_fn" "$gtk_a" || return 1
    done
  fi
  gtk_skip_n=$((gtk_globals + 1))
  for gtk_a do
    if [ "$gtk_skip_n" -gt 0 ]; then
      gtk_skip_n=$((gtk_skip_n - 1))
      continue
    fi
    "$gtk_fn" "$gtk_a" || return 1
  done
}
