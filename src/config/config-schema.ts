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

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
// GitHub logins and organisation names; lower-cased before use because GitHub ignores case.
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$/;

const positiveId = z
  .union([z.number().int().positive(), z.string().regex(/^\d+$/, "must be a number")])
  .transform((v) => Number(v));

export const githubAppSchema = z.strictObject({
  name: z.string().regex(NAME, "must be letters, digits, '-' or '_' (at most 63), starting with a letter or digit"),
  type: z.literal("github-app"),
  appId: positiveId.optional(),
  clientId: z.string().regex(/^Iv[0-9a-zA-Z.]+$/, "must be a GitHub App client ID such as Iv23li…").optional(),
  privateKeyFile: z.string().min(1).optional(),
  privateKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name").optional(),
  apiUrl: z.string().default("https://api.github.com"),
  gitUrl: z.string().default("https://github.com"),
  installationId: positiveId.optional(),
  owners: z
    .array(z.string().regex(OWNER, "must be a GitHub user or organisation name"))
    .min(1, "must list at least one owner, or be left out to serve any owner")
    .optional(),
  repositories: z
    .array(z.string().regex(/^[A-Za-z0-9._-]+$/, "must be a repository name without the owner"))
    .min(1)
    .optional(),
  permissions: z.record(z.string().regex(/^[a-z_]+$/), z.enum(["read", "write", "admin"])).optional(),
});

export const providerSchema = z.discriminatedUnion("type", [githubAppSchema]);

const metricsSchema = z.strictObject({
  listen: z
    .string()
    .regex(/^(unix:\/.+|(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d{1,5})$/, "must be 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/absolute/path (metrics stay on this machine)"),
});

export const configSchema = z.strictObject({
  stateDir: z.string().startsWith("/", "must be an absolute path").optional(),
  stateGroup: z.union([z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$|^\d+$/, "must be a group name or id"), z.number().int().nonnegative()]).optional(),
  metrics: metricsSchema.optional(),
  refreshBefore: duration.default(600_000),
  retryMin: duration.default(1_000),
  retryMax: duration.default(60_000),
  remintInterval: duration.default(5_000),
  mintConcurrency: z.number().int().min(1).max(64).default(8),
  providers: z.array(providerSchema).min(1, "must list at least one provider"),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawGitHubAppProvider = z.output<typeof githubAppSchema>;
export const PROVIDER_TYPES = ["github-app"] as const;
