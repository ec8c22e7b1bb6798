import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect } from "vitest";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `token API faults (${fileGroup(import.meta.url)})`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the token API fails; the keeper keeps working and loses nothing", () => {
  let world: World;
  let app: string;
  const cli = (args: string[]) => runCli(args, { GIT_TOKEN_KEEPER_DIR: world.stateDir });
  const status = async () => {
    const r = await cli(["status", "--json"]);
    return { exitCode: r.exitCode, json: JSON.parse(r.stdout) as { tokens: { owner: string; lastError: string | null; failing: boolean }[] } };
  };
  const waitHealthy = async (timeoutMs = 20_000) => {
    const started = Date.now();
    while ((await status()).exitCode !== 0) {
      if (Date.now() - started > timeoutMs) throw new Error(`no recovery within ${timeoutMs} ms:\n${world.keeper?.log.slice(-2000)}`);
      await sleep(200);
    }
    return Date.now() - started;
  };
  const failedMints = () => world.keeper!.records().filter((r) => r.message === "mint failed" && r.slot === "test-app/acme");

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: 120_000, installations: [{ id: 11, login: "acme" }] });
    await world.startKeeper({ providers: [world.providerConfig({ owners: ["acme"], timeout: "1s" })], retryMin: "300ms", retryMax: "3s" });
    const work = tempDir();
    app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
  });

  afterEach(async () => {
    world.github.clearFaults();
    world.github.setMode("up");
    world.github.clockOffsetMs = 0;
    world.github.tokenLifetimeMs = 120_000;
    await waitHealthy();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  /** Injects a fault, asks for a re-mint, checks what a user sees, then lets the API recover. */
  async function underFault(inject: () => Promise<void> | void, heal: () => Promise<void> | void, errorText: RegExp): Promise<string> {
    const before = failedMints().length;
    await inject();
    const refresh = await cli(["refresh"]);
    expect(refresh.exitCode).toBe(1);
    const s = await status();
    expect(s.exitCode).toBe(1);
    const lastError = s.json.tokens.find((t) => t.owner === "acme")?.lastError ?? "";
    expect(lastError).toMatch(errorText);
    // The current token still serves git while the API is down.
    await must(world.git(["fetch", "-q", "origin"], app));
    await sleep(1_500);
    const delays = failedMints().slice(before).map((r) => Number(r.retryInMs));
    await heal();
    const recoveredIn = await waitHealthy();
    return `status exit 1 with "${lastError.replace(/^minting a token for 'acme' \(installation 11\): /, "")}"; git kept working; retry delays ${delays.join(", ")} ms; recovered ${Math.round(recoveredIn / 100) / 10} s after the API came back`;
  }

  scenario(group, "connection refused", "current token keeps serving; status fails with the reason; backoff; automatic recovery", () =>
    underFault(() => world.github.stop(), () => world.github.start(), /connection refused/),
  );

  scenario(group, "HTTP 502 from the API", "as above", () => underFault(() => world.github.failNext(502, 1_000), () => world.github.clearFaults(), /HTTP 502/));

  scenario(group, "HTTP 429 with Retry-After: 3", "no call before Retry-After; as above", async () => {
    const observed = await underFault(() => world.github.failNext(429, 1, { "retry-after": "3" }, JSON.stringify({ message: "rate limited" })), () => undefined, /HTTP 429/);
    const retry = failedMints().find((r) => String(r.error).includes("HTTP 429"));
    expect(Number(retry?.retryInMs)).toBeGreaterThanOrEqual(3_000);
    return `${observed}; the 429's retry waited ${retry?.retryInMs} ms`;
  });

  scenario(group, "API request hangs (timeout)", "the request times out after `timeout`; as above", () =>
    underFault(() => world.github.setMode("hang"), () => world.github.setMode("up"), /timed out|aborted/i),
  );

  scenario(group, "malformed JSON from the API", "a failed mint, not a crash; as above", () =>
    underFault(() => world.github.failNext(201, 1_000, { "content-type": "application/json" }, "{not json"), () => world.github.clearFaults(), /without a token/),
  );

  scenario(group, "API clock 5 minutes behind (JWT iat in its future: 401)", "@octokit/auth-app corrects from the Date header; minting succeeds", async () => {
    // Hour-long tokens, as GitHub's: their expires_at is in the API's time.
    world.github.tokenLifetimeMs = 3_600_000;
    world.github.clockOffsetMs = -300_000;
    const mints = world.github.mintCount;
    const refresh = await cli(["refresh"]);
    expect(refresh.exitCode, refresh.stderr).toBe(0);
    expect(world.github.mintCount).toBe(mints + 1);
    const rejected = world.github.requests.filter((r) => r.status === 401).length;
    return `refresh exit 0 after ${rejected} JWT rejection(s) and a retry with the server's time`;
  });

  scenario(group, "API clock 15 minutes ahead (JWT exp in its past: 401)", "as above", async () => {
    world.github.tokenLifetimeMs = 3_600_000;
    world.github.clockOffsetMs = 900_000;
    const refresh = await cli(["refresh"]);
    expect(refresh.exitCode).toBe(0);
    return "refresh exit 0 after auth-app's clock correction";
  });
});
