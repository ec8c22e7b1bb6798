import type { KeeperConfig, ProviderConfig } from "../config/keeper-config.ts";
import { describeError, ProviderError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { Redactor } from "../log/redact.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import { serves, SHARED_SCOPE, type TokenProvider } from "../providers/token-provider.ts";
import type { Route, TokenStore } from "../store/token-store.ts";
import type { Clock } from "./clock.ts";
import { planReload } from "./plan-reload.ts";
import { backoffDelay } from "./refresh-schedule.ts";
import { servedUntil } from "../store/token-file.ts";
import { providerConfigHash, TokenSlot } from "./token-slot.ts";

/**
 * How long a stop or a reload waits for mints in flight: under Kubernetes' default 30-second
 * grace period, and systemd's 90-second stop timeout.
 */
export const STOP_WAIT_MS = 25_000;

/** Owners (or repositories) one provider learns on first use, at most. */
export const MAX_LEARNED_SCOPES = 1_000;

/** A learned owner that never got a token and keeps failing is forgotten this long after its last ask. */
export const FORGET_FAILING_MS = 10 * 60_000;

export interface ProviderState {
  provider: TokenProvider;
  /** Why the owners to serve could not be found yet (installation lookup failing). */
  error: string | undefined;
  /** Set when a reload dropped or replaced it: whatever it was still doing stops there. */
  retired?: boolean;
}

export interface SupervisorDeps {
  store: TokenStore;
  clock: Clock;
  log: Logger;
  redactor: Redactor;
  metrics: MetricsSink;
  limit: <T>(task: () => Promise<T>) => Promise<T>;
  create: (config: ProviderConfig) => TokenProvider;
  /** Something a status reader would want to see changed. */
  onChange: () => void;
  /** The providers or their owners changed: routes must be written. */
  onRoutes: () => void;
}

/**
 * Starts, retries, reloads and retires providers, and keeps one TokenSlot per provider and
 * owner. Every step after an `await` checks that its provider is still the current one: a
 * reload may have replaced it meanwhile.
 */
export class ProviderSupervisor {
  readonly #deps: SupervisorDeps;
  readonly #providers = new Map<string, ProviderState>();
  readonly #slots = new Map<string, TokenSlot>();
  /** Slot key → when a request last asked for it (any-owner providers forget the others). */
  readonly #asked = new Map<string, number>();
  #config: KeeperConfig;
  #stopping = false;
  #forgetTimer: unknown;
  #reloading: Promise<void> | undefined;

  readonly #startedAt: number;

  constructor(config: KeeperConfig, providers: TokenProvider[], deps: SupervisorDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#startedAt = deps.clock.now();
    for (const provider of providers) this.#providers.set(provider.config.name, { provider, error: undefined });
  }

  get config(): KeeperConfig {
    return this.#config;
  }

  get names(): string[] {
    return [...this.#providers.keys()];
  }

  get states(): ProviderState[] {
    return [...this.#providers.values()];
  }

  get slots(): TokenSlot[] {
    return [...this.#slots.values()];
  }

  provider(name: string): TokenProvider | undefined {
    return this.#providers.get(name)?.provider;
  }

  async startAll(): Promise<void> {
    this.#scheduleForget();
    await Promise.allSettled(this.states.map((state) => this.#start(state)));
  }

  async stopAll(): Promise<void> {
    this.#stopping = true;
    this.#deps.clock.clearTimeout(this.#forgetTimer);
    await this.#stopSlots([...this.#slots.values()], "stopping");
    await Promise.allSettled(this.states.map((s) => s.provider.dispose?.()));
  }

  /**
   * Stops slots and waits (at most STOP_WAIT_MS) for the mints in flight of sources that rotate a
   * secret: a refresh GitLab received used up the saved refresh token; only its answer holds the next.
   */
  async #stopSlots(slots: TokenSlot[], why: string): Promise<void> {
    // Other sources' mints are dropped at once: nothing is lost, and a hung one cannot hold a stop.
    const minting = slots.filter((s) => s.minting && s.provider.rotatesSecret).map((s) => s.name);
    const settled = Promise.allSettled(slots.map((s) => (s.provider.rotatesSecret ? s.stop() : void s.stop())));
    if (!minting.length) return;
    this.#deps.log.info(`${why}: waiting for the mints in flight`, { slots: minting, atMostMs: STOP_WAIT_MS });
    let timer: unknown;
    const waited = await Promise.race([
      settled.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = this.#deps.clock.setTimeout(() => resolve(false), STOP_WAIT_MS);
      }),
    ]);
    this.#deps.clock.clearTimeout(timer);
    if (!waited) this.#deps.log.warn(`${why}: mints still in flight after ${STOP_WAIT_MS / 1000}s; a rotated secret they bring back is lost`, { slots: minting });
  }

  /**
   * Removes every token file that no slot of the current providers may serve: of another
   * provider's settings (gitUrl, owners, permissions …: its `config=` fingerprint), of an owner
   * no longer served, unreadable, or past serving. Called before the routes are written, so a
   * file never reaches a host it was not minted for.
   */
  sweepTokenFiles(): void {
    const { store, clock, log } = this.#deps;
    const now = clock.now();
    for (const { provider } of this.states) {
      const name = provider.config.name;
      const hash = providerConfigHash(provider.config);
      const owners = provider.servedOwners();
      for (const scope of store.listOwners(name)) {
        const record = store.readToken(name, scope);
        // Owners not learned yet (an installation looked up at start) rule out nothing.
        const served = serves(provider, scope) || (provider.config.perOwner && owners?.length === 0);
        if (record && record.config === hash && served && servedUntil(record) * 1000 > now) continue;
        try {
          store.removeToken(name, scope);
          log.info("removed a token file minted for other settings, or past serving", { slot: `${name}/${scope}` });
        } catch (error) {
          log.error("cannot remove a token file", { slot: `${name}/${scope}`, error: describeError(error) });
        }
      }
    }
  }

  /** The wall clock was set back (see TokenSlot.clockSetBack). */
  clockSetBack(ms: number): void {
    if (this.#stopping) return;
    for (const slot of this.#slots.values()) slot.clockSetBack(ms);
  }

  /** Mints what is due and drops what expired, by the wall clock (see TokenSlot.recheck). */
  recheck(): void {
    if (this.#stopping) return;
    for (const slot of this.#slots.values()) slot.recheck();
  }

  /** Healthy when every provider found its owners and no token is failing to mint. */
  get healthy(): boolean {
    return this.states.every((p) => !p.error) && this.slots.every((s) => !s.failing);
  }

  /** Why it is unhealthy, or undefined. */
  get problem(): string | undefined {
    const provider = this.states.find((p) => p.error);
    if (provider) return `provider ${provider.provider.config.name}: ${provider.error}`;
    const slot = this.slots.find((s) => s.failing);
    return slot ? `${slot.name}: ${slot.status().lastError}` : undefined;
  }

  routes(): Route[] {
    return this.states.map(({ provider }) => ({
      origin: provider.config.gitOrigin,
      provider: provider.config.name,
      pathPrefix: provider.config.pathPrefix,
      perOwner: provider.config.perOwner,
      perRepository: provider.config.perRepository,
      owners: provider.servedOwners(),
      sshToHttps: provider.config.sshToHttps,
    }));
  }

  /**
   * Applies a new, already validated config: providers whose settings did not change keep
   * their tokens; removed ones are stopped and their tokens deleted; new and changed ones start.
   */
  async reload(next: KeeperConfig): Promise<{ unchanged: string[]; started: string[]; removed: string[] }> {
    const plan = planReload(this.#config, next);
    for (const label of plan.needsRestart) this.#deps.log.warn(`config reload: ${label} changed; restart the daemon to apply it`);
    this.#config = next;
    let done = () => {};
    this.#reloading = new Promise<void>((resolve) => (done = resolve));
    let started: ProviderState[];
    try {
      for (const name of plan.removed) await this.#retire(name, undefined);
      for (const config of plan.started) await this.#retire(config.name, config);
      started = plan.started.map((config) => {
        const state: ProviderState = { provider: this.#deps.create(config), error: undefined };
        this.#providers.set(config.name, state);
        return state;
      });
    } finally {
      this.#reloading = undefined;
      done();
    }
    this.#deps.onRoutes();
    void Promise.allSettled(started.map((state) => this.#start(state))).then(() => this.#deps.onChange());
    return { unchanged: plan.unchanged, started: plan.started.map((p) => p.name), removed: plan.removed };
  }

  /**
   * While a reload retires providers and starts their successors: a request that found no slot,
   * or a slot stopped under it, waits for this and asks again.
   */
  get reloading(): Promise<void> | undefined {
    return this.#reloading;
  }

  /**
   * The slot of a provider that is current, for an owner it serves, or undefined. A provider that
   * learns owners on first use keeps at most MAX_LEARNED_SCOPES of them: a build step naming
   * thousands of made-up owners in git URLs gets a refusal, not thousands of slots.
   */
  slotFor(name: string, owner: string): TokenSlot | undefined {
    const state = this.#providers.get(name);
    if (!state || !serves(state.provider, owner)) return undefined;
    if (!this.#slots.has(`${name}/${owner}`) && this.#learns(state.provider)) {
      const learned = [...this.#slots.values()].filter((s) => s.provider === state.provider).length;
      if (learned >= MAX_LEARNED_SCOPES) {
        throw new ProviderError(`provider '${name}' already serves ${MAX_LEARNED_SCOPES} owners or repositories learned on first use; '${owner}' waits until one is forgotten`, {
          transient: true,
          hint: "list the owners the provider serves under owners:, or lower forgetOwnerAfter",
        });
      }
    }
    this.#asked.set(`${name}/${owner}`, this.#deps.clock.now());
    return this.#slot(state, owner);
  }

  /**
   * Any-owner providers learn owners on first use (from anything that can run git or write a
   * request); an owner nobody asked for in forgetOwnerAfter is dropped, its token deleted, so
   * made-up or uninstalled owners are not refreshed (and failing) forever.
   */
  forgetIdleOwners(): string[] {
    const now = this.#deps.clock.now();
    const forgotten: string[] = [];
    for (const [key, slot] of this.#slots) {
      const provider = slot.provider;
      if (!this.#learns(provider)) continue;
      const asked = this.#asked.get(key) ?? this.#startedAt;
      // One that never had a token and keeps failing (a made-up owner, an App not installed
      // there) goes after FORGET_FAILING_MS, not after a day of retries.
      const after = slot.failing && !slot.current ? Math.min(FORGET_FAILING_MS, this.#config.forgetOwnerAfterMs) : this.#config.forgetOwnerAfterMs;
      if (now - asked < after) continue;
      void slot.stop().then(() => slot.forgetSecrets());
      this.#slots.delete(key);
      this.#asked.delete(key);
      try {
        this.#deps.store.removeToken(provider.config.name, slot.owner);
      } catch (error) {
        this.#deps.log.warn("cannot remove a forgotten owner's token", { slot: slot.name, error: describeError(error) });
      }
      forgotten.push(slot.name);
    }
    if (forgotten.length) {
      this.#deps.log.info("forgot owners nobody asked for", { slots: forgotten, after: `${Math.round(this.#config.forgetOwnerAfterMs / 60_000)}m` });
      this.#deps.onChange();
    }
    return forgotten;
  }

  // Repositories are always learned on first use, whether the owners are listed or not.
  #learns(provider: TokenProvider): boolean {
    return provider.config.perOwner && (provider.servedOwners() === undefined || provider.config.perRepository === true);
  }

  #scheduleForget(): void {
    const every = Math.min(this.#config.forgetOwnerAfterMs / 4, FORGET_FAILING_MS / 2);
    this.#forgetTimer = this.#deps.clock.setTimeout(() => {
      if (this.#stopping) return;
      this.forgetIdleOwners();
      this.#scheduleForget();
    }, every);
  }

  /** `next`: the settings it restarts under, or undefined when it is removed. */
  async #retire(name: string, next: ProviderConfig | undefined): Promise<void> {
    const state = this.#providers.get(name);
    if (!state) return;
    state.retired = true;
    const stopped: TokenSlot[] = [];
    for (const [key, slot] of this.#slots) {
      if (slot.provider === state.provider) {
        stopped.push(slot);
        this.#slots.delete(key);
      }
    }
    this.#providers.delete(name);
    // Its successor reads the same refresh-token file: not before the answer in flight is saved.
    await this.#stopSlots(stopped, `retiring provider ${name}`);
    for (const slot of stopped) slot.forgetSecrets();
    await state.provider.dispose?.();
    // Tokens minted for settings that no longer hold (another gitUrl, narrower permissions …)
    // are gone before the routes change; a change of timing alone (refreshBefore …) keeps them.
    if (!next) this.#deps.store.pruneProviders(new Set(this.#providers.keys()));
    else if (providerConfigHash(next) !== providerConfigHash(state.provider.config)) this.#deps.store.removeProvider(name);
  }

  #gone(state: ProviderState): boolean {
    return this.#stopping || state.retired === true || this.#providers.get(state.provider.config.name) !== state;
  }

  async #start(state: ProviderState, attempt = 1): Promise<void> {
    const { provider } = state;
    const { log, clock, redactor } = this.#deps;
    let owners: string[];
    try {
      owners = await provider.initialOwners();
      state.error = undefined;
    } catch (error) {
      if (this.#gone(state)) return;
      state.error = redactor.redact(describeError(error));
      const transient = !(error instanceof ProviderError) || error.transient;
      const delay = backoffDelay(attempt, {
        permanent: !transient,
        minMs: this.#config.retryMinMs,
        maxMs: this.#config.retryMaxMs,
        random: clock.random(),
        retryAfterMs: error instanceof ProviderError ? error.retryAfterMs : undefined,
      });
      log.warn("cannot find the owners to serve", { provider: provider.config.name, error: state.error, retryInMs: Math.round(delay) });
      this.#deps.onChange();
      clock.setTimeout(() => void (this.#gone(state) ? undefined : this.#start(state, attempt + 1)), delay);
      return;
    }
    if (this.#gone(state)) return;
    this.#deps.onRoutes();
    await provider.watch?.(() => void (this.#gone(state) ? undefined : this.#slot(state, SHARED_SCOPE).mint("source changed").catch(() => undefined)));
    // Retired while its watcher was being set up: nothing of it may keep running.
    if (this.#gone(state)) {
      await provider.dispose?.();
      return;
    }
    // Owners minted on first use by an earlier run are resumed as well.
    const resumed = this.#deps.store.listOwners(provider.config.name).filter((o) => serves(provider, o));
    const all = provider.config.perOwner ? [...new Set([...owners, ...resumed])] : [SHARED_SCOPE];
    await Promise.allSettled(all.map((owner) => this.#slot(state, owner).start("start")));
  }

  // A slot belongs to one provider object: one left by a provider that a reload replaced is
  // stopped and replaced, never handed the new provider's requests.
  #slot(state: ProviderState, owner: string): TokenSlot {
    const { provider } = state;
    const key = `${provider.config.name}/${owner}`;
    let slot = this.#slots.get(key);
    if (slot && slot.provider !== provider) {
      void slot.stop();
      slot = undefined;
    }
    if (!slot) {
      const { store, clock, log, redactor, limit, metrics, onChange } = this.#deps;
      slot = new TokenSlot(provider, owner, this.#config, { store, clock, log, redactor, limit, onChange, metrics });
      if (!this.#gone(state)) this.#slots.set(key, slot);
    }
    return slot;
  }
}
