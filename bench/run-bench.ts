// `npm run bench [-- --check] [-- --quick]`: what users pay for git-token-keeper, measured side by
// side with plain git and the floors on this machine in one run. Writes a table to stdout,
// every figure to bench-results/latest.json, and the table into docs/performance.md.
// --check exits 1 when a target is missed; --quick runs fewer rounds (for trying things out).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { removeTempDirs, tempDir } from "../test/support/temp-dir.ts";
import { World } from "../test/support/world.ts";
import { benchLocal } from "./local-bench.ts";
import { benchRotation, benchScale, type ScaleResults } from "./load-bench.ts";
import { benchNetwork } from "./network-bench.ts";
import { benchAuditLine, benchBroker, benchBrokerAbuse, type BrokerAgentsResult } from "./broker-bench.ts";
import type { AuditLineCost } from "./audit-line-cost.ts";
import { benchImage } from "./image-bench.ts";
import { timeAlternating, type Timed } from "./timing.ts";
import { join } from "node:path";
import { CLI } from "../test/support/keeper-process.ts";
import { SHIM_DIR } from "../test/support/run-git.ts";

const args = new Set(process.argv.slice(2));
const quick = args.has("--quick");
const root = fileURLToPath(new URL("..", import.meta.url));

interface Check {
  what: string;
  target: string;
  measured: string;
  ok: boolean;
}

const checks: Check[] = [];
const check = (what: string, target: string, measured: string, ok: boolean) => checks.push({ what, target, measured, ok });
const ms = (n: number) => `${n.toFixed(2)} ms`;
const by = (list: Timed[], name: string) => list.find((t) => t.name === name)?.medianMs ?? Number.NaN;

/** Median peak resident memory (MB) of 5 runs of each command, or undefined without GNU time. */
function peakRssMb(commands: [string, string, string[]][], env: NodeJS.ProcessEnv): { name: string; mb: number }[] | undefined {
  if (!existsSync("/usr/bin/time")) return undefined;
  return commands.map(([name, command, argv]) => {
    const runs = Array.from({ length: 5 }, () => {
      const r = spawnSync("/usr/bin/time", ["-f", "%M", command, ...argv], { env, encoding: "utf8" });
      return Number(r.stderr.trim().split("\n").pop()) / 1024;
    }).sort((a, b) => a - b);
    return { name, mb: runs[2] as number };
  });
}

