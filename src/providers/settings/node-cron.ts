import { createRequire } from "node:module";

type NodeCron = typeof import("node-cron");
let loaded: NodeCron | undefined;

/**
 * node-cron, loaded on first use: only a config with a cron `refreshEvery` pays for it (about
 * 4 MB resident in the daemon). Synchronous, because the config schema checks with it.
 */
export function nodeCron(): NodeCron {
  loaded ??= createRequire(import.meta.url)("node-cron") as NodeCron;
  return loaded;
}
