import { validate as validCron } from "node-cron";
import { z } from "zod";
import { parseDuration } from "./duration.ts";

/** A duration such as `10m`; becomes milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `'${value}' is not a duration; write it like 30s, 10m or 1h` });
    return z.NEVER;
  }
  return ms;
});

const DAY_MS = 86_400_000;

/**
 * A duration between `min` and `max` milliseconds, said in the message with the reason: a zero
 * backoff or timeout turns a failing source into a hot loop, and a timer longer than a day is
 * a typo more often than a wish.
 */
function boundedDuration(min: number, max: number, why: string) {
  return duration.refine((ms) => ms >= min && ms <= max, {
    message: `must be between ${formatBound(min)} and ${formatBound(max)} (${why})`,
  });
}

function formatBound(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** How long one request to a token source may take. */
const requestTimeout = boundedDuration(1_000, 10 * 60_000, "a request to the token source; 0 would fail every mint");

/** `refreshEvery`: a duration, or a cron expression (node-cron's syntax, seconds optional). */
const refreshEvery = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms !== undefined && ms > 0) return { ms };
  if (typeof value === "string" && value.trim().split(/\s+/).length >= 5 && validCron(value)) return { cron: value.trim() };
  ctx.addIssue({ code: "custom", message: `'${value}' is neither a duration (30m) nor a cron expression (*/30 * * * *)` });
  return z.NEVER;
});

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
// GitHub logins, GitLab groups, Azure DevOps organisations; lower-cased before use.
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const positiveId = z
  .union([z.number().int().positive(), z.string().regex(/^\d+$/, "must be a number")])
  .transform((v) => Number(v));

/** Keys every provider has. */
const common = {
  name: z.string().regex(NAME, "must be letters, digits, '-' or '_' (at most 63), starting with a letter or digit"),
  owners: z
    .array(z.string().regex(OWNER, "must be a user, organisation or group name (the first path segment)"))
    .min(1, "must list at least one owner, or be left out to serve any owner")
    .optional(),
  pathPrefix: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\/-]*$/, "must be a URL path such as /acme/ or /group/subgroup/")
    .optional(),
  refreshEvery: refreshEvery.optional(),
  username: z.string().regex(/^[^\s:]+$/, "must be a user name without spaces or ':'").optional(),
  /** Fetch git@host:path and ssh://git@host/path over HTTPS with the keeper's token (opt-in). */
  sshToHttps: z.boolean().default(false),
};

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
  permissions: z.record(z.string().regex(/^[a-z_]+$/), z.enum(["read", "write", "admin"])).optional(),
  /** Per request to the GitHub API. */
  timeout: requestTimeout.default(30_000),
});

export const azureDevOpsSchema = z.strictObject({
  ...common,
  type: z.literal("azure-devops"),
  credential: z.enum(["managed-identity", "workload-identity", "client-secret", "client-certificate", "default"]),
  clientId: z.string().min(1).optional(),
  tenantId: z.string().min(1).optional(),
  clientSecretFile: z.string().min(1).optional(),
  clientSecretEnv: z.string().regex(ENV_NAME, "must be an environment variable name").optional(),
  certificateFile: z.string().min(1).optional(),
  federatedTokenFile: z.string().min(1).optional(),
  authorityHost: z.string().optional(),
  /** Entra ID's instance discovery; off for a private authority (and for tests). */
  instanceDiscovery: z.boolean().default(true),
  scope: z.string().default("499b84ac-1321-427f-aa17-267ca6975798/.default"),
  gitUrl: z.string().default("https://dev.azure.com"),
  /** Azure DevOps organisations to serve (the first path segment); the same as owners. */
  organizations: z.array(z.string().regex(OWNER, "must be an Azure DevOps organisation name")).min(1).optional(),
});

