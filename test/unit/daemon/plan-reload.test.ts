import { describe, expect, it } from "vitest";
import { planReload } from "../../../src/daemon/plan-reload.ts";
import { keeperConfig, sharedProviderConfig } from "../../support/config-fixtures.ts";

const provider = sharedProviderConfig;
const config = keeperConfig;

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

  it("says that a changed mintConcurrency needs a restart (it was ignored without a word)", () => {
    expect(planReload(config([provider("a")]), config([provider("a")], { mintConcurrency: 2 })).needsRestart).toEqual(["mintConcurrency"]);
  });
});
