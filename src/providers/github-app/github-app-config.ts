import { createPrivateKey } from "node:crypto";
import { z } from "zod";
import type { ProviderBase } from "../settings/provider-base.ts";
import { requestTimeout, ENV_NAME, positiveId, common } from "../settings/schema-parts.ts";
import { base, url, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkReadableFile, readSecretFile } from "../settings/read-secret.ts";

/** The `github-app` provider's keys in the config file. */
export const githubAppSchema = z.strictObject({
  ...common,
  type: z.literal("github-app"),
  appId: positiveId.optional(),
  clientId: z.string().regex(/^Iv[0-9a-zA-Z.]+$/, "must be a GitHub App client ID such as Iv23li…").optional(),
  privateKeyFile: z.string().min(1).optional(),
  privateKeyEnv: z.string().regex(ENV_NAME, "must be an environment variable name").optional(),
  apiUrl: z.string().default("https://api.github.com"),
  gitUrl: z.string().default("https://github.com"),
  installationId: positiveId.optional(),
  repositories: z
    .array(z.string().regex(/^[A-Za-z0-9._-]+$/, "must be a repository name without the owner"))
    .min(1)
    .optional(),
  permissions: z
    .record(z.string().regex(/^[a-z_]+$/), z.enum(["read", "write", "admin"]))
    .refine((p) => Object.keys(p).length > 0, "must name at least one permission; leave it out for the installation's")
    .optional(),
  /** Per request to the GitHub API. */
  timeout: requestTimeout.default(30_000),
});

const PERMISSION_LEVEL: Record<string, number> = { read: 1, write: 2, admin: 3 };

/** True when GitHub App permission level `a` is within `b` (read < write < admin). */
export function levelWithin(a: string, b: string | undefined): boolean {
  return b !== undefined && (PERMISSION_LEVEL[a] ?? 99) <= (PERMISSION_LEVEL[b] ?? 0);
}

/** What a github-app provider is given. */
export interface GitHubAppProviderConfig extends ProviderBase {
  type: "github-app";
  appId: number | string;
  privateKey: string;
  apiUrl: string;
  installationId: number | undefined;
  repositories: string[] | undefined;
  permissions: Record<string, string> | undefined;
  timeout: number;
}

export type RawGitHubAppProvider = z.output<typeof githubAppSchema>;

/** Checks a github-app provider's settings beyond the schema and returns what the daemon needs. */
export function buildGitHubAppConfig(raw: RawGitHubAppProvider, ctx: ProviderCheckContext): GitHubAppProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const b = base(raw, ctx, { gitUrl: "https://github.com", perOwner: true, username: "x-access-token" });
  if ((raw.appId === undefined) === (raw.clientId === undefined)) {
    problems.push(`${at}: set exactly one of appId and clientId (the GitHub App's settings page shows both)`);
  }
  if (raw.privateKeyFile !== undefined && raw.privateKeyEnv !== undefined) problems.push(`${at}: set only one of privateKeyFile and privateKeyEnv`);
  const privateKey = readPrivateKey(raw, ctx);
  const apiUrl = url(raw.apiUrl, `${at}.apiUrl`, ctx);
  if (!b || !privateKey || !apiUrl || problems.length > before) return undefined;
  return { ...b, type: "github-app", appId: (raw.appId ?? raw.clientId) as number | string, privateKey, apiUrl, installationId: raw.installationId, repositories: raw.repositories, permissions: raw.permissions, timeout: raw.timeout };
}

function readPrivateKey(raw: RawGitHubAppProvider, ctx: ProviderCheckContext): string | undefined {
  const { at, env, problems } = ctx;
  let pem: string;
  let key: string;
  // Neither given: systemd's LoadCredential=<name>.pem puts it here.
  const fromCredentials = env.CREDENTIALS_DIRECTORY ? `\${CREDENTIALS_DIRECTORY}/${raw.name}.pem` : undefined;
  const keyFile = raw.privateKeyFile ?? (raw.privateKeyEnv === undefined ? fromCredentials : undefined);
  if (keyFile === undefined && raw.privateKeyEnv === undefined) {
    problems.push(`${at}: set privateKeyFile or privateKeyEnv (or, under systemd, LoadCredential=${raw.name}.pem:/path/to/key)`);
    return undefined;
  }
  if (keyFile !== undefined) {
    key = `${at}.privateKeyFile`;
    const file = checkReadableFile(keyFile, key, env, problems, ctx.warnings);
    if (!file) return undefined;
    pem = readSecretFile(file, "utf8");
  } else {
    key = `${at}.privateKeyEnv`;
    const value = env[raw.privateKeyEnv as string];
    if (!value) {
      problems.push(`${key}: environment variable ${raw.privateKeyEnv} is not set; export the App's PEM key in it`);
      return undefined;
    }
    // Many secret stores flatten newlines to a literal \n.
    pem = value.includes("\\n") && !value.includes("\n") ? value.replace(/\\n/g, "\n") : value;
  }
  try {
    const parsed = createPrivateKey(pem);
    if (parsed.asymmetricKeyType !== "rsa") {
      problems.push(`${key}: the key is ${parsed.asymmetricKeyType}, but GitHub Apps sign with RSA; download a new private key from the App's settings`);
      return undefined;
    }
    // Normalise to PKCS#8 so the JWT signer accepts keys GitHub hands out (PKCS#1) and others.
    return parsed.export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    problems.push(`${key}: not a PEM private key (expected the PEM file the App's settings page downloads); download the key again from the App's settings`);
    return undefined;
  }
}
