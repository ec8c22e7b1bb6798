import type { GitOrigin } from "./git-url.ts";

/** Settings shared by every provider. */
export interface ProviderBase {
  name: string;
  type: string;
  /** `scheme://host[:port]` the tokens are for. */
  gitOrigin: GitOrigin;
  /** Owners to mint at start and the only ones served; undefined serves any owner. */
  owners: string[] | undefined;
}

export interface GitHubAppProviderConfig extends ProviderBase {
  type: "github-app";
  appId: number | string;
  privateKey: string;
  apiUrl: string;
  installationId: number | undefined;
  repositories: string[] | undefined;
  permissions: Record<string, string> | undefined;
}

export type ProviderConfig = GitHubAppProviderConfig;

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
  providers: ProviderConfig[];
  /** Problems worth a warning that do not stop the daemon. */
  warnings: string[];
}
