import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { generateKeyPair, SignJWT } from "jose";
import { listenOnLoopback, closeServer } from "../fakes/http-helpers.ts";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fingerprint } from "../../src/log/redact.ts";
import { FakeOidcIssuer } from "../fakes/fake-oidc-issuer.ts";
import type { FakeInstallation } from "../fakes/fake-github.ts";
import { KeeperProcess } from "../support/keeper-process.ts";
import { runCli } from "../support/run-cli.ts";
import { runGit, SHIM_DIR } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";

/**
 * Issue 25: the broker never hands out more than its config allows, and holds under abuse. The
 * broker is the real process; GitHub and the OIDC issuer are the suite's fakes, which refuse what
 * the real ones refuse (a repository the installation does not have, a permission not granted).
 */
let world: World | undefined;
let issuer: FakeOidcIssuer | undefined;
let broker: KeeperProcess | undefined;
const keepers: KeeperProcess[] = [];
afterEach(async () => {
  for (const k of keepers.splice(0)) await k.stop();
  await broker?.stop();
  await issuer?.stop();
  await world?.close();
  broker = undefined;
  issuer = undefined;
  world = undefined;
});
afterAll(removeTempDirs);

type Answer = { status: number; retryAfter: string | null; body: { token?: string; username?: string; expires_at?: string; message?: string; problems?: string[]; ready?: boolean } };
type Make = (w: World) => Record<string, unknown>[];

async function setUp(options: { installations?: FakeInstallation[]; tokenLifetimeMs?: number; providers?: Make; policies?: Make; config?: Record<string, unknown>; issuerDown?: boolean } = {}) {
  world = await World.create({ installations: options.installations ?? [{ id: 11, login: "acme" }], ...(options.tokenLifetimeMs ? { tokenLifetimeMs: options.tokenLifetimeMs } : {}) });
  issuer = new FakeOidcIssuer();
  await issuer.start();
  if (options.issuerDown) issuer.down = true;
  const dir = tempDir("gtk-broker-bounds-");
  const config = brokerConfig(options);
  broker = await KeeperProcess.startBroker({ dir, config });
  return { w: world, i: issuer, b: broker, dir, config };
}

function brokerConfig(options: { providers?: Make; policies?: Make; config?: Record<string, unknown> }): Record<string, unknown> {
  const w = world as World;
  return {
    listen: "127.0.0.1:0",
    providers: options.providers?.(w) ?? [w.providerConfig({ owners: ["acme"] })],
    identities: [{ name: "cluster", issuer: (issuer as FakeOidcIssuer).issuer, audience: "git-token-keeper", jwksCooldown: "1s" }],
    policies: options.policies?.(w) ?? [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: w.gitUrl, owners: ["acme"] }],
    minRemaining: "1s",
    refreshBefore: "3s",
    retryMin: "200ms",
    retryMax: "2s",
    remintInterval: "1s",
    ...options.config,
  };
}

/** A broker that must refuse its config: its exit message. */
async function refusedConfig(options: { installations?: FakeInstallation[]; providers?: Make; policies?: Make; config?: Record<string, unknown> }): Promise<string> {
  world = await World.create({ installations: options.installations ?? [{ id: 11, login: "acme" }] });
  issuer = new FakeOidcIssuer();
  await issuer.start();
  const error = await KeeperProcess.startBroker({ dir: tempDir("gtk-broker-bounds-"), config: brokerConfig(options) }).then(
    (b) => {
      broker = b;
      return "";
    },
    (e: unknown) => String(e),
  );
  expect(error, "the broker started").toMatch(/exited \(2\)/);
  return error;
}

