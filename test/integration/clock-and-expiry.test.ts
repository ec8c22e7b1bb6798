import { execa } from "execa";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { parseTokenRecord, type TokenRecord } from "../../src/store/token-file.ts";
import type { KeeperProcess } from "../support/keeper-process.ts";
import { runCli } from "../support/run-cli.ts";
import { SHIM_DIR } from "../support/run-git.ts";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

/**
 * Issue 24: the keeper never hands out a token it should not, across wall-clock jumps (a
 * machine suspended and resumed, a VM restored), a token API whose clock is not this one's, and
 * reloads that change what a provider's tokens are for. The daemon is the real one; its clock is
 * moved by libfaketime (Debian's faketime), which fakes the wall clock only
 * (DONT_FAKE_MONOTONIC=1): its timers run on, as they do across a suspend.
 */
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});
afterAll(removeTempDirs);

const readToken = (w: World, owner = "acme"): TokenRecord | undefined => {
  try {
    return parseTokenRecord(readFileSync(join(w.stateDir, "tokens", "test-app", owner), "utf8"));
  } catch {
    return undefined;
  }
};

/**
 * The helper as git runs it, for acme/app on the world's git server: its answer's fields. Never
 * spawnSync: the fake GitHub answers from this process's event loop, and the helper may wait on a mint.
 */
async function helperGet(w: World, env: Record<string, string> = {}): Promise<Record<string, string>> {
  const url = new URL(w.gitUrl);
  const r = await execa(join(SHIM_DIR, "git-credential-token-keeper"), ["get"], {
    input: `protocol=http\nhost=${url.host}\npath=acme/app.git\n\n`,
    env: { PATH: process.env.PATH ?? "", GIT_TOKEN_KEEPER_DIR: w.stateDir, GIT_TOKEN_KEEPER_WAIT: "8", ...env },
    extendEnv: false,
    reject: false,
    timeout: 40_000,
  });
  return Object.fromEntries(r.stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A world of 60-second tokens whose daemon's wall clock is moved by writing `offset` ("+120s"). */
async function keeperUnderFaketime(): Promise<{ w: World; keeper: KeeperProcess; offset: string; faked: Record<string, string> }> {
  world = await World.create({ tokenLifetimeMs: 60_000 });
  const offset = join(world.dir, "faketime");
  writeFileSync(offset, "+0\n");
  const faked = { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: offset, FAKETIME_NO_CACHE: "1", DONT_FAKE_MONOTONIC: "1" };
  const keeper = await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] }, { env: faked });
  return { w: world, keeper, offset, faked };
}

