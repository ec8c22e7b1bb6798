import type { KeeperConfig } from "../config/keeper-config.ts";
import { describeError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { Redactor } from "../log/redact.ts";
import { noMetrics, type MetricsSink } from "../metrics/metrics-sink.ts";
import { createProvider, loadProviders } from "../providers/provider-registry.ts";
import type { TokenProvider } from "../providers/token-provider.ts";
import { acquireDaemonLock, holdsDaemonLock, listenWhileAlive, newSocketName, releaseDaemonLock } from "../store/daemon-lock.ts";
import { pidNamespace } from "../store/heartbeat.ts";
import { TokenStore } from "../store/token-store.ts";
import { systemClock, type Clock } from "./clock.ts";
import { handleRequest } from "./handle-request.ts";
import { limitConcurrency } from "./limit-concurrency.ts";
import { ProviderSupervisor } from "./provider-supervisor.ts";
import { RequestQueue } from "./request-queue.ts";
import { StatePublisher } from "./state-publisher.ts";

/** A wall clock that moved this much more (or less) than the monotonic one jumped. */
const CLOCK_JUMP_MS = 2_000;
/**
 * How often the offset is compared: the helper tells the time from the heartbeat, so a clock set
 * forward is seen there no later than this after it (a suspend at once: /proc/uptime counts it).
 */
const CLOCK_WATCH_MS = 250;

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

/**
 * The long-running keeper, wired together: the providers and their token slots (supervisor),
 * requests from sh (queue and handler), and what it shows through the state dir (publisher).
 */
export class Daemon {
  readonly store: TokenStore;
  readonly #options: DaemonOptions;
  readonly #clock: Clock;
  readonly #supervisor: ProviderSupervisor;
  readonly #publisher: StatePublisher;
  readonly #queue: RequestQueue;
  readonly #lockOwner = { pid: process.pid, pidNamespace: pidNamespace() };
  #alive: { close(): Promise<void> } | undefined;
  #clockWatch: NodeJS.Timeout | undefined;
  /** Set once this daemon holds the state dir's lock; a daemon without it touches nothing there. */
  #lock: { generation: number; socket: string } | undefined;

  constructor(options: DaemonOptions) {
    const { config, log, redactor } = options;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.store = new TokenStore(options.stateDir, config.stateGid);
    const metrics = options.metrics ?? noMetrics;
    this.#supervisor = new ProviderSupervisor(config, options.providers ?? config.providers.map((p) => createProvider(p, log)), {
      store: this.store,
      clock: this.#clock,
      log,
      redactor,
      metrics,
      limit: limitConcurrency(config.mintConcurrency),
      create: (p) => createProvider(p, log),
      onChange: () => this.#publisher.statusSoon(),
      onRoutes: () => this.#publisher.routes(),
    });
    this.#publisher = new StatePublisher(this.store, this.#supervisor, this.#clock, log);
    // The status file is current by the time a requester sees its request done.
    const refreshes = new Map<string, number>();
    const handle = (r: Parameters<typeof handleRequest>[0]) =>
      handleRequest(r, { supervisor: this.#supervisor, log, redactor, metrics, refreshes, refreshIntervalMs: config.remintIntervalMs, now: () => this.#clock.now() }).finally(() =>
        // The CLI (the keeper's own user) reads it once its request is done; others' requests
        // rewrite it at most once a second.
        r.own ? this.#publisher.status() : this.#publisher.statusSoon(),
      );
    this.#queue = new RequestQueue(this.store.requestsDir, handle, log, {
      answers: this.store.answersDir,
      mode: this.store.fileMode,
      gid: this.store.gid,
      redact: (text) => redactor.redact(text),
      refused: (reason) => metrics.requestRefused(reason),
    });
  }

  /** Returns once every configured owner has a token or a recorded failure. */
  async start(): Promise<void> {
    const { log, config } = this.#options;
    this.store.init();
    // Listening before taking the lock: a lock never names a socket that does not answer yet.
    const socket = newSocketName();
    const alive = await listenWhileAlive(this.store.dir, socket, (error) =>
      log.warn("cannot listen on the lock's socket: a daemon restarted in another container waits 30 s after this one dies", { error: describeError(error) }),
    );
    try {
      this.#lock = await acquireDaemonLock(this.store.dir, this.#lockOwner, Date.now(), 0o600, socket);
    } catch (error) {
      await alive.close();
      throw error;
    }
    this.#alive = alive;
    this.store.daemonId = this.#lock.socket;
    this.store.removeLeftovers();
    this.store.writePid(process.pid);
    this.store.pruneProviders(new Set(this.#supervisor.names));
    this.#supervisor.sweepTokenFiles();
    this.#publisher.routes();
    await this.#queue.start();
    this.#publisher.start();
    this.#watchClock();
    log.info("daemon started", { pid: process.pid, stateDir: this.store.dir, config: config.source, providers: this.#supervisor.names });
    await this.#supervisor.startAll();
    this.#publisher.status();
  }

  async stop(): Promise<void> {
    const lock = this.#lock;
    if (!lock) {
      // Refused at the lock (or never started): the state dir is another daemon's.
      this.#options.log.info("daemon stopped without having started");
      return;
    }
    clearInterval(this.#clockWatch);
    await this.#supervisor.stopAll();
    await this.#queue.stop();
    // A daemon judged gone and replaced leaves the new one's status alone.
    this.#publisher.stop(holdsDaemonLock(this.store.dir, lock));
    this.store.removePid();
    releaseDaemonLock(this.store.dir, lock);
    // Answering until the lock is gone: a daemon starting meanwhile is refused, not let in early.
    await this.#alive?.close();
    this.#options.log.info("daemon stopped");
  }

  /**
   * Timers run on the monotonic clock, which counts neither a suspend nor a clock set or
   * restored (a VM snapshot): four times a second the wall clock's offset from it is compared, and a
   * jump rewrites the heartbeat (the helper tells the time from it) and re-checks every token at
   * once; every 10 s the tokens are re-checked anyway.
   */
  #watchClock(): void {
    let offset = Date.now() - performance.now();
    let ticks = 0;
    this.#clockWatch = setInterval(() => {
      const next = Date.now() - performance.now();
      const jumped = Math.abs(next - offset) > CLOCK_JUMP_MS;
      if (jumped) {
        this.#options.log.warn("the wall clock jumped; re-checking every token", { byMs: Math.round(next - offset) });
        if (next < offset) this.#supervisor.clockSetBack(next - offset);
        this.#publisher.beat();
      }
      offset = next;
      if (jumped || ++ticks % (10_000 / CLOCK_WATCH_MS) === 0) this.#supervisor.recheck();
    }, CLOCK_WATCH_MS);
    this.#clockWatch.unref();
  }

  /** Token expiries for the metrics. */
  tokenExpiries(): { provider: string; owner: string; expiresAt: string | null }[] {
    return this.#supervisor.slots.map((s) => s.status());
  }

  /** Why the daemon is unhealthy (for /healthz), or undefined. */
  get problem(): string | undefined {
    return this.#supervisor.problem;
  }

  get healthy(): boolean {
    return this.#supervisor.healthy;
  }

  /** Applies a new, already validated config (see ProviderSupervisor.reload). */
  async reload(next: KeeperConfig): Promise<void> {
    // The shim and the helper find the state dir from the same config file: a daemon that went
    // on in the old one would leave them without tokens. Said plainly; a restart applies it.
    const { config } = this.#options;
    if (next.stateDir !== config.stateDir || next.stateGid !== config.stateGid) {
      this.reloadRejected([
        next.stateDir !== config.stateDir
          ? `stateDir changed from '${config.stateDir ?? "(default)"}' to '${next.stateDir ?? "(default)"}': a running daemon cannot move its state dir, and git through the shim now looks in the new one; restart the daemon (systemctl restart git-token-keeper) to apply it`
          : "stateGroup changed: a running daemon cannot change its state dir's group; restart the daemon to apply it",
      ]);
      return;
    }
    // Nothing changes unless the state dir can take the new routes: a full or read-only state
    // dir rejects the reload, and the running config stays as it was.
    try {
      this.store.probeWritable();
    } catch (error) {
      this.reloadRejected([`the state dir cannot be written (${describeError(error)}); the reload is applied once it can, on the next SIGHUP or change`]);
      return;
    }
    await loadProviders(next.providers);
    const plan = await this.#supervisor.reload(next);
    this.#publisher.lastReload = { at: new Date(this.#clock.now()).toISOString(), ok: true, error: null };
    this.#options.log.info("config reloaded", { config: next.source, ...plan });
    this.#publisher.status();
  }

  /** A reload whose file did not validate: the old config keeps running, and status says why. */
  reloadRejected(problems: readonly string[]): void {
    this.#publisher.lastReload = { at: new Date(this.#clock.now()).toISOString(), ok: false, error: problems.join("; ") };
    this.#options.log.error("config reload rejected; the previous config keeps running", { problems });
    this.#publisher.status();
  }
}
