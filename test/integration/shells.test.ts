import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ageHeartbeat } from "../support/keeper-process.ts";
import { haveTool } from "../support/require-tool.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

describe("shim and helper under every shell", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it.skipIf(!haveTool("shellcheck"))("shellcheck finds nothing in shim/'s shell files", () => {
    // Every file but the awk program, which awk runs (-f).
    const files = readdirSync(SHIM_DIR)
      .filter((f) => !f.endsWith(".awk"))
      .map((f) => join(SHIM_DIR, f));
    expect(execFileSync("shellcheck", ["-s", "sh", ...files], { encoding: "utf8" })).toBe("");
  });

  for (const shell of shellsToTest()) {
    it(`${shell}: clone, push after revocation, submodule update`, async () => {
      world.shimDir = shimCopyFor(shell);
      const work = tempDir();
      const app = join(work, "app");
      await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
      writeFileSync(join(app, `${shell}.txt`), "x\n");
      await must(world.git(["add", "."], app));
      await must(world.git(["commit", "-q", "-m", shell], app));
      await must(world.git(["pull", "-q", "--rebase", "origin", "main"], app));
      world.github.revokeAll();
      const push = await must(world.git(["push", "origin", "HEAD:main"], app));
      expect(push.stderr).toContain("retrying with a new one");
      await must(world.git(["submodule", "update", "--init", "-q"], app));
      await must(world.git(["ls-remote", "origin"], app));
    });
  }

  for (const shell of shellsToTest()) {
    it(`${shell}: the health probe agrees with status: alive and healthy, or one line saying why not`, async () => {
      const shim = shimCopyFor(shell);
      const copy = join(tempDir(), "state");
      mkdirSync(copy, { mode: 0o700 });
      for (const f of ["status.json", "daemon.pid", "heartbeat"]) copyFileSync(join(world.stateDir, f), join(copy, f));
      const probe = () => spawnSync(join(shim, "git-token-keeper-probe"), [], { env: { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: copy }, encoding: "utf8" });
      const status = readFileSync(join(copy, "status.json"), "utf8");
      expect(probe().status).toBe(0);
      writeFileSync(join(copy, "status.json"), status.replace('"healthy": true,', '"healthy": false,'));
      expect(probe().stderr).toContain("minting is failing");
      writeFileSync(join(copy, "status.json"), status.replace('"state": "running",', '"state": "stopped",'));
      expect(probe().status).toBe(1);
      writeFileSync(join(copy, "status.json"), status);
      ageHeartbeat(copy, 40);
      const stale = probe();
      expect(stale.status).toBe(1);
      expect(stale.stderr).toMatch(/^git-token-keeper: the daemon is not running/);
      rmSync(join(copy, "daemon.pid"));
      expect(probe().status).toBe(1);
    });
  }
});
