import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gitEnv, SHIM_DIR } from "../support/run-git.ts";
import { haveTool, toolPath } from "../support/require-tool.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * Never worse than plain git: a network command through the shim leaves git's stdin, stderr,
 * file descriptors, terminal and environment as the caller gave them. Each case runs the same
 * command plainly and through the shim and expects the same outcome.
 */
describe("the shim's network path stands aside", () => {
  let world: World;
  let app: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    app = join(tempDir(), "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], tempDir()));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /**
   * `sh -c SCRIPT` in the clone, with git plain or through the shim. Plain git gets the keeper's
   * helper by hand, so that only the shim differs.
   */
  function sh(script: string, shim: boolean, env: Record<string, string> = {}) {
    const helper = {
      GIT_CONFIG_COUNT: "2",
      GIT_CONFIG_KEY_0: "credential.helper",
      GIT_CONFIG_VALUE_0: join(SHIM_DIR, "git-credential-token-keeper"),
      GIT_CONFIG_KEY_1: "credential.useHttpPath",
      GIT_CONFIG_VALUE_1: "true",
    };
    return execa("sh", ["-c", script], {
      cwd: app,
      env: gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: shim ? world.shimDir : undefined, env: { ...helper, ...env } }),
      extendEnv: false,
      reject: false,
      timeout: 60_000,
    });
  }

  // Review of issue 23: git reads GIT_CONFIG_COUNT with strtoul (leading blanks, a '+').
  it("GIT_CONFIG_COUNT written '+1' or ' 1' keeps the caller's entries, as plain git reads them", async () => {
    for (const count of ["+1", " 1"]) {
      const r = await world.git(["zz"], app, { env: { GIT_CONFIG_COUNT: count, GIT_CONFIG_KEY_0: "alias.zz", GIT_CONFIG_VALUE_0: "!echo hi" } });
      expect(r.stdout.trim(), JSON.stringify(count)).toBe("hi");
      expect(r.exitCode).toBe(0);
    }
  });

  it("a closed stdin stays closed, and the command works as plain git's", async () => {
    for (const shim of [false, true]) {
      const r = await sh("exec git ls-remote origin refs/heads/main <&-", shim);
      expect(r.exitCode, `${shim ? "shim" : "plain"}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/refs\/heads\/main/);
    }
  });

  it("the caller's descriptors 3 to 9 reach git as they were (GIT_TRACE=3), with git's lines only", async () => {
    for (const shim of [false, true]) {
      const trace = join(tempDir(), "trace");
      const r = await sh(`GIT_TRACE=3 GIT_TRACE_SETUP=3 exec git ls-remote origin refs/heads/main 3>'${trace}' 4<&- 7</dev/null 8</dev/null 9</dev/null`, shim);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/trace/);
      const lines = readFileSync(trace, "utf8");
      expect(lines).toMatch(/built-in: git ls-remote origin refs\/heads\/main/);
      // The shim's own reads of the configuration are not the caller's to see.
      expect(lines).not.toMatch(/git config|rev-parse/);
    }
  });

  it("a process a hook leaves holding git's stderr does not hold the shim", async () => {
    const hooks = join(tempDir(), "hooks");
    mkdirSync(hooks);
    const pidFile = join(tempDir(), "holder");
    writeFileSync(join(hooks, "pre-push"), `#!/bin/sh\nsleep 120 >&2 &\necho $! >'${pidFile}'\nexit 0\n`);
    chmodSync(join(hooks, "pre-push"), 0o755);
    const err = join(tempDir(), "stderr");
    // stderr goes to a pipe that the shell closes only when every holder has gone: the shim's
    // exit is what is waited for, not the pipe's end.
    const r = await sh(`git -c core.hooksPath='${hooks}' push -q origin HEAD:refs/heads/held 2>'${err}' | cat; echo "rc=$?"`, true);
    try {
      expect(r.stdout, readFileSync(err, "utf8")).toContain("rc=0");
      const holder = Number(readFileSync(pidFile, "utf8").trim());
      // The holder still runs: the shim did not wait for it.
      expect(existsSync(`/proc/${holder}`)).toBe(true);
    } finally {
      if (existsSync(pidFile)) {
        try {
          process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });

  it("a symlink to the shim later on PATH: one hop to the real git, not a loop", async () => {
    const other = tempDir();
    symlinkSync(join(world.shimDir, "git"), join(other, "git"));
    const env = { PATH: `${world.shimDir}:${other}:${process.env.PATH}` };
    const r = await sh("git ls-remote origin refs/heads/main && git rev-parse --git-dir", true, env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/refs\/heads\/main\n\.git/);
    const viaVariable = await sh("git ls-remote origin refs/heads/main", true, { GIT_TOKEN_KEEPER_REAL_GIT: join(other, "git") });
    expect(viaVariable.exitCode, viaVariable.stderr).toBe(0);
  });

  it("two symlinks to the shim and nothing else: a clear error, at once", async () => {
    const a = tempDir();
    const b = tempDir();
    symlinkSync(join(SHIM_DIR, "git"), join(a, "git"));
    symlinkSync(join(SHIM_DIR, "git"), join(b, "git"));
    const r = await sh(`PATH='${world.shimDir}:${a}:${b}':"$PATH"; git rev-parse --git-dir`, true, { GIT_TOKEN_KEEPER_REAL_GIT: join(a, "git") });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/the shim would run itself/);
  });

  it("GIT_TERMINAL_PROMPT and the rest of the environment reach git as the caller set them", async () => {
    const wrapper = join(tempDir(), "git");
    const envFile = join(tempDir(), "env");
    writeFileSync(wrapper, `#!/bin/sh\nenv >'${envFile}'\nexec '${toolPath("git")}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    const env = gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: world.shimDir, env: { GIT_TOKEN_KEEPER_REAL_GIT: wrapper, GTK_CALLER_VALUE: "kept" } });
    delete env.GIT_TERMINAL_PROMPT;
    const r = await execa("git", ["ls-remote", "origin", "refs/heads/main"], { cwd: app, env, extendEnv: false, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const seen = readFileSync(envFile, "utf8");
    expect(seen).not.toMatch(/^GIT_TERMINAL_PROMPT=/m);
    expect(seen).toMatch(/^GTK_CALLER_VALUE=kept$/m);
  });

  it.skipIf(!haveTool("script", "util-linux's script is not installed, so a terminal is not tested"))("clone -q on a terminal shows no progress, as plain git", async () => {
    for (const shim of [false, true]) {
      const target = join(tempDir(), "quiet");
      const r = await sh(`script -qec "git clone -q '${world.repoUrl("acme/lib")}' '${target}'" /dev/null`, shim);
      expect(r.exitCode, r.stdout).toBe(0);
      expect(r.stdout).not.toMatch(/Receiving|Counting|Cloning/);
    }
  });

  // GitLab Runner's whole-project rule (a token in a url.<base>.insteadOf as long as the URL)
  // can only be beaten by a rule git reads first: the shim's goes where the system config is
  // read and includes it, so `git config --global` in the command's hooks still reaches the
  // user's file (it went into the shim's temporary file when the shim took the global place).
  for (const noSystem of [false, true]) it(`a hook's git config --global writes the user's file while the shim's first-read rules are in place${noSystem ? " (GIT_CONFIG_NOSYSTEM=1)" : ""}`, async () => {
    const jobToken = world.github.issueToken("acme");
    const work = join(tempDir(), "gl");
    const home = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), work], tempDir()));
    const project = world.repoUrl("acme/app");
    await must(world.git(["config", `url.${project.replace("http://", `http://gitlab-ci-token:${jobToken}@`)}.insteadOf`, project], work, { shim: false }));
    await must(world.git(["remote", "set-url", "origin", project], work, { shim: false }));
    (world.github.tokens.get(jobToken) as { revoked: boolean }).revoked = true;
    const hooks = join(tempDir(), "hooks");
    mkdirSync(hooks);
    writeFileSync(join(hooks, "pre-push"), "#!/bin/sh\ngit config --global gtk.hook written\n");
    chmodSync(join(hooks, "pre-push"), 0o755);
    const system = join(tempDir(), "gitconfig");
    writeFileSync(system, `[core]\n\thooksPath = ${hooks}\n`);
    const env = gitEnv({ home, stateDir: world.stateDir, shimDir: world.shimDir, env: noSystem ? { GIT_CONFIG_NOSYSTEM: "1" } : { GIT_CONFIG_SYSTEM: system } });
    if (noSystem) writeFileSync(join(home, ".gitconfig"), `[core]\n\thooksPath = ${hooks}\n`);
    else delete env.GIT_CONFIG_NOSYSTEM;
    const push = await execa("git", ["push", "-q", "origin", "HEAD:refs/heads/gitlab-global"], { cwd: work, env, extendEnv: false, reject: false });
    expect(push.exitCode, push.stderr).toBe(0);
    // The hook ran (the system config, which names the hooks, was read) and wrote where git writes --global.
    expect(readFileSync(join(home, ".gitconfig"), "utf8")).toMatch(/hook = written/);
  });

  // dash and busybox sh drop variables whose names are not shell identifiers; the shim passes
  // such a --config-env value on under a name of its own, an empty one too.
  for (const shell of shellsToTest()) {
    it(`--config-env with a variable dash cannot keep, set to nothing (${shell}): as plain git`, async () => {
      const shimDir = shimCopyFor(shell);
      for (const shim of [false, true]) {
        const env = gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: shim ? shimDir : undefined, env: { "env_var_core.pager": "", "env_var_x.y": "a\nb" } });
        const r = await execa("git", ["--config-env=core.pager=env_var_core.pager", "--config-env=gtk.multi=env_var_x.y", "config", "--get", "gtk.multi"], { cwd: app, env, extendEnv: false, reject: false });
        expect(r.exitCode, `${shim ? shell : "plain"}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toBe("a\nb");
      }
    });
  }

  it("trace2.eventTarget in the user's config: the command's events go there, and none of the shim's own", async () => {
    const home = tempDir();
    const events = join(tempDir(), "telemetry.log");
    writeFileSync(join(home, ".gitconfig"), `[trace2]\n\teventTarget = ${events}\n`);
    const r = await sh("git ls-remote origin refs/heads/main", true, { HOME: home });
    expect(r.exitCode, r.stderr).toBe(0);
    const argvs = readFileSync(events, "utf8").match(/"argv":\[[^\]]*\]/g) ?? [];
    expect(argvs.some((a) => a.includes('"ls-remote","origin"'))).toBe(true);
    expect(argvs.filter((a) => a.includes('"config"'))).toEqual([]);
  });

  it("git killed by a signal of its own (a crash): the shim dies of the same signal", async () => {
    const crash = join(tempDir(), "git");
    writeFileSync(crash, "#!/bin/sh\nkill -SEGV $$\n");
    chmodSync(crash, 0o755);
    const env = gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: world.shimDir, env: { GIT_TOKEN_KEEPER_REAL_GIT: crash } });
    const r = await execa("git", ["ls-remote", "origin"], { cwd: app, env, extendEnv: false, reject: false });
    expect(r.signal).toBe("SIGSEGV");
  });

  it("GIT_CONFIG_COUNT with a leading zero is decimal, as git reads it", async () => {
    const entries: Record<string, string> = { GIT_CONFIG_COUNT: "08" };
    for (let i = 0; i < 8; i++) Object.assign(entries, { [`GIT_CONFIG_KEY_${i}`]: `gtk.k${i}`, [`GIT_CONFIG_VALUE_${i}`]: `v${i}` });
    // An alias: a command the shim adds its entries to (config itself is exec'd untouched).
    Object.assign(entries, { GIT_CONFIG_KEY_7: "alias.k7", GIT_CONFIG_VALUE_7: "!echo v7" });
    for (const shim of [false, true]) {
      const r = await execa("git", ["k7"], { cwd: app, env: gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: shim ? world.shimDir : undefined, env: entries }), extendEnv: false, reject: false });
      expect(r.stdout, r.stderr).toBe("v7");
    }
  });

  // Their local forms never reach the network: exec'd as they are, they print what plain git
  // prints (the network path once showed remote URLs without their user:token part).
  it("remote -v, remote get-url, submodule status and local archive print what plain git prints", async () => {
    const repo = join(tempDir(), "local-forms");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), repo], tempDir()));
    await must(world.git(["remote", "set-url", "origin", world.repoUrl("acme/app").replace("http://", "http://x-access-token:not-a-secret@")], repo, { shim: false }));
    for (const args of [["remote", "-v"], ["remote", "get-url", "origin"], ["submodule", "status"], ["archive", "--format=tar", "HEAD", "README.md"]]) {
      const plain = await execa("git", args, { cwd: repo, env: gitEnv({ home: world.home }), extendEnv: false, reject: false, encoding: "buffer" });
      const shim = await execa("git", args, { cwd: repo, env: gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: world.shimDir }), extendEnv: false, reject: false, encoding: "buffer" });
      expect(Buffer.compare(Buffer.from(shim.stdout), Buffer.from(plain.stdout)), args.join(" ")).toBe(0);
      expect(shim.exitCode).toBe(plain.exitCode);
    }
  });

  it("an unwritable TMPDIR: no mktemp error, and the command still gets its overrides and retries", async () => {
    const repo = join(tempDir(), "tmpdir");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), repo], tempDir()));
    const stale = world.github.issueToken("acme");
    (world.github.tokens.get(stale) as { revoked: boolean }).revoked = true;
    await must(world.git(["config", "http.extraheader", `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`], repo, { shim: false }));
    world.server.failNext(502, 1, /acme\/app\.git\/info\/refs$/);
    const r = await world.git(["fetch", "-q", "origin"], repo, { env: { TMPDIR: "/nonexistent/tmp" } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/mktemp/);
    expect(r.stderr).toContain("transient error; retried");
    world.server.clearFaults();
  });

  // bash reaps a child that ends at once in its SIGCHLD handler: a shim that asked kill -0
  // before wait took the git that had already failed for a success.
  it("under bash, a git that fails at once is never taken for a success (300 runs)", async () => {
    const quick = join(tempDir(), "git");
    writeFileSync(quick, "#!/bin/sh\nexit 3\n");
    chmodSync(quick, 0o755);
    const script = `n=0; i=0; while [ $i -lt 300 ]; do bash "${join(world.shimDir, "git")}" ls-remote origin 2>/dev/null; [ $? -eq 3 ] || n=$((n + 1)); i=$((i + 1)); done; echo $n`;
    const r = await execa("bash", ["-c", script], { cwd: app, env: gitEnv({ home: world.home, stateDir: world.stateDir, shimDir: world.shimDir, env: { GIT_TOKEN_KEEPER_REAL_GIT: quick, GIT_TOKEN_KEEPER_RETRIES: "0" } }), extendEnv: false, reject: false, timeout: 300_000 });
    expect(r.stdout.trim(), r.stderr).toBe("0");
  }, 320_000);

  // The caller's -c moves the keeper's entries into GIT_CONFIG_PARAMETERS: they must leave
  // GIT_CONFIG_COUNT, or git reads them twice (two identical push URLs: a second delete fails).
  it("a -c with a token in the remote URL: one push per URL, as plain git", async () => {
    const repo = join(tempDir(), "dc");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), repo], tempDir()));
    const stale = world.github.issueToken("acme");
    (world.github.tokens.get(stale) as { revoked: boolean }).revoked = true;
    await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/del-once"], repo));
    await must(world.git(["remote", "set-url", "origin", world.repoUrl("acme/app").replace("http://", `http://x-access-token:${stale}@`)], repo, { shim: false }));
    const r = await world.git(["-c", "color.ui=never", "push", "origin", "--delete", "del-once"], repo);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("unable to delete");
  });

  it("a remote with a second URL on a host the keeper does not serve keeps that URL's own credentials", async () => {
    const repo = join(tempDir(), "mu");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), repo], tempDir()));
    const stale = world.github.issueToken("acme");
    (world.github.tokens.get(stale) as { revoked: boolean }).revoked = true;
    const theirs = world.github.issueToken("acme");
    const port = world.gitUrl.split(":").pop();
    await must(world.git(["remote", "set-url", "origin", world.repoUrl("acme/app").replace("http://", `http://x-access-token:${stale}@`)], repo, { shim: false }));
    // The same server under another name: not served, its credentials are the build's own.
    await must(world.git(["config", "--add", "remote.origin.url", `http://x-access-token:${theirs}@localhost:${port}/acme/app.git`], repo, { shim: false }));
    const r = await world.git(["push", "origin", "HEAD:refs/heads/two-urls"], repo);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("could not read Username");
  });

  it("a system config given as GIT_CONFIG_SYSTEM with GIT_CONFIG_NOSYSTEM=FALSE is still read when the shim must read rules first", async () => {
    const repo = join(tempDir(), "sys");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), repo], tempDir()));
    const stale = world.github.issueToken("acme");
    (world.github.tokens.get(stale) as { revoked: boolean }).revoked = true;
    // GitLab Runner's rule: the whole repository URL, with the job's token, for itself.
    await must(world.git(["config", `url.${world.repoUrl("acme/app").replace("http://", `http://gitlab-ci-token:${stale}@`)}.insteadOf`, world.repoUrl("acme/app")], repo, { shim: false }));
    const system = join(tempDir(), "system.gitconfig");
    writeFileSync(system, `[url "${world.repoUrl("acme/app")}"]\n\tinsteadOf = http://sys.invalid/acme/app.git\n`);
    const r = await world.git(["ls-remote", "http://sys.invalid/acme/app.git"], repo, { env: { GIT_CONFIG_SYSTEM: system, GIT_CONFIG_NOSYSTEM: "FALSE" } });
    expect(r.exitCode, r.stderr).toBe(0);
  });
});