async function ask(sub: string, body: Record<string, unknown> = {}): Promise<Answer> {
  const r = await fetch(`${(broker as KeeperProcess).brokerUrl}/v1/token`, {
    method: "POST",
    headers: { authorization: `Bearer ${await (issuer as FakeOidcIssuer).token({ sub })}`, "content-type": "application/json" },
    body: JSON.stringify({ gitUrl: (world as World).gitUrl, owner: "acme", ...body }),
  });
  return { status: r.status, retryAfter: r.headers.get("retry-after"), body: (await r.json()) as Answer["body"] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const issued = (token: string | undefined) => (token ? world?.github.tokens.get(token) : undefined);
const mintsWith = (repositories: string[] | undefined) => [...(world as World).github.tokens.values()].filter((t) => JSON.stringify(t.repositories) === JSON.stringify(repositories)).length;

describe("the provider is the ceiling of every token (finding 1)", () => {
  it("a repository outside the provider's is refused (403) and never minted; within it, the provider's permissions hold", async () => {
    await setUp({
      installations: [{ id: 11, login: "acme", repositories: ["app", "secret"] }],
      providers: (w) => [w.providerConfig({ owners: ["acme"], repositories: ["app"], permissions: { contents: "read" } })],
    });
    const secret = await ask("agent-a", { repository: "secret" });
    expect(secret.status, secret.body.message).toBe(403);
    expect(secret.body.message).toContain("secret");
    expect(mintsWith(["secret"])).toBe(0);
    const app = await ask("agent-a", { repository: "app" });
    expect(app.status).toBe(200);
    expect(issued(app.body.token)).toMatchObject({ repositories: ["app"], permissions: { contents: "read" } });
    const all = await ask("agent-a");
    expect(issued(all.body.token)).toMatchObject({ repositories: ["app"], permissions: { contents: "read" } });
  });

  it("an agent's clone of a repository outside the provider's fails end to end (scope: repository)", async () => {
    const { w, i } = await setUp({
      installations: [{ id: 11, login: "acme", repositories: ["app", "secret"] }],
      providers: (world) => [world.providerConfig({ owners: ["acme"], repositories: ["app"] })],
    });
    const dir = tempDir("gtk-agent-");
    const tokenFile = join(dir, "identity-token");
    writeFileSync(tokenFile, await i.token({ sub: "agent-a" }));
    const stateDir = join(dir, "state");
    keepers.push(
      await KeeperProcess.start({
        dir,
        stateDir,
        config: { retryMin: "200ms", retryMax: "2s", providers: [{ name: "fleet", type: "broker", url: (broker as KeeperProcess).brokerUrl, gitUrl: w.gitUrl, identityTokenFile: tokenFile, scope: "repository" }] },
      }),
    );
    const work = tempDir();
    const git = (repo: string) => runGit(["clone", "-q", w.repoUrl(repo), join(work, repo.replace("/", "-"))], { cwd: work, home: w.home, shimDir: SHIM_DIR, stateDir, env: { GIT_TOKEN_KEEPER_WAIT: "5" } });
    expect((await git("acme/app")).exitCode).toBe(0);
    const secret = await git("acme/secret");
    expect(secret.exitCode).not.toBe(0);
    expect(mintsWith(["secret"])).toBe(0);
  });

  it("a policy reaching past any provider that may serve its owners is a config error, checked against each", async () => {
    const error = await refusedConfig({
      installations: [{ id: 11, login: "acme" }, { id: 12, login: "globex" }],
      providers: (w) => [
        w.providerConfig({ name: "first", owners: ["acme"] }),
        w.providerConfig({ name: "second", owners: ["globex"], repositories: ["tools"], permissions: { contents: "read" } }),
      ],
      policies: (w) => [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: w.gitUrl, owners: ["globex"], repositories: ["secret"], permissions: { contents: "write" } }],
    });
    expect(error).toContain("policies[0].repositories: secret not in second's repositories");
    expect(error).toContain("policies[0].permissions.contents: write is wider than second's (read)");
  });

  it("permissions: {} is refused, in a policy and in a provider", async () => {
    const error = await refusedConfig({
      providers: (w) => [w.providerConfig({ owners: ["acme"], permissions: {} })],
      policies: (w) => [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: w.gitUrl, owners: ["acme"], permissions: {} }],
    });
    expect(error).toContain("providers[0].permissions: must name at least one permission");
    expect(error).toContain("policies[0].permissions: must name at least one permission");
  });
});

