import { createHash } from "node:crypto";
import { describeError, ProviderError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import { fingerprint, SECRET_GRACE_MS, type Redactor } from "../log/redact.ts";
import { jwtExpiry, scheduleFromRefreshEvery } from "../providers/token-expiry.ts";
import type { MintedToken, TokenProvider } from "../providers/token-provider.ts";
import type { TokenStore } from "../store/token-store.ts";
import { servedUntil, servingMargin, type TokenRecord } from "../store/token-file.ts";
import type { ProviderBase } from "../providers/settings/provider-base.ts";
import type { Clock } from "./clock.ts";
import { backoffDelay, refreshAt } from "./refresh-schedule.ts";

export interface SlotOptions {
  refreshBeforeMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  remintIntervalMs: number;
  /**
   * Asked before a scheduled refresh or a retry: false leaves the slot idle until someone asks
   * (the broker refreshes a scope ahead only while it is in use). `permanent`: the last mint
   * failed permanently (such a failure is not retried in the background by an on-demand slot).
   */
  wanted?: (state: { permanent: boolean }) => boolean;
}

/** Where a slot keeps its token: the daemon's state dir, or the broker's memory. */
export type SlotStore = Pick<TokenStore, "readToken" | "writeToken" | "removeToken">;

export interface SlotDeps {
  store: SlotStore;
  clock: Clock;
  log: Logger;
  redactor: Redactor;
  /** Bounds concurrent calls to token APIs across all slots. */
  limit: <T>(task: () => Promise<T>) => Promise<T>;
  onChange: () => void;
  metrics: MetricsSink;
}

export interface SlotStatus {
  provider: string;
  type: string;
  gitUrl: string;
  owner: string;
  expiresAt: string | null;
  refreshAt: string | null;
  fingerprint: string | null;
  lastMint: string | null;
  mints: number;
  failing: boolean;
  lastError: string | null;
  nextAttempt: string | null;
}

type MintReason = "start" | "schedule" | "first use" | "refused" | "refresh" | "retry" | "source changed" | "reload";

/**
 * The fingerprint of a provider's settings that a token file carries (`config=`): a file is
 * served only by a slot of a provider with the same settings (gitUrl, owners, permissions …).
 */
export function providerConfigHash(config: ProviderBase): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 16);
}

/** The shortest remaining life a source's token may have, whatever its other tokens had. */
const MIN_TOKEN_LIFE_MS = 1_000;

/** Clock differences with a token API below this are the Date header's rounding, not skew. */
const SKEW_IGNORED_MS = 2_000;

const toIso = (seconds: number | undefined) => (seconds === undefined ? null : new Date(seconds * 1000).toISOString());

/** The longest one mint may take, whatever the source, unless its own timeouts are longer. */
export const MINT_DEADLINE_MS = 120_000;

/**
 * The deadline for one mint of this provider: 2 minutes, or three of its configured request
 * timeouts when those are longer (a GitHub App mint may look its installation up first), so
 * that a `timeout` the config allows is never cut short by the slot.
 */
export function mintDeadlineMs(config: ProviderBase): number {
  return Math.max(MINT_DEADLINE_MS, 3 * (config.timeout ?? 0));
}

/**
 * Keeps one owner's token of one provider fresh: mints before expiry, retries with backoff,
 * re-mints when a host refuses the token, and writes every new token to the store. Concurrent
 * asks share one in-flight mint.
 */
export class TokenSlot {
  readonly provider: TokenProvider;
  readonly owner: string;
  readonly #options: SlotOptions;
  readonly #deps: SlotDeps;
  #current: TokenRecord | undefined;
  #previousToken: string | undefined;
  #inflight: Promise<void> | undefined;
  #failures = 0;
  #lastPermanent = false;
  #lastError: { message: string; retryAfterMs?: number | undefined } | undefined;
  #nextAttemptAt: number | undefined;
  #mints = 0;
  #timer: unknown;
  #expiryTimer: unknown;
  #pendingRemint: Promise<void> | undefined;
  #stopped = false;
  /** When the armed timer (refresh or retry) is due, by the wall clock: see recheck(). */
  #dueAt: number | undefined;
  #lastSerial = 0;
  /** The token a host last refused: never adopted again. */
  #refusedToken: string | undefined;
  /** The token last minted and its remaining life when it first came (see #checkWorthServing). */
  #firstSeen: { token: string; lifeMs: number } | undefined;

