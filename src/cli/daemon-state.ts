import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configPath } from "../config/load-config.ts";
import { stateDirFromConfigFile, stateDirPath } from "../config/state-dir-path.ts";

/** The state dir a CLI command talks to: found the same way as the daemon and the shim find it. */
export function cliStateDir(configFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return stateDirPath(env.GIT_TOKEN_KEEPER_DIR ? undefined : stateDirFromConfigFile(configPath(configFlag, env)), env);
}

export interface StatusFile {
  state: "running" | "stopped";
  pid: number;
  startedAt: string;
  updatedAt: string;
  healthy: boolean;
  lastReload: { at: string; ok: boolean; error: string | null } | null;
  providers: { name: string; type: string; gitUrl: string; owners: string[] | null; error: string | null }[];
  tokens: {
    provider: string;
    gitUrl: string;
    owner: string;
    expiresAt: string | null;
    lastMint: string | null;
    failing: boolean;
    lastError: string | null;
  }[];
}

// The daemon rewrites status.json every 10 s; three missed beats mean it is hung or gone.
const STALE_MS = 30_000;

export function readStatusFile(stateDir: string): StatusFile | undefined {
  let status: StatusFile;
  try {
    status = JSON.parse(readFileSync(join(stateDir, "status.json"), "utf8")) as StatusFile;
  } catch {
    return undefined;
  }
  // status.json changes only when something happens; the heartbeat says the daemon is alive.
  try {
    const beat = readFileSync(join(stateDir, "heartbeat"), "utf8").trim();
    if (status.state === "running" && Date.parse(beat) > Date.parse(status.updatedAt)) status.updatedAt = beat;
  } catch {
    // An older daemon, or none.
  }
  return status;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why the daemon is not serving, or undefined when it is alive. */
export function daemonDown(status: StatusFile | undefined, stateDir: string, now = Date.now()): string | undefined {
  if (!status) return `no daemon has run with state dir '${stateDir}'; start one with 'git-token-keeper run'`;
  if (status.state !== "running" || !processAlive(status.pid)) {
    return `the daemon (pid ${status.pid}) is not running; start it with 'git-token-keeper run'`;
  }
  if (now - Date.parse(status.updatedAt) > STALE_MS) {
    return `the daemon (pid ${status.pid}) has not updated its status since ${status.updatedAt}; it may be hung`;
  }
  return undefined;
}
