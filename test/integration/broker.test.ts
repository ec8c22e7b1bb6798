import { createHmac, KeyObject, randomBytes, sign } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeOidcIssuer } from "../fakes/fake-oidc-issuer.ts";
import { listenOnLoopback, closeServer } from "../fakes/http-helpers.ts";
import { KeeperProcess } from "../support/keeper-process.ts";
import { runGit, SHIM_DIR } from "../support/run-git.ts";
import { leakedTokens } from "../support/secrets-audit.ts";
import { makeTestCa } from "../support/test-ca.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/**
 * A fleet without the App key on any build machine: a broker holds it, two agent keepers get
 * scoped tokens from it by proving their workload identity (an OIDC issuer's JWT, as a
 * Kubernetes projected service-account token), over real TLS.
 */
describe("the broker and two keepers with no App key", () => {
  let world: World;
  let issuer: FakeOidcIssuer;
  let ca: { caFile: string; key: string; cert: string };
  let brokerDir: string;
  let broker: KeeperProcess;
  let brokerConfig: Record<string, unknown>;
  let port = 0;
  const agents: { name: string; dir: string; stateDir: string; tokenFile: string; keeper: KeeperProcess }[] = [];
  const sub = (name: string) => `system:serviceaccount:ci:${name}`;

  const startBroker = async () => {
    broker = await KeeperProcess.startBroker({ dir: brokerDir, config: { ...brokerConfig, listen: `127.0.0.1:${port}` } });
    port = Number(new URL(broker.brokerUrl).port);
  };

  /** POST /v1/token as an agent would, with any bearer and body. */
  const ask = (bearer: string | undefined, body: unknown = { gitUrl: world.gitUrl, owner: "acme" }) =>
    new Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = request(
        { host: "localhost", port, path: "/v1/token", method: "POST", ca: readFileSync(ca.caFile), headers: { "content-type": "application/json", ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) } },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => {
            let parsed: Record<string, unknown> = {};
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = { text };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
          });
        },
      );
      req.on("error", reject);
      req.end(typeof body === "string" ? body : JSON.stringify(body));
    });

  const gitVia = (agent: (typeof agents)[number], args: string[], cwd: string, shim = true) => runGit(args, { cwd, home: world.home, shimDir: shim ? SHIM_DIR : undefined, stateDir: agent.stateDir });

  beforeAll(async () => {
    world = await World.create();
    issuer = new FakeOidcIssuer();
    await issuer.start();
    ca = makeTestCa();
    brokerDir = tempDir("gtk-broker-");
    writeFileSync(join(brokerDir, "tls.crt"), ca.cert);
    writeFileSync(join(brokerDir, "tls.key"), ca.key, { mode: 0o600 });
    brokerConfig = {
      tls: { certFile: join(brokerDir, "tls.crt"), keyFile: join(brokerDir, "tls.key") },
      providers: [world.providerConfig()],
      identities: [
        { name: "cluster", issuer: issuer.issuer, audience: "git-token-keeper", jwksCooldown: "1s" },
        // GitHub Actions' job tokens, for an audience of their own (same issuer here).
        { name: "actions", issuer: issuer.issuer, audience: "gtk-actions", jwksCooldown: "1s" },
      ],
      policies: [
        { identity: "cluster", claims: { sub: "system:serviceaccount:ci:*" }, gitUrl: world.gitUrl, owners: ["acme"] },
        { identity: "cluster", claims: { sub: "system:serviceaccount:ci:*" }, gitUrl: world.gitUrl, owners: ["globex"], repositories: ["tools"], permissions: { contents: "read", metadata: "read" } },
        { identity: "actions", claims: { repository_owner: "acme", ref: "refs/heads/*" }, gitUrl: world.gitUrl, owners: ["acme"] },
      ],
      minRemaining: "5m",
      refreshBefore: "10m",
      remintInterval: "1s",
      retryMin: "200ms",
      retryMax: "2s",
      ratePerIdentity: 20,
    };
    await startBroker();
    for (const name of ["agent-a", "agent-b"]) {
      const dir = tempDir(`gtk-${name}-`);
      const tokenFile = join(dir, "identity-token");
      writeFileSync(tokenFile, await issuer.token({ sub: sub(name) }));
      const stateDir = join(dir, "state");
      const keeper = await KeeperProcess.start({
        dir,
        stateDir,
        config: {
          refreshBefore: "10m",
          retryMin: "200ms",
          retryMax: "2s",
          remintInterval: "1s",
          providers: [{ name: "fleet", type: "broker", url: `https://localhost:${port}`, gitUrl: world.gitUrl, identityTokenFile: tokenFile, caFile: ca.caFile }],
        },
      });
      agents.push({ name, dir, stateDir, tokenFile, keeper });
    }
  });

  afterAll(async () => {
    for (const a of agents) await a.keeper.stop();
    await broker?.stop();
    await issuer.stop();
    await world.close();
    removeTempDirs();
  });

  it("both agents clone and push through the shim; the App minted each scope once; no agent holds a key", async () => {
    const before = world.github.mintsFor("acme");
    for (const agent of agents) {
      const work = tempDir();
      const app = join(work, "app");
      // Plain git has no credentials at all on these machines.
      expect((await gitVia(agent, ["clone", "-q", world.repoUrl("acme/app"), join(work, "plain")], work, false)).exitCode).not.toBe(0);
      await must(gitVia(agent, ["clone", "-q", world.repoUrl("acme/app"), app], work));
      writeFileSync(join(app, `${agent.name}.txt`), "x\n");
      await must(gitVia(agent, ["add", "."], app));
      await must(gitVia(agent, ["commit", "-q", "-m", agent.name], app));
      await must(gitVia(agent, ["push", "-q", "origin", `HEAD:refs/heads/${agent.name}`], app));
      // globex: the policy narrows the token to the repository tools, read-only.
      await must(gitVia(agent, ["clone", "-q", world.repoUrl("globex/tools"), join(work, "tools")], work));
      const config = readFileSync(join(agent.dir, "keeper.yaml"), "utf8");
      expect(config).not.toMatch(/privateKey|BEGIN/);
    }
    expect(world.github.mintsFor("acme") - before).toBe(1);
    const globex = [...world.github.tokens.values()].filter((t) => t.owner === "globex");
    expect(globex).toHaveLength(1);
    expect(globex[0]).toMatchObject({ repositories: ["tools"], permissions: { contents: "read", metadata: "read" } });
    // One audit line per decision, naming the policy, with the token's fingerprint, never the token.
    const allowed = broker.records().filter((r) => r.audit === true && r.decision === "allowed");
    expect(allowed.length).toBeGreaterThanOrEqual(4);
    expect(allowed[0]).toMatchObject({ iss: issuer.issuer, identity: "cluster", policy: expect.stringMatching(/^policies\[\d\]$/), fingerprint: expect.stringMatching(/^sha256:/) });
    expect(leakedTokens(broker.log, [...world.github.tokens.keys()]).map((t) => t.slice(0, 8))).toEqual([]);
    for (const a of agents) expect(broker.log).not.toContain(readFileSync(a.tokenFile, "utf8").split(".")[2]);
  });

  it("a keeper on GitHub Actions proves the job's OIDC token, asked from the runner for the broker's audience", async () => {
    const requestToken = randomBytes(16).toString("hex");
    const asked: string[] = [];
    const runner = await listenOnLoopback(async (req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      asked.push(u.searchParams.get("audience") ?? "");
      if (req.headers.authorization !== `bearer ${requestToken}`) return void res.writeHead(401).end();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ value: await issuer.token({ sub: "repo:acme/app:ref:refs/heads/main", repository_owner: "acme", ref: "refs/heads/main" }, { audience: u.searchParams.get("audience") ?? "" }) }));
    });
    const dir = tempDir("gtk-actions-");
    const keeper = await KeeperProcess.start({
      dir,
      stateDir: join(dir, "state"),
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${runner.url}/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken },
      config: { providers: [{ name: "fleet", type: "broker", url: `https://localhost:${port}`, gitUrl: world.gitUrl, actionsAudience: "gtk-actions", caFile: ca.caFile }] },
    });
    try {
      const work = tempDir();
      await must(runGit(["clone", "-q", world.repoUrl("acme/app"), join(work, "app")], { cwd: work, home: world.home, shimDir: SHIM_DIR, stateDir: join(dir, "state") }));
      expect(asked).toContain("gtk-actions");
      expect(broker.records().some((r) => r.decision === "allowed" && r.identity === "actions" && r.sub === "repo:acme/app:ref:refs/heads/main")).toBe(true);
      // The same job token, for globex: no policy of the actions identity allows it.
      const denied = await runGit(["ls-remote", world.repoUrl("globex/tools")], { cwd: work, home: world.home, shimDir: SHIM_DIR, stateDir: join(dir, "state") });
      expect(denied.exitCode).not.toBe(0);
      expect(denied.stderr).toContain("no policy allows owner 'globex'");
    } finally {
      await keeper.stop();
      await closeServer(runner.server);
    }
  });

  it("scope: repository: one token per repository, each narrowed to it by the broker", async () => {
    const dir = tempDir("gtk-agent-repos-");
    const tokenFile = join(dir, "identity-token");
    writeFileSync(tokenFile, await issuer.token({ sub: sub("agent-c") }));
    const stateDir = join(dir, "state");
    const keeper = await KeeperProcess.start({
      dir,
      stateDir,
      config: { providers: [{ name: "fleet", type: "broker", url: `https://localhost:${port}`, gitUrl: world.gitUrl, identityTokenFile: tokenFile, caFile: ca.caFile, scope: "repository" }] },
    });
    try {
      const git = (args: string[], cwd: string) => runGit(args, { cwd, home: world.home, shimDir: SHIM_DIR, stateDir });
      const work = tempDir();
      await must(git(["clone", "-q", world.repoUrl("acme/app"), join(work, "app")], work));
      await must(git(["clone", "-q", world.repoUrl("acme/lib"), join(work, "lib")], work));
      writeFileSync(join(work, "app", "per-repo.txt"), "x\n");
      await must(git(["add", "."], join(work, "app")));
      await must(git(["commit", "-q", "-m", "per repository"], join(work, "app")));
      await must(git(["push", "-q", "origin", "HEAD:refs/heads/per-repository"], join(work, "app")));
      expect(readdirSync(join(stateDir, "tokens", "fleet")).sort()).toEqual(["acme~app", "acme~lib"]);
      const tokenOf = (scope: string) => /^token=(.*)$/m.exec(readFileSync(join(stateDir, "tokens", "fleet", scope), "utf8"))?.[1] ?? "";
      expect(world.github.tokens.get(tokenOf("acme~app"))?.repositories).toEqual(["app"]);
      expect(world.github.tokens.get(tokenOf("acme~lib"))?.repositories).toEqual(["lib"]);
    } finally {
      await keeper.stop();
    }
  });

  it("a token the host refused is re-minted once through the broker, for both agents", async () => {
    const before = world.github.mintsFor("acme");
    world.github.revokeAll();
    for (const agent of agents) {
      const work = tempDir();
      const r = await must(gitVia(agent, ["ls-remote", world.repoUrl("acme/app")], work));
      expect(r.stdout).toContain("refs/heads/main");
    }
    expect(world.github.mintsFor("acme") - before).toBe(1);
  });

  // Each refusal for its own reason, as the agent and the audit line say it.
  const REASONS: Record<string, RegExp> = {
    "no Authorization header": /Authorization: Bearer/,
    garbage: /not a signed JWT/,
    "signed by another key under the issuer's kid": /signature does not verify/,
    "expired (past the 60 s skew)": /expired/,
    "not yet valid (nbf)": /nbf claim/,
    "issued in the future (iat)": /issued in the future/,
    "another issuer": /issuer is not configured/,
    "the issuer's URL with a trailing slash (issuers compare exactly)": /issuer is not configured/,
    "another audience": /aud claim/,
    "alg none": /alg is not allowed/,
    "HS256 with the issuer's public key as the secret": /alg is not allowed/,
    "without exp": /exp claim is not acceptable \(missing\)/,
    "sub given twice": /claim sub twice/,
    "sub of the wrong type": /sub claim has the wrong type/,
    "an unknown crit header": /x-gtk.*not recognized/,
    "9,000 characters (over the broker's limit)": /longer than 8192/,
  };

  it.each([
    ["no Authorization header", async () => undefined],
    ["garbage", async () => "not-a-jwt"],
    ["signed by another key under the issuer's kid", async () => {
      const { privateKey } = await generateKeyPair("RS256");
      return new SignJWT({ sub: sub("x") }).setProtectedHeader({ alg: "RS256", kid: issuer.publicJwk.kid as string }).setIssuer(issuer.issuer).setAudience("git-token-keeper").setIssuedAt().setExpirationTime("5m").sign(privateKey);
    }],
    ["expired (past the 60 s skew)", async () => issuer.token({ sub: sub("x") }, { expiresIn: Math.floor(Date.now() / 1000) - 120 })],
    ["not yet valid (nbf)", async () => issuer.token({ sub: sub("x"), nbf: Math.floor(Date.now() / 1000) + 600 })],
    ["issued in the future (iat)", async () => signRaw({ iss: issuer.issuer, aud: "git-token-keeper", sub: sub("x"), iat: Math.floor(Date.now() / 1000) + 600, exp: Math.floor(Date.now() / 1000) + 900 })],
    ["another issuer", async () => {
      const other = new FakeOidcIssuer();
      await other.start();
      const t = await other.token({ sub: sub("x") });
      await other.stop();
      return t;
    }],
    ["the issuer's URL with a trailing slash (issuers compare exactly)", async () => signRaw({ iss: `${issuer.issuer}/`, aud: "git-token-keeper", sub: sub("x"), exp: Math.floor(Date.now() / 1000) + 300 })],
    ["another audience", async () => issuer.token({ sub: sub("x") }, { audience: "vault" })],
    ["alg none", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ iss: issuer.issuer, aud: "git-token-keeper", sub: sub("x"), exp: Math.floor(Date.now() / 1000) + 300 })}.`],
    ["HS256 with the issuer's public key as the secret", async () => {
      const head = `${b64({ alg: "HS256", kid: issuer.publicJwk.kid })}.${b64({ iss: issuer.issuer, aud: "git-token-keeper", sub: sub("x"), exp: Math.floor(Date.now() / 1000) + 300 })}`;
      return `${head}.${createHmac("sha256", JSON.stringify(issuer.publicJwk)).update(head).digest("base64url")}`;
    }],
    ["without exp", async () => {
      return signRaw({ iss: issuer.issuer, aud: "git-token-keeper", sub: sub("x"), iat: Math.floor(Date.now() / 1000) });
    }],
    ["sub given twice", async () => signRawText(`{"iss":${JSON.stringify(issuer.issuer)},"aud":"git-token-keeper","sub":"someone:else","exp":${Math.floor(Date.now() / 1000) + 300},"sub":${JSON.stringify(sub("x"))}}`)],
    ["sub of the wrong type", async () => signRaw({ iss: issuer.issuer, aud: "git-token-keeper", sub: 42, exp: Math.floor(Date.now() / 1000) + 300 })],
    ["an unknown crit header", async () => signRaw({ iss: issuer.issuer, aud: "git-token-keeper", sub: sub("x"), exp: Math.floor(Date.now() / 1000) + 300 }, { crit: ["x-gtk"], "x-gtk": 1 })],
    ["9,000 characters (over the broker's limit)", async () => issuer.token({ sub: sub("x"), pad: "p".repeat(6600) })],
  ])("refuses an identity token: %s (401 and an audit line)", async (_name, make) => {
    const token = await make();
    const before = broker.records().filter((r) => r.decision === "unauthenticated").length;
    const r = await ask(token);
    expect(r.status).toBe(401);
    const count = () => broker.records().filter((r2) => r2.decision === "unauthenticated").length;
    for (let i = 0; i < 100 && count() < before + 1; i++) await new Promise((r2) => setTimeout(r2, 20));
    expect(count()).toBe(before + 1);
    expect(r.body.token).toBeUndefined();
    expect(String(r.body.message)).toMatch(REASONS[_name] as RegExp);
  });

  it("never fetches keys a token's header names (jku, x5u, an embedded jwk)", async () => {
    let fetched = 0;
    const { server, url } = await listenOnLoopback((_req, res) => {
      fetched++;
      res.end("{}");
    });
    try {
      const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid: "attacker" };
      const token = await new SignJWT({ sub: sub("x") })
        .setProtectedHeader({ alg: "RS256", kid: "attacker", jku: `${url}/jwks`, x5u: `${url}/cert`, jwk })
        .setIssuer(issuer.issuer)
        .setAudience("git-token-keeper")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey);
      expect((await ask(token)).status).toBe(401);
      expect(fetched).toBe(0);
    } finally {
      await closeServer(server);
    }
  });

  it("an oversized Authorization header is cut by the HTTP server (431)", async () => {
    expect((await ask("x".repeat(20_000))).status).toBe(431);
  });

  it.each([
    ["an owner no policy allows", sub("a"), { owner: "initech" }],
    ["a repository outside the policy's", sub("a"), { owner: "globex", repository: "secrets" }],
    ["a subject the glob does not match (anchored)", "x-system:serviceaccount:ci:a", {}],
    ["a subject in another case (case-exact)", "System:serviceaccount:ci:a", {}],
    ["another namespace", "system:serviceaccount:prod:a", {}],
  ])("denies %s (403 naming the reason)", async (_name, subject, body) => {
    const r = await ask(await issuer.token({ sub: subject }), { gitUrl: world.gitUrl, owner: "acme", ...body });
    expect(r.status).toBe(403);
    expect(String(r.body.message)).toMatch(/no (policy|provider)/);
  });

  it("a repository named in the ask narrows the token to it; permissions never widen", async () => {
    const r = await ask(await issuer.token({ sub: sub("a") }), { gitUrl: world.gitUrl, owner: "acme", repository: "lib" });
    expect(r.status).toBe(200);
    expect(world.github.tokens.get(String(r.body.token))).toMatchObject({ owner: "acme", repositories: ["lib"] });
    // A body asking for more than its keys allows is refused, not read.
    const wider = await ask(await issuer.token({ sub: sub("a") }), { gitUrl: world.gitUrl, owner: "globex", permissions: { contents: "write" } });
    expect(wider.status).toBe(400);
  });

  it("a scope the provider cannot mint now gets 503 with Retry-After; /metrics counts decisions and holds no token", async () => {
    world.github.setMode("reset");
    try {
      const r = await ask(await issuer.token({ sub: sub("a") }), { gitUrl: world.gitUrl, owner: "acme", repository: "never-minted" });
      expect(r.status).toBe(503);
      expect(r.headers["retry-after"]).toMatch(/^\d+$/);
      expect(String(r.body.message)).toMatch(/no token for this scope now/);
    } finally {
      world.github.setMode("up");
    }
    // /metrics is on a listener of its own, not the token API's.
    const notHere = await new Promise<number>((resolve, reject) => {
      request({ host: "localhost", port, path: "/metrics", ca: readFileSync(ca.caFile) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end();
    });
    expect(notHere).toBe(404);
    const metrics = await (await fetch(`${broker.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/git_token_keeper_broker_requests_total\{decision="allowed"\} \d+/);
    expect(metrics).toMatch(/git_token_keeper_broker_requests_total\{decision="unavailable"\} 1/);
    expect(leakedTokens(metrics, [...world.github.tokens.keys()])).toEqual([]);
  });

  it("a flood from one identity is rate-limited (429) while another is served", async () => {
    const flood = await issuer.token({ sub: sub("flood") });
    const results = await Promise.all(Array.from({ length: 80 }, () => ask(flood)));
    const limited = results.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]?.headers["retry-after"]).toMatch(/^\d+$/);
    expect((await ask(await issuer.token({ sub: sub("quiet") }))).status).toBe(200);
  });

  it("picks up the issuer's rotated key; unknown kids cannot make it fetch the JWKS more often than its cooldown", async () => {
    await new Promise((r) => setTimeout(r, 1100));
    await issuer.rotate("ES256");
    expect((await ask(await issuer.token({ sub: sub("a") }))).status).toBe(200);
    const fetchesBefore = issuer.jwksFetches;
    const started = Date.now();
    for (let i = 0; i < 40; i++) {
      const { privateKey } = await generateKeyPair("ES256");
      const t = await new SignJWT({ sub: sub("x") }).setProtectedHeader({ alg: "ES256", kid: randomBytes(6).toString("hex") }).setIssuer(issuer.issuer).setAudience("git-token-keeper").setIssuedAt().setExpirationTime("5m").sign(privateKey);
      // 401 once keys fetched after it still lack its kid; 503 while the cooldown forbids a fetch
      // (its kid might be the issuer's newest: issue 25's review). Never a token.
      expect([401, 503]).toContain((await ask(t)).status);
    }
    const seconds = (Date.now() - started) / 1000;
    expect(issuer.jwksFetches - fetchesBefore).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });

  it("broker restarted mid-build: agents keep serving, then recover through the new broker without a restart", async () => {
    await broker.stop();
    for (const agent of agents) await must(gitVia(agent, ["ls-remote", world.repoUrl("acme/app")], tempDir()));
    await startBroker();
    world.github.revokeAll();
    // Identity tokens are rotated by the kubelet; the agents read the file at every request.
    for (const agent of agents) writeFileSync(agent.tokenFile, await issuer.token({ sub: sub(agent.name) }));
    for (const agent of agents) {
      const r = await must(gitVia(agent, ["ls-remote", world.repoUrl("acme/app")], tempDir()));
      expect(r.stdout).toContain("refs/heads/main");
    }
  });

  it("a renewed TLS certificate is served without a restart", async () => {
    const fingerprintServed = (caFile: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: "localhost", port, ca: readFileSync(caFile), servername: "localhost" }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.on("error", reject);
      });
    const before = await fingerprintServed(ca.caFile);
    const renewed = makeTestCa();
    const certFile = join(brokerDir, "tls.crt");
    const keyFile = join(brokerDir, "tls.key");
    // As cert-manager or a mounted Secret renews it: the files change in place.
    writeFileSync(keyFile, renewed.key);
    writeFileSync(certFile, renewed.cert);
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await fingerprintServed(renewed.caFile).catch(() => before);
    }
    expect(after).not.toBe(before);
    expect(broker.log).toContain("TLS certificate reloaded");
  });

  // A JWS with the issuer's current key over exactly these bytes (claims a library would not write).
  // (Signed by hand: a JOSE library refuses to write an unknown crit.)
  async function signRawText(payload: string, header: Record<string, unknown> = {}): Promise<string> {
    const { alg, privateKey } = issuer.signingKey();
    const input = `${b64({ alg, kid: issuer.publicJwk.kid, ...header })}.${b64(payload)}`;
    const signature = sign("sha256", Buffer.from(input), { key: KeyObject.from(privateKey), dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  }
  async function signRaw(payload: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    return signRawText(JSON.stringify(payload), header);
  }
});