  readonly #configHash: string;

  constructor(provider: TokenProvider, owner: string, options: SlotOptions, deps: SlotDeps) {
    this.#configHash = providerConfigHash(provider.config);
    this.provider = provider;
    this.owner = owner;
    this.#options = options;
    this.#deps = deps;
  }

  get name(): string {
    return `${this.provider.config.name}/${this.owner}`;
  }

  get failing(): boolean {
    return this.#failures > 0;
  }

  /** Minting failed and the next attempt is not due yet (backoff, Retry-After). */
  get backingOff(): boolean {
    return this.#failures > 0 && this.#nextAttemptAt !== undefined && this.#deps.clock.now() < this.#nextAttemptAt;
  }

  /** The token it serves now (none before the first mint, or after it expired). */
  get current(): TokenRecord | undefined {
    return this.#current;
  }

  /**
   * Resumes a token left by an earlier run, minted under the same settings, while it may still
   * be served (and mints at once when its refresh time has passed); any other file is removed
   * before anything is minted, so it is never served meanwhile.
   */
  start(reason: MintReason): Promise<void> {
    const saved = this.#deps.store.readToken(this.provider.config.name, this.owner);
    const now = this.#deps.clock.now();
    if (saved && this.provider.resumes !== false && saved.config === this.#configHash && servedUntil(saved) * 1000 > now) {
      this.#adopt(saved);
      this.#deps.log.info("resumed token from state dir", { slot: this.name, fingerprint: fingerprint(saved.token) });
      if (saved.refreshAt * 1000 > now) {
        this.#scheduleRefresh(saved.refreshAt * 1000);
        return Promise.resolve();
      }
      return this.mint(reason, saved.serial);
    }
    if (saved) this.#removeFile("left by an earlier run: other settings, expired, or a source read again at start");
    return this.mint(reason, saved?.serial);
  }

