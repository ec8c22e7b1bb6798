import { spawn } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gitEnv } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/** Processes whose working directory is inside `dir`. */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`).startsWith(dir)) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/**
 * A cancelled build (Jenkins' abort, a runner's cancel, a deleted pod) signals the process it
 * started, here the shim alone, not its process group: git must stop at once and the shim die
 * of the same signal (as git would have: a shell script then stops), leaving no git behind. The
 * host here hangs for a minute.
 */
describe("signals sent to the shim reach git", () => {
  let world: World;
  let app: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    const work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const) {
    it(`${signal} to the shim of a hanging fetch: git stops, the shim dies of ${signal}, no git is left`, async () => {
      world.server.failNext(502, 1, /info\/refs$/, 60_000);
      const child = spawn("git", ["fetch", "origin"], {
        cwd: app,
        env: gitEnv({ home: world.home, shimDir: world.shimDir, stateDir: world.stateDir }),
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      // Wait until the request hangs at the server: git is running.
      for (let i = 0; i < 100 && !world.server.seen.some((s) => s.status === 502 && s.path.endsWith("/info/refs")); i++) await new Promise((r) => setTimeout(r, 50));
      world.server.seen.length = 0;
      expect(processesIn(app).length).toBeGreaterThan(1);
      child.kill(signal);
      const died = await new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, sig) => resolve(sig)));
      expect(died, stderr).toBe(signal);
      // git-remote-http and git itself end with the shim: nothing is left working in the repository.
      for (let i = 0; i < 50 && processesIn(app).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(processesIn(app)).toEqual([]);
      world.server.clearFaults();
    }, 30_000);
  }
  it("SIGTERM while the shim waits to retry a transient error: it dies of SIGTERM at once and retries nothing", async () => {
    world.server.failNext(502, 10, /info\/refs$/);
    const child = spawn("git", ["fetch", "origin"], {
      cwd: app,
      env: gitEnv({ home: world.home, shimDir: world.shimDir, stateDir: world.stateDir }),
      stdio: ["ignore", "ignore", "pipe"],
    });
    const refs = () => world.server.seen.filter((s) => s.path.endsWith("/info/refs")).length;
    world.server.seen.length = 0;
    while (refs() === 0) await new Promise((r) => setTimeout(r, 20));
    // git has been answered 502 and ends; the shim then waits about a second before retrying.
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    const died = await new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, sig) => resolve(sig)));
    expect(died).toBe("SIGTERM");
    expect(refs()).toBe(1);
    world.server.clearFaults();
  }, 30_000);

  // bash stops a script on a Ctrl-C only when the command it waited for died of SIGINT; a
  // shim that exited 130 let the script carry on with its next command.
  for (const shell of ["bash", "dash"]) {
    it(`Ctrl-C (SIGINT to the process group) during a fetch stops a ${shell} script, as with plain git`, async () => {
      const outcomes: string[] = [];
      for (const shim of [false, true]) {
        world.server.failNext(502, 1, /info\/refs$/, 60_000);
        world.server.seen.length = 0;
        const env = shim ? gitEnv({ home: world.home, shimDir: world.shimDir, stateDir: world.stateDir }) : gitEnv({ home: world.home, stateDir: world.stateDir });
        const child = spawn(shell, ["-c", "git fetch origin; echo carried-on"], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
        let stdout = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        for (let i = 0; i < 100 && !world.server.seen.some((s) => s.path.endsWith("/info/refs")); i++) await new Promise((r) => setTimeout(r, 50));
        await new Promise((r) => setTimeout(r, 100));
        process.kill(-(child.pid as number), "SIGINT");
        await new Promise((resolve) => child.on("exit", resolve));
        outcomes.push(stdout.includes("carried-on") ? "carried on" : "stopped");
        world.server.clearFaults();
      }
      expect(outcomes).toEqual(["stopped", "stopped"]);
    }, 60_000);
  }
});
