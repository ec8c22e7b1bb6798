import { ConfigError } from "../errors/keeper-error.ts";
import { buildProvider, PROVIDER_SCHEMAS, PROVIDER_TYPES } from "../providers/provider-registry.ts";
import { configSchema, type RawConfig } from "./config-schema.ts";
import { formatIssues } from "./format-issues.ts";
import { parseYaml, readConfigText } from "./read-config-file.ts";
import type { KeeperConfig, ProviderConfig } from "./keeper-config.ts";
import { resolveGroup } from "./resolve-group.ts";
import { shimStateDir } from "./shim-state-dir.ts";

export { configPath, DEFAULT_CONFIG_PATH } from "./config-path.ts";

function knownKeys(raw: unknown): (path: readonly PropertyKey[]) => string[] {
  return (path) => {
    if (path.length === 1 && path[0] === "type") return [...PROVIDER_TYPES];
    if (path[0] === "providers" && typeof path[1] === "number") {
      const type = (raw as { providers?: { type?: string }[] })?.providers?.[path[1]]?.type;
      const schema = PROVIDER_SCHEMAS[type as keyof typeof PROVIDER_SCHEMAS];
      return schema ? Object.keys(schema.shape) : [];
    }
    if (path[0] === "metrics") return ["listen"];
    return Object.keys(configSchema.shape);
  };
}

/** Reads, parses and validates a config file; throws one ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): KeeperConfig {
  return parseConfig(readConfigText(file, "pass --config FILE or set GIT_TOKEN_KEEPER_CONFIG"), file, env);
}

export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): KeeperConfig {
  const input = parseYaml(text, source);
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, knownKeys(input)).map((l) => `${source}: ${l}`));
  const problems: string[] = [];
  const warnings: string[] = [];
  const providers = result.data.providers.map((raw, i) => buildProvider(raw, { at: `providers[${i}]`, env, problems, warnings }));
  checkAcrossProviders(result.data, providers, problems);
  if (result.data.retryMin > result.data.retryMax) problems.push("retryMin: must not be larger than retryMax");
  let stateGid: number | undefined;
  if (result.data.stateGroup !== undefined) {
    stateGid = resolveGroup(result.data.stateGroup);
    if (stateGid === undefined) problems.push(`stateGroup: no group '${result.data.stateGroup}' on this machine; create it (groupadd) or give its id`);
  }
  // The shim and helper find the state dir in this file by reading lines: a file that says
  // another thing to them than to the daemon would leave git without the keeper.
  const forShim = shimStateDir(text);
  if (forShim !== result.data.stateDir) {
    const found = forShim === undefined ? "no stateDir" : `stateDir '${forShim}'`;
    problems.push(
      result.data.stateDir === undefined
        ? `stateDir: the git shim and credential helper, which read this file line by line, find ${found} where the daemon finds none; remove that text or write the same stateDir at the top level`
        : `stateDir: the git shim and credential helper, which read this file line by line, find ${found}; write it on a line of its own at the top level: stateDir: ${result.data.stateDir}`,
    );
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
    forgetOwnerAfterMs: result.data.forgetOwnerAfter,
    providers: providers as ProviderConfig[],
    warnings: warnings.map((l) => `${source}: ${l}`),
  };
}

/**
 * Names are unique, and no two providers serve the same owner under the same path prefix of
 * one host: the helper must always know which one to ask.
 */
function checkAcrossProviders(raw: RawConfig, providers: (ProviderConfig | undefined)[], problems: string[]): void {
  const names = new Map<string, number>();
  const served = new Map<string, string>();
  const rotated = new Map<string, string>();
  raw.providers.forEach((p, i) => {
    const first = names.get(p.name);
    if (first !== undefined) problems.push(`providers[${i}].name: '${p.name}' is already used by providers[${first}]; names must be unique`);
    else names.set(p.name, i);
    const provider = providers[i];
    if (!provider) return;
    // A secret a refresh uses up and replaces has one provider: two would present it twice.
    if (provider.type === "gitlab") {
      const key = provider.grant === "refresh-token" ? "refreshTokenFile" : "tokenFile";
      const file = provider.grant === "refresh-token" ? provider.refreshTokenFile : provider.tokenFile;
      const other = file === undefined ? undefined : rotated.get(file);
      if (other) problems.push(`providers[${i}].${key}: '${file}' is already ${other}'s; GitLab's tokens are single-use, so give each provider its own file and grant`);
      else if (file !== undefined) rotated.set(file, `providers[${i}] (${p.name})`);
    }
    const installationOnly = provider.type === "github-app" && provider.installationId !== undefined && !provider.owners;
    const owners = provider.owners ?? (installationOnly ? [] : ["*"]);
    for (const owner of owners) {
      const key = `${provider.gitOrigin}${provider.pathPrefix} ${owner}`;
      const other = served.get(key);
      if (other === undefined) {
        served.set(key, `providers[${i}] (${p.name})`);
        continue;
      }
      const where = `${provider.gitOrigin}${provider.pathPrefix === "/" ? "" : provider.pathPrefix}`;
      problems.push(
        owner === "*"
          ? `providers[${i}]: ${other} already serves any owner under ${where}; give one of them owners: or a longer pathPrefix:`
          : `providers[${i}].owners: '${owner}' on ${where} is already served by ${other}; list each owner once`,
      );
    }
  });
}
