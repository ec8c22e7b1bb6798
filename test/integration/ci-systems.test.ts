import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import type { GitResult } from "../support/run-git.ts";
import { must, World } from "../support/world.ts";

/**
 * The git sequences CI systems run, reproduced from their own sources (cited at each), with the
 * job's own token: at job start it is fresh, and git works with and without the shim (the
 * keeper never makes a working checkout fail); at a late step it has expired, and plain git
 * fails where git through the shim succeeds.
 */
describe("CI systems' own git set-ups beside the keeper", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /** A token as a CI system hands its job one, and its end: the host refuses it from then on. */
  function jobToken(): { token: string; expire: () => void } {
    const token = world.github.issueToken("acme");
    return { token, expire: () => void ((world.github.tokens.get(token) as { revoked: boolean }).revoked = true) };
  }

  const basic = (token: string) => `basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;
  const withToken = (url: string, user: string, token: string) => url.replace("http://", `http://${user}:${token}@`);

  async function commitIn(dir: string, name: string, git: (args: string[]) => Promise<GitResult>): Promise<void> {
    writeFileSync(join(dir, name), `${name}\n`);
    await must(git(["add", name]));
    await must(git(["commit", "-q", "-m", name]));
  }

  // Plain git once; the shim under every shell it must work under.
  for (const shell of [undefined, ...shellsToTest()]) {
    const shim = shell !== undefined;
    const tag = shell ?? "plain";
    describe(shim ? `through the shim under ${shell}` : "plain git", () => {
      let saved: string;
      beforeAll(() => {
        saved = world.shimDir;
        if (shell) world.shimDir = shimCopyFor(shell);
      });
      afterAll(() => {
        world.shimDir = saved;
      });

      // gitlab-runner shells/abstract.go: setupTemplateDir, setupExternalGitConfig,
      // includeExternalGitConfig, writeRefspecFetchCmd, writeCheckoutCmd, writeSubmoduleUpdateCmd;
      // helpers/url/gitauth.go: GetInsteadOfs (the trimmed base URL with the job token).
      it("GitLab Runner (default mode): job start works; a late push and submodule update after the job token expired", async () => {
        const job = jobToken();
        const home = tempDir();
        const tmp = tempDir();
        const ext = join(tmp, ".gitlab-runner.ext.conf");
        const template = join(tmp, "git-template");
        mkdirSync(template);
        const project = world.repoUrl("acme/app");
        const proj = join(tempDir(), "app");
        const env = { HOME: home };
        const run = (args: string[], cwd = tmp) => world.git(args, cwd, { shim, env });
        for (const [k, v] of [["init.defaultBranch", "none"], ["fetch.recurseSubmodules", "false"], ["credential.interactive", "never"], ["gc.autoDetach", "false"]] as const) {
          await must(run(["config", "-f", join(template, "config"), k, v]));
        }
        await must(run(["config", "--file", ext, "--replace-all", `url.${withToken(project, "gitlab-ci-token", job.token)}.insteadOf`, project, `^${project.replace(/[.]/g, "\\.")}$`]));
        await must(run(["config", "--file", ext, "--replace-all", `url.${withToken(world.gitUrl, "gitlab-ci-token", job.token)}.insteadOf`, world.gitUrl, `^${world.gitUrl.replace(/[.]/g, "\\.")}$`]));
        await must(run(["config", "--file", join(template, "config"), "--replace-all", "include.path", ext, "\\.gitlab-runner\\.ext\\.conf$"]));
        await must(run(["init", "-q", proj, "--template", template]));
        await must(run(["remote", "add", "origin", project], proj));
        await must(run(["-c", "http.userAgent=gitlab-runner 18.0.0 linux/amd64", "fetch", "-q", "origin", "--no-recurse-submodules", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], proj));
        await must(run(["checkout", "-f", "-q", "refs/remotes/origin/main"], proj));
        await must(run(["submodule", "init"], proj));
        await must(run(["submodule", "sync"], proj));
        await must(run(["-c", `include.path=${ext}`, "submodule", "update", "--init", "-q"], proj));

        job.expire();
        await commitIn(proj, `gitlab-${tag}.txt`, (a) => run(a, proj));
        const push = await run(["push", "-q", "origin", `HEAD:refs/heads/gitlab-late-${tag}`], proj);
        const update = await run(["-c", `include.path=${ext}`, "submodule", "update", "--remote", "-q"], proj);
        if (shim) {
          expect(push.exitCode, push.stderr).toBe(0);
          expect(update.exitCode, update.stderr).toBe(0);
        } else {
          expect(push.exitCode).toBe(128);
          expect(push.stderr).toContain("Authentication failed");
          expect(update.exitCode).not.toBe(0);
        }
      });

      // gitlab-runner shells/abstract.go: setupTokenlessGitConfig, setupGlobalGitConfigSeed and
      // shells/bash.go SetupGitCredHelper (credHelperCommand reads CI_JOB_TOKEN), with
      // FF_GIT_URLS_WITHOUT_TOKENS=true: GIT_CONFIG_GLOBAL points at a seed that includes them.
      it("GitLab Runner (FF_GIT_URLS_WITHOUT_TOKENS): its credential helper with an expired CI_JOB_TOKEN", async () => {
        const job = jobToken();
        const home = tempDir();
        const tmp = tempDir();
        const ext = join(tmp, ".gitlab-runner.ext.conf");
        const seed = join(tmp, ".glr.gconf");
        const helper = `!f(){ if [ "$1" = "get" ] ; then echo "password=\${CI_JOB_TOKEN}" ; fi ; } ; f`;
        const env = { HOME: home, GIT_CONFIG_GLOBAL: seed, CI_JOB_TOKEN: job.token };
        const run = (args: string[], cwd = tmp) => world.git(args, cwd, { shim, env });
        await must(run(["config", "-f", ext, "--replace-all", `credential.${world.gitUrl}.helper`, ""]));
        await must(run(["config", "-f", ext, "--add", `credential.${world.gitUrl}.helper`, helper]));
        await must(run(["config", "-f", ext, `credential.${world.gitUrl}.username`, "gitlab-ci-token"]));
        await must(run(["config", "--file", seed, "--add", "include.path", ext]));
        const proj = join(tempDir(), "app");
        await must(run(["clone", "-q", world.repoUrl("acme/app"), proj]));

        job.expire();
        await commitIn(proj, `tokenless-${tag}.txt`, (a) => run(a, proj));
        const push = await run(["push", "-q", "origin", `HEAD:refs/heads/tokenless-${tag}`], proj);
        expect(push.exitCode, push.stderr).toBe(shim ? 0 : 128);
      });

      // jenkinsci/git-client-plugin CliGitAPIImpl (its askpass script, GIT_ASKPASS and
      // SSH_ASKPASS, for every fetch) at checkout, then jenkinsci/git-plugin
      // src/main/java/jenkins/plugins/git/GitUsernamePasswordBinding.java: inside
      // withCredentials([gitUsernamePassword(…)]) a `sh 'git push …'` gets GIT_ASKPASS pointing
      // at a `case $1 in Username*) … Password*) …` script, GIT_USERNAME, GIT_PASSWORD and
      // GIT_TERMINAL_PROMPT=false.
      it("Jenkins (git client's askpass checkout, then a push in the gitUsernamePassword binding after the token expired)", async () => {
        const job = jobToken();
        const home = tempDir();
        const scripts = tempDir();
        const askpass = join(scripts, "auth.sh");
        writeFileSync(askpass, `case $1 in\n        Username*) echo x-access-token                ;;\n        Password*) echo ${job.token}                ;;\n        esac\n`, { mode: 0o500 });
        const env = { HOME: home, GIT_ASKPASS: askpass, SSH_ASKPASS: askpass, GIT_USERNAME: "x-access-token", GIT_PASSWORD: job.token, GIT_TERMINAL_PROMPT: "false" };
        const proj = join(tempDir(), "ws");
        const run = (args: string[], cwd = proj) => world.git(args, cwd, { shim, env });
        await must(run(["init", proj], home));
        await must(run(["fetch", "--tags", "--force", "--progress", "--", world.repoUrl("acme/app"), "+refs/heads/*:refs/remotes/origin/*"]));
        await must(run(["config", "remote.origin.url", world.repoUrl("acme/app")]));
        await must(run(["config", "--add", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"]));
        await must(run(["checkout", "-f", "refs/remotes/origin/main"]));

        job.expire();
        await commitIn(proj, `jenkins-${tag}.txt`, (a) => run(a));
        const push = await run(["push", "origin", `HEAD:refs/heads/jenkins-${tag}`]);
        expect(push.exitCode, push.stderr).toBe(shim ? 0 : 128);
      });

      // buildkite/agent internal/job/checkout_ssh.go (configureGitCredentialHelper,
      // gitCredentialHelperCommand): `git config --global credential.useHttpPath true` and
      // `credential.helper "!'<agent>' git-credentials-helper"`, which answers with the token
      // the Buildkite API gave for the repository (a stand-in agent answers with the job's).
      it("Buildkite agent (its git-credentials-helper): a late push after the token it hands out expired", async () => {
        const job = jobToken();
        const home = tempDir();
        const agent = join(tempDir(), "buildkite-agent");
        writeFileSync(agent, `#!/bin/sh\n[ "$1 $2" = "git-credentials-helper get" ] && printf 'username=x-access-token\\npassword=%s\\n' '${job.token}'\nexit 0\n`, { mode: 0o755 });
        const run = (args: string[], cwd = home) => world.git(args, cwd, { shim, env: { HOME: home } });
        await must(run(["config", "--global", "credential.useHttpPath", "true"]));
        await must(run(["config", "--global", "credential.helper", `!'${agent}' git-credentials-helper`]));
        const proj = join(tempDir(), "build");
        await must(run(["clone", "-q", "--", world.repoUrl("acme/app"), proj]));

        job.expire();
        await commitIn(proj, `buildkite-${tag}.txt`, (a) => run(a, proj));
        const push = await run(["push", "-q", "origin", `HEAD:refs/heads/buildkite-${tag}`], proj);
        expect(push.exitCode, push.stderr).toBe(shim ? 0 : 128);
      });

      // tektoncd/pipeline pkg/credentials/gitcreds/basic.go (basicGitConfig.Write): creds-init
      // writes ~/.gitconfig with credential.helper=store and a username per URL, and
      // ~/.git-credentials with https://user:token@host; git-init and the git-cli task then run
      // plain git commands.
      it("Tekton (creds-init's credential store): a late push after the secret's token expired", async () => {
        const job = jobToken();
        const home = tempDir();
        writeFileSync(join(home, ".gitconfig"), `[credential]\n\thelper = store\n[credential "${world.gitUrl}"]\n\tusername = x-access-token\n`, { mode: 0o600 });
        writeFileSync(join(home, ".git-credentials"), `${withToken(world.gitUrl, "x-access-token", job.token)}\n`, { mode: 0o600 });
        const proj = join(tempDir(), "app");
        const run = (args: string[], cwd = home) => world.git(args, cwd, { shim, env: { HOME: home } });
        await must(run(["init", "-q", proj]));
        await must(run(["remote", "add", "origin", world.repoUrl("acme/app")], proj));
        await must(run(["fetch", "-q", "--depth=1", "origin", "main"], proj));
        await must(run(["checkout", "-q", "FETCH_HEAD"], proj));

        job.expire();
        await commitIn(proj, `tekton-${tag}.txt`, (a) => run(a, proj));
        const push = await run(["push", "-q", "origin", `HEAD:refs/heads/tekton-${tag}`], proj);
        expect(push.exitCode, push.stderr).toBe(shim ? 0 : 128);
        // The store helper is not asked for what the keeper serves, so it never saves a keeper token.
        if (shim) expect(readFileSync(join(home, ".git-credentials"), "utf8")).toBe(`${withToken(world.gitUrl, "x-access-token", job.token)}\n`);
      });
    });
  }

  // microsoft/azure-pipelines-agent src/Agent.Plugins/GitSourceProvider.cs: ComposeGitArgs
  // (--config-env=KEY=env_var_KEY from git 2.31 with GitUseSecureParameterPassing, else -c),
  // the fetch and `submodule update --init --force` with the header for the repository's
  // authority, and persistCredentials (exposeCred: http.<repository URL>.extraheader in
  // .git/config for the job's later steps).
  for (const shell of shellsToTest()) {
    for (const knob of [true, false]) {
      it(`Azure Pipelines agent (${knob ? "--config-env" : "-c"}, ${shell}): checkout works; a late push with the persisted header after it expired`, async () => {
        const job = jobToken();
        const shimDir = shimCopyFor(shell);
        const repository = world.repoUrl("acme/app");
        const header = `AUTHORIZATION: ${basic(job.token)}`;
        const env: Record<string, string> = {
          "env_var_http.extraheader": header,
          [`env_var_http.${world.gitUrl}.extraheader`]: header,
        };
        const auth = (key: string) => (knob ? [`--config-env=${key}=env_var_${key}`] : ["-c", `${key}=${header}`]);
        const proj = join(tempDir(), "s");
        const plainWorks = async (args: string[], cwd: string) => {
          const plain = await world.git(args, cwd, { shim: false, env });
          expect(plain.exitCode, plain.stderr).toBe(0);
        };
        const viaShim = (args: string[], cwd: string) => {
          const saved = world.shimDir;
          world.shimDir = shimDir;
          return world.git(args, cwd, { env }).finally(() => (world.shimDir = saved));
        };
        await must(viaShim(["init", "-q", proj], proj.replace(/\/s$/, "")));
        await must(viaShim(["remote", "add", "origin", repository], proj));
        await must(viaShim(["config", "http.version", "HTTP/1.1"], proj));
        const fetch = [...auth("http.extraheader"), "fetch", "--force", "--tags", "--prune", "--prune-tags", "--progress", "--no-recurse-submodules", "origin"];
        await plainWorks(fetch, proj);
        await must(viaShim(fetch, proj));
        await must(viaShim(["checkout", "--progress", "--force", "refs/remotes/origin/main"], proj));
        await must(viaShim(["submodule", "sync"], proj));
        const update = [...auth(`http.${world.gitUrl}.extraheader`), "submodule", "update", "--init", "--force"];
        await must(viaShim(update, proj));
        await must(viaShim(["config", `http.${repository}.extraheader`, header], proj));

        job.expire();
        await commitIn(proj, `azure-${shell}-${knob}.txt`, (a) => viaShim(a, proj));
        const plain = await world.git(["push", "-q", "origin", `HEAD:refs/heads/azure-plain-${shell}-${knob}`], proj, { shim: false, env });
        expect(plain.exitCode).toBe(128);
        await must(viaShim(["push", "-q", "origin", `HEAD:refs/heads/azure-${shell}-${knob}`], proj));
        // The agent's next checkout step of the same job passes its (now expired) header again.
        await must(viaShim(fetch, proj));
      });
    }
  }

  // The plain key, no URL in it: the form the agent passes with persistCredentials off
  // (GitSourceProvider.cs: ComposeGitArgs, `-c http.extraheader=…` or
  // `--config-env=http.extraheader=env_var_http.extraheader`) and the form Microsoft documents
  // for scripts; a GitHub Actions `run:` step's `git -c http.extraheader="AUTHORIZATION: basic …"
  // push`; and `[http] extraheader` in .git/config. After the token expired, plain git fails each
  // time (the stale header beats any helper) and git through the shim succeeds.
  for (const shell of shellsToTest()) {
    for (const form of ["-c", "--config-env", ".git/config"] as const) {
      it(`a stale Authorization as plain http.extraheader (${form}, ${shell}): a later checkout's fetch and a run: step's push succeed`, async () => {
        const job = jobToken();
        const shimDir = shimCopyFor(shell);
        const header = `AUTHORIZATION: ${basic(job.token)}`;
        const env: Record<string, string> = { env_var_http_extraheader: header, "env_var_http.extraheader": header };
        const auth = form === "-c" ? ["-c", `http.extraheader=${header}`] : form === "--config-env" ? ["--config-env=http.extraheader=env_var_http.extraheader"] : [];
        const proj = join(tempDir(), "s");
        const viaShim = (args: string[], cwd: string) => {
          const saved = world.shimDir;
          world.shimDir = shimDir;
          return world.git(args, cwd, { env }).finally(() => (world.shimDir = saved));
        };
        await must(viaShim(["init", "-q", proj], proj.replace(/\/s$/, "")));
        await must(viaShim(["remote", "add", "origin", world.repoUrl("acme/app")], proj));
        if (form === ".git/config") await must(viaShim(["config", "http.extraheader", header], proj));
        const fetch = [...auth, "fetch", "--force", "--tags", "--prune", "--progress", "--no-recurse-submodules", "origin"];
        await must(world.git(fetch, proj, { shim: false, env }));
        await must(viaShim(["checkout", "-q", "--force", "refs/remotes/origin/main"], proj));

        job.expire();
        const plainFetch = await world.git(fetch, proj, { shim: false, env });
        expect(plainFetch.exitCode, plainFetch.stderr).toBe(128);
        await must(viaShim(fetch, proj));
        await commitIn(proj, `plain-header-${shell}-${form.replace(/\W/g, "")}.txt`, (a) => viaShim(a, proj));
        const push = [...auth, "push", "-q", "origin", `HEAD:refs/heads/plain-header-${shell}-${form.replace(/\W/g, "")}`];
        const plainPush = await world.git(push, proj, { shim: false, env });
        expect(plainPush.exitCode, plainPush.stderr).toBe(128);
        const pushed = await viaShim(push, proj);
        expect(pushed.exitCode, pushed.stderr).toBe(0);
        // The keeper's token went first time: no refusal, no re-mint.
        expect(pushed.stderr).not.toMatch(/refused|retrying/);
      });
    }
  }
});
