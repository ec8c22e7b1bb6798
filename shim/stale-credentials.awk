# git-token-keeper: what the git shim overrides for one network command so that credentials
# other tools left behind (a user:token in a URL, a URL rewrite with a token, an Authorization
# extra header) cannot beat the keeper's token. It only proposes: every proposal names the URL
# it is for, and the shim keeps it only when the keeper serves that URL (gtk_serves_url in
# token-keeper-lib.sh, the helper's own routing). POSIX awk (mawk, gawk, busybox).
#
#   ... | tr '\n\0' '\037\n' | awk -v served='URL …' -v helper=H -f stale-credentials.awk
#
# served: the URL prefixes the keeper serves (origin + path prefix, from the origins file).
# helper: the credential.helper value of the keeper's helper.
# stdin:  records as `git config -z` writes them (KEY, newline, VALUE, NUL), passed through
#         `tr` so that one record is one line with KEY and VALUE split by \037 (a newline in a
#         value becomes a \037 too): no value, whatever it holds, can become another entry.
#         In this order: `arg` records (the command's URL arguments), `origin` (the URL relative
#         submodule URLs are resolved against), then `git config -z --get-regexp` output: remote
#         and submodule URLs, url.<base>.insteadOf/pushInsteadOf rules and http[.<url>].extraheader
#         entries, in the order git reads them; a clone's own -c/--config entries; after a
#         `modules` record, the remote URLs of submodules' own config files (URLs the command
#         uses, nothing else).
#         A record with a control character in its key, or in a value used as a URL, is
#         dropped (no URL holds one); a header value may hold a tab, nothing else.
#
# Output, one line a proposal, fields separated by a tab (no key holds one):
#   `?`  URL          the lines up to the next `?` apply only if the keeper serves URL
#   `+`  KEY  VALUE   a config entry for git's environment, read after every config file
#   `^`  KEY  VALUE   a config entry read before every config file: an insteadOf rule as long as
#                     one in a config file, where git keeps the first it read
#   `@`  KEY  VALUE   a config entry for this repository only (a file included for its gitdir)
#   `!`  forced       a remote pushes with a forcing refspec or mirrors (for the retry policy)
#   `!`  submodule-command  a submodule is updated by merge, rebase or `!command`
#   `!`  caller-trace2      trace2.eventTarget is set: git's events are the caller's
function lower(s) { return tolower(s) }

