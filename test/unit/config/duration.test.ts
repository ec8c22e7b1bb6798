import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../../src/providers/settings/duration.ts";

describe("parseDuration", () => {
  it.each([
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1.5s", 1_500],
    ["2d", 172_800_000],
    ["90", 90_000],
    [45, 45_000],
    [" 10m ", 600_000],
  ] as const)("%j", (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(["", "10 minutes", "m", "-5s", "1x", "10m junk", "1h 30m", Number.NaN, -1, Number.POSITIVE_INFINITY])("rejects %j", (input) => expect(parseDuration(input)).toBeUndefined());
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [59_400, "59s"],
    [61_000, "1m1s"],
    [3_723_000, "1h2m3s"],
    [-90_000, "-1m30s"],
  ])("%d ms is %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});
