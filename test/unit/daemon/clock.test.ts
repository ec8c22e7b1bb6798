import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../../src/daemon/clock.ts";

const DAY = 86_400_000;

describe("systemClock", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a timer longer than Node's 24.8-day limit fires at its time, not early", () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    systemClock.setTimeout(fired, 30 * DAY);
    vi.advanceTimersByTime(25 * DAY);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5 * DAY - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it("a long timer can be cleared while it waits in steps", () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const handle = systemClock.setTimeout(fired, 60 * DAY);
    vi.advanceTimersByTime(30 * DAY);
    systemClock.clearTimeout(handle);
    vi.advanceTimersByTime(40 * DAY);
    expect(fired).not.toHaveBeenCalled();
  });
});
