import { describe, expect, it } from "vitest";
import { classifyFailure, parseRetryAfter } from "../../../src/errors/classify-failure.ts";

const http = (status: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`HTTP ${status}`), { status, response: { headers, data: { message: "msg" } } });

describe("classifyFailure", () => {
  it.each([500, 502, 503, 504, 429, 408])("HTTP %i is transient", (status) => {
    expect(classifyFailure(http(status), "minting", 0).transient).toBe(true);
  });

  it.each([400, 401, 403, 404, 422])("HTTP %i is permanent", (status) => {
    expect(classifyFailure(http(status), "minting", 0).transient).toBe(false);
  });

  it("treats refused, reset and timed-out connections as transient", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "UND_ERR_SOCKET"]) {
      const error = Object.assign(new Error("fetch failed"), { cause: Object.assign(new Error(code), { code }) });
      expect(classifyFailure(error, "minting", 0).transient).toBe(true);
    }
    const timeout = Object.assign(new Error("aborted"), { name: "TimeoutError" });
    expect(classifyFailure(timeout, "minting", 0).message).toBe("minting: timed out (ETIMEDOUT)");
  });

  it("honours Retry-After in seconds and as a date", () => {
    const error = classifyFailure(http(403, { "retry-after": "30" }), "minting", 0);
    expect(error.transient).toBe(true);
    expect(error.retryAfterMs).toBe(30_000);
    expect(parseRetryAfter("Wed, 25 Nov 2026 12:01:00 GMT", Date.UTC(2026, 10, 25, 12, 0, 0))).toBe(60_000);
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
  });

  // Issue 24, finding 15: GitHub's primary rate limit is a 403 with x-ratelimit-remaining: 0.
  it("a GitHub 403 primary rate limit is transient, not before x-ratelimit-reset by GitHub's clock", () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    const headers = { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(now / 1000 + 90), date: new Date(now + 30_000).toUTCString() };
    const error = classifyFailure(http(403, headers), "minting", now);
    expect(error.transient).toBe(true);
    expect(error.retryAfterMs).toBe(60_000);
    // A 403 with requests left is a permission problem, as before.
    expect(classifyFailure(http(403, { ...headers, "x-ratelimit-remaining": "12" }), "minting", now).transient).toBe(false);
  });

  it("keeps the API's message and the hint", () => {
    const error = classifyFailure(http(404), "minting for acme", 0, "install the App");
    expect(error.message).toBe("minting for acme: HTTP 404 msg");
    expect(error.hint).toBe("install the App");
  });
});
