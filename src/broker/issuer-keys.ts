import { createLocalJWKSet, errors, type JWTVerifyGetKey } from "jose";
import type { Identity } from "../config/broker-config.ts";
import { formatDuration } from "../providers/settings/duration.ts";
import { loadIssuerKeys } from "./load-issuer-keys.ts";

/** Keys this old are fetched again in the background (what jose's remote key sets did). */
const REFRESH_AFTER_MS = 10 * 60_000;

/** One identity's keys, for /readyz and metrics. */
export interface IdentityKeyStatus {
  name: string;
  /** It holds keys it verifies with (fetched, and not older than staleKeysFor). */
  keysLoaded: boolean;
  /** Seconds since the last successful fetch; undefined before the first. */
  keysAgeSeconds: number | undefined;
  /** Failed fetches since start. */
  fetchFailures: number;
  /** Why the last fetch failed; undefined once one succeeds. */
  lastError: string | undefined;
}

/** Thrown by getKey when the identity has no keys to verify with: neither valid nor invalid. */
export class KeysUnavailable extends Error {
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

interface Held {
  getKey: JWTVerifyGetKey;
  fetchedAt: number;
}

/**
 * One identity's keys: the last good JWKS, held locally, fetched again when a token's kid and
 * alg match none of its keys or when it is older than 10 minutes. Every fetch (discovery and
 * JWKS together) waits jwksCooldown after the attempt before it, whatever that attempt's outcome
 * and whoever asks, and concurrent askers share one: a flood of forged tokens costs the issuer at
 * most one fetch per cooldown. The keys keep verifying while the issuer cannot be reached, for
 * staleKeysFor after the last successful fetch.
 */
export class IssuerKeys {
  readonly #identity: Identity;
  readonly #now: () => number;
  readonly #refreshAfterMs: number;
  #held: Held | undefined;
  #discoveredJwksUrl: string | undefined;
  #lastAttemptAt: number | undefined;
  #inflight: Promise<void> | undefined;
  #failures = 0;
  #lastError: string | undefined;

  /** The identity whose keys these are (a reload keeps them where it did not change). */
  get identity(): Identity {
    return this.#identity;
  }

  constructor(identity: Identity, now: () => number) {
    this.#identity = identity;
    this.#now = now;
    this.#refreshAfterMs = Math.min(REFRESH_AFTER_MS, identity.staleKeysForMs / 2);
  }

  /** The key for a token (a JWTVerifyGetKey); throws KeysUnavailable when there are none to use. */
  async getKey(...[header, token]: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    let held = this.#usable();
    if (!held) {
      await this.#fetch();
      held = this.#usable();
      if (!held) throw this.#unavailable();
    } else if (this.#now() - held.fetchedAt >= this.#refreshAfterMs) {
      void this.#fetch();
    }
    try {
      return await held.getKey(header, token);
    } catch (error) {
      // A kid no key has: the issuer may have rotated, so look again (within the cooldown).
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      await this.#fetch();
      const fresh = this.#usable();
      // Keys fetched just now that still lack it: the token is not the issuer's (401).
      if (fresh && fresh !== held) return fresh.getKey(header, token);
      // No newer keys (the cooldown forbade a fetch, or it failed): whether the kid is the
      // issuer's new one cannot be known now, so neither valid nor invalid (503, not 401: a
      // forged kid that armed the cooldown must not fail a genuine token after a rotation).
      throw this.#unavailable("no key matches the token's kid, and the keys cannot be fetched again yet");
    }
  }

  /** Fetches the keys now if there are none or they are due (within the cooldown); never rejects. */
  async prefetch(): Promise<void> {
    const held = this.#usable();
    if (!held || this.#now() - held.fetchedAt >= this.#refreshAfterMs) await this.#fetch();
  }

  status(): IdentityKeyStatus {
    const held = this.#held;
    return {
      name: this.#identity.name,
      keysLoaded: this.#usable() !== undefined,
      keysAgeSeconds: held ? Math.floor((this.#now() - held.fetchedAt) / 1000) : undefined,
      fetchFailures: this.#failures,
      lastError: this.#lastError,
    };
  }

  #usable(): Held | undefined {
    const held = this.#held;
    return held && this.#now() - held.fetchedAt <= this.#identity.staleKeysForMs ? held : undefined;
  }

  /** The fetch in flight, a new one if the cooldown allows, or nothing. Never rejects. */
  #fetch(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    const now = this.#now();
    if (this.#lastAttemptAt !== undefined && now - this.#lastAttemptAt < this.#identity.jwksCooldownMs) return Promise.resolve();
    this.#lastAttemptAt = now;
    const inflight = this.#load().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = inflight;
    return inflight;
  }

  async #load(): Promise<void> {
    try {
      const loaded = await loadIssuerKeys(this.#identity, this.#discoveredJwksUrl);
      const getKey = createLocalJWKSet(loaded.jwks);
      this.#held = { getKey, fetchedAt: this.#now() };
      this.#discoveredJwksUrl = loaded.discoveredJwksUrl;
      this.#lastError = undefined;
    } catch (error) {
      // A discovered jwks_uri that failed is looked up again next time: it may have moved.
      this.#discoveredJwksUrl = undefined;
      this.#failures++;
      this.#lastError = error instanceof errors.JWKSInvalid ? `the issuer's JWKS is malformed: ${error.message}` : error instanceof Error ? error.message : String(error);
    }
  }

  #unavailable(reason?: string): KeysUnavailable {
    const now = this.#now();
    const nextFetch = (this.#lastAttemptAt ?? now) + this.#identity.jwksCooldownMs;
    const retryAfterMs = Math.max(1000, Math.min(this.#identity.jwksCooldownMs, nextFetch - now));
    const held = this.#held;
    const why = reason ?? (held ? `the last good ones are ${short(now - held.fetchedAt)} old, older than staleKeysFor (${short(this.#identity.staleKeysForMs)})` : "none fetched yet");
    return new KeysUnavailable(`the issuer's keys are not available (${why}); try again in ${Math.ceil(retryAfterMs / 1000)}s`, retryAfterMs);
  }
}

/** `6h`, `1h30m`, `45s`: formatDuration without its zero tails. */
function short(ms: number): string {
  return formatDuration(ms).replace(/(\d)h0m0s$/, "$1h").replace(/(\d)m0s$/, "$1m");
}
