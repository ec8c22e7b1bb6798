import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeGitLab } from "../fakes/fake-gitlab.ts";
import { KeeperProcess } from "../support/keeper-process.ts";
import { exerciseProvider } from "../support/provider-scenario.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const LIFETIME_MS = 4_000;

/**
 * True once `check` holds, asked again for up to 5 s: the file is read while the chain goes on
 * (every 2 s), and between GitLab's answer and the save of the new secret it still holds the
 * one GitLab just used up.
 */
async function settled(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

describe("gitlab provider against a local GitLab", () => {
  let world: World;
  let gitlab: FakeGitLab;

  beforeAll(async () => {
    world = await World.create();
    gitlab = new FakeGitLab(world.ledger, LIFETIME_MS);
    await gitlab.start();
  });

  afterEach(async () => {
    await world.keeper?.stop();
  });

  afterAll(async () => {
    await gitlab.stop();
    await world.close();
    removeTempDirs();
  });

  it("refresh-token grant: single-use refresh tokens chain through refreshes and a restart", async () => {
    const file = join(world.dir, "gitlab.refresh");
    writeFileSync(file, `${gitlab.firstRefreshToken()}\n`, { mode: 0o600 });
    const config = { providers: [{ name: "gl", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl, clientId: gitlab.clientId, refreshTokenFile: file }] };
    await world.startKeeper(config);
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    // Every refresh presented the refresh token the previous one returned: no reuse, no gap.
    expect(gitlab.refreshLog.length).toBeGreaterThanOrEqual(3);
    expect(gitlab.refreshLog.every((r) => r.accepted)).toBe(true);
    expect(await settled(() => gitlab.liveRefreshTokens.has(readFileSync(file, "utf8").trim()))).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await world.keeper!.stop();
    // A restarted daemon goes on from the stored refresh token.
    world.ledger.revokeAll();
    await world.startKeeper(config);
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], world.dir));
    expect(gitlab.refreshLog.every((r) => r.accepted)).toBe(true);
    const keeperLog = world.keeper!.log;
    for (const t of gitlab.liveRefreshTokens) expect(keeperLog).not.toContain(t);
  });

  it("a SIGTERM while a refresh is in flight waits for GitLab's answer and saves the new refresh token (the old one is used up)", async () => {
    const file = join(world.dir, "sigterm.refresh");
    writeFileSync(file, `${gitlab.firstRefreshToken()}\n`, { mode: 0o600 });
    const config = { providers: [{ name: "gl-term", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl, clientId: gitlab.clientId, refreshTokenFile: file }] };
    const keeper = await world.startKeeper(config);
    const before = gitlab.refreshLog.length;
    let release = () => {};
    gitlab.holdAnswers = new Promise<void>((resolve) => (release = resolve));
    try {
      // The scheduled refresh reaches GitLab, which uses the token up and keeps the answer.
      for (let i = 0; i < 100 && gitlab.refreshLog.length === before; i++) await sleep(100);
      expect(gitlab.refreshLog.length).toBeGreaterThan(before);
      void keeper.stop();
      await sleep(500);
      release();
      expect(await keeper.exited).toBe(0);
    } finally {
      gitlab.holdAnswers = undefined;
      release();
    }
    const stored = readFileSync(file, "utf8").trim();
    expect(gitlab.liveRefreshTokens.has(stored), keeper.log).toBe(true);
    // The chain goes on after the restart.
    await world.startKeeper(config);
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], world.dir));
    expect(gitlab.refreshLog.every((r) => r.accepted)).toBe(true);
  });

  it("a reload that changes the provider while its refresh is in flight: the new one goes on from the answer, never presents the used-up token", async () => {
    const file = join(world.dir, "reload.refresh");
    writeFileSync(file, `${gitlab.firstRefreshToken()}\n`, { mode: 0o600 });
    const provider = { name: "gl-reload", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl, clientId: gitlab.clientId, refreshTokenFile: file };
    // More than one mint at a time, as with many owners: the new provider's mint does not queue
    // behind the old one's.
    const keeper = await world.startKeeper({ mintConcurrency: 4, providers: [provider] });
    const before = gitlab.refreshLog.length;
    let release = () => {};
    gitlab.holdAnswers = new Promise<void>((resolve) => (release = resolve));
    try {
      for (let i = 0; i < 100 && gitlab.refreshLog.length === before; i++) await sleep(100);
      expect(gitlab.refreshLog.length).toBeGreaterThan(before);
      // A changed setting retires the provider and starts a new one on the same file.
      writeFileSync(join(world.dir, "keeper.yaml"), JSON.stringify({ mintConcurrency: 4, refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [{ ...provider, username: "keeper-bot" }] }));
      keeper.child.kill("SIGHUP");
      await sleep(1_000);
      release();
      await keeper.waitForLog(/"message":"config reloaded"/);
    } finally {
      gitlab.holdAnswers = undefined;
      release();
    }
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], world.dir));
    await sleep(500);
    expect(gitlab.refreshLog.slice(before).every((r) => r.accepted), JSON.stringify(gitlab.refreshLog.slice(before))).toBe(true);
    expect(gitlab.liveRefreshTokens.has(readFileSync(file, "utf8").trim())).toBe(true);
  });

  // Issue 24, finding 7: two daemons sharing one refreshTokenFile had no lock.
  it("a second daemon on the same refresh-token file is refused, and the chain stays whole", async () => {
    const file = join(world.dir, "shared.refresh");
    writeFileSync(file, `${gitlab.firstRefreshToken()}\n`, { mode: 0o600 });
    const provider = { name: "gl-shared", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl, clientId: gitlab.clientId, refreshTokenFile: file };
    const first = await world.startKeeper({ providers: [provider] });
    const before = gitlab.refreshLog.length;
    const secondDir = join(world.dir, "second");
    mkdirSync(secondDir);
    const second = await KeeperProcess.start({
      dir: secondDir,
      stateDir: join(secondDir, "state"),
      config: { refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", providers: [provider] },
    });
    try {
      const status = JSON.parse(readFileSync(join(secondDir, "state", "status.json"), "utf8")) as { tokens: { lastError: string | null }[] };
      expect(status.tokens[0]?.lastError).toContain("is another daemon's to rotate");
      // The first goes on refreshing (4-second tokens) with every refresh accepted.
      await sleep(5_000);
      expect(gitlab.refreshLog.length).toBeGreaterThan(before);
      expect(gitlab.refreshLog.slice(before).every((r) => r.accepted), JSON.stringify(gitlab.refreshLog.slice(before))).toBe(true);
    } finally {
      await second.stop();
    }
    // Once the first is gone (a clean stop releases the lock), the other may take the file over.
    await first.stop();
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it("self-rotation: each rotation revokes the old token and stores the new one", async () => {
    const file = join(world.dir, "gitlab-token.secret");
    writeFileSync(file, `${gitlab.firstAccessToken()}\n`, { mode: 0o600 });
    await world.startKeeper({ providers: [{ name: "gl-rotate", type: "gitlab", grant: "self-rotate", baseUrl: gitlab.url, gitUrl: world.gitUrl, tokenFile: file }] });
    // A revoked token cannot rotate itself: refusal is not exercised here, only the chain.
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS });
    expect(gitlab.rotations).toBeGreaterThanOrEqual(3);
    expect(await settled(() => world.ledger.accepts(readFileSync(file, "utf8").trim(), "acme"))).toBe(true);
  });

  it("a refresh token already used elsewhere is a clear, permanent failure", async () => {
    const file = join(world.dir, "used.refresh");
    writeFileSync(file, "rt-already-used\n", { mode: 0o600 });
    const keeper = await world.startKeeper({ providers: [{ name: "gl-used", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl, clientId: gitlab.clientId, refreshTokenFile: file }] });
    await keeper.waitForLog(/mint failed/);
    expect(keeper.log).toContain("the stored token was already used or revoked; put a new one in the file");
    expect(keeper.log).toContain('"transient":false');
  });
});
