# shellcheck shell=sh
# git-token-keeper shim: the retry decision for network commands (the table in
# docs/how-it-works.md). Sourced by git-network.sh.
# shellcheck disable=SC2154,SC2034

# Sets gtk_class from git's own error lines (never from what hooks or the user's commands
# print): auth (a configured host refused the credential), transient, final (an HTTP 4xx other
# than 401/408/429: asking again cannot help), or other. A final line wins over transient ones
# (`RPC failed; HTTP 413` is followed by `the remote end hung up`). Sets gtk_updated when a
# push reported a ref updated, and gtk_sent when the failure came after git had sent its
# request (anything but `unable to access`, where git never got past asking for the refs).
classify_failure() {
  gtk_class=other
  gtk_fail_url=''
  gtk_updated=''
  gtk_sent=''
  while IFS= read -r gtk_line; do
    case $gtk_line in
      " ! "* | " = "*) ;;
      " "?" "*" -> "* | " - [deleted]"*) gtk_updated=1 ;;
      "fatal: Authentication failed for '"*)
        gtk_fail_url=${gtk_line#*"Authentication failed for '"}
        gtk_fail_url=${gtk_fail_url%%"'"*}
        if configured_url "$gtk_fail_url"; then gtk_class=auth; else gtk_class=other; fi
        # The URL is quoted in the shim's messages: never with a user:token part (git leaves
        # it out of its own line; a wrapper around git may not).
        case $gtk_fail_url in
          *://*@*)
            gtk_f_rest=${gtk_fail_url#*://}
            gtk_f_authority=${gtk_f_rest%%/*}
            gtk_fail_url=${gtk_fail_url%%://*}://${gtk_f_authority##*@}${gtk_f_rest#"$gtk_f_authority"}
            ;;
        esac
        return 0
        ;;
      "fatal: "* | "error: "* | "fetch-pack: "* | "send-pack: "* | "kex_exchange_identification: "*)
        [ "$gtk_class" = final ] && continue
        case $gtk_line in
          *"returned error: 401"*) ;;
          *"returned error: 408"* | *"returned error: 429"* | *"HTTP 408"* | *"HTTP 429"*) gtk_class=transient ;;
          *"returned error: 4"[0-9][0-9]* | *"RPC failed; HTTP 4"[0-9][0-9]*) gtk_class=final ;;
          *"returned error: 5"[0-9][0-9]* | *"HTTP 5"[0-9][0-9]* | \
            *"RPC failed"* | *"early EOF"* | *"remote end hung up unexpectedly"* | \
            *"unexpected disconnect while reading sideband packet"* | *"Connection reset by peer"* | \
            *"Couldn't connect to server"* | *"Connection refused"* | *"Connection timed out"* | \
            *"Operation timed out"* | *"Operation too slow"* | *"Could not resolve host"* | \
            *"Could not resolve proxy"* | *"gnutls_handshake() failed"* | *"SSL_connect"* | \
            *"SSL_ERROR_SYSCALL"* | *"TLS connect error"* | *"kex_exchange_identification"* | \
            *"expected flush after ref listing"* | *"transfer closed with"* | *"Empty reply from server"*)
            gtk_class=transient
            ;;
        esac
        case $gtk_line in "fatal: unable to access '"*) ;; *) gtk_sent=1 ;; esac
        ;;
    esac
  done <"$gtk_tmp.err"
}

# True when the URL is one the keeper serves.
configured_url() {
  gtk_serves_url "$1"
}

# The retry policy: sets gtk_no_retry to why this failure must not be run again, or empty when
# running it again is safe. A retry re-runs the whole command, hooks and all, so only commands
# whose second run changes nothing the first did not.
retry_policy() {
  gtk_no_retry=''
  case $gtk_class in
    other) gtk_no_retry=final; return 0 ;;
    final) gtk_no_retry="the host answered with an HTTP error that asking again cannot fix"; return 0 ;;
  esac
  if [ "$gtk_class" = auth ] && [ ! -e "$gtk_answered" ]; then
    gtk_no_retry="$gtk_fail_url refused a credential that git-token-keeper did not give (a token left in a URL, an extra header or another credential helper); see 'git-token-keeper doctor'"
    return 0
  fi
  if [ -n "$gtk_stdin" ]; then
    gtk_no_retry="it read its input from stdin, which the first attempt used up"
    return 0
  fi
  case $gtk_sub:$gtk_sub2 in
    submodule:foreach) gtk_no_retry="submodule foreach runs your command, which may not be safe to run twice" ;;
    push:* | send-pack:*)
      if [ -n "$gtk_updated" ]; then
        gtk_no_retry="this push reported refs updated before it failed"
      elif [ "$gtk_class" = transient ] && [ -n "$gtk_sent" ] && ! push_is_repeatable "$@"; then
        gtk_no_retry="this push forces, mirrors or deletes refs and failed after it was sent: the host may have applied it, so running it twice is not safe"
      fi
      ;;
    pull:*)
      if [ "$(head_now "$@")" != "$gtk_head" ]; then
        gtk_no_retry="this pull had already merged (HEAD moved) when it failed; its hooks ran"
      fi
      ;;
  esac
  return 0
}

# HEAD's commit, read the way the command reads the repository.
head_now() {
  git_with_globals 4 rev-parse -q --verify HEAD "$@" 2>/dev/null
}

# The word after the subcommand (foreach, update …), and whether any argument is --stdin.
note_sub_args() {
  gtk_sub2=''
  gtk_stdin=''
  each_command_arg note_sub_arg "$@"
}

note_sub_arg() {
  case $1 in
    --stdin) gtk_stdin=1 ;;
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
    -d | --delete | --prune | --mirror | -f | --force | --force-with-lease | --force-with-lease=* | \
      --force-if-includes | :* | +*) return 1 ;;
    --*) ;;
    # Short options bundled (-fu, -dq); -o takes a value, so nothing after it counts.
    -*) case ${1%%o*} in *[fd]*) return 1 ;; esac ;;
  esac
  return 0
}
