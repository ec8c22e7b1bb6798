import { ProviderError } from "../errors/keeper-error.ts";
import { limitConcurrency } from "../daemon/limit-concurrency.ts";
import type { Clock } from "../daemon/clock.ts";
import { TokenSlot, type SlotStore } from "../daemon/token-slot.ts";
import { fingerprint, type Redactor } from "../log/redact.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import { createProvider, type ProviderConfig } from "../providers/provider-registry.ts";
import type { TokenRecord } from "../store/token-file.ts";
import type { BrokerConfig } from "../config/broker-config.ts";

/** What a token is scoped to: a provider, an owner, and (GitHub Apps) repositories and permissions. */
export interface Scope {
  provider: ProviderConfig;
  owner: string;
  repositories: string[] | undefined;
  permissions: Record<string, string> | undefined;
}

export function scopeKey(s: Scope): string {
  const perms = s.permissions ? Object.entries(s.permissions).sort(([a], [b]) => a.localeCompare(b)) : undefined;
  return JSON.stringify([s.provider.name, s.owner, s.repositories ?? null, perms ?? null]);
}

const IDLE_MS = 24 * 3_600_000;

/** The broker keeps tokens in memory only: it is stateless, and a restart mints again. */
class MemoryStore implements SlotStore {
  readonly #records = new Map<string, TokenRecord>();
  readToken(provider: string, owner: string): TokenRecord | undefined {
    return this.#records.get(`${provider}\0${owner}`);
  }
  writeToken(provider: string, owner: string, record: TokenRecord): void {
    this.#records.set(`${provider}\0${owner}`, record);
  }
  removeToken(provider: string, owner: string): void {
    this.#records.delete(`${provider}\0${owner}`);
  }
}

/**
 * One token slot per scope, made on first ask and kept fresh by the keeper's own scheduling
 * (refresh before expiry, backoff, one mint for all who ask at once, a re-mint per refusal no
 * more often than remintInterval): however many agents ask for a scope, it costs one mint per
 * token lifetime.
 */
export class ScopeCache {
  readonly #slots = new Map<string, { slot: TokenSlot; askedAt: number }>();
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;

  readonly config: BrokerConfig;
  readonly deps: { clock: Clock; log: Logger; redactor: Redactor; metrics: MetricsSink };

  constructor(config: BrokerConfig, deps: { clock: Clock; log: Logger; redactor: Redactor; metrics: MetricsSink }) {
    this.config = config;
    this.deps = deps;
    this.#limit = limitConcurrency(config.mintConcurrency);
  }

  get size(): number {
    return this.#slots.size;
  }

  /**
   * A token for the scope with at least minRemaining of life left. `refused`: the fingerprint
   * of a token a host refused; when it is this scope's current token, it is re-minted first.
   */
  async token(scope: Scope, refused?: string): Promise<TokenRecord> {
    this.#forgetIdle();
    const slot = this.#slot(scope);
    const current = slot.current;
    if (refused !== undefined && current && fingerprint(current.token) === refused) {
      await slot.refused(current.serial).catch(() => undefined);
    }
    // While the source fails, the cached token keeps serving as long as it has minRemaining
    // left (as a keeper's current token does); after that, 503 with the source's error.
    let failure: unknown;
    await slot.ensureFresh().catch((error: unknown) => {
      failure = error;
    });
    const { clock } = this.deps;
    const usable = (r: TokenRecord | undefined): boolean => !!r && r.expires * 1000 - clock.now() >= this.config.minRemainingMs;
    let record = slot.current;
    if (usable(record)) return record as TokenRecord;
    if (failure === undefined) {
      await slot.mint("refresh").catch((error: unknown) => {
        failure = error;
      });
      record = slot.current;
      if (usable(record)) return record as TokenRecord;
    }
    if (failure === undefined && record && (record.expires - record.mintedAt) * 1000 < this.config.minRemainingMs) {
      // Even a token minted just now has too little life: the source's tokens are too short.
      throw new ProviderError(`${scope.provider.name} issues tokens that live ${record.expires - record.mintedAt}s, less than minRemaining (${Math.round(this.config.minRemainingMs / 1000)}s)`, {
        transient: true,
        retryAfterMs: 60_000,
        hint: "lower the broker's minRemaining below the life of this provider's tokens",
      });
    }
    const retryAfterMs = failure instanceof ProviderError && failure.retryAfterMs ? failure.retryAfterMs : 5_000;
    throw new ProviderError(slot.status().lastError ?? "no token with enough life left", { transient: true, retryAfterMs });
  }

  stop(): void {
    for (const { slot } of this.#slots.values()) void slot.stop();
  }

  // A scope nobody asked for in a day stops being refreshed (agents come and go).
  #forgetIdle(): void {
    const now = this.deps.clock.now();
    for (const [key, entry] of this.#slots) {
      if (now - entry.askedAt > IDLE_MS) {
        void entry.slot.stop();
        this.#slots.delete(key);
      }
    }
  }

  #slot(scope: Scope): TokenSlot {
    const key = scopeKey(scope);
    const entry = this.#slots.get(key);
    if (entry) {
      entry.askedAt = this.deps.clock.now();
      return entry.slot;
    }
    {
      // The provider's own settings, narrowed: a GitHub App token for these repositories and
      // permissions only. Its name tells the scopes apart in the log and the metrics.
      const narrowed = { ...scope.provider, ...(scope.provider.type === "github-app" ? { repositories: scope.repositories ?? scope.provider.repositories, permissions: scope.permissions ?? scope.provider.permissions } : {}) } as ProviderConfig;
      const provider = createProvider(narrowed, this.deps.log);
      const slot = new TokenSlot(
        provider,
        scope.owner,
        { refreshBeforeMs: this.config.refreshBeforeMs, retryMinMs: this.config.retryMinMs, retryMaxMs: this.config.retryMaxMs, remintIntervalMs: this.config.remintIntervalMs },
        { store: new MemoryStore(), clock: this.deps.clock, log: this.deps.log, redactor: this.deps.redactor, limit: this.#limit, onChange: () => undefined, metrics: this.deps.metrics },
      );
      this.#slots.set(key, { slot, askedAt: this.deps.clock.now() });
      return slot;
    }
  }
}
