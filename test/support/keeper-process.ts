import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { uptime } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./run-git.ts";

export const CLI = join(REPO_ROOT, "dist", "cli", "main.js");

/** The real daemon as a process: `git-token-keeper run` from the build output. */
export class KeeperProcess {
  readonly child: ChildProcess;
  readonly stateDir: string;
  #log = "";
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, stateDir: string, logDir: string) {
    this.child = child;
    this.stateDir = stateDir;
    const logFile = join(logDir, `keeper-${child.pid}.log`);
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#log += chunk.toString("utf8");
      // Kept on disk for the secrets audit, which searches every log for minted tokens.
      appendFileSync(logFile, chunk);
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      this.#log += chunk.toString("utf8");
    });
    this.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
  }

  /**
   * `pidNamespace`: the daemon runs in a PID namespace of its own (as in a pod, where containers
   * share no PID namespace): it is pid 1 there, and its pids mean nothing to git's side. Killing
   * the process this returns kills the daemon too.
   */
  static async start(options: { dir: string; config: unknown; stateDir: string; env?: Record<string, string>; waitReady?: boolean; pidNamespace?: boolean }): Promise<KeeperProcess> {
    const configFile = join(options.dir, "keeper.yaml");
    writeFileSync(configFile, JSON.stringify(options.config, null, 2));
    const argv = [CLI, "run", "--config", configFile, "--log-format", "json", "--log-level", "debug"];
    const [command, args] = options.pidNamespace
      ? ["unshare", ["--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", process.execPath, ...argv]]
      : [process.execPath, argv];
    const keeper = KeeperProcess.#spawn(command as string, args as string[], options);
    if (options.waitReady !== false) await keeper.waitForLog(/"message":"ready"/, 20_000);
    return keeper;
  }

  /** `git-token-keeper broker` as a process; resolves once it listens (see `brokerUrl`). */
  static async startBroker(options: { dir: string; config: unknown; env?: Record<string, string>; name?: string }): Promise<KeeperProcess> {
    const configFile = join(options.dir, `${options.name ?? "broker"}.yaml`);
    // /metrics on a port of its own: any free one, unless the test says where.
    const config = { metricsListen: "127.0.0.1:0", ...(options.config as Record<string, unknown>) };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const broker = KeeperProcess.#spawn(process.execPath, [CLI, "broker", "--config", configFile, "--log-format", "json", "--log-level", "debug"], { ...options, stateDir: "" });
    await broker.waitForLog(/"message":"broker listening"/, 20_000);
    return broker;
  }

  static #spawn(command: string, args: string[], options: { dir: string; stateDir: string; env?: Record<string, string> }): KeeperProcess {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, HOME: options.dir, ...(options.stateDir ? { GIT_TOKEN_KEEPER_DIR: options.stateDir } : {}), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new KeeperProcess(child, options.stateDir, options.dir);
  }

  /** Where a broker said it serves /metrics. */
  get metricsUrl(): string {
    const record = this.records().find((r) => r.message === "broker metrics listening");
    return String(record?.url ?? "");
  }

  /** The URL a broker said it listens on. */
  get brokerUrl(): string {
    const record = this.records().find((r) => r.message === "broker listening");
    return String(record?.url ?? "");
  }

  get log(): string {
    return this.#log;
  }

  /** Log records as parsed JSON lines. */
  records(): Record<string, unknown>[] {
    return this.#log
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.#log)) {
      if (Date.now() > deadline) throw new Error(`daemon log never matched ${pattern}:\n${this.#log}`);
      if (this.child.exitCode !== null) throw new Error(`daemon exited (${this.child.exitCode}):\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<number | null> {
    this.#signal("SIGTERM");
    return this.exited;
  }

  /** SIGKILL for the daemon itself: it leaves its pid file and last heartbeat behind. */
  async kill(): Promise<void> {
    this.#signal("SIGKILL");
    await this.exited;
  }

  /** SIGSTOP and SIGCONT, say: a daemon frozen while something happens around it. */
  signal(signal: NodeJS.Signals): void {
    this.#signal(signal);
  }

  // In a PID namespace of its own the daemon is unshare's child; unshare exits with it.
  #signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null || !this.child.pid) return;
    let pid = this.child.pid;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      if (this.child.spawnfile === "unshare" && children) pid = Number(children.split(" ")[0]);
    } catch {
      // Gone meanwhile.
    }
    process.kill(pid, signal);
  }
}

/** Makes the heartbeat in a state dir `seconds` old, as if the daemon had died that long ago. */
export function ageHeartbeat(stateDir: string, seconds: number): void {
  const at = Math.floor(Date.now() / 1000) - seconds;
  writeFileSync(join(stateDir, "heartbeat"), `${at} ${new Date(at * 1000).toISOString()} ${Math.round(Date.now() / 1000 - uptime())}\n`);
}
