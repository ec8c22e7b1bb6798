# shellcheck shell=sh
# git-token-keeper shim: sshToHttps, sourced by `git` for each prefix ($gtk_p) of an origin
# ($gtk_origin) whose line in origins says `ssh`: that host's SSH URLs of what the keeper
# serves (git@host:path, ssh://git@host/path) go over HTTPS, keyed on the prefix alone.
# shellcheck disable=SC2154

gtk_host=${gtk_origin#*://}
# Without the port; an IPv6 address keeps its brackets.
case $gtk_host in
  \[*\]) ;;
  *:*) gtk_host=${gtk_host%:*} ;;
esac
export "GIT_CONFIG_KEY_$gtk_n=url.$gtk_origin$gtk_p.insteadOf" "GIT_CONFIG_VALUE_$gtk_n=git@$gtk_host:${gtk_p#/}" \
  "GIT_CONFIG_KEY_$((gtk_n + 1))=url.$gtk_origin$gtk_p.insteadOf" "GIT_CONFIG_VALUE_$((gtk_n + 1))=ssh://git@$gtk_host$gtk_p"
gtk_n=$((gtk_n + 2))
