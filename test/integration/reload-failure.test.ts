import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The state dir on its own tmpfs, which the test can make read-only (needs root, as CI runs).
describe.skipIf(process.getuid?.() !== 0)("a reload the state dir cannot take", () => {
  let world: World;
  const count = (pattern: RegExp) => (world.keeper?.log.match(pattern) ?? []).length;
  const waitFor = async (pattern: RegExp, after: number) => {
    const deadline = Date.now() + 15_000;
    while (count(pattern) <= after && Date.now() < deadline) await sleep(50);
    expect(count(pattern), world.keeper?.log).toBeGreaterThan(after);
  };
  const config = (owners: string[]) => ({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [world.providerConfig({ owners })] });

  beforeAll(async () => {
    world = await World.create();
    mkdirSync(world.stateDir, { mode: 0o700 });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", world.stateDir]);
    await world.startKeeper(config(["acme"]));
  });

  afterAll(async () => {
    await world.close();
    execFileSync("umount", ["-l", world.stateDir]);
    removeTempDirs();
  });

  it("is rejected without changing anything, the daemon keeps running, and a later reload applies it", async () => {
    const work = tempDir();
    execFileSync("mount", ["-o", "remount,ro", world.stateDir]);
    try {
      const rejected = count(/config reload rejected/);
      writeFileSync(join(world.dir, "keeper.yaml"), JSON.stringify(config(["acme", "globex"])));
      world.keeper?.child.kill("SIGHUP");
      await waitFor(/config reload rejected/, rejected);
      await sleep(500);
      expect(world.keeper?.child.exitCode).toBeNull();
      expect(world.keeper?.log).toContain("the state dir cannot be written");
      // The old config still serves.
      await must(world.git(["ls-remote", world.repoUrl("acme/app")], work));
      expect((await world.git(["ls-remote", world.repoUrl("globex/tools")], work)).exitCode).toBe(128);
    } finally {
      execFileSync("mount", ["-o", "remount,rw", world.stateDir]);
    }
    const reloaded = count(/"message":"config reloaded"/);
    world.keeper?.child.kill("SIGHUP");
    await waitFor(/"message":"config reloaded"/, reloaded);
    await must(world.git(["ls-remote", world.repoUrl("globex/tools")], work));
  });
});
