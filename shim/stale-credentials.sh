# shellcheck shell=sh
# git-token-keeper shim: overrides stale credentials that other tools left for URLs the keeper
# serves, for this one command, without touching a file of the repository's or the user's.
# The awk program in stale-credentials.awk proposes; gtk_serves_url (the helper's routing)
# decides. Sourced by git-network.sh.
# shellcheck disable=SC2154,SC2034

# What the command may use and what could carry a stale credential there, as data (`-z`: a
# value with a newline stays one value), read the way the command reads the repository. Both
# forms of the header key: `http.extraheader` (every URL) and `http.<url>.extraheader`.
scan_config() {
  git_with_globals 4 config -z --get-regexp '^(remote\..*\.(url|pushurl|push|mirror)|submodule\..*\.(url|update)|url\..*\.(insteadof|pushinsteadof)|http\.(.*\.)?extraheader|trace2\.eventtarget)$' "$@"
}

# A URL argument, as an `arg` record for the awk program.
print_if_url() {
  case $1 in *://* | *@*:*) printf 'arg\n%s\000' "$1" ;; esac
  return 0
}

# clone's own -c/--config KEY=VALUE (git uses them for the clone's fetch and writes them into the
# new repository's config), as records read after the config files, in their order.
gtk_clone_cfg=''
clone_config_record() {
  if [ -n "$gtk_clone_cfg" ]; then
    gtk_clone_cfg=''
    set -- "--config=$1"
  fi
  case $1 in
    -c | --config) gtk_clone_cfg=1; return 0 ;;
    --config=*) gtk_kv=${1#--config=} ;;
    -c*) gtk_kv=${1#-c} ;;
    *) return 0 ;;
  esac
  case $gtk_kv in
    *=*) printf '%s\n%s\000' "${gtk_kv%%=*}" "${gtk_kv#*=}" ;;
    *) printf '%s\000' "$gtk_kv" ;;
  esac
}

# The repository the command works in, read once the way the command reads it: its git dir, its
# common dir (where submodules' own config files live) and its top (where .gitmodules is),
# wherever in the working tree, or with -C, the command runs. Empty outside a repository; no top
# in a bare one (asked last: rev-parse stops at the first thing it cannot answer).
note_repository() {
  gtk_gitdir='' gtk_common='' gtk_top=''
  # A clone works in a repository that does not exist yet.
  [ "$gtk_sub" = clone ] && return 0
  { read -r gtk_gitdir && read -r gtk_common && read -r gtk_top; } <<EOF
$(git_with_globals 5 rev-parse --path-format=absolute --absolute-git-dir --git-common-dir --show-toplevel "$@" 2>/dev/null)
EOF
}

submodule_urls() {
  [ -n "$gtk_top" ] && [ -f "$gtk_top/.gitmodules" ] || return 0
  internal_git config -z -f "$gtk_top/.gitmodules" --get-regexp '^submodule\..*\.url$' 2>/dev/null
}

