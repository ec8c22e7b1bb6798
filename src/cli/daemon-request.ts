import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Files a request in the daemon's queue (see request-queue.ts) and waits until the daemon has
 * handled it. Returns the daemon's reason when it failed, or undefined.
 */
export async function requestFromDaemon(stateDir: string, kind: "mint" | "refresh", provider: string, scope: string, timeoutMs: number): Promise<string | undefined> {
  const file = join(stateDir, "requests", `${kind}+${provider}+${scope}+0+cli${process.pid}`);
  writeFileSync(file, "", { mode: 0o600 });
  const deadline = Date.now() + timeoutMs;
  while (existsSync(file)) {
    if (Date.now() > deadline) {
      rmSync(file, { force: true });
      return `the daemon did not answer within ${Math.round(timeoutMs / 1000)}s; see its log`;
    }
    await sleep(50);
  }
  if (!existsSync(`${file}.failed`)) return undefined;
  const reason = readFileSync(`${file}.failed`, "utf8").trim();
  rmSync(`${file}.failed`, { force: true });
  return reason || "failed";
}
