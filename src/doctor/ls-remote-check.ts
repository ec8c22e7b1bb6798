import { execa } from "execa";
import type { CheckResult, DoctorContext } from "./doctor-check.ts";

/** `git ls-remote` of a configured repository through the shim: the whole chain at once. */
export async function checkLsRemote(ctx: DoctorContext, shimDir: string): Promise<CheckResult> {
  if (!ctx.repo) return { level: "skip", what: "ls-remote through the shim", fix: "pass --repo https://HOST/OWNER/REPO to check a real fetch" };
  const r = await execa("git", ["ls-remote", "--heads", ctx.repo], {
    cwd: ctx.cwd,
    env: { ...ctx.env, PATH: `${shimDir}:${ctx.env.PATH ?? ""}`, GIT_TOKEN_KEEPER_RETRIES: "1" },
    reject: false,
    timeout: 60_000,
  });
  if (r.exitCode === 0) return { level: "ok", what: `git ls-remote ${ctx.repo} works through the shim` };
  const last = String(r.stderr).trim().split("\n").filter(Boolean).slice(-2).join(" / ");
  return { level: "fail", what: `git ls-remote ${ctx.repo} failed through the shim: ${last}`, fix: "read the message; git-token-keeper status shows the tokens" };
}
