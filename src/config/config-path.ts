import { resolve } from "node:path";

export const DEFAULT_CONFIG_PATH = "/etc/git-token-keeper/config.yaml";

/** `--config`, else `$GIT_TOKEN_KEEPER_CONFIG`, else the system path. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.GIT_TOKEN_KEEPER_CONFIG || DEFAULT_CONFIG_PATH);
}
