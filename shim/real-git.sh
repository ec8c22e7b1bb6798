# shellcheck shell=sh
# git-token-keeper shim: finding the real git, the cases off the fast path. Sourced by `git`
# with gtk_why set:
#   given    $GIT_TOKEN_KEEPER_REAL_GIT is set: taken unless it is a shim (then PATH is searched)
#   search   the quick look (the first git after the shim's own PATH entry) found a shim, or
#            nothing, or PATH has an empty entry: the whole PATH, in order, as the shell would
#            search it; no git besides shims is an error
#   hop      this shim was run as the real git by another (the loop guard): the call goes to the
#            git after it, once; a second hop (GIT_TOKEN_KEEPER_HOP is our pid) is an error
# shellcheck disable=SC2154

case $gtk_why in
  given)
    case $gtk_real_git in
      "$gtk_invoked" | "$gtk_self") gtk_why=shim ;;
      *) [ ! -f "${gtk_real_git%/*}/token-keeper-lib.sh" ] || gtk_why=shim ;;
    esac
    if [ "$gtk_why" = shim ]; then
      printf 'git-token-keeper: GIT_TOKEN_KEEPER_REAL_GIT points at the shim itself; looking for git on PATH instead\n' >&2
      gtk_real_git=''
    fi
    ;;
  search)
    gtk_real_git=''
    gtk_ifs=$IFS
    IFS=:
    # (A trailing empty entry is one more: the shell's splitting drops it.)
    for gtk_d in $PATH${PATH:+:}; do
      gtk_d=${gtk_d:-.}
      if [ -f "$gtk_d/git" ] && [ -x "$gtk_d/git" ] && [ "$gtk_d/git" != "$gtk_invoked" ] && [ "$gtk_d/git" != "$gtk_self" ] && [ ! -f "$gtk_d/token-keeper-lib.sh" ]; then
        gtk_real_git=$gtk_d/git
        break
      fi
    done
    IFS=$gtk_ifs
    if [ -z "$gtk_real_git" ]; then
      printf 'git-token-keeper: no git on PATH besides the shim; install git or set GIT_TOKEN_KEEPER_REAL_GIT\n' >&2
      exit 127
    fi
    ;;
  hop)
    if [ "${GIT_TOKEN_KEEPER_HOP:-}" = "$$" ]; then
      printf 'git-token-keeper: the shim would run itself (%s); set GIT_TOKEN_KEEPER_REAL_GIT to the real git\n' "$0" >&2
      exit 127
    fi
    GIT_TOKEN_KEEPER_HOP=$$
    export GIT_TOKEN_KEEPER_HOP
    exec "$gtk_real_git" "$@"
    ;;
esac
