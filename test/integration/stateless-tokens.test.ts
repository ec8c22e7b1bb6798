import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * GitHub's stateless installation tokens (`ghs_` and a signed JWT, dots included, about 520
 * characters; hosts' limits move, so a few kilobytes too) carried whole: the token file, the sh
 * helper, git's Basic path, a re-mint after the host refuses one; and never in the log, in whole
 * or in any part of 16 characters.
 */
for (const bytes of [520, 4096]) {
  describe(`stateless installation tokens of ${bytes} characters`, () => {
    let world: World;

    beforeAll(async () => {
      world = await World.create();
      world.github.tokenFormat = "stateless";
      world.github.statelessBytes = bytes;
      await world.startKeeper();
    });

    afterAll(async () => {
      await world.close();
      removeTempDirs();
    });

    it("clone, push, and a push after every token was revoked, through the shim", async () => {
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      writeFileSync(join(app, "stateless.txt"), `${bytes}\n`);
      await must(world.git(["add", "stateless.txt"], app));
      await must(world.git(["commit", "-q", "-m", "stateless"], app));
      await must(world.git(["push", "-q", "origin", `HEAD:refs/heads/stateless-${bytes}`], app));
      world.github.revokeAll();
      const push = await must(world.git(["push", "origin", `HEAD:refs/heads/stateless-${bytes}-again`], app));
      expect(push.stderr).toContain("retrying with a new one");
      const issued = [...world.github.tokens.keys()];
      expect(issued.every((t) => t.length >= bytes - 8 && t.split(".").length === 3)).toBe(true);
      const stored = /^token=(.*)$/m.exec(readFileSync(join(world.stateDir, "tokens", "test-app", "acme"), "utf8"))?.[1];
      expect(issued).toContain(stored);
    });

    it("no part of 16 characters of any issued token is in the daemon's log", () => {
      const log = world.keeper?.log ?? "";
      for (const token of world.github.tokens.keys()) {
        for (let i = 0; i + 16 <= token.length; i += 16) expect(log.includes(token.slice(i, i + 16)), `part at ${i}`).toBe(false);
      }
    });
  });
}
