// `npm run soak [-- --minutes N]` (default 10): the daemon never hands out a token it should not,
// under churn (issue 24). Five-second tokens; the config reloaded every 20 s, alternating a
// change that restarts the provider (its tokens removed and minted again) and one of timing
// alone; the wall clock moved 30 s forward every minute (libfaketime, for the daemon, git and
// the helper; monotonic clock and /proc/uptime untouched, as when a clock is set); 16 git processes through the shim in a loop; a checker asks
// the helper every 100 ms, as git does, and compares each answer's password_expiry_utc with the
// daemon's wall clock. Prints the figures and writes bench-results/soak.json.
import { execa } from "execa";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SHIM_DIR } from "../test/support/run-git.ts";
import { removeTempDirs, tempDir } from "../test/support/temp-dir.ts";
import { World } from "../test/support/world.ts";

const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const argv = process.argv.slice(2);
const minutes = Number(argv[argv.indexOf("--minutes") + 1]) || 10;
const LIFETIME_MS = 5_000;
const JUMP_S = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  if (!existsSync(LIBFAKETIME)) {
    process.stderr.write("soak: needs libfaketime (Debian package faketime)\n");
    process.exit(2);
  }
  const world = await World.create({ tokenLifetimeMs: LIFETIME_MS, installations: [{ id: 11, login: "acme" }], audit: false });
  const offsetFile = join(world.dir, "faketime");
  let offsetS = 0;
  writeFileSync(offsetFile, "+0\n");
  const config = (i: number) => ({
    refreshBefore: i % 4 < 2 ? "10m" : "9m",
    retryMin: "200ms",
    retryMax: "2s",
    remintInterval: "1s",
    providers: [world.providerConfig({ owners: ["acme"], timeout: i % 2 === 0 ? "30s" : "29s" })],
  });
  // Every process of the machine sees the clock set, as it does when a clock is set: the
  // daemon, git and the helper (which reads it from the heartbeat, or asks `date`).
  const faked = { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: offsetFile, FAKETIME_NO_CACHE: "1", DONT_FAKE_MONOTONIC: "1" };
  const keeper = await world.startKeeper(config(0), { env: faked });
  const deadline = Date.now() + minutes * 60_000;
  const work = tempDir();
  const url = new URL(world.gitUrl);
  let runs = 0;
  let failures = 0;
  const failed: string[] = [];
  let answers = 0;
  let pastExpiry = 0;
  let pastExpiryNearJump = 0;
  let noAnswer = 0;
  let lastJumpAt = 0;
  const daemonNowS = () => Date.now() / 1000 + offsetS;

  const gitLoop = async () => {
    while (Date.now() < deadline) {
      const r = await world.git(["ls-remote", world.repoUrl("acme/app")], work, { env: faked });
      runs++;
      if (r.exitCode !== 0) {
        failures++;
        // All of git's and the keeper's lines: the reason the daemon gave comes before the last two.
        if (failed.length < 5) failed.push(r.stderr.trim().split("\n").slice(-6).join(" | "));
      }
    }
  };
  let spanningAJump = 0;
  let expiredWhileAsked = 0;
  const checker = async () => {
    while (Date.now() < deadline) {
      // An answer is judged by the clock it was given under: one whose ask spanned a jump may
      // rightly have been judged before it, and is counted apart.
      const offsetAtAsk = offsetS;
      // The helper judged between the ask and its answer: an expiry already past when it was
      // asked is served past expiry for certain; one that passed while it ran, perhaps not.
      const askedAtS = Date.now() / 1000 + offsetS;
      // Never spawnSync: the fake GitHub answers from this process's event loop.
      const r = await execa(join(SHIM_DIR, "git-credential-token-keeper"), ["get"], {
        input: `protocol=http\nhost=${url.host}\npath=acme/app.git\n\n`,
        env: { PATH: process.env.PATH ?? "", GIT_TOKEN_KEEPER_DIR: world.stateDir, ...faked },
        extendEnv: false,
        reject: false,
      });
      const expiry = /^password_expiry_utc=(\d+)$/m.exec(r.stdout)?.[1];
      if (!/^password=/m.test(r.stdout)) noAnswer++;
      else if (expiry && offsetS !== offsetAtAsk) spanningAJump++;
      else if (expiry) {
        answers++;
        if (Number(expiry) <= askedAtS) {
          pastExpiry++;
          if (Date.now() - lastJumpAt < 2_000) pastExpiryNearJump++;
        } else if (Number(expiry) <= daemonNowS()) expiredWhileAsked++;
      }
      await sleep(100);
    }
  };
  const churn = async () => {
    let i = 0;
    let tick = 0;
    while (Date.now() < deadline) {
      await sleep(20_000);
      if (Date.now() >= deadline) break;
      tick++;
      writeFileSync(join(world.dir, "keeper.yaml"), JSON.stringify(config(++i)));
      if (tick % 3 === 0) {
        offsetS += JUMP_S;
        lastJumpAt = Date.now();
        writeFileSync(offsetFile, `+${offsetS}s\n`);
      }
    }
  };

  const started = Date.now();
  const before = world.github.mintsFor("acme");
  await Promise.all([churn(), checker(), ...Array.from({ length: 16 }, gitLoop)]);
  const seconds = (Date.now() - started) / 1000;
  const mints = world.github.mintsFor("acme") - before;
  const reloads = (keeper.log.match(/"message":"config reloaded"/g) ?? []).length;
  const jumps = (keeper.log.match(/the wall clock jumped/g) ?? []).length;
  if (process.env.SOAK_LOG) writeFileSync(process.env.SOAK_LOG, keeper.log);
  await world.close();
  const results = {
    minutes,
    tokenLifetimeS: LIFETIME_MS / 1000,
    gitProcesses: 16,
    gitRuns: runs,
    gitFailures: failures,
    helperAnswers: answers,
    helperAnswersPastExpiry: pastExpiry,
    helperAnswersPastExpiryWithin2sOfAJump: pastExpiryNearJump,
    helperNoAnswer: noAnswer,
    helperAnswersDuringAJump: spanningAJump,
    helperAnswersThatExpiredWhileTheHelperRan: expiredWhileAsked,
    reloads,
    clockJumps: jumps,
    mints,
    // Each jump and each provider-restarting reload costs a mint of its own, beyond the schedule.
    mintsPerLifetime: mints / (seconds / (LIFETIME_MS / 1000)),
    failed,
  };
  const root = fileURLToPath(new URL("..", import.meta.url));
  mkdirSync(join(root, "bench-results"), { recursive: true });
  writeFileSync(join(root, "bench-results", "soak.json"), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  removeTempDirs();
}

await main();
