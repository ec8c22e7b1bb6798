import { configPath, loadConfig } from "../config/load-config.ts";
import { stateDirPath } from "../config/state-dir-path.ts";
import { Daemon } from "../daemon/daemon.ts";
import { MINT_DEADLINE_MS, mintDeadlineMs } from "../daemon/token-slot.ts";
import { notifySystemd } from "../daemon/systemd-notify.ts";
import type { KeeperMetrics } from "../metrics/keeper-metrics.ts";
import { ConfigError, describeError, KeeperError } from "../errors/keeper-error.ts";
import { basename, dirname } from "node:path";
import { watch } from "chokidar";
import { createLogger, type LogFormat, type Logger, type LogLevel } from "../log/logger.ts";
import { Redactor } from "../log/redact.ts";
import { loadProviders } from "../providers/provider-registry.ts";

/** `run [--config FILE]`: the daemon in the foreground until SIGTERM or SIGINT. */
export async function runCommand(options: {
  config?: string | undefined;
  logFormat?: LogFormat | undefined;
  logLevel?: LogLevel | undefined;
}): Promise<number> {
  const redactor = new Redactor();
  const log = createLogger({ redactor, format: options.logFormat, level: options.logLevel });
  const file = configPath(options.config);
  let config;
  try {
    config = loadConfig(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`git-token-keeper: ${redactor.redact(problem)}\n`);
    return 2;
  }
  for (const warning of config.warnings) log.warn(warning);
  // prom-client is loaded only when metrics are configured (about 20 MB resident).
  let metrics: KeeperMetrics | undefined;
  const metricsModule = config.metricsListen ? await import("../metrics/keeper-metrics.ts") : undefined;
  await loadProviders(config.providers);
  const daemon: Daemon = new Daemon({
    config,
    stateDir: stateDirPath(config.stateDir),
    log,
    redactor,
    metrics: metricsModule ? (metrics = new metricsModule.KeeperMetrics(() => daemon.tokenExpiries())) : undefined,
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
  // A SIGHUP during start (which waits for every first mint) would end the process by default:
  // it is noted, and the config reloaded once the daemon runs.
  let reloadAfterStart = false;
  const hupDuringStart = () => {
    reloadAfterStart = true;
    log.info("SIGHUP while starting: the config is reloaded once started");
  };
  process.on("SIGHUP", hupDuringStart);
  // READY=1 comes once every first mint ended, which may take up to a mint's deadline: systemd's
  // start timeout (90 s by default) is extended past it, so a slow API does not fail the start.
  const startMs = Math.max(...config.providers.map((p) => mintDeadlineMs(p)), MINT_DEADLINE_MS) + 30_000;
  await notifySystemd({ EXTEND_TIMEOUT_USEC: String(startMs * 1000), STATUS: "starting: minting the first tokens" }, log);
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
      const { startMetricsServer } = await import("../metrics/metrics-server.ts");
      const server = await startMetricsServer(config.metricsListen, metrics.registry, () => daemon.problem);
      server.unref();
      log.info("serving metrics", { listen: config.metricsListen });
    } catch (error) {
      log.error(`cannot serve metrics on ${config.metricsListen}: ${describeError(error)}`);
      await daemon.stop();
      return 1;
    }
  }
  const { stop: stopWatching, ready: watching } = watchConfig(file, daemon, log, redactor, reloadAfterStart);
  // Ready once the watcher has looked: a config written right after "ready" is not missed.
  await Promise.race([watching, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  process.off("SIGHUP", hupDuringStart);
  void exited.then(() => stopWatching());
  log.info("ready", { healthy: daemon.healthy });
  await notifySystemd({ READY: "1", STATUS: daemon.healthy ? "tokens minted" : "running; some tokens failing, see status" }, log);
  return exited;
}

/**
 * Reloads on SIGHUP and when the file changes (chokidar, on the folder so that an editor's or a
 * ConfigMap's rename counts, but on nothing else in it). The new file is validated whole first; an invalid one is
 * rejected and the running config stays.
 */
function watchConfig(file: string, daemon: Daemon, log: Logger, redactor: Redactor, reloadNow: boolean): { stop: () => Promise<void>; ready: Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const reload = (why: string) => {
    running = running.then(async () => {
      log.info("reloading config", { why });
      let next;
      try {
        next = loadConfig(file);
      } catch (error) {
        daemon.reloadRejected(error instanceof ConfigError ? error.problems.map((p) => redactor.redact(p)) : [describeError(error)]);
        return;
      }
      for (const warning of next.warnings) log.warn(warning);
      // A reload that fails part-way is said, never an unhandled rejection: the daemon keeps
      // running, and the next reload is not stuck behind this one.
      try {
        await daemon.reload(next);
      } catch (error) {
        log.error("config reload failed part-way; fix the cause and reload again", { error: describeError(error) });
        daemon.reloadRejected([`failed part-way: ${redactor.redact(describeError(error))}`]);
      }
    });
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  if (reloadNow) reload("SIGHUP while starting");
  // Only the file itself (and a ConfigMap's `..data` swap) is watched: its neighbours may be
  // unreadable to the daemon (a root-only key beside it), and they are none of its business.
  const dir = dirname(file);
  const ours = (path: string) => path === dir || basename(path) === basename(file) || basename(path).startsWith("..");
  const watcher = watch(dir, { depth: 0, ignoreInitial: true, ignored: (path) => !ours(path), awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 } });
  watcher.on("all", (_event, path) => {
    if (!ours(path) || path === dir) return;
    clearTimeout(timer);
    timer = setTimeout(() => reload("config file changed"), 100);
  });
  // A watch that fails (EACCES, too many watches) costs the automatic reload, not the daemon.
  watcher.on("error", (error) => log.warn("cannot watch the config file; reload with SIGHUP (systemctl reload)", { error: describeError(error) }));
  const ready = new Promise<void>((resolve) => {
    watcher.once("ready", () => resolve());
    watcher.once("error", () => resolve());
  });
  return {
    ready,
    stop: async () => {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
