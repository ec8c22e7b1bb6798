import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { requestTimeout, ENV_NAME, common } from "../settings/schema-parts.ts";
import { base, ownKeys, type ProviderCheckContext } from "../settings/provider-checks.ts";

/** The `exec` provider's keys in the config file. */
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

/** What a exec provider is given. */
export type ExecProviderConfig = ProviderBase & { type: "exec" } & Specific<RawExecProvider>;

export type RawExecProvider = z.output<typeof execSchema>;

/** Checks a exec provider's settings beyond the schema and returns what the daemon needs. */
export function buildExecConfig(raw: RawExecProvider, ctx: ProviderCheckContext): ExecProviderConfig | undefined {
  const before = ctx.problems.length;
  const b = base(raw, ctx, { gitUrl: raw.gitUrl, perOwner: false, username: "x-access-token" });
  if (!b || ctx.problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), type: "exec" };
}
