import { describe, expect, it } from "vitest";
import type { KeeperConfig, ProviderConfig } from "../../../src/config/keeper-config.ts";
import { planReload } from "../../../src/daemon/plan-reload.ts";

const provider = (name: string, extra: Partial<ProviderConfig> = {}) =>
  ({ name, type: "exec", gitOrigin: "https://git.example", owners: undefined, pathPrefix: `/${name}/`, perOwner: false, refreshEvery: undefined, sshToHttps: false, username: "x", ...extra }) as ProviderConfig;
const config = (providers: ProviderConfig[], extra: Partial<KeeperConfig> = {}): KeeperConfig => ({
  source: "c.yaml",
  stateDir: undefined,
  stateGid: undefined,
  metricsListen: undefined,
  refreshBeforeMs: 600_000,
  retryMinMs: 1_000,
  retryMaxMs: 60_000,
  remintIntervalMs: 5_000,
  mintConcurrency: 8,
  providers,
  warnings: [],
  ...extra,
});

describe("planReload", () => {
  it("keeps unchanged providers, starts new and changed ones, stops removed ones", () => {
    const plan = planReload(config([provider("a"), provider("b"), provider("c")]), config([provider("a"), provider("b", { username: "y" }), provider("d")]));
    expect(plan.unchanged).toEqual(["a"]);
    expect(plan.started.map((p) => p.name)).toEqual(["b", "d"]);
    expect(plan.removed).toEqual(["c"]);
    expect(plan.needsRestart).toEqual([]);
  });

  it("restarts every provider when shared timing changes, and names settings that need a restart", () => {
    const plan = planReload(config([provider("a")]), config([provider("a")], { refreshBeforeMs: 60_000, stateDir: "/run/x", metricsListen: "127.0.0.1:9" }));
    expect(plan.started.map((p) => p.name)).toEqual(["a"]);
    expect(plan.needsRestart).toEqual(["stateDir", "metrics"]);
  });
});
