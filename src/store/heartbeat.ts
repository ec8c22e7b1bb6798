import { readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** How often the daemon rewrites its heartbeat file. */
export const HEARTBEAT_MS = 10_000;
/** Three missed beats: the daemon is gone or hung. The helper (sh) uses the same 30 s. */
export const HEARTBEAT_STALE_MS = 30_000;

/**
 * When the daemon last beat (ms since the epoch), from the heartbeat file: seconds since the
 * epoch, then the ISO time (older daemons wrote the ISO time alone). Undefined when absent.
 */
export function readHeartbeat(stateDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, "heartbeat"), "utf8").trim();
  } catch {
    return undefined;
  }
  const [first = ""] = text.split(" ");
  const ms = /^\d+$/.test(first) ? Number(first) * 1000 : Date.parse(first);
  return Number.isFinite(ms) ? ms : undefined;
}

/** True while the heartbeat is younger than HEARTBEAT_STALE_MS. */
export function heartbeatFresh(stateDir: string, now = Date.now()): boolean {
  const at = readHeartbeat(stateDir);
  return at !== undefined && now - at <= HEARTBEAT_STALE_MS;
}

/**
 * This process's PID namespace ("pid:[4026531836]"), or undefined where /proc does not say.
 * A pid means something only to a process in the same one: a sidecar's daemon and the build's
 * git each have their own.
 */
export function pidNamespace(): string | undefined {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
}