# scheme://host[:port] of an http(s) URL, lower-case, default port dropped; "" for anything
# else. Sets g_user (the userinfo) and g_path (from the first "/" after the host, or "").
function origin_of(url,   p, scheme, rest, auth, host) {
  g_user = ""; g_path = ""
  if (lower(url) !~ /^https?:\/\//) return ""
  p = index(url, "://")
  scheme = lower(substr(url, 1, p - 1))
  rest = substr(url, p + 3)
  auth = rest; sub(/\/.*/, "", auth)
  # curl ends the authority at "?", "#" (and "\\"), not only at "/": such a URL is not split
  # here, so nothing is served, rewritten or cleaned for it (its host may be another).
  if (auth ~ /[?#\\]/) return ""
  g_path = substr(rest, length(auth) + 1)
  if (index(auth, "@")) { g_user = auth; sub(/@[^@]*$/, "", g_user); sub(/.*@/, "", auth) }
  host = lower(auth)
  if (scheme == "https") sub(/:443$/, "", host)
  if (scheme == "http") sub(/:80$/, "", host)
  return scheme "://" host
}

# The URL without its userinfo.
# True when URL is under a prefix the keeper serves (origins compared as normalised, owners in
# any case, as the helper routes them). Sets g_user and g_path as origin_of does.
function is_served(url,   o, c, s) {
  o = origin_of(url)
  if (o == "") return 0
  c = o lower(g_path)
  for (s = 1; s <= nserved; s++) if (index(c, lower(served_list[s])) == 1) return 1
  return 0
}

function clean(url,   p, rest, auth, host) {
  p = index(url, "://")
  if (!p) return url
  rest = substr(url, p + 3)
  auth = rest; sub(/\/.*/, "", auth)
  # Not split where curl would split it elsewhere (see origin_of): left as it is.
  if (auth ~ /[?#\\]/) return url
  host = auth; sub(/.*@/, "", host)
  return substr(url, 1, p + 2) host substr(rest, length(auth) + 1)
}

# KEY with its section (before the first ".") and name (after the last) lower-cased; the
# subsection between them (a URL) as it is.
function norm_key(k,   first, last, i) {
  first = index(k, ".")
  if (!first) return lower(k)
  last = length(k)
  while (substr(k, last, 1) != ".") last--
  if (last == first) return lower(k)
  return lower(substr(k, 1, first)) substr(k, first + 1, last - first - 1) lower(substr(k, last))
}

function has_userinfo(url) { origin_of(url); return g_user != "" }
# A header that carries a credential: Authorization, and the token headers GitLab takes.
function is_auth(v) { return lower(v) ~ /^[ \t]*(authorization|private-token|job-token|deploy-token)[ \t]*:/ }

# The rule git applies to u for kind k: the longest matching prefix, the first on a tie.
function rewrite_of(u, k,   i, best) {
  best = 0
  for (i = 1; i <= nrw; i++)
    if (rw_kind[i] == k && index(u, rw_from[i]) == 1 && (!best || length(rw_from[i]) > length(rw_from[best]))) best = i
  return best
}

# True when http.<key>.* applies to URL t, as git matches it: the same origin, and the path
# of the key a prefix of the path of t that ends at a "/" (an empty key applies everywhere).
function key_applies(key, t,   ko, kp, tp) {
  if (key == "") return 1
  ko = origin_of(key); kp = g_path
  if (ko == "" || g_user != "") return 0
  if (origin_of(t) != ko) return 0
  tp = g_path
  sub(/\/+$/, "", kp)
  # (busybox awk: index() of an empty string is 0, not 1)
  if (kp == "") return 1
  return index(tp, kp) == 1 && (length(tp) == length(kp) || substr(tp, length(kp) + 1, 1) == "/")
}

# True when key is more specific than t and inside it (the path of t a proper prefix at a "/").
function key_inside(key, t,   kp) {
  if (key == "") return 0
  origin_of(key); kp = g_path
  return key_applies(t, key) && length(kp) > length(g_path_of(t))
}
function g_path_of(u) { origin_of(u); return g_path }

# One proposal under the current URL, each once; the `?` line of the URL is printed before its first
# proposal only, so that the shim routes no URL that has nothing to override.
function say(mark, k, v) {
  if ((cur, mark, k, v) in said) return
  said[cur, mark, k, v] = 1
  if (cur != printed) { printed = cur; printf "?\t%s\n", cur }
  printf "%s\t%s\t%s\n", mark, k, v
}
function only_if(url) { cur = url }

function add_url(u) { if (u != "" && !(u in used)) { used[u] = 1; urls[++nurls] = u } }

# A submodule URL relative to the remote of the superproject (./x, ../x), resolved as git does.
function resolve(u,   base) {
  if (u !~ /^\.\.?\//) return u
  base = origin_url; sub(/\/+$/, "", base)
  while (u ~ /^\.\.?\//) {
    if (u ~ /^\.\.\//) sub(/\/[^\/]*$/, "", base)
    sub(/^\.\.?\//, "", u)
  }
  return base "/" u
}

# A reset of the extra headers at key url (empty value), then the headers that are not
# Authorization which git would have sent there, in the order it read them.
function reset_headers(url,   e) {
  if ((cur, url) in reset_done) return
  reset_done[cur, url] = 1
  say("+", "http." url ".extraheader", "")
  for (e = 1; e <= nh; e++)
    if (!is_auth(h_val[e]) && key_applies(h_key[e], url)) say("+", "http." url ".extraheader", h_val[e])
}

# Header overrides for target t (a URL the command uses, or a served prefix): only when an
# Authorization header applies to it or to something inside it.
function headers_for(t,   e, stale) {
  stale = 0
  for (e = 1; e <= nh; e++) if (is_auth(h_val[e]) && (key_applies(h_key[e], t) || key_inside(h_key[e], t))) stale = 1
  if (!stale) return 0
  reset_headers(t)
  for (e = 1; e <= nh; e++) if (is_auth(h_val[e]) && key_inside(h_key[e], t)) reset_headers(h_key[e])
  return 1
}

# git-lfs reads extra headers from the most specific http.<url> key only, and skips empty
# values: a key for the LFS API of the repository, holding a harmless header and the others that
# apply, keeps a stale Authorization from reaching it, and git-lfs then asks the helper.
function lfs_headers(u,   ep, e) {
  ep = u; sub(/\/+$/, "", ep)
  ep = ep ~ /\.git$/ ? ep "/info/lfs" : ep ".git/info/lfs"
  say("+", "http." ep ".extraheader", "X-Git-Token-Keeper: lfs")
  for (e = 1; e <= nh; e++)
    if (!is_auth(h_val[e]) && key_applies(h_key[e], ep)) say("+", "http." ep ".extraheader", h_val[e])
}

BEGIN {
  cur = ""; printed = "\001"; in_modules = 0
  nserved = split(served, served_list, " ")
  nurls = 0; nrw = 0; nh = 0; origin_url = ""
}

{
  sp = index($0, "\037")
  key = sp ? substr($0, 1, sp - 1) : $0
  value = sp ? substr($0, sp + 1) : ""
  if (key ~ /[[:cntrl:]]/) next
  # As git compares keys: section and name in any case (a clone's own -c is given as typed).
  key = norm_key(key)
  if (key ~ /^http\./) { if (value ~ /[\001-\010\012-\037\177]/) next }
  else if (value ~ /[[:cntrl:]]/) next
  if (key == "modules") { in_modules = 1; next }
  if (in_modules) { if (key ~ /^remote\..*\.(url|pushurl)$/) add_url(value); next }
  if (key == "arg") { add_url(value); next }
  if (key == "origin") { if (origin_url == "") origin_url = value; next }
  if (key ~ /^remote\..*\.(url|pushurl)$/) {
    if (key == "remote.origin.url" && origin_url == "") origin_url = value
    add_url(value)
    if (key ~ /\.pushurl$/) { has_pushurl[substr(key, 8, length(key) - 15)] = 1; next }
    name = substr(key, 8, length(key) - 11)
    if (!(name in nremote_urls)) { remote_names[++nremotes] = name; nremote_urls[name] = 0 }
    remote_url[name, ++nremote_urls[name]] = value
    next
  }
  if (key ~ /^submodule\..*\.url$/) { sub_urls[++nsub] = value; next }
  if (key ~ /^url\..*\.(insteadof|pushinsteadof)$/) {
    k = (key ~ /\.pushinsteadof$/) ? "pushInsteadOf" : "insteadOf"
    nrw++; rw_kind[nrw] = k; rw_from[nrw] = value
    rw_base[nrw] = substr(key, 5, length(key) - 4 - length(k) - 1)
    next
  }
  # A push refspec that forces, or a mirror remote: pushes are not safe to run twice.
  if ((key ~ /^remote\..*\.push$/ && value ~ /^\+/) || (key ~ /^remote\..*\.mirror$/ && (!sp || lower(value) ~ /^(true|yes|on|1)$/))) { print "!\tforced"; next }
  # A submodule updated by merge, rebase or a command of the user's: not safe to run twice.
  if (key ~ /^submodule\..*\.update$/ && value ~ /^(!|merge|rebase)/) { print "!\tsubmodule-command"; next }
  # The caller's own trace2 event target (system or global config): the shim leaves it be.
  if (key == "trace2.eventtarget" && sp && lower(value) !~ /^(0|false|no|off)?$/) { print "!\tcaller-trace2"; next }
  # http.extraheader (no URL: every URL) or http.<url>.extraheader.
  if (key == "http.extraheader") { nh++; h_key[nh] = ""; h_val[nh] = value }
  else if (key ~ /^http\..*\.extraheader$/) { nh++; h_key[nh] = substr(key, 6, length(key) - 17); h_val[nh] = value }
}

END {
  for (i = 1; i <= nsub; i++) add_url(resolve(sub_urls[i]))

  # URLs the command uses.
  for (u = 1; u <= nurls; u++) {
    url = urls[u]
    final = url
    # A user:token in the URL itself: the whole URL, rewritten to itself without it.
    if (origin_of(url) != "" && index(g_user, ":")) {
      final = clean(url)
      only_if(final)
      say("+", "url." final ".insteadOf", url)
    } else {
      for (kk = 1; kk <= 2; kk++) {
        k = kk == 1 ? "insteadOf" : "pushInsteadOf"
        r = rewrite_of(url, k)
        if (!r) continue
        target = clean(rw_base[r]) substr(url, length(rw_from[r]) + 1)
        if (kk == 1) final = target
        if (!has_userinfo(rw_base[r])) continue
        # The same rewrite without the token, keyed on the whole URL: git takes the longest
        # match, and the first it read when the rule of a config file is as long.
        only_if(target)
        say(rw_from[r] == url ? "^" : "+", "url." target "." k, url)
      }
    }
    if (origin_of(final) == "") continue
    only_if(final)
    if (headers_for(final)) lfs_headers(final)
    # A served owner spelled in another case than the lower-case prefixes of the daemon: the
    # helper of the keeper, keyed on this URL (git compares paths case by case).
    if (g_path != lower(g_path)) {
      say("+", "credential." final ".helper", "")
      say("+", "credential." final ".helper", helper)
      say("+", "credential." final ".useHttpPath", "true")
    }
  }

  # git-lfs takes a user:token in the raw remote.<name>.url (its last value) as the credential,
  # and pushes with the last pushurl: for this repository only, the clean URL goes last, and
  # push URLs become what git would push to (pushInsteadOf applied), without the token, so
  # that git still pushes once to each. Not when the remote has push URLs of its own.
  for (i = 1; i <= nremotes; i++) {
    name = remote_names[i]
    first = remote_url[name, 1]
    if (name in has_pushurl || origin_of(first) == "" || !index(g_user, ":")) continue
    only_if(clean(first))
    for (j = 1; j <= nremote_urls[name]; j++) {
      u = remote_url[name, j]
      r = rewrite_of(u, "pushInsteadOf")
      if (r) u = rw_base[r] substr(u, length(rw_from[r]) + 1)
      # Only a URL the keeper serves loses its user:token: another host's stays its own.
      if (is_served(u) && index(g_user, ":")) u = clean(u)
      say("@", "remote." name ".pushurl", u)
    }
    say("@", "remote." name ".url", clean(first))
  }

  # Prefixes the keeper serves: rules and headers that would reach any URL under them, also
  # those the command has not named yet (the submodules of a clone).
  for (s = 1; s <= nserved; s++) {
    p = served_list[s]
    only_if(p)
    headers_for(p)
    for (r = 1; r <= nrw; r++) {
      if (!has_userinfo(rw_base[r])) continue
      if (index(p, rw_from[r]) == 1) {
        target = clean(rw_base[r]) substr(p, length(rw_from[r]) + 1)
        only_if(target)
        say(rw_from[r] == p ? "^" : "+", "url." target "." rw_kind[r], p)
        only_if(p)
      } else if (index(rw_from[r], p) == 1) {
        target = clean(rw_base[r])
        only_if(target)
        say("^", "url." target "." rw_kind[r], rw_from[r])
        only_if(p)
      }
    }
  }
}
