import { describe, expect, it } from "vitest";
import { backoffDelay, refreshAt, refreshMargin } from "../../../src/daemon/refresh-schedule.ts";

const MIN = 60_000;

describe("refresh schedule", () => {
  it("refreshes an hour-long token refreshBefore ahead of expiry", () => {
    expect(refreshMargin(60 * MIN, 10 * MIN)).toBe(10 * MIN);
    expect(refreshAt(0, 60 * MIN, 10 * MIN, 0)).toBe(50 * MIN);
  });

  it("never waits past half the life of a short token", () => {
    expect(refreshMargin(6_000, 10 * MIN)).toBe(3_000);
    expect(refreshAt(1_000, 7_000, 10 * MIN, 0)).toBe(4_000);
  });

  it("refreshes a short token at exactly half its life, jitter or not", () => {
    expect(refreshAt(0, 6_000, 10 * MIN, 1)).toBe(3_000);
  });

  it("jitter only moves the refresh earlier, by at most a tenth of the margin", () => {
    expect(refreshAt(0, 60 * MIN, 10 * MIN, 1)).toBe(49 * MIN);
    for (const r of [0, 0.3, 0.99]) {
      const at = refreshAt(0, 60 * MIN, 10 * MIN, r);
      expect(at).toBeLessThanOrEqual(50 * MIN);
      expect(at).toBeGreaterThanOrEqual(49 * MIN);
    }
  });

  it("backs off exponentially with jitter up to the cap", () => {
    const opts = { minMs: 1_000, maxMs: 60_000 };
    expect(backoffDelay(1, { ...opts, random: 0 })).toBe(500);
    expect(backoffDelay(1, { ...opts, random: 1 })).toBe(1_000);
    expect(backoffDelay(4, { ...opts, random: 1 })).toBe(8_000);
    expect(backoffDelay(30, { ...opts, random: 1 })).toBe(60_000);
    expect(backoffDelay(Number.MAX_SAFE_INTEGER, { ...opts, random: 0 })).toBe(30_000);
  });

  it("waits retryMax in full after a permanent error", () => {
    expect(backoffDelay(1, { minMs: 1_000, maxMs: 60_000, random: 0, permanent: true })).toBe(60_000);
  });

  it("honours Retry-After up to retryMax, never a year", () => {
    expect(backoffDelay(1, { minMs: 1_000, maxMs: 60_000, random: 0, retryAfterMs: 30_000 })).toBe(30_000);
    expect(backoffDelay(1, { minMs: 1_000, maxMs: 60_000, random: 0, retryAfterMs: 31_536_000_000 })).toBe(60_000);
    expect(backoffDelay(1, { minMs: 1_000, maxMs: 60_000, random: 0, permanent: true, retryAfterMs: 90_000 })).toBe(60_000);
  });

  it("is never 0 or NaN, whatever it is given (a zero backoff is a hot loop against the token API)", () => {
    for (const minMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, 1]) {
      for (const maxMs of [0, Number.NaN, 60_000]) {
        for (const attempt of [0, 1, 5, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY, Number.NaN]) {
          for (const permanent of [false, true]) {
            const delay = backoffDelay(attempt, { minMs, maxMs, random: 0, permanent });
            expect(Number.isFinite(delay), `${minMs} ${maxMs} ${attempt} ${permanent}`).toBe(true);
            expect(delay).toBeGreaterThanOrEqual(50);
          }
        }
      }
    }
  });

  it("never retries sooner than Retry-After", () => {
    expect(backoffDelay(1, { minMs: 1_000, maxMs: 60_000, random: 0, retryAfterMs: 20_000 })).toBe(20_000);
  });
});
