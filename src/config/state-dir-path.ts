import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

/**
 * `$GIT_TOKEN_KEEPER_DIR`, else config `stateDir`, else `$XDG_RUNTIME_DIR/git-token-keeper`,
 * else `/run/git-token-keeper`: the same order the shim and helper follow.
 */
export function stateDirPath(configStateDir: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (env.GIT_TOKEN_KEEPER_DIR) return env.GIT_TOKEN_KEEPER_DIR;
  if (configStateDir) return configStateDir;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "git-token-keeper");
  return "/run/git-token-keeper";
}

/**
 * The `stateDir` key alone, for commands that talk to a running daemon: they must not fail
 * because the private key is readable only by the daemon's user.
 */
export function stateDirFromConfigFile(file: string): string | undefined {
  try {
    // Loaded only here: `status` with GIT_TOKEN_KEEPER_DIR set (a probe) parses no YAML.
    const { parse } = createRequire(import.meta.url)("yaml") as typeof import("yaml");
    const value = (parse(readFileSync(file, "utf8")) as { stateDir?: unknown } | null)?.stateDir;
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
