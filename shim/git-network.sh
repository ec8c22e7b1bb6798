# shellcheck shell=sh
# git-token-keeper shim, network half: sourced by `git` for every command that is not one of
# git's local built-ins, with the caller's arguments still in "$@". Expects gtk_real_git, gtk_here,
# gtk_sub, gtk_globals, gtk_served, gtk_helper, gtk_n, gtk_cd and gtk_gd from the shim.
#   run-git.sh            process plumbing: git run untouched, signals passed on, backoff
#   stale-credentials.sh  what is overridden for URLs the keeper serves (stale-credentials.awk)
#   retry-policy.sh       which failures are retried (git-outcome.awk reads git's trace2 events)
#   command-line-config.sh  the caller's -c and --config-env, moved to GIT_CONFIG_PARAMETERS
#   lazy-fetch.sh         whether a local command may fetch (a partial clone)
# shellcheck disable=SC2154

# Which commands take this path: those that may reach the network, and aliases of them,
# resolved as git resolves them (one look at the config). git's other built-in commands (no
# alias can shadow them), and anything else, are exec'd here.
gtk_alias=''
# A command that fetches the missing objects of a partial clone (gtk_lazy, shim/git [7]) is here already.
[ -n "$gtk_lazy" ] || case $gtk_sub in
  clone | fetch | pull | push | ls-remote | fetch-pack | send-pack | maintenance | backfill) ;;
  remote | submodule | lfs | archive)
    # shellcheck source=token-keeper-lib.sh
    . "$gtk_here/token-keeper-lib.sh" || exec_git "$@"
    # Their local forms (remote -v, submodule status, lfs track, archive without --remote); a
    # local archive reads file contents (as the commands of shim/git [7]).
    if gtk_local_form "$@"; then
      [ "$gtk_sub" = archive ] || exec_git "$@"
      # shellcheck source=lazy-fetch.sh
      . "$gtk_here/lazy-fetch.sh" || exec_git "$@"
      gtk_in_partial_clone || exec_git "$@"
      gtk_lazy=1
    fi
    ;;
  '' | status | add | commit | branch | tag | for-each-ref | show-ref | symbolic-ref | \
    update-ref | update-index | ls-files | describe | merge-base | rm | mv | init | init-db | clean | \
    apply | bisect--helper | bugreport | check-attr | check-ignore | check-mailmap | check-ref-format | \
    checkout--worker | column | commit-graph | commit-tree | count-objects | credential | \
    credential-cache | credential-cache--daemon | credential-store | diagnose | \
    env--helper | fast-import | fmt-merge-msg | for-each-repo | fsck | fsck-objects | \
    fsmonitor--daemon | gc | get-tar-commit-id | hash-object | help | hook | index-pack | interpret-trailers | \
    mailinfo | mailsplit | merge-file | merge-index | merge-ours | merge-recursive | merge-recursive-ours | \
    merge-recursive-theirs | merge-subtree | mktag | mktree | multi-pack-index | name-rev | \
    pack-redundant | pack-refs | patch-id | prune | prune-packed | receive-pack | reflog | remote-ext | \
    remote-fd | repack | replace | rerere | shortlog | show-branch | show-index | stage | stripspace | \
    submodule--helper | unpack-file | unpack-objects | update-server-info | upload-archive | \
    upload-archive--writer | upload-pack | var | verify-commit | verify-pack | verify-tag | version | \
    write-tree) exec_git "$@" ;;
  *)
    # shellcheck source=token-keeper-lib.sh
    . "$gtk_here/token-keeper-lib.sh" || exec_git "$@"
    gtk_resolve_alias "$@" || exec_git "$@"
    ;;
esac

# shellcheck source=token-keeper-lib.sh
. "$gtk_here/token-keeper-lib.sh" || exec_git "$@"
# Plain git, without the keeper's entries, from a state dir others can write.
gtk_state_dir_private || { gtk_drop_our_entries && exec_git "$@"; }
# shellcheck source=run-git.sh
. "$gtk_here/run-git.sh" || exec_git "$@"
# shellcheck source=stale-credentials.sh
. "$gtk_here/stale-credentials.sh" || exec_git "$@"
# shellcheck source=retry-policy.sh
. "$gtk_here/retry-policy.sh" || exec_git "$@"
# shellcheck source=command-line-config.sh
. "$gtk_here/command-line-config.sh" || exec_git "$@"

