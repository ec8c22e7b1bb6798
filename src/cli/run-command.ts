import { configPath, loadConfig } from "../config/load-config.ts";
import { stateDirPath } from "../config/state-dir-path.ts";
import { Daemon } from "../daemon/daemon.ts";
import { notifySystemd } from "../daemon/systemd-notify.ts";
import { KeeperMetrics } from "../metrics/keeper-metrics.ts";
import { startMetricsServer } from "../metrics/metrics-server.ts";
import { ConfigError, describeError, KeeperError } from "../errors/keeper-error.ts";
import { createLogger, type LogFormat, type LogLevel } from "../log/logger.ts";
import { Redactor } from "../log/redact.ts";

/** `run [--config FILE]`: the daemon in the foreground until SIGTERM or SIGINT. */
export async function runCommand(options: {
  config?: string | undefined;
  logFormat?: LogFormat | undefined;
  logLevel?: LogLevel | undefined;
}): Promise<number> {
  const redactor = new Redactor();
  const log = createLogger({ redactor, format: options.logFormat, level: options.logLevel });
  let config;
  try {
    config = loadConfig(configPath(options.config));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`git-token-keeper: ${redactor.redact(problem)}\n`);
    return 2;
  }
  for (const warning of config.warnings) log.warn(warning);
  let metrics: KeeperMetrics | undefined;
  const daemon: Daemon = new Daemon({
    config,
    stateDir: stateDirPath(config.stateDir),
    log,
    redactor,
    metrics: config.metricsListen ? (metrics = new KeeperMetrics(() => daemon.tokenExpiries())) : undefined,
  });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    log.info("stopping", { signal });
    stopping ??= notifySystemd({ STOPPING: "1" }, log).then(() => daemon.stop());
  };
  const exited = new Promise<number>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        stop(signal);
        void stopping?.then(() => resolve(0));
      });
    }
  });
  try {
    await daemon.start();
  } catch (error) {
    if (!(error instanceof KeeperError)) throw error;
    log.error(describeError(error));
    await daemon.stop().catch(() => undefined);
    return 1;
  }
  if (metrics && config.metricsListen) {
    try {
      const server = await startMetricsServer(config.metricsListen, metrics.registry, () => daemon.problem);
      server.unref();
      log.info("serving metrics", { listen: config.metricsListen });
    } catch (error) {
      log.error(`cannot serve metrics on ${config.metricsListen}: ${describeError(error)}`);
      await daemon.stop();
      return 1;
    }
  }
  log.info("ready", { healthy: daemon.healthy });
  await notifySystemd({ READY: "1", STATUS: daemon.healthy ? "tokens minted" : "running; some tokens failing, see status" }, log);
  return exited;
}
