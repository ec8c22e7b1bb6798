import { describe, expect, it } from "vitest";
import { isLoopbackHost, parseOrigin } from "../../../src/providers/settings/git-url.ts";

describe("parseOrigin", () => {
  it.each([
    ["https://github.com", "https://github.com"],
    ["https://GitHub.COM/", "https://github.com"],
    ["https://github.com:443", "https://github.com"],
    ["https://ghe.example:8443", "https://ghe.example:8443"],
    ["http://127.0.0.1:8080", "http://127.0.0.1:8080"],
    ["http://localhost", "http://localhost"],
    ["http://[::1]:9", "http://[::1]:9"],
  ])("%s is %s", (raw, origin) => {
    const parsed = parseOrigin(raw, { allowPath: false });
    expect("origin" in parsed && parsed.origin).toBe(origin);
  });

  it.each([
    ["not a url", "is not a URL"],
    ["ssh://github.com", "must start with https://"],
    ["http://github.example", "uses http://"],
    ["https://u:p@github.com", "holds credentials"],
    ["https://github.com/?x=1", "query or fragment"],
    ["https://github.com/acme", "without a path"],
  ])("%s: %s", (raw, message) => {
    const parsed = parseOrigin(raw, { allowPath: false });
    expect("problem" in parsed && parsed.problem).toContain(message);
  });

  it("allows a path where asked (an API base)", () => {
    const parsed = parseOrigin("https://ghe.example/api/v3", { allowPath: true });
    expect("url" in parsed && parsed.url.pathname).toBe("/api/v3");
  });

  it("knows loopback hosts only", () => {
    expect(["localhost", "127.0.0.1", "127.1.2.3", "[::1]", "LOCALHOST"].every(isLoopbackHost)).toBe(true);
    expect(["127.0.0.1.evil.example", "10.0.0.1", "localhost.example"].some(isLoopbackHost)).toBe(false);
  });
});
