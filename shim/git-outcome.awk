# git-token-keeper: how one run of a network command failed, from git's trace2 event stream
# (GIT_TRACE2_EVENT, one JSON object a line, written by every git process the command started),
# never from the text on stderr, which a hook shares with git and which git translates.
# POSIX awk (mawk, gawk, busybox).
#
#   awk -f git-outcome.awk TRACE2-EVENT-FILE
#
# What it reads (trace2's event format, git's Documentation/technical/api-trace2.txt):
#   sid          the process; a child's sid is its parent's, "/", its own
#   child_start  child_class "hook": a hook starts (child_id names it until its child_exit)
#   child_exit   the hook's exit code
#   cmd_name     what a process is (clone, fetch, remote-curl, _run_dashed_ …)
#   error        the message of a process that failed (translated, but curl's own error
#                strings and HTTP status numbers inside it are not)
# A process that started while its parent ran a hook belongs to the hook, and so does
# everything below it: its errors are the hook's business, never a reason to retry. Only the
# errors of git's HTTP transport (remote-curl) count: the keeper serves HTTP(S) alone, and a
# local or SSH far end's words ("the remote end hung up" after a rejected atomic push) are no
# network failure.
#
# Output, one `key value` a line:
#   class      hook (a hook failed: never retried), final (an HTTP 4xx other than 401, 408 and
#              429: asking again cannot help), transient (the network or the host's 5xx, 408,
#              429), or other
#   sent       1 when the failure may have come after git sent its request (anything but a
#              failed connection or a refused first GET)
#   nested     1 when a transient error or a refusal (an erase) came from a command below the
#              one run (a submodule's clone), not from its own transport
#   transports the number of transports the command itself opened (one per URL of a push); the
#              command is the first process, or the git an alias of it runs
#   exited     1 when the command's own process reported its exit (a process killed by a signal
#              reports none)
#   erased     1 when a git of the command itself (not one a hook ran) had the keeper's helper
#              erase a credential: a host refused it with 401

function parent(s,   i) {
  i = length(s)
  while (i > 0 && substr(s, i, 1) != "/") i--
  return i > 0 ? substr(s, 1, i - 1) : ""
}

# The value of a string field "k":"…" of the current line ("" when absent); JSON escapes kept.
function str(k,   p, rest, out, c) {
  p = index($0, "\"" k "\":\"")
  if (!p) return ""
  rest = substr($0, p + length(k) + 4)
  out = ""
  while (rest != "") {
    c = substr(rest, 1, 1)
    if (c == "\"") break
    if (c == "\\") { out = out substr(rest, 1, 2); rest = substr(rest, 3); continue }
    out = out c; rest = substr(rest, 2)
  }
  return out
}

# The value of a number field "k":N of the current line ("" when absent).
function num(k,   p, rest) {
  p = index($0, "\"" k "\":")
  if (!p) return ""
  rest = substr($0, p + length(k) + 3)
  if (match(rest, /^-?[0-9]+/)) return substr(rest, 1, RLENGTH)
  return ""
}

# Processes that only carry a command's transport: an error there is the command's own.
function plumbing(name) {
  return name == "" || name == "_run_dashed_" || name == "remote-curl" || name == "index-pack" || \
    name == "unpack-objects" || name == "pack-objects" || name == "fetch-pack" || name == "send-pack" || \
    name == "http-fetch" || name == "http-push"
}

function owner(s) {
  while (!(s in main) && plumbing(name_of[s]) && parent(s) != "") s = parent(s)
  return s
}

