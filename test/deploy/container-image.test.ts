import { readFileSync } from "node:fs";
import { join } from "node:path";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/run-git.ts";

// The image itself is built and run in pod.test.ts; these check what the lint can.

const DOCKERFILE = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
const UID = 10001;

describe("Dockerfile", () => {
  it("lints clean", () => {
    expect(validate(DOCKERFILE)).toEqual([]);
  });

  it("the linter bites", () => {
    expect(validate("FROM node:24\nEXPOSE notaport\nHEALTHCHECK CMD\n").length).toBeGreaterThan(0);
  });

  it("is multi-stage on a Node.js LTS base, runs as a non-root UID, and has a health check through the sh probe", () => {
    const froms = DOCKERFILE.match(/^FROM .*/gm) ?? [];
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:(22|24)-[a-z]+-slim/);
    expect(DOCKERFILE).toMatch(new RegExp(`^USER ${UID}:${UID}$`, "m"));
    expect(DOCKERFILE).toMatch(/HEALTHCHECK[\s\S]*"\/app\/shim\/git-token-keeper-probe"/);
    expect(DOCKERFILE).toMatch(/npm ci --omit=dev/);
  });
});
