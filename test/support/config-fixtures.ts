import type { KeeperConfig, ProviderConfig } from "../../src/config/keeper-config.ts";

/** A validated config as load-config would produce it, with the defaults. */
export function keeperConfig(providers: ProviderConfig[], extra: Partial<KeeperConfig> = {}): KeeperConfig {
  return {
    source: "c.yaml",
    stateDir: undefined,
    stateGid: undefined,
    metricsListen: undefined,
    refreshBeforeMs: 600_000,
    retryMinMs: 1_000,
    retryMaxMs: 60_000,
    remintIntervalMs: 5_000,
    mintConcurrency: 8,
    forgetOwnerAfterMs: 86_400_000,
    providers,
    warnings: [],
    ...extra,
  };
}

/** A shared-token provider's validated settings. */
export function sharedProviderConfig(name: string, extra: Partial<ProviderConfig> = {}): ProviderConfig {
  return { name, type: "exec", gitOrigin: "https://git.example", owners: undefined, pathPrefix: `/${name}/`, perOwner: false, refreshEvery: undefined, sshToHttps: false, username: "x", ...extra } as ProviderConfig;
}
