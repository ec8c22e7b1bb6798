import { loadBrokerConfig, type BrokerConfig } from "../config/broker-config.ts";
import { BrokerServer } from "../broker/broker-server.ts";
import { ScopeCache } from "../broker/scope-cache.ts";
import { IdentityVerifier } from "../broker/verify-identity.ts";
import { systemClock } from "../daemon/clock.ts";
import { notifySystemd } from "../daemon/systemd-notify.ts";
import { ConfigError, describeError } from "../errors/keeper-error.ts";
import { createLogger, type LogFormat, type Logger, type LogLevel } from "../log/logger.ts";
import { Redactor } from "../log/redact.ts";
import { KeeperMetrics } from "../metrics/keeper-metrics.ts";
import { loadProviders } from "../providers/provider-registry.ts";

/**
 * `broker --config FILE`: holds the providers' keys in one place and hands scoped tokens to
 * keepers that prove their workload identity (docs/broker.md). Stateless: tokens live in memory.
 */
export async function brokerCommand(options: { config?: string | undefined; logFormat?: LogFormat | undefined; logLevel?: LogLevel | undefined }): Promise<number> {
  const redactor = new Redactor();
  const log = createLogger({ redactor, format: options.logFormat, level: options.logLevel });
  if (!options.config) {
    process.stderr.write("git-token-keeper: broker needs --config FILE (docs/broker.md has an example)\n");
    return 2;
  }
  let config;
  try {
    config = loadBrokerConfig(options.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`git-token-keeper: ${redactor.redact(problem)}\n`);
    return 2;
  }
  await loadProviders(config.providers);
  warnBroadPolicies(config, log);
  const metrics = new KeeperMetrics(() => []);
  const scopes = new ScopeCache(config, { clock: systemClock, log, redactor, metrics });
  let verifier = new IdentityVerifier(config.identities);
  const server = new BrokerServer({ config, verifier, scopes, log, metrics });
  try {
    await server.start();
  } catch (error) {
    log.error("cannot listen", { listen: `${config.listen.host}:${config.listen.port}`, error: describeError(error) });
    return 1;
  }
  // The issuers' keys now, not at the first request (a failure is retried within the cooldown).
  await verifier.prefetch();
  await notifySystemd({ READY: "1" }, log);
  // SIGHUP (systemctl reload): policies, identities and providers again, without a restart and
  // without a storm: cached tokens of unchanged providers stay; identities' keys are fetched
  // again only where the identities changed. Where it listens needs a restart.
  let current = config;
  // One reload at a time, in the order the signals came, each reading the file as it is then:
  // a slow reload (an identity's keys to fetch) never lands after a later one.
  let reloads = Promise.resolve();
  process.on("SIGHUP", () => {
    const file = options.config as string;
    reloads = reloads.then(async () => {
      await notifySystemd({ RELOADING: "1", MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) }, log);
      try {
        const next = loadBrokerConfig(file);
        const moved = (["listen", "metricsListen", "tls"] as const).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]));
        if (moved.length) throw new ConfigError([`${file}: ${moved.join(", ")} changed: the broker cannot move where it listens on a reload; restart it`]);
        await loadProviders(next.providers);
        warnBroadPolicies(next, log);
        if (JSON.stringify(next.identities) !== JSON.stringify(current.identities)) {
          // Only the identities that changed start without keys.
          verifier = new IdentityVerifier(next.identities, { previous: verifier });
          await verifier.prefetch();
        }
        scopes.reload(next);
        server.reload({ config: next, verifier });
        current = next;
        log.info("config reloaded", { policies: next.policies.length, identities: next.identities.length, providers: next.providers.length, scopes: scopes.size });
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems : [describeError(error)];
        log.error("config not reloaded; the broker keeps the config it has", { problems });
      } finally {
        await notifySystemd({ READY: "1" }, log);
      }
    }).catch((error: unknown) => {
      log.error("reload failed", { error: describeError(error) });
    });
  });
  return new Promise<number>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.once(signal, () => {
        log.info("stopping", { signal });
        scopes.stop();
        void server.stop().then(() => resolve(0));
      });
    }
  });
}

function warnBroadPolicies(config: BrokerConfig, log: Logger): void {
  for (const policy of config.policies) {
    if (policy.anyIdentityOfIssuer && Object.keys(policy.claims).length === 0) {
      log.warn("a policy allows every identity its issuer vouches for (anyIdentityOfIssuer: true, no claims)", { policy: policy.at, identity: policy.identity });
    }
  }
}
