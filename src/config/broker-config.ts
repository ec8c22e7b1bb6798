import { z } from "zod";
import { formatIssues } from "./format-issues.ts";
import { parseYaml, readConfigText } from "./read-config-file.ts";
import { ConfigError } from "../errors/keeper-error.ts";
import { buildProvider, PROVIDER_SCHEMAS, PROVIDER_TYPES, providerSchema, type ProviderConfig } from "../providers/provider-registry.ts";
import { parseOrigin } from "../providers/settings/git-url.ts";
import { boundedDuration, DAY_MS, duration, OWNER } from "../providers/settings/schema-parts.ts";
import { checkReadableFile } from "../providers/settings/read-secret.ts";
import { levelWithin } from "../providers/github-app/github-app-config.ts";
import { insecureKeyUrl } from "../broker/insecure-key-url.ts";

/** One OIDC issuer whose JWTs prove who asks. */
export interface Identity {
  name: string;
  issuer: string;
  /** Where its keys are: a JWKS URL, a JWKS file, or (neither) discovery from the issuer. */
  jwksUrl: string | undefined;
  jwksFile: string | undefined;
  audience: string;
  /** The least time between two fetches of its keys (discovery and JWKS), whatever asks for one. */
  jwksCooldownMs: number;
  /** A bearer token file (re-read at each fetch) sent to the discovery and JWKS URLs only. */
  jwksTokenFile: string | undefined;
  /** A PEM CA bundle trusted, instead of the system's, for the discovery and JWKS fetches. */
  jwksCaFile: string | undefined;
  /** How long the last good keys keep verifying while the issuer cannot be reached. */
  staleKeysForMs: number;
  /** The oldest identity token (by `iat`) accepted. */
  maxIdentityAgeMs: number;
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
  /** No claims named: every identity the issuer vouches for (said so in the config, warned at start). */
  anyIdentityOfIssuer: boolean;
}

export interface BrokerConfig {
  source: string;
  listen: { host: string; port: number };
  /** Where /metrics is served, apart from the token API; undefined: nowhere ("off"). */
  metricsListen: { host: string; port: number } | undefined;
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
  /** Scopes (cached tokens) kept at once, and per identity; the least recently asked go first. */
  maxScopes: number;
  maxScopesPerIdentity: number;
  /** Connections held at once, and from one client address; the listener refuses more. */
  maxConnections: number;
  maxConnectionsPerClient: number;
  /** Defaults of the identities' staleKeysFor and maxIdentityAge (each identity's own wins). */
  staleKeysForMs: number;
  maxIdentityAgeMs: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const CLAIM_VALUE = z.string().min(1).max(256);

const staleKeysFor = boundedDuration(60_000, 7 * DAY_MS, "how long the issuer's last good keys keep verifying while it cannot be reached");
const maxIdentityAge = boundedDuration(60_000, 30 * DAY_MS, "the oldest identity token, by its iat, that is accepted");

const identitySchema = z.strictObject({
  name: z.string().regex(NAME, "must be letters, digits, '-' or '_'"),
  issuer: z.string().min(1),
  jwksUrl: z.string().optional(),
  jwksFile: z.string().startsWith("/", "must be an absolute path").optional(),
  jwksTokenFile: z.string().startsWith("/", "must be an absolute path").optional(),
  jwksCaFile: z.string().startsWith("/", "must be an absolute path").optional(),
  audience: z.string().min(1),
  jwksCooldown: boundedDuration(1_000, 60 * 60_000, "the least time between two fetches of the issuer's keys; tokens with unknown kids cannot make it fetch more often").default(30_000),
  staleKeysFor: staleKeysFor.optional(),
  maxIdentityAge: maxIdentityAge.optional(),
});

const policySchema = z.strictObject({
  identity: z.string().regex(NAME),
  claims: z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be a claim name"), CLAIM_VALUE).default({}),
  gitUrl: z.string(),
  owners: z.union([z.literal("*"), z.array(z.string().regex(OWNER, "must be an owner name")).min(1)]),
  repositories: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/, "must be a repository name without the owner")).min(1, "must name at least one repository; leave it out for the provider's").optional(),
  permissions: z
    .record(z.string().regex(/^[a-z_]+$/), z.enum(["read", "write", "admin"]))
    .refine((p) => Object.keys(p).length > 0, "must name at least one permission; leave it out for the provider's")
    .optional(),
  anyIdentityOfIssuer: z.boolean().default(false),
});

