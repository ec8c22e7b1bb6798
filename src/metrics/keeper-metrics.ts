import { Counter, Gauge, Registry } from "prom-client";
import type { MetricsSink } from "./metrics-sink.ts";

export interface TokenExpiry {
  provider: string;
  owner: string;
  expiresAt: string | null;
}

/** Prometheus metrics of one daemon, in their own registry. */
export class KeeperMetrics implements MetricsSink {
  readonly registry = new Registry();
  readonly #mints: Counter<"provider" | "owner" | "reason">;
  readonly #failures: Counter<"provider" | "owner" | "kind">;
  readonly #refusals: Counter<"provider" | "owner">;
  readonly #shimRetries: Counter<"kind">;
  readonly #requestsRefused: Counter<"reason">;

  constructor(tokens: () => TokenExpiry[], now: () => number = Date.now) {
    const registers = [this.registry];
    new Gauge({
      name: "git_token_keeper_token_expiry_seconds",
      help: "Seconds until the current token expires (negative or absent: none).",
      labelNames: ["provider", "owner"],
      registers,
      collect() {
        this.reset();
        for (const t of tokens()) {
          if (t.expiresAt) this.set({ provider: t.provider, owner: t.owner }, (Date.parse(t.expiresAt) - now()) / 1000);
        }
      },
    });
    this.#mints = new Counter({ name: "git_token_keeper_mints_total", help: "Tokens minted.", labelNames: ["provider", "owner", "reason"], registers });
    this.#failures = new Counter({ name: "git_token_keeper_mint_failures_total", help: "Failed mints.", labelNames: ["provider", "owner", "kind"], registers });
    this.#refusals = new Counter({ name: "git_token_keeper_refusals_total", help: "Re-mints after a host refused a token.", labelNames: ["provider", "owner"], registers });
    this.#shimRetries = new Counter({ name: "git_token_keeper_shim_retries_total", help: "git commands the shim ran again.", labelNames: ["kind"], registers });
    this.#requestsRefused = new Counter({ name: "git_token_keeper_requests_refused_total", help: "Entries in requests/ refused: not a request, malformed, or rate-limited.", labelNames: ["reason"], registers });
  }

  requestRefused(reason: string): void {
    this.#requestsRefused.inc({ reason });
  }

  minted(provider: string, owner: string, reason: string): void {
    this.#mints.inc({ provider, owner, reason });
  }

  mintFailed(provider: string, owner: string, transient: boolean): void {
    this.#failures.inc({ provider, owner, kind: transient ? "transient" : "permanent" });
  }

  refused(provider: string, owner: string): void {
    this.#refusals.inc({ provider, owner });
  }

  shimRetried(kind: string): void {
    this.#shimRetries.inc({ kind });
  }
}
