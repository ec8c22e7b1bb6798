import { describeError, ProviderError } from "../errors/keeper-error.ts";
import type { Logger } from "../log/logger.ts";
import type { Redactor } from "../log/redact.ts";
import type { MetricsSink } from "../metrics/metrics-sink.ts";
import type { ProviderSupervisor } from "./provider-supervisor.ts";
import type { KeeperRequest } from "./request-queue.ts";

const MEMBERS = "members";

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
    if (request.provider !== "*" && !supervisor.provider(request.provider)) {
      throw new ProviderError(`no provider named '${request.provider}'`, { transient: false, hint: `known: ${supervisor.names.join(", ")}` });
    }
    if (!request.own) {
      // One budget for every member's refresh, whichever provider (or `*`) it names.
      const last = deps.refreshes.get(MEMBERS);
      const now = deps.now();
      if (last !== undefined && now - last < deps.refreshIntervalMs) {
        deps.metrics.requestRefused("rate-limited");
        log.warn("refused a refresh request: too soon after the last one", { provider: request.provider, waitMs: deps.refreshIntervalMs - (now - last) });
        throw new ProviderError(`refused: a refresh was asked for ${Math.round((now - last) / 1000)}s ago; at most one per ${Math.round(deps.refreshIntervalMs / 1000)}s`, { transient: true });
      }
      deps.refreshes.set(MEMBERS, now);
    }
    log.info("refresh requested", { provider: request.provider });
    // A member's refresh waits out a failing source's backoff and Retry-After, as re-mints do;
    // the keeper's own user (the CLI) may force one.
    const slots = supervisor.slots.filter((s) => (request.provider === "*" || s.provider.config.name === request.provider) && (request.own || !s.backingOff));
    const results = await Promise.allSettled(slots.map((s) => s.mint("refresh")));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${slots[i]?.name}: ${deps.redactor.redact(describeError(r.reason))}`] : []));
    if (failed.length) throw new ProviderError(failed.join("; "), { transient: true });
    return;
  }
  // A reload may retire the provider under the request: it is asked again of the successor.
  for (let attempt = 1; ; attempt++) {
    const slot = supervisor.slotFor(request.provider, request.owner);
    if (!slot) {
      const reloading = supervisor.reloading;
      if (reloading && attempt < 3) {
        await reloading;
        continue;
      }
      throw new ProviderError(`provider '${request.provider}' does not serve '${request.owner}'`, {
        transient: false,
        hint: "add the owner to the provider's owners: list",
      });
    }
    try {
      if (request.kind === "remint") return await slot.refused(request.serial);
      log.debug("token requested", { slot: slot.name });
      return await slot.ensureFresh();
    } catch (error) {
      if (!slot.stopped || attempt >= 3) throw error;
      await (supervisor.reloading ?? new Promise((resolve) => setTimeout(resolve, 100)));
    }
  }
}
