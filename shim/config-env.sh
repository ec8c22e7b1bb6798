# shellcheck shell=sh
# git-token-keeper shim: `--config-env` with a variable whose name is not a shell identifier
# (the Azure Pipelines agent passes `--config-env=http.extraheader=env_var_http.extraheader`).
# Sourced by `git` only when such an option is given, with the caller's arguments in "$@":
# dash (Debian's /bin/sh) drops such variables before it runs anything, so git would die
# "missing environment variable". The value, read from what this process was started with,
# goes to git under a name of ours.
# shellcheck disable=SC2034,SC2154

gtk_renamed_n=0
gtk_us=$(printf '\037')

# Sets gtk_spec to KEY=NAME ($1) with NAME replaced by GIT_TOKEN_KEEPER_CONFIG_ENV_<n> holding the same
# value, read from the environment this process was started with (/proc: dash kept no copy).
# Unchanged when the value cannot be found there.
gtk_renamed_config_env() {
  gtk_name=${1##*=}
  gtk_found='' gtk_was_set=''
  if [ -r "/proc/$$/environ" ]; then
    while IFS= read -r gtk_entry; do
      case $gtk_entry in "$gtk_name="*) gtk_found=${gtk_entry#*=} gtk_was_set=1; break ;; esac
    done <<EOF_ENV
$(tr '\0\n' '\n\037' <"/proc/$$/environ")
EOF_ENV
  fi
  # One entry a line: a newline inside a value was carried as \037 (so that no value can pose as
  # another variable), and is given back.
  case $gtk_found in
    *"$gtk_us"*) gtk_found=$(printf '%s.' "$gtk_found" | tr '\037' '\n') && gtk_found=${gtk_found%.} ;;
  esac
  # Set, even to nothing (git takes an empty value as it is): passed on under a name of ours.
  if [ -n "$gtk_was_set" ]; then
    gtk_renamed_n=$((gtk_renamed_n + 1))
    export "GIT_TOKEN_KEEPER_CONFIG_ENV_$gtk_renamed_n=$gtk_found"
    gtk_spec=${1%=*}=GIT_TOKEN_KEEPER_CONFIG_ENV_$gtk_renamed_n
  else
    gtk_spec=$1
  fi
}

# The global options ($gtk_globals of them) with each such NAME renamed.
gtk_all=$#
gtk_i=0
gtk_skip=''
for gtk_a do
  gtk_i=$((gtk_i + 1))
  if [ "$gtk_i" -le "$gtk_globals" ]; then
    case $gtk_skip:$gtk_a in
      cfgenv:*) gtk_renamed_config_env "$gtk_a"; gtk_a=$gtk_spec ;;
      *:--config-env=*) gtk_renamed_config_env "${gtk_a#--config-env=}"; gtk_a=--config-env=$gtk_spec ;;
    esac
    gtk_skip=''
    [ "$gtk_a" = --config-env ] && gtk_skip=cfgenv
  fi
  set -- "$@" "$gtk_a"
done
shift "$gtk_all"
