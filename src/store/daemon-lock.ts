import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../errors/keeper-error.ts";
import { HEARTBEAT_STALE_MS, heartbeatFresh } from "./heartbeat.ts";
import { processAlive } from "./process-alive.ts";

interface LockOwner {
  pid: number;
  pidNamespace: string | undefined;
}

/**
 * One daemon per state dir: `daemon.lock`, created with O_EXCL, so of daemons started together
 * exactly one gets it. A lock whose owner is gone is taken over: in the same PID namespace when
 * its pid is dead; from another namespace (another container) once neither the lock nor the
 * heartbeat has moved for 30 s. Taking over renames the stale lock first, which only one
 * daemon can do.
 */
export function acquireDaemonLock(dir: string, me: LockOwner, now: number, mode: number): void {
  const file = join(dir, "daemon.lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, "wx", mode);
      try {
        writeSync(fd, `${JSON.stringify(me)}\n`);
      } finally {
        closeSync(fd);
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StoreError(`cannot create '${file}': ${(error as NodeJS.ErrnoException).code}`, { cause: error });
      }
    }
    const holder = readHolder(file);
    if (holder && held(dir, file, holder, me, now)) {
      throw new StoreError(`another git-token-keeper daemon (pid ${holder.pid}${holder.pidNamespace === me.pidNamespace ? "" : " in another PID namespace"}) already uses state dir '${dir}'`, {
        hint: "stop it first, or give this one its own stateDir (a daemon killed in another container stops counting 30 s after its last heartbeat)",
      });
    }
    try {
      renameSync(file, `${file}.stale.${me.pid}`);
      rmSync(`${file}.stale.${me.pid}`, { force: true });
    } catch {
      // Another daemon took it over first: look again.
    }
  }
  throw new StoreError(`could not take the daemon lock in '${dir}'`, { hint: "another daemon is starting on the same state dir" });
}

/** Removes the lock if it is this daemon's. */
export function releaseDaemonLock(dir: string, me: LockOwner): void {
  const file = join(dir, "daemon.lock");
  const holder = readHolder(file);
  if (holder?.pid === me.pid && holder.pidNamespace === me.pidNamespace) rmSync(file, { force: true });
}

function readHolder(file: string): (LockOwner & { mtimeMs: number }) | undefined {
  try {
    const mtimeMs = statSync(file).mtimeMs;
    const data = JSON.parse(readFileSync(file, "utf8")) as { pid?: unknown; pidNamespace?: unknown };
    return { pid: Number(data.pid), pidNamespace: typeof data.pidNamespace === "string" ? data.pidNamespace : undefined, mtimeMs };
  } catch {
    // Half-written by a daemon starting right now, or garbage: judged by its age alone.
    try {
      return { pid: 0, pidNamespace: undefined, mtimeMs: statSync(file).mtimeMs };
    } catch {
      return undefined;
    }
  }
}

function held(dir: string, file: string, holder: LockOwner & { mtimeMs: number }, me: LockOwner, now: number): boolean {
  if (holder.pid > 0 && holder.pidNamespace !== undefined && holder.pidNamespace === me.pidNamespace) {
    return holder.pid !== me.pid && processAlive(holder.pid);
  }
  return now - holder.mtimeMs < HEARTBEAT_STALE_MS || heartbeatFresh(dir, now);
}
