import { execa } from "execa";
import { fileURLToPath } from "node:url";

export const SHIM_DIR = fileURLToPath(new URL("../../shim", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface GitResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface GitOptions {
  cwd: string;
  home: string;
  /** The folder holding the shim to put first on PATH; none for plain git. */
  shimDir?: string | undefined;
  stateDir?: string;
  env?: Record<string, string>;
  input?: string;
}

/** The environment every test git runs in: no system or user config leaks in. */
export function gitEnv(options: Omit<GitOptions, "cwd" | "input">): Record<string, string> {
  return {
    PATH: options.shimDir ? `${options.shimDir}:${process.env.PATH}` : (process.env.PATH ?? ""),
    HOME: options.home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "Build Bot",
    GIT_AUTHOR_EMAIL: "build@example.test",
    GIT_COMMITTER_NAME: "Build Bot",
    GIT_COMMITTER_EMAIL: "build@example.test",
    ...(options.stateDir ? { GIT_TOKEN_KEEPER_DIR: options.stateDir } : {}),
    ...options.env,
  };
}

export async function runGit(args: string[], options: GitOptions): Promise<GitResult> {
  const result = await execa("git", args, {
    cwd: options.cwd,
    env: gitEnv(options),
    extendEnv: false,
    reject: false,
    input: options.input ?? "",
    timeout: 120_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}
