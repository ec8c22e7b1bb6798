import { randomBytes } from "node:crypto";
import { closeSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
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

/**
 * One daemon per state dir: `daemon.lock`, created with O_EXCL, so of daemons started together
 * exactly one gets it. A lock whose owner is gone is taken over: in the same PID namespace when
 * its pid is dead; from another namespace (another container, where its pid means nothing) when
 * the unix socket it names refuses connections (the kernel closed it with its process), else
 * once neither the lock nor the heartbeat has moved for 30 s. Taking over renames the stale
 * lock first, which only one daemon can do. Returns the socket's name, for listenWhileAlive.
 */
export async function acquireDaemonLock(dir: string, me: LockOwner, now: number, mode: number): Promise<string> {
  const file = join(dir, "daemon.lock");
  const socket = `daemon-${randomBytes(8).toString("hex")}.sock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, "wx", mode);
      try {
        writeSync(fd, `${JSON.stringify({ ...me, socket })}\n`);
      } finally {
        closeSync(fd);
      }
      removeOtherSockets(dir, socket);
      return socket;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StoreError(`cannot create '${file}': ${(error as NodeJS.ErrnoException).code}`, { cause: error });
      }
    }
    const holder = readHolder(file);
    if (holder && (await held(dir, holder, me, now))) {
      throw new StoreError(`another git-token-keeper daemon (pid ${holder.pid}${holder.pidNamespace === me.pidNamespace ? "" : " in another PID namespace"}) already uses state dir '${dir}'`, {
        hint: "stop it first, or give this one its own stateDir",
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

function removeOtherSockets(dir: string, mine: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (SOCKET_NAME.test(name) && name !== mine) rmSync(join(dir, name), { force: true });
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
  if (holder.pid > 0 && holder.pidNamespace !== undefined && holder.pidNamespace === me.pidNamespace) {
    return holder.pid !== me.pid && processAlive(holder.pid);
  }
  // The socket exists only once its holder listens: before that (it is starting right now), or
  // for a holder that could not listen, the lock's and the heartbeat's age decide.
  const answer = holder.socket ? await socketAnswer(join(dir, holder.socket)) : "unknown";
  if (answer !== "unknown") return answer === "alive";
  return now - holder.mtimeMs < HEARTBEAT_STALE_MS || heartbeatFresh(dir, now);
}
