import { PassThrough } from "node:stream";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { limitConcurrency } from "../../../src/daemon/limit-concurrency.ts";
import { MINT_DEADLINE_MS, mintDeadlineMs, TokenSlot } from "../../../src/daemon/token-slot.ts";
import type { ProviderBase } from "../../../src/providers/settings/provider-base.ts";
import { ProviderError } from "../../../src/errors/keeper-error.ts";
import { createLogger } from "../../../src/log/logger.ts";
import { noMetrics } from "../../../src/metrics/metrics-sink.ts";
import { Redactor } from "../../../src/log/redact.ts";
import type { MintedToken, TokenProvider } from "../../../src/providers/token-provider.ts";
import { TokenStore } from "../../../src/store/token-store.ts";
import { FakeClock } from "../../support/fake-clock.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

const HOUR = 3_600_000;
const MIN = 60_000;

class ScriptedProvider implements TokenProvider {
  readonly config = { name: "p", type: "github-app", gitOrigin: "https://github.com", owners: ["acme"], pathPrefix: "/", perOwner: true, refreshEvery: undefined, sshToHttps: false, username: "x-access-token" };
  mints = 0;
  failWith: Error | undefined;
  lifetimeMs = HOUR;
  gate: Promise<void> | undefined;
  constructor(private readonly clock: FakeClock) {}
  async initialOwners() {
    return ["acme"];
  }
  servedOwners() {
    return ["acme"];
  }
  /** A cache: the same token with the same expiry, whenever asked. */
  fixed: MintedToken | undefined;
  async mint(): Promise<MintedToken> {
    this.mints++;
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    if (this.fixed) return this.fixed;
    return { token: `tok-${this.mints}-${"x".repeat(20)}`, expiresAt: new Date(this.clock.now() + this.lifetimeMs), username: "x-access-token" };
  }
}

function setup(clock: FakeClock = new FakeClock()) {
  const store = new TokenStore(tempDir());
  store.init();
  const logStream = new PassThrough();
  let log = "";
  logStream.on("data", (c: Buffer) => (log += c.toString()));
  // Tokens are forgotten by the redactor at their expiry: by the slot's clock, as in the daemon.
  const redactor = new Redactor({ now: () => clock.now() });
  const provider = new ScriptedProvider(clock);
  const slot = new TokenSlot(
    provider,
    "acme",
    { refreshBeforeMs: 10 * MIN, retryMinMs: 1_000, retryMaxMs: 60_000, remintIntervalMs: 5_000 },
    { store, clock, log: createLogger({ redactor, format: "json", stream: logStream }), redactor, limit: (t) => t(), onChange: () => {}, metrics: noMetrics },
  );
  return { clock, store, provider, slot, redactor, logText: () => log };
}

/** A clock whose timers are capped the way Node's are: they fire early past 2^31-1 ms. */
class CappedClock extends FakeClock {
  override setTimeout(fn: () => void, ms: number): unknown {
    return super.setTimeout(fn, Math.min(ms, 2_147_483_647));
  }
}

