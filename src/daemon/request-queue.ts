import { lstatSync, readdirSync, rmdirSync, unlinkSync, type Stats } from "node:fs";
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
 * The daemon deletes the file when done; on failure it first writes `answers/<name>` (a folder
 * only the daemon writes to) holding one line that says why, for the requester to print.
 * Requesters make the unique part unpredictable and create the file exclusively (sh: noclobber),
 * and requests/ is sticky in the shared layout, so no member of the group can plant or remove
 * another's request.
 */
export interface KeeperRequest {
  kind: "mint" | "remint" | "refresh" | "retried";
  provider: string;
  owner: string;
  serial: number;
  file: string;
  /** Filed by the daemon's own user (the CLI run as the keeper's user), not by a group member. */
  own: boolean;
}

// The owner as the helper checks it (a plain name, never `.` or `..`), `owner~repository` for a
// provider with a token per repository, or empty (every owner).
const NAME = /^(mint|remint|refresh|retried)\+([A-Za-z0-9_*-]{1,63})\+((?:[a-z0-9_-][a-z0-9._-]{0,99}(?:~[a-z0-9_-][a-z0-9._-]{0,99})?)?)\+(\d{1,12})\+([A-Za-z0-9_-]{1,64})$/;
const ANSWER_TTL_MS = 60_000;

export function parseRequestName(name: string): Omit<KeeperRequest, "file" | "own"> | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  return { kind: m[1] as KeeperRequest["kind"], provider: m[2] as string, owner: m[3] as string, serial: Number(m[4]) };
}

/** Watches the requests directory (chokidar, plus a slow sweep in case an event is lost). */
export class RequestQueue {
  readonly #dir: string;
  readonly #answers: string;
  readonly #handle: (request: KeeperRequest) => Promise<void>;
  readonly #log: Logger;
  readonly #fileMode: number;
  readonly #gid: number | undefined;
  readonly #busy = new Set<string>();
  readonly #busyByUid = new Map<number, number>();
  /** Entries already logged as not requests, so that each is said once. */
  readonly #strangers = new Set<string>();
  #watcher: FSWatcher | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  readonly #redact: (text: string) => string;
  readonly #uid = process.getuid?.() ?? 0;
  /** Counts what was refused, for the metrics (`reason`). */
  readonly #refused: (reason: string) => void;

  constructor(
    dir: string,
    handle: (request: KeeperRequest) => Promise<void>,
    log: Logger,
    file: { answers: string; mode: number; gid: number | undefined; redact: (text: string) => string; refused?: (reason: string) => void },
  ) {
    this.#refused = file.refused ?? (() => undefined);
    this.#dir = dir;
    this.#answers = file.answers;
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
    this.#sweepAnswers();
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return;
    }
    for (const name of names) this.#take(name);
  }

  /** Answers nobody read within a minute (their requester gave up) are removed. */
  #sweepAnswers(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.#answers);
    } catch {
      return;
    }
    const now = Date.now();
    for (const name of names) {
      try {
        if (now - lstatSync(join(this.#answers, name)).mtimeMs > ANSWER_TTL_MS) unlinkSync(join(this.#answers, name));
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /**
   * lstat of an entry: undefined when it is gone. Anything but an empty regular file is not a
   * request (requests/ is group-writable in the shared layout): it is removed, never opened or
   * followed, and said once.
   */
  #entry(name: string): Stats | undefined {
    try {
      const entry = lstatSync(join(this.#dir, name));
      if (entry.isFile() && entry.size === 0) return entry;
      this.#removeStranger(name, entry);
    } catch {
      // Gone meanwhile.
    }
    return undefined;
  }

  #removeStranger(name: string, entry: Stats): void {
    const kind = entry.isDirectory() ? "directory" : entry.isSymbolicLink() ? "symlink" : entry.isFIFO() ? "fifo" : entry.isSocket() ? "socket" : entry.isFile() ? `file of ${entry.size} bytes` : "special file";
    const removed = this.#remove(name, entry.isDirectory());
    if (!this.#strangers.has(name)) {
      // Bounded: names already logged are forgotten past 10,000 (logged again, at worst).
      if (this.#strangers.size >= 10_000) this.#strangers.clear();
      this.#strangers.add(name);
      this.#log.warn(removed ? "removed an entry in requests/ that is not a request" : "an entry in requests/ that is not a request cannot be removed without looking inside it; left as it is", { name: printable(name), kind, uid: entry.uid });
      this.#refused("not a request");
    }
  }

  // Never follows or recurses: a link is unlinked itself, a folder removed only when empty (to
  // empty one, the daemon would have to walk into a place a member can swap for a link).
  #remove(name: string, directory = false): boolean {
    try {
      if (directory) rmdirSync(join(this.#dir, name));
      else unlinkSync(join(this.#dir, name));
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") this.#log.debug("cannot remove an entry in requests/", { name: printable(name), error: describeError(error) });
      return code === "ENOENT";
    }
  }

  #take(name: string): void {
    if (this.#busy.has(name)) return;
    // Bounded: thousands of request files (anyone in the state group can write them) wait in
    // the folder for the sweep, instead of thousands of mints and answers at once.
    if (this.#busy.size >= MAX_IN_FLIGHT + OWN_RESERVE) return;
    const parsed = parseRequestName(name);
    if (!parsed) {
      const entry = this.#entry(name);
      if (!entry) return;
      if (!this.#strangers.has(name)) {
        // Bounded: names already logged are forgotten past 10,000 (logged again, at worst).
      if (this.#strangers.size >= 10_000) this.#strangers.clear();
      this.#strangers.add(name);
        this.#log.warn("ignored a malformed request file", { name: printable(name), uid: entry.uid });
        this.#refused("malformed");
      }
      this.#remove(name);
      return;
    }
    const entry = this.#entry(name);
    if (!entry) return;
    const own = entry.uid === this.#uid;
    // Fair shares: the keeper's own user (the CLI, its own git) keeps a reserve, and no member
    // takes more than a quarter, so one member's flood cannot starve the others' builds.
    const theirs = this.#busyByUid.get(entry.uid) ?? 0;
    if (!own && (this.#busy.size >= MAX_IN_FLIGHT || theirs >= MAX_IN_FLIGHT / 4)) return;
    this.#strangers.delete(name);
    const file = join(this.#dir, name);
    this.#busy.add(name);
    this.#busyByUid.set(entry.uid, theirs + 1);
    this.#handle({ ...parsed, file, own })
      .then(
        () => undefined,
        (error: unknown) => {
          try {
            writeFileAtomic(join(this.#answers, name), `${this.#redact(describeError(error)).replace(/\s+/g, " ").slice(0, 500)}\n`, this.#fileMode, this.#gid);
          } catch {
            // The requester still sees its request gone and reports a generic failure.
          }
        },
      )
      .finally(() => {
        this.#remove(name);
        this.#busy.delete(name);
        const left = (this.#busyByUid.get(entry.uid) ?? 1) - 1;
        if (left > 0) this.#busyByUid.set(entry.uid, left);
        else this.#busyByUid.delete(entry.uid);
      });
  }
}

/** Requests carried out at once; the rest wait in requests/ for the next sweep (every 2 s). */
export const MAX_IN_FLIGHT = 64;
/** Kept for the keeper's own user beyond MAX_IN_FLIGHT. */
const OWN_RESERVE = 16;

/** A name as it can be logged: control characters escaped, at most 200 characters. */
function printable(name: string): string {
  return JSON.stringify(name.slice(0, 200)).slice(1, -1);
}
