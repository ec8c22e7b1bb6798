import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeTokenService } from "../fakes/fake-token-service.ts";
import { runCli } from "../support/run-cli.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("several providers on one host, and config reload", () => {
  let world: World;
  let service: FakeTokenService;
  let configFile: string;
  let credential: string;

  beforeAll(async () => {
    world = await World.create();
    service = new FakeTokenService(world.ledger, 60_000);
    await service.start();
    credential = join(world.dir, "service-credential");
    writeFileSync(credential, service.bearer, { mode: 0o600 });
    configFile = join(world.dir, "keeper.yaml");
  });

  afterAll(async () => {
    await world.keeper?.stop();
    await service.stop();
    await world.close();
    removeTempDirs();
  });

  const sts = (extra: Record<string, unknown> = {}) => ({
    name: "sts",
    type: "http",
    gitUrl: world.gitUrl,
    url: `${service.url}/v1/token`,
    method: "POST",
    bearerTokenFile: credential,
    tokenPath: "data.token",
    expiresInPath: "data.ttl",
    ...extra,
  });
  const write = (config: unknown) => writeFileSync(configFile, JSON.stringify(config));
  const status = async () => JSON.parse((await runCli(["status", "--json"], { GIT_TOKEN_KEEPER_DIR: world.stateDir })).stdout);
  const tokenOf = (provider: string, scope: string) => readFileSync(join(world.stateDir, "tokens", provider, scope), "utf8").match(/^token=(.*)$/m)?.[1];

  it("the most specific route wins: a path prefix beats a provider that serves any owner", async () => {
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined }), sts({ pathPrefix: "/globex/" })] });
    const work = tempDir();
    const before = world.server.seen.length;
    await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "g")], work));
    await must(world.git(["clone", "-q", world.repoUrl("acme/app"), join(work, "a")], work));
    const sent = world.server.seen.slice(before).filter((s) => s.authorization).map((s) => Buffer.from(s.authorization!.split(" ")[1]!, "base64").toString());
    expect(sent.some((a) => a.includes(tokenOf("sts", "shared")!))).toBe(true);
    expect(world.github.mintsFor("globex")).toBe(0);
    expect(world.github.mintsFor("acme")).toBe(1);
  });

  it("reloads on file change: unchanged providers keep their tokens, removed ones stop", async () => {
    const acmeToken = tokenOf("test-app", "acme");
    const mints = world.github.mintCount;
    write({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [world.providerConfig({ owners: undefined })] });
    await world.keeper!.waitForLog(/"message":"config reloaded"/);
    expect(tokenOf("test-app", "acme")).toBe(acmeToken);
    expect(world.github.mintCount).toBe(mints);
    const routes = readFileSync(join(world.stateDir, "routes"), "utf8");
    expect(routes).not.toContain(" sts ");
    expect(() => tokenOf("sts", "shared")).toThrow();
    // globex now goes to the GitHub App.
    const work = tempDir();
    await must(world.git(["clone", "-q", world.repoUrl("globex/tools"), join(work, "g")], work));
    expect(world.github.mintsFor("globex")).toBe(1);
  });

  it("an invalid file is rejected: the old config keeps running, and status and the log say why", async () => {
    writeFileSync(configFile, "providers:\n  - name: x\n    type: nope\n");
    await world.keeper!.waitForLog(/config reload rejected/);
    const s = await status();
    expect(s.lastReload.ok).toBe(false);
    expect(s.lastReload.error).toContain("providers[0].type");
    const text = await runCli(["status"], { GIT_TOKEN_KEEPER_DIR: world.stateDir });
    expect(text.stdout).toContain("config reload rejected");
    const work = tempDir();
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], work));
  });

  it("SIGHUP reloads too, and a changed provider is restarted with its new settings", async () => {
    write({ refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [world.providerConfig({ owners: ["acme"] })] });
    await sleep(400);
    const reloads = (world.keeper!.log.match(/"message":"config reloaded"/g) ?? []).length;
    world.keeper!.child.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while ((world.keeper!.log.match(/"message":"config reloaded"/g) ?? []).length <= reloads && Date.now() < deadline) await sleep(50);
    expect(world.keeper!.child.exitCode).toBe(null);
    const s = await status();
    expect(s.lastReload.ok).toBe(true);
    expect(s.providers[0].owners).toEqual(["acme"]);
    const work = tempDir();
    const r = await world.git(["ls-remote", world.repoUrl("globex/tools")], work);
    expect(r.exitCode).toBe(128);
  });
});
