// `npm run demo`: a simulated CI build that outlives its token, run twice against a local git
// server and a local fake GitHub whose tokens live 10 seconds. Needs no account or network.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { World } from "../test/support/world.ts";
import { removeTempDirs, tempDir } from "../test/support/temp-dir.ts";

const LIFETIME_MS = 10_000;
const BUILD_MS = 12_000;
const started = Date.now();
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
const say = (text: string) => console.log(`${stamp()} ${text}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function build(world: World, label: string, options: { shim: boolean; cloneUrl: string }): Promise<{ ok: boolean; failedAt?: string }> {
  const work = tempDir("gtk-demo-");
  const app = join(work, "app");
  const steps: [string, string[], string][] = [
    ["clone", ["clone", "-q", options.cloneUrl, app], work],
    ["compile (simulated, 12 s)", [], app],
    ["commit", ["commit", "-q", "-m", "build output"], app],
    ["push", ["push", "-q", "origin", "HEAD:main"], app],
    ["fetch", ["fetch", "-q", "origin"], app],
  ];
  for (const [name, args, cwd] of steps) {
    if (args.length === 0) {
      say(`${label}: ${name}: the token handed out at the start expires meanwhile`);
      await sleep(BUILD_MS);
      writeFileSync(join(app, "build.txt"), `built at ${new Date().toISOString()}\n`);
      await world.git(["add", "build.txt"], app, { shim: options.shim });
      continue;
    }
    say(`${label}: $ git ${args.map((a) => a.replace(/\/\/([^:@/]+):[^@]+@/, "//$1:***@")).join(" ")}`);
    const result = await world.git(args, cwd, { shim: options.shim });
    for (const line of result.stderr.trim().split("\n").filter(Boolean)) say(`${label}:   ${line}`);
    if (result.exitCode !== 0) {
      say(`${label}: ✗ ${name} failed (exit ${result.exitCode})`);
      return { ok: false, failedAt: name };
    }
    say(`${label}: ✓ ${name}`);
  }
  return { ok: true };
}

async function main(): Promise<void> {
  say("starting a local git server and a fake GitHub API (tokens live 10 s)");
  const world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
  try {
    say("run 1: plain git with one token minted when the job starts (what CI does today)");
    const token = world.github.issueToken("acme");
    const plain = await build(world, "plain  ", {
      shim: false,
      cloneUrl: world.repoUrl("acme/app").replace("http://", `http://x-access-token:${token}@`),
    });

    say("run 2: the same build through git-token-keeper");
    const keeper = await world.startKeeper();
    say(`keeper: daemon running (pid ${keeper.child.pid}); shim first on PATH: ${world.shimDir}`);
    const kept = await build(world, "keeper ", { shim: true, cloneUrl: world.repoUrl("acme/app") });
    const mints = world.github.mintsFor("acme") - 1;

    console.log("\nsummary");
    console.log(`  plain git:            ${plain.ok ? "succeeded" : `FAILED at ${plain.failedAt} (token expired mid-build)`}`);
    console.log(`  through the keeper:   ${kept.ok ? "succeeded" : `FAILED at ${kept.failedAt}`}`);
    console.log(`  tokens minted by the keeper during the build: ${mints} (each before the previous one expired)`);
    console.log(`  took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exitCode = !plain.ok && kept.ok ? 0 : 1;
  } finally {
    await world.close();
    removeTempDirs();
  }
}

await main();
