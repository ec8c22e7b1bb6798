import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { pidNamespace } from "./heartbeat.ts";
import { processAlive } from "./process-alive.ts";

/** A lock not touched for this long belongs to a daemon that is gone (killed, its container removed). */
export const SECRET_LOCK_STALE_MS = 30_000;
const TOUCH_EVERY_MS = 10_000;

interface LockBody {
  id: string;
  pid: number;
  pidNamespace: string | null;
}

/**
 * `<file>.lock` beside a secret that one daemon rotates (GitLab's single-use refresh token): two
 * daemons refreshing from one file would present the same refresh token, and GitLab revokes the
 * whole chain on the second. The holder touches the lock every 10 s; another daemon takes it over
 * only when its holder is gone: its pid dead in the same PID namespace, or the lock untouched for
 * 30 s (a holder in another container). Taking over is a rename of a fresh file, after which each
 * contender reads the lock back: only the one it names goes on.
 */
export class SecretLock {
  readonly path: string;
  readonly #me: LockBody = { id: randomBytes(8).toString("hex"), pid: process.pid, pidNamespace: pidNamespace() ?? null };
  #timer: NodeJS.Timeout | undefined;

  constructor(secretFile: string) {
    this.path = `${secretFile}.lock`;
  }

  /** Takes the lock, or says who holds it (undefined: taken). Throws on a file system error. */
  acquire(now = Date.now()): string | undefined {
    if (this.holds()) return undefined;
    const holder = this.#read();
    if (holder && !this.#gone(holder, now)) {
      return `another daemon (pid ${holder.body?.pid ?? "?"}${holder.body?.pidNamespace === this.#me.pidNamespace ? "" : " in another PID namespace"}) holds '${this.path}'`;
    }
    const temp = `${this.path}.${this.#me.id}.new`;
    const fd = openSync(temp, "wx", 0o600);
    try {
      writeSync(fd, `${JSON.stringify(this.#me)}\n`);
    } finally {
      closeSync(fd);
    }
    if (holder) renameSync(temp, this.path);
    else {
      try {
        // Exclusive when nobody holds it: of two daemons starting together, one gets it.
        linkSync(temp, this.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      } finally {
        rmSync(temp, { force: true });
      }
    }
    if (!this.holds()) return "another daemon took it at the same moment";
    this.#timer ??= setInterval(() => this.#touch(), TOUCH_EVERY_MS);
    this.#timer.unref();
    return undefined;
  }

  /** True while the lock names this process's lock. */
  holds(): boolean {
    return this.#read()?.body?.id === this.#me.id;
  }

  release(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.holds()) rmSync(this.path, { force: true });
  }

  #touch(): void {
    try {
      if (this.holds()) utimesSync(this.path, new Date(), new Date());
    } catch {
      // Gone: the next acquire says so.
    }
  }

  #gone(holder: { body: LockBody | undefined; mtimeMs: number }, now: number): boolean {
    const { body } = holder;
    if (body && body.pidNamespace !== null && body.pidNamespace === this.#me.pidNamespace && body.pid !== this.#me.pid && !processAlive(body.pid)) return true;
    return now - holder.mtimeMs > SECRET_LOCK_STALE_MS;
  }

  #read(): { body: LockBody | undefined; mtimeMs: number } | undefined {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch {
      return undefined;
    }
    try {
      const data = JSON.parse(readFileSync(this.path, "utf8")) as Partial<LockBody>;
      const body = typeof data.id === "string" && typeof data.pid === "number" ? { id: data.id, pid: data.pid, pidNamespace: typeof data.pidNamespace === "string" ? data.pidNamespace : null } : undefined;
      return { body, mtimeMs };
    } catch {
      return { body: undefined, mtimeMs };
    }
  }
}
