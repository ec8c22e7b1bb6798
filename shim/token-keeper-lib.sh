# shellcheck shell=sh
# git-token-keeper: functions shared by the git shim and the credential helper.
# Sourced, never run. Plain POSIX sh: no bash-isms, every expansion quoted.
# Names start with gtk_ so that they cannot clash with the caller's environment.
# Functions return their results in gtk_* variables (no subshell, no exec): callers read them.
# shellcheck disable=SC2034

# Sets gtk_dir the way the daemon finds its state dir: $GIT_TOKEN_KEEPER_DIR, else the config's
# stateDir, else $XDG_RUNTIME_DIR/git-token-keeper, else /run/git-token-keeper.
gtk_find_state_dir() {
  if [ -n "${GIT_TOKEN_KEEPER_DIR:-}" ]; then
    gtk_dir=$GIT_TOKEN_KEEPER_DIR
    return 0
  fi
  gtk_dir=''
  gtk_config_state_dir "${GIT_TOKEN_KEEPER_CONFIG:-/etc/git-token-keeper/config.yaml}"
  [ -n "$gtk_dir" ] && return 0
  if [ -n "${XDG_RUNTIME_DIR:-}" ]; then
    gtk_dir=$XDG_RUNTIME_DIR/git-token-keeper
  else
    gtk_dir=/run/git-token-keeper
  fi
}

# Reads a top-level `stateDir:` (YAML) or `"stateDir": "…"` (JSON) from a config file.
gtk_config_state_dir() {
  [ -r "$1" ] || return 0
  while IFS= read -r gtk_line || [ -n "$gtk_line" ]; do
    case $gtk_line in
      stateDir:*) gtk_v=${gtk_line#stateDir:} ;;
      *'"stateDir"'*:*) gtk_v=${gtk_line#*'"stateDir"'}; gtk_v=${gtk_v#*:} ;;
      *) continue ;;
    esac
    gtk_v=${gtk_v#"${gtk_v%%[! ]*}"}
    case $gtk_v in
      \"*) gtk_v=${gtk_v#\"}; gtk_v=${gtk_v%%\"*} ;;
      \'*) gtk_v=${gtk_v#\'}; gtk_v=${gtk_v%%\'*} ;;
      *) gtk_v=${gtk_v%%[ #]*} ;;
    esac
    case $gtk_v in /*) gtk_dir=$gtk_v ;; esac
    return 0
  done <"$1"
}

# Lower-cases $1 into gtk_lower; a `tr` only when there is something to change.
gtk_to_lower() {
  case $1 in
    *[A-Z]*) gtk_lower=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]') ;;
    *) gtk_lower=$1 ;;
  esac
}

# Splits scheme://[userinfo@]host[:port][/path] into gtk_scheme, gtk_userinfo, gtk_host
# (lower-case, default port dropped) and gtk_path. Returns 1 for anything else.
gtk_split_url() {
  case $1 in
    http://* | https://* | HTTP://* | HTTPS://*) ;;
    *) return 1 ;;
  esac
  gtk_to_lower "${1%%://*}"
  gtk_scheme=$gtk_lower
  gtk_rest=${1#*://}
  gtk_authority=${gtk_rest%%/*}
  # curl ends the authority at "?", "#" (and "\"), not only at "/": such a URL is no one's here.
  case $gtk_authority in *[?#\\]*) return 1 ;; esac
  case $gtk_rest in */*) gtk_path=${gtk_rest#*/} ;; *) gtk_path='' ;; esac
  case $gtk_authority in
    *@*) gtk_userinfo=${gtk_authority%@*}; gtk_authority=${gtk_authority##*@} ;;
    *) gtk_userinfo='' ;;
  esac
  gtk_normal_host "$gtk_scheme" "$gtk_authority"
}

# gtk_host from scheme $1 and host[:port] $2: lower-case, without the scheme's default port.
gtk_normal_host() {
  gtk_to_lower "$2"
  gtk_host=$gtk_lower
  case $1:$gtk_host in
    https:*:443) gtk_host=${gtk_host%:443} ;;
    http:*:80) gtk_host=${gtk_host%:80} ;;
  esac
}

