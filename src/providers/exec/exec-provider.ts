import type { ExecProviderConfig } from "./exec-config.ts";
import { ProviderError } from "../../errors/keeper-error.ts";
import type { Logger } from "../../log/logger.ts";
import { fingerprint } from "../../log/redact.ts";
import { expiryFromFields } from "../token-expiry.ts";
import { sharedTokenProvider, type MintedToken, type TokenProvider } from "../token-provider.ts";

const ALWAYS_PASSED = ["PATH", "HOME", "LANG", "TZ"];

/** Reads what a token command printed: a bare token, or JSON {token, expires_at|expires_in, username}. */
export function parseTokenOutput(stdout: string, now: number): MintedToken {
  const text = stdout.trim();
  if (text.startsWith("{")) {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ProviderError("the token command printed malformed JSON", { transient: true });
    }
    if (typeof data.token !== "string" || !data.token) throw new ProviderError("the token command's JSON has no \"token\" string", { transient: false });
    return { token: data.token, expiresAt: expiryFromFields(data, now), username: typeof data.username === "string" ? data.username : undefined };
  }
  const lines = text.split("\n").filter(Boolean);
  if (lines.length !== 1 || /\s/.test(lines[0] ?? "")) {
    throw new ProviderError(`the token command printed ${lines.length === 0 ? "nothing" : "more than one token-like line"}`, {
      transient: false,
      hint: "print only the token, or JSON {\"token\": …, \"expires_in\": …}",
    });
  }
  return { token: lines[0] as string };
}

/**
 * Runs a command that prints a token (a Vault CLI, an STS client, a script). No shell unless
 * asked, a timeout, and a minimal environment plus an allow-list; stderr goes to the log
 * (redacted); a non-zero exit is a failed mint with the command's last stderr line.
 */
export function createExecProvider(config: ExecProviderConfig, log: Logger, env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): TokenProvider {
  const childEnv = Object.fromEntries([...ALWAYS_PASSED, ...config.env].flatMap((k) => (env[k] === undefined ? [] : [[k, env[k] as string]])));
  const [file, ...args] = typeof config.command === "string" ? [config.command] : config.command;
  // Each run is a process group of its own: a timeout (or the daemon stopping) kills the whole
  // group, so a shell's children or a wrapper's forks cannot outlive it holding its pipes.
  const running = new Set<number>();
  const killGroup = (pid: number | undefined) => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  return sharedTokenProvider(config, {
    resumes: false,
    async mint() {
      const { execa } = await import("execa");
      const child = execa(file as string, args, {
        shell: config.shell,
        env: childEnv,
        extendEnv: false,
        reject: false,
        stdin: "ignore",
        stripFinalNewline: true,
        detached: true,
      });
      let timedOut = false;
      if (child.pid !== undefined) running.add(child.pid);
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, config.timeout);
      const result = await child.finally(() => {
        clearTimeout(timer);
        if (child.pid !== undefined) running.delete(child.pid);
      });
      const stderr = String(result.stderr ?? "").trim();
      if (timedOut) throw new ProviderError(`the token command timed out after ${config.timeout} ms; its processes were killed`, { transient: true });
      if (result.failed || result.exitCode !== 0) {
        if (stderr) log.warn("token command stderr", { provider: config.name, stderr });
        const last = stderr.split("\n").pop() || result.shortMessage || "no message";
        throw new ProviderError(`the token command exited with ${result.exitCode ?? result.signal}: ${last}`, { transient: true });
      }
      const minted = parseTokenOutput(String(result.stdout), now());
      // Logged only once the token is known, so that a command echoing it never leaks it.
      if (stderr) log.info("token command stderr", { provider: config.name, stderr: stderr.split(minted.token).join(`[redacted ${fingerprint(minted.token)}]`) });
      return minted;
    },
    async dispose() {
      for (const pid of running) killGroup(pid);
      running.clear();
    },
  });
}
