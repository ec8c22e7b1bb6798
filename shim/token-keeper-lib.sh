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

# True when the daemon is alive: its pid file is there (a clean stop removes it) and its
# heartbeat (seconds since the epoch, rewritten every 10 s) is at most 30 s old. No pid is
# checked: in a pod the daemon is in another container's PID namespace, where its pid names
# some other process or none. Sets gtk_now.
gtk_daemon_alive() {
  gtk_now=$(date +%s)
  [ -f "$gtk_dir/daemon.pid" ] || return 1
  gtk_beat=''
  { read -r gtk_beat gtk_rest <"$gtk_dir/heartbeat"; } 2>/dev/null
  case $gtk_beat in '' | *[!0-9]*) return 1 ;; esac
  [ "$((gtk_now - gtk_beat))" -le 30 ]
}