describe("TokenSlot", () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });
  afterAll(removeTempDirs);

  it("mints at start and again before refreshBefore, from expires_at, not a fixed interval", async () => {
    t.clock.randomValue = 0;
    await t.slot.start("start");
    const first = t.store.readToken("p", "acme");
    expect(first?.token).toBe(`tok-1-${"x".repeat(20)}`);
    expect((first!.expires - first!.refreshAt) * 1000).toBe(10 * MIN);
    await t.clock.advance(50 * MIN - 1_000);
    expect(t.provider.mints).toBe(1);
    await t.clock.advance(1_000);
    expect(t.provider.mints).toBe(2);
    // A source that now issues 6-second tokens is refreshed after 3 seconds.
    t.provider.lifetimeMs = 6_000;
    await t.clock.advance(60 * MIN);
    const current = t.store.readToken("p", "acme")!;
    expect(current.expires * 1000 - t.clock.now()).toBeGreaterThan(2_000);
  });

  it("keeps serving the current token while the source fails, backs off, then recovers", async () => {
    await t.slot.start("start");
    const good = t.store.readToken("p", "acme")!.token;
    t.provider.failWith = new ProviderError("HTTP 502", { transient: true });
    await t.clock.advance(51 * MIN);
    expect(t.slot.failing).toBe(true);
    expect(t.store.readToken("p", "acme")?.token).toBe(good);
    const mintsWhileFailing = t.provider.mints;
    await t.clock.advance(3 * MIN);
    // Backoff: about 1+2+4+8+16+32+60+60 s; far fewer tries than one a second.
    expect(t.provider.mints - mintsWhileFailing).toBeLessThan(10);
    expect(t.slot.status().lastError).toContain("HTTP 502");
    t.provider.failWith = undefined;
    await t.clock.advance(2 * MIN);
    expect(t.slot.failing).toBe(false);
    expect(t.store.readToken("p", "acme")?.token).not.toBe(good);
    expect(t.logText()).toContain("token source recovered");
  });

  it("removes a token when it expires and the source is still failing", async () => {
    await t.slot.start("start");
    t.provider.failWith = new ProviderError("down", { transient: true });
    await t.clock.advance(HOUR + 1_000);
    expect(t.store.readToken("p", "acme")).toBeUndefined();
  });

  it("re-mints once for many refusals of the same token, and not for an older one", async () => {
    await t.slot.start("start");
    await t.clock.advance(10_000);
    const serial = t.store.readToken("p", "acme")!.serial;
    const before = t.provider.mints;
    await Promise.all(Array.from({ length: 20 }, () => t.slot.refused(serial)));
    expect(t.provider.mints - before).toBe(1);
    await t.slot.refused(serial);
    expect(t.provider.mints - before).toBe(1);
  });

  it("spaces re-mints on refusal by remintInterval however often the host refuses", async () => {
    await t.slot.start("start");
    const serial = t.store.readToken("p", "acme")!.serial;
    const done = t.slot.refused(serial);
    expect(t.provider.mints).toBe(1);
    await t.clock.advance(4_000);
    expect(t.provider.mints).toBe(1);
    await t.clock.advance(1_000);
    await done;
    expect(t.provider.mints).toBe(2);
  });

  it("answers a token request during backoff with the last error instead of minting", async () => {
    t.provider.failWith = new ProviderError("HTTP 503", { transient: true });
    await expect(t.slot.start("start")).rejects.toThrow("HTTP 503");
    const mints = t.provider.mints;
    await expect(t.slot.ensureFresh()).rejects.toThrow("HTTP 503");
    expect(t.provider.mints).toBe(mints);
  });

  it("shares one in-flight mint between concurrent asks", async () => {
    let open!: () => void;
    t.provider.gate = new Promise((r) => (open = r));
    const asks = [t.slot.ensureFresh(), t.slot.ensureFresh(), t.slot.mint("refresh")];
    open();
    await Promise.all(asks);
    expect(t.provider.mints).toBe(1);
  });

  it("resumes a fresh token left by an earlier run instead of minting", async () => {
    await t.slot.start("start");
    const again = new TokenSlot(t.provider, "acme", { refreshBeforeMs: 10 * MIN, retryMinMs: 1_000, retryMaxMs: 60_000, remintIntervalMs: 5_000 }, {
      store: t.store,
      clock: t.clock,
      log: createLogger({ redactor: new Redactor(), format: "json", stream: new PassThrough() }),
      redactor: new Redactor(),
      limit: (f) => f(),
      onChange: () => {},
      metrics: noMetrics,
    });
    await again.start("start");
    expect(t.provider.mints).toBe(1);
    expect(again.status().fingerprint).toBe(t.slot.status().fingerprint);
  });

  it("a token valid for months is not dropped when a timer fires early", async () => {
    const capped = setup(new CappedClock());
    capped.provider.lifetimeMs = 60 * 24 * HOUR;
    await capped.slot.start("start");
    capped.provider.failWith = new ProviderError("source down", { transient: true });
    // Past Node's timer limit (24.8 days), well before the token's expiry (60 days).
    await capped.clock.advance(26 * 24 * HOUR);
    expect(capped.store.readToken("p", "acme")?.token).toBe(`tok-1-${"x".repeat(20)}`);
    expect(capped.logText()).not.toContain("token expired");
    await capped.clock.advance(35 * 24 * HOUR);
    expect(capped.store.readToken("p", "acme")).toBeUndefined();
  });

  it("a source whose configured timeout is longer gets that long: 3 request timeouts, never less than the 2 minutes", async () => {
    const withTimeout = (extra: Record<string, unknown>) => ({ ...t.provider.config, ...extra }) as unknown as ProviderBase;
    expect(mintDeadlineMs(withTimeout({ timeout: 5 * MIN }))).toBe(15 * MIN);
    expect(mintDeadlineMs(withTimeout({ type: "http", timeout: 4 * MIN }))).toBe(12 * MIN);
    expect(mintDeadlineMs(withTimeout({ timeout: 10_000 }))).toBe(MINT_DEADLINE_MS);
    expect(mintDeadlineMs(withTimeout({}))).toBe(MINT_DEADLINE_MS);
    // A 4-minute mint of a source configured with a 5-minute timeout is not cut off at 2.
    Object.assign(t.provider.config, { timeout: 5 * MIN });
    let open!: () => void;
    t.provider.gate = new Promise<void>((resolve) => (open = resolve));
    const starting = t.slot.start("start").catch(() => undefined);
    await t.clock.advance(4 * MIN);
    open();
    await starting;
    expect(t.slot.failing).toBe(false);
    expect(t.store.readToken("p", "acme")?.token).toMatch(/^tok-/);
  });

  it("a mint that never answers is cut off at the deadline, counted as a failure, and retried", async () => {
    t.provider.gate = new Promise<void>(() => undefined);
    const starting = t.slot.start("start").catch(() => undefined);
    await t.clock.advance(MINT_DEADLINE_MS);
    await starting;
    expect(t.slot.failing).toBe(true);
    expect(t.slot.status().lastError).toContain(`did not answer within ${MINT_DEADLINE_MS / 1000}s`);
    t.provider.gate = undefined;
    await t.clock.advance(2 * 60_000);
    expect(t.store.readToken("p", "acme")?.token).toMatch(/^tok-/);
  });

  it("writes serve_until 10 s before expiry (a quarter of the life for a short token), and refreshes before it", async () => {
    await t.slot.start("start");
    const long = t.store.readToken("p", "acme")!;
    expect(long.expires - long.serveUntil!).toBe(10);
    expect(long.refreshAt).toBeLessThanOrEqual(long.serveUntil!);
    t.provider.lifetimeMs = 8_000;
    await t.slot.mint("refresh");
    const short = t.store.readToken("p", "acme")!;
    expect(short.expires - short.serveUntil!).toBe(2);
  });

  it("mints at once when the wall clock jumps past the refresh time (timers do not see a suspend)", async () => {
    await t.slot.start("start");
    const first = t.store.readToken("p", "acme")!;
    t.clock.jump(2 * HOUR);
    await t.clock.advance(0);
    // The monotonic timers have not fired: the token on disk is the expired one.
    expect(t.provider.mints).toBe(1);
    t.slot.recheck();
    await t.clock.advance(0);
    expect(t.provider.mints).toBe(2);
    const next = t.store.readToken("p", "acme")!;
    expect(next.serial).toBe(first.serial + 1);
    expect(next.serveUntil! * 1000).toBeGreaterThan(t.clock.now());
  });

  it("drops a token the wall clock says expired even while the source fails", async () => {
    await t.slot.start("start");
    t.provider.failWith = new ProviderError("down", { transient: true });
    t.clock.jump(2 * HOUR);
    t.slot.recheck();
    await t.clock.advance(0);
    expect(t.slot.current).toBeUndefined();
    expect(t.store.readToken("p", "acme")).toBeUndefined();
  });

  it("a source handing out the same cached token as it nears expiry is backed off, never a loop", async () => {
    t.provider.fixed = { token: `cached-${"x".repeat(20)}`, expiresAt: new Date(t.clock.now() + 20_000) };
    await t.slot.start("start");
    await t.clock.advance(30_000);
    // 20 s, then at 10 s left (half), then refused at 5 s left; retries back off from 1 s.
    expect(t.provider.mints).toBeLessThanOrEqual(8);
    expect(t.slot.status().lastError).toMatch(/returned before|expired/);
    expect(t.slot.failing).toBe(true);
  });

  it("a different short-lived token is served: the source's lifetime changed, not a cache", async () => {
    await t.slot.start("start");
    t.provider.lifetimeMs = 6_000;
    await t.slot.mint("refresh");
    expect(t.slot.failing).toBe(false);
    expect(t.slot.current?.token).toMatch(/^tok-2-/);
  });

  it("re-mints for refused tokens wait out the backoff and Retry-After of a failing source", async () => {
    await t.slot.start("start");
    const serial = t.slot.current!.serial;
    t.provider.failWith = new ProviderError("HTTP 429", { transient: true, retryAfterMs: 60_000 });
    await t.slot.mint("refresh").catch(() => undefined);
    expect(t.provider.mints).toBe(2);
    for (let i = 0; i < 10; i++) await t.slot.refused(serial);
    expect(t.provider.mints).toBe(2);
    await t.clock.advance(60_000);
    expect(t.provider.mints).toBe(3);
  });

  it("a token file of other settings is removed before the mint that replaces it, never served meanwhile", async () => {
    t.store.writeToken("p", "acme", { token: `old-${"x".repeat(20)}`, username: "u", expires: t.clock.now() / 1000 + 3600, refreshAt: t.clock.now() / 1000 + 3000, mintedAt: 0, serial: 4, config: "other-settings" });
    let open!: () => void;
    t.provider.gate = new Promise((resolve) => (open = resolve));
    const started = t.slot.start("start");
    await t.clock.advance(0);
    expect(t.store.readToken("p", "acme")).toBeUndefined();
    open();
    await started;
    expect(t.store.readToken("p", "acme")?.serial).toBe(5);
  });

  it("a resumed token past its refresh time is served while it may be, and replaced at once", async () => {
    await t.slot.start("start");
    const saved = t.store.readToken("p", "acme")!;
    const again = setup(t.clock);
    again.store.writeToken("p", "acme", saved);
    // Same settings, past refresh_at, before serve_until; the source is down.
    t.clock.jump(55 * MIN);
    again.provider.failWith = new ProviderError("down", { transient: true });
    await again.slot.start("start").catch(() => undefined);
    expect(again.slot.current?.token).toBe(saved.token);
    // It is dropped at its expiry all the same.
    await t.clock.advance(5 * MIN);
    expect(again.slot.current).toBeUndefined();
    expect(again.store.readToken("p", "acme")).toBeUndefined();
  });

  // Issue 24, finding 15: mints queued behind mintConcurrency still called the API after a SIGTERM.
  it("a mint queued behind mintConcurrency when the slot stops never calls the source", async () => {
    const limit = limitConcurrency(1);
    const other = setup(t.clock);
    const slotWith = (x: ReturnType<typeof setup>) =>
      new TokenSlot(x.provider, "acme", { refreshBeforeMs: 10 * MIN, retryMinMs: 1_000, retryMaxMs: 60_000, remintIntervalMs: 5_000 }, { store: x.store, clock: x.clock, log: createLogger({ redactor: new Redactor(), format: "json", stream: new PassThrough() }), redactor: new Redactor(), limit, onChange: () => {}, metrics: noMetrics });
    let open!: () => void;
    t.provider.gate = new Promise((resolve) => (open = resolve));
    const first = slotWith(t);
    const queued = slotWith(other);
    const running = first.start("start");
    const waiting = queued.start("start");
    await t.clock.advance(0);
    expect(t.provider.mints).toBe(1);
    void first.stop();
    void queued.stop();
    open();
    await Promise.allSettled([running, waiting]);
    expect(other.provider.mints).toBe(0);
  });

  // Review of issue 24: a source handing back the refused token looped on re-mints.
  it("a re-mint that hands back the token the host refused is a failure of the source, backed off", async () => {
    t.provider.fixed = { token: `cached-${"x".repeat(20)}`, expiresAt: new Date(t.clock.now() + HOUR) };
    await t.slot.start("start");
    const serial = t.slot.current!.serial;
    for (let i = 0; i < 6; i++) {
      void t.slot.refused(serial).catch(() => undefined);
      await t.clock.advance(5_000);
    }
    expect(t.slot.failing).toBe(true);
    expect(t.slot.status().lastError).toContain("handed back the token the host just refused");
    expect(t.slot.current!.serial).toBe(serial);
    // The start, then retries backing off from 1 s (1, 2, 4, 8 … s) in 30 s.
    expect(t.provider.mints).toBeLessThanOrEqual(8);
  });

  // Review of issue 24: after the clock was set back, an expired token was served for the jump.
  it("a clock set back moves the token's times back with it: never served past its real expiry", async () => {
    await t.slot.start("start");
    const before = t.slot.current!;
    t.slot.clockSetBack(-HOUR);
    const after = t.store.readToken("p", "acme")!;
    expect(after.expires).toBe(before.expires - 3600);
    expect(after.serveUntil).toBe(before.serveUntil! - 3600);
    expect(after.refreshAt).toBe(before.refreshAt - 3600);
  });

  // Issue 24, finding 15: a retired or forgotten slot's tokens stayed in the redactor for good.
  it("a slot dropped for good takes its tokens out of the redactor", async () => {
    await t.slot.start("start");
    const token = t.slot.current!.token;
    expect(t.redactor.redact(`x ${token} y`)).not.toContain(token);
    await t.slot.stop();
    t.slot.forgetSecrets();
    expect(t.redactor.redact(`x ${token} y`)).toContain(token);
  });

  // The broker mints a token per scope, thousands: each is forgotten once past its expiry.
  it("a minted token stays redacted until 10 minutes past its expiry, then the redactor forgets it", async () => {
    await t.slot.start("start");
    const token = t.slot.current!.token;
    t.provider.failWith = new ProviderError("down", { transient: true });
    await t.clock.advance(HOUR + 9 * MIN);
    expect(t.slot.current).toBeUndefined();
    expect(t.redactor.redact(`x ${token} y`)).not.toContain(token);
    await t.clock.advance(2 * MIN);
    expect(t.redactor.redact(`x ${token} y`)).toBe(`x ${token} y`);
  });
});
