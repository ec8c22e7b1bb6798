/**
 * How long before expiry a token stops being handed out: `refreshBefore`, but never more than
 * half the token's life, so a short-lived token is still used for half its life.
 */
export function refreshMargin(lifetimeMs: number, refreshBeforeMs: number): number {
  return Math.min(refreshBeforeMs, Math.max(0, lifetimeMs) / 2);
}

/**
 * When to mint the next token: before the margin starts, moved earlier by up to a tenth of the
 * margin at random so many keepers sharing one App do not all mint at the same second. A token
 * short enough for the half-life rule to bind is refreshed at exactly half its life: jitter
 * there would only mean more than two mints per lifetime.
 */
export function refreshAt(mintedAtMs: number, expiresAtMs: number, refreshBeforeMs: number, random: number): number {
  const margin = refreshMargin(expiresAtMs - mintedAtMs, refreshBeforeMs);
  const jitter = margin < refreshBeforeMs ? 0 : random * margin * 0.1;
  return expiresAtMs - margin - jitter;
}

/** The smallest `minMs` backoffDelay works with, whatever it is given (it waits half of it at least). */
export const MIN_BACKOFF_MS = 100;

/**
 * Delay before retry number `attempt` (1 for the first retry): capped exponential backoff with
 * "equal jitter" (half fixed, half random), and never sooner than a server's Retry-After (up to
 * maxMs). A
 * permanent error (an App not installed, a revoked grant) waits `maxMs` in full. Never 0 or NaN,
 * whatever the inputs: a zero wait turns a failing source into a hot loop.
 */
export function backoffDelay(
  attempt: number,
  options: { minMs: number; maxMs: number; random: number; retryAfterMs?: number | undefined; permanent?: boolean },
): number {
  const minMs = Math.max(MIN_BACKOFF_MS, finite(options.minMs, MIN_BACKOFF_MS));
  const maxMs = Math.max(minMs, finite(options.maxMs, minMs));
  // A server's Retry-After is honoured up to maxMs: a year-long one must not stall a token.
  const retryAfter = Math.min(finite(options.retryAfterMs ?? 0, 0), maxMs);
  if (options.permanent) return Math.max(maxMs, retryAfter);
  const steps = Math.min(Math.max(0, finite(attempt, 1) - 1), 52);
  const exponential = Math.min(maxMs, minMs * 2 ** steps);
  const random = Math.min(1, Math.max(0, finite(options.random, 0.5)));
  return Math.max(exponential / 2 + (exponential / 2) * random, retryAfter);
}

function finite(value: number, fallback: number): number {
  return Number.isFinite(value) ? value : fallback;
}
