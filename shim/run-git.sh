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

# git runs in the background so that a signal sent to the shim is handled at once (a shell
# runs traps only when its foreground child has ended). The shell makes a background job
# ignore SIGINT and SIGQUIT, so a Ctrl-C reaches git as SIGTERM (git cleans up the same way
# for both) and the shim then exits 130, as after a Ctrl-C. git's own children
# (git-remote-https, index-pack) do not end with git: the signal goes to every process below
# git too, found in /proc at that moment; nothing is spent on this unless a signal comes.
gtk_child=''
gtk_waiting=''
gtk_git=''
gtk_signal=''
gtk_sent_signal=''
forward_signal() {
  gtk_signal=$1
  if [ -n "$gtk_child" ]; then
    pass_signal
  else
    exit_for_signal
  fi
}
# Sends the pending signal to git and what runs below it once git's pid is known, or ends a backoff.
pass_signal() {
  [ -n "$gtk_signal" ] && [ -z "$gtk_sent_signal" ] || return 0
  if [ "$gtk_waiting" = backoff ]; then
    gtk_sent_signal=1
    kill "$gtk_child" 2>/dev/null
    return 0
  fi
  [ -n "$gtk_git" ] || { IFS= read -r gtk_git <"$gtk_tmp.pid"; } 2>/dev/null || return 0
  [ -n "$gtk_git" ] || return 0
  gtk_sent_signal=1
  gtk_sig=$gtk_signal
  [ "$gtk_sig" = INT ] && gtk_sig=TERM
  kill_tree "$gtk_sig" "$gtk_git"
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
exit_for_signal() {
  case $gtk_signal in HUP) exit 129 ;; INT) exit 130 ;; *) exit 143 ;; esac
}
trap 'forward_signal HUP' HUP
trap 'forward_signal INT' INT
trap 'forward_signal TERM' TERM

# Waits for the background child $1 (the pipeline that runs git, or a backoff's sleep); sets
# gtk_rc to its status. A trapped signal interrupts `wait` while the child still runs: pass the
# signal on (git's pid may have been written only just now) and wait again.
wait_child() {
  gtk_child=$1
  gtk_rc=0
  while kill -0 "$gtk_child" 2>/dev/null; do
    wait "$gtk_child"
    gtk_rc=$?
    pass_signal
  done
  gtk_child=''
}

# The caller's stdin, kept on fd 4: a background job's stdin would be /dev/null. (`command`:
# a failed redirection on a special built-in would end the shell; a closed stdin stays closed.)
{ command exec 4<&0; } 2>/dev/null || exec 4<&-

# Runs git once: stdout and stdin untouched, stderr streamed live and copied for
# classify_failure. git runs in the background inside the pipeline's first part, which writes
# git's pid (for signals) and then its exit status to files of the shim's.
run_git_once() {
  gtk_git=''
  gtk_sent_signal=''
  gtk_waiting=git
  { printf '' >"$gtk_tmp.pid" && printf '' >"$gtk_tmp.rc"; } 2>/dev/null
  {
    {
      "$gtk_real_git" "$@" 2>&1 >&3 3>&- <&4 4<&- &
      printf '%s\n' "$!" >"$gtk_tmp.pid"
      wait "$!"
      printf '%s\n' "$?" >"$gtk_tmp.rc"
    } | tee "$gtk_tmp.err" >&2
  } 3>&1 &
  wait_child "$!"
  gtk_rc=1
  IFS= read -r gtk_rc <"$gtk_tmp.rc" || gtk_rc=1
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
  gtk_waiting=backoff
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
