import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

describe("one daemon per state dir", () => {
  afterAll(removeTempDirs);

  it("of daemons started together on one state dir, exactly one runs, each time", async () => {
    const world = await World.create();
    try {
      for (let round = 0; round < 5; round++) {
        const stateDir = join(tempDir("gtk-race-"), "state");
        const config = { providers: [world.providerConfig()] };
        const keepers = await Promise.all([0, 1, 2].map(() => KeeperProcess.start({ dir: tempDir(), stateDir, config, waitReady: false })));
        // Each either becomes ready or refuses and exits (however slow the machine): no fixed wait.
        await Promise.all(keepers.map((k) => Promise.race([k.exited, k.waitForLog(/"message":"ready"/, 60_000).catch(() => undefined)])));
        await Promise.all(keepers.filter((k) => k.log.includes("another git-token-keeper daemon")).map((k) => k.exited));
        const running = keepers.filter((k) => k.child.exitCode === null);
        expect(running, keepers.map((k) => k.log).join("\n---\n")).toHaveLength(1);
        for (const k of keepers.filter((k) => k.child.exitCode !== null)) expect(k.log).toContain("another git-token-keeper daemon");
        await Promise.all(keepers.map((k) => k.stop()));
      }
    } finally {
      await world.close();
    }
  });

  it("a daemon that was killed does not block the next one in its PID namespace", async () => {
    const world = await World.create();
    try {
      await world.startKeeper();
      await world.keeper?.kill();
      const next = await world.startKeeper();
      expect(next.child.exitCode).toBeNull();
    } finally {
      await world.close();
    }
  });
});