/**
 * minRemaining: a broker never hands out a token with less life left. While the token API is
 * down and the cached token ages past it, agents get 503 with Retry-After (and keep serving
 * what they hold); once the API is back, a fresh token. Plain HTTP: the broker on loopback.
 */
describe("the broker's minRemaining while the token API is down", () => {
  let world: World;
  let issuer: FakeOidcIssuer;
  let broker: KeeperProcess;

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: 12_000, installations: [{ id: 11, login: "acme" }] });
    issuer = new FakeOidcIssuer();
    await issuer.start();
    broker = await KeeperProcess.startBroker({
      dir: tempDir("gtk-broker-min-"),
      config: {
        listen: "127.0.0.1:0",
        providers: [world.providerConfig({ owners: ["acme"] })],
        identities: [{ name: "cluster", issuer: issuer.issuer, audience: "git-token-keeper" }],
        policies: [{ identity: "cluster", claims: { sub: "agent" }, gitUrl: world.gitUrl, owners: ["acme"] }],
        minRemaining: "3s",
        refreshBefore: "8s",
        retryMin: "200ms",
        retryMax: "1s",
      },
    });
  });

  afterAll(async () => {
    await broker?.stop();
    await issuer.stop();
    await world.close();
  });

  const ask = async () => {
    const r = await fetch(`${broker.brokerUrl}/v1/token`, {
      method: "POST",
      headers: { authorization: `Bearer ${await issuer.token({ sub: "agent" })}`, "content-type": "application/json" },
      body: JSON.stringify({ gitUrl: world.gitUrl, owner: "acme" }),
    });
    return { status: r.status, retryAfter: r.headers.get("retry-after"), body: (await r.json()) as { token?: string; expires_at?: string; message?: string } };
  };

  it("keeps handing out the cached token while the API is down and it has minRemaining left; 503 once it has not; a fresh one when the API is back", async () => {
    const first = await ask();
    expect(first.status).toBe(200);
    world.github.setMode("reset");
    try {
      const expiresAt = Date.parse(first.body.expires_at as string);
      const until = (leftMs: number) => new Promise((r) => setTimeout(r, Math.max(0, expiresAt - leftMs - Date.now())));
      // Past its refresh (half its 12 s life), the refresh failing, still over minRemaining (3 s).
      await until(4_500);
      const stale = await ask();
      expect(stale.status, stale.body.message).toBe(200);
      expect(stale.body.token).toBe(first.body.token);
      // Under minRemaining: never handed out.
      await until(2_000);
      const late = await ask();
      expect(late.status).toBe(503);
      expect(late.retryAfter).toMatch(/^\d+$/);
      expect(late.body.token).toBeUndefined();
    } finally {
      world.github.setMode("up");
    }
    // Back: within the slot's backoff (retryMax 1 s) the next mint succeeds; an agent waits as
    // Retry-After says.
    let recovered = await ask();
    for (let i = 0; i < 10 && recovered.status === 503; i++) {
      await new Promise((r) => setTimeout(r, Number(recovered.retryAfter ?? 1) * 1000));
      recovered = await ask();
    }
    expect(recovered.status).toBe(200);
    expect(recovered.body.token).not.toBe(first.body.token);
    expect(Date.parse(recovered.body.expires_at as string) - Date.now()).toBeGreaterThan(3_000);
  }, 30_000);
});
