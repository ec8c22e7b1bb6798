import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { KeeperProcess } from "../support/keeper-process.ts";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `one daemon per state dir (${fileGroup(import.meta.url)})`;

/**
 * One daemon per state dir, whatever the interleaving: daemons restarted together after a crash
 * (as `Restart=on-failure` units or sidecars do), and a duplicate refused while one runs. The
 * one that runs keeps its files; a refused daemon touches none of them.
 */
describe("the daemon lock, and signals while starting", () => {
  let world: World;
  const config = () => ({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", providers: [world.providerConfig()] });
  const start = (pidNamespace = false) => KeeperProcess.start({ dir: world.dir, stateDir: world.stateDir, config: config(), waitReady: false, pidNamespace });

  beforeAll(async () => {
    world = await World.create();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /** Resolves "ready" or "refused" for a daemon, once it has shown which. */
  async function outcome(k: KeeperProcess): Promise<"ready" | "refused"> {
    const refused = k.exited.then(() => "refused" as const);
    const ready = k.waitForLog(/"message":"ready"/, 30_000).then(
      () => "ready" as const,
      () => "refused" as const,
    );
    return Promise.race([ready, refused]);
  }

  function pidFile(): { pid: number; id: string } {
    const [pid, id] = readFileSync(join(world.stateDir, "daemon.pid"), "utf8").trim().split(" ");
    return { pid: Number(pid), id: id ?? "" };
  }

  for (const across of [false, true]) {
    const where = across ? "each in a PID namespace of its own (containers of a pod)" : "in one PID namespace";
    scenario(group, `three daemons started together after a crash, 20 rounds, ${where}`, "exactly one runs; the others exit 1 naming the running one; its pid file, status and lock are its own", async () => {
      if (across && !haveTool("unshare", "unshare is missing, so daemons in separate PID namespaces are not tested")) return "skipped: no unshare";
      let survivor = await start(across);
      expect(await outcome(survivor)).toBe("ready");
      for (let round = 0; round < 20; round++) {
        await survivor.kill();
        const keepers = await Promise.all([start(across), start(across), start(across)]);
        const outcomes = await Promise.all(keepers.map(outcome));
        expect(outcomes.filter((o) => o === "ready"), `round ${round}: ${outcomes.join(", ")}`).toHaveLength(1);
        const winner = keepers[outcomes.indexOf("ready")] as KeeperProcess;
        for (const k of keepers) if (k !== winner) expect(await k.exited).not.toBe(0);
        for (const k of keepers) if (k !== winner) expect(k.log).toContain("another git-token-keeper daemon");
        // The refused ones left the winner's pid file, status and lock as it wrote them.
        const { pid, id } = pidFile();
        expect(pid).toBe(across ? 1 : winner.child.pid);
        const status = JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { state: string; pid: number; daemonId: string };
        expect([status.state, status.pid, status.daemonId]).toEqual(["running", pid, id]);
        const locks = readdirSync(world.stateDir).filter((n) => n.startsWith("daemon.lock"));
        expect(locks).toHaveLength(1);
        expect(readFileSync(join(world.stateDir, locks[0] as string), "utf8")).toContain(id);
        survivor = winner;
      }
      await survivor.stop();
      return "20 rounds: one ready and two refused each time; pid file, status.json and the one lock file named the winner";
    }, 300_000);
  }

  scenario(group, "a duplicate started while one runs", "refused, and the running daemon's pid file and status are left as they were; a clean stop removes only its own files", async () => {
    const running = await start();
    expect(await outcome(running)).toBe("ready");
    const before = { pid: readFileSync(join(world.stateDir, "daemon.pid"), "utf8"), status: JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { state: string } };
    const duplicate = await start();
    expect(await duplicate.exited).toBe(1);
    expect(duplicate.log).toContain("another git-token-keeper daemon");
    expect(readFileSync(join(world.stateDir, "daemon.pid"), "utf8")).toBe(before.pid);
    expect((JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { state: string }).state).toBe("running");
    expect(before.status.state).toBe("running");
    await running.stop();
    // A clean stop removes its own pid file and lock.
    expect(readdirSync(world.stateDir).filter((n) => n === "daemon.pid" || n.startsWith("daemon.lock"))).toEqual([]);
    return "exit 1; pid file and status unchanged; after the stop no pid or lock file";
  }, 60_000);
  scenario(group, "SIGHUP while the daemon is still starting (its first mint hangs)", "held until it runs, then the config is reloaded; the process never dies of it", async () => {
    world.github.setMode("hang");
    const k = await KeeperProcess.start({ dir: world.dir, stateDir: world.stateDir, config: { ...config(), providers: [world.providerConfig({ timeout: "2s" })] }, waitReady: false });
    try {
      await k.waitForLog(/"message":"daemon started"/, 20_000);
      k.child.kill("SIGHUP");
      await k.waitForLog(/SIGHUP while starting/, 10_000);
      world.github.setMode("up");
      await k.waitForLog(/"message":"ready"/, 30_000);
      await k.waitForLog(/"message":"config reloaded"/, 10_000);
      expect(k.child.exitCode).toBeNull();
    } finally {
      world.github.setMode("up");
      await k.stop();
    }
    return "logged 'SIGHUP while starting', then ready and 'config reloaded'";
  }, 60_000);
  scenario(group, "SIGTERM while the daemon is still starting (its first mint hangs)", "it stops cleanly: exit 0, its pid file and lock removed, status stopped", async () => {
    world.github.setMode("hang");
    const k = await KeeperProcess.start({ dir: world.dir, stateDir: world.stateDir, config: { ...config(), providers: [world.providerConfig({ timeout: "5s" })] }, waitReady: false });
    try {
      await k.waitForLog(/"message":"daemon started"/, 20_000);
      k.child.kill("SIGTERM");
      expect(await k.exited).toBe(0);
    } finally {
      world.github.setMode("up");
    }
    expect(readdirSync(world.stateDir).filter((n) => n === "daemon.pid" || n.startsWith("daemon.lock"))).toEqual([]);
    expect((JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { state: string }).state).toBe("stopped");
    return "exit 0; no pid or lock file left; status stopped";
  }, 60_000);
});
