import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

function get(options: { socketPath?: string; port?: number; path: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", ...options }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("metrics and /healthz", () => {
  let world: World;
  let socketPath: string;

  beforeAll(async () => {
    world = await World.create();
    socketPath = join(world.dir, "metrics.sock");
    await world.startKeeper({ metrics: { listen: `unix:${socketPath}` } });
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  it("serves expiry, mints, refusals and shim retries as Prometheus text, and never a token", async () => {
    const work = tempDir();
    const app = join(work, "app");
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), app], work));
    world.github.revokeAll();
    await must(world.git(["fetch", "-q", "origin"], app));
    world.server.failNext(502, 1);
    await must(world.git(["fetch", "-q", "origin"], app));
    await new Promise((r) => setTimeout(r, 300));
    const { status, body } = await get({ socketPath, path: "/metrics" });
    expect(status).toBe(200);
    expect(body).toMatch(/git_token_keeper_token_expiry_seconds\{provider="test-app",owner="acme"\} \d+/);
    expect(body).toMatch(/git_token_keeper_mints_total\{provider="test-app",owner="acme",reason="start"\} 1/);
    expect(body).toMatch(/git_token_keeper_mints_total\{provider="test-app",owner="acme",reason="refused"\} 1/);
    expect(body).toMatch(/git_token_keeper_refusals_total\{provider="test-app",owner="acme"\} 1/);
    expect(body).toMatch(/git_token_keeper_shim_retries_total\{kind="auth"\} 1/);
    expect(body).toMatch(/git_token_keeper_shim_retries_total\{kind="transient"\} 1/);
    for (const token of world.github.tokens.keys()) expect(body).not.toContain(token);
  });

  it("/healthz is 200 while minting works and 503 with the reason when it fails", async () => {
    expect(await get({ socketPath, path: "/healthz" })).toEqual({ status: 200, body: "ok\n" });
    world.github.setMode("reset");
    try {
      await import("../support/run-cli.ts").then(({ runCli }) => runCli(["refresh"], { GIT_TOKEN_KEEPER_DIR: world.stateDir }));
      const r = await get({ socketPath, path: "/healthz" });
      expect(r.status).toBe(503);
      expect(r.body).toContain("connection reset");
      expect((await get({ socketPath, path: "/metrics" })).body).toMatch(/git_token_keeper_mint_failures_total\{provider="test-app",owner="acme",kind="transient"\} [1-9]/);
    } finally {
      world.github.setMode("up");
    }
  });
});