# Sets gtk_provider and gtk_scope (the token file's name: the owner, `owner~repository` for a
# provider with a token per repository, or `shared`) for origin $1
# (scheme://host[:port], normalised) and path $2 (as git gives it; never decoded), by the rules
# of the daemon's routes file: the longest matching path prefix wins, and at the same prefix a
# provider that lists the owner (the first path segment, lower-cased) wins over one that serves
# any owner. A path that climbs (`..`, `.`, or their percent-encoded forms) is served by nobody,
# and neither is an owner that is not a plain name. The helper answers, and the shim overrides,
# by this one function. Returns 1 when the keeper does not serve the URL.
gtk_route() {
  gtk_route_path "$2" || return 1
  gtk_provider='' gtk_mode='' gtk_best=-1
  [ -r "$gtk_dir/routes" ] || return 1
  while read -r gtk_r_origin gtk_r_provider gtk_r_prefix gtk_r_mode gtk_r_owners; do
    [ "$gtk_r_origin" = "$1" ] || continue
    case $gtk_lpath in "$gtk_r_prefix"*) ;; *) continue ;; esac
    case ,$gtk_r_owners, in
      *,"$gtk_owner",*) gtk_score=$((${#gtk_r_prefix} * 2 + 1)) ;;
      ,\*,) gtk_score=$((${#gtk_r_prefix} * 2)) ;;
      *) continue ;;
    esac
    if [ "$gtk_score" -gt "$gtk_best" ]; then
      gtk_best=$gtk_score gtk_provider=$gtk_r_provider gtk_mode=$gtk_r_mode
    fi
  done <"$gtk_dir/routes"
  [ -n "$gtk_provider" ] || return 1
  if [ "$gtk_mode" = shared ]; then
    gtk_scope=shared
    return 0
  fi
  case $gtk_owner in '' | .* | *[!a-z0-9._-]*) return 1 ;; esac
  gtk_scope=$gtk_owner
  [ "$gtk_mode" = repository ] || return 0
  # One token per repository: the scope is owner~repository (the second segment, less .git).
  gtk_repo=${gtk_lpath#/"$gtk_owner"/}
  [ "$gtk_repo" != "$gtk_lpath" ] || return 1
  gtk_repo=${gtk_repo%%/*}
  gtk_repo=${gtk_repo%.git}
  case $gtk_repo in '' | .* | *[!a-z0-9._-]*) return 1 ;; esac
  gtk_scope=$gtk_owner~$gtk_repo
}

# Sets gtk_lpath (path $1 lower-cased, with a leading slash) and gtk_owner (its first segment);
# returns 1 when the path climbs.
gtk_route_path() {
  gtk_to_lower "/${1#/}"
  gtk_lpath=$gtk_lower
  case $gtk_lpath in */../* | */.. | */./* | */. | *%2[ef]*) return 1 ;; esac
  gtk_owner=${gtk_lpath#/}
  gtk_owner=${gtk_owner%%/*}
}

# True when the keeper serves URL $1 (http or https): a repository URL that gtk_route serves, or
# a prefix ending in `/` that a provider serving any owner (or a shared token, or a token per
# repository of a listed owner) covers whole.
gtk_serves_url() {
  gtk_split_url "$1" || return 1
  gtk_route "$gtk_scheme://$gtk_host" "$gtk_path" && return 0
  gtk_route_path "$gtk_path" || return 1
  case $gtk_lpath in */) ;; *) return 1 ;; esac
  [ -r "$gtk_dir/routes" ] || return 1
  while read -r gtk_r_origin gtk_r_provider gtk_r_prefix gtk_r_mode gtk_r_owners; do
    [ "$gtk_r_origin" = "$gtk_scheme://$gtk_host" ] || continue
    case $gtk_lpath in "$gtk_r_prefix"*) ;; *) continue ;; esac
    [ "$gtk_r_owners" = '*' ] || [ "$gtk_r_mode" = shared ] && return 0
    # A token per repository: a listed owner's prefix is served (each repository under it is).
    if [ "$gtk_r_mode" = repository ]; then
      case ,$gtk_r_owners, in *,"$gtk_owner",*) return 0 ;; esac
    fi
  done <"$gtk_dir/routes"
  return 1
}

