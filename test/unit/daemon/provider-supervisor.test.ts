import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../../src/config/keeper-config.ts";
import { ProviderSupervisor } from "../../../src/daemon/provider-supervisor.ts";
import { createLogger } from "../../../src/log/logger.ts";
import { Redactor } from "../../../src/log/redact.ts";
import { noMetrics } from "../../../src/metrics/metrics-sink.ts";
import type { MintedToken, TokenProvider } from "../../../src/providers/token-provider.ts";
import { TokenStore } from "../../../src/store/token-store.ts";
import { keeperConfig, sharedProviderConfig } from "../../support/config-fixtures.ts";
import { FakeClock } from "../../support/fake-clock.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

const providerConfig = (username: string) => sharedProviderConfig("p", { pathPrefix: "/", username });
const config = (providers: ProviderConfig[]) => keeperConfig(providers);

/** A shared-token provider whose start (and watch) waits until released. */
class SlowProvider implements TokenProvider {
  mints = 0;
  disposed = 0;
  watching = false;
  release!: () => void;
  readonly started = new Promise<void>((resolve) => (this.release = resolve));
  constructor(readonly config: ProviderConfig, private readonly clock: FakeClock, private readonly slowWatch = false) {}
  async initialOwners() {
    if (!this.slowWatch) await this.started;
    return [];
  }
  servedOwners() {
    return undefined;
  }
  async watch() {
    if (this.slowWatch) await this.started;
    this.watching = true;
  }
  async dispose() {
    this.disposed++;
    this.watching = false;
  }
  async mint(): Promise<MintedToken> {
    this.mints++;
    return { token: `tok-${this.config.username}-${this.mints}-${"x".repeat(16)}`, expiresAt: new Date(this.clock.now() + 3_600_000) };
  }
}

function supervisor(first: TokenProvider, create: (c: ProviderConfig) => TokenProvider, clock: FakeClock, store = new TokenStore(tempDir())) {
  store.init();
  const redactor = new Redactor();
  return new ProviderSupervisor(config([first.config as ProviderConfig]), [first], {
    store,
    clock,
    log: createLogger({ redactor, format: "json", stream: new PassThrough() }),
    redactor,
    metrics: noMetrics,
    limit: (t) => t(),
    create,
    onChange: () => undefined,
    onRoutes: () => undefined,
  });
}

describe("ProviderSupervisor", () => {
  afterAll(removeTempDirs);

  it("a reload during a slow start: the old provider's start finishes into nothing, requests reach the new one", async () => {
    const clock = new FakeClock();
    const old = new SlowProvider(providerConfig("old"), clock);
    const replacement = new SlowProvider(providerConfig("new"), clock);
    const s = supervisor(old, () => replacement, clock);
    const starting = s.startAll();
    await s.reload(config([replacement.config]));
    // The old start finishes first, then the new one.
    old.release();
    await starting;
    replacement.release();
    await clock.advance(10);
    const slot = s.slotFor("p", "shared");
    expect(slot?.provider).toBe(replacement);
    await slot?.ensureFresh();
    expect(old.mints).toBe(0);
    expect(replacement.mints).toBeGreaterThan(0);
    expect(s.slots.every((x) => x.provider === replacement)).toBe(true);
  });

  it("a provider retired while its watcher starts leaves nothing running", async () => {
    const clock = new FakeClock();
    const old = new SlowProvider(providerConfig("old"), clock, true);
    const replacement = new SlowProvider(providerConfig("new"), clock);
    replacement.release();
    const s = supervisor(old, () => replacement, clock);
    const starting = s.startAll();
    await clock.advance(10);
    await s.reload(config([replacement.config]));
    old.release();
    await starting;
    expect(old.watching).toBe(false);
    expect(old.disposed).toBeGreaterThan(0);
  });

  it("an any-owner provider forgets owners nobody asked for in forgetOwnerAfter, and deletes their tokens", async () => {
    const clock = new FakeClock();
    const anyOwner = new SlowProvider(sharedProviderConfig("p", { pathPrefix: "/", perOwner: true }), clock);
    anyOwner.release();
    const store = new TokenStore(tempDir());
    const s = supervisor(anyOwner, () => anyOwner, clock, store);
    await s.startAll();
    await s.slotFor("p", "made-up")?.ensureFresh();
    await clock.advance(12 * 3_600_000);
    await s.slotFor("p", "acme")?.ensureFresh();
    expect(store.listOwners("p").sort()).toEqual(["acme", "made-up"]);
    await clock.advance(13 * 3_600_000);
    expect(store.listOwners("p")).toEqual(["acme"]);
    expect(s.slots.map((x) => x.owner)).toEqual(["acme"]);
    await s.stopAll();
  });
});
