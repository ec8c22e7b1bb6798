import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/load-config.ts";
import { ConfigError } from "../../../src/errors/keeper-error.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

// systemd's LoadCredential hands secrets over as ${CREDENTIALS_DIRECTORY}/<name>: every key
// that names a file takes it, and the provider is given the expanded path.
describe("${VAR} in every file key", () => {
  const credentials = tempDir();
  mkdirSync(credentials, { recursive: true });
  for (const f of ["secret", "cert.pem", "refresh", "token", "bearer", "ca.pem", "client.pem", "client.key", "git-token"]) writeFileSync(join(credentials, f), "x\n", { mode: 0o600 });
  const env = { CREDENTIALS_DIRECTORY: credentials };
  afterAll(removeTempDirs);

  const cases: [string, string, Record<string, string>][] = [
    ["azure-devops client secret", "type: azure-devops\n    credential: client-secret\n    tenantId: t\n    clientId: c\n    clientSecretFile: ${CREDENTIALS_DIRECTORY}/secret", { clientSecretFile: "secret" }],
    ["azure-devops certificate", "type: azure-devops\n    credential: client-certificate\n    tenantId: t\n    clientId: c\n    certificateFile: ${CREDENTIALS_DIRECTORY}/cert.pem", { certificateFile: "cert.pem" }],
    ["azure-devops workload identity", "type: azure-devops\n    credential: workload-identity\n    tenantId: t\n    clientId: c\n    federatedTokenFile: ${CREDENTIALS_DIRECTORY}/token", { federatedTokenFile: "token" }],
    ["gitlab refresh token", "type: gitlab\n    grant: refresh-token\n    clientId: c\n    refreshTokenFile: ${CREDENTIALS_DIRECTORY}/refresh\n    clientSecretFile: ${CREDENTIALS_DIRECTORY}/secret", { refreshTokenFile: "refresh", clientSecretFile: "secret" }],
    ["gitlab self-rotate", "type: gitlab\n    grant: self-rotate\n    tokenFile: ${CREDENTIALS_DIRECTORY}/token", { tokenFile: "token" }],
    ["http", "type: http\n    gitUrl: https://git.example\n    url: https://tokens.example/token\n    bearerTokenFile: ${CREDENTIALS_DIRECTORY}/bearer\n    caFile: ${CREDENTIALS_DIRECTORY}/ca.pem\n    certFile: ${CREDENTIALS_DIRECTORY}/client.pem\n    keyFile: ${CREDENTIALS_DIRECTORY}/client.key", { bearerTokenFile: "bearer", caFile: "ca.pem", certFile: "client.pem", keyFile: "client.key" }],
    ["file", "type: file\n    gitUrl: https://git.example\n    path: ${CREDENTIALS_DIRECTORY}/git-token", { path: "git-token" }],
  ];

  for (const [label, body, expected] of cases) {
    it(`${label}: the provider gets the expanded path`, () => {
      const config = parseConfig(`providers:\n  - name: p\n    ${body}\n`, "c.yaml", env);
      const provider = config.providers[0] as unknown as Record<string, unknown>;
      for (const [key, file] of Object.entries(expected)) expect(provider[key], key).toBe(join(credentials, file));
    });

    it(`${label}: an unset variable is one error naming it`, () => {
      let problems: readonly string[] = [];
      try {
        parseConfig(`providers:\n  - name: p\n    ${body}\n`, "c.yaml", {});
      } catch (error) {
        problems = (error as ConfigError).problems;
      }
      const key = Object.keys(expected)[0] as string;
      const mine = problems.filter((p) => p.startsWith(`c.yaml: providers[0].${key}`));
      expect(mine).toHaveLength(1);
      expect(mine[0]).toContain("${CREDENTIALS_DIRECTORY}");
      expect(mine[0]).toContain("not set");
    });
  }
});
