import type { ProviderConfig } from "../providers/provider-registry.ts";

export type { ProviderConfig };


/** The validated configuration: everything a daemon needs, nothing left to check. */
export interface KeeperConfig {
  source: string;
  stateDir: string | undefined;
  /** The shared group of the group layout (tokens 0640, requests 0770); undefined: private. */
  stateGid: number | undefined;
  /** Where to serve Prometheus metrics and /healthz: `host:port` on loopback or `unix:/path`. */
  metricsListen: string | undefined;
  refreshBeforeMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  remintIntervalMs: number;
  mintConcurrency: number;
  /** Any-owner providers: an owner not asked for this long is dropped, its token deleted. */
  forgetOwnerAfterMs: number;
  providers: ProviderConfig[];
  /** Problems worth a warning that do not stop the daemon. */
  warnings: string[];
}
