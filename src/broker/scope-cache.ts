import { ProviderError } from "../errors/keeper-error.ts";
import { limitConcurrency } from "../daemon/limit-concurrency.ts";
import type { Clock } from "../daemon/clock.ts";
import { providerConfigHash, TokenSlot, type SlotStore } from "../daemon/token-slot.ts";
import { fingerprint, type Redactor } from "../log/redact.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import { narrowed } from "../providers/github-app/github-app-provider.ts";
import { createProvider, type ProviderConfig } from "../providers/provider-registry.ts";
import { SHARED_SCOPE, type TokenProvider } from "../providers/token-provider.ts";
import type { TokenRecord } from "../store/token-file.ts";
import type { BrokerConfig } from "../config/broker-config.ts";

/** What a token is scoped to: a provider, an owner, and (GitHub Apps) repositories and permissions. */
export interface Scope {
  provider: ProviderConfig;
  owner: string;
  repositories: string[] | undefined;
  permissions: Record<string, string> | undefined;
  /** The policy that allowed it names the owner (not `"*"`): the owner is the admin's, not the caller's. */
  ownerListed?: boolean;
}

/** An identity asked for too many new owners nobody listed: 429. */
export class ScopeRateLimited extends Error {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** An ask the provider that would serve it cannot grant (a repository outside its own): 403, not 503. */
export class ScopeDenied extends Error {}

export function scopeKey(s: Scope): string {
  const perms = s.permissions ? Object.entries(s.permissions).sort(([a], [b]) => a.localeCompare(b)) : undefined;
  return JSON.stringify([s.provider.name, s.owner, s.repositories ?? null, perms ?? null]);
}

/** A scope nobody asked for in this long is dropped (it stopped being refreshed long before). */
const IDLE_MS = 2 * 3_600_000;
/** Identities whose asks are remembered (for their share of the scopes); the least recent go first. */
const MAX_IDENTITIES = 10_000;
/** Identities remembered per scope as holders of its current token (for `refused`). */
const MAX_HOLDERS = 1_000;
/** The longest an ask waits for a token, queue included. */
export const ASK_DEADLINE_MS = 25_000;
/** Mints that may wait for a permit beyond mintConcurrency. */
const MAX_WAITING_MINTS = 256;
/** New scopes for owners no policy lists (looked up on GitHub) one identity may open a minute. */
const UNLISTED_OWNERS_PER_MINUTE = 10;
/** How often scopes nobody asked for are swept, whether or not anyone asks. */
const SWEEP_MS = 10 * 60_000;

/** The broker keeps tokens in memory only: it is stateless, and a restart mints again. */
class MemoryStore implements SlotStore {
  #record: TokenRecord | undefined;
  readToken(): TokenRecord | undefined {
    return this.#record;
  }
  writeToken(_provider: string, _owner: string, record: TokenRecord): void {
    this.#record = record;
  }
  removeToken(): void {
    this.#record = undefined;
  }
}

interface Entry {
  key: string;
  provider: string;
  slot: TokenSlot;
  askedAt: number;
  /** Identities that asked for it, while they are remembered. */
  askers: Set<string>;
  /** The serial of a token handed out by an ask that found it already minted. */
  reusedSerial: number | undefined;
  /** Identities handed the token with serial holdersOf. */
  holders: Set<string>;
  holdersOf: number | undefined;
}

type Deps = { clock: Clock; log: Logger; redactor: Redactor; metrics: MetricsSink };

/**
 * One token slot per scope, made on first ask and refreshed ahead only while it is in use (its
 * token handed to more than the ask that minted it); an idle scope is minted again at its next ask. Scopes are
 * bounded overall and per identity, least recently asked out first, so that one identity asking
 * for scope after scope only ever evicts its own. Each configured provider is one instance, shared
 * by its scopes: its installation lookups and what it learned are bounded once, not per scope.
 */
export class ScopeCache {
  readonly #slots = new Map<string, Entry>();
  readonly #identities = new Map<string, Set<string>>();
  /** Per identity: when it opened its recent scopes for unlisted owners. */
  readonly #unlistedOpened = new Map<string, number[]>();
  #sweep: unknown;
  #stopped = false;
  readonly #providers = new Map<string, { hash: string; provider: TokenProvider }>();
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  #config: BrokerConfig;
  readonly deps: Deps;

  constructor(config: BrokerConfig, deps: Deps) {
    this.#config = config;
    this.deps = deps;
    this.#limit = limitConcurrency(config.mintConcurrency, MAX_WAITING_MINTS);
    this.#scheduleSweep();
  }

