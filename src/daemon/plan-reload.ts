import type { KeeperConfig, ProviderConfig } from "../config/keeper-config.ts";

/** What makes two provider settings the same for a reload: everything, timing included. */
function settingsKey(provider: ProviderConfig, config: KeeperConfig): string {
  const { refreshBeforeMs, retryMinMs, retryMaxMs, remintIntervalMs } = config;
  return JSON.stringify({ provider, refreshBeforeMs, retryMinMs, retryMaxMs, remintIntervalMs });
}

export interface ReloadPlan {
  /** Providers no longer configured: stop them and delete their tokens. */
  removed: string[];
  /** New providers, and providers whose settings changed: (re)start them. */
  started: ProviderConfig[];
  /** Providers that keep running with their tokens. */
  unchanged: string[];
  /** Settings that a reload cannot apply. */
  needsRestart: string[];
}

/** Compares two validated configs: which providers keep their tokens, which start, which stop. */
export function planReload(previous: KeeperConfig, next: KeeperConfig): ReloadPlan {
  const before = new Map(previous.providers.map((p) => [p.name, settingsKey(p, previous)]));
  const started = next.providers.filter((p) => before.get(p.name) !== settingsKey(p, next));
  const labels = [["stateDir", "stateDir"], ["stateGid", "stateGroup"], ["metricsListen", "metrics"], ["mintConcurrency", "mintConcurrency"]] as const;
  return {
    removed: previous.providers.map((p) => p.name).filter((n) => !next.providers.some((p) => p.name === n)),
    started,
    unchanged: next.providers.filter((p) => !started.includes(p)).map((p) => p.name),
    needsRestart: labels.filter(([key]) => JSON.stringify(previous[key]) !== JSON.stringify(next[key])).map(([, label]) => label),
  };
}
