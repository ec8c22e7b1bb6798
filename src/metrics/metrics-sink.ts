/** What the daemon counts; a no-op unless metrics are configured. */
export interface MetricsSink {
  minted(provider: string, owner: string, reason: string): void;
  mintFailed(provider: string, owner: string, transient: boolean): void;
  refused(provider: string, owner: string): void;
  shimRetried(kind: string): void;
  /** An entry in requests/ that was refused: not a request, malformed, or rate-limited. */
  requestRefused(reason: string): void;
}

export const noMetrics: MetricsSink = {
  minted: () => undefined,
  mintFailed: () => undefined,
  refused: () => undefined,
  shimRetried: () => undefined,
  requestRefused: () => undefined,
};
