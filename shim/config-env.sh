# shellcheck shell=sh
# git-token-keeper shim: `--config-env` with a variable whose name is not a shell identifier
# (the Azure Pipelines agent passes `--config-env=http.extraheader=env_var_http.extraheader`).
# Sourced by `git` only when such an option is given.
# shellcheck disable=SC2034

gtk_renamed_n=0

# Sets gtk_spec to KEY=NAME ($1) with NAME replaced by GIT_TOKEN_KEEPER_CONFIG_ENV_<n> holding the same
# value, read from the environment this process was started with (/proc: dash kept no copy).
# Unchanged when the value cannot be found there.
gtk_renamed_config_env() {
  gtk_name=${1##*=}
  gtk_found=''
  if [ -r "/proc/$$/environ" ]; then
    while IFS= read -r gtk_entry; do
      case $gtk_entry in "$gtk_name="*) gtk_found=${gtk_entry#*=}; break ;; esac
    done <<EOF_ENV
$(tr '\0' '\n' <"/proc/$$/environ")
EOF_ENV
  fi
  case $gtk_found:$gtk_name in
    :*) gtk_spec=$1 ;;
    *)
      gtk_renamed_n=$((gtk_renamed_n + 1))
      export "GIT_TOKEN_KEEPER_CONFIG_ENV_$gtk_renamed_n=$gtk_found"
      gtk_spec=${1%=*}=GIT_TOKEN_KEEPER_CONFIG_ENV_$gtk_renamed_n
      ;;
  esac
}
