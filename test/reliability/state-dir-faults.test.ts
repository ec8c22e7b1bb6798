import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";
import { fileGroup, scenario, skippedScenario } from "./scenario.ts";

const group = `state dir faults (${fileGroup(import.meta.url)})`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = tempDir("gtk-mount-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("the state dir is deleted, read-only or full", () => {
  let world: World;
  let app: string;
  const mountable = canMount();

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: 120_000 });
    const work = tempDir();
    app = join(work, "app");
  });

  afterAll(async () => {
    world.github.tokenLifetimeMs = 120_000;
    await world.close();
    removeTempDirs();
  });

  const tokenIn = (stateDir: string) => readFileSync(join(stateDir, "tokens", "test-app", "acme"), "utf8").match(/^token=(.*)$/m)?.[1];

  scenario(group, "state dir deleted while the daemon runs", "recreated (and checked) on the next write; git works again", async () => {
    const keeper = await world.startKeeper();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], world.dir));
    rmSync(world.stateDir, { recursive: true, force: true });
    const refresh = await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir }).catch(() => undefined);
    void refresh;
    // No requests folder to drop a refresh into: the next scheduled write (the heartbeat) or mint recreates it.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        readFileSync(join(world.stateDir, "status.json"));
        break;
      } catch {
        await sleep(200);
      }
    }
    expect((await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir })).exitCode).toBe(0);
    await must(world.git(["fetch", "-q", "origin"], app));
    await keeper.stop();
    return "status.json back within the heartbeat; refresh exit 0; fetch exit 0";
  }, 60_000);

  async function onTmpfs(size: string, body: (stateDir: string, keeper: KeeperProcess) => Promise<string>): Promise<string> {
    const mountPoint = tempDir("gtk-statefs-");
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", mountPoint]);
    try {
      const stateDir = join(mountPoint, "state");
      mkdirSync(stateDir, { mode: 0o700 });
      // Ten-second tokens: the daemon's own refresh (after 5 s) meets the fault.
      world.github.tokenLifetimeMs = 10_000;
      const keeper = await KeeperProcess.start({ dir: tempDir(), stateDir, config: { retryMin: "200ms", retryMax: "1s", providers: [world.providerConfig({ owners: ["acme"] })] } });
      try {
        return await body(stateDir, keeper);
      } finally {
        await keeper.stop();
      }
    } finally {
      execFileSync("umount", ["-l", mountPoint]);
    }
  }

  (mountable ? scenario : skippedScenario)(group, "state dir read-only (tmpfs remounted ro)", "a clear error; the old token keeps serving; recovery when writable again", () =>
    onTmpfs("1m", async (stateDir, keeper) => {
      const old = tokenIn(stateDir);
      execFileSync("mount", ["-o", "remount,ro", join(stateDir, "..")]);
      await keeper.waitForLog(/EROFS \(the state dir is not writable[^\n]*"message":"mint failed"/, 15_000);
      expect(tokenIn(stateDir)).toBe(old);
      const fetch = await world.git(["ls-remote", world.repoUrl("acme/app")], world.dir, { env: { GIT_TOKEN_KEEPER_DIR: stateDir } });
      expect(fetch.exitCode).toBe(0);
      execFileSync("mount", ["-o", "remount,rw", join(stateDir, "..")]);
      await keeper.waitForLog(/token source recovered/, 15_000);
      expect(tokenIn(stateDir)).not.toBe(old);
      const error = keeper.records().find((r) => r.message === "mint failed" && String(r.error ?? "").includes("EROFS"))?.error;
      return `"${String(error).replace(/'[^']*'/, "'…'")}"; old token kept and served; recovered once writable`;
    }),
  );

  (mountable ? scenario : skippedScenario)(group, "state dir full (ENOSPC: a tmpfs out of inodes)", "as above", () =>
    onTmpfs("1m,nr_inodes=64", async (stateDir, keeper) => {
      const old = tokenIn(stateDir);
      // Every write makes a temp file first: with no inode left, each one fails with ENOSPC.
      const fillers = join(stateDir, "..", "fill");
      mkdirSync(fillers);
      let made = 0;
      try {
        for (;;) writeFileSync(join(fillers, String(made++)), "");
      } catch {
        // Full: what we want.
      }
      await keeper.waitForLog(/ENOSPC \(the state dir's file system is full[^\n]*"message":"mint failed"/, 15_000);
      expect(tokenIn(stateDir)).toBe(old);
      const error = keeper.records().find((r) => r.message === "mint failed" && String(r.error ?? "").includes("ENOSPC"))?.error;
      rmSync(fillers, { recursive: true });
      await keeper.waitForLog(/token source recovered/, 15_000);
      expect(tokenIn(stateDir)).not.toBe(old);
      return `"${String(error).replace(/'[^']*'/, "'…'")}"; old token kept; recovered when space came back`;
    }),
  );
});
