import { execa } from "execa";
import { CLI } from "./keeper-process.ts";
import { scanText } from "./secrets-audit.ts";

// `token` prints a token and `exec` runs a command with one: their output is the token by design.
const PRINTS_TOKENS = new Set(["token", "exec"]);

/**
 * `git-token-keeper …` as a user runs it, against a state dir. What it prints (status, doctor,
 * every error message) joins the secrets audit: no part of a minted token may be in it.
 */
export async function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, extendEnv: false, reject: false, timeout: 60_000, cwd });
  const out = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  if (!PRINTS_TOKENS.has(args[0] ?? "")) scanText(`the output of git-token-keeper ${args[0] ?? ""}`, `${out.stdout}\n${out.stderr}`);
  return out;
}
