import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AuditLineCost, AuditLineOptions } from "./audit-line-cost.ts";
import { FakeOidcIssuer } from "../test/fakes/fake-oidc-issuer.ts";
import { KeeperProcess } from "../test/support/keeper-process.ts";
import { makeTestCa } from "../test/support/test-ca.ts";
import { tempDir } from "../test/support/temp-dir.ts";
import { World } from "../test/support/world.ts";

export interface BrokerAgentsResult {
  agents: number;
  seconds: number;
  tokenLifetimeS: number;
  githubMints: number;
  mintsPerLifetime: number;
}

export interface BrokerResults {
  agents: BrokerAgentsResult[];
  latency: { rate: number; requests: number; p50Ms: number; p99Ms: number; errors: number };
  rssMb: number;
  bareNodeRssMb: number;
}

// The flags `git-token-keeper broker` re-executes itself with (src/cli/main.ts): V8's interpreter only.
const BROKER_V8_FLAGS = ["--max-semi-space-size=1", "--optimize-for-size", "--no-opt", "--no-maglev", "--no-sparkplug", "--single-threaded-gc"];

/**
 * (9) The broker's audit line through the redactor with 1 and with 10,000 minted tokens known
 * (the broker registers each token it mints): microseconds per line, in a Node.js run with the
 * broker's V8 flags, the counts alternating round by round. The target: the same cost.
 */
export function benchAuditLine(options: AuditLineOptions): AuditLineCost[] {
  const script = fileURLToPath(new URL("./audit-line-cost.ts", import.meta.url));
  const run = spawnSync(process.execPath, [...BROKER_V8_FLAGS, script, JSON.stringify(options)], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`bench/audit-line-cost.ts failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as AuditLineCost[];
}

function rssMb(pid: number): number {
  const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * (9) The broker: the App's token calls per token lifetime with 1, 10 and 100 agent keepers
 * (real keeper processes keeping one owner's token fresh through the broker), its latency
 * answering a cached token at a fixed request rate, and its resident memory beside a bare Node.js.
 */
export async function benchBroker(options: { agentCounts: number[]; lifetimeMs: number; lifetimes: number; rate: number; rateSeconds: number }): Promise<BrokerResults> {
  const world = await World.create({ tokenLifetimeMs: options.lifetimeMs, installations: [{ id: 11, login: "acme" }], audit: false });
  const issuer = new FakeOidcIssuer();
  await issuer.start();
  const ca = makeTestCa();
  const dir = tempDir("gtk-bench-broker-");
  writeFileSync(join(dir, "tls.crt"), ca.cert);
  writeFileSync(join(dir, "tls.key"), ca.key, { mode: 0o600 });
  const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
  const broker = await KeeperProcess.startBroker({
    dir,
    config: {
      listen: "127.0.0.1:0",
      tls: { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") },
      providers: [world.providerConfig({ owners: ["acme"] })],
      identities: [{ name: "cluster", issuer: issuer.issuer, audience: "git-token-keeper" }],
      policies: [{ identity: "cluster", claims: { sub: "system:serviceaccount:ci:*" }, gitUrl: world.gitUrl, owners: ["acme"] }],
      minRemaining: `${Math.floor(options.lifetimeMs / 3000)}s`,
      refreshBefore: "10m",
      ratePerIdentity: options.rate * 5,
    },
  });
  const port = Number(new URL(broker.brokerUrl).port);
  const agentsResults: BrokerAgentsResult[] = [];
  try {
    for (const count of options.agentCounts) {
      const keepers: KeeperProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          const agentDir = tempDir("gtk-bench-agent-");
          writeFileSync(join(agentDir, "identity"), await issuer.token({ sub: `system:serviceaccount:ci:agent-${i}` }, { expiresIn: "1h" }));
          keepers.push(
            await KeeperProcess.start({
              dir: agentDir,
              stateDir: join(agentDir, "state"),
              config: {
                refreshBefore: "10m",
                retryMin: "200ms",
                providers: [{ name: "fleet", type: "broker", url: `https://localhost:${port}`, gitUrl: world.gitUrl, owners: ["acme"], identityTokenFile: join(agentDir, "identity"), caFile: ca.caFile }],
              },
            }),
          );
        }
        const before = world.github.mintsFor("acme");
        const started = Date.now();
        await new Promise((r) => setTimeout(r, options.lifetimes * options.lifetimeMs));
        const seconds = (Date.now() - started) / 1000;
        const mints = world.github.mintsFor("acme") - before;
        agentsResults.push({ agents: count, seconds, tokenLifetimeS: options.lifetimeMs / 1000, githubMints: mints, mintsPerLifetime: mints / (seconds / (options.lifetimeMs / 1000)) });
      } finally {
        await Promise.all(keepers.map((k) => k.stop()));
      }
    }

    // Latency of a cached answer at a fixed rate, over kept-alive TLS connections.
    const identity = await issuer.token({ sub: "system:serviceaccount:ci:latency" }, { expiresIn: "1h" });
    const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: readFileSync(ca.caFile) });
    const ask = () =>
      new Promise<number>((resolve) => {
        const t0 = process.hrtime.bigint();
        const req = request({ host: "localhost", port, path: "/v1/token", method: "POST", agent, headers: { authorization: `Bearer ${identity}`, "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === 200 ? Number(process.hrtime.bigint() - t0) / 1e6 : -1));
        });
        req.on("error", () => resolve(-1));
        req.end(JSON.stringify({ gitUrl: world.gitUrl, owner: "acme" }));
      });
    await ask();
    const total = options.rate * options.rateSeconds;
    const pending: Promise<number>[] = [];
    const startedAt = Date.now();
    for (let i = 0; i < total; i++) {
      const due = startedAt + (i * 1000) / options.rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(ask());
    }
    const times = await Promise.all(pending);
    agent.destroy();
    const ok = times.filter((t) => t >= 0).sort((a, b) => a - b);
    const rss = rssMb(broker.child.pid as number);
    const bareRss = rssMb(bare.pid as number);
    return {
      agents: agentsResults,
      latency: { rate: options.rate, requests: total, p50Ms: percentile(ok, 50), p99Ms: percentile(ok, 99), errors: total - ok.length },
      rssMb: rss,
      bareNodeRssMb: bareRss,
    };
  } finally {
    bare.kill();
    await broker.stop();
    await issuer.stop();
    await world.close();
  }
}
