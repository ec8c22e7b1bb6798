import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `a host that refuses every token (${fileGroup(import.meta.url)})`;

describe("a host that refuses every token", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper({ remintInterval: "2s" });
    world.server.refuse.add("acme/app");
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  scenario(group, "30 git processes refused at once, each retrying 3 times", "re-mints rate-limited (no storm); each gives up with a message naming a permissions problem", async () => {
    const work = tempDir();
    const before = world.github.mintsFor("acme");
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 30 }, () => world.git(["ls-remote", world.repoUrl("acme/app")], work)));
    const seconds = (Date.now() - started) / 1000;
    const mints = world.github.mintsFor("acme") - before;
    expect(results.every((r) => r.exitCode === 128)).toBe(true);
    expect(results.every((r) => r.stderr.includes("this is a permissions problem, not an expiry"))).toBe(true);
    // At most one re-mint per remintInterval (2 s), plus the first.
    expect(mints).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 1);
    return `30/30 failed with the permissions message after ${seconds.toFixed(1)} s; ${mints} re-mints for 120 refusals`;
  });

  scenario(group, "the other repositories of the same owner", "unaffected", async () => {
    const work = tempDir();
    const r = await world.git(["ls-remote", world.repoUrl("acme/lib")], work);
    expect(r.exitCode).toBe(0);
    return "ls-remote acme/lib exit 0";
  });
});
