import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { must, type World } from "../test/support/world.ts";
import { tempDir } from "../test/support/temp-dir.ts";
import { gitEnv } from "../test/support/run-git.ts";
import { realGit } from "./fixtures.ts";
import { median, timeAlternatingAsync, type Timed } from "./timing.ts";

export interface NetworkResults {
  lsRemote: Timed[];
  fetch: Timed[];
  recovery: { normalPushMs: number; pushAfterRevocationMs: number; extraMs: number };
}

/** (3) What a network command pays, and (4) what a push after revocation pays. */
export async function benchNetwork(world: World, runs: number): Promise<NetworkResults> {
  const work = tempDir();
  const token = world.github.issueToken("acme");
  const withToken = world.repoUrl("acme/app").replace("http://", `http://x-access-token:${token}@`);
  const plainClone = join(work, "plain");
  const shimClone = join(work, "shim");
  await must(world.git(["clone", "-q", withToken, plainClone], work, { shim: false }));
  await must(world.git(["clone", "-q", world.repoUrl("acme/app"), shimClone], work));
  const plainEnv = { cwd: work, env: gitEnv({ home: world.home }) };
  const shimEnv = { cwd: work, env: gitEnv({ home: world.home, shimDir: world.shimDir, stateDir: world.stateDir }) };
  const git = realGit();
  const shim = join(world.shimDir, "git");
  const lsRemote = await timeAlternatingAsync(
    [
      { name: "plain git, token in URL", command: git, args: ["ls-remote", withToken], options: plainEnv },
      { name: "through the shim", command: shim, args: ["ls-remote", world.repoUrl("acme/app")], options: shimEnv },
    ],
    runs,
    5,
  );
  const fetch = await timeAlternatingAsync(
    [
      { name: "plain git, token in URL", command: git, args: ["-C", plainClone, "fetch", "-q", "origin"], options: plainEnv },
      { name: "through the shim", command: shim, args: ["-C", shimClone, "fetch", "-q", "origin"], options: shimEnv },
    ],
    runs,
    5,
  );

  const push = async (revoke: boolean) => {
    writeFileSync(join(shimClone, `${Date.now()}-${Math.random()}.txt`), "x\n");
    await must(world.git(["add", "."], shimClone));
    await must(world.git(["commit", "-q", "-m", "bench"], shimClone));
    // Wait out remintInterval so that every revocation gets its re-mint at once.
    await new Promise((r) => setTimeout(r, 1_100));
    if (revoke) world.github.revokeAll();
    const start = process.hrtime.bigint();
    await must(world.git(["push", "-q", "origin", "HEAD:main"], shimClone));
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  const normal: number[] = [];
  const revoked: number[] = [];
  for (let i = 0; i < 8; i++) {
    normal.push(await push(false));
    revoked.push(await push(true));
  }
  const normalPushMs = median(normal);
  const pushAfterRevocationMs = median(revoked);
  return { lsRemote, fetch, recovery: { normalPushMs, pushAfterRevocationMs, extraMs: pushAfterRevocationMs - normalPushMs } };
}
