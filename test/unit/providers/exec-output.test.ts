import { describe, expect, it } from "vitest";
import { ProviderError } from "../../../src/errors/keeper-error.ts";
import { parseTokenOutput } from "../../../src/providers/exec/exec-provider.ts";

const NOW = Date.parse("2026-11-26T10:00:00Z");

describe("parseTokenOutput: what a token command prints", () => {
  it("a bare token, with surrounding blank lines", () => {
    expect(parseTokenOutput("\n  tok-123abc\n\n", NOW)).toEqual({ token: "tok-123abc" });
  });

  it("JSON with expiry and username", () => {
    expect(parseTokenOutput('{"token":"t1","expires_in":600,"username":"bot"}', NOW)).toEqual({ token: "t1", expiresAt: new Date(NOW + 600_000), username: "bot" });
    expect(parseTokenOutput('{"token":"t2","expires_at":"2026-11-26T11:00:00Z"}', NOW).expiresAt).toEqual(new Date("2026-11-26T11:00:00Z"));
  });

  it.each([
    ["nothing", "", "printed nothing", false],
    ["two lines", "a\nb\n", "more than one token-like line", false],
    ["a token with spaces", "token here", "more than one token-like line", false],
    ["malformed JSON", "{not json", "malformed JSON", true],
    ["JSON without a token", '{"expires_in":60}', 'no "token" string', false],
  ])("%s is a failed mint (%s)", (_label, output, message, transient) => {
    let error: unknown;
    try {
      parseTokenOutput(output, NOW);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).message).toContain(message);
    expect((error as ProviderError).transient).toBe(transient);
  });
});
