import { z } from "zod";
import { formatIssues } from "./format-issues.ts";
import { parseYaml, readConfigText } from "./read-config-file.ts";
import { ConfigError } from "../errors/keeper-error.ts";
import { buildProvider, PROVIDER_SCHEMAS, PROVIDER_TYPES, providerSchema, type ProviderConfig } from "../providers/provider-registry.ts";
import { parseOrigin } from "../providers/settings/git-url.ts";
import { boundedDuration, DAY_MS, duration, OWNER } from "../providers/settings/schema-parts.ts";
import { checkReadableFile } from "../providers/settings/read-secret.ts";

/** One OIDC issuer whose JWTs prove who asks. */
export interface Identity {
  name: string;
  issuer: string;
  /** Where its keys are: a JWKS URL, a JWKS file, or (neither) discovery from the issuer. */
  jwksUrl: string | undefined;
  jwksFile: string | undefined;
  audience: string;
  /** The least time between two JWKS fetches (an unknown kid asks for one). */
  jwksCooldownMs: number;
}

/** Who may have which tokens. Default deny; the first policy that matches decides. */
export interface Policy {
  /** Its place in the file, for the audit (`policies[2]`). */
  at: string;
  identity: string;
  /** Claim name → exact value or `*` glob. */
  claims: Record<string, string>;
  gitOrigin: string;
  /** Lower-case owners, or undefined for any owner. */
  owners: string[] | undefined;
  repositories: string[] | undefined;
  permissions: Record<string, string> | undefined;
}

export interface BrokerConfig {
  source: string;
  listen: { host: string; port: number };
  tls: { certFile: string; keyFile: string } | undefined;
  providers: ProviderConfig[];
  identities: Identity[];
  policies: Policy[];
  minRemainingMs: number;
  refreshBeforeMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  remintIntervalMs: number;
  mintConcurrency: number;
  /** Requests one identity (issuer and subject) may make per second, and its burst. */
  ratePerIdentity: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const CLAIM_VALUE = z.string().min(1).max(256);

const identitySchema = z.strictObject({
  name: z.string().regex(NAME, "must be letters, digits, '-' or '_'"),
  issuer: z.string().min(1),
  jwksUrl: z.string().optional(),
  jwksFile: z.string().startsWith("/", "must be an absolute path").optional(),
  audience: z.string().min(1),
  jwksCooldown: boundedDuration(1_000, 60 * 60_000, "the least time between two fetches of the issuer's keys; tokens with unknown kids cannot make it fetch more often").default(30_000),
});

const policySchema = z.strictObject({
  identity: z.string().regex(NAME),
  claims: z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be a claim name"), CLAIM_VALUE).default({}),
  gitUrl: z.string(),
  owners: z.union([z.literal("*"), z.array(z.string().regex(OWNER, "must be an owner name")).min(1)]),
  repositories: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/, "must be a repository name without the owner")).min(1).optional(),
  permissions: z.record(z.string().regex(/^[a-z_]+$/), z.enum(["read", "write", "admin"])).optional(),
});

export const brokerSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port, such as 0.0.0.0:8443"),
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  providers: z.array(providerSchema).min(1, "must list at least one provider"),
  identities: z.array(identitySchema).min(1, "must list at least one identity (an OIDC issuer)"),
  policies: z.array(policySchema).min(1, "must list at least one policy (the broker denies what no policy allows)"),
  minRemaining: duration.default(15 * 60_000),
  refreshBefore: boundedDuration(1_000, DAY_MS, "how long before expiry a token is replaced").default(20 * 60_000),
  retryMin: boundedDuration(100, 10 * 60_000, "the first wait after a failed mint").default(1_000),
  retryMax: boundedDuration(1_000, DAY_MS, "the longest wait between failed mints").default(60_000),
  remintInterval: boundedDuration(500, 10 * 60_000, "the least time between re-mints of one scope when hosts refuse its token").default(5_000),
  mintConcurrency: z.number().int().min(1).max(64).default(8),
  ratePerIdentity: z.number().min(0.1).max(10_000).default(20),
});

const LEVEL = { read: 1, write: 2, admin: 3 } as const;

// The shortest life each provider type's tokens have: minRemaining may be at most half of it,
// or no token could ever be handed out.
const SHORTEST_LIFE_MS: Record<string, number> = { "github-app": 60 * 60_000, "azure-devops": 60 * 60_000, gitlab: 2 * 60 * 60_000 };

export function loadBrokerConfig(file: string, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  return parseBrokerConfig(readConfigText(file, "pass --config FILE"), file, env);
}

function knownKeys(raw: unknown): (path: readonly PropertyKey[]) => string[] {
  return (path) => {
    if (path[0] === "providers" && typeof path[1] === "number") {
      if (path.length === 2 || path[2] === "type") {
        const type = (raw as { providers?: { type?: string }[] })?.providers?.[path[1]]?.type;
        const schema = PROVIDER_SCHEMAS[type as keyof typeof PROVIDER_SCHEMAS];
        return schema ? Object.keys(schema.shape) : [...PROVIDER_TYPES];
      }
    }
    if (path[0] === "identities") return Object.keys(identitySchema.shape);
    if (path[0] === "policies") return Object.keys(policySchema.shape);
    if (path[0] === "tls") return ["certFile", "keyFile"];
    return Object.keys(brokerSchema.shape);
  };
}