function table(title: string, rows: Timed[]): string {
  const base = rows[0]?.medianMs ?? 0;
  const lines = [`### ${title}`, "", "| variant | median | p10 | p90 | vs first row |", "| --- | --- | --- | --- | --- |"];
  for (const r of rows) lines.push(`| ${r.name} | ${ms(r.medianMs)} | ${ms(r.p10Ms)} | ${ms(r.p90Ms)} | ${r.medianMs - base >= 0 ? "+" : ""}${ms(r.medianMs - base)} |`);
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const dir = tempDir("gtk-bench-");
  const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
  log("1-2: local commands and credential helper");
  const local = await benchLocal(dir, quick ? { revParse: 100, status: 30, helper: 100 } : { revParse: 500, status: 120, helper: 400 });
  for (const [name, list] of [["git rev-parse HEAD", local.revParse], ["git status (5,000 files)", local.status]] as const) {
    for (const variant of ["shim, 1 provider", "shim, 50 providers, 1 host"]) {
      const shim = by(list, variant);
      const plain = by(list, "plain git");
      const floor = by(list, "floor: exec git \"$@\"");
      check(`${name}, ${variant}: over plain git`, "≤ 0.60 ms", ms(shim - plain), shim - plain <= 0.6);
      check(`${name}, ${variant}: over the floor`, "≤ 0.15 ms", ms(shim - floor), shim - floor <= 0.15);
    }
  }
  const helper = by(local.helper, "keeper helper, 1 provider");
  const helperFloor = by(local.helper, "floor: sh helper printing a file");
  check("helper get", "≤ 2 ms", ms(helper), helper <= 2);
  check("helper get vs the floor helper", "≤ 1.1×", `${(helper / helperFloor).toFixed(2)}×`, helper <= 1.1 * helperFloor);

  log("3-4: network commands and recovery");
  const world = await World.create();
  await world.startKeeper({ remintInterval: "1s" });
  const network = await benchNetwork(world, quick ? 20 : 80);
  log("7: the health probe, against the running daemon");
  const probeEnv = { PATH: process.env.PATH ?? "", GIT_TOKEN_KEEPER_DIR: world.stateDir };
  const probe = await timeAlternating(
    [
      { name: "floor: node -e 0", command: process.execPath, args: ["-e", "0"], options: { env: probeEnv } },
      { name: "git-token-keeper status --json", command: process.execPath, args: [CLI, "status", "--json"], options: { env: probeEnv } },
      { name: "sh probe (HEALTHCHECK and pod probes)", command: join(SHIM_DIR, "git-token-keeper-probe"), args: [], options: { env: probeEnv } },
    ],
    quick ? 20 : 100,
  );
  // Peak resident memory of one run of each (GNU time's %M, the largest of the process tree).
  const probeMemory = peakRssMb(
    [
      ["floor: node -e 0", process.execPath, ["-e", "0"]],
      ["git-token-keeper status --json", process.execPath, [CLI, "status", "--json"]],
      ["sh probe (HEALTHCHECK and pod probes)", join(SHIM_DIR, "git-token-keeper-probe"), []],
    ],
    probeEnv,
  );
  await world.close();
  if (probeMemory) {
    const probeMb = probeMemory.find((m) => m.name.startsWith("sh probe"))?.mb ?? Number.NaN;
    check("the probe's peak resident memory vs a bare node -e 0", "≤ 0.25×", `${probeMb.toFixed(1)} MB vs ${probeMemory[0]?.mb.toFixed(1)} MB`, probeMb <= 0.25 * (probeMemory[0]?.mb ?? 0));
  }
  const nodeFloor = by(probe, "floor: node -e 0");
  check("status --json vs a bare node -e 0", "≤ 2×", `${(by(probe, "git-token-keeper status --json") / nodeFloor).toFixed(2)}×`, by(probe, "git-token-keeper status --json") <= 2 * nodeFloor);
  check("the probe the image and the pods run vs a bare node -e 0", "≤ 1×", `${(by(probe, "sh probe (HEALTHCHECK and pod probes)") / nodeFloor).toFixed(2)}×`, by(probe, "sh probe (HEALTHCHECK and pod probes)") <= nodeFloor);
  for (const [name, list] of [["ls-remote", network.lsRemote], ["fetch", network.fetch]] as const) {
    const plain = by(list, "plain git, token in URL");
    const shim = by(list, "through the shim");
    const allowed = Math.max(plain * 0.05, 3);
    check(`git ${name} through the shim`, `≤ +5% or +3 ms (+${ms(allowed)})`, `+${ms(shim - plain)}`, shim - plain <= allowed);
  }
  check("push after every token is revoked", "< 1000 ms extra", `+${ms(network.recovery.extraMs)}`, network.recovery.extraMs < 1000);

  log("5: rotation under load");
  const load = await benchRotation(quick ? { processes: 16, seconds: 15, lifetimeMs: 5_000 } : { processes: 64, seconds: 60, lifetimeMs: 5_000 });
  check(`${load.processes} concurrent git processes for ${load.seconds.toFixed(0)} s, ${load.tokenLifetimeS.toFixed(1)} s tokens: failures`, "0", String(load.failures), load.failures === 0);
  check("mints per scope per token lifetime", "≤ 2", load.mintsPerScopePerLifetime.toFixed(2), load.mintsPerScopePerLifetime <= 2);

  log("6: daemon scale");
  // Resident memory is read after 30 s idle past the first mints (5 s with --quick), beside an
  // idle bare Node.js started at the same time; idle CPU over the next 60 s at 1,000.
  const idle = quick ? 5 : 30;
  const scale = [];
  for (const n of [1, 100, 1000]) scale.push(await benchScale(n, idle, n === 1000 ? (quick ? 10 : 60) : 0));
  const [one, , big] = scale as [ScaleResults, ScaleResults, ScaleResults];
  const ratio = (s: ScaleResults) => s.rssMb / s.bareNodeRssMb;
  const rssText = (s: ScaleResults) => `${s.rssMb.toFixed(1)} MB vs ${s.bareNodeRssMb.toFixed(1)} MB (${ratio(s).toFixed(2)}×)`;
  check(`1 installation: resident memory, ${idle} s idle, vs an idle bare node`, "≤ 1.5×", rssText(one), ratio(one) <= 1.5);
  check(`1,000 installations: resident memory, ${idle} s idle, vs an idle bare node`, "≤ 2.5×", rssText(big), ratio(big) <= 2.5);
  check("1,000 installations: CPU while idle", "< 0.5%", `${big.idleCpuPercent?.toFixed(2)}%`, (big.idleCpuPercent ?? 100) < 0.5);
  for (const s of scale) check(`${s.installations} installations: peak concurrent API requests`, `≤ mintConcurrency (${s.mintConcurrency})`, String(s.peakConcurrentRequests), s.peakConcurrentRequests <= s.mintConcurrency);

  log("9: the broker");
  const brokerBench = await benchBroker(quick ? { agentCounts: [1, 10, 30], lifetimeMs: 9_000, lifetimes: 2, rate: 200, rateSeconds: 5 } : { agentCounts: [1, 10, 100], lifetimeMs: 12_000, lifetimes: 3, rate: 200, rateSeconds: 15 });
  const fewest = brokerBench.agents[0] as BrokerAgentsResult;
  const most = brokerBench.agents.at(-1) as BrokerAgentsResult;
  check(`the App's token calls per token lifetime, ${most.agents} agents vs ${fewest.agents}`, "≤ 1.25×", `${most.mintsPerLifetime.toFixed(2)} vs ${fewest.mintsPerLifetime.toFixed(2)}`, most.mintsPerLifetime <= 1.25 * fewest.mintsPerLifetime);
  check(`the broker answering a cached token at ${brokerBench.latency.rate} requests/s: p99`, "≤ 25 ms, no errors", `${ms(brokerBench.latency.p99Ms)}, ${brokerBench.latency.errors} errors`, brokerBench.latency.p99Ms <= 25 && brokerBench.latency.errors === 0);
  check("the broker's resident memory after that vs an idle bare node", "≤ 2.5×", `${brokerBench.rssMb.toFixed(1)} MB vs ${brokerBench.bareNodeRssMb.toFixed(1)} MB`, brokerBench.rssMb <= 2.5 * brokerBench.bareNodeRssMb);
  const abuse = await benchBrokerAbuse(quick ? { lifetimeMs: 9_000, lifetimes: 2, distinctAsks: 3_000, idleConnections: 500 } : { lifetimeMs: 12_000, lifetimes: 3, distinctAsks: 10_000, idleConnections: 2_000 });
  const alone = abuse.oneAgentAfterOneOffs;
  check("the App's token calls per lifetime, 1 agent after 1,000 one-off scopes vs 1 agent alone", "≤ 1.25×", `${alone.mintsPerLifetime.toFixed(2)} vs ${fewest.mintsPerLifetime.toFixed(2)}`, alone.mintsPerLifetime <= 1.25 * fewest.mintsPerLifetime);
  check(`the broker's resident memory after ${abuse.distinctScopeAsks.toLocaleString("en")} asks of distinct scopes`, `< the Deployment's limit (${abuse.deploymentLimitMb.toFixed(0)} MB)`, `${abuse.rssAfterDistinctScopesMb.toFixed(1)} MB`, abuse.rssAfterDistinctScopesMb < abuse.deploymentLimitMb);
  check(`the broker's resident memory with ${abuse.idleConnections.toLocaleString("en")} idle TLS connections (peak)`, `< the Deployment's limit (${abuse.deploymentLimitMb.toFixed(0)} MB)`, `${abuse.peakRssIdleConnectionsMb.toFixed(1)} MB`, abuse.peakRssIdleConnectionsMb < abuse.deploymentLimitMb);
  const auditLine = benchAuditLine({ known: [1, 10_000], rounds: quick ? 10 : 30, linesPerRound: 200 });
  const [oneKnown, manyKnown] = auditLine as [AuditLineCost, AuditLineCost];
  const us = (c: AuditLineCost) => `${c.usPerLine.toFixed(1)} µs`;
  check("audit-line cost with 10,000 tokens known vs with 1 token known", "≤ 2×", `${us(manyKnown)} vs ${us(oneKnown)} (${(manyKnown.usPerLine / oneKnown.usPerLine).toFixed(2)}×)`, manyKnown.usPerLine <= 2 * oneKnown.usPerLine);

  log("8: the image");
  const image = benchImage();
  if (image.ownLayersMb !== undefined) check("the image's own layers (over its base)", "≤ 30 MB", `${image.ownLayersMb.toFixed(1)} MB`, image.ownLayersMb <= 30);

  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    git: execFileSync("git", ["--version"], { encoding: "utf8" }).trim(),
    date: new Date().toISOString(),
    quick,
  };
  const report = [
    `Machine: ${machine.cpu}, ${machine.cores} cores; ${machine.git}; Node.js ${machine.node}; ${machine.date}${quick ? " (--quick)" : ""}.`,
    "",
    table("1. A local command: `git rev-parse HEAD`", local.revParse),
    table("1. A local command: `git status` in a repository of 5,000 files", local.status),
    table("2. Credential helper `get` for a configured host", local.helper),
    table("3. `git ls-remote` against the local git server", network.lsRemote),
    table("3. `git fetch` (nothing new) against the local git server", network.fetch),
    `### 4. Recovery after every token is revoked\n\nNormal push ${ms(network.recovery.normalPushMs)}; push right after revocation ${ms(network.recovery.pushAfterRevocationMs)} (+${ms(network.recovery.extraMs)}).\n`,
    `### 5. Rotation under load\n\n${load.processes} git processes in a loop for ${load.seconds.toFixed(1)} s with tokens that lived ${load.tokenLifetimeS.toFixed(2)} s: ${load.runs} runs, ${load.failures} failures, ${load.mintsPerScopePerLifetime.toFixed(2)} mints per scope per token lifetime.\n`,
    `### 6. Daemon scale\n\nResident memory ${idle} s after the first mints, beside an idle bare Node.js (\`node -e 'setInterval(…)'\`) started at the same time.\n\n| installations | time to mint all at start | peak concurrent API requests | resident memory | idle bare node | ratio | CPU while idle |\n| --- | --- | --- | --- | --- | --- | --- |\n${scale.map((s) => `| ${s.installations} | ${s.startMs} ms | ${s.peakConcurrentRequests} (limit ${s.mintConcurrency}) | ${s.rssMb.toFixed(1)} MB | ${s.bareNodeRssMb.toFixed(1)} MB | ${ratio(s).toFixed(2)}× | ${s.idleCpuPercent === null ? "-" : `${s.idleCpuPercent.toFixed(2)}%`} |`).join("\n")}\n`,
    table("7. The health probe against a running daemon", probe),
    probeMemory
      ? `Peak resident memory of one run (median of 5):\n\n| variant | peak resident memory |\n| --- | --- |\n${probeMemory.map((m) => `| ${m.name} | ${m.mb.toFixed(1)} MB |`).join("\n")}\n`
      : "Peak resident memory: not measured (needs GNU time at /usr/bin/time, Debian package time).\n",
    image.skipped
      ? `### 8. The image\n\nNot measured: ${image.skipped}.\n`
      : `### 8. The image\n\nBuilt from the Dockerfile: ${image.imageMb?.toFixed(1)} MB on its base \`node:24-bookworm-slim\` of ${image.baseMb?.toFixed(1)} MB; its own layers ${image.ownLayersMb?.toFixed(1)} MB:\n\n| layer | size |\n| --- | --- |\n${(image.layers ?? []).map((l) => `| \`${l.step.replace(/\|/g, "\\|")}\` | ${l.mb.toFixed(2)} MB |`).join("\n")}\n`,
    `### 9. The broker\n\nReal keeper processes keeping one owner's token fresh through one broker (tokens that live ${fewest.tokenLifetimeS} s, watched for ${fewest.seconds.toFixed(0)} s each):\n\n| agents | the App's token calls | per token lifetime |\n| --- | --- | --- |\n${brokerBench.agents.map((a) => `| ${a.agents} | ${a.githubMints} | ${a.mintsPerLifetime.toFixed(2)} |`).join("\n")}\n\nA cached token at ${brokerBench.latency.rate} requests/s over kept-alive TLS connections, ${brokerBench.latency.requests} requests: p50 ${ms(brokerBench.latency.p50Ms)}, p99 ${ms(brokerBench.latency.p99Ms)}, ${brokerBench.latency.errors} errors. Resident memory afterwards ${brokerBench.rssMb.toFixed(1)} MB, beside an idle bare Node.js started with it: ${brokerBench.bareNodeRssMb.toFixed(1)} MB.\n\nThe audit line of an allowed request through the redactor, with the broker's V8 flags (median of ${quick ? 10 : 30} rounds of 200 lines): ${us(oneKnown)} with 1 minted token known, ${us(manyKnown)} with ${manyKnown.tokens.toLocaleString("en")}.\n`,
    "### Targets\n",
    "| what | target | measured | met |",
    "| --- | --- | --- | --- |",
    ...checks.map((c) => `| ${c.what} | ${c.target} | ${c.measured} | ${c.ok ? "yes" : "**no**"} |`),
    "",
  ].join("\n");
  process.stdout.write(`${report}\n`);
  mkdirSync(`${root}/bench-results`, { recursive: true });
  writeFileSync(`${root}/bench-results/latest.json`, `${JSON.stringify({ machine, local, network, probe, probeMemory, load, scale, brokerBench, abuse, auditLine, image, checks }, null, 2)}\n`);
  if (!quick) {
    const doc = `${root}/docs/performance.md`;
    const text = readFileSync(doc, "utf8");
    const marker = "<!-- bench results -->";
    writeFileSync(doc, `${text.slice(0, text.indexOf(marker) + marker.length)}\n\n${report}`);
  }
  removeTempDirs();
  const missed = checks.filter((c) => !c.ok);
  if (missed.length) log(`missed: ${missed.map((c) => c.what).join("; ")}`);
  return args.has("--check") && missed.length ? 1 : 0;
}

main().then((code) => process.exit(code), (error) => {
  process.stderr.write(`bench: ${(error as Error).stack}\n`);
  process.exit(2);
});