  /**
   * Called every second or so, and at once when the wall clock jumped (suspend and resume, a VM
   * restored, the clock set): timers run on the monotonic clock, which counts neither; this
   * mints what is due and drops what expired by the wall clock.
   */
  recheck(): void {
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    if (this.#current && now >= this.#current.expires * 1000) this.#expire(this.#current.serial);
    // A refresh that fell due by the wall clock runs now; a retry waits for its own timer: a
    // clock set forward must not call an API before the Retry-After it gave.
    if (this.#inflight || this.#failures > 0 || this.#dueAt === undefined || now < this.#dueAt) return;
    this.#background("schedule");
  }

  /**
   * The wall clock was set back by `-ms`: a token's expiry was computed against the clock before,
   * so its remaining life is no longer than it was. Its times move back with the clock (never
   * forward: a clock set forward may be time that really passed, a VM restored).
   */
  clockSetBack(ms: number): void {
    if (this.#stopped || ms >= 0 || !this.#current) return;
    const by = Math.ceil(-ms / 1000);
    const c = this.#current;
    const record: TokenRecord = {
      ...c,
      expires: c.expires - by,
      refreshAt: c.refreshAt - by,
      serveUntil: c.serveUntil === undefined ? undefined : c.serveUntil - by,
      serveUntilMs: c.serveUntilMs === undefined ? undefined : c.serveUntilMs - by * 1000,
    };
    try {
      this.#deps.store.writeToken(this.provider.config.name, this.owner, record);
    } catch (error) {
      this.#deps.log.error("cannot rewrite a token file after the clock was set back", { slot: this.name, error: describeError(error) });
    }
    this.#adopt(record);
    if (this.#failures === 0 && !this.#inflight) this.#scheduleRefresh(record.refreshAt * 1000);
  }

  /** Mints now unless a mint is already under way, in which case it waits for that one. */
  mint(reason: MintReason, lastSerial?: number): Promise<void> {
    if (this.#inflight) return this.#inflight;
    // A stopped slot (daemon stopping, provider retired by a reload) starts nothing new: a
    // pending re-mint or retry firing now would present a secret the next owner also holds.
    if (this.#stopped) return Promise.reject(new ProviderError("the provider was stopped or replaced (a reload); ask again", { transient: true }));
    this.#clearTimer();
    this.#inflight = this.#deps
      .limit(() => this.#mintOnce(reason, lastSerial))
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  /**
   * For a helper that found no usable token: mint unless the current one is fresh, and answer
   * at once with the last error while backing off, so failing git calls cause no mint storm.
   */
  async ensureFresh(): Promise<void> {
    const now = this.#deps.clock.now();
    // Half a second's slack: the helper tells the time from the heartbeat, to the hundredth.
    const c = this.#current;
    if (c && Math.min(c.refreshAt * 1000, c.serveUntilMs ?? servedUntil(c) * 1000) > now + 500) return;
    if (this.#inflight) return this.#inflight;
    if (this.#failures > 0 && this.#nextAttemptAt !== undefined && now < this.#nextAttemptAt && this.#lastError) {
      throw new ProviderError(this.#lastError.message, { transient: true });
    }
    return this.mint("first use");
  }

  /**
   * A host refused the token with this serial. Re-mint once for everyone who saw it refused,
   * and no more often than remintInterval however often the host refuses.
   */
  async refused(serial: number): Promise<void> {
    if (this.#current && this.#current.serial !== serial) return this.#inflight;
    if (this.#current) this.#refusedToken = this.#current.token;
    if (this.#inflight) return this.#inflight;
    if (this.#pendingRemint) return this.#pendingRemint;
    // While the source is failing, its backoff (and any Retry-After) holds for re-mints too: the
    // retry timer mints when it is due, however often hosts refuse meanwhile.
    if (this.#failures > 0 && this.#nextAttemptAt !== undefined && this.#deps.clock.now() < this.#nextAttemptAt) return;
    const lastMintMs = (this.#current?.mintedAt ?? 0) * 1000;
    const wait = lastMintMs + this.#options.remintIntervalMs - this.#deps.clock.now();
    this.#deps.metrics.refused(this.provider.config.name, this.owner);
    this.#deps.log.info("host refused the token; re-minting", {
      slot: this.name,
      serial,
      fingerprint: this.#current ? fingerprint(this.#current.token) : null,
      delayMs: Math.max(0, Math.round(wait)),
    });
    if (wait <= 0) return this.mint("refused", serial);
    this.#pendingRemint = new Promise<void>((resolve) => {
      this.#deps.clock.setTimeout(resolve, wait);
    })
      .then(() => this.mint("refused", serial))
      .finally(() => {
        this.#pendingRemint = undefined;
      });
    return this.#pendingRemint;
  }

  /**
   * Starts nothing more, and returns the mint in flight (settled, never rejecting): a source
   * that rotates its secret (GitLab) saves the new one when the answer comes, so whoever stops
   * a slot waits for that before another daemon or provider presents the old one.
   */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    if (this.#expiryTimer !== undefined) this.#deps.clock.clearTimeout(this.#expiryTimer);
    return (this.#inflight ?? Promise.resolve()).catch(() => undefined);
  }

  /**
   * A slot dropped for good (an owner forgotten, a provider retired) takes its tokens out of the
   * redactor: in any-owner mode thousands of them would otherwise stay for the daemon's life.
   */
  forgetSecrets(): void {
    for (const token of [this.#current?.token, this.#previousToken]) if (token) this.#deps.redactor.forgetSecret(token);
  }

  /** Stopped: its daemon stops, or a reload retired its provider. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** A mint is under way. */
  get minting(): boolean {
    return this.#inflight !== undefined;
  }

  status(): SlotStatus {
    return {
      provider: this.provider.config.name,
      type: this.provider.config.type,
      gitUrl: this.provider.config.gitOrigin,
      owner: this.owner,
      expiresAt: toIso(this.#current?.expires),
      refreshAt: toIso(this.#current?.refreshAt),
      fingerprint: this.#current ? fingerprint(this.#current.token) : null,
      lastMint: toIso(this.#current?.mintedAt),
      mints: this.#mints,
      failing: this.failing,
      lastError: this.#lastError?.message ?? null,
      nextAttempt: this.#failures > 0 && this.#nextAttemptAt ? new Date(this.#nextAttemptAt).toISOString() : null,
    };
  }

  async #mintOnce(reason: MintReason, lastSerial: number | undefined): Promise<void> {
    const { clock, log, store, redactor } = this.#deps;
    // Queued behind mintConcurrency while the daemon was told to stop: no API call.
    if (this.#stopped) throw new ProviderError("the provider was stopped or replaced (a reload) before its turn to mint; ask again", { transient: true });
    const started = clock.now();
    try {
      // A source that brokers tokens is told which of its tokens the host refused.
      const refused = reason === "refused" && this.#current ? fingerprint(this.#current.token) : undefined;
      const minted = await this.#withDeadline(this.provider.mint(this.owner, { refused }));
      // Stopped meanwhile (a reload replaced the provider, the daemon stops): nothing is saved,
      // and whoever waits hears so (a GitLab provider saved its new refresh token itself).
      if (this.#stopped) throw new ProviderError("the provider was stopped or replaced (a reload) before the new token could be saved; ask again", { transient: true });
      // A host refused this token: a mint that hands it back (a caching source) would have it
      // served, refused and re-minted without end: a failure of the source, until a new one.
      if (minted.token === this.#refusedToken) {
        throw new ProviderError("the token source handed back the token the host just refused (a cached token?)", {
          transient: true,
          hint: "have the source mint a new token when asked (bypass its cache), or check the token's permissions on the host",
        });
      }
      const now = clock.now();
      const { expiresMs, refreshAtMs, serveUntilMs } = this.#schedule(minted, now);
      this.#checkWorthServing(minted.token, expiresMs, refreshAtMs, now);
      redactor.addSecret(minted.token, expiresMs + SECRET_GRACE_MS);
      const record: TokenRecord = {
        token: minted.token,
        username: minted.username ?? this.provider.config.username,
        expires: Math.floor(expiresMs / 1000),
        serveUntil: Math.floor(serveUntilMs / 1000),
        serveUntilMs: Math.floor(serveUntilMs),
        refreshAt: Math.floor(refreshAtMs / 1000),
        mintedAt: Math.floor(now / 1000),
        // Never back to 1 after an expired token was dropped: a refusal quoting an old serial
        // must not match the new token.
        serial: Math.max(this.#lastSerial, lastSerial ?? 0) + 1,
        config: this.#configHash,
        // Azure DevOps takes Entra ID tokens as bearer tokens (Microsoft's documented way).
        authtype: this.provider.config.type === "azure-devops" ? "Bearer" : undefined,
      };
      store.writeToken(this.provider.config.name, this.owner, record);
      if (this.#previousToken) redactor.forgetSecret(this.#previousToken);
      this.#previousToken = this.#current?.token;
      this.#adopt(record);
      this.#mints++;
      this.#deps.metrics.minted(this.provider.config.name, this.owner, reason);
      const recovered = this.#failures > 0;
      this.#failures = 0;
      this.#lastPermanent = false;
      this.#lastError = undefined;
      this.#nextAttemptAt = undefined;
      log.info(recovered ? "minted token; token source recovered" : "minted token", {
        slot: this.name,
        reason,
        fingerprint: fingerprint(minted.token),
        serial: record.serial,
        expiresAt: new Date(expiresMs).toISOString(),
        refreshAt: new Date(refreshAtMs).toISOString(),
        tookMs: now - started,
      });
      // The file keeps whole seconds for sh; the timer keeps the exact time (a second lost on
      // a few-second token would mean many more mints).
      this.#scheduleRefresh(refreshAtMs);
    } catch (error) {
      // Stopped: no backoff, no retry; the caller hears why.
      if (this.#stopped) throw error;
      this.#failures++;
      const retryAfterMs = error instanceof ProviderError ? error.retryAfterMs : undefined;
      const transient = !(error instanceof ProviderError) || error.transient;
      // Shown by status, /healthz and the helper: redacted like the log (a command's stderr may hold a token).
      this.#lastError = { message: redactor.redact(describeError(error)), retryAfterMs };
      this.#deps.metrics.mintFailed(this.provider.config.name, this.owner, transient);
      const delay = backoffDelay(this.#failures, {
        permanent: !transient,
        minMs: this.#options.retryMinMs,
        maxMs: this.#options.retryMaxMs,
        random: clock.random(),
        retryAfterMs,
      });
      this.#nextAttemptAt = clock.now() + delay;
      this.#dueAt = this.#nextAttemptAt;
      const expiresIn = this.#current ? this.#current.expires * 1000 - clock.now() : undefined;
      log.warn("mint failed", {
        slot: this.name,
        reason,
        error: this.#lastError.message,
        transient,
        failures: this.#failures,
        retryInMs: Math.round(delay),
        currentTokenExpiresInMs: expiresIn === undefined ? null : Math.round(expiresIn),
      });
      this.#lastPermanent = !transient;
      this.#timer = clock.setTimeout(() => this.#background("retry"), delay);
      throw error;
    } finally {
      this.#deps.onChange();
    }
  }

  /**
   * A token a source hands out again and again as it nears its expiry (a cache: Vault Agent,
   * IMDS, a caching STS) is an error of the source, backed off like any other, never a loop:
   * it must expire after it was minted, later than its refresh time, and the same token again
   * must still have half of refreshBefore (or of the life it first came with) left. A new token
   * of any life is worth serving: the source's lifetime may have changed.
   */
  #checkWorthServing(token: string, expiresMs: number, refreshAtMs: number, now: number): void {
    const life = expiresMs - now;
    const hint = "the source hands out a cached token near its expiry: have it mint a new one (or renew it earlier), and check this machine's clock against the source's";
    const at = new Date(expiresMs).toISOString();
    if (life <= 0) throw new ProviderError(`the token source returned a token that expired at ${at}`, { transient: true, hint });
    if (!(refreshAtMs > now) || life < MIN_TOKEN_LIFE_MS) {
      throw new ProviderError(`the token source returned a token that expires at ${at}, too soon to serve`, { transient: true, hint });
    }
    // A token is refreshed at half its remaining life when that is shorter than refreshBefore:
    // the same token handed out again would be refreshed ever sooner without this floor.
    const seen = this.#firstSeen?.token === token ? this.#firstSeen : undefined;
    const floor = seen ? Math.min(this.#options.refreshBeforeMs, seen.lifeMs) / 2 : 0;
    if (life < floor) {
      throw new ProviderError(
        `the token source returned the token it returned before, now with ${(life / 1000).toFixed(1)}s left (under ${(floor / 1000).toFixed(1)}s): a cached token, nothing new to serve`,
        { transient: true, hint },
      );
    }
    if (!seen) this.#firstSeen = { token, lifeMs: life };
  }

  // From the token's own expiry (the source's, else its JWT exp), else from refreshEvery. An
  // expiry a token API gave with a Date header counts from that clock: the token lives as long
  // on this machine as the API says, whatever the two clocks say (a host judges by its own).
  #schedule(minted: MintedToken, now: number): { expiresMs: number; refreshAtMs: number; serveUntilMs: number } {
    const expiresAt = minted.expiresAt ?? jwtExpiry(minted.token);
    if (expiresAt) {
      const skew = minted.serverDate ? minted.serverDate.getTime() - now : 0;
      const expiresMs = expiresAt.getTime() - (Math.abs(skew) > SKEW_IGNORED_MS ? skew : 0);
      const serveUntilMs = expiresMs - servingMargin(expiresMs - now);
      const refreshAtMs = Math.min(refreshAt(now, expiresMs, this.#options.refreshBeforeMs, this.#deps.clock.random()), serveUntilMs);
      return { expiresMs, refreshAtMs, serveUntilMs };
    }
    const every = this.provider.config.refreshEvery;
    if (!every) {
      throw new ProviderError("the token source said nothing of the token's expiry, and it is not a JWT", {
        transient: false,
        hint: "set refreshEvery on this provider (a duration such as 30m, or a cron expression)",
      });
    }
    const { refreshAt: at, expiresAt: soft } = scheduleFromRefreshEvery(every, now);
    return { expiresMs: soft, refreshAtMs: at, serveUntilMs: soft };
  }

  #adopt(record: TokenRecord): void {
    this.#current = record;
    this.#lastSerial = Math.max(this.#lastSerial, record.serial);
    this.#deps.redactor.addSecret(record.token, record.expires * 1000 + SECRET_GRACE_MS);
    if (this.#expiryTimer !== undefined) this.#deps.clock.clearTimeout(this.#expiryTimer);
    // A token past its expiry is never handed out, even while the source keeps failing.
    this.#expiryTimer = this.#deps.clock.setTimeout(() => this.#expire(record.serial), record.expires * 1000 - this.#deps.clock.now());
  }

  // Every source has its own timeouts, but none may hold a mint (and a mintConcurrency permit)
  // forever: a library's retries, a service that trickles, a lookup that hangs.
  #withDeadline<T>(work: Promise<T>): Promise<T> {
    const { clock } = this.#deps;
    let timer: unknown;
    const ms = mintDeadlineMs(this.provider.config);
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = clock.setTimeout(
        () => reject(new ProviderError(`the token source did not answer within ${ms / 1000}s`, { transient: true, hint: "check that the token service is reachable and answering" })),
        ms,
      );
    });
    return Promise.race([work, deadline]).finally(() => clock.clearTimeout(timer));
  }

  #expire(serial: number): void {
    if (this.#current?.serial !== serial) return;
    // A timer that fired early (any clock's limit) must not drop a token that is still valid.
    if (this.#deps.clock.now() < this.#current.expires * 1000) {
      this.#adopt(this.#current);
      return;
    }
    this.#deps.log.warn("token expired before a new one could be minted; removed it", { slot: this.name });
    this.#removeFile("expired");
    this.#current = undefined;
    this.#deps.onChange();
  }

  #removeFile(why: string): void {
    try {
      this.#deps.store.removeToken(this.provider.config.name, this.owner);
    } catch (error) {
      this.#deps.log.error(`cannot remove a token file (${why})`, { slot: this.name, error: describeError(error) });
    }
  }

  #scheduleRefresh(atMs: number): void {
    if (!this.#current || this.#stopped) return;
    this.#clearTimer();
    const delay = atMs - this.#deps.clock.now();
    this.#dueAt = atMs;
    this.#timer = this.#deps.clock.setTimeout(() => this.#background("schedule"), delay);
  }

  // A timer's mint, unless the slot is on demand and nobody wants it now.
  #background(reason: "schedule" | "retry"): void {
    const wanted = this.#options.wanted;
    if (wanted && !wanted({ permanent: this.#lastPermanent })) {
      this.#timer = undefined;
      return;
    }
    void this.mint(reason).catch(() => undefined);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dueAt = undefined;
  }
}
