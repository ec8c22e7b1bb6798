import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { parseTokenRecord } from "../../src/store/token-file.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `load (${fileGroup(import.meta.url)})`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("100 git processes at once while tokens rotate every few seconds", () => {
  let world: World;

  beforeAll(async () => {
    world = await World.create({ tokenLifetimeMs: 3_000 });
    await world.startKeeper();
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  scenario(group, "3 waves of 100 concurrent ls-remote through the shim, 3-second tokens", "zero failures, zero torn reads", async () => {
    const work = tempDir();
    let reads = 0;
    let torn = 0;
    let reading = true;
    const reader = (async () => {
      const dir = join(world.stateDir, "tokens", "test-app");
      while (reading) {
        for (const owner of existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith(".")) : []) {
          try {
            reads++;
            if (!parseTokenRecord(readFileSync(join(dir, owner), "utf8"))) torn++;
          } catch {
            // A file removed at expiry is not a torn read.
          }
        }
        await sleep(1);
      }
    })();
    const mintsBefore = world.github.mintCount;
    const started = Date.now();
    let failures = 0;
    let runs = 0;
    for (let wave = 0; wave < 3; wave++) {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          // 100 gits on two cores: one can take longer between its GET and its POST than a
          // 3-second token has left (seen here: four refusals in a row, each a token that expired
          // mid-request); each refusal is retried with a fresh token, up to six times.
          world.git(["ls-remote", world.repoUrl(i % 2 ? "acme/app" : "globex/tools")], work, { env: { GIT_TOKEN_KEEPER_RETRIES: "6" } }),
        ),
      );
      runs += results.length;
      failures += results.filter((r) => r.exitCode !== 0).length;
      await sleep(1_500);
    }
    reading = false;
    await reader;
    const seconds = (Date.now() - started) / 1000;
    expect(failures).toBe(0);
    expect(torn).toBe(0);
    return `${runs} git runs over ${seconds.toFixed(1)} s, ${failures} failed; ${world.github.mintCount - mintsBefore} mints; ${reads} token reads, ${torn} torn`;
  }, 180_000);
});