describe("owners are facts, not labels (finding 2)", () => {
  it("an installation set by id serves its own account only: a policy for globex gets globex's installation, never acme's", async () => {
    await setUp({
      installations: [{ id: 11, login: "acme" }, { id: 12, login: "globex" }],
      providers: (w) => {
        const { owners: _drop, ...byId } = w.providerConfig({ name: "acme-by-id", installationId: 11 });
        return [byId, w.providerConfig({ name: "globex-app", owners: ["globex"] })];
      },
      policies: (w) => [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: w.gitUrl, owners: ["globex"] }],
    });
    const r = await ask("agent-a", { owner: "globex" });
    expect(r.status, r.body.message).toBe(200);
    expect(issued(r.body.token)?.owner).toBe("globex");
    expect(world?.github.mintsFor("acme")).toBe(0);
  });

  it("with owners '*', made-up owners never get the one installation's token", async () => {
    await setUp({
      providers: (w) => {
        const { owners: _drop, ...byId } = w.providerConfig({ installationId: 11 });
        return [byId];
      },
      policies: (w) => [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: w.gitUrl, owners: "*" }],
    });
    for (let n = 0; n < 30; n++) {
      const r = await ask("agent-a", { owner: `made-up-${n}` });
      expect(r.status).toBe(403);
    }
    expect(world?.github.mintsFor("acme")).toBe(0);
    // Its own account is served.
    expect((await ask("agent-a", { owner: "acme" })).status).toBe(200);
  });

  it("end to end: the token an agent gets for globex does not open acme's repository", async () => {
    const { w, i } = await setUp({
      installations: [{ id: 11, login: "acme" }, { id: 12, login: "globex" }],
      providers: (world) => {
        const { owners: _drop, ...byId } = world.providerConfig({ name: "acme-by-id", installationId: 11 });
        return [byId, world.providerConfig({ name: "globex-app", owners: ["globex"] })];
      },
      policies: (world) => [{ identity: "cluster", claims: { sub: "agent-*" }, gitUrl: world.gitUrl, owners: ["globex"] }],
    });
    // This test hands the token to git by hand, in a file: not a leak.
    w.github.audit = false;
    const dir = tempDir("gtk-agent-");
    const tokenFile = join(dir, "identity-token");
    writeFileSync(tokenFile, await i.token({ sub: "agent-a" }));
    const stateDir = join(dir, "state");
    keepers.push(await KeeperProcess.start({ dir, stateDir, config: { providers: [{ name: "fleet", type: "broker", url: (broker as KeeperProcess).brokerUrl, gitUrl: w.gitUrl, identityTokenFile: tokenFile }] } }));
    const printed = await runCli(["token", "--url", `${w.gitUrl}/globex/tools.git`], { GIT_TOKEN_KEEPER_DIR: stateDir });
    expect(printed.exitCode, printed.stderr).toBe(0);
    const token = printed.stdout.trim();
    // The globex token, put to acme's repository by hand: refused.
    const work = tempDir();
    const file = join(work, "token");
    writeFileSync(file, token, { mode: 0o600 });
    const clone = await runGit(["-c", `credential.helper=!f() { echo username=x-access-token; echo password=$(cat '${file}'); }; f`, "clone", "-q", w.repoUrl("acme/app"), join(work, "app")], {
      cwd: work,
      home: w.home,
      env: { GIT_TERMINAL_PROMPT: "0" },
    });
    expect(clone.exitCode).not.toBe(0);
    expect(issued(token)?.owner).toBe("globex");
  });
});

