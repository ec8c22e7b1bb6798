import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolPath } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * Other tools leave credentials behind that win over a credential helper: a user:token in
 * the remote URL, an Authorization extra header (actions/checkout), an askpass script
 * (the Jenkins git client). Each test shows plain git failing and the shim succeeding.
 */
describe("stale credentials left by other tools", () => {
  let world: World;
  let stale: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    stale = world.github.issueToken("acme");
    world.github.revokeAll();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  async function cloneWithStaleUrl(): Promise<string> {
    const work = tempDir();
    const app = join(work, "app");
    // The clone itself runs through the shim: the stale user:token URL argument is rewritten.
    await must(world.git(["clone", "-q", world.repoUrl("acme/app").replace("http://", `http://x-access-token:${stale}@`), app], work));
    return app;
  }

  async function commitSomething(app: string, name: string): Promise<void> {
    writeFileSync(join(app, name), `${name}\n`);
    await must(world.git(["add", name], app));
    await must(world.git(["commit", "-q", "-m", name], app));
  }

  it("a user:token in the remote URL: plain git fails, the shim pushes", async () => {
    const app = await cloneWithStaleUrl();
    await commitSomething(app, "url.txt");
    const plain = await world.git(["push", "-q", "origin", "HEAD:main"], app, { shim: false });
    expect(plain.exitCode).toBe(128);
    expect(plain.stderr).toContain("Authentication failed");
    await must(world.git(["push", "-q", "origin", "HEAD:main"], app));
    const cfg = await must(world.git(["config", "--get", "remote.origin.url"], app));
    // The shim never rewrites .git/config; the stale URL is the caller's and stays as it was.
    expect(cfg.stdout.trim()).toContain(stale);
  });

  // Review of issue 23: the shim split URLs at "/" only; curl ends the host at "?" and "#", so
  // the shim rewrote another host's URL to a served one and sent it the keeper's token.
  it("a URL whose host ends at '?' or '#' is another host's: nothing is rewritten to a served host, no token sent", async () => {
    const work = tempDir();
    const hostPort = world.gitUrl.replace(/^http:\/\//, "");
    for (const mark of ["?", "#"]) {
      const before = world.server.seen.length;
      const url = `http://127.0.0.1:1${mark}x:y@${hostPort}/acme/app.git`;
      const r = await world.git(["ls-remote", url], work, { env: { GIT_TERMINAL_PROMPT: "0" } });
      expect(r.exitCode, mark).not.toBe(0);
      expect(world.server.seen.length, mark).toBe(before);
    }
  });

  it("an Authorization extra header like actions/checkout persists: plain git fails, the shim fetches", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    const header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`;
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, header], app, { shim: false }));
    await must(world.git(["config", "--add", `http.${world.gitUrl}/.extraheader`, "X-Trace: keep-me"], app, { shim: false }));
    const plain = await world.git(["fetch", "-q", "origin"], app, { shim: false });
    expect(plain.exitCode).toBe(128);
    const before = world.server.seen.length;
    await must(world.git(["fetch", "origin"], app));
    const sent = world.server.seen.slice(before).map((s) => s.authorization ?? "");
    expect(sent.some((a) => a.toLowerCase().startsWith("basic"))).toBe(true);
    expect(sent.join(" ")).not.toContain(Buffer.from(`x-access-token:${stale}`).toString("base64"));
  });

  it("a more specific extra header for one owner is neutralised too", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    const header = `Authorization: basic ${Buffer.from(`x:${stale}`).toString("base64")}`;
    await must(world.git(["config", `http.${world.gitUrl}/acme/.extraheader`, header], app, { shim: false }));
    expect((await world.git(["fetch", "-q", "origin"], app, { shim: false })).exitCode).toBe(128);
    await must(world.git(["fetch", "-q", "origin"], app));
  });

  describe("credentials given on the command line or in GIT_CONFIG_PARAMETERS, which git reads after the shim's entries", () => {
    async function storeWithStaleToken(): Promise<{ app: string; env: Record<string, string> }> {
      const home = tempDir();
      writeFileSync(join(home, ".git-credentials"), `${world.gitUrl.replace("http://", `http://x-access-token:${stale}@`)}\n`, { mode: 0o600 });
      const env = { HOME: home };
      await must(world.git(["config", "--global", "credential.helper", "store"], home, { shim: false, env }));
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      return { app, env };
    }

    it("-c credential.helper= then -c credential.helper=store: plain git fails, the shim fetches", async () => {
      const { app, env } = await storeWithStaleToken();
      const args = ["-c", "credential.helper=", "-c", "credential.helper=store", "fetch", "-q", "origin"];
      expect((await world.git(args, app, { shim: false, env })).exitCode).toBe(128);
      await must(world.git(args, app, { env }));
    });

    it("the same exported as GIT_CONFIG_PARAMETERS: plain git fails, the shim fetches", async () => {
      const { app, env: home } = await storeWithStaleToken();
      const env = { ...home, GIT_CONFIG_PARAMETERS: "'credential.helper'='' 'credential.helper'='store'" };
      expect((await world.git(["fetch", "-q", "origin"], app, { shim: false, env })).exitCode).toBe(128);
      await must(world.git(["fetch", "-q", "origin"], app, { env }));
    });

    it("-c http.<the repository's URL>.extraheader with a stale Authorization: plain git fails, the shim fetches, other -c entries still apply", async () => {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      const header = `Authorization: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`;
      const args = ["-c", `http.${world.repoUrl("acme/app")}.extraheader=${header}`, "-c", "fetch.prune=true", "fetch", "-q", "origin"];
      expect((await world.git(args, app, { shim: false })).exitCode).toBe(128);
      await must(world.git(["update-ref", "refs/remotes/origin/to-prune", "HEAD"], app));
      await must(world.git(args, app));
      // fetch.prune=true from the command line still applied: the stale remote-tracking ref is gone.
      expect((await world.git(["rev-parse", "-q", "--verify", "refs/remotes/origin/to-prune"], app)).exitCode).not.toBe(0);
    });
  });

  // clone's own -c uses the header for the clone's fetch and writes it into the new .git/config.
  for (const form of ["-c", "--config"]) {
    it(`an Authorization header given to clone's own ${form}: plain git fails, the shim clones, and a later fetch works`, async () => {
      const header = `http.extraHeader=AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`;
      const plain = await world.git(["clone", "-q", form, header, world.repoUrl("acme/lib"), join(tempDir(), "lib")], tempDir(), { shim: false });
      expect(plain.exitCode).toBe(128);
      const target = join(tempDir(), "lib");
      await must(world.git(["clone", "-q", form, header, world.repoUrl("acme/lib"), target], tempDir()));
      await must(world.git(["fetch", "-q", "origin"], target));
    });
  }

  // Commands that reach the network by another name get the same overrides: an alias (as git
  // resolves it, from the config or -c) and maintenance's prefetch task.
  it("an alias of fetch, a -c alias of ls-remote and maintenance run --task=prefetch with a stale header: plain git fails, the shim's work", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`], app, { shim: false }));
    await must(world.git(["config", "alias.f", "fetch --prune"], app, { shim: false }));
    const empty = join(work, "no-shallow");
    writeFileSync(empty, "");
    for (const args of [
      ["f"],
      ["-c", "alias.g=ls-remote", "g", "origin"],
      ["maintenance", "run", "--task=prefetch"],
      // An alias of an alias, as git follows it.
      ["-c", "alias.lsr=ls-remote", "-c", "alias.lsr2=lsr", "lsr2", "origin"],
      // A name git's exec path holds as a non-executable file (git-sh-setup): git runs the alias.
      ["-c", "alias.sh-setup=ls-remote", "sh-setup", "origin"],
      // A global option that takes a value before the subcommand.
      ["--shallow-file", empty, "ls-remote", "origin"],
    ]) {
      const plain = await world.git(args, app, { shim: false });
      expect(plain.exitCode, args.join(" ")).not.toBe(0);
      const shim = await world.git(args, app);
      expect(shim.exitCode, `${args.join(" ")}: ${shim.stderr}`).toBe(0);
    }
  });

  it("a state dir reached through a symlink is the folder it leads to: its mode counts, not the link's", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    const link = join(work, "state-link");
    symlinkSync(world.stateDir, link);
    const r = await world.git(["ls-remote", "origin"], app, { env: { GIT_TOKEN_KEEPER_DIR: link } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("can be written by others");
  });

  it("a stale token rule in the system config: plain git fails, the shim's rule is read before it and fetches", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    const system = join(work, "gitconfig");
    const project = world.repoUrl("acme/app");
    writeFileSync(system, `[url "${project.replace("http://", `http://x-access-token:${stale}@`)}"]\n\tinsteadOf = ${project}\n`);
    const env = { GIT_CONFIG_NOSYSTEM: "0", GIT_CONFIG_SYSTEM: system };
    expect((await world.git(["fetch", "-q", "origin"], app, { env, shim: false })).exitCode).toBe(128);
    await must(world.git(["fetch", "-q", "origin"], app, { env }));
  });

  it("a stale credential the shim cannot see (a wrapper gives git a user:token URL): not retried, and not blamed on permissions", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    const withToken = world.repoUrl("acme/app").replace("http://", `http://x-access-token:${stale}@`);
    const wrapper = join(work, "git");
    writeFileSync(wrapper, `#!/bin/sh\nfor a do shift; [ "$a" = origin ] && a='${withToken}'; set -- "$@" "$a"; done\nexec '${toolPath("git")}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    const refs = (from: number) => world.server.seen.slice(from).filter((s) => s.path.endsWith("/info/refs")).length;
    const plainFrom = world.server.seen.length;
    expect((await world.git(["fetch", "-q", withToken], app, { shim: false })).exitCode).toBe(128);
    const once = refs(plainFrom);
    const before = world.server.seen.length;
    const r = await world.git(["fetch", "-q", "origin"], app, { env: { GIT_TOKEN_KEEPER_REAL_GIT: wrapper } });
    expect(r.exitCode).toBe(128);
    // Asked as often as one plain git run asks: not retried.
    expect(refs(before)).toBe(once);
    expect(r.stderr).toContain("refused a credential that git-token-keeper did not give");
    expect(r.stderr).not.toContain("permissions problem");
  });

  it("an askpass script serving a stale token, as the Jenkins git client sets: plain git fails, the shim fetches", async () => {
    const work = tempDir();
    const askpass = join(work, "askpass.sh");
    writeFileSync(askpass, `#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; *) echo '${stale}' ;; esac\n`);
    chmodSync(askpass, 0o700);
    const env = { GIT_ASKPASS: askpass, GIT_TERMINAL_PROMPT: "false" };
    const url = world.repoUrl("acme/app");
    // What the Jenkins git client runs for every checkout.
    const jenkinsFetch = (dir: string, shim: boolean) =>
      world.git(["fetch", "--tags", "--force", "--progress", "--", url, "+refs/heads/*:refs/remotes/origin/*"], dir, { env, shim });
    const plainDir = join(work, "plain");
    await must(world.git(["init", "-q", plainDir], work, { shim: false }));
    const plain = await jenkinsFetch(plainDir, false);
    expect(plain.exitCode).toBe(128);
    expect(plain.stderr).toContain("Authentication failed");
    const keptDir = join(work, "kept");
    await must(world.git(["init", "-q", keptDir], work));
    await must(jenkinsFetch(keptDir, true));
    const sha = (await must(world.git(["rev-parse", "refs/remotes/origin/main"], keptDir))).stdout.trim();
    await must(world.git(["checkout", "-q", "-f", sha], keptDir));
  });

  describe("url.<base with a token>.insteadOf and pushInsteadOf (GitLab CI jobs, Go private modules)", () => {
    // Written to the user's global config, as those setups do; the test's HOME is private to it.
    const global = (args: string[]) => must(world.git(["config", "--global", ...args], world.dir, { shim: false }));
    const unset = (key: string) => world.git(["config", "--global", "--remove-section", key], world.dir, { shim: false });

    for (const [label, userinfo] of [
      ["user:token", () => `oauth2:${stale}`],
      ["a token as the user name", () => stale],
    ] as const) {
      it(`insteadOf with ${label}: plain git fails to clone and fetch, the shim does both`, async () => {
        const base = world.gitUrl.replace("http://", `http://${userinfo()}@`);
        await global([`url.${base}/.insteadOf`, `${world.gitUrl}/`]);
        try {
          const work = tempDir();
          const plain = await world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "plain")], work, { shim: false });
          expect(plain.exitCode).toBe(128);
          const app = join(work, "app");
          await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
          await must(world.git(["fetch", "-q", "origin"], app));
        } finally {
          await unset(`url.${base}/`);
        }
      });
    }

    it("pushInsteadOf with user:token: plain git fails to push, the shim pushes", async () => {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      await commitSomething(app, "push-instead.txt");
      const base = world.gitUrl.replace("http://", `http://x-access-token:${stale}@`);
      await global([`url.${base}/.pushInsteadOf`, `${world.gitUrl}/`]);
      try {
        const plain = await world.git(["push", "-q", "origin", "HEAD:main"], app, { shim: false });
        expect(plain.exitCode).toBe(128);
        await must(world.git(["pull", "-q", "--rebase", "origin", "main"], app));
        await must(world.git(["push", "-q", "origin", "HEAD:main"], app));
      } finally {
        await unset(`url.${base}/`);
      }
    });
  });

  it("a user:token in a submodule's own .git/config: plain git's recursive fetch fails, the shim's succeeds", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), app], work));
    const staleLib = world.repoUrl("acme/lib").replace("http://", `http://x-access-token:${stale}@`);
    await must(world.git(["config", "remote.origin.url", staleLib], join(app, "lib"), { shim: false }));
    const plain = await world.git(["fetch", "-q", "--recurse-submodules=yes"], app, { shim: false });
    expect(plain.exitCode).not.toBe(0);
    await must(world.git(["fetch", "-q", "--recurse-submodules=yes"], app));
    await must(world.git(["submodule", "update", "-q", "--remote"], app));
  });

  for (const [label, header] of [
    ["Authorization: Bearer", () => `Authorization: Bearer ${stale}`],
    ["authorization: basic", () => `authorization: basic ${Buffer.from(`x:${stale}`).toString("base64")}`],
  ] as const) {
    it(`an ${label} extra header brought in by an includeIf file (newer actions/checkout): plain git fails, the shim fetches`, async () => {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      const included = join(work, "checkout-credentials.config");
      writeFileSync(included, `[http "${world.gitUrl}/"]\n\textraheader = ${header()}\n`);
      await must(world.git(["config", `includeIf.gitdir:${app}/.git.path`, included], app, { shim: false }));
      expect((await world.git(["fetch", "-q", "origin"], app, { shim: false })).exitCode).toBe(128);
      await must(world.git(["fetch", "-q", "origin"], app));
    });
  }
});
