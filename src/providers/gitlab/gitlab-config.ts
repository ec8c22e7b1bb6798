import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { DAY_MS, boundedDuration, common } from "../settings/schema-parts.ts";
import { base, url, ownKeys, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkReadableFile } from "../settings/read-secret.ts";

/** The `gitlab` provider's keys in the config file. */
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

/** What a gitlab provider is given. */
export type GitLabProviderConfig = ProviderBase & { type: "gitlab"; apiBase: string } & Specific<RawGitLabProvider>;

export type RawGitLabProvider = z.output<typeof gitlabSchema>;

/** Checks a gitlab provider's settings beyond the schema and returns what the daemon needs. */
export function buildGitLabConfig(raw: RawGitLabProvider, ctx: ProviderCheckContext): GitLabProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const apiBase = url(raw.baseUrl, `${at}.baseUrl`, ctx);
  const origin = apiBase ? new URL(apiBase).origin : "https://gitlab.com";
  const b = base(raw, ctx, { gitUrl: origin, perOwner: false, username: "oauth2" });
  const files: Partial<Record<"refreshTokenFile" | "clientSecretFile" | "tokenFile", string>> = {};
  if (raw.grant === "refresh-token") {
    if (!raw.clientId) problems.push(`${at}.clientId: missing; the OAuth application's ID (refresh-token grant)`);
    if (!raw.refreshTokenFile) problems.push(`${at}.refreshTokenFile: missing; a file holding the first refresh token, rewritten at every refresh`);
    else files.refreshTokenFile = checkReadableFile(raw.refreshTokenFile, `${at}.refreshTokenFile`, env, problems, ctx.warnings);
    if (raw.clientSecretFile) files.clientSecretFile = checkReadableFile(raw.clientSecretFile, `${at}.clientSecretFile`, env, problems, ctx.warnings);
  } else {
    if (!raw.tokenFile) problems.push(`${at}.tokenFile: missing; a file holding the access token, rewritten at every rotation`);
    else files.tokenFile = checkReadableFile(raw.tokenFile, `${at}.tokenFile`, env, problems, ctx.warnings);
    if (raw.tokenKind !== "personal" && raw.resourceId === undefined) problems.push(`${at}.resourceId: missing; the ${raw.tokenKind}'s ID or full path`);
  }
  if (!b || !apiBase || problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), ...files, type: "gitlab", apiBase };
}
