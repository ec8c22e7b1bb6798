import { dirname } from "node:path";
import { execa } from "execa";
import type { CheckResult, DoctorContext } from "./doctor-check.ts";
import { gitsOnPath, isShimDir } from "./find-git.ts";

/** The shim must come before the real git on PATH, or git never sees the keeper. */
export function checkShimOnPath(ctx: DoctorContext, shimDir: string): CheckResult {
  const [first] = gitsOnPath(ctx.env.PATH);
  if (!first) return { level: "fail", what: "no git on PATH", fix: `install git and put the shim first: export PATH="${shimDir}:$PATH"` };
  if (!isShimDir(dirname(first))) {
    return { level: "fail", what: `the first git on PATH is ${first}, not the shim`, fix: `export PATH="${shimDir}:$PATH" in the build's environment` };
  }
  if (ctx.env.GIT_TOKEN_KEEPER_DISABLE === "1") {
    return { level: "warn", what: "the shim is on PATH but GIT_TOKEN_KEEPER_DISABLE=1 turns it off", fix: "unset GIT_TOKEN_KEEPER_DISABLE" };
  }
  return { level: "ok", what: `the first git on PATH is the shim (${first})` };
}

/** The real git: found, and new enough for GIT_CONFIG_COUNT (2.31) and for submodules to keep it (2.33). */
export async function checkRealGit(ctx: DoctorContext): Promise<CheckResult & { version?: string }> {
  const real = ctx.env.GIT_TOKEN_KEEPER_REAL_GIT || gitsOnPath(ctx.env.PATH).find((g) => !isShimDir(dirname(g)));
  if (!real) return { level: "fail", what: "no real git found besides the shim", fix: "install git, or set GIT_TOKEN_KEEPER_REAL_GIT" };
  let version: string;
  try {
    version = (await execa(real, ["--version"], { timeout: 10_000 })).stdout.trim();
  } catch (error) {
    return { level: "fail", what: `${real} --version failed: ${(error as Error).message.split("\n")[0]}`, fix: "fix or reinstall git" };
  }
  const m = /(\d+)\.(\d+)/.exec(version);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
  if (!atLeast(2, 31)) {
    return { level: "fail", what: `${real} is ${version}; the shim needs git 2.31 or newer (GIT_CONFIG_COUNT)`, fix: "upgrade git", version };
  }
  if (!atLeast(2, 33)) {
    return { level: "warn", what: `${real} is ${version}; submodule commands drop the shim's settings before git 2.33`, fix: "upgrade git to 2.33 or newer", version };
  }
  return { level: "ok", what: `real git: ${real} (${version})`, version };
}
