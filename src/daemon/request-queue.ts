import { lstatSync, readdirSync, rmSync, type Stats } from "node:fs";
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
const FAILED_MAX_BYTES = 4_096;

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
  /** Entries already logged as not requests, so that each is said once. */
  readonly #strangers = new Set<string>();
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
    this.#watcher.on("addDir", (path) => path !== this.#dir && this.#take(basename(path)));
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
      if (name.endsWith(".failed")) {
        const entry = this.#entry(name, FAILED_MAX_BYTES);
        if (entry && now - entry.mtimeMs > FAILED_TTL_MS) this.#remove(name);
      } else {
        this.#take(name);
      }
    }
  }

  /**
   * lstat of an entry: undefined when it is gone. Anything but a regular file of at most
   * `maxBytes` (requests are empty; `.failed` answers hold one line) is not ours (requests/ is group-writable in the shared layout): it is removed, never opened or
   * followed, and said once.
   */
  #entry(name: string, maxBytes = 0): Stats | undefined {
    try {
      const entry = lstatSync(join(this.#dir, name));
      if (entry.isFile() && entry.size <= maxBytes) return entry;
      this.#removeStranger(name, entry);
    } catch {
      // Gone meanwhile.
    }
    return undefined;
  }

  #removeStranger(name: string, entry: Stats): void {
    const kind = entry.isDirectory() ? "directory" : entry.isSymbolicLink() ? "symlink" : entry.isFIFO() ? "fifo" : entry.isSocket() ? "socket" : entry.isFile() ? `file of ${entry.size} bytes` : "special file";
    if (!this.#strangers.has(name)) {
      this.#strangers.add(name);
      this.#log.warn("removed an entry in requests/ that is not a request", { name: printable(name), kind, uid: entry.uid });
    }
    this.#remove(name, entry.isDirectory());
  }

  // rm never follows a symlink: it unlinks the link itself, and inside a folder as well.
  #remove(name: string, recursive = false): void {
    try {
      rmSync(join(this.#dir, name), { force: true, recursive });
    } catch (error) {
      this.#log.debug("cannot remove an entry in requests/", { name: printable(name), error: describeError(error) });
    }
  }

  #take(name: string): void {
    // Dot files are other programs' (editors, the shim's older versions); never ours to touch.
    if (name.startsWith(".") || name.endsWith(".failed") || this.#busy.has(name)) return;
    const parsed = parseRequestName(name);
    if (!parsed) {
      if (!this.#entry(name)) return;
      if (!this.#strangers.has(name)) {
        this.#strangers.add(name);
        this.#log.warn("ignored a malformed request file", { name: printable(name) });
      }
      this.#remove(name);
      return;
    }
    if (!this.#entry(name)) return;
    this.#strangers.delete(name);
    const file = join(this.#dir, name);
    this.#busy.add(name);
    this.#handle({ ...parsed, file })
      .then(
        () => undefined,
        (error: unknown) => {
          try {
            // A temp file and a rename: a symlink planted at this name is replaced, not followed.
            writeFileAtomic(`${file}.failed`, `${this.#redact(describeError(error)).replace(/\s+/g, " ").slice(0, 500)}\n`, this.#fileMode, this.#gid);
          } catch {
            // The requester still sees its request gone and reports a generic failure.
          }
        },
      )
      .finally(() => {
        this.#remove(name);
        this.#busy.delete(name);
      });
  }
}

/** A name as it can be logged: control characters escaped, at most 200 characters. */
function printable(name: string): string {
  return JSON.stringify(name.slice(0, 200)).slice(1, -1);
}
