import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostProxy } from "../fakes/host-proxy.ts";
import { haveTool } from "../support/require-tool.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { runGit, SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * gh reads its token once, from GH_TOKEN (github.com, github.localhost) or GH_ENTERPRISE_TOKEN
 * (Enterprise Server hosts): a job's GH_TOKEN that expired makes a late `gh release upload`
 * fail while git works. The wrapper in the shim folder gives each gh call the keeper's current
 * token for the host and owner gh will talk to.
 *
 * gh talks plain http to `github.localhost` (api.github.localhost for the API), its name for a
 * local GitHub; a forward proxy sends those names to the fake GitHub and the git server.
 */
describe("gh through the shim folder", () => {
  let world: World;
  let home: string;
  let stale: string;
  const sha = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);
  const keeperToken = (owner: string) => /^token=(.*)$/m.exec(readFileSync(join(world.stateDir, "tokens", "test-app", owner), "utf8"))?.[1] ?? "";

  beforeAll(async () => {
    // gh gets the token in its environment, as the wrapper is meant to give it: the suite's
    // scan of processes' environments leaves these tokens out.
    world = await World.create({ audit: false });
    await world.startKeeper({ providers: [world.providerConfig({ gitUrl: "http://github.localhost" })] });
    home = tempDir();
    mkdirSync(join(home, "gh"), { recursive: true });
    // The job's own token, handed to it when it started, now expired.
    stale = world.github.issueToken("acme");
    world.github.tokens.get(stale)!.revoked = true;
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  describe.each(shellsToTest())("which token each call gets under %s (a stand-in prints what gh would receive)", (shell) => {
    let standIn: string;
    let shim: string;
    beforeAll(() => {
      standIn = join(tempDir(), "gh");
      writeFileSync(standIn, '#!/bin/sh\nfor v in GH_TOKEN GH_ENTERPRISE_TOKEN; do eval "t=\\${$v:-}"; printf "%s=%s\\n" "$v" "$(printf %s "$t" | sha256sum | cut -c1-16)"; done\nprintf "args=%s\\n" "$*"\n');
      chmodSync(standIn, 0o755);
      shim = shimCopyFor(shell);
    });

    const run = async (args: string[], env: Record<string, string> = {}, cwd?: string) => {
      const r = await execa(join(shim, "gh"), args, {
        cwd: cwd ?? home,
        env: { PATH: process.env.PATH, HOME: home, GIT_TOKEN_KEEPER_DIR: world.stateDir, GIT_TOKEN_KEEPER_REAL_GH: standIn, GH_HOST: "github.localhost", GH_TOKEN: "the-jobs-own-token", ...env },
        extendEnv: false,
        reject: false,
      });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const out = String(r.stdout);
      return { gh: /^GH_TOKEN=(.*)$/m.exec(out)?.[1], enterprise: /^GH_ENTERPRISE_TOKEN=(.*)$/m.exec(out)?.[1], args: /^args=(.*)$/m.exec(out)?.[1] };
    };

    it.each([
      ["api repos/acme/app", ["api", "repos/acme/app"], "acme"],
      ["api with flags and values before the endpoint", ["api", "-X", "GET", "-H", "Accept: x", "repos/globex/tools", "--jq", ".name"], "globex"],
      ["api /orgs/OWNER", ["api", "/orgs/acme/repos"], "acme"],
      ["api by full URL", ["api", "http://api.github.localhost/repos/globex/tools"], "globex"],
      ["-R before the command", ["-R", "globex/tools", "release", "list"], "globex"],
      ["--repo=", ["release", "upload", "v1", "f", "--repo=acme/app"], "acme"],
      ["-RHOST/OWNER/REPO", ["issue", "list", "-Rgithub.localhost/globex/tools"], "globex"],
      ["repo clone OWNER/REPO", ["repo", "clone", "globex/tools"], "globex"],
      ["repo view URL", ["repo", "view", "http://github.localhost/acme/app"], "acme"],
    ])("%s: the owner's current token in GH_TOKEN", async (_name, args, owner) => {
      const r = await run(args);
      expect(r.gh).toBe(sha(keeperToken(owner)));
      expect(r.args).toBe(args.join(" "));
    });

    it("GH_REPO names the repository", async () => {
      expect((await run(["issue", "list"], { GH_REPO: "globex/tools" })).gh).toBe(sha(keeperToken("globex")));
    });

    it("in a repository: its remote, in gh's order (upstream before origin)", async () => {
      const repo = tempDir();
      await must(runGit(["init", "-q", repo], { cwd: repo, home }));
      await must(runGit(["remote", "add", "origin", "http://github.localhost/globex/tools.git"], { cwd: repo, home }));
      expect((await run(["pr", "list"], {}, repo)).gh).toBe(sha(keeperToken("globex")));
      await must(runGit(["remote", "add", "upstream", "http://github.localhost/acme/app.git"], { cwd: repo, home }));
      expect((await run(["pr", "list"], {}, repo)).gh).toBe(sha(keeperToken("acme")));
    });

    it.each([
      ["an owner the keeper does not serve", ["-R", "initech/x", "issue", "list"], {}],
      ["no owner to tell, and two served on the host", ["api", "user"], {}],
      ["gh's own login", ["auth", "status"], {}],
      ["a host the keeper does not serve", ["api", "repos/acme/app"], { GH_HOST: "github.com" }],
    ])("%s: the build's own token, untouched", async (_name, args, env) => {
      const r = await run(args, env);
      expect(r.gh).toBe(sha("the-jobs-own-token"));
    });

    it("an Enterprise Server host the keeper serves gets GH_ENTERPRISE_TOKEN; GH_TOKEN stays the build's", async () => {
      const state = tempDir();
      mkdirSync(join(state, "tokens", "ghes"), { recursive: true });
      writeFileSync(join(state, "routes"), "https://ghes.example.com ghes / owner acme\n");
      writeFileSync(join(state, "tokens", "ghes", "acme"), `token=ghes-token-for-acme\nusername=x-access-token\nexpires=${Math.floor(Date.now() / 1000) + 3600}\nserial=1\n`);
      const r = await run(["api", "repos/acme/app"], { GH_HOST: "ghes.example.com", GIT_TOKEN_KEEPER_DIR: state });
      expect(r.enterprise).toBe(sha("ghes-token-for-acme"));
      expect(r.gh).toBe(sha("the-jobs-own-token"));
      // A keeper with a token per repository gets the repository gh names.
      writeFileSync(join(state, "routes"), "https://ghes.example.com ghes / repository acme\n");
      writeFileSync(join(state, "tokens", "ghes", "acme~app"), `token=ghes-token-for-acme-app\nusername=x-access-token\nexpires=${Math.floor(Date.now() / 1000) + 3600}\nserial=1\n`);
      for (const args of [["api", "repos/acme/app/releases"], ["release", "list", "-R", "acme/app"], ["repo", "clone", "https://ghes.example.com/acme/app.git"]]) {
        expect((await run(args, { GH_HOST: "ghes.example.com", GIT_TOKEN_KEEPER_DIR: state })).enterprise, args.join(" ")).toBe(sha("ghes-token-for-acme-app"));
      }
      writeFileSync(join(state, "routes"), "https://ghes.example.com ghes / owner acme\n");
      // And the one owner served there is the owner when nothing names one.
      expect((await run(["api", "user"], { GH_HOST: "ghes.example.com", GIT_TOKEN_KEEPER_DIR: state })).enterprise).toBe(sha("ghes-token-for-acme"));
    });
  });

  describe.skipIf(!haveTool("gh", "Debian's gh is not installed"))("Debian's gh against the fake GitHub, late in a build whose GH_TOKEN expired", () => {
    let proxy: HostProxy;
    beforeAll(async () => {
      proxy = new HostProxy({ "github.localhost": world.gitUrl, "api.github.localhost": world.github.url });
      await proxy.start();
    });
    afterAll(async () => {
      await proxy.stop();
    });

    const gh = (args: string[], options: { shim: boolean; cwd?: string }) =>
      execa("gh", args, {
        cwd: options.cwd ?? home,
        env: {
          PATH: options.shim ? `${SHIM_DIR}:${process.env.PATH}` : process.env.PATH,
          HOME: home,
          GH_CONFIG_DIR: join(home, "gh"),
          GH_HOST: "github.localhost",
          GH_TOKEN: stale,
          GH_PROMPT_DISABLED: "1",
          GH_NO_UPDATE_NOTIFIER: "1",
          NO_COLOR: "1",
          GIT_TERMINAL_PROMPT: "0",
          GIT_TOKEN_KEEPER_DIR: world.stateDir,
          http_proxy: proxy.url,
          HTTP_PROXY: proxy.url,
        },
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });

    it("gh api: fails with the job's token, works through the wrapper with the owner's", async () => {
      const plain = await gh(["api", "repos/acme/app"], { shim: false });
      expect(plain.exitCode).not.toBe(0);
      expect(String(plain.stderr)).toContain("Bad credentials");
      const through = await gh(["api", "repos/acme/app", "--jq", ".full_name"], { shim: true });
      expect(through.exitCode, String(through.stderr)).toBe(0);
      expect(String(through.stdout).trim()).toBe("acme/app");
      expect(world.github.repositoryCalls.at(-1)).toMatchObject({ path: "/repos/acme/app", owner: "acme", status: 200 });
    });

    it("gh repo clone (GraphQL, then git through the git shim), then gh in the clone", async () => {
      const work = tempDir();
      const plain = await gh(["repo", "clone", "acme/app", join(work, "plain")], { shim: false, cwd: work });
      expect(plain.exitCode).not.toBe(0);
      const r = await gh(["repo", "clone", "globex/tools", join(work, "tools")], { shim: true, cwd: work });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(readFileSync(join(work, "tools", ".git", "config"), "utf8")).toContain("http://github.localhost/globex/tools.git");
      // gh resolves {owner}/{repo} from the clone's remote; the wrapper finds the owner there too.
      const view = await gh(["api", "repos/{owner}/{repo}", "--jq", ".full_name"], { shim: true, cwd: join(work, "tools") });
      expect(view.exitCode, String(view.stderr)).toBe(0);
      expect(String(view.stdout).trim()).toBe("globex/tools");
    });

    it("gh release upload: the asset arrives with the owner's current token", async () => {
      const asset = join(tempDir(), "build.tar.gz");
      writeFileSync(asset, Buffer.alloc(4096, 7));
      const plain = await gh(["release", "upload", "v1", asset, "-R", "acme/app"], { shim: false });
      expect(plain.exitCode).not.toBe(0);
      expect(world.github.uploads).toEqual([]);
      const r = await gh(["release", "upload", "v1", asset, "-R", "acme/app"], { shim: true });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(world.github.uploads).toEqual([{ owner: "acme", repo: "app", name: "build.tar.gz", bytes: 4096 }]);
      expect(proxy.seen).toContain("api.github.localhost");
    });
  });
});
