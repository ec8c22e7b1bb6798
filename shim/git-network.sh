# shellcheck shell=sh
# git-token-keeper shim, network half: sourced by `git` for clone, fetch, pull, push, ls-remote,
# remote, submodule … with the caller's arguments still in "$@". Expects gtk_real_git,
# gtk_sub, gtk_globals, gtk_origins, gtk_n and add_config from the shim.
# shellcheck disable=SC2154

gtk_retries=${GIT_TOKEN_KEEPER_RETRIES:-3}
case $gtk_retries in '' | *[!0-9]*) gtk_retries=3 ;; esac
GIT_TERMINAL_PROMPT=0
export GIT_TERMINAL_PROMPT

# git's stderr is copied to a file for classify_failure, in a private folder of this shim's
# own, which only it removes (on exit). Nothing goes in the daemon's requests folder: that is
# shared with the group, and the daemon may run in another container.
gtk_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/git-token-keeper.XXXXXX") || exec_git "$@"
trap 'rm -rf "$gtk_tmpdir"' EXIT
gtk_tmp=$gtk_tmpdir/shim
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

say() {
  printf 'git-token-keeper: %s\n' "$*" >&2
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

# Lists remote and submodule URLs, URL rewrites and extra headers as `git config --get-regexp`
# prints them.
scan_config() {
  git_with_globals 3 config --get-regexp '^(remote\..*\.(url|pushurl)|submodule\..*\.url|url\..*\.(insteadof|pushinsteadof)|http\..*\.extraheader)$' "$@"
}

# Prints "key<TAB>value" config entries that neutralise stale credentials for configured
# origins. Input: `arg URL` lines for URL arguments, `git config --get-regexp` output, then
# (as further files) submodules' own config files, whose url/pushurl lines count as remote URLs.
# - a user:token@ in a URL: url.<clean>.insteadOf=<the part with the token>, which git's
#   submodule processes inherit too;
# - a url.<base with a token>.insteadOf or .pushInsteadOf rule: for each URL the command may
#   use that it would rewrite, a rule for that whole URL (the longest match wins in git) that
#   rewrites it the same way without the token;
# - Authorization extra headers: reset at each specificity they were set at, keeping others.
# shellcheck disable=SC2016
gtk_neutralise_awk='
function origin_of(url,   scheme, rest, auth, host) {
  if (tolower(url) !~ /^https?:\/\//) return ""
  scheme = tolower(substr(url, 1, index(url, "://") - 1))
  rest = substr(url, index(url, "://") + 3)
  auth = rest; sub(/\/.*/, "", auth)
  g_raw_auth = auth
  g_user = ""
  if (index(auth, "@")) { g_user = auth; sub(/@[^@]*$/, "", g_user); sub(/.*@/, "", auth) }
  host = tolower(auth)
  if (scheme == "https") sub(/:443$/, "", host)
  if (scheme == "http") sub(/:80$/, "", host)
  g_has_path = (index(rest, "/") > 0)
  return scheme "://" host
}
function without_userinfo(url,   p, rest, auth, host) {
  p = index(url, "://")
  rest = substr(url, p + 3)
  auth = rest; sub(/\/.*/, "", auth)
  host = auth; sub(/.*@/, "", host)
  return substr(url, 1, p + 2) host substr(rest, length(auth) + 1)
}
function is_auth(v) { return tolower(v) ~ /^[ \t]*authorization[ \t]*:/ }
function emit(k, v) { printf "%s\t%s\n", k, v }
function remote_url(value, name,   o, prefix) {
  if (!(value in seen)) { seen[value] = 1; urls[++nurls] = value }
  o = origin_of(value)
  if (!(o in conf) || index(g_user, ":") == 0) return
  prefix = substr(value, 1, index(value, "://") + 2) g_raw_auth (g_has_path ? "/" : "")
  if (!(prefix in rewritten)) { rewritten[prefix] = 1; emit("url." o (g_has_path ? "/" : "") ".insteadOf", prefix) }
  if (name != "" && !(name in stale_remote)) stale_remote[name] = without_userinfo(value)
}
# The LFS API of a repository URL, as git-lfs derives it.
function lfs_endpoint(u) {
  u = without_userinfo(u); sub(/\/+$/, "", u)
  return u ~ /\.git$/ ? u "/info/lfs" : u ".git/info/lfs"
}
# The rewrite git applies to u for kind k: the longest matching prefix, the first on a tie.
function rewrite_of(u, k,   i, best) {
  best = 0
  for (i = 1; i <= nrw; i++)
    if (rw_kind[i] == k && index(u, rw_from[i]) == 1 && (!best || length(rw_from[i]) > length(rw_from[best]))) best = i
  return best
}
BEGIN { n = split(origins, list, " "); for (i = 1; i <= n; i++) conf[list[i]] = 1 }
FILENAME != "" && FILENAME != "-" {
  if ($0 ~ /^[ \t]*(push)?url[ \t]*=/) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v); remote_url(v, "") }
  next
}
{
  sp = index($0, " ")
  key = sp ? substr($0, 1, sp - 1) : $0
  value = sp ? substr($0, sp + 1) : ""
  if (key ~ /^remote\..*\.pushurl$/) { name = substr(key, 8, length(key) - 15); has_push[name] = 1; remote_url(value, ""); next }
  if (key ~ /^remote\..*\.url$/) { remote_url(value, substr(key, 8, length(key) - 11)); next }
  if (key == "arg" || key ~ /^submodule\..*\.url$/) { remote_url(value, ""); next }
  if (key ~ /^url\..*\.(insteadof|pushinsteadof)$/) {
    k = (key ~ /\.pushinsteadof$/) ? "pushInsteadOf" : "insteadOf"
    nrw++; rw_kind[nrw] = k; rw_from[nrw] = value
    rw_base[nrw] = substr(key, 5, length(key) - 4 - length(k) - 1)
    next
  }
  if (key !~ /^http\..*extraheader$/) next
  url = substr(key, 6, length(key) - 17)
  entries++; ekey[entries] = url; eval[entries] = value
  if (is_auth(value)) stale_auth = 1
  if (url == "") next
  o = origin_of(url)
  if (!(o in conf) || g_user != "") { if (o in conf) specific[url] = o; next }
  if (url == o || url == o "/") next
  specific[url] = o
}
END {
  for (i = 1; i <= n; i++) {
    o = list[i]
    emit("http." o "/.extraheader", "")
    for (e = 1; e <= entries; e++)
      if ((ekey[e] == "" || ekey[e] == o || ekey[e] == o "/") && !is_auth(eval[e])) emit("http." o "/.extraheader", eval[e])
  }
  for (url in specific) {
    o = specific[url]
    emit("http." url ".extraheader", "")
    for (e = 1; e <= entries; e++)
      if ((ekey[e] == "" || ekey[e] == o || ekey[e] == o "/" || ekey[e] == url) && !is_auth(eval[e])) emit("http." url ".extraheader", eval[e])
  }
  # git-lfs reads extra headers from the most specific http.<url> key only, and skips empty
  # values: a key for each repository'"'"'s LFS API, holding a harmless header, keeps a stale
  # Authorization from reaching it (the other headers set for the host are kept).
  if (stale_auth)
    for (u = 1; u <= nurls; u++) {
      o = origin_of(urls[u])
      if (!(o in conf)) continue
      ep = lfs_endpoint(urls[u])
      if (ep in lfs_done) continue
      lfs_done[ep] = 1
      emit("http." ep ".extraheader", "X-Git-Token-Keeper: lfs")
      for (e = 1; e <= entries; e++)
        if ((ekey[e] == "" || ekey[e] == o || ekey[e] == o "/") && !is_auth(eval[e])) emit("http." ep ".extraheader", eval[e])
    }
  # git-lfs takes a remote URL'"'"'s user:token as the credential, and reads the last value of
  # remote.<name>.url: the clean URL goes last. As pushurl too, so that git pushes once, there.
  for (name in stale_remote)
    if (!(name in has_push)) {
      emit("remote." name ".url", stale_remote[name])
      emit("remote." name ".pushurl", stale_remote[name])
    }
  for (u = 1; u <= nurls; u++)
    for (kk = 1; kk <= 2; kk++) {
      k = kk == 1 ? "insteadOf" : "pushInsteadOf"
      r = rewrite_of(urls[u], k)
      if (!r || !(origin_of(rw_base[r]) in conf) || g_user == "") continue
      emit("url." without_userinfo(rw_base[r]) substr(urls[u], length(rw_from[r]) + 1) "." k, urls[u])
    }
}'