# Files request $1 (the name's first four fields) in the daemon's queue; sets gtk_request to its
# path. The last field is random and the file created exclusively (noclobber): requests/ is the
# group's, and nothing a member put there in advance may be written through (a link) or hang
# this process (a FIFO). Returns 1 when no file could be made.
gtk_file_request() {
  gtk_tries=0
  while [ "$gtk_tries" -lt 3 ]; do
    gtk_tries=$((gtk_tries + 1))
    gtk_rand=$(od -An -N8 -tx8 /dev/urandom 2>/dev/null) || return 1
    gtk_request=$gtk_dir/requests/$1+${gtk_rand##* }
    set -C
    { printf "" >"$gtk_request"; } 2>/dev/null
    gtk_made=$?
    set +C
    [ "$gtk_made" -eq 0 ] && return 0
  done
  return 1
}

# Sets gtk_now to the time in seconds since the epoch, and gtk_now_ms in milliseconds where it
# can. Without starting a process where it can: the daemon's heartbeat says when the machine
# booted (by its clock, in seconds and in milliseconds), and /proc/uptime how long ago that was
# (the same for every container on the machine, in hundredths); else `date` (seconds only).
gtk_time_now() {
  gtk_beat='' gtk_booted='' gtk_booted_ms='' gtk_now_ms='' gtk_beat_boot=''
  { read -r gtk_beat gtk_iso gtk_booted gtk_booted_ms gtk_beat_boot gtk_rest <"$gtk_dir/heartbeat"; } 2>/dev/null
  # A heartbeat of an earlier boot (a state dir on disk, kept across a reboot) says nothing of
  # this one's: its boot time is not used, and the daemon that wrote it is not alive.
  if [ -n "$gtk_beat_boot" ]; then
    gtk_boot_id=''
    { read -r gtk_boot_id </proc/sys/kernel/random/boot_id; } 2>/dev/null
    if [ -n "$gtk_boot_id" ] && [ "$gtk_boot_id" != "$gtk_beat_boot" ]; then
      gtk_beat='' gtk_booted='' gtk_booted_ms=''
    fi
  fi
  gtk_up=''
  case $gtk_booted in
    '' | *[!0-9]*) ;;
    *) { read -r gtk_up gtk_idle </proc/uptime; } 2>/dev/null ;;
  esac
  case ${gtk_up%.*} in
    '' | *[!0-9]*) gtk_now=$(date +%s); return 0 ;;
    *) gtk_now=$((gtk_booted + ${gtk_up%.*})) ;;
  esac
  # Hundredths as two digits ("1" then them, less 100: "08" is no octal number then).
  case $gtk_booted_ms:${gtk_up#*.} in
    *[!0-9:]* | :* | *:) ;;
    *:[0-9][0-9]) gtk_now_ms=$((gtk_booted_ms + ${gtk_up%.*} * 1000 + (1${gtk_up#*.} - 100) * 10)) ;;
  esac
}

# Moves gtk_now and gtk_now_ms forward to the wall clock as `date` reads it, where that is later
# than the heartbeat's reckoning: the clock was set forward since the daemon last wrote it. Never
# back: a clock set back is the daemon's to apply to its tokens' times (it does, within 250 ms).
gtk_wall_clock() {
  gtk_wall=$(date +%s%N 2>/dev/null) || return 0
  # A date without %N prints it as it is (busybox: "…%N"), or prints nothing for it: seconds then.
  case $gtk_wall in *[!0-9]*) gtk_wall=$(date +%s 2>/dev/null) ;; esac
  case $gtk_wall in '' | *[!0-9]*) return 0 ;; esac
  [ "${#gtk_wall}" -le 12 ] && gtk_wall=${gtk_wall}000000000
  [ "${#gtk_wall}" -ge 19 ] || return 0
  gtk_wall_ms=${gtk_wall%??????}
  case $gtk_now_ms in
    '' | *[!0-9]*) [ "${gtk_wall%?????????}" -gt "$gtk_now" ] && gtk_now=${gtk_wall%?????????} ;;
    *) if [ "$gtk_wall_ms" -gt "$gtk_now_ms" ]; then
      gtk_now_ms=$gtk_wall_ms
      gtk_now=${gtk_wall%?????????}
    fi ;;
  esac
  return 0
}

