import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseBrokerConfig } from "../../../src/config/broker-config.ts";
import { ConfigError } from "../../../src/errors/keeper-error.ts";
import { generateAppKey } from "../../support/app-key.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

afterAll(removeTempDirs);

const dir = tempDir();
const keyFile = join(dir, "app.pem");
writeFileSync(keyFile, generateAppKey().privateKey, { mode: 0o600 });

function config(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    listen: "127.0.0.1:8443",
    providers: [{ name: "acme", type: "github-app", appId: 1, privateKeyFile: keyFile, owners: ["acme"], permissions: { contents: "write", metadata: "read" } }],
    identities: [{ name: "cluster", issuer: "https://kubernetes.default.svc.cluster.local", audience: "git-token-keeper" }],
    policies: [{ identity: "cluster", claims: { sub: "system:serviceaccount:ci:*" }, gitUrl: "https://github.com", owners: ["acme"] }],
    ...over,
  });
}

function problems(text: string): string[] {
  try {
    parseBrokerConfig(text, "broker.yaml", {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
}

describe("the broker's config", () => {
  it("a minimal config loads, with defaults", () => {
    const c = parseBrokerConfig(config(), "broker.yaml", {});
    expect(c).toMatchObject({ listen: { host: "127.0.0.1", port: 8443 }, minRemainingMs: 15 * 60_000, ratePerIdentity: 20 });
    expect(c.identities[0]).toMatchObject({ jwksCooldownMs: 30_000 });
    expect(c.policies[0]).toMatchObject({ at: "policies[0]", gitOrigin: "https://github.com", owners: ["acme"] });
  });

  it.each([
    ["plain http off loopback", { listen: "0.0.0.0:8443" }, /without tls: sends tokens in clear/],
    ["an unknown identity in a policy", { policies: [{ identity: "nobody", gitUrl: "https://github.com", owners: "*" }] }, /no identity named 'nobody'/],
    ["a policy for a host no provider serves", { policies: [{ identity: "cluster", gitUrl: "https://gitlab.com", owners: "*" }] }, /no provider serves https:\/\/gitlab.com/],
    ["permissions wider than the provider's", { policies: [{ identity: "cluster", gitUrl: "https://github.com", owners: ["acme"], permissions: { contents: "admin" } }] }, /permissions.contents: admin is wider/],
    ["a permission the provider does not grant", { policies: [{ identity: "cluster", gitUrl: "https://github.com", owners: ["acme"], permissions: { issues: "read" } }] }, /permissions.issues: read is wider/],
    ["minRemaining over half the shortest token life", { minRemaining: "31m" }, /minRemaining: at most half/],
    ["refreshBefore not longer than minRemaining", { minRemaining: "20m", refreshBefore: "20m" }, /refreshBefore: must be longer than minRemaining/],
    ["an unknown key", { listen: "127.0.0.1:1", extra: 1 }, /extra/],
    ["no policies", { policies: [] }, /at least one policy/],
  ])("rejects %s, naming it", (_name, over, message) => {
    const found = problems(config(over));
    expect(found.some((p) => message.test(p)), found.join("\n")).toBe(true);
  });

  // Issue 25: a policy's owners over a provider that mints one token whatever the owner would be
  // a label: that token reaches what it reaches.
  it("a policy for a provider that is not per owner must name exactly its owners", () => {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "t0k3n-abcdefgh\n", { mode: 0o600 });
    const file = (owners: unknown, policyOwners: unknown) =>
      problems(
        config({
          providers: [{ name: "lab", type: "file", gitUrl: "https://gitlab.example.com", path: tokenFile, ...(owners === undefined ? {} : { owners }) }],
          policies: [{ identity: "cluster", claims: { sub: "x" }, gitUrl: "https://gitlab.example.com", owners: policyOwners }],
        }),
      );
    expect(file(["acme"], ["acme"])).toEqual([]);
    expect(file(undefined, "*")).toEqual([]);
    expect(file(["acme", "globex"], ["acme"]).join("\n")).toMatch(/policies\[0\]\.owners: lab \(file\) mints one token whatever the owner.*exactly the provider's \(acme, globex\)/);
    expect(file(undefined, ["acme"]).join("\n")).toMatch(/exactly the provider's \("\*"\)/);
  });

  it("a policy without claims is refused unless it says anyIdentityOfIssuer: true", () => {
    const policy = { identity: "cluster", gitUrl: "https://github.com", owners: ["acme"] };
    expect(problems(config({ policies: [policy] })).join("\n")).toMatch(/policies\[0\]\.claims: a policy without claims allows every identity/);
    expect(problems(config({ policies: [{ ...policy, anyIdentityOfIssuer: true }] }))).toEqual([]);
  });

  it("minRemaining 0s is allowed", () => {
    expect(parseBrokerConfig(config({ minRemaining: "0s" }), "broker.yaml", {}).minRemainingMs).toBe(0);
  });
});

describe("the broker's identities: where their keys come from, and how long they are trusted", () => {
  const identities = (...over: Record<string, unknown>[]) => ({ identities: over.map((o) => ({ name: "cluster", issuer: "https://kubernetes.default.svc.cluster.local", audience: "git-token-keeper", ...o })) });
  const tokenFile = join(dir, "sa-token");
  writeFileSync(tokenFile, "a-service-account-token", { mode: 0o600 });

  it("staleKeysFor (6h) and maxIdentityAge (24h) default at the top level and reach every identity", () => {
    const c = parseBrokerConfig(config(), "broker.yaml", {});
    expect(c).toMatchObject({ staleKeysForMs: 6 * 3_600_000, maxIdentityAgeMs: 24 * 3_600_000 });
    expect(c.identities[0]).toMatchObject({ staleKeysForMs: 6 * 3_600_000, maxIdentityAgeMs: 24 * 3_600_000, jwksTokenFile: undefined, jwksCaFile: undefined });
  });

  it("an identity's own staleKeysFor and maxIdentityAge win over the top level's", () => {
    const c = parseBrokerConfig(config({ staleKeysFor: "2h", maxIdentityAge: "12h", ...identities({}, { name: "ci", staleKeysFor: "30m", maxIdentityAge: "1h" }) }), "broker.yaml", {});
    expect(c.identities.map((i) => [i.staleKeysForMs, i.maxIdentityAgeMs])).toEqual([
      [2 * 3_600_000, 12 * 3_600_000],
      [30 * 60_000, 3_600_000],
    ]);
  });

  it("jwksTokenFile and jwksCaFile are taken for fetched keys (a Kubernetes API server's)", () => {
    const c = parseBrokerConfig(config(identities({ jwksUrl: "https://kubernetes.default.svc/openid/v1/jwks", jwksTokenFile: tokenFile, jwksCaFile: keyFile })), "broker.yaml", {});
    expect(c.identities[0]).toMatchObject({ jwksTokenFile: tokenFile, jwksCaFile: keyFile });
  });

  it.each([
    ["jwksUrl http://localhost", { jwksUrl: "http://localhost:8080/openid/v1/jwks" }],
    ["jwksUrl http://127.0.0.2", { jwksUrl: "http://127.0.0.2:8080/openid/v1/jwks" }],
    ["jwksUrl http://[::1]", { jwksUrl: "http://[::1]:8080/openid/v1/jwks" }],
    ["an http:// issuer off loopback whose keys are at an https:// jwksUrl", { issuer: "http://jenkins.internal/oidc", jwksUrl: "https://jenkins.internal/oidc/jwks" }],
  ])("accepts %s", (_name, over) => {
    expect(problems(config(identities(over)))).toEqual([]);
  });

  it.each([
    ["staleKeysFor under a minute", { staleKeysFor: "30s" }, /staleKeysFor: must be between 1m and 7d/],
    ["staleKeysFor over a week", { staleKeysFor: "8d" }, /staleKeysFor: must be between 1m and 7d/],
    ["an identity's staleKeysFor over a week", identities({ staleKeysFor: "8d" }), /identities\[0\]\.staleKeysFor: must be between 1m and 7d/],
    ["maxIdentityAge under a minute", { maxIdentityAge: "10s" }, /maxIdentityAge: must be between 1m/],
    ["an http:// jwksUrl off loopback", identities({ jwksUrl: "http://keys.example.com/openid/v1/jwks" }), /identities\[0\]\.jwksUrl: .*plain http:\/\/ off loopback, so anyone on the path could swap the issuer's keys; use https:\/\//],
    ["an http:// issuer off loopback to discover", identities({ issuer: "http://jenkins.internal/oidc" }), /identities\[0\]\.issuer: .*cannot be discovered safely.*set jwksUrl \(https:\/\/\) or jwksFile/],
    ["a relative jwksTokenFile", identities({ jwksTokenFile: "token" }), /jwksTokenFile: must be an absolute path/],
    ["a missing jwksTokenFile", identities({ jwksTokenFile: "/nonexistent/token" }), /identities\[0\]\.jwksTokenFile: no such file/],
    ["a missing jwksCaFile", identities({ jwksCaFile: "/nonexistent/ca.crt" }), /identities\[0\]\.jwksCaFile: no such file/],
    ["jwksTokenFile with jwksFile", identities({ jwksFile: keyFile, jwksTokenFile: tokenFile }), /jwksTokenFile and jwksCaFile are for fetched keys/],
  ])("rejects %s, naming it", (_name, over, message) => {
    const found = problems(config(over));
    expect(found.some((p) => message.test(p)), found.join("\n")).toBe(true);
  });
});
