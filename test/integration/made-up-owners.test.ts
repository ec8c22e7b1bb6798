import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// In any-owner mode every new owner is an installation lookup at GitHub's API, and any build
// step can write requests (requests/ is group-writable in the shared layout) or run git against
// made-up owners. A pull request's build on a self-hosted runner must not spend the App's rate
// limit for everyone.
describe("made-up owners in any-owner mode", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create();
    await world.startKeeper({ providers: [world.providerConfig({ owners: undefined })] });
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  const lookups = () => world.github.requests.filter((r) => /^\/(orgs|users)\/[^/]+\/installation$/.test(r.path)).length;

  it("a flood of requests for 1,500 made-up owners costs a bounded number of API calls, slots and status bytes; known owners are still served", async () => {
    const work = tempDir();
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], work));
    const before = lookups();
    for (let i = 0; i < 1_500; i++) writeFileSync(join(world.stateDir, "requests", `mint+test-app+nobody${i}+0+flood${i}`), "");
    await sleep(8_000);
    // At most 20 owners looked up a minute, two calls each (orgs, then users).
    expect(lookups() - before).toBeLessThanOrEqual(40);
    // Issue 24, finding 10: bounded slots, a bounded status.json, a heartbeat that stays fresh.
    const statusText = readFileSync(join(world.stateDir, "status.json"), "utf8");
    const status = JSON.parse(statusText) as { tokens: unknown[]; tokensOmitted: number };
    expect(status.tokens.length + status.tokensOmitted).toBeLessThanOrEqual(1_000 + 1);
    expect(statusText.length).toBeLessThan(300_000);
    const beat = Number(readFileSync(join(world.stateDir, "heartbeat"), "utf8").split(" ")[0]);
    expect(Date.now() / 1000 - beat).toBeLessThan(15);
    // An owner whose installation is known needs no lookup: its builds go on.
    world.github.revokeAll();
    await must(world.git(["ls-remote", world.repoUrl("acme/app")], work));
  });

  it("an owner with no installation is remembered: asking again costs no API call", async () => {
    const work = tempDir();
    const first = await world.git(["ls-remote", world.repoUrl("ghost-org/app")], work);
    expect(first.exitCode).not.toBe(0);
    const before = lookups();
    for (let i = 0; i < 5; i++) expect((await world.git(["ls-remote", world.repoUrl("ghost-org/app")], work)).exitCode).not.toBe(0);
    expect(lookups() - before).toBe(0);
  });
});

describe("owners listed in the config", () => {
  it("are all looked up and minted at start, however many: the lookup bound is for owners learned on first use", async () => {
    const owners = Array.from({ length: 30 }, (_, i) => `org${i}`);
    const world = await World.create({ installations: owners.map((login, i) => ({ id: 500 + i, login })) });
    try {
      await world.startKeeper({ providers: [world.providerConfig({ owners })] });
      expect(owners.filter((o) => world.github.mintsFor(o) !== 1)).toEqual([]);
    } finally {
      await world.close();
    }
  });
});
