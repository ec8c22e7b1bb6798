import { execa } from "execa";
import type { CheckResult, DoctorContext } from "./doctor-check.ts";

/**
 * `git ls-remote` of a configured repository the way the build's git reaches the keeper: through
 * the shim, or (`shimDir` undefined: helper-only mode) the real git with the helper its config
 * names. The whole chain at once.
 */
export async function checkLsRemote(ctx: DoctorContext, shimDir: string | undefined, realGit = "git"): Promise<CheckResult> {
  const how = shimDir ? "through the shim" : "with the helper git's config names (helper-only mode)";
  if (!ctx.repo) return { level: "skip", what: `ls-remote ${how}`, fix: "pass --repo https://HOST/OWNER/REPO to check a real fetch" };
  const r = await execa(shimDir ? "git" : realGit, ["ls-remote", "--heads", ctx.repo], {
    cwd: ctx.cwd,
    env: shimDir ? { ...ctx.env, PATH: `${shimDir}:${ctx.env.PATH ?? ""}`, GIT_TOKEN_KEEPER_RETRIES: "1" } : { ...ctx.env, GIT_TOKEN_KEEPER_DISABLE: "1" },
    reject: false,
    timeout: 60_000,
  });
  if (r.exitCode === 0) return { level: "ok", what: `git ls-remote ${ctx.repo} works ${how}` };
  const last = String(r.stderr).trim().split("\n").filter(Boolean).slice(-2).join(" / ");
  return { level: "fail", what: `git ls-remote ${ctx.repo} failed ${how}: ${last}`, fix: "read the message; git-token-keeper status shows the tokens" };
}
