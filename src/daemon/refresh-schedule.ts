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

/**
 * Delay before retry number `attempt` (1 for the first retry): capped exponential backoff with
 * "equal jitter" (half fixed, half random), and never sooner than a server's Retry-After.
 */
export function backoffDelay(
  attempt: number,
  options: { minMs: number; maxMs: number; random: number; retryAfterMs?: number | undefined },
): number {
  const exponential = Math.min(options.maxMs, options.minMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + (exponential / 2) * options.random;
  return Math.max(jittered, options.retryAfterMs ?? 0);
}
