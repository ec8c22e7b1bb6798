import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { gitEnv, SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

// Debian's nobody and nogroup stand in for a CI runner's user and the keeper's shared group.
const RUNNER_UID = 65534;
const SHARED_GID = 65534;

describe.skipIf(process.getuid?.() !== 0)("the shared-group layout: keeper and runner as different users", () => {
  afterAll(removeTempDirs);

  // Issue 24, finding 9: under umask 077 the files were 0600 and the group's helper answered nothing.
  it("the group's modes hold whatever the daemon's umask", async () => {
    const world = await World.create();
    const before = process.umask(0o077);
    try {
      await world.startKeeper({ stateGroup: SHARED_GID });
    } finally {
      process.umask(before);
    }
    try {
      for (const dir of ["", "tokens", "tokens/test-app", "answers"]) expect(statSync(join(world.stateDir, dir)).mode & 0o777, dir).toBe(0o750);
      for (const file of ["tokens/test-app/acme", "routes", "origins", "heartbeat", "status.json"]) {
        const stat = statSync(join(world.stateDir, file));
        expect([stat.mode & 0o777, stat.gid], file).toEqual([0o640, SHARED_GID]);
      }
    } finally {
      await world.close();
    }
  });

  it("the runner's git reads tokens and asks for re-mints; others get nothing", async () => {
    const world = await World.create();
    try {
      chmodSync(world.dir, 0o755);
      await world.startKeeper({ stateGroup: SHARED_GID });
      expect(statSync(world.stateDir).mode & 0o777).toBe(0o750);
      expect(statSync(world.stateDir).gid).toBe(SHARED_GID);
      // Sticky: a member can remove or rename only its own requests.
      expect(statSync(join(world.stateDir, "requests")).mode & 0o1777).toBe(0o1770);
      const tokenFile = statSync(join(world.stateDir, "tokens", "test-app", "acme"));
      expect([tokenFile.mode & 0o777, tokenFile.gid]).toEqual([0o640, SHARED_GID]);

      const home = tempDir();
      chmodSync(home, 0o755);
      // The runner's copy of the shim, as install-shim makes it: the checkout itself may live in
      // a folder only its owner can enter (a private mktemp -d, root's home).
      const shimDir = join(home, "shim");
      mkdirSync(shimDir, { mode: 0o755 });
      for (const name of readdirSync(SHIM_DIR)) {
        copyFileSync(join(SHIM_DIR, name), join(shimDir, name));
        chmodSync(join(shimDir, name), 0o755);
      }
      const work = join(home, "work");
      mkdirSync(work);
      chownSync(work, RUNNER_UID, SHARED_GID);
      const asRunner = (args: string[], env: Record<string, string> = {}) =>
        execa("git", args, {
          cwd: work,
          env: gitEnv({ home: work, shimDir, stateDir: world.stateDir, env }),
          extendEnv: false,
          reject: false,
          uid: RUNNER_UID,
          gid: SHARED_GID,
        });
      const clone = await asRunner(["clone", "-q", world.repoUrl("acme/app"), "app"]);
      expect(clone.stderr).toBe("");
      expect(clone.exitCode).toBe(0);
      world.github.revokeAll();
      const fetch = await asRunner(["-C", "app", "fetch", "origin"]);
      expect(fetch.exitCode).toBe(0);
      expect(fetch.stderr).toContain("retrying with a new one");

      // A user outside the group reads nothing.
      const outsider = await execa("cat", [join(world.stateDir, "tokens", "test-app", "acme")], { reject: false, uid: RUNNER_UID, gid: RUNNER_UID - 1 });
      expect(outsider.exitCode).not.toBe(0);
    } finally {
      await world.close();
    }
  });
});
