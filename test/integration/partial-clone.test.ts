import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const LIFETIME_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Why local commands carry the helper too: in a partial clone, `git checkout` or `git log -p`
 * fetches missing blobs on demand, long after the clone's token expired.
 */
describe("a partial clone's lazy fetch, late in the build", () => {
  let world: World;
  let oldCommit: string;

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
    for (const repo of ["acme/app"]) {
      await must(world.git(["-C", join(world.server.root, `${repo}.git`), "config", "uploadpack.allowFilter", "true"], world.dir, { shim: false }));
    }
    await world.startKeeper();
    // A second commit, so that the first one's blobs are not in a blobless clone of the tip.
    const seed = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(seed, "s")], seed));
    writeFileSync(join(seed, "s", "README.md"), "# changed\n");
    await must(world.git(["commit", "-q", "-am", "change"], join(seed, "s")));
    await must(world.git(["push", "-q", "origin", "HEAD:main"], join(seed, "s")));
    oldCommit = (await must(world.git(["rev-parse", "HEAD~1"], join(seed, "s")))).stdout.trim();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("checkout of an old commit after the token expired works through the shim", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", "--filter=blob:none", "--no-recurse-submodules", world.repoUrl("acme/app"), app], work));
    await sleep(LIFETIME_MS + 500);
    await must(world.git(["checkout", "-q", oldCommit], app));
  });

  // actions/checkout with `filter:` leaves its token as an Authorization extraheader in
  // .git/config (src/git-auth-helper.ts: configureToken); after it expires, a checkout's lazy
  // fetch sends it. The shim resets it for what the keeper serves, as for a fetch.
  const staleHeaderClone = async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", "--filter=blob:none", "--no-recurse-submodules", world.repoUrl("acme/app"), app], work));
    // A token the host no longer takes (the job's, expired).
    const stale = `ghs_${"0".repeat(36)}`;
    const header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`;
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, header], app, { shim: false }));
    return app;
  };

  it("a lazy fetch with a stale Authorization extraheader in .git/config: the checkout works through the shim, and fails with plain git", async () => {
    const app = await staleHeaderClone();
    const plain = await world.git(["checkout", "-q", oldCommit], app, { shim: false });
    expect(plain.exitCode).not.toBe(0);
    expect(plain.stderr).toMatch(/could not fetch|Authentication failed|401/);
    const shim = await world.git(["checkout", "-q", oldCommit], app);
    expect(shim.exitCode, shim.stderr).toBe(0);
    // Nothing of the keeper's is left in the repository's config.
    const config = (await must(world.git(["config", "--list", "--local"], app, { shim: false }))).stdout;
    expect(config).not.toMatch(/token-keeper/);
  });

  it("the same from a linked worktree, from a subfolder, and with -C", async () => {
    const app = await staleHeaderClone();
    const tree = join(tempDir(), "tree");
    // A worktree of the tip (its blobs are there); the old commit's are fetched on the way.
    await must(world.git(["worktree", "add", "-q", "--detach", tree, "HEAD"], app));
    const inTree = await world.git(["log", "-p", "-1", "--format=%H", oldCommit, "--", "README.md"], tree);
    expect(inTree.exitCode, inTree.stderr).toBe(0);
    expect(inTree.stdout).toContain(oldCommit);
    const app2 = await staleHeaderClone();
    const fromOutside = await world.git(["-C", app2, "show", `${oldCommit}:README.md`], tempDir());
    expect(fromOutside.exitCode, fromOutside.stderr).toBe(0);
  });

  it("a lazy fetch that fails is not run again (checkout runs hooks; a local command is never retried)", async () => {
    const app = await staleHeaderClone();
    const log = join(app, "..", "post-checkout.log");
    writeFileSync(join(app, ".git", "hooks", "post-checkout"), `#!/bin/sh\necho ran >> "${log}"\n`, { mode: 0o755 });
    // The host fails every fetch for a while (git itself tries a missing object more than once).
    world.server.failNext(502, 50, /acme\/app\.git\/(info\/refs|git-upload-pack)$/);
    try {
      const r = await world.git(["checkout", "-q", oldCommit], app);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain("not retrying: git checkout fetched missing objects of this partial clone");
      expect(r.stderr).not.toMatch(/retried after/);
      expect(existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").length : 0).toBeLessThanOrEqual(1);
    } finally {
      world.server.clearFaults();
    }
  });

  // A treeless clone (--filter=tree:0) lacks old trees too: rev-parse <rev>:<path> and ls-tree
  // fetch them on the way.
  it("a treeless clone: rev-parse of an old tree's entry and ls-tree fetch through the shim with a stale header; plain git fails", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", "--filter=tree:0", "--no-recurse-submodules", world.repoUrl("acme/app"), app], work));
    const stale = `ghs_${"1".repeat(36)}`;
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`], app, { shim: false }));
    for (const args of [["rev-parse", `${oldCommit}:README.md`], ["ls-tree", oldCommit]]) {
      const plain = await world.git(args, app, { shim: false });
      expect(plain.exitCode, args.join(" ")).not.toBe(0);
    }
    const fresh = join(work, "app2");
    await must(world.git(["clone", "-q", "--filter=tree:0", "--no-recurse-submodules", world.repoUrl("acme/app"), fresh], work));
    await must(world.git(["config", `http.${world.gitUrl}/.extraheader`, `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${stale}`).toString("base64")}`], fresh, { shim: false }));
    for (const args of [["rev-parse", `${oldCommit}:README.md`], ["ls-tree", oldCommit]]) {
      const r = await world.git(args, fresh);
      expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
  });

  it("and fails with plain git and the clone's token in the URL (the test bites)", async () => {
    const work = tempDir();
    const app = join(work, "app");
    const token = world.github.issueToken("acme");
    await must(world.git(["clone", "-q", "--filter=blob:none", "--no-recurse-submodules", world.repoUrl("acme/app").replace("http://", `http://x-access-token:${token}@`), app], work, { shim: false }));
    await sleep(LIFETIME_MS + 500);
    const r = await world.git(["checkout", "-q", oldCommit], app, { shim: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Authentication failed|could not fetch/);
  });
});
