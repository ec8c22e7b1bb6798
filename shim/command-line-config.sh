# shellcheck shell=sh
# git-token-keeper shim: the caller's -c and --config-env options, moved to
# GIT_CONFIG_PARAMETERS as git itself passes them on, so that the keeper's entries can come after
# them. Sourced by git-network.sh, whose loop over the caller's global options calls
# command_line_config_arg for each.
# shellcheck disable=SC2154,SC2034

# Sets gtk_q to $1 quoted for GIT_CONFIG_PARAMETERS (single quotes; a quote as '\'').
sq_quote() {
  gtk_q=''
  gtk_r=$1
  while :; do
    case $gtk_r in
      *\'*) gtk_q="$gtk_q${gtk_r%%\'*}'\\''"; gtk_r=${gtk_r#*\'} ;;
      *) gtk_q="'$gtk_q$gtk_r'"; return 0 ;;
    esac
  done
}

# Appends KEY=VALUE ($1, $2; no $2: a key without a value) to gtk_params as git writes -c.
add_param() {
  sq_quote "$1"
  gtk_params="$gtk_params $gtk_q"
  [ "$#" -eq 2 ] || return 0
  sq_quote "$2"
  gtk_params="$gtk_params=$gtk_q"
}

# git reads -c and --config-env after GIT_CONFIG_COUNT (and GIT_CONFIG_PARAMETERS after it): a
# caller's `-c credential.helper=` or header there would beat the keeper's entries. git itself
# passes -c on to every git it starts as GIT_CONFIG_PARAMETERS, so the shim does that for it,
# in the same order, and appends its own entries after them (gtk_params). Called with each of
# the caller's global options; returns 0 to keep it on the command line, 1 to drop it, 2 to
# keep it after the `--config-env` dropped before it (whose variable is not set: git says so).
command_line_config_arg() {
  case $gtk_cl_skip:$1 in
    c:*)
      gtk_cl_skip=''
      case $1 in *=*) add_param "${1%%=*}" "${1#*=}" ;; *) add_param "$1" ;; esac
      return 1
      ;;
    e:*) gtk_cl_skip=''; config_env_param "$1" && return 1; return 2 ;;
    :-c) gtk_cl_skip=c; return 1 ;;
    :--config-env) gtk_cl_skip=e; return 1 ;;
    :--config-env=*) config_env_param "${1#--config-env=}" && return 1; return 0 ;;
    :-C | :--git-dir | :--work-tree | :--namespace | :--super-prefix | :--attr-source) gtk_cl_skip=keep ;;
    keep:*) gtk_cl_skip='' ;;
  esac
  return 0
}

# KEY=NAME of --config-env as a parameter, with the variable's value read the way git reads it;
# returns 1 when the variable is not set.
config_env_param() {
  gtk_name=${1##*=}
  case $gtk_name in '' | [0-9]* | *[!A-Za-z0-9_]*) return 1 ;; esac
  eval "gtk_set=\${$gtk_name+set} gtk_val=\${$gtk_name-}"
  [ "$gtk_set" = set ] || return 1
  add_param "${1%=*}" "$gtk_val"
}

# Our entries, from GIT_CONFIG_COUNT past the caller's own, appended to gtk_params.
params_of_ours() {
  gtk_i=$gtk_caller_n
  while [ "$gtk_i" -lt "$gtk_n" ]; do
    eval "add_param \"\$GIT_CONFIG_KEY_$gtk_i\" \"\$GIT_CONFIG_VALUE_$gtk_i\""
    gtk_i=$((gtk_i + 1))
  done
}
