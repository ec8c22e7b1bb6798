import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { parseTokenRecord } from "../../src/store/token-file.ts";
import { KeeperProcess } from "../support/keeper-process.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { must, World } from "../support/world.ts";
import { fileGroup, scenario } from "./scenario.ts";

const group = `daemon killed (${fileGroup(import.meta.url)})`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROUNDS = 100;

/** Every file a reader can see parses; temp files (names starting with '.') are never read. */
function checkStateFiles(stateDir: string): number {
  let checked = 0;
  const status = join(stateDir, "status.json");
  if (existsSync(status)) {
    JSON.parse(readFileSync(status, "utf8"));
    checked++;
  }
  const routes = join(stateDir, "routes");
  if (existsSync(routes)) {
    for (const line of readFileSync(routes, "utf8").split("\n").filter(Boolean)) expect(line.split(" ")).toHaveLength(5);
    checked++;
  }
  const tokens = join(stateDir, "tokens");
  for (const provider of existsSync(tokens) ? readdirSync(tokens) : []) {
    for (const owner of readdirSync(join(tokens, provider)).filter((n) => !n.startsWith("."))) {
      const record = parseTokenRecord(readFileSync(join(tokens, provider, owner), "utf8"));
      if (!record) throw new Error(`torn token file ${provider}/${owner}`);
      checked++;
    }
  }
  return checked;
}

describe("the daemon SIGKILLed at random moments", () => {
  let world: World;

  beforeAll(async () => {
    // Three-second tokens and many owners: the daemon is writing most of the time.
    world = await World.create({
      tokenLifetimeMs: 3_000,
      installations: [{ id: 11, login: "acme" }, ...Array.from({ length: 7 }, (_, i) => ({ id: 100 + i, login: `org${i}` }))],
    });
  });

  afterAll(async () => {
    await world.close();
    removeTempDirs();
  });

  scenario(
    group,
    `${ROUNDS} SIGKILLs at random moments, with a reader polling the token files`,
    "every state file always parses; no reader ever sees a partial token; each restart resumes",
    async () => {
      const config = { refreshBefore: "10m", retryMin: "100ms", retryMax: "1s", providers: [world.providerConfig({ owners: ["acme", ...Array.from({ length: 7 }, (_, i) => `org${i}`)] })] };
      let reads = 0;
      let torn = 0;
      let reading = true;
      const reader = (async () => {
        while (reading) {
          const dir = join(world.stateDir, "tokens", "test-app");
          for (const owner of existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith(".")) : []) {
            try {
              const text = readFileSync(join(dir, owner), "utf8");
              reads++;
              if (!parseTokenRecord(text)) torn++;
            } catch {
              // Between unlink and rename nothing is missing; a removed expired token is fine.
            }
          }
          await sleep(2);
        }
      })();
      let checked = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const keeper = await KeeperProcess.start({ dir: tempDir(), stateDir: world.stateDir, config, waitReady: false });
        // Killed anywhere from its first write (the pid file) to well into minting and rotating.
        await keeper.waitForLog(/"message":"daemon started"/, 20_000);
        await sleep(Math.random() * 400);
        await keeper.kill();
        checked += checkStateFiles(world.stateDir);
      }
      reading = false;
      await reader;
      expect(torn).toBe(0);
      expect(checked).toBeGreaterThan(ROUNDS);
      expect(reads).toBeGreaterThan(ROUNDS);
      // A last daemon starts on what the killed ones left, and git works.
      const keeper = await KeeperProcess.start({ dir: tempDir(), stateDir: world.stateDir, config });
      const work = tempDir();
      await must(world.git(["ls-remote", world.repoUrl("acme/app")], work));
      const leftovers = readdirSync(join(world.stateDir, "tokens", "test-app")).filter((n) => n.endsWith(".tmp"));
      expect(leftovers).toEqual([]);
      await keeper.stop();
      return `${ROUNDS} kills; ${checked} state files checked after the kills, all parsed; ${reads} concurrent token reads, ${torn} torn; the next daemon started, cleaned temp files and served git`;
    },
    240_000,
  );
});
