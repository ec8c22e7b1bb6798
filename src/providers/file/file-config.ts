import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { common } from "../settings/schema-parts.ts";
import { base, ownKeys, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkWritableLocation } from "../settings/read-secret.ts";

/** The `file` provider's keys in the config file. */
export const fileSchema = z.strictObject({
  ...common,
  type: z.literal("file"),
  gitUrl: z.string(),
  /** Absolute, after `${VAR}` is expanded (checked with the other file keys). */
  path: z.string().min(1),
  format: z.enum(["raw", "json"]).default("raw"),
});

/** What a file provider is given. */
export type FileProviderConfig = ProviderBase & { type: "file" } & Specific<RawFileProvider>;

export type RawFileProvider = z.output<typeof fileSchema>;

/** Checks a file provider's settings beyond the schema and returns what the daemon needs. */
export function buildFileConfig(raw: RawFileProvider, ctx: ProviderCheckContext): FileProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
  const path = checkWritableLocation(raw.path, `${at}.path`, env, problems);
  if (!b || !path || problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), path, type: "file" };
}
