import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { tempDir } from "./temp-dir.ts";
import { must, type World } from "./world.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What every provider must do end to end: serve a clone through the shim, refresh before
 * expiry (a push after the first token's life still works), and re-mint when the host refuses
 * (every token revoked, the next fetch succeeds through the shim's retry).
 */
export async function exerciseProvider(world: World, options: { repo?: string; lifetimeMs: number; revoke?: () => void }): Promise<string> {
  const work = tempDir();
  const app = join(work, "app");
  await must(world.git(["clone", "-q", world.repoUrl(options.repo ?? "acme/app"), app], work));
  await sleep(options.lifetimeMs + 500);
  writeFileSync(join(app, `${Date.now()}.txt`), "x\n");
  await must(world.git(["add", "."], app));
  await must(world.git(["commit", "-q", "-m", "later"], app));
  await must(world.git(["push", "-q", "origin", "HEAD:main"], app));
  if (options.revoke) {
    // A refresh that lands between the revocation and the fetch leaves nothing to refuse: revoke
    // again until the host refuses once (it must, within a few tries).
    const refusals: string[] = [];
    for (let i = 0; i < 5 && refusals.length === 0; i++) {
      options.revoke();
      const fetch = await must(world.git(["fetch", "origin"], app));
      if (fetch.stderr.includes("retrying with a new one")) refusals.push(fetch.stderr);
    }
    expect(refusals).toHaveLength(1);
  }
  return app;
}
