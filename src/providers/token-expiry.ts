import type { RefreshEvery } from "./settings/provider-base.ts";
import { nodeCron } from "./settings/node-cron.ts";

/** The `exp` claim of a JWT, or undefined for anything that is not one. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

// Epoch numbers above this are milliseconds: as seconds it would be the year 5138.
const EPOCH_MS_ABOVE = 1e11;

/**
 * Expiry from the fields token services use: `expires_at` (an ISO time, or epoch seconds or
 * milliseconds), `expires_on` (the same, Azure), `expires_in` (seconds from now). An ISO time
 * without an offset is UTC, never this machine's local time.
 */
export function expiryFromFields(fields: { expires_at?: unknown; expires_on?: unknown; expires_in?: unknown }, now: number): Date | undefined {
  const at = fields.expires_at ?? fields.expires_on;
  if (typeof at === "number" || (typeof at === "string" && /^\d+(\.\d+)?$/.test(at))) {
    const n = Number(at);
    return new Date(n > EPOCH_MS_ABOVE ? n : n * 1000);
  }
  if (typeof at === "string") {
    // Date.parse reads "2026-11-26T10:00:00" as local time; a token service means UTC.
    const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(at.trim()) ? `${at.trim().replace(" ", "T")}Z` : at;
    const ms = Date.parse(iso);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  const inSeconds = fields.expires_in;
  if (typeof inSeconds === "number" || (typeof inSeconds === "string" && /^\d+$/.test(inSeconds))) return new Date(now + Number(inSeconds) * 1000);
  return undefined;
}

/**
 * When to mint again for a token whose expiry nobody knows: after `refreshEvery`, or at the next
 * cron time. The token is kept until the tick after that, so a slow mint never leaves a gap.
 */
export function scheduleFromRefreshEvery(every: RefreshEvery, now: number): { refreshAt: number; expiresAt: number } {
  if ("ms" in every) return { refreshAt: now + every.ms, expiresAt: now + 2 * every.ms };
  const task = nodeCron().createTask(every.cron, () => undefined);
  const [next, after] = task.getNextRuns(2).map((d) => d.getTime());
  void task.destroy();
  const refreshAt = next ?? now + 3_600_000;
  return { refreshAt, expiresAt: after ?? refreshAt + 3_600_000 };
}
