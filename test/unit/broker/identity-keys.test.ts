import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Identity } from "../../../src/config/broker-config.ts";
import { IdentityVerifier, type Verification } from "../../../src/broker/verify-identity.ts";
import { FakeOidcIssuer } from "../../fakes/fake-oidc-issuer.ts";
import { closeServer, listenOnLoopback } from "../../fakes/http-helpers.ts";
import { makeTestCa } from "../../support/test-ca.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

afterAll(removeTempDirs);

const HOUR = 3_600_000;
const SUB = "system:serviceaccount:ci:build";

let issuer: FakeOidcIssuer;
// The verifier's clock: ages, cooldowns and staleness move only when a test moves it.
let clock = 0;
const now = () => clock;
const nowS = () => Math.floor(clock / 1000);

beforeEach(async () => {
  clock = Date.now();
  issuer = new FakeOidcIssuer();
  await issuer.start();
});

afterEach(async () => {
  await issuer.stop();
});

/** An identity as parseBrokerConfig makes it, with the defaults (discovery, 30 s cooldown, 6h, 24h). */
function identity(over: Partial<Identity> = {}, from: FakeOidcIssuer = issuer): Identity {
  return {
    name: "cluster",
    issuer: from.issuer,
    jwksUrl: undefined,
    jwksFile: undefined,
    audience: "git-token-keeper",
    jwksCooldownMs: 30_000,
    jwksTokenFile: undefined,
    jwksCaFile: undefined,
    staleKeysForMs: 6 * HOUR,
    maxIdentityAgeMs: 24 * HOUR,
    ...over,
  };
}

function verifier(...identities: Identity[]): IdentityVerifier {
  return new IdentityVerifier(identities.length ? identities : [identity()], { now });
}

/** A token the issuer signs now, by the verifier's clock. */
function valid(from: FakeOidcIssuer = issuer): Promise<string> {
  return from.token({ sub: SUB }, { issuedAt: nowS() });
}

/** Signed with the issuer's real key, under a kid it never had. */
function forged(): Promise<string> {
  return issuer.token({ sub: SUB }, { issuedAt: nowS(), header: { kid: randomBytes(6).toString("hex") } });
}

