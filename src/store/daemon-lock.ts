import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../errors/keeper-error.ts";
import { HEARTBEAT_STALE_MS, heartbeatFresh } from "./heartbeat.ts";
import { processAlive } from "./process-alive.ts";

interface LockOwner {
  pid: number;
  pidNamespace: string | undefined;
}

interface Holder extends LockOwner {
  mtimeMs: number;
  /** The unix socket its holder listens on while it lives (see listenWhileAlive). */
  socket: string | undefined;
}

const SOCKET_NAME = /^daemon-[0-9a-f]{16}\.sock$/;

/** The lock file of generation `n`; generation 0 is the name daemons before generations used. */
function lockName(n: number): string {
  return n === 0 ? "daemon.lock" : `daemon.lock.${n}`;
}

const LOCK_NAME = /^daemon\.lock(?:\.([1-9][0-9]{0,15}))?$/;

/** Names in `dir` that match `pattern`; none when the folder cannot be read. */
function namesIn(dir: string, pattern: RegExp): string[] {
  try {
    return readdirSync(dir).filter((name) => pattern.test(name));
  } catch {
    return [];
  }
}

/** The generations of lock files in the state dir, highest first. */
function generations(dir: string): number[] {
  return namesIn(dir, LOCK_NAME)
    .map((name) => Number(LOCK_NAME.exec(name)?.[1] ?? 0))
    .sort((x, y) => y - x);
}

/**
 * One daemon per state dir. The lock is the lock file of the highest generation
 * (`daemon.lock.<n>`); a daemon holds it by creating the file whole (a hard link from a private
 * temp file, which fails if the name exists), so of daemons started together exactly one gets
 * any generation. A lock whose owner is gone is taken over by creating the next generation: only
 * one daemon can, and a live holder's file is never renamed, replaced or removed by another. A
 * holder is gone, in the same PID namespace, when its pid is dead; from another namespace
 * (another container, where its pid means nothing) when the unix socket it names refuses
 * connections (the kernel closed it with its process); else once neither the lock nor the
 * heartbeat has moved for 30 s. The caller listens on `socket` (newSocketName, listenWhileAlive)
 * before asking: a lock never names a socket that is not listening yet, so a refused connection
 * always means its holder is gone. Returns the lock's generation and the socket's name.
 */
