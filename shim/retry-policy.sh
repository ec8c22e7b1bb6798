# shellcheck shell=sh
# git-token-keeper shim: the retry decision for network commands (the table in
# docs/how-it-works.md). Sourced by git-network.sh.
# shellcheck disable=SC2154,SC2034

# Sets, for the attempt that just failed, what git said to machines (never what it or a hook
# printed for people):
#   gtk_class   hook (a hook failed), auth (a served host refused the keeper's token), final,
#               transient or other: git's trace2 events (git-outcome.awk), and the helper's
#               mark of an erase (git erases the credential a host refused with 401)
#   gtk_whose   for auth: ours (the keeper's token) or other (a credential the keeper did not give)
#   gtk_fail_url, gtk_sent, gtk_nested, gtk_transports, gtk_exited
classify_failure() {
  gtk_class=other gtk_whose='' gtk_fail_url='' gtk_sent='' gtk_nested='' gtk_transports=0 gtk_exited='' gtk_transient_url=''
  # Without events of git's (the caller sends them elsewhere), an erase cannot be told from one a
  # hook's git asked for: nothing counts as a refusal, and nothing is retried.
  gtk_erased=
  if [ -n "$gtk_trace_events" ] && [ -f "$gtk_trace" ]; then
    gtk_erased=
    while read -r gtk_k gtk_v; do
      case $gtk_k in
        class) gtk_class=$gtk_v ;;
        sent) gtk_sent=$gtk_v ;;
        nested) gtk_nested=$gtk_v ;;
        transports) gtk_transports=$gtk_v ;;
        exited) gtk_exited=$gtk_v ;;
        erased) gtk_erased=$gtk_v ;;
        turl) gtk_transient_url=$gtk_v ;;
      esac
    done <<EOF
$(awk -f "$gtk_here/git-outcome.awk" "$gtk_trace" 2>/dev/null)
EOF
  else
    # No events of git's to read (the caller sends them elsewhere): the exit status alone.
    [ "$gtk_rc" -le 129 ] && gtk_exited=1
  fi
  [ "$gtk_class" = hook ] && return 0
  # The mark is written by any helper that inherits its name (a hook's `git credential reject`
  # too): it counts only when git's events show the command's own git asking for the erase.
  if [ -n "$gtk_erased" ] && [ -f "$gtk_answered.erased" ]; then
    { read -r gtk_whose gtk_fail_url <"$gtk_answered.erased"; } 2>/dev/null
    case $gtk_whose in ours | other) gtk_class=auth ;; esac
  fi
  return 0
}

