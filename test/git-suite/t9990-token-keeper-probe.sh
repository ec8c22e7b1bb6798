#!/bin/sh
# Copied into git's t/ by test/git-suite/git-suite.test.ts and run like git's own scripts: proves
# that, inside git's test library (which unsets every GIT_* variable and sets HOME), the git
# under test is the shim, that it finds the keeper's state dir (through XDG_RUNTIME_DIR), and
# that it takes its network path for the origin the keeper serves.

test_description='git-token-keeper: the shim is in front and serves its origin'

. ./test-lib.sh

test_expect_success 'the keeper state dir is found and an origin is served' '
	test -r "$XDG_RUNTIME_DIR/git-token-keeper/origins" &&
	grep "^$GTK_SERVED_ORIGIN " "$XDG_RUNTIME_DIR/git-token-keeper/origins"
'

test_expect_success 'a network command to the served origin goes through the shim' '
	test_must_fail env GIT_TOKEN_KEEPER_RETRIES=1 git ls-remote "$GTK_SERVED_ORIGIN/acme/app.git" 2>err &&
	grep "^git-token-keeper: transient error; retried" err
'

test_done