export const brokerSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port, such as 0.0.0.0:8443"),
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  metricsListen: z
    .string()
    .regex(/^((\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}|off)$/, "must be host:port, such as 127.0.0.1:9464, or off")
    .default("127.0.0.1:9464"),
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
  maxScopes: z.number().int().min(1).max(1_000_000).default(5_000),
  maxScopesPerIdentity: z.number().int().min(1).max(1_000_000).default(500),
  maxConnections: z.number().int().min(1).max(100_000).default(2_000),
  maxConnectionsPerClient: z.number().int().min(1).max(100_000).default(100),
  staleKeysFor: staleKeysFor.default(6 * 60 * 60_000),
  maxIdentityAge: maxIdentityAge.default(DAY_MS),
});


/**
 * Where a policy could reach past a provider that may serve it: GitHub App repositories and
 * permissions beyond the provider's; for a provider that mints one token whatever the owner
 * (not per owner), any owner set other than exactly its own, since the token reaches the same.
 */
function ceilingProblems(at: string, p: { repositories?: string[] | undefined; permissions?: Record<string, string> | undefined }, owners: string[] | undefined, provider: ProviderConfig): string[] {
  const problems: string[] = [];
  if (provider.type !== "github-app" && (p.repositories || p.permissions)) {
    problems.push(`${at}: repositories and permissions narrow GitHub App tokens only; ${provider.name} is ${provider.type}`);
  }
  if (!provider.perOwner) {
    const same = owners === undefined ? provider.owners === undefined : provider.owners !== undefined && owners.length === provider.owners.length && owners.every((o) => provider.owners?.includes(o));
    if (!same) {
      const theirs = provider.owners ? provider.owners.join(", ") : '"*"';
      problems.push(`${at}.owners: ${provider.name} (${provider.type}) mints one token whatever the owner, which reaches what the token reaches: the policy's owners must be exactly the provider's (${theirs})`);
    }
  }
  if (provider.type === "github-app") {
    const repos = provider.repositories;
    const wider = repos ? (p.repositories ?? []).filter((r) => !repos.includes(r)) : [];
    if (wider.length) problems.push(`${at}.repositories: ${wider.join(", ")} not in ${provider.name}'s repositories (${repos?.join(", ")})`);
    const perms = provider.permissions;
    for (const [k, v] of Object.entries(p.permissions ?? {})) {
      if (perms && !levelWithin(v, perms[k])) problems.push(`${at}.permissions.${k}: ${v} is wider than ${provider.name}'s (${perms[k] ?? "none"})`);
    }
  }
  return problems;
}

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
  let metricsListen: { host: string; port: number } | undefined;
  if (raw.metricsListen !== "off") {
    const at = raw.metricsListen.lastIndexOf(":");
    metricsListen = { host: raw.metricsListen.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(raw.metricsListen.slice(at + 1)) };
    if (metricsListen.port > 65535) problems.push(`metricsListen: port ${metricsListen.port} is out of range`);
    if (metricsListen.port !== 0 && metricsListen.port === port) problems.push(`metricsListen: must be another port than listen's (${port}): /metrics has a listener of its own`);
  }
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(host);
  if (!raw.tls && !loopback) problems.push(`listen: ${raw.listen} without tls: sends tokens in clear; add tls: {certFile, keyFile} (plain http is for loopback only)`);
  const tls = raw.tls ? { certFile: checkReadableFile(raw.tls.certFile, "tls.certFile", env, problems, warnings), keyFile: checkReadableFile(raw.tls.keyFile, "tls.keyFile", env, problems, warnings) } : undefined;

  const identities: Identity[] = raw.identities.map((id, i) => {
    const at = `identities[${i}]`;
    // With jwksUrl or jwksFile the issuer is only compared with `iss`; discovery fetches from it.
    const discovered = id.jwksUrl === undefined && id.jwksFile === undefined;
    if (insecureKeyUrl(id.issuer)) {
      if (discovered) problems.push(`${at}.issuer: '${id.issuer}' is plain http:// off loopback, so its keys cannot be discovered safely (anyone on the path could swap them); use its https:// URL, or set jwksUrl (https://) or jwksFile`);
    } else {
      const issuer = parseOrigin(id.issuer, { allowPath: true });
      if ("problem" in issuer) problems.push(`${at}.issuer: ${issuer.problem}`);
    }
    if (id.jwksUrl !== undefined && id.jwksFile !== undefined) problems.push(`${at}: set jwksUrl or jwksFile, not both`);
    if (id.jwksUrl !== undefined && insecureKeyUrl(id.jwksUrl)) {
      problems.push(`${at}.jwksUrl: '${id.jwksUrl}' is plain http:// off loopback, so anyone on the path could swap the issuer's keys; use https:// (with jwksCaFile for a private CA)`);
    } else if (id.jwksUrl !== undefined) {
      const u = parseOrigin(id.jwksUrl, { allowPath: true });
      if ("problem" in u) problems.push(`${at}.jwksUrl: ${u.problem}`);
    }
    if (id.jwksFile !== undefined && (id.jwksTokenFile !== undefined || id.jwksCaFile !== undefined)) {
      problems.push(`${at}: jwksTokenFile and jwksCaFile are for fetched keys, and jwksFile is read from disk; remove them, or use jwksUrl`);
    }
    const jwksFile = id.jwksFile === undefined ? undefined : checkReadableFile(id.jwksFile, `${at}.jwksFile`, env, problems, warnings);
    const jwksTokenFile = id.jwksTokenFile === undefined ? undefined : checkReadableFile(id.jwksTokenFile, `${at}.jwksTokenFile`, env, problems, warnings);
    const jwksCaFile = id.jwksCaFile === undefined ? undefined : checkReadableFile(id.jwksCaFile, `${at}.jwksCaFile`, env, problems, warnings);
    return {
      name: id.name,
      issuer: id.issuer,
      jwksUrl: id.jwksUrl,
      jwksFile,
      audience: id.audience,
      jwksCooldownMs: id.jwksCooldown,
      jwksTokenFile,
      jwksCaFile,
      staleKeysForMs: id.staleKeysFor ?? raw.staleKeysFor,
      maxIdentityAgeMs: id.maxIdentityAge ?? raw.maxIdentityAge,
    };
  });
  const names = new Set<string>();
  for (const [i, id] of identities.entries()) {
    if (names.has(id.name)) problems.push(`identities[${i}].name: '${id.name}' is used twice`);
    names.add(id.name);
  }

  const policies: Policy[] = raw.policies.map((p, i) => {
    const at = `policies[${i}]`;
    if (!names.has(p.identity)) problems.push(`${at}.identity: no identity named '${p.identity}' (identities: ${[...names].join(", ")})`);
    if (Object.keys(p.claims).length === 0 && !p.anyIdentityOfIssuer) {
      problems.push(
        `${at}.claims: a policy without claims allows every identity its issuer vouches for; name the claims that must match (such as repository_owner_id, namespace), or set anyIdentityOfIssuer: true if that is meant`,
      );
    }
    const origin = parseOrigin(p.gitUrl, { allowPath: false });
    if ("problem" in origin) problems.push(`${at}.gitUrl: ${origin.problem}`);
    const gitOrigin = "origin" in origin ? origin.origin : "";
    const owners = p.owners === "*" ? undefined : p.owners.map((o) => o.toLowerCase());
    // Every provider that may serve one of the policy's owners is checked, not just the first
    // of its origin: the provider that serves an ask is the ceiling of its token.
    const serving = providers.filter((c): c is ProviderConfig => !!c && c.gitOrigin === gitOrigin && (!owners || !c.owners || c.owners.some((o) => owners.includes(o))));
    if (gitOrigin && serving.length === 0) problems.push(`${at}.gitUrl: no provider serves ${owners ? `owners ${owners.join(", ")} on ` : ""}${gitOrigin}; add one under providers:`);
    for (const provider of serving) problems.push(...ceilingProblems(at, p, owners, provider));
    return { at, identity: p.identity, claims: p.claims, gitOrigin, owners, repositories: p.repositories, permissions: p.permissions, anyIdentityOfIssuer: p.anyIdentityOfIssuer };
  });

  const shortest = Math.min(...providers.filter((p): p is ProviderConfig => !!p).map((p) => SHORTEST_LIFE_MS[p.type] ?? DAY_MS));
  if (raw.minRemaining > shortest / 2) problems.push(`minRemaining: at most half the shortest token life a provider issues (${shortest / 120_000}m here)`);
  if (raw.refreshBefore <= raw.minRemaining) problems.push("refreshBefore: must be longer than minRemaining, or cached tokens would be too short to hand out before they are replaced");
  if (problems.length > 0) throw new ConfigError(problems.map((l) => `${source}: ${l}`));
  return {
    source,
    listen: { host, port },
    metricsListen,
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
    maxScopes: raw.maxScopes,
    maxScopesPerIdentity: Math.min(raw.maxScopesPerIdentity, raw.maxScopes),
    maxConnections: raw.maxConnections,
    maxConnectionsPerClient: Math.min(raw.maxConnectionsPerClient, raw.maxConnections),
    staleKeysForMs: raw.staleKeysFor,
    maxIdentityAgeMs: raw.maxIdentityAge,
  };
}