function judge(msg, s,   m) {
  # A URL in the message ('…', as git quotes it) is the user's, not the network's words.
  m = msg
  gsub(/'[^']*'/, "''", m)
  if (m ~ /returned error: 4[0-9][0-9]/ && m !~ /returned error: 4(01|08|29)/) { final = 1; return }
  if (m ~ /HTTP 4[0-9][0-9] curl/ && m !~ /HTTP 4(01|08|29) curl/) { final = 1; return }
  if (m ~ /returned error: (5[0-9][0-9]|408|429)/ || m ~ /HTTP (5[0-9][0-9]|408|429) curl/ || \
      m ~ /curl (6|7|18|28|35|52|55|56) / || \
      m ~ /Could not resolve (host|proxy)|Failed to connect|Couldn't connect to server|Connection refused/ || \
      m ~ /Connection reset by peer|Connection timed out|Operation timed out|Operation too slow/ || \
      m ~ /gnutls_handshake\(\) failed|SSL_connect|SSL_ERROR_SYSCALL|TLS connect error|Empty reply from server/ || \
      m ~ /transfer closed with|early EOF|remote end hung up unexpectedly|unexpected disconnect while reading sideband packet/ || \
      m ~ /expected flush after ref listing/) {
    transient = 1
    # The URL the transport was given (its last argument): retried only where the keeper serves.
    if (turl == "" && (s in last_arg)) turl = last_arg[s]
    if (!(owner(s) in main)) nested = 1
    # Before anything was sent: the connection failed, or the first GET (the ref listing) was
    # refused (a POST's failure reads "RPC failed; HTTP N curl N").
    if (!(m ~ /Could not resolve (host|proxy)|Failed to connect|Couldn't connect to server|Connection refused|gnutls_handshake\(\) failed|SSL_connect|TLS connect error/ || \
          (m ~ /returned error: [0-9]/ && m !~ /curl [0-9]/))) sent = 1
  }
}

{
  s = str("sid")
  if (s == "") next
  if (!(s in seen)) {
    seen[s] = 1
    if (top == "") { top = s; main[s] = 1 }
    p = parent(s)
    under[s] = (p in under) && (under[p] || open_hooks[p] > 0)
    # The command itself: the first process, or the git an alias (or a dashed command) of it
    # runs to do the work.
    if ((p in main) && (name_of[p] == "_run_git_alias_" || name_of[p] == "_run_dashed_")) main[s] = 1
  }
  ev = str("event")
  if (ev == "exit" && s == top) { exited = 1; next }
  if (ev == "start") {
    # The last argument as git wrote it in JSON; one with an escape in it is not kept.
    if (match($0, /"argv":\[.*\]/)) {
      a = substr($0, RSTART, RLENGTH)
      if (match(a, /"[^"\\]*"\]$/)) last_arg[s] = substr(a, RSTART + 1, RLENGTH - 3)
    }
    next
  }
  if (ev == "cmd_name") { name_of[s] = str("name"); next }
  if (ev == "child_start") {
    # git runs a credential helper as `HELPER erase` after a 401 (credential.c): the keeper's
    # helper asked to erase by the command's own git, not by a git a hook ran.
    if (!under[s] && index($0, "git-credential-token-keeper") && $0 ~ /git-credential-token-keeper[^"]* erase"/) {
      erased = 1
      # Refused in a command below the one run (a submodule's clone): nested, as a network error there.
      if (!(owner(s) in main)) nested = 1
    }
    c = str("child_class")
    if (c == "hook") { hook[s, num("child_id")] = 1; open_hooks[s]++ }
    else if ((s in main) && (c ~ /^remote-/ || c ~ /^transport\//)) transports++
    next
  }
  if (ev == "child_exit") {
    id = num("child_id")
    if ((s, id) in hook) {
      delete hook[s, id]
      open_hooks[s]--
      if (num("code") != "0" && !under[s]) hook_failed = 1
    }
    next
  }
  # Only the HTTP transport's own processes speak for the network (remote-curl; http-fetch and
  # http-push for the dumb protocol): what the command or the far end (a local receive-pack)
  # says after them is a consequence, or the far end's refusal.
  if (ev == "error" && !under[s] && (name_of[s] == "remote-curl" || name_of[s] == "http-fetch" || name_of[s] == "http-push")) judge(str("msg"), s)
}

END {
  class = hook_failed ? "hook" : final ? "final" : transient ? "transient" : "other"
  printf "class %s\nsent %s\nnested %s\ntransports %d\nexited %s\nerased %s\nturl %s\n", class, sent ? 1 : "", nested ? 1 : "", transports, exited ? 1 : "", erased ? 1 : "", turl
}
