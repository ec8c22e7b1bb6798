import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Files a request in the daemon's queue (see request-queue.ts) and waits until the daemon has
 * handled it. Returns the daemon's reason when it failed, or undefined. The name's last part is
 * random and the file is created exclusively: requests/ may be shared with a group.
 */
export async function requestFromDaemon(stateDir: string, kind: "mint" | "refresh", provider: string, scope: string, timeoutMs: number): Promise<string | undefined> {
  const name = `${kind}+${provider}+${scope}+0+${randomBytes(8).toString("hex")}`;
  const file = join(stateDir, "requests", name);
  closeSync(openSync(file, "wx", 0o600));
  const deadline = Date.now() + timeoutMs;
  while (existsSync(file)) {
    if (Date.now() > deadline) {
      rmSync(file, { force: true });
      return `the daemon did not answer within ${Math.round(timeoutMs / 1000)}s; see its log`;
    }
    await sleep(50);
  }
  const answer = join(stateDir, "answers", name);
  if (!existsSync(answer)) return undefined;
  const reason = readFileSync(answer, "utf8").trim();
  rmSync(answer, { force: true });
  return reason || "failed";
}
