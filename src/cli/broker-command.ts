import { loadBrokerConfig } from "../config/broker-config.ts";
import { BrokerServer } from "../broker/broker-server.ts";
import { ScopeCache } from "../broker/scope-cache.ts";
import { IdentityVerifier } from "../broker/verify-identity.ts";
import { systemClock } from "../daemon/clock.ts";
import { notifySystemd } from "../daemon/systemd-notify.ts";
import { ConfigError, describeError } from "../errors/keeper-error.ts";
import { createLogger, type LogFormat, type LogLevel } from "../log/logger.ts";
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
  const metrics = new KeeperMetrics(() => []);
  const scopes = new ScopeCache(config, { clock: systemClock, log, redactor, metrics });
  const server = new BrokerServer({ config, verifier: new IdentityVerifier(config.identities), scopes, log, metrics });
  try {
    await server.start();
  } catch (error) {
    log.error("cannot listen", { listen: `${config.listen.host}:${config.listen.port}`, error: describeError(error) });
    return 1;
  }
  await notifySystemd({ READY: "1" }, log);
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