const times = <T>(n: number, make: () => Promise<T>) => Promise.all(Array.from({ length: n }, make));
const unavailable = { ok: false, unavailable: true, retryAfterMs: expect.any(Number), reason: expect.stringMatching(/keys are not available/) };
const noMatchingKey = { ok: false, reason: expect.stringMatching(/no key of the issuer matches/) };
// A kid no key has while the keys cannot be fetched again yet: it may be the issuer's newest.
const kidUnknownForNow = { ok: false, unavailable: true, retryAfterMs: expect.any(Number), reason: expect.stringMatching(/no key matches the token's kid, and the keys cannot be fetched again yet/) };

describe("the broker's key store for identity issuers", () => {
  it("50 tokens with made-up kids make at most one JWKS fetch per cooldown; concurrent ones share it", async () => {
    const v = verifier(identity({ jwksUrl: `${issuer.url}/openid/v1/jwks` }));
    expect((await v.verify(await valid())).ok).toBe(true);
    expect(issuer.jwksFetches).toBe(1);
    const tokens = await times(50, forged);
    for (const t of tokens) expect(await v.verify(t)).toMatchObject(kidUnknownForNow);
    expect(issuer.jwksFetches).toBe(1);

    // The cooldown passed: one look for a rotated key, shared by all fifty at once.
    clock += 30_000;
    const results = await Promise.all(tokens.map((t) => v.verify(t)));
    // Keys fetched after they arrived, still without their kid: invalid.
    for (const r of results) expect(r).toMatchObject(noMatchingKey);
    expect(issuer.jwksFetches).toBe(2);
    for (const t of tokens) await v.verify(t);
    expect(issuer.jwksFetches).toBe(2);
  });

  it("with discovery failing, 50 requests make one discovery fetch per cooldown and are unavailable, not invalid", async () => {
    issuer.down = true;
    const v = verifier();
    const token = await valid();
    const results: Verification[] = await times(25, () => v.verify(token));
    for (let i = 0; i < 25; i++) results.push(await v.verify(i % 2 ? token : await forged()));
    for (const r of results) expect(r).toMatchObject({ ...unavailable, issuer: issuer.issuer, subject: SUB });
    expect(issuer.discoveryFetches).toBe(1);
    expect(issuer.jwksFetches).toBe(0);

    clock += 30_000;
    await times(10, () => v.verify(token));
    expect(issuer.discoveryFetches).toBe(2);
    expect(v.status()).toEqual([{ name: "cluster", keysLoaded: false, keysAgeSeconds: undefined, fetchFailures: 2, lastError: expect.stringMatching(/discovery at .* answered 503/) }]);
  });

  it("never fetched: unavailable with retryAfterMs until the next fetch may happen (at least 1 s), then verifies", async () => {
    issuer.down = true;
    const v = verifier();
    const token = await valid();
    const first = await v.verify(token);
    expect(first).toMatchObject({ ...unavailable, retryAfterMs: 30_000 });
    expect((first as { reason: string }).reason).toMatch(/none fetched yet/);
    clock += 20_000;
    expect(await v.verify(token)).toMatchObject({ ...unavailable, retryAfterMs: 10_000 });
    clock += 9_800;
    expect(await v.verify(token)).toMatchObject({ ...unavailable, retryAfterMs: 1_000 });
    issuer.down = false;
    clock += 200;
    expect((await v.verify(token)).ok).toBe(true);
    expect(issuer.discoveryFetches).toBe(2);
  });

  it("the issuer down after its keys were loaded: valid tokens verify for staleKeysFor, then are unavailable, not invalid", async () => {
    const v = verifier();
    expect((await v.verify(await valid())).ok).toBe(true);
    await issuer.stop();

    clock += 5 * HOUR;
    expect((await v.verify(await valid())).ok).toBe(true);
    // Keys that old are refreshed in the background; that fetch failed and the keys stayed.
    await vi.waitFor(() => expect(v.status()[0]?.fetchFailures).toBe(1));
    expect(v.status()).toEqual([{ name: "cluster", keysLoaded: true, keysAgeSeconds: 5 * 3600, fetchFailures: 1, lastError: expect.stringMatching(/^the JWKS at http:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks: /) }]);
    expect((await v.verify(await valid())).ok).toBe(true);

    clock += HOUR + 1_000;
    const late = await v.verify(await valid());
    expect(late).toMatchObject({ ...unavailable, issuer: issuer.issuer, subject: SUB });
    expect((late as { reason: string }).reason).toMatch(/older than staleKeysFor \(6h\)/);
    expect(v.status()[0]).toMatchObject({ keysLoaded: false, keysAgeSeconds: 6 * 3600 + 1, fetchFailures: 2 });
  });

  it("a per-identity staleKeysFor is kept to", async () => {
    const v = verifier(identity({ staleKeysForMs: 20 * 60_000 }));
    expect((await v.verify(await valid())).ok).toBe(true);
    issuer.down = true;
    clock += 19 * 60_000;
    expect((await v.verify(await valid())).ok).toBe(true);
    clock += 2 * 60_000;
    expect(await v.verify(await valid())).toMatchObject(unavailable);
  });

  it("keys older than 10 minutes are fetched again in the background, within the cooldown", async () => {
    const v = verifier();
    expect((await v.verify(await valid())).ok).toBe(true);
    expect(issuer.jwksFetches).toBe(1);
    clock += 11 * 60_000;
    expect((await v.verify(await valid())).ok).toBe(true);
    await vi.waitFor(() => expect(v.status()[0]?.keysAgeSeconds).toBe(0));
    expect(issuer.jwksFetches).toBe(2);
    // The discovered jwks_uri is kept while it works.
    expect(issuer.discoveryFetches).toBe(1);
  });

  it("a rotated key is picked up once the cooldown since the last fetch has passed", async () => {
    const v = verifier();
    expect((await v.verify(await valid())).ok).toBe(true);
    await issuer.rotate("ES256");
    const token = await valid();
    // Within the cooldown: not known yet, so not refused (503 with Retry-After, not 401).
    expect(await v.verify(token)).toMatchObject(kidUnknownForNow);
    clock += 30_000;
    expect((await v.verify(token)).ok).toBe(true);
    expect(issuer.jwksFetches).toBe(2);
  });

  it("prefetch() loads the keys before any token asks; status() says so", async () => {
    const v = verifier();
    expect(v.status()).toEqual([{ name: "cluster", keysLoaded: false, keysAgeSeconds: undefined, fetchFailures: 0, lastError: undefined }]);
    await v.prefetch();
    expect(v.status()).toEqual([{ name: "cluster", keysLoaded: true, keysAgeSeconds: 0, fetchFailures: 0, lastError: undefined }]);
    await v.prefetch();
    expect(issuer.jwksFetches).toBe(1);
    clock += 90_000;
    expect(v.status()[0]?.keysAgeSeconds).toBe(90);
  });

  it("a discovery document naming an http:// jwks_uri off loopback is a failed fetch that says so; nothing is fetched from it", async () => {
    issuer.jwksUri = "http://keys.example.com/openid/v1/jwks";
    const v = verifier();
    expect(await v.verify(await valid())).toMatchObject(unavailable);
    expect(v.status()[0]?.lastError).toMatch(/jwks_uri 'http:\/\/keys\.example\.com\/openid\/v1\/jwks', plain http:\/\/ off loopback.*set jwksUrl to an https:\/\/ URL/);
    expect(issuer.jwksFetches).toBe(0);
  });

  it("jwksTokenFile is sent as a bearer token to discovery and the JWKS, re-read after it rotates", async () => {
    const tokenFile = join(tempDir(), "token");
    writeFileSync(tokenFile, "first-token\n", { mode: 0o600 });
    issuer.requiredBearer = "first-token";
    const v = verifier(identity({ jwksTokenFile: tokenFile }));
    expect((await v.verify(await valid())).ok).toBe(true);
    expect(issuer.requests).toEqual([
      { path: "/.well-known/openid-configuration", authorization: "Bearer first-token" },
      { path: "/openid/v1/jwks", authorization: "Bearer first-token" },
    ]);

    // The kubelet rotates a projected token: the next fetch reads the new one.
    writeFileSync(tokenFile, "second-token\n");
    issuer.requiredBearer = "second-token";
    await issuer.rotate();
    clock += 30_000;
    expect((await v.verify(await valid())).ok).toBe(true);
    expect(issuer.requests.at(-1)).toEqual({ path: "/openid/v1/jwks", authorization: "Bearer second-token" });
  });

  it("an issuer that wants a caller's token: the failure says to set jwksTokenFile, or that its token was refused (never showing it)", async () => {
    issuer.requiredBearer = "the-right-token";
    const without = verifier();
    expect(await without.verify(await valid())).toMatchObject(unavailable);
    expect(without.status()[0]?.lastError).toMatch(/answered 401: .*set jwksTokenFile/);

    const tokenFile = join(tempDir(), "token");
    writeFileSync(tokenFile, "a-wrong-token", { mode: 0o600 });
    const wrong = verifier(identity({ jwksUrl: `${issuer.url}/openid/v1/jwks`, jwksTokenFile: tokenFile }));
    expect(await wrong.verify(await valid())).toMatchObject(unavailable);
    expect(wrong.status()[0]?.lastError).toMatch(/answered 401: the jwksTokenFile token was refused/);
    expect(wrong.status()[0]?.lastError).not.toContain("a-wrong-token");
  });

  it("the jwksTokenFile token goes nowhere a token's header points to", async () => {
    const seen: (string | undefined)[] = [];
    const { server, url } = await listenOnLoopback((req, res) => {
      seen.push(req.headers.authorization);
      res.end("{}");
    });
    try {
      const tokenFile = join(tempDir(), "token");
      writeFileSync(tokenFile, "cluster-token", { mode: 0o600 });
      issuer.requiredBearer = "cluster-token";
      const v = verifier(identity({ jwksTokenFile: tokenFile }));
      const token = await issuer.token({ sub: SUB }, { issuedAt: nowS(), header: { kid: "elsewhere", jku: `${url}/jwks`, x5u: `${url}/cert` } });
      expect((await v.verify(token)).ok).toBe(false);
      expect(seen).toEqual([]);
    } finally {
      await closeServer(server);
    }
  });

  it("jwksCaFile: an issuer whose certificate a private CA signed is trusted with it, and only with it", async () => {
    const ca = makeTestCa();
    const tlsIssuer = new FakeOidcIssuer();
    await tlsIssuer.start({ tls: { key: ca.key, cert: ca.cert } });
    try {
      const untrusted = verifier(identity({}, tlsIssuer));
      expect(await untrusted.verify(await valid(tlsIssuer))).toMatchObject(unavailable);
      expect(untrusted.status()[0]?.lastError).toMatch(/certificate/);

      const trusted = verifier(identity({ jwksCaFile: ca.caFile }, tlsIssuer));
      expect((await trusted.verify(await valid(tlsIssuer))).ok).toBe(true);
      // The untrusted verifier never got past the TLS handshake.
      expect(tlsIssuer.discoveryFetches).toBe(1);
      expect(tlsIssuer.jwksFetches).toBe(1);
    } finally {
      await tlsIssuer.stop();
    }
  });

  it("redirects are not followed and answers over 1 MB are refused", async () => {
    const { server, url } = await listenOnLoopback((req, res) => {
      if (req.url === "/moved") return void res.writeHead(302, { location: `${issuer.url}/openid/v1/jwks` }).end();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [], pad: "x".repeat(1_100_000) }));
    });
    try {
      const moved = verifier(identity({ jwksUrl: `${url}/moved` }));
      expect(await moved.verify(await valid())).toMatchObject(unavailable);
      expect(moved.status()[0]?.lastError).toMatch(/answered 302, a redirect, which is not followed/);
      expect(issuer.jwksFetches).toBe(0);

      const huge = verifier(identity({ jwksUrl: `${url}/huge` }));
      expect(await huge.verify(await valid())).toMatchObject(unavailable);
      expect(huge.status()[0]?.lastError).toMatch(/larger than 1 MB/);
    } finally {
      await closeServer(server);
    }
  });

  it("keys from a jwksFile verify without any fetch", async () => {
    const file = join(tempDir(), "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [issuer.publicJwk] }), { mode: 0o600 });
    const v = verifier(identity({ jwksFile: file }));
    expect((await v.verify(await valid())).ok).toBe(true);
    expect(issuer.requests).toEqual([]);
  });
});

