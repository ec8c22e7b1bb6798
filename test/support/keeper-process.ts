import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
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

  static async start(options: { dir: string; config: unknown; stateDir: string; env?: Record<string, string>; waitReady?: boolean }): Promise<KeeperProcess> {
    const configFile = join(options.dir, "keeper.yaml");
    writeFileSync(configFile, JSON.stringify(options.config, null, 2));
    const child = spawn(process.execPath, [CLI, "run", "--config", configFile, "--log-format", "json", "--log-level", "debug"], {
      env: { PATH: process.env.PATH, HOME: options.dir, GIT_TOKEN_KEEPER_DIR: options.stateDir, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keeper = new KeeperProcess(child, options.stateDir, options.dir);
    if (options.waitReady !== false) await keeper.waitForLog(/"message":"ready"/, 20_000);
    return keeper;
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
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}
