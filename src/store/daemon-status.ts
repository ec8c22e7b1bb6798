import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HEARTBEAT_STALE_MS, pidNamespace, readHeartbeat } from "./heartbeat.ts";
import { processAlive } from "./process-alive.ts";

/** status.json as the daemon writes it, read by `status`, `refresh`, `token` and `doctor`. */
export interface StatusFile {
  state: "running" | "stopped";
  pid: number;
  /** The daemon's PID namespace: its pid means something only there. */
  pidNamespace?: string | null;
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

export function readStatusFile(stateDir: string): StatusFile | undefined {
  let status: StatusFile;
  try {
    status = JSON.parse(readFileSync(join(stateDir, "status.json"), "utf8")) as StatusFile;
  } catch {
    return undefined;
  }
  // status.json changes only when something happens; the heartbeat says the daemon is alive.
  const beat = readHeartbeat(stateDir);
  if (status.state === "running" && beat !== undefined && beat > Date.parse(status.updatedAt)) status.updatedAt = new Date(beat).toISOString();
  return status;
}

/**
 * Why the daemon is not serving, or undefined when it is alive. Judged by its heartbeat, which
 * every side of a pod sees; by its pid too, but only from its own PID namespace.
 */
export function daemonDown(status: StatusFile | undefined, stateDir: string, now = Date.now()): string | undefined {
  if (!status) return `no daemon has run with state dir '${stateDir}'; start one with 'git-token-keeper run'`;
  const start = "start it with 'git-token-keeper run' (or its service or container)";
  if (status.state !== "running") return `the daemon (pid ${status.pid}) is not running; ${start}`;
  const ownNamespace = status.pidNamespace !== undefined && status.pidNamespace === pidNamespace();
  if (ownNamespace && !processAlive(status.pid)) return `the daemon (pid ${status.pid}) is not running; ${start}`;
  if (now - Date.parse(status.updatedAt) > HEARTBEAT_STALE_MS) {
    return `the daemon has not written its heartbeat since ${status.updatedAt}: it is not running, or hung; ${start}`;
  }
  return undefined;
}
