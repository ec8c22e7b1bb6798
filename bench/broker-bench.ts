import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { parseAllDocuments } from "yaml";
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

/** The fake GitHub and OIDC issuer, and a broker over TLS serving acme to the cluster's service accounts. */
async function benchBrokerWorld(lifetimeMs: number, ratePerIdentity: number): Promise<{ world: World; issuer: FakeOidcIssuer; ca: ReturnType<typeof makeTestCa>; broker: KeeperProcess }> {
  const world = await World.create({ tokenLifetimeMs: lifetimeMs, installations: [{ id: 11, login: "acme" }], audit: false });
  const issuer = new FakeOidcIssuer();
  await issuer.start();
  const ca = makeTestCa();
  const dir = tempDir("gtk-bench-broker-");
  writeFileSync(join(dir, "tls.crt"), ca.cert);
  writeFileSync(join(dir, "tls.key"), ca.key, { mode: 0o600 });
  const broker = await KeeperProcess.startBroker({
    dir,
    config: {
      listen: "127.0.0.1:0",
      tls: { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") },
      providers: [world.providerConfig({ owners: ["acme"] })],
      identities: [{ name: "cluster", issuer: issuer.issuer, audience: "git-token-keeper" }],
      policies: [{ identity: "cluster", claims: { sub: "system:serviceaccount:ci:*" }, gitUrl: world.gitUrl, owners: ["acme"] }],
      minRemaining: `${Math.floor(lifetimeMs / 3000)}s`,
      refreshBefore: "10m",
      ratePerIdentity,
    },
  });
  return { world, issuer, ca, broker };
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
  const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
  const { world, issuer, ca, broker } = await benchBrokerWorld(options.lifetimeMs, options.rate * 5);
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

export interface BrokerAbuseResults {
  tokenLifetimeS: number;
  /** The App's token calls per token lifetime with 1 agent, after 1,000 one-off scopes were asked. */
  oneAgentAfterOneOffs: BrokerAgentsResult;
  /** Resident memory after 10,000 asks of distinct scopes (20 identities, 500 each). */
  rssAfterDistinctScopesMb: number;
  distinctScopeAsks: number;
  /** The most resident memory while 2,000 TLS connections were opened and left idle. */
  peakRssIdleConnectionsMb: number;
  idleConnections: number;
  /** The broker Deployment's memory limit (deploy/kubernetes/broker/broker.yaml). */
  deploymentLimitMb: number;
}

/** The memory limit of the broker container in the Kubernetes manifest, in MB. */
function deploymentMemoryLimitMb(): number {
  const text = readFileSync(fileURLToPath(new URL("../deploy/kubernetes/broker/broker.yaml", import.meta.url)), "utf8");
  for (const doc of parseAllDocuments(text)) {
    const manifest = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { name?: string; resources?: { limits?: { memory?: string } } }[] } } } };
    if (manifest?.kind !== "Deployment") continue;
    const limit = manifest.spec?.template?.spec?.containers?.[0]?.resources?.limits?.memory ?? "";
    const m = /^(\d+)(Mi|Gi|M|G)$/.exec(limit);
    if (m) return Number(m[1]) * ({ Mi: 1.048576, Gi: 1073.741824, M: 1, G: 1000 } as Record<string, number>)[m[2] as string]!;
  }
  return Number.NaN;
}

/**
 * (9) The broker under abuse, as issue 25 measures it: the App's token calls per lifetime with
 * one agent after 1,000 one-off scopes were asked (target: as with none); resident memory after
 * 10,000 asks of distinct scopes and while 2,000 TLS connections sit idle (target: under the
 * Deployment's memory limit).
 */
export async function benchBrokerAbuse(options: { lifetimeMs: number; lifetimes: number; distinctAsks: number; idleConnections: number }): Promise<BrokerAbuseResults> {
  const { world, issuer, ca, broker } = await benchBrokerWorld(options.lifetimeMs, 10_000);
  const port = Number(new URL(broker.brokerUrl).port);
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: readFileSync(ca.caFile) });
  const identities = await Promise.all(Array.from({ length: 20 }, (_, i) => issuer.token({ sub: `system:serviceaccount:ci:abuser-${i}` }, { expiresIn: "1h" })));
  const ask = (identity: string, repository: string) =>
    new Promise<number>((resolve) => {
      const req = request({ host: "localhost", port, path: "/v1/token", method: "POST", agent, headers: { authorization: `Bearer ${identity}`, "content-type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", () => resolve(-1));
      req.end(JSON.stringify({ gitUrl: world.gitUrl, owner: "acme", repository }));
    });
  // n asks of distinct repositories, spread over the identities, 16 at a time.
  let asked = 0;
  const askDistinct = async (n: number) => {
    const start = asked;
    asked += n;
    let next = start;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < start + n) {
          const i = next++;
          await ask(identities[i % identities.length] as string, `one-off-${i}`);
        }
      }),
    );
  };
  try {
    await askDistinct(1_000);
    // One agent keeping its owner's token for some lifetimes: every App call counts.
    const agentDir = tempDir("gtk-bench-agent-");
    writeFileSync(join(agentDir, "identity"), await issuer.token({ sub: "system:serviceaccount:ci:agent" }, { expiresIn: "1h" }));
    const before = world.github.mintCount;
    const started = Date.now();
    const keeper = await KeeperProcess.start({
      dir: agentDir,
      stateDir: join(agentDir, "state"),
      config: { refreshBefore: "10m", retryMin: "200ms", providers: [{ name: "fleet", type: "broker", url: `https://localhost:${port}`, gitUrl: world.gitUrl, owners: ["acme"], identityTokenFile: join(agentDir, "identity"), caFile: ca.caFile }] },
    });
    await new Promise((r) => setTimeout(r, options.lifetimes * options.lifetimeMs));
    await keeper.stop();
    const seconds = (Date.now() - started) / 1000;
    const mints = world.github.mintCount - before;
    const oneAgentAfterOneOffs = { agents: 1, seconds, tokenLifetimeS: options.lifetimeMs / 1000, githubMints: mints, mintsPerLifetime: mints / (seconds / (options.lifetimeMs / 1000)) };

    await askDistinct(options.distinctAsks - 1_000);
    const rssAfterDistinctScopesMb = rssMb(broker.child.pid as number);
    agent.destroy();

    // Idle TLS connections: handshaked, then nothing; the peak of the broker's memory meanwhile.
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(broker.child.pid as number));
    }, 100);
    const sockets: { destroy(): void }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < options.idleConnections) {
          next++;
          await new Promise<void>((resolve) => {
            const socket = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: readFileSync(ca.caFile) }, () => resolve());
            socket.on("error", () => resolve());
            sockets.push(socket);
          });
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1_000));
    clearInterval(sampler);
    peak = Math.max(peak, rssMb(broker.child.pid as number));
    for (const s of sockets) s.destroy();
    return {
      tokenLifetimeS: options.lifetimeMs / 1000,
      oneAgentAfterOneOffs,
      rssAfterDistinctScopesMb,
      distinctScopeAsks: options.distinctAsks,
      peakRssIdleConnectionsMb: peak,
      idleConnections: options.idleConnections,
      deploymentLimitMb: deploymentMemoryLimitMb(),
    };
  } finally {
    agent.destroy();
    await broker.stop();
    await issuer.stop();
    await world.close();
  }
}