describe("demand-driven, bounded scopes (finding 3)", () => {
  it("one-off scopes are not refreshed ahead: each minted once while another scope is asked for two lifetimes", async () => {
    await setUp({ tokenLifetimeMs: 6_000, providers: (w) => [w.providerConfig({ owners: ["acme"] })] });
    for (const repository of ["r1", "r2", "r3", "r4", "r5"]) expect((await ask("agent-a", { repository })).status).toBe(200);
    const until = Date.now() + 13_000;
    while (Date.now() < until) {
      expect((await ask("agent-a", { repository: "app" })).status).toBe(200);
      await sleep(500);
    }
    for (const repository of ["r1", "r2", "r3", "r4", "r5"]) expect(mintsWith([repository]), repository).toBe(1);
    // The scope in use: at most two App calls per 6-second lifetime.
    expect(mintsWith(["app"])).toBeLessThanOrEqual(2 * Math.ceil(13 / 6) + 1);
  });

  it("one identity's asks evict its own scopes only: another identity's cached token stays", async () => {
    await setUp({ config: { maxScopesPerIdentity: 3, maxScopes: 10 } });
    const b1 = await ask("agent-b", { repository: "b1" });
    for (const repository of ["a1", "a2", "a3", "a4", "a5"]) expect((await ask("agent-a", { repository })).status).toBe(200);
    const again = await ask("agent-b", { repository: "b1" });
    expect(again.body.token).toBe(b1.body.token);
    expect(mintsWith(["b1"])).toBe(1);
    // a1 was agent-a's least recently asked: gone, minted again.
    await ask("agent-a", { repository: "a1" });
    expect(mintsWith(["a1"])).toBe(2);
  });

  it("a permanent failure (422: no such repository) is answered from cache, not retried in the background", async () => {
    await setUp({ installations: [{ id: 11, login: "acme", repositories: ["app"] }] });
    const first = await ask("agent-a", { repository: "missing" });
    expect(first.status).toBe(503);
    expect(first.body.message).not.toMatch(/installation|11/);
    await sleep(5_000);
    const refused = world?.github.requests.filter((r) => r.status === 422).length;
    expect(refused).toBe(1);
    const second = await ask("agent-a", { repository: "missing" });
    expect(second.status).toBe(503);
    expect(world?.github.requests.filter((r) => r.status === 422).length).toBeLessThanOrEqual(2);
  });
});

describe("refused from the holder only (finding 8)", () => {
  it("an identity never handed the token cannot have it re-minted; its holder can", async () => {
    await setUp();
    const held = await ask("agent-a");
    const token = held.body.token as string;
    const stranger = await ask("agent-b", { refused: fingerprint(token) });
    expect(stranger.body.token).toBe(token);
    expect(world?.github.mintsFor("acme")).toBe(1);
    const holder = await ask("agent-a", { refused: fingerprint(token) });
    expect(holder.status).toBe(200);
    expect(holder.body.token).not.toBe(token);
  });
});

describe("audit lines, health and what outsiders see", () => {
  it("unverified claims are logged apart and cut short; verified claims are logged exactly", async () => {
    const { b, i } = await setUp();
    const forged = `${(await i.token({ sub: `agent-${"x".repeat(600)}` })).slice(0, -4)}AAAA`;
    await fetch(`${b.brokerUrl}/v1/token`, { method: "POST", headers: { authorization: `Bearer ${forged}` }, body: "{}" });
    const unauthenticated = b.records().find((r) => r.decision === "unauthenticated") as Record<string, unknown>;
    expect(unauthenticated.sub).toBeUndefined();
    expect((unauthenticated.unverified as { sub: string }).sub.length).toBeLessThanOrEqual(256);
    // A claim value a shape pattern would have cut: verified, it is logged as it is.
    const sub = "agent-token=abcdefgh12345678";
    expect((await ask(sub)).status).toBe(200);
    const allowed = b.records().find((r) => r.decision === "allowed") as Record<string, unknown>;
    expect(allowed.sub).toBe(sub);
    expect((allowed.claims as Record<string, string>).sub).toBe(sub);
  });

  it("lines about requests that prove nobody are bounded", async () => {
    const { b } = await setUp();
    // In batches: one client address holds at most maxConnectionsPerClient (100) connections.
    for (let batch = 0; batch < 8; batch++) {
      await Promise.all(Array.from({ length: 50 }, () => fetch(`${b.brokerUrl}/v1/token`, { method: "POST", headers: { authorization: "Bearer a.b.c" }, body: "{}" })));
    }
    const lines = b.records().filter((r) => r.decision === "unauthenticated");
    expect(lines.length).toBeLessThan(400);
    const metrics = await (await fetch(`${b.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/git_token_keeper_broker_requests_total\{decision="unauthenticated"\} 400/);
  });

  it("/livez and /readyz: without the issuer's keys, not ready, and a token ask is 503 with Retry-After, never 401", async () => {
    const { b, i } = await setUp({ issuerDown: true });
    expect((await fetch(`${b.brokerUrl}/livez`)).status).toBe(200);
    const ready = await fetch(`${b.brokerUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { problems: string[] }).problems.join()).toContain("identity cluster");
    const r = await ask("agent-a");
    expect(r.status).toBe(503);
    expect(r.retryAfter).toMatch(/^\d+$/);
    i.down = false;
    await sleep(1_200);
    let healthy = await fetch(`${b.brokerUrl}/readyz`);
    for (let n = 0; n < 20 && healthy.status !== 200; n++) {
      await sleep(250);
      healthy = await fetch(`${b.brokerUrl}/healthz`);
    }
    expect(healthy.status).toBe(200);
    expect((await ask("agent-a")).status).toBe(200);
  });
});

describe("connections (finding 5)", () => {
  it("over maxConnections a connection is refused; one that never sends a request is closed", async () => {
    const { b } = await setUp({ config: { maxConnections: 3 } });
    const { port } = new URL(b.brokerUrl);
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let n = 0; n < 4; n++) {
      const socket = connect(Number(port), "127.0.0.1");
      // The broker resets the one over the cap, perhaps before the client sees it connected.
      socket.on("error", () => undefined);
      sockets.push(socket);
      closed.push(new Promise((r) => socket.once("close", () => r())));
      // Let the broker take the connection before the next one comes.
      await sleep(300);
    }
    // The fourth is closed at once, while the three before it are held.
    await closed[3];
    expect(sockets.slice(0, 3).map((s) => s.destroyed)).toEqual([false, false, false]);
    // The three idle ones: closed by the broker (the first-request limit), not held forever.
    await Promise.all(closed);
    expect((await fetch(`${b.brokerUrl}/livez`)).status).toBe(200);
  }, 30_000);
});