# One more config entry of the keeper's, after those the shim set (stale-credentials.sh sets
# GIT_CONFIG_COUNT again once it has added them).
add_config() {
  export "GIT_CONFIG_KEY_$gtk_n=$1" "GIT_CONFIG_VALUE_$gtk_n=$2"
  gtk_n=$((gtk_n + 1))
}

gtk_retries=${GIT_TOKEN_KEEPER_RETRIES:-3}
case $gtk_retries in '' | *[!0-9]*) gtk_retries=3 ;; esac
# The helper marks here that it gave git the keeper's token, and (`.erased`) that a host the
# keeper serves refused a credential, and whose: a refusal of somebody else's credential is not
# retried, and not blamed on permissions. One mark per attempt: naming a new one costs no exec.
export GIT_TOKEN_KEEPER_ANSWERED_MARK

say() {
  printf 'git-token-keeper: %s\n' "$*" >&2
}

neutralise_stale_credentials "$@"
note_sub_args "$@"
# The caller's -c and --config-env go to GIT_CONFIG_PARAMETERS, as git itself would put them,
# and the keeper's entries after them and after any GIT_CONFIG_PARAMETERS the caller set.
if [ -n "$gtk_cmdline_config" ] || [ -n "${GIT_CONFIG_PARAMETERS:-}" ]; then
  gtk_params=${GIT_CONFIG_PARAMETERS:-}
  gtk_cl_skip=''
  gtk_all=$#
  gtk_i=0
  gtk_globals_kept=0
  for gtk_a do
    gtk_i=$((gtk_i + 1))
    if [ "$gtk_i" -le "$gtk_globals" ]; then
      command_line_config_arg "$gtk_a"
      case $? in
        1) continue ;;
        2) set -- "$@" --config-env; gtk_globals_kept=$((gtk_globals_kept + 1)) ;;
      esac
      gtk_globals_kept=$((gtk_globals_kept + 1))
    fi
    set -- "$@" "$gtk_a"
  done
  shift "$gtk_all"
  gtk_globals=$gtk_globals_kept
  params_of_ours
  gtk_drop_our_entries
  GIT_CONFIG_PARAMETERS=${gtk_params# }
  export GIT_CONFIG_PARAMETERS
fi
# A pull is retried only if it failed before merging: HEAD is compared after a failure.
gtk_head=''
[ "$gtk_sub" = pull ] && gtk_head=$(head_now "$@")

gtk_attempt=0
while :; do
  gtk_answered=$gtk_tmpdir/answered.$gtk_attempt
  GIT_TOKEN_KEEPER_ANSWERED_MARK=$gtk_answered
  run_git_once "$@"
  [ "$gtk_rc" -eq 0 ] && exit 0
  classify_failure
  # Killed by a signal (git reported no exit of its own): the shim dies of the same signal.
  [ "$gtk_rc" -gt 128 ] && [ -z "$gtk_exited" ] && die_of_signal "$((gtk_rc - 128))"
  retry_policy "$@"
  if [ -n "$gtk_no_retry" ]; then
    [ "$gtk_no_retry" != final ] && say "not retrying: $gtk_no_retry"
    exit "$gtk_rc"
  fi
  if [ "$gtk_attempt" -ge "$gtk_retries" ]; then
    if [ "$gtk_class" = auth ]; then
      say "$gtk_fail_url refused a freshly minted token $((gtk_attempt + 1)) times: this is a permissions problem, not an expiry. Check that the App is installed for this owner with access to the repository and the permission this command needs ('git-token-keeper status' shows what is minted)."
    else
      say "gave up after $((gtk_attempt + 1)) attempts; the errors above were transient network errors"
    fi
    exit "$gtk_rc"
  fi
  gtk_attempt=$((gtk_attempt + 1))
  # Counted by the daemon for its metrics: an empty file, nobody waits for it.
  gtk_file_request "retried+$gtk_class++0" || :
  if [ "$gtk_class" = auth ]; then
    say "$gtk_fail_url refused the token; retrying with a new one ($gtk_attempt/$gtk_retries)"
  else
    backoff_sleep "$((gtk_attempt - 1))"
    say "transient error; retried after ${gtk_delay}s ($gtk_attempt/$gtk_retries)"
  fi
done
