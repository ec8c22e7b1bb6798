import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitHttpServer } from "../fakes/git-http-server.ts";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("refusals and faults", () => {
  let world: World;
  let app: string;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper();
    const work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
  });

  afterEach(async () => {
    // Leave the world as it was for the next test.
    world.github.setMode("up");
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  const status = () => runCli(["status", "--json"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });

  it("push after every token is revoked succeeds through the shim, with one re-mint", async () => {
    writeFileSync(join(app, "revoked.txt"), "x\n");
    await must(world.git(["add", "revoked.txt"], app));
    await must(world.git(["commit", "-q", "-m", "after revocation"], app));
    world.github.revokeAll();
    const mintsBefore = world.github.mintsFor("acme");
    const push = await must(world.git(["push", "origin", "HEAD:main"], app));
    expect(push.stderr).toContain("refused the token; retrying with a new one (1/3)");
    expect(world.github.mintsFor("acme") - mintsBefore).toBe(1);
    expect(world.keeper?.log).toContain("host refused the token; re-minting");
  });

  it("the same push without retries fails: the retry is what saves it", async () => {
    world.github.revokeAll();
    const r = await world.git(["fetch", "-q", "origin"], app, { env: { GIT_TOKEN_KEEPER_RETRIES: "0" } });
    expect(r.exitCode).toBe(128);
    expect(r.stderr).toContain("Authentication failed");
    // The helper's erase re-minted already, so the next call works.
    await must(world.git(["fetch", "-q", "origin"], app));
  });

  it("many git processes refused at once cause one re-mint, not a storm", async () => {
    await sleep(1_100);
    world.github.revokeAll();
    const before = world.github.mintsFor("acme");
    const results = await Promise.all(Array.from({ length: 8 }, () => world.git(["ls-remote", "origin"], app)));
    expect(results.map((r) => r.exitCode)).toEqual(Array(8).fill(0));
    expect(world.github.mintsFor("acme") - before).toBe(1);
  });

  it("502s from the git host are retried with backoff; plain git fails", async () => {
    world.server.failNext(502, 1);
    const plain = await world.git(["fetch", "-q", "origin"], app, { shim: false });
    expect(plain.exitCode).toBe(128);
    expect(plain.stderr).toContain("The requested URL returned error: 502");
    world.server.failNext(502, 2);
    const r = await must(world.git(["fetch", "origin"], app));
    expect(r.stderr).toMatch(/transient error; retried after \d+\.\d{3}s \(2\/3\)/);
  });

  it("a refused push that deletes refs is not repeated after a transient error", async () => {
    await must(world.git(["push", "-q", "origin", "HEAD:refs/heads/tmp-delete"], app));
    world.server.failNext(502, 1, /git-receive-pack$/);
    const r = await world.git(["push", "origin", "--delete", "tmp-delete"], app);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("not retrying: this push forces, mirrors or deletes refs");
  });

  it("non-transient failures are not retried", async () => {
    const r = await world.git(["push", "origin", "refs/heads/does-not-exist"], app);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).not.toContain("git-token-keeper");
    const notFound = await world.git(["ls-remote", world.repoUrl("acme/nothing-here")], app);
    expect(notFound.exitCode).not.toBe(0);
    expect(notFound.stderr).not.toContain("retr");
  });

  it("while the token API is down the current token keeps serving, status fails, and recovery is automatic", async () => {
    world.github.setMode("reset");
    const refresh = await runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
    expect(refresh.exitCode).toBe(1);
    expect(refresh.stderr).toContain("refresh failed");
    const down = await status();
    expect(down.exitCode).toBe(1);
    expect(JSON.parse(down.stdout).tokens.some((t: { lastError: string | null }) => t.lastError?.includes("connection reset"))).toBe(true);
    await must(world.git(["fetch", "-q", "origin"], app));
    world.github.setMode("up");
    const deadline = Date.now() + 15_000;
    while ((await status()).exitCode !== 0) {
      if (Date.now() > deadline) throw new Error(`no recovery:\n${world.keeper?.log}`);
      await sleep(250);
    }
    expect(world.keeper?.log).toContain("token source recovered");
  });

  // Issue 24, finding 6: a year-long Retry-After once stalled a token past its expiry.
  it("a token API failing with 429 and Retry-After is not called again before it says, up to retryMax (2s here)", async () => {
    world.github.failNext(429, 1, { "retry-after": "31536000" }, JSON.stringify({ message: "rate limited" }));
    await runCli(["refresh", "--provider", "test-app"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
    const s = JSON.parse((await status()).stdout);
    const slot = s.tokens.find((t: { failing: boolean }) => t.failing);
    expect(slot?.lastError).toContain("HTTP 429");
    const wait = Date.parse(slot.nextAttempt) - Date.parse(s.updatedAt);
    expect(wait).toBeGreaterThanOrEqual(1_500);
    expect(wait).toBeLessThanOrEqual(2_500);
  });

  it("two owners on one host each get their own token", async () => {
    const work = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "a")], work));
    await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "g")], work));
    // The fake host accepts a token only for the owner it was minted for.
    expect(world.github.accepts([...world.github.tokens.values()].find((t) => t.owner === "acme")!.token, "globex")).toBe(false);
  });

  it("a host with no provider is offered nothing", async () => {
    const other = new GitHttpServer(join(world.dir, "repos"), () => false);
    await other.start();
    try {
      const work = tempDir();
      const r = await world.git(["clone", "-q", `${other.url}/acme/app.git`, join(work, "x")], work);
      expect(r.exitCode).toBe(128);
      expect(other.seen.length).toBeGreaterThan(0);
      expect(other.seen.every((s) => s.authorization === undefined)).toBe(true);
    } finally {
      await other.stop();
    }
  });
});
