import { z } from "zod";
import type { ProviderBase, Specific } from "../settings/provider-base.ts";
import { base, ownKeys, url, type ProviderCheckContext } from "../settings/provider-checks.ts";
import { checkReadableFile } from "../settings/read-secret.ts";
import { common, requestTimeout } from "../settings/schema-parts.ts";

/**
 * The `broker` provider's keys: a git-token-keeper broker (docs/broker.md) mints for this
 * keeper, which proves its workload identity with a token it reads at every request. No key
 * and no long-lived secret is in this config.
 */
export const brokerProviderSchema = z.strictObject({
  ...common,
  type: z.literal("broker"),
  url: z.string(),
  gitUrl: z.string().default("https://github.com"),
  /** The workload's identity token (a projected service-account token), re-read at every request. */
  identityTokenFile: z.string().min(1).optional(),
  /** On GitHub Actions, instead of a file: the job's OIDC token for this audience. */
  actionsAudience: z.string().min(1).optional(),
  caFile: z.string().min(1).optional(),
  /** `repository`: one token per repository (the broker narrows each to it) instead of per owner. */
  scope: z.enum(["owner", "repository"]).default("owner"),
  timeout: requestTimeout.default(30_000),
});

export type RawBrokerProvider = z.output<typeof brokerProviderSchema>;

/** What a broker provider is given. */
export type BrokerProviderConfig = ProviderBase & { type: "broker" } & Specific<RawBrokerProvider>;

export function buildBrokerProviderConfig(raw: RawBrokerProvider, ctx: ProviderCheckContext): BrokerProviderConfig | undefined {
  const before = ctx.problems.length;
  const { at, env, problems } = ctx;
  const b = base(raw, ctx, { gitUrl: "https://github.com", perOwner: true, username: "x-access-token" });
  url(raw.url, `${at}.url`, ctx);
  if ((raw.identityTokenFile === undefined) === (raw.actionsAudience === undefined)) {
    problems.push(`${at}: set identityTokenFile (a projected service-account token, a CI system's OIDC token file) or, on GitHub Actions, actionsAudience`);
  }
  // The file is checked when the keeper asks (the kubelet may write it after the keeper starts).
  const caFile = raw.caFile === undefined ? undefined : checkReadableFile(raw.caFile, `${at}.caFile`, env, problems);
  if (!b || problems.length > before) return undefined;
  return { ...b, ...ownKeys(raw), caFile, perRepository: raw.scope === "repository", type: "broker" };
}
