import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cliStateDir, daemonDown, readStatusFile } from "./daemon-state.ts";

/** `refresh [--provider NAME]`: asks the running daemon to re-mint now and waits for it. */
export async function refreshCommand(options: { config?: string | undefined; provider?: string | undefined; timeoutMs?: number }): Promise<number> {
  const stateDir = cliStateDir(options.config);
  const down = daemonDown(readStatusFile(stateDir), stateDir);
  if (down) {
    process.stderr.write(`git-token-keeper: ${down}\n`);
    return 1;
  }
  const provider = options.provider ?? "*";
  if (!/^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,62})$/.test(provider)) {
    process.stderr.write(`git-token-keeper: --provider: '${provider}' is not a provider name\n`);
    return 2;
  }
  const file = join(stateDir, "requests", `refresh+${provider}++0+cli${process.pid}`);
  writeFileSync(file, "", { mode: 0o600 });
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  while (existsSync(file)) {
    if (Date.now() > deadline) {
      rmSync(file, { force: true });
      process.stderr.write("git-token-keeper: the daemon did not finish the refresh in time; see its log\n");
      return 1;
    }
    await sleep(50);
  }
  if (existsSync(`${file}.failed`)) {
    const reason = readFileSync(`${file}.failed`, "utf8").trim();
    rmSync(`${file}.failed`, { force: true });
    process.stderr.write(`git-token-keeper: refresh failed: ${reason}\n`);
    return 1;
  }
  process.stdout.write(`git-token-keeper: refreshed ${provider === "*" ? "every provider" : `provider '${provider}'`}\n`);
  return 0;
}
