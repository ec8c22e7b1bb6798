import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeEntra } from "../fakes/fake-entra.ts";
import { exerciseProvider } from "../support/provider-scenario.ts";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs } from "../support/temp-dir.ts";
import { makeTestCa } from "../support/test-ca.ts";
import { must, World } from "../support/world.ts";

const LIFETIME_MS = 4_000;

describe.skipIf(!haveTool("openssl", "openssl makes the fake Entra ID's CA and is not on PATH"))("azure-devops provider against a local Entra ID", () => {
  let world: World;
  let entra: FakeEntra;
  let caFile: string;

  beforeAll(async () => {
    world = await World.create();
    const ca = makeTestCa();
    caFile = ca.caFile;
    entra = new FakeEntra(world.ledger, LIFETIME_MS, ca);
    await entra.start();
  });

  afterEach(async () => {
    await world.keeper?.stop();
  });

  afterAll(async () => {
    await entra.stop();
    await world.close();
    removeTempDirs();
  });

  const provider = (extra: Record<string, unknown>) => ({ name: "ado", type: "azure-devops", gitUrl: world.gitUrl, organizations: ["acme"], ...extra });

  it("managed identity (IDENTITY_ENDPOINT on loopback): mints, refreshes, re-mints on refusal", async () => {
    await world.startKeeper({ providers: [provider({ credential: "managed-identity" })] }, { env: { IDENTITY_ENDPOINT: entra.identityEndpoint, IDENTITY_HEADER: entra.identityHeader } });
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    expect(entra.requests.filter((r) => r.grant === "managed-identity").length).toBeGreaterThanOrEqual(3);
    // Organisations are owners: another one is not served.
    const other = await world.git(["ls-remote", world.repoUrl("globex/tools")], world.dir);
    expect(other.exitCode).toBe(128);
  });

  it("git gets the token as a bearer token where it can take one (git 2.46 or newer), else as Basic", async () => {
    await world.startKeeper({ providers: [provider({ credential: "managed-identity" })] }, { env: { IDENTITY_ENDPOINT: entra.identityEndpoint, IDENTITY_HEADER: entra.identityHeader } });
    const version = (await must(world.git(["--version"], world.dir))).stdout.match(/(\d+)\.(\d+)/) ?? [];
    const bearer = Number(version[1]) > 2 || Number(version[2]) >= 46;
    const before = world.server.seen.length;
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], world.dir));
    const sent = world.server.seen.slice(before).map((r) => r.authorization?.split(" ")[0]).filter(Boolean);
    expect(sent).toEqual(sent.map(() => (bearer ? "Bearer" : "Basic")));
    expect(sent.length).toBeGreaterThan(0);
  });

  it("a token of a few kilobytes reaches the host whole, as Bearer or Basic", async () => {
    entra.tokenChars = 4096;
    try {
      // Another name: the token the earlier tests left in the state dir is not resumed.
      await world.startKeeper({ providers: [provider({ credential: "managed-identity", name: "ado-large" })] }, { env: { IDENTITY_ENDPOINT: entra.identityEndpoint, IDENTITY_HEADER: entra.identityHeader } });
      const before = world.server.seen.length;
      await must(world.git(["ls-remote", world.repoUrl("acme/app")], world.dir));
      const token = world.ledger.issued.at(-1) as string;
      expect(token.length).toBeGreaterThanOrEqual(4096);
      const sent = world.server.seen.slice(before).map((r) => r.authorization).filter((a): a is string => !!a);
      const delivered = sent.map((a) => (a.startsWith("Bearer ") ? a.slice(7) : Buffer.from(a.slice(6), "base64").toString("utf8").split(":").slice(1).join(":")));
      expect(delivered.length).toBeGreaterThan(0);
      expect(delivered.every((t) => t === token)).toBe(true);
    } finally {
      entra.tokenChars = 0;
    }
  });

  it("client secret against an HTTPS authority with a private CA", async () => {
    const secretFile = join(world.dir, "client-secret");
    writeFileSync(secretFile, `${entra.clientSecret}\n`, { mode: 0o600 });
    await world.startKeeper(
      { providers: [provider({ credential: "client-secret", tenantId: entra.tenantId, clientId: entra.clientId, clientSecretFile: secretFile, authorityHost: entra.authorityHost, instanceDiscovery: false })] },
      { env: { NODE_EXTRA_CA_CERTS: caFile } },
    );
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    expect(entra.requests.some((r) => r.grant === "client_credentials" && r.assertion === undefined)).toBe(true);
  });

  it("workload identity re-reads the federated token file at every mint", async () => {
    const tokenFile = join(world.dir, "federated-token");
    entra.federatedToken = "projected-sa-token-1";
    writeFileSync(tokenFile, entra.federatedToken);
    await world.startKeeper(
      { providers: [provider({ credential: "workload-identity", tenantId: entra.tenantId, clientId: entra.clientId, federatedTokenFile: tokenFile, authorityHost: entra.authorityHost, instanceDiscovery: false })] },
      { env: { NODE_EXTRA_CA_CERTS: caFile } },
    );
    // The kubelet rotates the projected token; the old one is no longer accepted.
    entra.federatedToken = "projected-sa-token-2";
    writeFileSync(tokenFile, entra.federatedToken);
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    const assertions = entra.requests.filter((r) => r.assertion).map((r) => r.assertion);
    expect(assertions).toContain("projected-sa-token-1");
    expect(assertions).toContain("projected-sa-token-2");
  });

  it("client certificate: an assertion signed with the certificate's key", async () => {
    const dir = world.dir;
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "client.key"), "-out", join(dir, "client.crt"), "-days", "1", "-subj", "/CN=git-token-keeper test client"], { stdio: "ignore" });
    const certificate = readFileSync(join(dir, "client.crt"), "utf8");
    entra.clientCertificate = certificate;
    const pem = join(dir, "client.pem.secret");
    writeFileSync(pem, `${readFileSync(join(dir, "client.key"), "utf8")}${certificate}`, { mode: 0o600 });
    const before = entra.requests.filter((r) => r.assertion).length;
    await world.startKeeper(
      { providers: [provider({ credential: "client-certificate", tenantId: entra.tenantId, clientId: entra.clientId, certificateFile: pem, authorityHost: entra.authorityHost, instanceDiscovery: false })] },
      { env: { NODE_EXTRA_CA_CERTS: caFile } },
    );
    await exerciseProvider(world, { lifetimeMs: LIFETIME_MS, revoke: () => world.ledger.revokeAll() });
    expect(entra.requests.filter((r) => r.assertion).length - before).toBeGreaterThanOrEqual(3);
  });

  it("a wrong client secret is a failure with its reason in status, not a crash", async () => {
    const secretFile = join(world.dir, "wrong-secret");
    writeFileSync(secretFile, "not-the-secret", { mode: 0o600 });
    const keeper = await world.startKeeper(
      { providers: [provider({ credential: "client-secret", tenantId: entra.tenantId, clientId: entra.clientId, clientSecretFile: secretFile, authorityHost: entra.authorityHost, instanceDiscovery: false })] },
      { env: { NODE_EXTRA_CA_CERTS: caFile } },
    );
    await keeper.waitForLog(/mint failed/);
    expect(keeper.log).toContain("AADSTS7000215");
  });
});