# The retry policy: sets gtk_no_retry to why this failure must not be run again, or empty when
# running it again is safe. A retry re-runs the whole command, hooks and all, so only commands
# whose second run changes nothing the first did not, and ends as the first would have.
retry_policy() {
  gtk_no_retry=''
  case $gtk_class in
    other | hook) gtk_no_retry=final; return 0 ;;
    final) gtk_no_retry="the host answered with an HTTP error that asking again cannot fix"; return 0 ;;
  esac
  if [ "$gtk_class" = auth ] && [ "$gtk_whose" != ours ]; then
    gtk_no_retry="$gtk_fail_url refused a credential that git-token-keeper did not give (a token left in a URL, an extra header or another credential helper); see 'git-token-keeper doctor'"
    return 0
  fi
  if [ -n "${gtk_lazy:-}" ]; then
    gtk_no_retry="git $gtk_sub fetched missing objects of this partial clone on its way; a local command is never run twice"
    return 0
  fi
  if [ -n "$gtk_stdin" ]; then
    gtk_no_retry="it read its input from stdin, which the first attempt used up"
    return 0
  fi
  case $gtk_sub:$gtk_sub2 in
    alias-shell:*) gtk_no_retry="the alias runs a shell command, which may not be safe to run twice" ;;
    remote:update | remote:show | remote:prune | remote:set-head) ;;
    remote:*) gtk_no_retry="git remote $gtk_sub2 changes the repository's config, so running it twice is not safe" ;;
    submodule:update)
      if [ -n "$gtk_submodule_command" ]; then
        gtk_no_retry="this submodule update merges, rebases or runs a command of yours, which may not be safe to run twice"
      fi
      ;;
    submodule:foreach) gtk_no_retry="submodule foreach runs your command, which may not be safe to run twice" ;;
    lfs:*) gtk_no_retry="git lfs keeps its own state between runs and retries by itself" ;;
    fetch:*)
      if [ -n "$gtk_deepens" ]; then
        gtk_no_retry="--deepen and --unshallow change the repository's depth each run: running it twice would not end as the first run did"
      fi
      ;;
    clone:*)
      # A clone whose submodule failed (network or refusal) keeps its folder: a second run would
      # end otherwise.
      if [ -n "$gtk_nested" ]; then
        gtk_no_retry="a submodule of this clone failed; running the clone again would not end as the first run did"
      fi
      ;;
    push:* | send-pack:*)
      if [ -n "$gtk_porcelain" ]; then
        gtk_no_retry="--porcelain output is read by a program: a second run would print its report twice"
        return 0
      fi
      # A refusal (401) at one URL says nothing of the URLs before it: the same rule.
      if ! push_is_repeatable "$@"; then
        if [ -n "$gtk_sent" ]; then
          gtk_no_retry="this push forces, mirrors or deletes refs and failed after it was sent: the host may have applied it, so running it twice is not safe"
        elif [ "${gtk_transports:-0}" -gt 1 ]; then
          gtk_no_retry="this push forces, mirrors or deletes refs at more than one URL: one may have applied it, so running it twice is not safe"
        fi
      fi
      ;;
    pull:*)
      if [ -n "$gtk_deepens" ]; then
        gtk_no_retry="--deepen and --unshallow change the repository's depth each run: running it twice would not end as the first run did"
      elif [ "$(head_now "$@")" != "$gtk_head" ]; then
        gtk_no_retry="this pull had already merged (HEAD moved) when it failed; its hooks ran"
      fi
      ;;
  esac
  # A network failure is the keeper's business only where it serves: another host's is git's
  # own, reported once as plain git reports it.
  if [ -z "$gtk_no_retry" ] && [ "$gtk_class" = transient ] && [ -n "$gtk_transient_url" ] && ! gtk_serves_url "$gtk_transient_url"; then
    gtk_no_retry=final
  fi
  return 0
}

# HEAD's commit, read the way the command reads the repository.
head_now() {
  git_with_globals 4 rev-parse -q --verify HEAD "$@" 2>/dev/null
}

# The word after the subcommand (foreach, update …), and whether any argument is --stdin.
note_sub_args() {
  gtk_sub2=''
  gtk_stdin='' gtk_deepens='' gtk_porcelain=''
  each_command_arg note_sub_arg "$@"
}

note_sub_arg() {
  case $1 in
    # git takes any unambiguous abbreviation of a long option.
    --st | --std | --stdi | --stdin) gtk_stdin=1 ;;
    --dee | --deep | --deepe | --deepen | --deepen=* | --un | --uns*) gtk_deepens=1 ;;
    --po | --por | --porc | --porce | --porcel | --porcela | --porcelai | --porcelain) gtk_porcelain=1 ;;
    --merge | --rebase) gtk_submodule_command=1 ;;
    -*) ;;
    *) [ -z "$gtk_sub2" ] && gtk_sub2=$1 ;;
  esac
  return 0
}

# A push may run again after the host may have applied it only if running it twice changes
# nothing: not when it deletes refs (--delete, :ref, --prune, --mirror), which fails the second
# time, nor when it forces (--force, --force-with-lease, a +refspec, a forcing refspec or mirror
# in the remote's config), which would overwrite what others pushed in between.
push_is_repeatable() {
  [ -z "$gtk_config_forced" ] && each_command_arg keeps_refs "$@"
}

keeps_refs() {
  case $1 in
    -d | -f | :* | +*) return 1 ;;
    --no-*) ;;
    # A long option by any abbreviation git accepts (--del, --force-w=…, --mirr): the name up to
    # `=` is the start of one that deletes or forces.
    --?*)
      gtk_opt=${1%%=*}
      for gtk_long in --delete --prune --mirror --force --force-with-lease --force-if-includes; do
        case $gtk_long in "$gtk_opt"*) return 1 ;; esac
      done
      ;;
    # Short options bundled (-fu, -dq); -o takes a value, so nothing after it counts.
    -*) case ${1%%o*} in *[fd]*) return 1 ;; esac ;;
  esac
  return 0
}