  #scheduleSweep(): void {
    this.#sweep = this.deps.clock.setTimeout(() => {
      if (this.#stopped) return;
      this.#forgetIdle();
      this.#scheduleSweep();
    }, SWEEP_MS);
  }

  get size(): number {
    return this.#slots.size;
  }

  /**
   * The first provider of the origin that serves `owner` in fact: its `owners`, and for a GitHub
   * App installation set by id, the account it belongs to (asked of GitHub once). Never another
   * owner's installation.
   */
  async providerFor(gitOrigin: string, owner: string): Promise<ProviderConfig | undefined> {
    for (const config of this.#config.providers) {
      if (config.gitOrigin !== gitOrigin) continue;
      if (config.owners && !config.owners.includes(owner)) continue;
      const provider = this.#provider(config);
      if (provider.servesOwner && !(await provider.servesOwner(owner))) continue;
      return config;
    }
    return undefined;
  }

  /**
   * A token for the scope with at least minRemaining of life left, for the identity `who`.
   * `refused`: the fingerprint of a token a host refused; when it is this scope's current token
   * and `who` was handed it, it is re-minted first.
   */
  async token(asked: Scope, who: string, refused?: string): Promise<TokenRecord> {
    const scope = this.#withinCeiling(asked);
    this.#forgetIdle();
    const entry = this.#entry(scope, who);
    let timer: unknown;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = this.deps.clock.setTimeout(
        () => reject(new ProviderError(`no token within ${ASK_DEADLINE_MS / 1000}s`, { transient: true, retryAfterMs: 5_000 })),
        ASK_DEADLINE_MS,
      );
    });
    try {
      const record = await Promise.race([this.#fresh(entry, who, refused), deadline]);
      if (entry.holdersOf !== record.serial) {
        entry.holders.clear();
        entry.holdersOf = record.serial;
      }
      if (entry.holders.size < MAX_HOLDERS) entry.holders.add(who);
      return record;
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
  }

  /**
   * Takes a reloaded config: scopes of providers whose settings did not change keep their tokens;
   * the others are dropped (their next ask mints under the new settings).
   */
  reload(config: BrokerConfig): void {
    const hashes = new Map(config.providers.map((p) => [p.name, providerConfigHash(p)]));
    for (const [name, held] of this.#providers) {
      if (hashes.get(name) === held.hash) continue;
      this.#providers.delete(name);
      void held.provider.dispose?.();
    }
    for (const entry of [...this.#slots.values()]) if (!this.#providers.has(entry.provider)) this.#drop(entry);
    this.#config = config;
    this.#evict();
  }

  /** Providers whose last mint failed, with no success since and no scope holding a usable token. */
  failingProviders(): string[] {
    const failing = new Set<string>();
    const healthy = new Set<string>();
    for (const entry of this.#slots.values()) {
      const status = entry.slot.status();
      if (this.#usable(entry.slot.current)) healthy.add(entry.provider);
      else if (status.failing) failing.add(entry.provider);
    }
    return [...failing].filter((p) => !healthy.has(p));
  }

  stop(): void {
    this.#stopped = true;
    this.deps.clock.clearTimeout(this.#sweep);
    for (const entry of [...this.#slots.values()]) this.#drop(entry);
    for (const { provider } of this.#providers.values()) void provider.dispose?.();
    this.#providers.clear();
  }

  async #fresh(entry: Entry, who: string, refused: string | undefined): Promise<TokenRecord> {
    const { slot } = entry;
    const current = slot.current;
    const served = (record: TokenRecord): TokenRecord => {
      if (record.serial === current?.serial) entry.reusedSerial = record.serial;
      return record;
    };
    // Only a holder of the token may have it replaced: anyone else's "refused" is a guess.
    if (refused !== undefined && current && fingerprint(current.token) === refused && entry.holdersOf === current.serial && entry.holders.has(who)) {
      await slot.refused(current.serial).catch(() => undefined);
    }
    // While the source fails, the cached token keeps serving as long as it has minRemaining
    // left (as a keeper's current token does); after that, 503 with the source's error.
    let failure: unknown;
    await slot.ensureFresh().catch((error: unknown) => {
      failure = error;
    });
    let record = slot.current;
    if (this.#usable(record)) return served(record as TokenRecord);
    if (failure === undefined) {
      await slot.mint("refresh").catch((error: unknown) => {
        failure = error;
      });
      record = slot.current;
      if (this.#usable(record)) return served(record as TokenRecord);
    }
    if (failure === undefined && record && (record.expires - record.mintedAt) * 1000 < this.#config.minRemainingMs) {
      // Even a token minted just now has too little life: the source's tokens are too short.
      throw new ProviderError(`${entry.provider} issues tokens that live ${record.expires - record.mintedAt}s, less than minRemaining (${Math.round(this.#config.minRemainingMs / 1000)}s)`, {
        transient: true,
        retryAfterMs: 60_000,
        hint: "lower the broker's minRemaining below the life of this provider's tokens",
      });
    }
    const retryAfterMs = failure instanceof ProviderError && failure.retryAfterMs ? failure.retryAfterMs : 5_000;
    const transient = !(failure instanceof ProviderError) || failure.transient;
    throw new ProviderError(slot.status().lastError ?? "no token with enough life left", { transient, retryAfterMs });
  }

  #usable(record: TokenRecord | undefined): boolean {
    return !!record && record.expires * 1000 - this.deps.clock.now() >= this.#config.minRemainingMs;
  }

  // The provider's settings are the ceiling: a GitHub App scope is intersected with them (an
  // ask outside them is refused, never served with the provider's whole reach); repository
  // names are GitHub's, which ignores case: one scope for app, App and APP.
  #withinCeiling(scope: Scope): Scope {
    const { provider } = scope;
    if (provider.type !== "github-app") {
      if (scope.repositories || scope.permissions) throw new ScopeDenied(`repositories and permissions narrow GitHub App tokens only; ${provider.name} is ${provider.type}`);
      return { ...scope, owner: provider.perOwner ? scope.owner : SHARED_SCOPE };
    }
    const repositories = scope.repositories ? [...new Set(scope.repositories.map((r) => r.toLowerCase()))].sort() : undefined;
    try {
      const within = narrowed(provider, { repositories, permissions: scope.permissions });
      const outside = (repositories ?? []).filter((r) => !within.repositories?.some((w) => w.toLowerCase() === r));
      if (outside.length > 0) throw new ScopeDenied(`repository '${scope.owner}/${outside[0]}' is not among those this broker's provider serves`);
      return { ...scope, repositories: repositories ? within.repositories?.map((r) => r.toLowerCase()).sort() : undefined, permissions: scope.permissions ? within.permissions : undefined };
    } catch (error) {
      if (error instanceof ScopeDenied) throw error;
      throw new ScopeDenied(error instanceof Error ? error.message : String(error));
    }
  }

  #provider(config: ProviderConfig): TokenProvider {
    const held = this.#providers.get(config.name);
    if (held) return held.provider;
    const provider = createProvider(config, this.deps.log);
    this.#providers.set(config.name, { hash: providerConfigHash(config), provider });
    return provider;
  }

  #entry(scope: Scope, who: string): Entry {
    const key = scopeKey(scope);
    const now = this.deps.clock.now();
    let entry = this.#slots.get(key);
    if (entry) {
      this.#slots.delete(key);
    } else {
      if (!scope.ownerListed && !scope.provider.owners && scope.provider.perOwner) this.#openUnlisted(who, scope.owner);
      const base = this.#provider(scope.provider);
      const narrow = scope.provider.type === "github-app" ? { repositories: scope.repositories, permissions: scope.permissions } : undefined;
      const ownerListed = scope.ownerListed === true;
      // The shared instance, with this scope's narrowing on every mint.
      const provider: TokenProvider = {
        config: base.config,
        initialOwners: () => base.initialOwners(),
        servedOwners: () => base.servedOwners(),
        mint: (owner, context) => base.mint(owner, { ...context, narrow, ownerListed }),
        ...(base.rotatesSecret === undefined ? {} : { rotatesSecret: base.rotatesSecret }),
        ...(base.resumes === undefined ? {} : { resumes: base.resumes }),
      };
      const created: Entry = { key, provider: scope.provider.name, slot: undefined as unknown as TokenSlot, askedAt: now, askers: new Set(), holders: new Set(), holdersOf: undefined, reusedSerial: undefined };
      created.slot = new TokenSlot(
        provider,
        scope.owner,
        {
          refreshBeforeMs: this.#config.refreshBeforeMs,
          retryMinMs: this.#config.retryMinMs,
          retryMaxMs: this.#config.retryMaxMs,
          remintIntervalMs: this.#config.remintIntervalMs,
          wanted: ({ permanent }) => !permanent && this.#slots.get(key) === created && this.#inUse(created),
        },
        { store: new MemoryStore(), clock: this.deps.clock, log: this.deps.log, redactor: this.deps.redactor, limit: this.#limit, onChange: () => undefined, metrics: this.#metrics(scope.provider) },
      );
      entry = created;
    }
    entry.askedAt = now;
    this.#slots.set(key, entry);
    this.#asked(entry, who);
    this.#evict();
    return entry;
  }

  // In use: its current token was handed to an ask besides the one that minted it. A scope asked
  // once is not: its next ask, if any, mints again.
  #inUse(entry: Entry): boolean {
    const current = entry.slot.current;
    return current !== undefined && entry.reusedSerial === current.serial;
  }

  #asked(entry: Entry, who: string): void {
    const mine = this.#identities.get(who) ?? new Set<string>();
    this.#identities.delete(who);
    this.#identities.set(who, mine);
    mine.delete(entry.key);
    mine.add(entry.key);
    entry.askers.add(who);
    // Over its share: its own least recently asked scope goes (or its claim on it, if others ask too).
    while (mine.size > this.#config.maxScopesPerIdentity) {
      const oldest = mine.values().next().value as string;
      mine.delete(oldest);
      this.#release(oldest, who);
    }
    while (this.#identities.size > MAX_IDENTITIES) {
      const [first, keys] = this.#identities.entries().next().value as [string, Set<string>];
      this.#identities.delete(first);
      for (const key of keys) this.#release(key, first);
    }
  }

  #release(key: string, who: string): void {
    const entry = this.#slots.get(key);
    if (!entry) return;
    entry.askers.delete(who);
    if (entry.askers.size === 0) this.#drop(entry);
  }

  // Over the cap, the identity holding the most scopes gives up its least recently asked one:
  // many identities of one principal (a sub per branch, per service account) evict their own
  // before anyone else's.
  #evict(): void {
    while (this.#slots.size > this.#config.maxScopes) {
      let largest: Set<string> | undefined;
      for (const keys of this.#identities.values()) if (!largest || keys.size > largest.size) largest = keys;
      const key = largest?.values().next().value;
      const entry = key === undefined ? undefined : this.#slots.get(key);
      if (entry) this.#drop(entry);
      else {
        if (key !== undefined) largest?.delete(key);
        else this.#drop(this.#slots.values().next().value as Entry);
      }
    }
  }

  // A new owner nobody listed is looked up on GitHub: each identity opens a few a minute.
  #openUnlisted(who: string, owner: string): void {
    const now = this.deps.clock.now();
    const recent = (this.#unlistedOpened.get(who) ?? []).filter((at) => now - at < 60_000);
    if (recent.length >= UNLISTED_OWNERS_PER_MINUTE) {
      throw new ScopeRateLimited(`this identity asked for ${recent.length} owners no policy lists in the last minute; '${owner}' must wait`, 60_000 - (now - (recent[0] as number)));
    }
    recent.push(now);
    this.#unlistedOpened.delete(who);
    this.#unlistedOpened.set(who, recent);
    if (this.#unlistedOpened.size > MAX_IDENTITIES) this.#unlistedOpened.delete(this.#unlistedOpened.keys().next().value as string);
  }

  #forgetIdle(): void {
    const now = this.deps.clock.now();
    for (const entry of this.#slots.values()) {
      // Least recently asked first: the first one asked since the cut-off ends the sweep.
      if (now - entry.askedAt <= IDLE_MS) break;
      this.#drop(entry);
    }
  }

  #drop(entry: Entry): void {
    if (this.#slots.get(entry.key) === entry) this.#slots.delete(entry.key);
    for (const who of entry.askers) this.#identities.get(who)?.delete(entry.key);
    entry.askers.clear();
    void entry.slot.stop().then(() => entry.slot.forgetSecrets());
  }

  // Metric labels come from the config: an owner the provider lists (or the one account of its
  // installation) is itself; any other owner, named by whoever asked, is "*".
  #metrics(config: ProviderConfig): MetricsSink {
    const inner = this.deps.metrics;
    const label = (owner: string) => (owner === SHARED_SCOPE || config.owners?.includes(owner) || (config.type === "github-app" && config.installationId !== undefined) ? owner : "*");
    return {
      ...inner,
      minted: (provider, owner, reason) => inner.minted(provider, label(owner), reason),
      mintFailed: (provider, owner, transient) => inner.mintFailed(provider, label(owner), transient),
      refused: (provider, owner) => inner.refused(provider, label(owner)),
    };
  }
}
