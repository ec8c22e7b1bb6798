import { execa } from "execa";
import { CLI } from "./keeper-process.ts";

/** `git-token-keeper …` as a user runs it, against a state dir. */
export async function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, extendEnv: false, reject: false, timeout: 60_000, cwd });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
