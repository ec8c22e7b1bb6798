# shellcheck shell=sh
# git-token-keeper shim: is this a partial clone? Notes at the end (this is read on local commands).
# shellcheck disable=SC2154

gtk_find_git_dir() {
  gtk_git_dir=${gtk_gd:-${GIT_DIR:-}}
  gtk_base=${gtk_cd:-.}
  case $gtk_base in /*) ;; *) gtk_base=$PWD/$gtk_base ;; esac
  if [ -n "$gtk_git_dir" ]; then
    case $gtk_git_dir in /*) ;; *) gtk_git_dir=$gtk_base/$gtk_git_dir ;; esac
    return 0
  fi
  gtk_d=$gtk_base
  while :; do
    if [ -d "$gtk_d/.git" ]; then
      gtk_git_dir=$gtk_d/.git
      return 0
    fi
    if [ -f "$gtk_d/.git" ]; then
      # A worktree's or a submodule's `gitdir: <path>` file.
      { IFS= read -r gtk_line <"$gtk_d/.git"; } 2>/dev/null || return 0
      gtk_git_dir=${gtk_line#gitdir: }
      case $gtk_git_dir in /*) ;; *) gtk_git_dir=$gtk_d/$gtk_git_dir ;; esac
      return 0
    fi
    # A bare repository, or git's own folder.
    if [ -f "$gtk_d/HEAD" ] && [ -d "$gtk_d/objects" ]; then
      gtk_git_dir=$gtk_d
      return 0
    fi
    case $gtk_d in */*) ;; *) return 0 ;; esac
    gtk_d=${gtk_d%/*}
    [ -n "$gtk_d" ] || return 0
  done
}

gtk_in_partial_clone() {
  gtk_find_git_dir
  [ -n "$gtk_git_dir" ] || return 1
  gtk_objects=$gtk_git_dir/objects
  if [ -f "$gtk_git_dir/commondir" ]; then
    { IFS= read -r gtk_line <"$gtk_git_dir/commondir"; } 2>/dev/null
    case $gtk_line in
      '') ;;
      /*) gtk_objects=$gtk_line/objects ;;
      *) gtk_objects=$gtk_git_dir/$gtk_line/objects ;;
    esac
  fi
  # GIT_OBJECT_DIRECTORY moves the objects.
  gtk_objects=${GIT_OBJECT_DIRECTORY:-$gtk_objects}
  set +f
  for gtk_f in "$gtk_objects"/pack/*.promisor; do
    break
  done
  set -f
  [ -e "$gtk_f" ]
}

# Notes.
# Sourced by `git` for the built-in commands
# that read file contents (checkout, diff, log, blame …): in a partial clone (`--filter`) git
# fetches missing objects on the way, by running `git fetch` itself from its exec path (git's
# promisor-remote.c), which the shim never sees. Such a command takes the network path (stale
# credentials reset; never retried); in a full clone it is exec'd at once. The fact checked is
# git's own: a partial clone's packs from its promisor remote carry a `.promisor` file
# (Documentation/technical/partial-clone.txt). Costs a few stat calls, no process.
# gtk_find_git_dir sets gtk_git_dir to the repository's git dir as git would find it (GIT_DIR,
# --git-dir, else a .git folder or `gitdir:` file in the folder -C names or the current one, or
# above; a bare repository), or empty. gtk_in_partial_clone is true when the repository has a
# promisor pack (its own objects, or its common dir's for a worktree, or GIT_OBJECT_DIRECTORY).
