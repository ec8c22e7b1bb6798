import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

// The retry policy of docs/how-it-works.md, row by row: each "no" runs the command once through
// the shim; each "yes" shows plain git failing where the shim succeeds.
describe("the shim's retry policy", () => {
  let world: World;
  let work: string;
  let app: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    await must(world.git(["submodule", "update", "-q", "--init"], app));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /** Requests the git server saw from now on whose path matches. */
  function countFrom(match: RegExp): () => number {
    const start = world.server.seen.length;
    return () => world.server.seen.slice(start).filter((r) => match.test(r.path)).length;
  }

  /** A script that counts its runs in a file and fails with what a git error looks like. */
  function countingScript(name: string, output: string): { path: string; runs: () => number } {
    const dir = tempDir();
    const counter = join(dir, "runs");
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\necho run >>'${counter}'\necho '${output}' >&2\nexit 1\n`);
    chmodSync(path, 0o755);
    return { path, runs: () => (existsSync(counter) ? readFileSync(counter, "utf8").split("\n").filter(Boolean).length : 0) };
  }

  async function commit(dir: string, file: string): Promise<void> {
    writeFileSync(join(dir, file), `${file}\n`);
    await must(world.git(["add", file], dir));
    await must(world.git(["commit", "-q", "-m", file], dir));
  }

  describe("never retried", () => {
    it("submodule foreach: the user's command runs once, whatever it prints", async () => {
      const cmd = countingScript("step.sh", "fatal: unable to access 'https://deploy.example/': Failed to connect to deploy.example port 443: Connection refused");
      const r = await world.git(["submodule", "foreach", cmd.path], app);
      expect(r.exitCode).not.toBe(0);
      expect(cmd.runs()).toBe(1);
      // What a command prints is not git's word: nothing here is even taken for a network error.
      expect(r.stderr).not.toMatch(/git-token-keeper/);
    });

    it("submodule foreach whose command's own git fails on the network: run once, and said why", async () => {
      const counter = join(tempDir(), "runs");
      const cmd = `echo run >>'${counter}'; git ls-remote http://127.0.0.1:1/acme/x.git`;
      const r = await world.git(["submodule", "foreach", cmd], app);
      expect(r.exitCode).not.toBe(0);
      expect(readFileSync(counter, "utf8").trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("not retrying: submodule foreach runs your command");
    });

    // Review of issue 23: a retried push --porcelain printed its machine-read report twice.
    it("push --porcelain after a 502: run once, its report printed once", async () => {
      const seen = countFrom(/acme\/app\.git\/git-receive-pack$/);
      world.server.failNext(502, 1, /acme\/app\.git\/git-receive-pack$/);
      await commit(app, "porcelain.txt");
      const r = await world.git(["push", "--porcelain", "origin", "HEAD:refs/heads/porcelain"], app);
      expect(r.exitCode).not.toBe(0);
      expect(seen()).toBe(1);
      expect(r.stderr).toContain("not retrying: --porcelain output is read by a program");
    });

    // Review of issue 23: --deepen deepened the history once per attempt.
    it("fetch --deepen after a 502: run once", async () => {
      const seen = countFrom(/acme\/app\.git\/git-upload-pack$/);
      world.server.failNext(502, 1, /acme\/app\.git\/git-upload-pack$/);
      const r = await world.git(["fetch", "--deepen=1", "origin"], app);
      expect(r.exitCode).not.toBe(0);
      expect(seen()).toBe(1);
      expect(r.stderr).toContain("not retrying: --deepen and --unshallow");
    });

    it("a command given --stdin: fetch --stdin runs once after a 502", async () => {
      const seen = countFrom(/acme\/app\.git\/info\/refs$/);
      world.server.failNext(502, 1, /acme\/app\.git\/info\/refs$/);
      const r = await world.git(["fetch", "--stdin", "origin"], app, { input: "refs/heads/main:refs/remotes/origin/main\n" });
      expect(r.exitCode).not.toBe(0);
      expect(seen()).toBe(1);
      expect(r.stderr).toContain("not retrying: it read its input from stdin");
    });

    it("HTTP 413 on push (RPC failed with a 4xx): sent once", async () => {
      await commit(app, "big.txt");
      const posts = countFrom(/git-receive-pack$/);
      world.server.failNext(413, 1, /git-receive-pack$/);
      const r = await world.git(["push", "origin", "HEAD:main"], app);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain("413");
      expect(posts()).toBe(1);
      expect(r.stderr).toContain("not retrying: the host answered with an HTTP error");
    });

    it("HTTP 403 on fetch: asked once", async () => {
      const seen = countFrom(/info\/refs$/);
      world.server.failNext(403, 1, /acme\/app\.git\/info\/refs$/);
      const r = await world.git(["fetch", "origin"], app);
      expect(r.exitCode).toBe(128);
      expect(seen()).toBe(1);
    });

    // The hook's lines share git's stderr: the second is what git itself prints when a host
    // cannot be resolved, and was once taken for git's own (the hook ran three times).
    for (const output of ["curl: (7) Failed to connect to ci.example port 443: Connection refused", "fatal: unable to access 'https://lint.example/': Could not resolve host: lint.example"]) {
      it(`a failing pre-push hook runs once, whatever it prints (${output.slice(0, 24)}…)`, async () => {
        const hook = countingScript("pre-push", output);
        writeFileSync(join(app, ".git", "hooks", "pre-push"), readFileSync(hook.path));
        chmodSync(join(app, ".git", "hooks", "pre-push"), 0o755);
        try {
          const r = await world.git(["push", "origin", "HEAD:main"], app);
          expect(r.exitCode).not.toBe(0);
          // The hook's copy counts in the same file: the script names its counter by path.
          expect(hook.runs()).toBe(1);
          expect(r.stderr).not.toMatch(/git-token-keeper: (transient|gave up)/);
        } finally {
          writeFileSync(join(app, ".git", "hooks", "pre-push"), "#!/bin/sh\nexit 0\n");
        }
      });
    }

    // Review of issue 23: with the caller's own trace2 target the shim reads no events of git's,
    // and took a hook's refused credential for its command's: the failing hook ran four times.
    it("with the caller's GIT_TRACE2_EVENT, a pre-push hook whose own git is refused runs once", async () => {
      const counter = join(tempDir(), "hook-runs");
      world.server.refuse.add("acme/lib");
      writeFileSync(join(app, ".git", "hooks", "pre-push"), `#!/bin/sh\necho run >>'${counter}'\ngit ls-remote '${world.repoUrl("acme/lib")}' >/dev/null 2>&1\nexit 1\n`);
      chmodSync(join(app, ".git", "hooks", "pre-push"), 0o755);
      try {
        const r = await world.git(["push", "origin", "HEAD:main"], app, { env: { GIT_TRACE2_EVENT: join(tempDir(), "caller-events") } });
        expect(r.exitCode).not.toBe(0);
        expect(readFileSync(counter, "utf8").trim().split("\n")).toHaveLength(1);
        expect(r.stderr).not.toMatch(/retrying|permissions problem/);
      } finally {
        world.server.refuse.delete("acme/lib");
        writeFileSync(join(app, ".git", "hooks", "pre-push"), "#!/bin/sh\nexit 0\n");
      }
    });

    // Review of issue 23: a failure at a host the keeper does not serve is git's own.
    it("a transient failure at a host the keeper does not serve is not retried", async () => {
      const r = await world.git(["ls-remote", "http://127.0.0.1:1/other/x.git"], app, { env: { GIT_TERMINAL_PROMPT: "0" } });
      expect(r.exitCode, r.stderr).toBe(128);
      expect(r.stderr).not.toMatch(/git-token-keeper/);
    });

    // git-lfs's pre-push hook does `credential fill` / `reject` after a 401: a helper erase from a
    // hook is not the command's own token being refused.
    it("a push rejected as non-fast-forward whose pre-push hook erased a credential: run once, not blamed on the token", async () => {
      const behind = join(tempDir(), "behind");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), behind], app));
      await commit(app, "ahead.txt");
      await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/nff"], app));
      await commit(behind, "behind.txt");
      const counter = join(tempDir(), "hook-runs");
      const host = new URL(world.gitUrl).host;
      writeFileSync(
        join(behind, ".git", "hooks", "pre-push"),
        `#!/bin/sh\necho run >>'${counter}'\nprintf 'protocol=http\\nhost=${host}\\npath=acme/app.git\\nusername=x\\npassword=p\\n\\n' | git credential reject\nexit 0\n`,
      );
      chmodSync(join(behind, ".git", "hooks", "pre-push"), 0o755);
      const r = await world.git(["push", "origin", "HEAD:refs/heads/nff"], behind);
      expect(r.exitCode).toBe(1);
      expect(readFileSync(counter, "utf8").trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/git-token-keeper/);
    });

    // A clone whose submodule failed keeps its folder: run again it would end "already exists".
    // (git itself tries a failed submodule clone a second time: both get the 502.)
    it("clone --recurse-submodules whose submodule got a 502: run once, with plain git's exit code", async () => {
      const plainTarget = join(tempDir(), "rec");
      world.server.failNext(502, 2, /acme\/lib\.git\/info\/refs$/);
      const plain = await world.git(["-c", `credential.helper=${join(world.shimDir, "git-credential-token-keeper")}`, "-c", "credential.useHttpPath=true", "clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), plainTarget], app, { shim: false });
      expect(plain.exitCode).not.toBe(0);
      const target = join(tempDir(), "rec");
      world.server.failNext(502, 2, /acme\/lib\.git\/info\/refs$/);
      const r = await world.git(["clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), target], app);
      expect(r.exitCode).toBe(plain.exitCode);
      expect(r.stderr).toContain("not retrying: a submodule of this clone failed");
      world.server.clearFaults();
    });

    it("git remote add -f whose fetch got a 502: not run twice (it would end 'already exists'), git's exit code", async () => {
      const repo = join(tempDir(), "ra");
      await must(world.git(["init", "-q", repo], app));
      world.server.failNext(502, 1, /acme\/lib\.git\/info\/refs$/);
      const plain = await world.git(["remote", "add", "-f", "up", world.repoUrl("acme/lib")], repo, { shim: false });
      await must(world.git(["remote", "remove", "up"], repo, { shim: false }));
      world.server.failNext(502, 1, /acme\/lib\.git\/info\/refs$/);
      const r = await world.git(["remote", "add", "-f", "up", world.repoUrl("acme/lib")], repo);
      expect(r.exitCode).toBe(plain.exitCode);
      expect(r.stderr).toContain("not retrying: git remote add changes the repository's config");
      world.server.clearFaults();
    });

    it("a pre-push hook whose own git fails on the network, then fails: runs once", async () => {
      const counter = join(tempDir(), "hook-runs");
      writeFileSync(join(app, ".git", "hooks", "pre-push"), `#!/bin/sh\necho run >>'${counter}'\ngit ls-remote http://127.0.0.1:1/acme/x.git\nexit 1\n`);
      chmodSync(join(app, ".git", "hooks", "pre-push"), 0o755);
      try {
        const r = await world.git(["push", "origin", "HEAD:main"], app);
        expect(r.exitCode).not.toBe(0);
        expect(readFileSync(counter, "utf8").trim().split("\n")).toHaveLength(1);
      } finally {
        writeFileSync(join(app, ".git", "hooks", "pre-push"), "#!/bin/sh\nexit 0\n");
      }
    });

    for (const [label, args] of [
      ["--force", ["push", "--force", "origin", "HEAD:refs/heads/forced-1"]],
      ["--force-with-lease", ["push", "--force-with-lease", "origin", "HEAD:refs/heads/forced-2"]],
      ["a + refspec", ["push", "origin", "+HEAD:refs/heads/forced-3"]],
      ["-fq bundled", ["push", "-fq", "origin", "HEAD:refs/heads/forced-4"]],
      ["--mirror-like config (remote.<name>.push with +)", ["-c", "remote.origin.push=+HEAD:refs/heads/forced-5", "push", "origin"]],
      ["an alias that forces (alias.pf=push --force)", ["-c", "alias.pf=push --force", "pf", "origin", "HEAD:refs/heads/forced-6"]],
      // git takes any unambiguous abbreviation of a long option.
      ["--force-w, abbreviated", ["push", "--force-w", "origin", "HEAD:refs/heads/forced-7"]],
    ] as const) {
      it(`a forced push (${label}) answered 502 after the host applied it: sent once, the ref moved`, async () => {
        await commit(app, `forced-${args.join("-").replace(/[^a-z0-9]+/gi, "_")}.txt`);
        const posts = countFrom(/acme\/app\.git\/git-receive-pack$/);
        world.server.failAfterApplied(502, 1, /acme\/app\.git\/git-receive-pack$/);
        const r = await world.git([...args], app);
        expect(r.exitCode).not.toBe(0);
        expect(posts()).toBe(1);
        expect(r.stderr).toContain("not retrying: this push forces, mirrors or deletes refs and failed after it was sent");
        const head = (await must(world.git(["rev-parse", "HEAD"], app))).stdout.trim();
        expect((await must(world.git(["ls-remote", "origin"], app))).stdout).toContain(head);
      });
    }

    // Two push URLs, the second answering 502 before anything was sent to it: a forced push
    // has already forced the first, and a second run would force it again over whatever was
    // pushed there in between (with -q nothing on stderr tells).
    it("a forced push to two push URLs whose second refuses the token (401): the first may have taken it, so not run again", async () => {
      const two = join(work, "two-401");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), two], work));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("acme/app")], two));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("globex/tools")], two));
      await commit(two, "two-401.txt");
      const first = countFrom(/acme\/app\.git\/git-receive-pack$/);
      // The first request goes without credentials (401 anyway); the second, with the token, is refused.
      world.server.failNext(401, 2, /globex\/tools\.git\/info\/refs$/);
      const r = await world.git(["push", "-q", "--force", "origin", "HEAD:refs/heads/two-401"], two);
      world.server.clearFaults();
      expect(first()).toBe(1);
      expect(r.stderr).not.toContain("retrying with a new one");
    });

    it("a forced push through an alias to two push URLs whose second fails: not run again", async () => {
      const two = join(work, "two-alias");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), two], work));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("acme/app")], two));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("globex/tools")], two));
      await commit(two, "two-alias.txt");
      const first = countFrom(/acme\/app\.git\/git-receive-pack$/);
      world.server.failNext(502, 1, /globex\/tools\.git\/info\/refs$/);
      const r = await world.git(["-c", "alias.pf=push --force", "pf", "-q", "origin", "HEAD:refs/heads/two-alias"], two);
      world.server.clearFaults();
      expect(r.exitCode).not.toBe(0);
      expect(first()).toBe(1);
      expect(r.stderr).toContain("not retrying: this push forces, mirrors or deletes refs at more than one URL");
    });

    it("clone --recurse-submodules whose submodule's host refused the token once: run once, with plain git's exit code", async () => {
      const plainTarget = join(tempDir(), "rec401");
      world.server.failNext(401, 4, /acme\/lib\.git\/info\/refs$/);
      const plain = await world.git(["-c", `credential.helper=${join(world.shimDir, "git-credential-token-keeper")}`, "-c", "credential.useHttpPath=true", "clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), plainTarget], app, { shim: false });
      world.server.clearFaults();
      const target = join(tempDir(), "rec401");
      world.server.failNext(401, 4, /acme\/lib\.git\/info\/refs$/);
      const r = await world.git(["clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), target], app);
      world.server.clearFaults();
      expect(r.exitCode).toBe(plain.exitCode);
      expect(r.stderr).not.toContain("destination path");
    });

    it("fetch --stdi (git's abbreviation of --stdin) after a 502: runs once", async () => {
      world.server.failNext(502, 1, /acme\/app\.git\/info\/refs$/);
      const r = await world.git(["fetch", "--stdi", "origin"], app, { input: "refs/heads/main:refs/remotes/origin/only-main\n" });
      world.server.clearFaults();
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain("not retrying: it read its input from stdin");
    });

    it("a forced push to two push URLs whose second fails before anything was sent to it", async () => {
      const two = join(work, "two");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), two], work));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("acme/app")], two));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("globex/tools")], two));
      await commit(two, "two.txt");
      const first = countFrom(/acme\/app\.git\/git-receive-pack$/);
      world.server.failNext(502, 1, /globex\/tools\.git\/info\/refs$/);
      const r = await world.git(["push", "-q", "--force", "origin", "HEAD:refs/heads/two"], two);
      expect(r.exitCode).not.toBe(0);
      expect(first()).toBe(1);
      expect(r.stderr).toContain("not retrying: this push forces, mirrors or deletes refs at more than one URL");
    });

    it("a pull that had merged (HEAD moved) before a later step failed", async () => {
      const upstream = join(work, "upstream");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), upstream], work));
      await commit(upstream, "upstream.txt");
      await must(world.git(["push", "-q", "origin", "HEAD:main"], upstream));
      const behind = join(work, "behind");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), behind], work));
      await must(world.git(["reset", "-q", "--hard", "HEAD~1"], behind));
      // A real git whose pull merges, then fails the way a later network step would.
      const git = toolPath("git") as string;
      const log = join(tempDir(), "pulls");
      const wrapper = join(tempDir(), "git");
      writeFileSync(wrapper, `#!/bin/sh\nfor a do case $a in pull) echo pull >>'${log}'; '${git}' "$@" || exit $?; '${git}' ls-remote http://127.0.0.1:1/acme/lib.git; exit 1;; esac; done\nexec '${git}' "$@"\n`);
      chmodSync(wrapper, 0o755);
      const r = await world.git(["pull", "-q", "--no-rebase", "origin", "main"], behind, { env: { GIT_TOKEN_KEEPER_REAL_GIT: wrapper } });
      expect(r.exitCode).not.toBe(0);
      expect(readFileSync(log, "utf8").trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("not retrying: this pull had already merged");
    });
  });

  describe("retried after a 502: plain git fails, the shim succeeds", () => {
    const refs = /acme\/app\.git\/info\/refs$/;
    async function bothWays(args: string[], cwd: string, match = refs, reset?: () => Promise<void>, failures = 1) {
      world.server.failNext(502, failures, match);
      const plain = await world.git(args, cwd, { shim: false });
      expect(plain.exitCode, plain.stderr).not.toBe(0);
      await reset?.();
      world.server.failNext(502, failures, match);
      const shim = await world.git(args, cwd);
      expect(shim.stderr).toContain("transient error; retried");
      expect(shim.exitCode, shim.stderr).toBe(0);
    }
    // Plain git gets the keeper's credentials here too (the helper by hand), so that only the retry differs.
    const helper = () => ["-c", `credential.helper=${join(world.shimDir, "git-credential-token-keeper")}`, "-c", "credential.useHttpPath=true"];

    it("fetch, ls-remote, remote update", async () => {
      for (const args of [["fetch", "-q", "origin"], ["ls-remote", "origin"], ["remote", "update"]]) await bothWays([...helper(), ...args], app);
    });

    // git translates its own words (LANGUAGE=de: "Schwerwiegend: …"); curl's and the status
    // number are not, and trace2 says which process failed.
    it("fetch with git's messages in German", async () => {
      world.server.failNext(502, 1, refs);
      const shim = await world.git([...helper(), "fetch", "-q", "origin"], app, { env: { LANG: "C.UTF-8", LANGUAGE: "de" } });
      // Where git ships its German catalogue (Debian's git does; a minimal image may not).
      if (existsSync("/usr/share/locale/de/LC_MESSAGES/git.mo")) expect(shim.stderr).toContain("Schwerwiegend");
      expect(shim.stderr).toContain("transient error; retried");
      expect(shim.exitCode, shim.stderr).toBe(0);
    });

    it("a push to two push URLs whose second answers 502: run again, the first only told it is up to date", async () => {
      const two = join(tempDir(), "two");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), two], app));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("acme/app")], two));
      await must(world.git(["config", "--add", "remote.origin.pushurl", world.repoUrl("globex/tools")], two));
      await commit(two, "two-urls.txt");
      const first = countFrom(/acme\/app\.git\/git-receive-pack$/);
      world.server.failNext(502, 1, /globex\/tools\.git\/info\/refs$/);
      const r = await world.git(["push", "-q", "origin", "HEAD:refs/heads/two-urls"], two);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain("transient error; retried");
      expect(first()).toBe(1);
    });

    it("pull whose fetch failed before anything was merged", async () => {
      await bothWays([...helper(), "pull", "-q", "--no-rebase", "origin", "main"], app);
    });

    it("push answered 502 before any ref was updated", async () => {
      await commit(app, "retried-push.txt");
      await bothWays([...helper(), "push", "-q", "origin", "HEAD:main"], app, /acme\/app\.git\/git-receive-pack$/);
    });

    it("a forced push whose ref discovery got a 502 (nothing was sent yet)", async () => {
      await commit(app, "forced-discovery.txt");
      await bothWays([...helper(), "push", "-q", "--force", "origin", "HEAD:refs/heads/forced-discovery"], app);
    });

    it("submodule update", async () => {
      const fresh = join(work, "fresh");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), fresh], work));
      // git retries a failed submodule clone once by itself ("Retry scheduled"): two 502s beat it.
      await bothWays([...helper(), "submodule", "update", "-q", "--init"], fresh, /acme\/lib\.git\/info\/refs$/, undefined, 2);
    });

    it("clone into an existing empty directory: a failed attempt leaves it empty, the retry fills it", async () => {
      const target = join(work, "empty");
      mkdirSync(target);
      await bothWays([...helper(), "clone", "-q", world.repoUrl("acme/app"), target], work, refs, async () => {
        expect(readdirSync(target)).toEqual([]);
      });
      expect(existsSync(join(target, ".git"))).toBe(true);
    });
  });
});
