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

  it("minRemaining 0s is allowed", () => {
    expect(parseBrokerConfig(config({ minRemaining: "0s" }), "broker.yaml", {}).minRemainingMs).toBe(0);
  });
});