describe("reload (finding 11)", () => {
  it("SIGHUP: a policy change takes effect at once; an unchanged provider's cached token stays; a bad file changes nothing", async () => {
    const { b, dir, config } = await setUp();
    const first = await ask("agent-a");
    expect(first.status).toBe(200);
    const write = (c: Record<string, unknown>) => writeFileSync(join(dir, "broker.yaml"), JSON.stringify({ metricsListen: "127.0.0.1:0", ...c }));
    const reloads = () => (b.log.match(/"message":"config reloaded"/g) ?? []).length;
    const w = world as World;
    write({ ...config, policies: [{ identity: "cluster", claims: { sub: "builder-*" }, gitUrl: w.gitUrl, owners: ["acme"] }] });
    b.signal("SIGHUP");
    await b.waitForLog(/"message":"config reloaded"/);
    expect((await ask("agent-a")).status).toBe(403);
    write(config);
    b.signal("SIGHUP");
    while (reloads() < 2) await sleep(50);
    const back = await ask("agent-a");
    expect(back.body.token).toBe(first.body.token);
    expect(w.github.mintsFor("acme")).toBe(1);
    writeFileSync(join(dir, "broker.yaml"), "policies: [");
    b.signal("SIGHUP");
    await b.waitForLog(/config not reloaded/);
    expect((await ask("agent-a")).body.token).toBe(first.body.token);
    expect(readFileSync(join(dir, "broker.yaml"), "utf8")).toBe("policies: [");
  });
});

/** A JWT from the test's issuer URL with a kid the issuer does not have (a forger's). */
async function forgedKid(): Promise<string> {
  const { privateKey } = await generateKeyPair("RS256");
  return new SignJWT({ sub: "agent-x" }).setProtectedHeader({ alg: "RS256", kid: "forged" }).setIssuer((issuer as FakeOidcIssuer).issuer).setAudience("git-token-keeper").setIssuedAt().setExpirationTime("5m").sign(privateKey);
}

