import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeGitLab } from "../fakes/fake-gitlab.ts";
import { exerciseProvider } from "../support/provider-scenario.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const LIFETIME_MS = 4_000;

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
    const stored = readFileSync(file, "utf8").trim();
    expect(gitlab.liveRefreshTokens.has(stored)).toBe(true);
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

  it("self-rotation: each rotation revokes the old token and stores the new one", async () => {
    const file = join(world.dir, "gitlab-token.secret");
    writeFileSync(file, `${gitlab.firstAccessToken()}\n`, { mode: 0o600 });
    await world.startKeeper({ providers: [{ name: "gl-rotate", type: "gitlab", grant: "self-rotate", baseUrl: gitlab.url, gitUrl: world.gitUrl, tokenFile: file }] });
    // A revoked token cannot rotate itself: refusal is not exercised here, only the chain.
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS });
    expect(gitlab.rotations).toBeGreaterThanOrEqual(3);
    const stored = readFileSync(file, "utf8").trim();
    expect(world.ledger.accepts(stored, "acme")).toBe(true);
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
