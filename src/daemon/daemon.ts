import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KeeperConfig } from "../config/keeper-config.ts";
import { describeError, ProviderError, StoreError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { Redactor } from "../log/redact.ts";
import { createProvider } from "../providers/provider-registry.ts";
import { serves, SHARED_SCOPE, type TokenProvider } from "../providers/token-provider.ts";
import { noMetrics, type MetricsSink } from "../metrics/metrics-sink.ts";
import { acquireDaemonLock, releaseDaemonLock } from "../store/daemon-lock.ts";
import { HEARTBEAT_MS, pidNamespace } from "../store/heartbeat.ts";
import { TokenStore, type Route } from "../store/token-store.ts";
import { systemClock, type Clock } from "./clock.ts";
import { limitConcurrency } from "./limit-concurrency.ts";
import { planReload } from "./plan-reload.ts";
import { backoffDelay } from "./refresh-schedule.ts";
import { RequestQueue, type KeeperRequest } from "./request-queue.ts";
import { TokenSlot } from "./token-slot.ts";

export interface DaemonOptions {
  config: KeeperConfig;
  stateDir: string;
  log: Logger;
  redactor: Redactor;
  clock?: Clock;
  /** Built from the config when not given. */
  providers?: TokenProvider[];
  metrics?: MetricsSink;
}


interface ProviderState {
  provider: TokenProvider;
  /** Why the owners to serve could not be found yet (installation lookup failing). */
  error: string | undefined;
  /** Set when a reload dropped or replaced it: its pending retries do nothing. */
  retired?: boolean;
}


/** The long-running keeper: one TokenSlot per provider and owner, a request queue, the status file. */
export class Daemon {
  readonly store: TokenStore;
  readonly #options: DaemonOptions;
  readonly #clock: Clock;
  readonly #providers = new Map<string, ProviderState>();
  readonly #slots = new Map<string, TokenSlot>();
  readonly #queue: RequestQueue;
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #startedAt = new Date();
  readonly #pidNamespace = pidNamespace();
  readonly #lockOwner = { pid: process.pid, pidNamespace: this.#pidNamespace };
  #heartbeat: NodeJS.Timeout | undefined;
  #config: KeeperConfig;
  #lastReload: { at: string; ok: boolean; error: string | null } | null = null;
  #statusPending = false;
  #stopping = false;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#config = options.config;
    this.#clock = options.clock ?? systemClock;
    this.store = new TokenStore(options.stateDir, options.config.stateGid);
    this.#limit = limitConcurrency(options.config.mintConcurrency);
    // The status file is current by the time a requester sees its request done.
    this.#queue = new RequestQueue(this.store.requestsDir, (r) => this.#handle(r).finally(() => this.#writeStatus()), options.log, {
      mode: this.store.fileMode,
      gid: this.store.gid,
      redact: (text) => options.redactor.redact(text),
    });
    const providers = options.providers ?? options.config.providers.map((p) => createProvider(p, options.log));
    for (const provider of providers) this.#providers.set(provider.config.name, { provider, error: undefined });
  }

  /** Returns once every configured owner has a token or a recorded failure. */
  async start(): Promise<void> {
    const { log, config } = this.#options;
    this.store.init();
    acquireDaemonLock(this.store.dir, this.#lockOwner, Date.now(), 0o600);
    this.store.removeLeftovers();
    this.store.writePid(process.pid);
    this.store.pruneProviders(new Set(this.#providers.keys()));
    this.#writeRoutes();
    await this.#queue.start();
    // A small heartbeat file says the daemon is alive; status.json is rewritten only on change,
    // which keeps an idle daemon with a thousand tokens idle.
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#beat();
    this.#writeStatus();
    log.info("daemon started", {
      pid: process.pid,
      stateDir: this.store.dir,
      config: config.source,
      providers: [...this.#providers.keys()],
    });
    await Promise.allSettled([...this.#providers.values()].map((state) => this.#startProvider(state)));
    this.#writeStatus();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const slot of this.#slots.values()) slot.stop();
    await this.#queue.stop();
    await Promise.allSettled([...this.#providers.values()].map((s) => s.provider.dispose?.()));
    try {
      this.#writeStatusNow("stopped");
    } catch {
      // The state dir may be gone; nothing else to tidy.
    }
    this.store.removePid();
    releaseDaemonLock(this.store.dir, this.#lockOwner);
    this.#options.log.info("daemon stopped");
  }

  /** Token expiries for the metrics. */
  tokenExpiries(): { provider: string; owner: string; expiresAt: string | null }[] {
    return [...this.#slots.values()].map((s) => s.status());
  }

  /** Why the daemon is unhealthy (for /healthz), or undefined. */
  get problem(): string | undefined {
    const provider = [...this.#providers.values()].find((p) => p.error);
    if (provider) return `provider ${provider.provider.config.name}: ${provider.error}`;
    const slot = [...this.#slots.values()].find((s) => s.failing);
    return slot ? `${slot.name}: ${slot.status().lastError}` : undefined;
  }

  /** Healthy when every provider found its owners and no token is failing to mint. */
  get healthy(): boolean {
    return [...this.#providers.values()].every((p) => !p.error) && [...this.#slots.values()].every((s) => !s.failing);
  }

  /**
   * Applies a new, already validated config: providers whose settings did not change keep
   * their tokens; removed ones are stopped and their tokens deleted; new and changed ones start.
   */
  async reload(next: KeeperConfig): Promise<void> {
    const { log } = this.#options;
    // Nothing changes unless the state dir can take the new routes: a full or read-only state
    // dir rejects the reload, and the running config stays as it was.
    try {
      this.store.probeWritable();
    } catch (error) {
      this.reloadRejected([`the state dir cannot be written (${describeError(error)}); the reload is applied once it can, on the next SIGHUP or change`]);
      return;
    }
    const plan = planReload(this.#config, next);
    for (const label of plan.needsRestart) log.warn(`config reload: ${label} changed; restart the daemon to apply it`);
    this.#config = next;
    for (const name of [...plan.removed, ...plan.started.map((p) => p.name)]) await this.#retire(name, plan.removed.includes(name));
    const started = plan.started.map((config) => {
      const state: ProviderState = { provider: createProvider(config, log), error: undefined };
      this.#providers.set(config.name, state);
      return state;
    });
    this.#writeRoutes();
    this.#lastReload = { at: new Date(this.#clock.now()).toISOString(), ok: true, error: null };
    log.info("config reloaded", { config: next.source, unchanged: plan.unchanged, started: plan.started.map((p) => p.name), removed: plan.removed });
    await Promise.allSettled(started.map((state) => this.#startProvider(state)));
    this.#writeStatus();
  }

  /** A reload whose file did not validate: the old config keeps running, and status says why. */
  reloadRejected(problems: readonly string[]): void {
    this.#lastReload = { at: new Date(this.#clock.now()).toISOString(), ok: false, error: problems.join("; ") };
    this.#options.log.error("config reload rejected; the previous config keeps running", { problems });
    this.#writeStatus();
  }

  async #retire(name: string, deleteTokens: boolean): Promise<void> {
    const state = this.#providers.get(name);
    if (!state) return;
    state.retired = true;
    for (const [key, slot] of this.#slots) {
      if (slot.provider === state.provider) {
        slot.stop();
        this.#slots.delete(key);
      }
    }
    await state.provider.dispose?.();
    this.#providers.delete(name);
    if (deleteTokens) this.store.pruneProviders(new Set(this.#providers.keys()));
  }

  async #startProvider(state: ProviderState, attempt = 1): Promise<void> {
    const { provider } = state;
    let owners: string[];
    try {
      owners = await provider.initialOwners();
      state.error = undefined;
    } catch (error) {
      if (this.#stopping || state.retired) return;
      state.error = this.#options.redactor.redact(describeError(error));
      const transient = !(error instanceof ProviderError) || error.transient;
      const delay = backoffDelay(attempt, {
        permanent: !transient,
        minMs: this.#config.retryMinMs,
        maxMs: this.#config.retryMaxMs,
        random: this.#clock.random(),
        retryAfterMs: error instanceof ProviderError ? error.retryAfterMs : undefined,
      });
      this.#options.log.warn("cannot find the owners to serve", { provider: provider.config.name, error: state.error, retryInMs: Math.round(delay) });
      this.#scheduleStatus();
      this.#clock.setTimeout(() => void (state.retired ? undefined : this.#startProvider(state, attempt + 1)), delay);
      return;
    }
    this.#writeRoutes();
    await provider.watch?.(() => void this.#slot(provider, SHARED_SCOPE).mint("source changed").catch(() => undefined));
    // Owners minted on first use by an earlier run are resumed as well.
    const resumed = this.store.listOwners(provider.config.name).filter((o) => serves(provider, o));
    const all = provider.config.perOwner ? [...new Set([...owners, ...resumed])] : [SHARED_SCOPE];
    await Promise.allSettled(all.map((owner) => this.#slot(provider, owner).start("start")));
  }

  #slot(provider: TokenProvider, owner: string): TokenSlot {
    const key = `${provider.config.name}/${owner}`;
    let slot = this.#slots.get(key);
    if (!slot) {
      const { log, redactor } = this.#options;
      slot = new TokenSlot(provider, owner, this.#config, {
        store: this.store,
        clock: this.#clock,
        log,
        redactor,
        limit: this.#limit,
        onChange: () => this.#scheduleStatus(),
        metrics: this.#options.metrics ?? noMetrics,
      });
      this.#slots.set(key, slot);
    }
    return slot;
  }

  async #handle(request: KeeperRequest): Promise<void> {
    const { log } = this.#options;
    if (request.kind === "retried") {
      (this.#options.metrics ?? noMetrics).shimRetried(request.provider);
      return;
    }
    if (request.kind === "refresh") {
      log.info("refresh requested", { provider: request.provider });
      const slots = [...this.#slots.values()].filter((s) => request.provider === "*" || s.provider.config.name === request.provider);
      if (request.provider !== "*" && !this.#providers.has(request.provider)) {
        throw new ProviderError(`no provider named '${request.provider}'`, { transient: false, hint: `known: ${[...this.#providers.keys()].join(", ")}` });
      }
      const results = await Promise.allSettled(slots.map((s) => s.mint("refresh")));
      const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${slots[i]?.name}: ${this.#options.redactor.redact(describeError(r.reason))}`] : []));
      if (failed.length) throw new ProviderError(failed.join("; "), { transient: true });
      return;
    }
    const state = this.#providers.get(request.provider);
    if (!state || !serves(state.provider, request.owner)) {
      throw new ProviderError(`provider '${request.provider}' does not serve '${request.owner}'`, {
        transient: false,
        hint: "add the owner to the provider's owners: list",
      });
    }
    const slot = this.#slot(state.provider, request.owner);
    if (request.kind === "remint") return slot.refused(request.serial);
    log.debug("token requested", { slot: slot.name });
    return slot.ensureFresh();
  }

  #routes(): Route[] {
    return [...this.#providers.values()].map(({ provider }) => ({
      origin: provider.config.gitOrigin,
      provider: provider.config.name,
      pathPrefix: provider.config.pathPrefix,
      perOwner: provider.config.perOwner,
      owners: provider.servedOwners(),
      sshToHttps: provider.config.sshToHttps,
    }));
  }

  #writeRoutes(): void {
    this.store.writeRoutes(this.#routes());
  }

  #scheduleStatus(): void {
    if (this.#statusPending || this.#stopping) return;
    this.#statusPending = true;
    setTimeout(() => {
      this.#statusPending = false;
      this.#writeStatus();
    }, 50).unref();
  }

  #beat(): void {
    try {
      this.#writeRoutesIfGrown();
      this.store.writeHeartbeat(this.#clock.now());
    } catch (error) {
      this.#options.log.error("cannot write the heartbeat", { error: describeError(error) });
    }
  }

  #writeStatus(): void {
    try {
      this.#writeRoutesIfGrown();
      this.#writeStatusNow("running");
    } catch (error) {
      this.#options.log.error("cannot write status", { error: describeError(error) });
    }
  }

  #routesText = "";

  // Routes change when an installation's account is learned; they and the pid file are also
  // written again when someone emptied the state dir, so the shim and helper find them.
  #writeRoutesIfGrown(): void {
    const text = JSON.stringify(this.#routes());
    const missing = ["routes", "origins", "daemon.pid", "status.json"].some((f) => !existsSync(join(this.store.dir, f)));
    if (text !== this.#routesText || missing) {
      if (missing && this.#routesText) this.#options.log.warn("the state dir lost its routes or pid file; wrote them again", { stateDir: this.store.dir });
      this.#routesText = text;
      this.#writeRoutes();
      this.store.writePid(process.pid);
      if (missing) this.#writeStatusNow("running");
    }
  }

  #writeStatusNow(state: "running" | "stopped"): void {
    this.store.writeStatus({
      version: 1,
      state,
      pid: process.pid,
      pidNamespace: this.#pidNamespace ?? null,
      startedAt: this.#startedAt.toISOString(),
      updatedAt: new Date(this.#clock.now()).toISOString(),
      config: this.#config.source,
      lastReload: this.#lastReload,
      healthy: this.healthy,
      providers: [...this.#providers.values()].map(({ provider, error }) => ({
        name: provider.config.name,
        type: provider.config.type,
        gitUrl: provider.config.gitOrigin,
        owners: provider.config.owners ?? null,
        error: error ?? null,
      })),
      tokens: [...this.#slots.values()].map((s) => s.status()),
    });
  }
}