# The remote URLs of the submodules' own config files (.git/modules/…/config, at any depth),
# read by git through one file that includes them all, after a `modules` record.
module_urls() {
  [ -n "$gtk_common" ] && [ -d "$gtk_common/modules" ] || return 0
  find "$gtk_common/modules" -name config -type f 2>/dev/null | {
    while IFS= read -r gtk_f; do
      # (A name holding a newline comes out as two lines: neither is an absolute path to a file.)
      case $gtk_f in /*) ;; *) continue ;; esac
      case $gtk_f in *[\"\\]*) continue ;; esac
      [ -f "$gtk_f" ] || continue
      printf '[include]\n\tpath = "%s"\n' "$gtk_f"
    done >"$gtk_tmpdir/modules.gitconfig"
  }
  printf 'modules\n\000'
  internal_git config -z -f "$gtk_tmpdir/modules.gitconfig" --includes --get-regexp '^remote\..*\.(url|pushurl)$' 2>/dev/null
}

neutralise_stale_credentials() {
  note_repository "$@"
  # One record a line for awk: NUL ends a record, and a newline inside one becomes \037.
  {
    each_command_arg print_if_url "$@"
    submodule_urls
    scan_config "$@" </dev/null 2>/dev/null
    [ "$gtk_sub" = clone ] && each_command_arg clone_config_record "$@"
    module_urls
  } | tr '\n\000' '\037\n' | awk -v served="$gtk_served" -v helper="$gtk_helper" -f "$gtk_here/stale-credentials.awk" >"$gtk_tmpdir/proposals" || return 0
  apply_proposals "$@" <"$gtk_tmpdir/proposals"
}

# Keeps the proposals for URLs the keeper serves: `+` entries go to git's environment after the
# caller's; `^` entries to a config file git reads before any other (in the system config's
# place, which then includes the system config; see read_first).
apply_proposals() {
  gtk_tab='	'
  gtk_keep=''
  gtk_first=''
  gtk_repository=''
  gtk_config_forced='' gtk_submodule_command=''
  while IFS= read -r gtk_line; do
    gtk_mark=${gtk_line%%"$gtk_tab"*}
    gtk_rest=${gtk_line#*"$gtk_tab"}
    case $gtk_mark in
      '?') gtk_keep=''; gtk_serves_url "$gtk_rest" && gtk_keep=1; continue ;;
      '!')
        case $gtk_rest in
          forced) gtk_config_forced=1 ;;
          submodule-command) gtk_submodule_command=1 ;;
          caller-trace2) gtk_trace_events='' ;;
        esac
        continue
        ;;
    esac
    [ -n "$gtk_keep" ] || continue
    gtk_k=${gtk_rest%%"$gtk_tab"*}
    gtk_v=${gtk_rest#*"$gtk_tab"}
    case $gtk_mark in
      +) add_config "$gtk_k" "$gtk_v" ;;
      ^) config_file_entry "$gtk_k" "$gtk_v" && gtk_first=$gtk_first$gtk_entry ;;
      @) config_file_entry "$gtk_k" "$gtk_v" && gtk_repository=$gtk_repository$gtk_entry ;;
    esac
  done
  [ -n "$gtk_first" ] && read_first
  [ -n "$gtk_repository" ] && for_this_repository "$@"
  GIT_CONFIG_COUNT=$gtk_n
  export GIT_CONFIG_COUNT
  return 0
}

# Includes this repository's entries for its gitdir only: a git that another repository's
# command runs (submodule foreach, hooks, nested clones) does not read them.
for_this_repository() {
  case $gtk_gitdir in '' | *[*?[\\]*) return 0 ;; esac
  printf '%s' "$gtk_repository" >"$gtk_tmpdir/repository.gitconfig" || return 0
  add_config "includeIf.gitdir:$gtk_gitdir.path" "$gtk_tmpdir/repository.gitconfig"
}

# Sets gtk_entry to SECTION.SUBSECTION.NAME=VALUE ($1, $2) as config file text (an url.<base>
# rule, a remote.<name> URL). Entries that would need escaping are left out: no URL has them.
config_file_entry() {
  gtk_entry=''
  case $1$2 in *[\"\\]*) return 1 ;; esac
  gtk_section=${1%%.*}
  gtk_subkey=${1#*.}
  gtk_entry="[$gtk_section \"${gtk_subkey%.*}\"]
	${gtk_subkey##*.} = \"$2\"
"
}

# Writes the rules that must be read first, then includes the system config git would have read,
# and names the file for this call in the system config's place, which git reads before any
# other: `git config --global` in the command or its hooks still writes the user's own file.
# Where the caller turned the system config off (GIT_CONFIG_NOSYSTEM), the place holds ours
# alone. Only readable files are included: git skips an unreadable config file but dies on an
# unreadable include.
read_first() {
  if system_config_off; then
    # The caller turned the system config off: the place is empty, and stays so but for ours.
    set --
    unset GIT_CONFIG_NOSYSTEM
  else
    # Where git reads it: GIT_CONFIG_SYSTEM, else the real git's own (asked of git: an editor
    # that prints the file's name; nothing is created or changed).
    set -- "${GIT_CONFIG_SYSTEM:-$(GIT_EDITOR='echo' && export GIT_EDITOR && internal_git config --system --edit 2>/dev/null)}"
  fi
  for gtk_f do
    case $gtk_f in *[\"\\]*) continue ;; esac
    [ -r "$gtk_f" ] && gtk_first="${gtk_first}[include]
	path = \"$gtk_f\"
"
  done
  printf '%s' "$gtk_first" >"$gtk_tmpdir/first.gitconfig" || return 0
  GIT_CONFIG_SYSTEM=$gtk_tmpdir/first.gitconfig
  export GIT_CONFIG_SYSTEM
}

# True when GIT_CONFIG_NOSYSTEM turns the system config off, read as git reads a boolean
# (true, yes, on in any case, or a non-zero number).
system_config_off() {
  case ${GIT_CONFIG_NOSYSTEM:-} in
    '' | [Ff][Aa][Ll][Ss][Ee] | [Nn][Oo] | [Oo][Ff][Ff]) return 1 ;;
    *[!0-9]*) return 0 ;;
    *[!0]*) return 0 ;;
  esac
  return 1
}
