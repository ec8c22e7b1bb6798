# shellcheck shell=sh
# git-token-keeper shim: git's global options before the subcommand (-C dir, -c k=v,
# --config-env, --git-dir …), sourced by `git` only when the first argument is an option.
# Sets gtk_sub, gtk_globals (how many arguments stand before it), gtk_cmdline_config (a -c or
# --config-env is given), gtk_config_env (a --config-env NAME that is no shell identifier:
# dash drops such variables), and gtk_cd / gtk_gd (the folder -C names and the --git-dir, for
# the partial-clone check).
# shellcheck disable=SC2034,SC2154

gtk_skip=''
for gtk_a do
  case $gtk_skip in
    '')
      case $gtk_a in
        --config-env) gtk_skip=cfgenv gtk_cmdline_config=1 ;;
        --config-env=*) gtk_cmdline_config=1; case ${gtk_a##*=} in '' | [0-9]* | *[!A-Za-z0-9_]*) gtk_config_env=1 ;; esac ;;
        -c) gtk_skip=1 gtk_cmdline_config=1 ;;
        -C) gtk_skip=C ;;
        --git-dir) gtk_skip=G ;;
        --git-dir=*) gtk_gd=${gtk_a#*=} ;;
        --work-tree | --namespace | --super-prefix | --attr-source | --shallow-file) gtk_skip=1 ;;
        -*) ;;
        *) gtk_sub=$gtk_a; break ;;
      esac
      ;;
    cfgenv) gtk_skip=''; case ${gtk_a##*=} in '' | [0-9]* | *[!A-Za-z0-9_]*) gtk_config_env=1 ;; esac ;;
    C) gtk_skip=''; case $gtk_a in /*) gtk_cd=$gtk_a ;; '') ;; *) gtk_cd=${gtk_cd:-.}/$gtk_a ;; esac ;;
    G) gtk_skip='' gtk_gd=$gtk_a ;;
    *) gtk_skip='' ;;
  esac
  gtk_globals=$((gtk_globals + 1))
done
if [ -n "$gtk_config_env" ]; then
  # shellcheck source=config-env.sh
  . "$gtk_here/config-env.sh" || exit 127
fi