/** Parses and checks a broker config; throws one ConfigError listing every problem. */
export function parseBrokerConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const input = parseYaml(text, source);
  const parsed = brokerSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues, knownKeys(input)).map((l) => `${source}: ${l}`));
  const raw = parsed.data;
  const problems: string[] = [];
  const warnings: string[] = [];
  const providers = raw.providers.map((p, i) => buildProvider(p, { at: `providers[${i}]`, env, problems, warnings }));

  const port = Number(raw.listen.slice(raw.listen.lastIndexOf(":") + 1));
  const host = raw.listen.slice(0, raw.listen.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  if (port > 65535) problems.push(`listen: port ${port} is out of range`);
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(host);
  if (!raw.tls && !loopback) problems.push(`listen: ${raw.listen} without tls: sends tokens in clear; add tls: {certFile, keyFile} (plain http is for loopback only)`);
  const tls = raw.tls ? { certFile: checkReadableFile(raw.tls.certFile, "tls.certFile", env, problems, warnings), keyFile: checkReadableFile(raw.tls.keyFile, "tls.keyFile", env, problems, warnings) } : undefined;

  const identities: Identity[] = raw.identities.map((id, i) => {
    const at = `identities[${i}]`;
    const issuer = parseOrigin(id.issuer, { allowPath: true });
    if ("problem" in issuer) problems.push(`${at}.issuer: ${issuer.problem}`);
    if (id.jwksUrl !== undefined && id.jwksFile !== undefined) problems.push(`${at}: set jwksUrl or jwksFile, not both`);
    if (id.jwksUrl !== undefined) {
      const u = parseOrigin(id.jwksUrl, { allowPath: true });
      if ("problem" in u) problems.push(`${at}.jwksUrl: ${u.problem}`);
    }
    const jwksFile = id.jwksFile === undefined ? undefined : checkReadableFile(id.jwksFile, `${at}.jwksFile`, env, problems, warnings);
    return { name: id.name, issuer: id.issuer, jwksUrl: id.jwksUrl, jwksFile, audience: id.audience, jwksCooldownMs: id.jwksCooldown };
  });
  const names = new Set<string>();
  for (const [i, id] of identities.entries()) {
    if (names.has(id.name)) problems.push(`identities[${i}].name: '${id.name}' is used twice`);
    names.add(id.name);
  }

  const policies: Policy[] = raw.policies.map((p, i) => {
    const at = `policies[${i}]`;
    if (!names.has(p.identity)) problems.push(`${at}.identity: no identity named '${p.identity}' (identities: ${[...names].join(", ")})`);
    const origin = parseOrigin(p.gitUrl, { allowPath: false });
    if ("problem" in origin) problems.push(`${at}.gitUrl: ${origin.problem}`);
    const gitOrigin = "origin" in origin ? origin.origin : "";
    const provider = providers.find((c) => c?.gitOrigin === gitOrigin);
    if (gitOrigin && !provider) problems.push(`${at}.gitUrl: no provider serves ${gitOrigin}; add one under providers:`);
    if (provider && (p.repositories || p.permissions) && provider.type !== "github-app") {
      problems.push(`${at}: repositories and permissions narrow GitHub App tokens only; ${provider.name} is ${provider.type}`);
    }
    if (provider?.type === "github-app") {
      const repos = provider.repositories;
      if (repos && p.repositories?.some((r) => !repos.includes(r))) problems.push(`${at}.repositories: wider than ${provider.name}'s repositories (${repos.join(", ")})`);
      const perms = provider.permissions;
      for (const [k, v] of Object.entries(p.permissions ?? {})) {
        const max = perms?.[k];
        if (perms && (max === undefined || LEVEL[v] > LEVEL[max as keyof typeof LEVEL])) problems.push(`${at}.permissions.${k}: ${v} is wider than ${provider.name}'s (${max ?? "none"})`);
      }
    }
    return {
      at,
      identity: p.identity,
      claims: p.claims,
      gitOrigin,
      owners: p.owners === "*" ? undefined : p.owners.map((o) => o.toLowerCase()),
      repositories: p.repositories,
      permissions: p.permissions,
    };
  });

  const shortest = Math.min(...providers.filter((p): p is ProviderConfig => !!p).map((p) => SHORTEST_LIFE_MS[p.type] ?? DAY_MS));
  if (raw.minRemaining > shortest / 2) problems.push(`minRemaining: at most half the shortest token life a provider issues (${shortest / 120_000}m here)`);
  if (raw.refreshBefore <= raw.minRemaining) problems.push("refreshBefore: must be longer than minRemaining, or cached tokens would be too short to hand out before they are replaced");
  if (problems.length > 0) throw new ConfigError(problems.map((l) => `${source}: ${l}`));
  return {
    source,
    listen: { host, port },
    tls: tls as BrokerConfig["tls"],
    providers: providers as ProviderConfig[],
    identities,
    policies,
    minRemainingMs: raw.minRemaining,
    refreshBeforeMs: raw.refreshBefore,
    retryMinMs: raw.retryMin,
    retryMaxMs: raw.retryMax,
    remintIntervalMs: raw.remintInterval,
    mintConcurrency: raw.mintConcurrency,
    ratePerIdentity: raw.ratePerIdentity,
  };
}
