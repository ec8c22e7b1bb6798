import { spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/log/logger.ts";
import { Redactor } from "../../../src/log/redact.ts";
import { ProviderError } from "../../../src/errors/keeper-error.ts";
import { createExecProvider, parseTokenOutput } from "../../../src/providers/exec/exec-provider.ts";

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

// Issue 24, finding 11: a timeout killed only the shell; its children hung on to the pipes.
describe("createExecProvider: a command that outlives its timeout", () => {
  it("kills the whole process group, and fails at the timeout, not the slot's deadline", async () => {
    const marker = `61.${process.pid}${Date.now() % 1000}`;
    const log = createLogger({ redactor: new Redactor(), format: "json", stream: new PassThrough() });
    const provider = createExecProvider(
      { name: "slow", type: "exec", gitOrigin: "https://h", pathPrefix: "/", perOwner: false, owners: undefined, refreshEvery: undefined, sshToHttps: false, username: "x", command: `sleep ${marker} & sleep ${marker}; echo tok`, shell: true, timeout: 1_000, env: [] } as never,
      log,
    );
    const started = Date.now();
    await expect(provider.mint("shared")).rejects.toThrow(/timed out after 1000 ms/);
    expect(Date.now() - started).toBeLessThan(20_000);
    const left = spawnSync("pgrep", ["-f", `sleep ${marker}`], { encoding: "utf8" }).stdout.trim();
    expect(left).toBe("");
  });
});
