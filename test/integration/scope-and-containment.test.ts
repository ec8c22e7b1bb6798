import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * The shim changes only what the keeper serves (here the owner acme; globex is not served) and
 * only for the repository it computed it for: a build's own credential for anything else is left
 * exactly as the build set it, and nothing leaks into a git that works in another repository.
 */
describe("scope and containment of the shim's overrides", () => {
  let world: World;
  let stale: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    stale = world.github.issueToken("acme");
    world.github.tokens.get(stale)!.revoked = true;
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  const withToken = (url: string, token: string) => url.replace("http://", `http://x-access-token:${token}@`);
  const basicHeader = (token: string) => `Authorization: basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;

  describe("a build's own valid token for an owner the keeper does not serve", () => {
    it("in the URL: cloned and fetched through the shim as with plain git", async () => {
      const own = world.github.issueToken("globex");
      const work = tempDir();
      const tools = join(work, "tools");
      await must(world.git(["clone", "-q", withToken(world.repoUrl("globex/tools"), own), tools], work));
      await must(world.git(["fetch", "-q", "origin"], tools));
    });

    it("in a host-wide extra header: kept for globex, replaced by the keeper's token for acme", async () => {
      const own = world.github.issueToken("globex");
      const home = tempDir();
      const env = { HOME: home };
      await must(world.git(["config", "--global", `http.${world.gitUrl}/.extraheader`, basicHeader(own)], home, { shim: false, env }));
      const work = tempDir();
      await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "tools")], work, { env }));
      // The header is the build's valid globex token: plain git cannot use it for acme either.
      expect((await world.git(["ls-remote", world.repoUrl("acme/app")], work, { shim: false, env })).exitCode).toBe(128);
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "app")], work, { env }));
    });

    it("in a credential store for the host: used for globex, while acme gets the keeper's token", async () => {
      const own = world.github.issueToken("globex");
      const home = tempDir();
      const env = { HOME: home };
      writeFileSync(join(home, ".git-credentials"), `${withToken(world.gitUrl, own)}\n`, { mode: 0o600 });
      await must(world.git(["config", "--global", "credential.helper", "store"], home, { shim: false, env }));
      const work = tempDir();
      await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "tools")], work, { env }));
      expect((await world.git(["ls-remote", world.repoUrl("acme/app")], work, { shim: false, env })).exitCode).toBe(128);
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "app")], work, { env }));
    });
  });

  describe("containment", () => {
    async function cloneWithStaleOrigin(): Promise<string> {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", "--recurse-submodules", world.repoUrl("acme/app"), app], work));
      await must(world.git(["remote", "set-url", "origin", withToken(world.repoUrl("acme/app"), stale)], app, { shim: false }));
      return app;
    }

    it("submodule foreach 'git push origin …' in a checkout whose origin URL holds a token: each submodule pushes to its own repository", async () => {
      const app = await cloneWithStaleOrigin();
      const lib = join(app, "lib");
      writeFileSync(join(lib, "foreach.txt"), "foreach\n");
      await must(world.git(["add", "foreach.txt"], lib));
      await must(world.git(["commit", "-q", "-m", "foreach"], lib));
      await must(world.git(["submodule", "foreach", "-q", "git push -q origin HEAD:refs/heads/from-foreach"], app));
      const libRefs = await must(world.git(["ls-remote", world.repoUrl("acme/lib")], app));
      const appRefs = await must(world.git(["ls-remote", world.repoUrl("acme/app")], app));
      expect(libRefs.stdout).toContain("refs/heads/from-foreach");
      expect(appRefs.stdout).not.toContain("refs/heads/from-foreach");
    });

    it("a remote with two URLs, one holding a token: the push goes to both", async () => {
      const app = await cloneWithStaleOrigin();
      await must(world.git(["config", "--add", "remote.origin.url", world.repoUrl("acme/lib")], app, { shim: false }));
      await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/two-urls"], app));
      expect((await must(world.git(["ls-remote", world.repoUrl("acme/app")], app))).stdout).toContain("refs/heads/two-urls");
      expect((await must(world.git(["ls-remote", world.repoUrl("acme/lib")], app))).stdout).toContain("refs/heads/two-urls");
    });

    it("a remote whose URL holds a token keeps its pushInsteadOf", async () => {
      const app = await cloneWithStaleOrigin();
      await must(world.git(["config", `url.${world.repoUrl("acme/lib")}.pushInsteadOf`, withToken(world.repoUrl("acme/app"), stale)], app, { shim: false }));
      await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/push-instead"], app));
      expect((await must(world.git(["ls-remote", world.repoUrl("acme/lib")], app))).stdout).toContain("refs/heads/push-instead");
      expect((await must(world.git(["ls-remote", world.repoUrl("acme/app")], app))).stdout).not.toContain("refs/heads/push-instead");
    });
  });

  describe("submodules", () => {
    /** A superproject with acme/lib as submodule `name` at deps/lib, its .gitmodules URL `url`. */
    async function superproject(name: string, url: string): Promise<string> {
      const top = join(tempDir(), "top");
      const run = (args: string[]) => must(world.git(args, top, { shim: false }));
      await must(world.git(["init", "-q", "-b", "main", top], world.dir, { shim: false }));
      writeFileSync(join(top, "README.md"), "top\n");
      await run(["add", "README.md"]);
      await run(["-c", "protocol.file.allow=always", "submodule", "add", "-q", "--name", name, join(world.dir, "repos", "acme/lib.git"), "deps/lib"]);
      await run(["config", "-f", ".gitmodules", `submodule.${name}.url`, url]);
      await run(["add", ".gitmodules"]);
      await run(["commit", "-q", "-m", "submodule"]);
      await run(["submodule", "sync", "-q"]);
      await run(["remote", "add", "origin", world.repoUrl("acme/app")]);
      return top;
    }

    it("a submodule whose name has a slash and whose own config holds a token: a recursive fetch works", async () => {
      const top = await superproject("deps/lib", world.repoUrl("acme/lib"));
      await must(world.git(["config", "remote.origin.url", withToken(world.repoUrl("acme/lib"), stale)], join(top, "deps/lib"), { shim: false }));
      expect((await world.git(["fetch", "-q", "--recurse-submodules=yes"], top, { shim: false })).exitCode).not.toBe(0);
      await must(world.git(["fetch", "-q", "--recurse-submodules=yes"], top));
    });

    it("submodule.recurse=true: a plain `git fetch` reaches the submodule, whose config holds a token", async () => {
      const top = await superproject("deps/lib", world.repoUrl("acme/lib"));
      await must(world.git(["config", "submodule.recurse", "true"], top));
      await must(world.git(["config", "remote.origin.url", withToken(world.repoUrl("acme/lib"), stale)], join(top, "deps/lib"), { shim: false }));
      expect((await world.git(["fetch", "-q"], top, { shim: false })).exitCode).not.toBe(0);
      await must(world.git(["fetch", "-q"], top));
    });

    it("a URL with a token only in .gitmodules: submodule update --init in a fresh clone works", async () => {
      const top = await superproject("deps-lib", withToken(world.repoUrl("acme/lib"), stale));
      const fresh = join(tempDir(), "fresh");
      await must(world.git(["clone", "-q", top, fresh], world.dir, { shim: false }));
      expect((await world.git(["submodule", "update", "-q", "--init"], fresh, { shim: false })).exitCode).not.toBe(0);
      await must(world.git(["submodule", "update", "-q", "--init"], fresh));
    });
  });
});
