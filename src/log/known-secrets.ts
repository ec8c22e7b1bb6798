import { ExpiryQueue } from "./expiry-queue.ts";

/** The length of a secret's index key: shorter secrets are not accepted. */
export const KEY_LENGTH = 8;

interface Known {
  secret: string;
  /** KEY_LENGTH characters of the secret, from `offset`: what a scan looks up. */
  key: string;
  offset: number;
  expiresAtMs: number;
}

/** The matching done so far: a lookup per position of the text, a comparison per secret whose key is there. */
export interface MatchWork {
  lookups: number;
  comparisons: number;
}

/**
 * Registered secrets, indexed so that finding them in a text costs one map lookup per position
 * of the text however many are known, and forgotten once expired.
 */
export class KnownSecrets {
  readonly #bySecret = new Map<string, Known>();
  readonly #byKey = new Map<string, Known[]>();
  // Every known secret at its expiry, and entries gone stale (forgotten, or re-added later)
  // that are skipped when they come out first.
  readonly #expiries = new ExpiryQueue<Known>();
  readonly #max: number;
  readonly work: MatchWork = { lookups: 0, comparisons: 0 };

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#bySecret.size;
  }

  /** Registers a secret of at least KEY_LENGTH characters; one registered again keeps the later expiry. */
  add(secret: string, expiresAtMs: number): void {
    if (secret.length < KEY_LENGTH) return;
    let known = this.#bySecret.get(secret);
    if (known) {
      if (expiresAtMs <= known.expiresAtMs) return;
      known.expiresAtMs = expiresAtMs;
    } else {
      known = { secret, ...this.#keyFor(secret), expiresAtMs };
      this.#bySecret.set(secret, known);
      const bucket = this.#byKey.get(known.key);
      if (bucket) bucket.push(known);
      else this.#byKey.set(known.key, [known]);
    }
    this.#expiries.push(expiresAtMs, known);
    this.#shedStale();
  }

  delete(secret: string): void {
    const known = this.#bySecret.get(secret);
    if (!known) return;
    this.#bySecret.delete(secret);
    const rest = (this.#byKey.get(known.key) ?? []).filter((k) => k !== known);
    if (rest.length) this.#byKey.set(known.key, rest);
    else this.#byKey.delete(known.key);
    this.#shedStale();
  }

  /** Forgets the secrets expired at `nowMs`, then those expiring first while more than the maximum are known. */
  prune(nowMs: number): void {
    while (this.#expiries.firstAt() <= nowMs || this.#bySecret.size > this.#max) {
      const first = this.#expiries.shift();
      if (!first) return;
      if (this.#bySecret.get(first.item.secret) === first.item && first.item.expiresAtMs === first.at) this.delete(first.item.secret);
    }
  }

  /**
   * Replaces every known secret in the text, also inside a longer word. Where several start at one
   * place the longest wins; where two overlap, both are replaced (no part of either is left).
   */
  replaceIn(text: string, replacement: (secret: string) => string): string {
    if (this.#bySecret.size === 0 || text.length < KEY_LENGTH) return text;
    let found: { start: number; secret: string }[] | undefined;
    this.work.lookups += text.length - KEY_LENGTH + 1;
    for (let i = 0; i + KEY_LENGTH <= text.length; i++) {
      const bucket = this.#byKey.get(text.slice(i, i + KEY_LENGTH));
      if (bucket === undefined) continue;
      for (const { secret, offset } of bucket) {
        this.work.comparisons++;
        const start = i - offset;
        if (start >= 0 && text.startsWith(secret, start)) (found ??= []).push({ start, secret });
      }
    }
    if (!found) return text;
    found.sort((a, b) => a.start - b.start || b.secret.length - a.secret.length);
    let out = "";
    let done = 0;
    for (const { start, secret } of found) {
      const end = start + secret.length;
      if (end <= done) continue;
      out += `${text.slice(done, Math.max(done, start))}${replacement(secret)}`;
      done = end;
    }
    return out + text.slice(done);
  }

  // Secrets of one format often share their start (a stateless GitHub token is `ghs_` and a JWT
  // header, 40 characters alike in all of them): the key is taken from where a secret differs
  // from those known, its end first, so that each key leads to one secret and a lookup costs the
  // same however many are known.
  #keyFor(secret: string): { key: string; offset: number } {
    for (let offset = secret.length - KEY_LENGTH; offset >= 0; offset--) {
      const key = secret.slice(offset, offset + KEY_LENGTH);
      if (!this.#byKey.has(key)) return { key, offset };
    }
    return { key: secret.slice(-KEY_LENGTH), offset: secret.length - KEY_LENGTH };
  }

  // Forgotten and re-added secrets leave entries in the expiry queue: past twice the live ones,
  // it is rebuilt (amortised, a constant cost per add or delete).
  #shedStale(): void {
    if (this.#expiries.size <= 2 * this.#bySecret.size + 64) return;
    this.#expiries.rebuild(Array.from(this.#bySecret.values(), (known) => ({ at: known.expiresAtMs, item: known })));
  }
}