# True when the daemon is alive: its pid file is there (a clean stop removes it) and its
# heartbeat (seconds since the epoch, rewritten every 10 s) is at most 30 s old. No pid is
# checked: in a pod the daemon is in another container's PID namespace, where its pid names
# some other process or none. Sets gtk_now.
gtk_daemon_alive() {
  gtk_time_now
  [ -f "$gtk_dir/daemon.pid" ] || return 1
  case $gtk_beat:$gtk_now in *[!0-9:]* | :* | *:) return 1 ;; esac
  # Written in the future by more than the clocks' rounding: not this boot's, or not believable.
  [ "$((gtk_now - gtk_beat))" -le 30 ] && [ "$((gtk_now - gtk_beat))" -ge -2 ]
}

# True when the heartbeat is as recent as a live daemon keeps it (every 10 s): then its boot time,
# and the time reckoned from it, are current but for a clock set in the last quarter second.
gtk_beat_recent() {
  case $gtk_beat:$gtk_now in *[!0-9:]* | :* | *:) return 1 ;; esac
  [ "$((gtk_now - gtk_beat))" -le 12 ] && [ "$((gtk_now - gtk_beat))" -ge -2 ]
}

# True when the state dir and its tokens folder can be written by their owner alone (a folder
# somebody else made, in /tmp say, before the daemon did, is nobody's to trust). Says what is
# wrong otherwise. Who the owner is is not checked: the daemon may run as another user.
gtk_state_dir_private() {
  # -L: the folder a symlink leads to (the link's own mode says nothing).
  gtk_modes=$(LC_ALL=C ls -ldnL "$gtk_dir" "$gtk_dir/tokens" 2>/dev/null)
  case $gtk_modes in
    ?????w* | ????????w* | *"$gtk_nl"?????w* | *"$gtk_nl"????????w*)
      printf 'git-token-keeper: the state dir %s (or its tokens folder) can be written by others than its owner, so its tokens cannot be trusted: git runs without the keeper. Let the daemon create it (remove it, restart the daemon), or chmod go-w it.\n' "$gtk_dir" >&2
      return 1
      ;;
  esac
}
gtk_nl='
'

# Removes the keeper's GIT_CONFIG_COUNT entries (those past the caller's own): git then runs
# without them (a refused state dir), or with them in GIT_CONFIG_PARAMETERS alone (git reads
# both: an entry in both is read twice, and a multi-valued one such as a pushurl doubled).
# shellcheck disable=SC2154
gtk_drop_our_entries() {
  while [ "$gtk_n" -gt "$gtk_caller_n" ]; do
    gtk_n=$((gtk_n - 1))
    unset "GIT_CONFIG_KEY_$gtk_n" "GIT_CONFIG_VALUE_$gtk_n"
  done
  if [ "$gtk_caller_n" -gt 0 ]; then
    GIT_CONFIG_COUNT=$gtk_caller_n
  else
    unset GIT_CONFIG_COUNT
  fi
}

# True when remote, submodule, lfs or archive ($gtk_sub, arguments after the first
# $gtk_globals) only reads and writes the repository: its subcommand (the first word after it)
# is one that never reaches the network, and archive has no --remote.
# shellcheck disable=SC2154
gtk_local_form() {
  gtk_i=0 gtk_word='' gtk_fetching=''
  for gtk_a do
    gtk_i=$((gtk_i + 1))
    [ "$gtk_i" -le $((gtk_globals + 1)) ] && continue
    case $gtk_a in
      --remote | --remote=*) return 1 ;;
      -f | --fetch) gtk_fetching=1 ;;
      -*) ;;
      *) [ -z "$gtk_word" ] && gtk_word=$gtk_a ;;
    esac
  done
  case $gtk_sub:$gtk_word in
    archive:*) return 0 ;;
    remote:add) [ -z "$gtk_fetching" ] ;;
    remote: | remote:get-url | remote:set-url | remote:rename | remote:remove | remote:rm | remote:set-branches) return 0 ;;
    submodule: | submodule:status | submodule:summary | submodule:absorbgitdirs | submodule:set-url | submodule:set-branch | \
      submodule:sync | submodule:init | submodule:deinit) return 0 ;;
    lfs: | lfs:version | lfs:env | lfs:track | lfs:untrack | lfs:ls-files | lfs:status | lfs:install | lfs:uninstall | \
      lfs:update | lfs:ext | lfs:logs | lfs:migrate | lfs:fsck | lfs:pointer) return 0 ;;
  esac
  return 1
}

