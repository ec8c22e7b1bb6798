/** Time as the daemon sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

// Node's timers overflow past 2^31-1 ms (about 24.8 days) and then fire at once.
export const MAX_TIMER_MS = 2_147_483_647;

interface LongTimer {
  timer: NodeJS.Timeout | undefined;
}

/**
 * A timer of any length: one longer than Node's limit waits in steps, re-armed against the
 * wall clock, and fires at its time, never early (a token valid for months is not dropped
 * after 24.8 days).
 */
function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const due = Date.now() + Math.max(0, ms);
  const handle: LongTimer = { timer: undefined };
  const arm = () => {
    const left = due - Date.now();
    handle.timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm();
  return handle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: setLongTimeout,
  clearTimeout: (handle) => clearTimeout((handle as LongTimer | undefined)?.timer),
  random: Math.random,
};
