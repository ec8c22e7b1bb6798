import { existsSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import { HEARTBEAT_MS, pidNamespace } from "../store/heartbeat.ts";
import type { TokenStore } from "../store/token-store.ts";
import type { Clock } from "./clock.ts";
import type { ProviderSupervisor } from "./provider-supervisor.ts";

/** status.json is rewritten at most this often for changes nobody waits on. */
const STATUS_EVERY_MS = 1_000;

/** Tokens listed in status.json at most (the rest counted in `tokensOmitted`). */
export const MAX_STATUS_TOKENS = 200;

export interface LastReload {
  at: string;
  ok: boolean;
  error: string | null;
}

/**
 * What the daemon shows the others through the state dir: routes and origins (the shim and the
 * helper), the heartbeat every 10 s (alive), status.json when something changed (`status`),
 * and the pid file.
 */
export class StatePublisher {
  readonly #store: TokenStore;
  readonly #supervisor: ProviderSupervisor;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #startedAt = new Date();
  readonly #pidNamespace = pidNamespace();
  #heartbeat: NodeJS.Timeout | undefined;
  #statusPending = false;
  #stopped = false;
  #routesText = "";
  #lastStatusAt = 0;
  lastReload: LastReload | null = null;

  constructor(store: TokenStore, supervisor: ProviderSupervisor, clock: Clock, log: Logger) {
    this.#store = store;
    this.#supervisor = supervisor;
    this.#clock = clock;
    this.#log = log;
  }

  /** Starts the heartbeat; status.json is rewritten only on change, which keeps an idle daemon idle. */
  start(): void {
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#beat();
    this.status();
  }

  /** Stops the heartbeat; writes status.json as stopped when the state dir is still this daemon's. */
  stop(ownsStateDir = true): void {
    this.#stopped = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (!ownsStateDir) return;
    try {
      this.#writeStatus("stopped");
    } catch {
      // The state dir may be gone; nothing else to tidy.
    }
  }

  routes(): void {
    this.#store.writeRoutes(this.#supervisor.routes());
  }

  /** Writes status.json now (errors are logged: a full state dir must not stop the daemon). */
  status(): void {
    // Once stopped (a SIGTERM while starting, say), nothing is written again.
    if (this.#stopped) return;
    try {
      this.#routesIfGrown();
      this.#writeStatus("running");
    } catch (error) {
      this.#log.error("cannot write status", { error: describeError(error) });
    }
  }

  /**
   * Writes status.json soon, once for a burst of changes, and at most once a second: a flood of
   * requests (anyone in the state group can write them) does not rewrite it after each.
   */
  statusSoon(): void {
    if (this.#statusPending || this.#stopped) return;
    this.#statusPending = true;
    const wait = Math.max(50, this.#lastStatusAt + STATUS_EVERY_MS - Date.now());
    setTimeout(() => {
      this.#statusPending = false;
      this.status();
    }, wait).unref();
  }

  /** Rewrites the heartbeat now (the wall clock jumped: the helper tells the time from it). */
  beat(): void {
    if (!this.#stopped) this.#beat();
  }

  #beat(): void {
    try {
      this.#routesIfGrown();
      this.#store.writeHeartbeat(this.#clock.now());
    } catch (error) {
      this.#log.error("cannot write the heartbeat", { error: describeError(error) });
    }
  }

  // Routes change when an installation's account is learned; they and the pid file are also
  // written again when someone emptied the state dir, so the shim and helper find them.
  #routesIfGrown(): void {
    const text = JSON.stringify(this.#supervisor.routes());
    const missing = ["routes", "origins", "daemon.pid", "status.json"].some((f) => !existsSync(join(this.#store.dir, f)));
    if (text === this.#routesText && !missing) return;
    if (missing && this.#routesText) this.#log.warn("the state dir lost its routes or pid file; wrote them again", { stateDir: this.#store.dir });
    this.#routesText = text;
    this.routes();
    this.#store.writePid(process.pid);
    if (missing) this.#writeStatus("running");
  }

  #writeStatus(state: "running" | "stopped"): void {
    const supervisor = this.#supervisor;
    this.#lastStatusAt = Date.now();
    const slots = supervisor.slots;
    this.#store.writeStatus({
      version: 1,
      state,
      pid: process.pid,
      daemonId: this.#store.daemonId,
      pidNamespace: this.#pidNamespace ?? null,
      startedAt: this.#startedAt.toISOString(),
      updatedAt: new Date(this.#clock.now()).toISOString(),
      config: supervisor.config.source,
      lastReload: this.lastReload,
      healthy: supervisor.healthy,
      providers: supervisor.states.map(({ provider, error }) => ({
        name: provider.config.name,
        type: provider.config.type,
        gitUrl: provider.config.gitOrigin,
        owners: provider.config.owners ?? null,
        error: error ?? null,
      })),
      // Bounded: a provider learning owners on first use may have a thousand.
      tokens: slots.slice(0, MAX_STATUS_TOKENS).map((s) => s.status()),
      tokensOmitted: Math.max(0, slots.length - MAX_STATUS_TOKENS),
    });
  }
}
