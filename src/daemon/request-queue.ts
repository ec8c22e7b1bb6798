import { readdirSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import { describeError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import { writeFileAtomic } from "../store/atomic-write.ts";

/**
 * A request from the shim, helper or CLI. Plain sh cannot write a file atomically without an
 * extra exec, so the whole request is in the file's name and the file itself is empty:
 *   <kind>+<provider>+<owner>+<serial>+<unique>
 * `retried` is the shim's note that it ran a command again (auth or transient, in the provider
 * field), for the metrics; nobody waits for it.
 * The daemon deletes the file when done; on failure it first writes `<name>.failed` holding
 * one line that says why, for the requester to print.
 */
export interface KeeperRequest {
  kind: "mint" | "remint" | "refresh" | "retried";
  provider: string;
  owner: string;
  serial: number;
  file: string;
}

const NAME = /^(mint|remint|refresh|retried)\+([A-Za-z0-9_*-]{1,63})\+([a-z0-9._-]{0,100})\+(\d{1,12})\+([A-Za-z0-9._-]{1,64})$/;
const FAILED_TTL_MS = 60_000;

export function parseRequestName(name: string): Omit<KeeperRequest, "file"> | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  return { kind: m[1] as KeeperRequest["kind"], provider: m[2] as string, owner: m[3] as string, serial: Number(m[4]) };
}

/** Watches the requests directory (chokidar, plus a slow sweep in case an event is lost). */
export class RequestQueue {
  readonly #dir: string;
  readonly #handle: (request: KeeperRequest) => Promise<void>;
  readonly #log: Logger;
  readonly #fileMode: number;
  readonly #gid: number | undefined;
  readonly #busy = new Set<string>();
  #watcher: FSWatcher | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  readonly #redact: (text: string) => string;

  constructor(
    dir: string,
    handle: (request: KeeperRequest) => Promise<void>,
    log: Logger,
    file: { mode: number; gid: number | undefined; redact: (text: string) => string },
  ) {
    this.#dir = dir;
    this.#redact = file.redact;
    this.#fileMode = file.mode;
    this.#gid = file.gid;
    this.#handle = handle;
    this.#log = log;
  }

  async start(): Promise<void> {
    this.#watcher = watch(this.#dir, { depth: 0, ignoreInitial: false, persistent: true });
    this.#watcher.on("add", (path) => this.#take(basename(path)));
    this.#watcher.on("error", (error) => this.#log.warn("request watcher error", { error: describeError(error) }));
    await new Promise<void>((resolve) => this.#watcher?.once("ready", () => resolve()));
    this.#sweepTimer = setInterval(() => this.#sweep(), 2_000);
    this.#sweep();
  }

  async stop(): Promise<void> {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#watcher?.close();
  }

  #sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return;
    }
    const now = Date.now();
    for (const name of names) {
      const shim = /^\.shim-(\d+)\./.exec(name);
      if (shim) {
        // A shim's stderr copy: gone with the shim.
        if (!pidAlive(Number(shim[1]))) rmSync(join(this.#dir, name), { force: true });
      } else if (name.endsWith(".failed")) {
        try {
          if (now - statSync(join(this.#dir, name)).mtimeMs > FAILED_TTL_MS) rmSync(join(this.#dir, name), { force: true });
        } catch {
          // Taken by its requester meanwhile.
        }
      } else {
        this.#take(name);
      }
    }
  }

  #take(name: string): void {
    if (name.startsWith(".") || name.endsWith(".failed") || this.#busy.has(name)) return;
    const file = join(this.#dir, name);
    const parsed = parseRequestName(name);
    if (!parsed) {
      this.#log.warn("ignored a malformed request file", { name: name.slice(0, 200) });
      rmSync(file, { force: true });
      return;
    }
    this.#busy.add(name);
    this.#handle({ ...parsed, file })
      .then(
        () => undefined,
        (error: unknown) => {
          try {
            writeFileAtomic(`${file}.failed`, `${this.#redact(describeError(error)).replace(/\s+/g, " ").slice(0, 500)}\n`, this.#fileMode, this.#gid);
          } catch {
            // The requester still sees its request gone and reports a generic failure.
          }
        },
      )
      .finally(() => {
        rmSync(file, { force: true });
        this.#busy.delete(name);
      });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
