import { describeError, ProviderError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { Redactor } from "../log/redact.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import type { ProviderSupervisor } from "./provider-supervisor.ts";
import type { KeeperRequest } from "./request-queue.ts";

/** Carries out one request from the helper, the shim or the CLI; throws to answer in `answers/`. */
export async function handleRequest(
  request: KeeperRequest,
  deps: {
    supervisor: ProviderSupervisor;
    log: Logger;
    redactor: Redactor;
    metrics: MetricsSink;
    /** When each provider (or `*`) was last refreshed at a group member's request. */
    refreshes: Map<string, number>;
    refreshIntervalMs: number;
    now: () => number;
  },
): Promise<void> {
  const { supervisor, log } = deps;
  if (request.kind === "retried") {
    deps.metrics.shimRetried(request.provider);
    return;
  }
  if (request.kind === "refresh") {
    // Every refresh re-mints (a GitLab rotation revokes the token other builds use): a member of
    // the state group may ask once per remintInterval per provider; the keeper's own user (the
    // CLI run as it) whenever it likes.
    if (!request.own) {
      const last = deps.refreshes.get(request.provider);
      const now = deps.now();
      if (last !== undefined && now - last < deps.refreshIntervalMs) {
        deps.metrics.requestRefused("rate-limited");
        log.warn("refused a refresh request: too soon after the last one", { provider: request.provider, waitMs: deps.refreshIntervalMs - (now - last) });
        throw new ProviderError(`refused: '${request.provider}' was refreshed ${Math.round((now - last) / 1000)}s ago at a request; at most one per ${Math.round(deps.refreshIntervalMs / 1000)}s`, { transient: true });
      }
      deps.refreshes.set(request.provider, now);
    }
    log.info("refresh requested", { provider: request.provider });
    if (request.provider !== "*" && !supervisor.provider(request.provider)) {
      throw new ProviderError(`no provider named '${request.provider}'`, { transient: false, hint: `known: ${supervisor.names.join(", ")}` });
    }
    const slots = supervisor.slots.filter((s) => request.provider === "*" || s.provider.config.name === request.provider);
    const results = await Promise.allSettled(slots.map((s) => s.mint("refresh")));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${slots[i]?.name}: ${deps.redactor.redact(describeError(r.reason))}`] : []));
    if (failed.length) throw new ProviderError(failed.join("; "), { transient: true });
    return;
  }
  const slot = supervisor.slotFor(request.provider, request.owner);
  if (!slot) {
    throw new ProviderError(`provider '${request.provider}' does not serve '${request.owner}'`, {
      transient: false,
      hint: "add the owner to the provider's owners: list",
    });
  }
  if (request.kind === "remint") return slot.refused(request.serial);
  log.debug("token requested", { slot: slot.name });
  return slot.ensureFresh();
}
