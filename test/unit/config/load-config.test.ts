import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { GitHubAppProviderConfig } from "../../../src/providers/github-app/github-app-config.ts";
import { exposure } from "../../../src/providers/settings/read-secret.ts";
import { parseConfig } from "../../../src/config/load-config.ts";
import { ConfigError } from "../../../src/errors/keeper-error.ts";
import { generateAppKey } from "../../support/app-key.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";
import { fakePemBlock } from "../../support/fake-secrets.ts";

const dir = tempDir();
const keyFile = join(dir, "app.pem");
const key = generateAppKey();
writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
afterAll(removeTempDirs);

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml, "c.yaml", env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.replace(/^c\.yaml: /, ""));
    throw error;
  }
  return [];
}

const provider = (extra = "") => `providers:\n  - name: acme\n    type: github-app\n    appId: 12345\n    privateKeyFile: ${keyFile}\n${extra}`;

describe("config", () => {
  it("accepts the documented example with defaults filled in", () => {
    const config = parseConfig(`refreshBefore: 10m\n${provider("    owners: [Acme, globex]\n    permissions: {contents: write}\n")}`, "c.yaml", {});
    const p = config.providers[0] as GitHubAppProviderConfig;
    expect(config.refreshBeforeMs).toBe(600_000);
    expect(p.gitOrigin).toBe("https://github.com");
    expect(p.apiUrl).toBe("https://api.github.com");
    expect(p.owners).toEqual(["acme", "globex"]);
    expect(p.privateKey).toContain("BEGIN PRIVATE KEY");
  });

  it("accepts JSON, which is YAML", () => {
    const json = JSON.stringify({ providers: [{ name: "a", type: "github-app", clientId: "Iv23liABC", privateKeyFile: keyFile }] });
    expect((parseConfig(json, "c.json", {}).providers[0] as GitHubAppProviderConfig).appId).toBe("Iv23liABC");
  });

  it.each([
    ["a missing key file", provider().replace(keyFile, "/nope/app.pem"), "providers[0].privateKeyFile: no such file '/nope/app.pem'"],
    ["an unknown key", provider("    owner: acme\n"), "providers[0].owner: unknown key; remove it or fix its spelling"],
    ["an unknown top-level key", `refreshbefore: 5m\n${provider()}`, "refreshbefore: unknown key"],
    ["a bad duration", `refreshBefore: soon\n${provider()}`, "refreshBefore: 'soon' is not a duration; write it like 30s, 10m or 1h"],
    ["retryMin: 0 (a hot loop against the token API)", `retryMin: 0\n${provider()}`, "retryMin: must be between 100ms and 10m (the first wait after a failed mint; less would hammer the token API)"],
    ["retryMax: 0", `retryMax: 0s\n${provider()}`, "retryMax: must be between 1s and 1d"],
    ["remintInterval: 0", `remintInterval: 0\n${provider()}`, "remintInterval: must be between 500ms and 10m"],
    ["refreshBefore: 0", `refreshBefore: 0\n${provider()}`, "refreshBefore: must be between 1s and 1d"],
    ["a zero request timeout", provider("    timeout: 0\n"), "providers[0].timeout: must be between 1s and 10m"],
    ["retryMin above retryMax", `retryMin: 5m\nretryMax: 1m\n${provider()}`, "retryMin: must not be larger than retryMax"],
    ["an unknown type", "providers:\n  - name: a\n    type: gitlab-ish\n", "providers[0].type"],
    ["a wrong type", provider().replace("appId: 12345", "appId: [1]"), "providers[0].appId"],
    ["http to a remote host", provider("    gitUrl: http://github.example\n"), "providers[0].gitUrl: 'http://github.example' uses http://"],
    ["a gitUrl with a path", provider("    gitUrl: https://github.com/acme\n"), "providers[0].gitUrl: 'https://github.com/acme' must be scheme://host[:port] without a path"],
    ["credentials in a URL", provider("    apiUrl: https://u:p@api.github.com\n"), "providers[0].apiUrl: 'https://u:p@api.github.com' holds credentials"],
    ["no providers", "providers: []\n", "providers: must list at least one provider"],
    ["sshToHttps for Azure DevOps", "providers:\n  - name: ado\n    type: azure-devops\n    credential: managed-identity\n    sshToHttps: true\n", "providers[0].sshToHttps: Azure DevOps SSH URLs"],
    ["both appId and clientId", provider("    clientId: Iv23liX\n"), "set exactly one of appId and clientId"],
    ["an unset key variable", provider().replace(`privateKeyFile: ${keyFile}`, "privateKeyEnv: APP_KEY"), "providers[0].privateKeyEnv: environment variable APP_KEY is not set"],
  ])("rejects %s with a message naming the key", (_name, yaml, expected) => {
    const found = problems(yaml);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join("\n")).toContain(expected);
  });

  it("reports duplicate names and overlapping owners", () => {
    const yaml = `providers:\n${[1, 2].map(() => `  - name: acme\n    type: github-app\n    appId: 1\n    privateKeyFile: ${keyFile}\n    owners: [acme]\n`).join("")}`;
    const found = problems(yaml).join("\n");
    expect(found).toContain("providers[1].name: 'acme' is already used by providers[0]");
    expect(found).toContain("providers[1].owners: 'acme' on https://github.com is already served");
  });

  it("rejects two providers serving any owner under the same path of one host, and accepts distinct prefixes", () => {
    const exec = (extra: string) => `  - name: s${extra.length}\n    type: exec\n    gitUrl: https://github.com\n    command: [token-cmd]\n${extra}`;
    const ambiguous = `${provider()}${exec("")}`;
    expect(problems(ambiguous).join()).toContain("providers[1]: providers[0] (acme) already serves any owner under https://github.com");
    expect(problems(`${provider()}${exec("    pathPrefix: /globex/\n")}`)).toEqual([]);
    expect(problems(`${provider()}${exec("    pathPrefix: /globex/\n    owners: [globex]\n")}`).join()).toContain("set owners or pathPrefix, not both");
  });

  it("names the keys of the provider type in an unknown-key message", () => {
    expect(problems("providers:\n  - name: f\n    type: file\n    gitUrl: https://h\n    path: /x\n    pth: 1\n").join()).toContain("known keys: name, owners, pathPrefix, refreshEvery, username, sshToHttps, type, gitUrl, path, format");
  });

  it("accepts refreshEvery as a duration or a cron expression, and nothing else", () => {
    const file = (every: string) => `providers:\n  - name: f\n    type: file\n    gitUrl: https://h\n    path: /tmp/x\n    refreshEvery: "${every}"\n`;
    expect(parseConfig(file("30m"), "c", {}).providers[0]?.refreshEvery).toEqual({ ms: 1_800_000 });
    expect(parseConfig(file("*/30 * * * *"), "c", {}).providers[0]?.refreshEvery).toEqual({ cron: "*/30 * * * *" });
    expect(problems(file("often")).join()).toContain("is neither a duration (30m) nor a cron expression");
    // Issue 24, finding 13: 10ms was accepted (329 runs of the source in 5 s).
    expect(problems(file("10ms")).join()).toContain("refreshes more often than every 10s");
    expect(problems(file("* * * * * *")).join()).toContain("refreshes more often than every 10s");
    expect(parseConfig(file("10s"), "c", {}).providers[0]?.refreshEvery).toEqual({ ms: 10_000 });
  });

  // Issue 24, finding 13: a FIFO as privateKeyFile blocked the event loop; /dev/zero read without end.
  it("refuses a key that is a FIFO or a device, with one message naming the setting, without blocking", () => {
    const fifo = join(dir, "key.fifo");
    execFileSync("mkfifo", [fifo]);
    expect(problems(provider().replace(keyFile, fifo)).join("\n")).toContain(`providers[0].privateKeyFile: '${fifo}' is a FIFO, not a regular file`);
    expect(problems(provider().replace(keyFile, "/dev/zero")).join("\n")).toContain("'/dev/zero' is a device, not a regular file");
    const huge = join(dir, "huge.pem");
    writeFileSync(huge, Buffer.alloc(2_000_000, 65));
    expect(problems(provider().replace(keyFile, huge)).join("\n")).toContain("more than a secret's 1000000");
  });

  it("never echoes key material from a malformed PEM", () => {
    const bad = join(dir, "bad.pem");
    writeFileSync(bad, fakePemBlock("RSA", "SECRETSECRETSECRET"));
    const found = problems(provider().replace(keyFile, bad)).join("\n");
    expect(found).toContain("providers[0].privateKeyFile: not a PEM private key");
    expect(found).not.toContain("SECRETSECRET");
  });

  it("accepts a key from an environment variable with flattened newlines", () => {
    const yaml = provider().replace(`privateKeyFile: ${keyFile}`, "privateKeyEnv: APP_KEY");
    const config = parseConfig(yaml, "c.yaml", { APP_KEY: key.privateKey.replace(/\n/g, "\\n") });
    expect((config.providers[0] as GitHubAppProviderConfig).privateKey).toContain("BEGIN PRIVATE KEY");
  });

  it("warns when the key file is readable by others", () => {
    const open = join(dir, "open.pem");
    writeFileSync(open, key.privateKey);
    chmodSync(open, 0o644);
    expect(parseConfig(provider().replace(keyFile, open), "c.yaml", {}).warnings.join()).toContain("is open to every user (mode 644); run chmod o-rwx on it");
  });

  it("warns about a group-readable key only when the daemon is not in that group", () => {
    // A Secret with defaultMode 0440 and the pod's fsGroup: the keeper reads it through the group.
    expect(exposure({ mode: 0o100440, gid: 1000 }, [10001, 1000])).toBeUndefined();
    expect(exposure({ mode: 0o100640, gid: 0 }, [0])).toBeUndefined();
    expect(exposure({ mode: 0o100440, gid: 1000 }, [10001])).toBe(
      "is readable by group 1000, which the daemon is not in (mode 440); run chmod 600 on it, or chgrp it to the daemon's group",
    );
    expect(exposure({ mode: 0o100444, gid: 1000 }, [1000])).toContain("open to every user");
  });

  it("finds the key in systemd's credentials directory by provider name, or through ${CREDENTIALS_DIRECTORY}", () => {
    const credentials = tempDir();
    writeFileSync(join(credentials, "acme.pem"), key.privateKey, { mode: 0o600 });
    const byName = provider().replace(`    privateKeyFile: ${keyFile}\n`, "");
    expect((parseConfig(byName, "c.yaml", { CREDENTIALS_DIRECTORY: credentials }).providers[0] as GitHubAppProviderConfig).privateKey).toContain("BEGIN PRIVATE KEY");
    expect(problems(byName).join()).toContain("set privateKeyFile or privateKeyEnv (or, under systemd, LoadCredential=acme.pem:/path/to/key)");
    const expanded = provider().replace(keyFile, "${CREDENTIALS_DIRECTORY}/acme.pem");
    expect((parseConfig(expanded, "c.yaml", { CREDENTIALS_DIRECTORY: credentials }).providers[0] as GitHubAppProviderConfig).privateKey).toContain("BEGIN PRIVATE KEY");
    expect(problems(expanded).join()).toContain("uses ${CREDENTIALS_DIRECTORY}, which is not set");
  });

  it("accepts stateGroup by name or id and metrics on loopback only", () => {
    expect(parseConfig(`stateGroup: root\n${provider()}`, "c.yaml", {}).stateGid).toBe(0);
    expect(parseConfig(`stateGroup: 1000\n${provider()}`, "c.yaml", {}).stateGid).toBe(1000);
    expect(problems(`stateGroup: no-such-group-here\n${provider()}`).join()).toContain("stateGroup: no group 'no-such-group-here'");
    expect(parseConfig(`metrics: {listen: "127.0.0.1:9464"}\n${provider()}`, "c.yaml", {}).metricsListen).toBe("127.0.0.1:9464");
    expect(problems(`metrics: {listen: "0.0.0.0:9464"}\n${provider()}`).join()).toContain("metrics.listen: must be 127.0.0.1:PORT");
  });

  it("lists every problem at once", () => {
    expect(problems(`refreshBefore: x\nstateDir: relative\n${provider("    owners: []\n")}`).length).toBeGreaterThanOrEqual(3);
  });
});
