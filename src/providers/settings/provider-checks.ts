import { expandEnv } from "./expand-env.ts";
import { parseOrigin } from "./git-url.ts";
import type { ProviderBase, RefreshEvery, Specific } from "./provider-base.ts";

/** Where a provider's checks report: the key path (`providers[2]`), the environment, and lists. */
export interface ProviderCheckContext {
  at: string;
  env: NodeJS.ProcessEnv;
  problems: string[];
  warnings: string[];
}
type Ctx = ProviderCheckContext;

/** The keys every provider has, as its schema produced them. */
interface RawCommon {
  name: string;
  type: string;
  gitUrl?: string | undefined;
  owners?: string[] | undefined;
  organizations?: string[] | undefined;
  pathPrefix?: string | undefined;
  refreshEvery?: RefreshEvery | undefined;
  username?: string | undefined;
  sshToHttps: boolean;
}

/** Checks the keys every provider has and returns the settings the daemon shares across types. */
export function base(raw: RawCommon, ctx: Ctx, defaults: { gitUrl: string; perOwner: boolean; username: string }): ProviderBase | undefined {
  const gitUrl = raw.gitUrl || defaults.gitUrl;
  const git = parseOrigin(gitUrl, { allowPath: false });
  if ("problem" in git) {
    ctx.problems.push(`${ctx.at}.gitUrl: ${git.problem}`);
    return undefined;
  }
  const owners = raw.owners ?? raw.organizations;
  if (raw.owners && raw.organizations) ctx.problems.push(`${ctx.at}: set owners or organizations, not both (they mean the same)`);
  if (owners && raw.pathPrefix) ctx.problems.push(`${ctx.at}: set owners or pathPrefix, not both (an owner is the path prefix /owner/)`);
  if (raw.sshToHttps && raw.type === "azure-devops") {
    ctx.problems.push(`${ctx.at}.sshToHttps: Azure DevOps SSH URLs (git@ssh.dev.azure.com:v3/org/project/repo) do not map to its HTTPS URLs by prefix; use HTTPS remote URLs, or leave sshToHttps out`);
  }
  let pathPrefix = (raw.pathPrefix ?? "/").toLowerCase();
  if (!pathPrefix.endsWith("/")) pathPrefix += "/";
  return {
    name: raw.name,
    type: raw.type,
    gitOrigin: git.origin,
    owners: owners?.map((o) => o.toLowerCase()),
    pathPrefix,
    perOwner: defaults.perOwner,
    refreshEvery: raw.refreshEvery,
    username: raw.username ?? defaults.username,
    sshToHttps: raw.sshToHttps,
  };
}

/** A path with `${VAR}` expanded; an unset variable or a relative result is a problem naming the key. */
export function expandPath(value: string, key: string, ctx: Ctx): string | undefined {
  const expanded = expandEnv(value, ctx.env);
  if (expanded.missing.length) {
    ctx.problems.push(`${key}: '${value}' uses ${expanded.missing.map((n) => `\${${n}}`).join(", ")}, which is not set`);
    return undefined;
  }
  if (!expanded.value.startsWith("/")) {
    ctx.problems.push(`${key}: '${value}' must be an absolute path`);
    return undefined;
  }
  return expanded.value;
}

export function url(value: string, key: string, ctx: Ctx): string | undefined {
  const parsed = parseOrigin(value, { allowPath: true });
  if ("problem" in parsed) {
    ctx.problems.push(`${key}: ${parsed.problem}`);
    return undefined;
  }
  return parsed.url.href.replace(/\/+$/, "");
}

/** A provider's own keys: what its schema produced, less the keys every provider has. */
export function ownKeys<R extends RawCommon>(raw: R): Specific<Omit<R, "organizations">> {
  const { name: _n, type: _t, owners: _o, organizations: _org, pathPrefix: _p, refreshEvery: _r, username: _u, gitUrl: _g, sshToHttps: _s, ...rest } = raw;
  return rest as unknown as Specific<Omit<R, "organizations">>;
}