# The neutralising awk on stdin and, after it, each submodule config under $gtk_modules (two
# levels deep). In a subshell: the shim runs with globbing off (set -f).
module_configs_then_awk() {
  (
    set +f
    set --
    if [ -n "$gtk_modules" ]; then
      for gtk_f in "$gtk_modules"/*/config "$gtk_modules"/*/modules/*/config; do
        [ -f "$gtk_f" ] && set -- "$@" "$gtk_f"
      done
    fi
    exec awk -v origins="$gtk_origins" "$gtk_neutralise_awk" - "$@"
  )
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

# A URL argument with credentials, as an `arg URL` line for the awk program.
print_if_url() {
  case $1 in *://* | *@*:*) printf 'arg %s\n' "$1" ;; esac
  return 0
}

neutralise_stale_credentials() {
  # Submodules' own configs (their remote URLs), for the commands that reach into submodules:
  # git runs their fetches itself, with the shim's entries in their environment.
  gtk_modules=''
  case $gtk_sub:" $* " in
    submodule:* | *" --recurse-submodules"* | *" --recursive "*)
      gtk_modules=$(git_with_globals 3 rev-parse --path-format=absolute --git-common-dir "$@" 2>/dev/null) && gtk_modules=$gtk_modules/modules
      ;;
  esac
  # git config and awk start together in one pipeline; no temp file.
  { each_command_arg print_if_url "$@"; scan_config "$@" </dev/null 2>/dev/null; } | module_configs_then_awk >"$gtk_tmp.rc" || return 0
  gtk_tab='	'
  while IFS= read -r gtk_line; do
    add_config "${gtk_line%%"$gtk_tab"*}" "${gtk_line#*"$gtk_tab"}"
  done <"$gtk_tmp.rc"
  GIT_CONFIG_COUNT=$gtk_n
  export GIT_CONFIG_COUNT
}

# git hides progress when stderr is not a terminal; the shim reads stderr through a pipe, so
# it asks for progress explicitly when the caller's stderr is a terminal.
gtk_progress=''
if [ -t 2 ]; then
  case $gtk_sub in clone | fetch | pull | push) gtk_progress=--progress ;; esac
fi

# Runs git once: stdout untouched, stderr streamed live and copied for classify_failure.
run_git_once() {
  { { "$gtk_real_git" "$@" 2>&1 1>&3 3>&-; printf '%s\n' "$?" >"$gtk_tmp.rc"; } | tee "$gtk_tmp.err" >&2; } 3>&1
  gtk_rc=1
  IFS= read -r gtk_rc <"$gtk_tmp.rc" || gtk_rc=1
}

# True when the URL's scheme://host[:port] is configured.
configured_url() {
  gtk_split_url "$1" || return 1
  case " $gtk_origins " in *" $gtk_scheme://$gtk_host "*) return 0 ;; esac
  return 1
}

# Sets gtk_class from git's own error lines (never from what hooks or the user's commands
# print): auth (a configured host refused the token), transient, final (an HTTP 4xx other than
# 401/408/429: asking again cannot help), or other. A final line wins over transient ones
# (`RPC failed; HTTP 413` is followed by `the remote end hung up`). Sets gtk_updated when a
# push reported a ref updated.
classify_failure() {
  gtk_class=other
  gtk_fail_url=''
  gtk_updated=''
  while IFS= read -r gtk_line; do
    case $gtk_line in
      " ! "* | " = "*) ;;
      " "?" "*" -> "* | " - [deleted]"*) gtk_updated=1 ;;
      "fatal: Authentication failed for '"*)
        gtk_fail_url=${gtk_line#*"Authentication failed for '"}
        gtk_fail_url=${gtk_fail_url%%"'"*}
        if configured_url "$gtk_fail_url"; then gtk_class=auth; else gtk_class=other; fi
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
        ;;
    esac
  done <"$gtk_tmp.err"
}

# The retry policy (the table in docs/how-it-works.md): sets gtk_no_retry to why this failure
# must not be run again, or empty when running it again is safe. A retry re-runs the whole
# command, hooks and all, so only commands whose second run changes nothing the first did not.
retry_policy() {
  gtk_no_retry=''
  case $gtk_class in
    other) gtk_no_retry=final; return 0 ;;
    final) gtk_no_retry="the host answered with an HTTP error that asking again cannot fix"; return 0 ;;
  esac
  if [ -n "$gtk_stdin" ]; then
    gtk_no_retry="it read its input from stdin, which the first attempt used up"
    return 0
  fi
  case $gtk_sub:$gtk_sub2 in
    submodule:foreach) gtk_no_retry="submodule foreach runs your command, which may not be safe to run twice" ;;
    push:* | send-pack:*)
      if [ -n "$gtk_updated" ]; then
        gtk_no_retry="this push reported refs updated before it failed"
      elif [ "$gtk_class" = transient ] && ! push_is_repeatable "$@"; then
        gtk_no_retry="this push deletes refs, so running it twice is not safe"
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

# A push may run again only if running it twice changes nothing: deleting refs (--delete,
# :ref, --prune, --mirror) fails the second time.
push_is_repeatable() {
  each_command_arg keeps_refs "$@"
}

keeps_refs() {
  case $1 in
    -d | --delete | --prune | --mirror | :* | +:*) return 1 ;;
  esac
  return 0
}

# Capped exponential backoff with jitter: about 1 s, 2 s, 4 s … at most 16 s.
backoff_sleep() {
  gtk_ms=$((1000 << ($1 > 4 ? 4 : $1)))
  gtk_rand=$(od -An -N2 -tu2 /dev/urandom 2>/dev/null) || gtk_rand=32768
  gtk_rand=${gtk_rand##* }
  gtk_ms=$((gtk_ms / 2 + gtk_ms * gtk_rand / 131070))
  gtk_delay=$((gtk_ms / 1000)).$(printf '%03d' $((gtk_ms % 1000)))
  sleep "$gtk_delay"
}

neutralise_stale_credentials "$@"
note_sub_args "$@"
# A pull is retried only if it failed before merging: HEAD is compared after a failure.
gtk_head=''
[ "$gtk_sub" = pull ] && gtk_head=$(head_now "$@")
if [ -n "$gtk_progress" ]; then
  # Put --progress right after the subcommand: rotate "$@" once.
  gtk_all=$#
  gtk_i=0
  for gtk_a do
    set -- "$@" "$gtk_a"
    gtk_i=$((gtk_i + 1))
    [ "$gtk_i" -eq $((gtk_globals + 1)) ] && set -- "$@" "$gtk_progress"
  done
  shift "$gtk_all"
fi

gtk_attempt=0
while :; do
  run_git_once "$@"
  [ "$gtk_rc" -eq 0 ] && exit 0
  # Killed by a signal (Ctrl-C: 130): the user stopped it; never retry.
  [ "$gtk_rc" -gt 128 ] && exit "$gtk_rc"
  classify_failure
  retry_policy "$@"
  if [ -n "$gtk_no_retry" ]; then
    [ "$gtk_no_retry" != final ] && say "not retrying: $gtk_no_retry"
    exit "$gtk_rc"
  fi
  if [ "$gtk_attempt" -ge "$gtk_retries" ]; then
    if [ "$gtk_class" = auth ]; then
      say "$gtk_fail_url refused a freshly minted token $((gtk_attempt + 1)) times: this is a permissions problem, not an expiry. Check that the App is installed for this owner with access to the repository and the permission this command needs ('git-token-keeper status' shows what is minted)."
    else
      say "gave up after $((gtk_attempt + 1)) attempts; the errors above were transient network errors"
    fi
    exit "$gtk_rc"
  fi
  gtk_attempt=$((gtk_attempt + 1))
  # Counted by the daemon for its metrics: an empty file, no wait, no extra exec. (printf, not
  # `:`: a failed redirection on a special built-in would end the shell.)
  { printf "" >"$gtk_dir/requests/retried+$gtk_class++0+s$$n$gtk_attempt"; } 2>/dev/null
  if [ "$gtk_class" = auth ]; then
    say "$gtk_fail_url refused the token; retrying with a new one ($gtk_attempt/$gtk_retries)"
  else
    backoff_sleep "$((gtk_attempt - 1))"
    say "transient error; retried after ${gtk_delay}s ($gtk_attempt/$gtk_retries)"
  fi
done
