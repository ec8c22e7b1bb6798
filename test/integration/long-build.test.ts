import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { must, World } from "../support/world.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { readFileSync, writeFileSync } from "node:fs";

const LIFETIME_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a build that outlives its token", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
    await world.startKeeper();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("succeeds through the shim across several token lifetimes", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    await sleep(LIFETIME_MS + 500);
    writeFileSync(join(app, "build.txt"), "built\n");
    await must(world.git(["add", "build.txt"], app));
    await must(world.git(["commit", "-q", "-m", "build output"], app));
    await must(world.git(["push", "-q", "origin", "main"], app));
    await sleep(LIFETIME_MS + 500);
    await must(world.git(["fetch", "-q", "origin"], app));
    await must(world.git(["pull", "-q", "--rebase", "origin", "main"], app));
    await sleep(LIFETIME_MS + 500);
    const ls = await must(world.git(["ls-remote", world.repoUrl("acme/app")], app));
    expect(ls.stdout).toMatch(/refs\/heads\/main/);
    await must(world.git(["submodule", "update", "--init"], app));
    expect(readFileSync(join(app, "lib", "README.md"), "utf8")).toContain("acme/lib");
    expect(world.github.mintsFor("acme")).toBeGreaterThanOrEqual(3);
  });

  it("fails with plain git and a token minted at the start (the test bites)", async () => {
    const work = tempDir();
    const app = join(work, "app");
    // What CI does today: one token handed to the job when it starts.
    const token = world.github.issueToken("acme");
    const url = world.repoUrl("acme/app").replace("http://", `http://x-access-token:${token}@`);
    await must(world.git(["clone", "-q", url, app], work, { shim: false }));
    await sleep(LIFETIME_MS + 500);
    writeFileSync(join(app, "build.txt"), "built again\n");
    await must(world.git(["add", "build.txt"], app, { shim: false }));
    await must(world.git(["commit", "-q", "-m", "build output"], app, { shim: false }));
    const push = await world.git(["push", "-q", "origin", "main"], app, { shim: false });
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toContain("fatal: Authentication failed for");
  });
});
