import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { KeeperProcess } from "../test/support/keeper-process.ts";
import { tempDir } from "../test/support/temp-dir.ts";
import { World } from "../test/support/world.ts";

export interface LoadResults {
  processes: number;
  seconds: number;
  tokenLifetimeS: number;
  runs: number;
  failures: number;
  mintsPerScopePerLifetime: number;
}

/** (5) Many git processes for a while, with tokens that live a few seconds. */
export async function benchRotation(options: { processes: number; seconds: number; lifetimeMs: number }): Promise<LoadResults> {
  const world = await World.create({ tokenLifetimeMs: options.lifetimeMs, installations: [{ id: 11, login: "acme" }] });
  try {
    await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const before = world.github.mintsFor("acme");
    const work = tempDir();
    const deadline = Date.now() + options.seconds * 1000;
    let runs = 0;
    let failures = 0;
    const worker = async () => {
      while (Date.now() < deadline) {
        const r = await world.git(["ls-remote", world.repoUrl("acme/app")], work);
        runs++;
        if (r.exitCode !== 0) failures++;
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: options.processes }, worker));
    const seconds = (Date.now() - started) / 1000;
    const mints = world.github.mintsFor("acme") - before;
    // The lifetime tokens really had: GitHub's expires_at has whole seconds.
    const issued = [...world.github.tokens.values()].filter((t) => t.owner === "acme");
    const lifetimeMs = issued.reduce((sum, t) => sum + (t.expiresAt - t.issuedAt), 0) / issued.length;
    return { processes: options.processes, seconds, tokenLifetimeS: lifetimeMs / 1000, runs, failures, mintsPerScopePerLifetime: mints / (seconds / (lifetimeMs / 1000)) };
  } finally {
    await world.close();
  }
}

export interface ScaleResults {
  installations: number;
  startMs: number;
  peakConcurrentRequests: number;
  mintConcurrency: number;
  /** The daemon's resident memory after `idleSeconds` idle past its first mints. */
  rssMb: number;
  /** An idle bare Node.js started with the daemon, read at the same moment. */
  bareNodeRssMb: number;
  idleSeconds: number;
  idleCpuPercent: number | null;
}

function rssMb(pid: number): number {
  const line = /VmRSS:\s+(\d+) kB/.exec(readText(`/proc/${pid}/status`));
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

function cpuTicks(pid: number): number {
  const fields = readText(`/proc/${pid}/stat`).split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * (6) The daemon with many installations: start time, API concurrency, resident memory after
 * `idleSeconds` idle (beside an idle bare Node.js started with it), and CPU over `cpuSeconds`.
 */
export async function benchScale(installations: number, idleSeconds: number, cpuSeconds: number): Promise<ScaleResults> {
  const owners = Array.from({ length: installations }, (_, i) => `org${i}`);
  const world = await World.create({ installations: owners.map((login, i) => ({ id: 1000 + i, login })), audit: false });
  const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
  try {
    const mintConcurrency = 8;
    const started = Date.now();
    // Started as users start it (`git-token-keeper run`), so with the V8 flags `run` gives itself.
    const keeper = await KeeperProcess.start({
      dir: tempDir(),
      stateDir: world.stateDir,
      config: { mintConcurrency, providers: [world.providerConfig({ owners })] },
    });
    const startMs = Date.now() - started;
    if (world.github.mintCount < installations) throw new Error(`only ${world.github.mintCount} of ${installations} minted`);
    const pid = keeper.child.pid as number;
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const rss = rssMb(pid);
    const bareRss = rssMb(bare.pid as number);
    let idleCpuPercent: number | null = null;
    if (cpuSeconds > 0) {
      const t0 = cpuTicks(pid);
      await new Promise((r) => setTimeout(r, cpuSeconds * 1000));
      // Linux counts in clock ticks of 1/100 s.
      idleCpuPercent = ((cpuTicks(pid) - t0) / 100 / cpuSeconds) * 100;
    }
    await keeper.stop();
    return { installations, startMs, peakConcurrentRequests: world.github.peakInFlight, mintConcurrency, rssMb: rss, bareNodeRssMb: bareRss, idleSeconds, idleCpuPercent };
  } finally {
    bare.kill();
    await world.close();
  }
}
