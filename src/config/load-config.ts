import { createPrivateKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import { ConfigError } from "../errors/keeper-error.ts";
import { configSchema, githubAppSchema, PROVIDER_TYPES, type RawConfig, type RawGitHubAppProvider } from "./config-schema.ts";
import { formatIssues } from "./format-issues.ts";
import { expandEnv } from "./expand-env.ts";
import { parseOrigin } from "./git-url.ts";
import { resolveGroup } from "./resolve-group.ts";
import type { GitHubAppProviderConfig, KeeperConfig, ProviderConfig } from "./keeper-config.ts";

export const DEFAULT_CONFIG_PATH = "/etc/git-token-keeper/config.yaml";

/** `--config`, else `$GIT_TOKEN_KEEPER_CONFIG`, else the system path. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.GIT_TOKEN_KEEPER_CONFIG || DEFAULT_CONFIG_PATH);
}

function knownKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 1 && path[0] === "type") return [...PROVIDER_TYPES];
  if (path[0] === "providers") return Object.keys(githubAppSchema.shape);
  return Object.keys(configSchema.shape);
}

/** Reads, parses and validates a config file; throws one ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): KeeperConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code);
    throw new ConfigError([`${file}: ${why}; pass --config FILE or set GIT_TOKEN_KEEPER_CONFIG`], { cause: error });
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): KeeperConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${source}: ${e.message.split("\n")[0]}`));
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, knownKeys).map((l) => `${source}: ${l}`));
  const problems: string[] = [];
  const warnings: string[] = [];
  const providers = result.data.providers.map((raw, i) => buildProvider(raw, `providers[${i}]`, env, problems, warnings));
  checkAcrossProviders(result.data, providers, problems);
  if (result.data.retryMin > result.data.retryMax) problems.push("retryMin: must not be larger than retryMax");
  let stateGid: number | undefined;
  if (result.data.stateGroup !== undefined) {
    stateGid = resolveGroup(result.data.stateGroup);
    if (stateGid === undefined) problems.push(`stateGroup: no group '${result.data.stateGroup}' on this machine; create it (groupadd) or give its id`);
  }
  if (problems.length > 0) throw new ConfigError(problems.map((l) => `${source}: ${l}`));
  return {
    source,
    stateDir: result.data.stateDir,
    stateGid,
    metricsListen: result.data.metrics?.listen,
    refreshBeforeMs: result.data.refreshBefore,
    retryMinMs: result.data.retryMin,
    retryMaxMs: result.data.retryMax,
    remintIntervalMs: result.data.remintInterval,
    mintConcurrency: result.data.mintConcurrency,
    providers: providers as ProviderConfig[],
    warnings: warnings.map((l) => `${source}: ${l}`),
  };
}

function buildProvider(
  raw: RawGitHubAppProvider,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warnings: string[],
): GitHubAppProviderConfig | undefined {
  const before = problems.length;
  if ((raw.appId === undefined) === (raw.clientId === undefined)) {
    problems.push(`${at}: set exactly one of appId and clientId (the GitHub App's settings page shows both)`);
  }
  if (raw.privateKeyFile !== undefined && raw.privateKeyEnv !== undefined) {
    problems.push(`${at}: set only one of privateKeyFile and privateKeyEnv`);
  }
  const privateKey = readPrivateKey(raw, at, env, problems, warnings);
  const git = parseOrigin(raw.gitUrl, { allowPath: false });
  if ("problem" in git) problems.push(`${at}.gitUrl: ${git.problem}`);
  const api = parseOrigin(raw.apiUrl, { allowPath: true });
  if ("problem" in api) problems.push(`${at}.apiUrl: ${api.problem}`);
  if (problems.length > before || "problem" in git || "problem" in api || privateKey === undefined) return undefined;
  return {
    name: raw.name,
    type: "github-app",
    gitOrigin: git.origin,
    owners: raw.owners?.map((o) => o.toLowerCase()),
    appId: (raw.appId ?? raw.clientId) as number | string,
    privateKey,
    apiUrl: api.url.href.replace(/\/+$/, ""),
    installationId: raw.installationId,
    repositories: raw.repositories,
    permissions: raw.permissions,
  };
}

function readPrivateKey(
  raw: RawGitHubAppProvider,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warnings: string[],
): string | undefined {
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
    const expanded = expandEnv(keyFile, env);
    if (expanded.missing.length) {
      problems.push(`${key}: '${keyFile}' uses ${expanded.missing.map((n) => `\${${n}}`).join(", ")}, which is not set; under systemd use LoadCredential=, elsewhere write the path`);
      return undefined;
    }
    const file = expanded.value;
    try {
      pem = readFileSync(file, "utf8");
      const mode = statSync(file).mode;
      if (mode & 0o077) {
        warnings.push(`${key}: '${file}' is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied (the daemon's user must be able to read it)" : code === "EISDIR" ? "is a directory" : String(code);
      problems.push(`${key}: ${why} '${file}'`);
      return undefined;
    }
  } else if (raw.privateKeyEnv !== undefined) {
    key = `${at}.privateKeyEnv`;
    const value = env[raw.privateKeyEnv];
    if (!value) {
      problems.push(`${key}: environment variable ${raw.privateKeyEnv} is not set; export the App's PEM key in it`);
      return undefined;
    }
    // Many secret stores flatten newlines to a literal \n.
    pem = value.includes("\\n") && !value.includes("\n") ? value.replace(/\\n/g, "\n") : value;
  } else {
    return undefined;
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
    problems.push(`${key}: not a PEM private key (expected a block starting with -----BEGIN RSA PRIVATE KEY-----); download the key again from the App's settings`);
    return undefined;
  }
}

function checkAcrossProviders(raw: RawConfig, providers: (ProviderConfig | undefined)[], problems: string[]): void {
  const names = new Map<string, number>();
  const servedOwners = new Map<string, string>();
  raw.providers.forEach((p, i) => {
    const first = names.get(p.name);
    if (first !== undefined) problems.push(`providers[${i}].name: '${p.name}' is already used by providers[${first}]; names must be unique`);
    else names.set(p.name, i);
    const provider = providers[i];
    if (!provider) return;
    const scopes = provider.owners ?? (provider.installationId === undefined ? ["*"] : []);
    for (const owner of scopes) {
      const key = `${provider.gitOrigin} ${owner}`;
      const other = servedOwners.get(key);
      if (other !== undefined) {
        problems.push(
          owner === "*"
            ? `providers[${i}]: ${other} already serves any owner on ${provider.gitOrigin}; give one of them an owners: list`
            : `providers[${i}].owners: '${owner}' on ${provider.gitOrigin} is already served by ${other}; list each owner once`,
        );
      } else {
        servedOwners.set(key, `providers[${i}] (${p.name})`);
      }
    }
  });
}