describe.skipIf(!existsSync(LIBFAKETIME) && !haveTool("faketime", "libfaketime is not installed, so wall-clock jumps are not tested"))(
  "wall-clock jumps seen by the real daemon (libfaketime)",
  () => {
    it("a forward jump past a token's expiry (a VM restored, a suspend) re-mints at once, and the helper never answers the expired token", async () => {
      const { w, keeper, offset } = await keeperUnderFaketime();
      const first = readToken(w)!;
      expect(first.serial).toBe(1);
      const mintsBefore = w.github.mintCount;
      // 120 s forward: the 60-second token expired by the daemon's wall clock; its refresh
      // timer (30 s, monotonic) has not fired.
      writeFileSync(offset, "+120s\n");
      await keeper.waitForLog(/the wall clock jumped/);
      const daemonNow = () => Date.now() / 1000 + 120;
      // No git call needed: the daemon noticed and minted.
      await until("a token minted after the jump", () => (readToken(w!)?.serial ?? 0) > first.serial);
      expect(w.github.mintCount).toBeGreaterThan(mintsBefore);
      const answer = await helperGet(w);
      expect(answer.password).toBeDefined();
      expect(answer.password).not.toBe(first.token);
      // Judged by the daemon's (jumped) clock, which the helper reads from the heartbeat.
      expect(Number(answer.password_expiry_utc)).toBeGreaterThan(daemonNow() + 30);
      // The new token's life counts from GitHub's clock (its Date header), not the jumped one.
      const next = readToken(w)!;
      expect(next.expires - next.mintedAt).toBeGreaterThan(55);
      expect(next.expires - next.mintedAt).toBeLessThan(65);
    });

    // The soak of issue 24: a clock set forward reached the helper only through the heartbeat,
    // which the daemon rewrites when it sees the jump (four times a second): in between, the
    // helper answered tokens past their expiry. Here the daemon is frozen across the jump, so it
    // cannot see it; the helper shares the daemon's clock, as every process on a machine does.
    it("a clock set forward that the daemon has not seen yet: the helper asks the clock itself, and answers a new token", async () => {
      const { w, keeper, offset, faked } = await keeperUnderFaketime();
      const first = readToken(w)!;
      keeper.signal("SIGSTOP");
      let answer: Promise<Record<string, string>>;
      try {
        writeFileSync(offset, "+120s\n");
        answer = helperGet(w, faked);
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        keeper.signal("SIGCONT");
      }
      const got = await answer;
      expect(got.password).toBeDefined();
      expect(got.password).not.toBe(first.token);
      expect(Number(got.password_expiry_utc)).toBeGreaterThan(Date.now() / 1000 + 120);
    });

    // Review of issue 24: a clock set back left tokens' expiries where the old clock put them:
    // an expired token was served for as long as the jump.
    it("a clock set back moves the token's expiry back with it", async () => {
      const { w, keeper, offset } = await keeperUnderFaketime();
      writeFileSync(offset, "+3600s\n");
      await keeper.waitForLog(/the wall clock jumped/);
      await until("a token minted on the clock an hour ahead", () => (readToken(w)?.expires ?? 0) > Date.now() / 1000 + 3000);
      const jumps = (keeper.log.match(/the wall clock jumped/g) ?? []).length;
      writeFileSync(offset, "+0\n");
      await until("the jump back seen", () => (keeper.log.match(/the wall clock jumped/g) ?? []).length > jumps);
      await until("the token's times moved back", () => (readToken(w)?.expires ?? Infinity) < Date.now() / 1000 + 120);
      const answer = await helperGet(w);
      expect(Number(answer.password_expiry_utc)).toBeLessThan(Date.now() / 1000 + 120);
    });

    it("after a jump while the token API is down, the helper answers nothing rather than the expired token", async () => {
      const { w, keeper, offset } = await keeperUnderFaketime();
      const first = readToken(w)!;
      w.github.failNext(503, 1_000);
      writeFileSync(offset, "+120s\n");
      await keeper.waitForLog(/the wall clock jumped/);
      await until("the expired token's file removed", () => readToken(w!) === undefined);
      const answer = await helperGet(w);
      expect(answer.password).toBeUndefined();
      expect(answer.quit).toBe("1");
      expect(JSON.stringify(answer)).not.toContain(first.token);
    });
  },
);

describe("a token API whose clock is not this machine's", () => {
  it("a token's life counts from the API's Date header: 60-second tokens from an API 40 s ahead live 60 s here", async () => {
    world = await World.create({ tokenLifetimeMs: 60_000, installations: [{ id: 11, login: "acme" }] });
    world.github.clockOffsetMs = 40_000;
    await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const record = readToken(world)!;
    // Read against this machine's clock, the answer's expires_at is 100 s away.
    expect(record.expires - record.mintedAt).toBeGreaterThanOrEqual(58);
    expect(record.expires - record.mintedAt).toBeLessThanOrEqual(61);
    expect(record.serveUntil).toBeLessThan(record.expires);
  });
});

describe("a GitHub whose clock is minutes behind", () => {
  // Issue 24, finding 15: auth-app wrote plain-text warnings into the JSON log, and forgot the
  // difference: every mint paid a refused JWT.
  it("the difference is learned once and kept: later mints sign their JWT with GitHub's time, and the log stays JSON", async () => {
    world = await World.create({ installations: [{ id: 11, login: "acme" }] });
    world.github.clockOffsetMs = -400_000;
    const keeper = await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const refusedJwts = () => world!.github.requests.filter((r) => r.status === 401).length;
    const first = refusedJwts();
    expect(first).toBeLessThanOrEqual(1);
    for (let i = 0; i < 3; i++) expect((await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir })).exitCode).toBe(0);
    expect(refusedJwts()).toBe(first);
    const lines = keeper.log.split("\n").filter(Boolean);
    expect(lines.filter((l) => !l.startsWith("{"))).toEqual([]);
    expect(keeper.log).toContain("GitHub's clock differs from this machine's");
  });
});