export const gitlabSchema = z.strictObject({
  ...common,
  type: z.literal("gitlab"),
  grant: z.enum(["refresh-token", "self-rotate"]),
  baseUrl: z.string().default("https://gitlab.com"),
  gitUrl: z.string().optional(),
  /** refresh-token: the OAuth application. */
  clientId: z.string().min(1).optional(),
  clientSecretFile: z.string().min(1).optional(),
  /** refresh-token: where the single-use refresh token lives (0600, rewritten atomically at every refresh). */
  refreshTokenFile: z.string().min(1).optional(),
  /** self-rotate: where the access token lives (0600, rewritten atomically at every rotation). */
  tokenFile: z.string().min(1).optional(),
  /** self-rotate: whose token: a personal access token, or a project's or group's access token. */
  tokenKind: z.enum(["personal", "project", "group"]).default("personal"),
  resourceId: z.union([z.number().int().positive(), z.string().min(1)]).optional(),
  /** self-rotate: how long each rotated token lives (GitLab takes whole days). */
  rotateTokenLifetime: boundedDuration(DAY_MS, 365 * DAY_MS, "GitLab rotates tokens in whole days").default(7 * DAY_MS),
});

export const execSchema = z.strictObject({
  ...common,
  type: z.literal("exec"),
  gitUrl: z.string(),
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  shell: z.boolean().default(false),
  timeout: requestTimeout.default(30_000),
  /** Environment variables passed through to the command, besides PATH, HOME, LANG and TZ. */
  env: z.array(z.string().regex(ENV_NAME, "must be an environment variable name")).default([]),
});

export const httpSchema = z.strictObject({
  ...common,
  type: z.literal("http"),
  gitUrl: z.string(),
  url: z.string(),
  method: z.enum(["GET", "POST"]).default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  bearerTokenFile: z.string().min(1).optional(),
  tokenPath: z.string().default("token"),
  expiresAtPath: z.string().optional(),
  expiresInPath: z.string().optional(),
  usernamePath: z.string().optional(),
  timeout: requestTimeout.default(30_000),
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
});

export const fileSchema = z.strictObject({
  ...common,
  type: z.literal("file"),
  gitUrl: z.string(),
  /** Absolute, after `${VAR}` is expanded (checked with the other file keys). */
  path: z.string().min(1),
  format: z.enum(["raw", "json"]).default("raw"),
});

export const PROVIDER_SCHEMAS = {
  "github-app": githubAppSchema,
  "azure-devops": azureDevOpsSchema,
  gitlab: gitlabSchema,
  exec: execSchema,
  http: httpSchema,
  file: fileSchema,
} as const;
export const PROVIDER_TYPES = Object.keys(PROVIDER_SCHEMAS) as (keyof typeof PROVIDER_SCHEMAS)[];

export const providerSchema = z.discriminatedUnion("type", [githubAppSchema, azureDevOpsSchema, gitlabSchema, execSchema, httpSchema, fileSchema]);

const metricsSchema = z.strictObject({
  listen: z
    .string()
    .regex(/^(unix:\/.+|(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d{1,5})$/, "must be 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/absolute/path (metrics stay on this machine)"),
});

export const configSchema = z.strictObject({
  stateDir: z.string().startsWith("/", "must be an absolute path").optional(),
  stateGroup: z.union([z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$|^\d+$/, "must be a group name or id"), z.number().int().nonnegative()]).optional(),
  metrics: metricsSchema.optional(),
  refreshBefore: boundedDuration(1_000, DAY_MS, "how long before expiry a token is replaced").default(600_000),
  retryMin: boundedDuration(100, 10 * 60_000, "the first wait after a failed mint; less would hammer the token API").default(1_000),
  retryMax: boundedDuration(1_000, DAY_MS, "the longest wait between failed mints, and the wait after a permanent error").default(60_000),
  remintInterval: boundedDuration(500, 10 * 60_000, "the least time between re-mints when hosts refuse tokens").default(5_000),
  mintConcurrency: z.number().int().min(1).max(64).default(8),
  forgetOwnerAfter: boundedDuration(60_000, 30 * DAY_MS, "how long an owner found on first use is kept without being asked for").default(DAY_MS),
  providers: z.array(providerSchema).min(1, "must list at least one provider"),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawProvider = z.output<typeof providerSchema>;
export type RawGitHubAppProvider = z.output<typeof githubAppSchema>;
export type RawAzureDevOpsProvider = z.output<typeof azureDevOpsSchema>;
export type RawGitLabProvider = z.output<typeof gitlabSchema>;
export type RawExecProvider = z.output<typeof execSchema>;
export type RawHttpProvider = z.output<typeof httpSchema>;
export type RawFileProvider = z.output<typeof fileSchema>;
