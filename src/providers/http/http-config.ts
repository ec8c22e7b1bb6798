import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { requestTimeout, common } from "../settings/schema-parts.ts";
import { base, url, ownKeys, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkReadableFile } from "../settings/read-secret.ts";

/** The `http` provider's keys in the config file. */
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

/** What a http provider is given. */
export type HttpProviderConfig = ProviderBase & { type: "http" } & Specific<RawHttpProvider>;

export type RawHttpProvider = z.output<typeof httpSchema>;

/** Checks a http provider's settings beyond the schema and returns what the daemon needs. */
export function buildHttpConfig(raw: RawHttpProvider, ctx: ProviderCheckContext): HttpProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
  url(raw.url, `${at}.url`, ctx);
  const files: Partial<Record<"bearerTokenFile" | "caFile" | "certFile" | "keyFile", string>> = {};
  for (const key of ["bearerTokenFile", "caFile", "certFile", "keyFile"] as const) {
    const file = raw[key];
    if (file) files[key] = checkReadableFile(file, `${at}.${key}`, env, problems, key === "keyFile" || key === "bearerTokenFile" ? ctx.warnings : undefined);
  }
  if ((raw.certFile === undefined) !== (raw.keyFile === undefined)) problems.push(`${at}: set both certFile and keyFile for a client certificate, or neither`);
  if (raw.expiresAtPath && raw.expiresInPath) problems.push(`${at}: set expiresAtPath or expiresInPath, not both`);
  if (!b || problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), ...files, type: "http" };
}