describe("the broker's fresh-eyes review (issue 25)", () => {
  it("two reloads close together apply in order: a slow one never lands after a later one", async () => {
    const hang = await listenOnLoopback(() => undefined);
    try {
      const { b, dir, config } = await setUp();
      const w = world as World;
      const write = (c: Record<string, unknown>) => writeFileSync(join(dir, "broker.yaml"), JSON.stringify({ metricsListen: "127.0.0.1:0", ...c }));
      const done = () => (b.log.match(/"message":"config (reloaded|not reloaded)/g) ?? []).length;
      expect((await ask("agent-1")).status).toBe(200);
      // v2: another identity whose keys never come (its reload waits on them).
      write({ ...config, identities: [...(config.identities as unknown[]), { name: "slow", issuer: "https://slow.example", jwksUrl: `${hang.url}/jwks`, audience: "x" }] });
      b.signal("SIGHUP");
      await sleep(300);
      // v3: back to one identity, and agent-1 revoked.
      write({ ...config, policies: [{ identity: "cluster", claims: { sub: "agent-2" }, gitUrl: w.gitUrl, owners: ["acme"] }] });
      b.signal("SIGHUP");
      while (done() < 2) await sleep(100);
      expect((await ask("agent-1")).status).toBe(403);
      expect((await ask("agent-2")).status).toBe(200);
    } finally {
      hang.server.closeAllConnections();
      await closeServer(hang.server);
    }
  }, 40_000);

  it("a reload that changes one identity keeps the others' keys: an issuer down meanwhile still verifies", async () => {
    const { b, dir, config, i } = await setUp();
    const other = new FakeOidcIssuer();
    await other.start();
    try {
      const identities = [...(config.identities as Record<string, unknown>[]), { name: "other", issuer: other.issuer, audience: "git-token-keeper" }];
      writeFileSync(join(dir, "broker.yaml"), JSON.stringify({ metricsListen: "127.0.0.1:0", ...config, identities }));
      b.signal("SIGHUP");
      await b.waitForLog(/"message":"config reloaded"/);
      expect((await ask("agent-a")).status).toBe(200);
      i.down = true;
      writeFileSync(join(dir, "broker.yaml"), JSON.stringify({ metricsListen: "127.0.0.1:0", ...config, identities: [identities[0], { ...identities[1], audience: "changed" }] }));
      b.signal("SIGHUP");
      while ((b.log.match(/"message":"config reloaded"/g) ?? []).length < 2) await sleep(50);
      expect((await ask("agent-a")).status).toBe(200);
    } finally {
      await other.stop();
    }
  });

  it("a forged kid that armed the cooldown does not fail a genuine token signed with a key rotated just after: 503 with Retry-After, never 401", async () => {
    const { i } = await setUp();
    await sleep(1_100);
    const forged = await fetch(`${(broker as KeeperProcess).brokerUrl}/v1/token`, { method: "POST", headers: { authorization: `Bearer ${await forgedKid()}` }, body: "{}" });
    expect(forged.status).toBe(401);
    await i.rotate();
    const genuine = await ask("agent-a");
    expect(genuine.status).not.toBe(401);
    if (genuine.status === 503) {
      expect(genuine.retryAfter).toMatch(/^\d+$/);
      await sleep(Number(genuine.retryAfter) * 1000 + 100);
      expect((await ask("agent-a")).status).toBe(200);
    }
  });

  it("one client address holds at most maxConnectionsPerClient connections, and a caller that proves nobody gets its connection closed", async () => {
    const { b } = await setUp({ config: { maxConnectionsPerClient: 3 } });
    const { port } = new URL(b.brokerUrl);
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    const open = async () => {
      const socket = connect(Number(port), "127.0.0.1");
      socket.on("error", () => undefined);
      sockets.push(socket);
      closed.push(new Promise((r) => socket.once("close", () => r())));
      // Let the broker take the connection before the next one comes.
      await sleep(300);
    };
    for (let n = 0; n < 4; n++) await open();
    // The fourth is closed by the broker at once, while the three before it are held (they would
    // all go together if it were the first-request limit that closed it).
    await closed[3];
    expect(sockets.slice(0, 3).map((s) => s.destroyed)).toEqual([false, false, false]);
    for (const socket of sockets) socket.destroy();
    await Promise.all(closed);
    await sleep(300);
    // A request that proves nobody: answered 401, and the connection closed by the broker.
    const answer = await new Promise<string>((resolve, reject) => {
      let text = "";
      const socket = connect(Number(port), "127.0.0.1", () => socket.write("POST /v1/token HTTP/1.1\r\nHost: broker\r\nAuthorization: Bearer a.b.c\r\nContent-Length: 2\r\n\r\n{}"));
      socket.on("data", (c: Buffer) => (text += c.toString()));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
    expect(answer.toLowerCase()).toContain("connection: close");
  });

  it("new owners nobody listed are looked up a few a minute per identity: another identity's listed owner is not held up", async () => {
    await setUp({
      installations: [{ id: 11, login: "acme" }, { id: 12, login: "globex" }],
      providers: (w) => {
        const { owners: _drop, ...any } = w.providerConfig({});
        return [any];
      },
      policies: (w) => [
        { identity: "cluster", claims: { sub: "team-a" }, gitUrl: w.gitUrl, owners: "*" },
        { identity: "cluster", claims: { sub: "team-b" }, gitUrl: w.gitUrl, owners: ["globex"] },
      ],
    });
    const answers = [];
    for (let n = 0; n < 25; n++) answers.push((await ask("team-a", { owner: `made-up-${n}` })).status);
    expect(answers.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(answers.slice(0, 10).every((s) => s === 503)).toBe(true);
    const b = await ask("team-b", { owner: "globex" });
    expect(b.status, b.body.message).toBe(200);
  });

  it("an installationId provider whose GitHub fails: asks do not each call GitHub", async () => {
    await setUp({
      providers: (w) => {
        const { owners: _drop, ...byId } = w.providerConfig({ installationId: 11 });
        return [byId];
      },
    });
    world?.github.failNext(502, 10_000);
    const before = world?.github.requests.length ?? 0;
    await Promise.all(Array.from({ length: 40 }, (_, n) => ask(`agent-${n % 8}`)));
    expect((world?.github.requests.length ?? 0) - before).toBeLessThanOrEqual(2);
    world?.github.clearFaults();
  });

  it("over maxScopes, the identity holding the most scopes gives one up first: many subs of one principal do not evict a single-scope identity", async () => {
    await setUp({ config: { maxScopes: 10, maxScopesPerIdentity: 5 } });
    const victim = await ask("agent-victim", { repository: "mine" });
    for (const sub of ["agent-x1", "agent-x2", "agent-x3"]) for (const n of [1, 2, 3, 4]) await ask(sub, { repository: `${sub}-${n}` });
    const again = await ask("agent-victim", { repository: "mine" });
    expect(again.body.token).toBe(victim.body.token);
    expect(mintsWith(["mine"])).toBe(1);
  });

  it("denials of verified callers are bounded in the log like the unverified; the 403 does not name the policy's claims", async () => {
    const { b } = await setUp({ policies: (w) => [{ identity: "cluster", claims: { repository_owner_id: "42" }, gitUrl: w.gitUrl, owners: ["acme"] }] });
    const token = await (issuer as FakeOidcIssuer).token({ sub: "someone", repository_owner_id: "7" });
    // In batches: one client address holds at most maxConnectionsPerClient (100) connections.
    const asks: Response[] = [];
    for (let batch = 0; batch < 6; batch++) {
      asks.push(...(await Promise.all(Array.from({ length: 50 }, () => fetch(`${b.brokerUrl}/v1/token`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ gitUrl: (world as World).gitUrl, owner: "acme" }) })))));
    }
    const first = (await asks[0]?.json()) as { message: string };
    expect(first.message).not.toContain("repository_owner_id");
    // ratePerIdentity lets some through to a decision; those and the 429s together stay bounded.
    expect(b.records().filter((r) => r.audit === true).length).toBeLessThan(300);
  });

  it("ratePerIdentity under 0.5 still lets a first request through", async () => {
    await setUp({ config: { ratePerIdentity: 0.4 } });
    expect((await ask("agent-a")).status).toBe(200);
  });

  it("/readyz names what is wrong but not the issuer's URLs or errors", async () => {
    const { b } = await setUp({ issuerDown: true });
    const body = await (await fetch(`${b.brokerUrl}/readyz`)).text();
    expect(body).toContain("identity cluster");
    expect(body).not.toContain("127.0.0.1");
    expect(body).not.toContain("http");
  });
});