# For the shim: when subcommand $gtk_sub is an alias (`alias.<name>`, read with the caller's
# global options, as git reads it) that may reach the network, sets gtk_alias to its words
# after the command (quotes dropped: the retry policy reads them, never git) and gtk_sub to
# the command it runs; a shell alias (`!…`) counts as one, whose command is the user's.
# Returns 1 when git runs something else.
# shellcheck disable=SC2154
gtk_resolve_alias() {
  gtk_words='' gtk_name=$gtk_sub gtk_depth=0
  # An alias of an alias, as git follows them (at most 8 here; git stops at a loop).
  while :; do
    gtk_value=$(gtk_globals_then "$gtk_globals" config --get "alias.$gtk_name" -- "$@" 2>/dev/null) || return 1
    gtk_value=${gtk_value#"${gtk_value%%[! 	]*}"}
    case $gtk_value in
      '!'*) gtk_alias=shell gtk_sub=alias-shell; return 0 ;;
    esac
    # Its words (the caller's arguments stay in "$@" for the next look); the words of the outer
    # alias come after the inner one's.
    gtk_name='' gtk_more=''
    # shellcheck disable=SC2086
    for gtk_w in $gtk_value; do
      if [ -z "$gtk_name" ]; then
        gtk_name=$gtk_w
        continue
      fi
      case $gtk_w in *[\"\']*) gtk_w=$(printf '%s' "$gtk_w" | tr -d "\"'") ;; esac
      gtk_more="$gtk_more$gtk_w "
    done
    gtk_words="$gtk_more$gtk_words"
    case $gtk_name in
      clone | fetch | pull | push | ls-remote | remote | submodule | archive | lfs | fetch-pack | send-pack | maintenance | backfill) break ;;
      '' | *[!a-z0-9-]*) return 1 ;;
    esac
    # A git command is never an alias: it runs as it is.
    [ ! -x "${GIT_EXEC_PATH:-${gtk_real_git%/bin/git}/lib/git-core}/git-$gtk_name" ] || return 1
    gtk_depth=$((gtk_depth + 1))
    [ "$gtk_depth" -lt 8 ] || return 1
  done
  gtk_sub=$gtk_name
  gtk_alias=" $gtk_words"
}

# Runs the real git, its traces emptied, with the first N ($1) of the arguments after `--`
# (the caller's global options) before the rest of the arguments up to `--`.
gtk_globals_then() {
  gtk_n_globals=$1
  shift
  gtk_all=$#
  gtk_seen_sep=''
  gtk_i=0
  for gtk_a do
    if [ -z "$gtk_seen_sep" ]; then
      [ "$gtk_a" = -- ] && gtk_seen_sep=1
      continue
    fi
    [ "$gtk_i" -lt "$gtk_n_globals" ] && set -- "$@" "$gtk_a"
    gtk_i=$((gtk_i + 1))
  done
  for gtk_a do
    [ "$gtk_a" = -- ] && break
    set -- "$@" "$gtk_a"
  done
  shift "$gtk_all"
  internal_git "$@"
}

# The shim's own git calls: the caller's traces (GIT_TRACE*, trace2) hold git's lines, not
# these; the caller's stdin is the command's, never theirs; a shim on the way is caught by the
# guard at its top.
# shellcheck disable=SC2154
internal_git() {
  # trace2's targets off outright: empty would fall back to trace2.*Target in the config.
  GIT_TRACE='' GIT_TRACE_PACKET='' GIT_TRACE_PERFORMANCE='' GIT_TRACE_SETUP='' GIT_TRACE_CURL='' \
    GIT_TRACE_SHALLOW='' GIT_TRACE_PACK_ACCESS='' GIT_TRACE_REFS='' GIT_TRACE_FSMONITOR='' \
    GIT_TRACE2=0 GIT_TRACE2_EVENT=0 GIT_TRACE2_PERF=0 GIT_TOKEN_KEEPER_SHIM_PID=$$ "$gtk_real_git" "$@" </dev/null
}