export async function acquireDaemonLock(dir: string, me: LockOwner, now: number, mode: number, socket: string): Promise<{ generation: number; socket: string }> {
  // Not a `.tmp` name: a daemon starting elsewhere removes those as leftovers of its own writes.
  const temp = join(dir, `.daemon.lock.${socket}.new`);
  const fd = openSync(temp, "wx", mode);
  try {
    writeSync(fd, `${JSON.stringify({ ...me, socket })}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const [highest] = generations(dir);
      if (highest !== undefined) {
        const holder = readHolder(join(dir, lockName(highest)));
        if (holder === undefined) continue; // removed meanwhile: look again
        if (await held(dir, holder, me, now)) {
          throw new StoreError(`another git-token-keeper daemon (pid ${holder.pid}${holder.pidNamespace === me.pidNamespace ? "" : " in another PID namespace"}) already uses state dir '${dir}'`, {
            hint: "stop it first, or give this one its own stateDir",
          });
        }
      }
      const generation = (highest ?? 0) + 1;
      try {
        linkSync(temp, join(dir, lockName(generation)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") continue; // another daemon got it first
        throw new StoreError(`cannot create '${join(dir, lockName(generation))}': ${(error as NodeJS.ErrnoException).code}`, { cause: error });
      }
      // Older generations belong to daemons judged gone; their sockets too.
      for (const old of generations(dir)) if (old < generation) rmSync(join(dir, lockName(old)), { force: true });
      await removeDeadSockets(dir, socket);
      removeStaleLockTemps(dir, now);
      return { generation, socket };
    }
  } finally {
    rmSync(temp, { force: true });
  }
  throw new StoreError(`could not take the daemon lock in '${dir}'`, { hint: "another daemon is starting on the same state dir" });
}

/** Removes the lock if it is this daemon's (its generation still names this daemon's socket). */
export function releaseDaemonLock(dir: string, lock: { generation: number; socket: string }): void {
  const file = join(dir, lockName(lock.generation));
  if (readHolder(file)?.socket === lock.socket) rmSync(file, { force: true });
}

/** True while the lock of the highest generation is this daemon's. */
export function holdsDaemonLock(dir: string, lock: { generation: number; socket: string }): boolean {
  const [highest] = generations(dir);
  return highest === lock.generation && readHolder(join(dir, lockName(highest)))?.socket === lock.socket;
}

/**
 * Listens on the socket named in the lock for as long as this process lives, so that a daemon
 * in another PID namespace can tell it is alive (a connection is accepted, even from a stopped
 * process's backlog) from dead (refused). Without it (a path too long for a unix socket) the
 * 30-s rule holds; `onError` says so.
 */
export async function listenWhileAlive(dir: string, socket: string, onError: (error: Error) => void): Promise<{ close(): Promise<void> }> {
  const { createServer } = process.getBuiltinModule("node:net");
  const server = createServer((connection) => connection.destroy());
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", (error) => {
      onError(error);
      resolve(false);
    });
    server.listen(join(dir, socket), () => resolve(true));
  });
  server.unref();
  return { close: () => (listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve()) };
}

/** Temp lock files a daemon killed while it asked for the lock left (a minute old). */
function removeStaleLockTemps(dir: string, now: number): void {
  for (const name of namesIn(dir, /^\.daemon\.lock\.daemon-[0-9a-f]{16}\.sock\.new$/)) {
    try {
      if (now - statSync(join(dir, name)).mtimeMs > 60_000) rmSync(join(dir, name), { force: true });
    } catch {
      // Gone meanwhile.
    }
  }
}

/** A fresh name for the socket a daemon listens on while it lives. */
export function newSocketName(): string {
  return `daemon-${randomBytes(8).toString("hex")}.sock`;
}

/** Removes the sockets of daemons that are gone (a connection is refused); others may be starting. */
async function removeDeadSockets(dir: string, mine: string): Promise<void> {
  for (const name of namesIn(dir, SOCKET_NAME)) {
    if (name !== mine && (await socketAnswer(join(dir, name))) === "dead") rmSync(join(dir, name), { force: true });
  }
}

/** alive: it accepted a connection; dead: refused (its process is gone); unknown: no socket, or no answer. */
function socketAnswer(path: string): Promise<"alive" | "dead" | "unknown"> {
  const { connect } = process.getBuiltinModule("node:net");
  return new Promise((resolve) => {
    const connection = connect(path);
    const timer = setTimeout(() => finish("unknown"), 1_000);
    function finish(answer: "alive" | "dead" | "unknown") {
      clearTimeout(timer);
      connection.destroy();
      resolve(answer);
    }
    connection.once("connect", () => finish("alive"));
    connection.once("error", (error: NodeJS.ErrnoException) => finish(error.code === "ECONNREFUSED" ? "dead" : "unknown"));
  });
}

function readHolder(file: string): Holder | undefined {
  try {
    const mtimeMs = statSync(file).mtimeMs;
    const data = JSON.parse(readFileSync(file, "utf8")) as { pid?: unknown; pidNamespace?: unknown; socket?: unknown };
    const socket = typeof data.socket === "string" && SOCKET_NAME.test(data.socket) ? data.socket : undefined;
    return { pid: Number(data.pid), pidNamespace: typeof data.pidNamespace === "string" ? data.pidNamespace : undefined, mtimeMs, socket };
  } catch {
    // Half-written by a daemon starting right now, or garbage: judged by its age alone.
    try {
      return { pid: 0, pidNamespace: undefined, mtimeMs: statSync(file).mtimeMs, socket: undefined };
    } catch {
      return undefined;
    }
  }
}

async function held(dir: string, holder: Holder, me: LockOwner, now: number): Promise<boolean> {
  // The socket answers for its holder wherever it runs; it exists only once the holder listens.
  const answer = holder.socket ? await socketAnswer(join(dir, holder.socket)) : "unknown";
  if (answer !== "unknown") return answer === "alive";
  // Before that (it is starting right now), or for a holder that could not listen: in the same
  // PID namespace its pid, with the time rule as well when the pid is alive (a namespace id can
  // be reused by a restarted container, where that pid is some other process).
  const young = now - holder.mtimeMs < HEARTBEAT_STALE_MS || heartbeatFresh(dir, now);
  if (holder.pid > 0 && holder.pidNamespace !== undefined && holder.pidNamespace === me.pidNamespace) {
    return holder.pid !== me.pid && processAlive(holder.pid) && young;
  }
  return young;
}
