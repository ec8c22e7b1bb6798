import { configPath } from "../config/config-path.ts";
import { stateDirFromConfigFile, stateDirPath } from "../config/state-dir-path.ts";

/** The state dir a CLI command talks to: found the same way as the daemon and the shim find it. */
export function cliStateDir(configFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return stateDirPath(env.GIT_TOKEN_KEEPER_DIR ? undefined : stateDirFromConfigFile(configPath(configFlag, env)), env);
}
