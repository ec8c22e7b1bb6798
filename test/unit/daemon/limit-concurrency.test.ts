import { describe, expect, it } from "vitest";
import { limitConcurrency } from "../../../src/daemon/limit-concurrency.ts";
import { ProviderError } from "../../../src/errors/keeper-error.ts";

describe("limitConcurrency", () => {
  it("runs at most `limit` at once and refuses a task that would wait behind maxWaiting others (issue 25: a bounded mint queue)", async () => {
    const limit = limitConcurrency(2, 3);
    const releases: (() => void)[] = [];
    let running = 0;
    let peak = 0;
    const task = () =>
      limit(
        () =>
          new Promise<void>((resolve) => {
            running++;
            peak = Math.max(peak, running);
            releases.push(() => {
              running--;
              resolve();
            });
          }),
      );
    const accepted = Array.from({ length: 5 }, task);
    const refused = task();
    await expect(refused).rejects.toBeInstanceOf(ProviderError);
    await expect(refused).rejects.toMatchObject({ transient: true, retryAfterMs: 5_000 });
    let settled = false;
    const all = Promise.all(accepted).then(() => {
      settled = true;
    });
    while (!settled) {
      releases.splice(0).forEach((release) => release());
      await new Promise((r) => setTimeout(r, 1));
    }
    await all;
    expect(peak).toBe(2);
  });
});