describe("maxIdentityAge", () => {
  it("refuses a token issued longer ago than maxIdentityAge (24h by default), however long it is valid", async () => {
    const v = verifier();
    const old = await issuer.token({ sub: SUB }, { issuedAt: nowS() - 25 * 3600, expiresIn: nowS() + 300 });
    expect(await v.verify(old)).toEqual({ ok: false, reason: expect.stringMatching(/^identity token is older than maxIdentityAge \(24h/), issuer: issuer.issuer, subject: SUB });
    const recent = await issuer.token({ sub: SUB }, { issuedAt: nowS() - 23 * 3600, expiresIn: nowS() + 300 });
    expect((await v.verify(recent)).ok).toBe(true);
  });

  it("keeps to a per-identity maxIdentityAge", async () => {
    const v = verifier(identity({ maxIdentityAgeMs: HOUR }));
    expect(await v.verify(await issuer.token({ sub: SUB }, { issuedAt: nowS() - 2 * 3600, expiresIn: nowS() + 300 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/older than maxIdentityAge \(1h/) });
    expect((await v.verify(await issuer.token({ sub: SUB }, { issuedAt: nowS() - 1800, expiresIn: nowS() + 300 }))).ok).toBe(true);
  });

  it("refuses a token without iat, saying so", async () => {
    const v = verifier();
    const { alg, privateKey } = issuer.signingKey();
    const token = await new SignJWT({ sub: SUB })
      .setProtectedHeader({ alg, kid: issuer.publicJwk.kid as string })
      .setIssuer(issuer.issuer)
      .setAudience("git-token-keeper")
      .setExpirationTime(nowS() + 300)
      .sign(privateKey);
    expect(await v.verify(token)).toMatchObject({ ok: false, reason: expect.stringMatching(/no iat claim/) });
  });
});
