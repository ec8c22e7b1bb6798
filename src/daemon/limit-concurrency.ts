import { ProviderError } from "../errors/keeper-error.ts";

/**
 * Runs at most `limit` tasks at once; the rest wait in order. With `maxWaiting`, a task that
 * would wait behind that many is refused at once (a ProviderError, transient): a queue nobody
 * can grow without bound.
 */
export function limitConcurrency(limit: number, maxWaiting = Infinity): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= limit) {
      if (waiting.length >= maxWaiting) {
        throw new ProviderError(`${waiting.length} mints are waiting already; ask again shortly`, { transient: true, retryAfterMs: 5_000 });
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
