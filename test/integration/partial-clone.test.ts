import { writeFileSync } from "node:fs";
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
