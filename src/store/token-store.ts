import { readdirSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { uptime } from "node:os";
import { join } from "node:path";
import { StoreError } from "../errors/keeper-error.ts";
import { writeFileAtomic } from "./atomic-write.ts";
import { currentAccess, ensurePrivateDir, type DirAccess } from "./state-dir.ts";
import { formatTokenRecord, parseTokenRecord, type TokenRecord } from "./token-file.ts";

/** One line of the routes file: which provider serves which paths and owners of which git origin. */
export interface Route {
  origin: string;
  provider: string;
  /** Lower-case path prefix with leading and trailing slash. */
  pathPrefix: string;
  /** One token per owner, or one shared token (file `shared`). */
  perOwner: boolean;
  /** One token per repository (files `owner~repository`). */
  perRepository?: boolean;
  /** Lower-case owners, or undefined for any owner. */
  owners: string[] | undefined;
  /** The origin's SSH URLs go over HTTPS. */
  sshToHttps?: boolean;
}

/**
 * The state directory, the only place tokens are written:
 *   routes                     origin, provider, path prefix, owner|shared, owners; read by the helper
 *   origins                    the distinct origins of routes; read by the shim on every git call
 *   tokens/<provider>/<owner>  the current token (TokenRecord)
 *   requests/                  files the helper drops to ask for a mint (see request-queue.ts)
 *   status.json                for `git-token-keeper status`
 *   heartbeat                  rewritten every 10 s: the daemon is alive while it is fresh, as the
 *                              helper and status judge (pids mean nothing across containers)
 *   daemon.pid                 for people and signals; removed on a clean stop
 */
export class TokenStore {
  readonly dir: string;
  readonly requestsDir: string;
  /** The daemon's answers to failed requests: only it writes here (requests/ is the group's). */
  readonly answersDir: string;
  readonly tokensDir: string;
  readonly #access: DirAccess;

  /** `gid`: share tokens (read) and requests (write) with this group; else private to the user. */
  constructor(dir: string, gid?: number) {
    this.dir = dir;
    this.#access = currentAccess(gid);
    this.tokensDir = join(dir, "tokens");
    this.requestsDir = join(dir, "requests");
    this.answersDir = join(dir, "answers");
  }

  /** Creates or checks the directory tree; throws StoreError when it is not private. */
  init(): void {
    ensurePrivateDir(this.dir, this.#access);
    ensurePrivateDir(this.tokensDir, this.#access);
    ensurePrivateDir(this.requestsDir, { ...this.#access, groupWrite: true });
    ensurePrivateDir(this.answersDir, this.#access);
  }

  /**
   * Removes temp files a killed daemon left mid-write (never read: readers see only renamed
   * files). Never throws, follows or recurses: requests/ is the group's, and a member may have
   * put anything there (see RequestQueue, which sweeps it).
   */
  removeLeftovers(): void {
    for (const dir of [this.dir, this.answersDir, ...this.#providerDirs()]) {
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(".") || !name.endsWith(".tmp")) continue;
        try {
          unlinkSync(join(dir, name));
        } catch {
          // Not a file (unlink never follows a link), or gone: not ours to force.
        }
      }
    }
  }

  #providerDirs(): string[] {
    try {
      return readdirSync(this.tokensDir).map((n) => join(this.tokensDir, n));
    } catch {
      return [];
    }
  }

  /** Files are 0600, or 0640 in the shared group's layout. */
  get fileMode(): number {
    return this.#access.gid === undefined ? 0o600 : 0o640;
  }

  get gid(): number | undefined {
    return this.#access.gid;
  }

  tokenPath(provider: string, owner: string): string {
    return join(this.tokensDir, provider, owner);
  }

  writeToken(provider: string, owner: string, record: TokenRecord): void {
    this.#write(join(this.tokensDir, provider), owner, formatTokenRecord(record));
  }

  readToken(provider: string, owner: string): TokenRecord | undefined {
    try {
      return parseTokenRecord(readFileSync(this.tokenPath(provider, owner), "utf8"));
    } catch {
      return undefined;
    }
  }

  /** Owners with a token file for a provider, for resuming after a restart. */
  listOwners(provider: string): string[] {
    try {
      return readdirSync(join(this.tokensDir, provider)).filter((n) => !n.startsWith("."));
    } catch {
      return [];
    }
  }

  removeToken(provider: string, owner: string): void {
    rmSync(this.tokenPath(provider, owner), { force: true });
  }

  /** Removes every token file of one provider. */
  removeProvider(provider: string): void {
    rmSync(join(this.tokensDir, provider), { recursive: true, force: true });
  }

  /** Removes token files of providers no longer configured. */
  pruneProviders(keep: ReadonlySet<string>): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.tokensDir);
    } catch {
      return;
    }
    for (const name of names) if (!keep.has(name)) rmSync(join(this.tokensDir, name), { recursive: true, force: true });
  }

  writeRoutes(routes: readonly Route[]): void {
    const lines = routes.map(
      (r) => `${r.origin} ${r.provider} ${r.pathPrefix} ${r.perRepository ? "repository" : r.perOwner ? "owner" : "shared"} ${r.owners ? r.owners.join(",") || "-" : "*"}`,
    );
    this.#write(this.dir, "routes", `${lines.join("\n")}\n`);
    this.#write(this.dir, "origins", originsText(routes));
  }

  writeStatus(status: unknown): void {
    this.#write(this.dir, "status.json", `${JSON.stringify(status, null, 2)}\n`);
  }

  /**
   * The daemon's "still alive" every 10 s, apart from status.json so that it stays small:
   * seconds since the epoch, the ISO time, and the boot time (see below).
   */
  writeHeartbeat(atMs: number): void {
    // Third: when the machine booted, in seconds since the epoch as this clock has it. The helper
    // adds /proc/uptime to it to know the time without starting `date`.
    // Fourth: the same in milliseconds, for tokens of a few seconds (from /proc/uptime, to the
    // hundredth the helper reads it; os.uptime() has tenths).
    // Fifth: the kernel's boot id, the same in every container of the machine: a heartbeat kept
    // across a reboot (a state dir on disk) is then known for one of another boot.
    const up = procUptime() ?? uptime();
    const bootedAt = Math.round(atMs / 1000 - up);
    const boot = bootId();
    this.#write(this.dir, "heartbeat", `${Math.floor(atMs / 1000)} ${new Date(atMs).toISOString()} ${bootedAt} ${Math.round(atMs - up * 1000)}${boot ? ` ${boot}` : ""}\n`);
  }

  /** The daemon that owns the files it writes here: its lock's socket name, once it holds the lock. */
  daemonId = "";

  /** `<pid> <daemon id>`: which daemon wrote it (the helper only checks that it exists). */
  writePid(pid: number): void {
    this.#write(this.dir, "daemon.pid", `${pid} ${this.daemonId}\n`);
  }

  /** Removes the pid file if this daemon wrote it. */
  removePid(): void {
    const file = join(this.dir, "daemon.pid");
    try {
      if (readFileSync(file, "utf8").trim().split(" ")[1] === this.daemonId) unlinkSync(file);
    } catch {
      // Already gone.
    }
  }

  // A deleted state dir is recreated (and checked again) once before giving up.
  /** Throws (a StoreError with a hint) unless a file can be written here now: full, read-only … */
  probeWritable(): void {
    this.#write(this.dir, ".reload-probe", "");
    rmSync(join(this.dir, ".reload-probe"), { force: true });
  }

  #write(dir: string, name: string, data: string): void {
    const { gid } = this.#access;
    try {
      writeFileAtomic(join(dir, name), data, this.fileMode, gid);
    } catch (error) {
      if (!(error instanceof StoreError) || !(error.cause as NodeJS.ErrnoException | undefined)?.code?.startsWith("ENOENT")) throw error;
      this.init();
      ensurePrivateDir(dir, this.#access);
      writeFileAtomic(join(dir, name), data, this.fileMode, gid);
    }
  }
}

function procUptime(): number | undefined {
  try {
    const up = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    return Number.isFinite(up) ? up : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The shim reads only this, on every git call: one line per host however many providers,
 * `<origin> <ssh|-> <prefix>…`: `ssh` where that host's SSH URLs go over HTTPS, then the path
 * prefixes the keeper serves there (`/acme/` for a listed owner, the provider's path prefix
 * for one serving any owner). The shim scopes every override to these.
 */
export const MAX_SERVED_PREFIXES = 16;

export function originsText(routes: readonly Route[]): string {
  const lines = [...new Set(routes.map((r) => r.origin))].map((origin) => {
    const mine = routes.filter((r) => r.origin === origin);
    const prefixes = new Set<string>();
    for (const r of mine) {
      if (!r.owners) prefixes.add(r.pathPrefix);
      else for (const owner of r.owners) if (`/${owner}/`.startsWith(r.pathPrefix)) prefixes.add(`/${owner}/`);
    }
    // A prefix inside another adds nothing: the shorter one covers it.
    let kept = [...prefixes].filter((p) => ![...prefixes].some((q) => q !== p && p.startsWith(q))).sort();
    // The shim adds three config entries per prefix to every git call: past this many, the
    // whole host (docs/how-it-works.md).
    if (kept.length > MAX_SERVED_PREFIXES) kept = ["/"];
    return [origin, mine.some((r) => r.sshToHttps) ? "ssh" : "-", ...kept].join(" ");
  });
  return `${lines.join("\n")}\n`;
}

let bootIdRead: string | undefined | null = null;

/** /proc/sys/kernel/random/boot_id (a UUID), or undefined where it cannot be read. */
function bootId(): string | undefined {
  if (bootIdRead === null) {
    try {
      const text = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      bootIdRead = /^[0-9a-f-]{36}$/.test(text) ? text : undefined;
    } catch {
      bootIdRead = undefined;
    }
  }
  return bootIdRead;
}
