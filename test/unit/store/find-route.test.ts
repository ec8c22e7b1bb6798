import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findRoute, routeFor } from "../../../src/store/find-route.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";
import { allowedToken, generate, rng, REPO_SCOPES, ROUTES, TOKENS } from "../../support/helper-inputs.ts";

const TOKEN_FILES: Record<string, string | undefined> = { "gh/acme": TOKENS.acme, "gh/globex": TOKENS.globex, "local/shared": TOKENS.any, ...Object.fromEntries(REPO_SCOPES.map((s) => [`repos/${s}`, TOKENS[`repos/${s}`]])) };

describe("routeFor: the TypeScript routing, by the helper's rules", () => {
  it("answers the same as the helper's model for the 10,500 inputs the sh helper is tested with", () => {
    const next = rng(20261125);
    const mistakes: string[] = [];
    for (let i = 0; i < 10_500; i++) {
      const input = generate(next);
      const route = input.protocol === undefined || input.host === undefined ? undefined : routeFor(ROUTES, { protocol: input.protocol, host: input.host, path: input.path ?? "" });
      const token = route ? TOKEN_FILES[`${route.provider}/${route.scope}`] : undefined;
      if (token !== allowedToken(input)) mistakes.push(`#${i}: ${JSON.stringify(input.text.slice(0, 120))} → ${route ? `${route.provider}/${route.scope}` : "nothing"}`);
    }
    expect(mistakes.slice(0, 20)).toEqual([]);
  });

  it.each([
    ["a percent-encoded slash", "acme%2fglobex/x"],
    ["a percent-encoded climb", "acme/%2E%2E/globex"],
    ["a climb", "acme/../globex/x"],
  ])("%s gets nothing", (_label, path) => {
    expect(routeFor(ROUTES, { protocol: "https", host: "github.com", path })).toBeUndefined();
  });

  it("findRoute splits a URL as the shim does: a percent-encoded slash is not decoded into another owner's path", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "routes"), ROUTES);
    expect(findRoute(dir, "https://github.com/acme/app.git")).toEqual({ provider: "gh", scope: "acme", origin: "https://github.com" });
    expect(findRoute(dir, "HTTPS://x:y@GitHub.com:443/globex/tools")).toEqual({ provider: "gh", scope: "globex", origin: "https://github.com" });
    expect(findRoute(dir, "https://github.com/acme%2fglobex/x")).toBeUndefined();
    expect(findRoute(dir, "https://github.com/%61cme/app")).toBeUndefined();
  });

  afterAll(removeTempDirs);
});
