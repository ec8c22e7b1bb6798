import { dirname } from "node:path";
import { configPath } from "../config/config-path.ts";
import { checkClockSkew } from "../doctor/clock-skew-check.ts";
import type { CheckResult } from "../doctor/doctor-check.ts";
import { gitsOnPath, isShimDir } from "../doctor/find-git.ts";
import { checkLsRemote } from "../doctor/ls-remote-check.ts";
import { checkMode } from "../doctor/mode-check.ts";
import { checkRealGit, checkShimOnPath } from "../doctor/path-checks.ts";
import { readContext } from "../doctor/read-context.ts";
import { checkStaleCredentials } from "../doctor/stale-credential-check.ts";
import { checkDaemon, checkStateDir } from "../doctor/state-checks.ts";
import { cliStateDir } from "./cli-state-dir.ts";
import { shimDir } from "./shim-path-command.ts";

const MARK = { ok: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" } as const;

/** `doctor [--repo URL]`: what goes wrong in real installs, each with its fix; exit 1 on any failure. */
export async function doctorCommand(options: { config?: string | undefined; repo?: string | undefined; env?: NodeJS.ProcessEnv }): Promise<number> {
  const env = options.env ?? process.env;
  const ctx = readContext({ env, cwd: process.cwd(), stateDir: cliStateDir(options.config, env), configFile: configPath(options.config, env), repo: options.repo });
  const shim = shimDir();
  const realGit = env.GIT_TOKEN_KEEPER_REAL_GIT || gitsOnPath(env.PATH).find((g) => !isShimDir(dirname(g))) || "git";
  const onPath = checkShimOnPath(ctx, shim);
  const real = await checkRealGit(ctx);
  const mode = await checkMode(ctx, { shimFirst: onPath.level !== "fail", realGit, realGitVersion: real.version });
  // Helper-only mode serves git without the shim: its absence is a warning, not a failure, and
  // the advice that follows is for that mode.
  const helperOnly = onPath.level === "fail" && mode[0]?.level !== "fail";
  if (helperOnly) {
    onPath.level = "warn";
    onPath.what = `${onPath.what} (helper-only mode serves git run by name or path)`;
  }
  const stale = await checkStaleCredentials(ctx, realGit, { shimInFront: !helperOnly });
  // One word per helper: one the mode check named as coming after the keeper's is not named again.
  const named = new Set(mode.map((m) => m.what.split(" ")[0]));
  const results: CheckResult[] = [
    onPath,
    real,
    ...mode,
    ...checkStateDir(ctx),
    ...checkDaemon(ctx),
    ...(await checkClockSkew(ctx)),
    await checkLsRemote(ctx, helperOnly ? undefined : shim, realGit),
    // …and a helper configured twice (before and after the keeper's entries) once.
    ...stale.filter((r, i) => !named.has(r.what.split(" ")[0]) && stale.findIndex((o) => o.what === r.what) === i),
  ];
  for (const r of results) {
    process.stdout.write(`${MARK[r.level]}  ${r.what}\n`);
    if (r.fix && r.level !== "ok") process.stdout.write(`      fix: ${r.fix}\n`);
  }
  const failed = results.filter((r) => r.level === "fail").length;
  const warned = results.filter((r) => r.level === "warn").length;
  process.stdout.write(`\n${failed ? `${failed} failed` : "nothing failed"}, ${warned} warning(s)\n`);
  return failed ? 1 : 0;
}