describe("a reload that changes what a provider's tokens are for", () => {
  it("moving gitUrl to another host while the token API hangs: the new host never gets the old host's token", async () => {
    world = await World.create({ installations: [{ id: 11, login: "acme" }] });
    const keeper = await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const old = readToken(world)!;
    world.github.setMode("hang");
    // The same git server under another name: 127.0.0.1 → localhost.
    const moved = world.gitUrl.replace("127.0.0.1", "localhost");
    writeFileSync(
      join(world.dir, "keeper.yaml"),
      JSON.stringify({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [world.providerConfig({ owners: ["acme"], gitUrl: moved })] }),
    );
    await keeper.waitForLog(/config reloaded/);
    expect(readToken(world)).toBeUndefined();
    const r = await world.git(["ls-remote", `${moved}/acme/app.git`], world.dir, { env: { GIT_TOKEN_KEEPER_WAIT: "2", GIT_TERMINAL_PROMPT: "0" } });
    expect(r.exitCode).not.toBe(0);
    const sent = world.server.seen.map((s) => Buffer.from((s.authorization ?? "").replace(/^basic /i, ""), "base64").toString("utf8"));
    expect(sent.some((credentials) => credentials.includes(old.token))).toBe(false);
    world.github.setMode("up");
    await until("a token minted for the new gitUrl", () => readToken(world!) !== undefined, 30_000);
    await must(world.git(["ls-remote", `${moved}/acme/app.git`], world.dir));
  });

  it("a change of timing alone keeps the tokens; a change of stateDir is refused, saying to restart", async () => {
    world = await World.create({ installations: [{ id: 11, login: "acme" }] });
    const keeper = await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const before = readToken(world)!;
    const mints = world.github.mintCount;
    const write = (config: Record<string, unknown>) =>
      writeFileSync(join(world!.dir, "keeper.yaml"), JSON.stringify({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [world!.providerConfig({ owners: ["acme"] })], ...config }));
    write({ refreshBefore: "9m" });
    await keeper.waitForLog(/config reloaded/);
    await until("the provider restarted", () => /resumed token from state dir/.test(keeper.log));
    expect(readToken(world)?.token).toBe(before.token);
    expect(world.github.mintCount).toBe(mints);
    const rejected = (keeper.log.match(/cannot move its state dir/g) ?? []).length;
    write({ refreshBefore: "9m", stateDir: join(world.dir, "elsewhere") });
    await until("the reload rejected", () => (keeper.log.match(/cannot move its state dir/g) ?? []).length > rejected);
    const status = JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { lastReload: { ok: boolean; error: string } };
    expect(status.lastReload.ok).toBe(false);
    expect(status.lastReload.error).toContain("a running daemon cannot move its state dir");
    expect(status.lastReload.error).toContain("restart the daemon");
  });

  it("a restart under narrower settings removes the old token file before the routes are written", async () => {
    world = await World.create({ installations: [{ id: 11, login: "acme" }] });
    await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"] })] });
    const broad = readToken(world)!;
    await world.keeper!.stop();
    world.github.setMode("hang");
    await world.startKeeper(
      { providers: [world.providerConfig({ owners: ["acme"], permissions: { contents: "read" } })] },
      { waitReady: false },
    );
    await world.keeper!.waitForLog(/daemon started/);
    expect(readToken(world)?.token).not.toBe(broad.token);
    world.github.setMode("up");
  });
});

describe("a token API's answers are data", () => {
  // Issue 24, finding 15: the installation's account.login went unchecked into file names and routes.
  it("an installation whose account login is not an owner name is refused, and nothing is written for it", async () => {
    world = await World.create({ installations: [{ id: 11, login: "../../x y" }] });
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined, installationId: 11 })] });
    const status = JSON.parse(readFileSync(join(world.stateDir, "status.json"), "utf8")) as { providers: { error: string | null }[] };
    expect(status.providers[0]?.error).toContain("is not a user or organisation name");
    expect(readFileSync(join(world.stateDir, "routes"), "utf8")).not.toContain("x y");
    expect(existsSync(join(world.stateDir, "x y"))).toBe(false);
  });
});
