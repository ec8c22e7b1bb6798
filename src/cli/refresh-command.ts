import { requestFromDaemon } from "./daemon-request.ts";
import { daemonDown, readStatusFile } from "../store/daemon-status.ts";
import { cliStateDir } from "./cli-state-dir.ts";

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
  const failure = await requestFromDaemon(stateDir, "refresh", provider, "", options.timeoutMs ?? 120_000);
  if (failure) {
    process.stderr.write(`git-token-keeper: refresh failed: ${failure}\n`);
    return 1;
  }
  process.stdout.write(`git-token-keeper: refreshed ${provider === "*" ? "every provider" : `provider '${provider}'`}\n`);
  return 0;
}
