import { z } from "zod";
import { providerSchema } from "../providers/provider-registry.ts";
import { boundedDuration, DAY_MS } from "../providers/settings/schema-parts.ts";

/** The config file's top level; each provider's keys are its own (src/providers/<type>/<type>-config.ts). */
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
