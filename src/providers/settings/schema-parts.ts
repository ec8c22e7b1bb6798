/**
 * The pieces every provider's config schema is made of: durations with their bounds, names,
 * owners, and the keys every provider has. Each provider's own schema lives in its folder
 * (src/providers/<type>/<type>-config.ts).
 */
import { z } from "zod";
import { parseDuration } from "./duration.ts";
import { nodeCron } from "./node-cron.ts";

/** A duration such as `10m`; becomes milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `'${value}' is not a duration; write it like 30s, 10m or 1h` });
    return z.NEVER;
  }
  return ms;
});

export const DAY_MS = 86_400_000;

/**
 * A duration between `min` and `max` milliseconds, said in the message with the reason: a zero
 * backoff or timeout turns a failing source into a hot loop, and a timer longer than a day is
 * a typo more often than a wish.
 */
export function boundedDuration(min: number, max: number, why: string) {
  return duration.refine((ms) => ms >= min && ms <= max, {
    message: `must be between ${formatBound(min)} and ${formatBound(max)} (${why})`,
  });
}

function formatBound(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** How long one request to a token source may take. */
export const requestTimeout = boundedDuration(1_000, 10 * 60_000, "a request to the token source; 0 would fail every mint");

/** `refreshEvery`: a duration, or a cron expression (node-cron's syntax, seconds optional). */
/** Each refresh runs the source (a command, a request): more often than this is a hammer. */
export const MIN_REFRESH_EVERY_MS = 10_000;

export const refreshEvery = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  const tooOften = `'${value}' refreshes more often than every ${MIN_REFRESH_EVERY_MS / 1000}s (each refresh runs the token source); write 30s or more`;
  if (ms !== undefined && ms > 0) {
    if (ms >= MIN_REFRESH_EVERY_MS) return { ms };
    ctx.addIssue({ code: "custom", message: tooOften });
    return z.NEVER;
  }
  if (typeof value === "string" && value.trim().split(/\s+/).length >= 5 && nodeCron().validate(value)) {
    const task = nodeCron().createTask(value.trim(), () => undefined);
    const runs = task.getNextRuns(3).map((d) => d.getTime());
    void task.destroy();
    if (runs.some((at, i) => i > 0 && at - (runs[i - 1] as number) < MIN_REFRESH_EVERY_MS)) {
      ctx.addIssue({ code: "custom", message: tooOften });
      return z.NEVER;
    }
    return { cron: value.trim() };
  }
  ctx.addIssue({ code: "custom", message: `'${value}' is neither a duration (30m) nor a cron expression (*/30 * * * *)` });
  return z.NEVER;
});

export const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
// GitHub logins, GitLab groups, Azure DevOps organisations; lower-cased before use.
export const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const positiveId = z
  .union([z.number().int().positive(), z.string().regex(/^\d+$/, "must be a number")])
  .transform((v) => Number(v));

/** Keys every provider has. */
export const common = {
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
